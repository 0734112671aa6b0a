// Package queue is the shared work queue the host slots pull from. It owns
// ordering, eligibility (which hosts may take which job), the host speed
// model, requeueing after a host failure, retry bookkeeping after a job
// failure, tail speculation, and knowing when a slot has nothing left to
// wait for. It is pure: no I/O, no knowledge of ffmpeg or SSH; items carry
// an opaque payload, and time comes from a clock that tests and the
// scheduler simulation replace with a virtual one.
//
// # Speeds
//
// Item.Work is the estimated cost of a job (e.g. media seconds × pixels,
// scaled per profile). A host's speed is in work units per wall second for
// one job on one slot. SetHostSpeed gives the prior (the host's `weight`,
// default 1), which is relative: until a host has finished a job its speed
// is weight × (observed ÷ weight, summed over the hosts already observed),
// so priors and observations can be compared. Once observed, a host's speed
// is an EWMA of its samples. Done and Finish record a sample themselves
// (Work ÷ time since the item was handed out, or since Begin for a copy
// from Prefetch, on the queue's clock); call
// ObserveSpeed only for samples the queue did not see, e.g. a speed
// remembered from a previous run (ObserveSpeed(h, speed, time.Second)).
//
// # Scheduling rule (Policy Smart, the default)
//
// When a slot of host h asks, the items h may run are walked largest Work
// first. h takes the item if it would finish it before the predicted end of
// the batch (the later of: the fluid bound now + remaining work ÷ cluster
// speed, the latest predicted end of a running job, and the largest item on
// the fastest host that may run it) — taking it then cannot make the batch
// later. Otherwise h takes it only if no other live eligible host would
// finish it sooner, counting that host's busy time and the items already
// set aside for it in this walk (earliest-finish-time list scheduling); if
// another would, the item is left for that host and the walk goes on to the
// next (at most 64 items). If the walk gives h nothing, h takes the largest
// item it would still finish before the predicted end, and otherwise waits:
// every item it left is predicted to end sooner elsewhere. Ties go to the
// asking host, a host that is the only one eligible always takes the item,
// and a job overrunning its prediction is assumed to need ever more time, so
// nothing waits forever for a stuck host.
//
// # Speculation
//
// When a host has no pending item it may run, Speculate (or Next, with
// Options.Speculate) may give it a second copy of an item running on a
// slower host, when its remaining time there is predicted to exceed
// SpecRatio × the asking host's full time by at least SpecMinGain. An item
// has at most two copies running. Callers that may run copies use Finish
// (the first copy to finish wins; the other must discard its output), Lost
// (closed when a copy is no longer needed, so the manager can stop it and
// clean up), and HostFailedOn. A copy that fails leaves the other running;
// the item fails or is requeued only when no copy remains.
//
// # Prefetch
//
// A host that stages a job's input before running it (a streaming host
// uploads the file) can ask, while its slots are busy, for the item it will
// take next. Prefetch answers at once, for the time the host's earliest
// slot is predicted to free, and marks the item running there as a queued
// copy. As other hosts may free first, only the earliest-finish rule
// applies: the host gets the first item, in the walk above, that no other
// live host would finish sooner (counting their busy time and the items
// set aside for them), and otherwise nothing; never an item merely because
// it would end before the predicted end of the batch (a slow host would
// then hold the film a fast host frees up for first), and never a
// speculative copy. In predictions a queued copy occupies its host's
// earliest slot after the running copies, for its full predicted time, so
// other hosts see that work as taken and when it will end. Begin tells the
// queue the copy starts to run (its predicted end and its speed sample
// count from then, not from Prefetch); Release gives it back unstarted
// without counting a requeue. Otherwise a queued copy is a copy like any
// other: Lost, Finish, HostFailedOn and JobFailed work on it unchanged, it
// may be speculated (its remaining time is its full prediction), and when
// its host fails it goes back to the queue.
package queue

import (
	"context"
	"hash/maphash"
	"math"
	"reflect"
	"sort"
	"sync"
	"time"
)

