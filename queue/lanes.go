package queue

import (
	"math"
	"sort"
	"time"
)

// # Lanes
//
// A profile may list encoder variants (hevc_nvenc, hevc_qsv, libx265…);
// each host runs an item with the first variant that works there, so one
// item runs at different speeds on different hosts, and some of those
// runs hold a hardware session. A lane is how an item runs on one host:
// Key names the variant whose speed applies ("" is the host's default,
// the speed of SetHostSpeed, ObserveSpeed and HostSpeed), Family the
// hardware family whose session cap applies ("" none: only slots do).
// SetLanes installs the function that tells the lanes; without one every
// item's lane is Lane{} everywhere and what follows costs next to
// nothing (BenchmarkSchedulerScale, with and without Lanes).
//
// Speeds are kept per host and lane key. An item's predicted time on h is
// Work ÷ the speed of its lane on h, wherever the scheduler predicts: the
// walk, the fallback's fit, speculation, revoking reservations, windows,
// and the remaining time of a running copy (which keeps the lane it was
// handed out with). A lane key with neither a sample nor a prior
// (SetLaneSpeed) on h has h's default speed: the host's own figure, in
// the same units as every other (its weight scaled like the observed
// hosts', or its sample), until its first sample of that key replaces it,
// as a host's first sample replaces its weight. (Scaling it by the
// ratio other hosts show between that key and their default was the
// alternative; it assumes a GPU's speedup over the CPU is the same on
// every host, which is exactly what differs between a Quadro next to a
// laptop CPU and a consumer card next to a server.) Done and Finish record
// their sample under the winning copy's lane key.
//
// Until some host has a sample of its default lane, the default speeds
// are scaled by the lane samples instead (each host's mean over its
// observed keys ÷ its weight): a guess, but in work units, so that a CPU
// host whose items all run on the default lane is not taken for a host
// a million times slower than the GPU hosts that have reported.
//
// The cluster's capacity (the fluid bound of the predicted end of the
// batch) counts each host at its fastest known lane: an optimistic
// bound, which only makes hosts leave more items to the host that would
// finish them first.
//
// # Session caps
//
// SetSessionCap limits how many copies whose lane has a given family a
// host holds at once. Every copy counts: running ones, speculative ones,
// and queued ones from Prefetch (a queued copy holds the session it will
// start in, so Begin never goes over the cap; a host at its cap
// prefetches only items of other lanes). A host at its cap for an item's
// family does not take it (Next, Prefetch, Speculate, revoking a
// reservation, Unstick), but takes other items into its free slots. Other
// hosts see a capped host's slot for that item free only when its first
// copy of that family is predicted to end, so they leave it the item only
// if it would still finish it first; liveness holds as before, since a
// capped host is busy with copies of that family. LanesChanged (a host
// demoted to its next variant) re-asks the lanes of the host's queued
// copies; one whose new family is now over its cap is given back to the
// queue and its Lost channel closed, like a revoked reservation. Running
// copies keep the lane they started with.

// Lane is how an item runs on one host: Key names the encoder variant for
// speed estimates (e.g. "hevc_nvenc"; "" = the host's default), Family the
// hardware family whose session cap applies ("" = none: only slots apply).
type Lane struct{ Key, Family string }

// laneSpeed is one host's speed for one lane key.
type laneSpeed struct {
	prior float64 // SetLaneSpeed; 0: none
	est   float64 // EWMA of the samples, when nobs > 0
	nobs  int
}

// known reports the lane's speed, if it has a sample or a prior.
func (l *laneSpeed) known() (float64, bool) {
	switch {
	case l == nil:
		return 0, false
	case l.nobs > 0:
		return l.est, true
	case l.prior > 0:
		return l.prior, true
	}
	return 0, false
}

// SetLanes installs fn, which the queue calls (under its lock; fn must be
// fast, pure and not call the queue) to learn item it's lane on host. nil
// = every item's lane is Lane{}: the host's default speed, no session cap.
// The queue may keep an answer until LanesChanged(host) or SetLanes: when
// fn's answer for a host changes (a demotion), call LanesChanged.
func (q *Queue) SetLanes(fn func(it *Item, host string) Lane) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.laneFn = fn
	for _, h := range q.hostList {
		h.laneIt = nil
		for _, r := range h.runs {
			r.lane = q.laneRef(q.lane(r.it, h))
		}
	}
	q.updateSpeeds()
	q.broadcast()
}

// SetSessionCap limits host to n copies (running, speculative or queued
// by Prefetch) whose lane there has the given family; n <= 0 removes the
// cap. Slots still apply. Lowering a cap stops new copies only.
func (q *Queue) SetSessionCap(host, family string, n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.host(host)
	if n <= 0 {
		delete(h.caps, family)
	} else {
		if h.caps == nil {
			h.caps = map[string]int{}
		}
		h.caps[family] = n
	}
	q.broadcast()
}

