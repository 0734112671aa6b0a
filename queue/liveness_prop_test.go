package queue

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Liveness, as a property over random clusters on the virtual clock:
// whenever a job is pending and a host that may take it is idle, some host
// starts a job within bounded time. The queue may make an idle host wait
// only for a host that is busy now (it predicts that host will finish the
// job sooner), so the bound is "by the time every job running now has
// ended": a state where nothing runs, work is pending and an idle host may
// take it, and still no host starts a job, is a hang. The simulation also
// checks that every batch ends with every item finished.
//
// The clusters mix what the queue has to reason about: fallback hosts,
// priors far from the truth (a journal's learned speeds, right or wrong),
// guesses (a cold start, short jobs first), one or two slots, prefetching (streaming) hosts, split films (many items
// of one eligibility class), speculation, jobs that fail, hosts over
// max_load (held), hosts leaving and joining, and time windows: hosts that
// work only part of the time (periodic windows on the virtual clock) and a
// run deadline, with jobs stopped when a window closes on them
// (WindowStop, as the manager does). With windows the batch may end with items left:
// then no host may be waiting, and none may take a left item now or in
// its next window.
//
// In half the clusters items belong to profiles with encoder variants
// (lanes): each host runs a profile's items with its own variant, at its
// own true speed per variant, with priors per variant near or far from
// the truth (or none), hardware session caps per host and family, and
// demotions mid-run (a host moves to its next variant: LanesChanged).
// There the check is also made directly: whenever a job is pending and a
// host that may take it (a free slot, not at its cap for the job's family)
// idles, some host starts a job by the time every copy running then has
// ended; and no host ever holds more copies of a family than its cap.
//
// In a third of the clusters the items arrive over time while the queue is
// Feeding, as the manager plans files while the first ones run: no host
// may give up before the feeding ends, nor take a job outside these rules.
//
// CI runs a fixed set of seeds; CLUSTERTX_STRESS=N runs N more, from a
// seed printed on failure (CLUSTERTX_SEED=S replays one).
func TestLivenessRandomClusters(t *testing.T) {
	seeds := []uint64{}
	for s := uint64(1); s <= 400; s++ {
		seeds = append(seeds, s)
	}
	if n, _ := strconv.Atoi(os.Getenv("CLUSTERTX_STRESS")); n > 0 {
		base := uint64(time.Now().UnixNano())
		for i := range n {
			seeds = append(seeds, base+uint64(i))
		}
	}
	if s, err := strconv.ParseUint(os.Getenv("CLUSTERTX_SEED"), 10, 64); err == nil {
		seeds = []uint64{s}
	}
	var events, starts, left, lanes, demotions, atCap int
	for _, seed := range seeds {
		st, err := runLiveness(seed)
		if err != nil {
			t.Fatalf("seed %d (replay: CLUSTERTX_SEED=%d go test ./queue -run TestLivenessRandomClusters): %v", seed, seed, err)
		}
		events += st.events
		starts += st.starts
		left += st.left
		lanes += st.lanes
		demotions += st.demotions
		atCap += st.atCap
	}
	t.Logf("%d random clusters, %d events, %d copies started, %d items left by windows", len(seeds), events, starts, left)
	t.Logf("lanes in %d clusters: %d demotions, %d steps with a host at a session cap", lanes, demotions, atCap)
}

type lvHost struct {
	name      string
	speed     float64 // true speed
	fallback  bool
	prefetch  bool
	down      bool
	held      bool
	retired   bool // its slots' Next returned nil (nothing could come to it)
	slots     []*lvSlot
	everyDown bool
	win       *lvWin // nil: always open
	seenOpen  bool   // seen open at some step: without a deadline, no later window counts
	noWait    bool   // its last TryNext gave nothing and said nothing may come
}

// lvWin is a periodic window: open for the first open seconds of every
// period, shifted by shift (seconds of the virtual clock).
type lvWin struct{ period, open, shift float64 }

// state says whether w is open at s and when that changes.
func (w *lvWin) state(s float64) (bool, float64) {
	ph := math.Mod(s-w.shift, w.period)
	if ph < 0 {
		ph += w.period
	}
	if ph < w.open {
		return true, s + w.open - ph
	}
	return false, s + w.period - ph
}