// Item is one unit of work.
type Item struct {
	ID       int
	Work     float64         // estimated cost (e.g. duration × pixels); larger goes first
	Eligible map[string]bool // hosts that may run it
	Payload  any

	Attempts int             // job failures so far (host failures do not count)
	FailedOn map[string]bool // hosts where it failed as a job (not tried there again while others remain); nil until the first failure
	Requeues int             // host failures so far

	state   state
	host    string // host of the first running copy
	seq     int64  // push order
	cls     *class
	special bool // has failed somewhere: served from the special list, not its class
	inClass bool // has an entry at or after its class's head
	runs    []*run
}

type state int

const (
	pending state = iota
	running
	finished
)

// Policy chooses how Next picks among the items a host may run.
type Policy int

const (
	// Smart is speed-aware largest-work-first: see the package comment.
	Smart Policy = iota
	// LPT hands out the largest item the host may run, ignoring speeds.
	LPT
	// FIFO hands out items in push order, ignoring work and speeds
	// (pytranscoder's behaviour; for comparison).
	FIFO
)

// Options tune a queue. The zero value is the default.
type Options struct {
	Policy Policy
	// Now is the clock (nil: time.Now). Tests and the simulator use a
	// virtual clock; every decision depends on it only through Now.
	Now func() time.Time
	// Speculate lets Next hand out a second copy of a running item when the
	// asking host has nothing pending it may take (see Speculate).
	Speculate bool
	// SpecRatio and SpecMinGain bound speculation: a copy starts only when
	// the original's predicted remaining time exceeds SpecRatio × the new
	// host's full time, by at least SpecMinGain. Defaults 1.5 and 30s.
	SpecRatio   float64
	SpecMinGain time.Duration
	// Alpha is the EWMA weight of a new speed sample (default 0.3).
	Alpha float64
	// Recheck is how often a blocked Next re-evaluates even without an
	// event, as predictions change with time (default 1s).
	Recheck time.Duration
}

// walkCap bounds how many items one Next call considers leaving to other
// hosts.
const walkCap = 64

// Queue is safe for concurrent use by every worker.
type Queue struct {
	mu   sync.Mutex
	opts Options
	now  func() time.Time
	t0   time.Time

	cond    chan struct{} // closed and replaced on every change: a broadcast that works with select
	waiters int           // goroutines blocked in Next

	all      []*Item // push order
	seq      int64
	classes  map[uint64][]*class
	special  []*Item // pending items with failures: few, scanned linearly
	lastMap  uintptr // Push's cache: the Eligible map of the last item…
	lastCls  *class  // …and its class
	hosts    map[string]*hostState
	hostList []*hostState
	seed     maphash.Seed
	closed   bool

	pendingN    int
	runningN    int
	pendingWork float64
	capacity    float64 // Σ live slots × speed
	gen         int     // walk generation, for hostState scratch
}

type hostState struct {
	name     string
	hash     uint64
	weight   float64 // prior (relative)
	est      float64 // observed speed (EWMA), when nobs > 0
	nobs     int
	speed    float64 // effective speed
	slots    int     // set by SetSlots (0: inferred)
	seen     int     // most slots seen busy or asking at once
	down     bool
	fallback bool // takes work only no other host can (SetFallback)
	waiting  int
	runs     []*run
	classes  []*class

	scratch []float64 // per-walk slot availability (seconds since t0)
	gen     int
}

func (h *hostState) slotCount() int {
	if h.slots > 0 {
		return h.slots
	}
	return max(1, h.seen)
}

// active is how many of h's runs occupy a slot (queued runs wait for one).
func (h *hostState) active() int {
	n := 0
	for _, r := range h.runs {
		if !r.queued {
			n++
		}
	}
	return n
}

// run is one running copy of an item.
type run struct {
	it       *Item
	h        *hostState
	start    float64 // seconds since t0 (for a queued run: when it was handed out, until Begin)
	progress float64 // 0..1, from Progress
	queued   bool    // handed out by Prefetch; waits for a slot of h until Begin
	lost     chan struct{}
}

func (r *run) drop() {
	if r.lost != nil {
		select {
		case <-r.lost:
		default:
			close(r.lost)
		}
	}
}

