package queue

import (
	"math"
	"sort"
)

// walkCap bounds how many items one Next call considers leaving to other
// hosts.
const walkCap = 64

// guessShare bounds the first job of a host whose speed is a guess
// (Options.ShortFirst): at most this share of the predicted rest of the
// batch at the guessed speed. Chosen in bench's BenchmarkColdStart: 0.1,
// 0.15 and 0.25 gave 1.147, 1.137 and 1.050 × the bound on the issue's
// 3 hosts × 12 clips, and 1.236, 1.227 and 1.450 on 20 hosts × 200 files
// (the smallest job always: 1.218 and 1.356).
const guessShare = 0.15

func (r *run) remaining(now float64) float64 {
	if r.queued {
		return r.it.Work / r.speed() // all of it, once a slot frees
	}
	el := now - r.start
	if p := r.progress; p > 0.02 && p < 1 {
		return el * (1 - p) / p
	}
	pred := r.it.Work / r.speed()
	// A job overrunning its prediction is assumed to need ever more time,
	// so that nothing waits forever for a stuck host.
	return max(pred-el, 0.1*pred, 0.5*(el-pred))
}

// avail returns g's slot availability times for this walk (seconds since
// t0, one per slot), building them on first use.
func (q *Queue) avail(g *hostState, now float64) []float64 {
	if g.gen == q.gen {
		return g.scratch
	}
	g.gen = q.gen
	g.scratch = slotTimes(g, now, g.scratch[:0])
	return g.scratch
}

// slotTimes appends to s when each slot of g frees (seconds since t0): the
// predicted ends of its running copies, now for idle slots, and then each
// queued copy (Prefetch) occupying the earliest slot for its full
// predicted time. A host with more running copies than slots (a streaming
// slot still sends back one result while it encodes the next) has its
// slots free at the latest of their ends.
func slotTimes(g *hostState, now float64, s []float64) []float64 {
	return placeSlots(g, now, s, nil)
}

// placeSlots is slotTimes, calling f (if not nil) with each queued copy
// and the end it is given.
func placeSlots(g *hostState, now float64, s []float64, f func(r *run, end float64)) []float64 {
	queued := 0
	for _, r := range g.runs {
		if r.queued {
			queued++
			continue
		}
		s = append(s, now+r.remaining(now))
	}
	if n := g.slotCount(); len(s) > n {
		sort.Float64s(s)
		s = append(s[:0], s[len(s)-n:]...)
	}
	for len(s) < g.slotCount() {
		s = append(s, now)
	}
	if queued == 0 {
		return s
	}
	for _, r := range g.runs {
		if !r.queued {
			continue
		}
		k := 0
		for i := range s {
			if s[i] < s[k] {
				k = i
			}
		}
		s[k] += r.remaining(now)
		if f != nil {
			f(r, s[k])
		}
	}
	return s
}

// horizon is the predicted end of the batch: the fluid bound with running
// work, and the latest predicted end of a running job.
func (q *Queue) horizon(now float64) float64 {
	if q.capacity <= 0 {
		return math.Inf(1)
	}
	work, end := q.pendingWork, now
	var buf [8]float64
	for _, h := range q.hostList {
		queued := false
		for _, r := range h.runs {
			if r != r.it.runs[0] {
				continue // a speculative copy adds no work
			}
			rem := r.remaining(now)
			work += rem * r.speed()
			if r.queued {
				queued = true
			} else {
				end = max(end, now+rem)
			}
		}
		if queued { // queued copies end after the slot they wait for
			for _, t := range slotTimes(h, now, buf[:0]) {
				end = max(end, t)
			}
		}
	}
	return max(end, now+work/q.capacity)
}

// cursor walks one class (or the special list) in serving order.
type cursor struct {
	items []*Item
	i     int
	c     *class // nil for the special list
	holes int
	max   float64 // larger items do not fit the host's window: skipped
}

// peek returns the cursor's next item. ok (nil: any), with lanes, tells
// whether the host may take an item as far as lanes go (cap, window at
// the lane's speed); it is pick's, not the cursor's, so that a cursor
// stays as small as before lanes (pick allocates one per class).
func (k *cursor) peek(ok func(*Item) bool) *Item {
	for k.i < len(k.items) {
		if it := k.items[k.i]; k.c == nil && it.state == pending || k.c != nil && !hole(it) {
			if it.Work <= k.max && (ok == nil || ok(it)) {
				return it
			}
		} else {
			k.holes++
		}
		k.i++
	}
	return nil
}

