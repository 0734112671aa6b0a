package queue

// Speculate returns a running item (on another host) that host is
// predicted to finish sooner than its current runner — remaining time there
// > SpecRatio × host's full time, by at least SpecMinGain — and marks a
// second copy running on host; nil if there is none. The item with the
// largest predicted gain is chosen; an item never has more than two copies.
func (q *Queue) Speculate(host string) *Item {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	h := q.host(host)
	if h.down {
		return nil
	}
	return q.speculate(h, q.clock())
}

func (q *Queue) speculate(h *hostState, now float64) *Item {
	if h.speed <= 0 {
		return nil
	}
	minGain := q.opts.SpecMinGain.Seconds()
	var best *Item
	var bestGain float64
	for _, g := range q.hostList {
		if g == h {
			continue
		}
		for _, r := range g.runs {
			it := r.it
			if len(it.runs) != 1 || !q.canRun(it, h) || q.heldBack(it, h) {
				continue
			}
			rem, mine := r.remaining(now), it.Work/h.speed
			if rem > q.opts.SpecRatio*mine && rem-mine >= minGain && rem-mine > bestGain {
				best, bestGain = it, rem-mine
			}
		}
	}
	if best != nil {
		q.addRun(best, h, now, false)
	}
	return best
}
