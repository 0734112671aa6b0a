package queue

// specFloor is the least gain, in seconds, that starts a copy of a job
// shorter than SpecMinGain makes worth it on its own.
const specFloor = 5.0

// Speculate returns a running item (on another host) that host would
// finish sooner than its current copy is expected to end, and marks a
// second copy running on host; nil if there is none. The copy's expected
// end is now + its remaining time (from its progress, else its
// prediction), or for a queued copy when its slot frees + its full time:
// whether its host runs slower than predicted does not matter, only the
// two expected ends do. A copy starts when the time left there exceeds
// SpecRatio × host's full time and the gain is at least SpecMinGain, or
// at least half the time left (and 5 s) for shorter jobs. The item with
// the largest gain is chosen; an item never has more than two copies.
func (q *Queue) Speculate(host string) *Item {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	h := q.host(host)
	now := q.clock()
	if q.refreshWindows(now); h.down || h.shut {
		return nil
	}
	return q.speculate(h, now)
}

func (q *Queue) speculate(h *hostState, now float64) *Item {
	if h.speed <= 0 {
		return nil
	}
	minGain := q.opts.SpecMinGain.Seconds()
	var best *Item
	var bestGain float64
	consider := func(r *run, end float64) {
		it := r.it
		if len(it.runs) != 1 || !q.canRun(it, h) || q.heldBack(it, h) || !q.fits(h, it, now) || h.capped(q.lane(it, h).Family) {
			return
		}
		left, mine := end-now, it.Work/q.rate(it, h)
		gain := left - mine
		if left > q.opts.SpecRatio*mine && gain >= min(minGain, max(left/2, specFloor)) && gain > bestGain {
			best, bestGain = it, gain
		}
	}
	var buf [8]float64
	for _, g := range q.hostList {
		if g == h {
			continue
		}
		for _, r := range g.runs {
			if !r.queued {
				consider(r, now+r.remaining(now))
			}
		}
		queuedEnds(g, now, buf[:0], consider)
	}
	if best != nil {
		q.addRun(best, h, now, false)
	}
	return best
}