func (w *lvWin) fn(base time.Time) WindowFunc {
	return func(t time.Time) (bool, time.Time) {
		open, next := w.state(t.Sub(base).Seconds())
		return open, base.Add(time.Duration(next * float64(time.Second)))
	}
}

type lvSlot struct {
	h      *lvHost
	cur    *lvCopy // encoding
	queued *Item   // prefetched, waits for cur to end
}

type lvCopy struct {
	it         *Item
	slot       *lvSlot
	start, end float64
	fail       bool
	family     string // the lane's hardware family when it began
}

type lvEvent struct {
	at    float64
	what  string // "down", "up", "hold", "release", "demote"; "push" (items), "fed"
	h     *lvHost
	items []*Item
}

type lvStats struct{ events, starts, left, lanes, demotions, atCap int }

func runLiveness(seed uint64) (lvStats, error) {
	rng := rand.New(rand.NewPCG(seed, 0x11fe))
	clk := &vclock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	opts := Options{Now: clk.now, Speculate: rng.IntN(2) == 0, SpecMinGain: sec(1 + rng.Float64()*30), ShortFirst: rng.IntN(2) == 0}
	switch rng.IntN(8) {
	case 0:
		opts.Policy = LPT
	case 1:
		opts.Policy = FIFO
	}
	q := NewWithOptions(opts)
	maxAttempts := 1 + rng.IntN(3)
	failP := []float64{0, 0, 0.05, 0.3}[rng.IntN(4)]
	noise := []float64{0, 0.2, 1}[rng.IntN(3)]

	// Hosts.
	var hs []*lvHost
	nh := 1 + rng.IntN(6)
	for i := range nh {
		h := &lvHost{name: fmt.Sprintf("h%d", i), speed: 0.2 * math.Pow(50, rng.Float64())}
		h.fallback = rng.IntN(4) == 0
		h.prefetch = rng.IntN(3) == 0
		for range 1 + rng.IntN(2) {
			h.slots = append(h.slots, &lvSlot{h: h})
		}
		if rng.IntN(2) == 0 {
			q.SetSlots(h.name, len(h.slots))
		}
		q.SetFallback(h.name, h.fallback)
		switch rng.IntN(4) {
		case 3: // nothing known: a guess
			q.SetHostGuess(h.name, 1)
		case 0: // a weight near the truth
			q.SetHostSpeed(h.name, h.speed*(0.75+0.5*rng.Float64()))
		case 1: // a learned speed, possibly far off (another night, other hosts)
			q.SetHostSpeed(h.name, h.speed*math.Pow(100, rng.Float64()-0.5))
		default: // an observation from the journal
			q.ObserveSpeed(h.name, h.speed*math.Pow(10, rng.Float64()-0.5), time.Second)
		}
		hs = append(hs, h)
	}
	// Windows: in a third of the clusters, some hosts work only part of
	// the time, and the run may have a deadline.
	base := clk.t
	deadline := math.Inf(1)
	if rng.IntN(3) == 0 {
		for _, h := range hs {
			if rng.IntN(2) == 0 {
				p := 50 + rng.ExpFloat64()*500
				h.win = &lvWin{period: p, open: p * (0.1 + 0.8*rng.Float64()), shift: rng.Float64() * p}
				q.SetWindow(h.name, h.win.fn(base))
			}
		}
		if rng.IntN(2) == 0 {
			deadline = 30 + rng.ExpFloat64()*1000
			q.SetDeadline(base.Add(sec(deadline)))
		}
	}
	shut := func(h *lvHost, t float64) bool {
		if t >= deadline {
			return true
		}
		if h.win == nil {
			return false
		}
		open, _ := h.win.state(t)
		return !open
	}
	// limit is when h's window closes as seen at t.
	limit := func(h *lvHost, t float64) float64 {
		if h.win == nil {
			return deadline
		}
		_, next := h.win.state(t)
		return min(next, deadline)
	}
	// Items: files and split films (items sharing one eligibility map).
	var items []*Item
	classes := []map[string]bool{}
	for range 1 + rng.IntN(4) {
		el := map[string]bool{}
		for _, h := range hs {
			if rng.IntN(3) > 0 {
				el[h.name] = true
			}
		}
		if len(el) == 0 {
			el[hs[rng.IntN(len(hs))].name] = true
		}
		classes = append(classes, el)
	}
	id := 0
	for range rng.IntN(25) {
		items = append(items, &Item{ID: id, Work: 1 + rng.ExpFloat64()*100, Eligible: classes[rng.IntN(len(classes))]})
		id++
	}
	for range rng.IntN(3) { // films
		el := classes[rng.IntN(len(classes))]
		seg := 20 + rng.Float64()*200
		for range 2 + rng.IntN(8) {
			items = append(items, &Item{ID: id, Work: seg * (0.9 + 0.2*rng.Float64()), Eligible: el})
			id++
		}
	}
	actual := map[*Item]float64{}
	for _, it := range items {
		actual[it] = it.Work * math.Exp(noise*rng.NormFloat64())
	}
	// Hosts leaving, joining, going over max_load; all of it over by tEnd,
	// after which every host is up and takes work.
	var ext []lvEvent
	tEnd := 0.0
	for _, h := range hs {
		if rng.IntN(4) == 0 {
			h.down, h.everyDown = true, true
			q.SetDown(h.name, true)
		}
		if rng.IntN(4) == 0 {
			h.held = true
			q.SetHeld(h.name, true)
		}
		t := 0.0
		for range rng.IntN(4) {
			t += rng.ExpFloat64() * 200
			ext = append(ext, lvEvent{at: t, what: []string{"down", "up", "hold", "release"}[rng.IntN(4)], h: h})
		}
		t += rng.ExpFloat64() * 100
		ext = append(ext, lvEvent{at: t, what: "up", h: h}, lvEvent{at: t, what: "release", h: h})
		tEnd = max(tEnd, t)
	}
	lv := newLvLanes(seed, q, hs, items)
	ext = append(ext, lv.demotions...)
	// Feeding: in a third of the clusters the items arrive while the
	// first ones run (the manager plans files as their probes end), some
	// or none at the start, the rest one by one; then the feeding ends.
	first := items
	fed := true
	if rng.IntN(3) == 0 {
		q.Feeding(true)
		fed = false
		first = nil
		var last float64
		for _, it := range items {
			if rng.IntN(3) == 0 {
				first = append(first, it)
				continue
			}
			at := rng.ExpFloat64() * 60
			last = max(last, at)
			ext = append(ext, lvEvent{at: at, what: "push", items: []*Item{it}})
		}
		ext = append(ext, lvEvent{at: last + rng.ExpFloat64()*20, what: "fed"})
	}
	sort.SliceStable(ext, func(i, j int) bool { return ext[i].at < ext[j].at })
	q.Push(first...)

	var st lvStats
	if lv.on {
		st.lanes = 1
	}
	var running []*lvCopy
	now := 0.0
	setNow := func(t float64) {
		now = t
		clk.t = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(t * float64(time.Second)))
	}
	begin := func(s *lvSlot, it *Item) {
		l := lv.lane(it, s.h.name)
		d := actual[it] / (s.h.speed * lv.factor(s.h.name, l.Key))
		c := &lvCopy{it: it, slot: s, start: now, end: now + d, fail: rng.Float64() < failP, family: l.Family}
		s.cur = c
		running = append(running, c)
		st.starts++
	}
	removeCopy := func(c *lvCopy) {
		for i, x := range running {
			if x == c {
				running = append(running[:i], running[i+1:]...)
				break
			}
		}
		c.slot.cur = nil
	}
	lost := func(it *Item, host string) bool {
		select {
		case <-q.Lost(it, host):
			return true
		default:
			return false
		}
	}
	// hostLeaves: its copies go back to the queue (HostFailedOn), as the
	// manager does when a host fails mid-run.
	hostLeaves := func(h *lvHost) {
		for _, s := range h.slots {
			if s.queued != nil {
				q.HostFailedOn(s.queued, h.name)
				s.queued = nil
			}
			if s.cur != nil {
				q.HostFailedOn(s.cur.it, h.name)
				removeCopy(s.cur)
			}
		}
	}
	var violation string
	// ask lets every free slot ask until nothing changes.
	ask := func() {
		for changed := true; changed; {
			changed = false
			for _, h := range hs {
				if h.down {
					continue
				}
				for _, s := range h.slots {
					if s.queued != nil && lost(s.queued, h.name) { // another host took the reservation
						s.queued = nil
					}
					if s.cur == nil && s.queued != nil { // a prefetched copy starts when the encoder frees
						it := s.queued
						s.queued = nil
						if !lost(it, h.name) {
							q.Begin(it, h.name)
							begin(s, it)
							changed = true
							continue
						}
					}
					if s.cur == nil && !h.held && !h.retired {
						it, wait := q.TryNext(h.name)
						h.noWait = it == nil && !wait
						if it != nil && shut(h, now) && violation == "" {
							violation = fmt.Sprintf("%s took item %d at %.1f outside its window", h.name, it.ID, now)
						}
						if it != nil {
							begin(s, it)
							changed = true
						} else if !wait && (!fed || !q.HasWorkFor(h.name)) {
							// While feeding, a host told that nothing may
							// come stops for good, as the manager's workers
							// do: it must never be told so then.
							h.retired = true
						}
					}
					if s.cur != nil && s.queued == nil && h.prefetch && !h.held {
						if it := q.Prefetch(h.name); it != nil {
							s.queued = it
							changed = true
						}
					}
				}
			}
		}
	}
	// mayTake is the oracle, written from the package's rules rather than
	// from the queue's code: h may take it now.
	var mayFit func(it *Item, g *lvHost) bool
	mayTake := func(it *Item, h *lvHost) bool {
		if h.down || h.held || !it.Eligible[h.name] || shut(h, now) {
			return false
		}
		if it.Work/lv.speed(it, h.name) > limit(h, now)-now {
			return false // does not fit what is left of its window
		}
		if lv.capped(it, h) {
			return false // no session free for its family
		}
		if it.FailedOn[h.name] {
			for _, g := range hs {
				if g != h && it.Eligible[g.name] && !g.down && !it.FailedOn[g.name] && mayFit(it, g) {
					return false
				}
			}
		}
		if !h.fallback {
			return true
		}
		for n := range it.FailedOn {
			for _, g := range hs {
				if g.name == n && !g.fallback {
					return true
				}
			}
		}
		for _, g := range hs {
			if g != h && !g.fallback && !g.down && !g.held && !shut(g, now) && it.Eligible[g.name] {
				return false
			}
		}
		return true
	}
	// mayFit: g may take it in what is left of its window or in its next.
	mayFit = func(it *Item, g *lvHost) bool {
		if g.win == nil && math.IsInf(deadline, 1) {
			return true
		}
		sp := lv.speed(it, g.name)
		if !shut(g, now) && it.Work/sp <= limit(g, now)-now {
			return true
		}
		if g.win == nil || math.IsInf(deadline, 1) && g.seenOpen {
			return false
		}
		open, t := g.win.state(now)
		if open {
			_, t = g.win.state(limit(g, now) + 1e-3)
		}
		if t >= deadline {
			return false
		}
		return it.Work/sp <= min(t+g.win.open, deadline)-t
	}
	// windowChange is the next time a host's window opens or closes, or
	// the deadline, before the deadline (+Inf: none).
	windowChange := func() float64 {
		t := math.Inf(1)
		if deadline > now {
			t = deadline
		}
		for _, h := range hs {
			if h.win != nil {
				if _, next := h.win.state(now); next < deadline {
					t = min(t, next)
				}
			}
		}
		return t
	}
	dump := func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "t=%.1f policy=%d speculate=%v deadline=%.1f\n", now, opts.Policy, opts.Speculate, deadline)
		for _, h := range hs {
			fmt.Fprintf(&b, "  %s speed=%.2f est=%.2f slots=%d fallback=%v prefetch=%v down=%v held=%v retired=%v win=%v shut=%v noWait=%v\n",
				h.name, h.speed, q.HostSpeed(h.name), len(h.slots), h.fallback, h.prefetch, h.down, h.held, h.retired, h.win, shut(h, now), h.noWait)
		}
		if lv.on {
			b.WriteString(lv.String())
		}
		for _, h := range hs {
			it, wait := q.TryNext(h.name)
			fmt.Fprintf(&b, "  TryNext(%s) = %v, %v; shut %v limit %.1f reopen %.1f\n", h.name, it, wait, q.hosts[h.name].shut, q.hosts[h.name].limit, q.hosts[h.name].win.reopen)
		}
		for _, it := range q.Pending() {
			fmt.Fprintf(&b, "  item %d work=%.1f eligible=%v failedOn=%v state=%d profile=%v", it.ID, it.Work, it.Eligible, it.FailedOn, it.state, it.Payload)
			for _, r := range it.runs {
				fmt.Fprintf(&b, " run(%s queued=%v start=%.1f lane=%s/%s)", r.h.name, r.queued, r.start, r.key(), r.family())
			}
			b.WriteString("\n")
		}
		return b.String()
	}

	watchUntil, watchStarts := math.NaN(), 0
	ei := 0
	for step := 0; ; step++ {
		if step > 200000 {
			return st, fmt.Errorf("no end after %d events\n%s", step, dump())
		}
		for _, h := range hs {
			if h.win != nil && !shut(h, now) {
				h.seenOpen = true
			}
		}
		ask()
		if violation != "" {
			return st, fmt.Errorf("%s\n%s", violation, dump())
		}
		if lv.on {
			full, err := lv.checkCaps()
			if err != nil {
				return st, fmt.Errorf("%v\n%s", err, dump())
			}
			if full {
				st.atCap++
			}
			// Bounded wait: an idle host that may take a pending job
			// waits at most until every copy running now has ended.
			idle := ""
			for _, it := range q.Pending() {
				for _, h := range hs {
					if it.state == pending && h.freeSlot() && mayTake(it, h) {
						idle = fmt.Sprintf("item %d is pending and %s, idle, may take it", it.ID, h.name)
						break
					}
				}
				if idle != "" {
					break
				}
			}
			switch {
			case idle == "" || st.starts > watchStarts:
				watchUntil, watchStarts = math.NaN(), st.starts
			case math.IsNaN(watchUntil):
				watchUntil = now
				for _, c := range running {
					watchUntil = max(watchUntil, c.end)
				}
			case now > watchUntil:
				return st, fmt.Errorf("%s since before %.1f, when every copy then running had ended, and no host started a job\n%s", idle, watchUntil, dump())
			}
		}
		pendingN, runningN := q.Counts()
		if pendingN == 0 && runningN == 0 && fed {
			break
		}
		if len(running) == 0 {
			// Nothing runs: the queue cannot be waiting for a busy host.
			for _, it := range q.Pending() {
				if it.state != pending {
					continue
				}
				for _, h := range hs {
					if mayTake(it, h) {
						return st, fmt.Errorf("hang: nothing runs, item %d is pending and %s may take it, but no host starts a job\n%s", it.ID, h.name, dump())
					}
				}
			}
		}
		if len(running) == 0 && ei >= len(ext) && allNoWait(hs) && (anyWindow(hs) || !math.IsInf(deadline, 1)) {
			// Windows left items: no host waits for anything, and
			// (checked above) none may take an item now.
			for _, it := range q.Pending() {
				for _, g := range hs {
					if it.Eligible[g.name] && !g.fallback && len(it.FailedOn) == 0 && mayFit(it, g) {
						return st, fmt.Errorf("every host gave up, but item %d fits what is left of %s's window or its next\n%s", it.ID, g.name, dump())
					}
				}
			}
			st.left += pendingN
			break
		}
		// Next event: a copy ends, or a host changes.
		next := math.Inf(1)
		var end *lvCopy
		for _, c := range running {
			if c.end < next {
				next, end = c.end, c
			}
		}
		if wc := windowChange(); wc <= next && (ei >= len(ext) || wc < ext[ei].at) {
			// A window opens or closes: what runs on a host whose window
			// closed is stopped and given back (grace 0).
			setNow(wc + 1e-6)
			st.events++
			for _, h := range hs {
				if !shut(h, now) {
					continue
				}
				for _, s := range h.slots {
					if s.queued != nil {
						q.WindowStop(s.queued, h.name)
						s.queued = nil
					}
					if c := s.cur; c != nil {
						if c.end > c.start {
							q.Progress(c.it, h.name, (now-c.start)/(c.end-c.start))
						}
						q.WindowStop(c.it, h.name)
						removeCopy(c)
					}
				}
			}
			continue
		}
		if ei < len(ext) && ext[ei].at <= next {
			e := ext[ei]
			ei++
			setNow(max(now, e.at))
			st.events++
			h := e.h
			switch e.what {
			case "down":
				if !h.down {
					hostLeaves(h)
					h.down = true
					q.SetDown(h.name, true)
				}
			case "up":
				if h.down {
					h.down, h.retired = false, false
					q.SetDown(h.name, false)
				}
			case "hold":
				h.held = true
				q.SetHeld(h.name, true)
			case "release":
				h.held = false
				q.SetHeld(h.name, false)
			case "demote":
				lv.demote(h.name)
				st.demotions++
			case "push":
				q.Push(e.items...)
			case "fed":
				q.Feeding(false)
				fed = true
			}
			continue
		}
		if end == nil {
			if ei >= len(ext) {
				return st, fmt.Errorf("stuck after every host came up: %d pending, %d running in the queue, nothing running\n%s", pendingN, runningN, dump())
			}
			continue
		}
		setNow(end.end)
		st.events++
		removeCopy(end)
		it, host := end.it, end.slot.h.name
		// Progress of the copies still running, as ffmpeg would report it.
		for _, c := range running {
			if c.end > c.start {
				q.Progress(c.it, c.slot.h.name, (now-c.start)/(c.end-c.start))
			}
		}
		switch {
		case lost(it, host):
			// Another copy won, or the copy was given up: nothing to do.
		case end.fail:
			q.JobFailed(it, host, maxAttempts)
		default:
			q.Finish(it, host)
		}
		// Lost queued copies (revoked reservations) are dropped by their slot.
		for _, h := range hs {
			for _, s := range h.slots {
				if s.queued != nil && lost(s.queued, h.name) {
					s.queued = nil
				}
			}
		}
		// Copies that lost stop.
		for _, c := range append([]*lvCopy(nil), running...) {
			if lost(c.it, c.slot.h.name) {
				removeCopy(c)
			}
		}
	}
	return st, nil
}