// class holds the items of one eligibility set, in serving order, with
// lazy deletion: entries that are no longer pending (holes) are skipped and
// compacted away from time to time.
type class struct {
	set      map[string]bool
	hosts    []*hostState
	items    []*Item
	head     int
	pendingN int // pending, non-special items
	live     int // unfinished items (pending or running, special or not)
}

func hole(it *Item) bool { return it.state != pending || it.special }

// New returns an empty queue with the default options.
func New() *Queue { return NewWithOptions(Options{}) }

// NewWithOptions returns an empty queue.
func NewWithOptions(o Options) *Queue {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SpecRatio <= 0 {
		o.SpecRatio = 1.5
	}
	if o.SpecMinGain <= 0 {
		o.SpecMinGain = 30 * time.Second
	}
	if o.Alpha <= 0 || o.Alpha > 1 {
		o.Alpha = 0.3
	}
	if o.Recheck <= 0 {
		o.Recheck = time.Second
	}
	return &Queue{
		opts:    o,
		now:     o.Now,
		t0:      o.Now(),
		cond:    make(chan struct{}),
		classes: map[uint64][]*class{},
		hosts:   map[string]*hostState{},
		seed:    maphash.MakeSeed(),
	}
}

func (q *Queue) clock() float64 { return q.now().Sub(q.t0).Seconds() }

func (q *Queue) broadcast() {
	if q.waiters == 0 {
		return
	}
	close(q.cond)
	q.cond = make(chan struct{})
}

func (q *Queue) less(a, b *Item) bool {
	if q.opts.Policy != FIFO && a.Work != b.Work {
		return a.Work > b.Work
	}
	return a.seq < b.seq
}

// host returns the state of name, creating it.
func (q *Queue) host(name string) *hostState {
	h := q.hosts[name]
	if h == nil {
		h = &hostState{name: name, hash: maphash.String(q.seed, name) | 1, weight: 1}
		q.hosts[name] = h
		q.hostList = append(q.hostList, h)
		q.updateSpeeds()
	}
	return h
}

// updateSpeeds recomputes every effective speed and the cluster capacity.
func (q *Queue) updateSpeeds() {
	var obs, w float64
	for _, h := range q.hostList {
		if h.nobs > 0 {
			obs += h.est
			w += h.weight
		}
	}
	scale := 1.0
	if obs > 0 && w > 0 {
		scale = obs / w
	}
	q.capacity = 0
	for _, h := range q.hostList {
		if h.nobs > 0 {
			h.speed = h.est
		} else {
			h.speed = h.weight * scale
		}
		if !h.down {
			q.capacity += float64(h.slotCount()) * h.speed
		}
	}
}

// classOf returns the class of it's eligibility set, creating it.
func (q *Queue) classOf(it *Item) *class {
	var p uintptr
	if it.Eligible != nil {
		p = reflect.ValueOf(it.Eligible).Pointer()
		if p == q.lastMap && q.lastCls != nil && len(q.lastCls.set) == len(it.Eligible) {
			return q.lastCls
		}
	}
	var key uint64
	n := 0
	for name, ok := range it.Eligible {
		if ok {
			key += q.host(name).hash
			n++
		}
	}
	key ^= uint64(n) * 0x9e3779b97f4a7c15
	var c *class
	for _, cand := range q.classes[key] {
		if len(cand.set) != n {
			continue
		}
		same := true
		for name, ok := range it.Eligible {
			if ok && !cand.set[name] {
				same = false
				break
			}
		}
		if same {
			c = cand
			break
		}
	}
	if c == nil {
		c = &class{set: make(map[string]bool, n)}
		for name, ok := range it.Eligible {
			if ok {
				c.set[name] = true
				h := q.host(name)
				c.hosts = append(c.hosts, h)
				h.classes = append(h.classes, c)
			}
		}
		sort.Slice(c.hosts, func(i, j int) bool { return c.hosts[i].name < c.hosts[j].name })
		q.classes[key] = append(q.classes[key], c)
	}
	q.lastMap, q.lastCls = p, c
	return c
}

