package queue

import (
	"math"
	"time"
)

// # Windows
//
// A host may have a window (SetWindow: when it takes jobs, e.g. 01:00 to
// 07:00 local time) and the run a deadline (SetDeadline: --until). Both
// close the host's window: its limit is the earlier of the two.
//
//   - A host outside its window (shut) takes nothing: Next blocks while a
//     job runs elsewhere (it may come back), or while its window will open
//     again and an item it may run fits that next window — before the
//     deadline, or, without one, only if the host has not been open yet in
//     this run (a run started at 23:00 waits for the 01:00-07:00 host; at
//     07:00 the host leaves, and what is left waits for the next run);
//     otherwise Next returns nil.
//   - Inside its window a host takes only items predicted to end before
//     its limit: started when its slot frees, at its speed.
//   - In the last quarter of its window (of the part this run sees), a host
//     takes the shortest item that fits rather than the largest: a short
//     job risks less on a prediction and leaves fewer files half done.
//   - Other hosts never leave an item to a host that is shut or would not
//     finish it before its limit (willTake), a fallback does not stay back
//     for a shut host, and Unstick never forces one. So windows keep the
//     liveness argument of the package comment: a host waits only for a
//     host that would take the item.
//
// Windows are evaluated on the queue's clock (Options.Now), so tests run
// nights on a virtual clock.

// WindowFunc tells whether a host's window is open at t and when that
// changes: if open, when it closes (the zero time: never); if not, when it
// next opens (the zero time: never).
type WindowFunc func(t time.Time) (open bool, next time.Time)

// edge is how far past a window's edge it is evaluated to tell which side
// of it a time is on, whatever the rounding of the clock.
const edge = time.Millisecond

// nearEnd is the share of a window, at its end, in which a host prefers
// short jobs.
const nearEnd = 0.25

// hostWin is one host's window state, refreshed at every pick.
type hostWin struct {
	fn     WindowFunc // nil: always open
	opened float64    // when the host was last seen to open (seconds since t0)
	seen   bool       // it has been seen open in this run
	reopen float64    // shut: when it opens next; open: when it opens after limit (+Inf: not before the deadline)
}

// winState is the queue's window state.
type winState struct {
	on       bool    // any window or deadline set: refreshes are needed
	deadline float64 // seconds since t0; +Inf: none
	at       float64 // clock of the last refresh
}

// SetWindow gives host a window (nil: always open).
func (q *Queue) SetWindow(host string, fn WindowFunc) {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.host(host)
	h.win.fn = fn
	q.win.on = true
	q.refreshWindows(q.clock())
	q.broadcast()
}

// SetDeadline sets the run's end (--until; the zero time: none): every
// host's window closes then.
func (q *Queue) SetDeadline(t time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.win.deadline = math.Inf(1)
	if !t.IsZero() {
		q.win.deadline = t.Sub(q.t0).Seconds()
	}
	q.win.on = true
	q.refreshWindows(q.clock())
	q.broadcast()
}

// Shut reports whether host is outside its window now (or the run is past
// its deadline).
func (q *Queue) Shut(host string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refreshWindows(q.clock())
	return q.host(host).shut
}

// CloseAt returns when host's window (or the run) closes next, as seen
// now: the zero time when it never does.
func (q *Queue) CloseAt(host string) time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.refreshWindows(q.clock())
	return q.absTime(q.host(host).limit)
}

func (q *Queue) absTime(s float64) time.Time {
	if math.IsInf(s, 0) {
		return time.Time{}
	}
	return q.t0.Add(time.Duration(s * float64(time.Second)))
}

func (q *Queue) relTime(t time.Time) float64 {
	if t.IsZero() {
		return math.Inf(1)
	}
	return t.Sub(q.t0).Seconds()
}

// refreshWindows brings every host's shut and limit up to now.
func (q *Queue) refreshWindows(now float64) {
	if !q.win.on {
		return
	}
	q.win.at = now
	dl := q.win.deadline
	changed := false
	for _, h := range q.hostList {
		shut, limit, reopen := false, dl, math.Inf(1)
		if now >= dl {
			shut = true
		} else if h.win.fn != nil {
			open, next := h.win.fn(q.absTime(now))
			if open {
				limit = min(dl, q.relTime(next))
				if limit < dl {
					// Just past the close: the clock's rounding must not
					// find the window still open at its end.
					if open, again := h.win.fn(q.absTime(limit).Add(edge)); open {
						reopen = limit
					} else if !again.IsZero() && q.relTime(again) < dl {
						reopen = q.relTime(again)
					}
				}
			} else {
				shut = true
				if t := q.relTime(next); t < dl {
					reopen = t
				}
			}
		}
		if !shut && h.shut {
			h.win.opened = now
		}
		if !shut && h.win.fn != nil {
			h.win.seen = true
		}
		if shut != h.shut {
			changed = true
		}
		h.shut, h.limit, h.win.reopen = shut, limit, reopen
	}
	if changed {
		q.updateSpeeds()
	}
}

// workCap is the most work h may start at from and still end by its limit.
func (h *hostState) workCap(from float64) float64 {
	if math.IsInf(h.limit, 1) {
		return math.Inf(1)
	}
	if h.speed <= 0 {
		return 0
	}
	return (h.limit - from) * h.speed
}