// ObserveLaneSpeed is ObserveSpeed for one lane: work done in elapsed on
// host with that lane key. Key "" is ObserveSpeed.
func (q *Queue) ObserveLaneSpeed(host, key string, work float64, elapsed time.Duration) {
	if work <= 0 || elapsed <= 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.observeKey(q.host(host), key, work/elapsed.Seconds())
	q.broadcast()
}

// SetLaneSpeed sets a prior for host's lane key, in work units per second
// (e.g. the speed the journal remembers); a sample replaces it. speed <= 0
// removes it. Key "" is SetHostSpeed.
func (q *Queue) SetLaneSpeed(host, key string, speed float64) {
	if key == "" {
		q.SetHostSpeed(host, speed)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.host(host)
	l := h.laneOf(key)
	l.prior = max(speed, 0)
	h.laneStats()
	q.updateSpeeds()
	q.broadcast()
}

// LaneSpeed returns host's speed for lane key: its sample (EWMA), else its
// prior, else host's default speed (HostSpeed, which key "" is).
func (q *Queue) LaneSpeed(host, key string) float64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.host(host).keySpeed(key)
}

// ObservedLaneSpeeds returns, for the journal, every host's known lane
// speeds (key "" excluded: ObservedSpeeds has it): host → key → the
// sampled speed, or the prior set with SetLaneSpeed when there is no
// sample yet, so that what the journal fed in is remembered even for a
// lane this run did not use. Feed them back with SetLaneSpeed.
func (q *Queue) ObservedLaneSpeeds() map[string]map[string]float64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := map[string]map[string]float64{}
	for _, h := range q.hostList {
		for key, l := range h.lanes {
			if s, ok := l.known(); ok {
				if out[h.name] == nil {
					out[h.name] = map[string]float64{}
				}
				out[h.name][key] = s
			}
		}
	}
	return out
}

// LanesChanged tells the queue that the lanes function's answers changed
// for host (a demotion): the lanes of host's queued copies are asked
// again (one now over its family's cap goes back to the queue, its Lost
// channel closed), and every prediction uses the new lanes from now on.
// Running copies keep their lane.
func (q *Queue) LanesChanged(host string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.hosts[host]
	if h == nil {
		return
	}
	h.laneIt = nil
	for _, r := range append([]*run(nil), h.runs...) {
		if !r.queued {
			continue
		}
		old := r.family()
		r.lane = q.laneRef(q.lane(r.it, h))
		if r.family() == "" || r.family() == old {
			continue
		}
		if n := h.caps[r.family()]; n > 0 && h.family(r.family()) > n {
			it := r.it
			q.removeRun(r)
			r.drop()
			if len(it.runs) == 0 {
				it.state, it.host = pending, ""
				q.runningN--
				q.reinsert(it)
			}
		}
	}
	q.updateSpeeds()
	q.broadcast()
}

// lane returns it's lane on h. A pick asks the same item's lane on the
// same host several times in a row (may h take it, how fast): h keeps
// the last answer, until LanesChanged or SetLanes.
func (q *Queue) lane(it *Item, h *hostState) Lane {
	if q.laneFn == nil {
		return Lane{}
	}
	if h.laneIt != it {
		h.laneIt, h.laneIs = it, q.laneFn(it, h.name)
	}
	return h.laneIs
}

// rate is h's speed for it (work units per second). A host with no
// lane speed known runs every lane at its default speed: the lanes
// function is not asked.
func (q *Queue) rate(it *Item, h *hostState) float64 {
	if q.laneFn == nil || h.lanes == nil {
		return h.speed
	}
	return q.laneRate(it, h)
}

// laneRate is rate's slow path, apart so that rate inlines.
func (q *Queue) laneRate(it *Item, h *hostState) float64 { return h.keySpeed(q.lane(it, h).Key) }

// speed is r's host's speed for r's lane.
func (r *run) speed() float64 {
	if r.lane == 0 {
		return r.h.speed
	}
	return r.h.keySpeed(r.key())
}

// laneRef returns l's index in the queue's table of lanes (0 for Lane{}):
// a run holds 4 bytes beside its queued flag rather than two strings, so
// that a run is no larger than before lanes (the 100k-file simulation
// makes one per job).
func (q *Queue) laneRef(l Lane) uint32 {
	if l == (Lane{}) {
		return 0
	}
	i, ok := q.laneIdx[l]
	if !ok {
		if q.laneIdx == nil {
			q.laneIdx = map[Lane]uint32{}
			q.laneTab = []Lane{{}}
		}
		i = uint32(len(q.laneTab))
		q.laneTab = append(q.laneTab, l)
		q.laneIdx[l] = i
	}
	return i
}