// Push adds items. Under Smart and LPT items are served largest Work first
// (equal work keeps push order); under FIFO in push order.
func (q *Queue) Push(items ...*Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := map[*class][]*Item{}
	for _, it := range items {
		it.state, it.host, it.runs = pending, "", nil
		it.seq = q.seq
		q.seq++
		it.cls = q.classOf(it)
		it.special = len(it.FailedOn) > 0
		it.inClass = false
		q.all = append(q.all, it)
		q.pendingN++
		q.pendingWork += it.Work
		it.cls.live++
		if it.special {
			q.special = append(q.special, it)
		} else {
			it.cls.pendingN++
			batch[it.cls] = append(batch[it.cls], it)
		}
	}
	for c, list := range batch {
		q.merge(c, list)
	}
	q.broadcast()
}

// merge adds list to c, keeping serving order and dropping holes.
func (q *Queue) merge(c *class, list []*Item) {
	sort.SliceStable(list, func(i, j int) bool { return q.less(list[i], list[j]) })
	old := c.items[c.head:]
	out := make([]*Item, 0, len(old)+len(list))
	i, j := 0, 0
	for i < len(old) || j < len(list) {
		if i < len(old) && hole(old[i]) {
			old[i].inClass = false
			i++
			continue
		}
		if j >= len(list) || i < len(old) && !q.less(list[j], old[i]) {
			out = append(out, old[i])
			i++
		} else {
			list[j].inClass = true
			out = append(out, list[j])
			j++
		}
	}
	c.items, c.head = out, 0
}

// compact drops the holes of c.
func compact(c *class) {
	out := c.items[:0]
	for _, it := range c.items[c.head:] {
		if hole(it) {
			it.inClass = false
			continue
		}
		out = append(out, it)
	}
	clear(c.items[len(out):])
	c.items, c.head = out, 0
}

// reinsert puts a requeued item back in its class or the special list.
func (q *Queue) reinsert(it *Item) {
	q.pendingN++
	q.pendingWork += it.Work
	if len(it.FailedOn) > 0 {
		it.special = true
	}
	if it.special {
		for _, s := range q.special {
			if s == it {
				return
			}
		}
		q.special = append(q.special, it)
		return
	}
	c := it.cls
	c.pendingN++
	if it.inClass {
		return // its entry is still there
	}
	i := c.head + sort.Search(len(c.items)-c.head, func(k int) bool { return q.less(it, c.items[c.head+k]) })
	c.items = append(c.items, nil)
	copy(c.items[i+1:], c.items[i:])
	c.items[i] = it
	it.inClass = true
}

// liveRegular reports whether a host other than h, not a fallback, is up
// among hosts.
func (q *Queue) liveRegular(hosts []*hostState, h *hostState) bool {
	for _, g := range hosts {
		if g != h && !g.fallback && !g.down {
			return true
		}
	}
	return false
}

// failedOnRegular reports whether it failed as a job on a host that is not
// a fallback (a fallback host may then take it even while others are up).
func (q *Queue) failedOnRegular(it *Item) bool {
	for name := range it.FailedOn {
		if g := q.hosts[name]; g != nil && !g.fallback {
			return true
		}
	}
	return false
}

// SetFallback marks host as a fallback (ClusterPlex's "both" mode, rffmpeg's
// local fallback): it takes a job only when no other eligible host is up,
// or when the job has already failed on a host that is not a fallback.
func (q *Queue) SetFallback(host string, fallback bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.host(host).fallback = fallback
	q.broadcast()
}

// canRun reports whether host may take it now: it is eligible there, and it
// has not already failed there unless every live eligible host has.
func (q *Queue) canRun(it *Item, h *hostState) bool {
	if !it.Eligible[h.name] || h.down {
		return false
	}
	if !it.FailedOn[h.name] {
		return true
	}
	for name, ok := range it.Eligible {
		if ok && !q.hosts[name].down && !it.FailedOn[name] {
			return false // another live host has not tried it yet
		}
	}
	return true
}