func allNoWait(hs []*lvHost) bool {
	for _, h := range hs {
		if !h.noWait && !h.retired && !h.down {
			return false
		}
	}
	return true
}

func anyWindow(hs []*lvHost) bool {
	for _, h := range hs {
		if h.win != nil {
			return true
		}
	}
	return false
}

func (h *lvHost) freeSlot() bool {
	for _, s := range h.slots {
		if s.cur == nil && s.queued == nil {
			return true
		}
	}
	return false
}

// lvLanes is a cluster's encoder variants: profiles, each host's variant
// list per profile (the first that works there), how far each host has
// been demoted, its true speed factor per variant, and its session caps.
type lvLanes struct {
	on        bool
	q         *Queue
	hs        []*lvHost
	variants  map[string]map[string][]Lane // host → profile → variants
	level     map[string]int               // host → demotions so far
	speedF    map[string]map[string]float64
	caps      map[string]map[string]int // host → family → cap
	demotions []lvEvent
}

var lvVariants = []Lane{
	{Key: "hevc_nvenc", Family: "nvenc"},
	{Key: "hevc_qsv", Family: "qsv"},
	{Key: "hevc_vaapi", Family: "vaapi"},
	{Key: "libx265"},
	{}, // the host's default
}

// newLvLanes draws lanes for half the clusters, from its own generator so
// that the clusters without lanes stay those of the seeds before lanes.
func newLvLanes(seed uint64, q *Queue, hs []*lvHost, items []*Item) *lvLanes {
	lv := &lvLanes{q: q, hs: hs}
	rng := rand.New(rand.NewPCG(seed, 0x1a4e))
	if rng.IntN(2) == 0 {
		return lv
	}
	lv.on = true
	lv.variants, lv.level = map[string]map[string][]Lane{}, map[string]int{}
	lv.speedF, lv.caps = map[string]map[string]float64{}, map[string]map[string]int{}
	profiles := []string{"p0", "p1", "p2"}[:1+rng.IntN(3)]
	for _, it := range items {
		it.Payload = profiles[rng.IntN(len(profiles))]
	}
	for _, h := range hs {
		lv.variants[h.name] = map[string][]Lane{}
		lv.speedF[h.name] = map[string]float64{}
		lv.caps[h.name] = map[string]int{}
		for _, p := range profiles {
			var list []Lane
			for _, l := range lvVariants {
				if rng.IntN(2) == 0 {
					list = append(list, l)
				}
			}
			lv.variants[h.name][p] = append(list, Lane{}) // the default always works
		}
		for _, l := range lvVariants {
			if l.Key == "" {
				continue
			}
			f := math.Pow(20, rng.Float64()*1.3-0.3) // 0.4× to 20× the default
			lv.speedF[h.name][l.Key] = f
			switch rng.IntN(3) {
			case 0: // a prior near the truth (the journal)
				q.SetLaneSpeed(h.name, l.Key, h.speed*f*(0.75+0.5*rng.Float64()))
			case 1: // a prior far off
				q.SetLaneSpeed(h.name, l.Key, h.speed*f*math.Pow(100, rng.Float64()-0.5))
			}
			if l.Family != "" && rng.IntN(2) == 0 {
				n := 1 + rng.IntN(len(h.slots))
				lv.caps[h.name][l.Family] = n
				q.SetSessionCap(h.name, l.Family, n)
			}
		}
		t := 0.0
		for range rng.IntN(3) {
			t += rng.ExpFloat64() * 300
			lv.demotions = append(lv.demotions, lvEvent{at: t, what: "demote", h: h})
		}
	}
	q.SetLanes(lv.lane)
	return lv
}

