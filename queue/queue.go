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
// later. Otherwise h takes it only if no other host that would take it
// (willTake: up, not held, allowed to run it, not a fallback held back by
// a regular host) would finish it sooner, counting that host's busy time
// and the items already
// set aside for it in this walk (earliest-finish-time list scheduling); if
// another would, the item is left for that host and the walk goes on to the
// next (at most 64 items). If the walk gives h nothing, h takes the largest
// item it would still finish before the predicted end, and otherwise waits:
// every item it left is predicted to end sooner elsewhere. Ties go to the
// asking host, a host that is the only one eligible always takes the item,
// and a job overrunning its prediction is assumed to need ever more time, so
// nothing waits forever for a stuck host.
//
// Liveness: h waits only for a host that is busy now, or idle and willing
// to take the item when it asks; so when nothing runs, some asking host
// takes a job. TestLivenessRandomClusters checks this over random
// clusters; Unstick is the runtime guard for what the queue cannot see.
//
// # Lanes and session caps
//
// With SetLanes, an item runs on each host in a lane: the encoder variant
// whose speed applies there (kept per host and variant, so the NVENC box
// gets the films) and the hardware family whose session cap
// (SetSessionCap) applies. Every prediction above then uses the speed of
// the item's lane on the host; a host at its cap for an item's family
// does not take it but fills its free slots with other lanes' items, and
// other hosts count its slot free for that item only when a session frees.
// A capped host is busy with copies of that family, so liveness holds as
// above. LanesChanged takes a demotion mid-run. See lanes.go for the
// choices (an unknown lane's speed, what counts against a cap).
//
// # Cold start
//
// A host whose prior is only a guess (SetHostGuess: no weight, nothing
// remembered) takes, with Options.ShortFirst and until its first speed
// sample, the largest item it would finish within 15% of the predicted
// rest of the batch at its guessed speed (else the smallest): no film is
// committed to a host that may turn out slow, and the sample comes soon.
//
// # Feeding
//
// Items may be pushed while the queue runs (the manager plans files as
// their probes end). Between Feeding(true) and Feeding(false) a host with
// nothing it may take waits (Next blocks, HasWorkFor is true) and no
// speculative copy starts; the rules above decide among the items pushed
// so far.
//
// # Speculation
//
// When a host has no pending item it may run, Speculate (or Next, with
// Options.Speculate) may give it a second copy of an item running on
// another host, when the asking host would finish it well before the
// running copy's expected end: the time left there exceeds SpecRatio × the
// asking host's full time, by at least SpecMinGain (or, for shorter jobs,
// half the time left and 5 s). An item
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
//
// A queued copy is a revocable reservation: when a host asks for work, has
// nothing pending to take, and would finish a queued copy of another host
// sooner than it is predicted to end there (by RevokeMinGain, and in at
// most 4/5 of the time), it takes the item; the queued copy is dropped and
// its Lost channel closed, so its host stops staging it and removes the
// staged file.
package queue

import (
	"hash/maphash"
	"math"
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

	// The queue updates these under its lock, possibly while another copy
	// of the item runs: read them through Queue.Attempts and
	// Queue.Requeues while any copy may run.
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
	// the original's expected remaining time exceeds SpecRatio × the new
	// host's full time, by at least SpecMinGain, or by half the remaining
	// time (and 5 s) when that is less. Defaults 1.5 and 30s.
	SpecRatio   float64
	SpecMinGain time.Duration
	// ShortFirst: until it has a speed sample, a host whose speed is only
	// a guess (SetHostGuess) takes no job longer than 15% of the predicted
	// rest of the batch (the smallest if none is that short), so that the
	// sample comes soon and no long job is committed to a host that may be
	// slow (cold start; measured in bench's BenchmarkColdStart).
	ShortFirst bool
	// RevokeMinGain bounds revoking a reservation (see Prefetch): an idle
	// host takes another host's queued, unstarted copy only when it would
	// finish it at least this much sooner, and in at most 4/5 of the time
	// left until the reserved copy would end. Default 5s.
	RevokeMinGain time.Duration
	// Alpha is the EWMA weight of a new speed sample (default 0.3).
	Alpha float64
	// Recheck is how often a blocked Next re-evaluates even without an
	// event, as predictions change with time (default 1s).
	Recheck time.Duration
}

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
	feeding  bool // Feeding: items are still to be pushed

	pendingN    int
	runningN    int
	pendingWork float64
	capacity    float64 // Σ live slots × speed
	win         winState
	gen         int                              // walk generation, for hostState scratch
	laneFn      func(it *Item, host string) Lane // SetLanes; nil: every lane is Lane{}
	laneTab     []Lane                           // laneRef's table (0: Lane{})…
	laneIdx     map[Lane]uint32                  // …and index
}

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
	if o.RevokeMinGain <= 0 {
		o.RevokeMinGain = 5 * time.Second
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
		win:     winState{deadline: math.Inf(1)},
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

// Close wakes every waiting worker and makes Next return nil (cancellation).
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	close(q.cond)
	q.cond = make(chan struct{})
}

// Feeding tells the queue whether items are still to be pushed (the run
// plans files while the first ones run). While it is on, a host with
// nothing it may take waits for them (Next does not return nil), HasWorkFor
// is true for every host, and no backup copy starts: the items still to
// come are better use of an idle slot. Turn it off after the last Push.
func (q *Queue) Feeding(on bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.feeding = on
	q.broadcast()
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
// still go to host, whether or not host is down, or the queue is Feeding. It is O(classes of host),
// unlike scanning Pending.
func (q *Queue) HasWorkFor(host string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.feeding {
		return true
	}
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