func (r *run) remaining(now float64) float64 {
	if r.queued {
		return r.it.Work / r.h.speed // all of it, once a slot frees
	}
	el := now - r.start
	if p := r.progress; p > 0.02 && p < 1 {
		return el * (1 - p) / p
	}
	pred := r.it.Work / r.h.speed
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
			work += rem * h.speed
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
}

func (k *cursor) peek() *Item {
	for k.i < len(k.items) {
		if it := k.items[k.i]; k.c == nil && it.state == pending || k.c != nil && !hole(it) {
			return it
		}
		k.i++
		k.holes++
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
	var curs []cursor
	var live int
	for _, c := range h.classes {
		live += c.live
		if c.pendingN == 0 || (h.fallback && q.liveRegular(c.hosts, h)) {
			continue
		}
		for c.head < len(c.items) && hole(c.items[c.head]) {
			c.items[c.head].inClass = false
			c.items[c.head] = nil
			c.head++
		}
		curs = append(curs, cursor{items: c.items, i: c.head, c: c})
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
				if q.canRun(s, h) && (!h.fallback || !q.liveRegular(s.cls.hosts, h) || q.failedOnRegular(s)) {
					spec = append(spec, s)
				}
			}
		}
		clear(q.special[len(keep):])
		q.special = keep
		if len(spec) > 0 {
			sort.Slice(spec, func(i, j int) bool { return q.less(spec[i], spec[j]) })
			curs = append(curs, cursor{items: spec})
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
			if c := curs[i].peek(); c != nil && (best == nil || q.less(c, best)) {
				best = c
			}
		}
		return best
	}
	advance := func(it *Item) {
		for i := range curs {
			if curs[i].peek() == it {
				curs[i].i++
				return
			}
		}
	}
	first := nextItem()
	if first == nil {
		return nil, live > 0, false
	}
	if q.opts.Policy != Smart || h.speed <= 0 {
		return first, true, false
	}

	// Cheap horizon: pending work alone. Most of a big batch stops here.
	tEnd := math.Inf(1)
	if q.capacity > 0 {
		tEnd = now + q.pendingWork/q.capacity
	}
	if strict {
		tEnd = math.Inf(-1)
	} else {
		if now+first.Work/h.speed <= tEnd {
			return first, true, false
		}
		tEnd = q.horizon(now)
		var fast float64
		for _, g := range first.cls.hosts {
			if !g.down {
				fast = max(fast, g.speed)
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
		fh := max(now, from) + c.Work/h.speed
		if fh <= tEnd {
			return c, true, false
		}
		// Earliest finish elsewhere, with what this walk already set aside.
		bestF, bestI := math.Inf(1), -1
		var bestG *hostState
		for _, g := range c.cls.hosts {
			if g == h || g.down || g.speed <= 0 || (c.special && !q.canRun(c, g)) {
				continue
			}
			for i, a := range q.avail(g, now) {
				if f := a + c.Work/g.speed; f < bestF {
					bestF, bestI, bestG = f, i, g
				}
			}
		}
		if bestG == nil || fh <= bestF {
			return c, true, false
		}
		bestG.scratch[bestI] = bestF
		advance(c)
	}
	if strict {
		return nil, true, true
	}
	// The largest item h would still finish before the predicted end.
	limit := (tEnd - now) * h.speed
	var fit *Item
	for _, c := range h.classes {
		if c.pendingN == 0 {
			continue
		}
		i := c.head + sort.Search(len(c.items)-c.head, func(k int) bool { return c.items[c.head+k].Work <= limit })
		for ; i < len(c.items); i++ {
			if !hole(c.items[i]) {
				if fit == nil || q.less(c.items[i], fit) {
					fit = c.items[i]
				}
				break
			}
		}
	}
	for _, s := range spec {
		if s.Work <= limit && (fit == nil || q.less(s, fit)) {
			fit = s
		}
	}
	if fit != nil {
		return fit, true, false
	}
	return nil, true, true
}

// start marks it running on h (first copy); queued: a copy from Prefetch.
func (q *Queue) start(it *Item, h *hostState, now float64, queued bool) {
	it.state, it.host = running, h.name
	q.pendingN--
	q.runningN++
	q.pendingWork -= it.Work
	if !it.special {
		it.cls.pendingN--
	}
	q.addRun(it, h, now, queued)
}

func (q *Queue) addRun(it *Item, h *hostState, now float64, queued bool) *run {
	r := &run{it: it, h: h, start: now, queued: queued}
	it.runs = append(it.runs, r)
	h.runs = append(h.runs, r)
	q.sawBusy(h, 0)
	return r
}

// sawBusy notes that h has its active runs, plus extra slots asking, busy
// at once (the slot count inferred when SetSlots was not called).
func (q *Queue) sawBusy(h *hostState, extra int) {
	if n := h.active() + h.waiting + extra; n > h.seen {
		h.seen = n
		if h.slots == 0 {
			q.updateSpeeds()
		}
	}
}

// removeRun removes r from its host and item.
func (q *Queue) removeRun(r *run) {
	h := r.h
	for i, x := range h.runs {
		if x == r {
			h.runs[i] = h.runs[len(h.runs)-1]
			h.runs[len(h.runs)-1] = nil
			h.runs = h.runs[:len(h.runs)-1]
			break
		}
	}
	it := r.it
	for i, x := range it.runs {
		if x == r {
			it.runs = append(it.runs[:i], it.runs[i+1:]...)
			break
		}
	}
	if len(it.runs) > 0 {
		it.host = it.runs[0].h.name
	}
}

func (it *Item) runOn(host string) *run {
	for _, r := range it.runs {
		if r.h.name == host {
			return r
		}
	}
	return nil
}

// tryNext is Next without blocking.
func (q *Queue) tryNext(host string) (it *Item, wait bool) {
	if q.closed {
		return nil, false
	}
	h := q.host(host)
	if h.down {
		return nil, false
	}
	q.sawBusy(h, 1)
	now := q.clock()
	it, wait, deferred := q.pick(h, now, now, false)
	if it != nil {
		q.start(it, h, now, false)
		return it, true
	}
	if wait && !deferred && q.opts.Speculate {
		if it := q.speculate(h, now); it != nil {
			return it, true
		}
	}
	return nil, wait
}

// TryNext is Next without blocking, for event-driven callers such as the
// simulator: it returns an item (marked running on host), or nil and
// whether something may still come to host later (call again after the
// next change).
func (q *Queue) TryNext(host string) (it *Item, wait bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.tryNext(host)
}

// Next blocks until there is a job host can take, and marks it running on
// host. It returns nil when nothing left could ever go to host: no pending
// item it may take, and no running item that might come back to it. It also
// returns nil when ctx is done, the queue is closed or host is down. With
// Options.Speculate the item may be a second copy of a running item: see
// Finish and Lost.
func (q *Queue) Next(ctx context.Context, host string) *Item {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		it, wait := q.tryNext(host)
		if it != nil || !wait {
			q.mu.Unlock()
			return it
		}
		h := q.hosts[host]
		h.waiting++
		q.waiters++
		ch := q.cond
		q.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(q.opts.Recheck)
		} else {
			timer.Reset(q.opts.Recheck)
		}
		var done bool
		select {
		case <-ctx.Done():
			done = true
		case <-ch:
		case <-timer.C:
		}
		q.mu.Lock()
		h.waiting--
		q.waiters--
		q.mu.Unlock()
		if done {
			return nil
		}
	}
}

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
			if len(it.runs) != 1 || !q.canRun(it, h) {
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

// Progress records how far (0..1) the copy of it on host is; the queue
// then predicts its remaining time from its progress rather than its speed.
func (q *Queue) Progress(it *Item, host string, fraction float64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if r := it.runOn(host); r != nil {
		r.progress = fraction
		if q.opts.Speculate {
			q.broadcast()
		}
	}
}

// Lost returns a channel closed when the copy of it on host is no longer
// needed: another copy won, or the item was finished or requeued without
// it. The manager stops the job and cleans up when it closes. If host runs
// no copy of it, the channel is already closed.
func (q *Queue) Lost(it *Item, host string) <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := it.runOn(host)
	if r == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	if r.lost == nil {
		r.lost = make(chan struct{})
	}
	return r.lost
}

