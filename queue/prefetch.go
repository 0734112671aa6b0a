package queue

import (
	"math"
)

// Prefetch returns, without blocking, an item for host to take when its
// earliest slot frees (its running copies ending as predicted): one that no
// other live host would finish sooner (see the package comment). It marks
// it running on host as a queued copy: host holds it (to stage its input
// while its slots are busy) but does not run it yet. Call Begin when the
// copy starts to run, or Release if it never will. Prefetch gives no
// speculative copies. It returns nil when no item qualifies (host then
// takes work with Next once a slot is free), when host is down, and when
// the queue is closed.
func (q *Queue) Prefetch(host string) *Item {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil
	}
	h := q.host(host)
	if h.down {
		return nil
	}
	now := q.clock()
	if q.refreshWindows(now); h.shut {
		return nil
	}
	var buf [8]float64
	from := math.Inf(1)
	for _, t := range slotTimes(h, now, buf[:0]) {
		from = min(from, t)
	}
	it, _, _ := q.pick(h, now, from, true)
	if it == nil {
		return nil
	}
	q.start(it, h, now, true)
	return it
}

// Begin records that host's queued copy of it (from Prefetch) starts to
// run: from now on it occupies a slot, its predicted end counts from now,
// and so does the speed sample Finish takes (the wait is not the host's
// speed). It does nothing for a copy that is not queued.
func (q *Queue) Begin(it *Item, host string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := it.runOn(host)
	if r == nil || !r.queued {
		return
	}
	r.queued, r.start, r.progress = false, q.clock(), 0
	q.sawBusy(r.h, 0)
	q.broadcast()
}

// Release gives back host's copy of it when host gives up on it through no
// fault of the job or of the host's connection to it: typically a queued
// copy that never began because host stopped taking work (another job
// failed there). Unlike HostFailedOn it does not count as a requeue, and
// it does not close the copy's Lost channel (the caller stops the copy
// itself). If no other copy runs, the item is pending again.
func (q *Queue) Release(it *Item, host string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := it.runOn(host)
	if r == nil || it.state != running {
		return
	}
	q.removeRun(r)
	if len(it.runs) == 0 {
		it.state, it.host = pending, ""
		q.runningN--
		q.reinsert(it)
	}
	q.broadcast()
}

// revoke is the other side of a reservation. h asks for work and has
// nothing pending to take: it takes a queued copy (from Prefetch, not begun)
// of another host if it would finish it sooner than that copy is predicted
// to end there (after the copies before it on that host), by at least
// RevokeMinGain and in at most 4/5 of the time. The queued copy is dropped
// (its Lost channel closes: its host stops staging it and removes what it
// staged) and h runs the item. Among several, the largest gain wins.
func (q *Queue) revoke(h *hostState, now float64) *Item {
	if h.speed <= 0 || q.opts.Policy != Smart {
		return nil
	}
	minGain := q.opts.RevokeMinGain.Seconds()
	var best *run
	var bestGain float64
	var buf [8]float64
	for _, g := range q.hostList {
		if g == h {
			continue
		}
		queuedEnds(g, now, buf[:0], func(r *run, end float64) {
			it := r.it
			if len(it.runs) != 1 || !q.canRun(it, h) || q.heldBack(it, h) || !q.fits(h, it, now) || h.capped(q.lane(it, h).Family) {
				return
			}
			left, mine := end-now, it.Work/q.rate(it, h)
			if gain := left - mine; gain >= minGain && mine <= 0.8*left && gain > bestGain {
				best, bestGain = r, gain
			}
		})
	}
	if best == nil {
		return nil
	}
	it := best.it
	q.removeRun(best)
	best.drop()
	q.addRun(it, h, now, false)
	it.host = h.name
	q.broadcast()
	return it
}

// queuedEnds calls f with each queued copy of g and when it is predicted to
// end: as slotTimes places them, each in the earliest free slot after the
// running copies, in the order they were handed out.
func queuedEnds(g *hostState, now float64, s []float64, f func(r *run, end float64)) {
	placeSlots(g, now, s, f)
}
