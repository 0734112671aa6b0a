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
// item's lane is Lane{} everywhere and nothing below costs anything.
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
func (q *Queue) SetLanes(fn func(it *Item, host string) Lane) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.laneFn = fn
	for _, h := range q.hostList {
		for _, r := range h.runs {
			r.lane = q.lane(r.it, h)
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
	for _, r := range append([]*run(nil), h.runs...) {
		if !r.queued {
			continue
		}
		old := r.lane
		r.lane = q.lane(r.it, h)
		if r.lane.Family == "" || r.lane.Family == old.Family {
			continue
		}
		if n := h.caps[r.lane.Family]; n > 0 && h.family(r.lane.Family) > n {
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

// lane returns it's lane on h.
func (q *Queue) lane(it *Item, h *hostState) Lane {
	if q.laneFn == nil {
		return Lane{}
	}
	return q.laneFn(it, h.name)
}

// rate is h's speed for it (work units per second).
func (q *Queue) rate(it *Item, h *hostState) float64 {
	if q.laneFn == nil {
		return h.speed
	}
	return h.keySpeed(q.laneFn(it, h.name).Key)
}

// speed is r's host's speed for r's lane.
func (r *run) speed() float64 {
	if r.lane.Key == "" {
		return r.h.speed
	}
	return r.h.keySpeed(r.lane.Key)
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
	q.updateSpeeds()
}

// laneScale returns, for updateSpeeds when no host has a sample of its
// default lane, Σ each host's mean lane sample and Σ its weight, over the
// hosts with lane samples.
func (q *Queue) laneScale() (obs, w float64) {
	for _, h := range q.hostList {
		var sum float64
		n := 0
		for _, l := range h.lanes {
			if l.nobs > 0 {
				sum += l.est
				n++
			}
		}
		if n > 0 {
			obs += sum / float64(n)
			w += h.weight
		}
	}
	return obs, w
}

// fastest is h's fastest known speed over its lanes, for the capacity.
func (h *hostState) fastest() float64 {
	s := h.speed
	for _, l := range h.lanes {
		if v, ok := l.known(); ok {
			s = max(s, v)
		}
	}
	return s
}

// family returns how many copies on h have a lane of family fam.
func (h *hostState) family(fam string) int {
	n := 0
	for _, r := range h.runs {
		if r.lane.Family == fam {
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
// places them.
func (h *hostState) famFree(fam string, now float64) float64 {
	if !h.capped(fam) {
		return math.Inf(-1)
	}
	var ends []float64
	for _, r := range h.runs {
		if !r.queued && r.lane.Family == fam {
			ends = append(ends, now+r.remaining(now))
		}
	}
	var buf [8]float64
	placeSlots(h, now, buf[:0], func(r *run, end float64) {
		if r.lane.Family == fam {
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
	l := q.laneFn(it, h.name)
	if h.capped(l.Family) {
		return false
	}
	if math.IsInf(h.limit, 1) {
		return true
	}
	return it.Work <= (h.limit-from)*h.keySpeed(l.Key)
}