// finish ends it for good; winner (may be nil) is the copy that finished it.
func (q *Queue) finish(it *Item, winner *run) {
	now := q.clock()
	if winner != nil && !winner.queued { // a copy that never began says nothing of its host's speed
		if el := now - winner.start; el > 0 {
			q.observe(winner.h, it.Work/el)
		}
	}
	switch it.state {
	case running:
		q.runningN--
	case pending:
		q.pendingN--
		q.pendingWork -= it.Work
		if !it.special {
			it.cls.pendingN--
		}
	case finished:
		return
	}
	it.cls.live--
	for _, r := range append([]*run(nil), it.runs...) {
		q.removeRun(r)
		if r != winner {
			r.drop()
		}
	}
	it.state, it.host = finished, ""
	q.broadcast()
}

// Finish records that the copy of it on host succeeded. The first copy to
// finish wins: Finish returns true and the item is done (any other copy is
// told through Lost). A copy that lost, or that host no longer runs, gets
// false and must discard its output.
func (q *Queue) Finish(it *Item, host string) (winner bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it.state != running {
		return false
	}
	r := it.runOn(host)
	if r == nil {
		return false
	}
	q.finish(it, r)
	return true
}

// Done marks an item finished (succeeded, or failed for good), whatever
// copies run. With one copy it is that copy's success (and a speed
// sample); callers that may run copies use Finish.
func (q *Queue) Done(it *Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var w *run
	if len(it.runs) == 1 {
		w = it.runs[0]
	}
	q.finish(it, w)
}