// fits reports whether h, started at from, is predicted to finish it
// before its window closes (at the speed of it's lane there).
func (q *Queue) fits(h *hostState, it *Item, from float64) bool {
	if math.IsInf(h.limit, 1) {
		return true
	}
	if q.laneFn == nil {
		return it.Work <= h.workCap(from)
	}
	return it.Work <= (h.limit-from)*q.rate(it, h)
}

// shutWait is Next's wait for a host that is shut or has nothing that
// fits: whether something may still come to it in this run. It may while a
// job runs anywhere (it may come back, speeds change), while the queue is
// Feeding, or when its window
// opens again before the deadline and an item it may run fits that next
// window. Otherwise Next returns nil: a run with no --until does not wait
// a day for a window, nor for ever for one nothing fits.
func (q *Queue) shutWait(h *hostState) bool {
	return q.runningN > 0 || q.feeding || q.shortest(h, q.nextSpan(h)) != nil
}

// mayFit reports whether g may still take it in this run as far as
// windows go: it fits what is left of g's window now, or g's next window.
// A host it fits in no window does not hold back the hosts it failed on
// (canRun).
func (q *Queue) mayFit(g *hostState, it *Item) bool {
	if !q.win.on {
		return true
	}
	if !g.shut && q.fits(g, it, q.win.at) {
		return true
	}
	return it.Work <= q.nextSpan(g)*q.rate(it, g)
}

// nextSpan is how long h's next window in this run is, in seconds (0:
// none before the deadline; without a deadline, none once h has been open).
func (q *Queue) nextSpan(h *hostState) float64 {
	r := h.win.reopen
	if math.IsInf(r, 1) || h.win.fn == nil || math.IsInf(q.win.deadline, 1) && h.win.seen {
		return 0
	}
	end := r // evaluated just past the opening, for the clock's rounding
	if open, next := h.win.fn(q.absTime(r).Add(edge)); open {
		end = min(q.win.deadline, q.relTime(next))
	}
	return end - r
}

// nearEnd reports whether h is in the last quarter of its window.
func (q *Queue) nearEnd(h *hostState, now float64) bool {
	if math.IsInf(h.limit, 1) || h.shut {
		return false
	}
	span := h.limit - h.win.opened
	return span > 0 && h.limit-now < nearEnd*span
}

// shortest returns the smallest pending item h may take that it would
// finish within span seconds, or nil. With lanes, an item whose family is
// at its cap on h is not one h may take, and the smallest that fits may
// not be the class's smallest: the class is scanned from its end.
func (q *Queue) shortest(h *hostState, span float64) *Item {
	var best *Item
	lanes := q.laneFn != nil
	fits := func(it *Item) bool {
		if !lanes {
			return it.Work <= span*h.speed
		}
		l := q.lane(it, h)
		return !h.capped(l.Family) && it.Work <= span*h.keySpeed(l.Key)
	}
	better := func(it *Item) bool {
		return fits(it) && (best == nil || it.Work < best.Work || it.Work == best.Work && it.seq < best.seq)
	}
	for _, c := range h.classes {
		if c.pendingN == 0 || h.fallback && q.liveRegular(c.hosts, h) {
			continue
		}
		for i := len(c.items) - 1; i >= c.head; i-- {
			it := c.items[i]
			if it == nil || hole(it) {
				continue
			}
			if q.opts.Policy == FIFO {
				if better(it) {
					best = it
				}
				continue
			}
			// Largest first: the last that fits is the class's smallest.
			if best != nil && it.Work > best.Work {
				break
			}
			if fits(it) {
				if better(it) {
					best = it
				}
				break
			}
			if !lanes {
				break // the smallest does not fit: nothing does
			}
		}
	}
	for _, s := range q.special {
		if s.state == pending && q.canRun(s, h) && (!h.fallback || !q.liveRegular(s.cls.hosts, h) || q.failedOnRegular(s)) && better(s) {
			best = s
		}
	}
	return best
}

// WindowStop gives back host's copy of it, stopped because host's window
// (or the run) closed on it: as Release, the item is pending again if no
// other copy runs, and no requeue is counted. The copy's progress so far
// (Progress) is a speed sample, or, without one, the work over the time it
// ran, a bound the speed is known to be under when the copy ran past its
// predicted end: a host whose speed was overestimated does not start again
// jobs it cannot finish in its window.
func (q *Queue) WindowStop(it *Item, host string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := it.runOn(host)
	if r == nil || it.state != running {
		return
	}
	if !r.queued {
		el := q.clock() - r.start
		switch {
		case el <= 0:
		case r.progress > 0.02 && r.progress < 1:
			q.observeKey(r.h, r.key(), r.progress*it.Work/el)
		case el >= it.Work/r.speed():
			q.observeKey(r.h, r.key(), it.Work/el)
		}
	}
	q.removeRun(r)
	if len(it.runs) == 0 {
		it.state, it.host = pending, ""
		q.runningN--
		q.reinsert(it)
	}
	q.broadcast()
}
