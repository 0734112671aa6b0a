package queue

import (
	"hash/maphash"
	"math"
	"time"
)

type hostState struct {
	q        *Queue
	name     string
	hash     uint64
	weight   float64 // prior (relative)
	est      float64 // observed speed (EWMA), when nobs > 0
	nobs     int
	guess    bool                  // the prior is a guess (SetHostGuess): Options.ShortFirst applies until a sample
	speed    float64               // effective speed (the default lane)
	lanes    map[string]*laneSpeed // lane key → speed (lanes.go); nil: none known
	caps     map[string]int        // hardware family → session cap (SetSessionCap)
	laneMax  float64               // fastest known lane speed (laneStats)
	laneMean float64               // mean sampled lane speed; 0: none
	laneIt   *Item                 // the item of the last lanes call for this host…
	laneIs   Lane                  // …and its answer
	famGen   int                   // famFree's walk…
	famFam   string                // …family…
	famAt    float64               // …and answer
	slots    int                   // set by SetSlots (0: inferred)
	seen     int                   // most slots seen busy or asking at once
	down     bool
	held     bool // takes no new job for now (over max_load): SetHeld
	fallback bool // takes work only no other host can (SetFallback)
	waiting  int
	force    bool // Unstick: the next pick takes the largest item h may run
	// The first item the last pick of h left to another host, that host,
	// and when it was predicted to finish it there: what h waits for.
	leftItem *Item
	leftTo   *hostState
	leftAt   float64
	runs     []*run
	classes  []*class
	// Windows (windows.go): outside its window (or past the run's
	// deadline) the host takes nothing; inside, only what ends by limit
	// (seconds since t0; +Inf: no limit).
	shut  bool
	limit float64
	win   hostWin

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

// host returns the state of name, creating it.
func (q *Queue) host(name string) *hostState {
	h := q.hosts[name]
	if h == nil {
		h = &hostState{q: q, name: name, hash: maphash.String(q.seed, name) | 1, weight: 1, limit: math.Inf(1)}
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
	if obs == 0 && q.laneFn != nil {
		obs, w = q.laneScale()
	}
	scale := 1.0
	if obs > 0 && w > 0 {
		scale = obs / w
	}
	regular := false
	for _, h := range q.hostList {
		if !h.down && !h.held && !h.shut && !h.fallback {
			regular = true
		}
	}
	q.capacity = 0
	for _, h := range q.hostList {
		if h.nobs > 0 {
			h.speed = h.est
		} else {
			h.speed = h.weight * scale
		}
		// Capacity counts the hosts that take work now: not a host that is
		// down or held, nor a fallback while a regular host is up.
		if !h.down && !h.held && !h.shut && (!h.fallback || !regular) {
			sp := h.speed
			if h.lanes != nil {
				sp = h.fastest()
			}
			q.capacity += float64(h.slotCount()) * sp
		}
	}
}

// liveRegular reports whether a host other than h, not a fallback, is up
// among hosts and takes work (is not held).
func (q *Queue) liveRegular(hosts []*hostState, h *hostState) bool {
	for _, g := range hosts {
		if g != h && !g.fallback && !g.down && !g.held && !g.shut {
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
	q.updateSpeeds()
	q.broadcast()
}

// willTake reports whether g would take it if a slot of g asked now: g is
// up and not held, it may run there (see canRun), and g is not a fallback
// held back by a regular host that may take it. Every "leave it to a
// faster host" decision asks this of the host it leaves the item to: a
// host that would not take the item must never be waited for, or two hosts
// can each wait for the other forever (issue 14: remote hosts left the
// jobs to the fallback host the journal knew to be fast, and the fallback
// left them to the remote hosts).
func (q *Queue) willTake(it *Item, g *hostState) bool {
	if g.down || g.held || g.shut || g.speed <= 0 || !q.fits(g, it, q.win.at) {
		return false
	}
	if it.special && !q.canRun(it, g) {
		return false
	}
	return !q.heldBack(it, g)
}

// heldBack reports whether g is a fallback that stays back from it: a
// regular host that may take it is up, and it has not failed on one.
func (q *Queue) heldBack(it *Item, g *hostState) bool {
	return g.fallback && q.liveRegular(it.cls.hosts, g) && !q.failedOnRegular(it)
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
		if g := q.hosts[name]; ok && !g.down && !it.FailedOn[name] && q.mayFit(g, it) {
			return false // another live host has not tried it yet
		}
	}
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

// SetHeld marks a host that is up but takes no new job for now (true),
// such as a host over its max_load, or lets it take jobs again (false).
// Other hosts do not leave jobs to a held host, a fallback does not stay
// back for it, and its slots may still ask: a held host is only left out
// of the others' plans.
func (q *Queue) SetHeld(host string, held bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.host(host)
	if h.held == held {
		return
	}
	h.held = held
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
func (q *Queue) SetHostSpeed(host string, speed float64) { q.setPrior(host, speed, false) }

// SetHostGuess is SetHostSpeed for a prior that is only a guess (no
// `weight`, nothing remembered): with Options.ShortFirst the host takes
// the smallest jobs it may run until its first speed sample.
func (q *Queue) SetHostGuess(host string, speed float64) { q.setPrior(host, speed, true) }

func (q *Queue) setPrior(host string, speed float64, guess bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if speed <= 0 {
		speed = 1
	}
	h := q.host(host)
	h.weight, h.guess = speed, guess
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