// key is r's lane key.
func (r *run) key() string {
	if r.lane == 0 {
		return ""
	}
	return r.h.q.laneTab[r.lane].Key
}

// family is r's lane's family.
func (r *run) family() string {
	if r.lane == 0 {
		return ""
	}
	return r.h.q.laneTab[r.lane].Family
}

func (h *hostState) laneOf(key string) *laneSpeed {
	l := h.lanes[key]
	if l == nil {
		if h.lanes == nil {
			h.lanes = map[string]*laneSpeed{}
		}
		l = &laneSpeed{}
		h.lanes[key] = l
	}
	return l
}

// keySpeed is h's speed for lane key (see the Lanes section).
func (h *hostState) keySpeed(key string) float64 {
	if key == "" {
		return h.speed
	}
	if s, ok := h.lanes[key].known(); ok {
		return s
	}
	return h.speed
}

// observeKey records a sample of s for h's lane key.
func (q *Queue) observeKey(h *hostState, key string, s float64) {
	if key == "" {
		q.observe(h, s)
		return
	}
	if s <= 0 || math.IsInf(s, 0) || math.IsNaN(s) {
		return
	}
	l := h.laneOf(key)
	if l.nobs == 0 {
		l.est = s
	} else {
		l.est += q.opts.Alpha * (s - l.est)
	}
	l.nobs++
	h.laneStats()
	q.updateSpeeds()
}

// laneStats updates h's figures over its lanes (updateSpeeds runs at
// every sample, over every host): the fastest known lane speed, and the
// mean of the sampled ones (0: none).
func (h *hostState) laneStats() {
	h.laneMax, h.laneMean = 0, 0
	n := 0
	for _, l := range h.lanes {
		if v, ok := l.known(); ok {
			h.laneMax = max(h.laneMax, v)
		}
		if l.nobs > 0 {
			h.laneMean += l.est
			n++
		}
	}
	if n > 0 {
		h.laneMean /= float64(n)
	}
}

// laneScale returns, for updateSpeeds when no host has a sample of its
// default lane, Σ each host's mean lane sample and Σ its weight, over the
// hosts with lane samples.
func (q *Queue) laneScale() (obs, w float64) {
	for _, h := range q.hostList {
		if h.laneMean > 0 {
			obs += h.laneMean
			w += h.weight
		}
	}
	return obs, w
}

// fastest is h's fastest known speed over its lanes, for the capacity.
func (h *hostState) fastest() float64 { return max(h.speed, h.laneMax) }

// family returns how many copies on h have a lane of family fam.
func (h *hostState) family(fam string) int {
	n := 0
	for _, r := range h.runs {
		if r.family() == fam {
			n++
		}
	}
	return n
}

// capped reports whether h is at its cap for family fam.
func (h *hostState) capped(fam string) bool {
	if fam == "" || h.caps == nil {
		return false
	}
	n := h.caps[fam]
	return n > 0 && h.family(fam) >= n
}

// famFree returns when h frees a session of family fam (seconds since t0):
// -Inf if h is not at its cap for it, else the predicted end of the copy
// of that family that frees one, queued copies placed as slotTimes
// places them. It is asked for every item of a walk and every host, so
// within one walk (q.gen) h keeps its last answer.
func (q *Queue) famFree(h *hostState, fam string, now float64) float64 {
	if fam == "" || h.caps == nil {
		return math.Inf(-1)
	}
	if h.famGen == q.gen && h.famFam == fam {
		return h.famAt
	}
	h.famGen, h.famFam, h.famAt = q.gen, fam, h.famEnd(fam, now)
	return h.famAt
}

// famEnd is famFree without the cache.
func (h *hostState) famEnd(fam string, now float64) float64 {
	if !h.capped(fam) {
		return math.Inf(-1)
	}
	var endBuf [8]float64
	ends := endBuf[:0]
	for _, r := range h.runs {
		if !r.queued && r.family() == fam {
			ends = append(ends, now+r.remaining(now))
		}
	}
	var buf [8]float64
	placeSlots(h, now, buf[:0], func(r *run, end float64) {
		if r.family() == fam {
			ends = append(ends, end)
		}
	})
	sort.Float64s(ends)
	return ends[len(ends)-h.caps[fam]]
}

// takes reports, when lanes are set, whether h may take it started at
// from as far as lanes go: h is not at its cap for it's family, and it
// fits h's window at the speed of its lane.
func (q *Queue) takes(h *hostState, it *Item, from float64) bool {
	if h.caps == nil && math.IsInf(h.limit, 1) {
		return true
	}
	l := q.lane(it, h)
	if h.capped(l.Family) {
		return false
	}
	if math.IsInf(h.limit, 1) {
		return true
	}
	return it.Work <= (h.limit-from)*h.keySpeed(l.Key)
}