// Cancel ends an item that is no longer wanted (e.g. the other segments of
// a split file that failed), pending or running: running copies are told
// through Lost. Unlike Done it takes no speed sample.
func (q *Queue) Cancel(it *Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.finish(it, nil)
}

// HostFailed puts a running item back after its host failed (connection
// lost, host down, disk full…). This does not count as an attempt. It acts
// on the item's first copy; callers that may run copies use HostFailedOn.
func (q *Queue) HostFailed(it *Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it.state != running || len(it.runs) == 0 {
		return
	}
	q.hostFailed(it, it.runs[0])
}

// HostFailedOn is HostFailed for the copy of it on host: the copy goes
// away; the item goes back to the queue only if no other copy runs.
func (q *Queue) HostFailedOn(it *Item, host string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if r := it.runOn(host); r != nil && it.state == running {
		q.hostFailed(it, r)
	}
}

func (q *Queue) hostFailed(it *Item, r *run) {
	q.removeRun(r)
	r.drop()
	if len(it.runs) == 0 {
		it.state, it.host = pending, ""
		it.Requeues++
		q.runningN--
		q.reinsert(it)
	}
	q.broadcast()
}

// JobFailed records a job failure of it on host. If another copy of it is
// still running, that copy carries on and JobFailed returns true. Otherwise,
// if it may be tried again (attempts < maxAttempts and a live eligible host
// remains; hosts that failed it come last), it goes back to the queue and
// JobFailed returns true; else the item is finished and it returns false.
// On an item already finished (a copy that lost) it does nothing and
// returns false.
func (q *Queue) JobFailed(it *Item, host string, maxAttempts int) (retry bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.jobFailed(it, host, maxAttempts, true)
}

// Refused is JobFailed for a failure that says nothing about the item:
// host could not run it at all (a mounted host that cannot reach the file).
// The attempt is not counted while a live eligible host that has not
// failed the item remains to try it; host comes last for it, as after
// JobFailed. Once no such host remains it counts like JobFailed, so an item
// no host can run still ends.
func (q *Queue) Refused(it *Item, host string, maxAttempts int) (retry bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	untried := false
	for name, ok := range it.Eligible {
		if g := q.hosts[name]; ok && name != host && g != nil && !g.down && !it.FailedOn[name] {
			untried = true
			break
		}
	}
	return q.jobFailed(it, host, maxAttempts, !untried)
}