// pick chooses the item h takes now. wait reports that h should wait: an
// item it may run later is pending or running.
//
// With strict (Prefetch), h starts the item at from, when its slot is
// predicted to free, not now, and other hosts may free before: the rules
// that let a host free now take the largest item (it finishes before the
// predicted end of the batch; the largest that fits) would then hand the
// film a faster host frees up for first to a slow one, and hold it queued
// there. Only the earliest-finish rule applies: h takes an item only if no
// other live host would finish it sooner, counting the items set aside for
// those hosts in the walk; otherwise it gets nothing.
func (q *Queue) pick(h *hostState, now, from float64, strict bool) (it *Item, wait, deferred bool) {
	h.leftItem, h.leftTo = nil, nil
	force := h.force && !strict
	h.force = false
	fallback := h.fallback && !force  // Unstick lifts the fallback's reserve once
	wcap := h.workCap(max(now, from)) // the host's window: larger items do not fit
	lanes := q.laneFn != nil
	var ok func(*Item) bool
	if lanes {
		// The window depends on each item's lane: ok checks it.
		wcap = math.Inf(1)
		at := max(now, from)
		ok = func(it *Item) bool { return q.takes(h, it, at) }
	}
	var curs []cursor
	var live int
	for _, c := range h.classes {
		live += c.live
		if c.pendingN == 0 || (fallback && q.liveRegular(c.hosts, h)) {
			continue
		}
		for c.head < len(c.items) && hole(c.items[c.head]) {
			c.items[c.head].inClass = false
			c.items[c.head] = nil
			c.head++
		}
		curs = append(curs, cursor{items: c.items, i: c.head, c: c, max: wcap})
	}
	var spec []*Item
	if len(q.special) > 0 {
		keep := q.special[:0]
		for _, s := range q.special {
			if s.state == finished || s.state == running {
				continue
			}
			keep = append(keep, s)
			if s.Eligible[h.name] {
				live++
				if q.canRun(s, h) && (!fallback || !q.liveRegular(s.cls.hosts, h) || q.failedOnRegular(s)) {
					spec = append(spec, s)
				}
			}
		}
		clear(q.special[len(keep):])
		q.special = keep
		if len(spec) > 0 {
			sort.Slice(spec, func(i, j int) bool { return q.less(spec[i], spec[j]) })
			curs = append(curs, cursor{items: spec, max: wcap})
		}
	}
	defer func() {
		for _, k := range curs {
			if c := k.c; c != nil && k.holes > 32 && k.holes > (len(c.items)-c.head)/8 {
				compact(c)
			}
		}
	}()
	nextItem := func() *Item {
		var best *Item
		for i := range curs {
			if c := curs[i].peek(ok); c != nil && (best == nil || q.less(c, best)) {
				best = c
			}
		}
		return best
	}
	advance := func(it *Item) {
		for i := range curs {
			if curs[i].peek(ok) == it {
				curs[i].i++
				return
			}
		}
	}
	first := nextItem()
	if first == nil {
		return nil, live > 0 || q.feeding, false
	}
	if q.opts.Policy != Smart || h.speed <= 0 || force {
		return first, true, false
	}
	if q.opts.ShortFirst && h.guess && h.nobs == 0 {
		// Speed unknown: nothing long until a first sample. The largest
		// item h would finish, at its guessed speed, within guessShare of
		// the predicted rest of the batch; else the smallest (for a
		// prefetch, only once every item is queued).
		limit := math.Inf(1)
		if q.capacity > 0 {
			limit = guessShare * q.pendingWork / q.capacity * h.speed
		}
		// With lanes, an item h may not take is passed over (at most
		// walkCap of them per scan, so a capped host stays cheap).
		good := func(k cursor, it *Item, skips *int) bool {
			if k.c == nil && it.state != pending || k.c != nil && hole(it) {
				return false
			}
			if ok != nil && !ok(it) {
				*skips++
				return false
			}
			return true
		}
		var small, fit *Item
		for _, k := range curs {
			skips := 0
			for i := len(k.items) - 1; i >= k.i && skips < walkCap; i-- {
				if it := k.items[i]; good(k, it, &skips) {
					if small == nil || q.less(small, it) {
						small = it
					}
					break
				}
			}
			skips = 0
			for i := k.i; i < len(k.items) && skips < walkCap; i++ {
				if it := k.items[i]; it.Work <= limit && good(k, it, &skips) {
					if fit == nil || q.less(it, fit) {
						fit = it
					}
					break
				}
			}
		}
		if fit != nil {
			return fit, true, false
		}
		if strict && q.feeding {
			// A busy slot does not reserve the smallest of what is
			// queued so far: files are probed largest first, so more,
			// shorter ones may come. It asks again (a prefetch is
			// retried), and once the feed ends it may take the smallest.
			return nil, false, false
		}
		if small != nil {
			return small, true, false
		}
	}

	// Cheap horizon: pending work alone. Most of a big batch stops here.
	tEnd := math.Inf(1)
	if q.capacity > 0 {
		tEnd = now + q.pendingWork/q.capacity
	}
	if strict {
		tEnd = math.Inf(-1)
	} else {
		if now+first.Work/q.rate(first, h) <= tEnd {
			return first, true, false
		}
		tEnd = q.horizon(now)
		var fast float64
		for _, g := range first.cls.hosts {
			if g == h || q.willTake(first, g) {
				fast = max(fast, q.rate(first, g))
			}
		}
		if fast > 0 {
			tEnd = max(tEnd, now+first.Work/fast)
		}
	}

	q.gen++
	for steps := 0; steps < walkCap; steps++ {
		c := nextItem()
		if c == nil {
			break
		}
		fh := max(now, from) + c.Work/q.rate(c, h)
		if fh <= tEnd {
			return c, true, false
		}
		// Earliest finish elsewhere, with what this walk already set aside.
		bestF, bestI := math.Inf(1), -1
		var bestG *hostState
		for _, g := range c.cls.hosts {
			if g == h || !q.willTake(c, g) {
				continue
			}
			sg, free := g.speed, math.Inf(-1)
			if lanes && (g.lanes != nil || g.caps != nil) {
				// Even in its fastest lane from its first free slot g
				// would not beat the best so far: do not ask its lane.
				lo := math.Inf(1)
				for _, a := range q.avail(g, now) {
					lo = min(lo, a)
				}
				if lo+c.Work/g.fastest() >= min(bestF, fh) {
					continue
				}
				// A host at its session cap for c's family starts it only
				// once a session frees.
				l := q.lane(c, g)
				sg, free = g.keySpeed(l.Key), q.famFree(g, l.Family, now)
			}
			for i, a := range q.avail(g, now) {
				if a < free { // not the builtin max: this loop is the walk's hot path
					a = free
				}
				if f := a + c.Work/sg; f < bestF && f <= g.limit {
					bestF, bestI, bestG = f, i, g
				}
			}
		}
		if bestG == nil || fh <= bestF {
			return c, true, false
		}
		bestG.scratch[bestI] = bestF
		if h.leftItem == nil {
			h.leftItem, h.leftTo, h.leftAt = c, bestG, bestF
		}
		advance(c)
	}
	if strict {
		return nil, true, true
	}
	// The largest item h would still finish before the predicted end.
	// With lanes, each item at its lane's speed: the search starts at h's
	// fastest lane and looks at most walkCap items further.
	limit := min((tEnd-now)*h.speed, wcap)
	if lanes {
		limit = (tEnd - now) * h.fastest()
	}
	finishes := func(it *Item) bool {
		return !lanes || now+it.Work/q.rate(it, h) <= tEnd && ok(it)
	}
	var fit *Item
	for _, c := range h.classes {
		if c.pendingN == 0 {
			continue
		}
		i := c.head + sort.Search(len(c.items)-c.head, func(k int) bool { return c.items[c.head+k].Work <= limit })
		for n := 0; i < len(c.items) && n < walkCap; i++ {
			if it := c.items[i]; !hole(it) {
				if finishes(it) {
					if fit == nil || q.less(it, fit) {
						fit = it
					}
					break
				}
				n++
			}
		}
	}
	for _, s := range spec {
		if s.Work <= limit && finishes(s) && (fit == nil || q.less(s, fit)) {
			fit = s
		}
	}
	if fit != nil {
		return fit, true, false
	}
	return nil, true, true
}