// lane is the lanes function given to the queue.
func (lv *lvLanes) lane(it *Item, host string) Lane {
	if !lv.on {
		return Lane{}
	}
	list := lv.variants[host][it.Payload.(string)]
	return list[min(lv.level[host], len(list)-1)]
}

func (lv *lvLanes) demote(host string) {
	lv.level[host]++
	lv.q.LanesChanged(host)
}

// factor is host's true speed with variant key over its default speed.
func (lv *lvLanes) factor(host, key string) float64 {
	if f, ok := lv.speedF[host][key]; ok {
		return f
	}
	return 1
}

// speed is the queue's speed estimate for it on host.
func (lv *lvLanes) speed(it *Item, host string) float64 {
	return lv.q.LaneSpeed(host, lv.lane(it, host).Key)
}

// holds returns how many copies on h have a lane of family fam: running
// ones with the family they began with, queued ones with their lane now.
func (lv *lvLanes) holds(h *lvHost, fam string) int {
	n := 0
	for _, s := range h.slots {
		if s.cur != nil && s.cur.family == fam {
			n++
		}
		if s.queued != nil && lv.lane(s.queued, h.name).Family == fam {
			n++
		}
	}
	return n
}

// capped reports whether h is at its cap for it's family there.
func (lv *lvLanes) capped(it *Item, h *lvHost) bool {
	if !lv.on {
		return false
	}
	fam := lv.lane(it, h.name).Family
	n := lv.caps[h.name][fam]
	return fam != "" && n > 0 && lv.holds(h, fam) >= n
}

// checkCaps reports a host holding more copies of a family than its cap,
// and whether a host is at a cap.
func (lv *lvLanes) checkCaps() (full bool, err error) {
	for _, h := range lv.hs {
		for fam, n := range lv.caps[h.name] {
			got := lv.holds(h, fam)
			if got > n {
				return full, fmt.Errorf("%s holds %d copies of family %s, cap %d", h.name, got, fam, n)
			}
			full = full || got == n
		}
	}
	return full, nil
}

func (lv *lvLanes) String() string {
	var b strings.Builder
	for _, h := range lv.hs {
		fmt.Fprintf(&b, "  lanes %s: level %d caps %v factors %v variants %v\n", h.name, lv.level[h.name], lv.caps[h.name], lv.speedF[h.name], lv.variants[h.name])
	}
	return b.String()
}