func (q *Queue) jobFailed(it *Item, host string, maxAttempts int, count bool) (retry bool) {
	if it.state == finished {
		return false
	}
	if count {
		it.Attempts++
	}
	if it.FailedOn == nil {
		it.FailedOn = map[string]bool{}
	}
	it.FailedOn[host] = true
	if r := it.runOn(host); r != nil {
		q.removeRun(r)
		r.drop()
	}
	if it.state == running && len(it.runs) > 0 {
		q.broadcast()
		return true // the other copy carries on
	}
	retry = (!count || it.Attempts < maxAttempts) && q.anyLive(it)
	if !retry {
		q.finish(it, nil)
		return false
	}
	if it.state == running {
		it.state, it.host = pending, ""
		q.runningN--
		it.special = true
		q.reinsert(it)
	} else if !it.special { // pending in its class: move it to the special list
		it.special = true
		it.cls.pendingN--
		q.special = append(q.special, it)
	}
	q.broadcast()
	return true
}

func (q *Queue) anyLive(it *Item) bool {
	for name, ok := range it.Eligible {
		if h := q.hosts[name]; ok && h != nil && !h.down {
			return true
		}
	}
	return false
}

// SetDown marks a host down (true) or back up (false). Slots of a down host
// get nil from Next.
func (q *Queue) SetDown(host string, down bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.host(host).down = down
	q.updateSpeeds()
	q.broadcast()
}

// SetSlots tells the queue how many jobs host runs at once (otherwise it
// infers it from how many of its slots ask at once).
func (q *Queue) SetSlots(host string, n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.host(host).slots = n
	q.updateSpeeds()
	q.broadcast()
}

// SetHostSpeed sets host's prior speed (its `weight`; default 1). It is
// relative to the other hosts' weights and is replaced by the speed
// observed once host finishes a job.
func (q *Queue) SetHostSpeed(host string, speed float64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if speed <= 0 {
		speed = 1
	}
	q.host(host).weight = speed
	q.updateSpeeds()
	q.broadcast()
}

// ObserveSpeed records that host did work units in elapsed (one job on one
// slot). The first sample replaces the prior; later ones are averaged
// (EWMA, weight Options.Alpha). Done and Finish already record their
// samples.
func (q *Queue) ObserveSpeed(host string, work float64, elapsed time.Duration) {
	if work <= 0 || elapsed <= 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.observe(q.host(host), work/elapsed.Seconds())
	q.broadcast()
}

func (q *Queue) observe(h *hostState, s float64) {
	if s <= 0 || math.IsInf(s, 0) || math.IsNaN(s) {
		return
	}
	if h.nobs == 0 {
		h.est = s
	} else {
		h.est += q.opts.Alpha * (s - h.est)
	}
	h.nobs++
	q.updateSpeeds()
}

// HostSpeed returns host's current speed estimate (work units per second
// per slot; while host has no sample, its weight scaled like the observed
// hosts').
func (q *Queue) HostSpeed(host string) float64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.host(host).speed
}

// ObservedSpeeds returns the observed speed of every host that has one, to
// remember across runs (feed them back with ObserveSpeed(h, s, time.Second)).
func (q *Queue) ObservedSpeeds() map[string]float64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := map[string]float64{}
	for _, h := range q.hostList {
		if h.nobs > 0 {
			out[h.name] = h.est
		}
	}
	return out
}

// Close wakes every waiting worker and makes Next return nil (cancellation).
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	close(q.cond)
	q.cond = make(chan struct{})
}

// Pending returns the items that never finished (pending or running), in
// serving order.
func (q *Queue) Pending() []*Item {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*Item
	for _, it := range q.all {
		if it.state != finished {
			out = append(out, it)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return q.less(out[i], out[j]) })
	return out
}

// Counts returns how many items are pending and running.
func (q *Queue) Counts() (pendingN, runningN int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pendingN, q.runningN
}

// HasWorkFor reports whether any unfinished item (pending or running) may
// still go to host, whether or not host is down. It is O(classes of host),
// unlike scanning Pending.
func (q *Queue) HasWorkFor(host string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.hosts[host]
	if h == nil {
		return false
	}
	for _, c := range h.classes {
		if c.live > 0 {
			return true
		}
	}
	return false
}
