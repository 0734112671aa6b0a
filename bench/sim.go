// Package bench holds clustertx's benchmarks (run by `make bench`) and the
// discrete-event simulator they use to drive the real scheduler (package
// queue) with simulated hosts on a virtual clock.
package bench

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"clustertx/queue"
)

// SimHost is a simulated host.
type SimHost struct {
	Name   string
	Speed  float64 // true speed: work units per second per slot (1 = realtime at 1080p)
	Weight float64 // prior given to the queue (the `weight` option)
	Slots  int
	// Bandwidth makes a streaming host: each job uploads its source and
	// downloads its output at this many bytes per second (each transfer
	// at full speed: no sharing between slots or directions). 0: the host
	// mounts the media, nothing is transferred.
	Bandwidth float64
}

// SimJob is a simulated file.
type SimJob struct {
	Work     float64         // the estimate the queue sees (media seconds × pixels ÷ 1080p pixels)
	Actual   float64         // the work it really takes (Work unless the estimate is noisy)
	Eligible map[string]bool // shared between jobs of the same eligibility class
	Bytes    float64         // source size (streaming hosts upload it)
	OutBytes float64         // output size (streaming hosts download it)
}

// Batch is a library and a cluster.
type Batch struct {
	Hosts []SimHost
	Jobs  []SimJob // push order (library order)
}

// LowerBound is max(total work ÷ total cluster speed, biggest job ÷ fastest
// host that may run it), on the actual work.
func (b *Batch) LowerBound() float64 {
	var capacity, total, biggest float64
	speed := map[string]float64{}
	for _, h := range b.Hosts {
		capacity += float64(h.Slots) * h.Speed
		speed[h.Name] = h.Speed
	}
	for _, j := range b.Jobs {
		total += j.Actual
		var fast float64
		for n := range j.Eligible {
			fast = max(fast, speed[n])
		}
		biggest = max(biggest, j.Actual/fast)
	}
	return max(total/capacity, biggest)
}

// GenBatch builds a heterogeneous cluster of nHosts (speeds log-uniform in
// 0.3×–8× realtime, about a third with 2 slots, weights within ~25% of the
// truth) and a library of nFiles in random order: 80% episodes of 20–60
// min, 20% films of 90–180 min; 70% 1080p, 20% 720p, 10% 2160p. 85% of the
// files may go to any host, 10% only to the first half (say, the hosts that
// mount the share), 5% only to every fourth host (say, a profile that needs
// a GPU). itemNoise is the lognormal σ of actual ÷ estimated work. File
// sizes follow from duration × a typical bitrate for the resolution (720p
// 4 Mbit/s, 1080p 10 Mbit/s, 2160p 40 Mbit/s); outputs are half as large.
// Every host mounts the media; see WithStreaming.
func GenBatch(seed uint64, nHosts, nFiles int, itemNoise float64) *Batch {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	b := &Batch{}
	all, half, gpu := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i := 0; i < nHosts; i++ {
		s := 0.3 * math.Pow(8/0.3, rng.Float64())
		h := SimHost{Name: fmt.Sprintf("h%03d", i), Speed: s, Weight: s * math.Exp(0.25*rng.NormFloat64()), Slots: 1}
		if rng.Float64() < 0.33 {
			h.Slots = 2
		}
		b.Hosts = append(b.Hosts, h)
		all[h.Name] = true
		if i < (nHosts+1)/2 {
			half[h.Name] = true
		}
		if i%4 == 0 {
			gpu[h.Name] = true
		}
	}
	for i := 0; i < nFiles; i++ {
		var minutes float64
		if rng.Float64() < 0.8 {
			minutes = 20 + 40*rng.Float64()
		} else {
			minutes = 90 + 90*rng.Float64()
		}
		px := 1.0
		switch r := rng.Float64(); {
		case r < 0.2:
			px = 1280 * 720 / (1920 * 1080.0)
		case r < 0.3:
			px = 4
		}
		w := minutes * 60 * px
		j := SimJob{Work: w, Actual: w * math.Exp(itemNoise*rng.NormFloat64()), Eligible: all}
		j.Bytes = minutes * 60 * bitrate(px) / 8
		j.OutBytes = j.Bytes / 2
		switch r := rng.Float64(); {
		case r < 0.10:
			j.Eligible = half
		case r < 0.15:
			j.Eligible = gpu
		}
		b.Jobs = append(b.Jobs, j)
	}
	return b
}

// bitrate is a typical source bitrate (bits per second) for a resolution
// of px × 1080p pixels.
func bitrate(px float64) float64 {
	switch {
	case px < 1:
		return 4e6
	case px > 1:
		return 40e6
	}
	return 10e6
}

// WithStreaming returns a copy of b whose second half of hosts are
// streaming hosts with the given bandwidth (bytes per second): they do not
// mount the media, which matches GenBatch's class of files only the first
// half of the hosts may take.
func WithStreaming(b *Batch, bandwidth float64) *Batch {
	c := &Batch{Hosts: append([]SimHost(nil), b.Hosts...), Jobs: b.Jobs}
	for i := len(c.Hosts) / 2; i < len(c.Hosts); i++ {
		c.Hosts[i].Bandwidth = bandwidth
	}
	return c
}

// SimOptions configure one simulated run.
type SimOptions struct {
	Policy    queue.Policy
	Speculate bool
	// Prefetch pipelines streaming hosts' slots as the manager does: while
	// a job encodes, the slot uploads the next one (queue.Prefetch, begun
	// with queue.Begin when the encoder frees) and the finished job's
	// output downloads while the next encodes, one download at a time, at
	// most three jobs per slot. The working_dir is assumed to have room.
	// Without it a streaming slot uploads, encodes and downloads each job
	// in turn. Not with Speculate.
	Prefetch bool
	RunNoise float64 // lognormal σ of each run's duration (host hiccups), per copy
	// Cold start: Cold gives every host the same prior (weight 1: no
	// journal, no weight), whatever its speed. Calibrate > 0 instead gives
	// the queue each host's true speed × lognormal(σ Calibrate), as a
	// short calibration encode at check time would, and adds CalibCost
	// seconds to the makespan. ShortFirst sets the queue's option (Cold
	// priors are given as guesses: queue.SetHostGuess).
	Cold, ShortFirst     bool
	Calibrate, CalibCost float64
	// Lanes installs a lanes function (queue.SetLanes) and session caps,
	// to measure their cost: on every other host, every other item runs
	// in an NVENC lane (its own speed estimate, at the host's true speed)
	// capped at all but one of the host's slots.
	Lanes bool
	Seed  uint64
	// MemSample, if set, is called every 1,000 events (peak memory sampling).
	MemSample func()
}

// SimResult is what a run measured.
type SimResult struct {
	Makespan   float64       // virtual seconds
	LowerBound float64       // Batch.LowerBound
	Copies     int           // speculative copies started
	CopyWins   int           // of which finished first
	Wasted     float64       // slot-seconds spent on copies that lost
	QueueTime  time.Duration // wall time spent inside queue calls
	Events     int
}

// Ratio is makespan ÷ lower bound.
func (r SimResult) Ratio() float64 { return r.Makespan / r.LowerBound }

type simSlot struct {
	h      int
	run    *simRun // the slot's job (a slot that does not pipeline)
	parked bool

	// A pipelining slot (SimOptions.Prefetch, streaming host): the job
	// uploading or waiting for the encoder, the one encoding, and those
	// encoded, oldest (downloading) first.
	pipe bool
	pre  *simRun
	enc  *simRun
	ret  []*simRun
}

// phase is where a pipelined job is.
type phase int

const (
	phRun      phase = iota // a slot that does not pipeline: one event at the end
	phUpload                // uploading (event: upload done)
	phReady                 // uploaded, waiting for the encoder
	phEncode                // encoding (event: encode done)
	phWaitDown              // encoded, waiting for the download turn
	phDownload              // downloading (event: done)
)

type simRun struct {
	it        *queue.Item
	slot      *simSlot
	start     float64
	end       float64 // when the current phase ends: the event time
	spec      bool
	cancelled bool
	idx       int

	phase            phase
	encStart, encEnd float64 // the encode, for progress reports (0, 0: not started)
	up, enc, down    float64 // phase durations of a pipelined job
}

type simJob struct {
	job  *SimJob
	runs []*simRun
}

type events []*simRun

func (e events) Len() int { return len(e) }
func (e events) Less(i, j int) bool {
	if e[i].end != e[j].end {
		return e[i].end < e[j].end
	}
	return e[i].it.ID < e[j].it.ID
}
func (e events) Swap(i, j int)   { e[i], e[j] = e[j], e[i]; e[i].idx = i; e[j].idx = j }
func (e *events) Push(x any)     { r := x.(*simRun); r.idx = len(*e); *e = append(*e, r) }
func (e *events) Pop() any       { old := *e; r := old[len(old)-1]; *e = old[:len(old)-1]; return r }
func (e events) empty() bool     { return len(e) == 0 }
func (e *events) push(r *simRun) { heap.Push(e, r) }
func (e *events) pop() *simRun   { return heap.Pop(e).(*simRun) }

// Simulate runs batch b through a real queue on a virtual clock: every
// slot asks the queue (TryNext) when it is free, a job takes
// actual work ÷ host speed (× run noise), plus its upload and download on
// a streaming host, the first copy to finish wins (Finish) and the other
// is stopped, and parked slots ask again after every event, as blocked
// workers do on every queue change. With Prefetch, streaming hosts' slots
// pipeline their jobs (see SimOptions.Prefetch).
func Simulate(b *Batch, o SimOptions) (SimResult, error) {
	if o.Prefetch && o.Speculate {
		return SimResult{}, fmt.Errorf("the simulator does not combine Prefetch with Speculate")
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x51a1))
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var now float64
	clock := func() time.Time { return epoch.Add(time.Duration(now * float64(time.Second))) }
	q := queue.NewWithOptions(queue.Options{Policy: o.Policy, Speculate: o.Speculate, Now: clock,
		ShortFirst: o.ShortFirst})
	var res SimResult
	res.LowerBound = b.LowerBound()
	timed := func(f func()) {
		t := time.Now()
		f()
		res.QueueTime += time.Since(t)
	}

	hostIdx := map[string]int{}
	var slots []*simSlot
	for i, h := range b.Hosts {
		hostIdx[h.Name] = i
		timed(func() {
			switch {
			case o.Calibrate > 0 && o.Cold: // a calibrated guess
				q.SetHostGuess(h.Name, h.Speed*math.Exp(o.Calibrate*rng.NormFloat64()))
			case o.Calibrate > 0:
				q.ObserveSpeed(h.Name, h.Speed*math.Exp(o.Calibrate*rng.NormFloat64()), time.Second)
			case o.Cold:
				q.SetHostGuess(h.Name, 1)
			default:
				q.SetHostSpeed(h.Name, h.Weight)
			}
			q.SetSlots(h.Name, h.Slots)
		})
		for s := 0; s < h.Slots; s++ {
			slots = append(slots, &simSlot{h: i, pipe: o.Prefetch && h.Bandwidth > 0})
		}
	}
	if o.Lanes {
		nvenc := queue.Lane{Key: "hevc_nvenc", Family: "nvenc"}
		timed(func() {
			q.SetLanes(func(it *queue.Item, host string) queue.Lane {
				if hostIdx[host]%2 == 0 && it.ID%2 == 0 {
					return nvenc
				}
				return queue.Lane{}
			})
			for i, h := range b.Hosts {
				if i%2 == 0 {
					q.SetSessionCap(h.Name, nvenc.Family, max(1, h.Slots-1))
				}
			}
		})
	}
	items := make([]*queue.Item, len(b.Jobs))
	for i := range b.Jobs {
		items[i] = &queue.Item{ID: i, Work: b.Jobs[i].Work, Eligible: b.Jobs[i].Eligible, Payload: &simJob{job: &b.Jobs[i]}}
	}
	timed(func() { q.Push(items...) })

	var ev events
	var parked []*simSlot
	running := map[*simRun]bool{}
	park := func(s *simSlot) {
		if !s.parked {
			s.parked = true
			parked = append(parked, s)
		}
	}
	// newRun is a job of it on slot s: its encode time (× run noise) and
	// its transfer times.
	var revoked []*simSlot // slots whose prefetched job another host took
	newRun := func(s *simSlot, it *queue.Item) *simRun {
		h := &b.Hosts[s.h]
		sj := it.Payload.(*simJob)
		live := 0
		for _, o := range sj.runs {
			if o.cancelled || !running[o] {
				continue
			}
			if o.phase == phUpload || o.phase == phReady { // prefetched, not begun: revoked by the queue
				select {
				case <-q.Lost(it, b.Hosts[o.slot.h].Name):
					o.cancelled = true // its upload stops, its staged file goes
					res.Wasted += now - o.start
					delete(running, o)
					o.slot.pre = nil
					revoked = append(revoked, o.slot)
					continue
				default:
				}
			}
			live++
		}
		r := &simRun{it: it, slot: s, start: now, spec: live > 0}
		r.enc = sj.job.Actual / h.Speed
		if o.RunNoise > 0 {
			r.enc *= math.Exp(o.RunNoise * rng.NormFloat64())
		}
		if h.Bandwidth > 0 {
			r.up, r.down = sj.job.Bytes/h.Bandwidth, sj.job.OutBytes/h.Bandwidth
		}
		if r.spec {
			res.Copies++
		}
		sj.runs = append(sj.runs, r)
		running[r] = true
		return r
	}
	poll := func(s *simSlot) {
		h := &b.Hosts[s.h]
		var it *queue.Item
		var wait bool
		timed(func() { it, wait = q.TryNext(h.Name) })
		if it == nil {
			if wait {
				park(s)
			}
			return
		}
		r := newRun(s, it)
		r.encStart = now + r.up
		r.encEnd = r.encStart + r.enc
		r.end = r.encEnd + r.down
		s.run, s.parked = r, false
		ev.push(r)
	}
	// advance moves a pipelining slot on: the uploaded job encodes when
	// the encoder is free (queue.Begin), the oldest encoded job downloads,
	// and the slot takes a job while it has no job uploading and fewer
	// than three: with TryNext when its encoder is free, else with
	// Prefetch.
	advance := func(s *simSlot) {
		h := &b.Hosts[s.h]
		for {
			if s.enc == nil && s.pre != nil && s.pre.phase == phReady {
				r := s.pre
				s.pre = nil
				timed(func() { q.Begin(r.it, h.Name) })
				r.phase, r.encStart, r.encEnd = phEncode, now, now+r.enc
				r.end = r.encEnd
				s.enc = r
				ev.push(r)
			}
			if len(s.ret) > 0 && s.ret[0].phase == phWaitDown {
				r := s.ret[0]
				r.phase, r.end = phDownload, now+r.down
				ev.push(r)
			}
			n := len(s.ret)
			if s.enc != nil {
				n++
			}
			if s.pre != nil || n >= 3 {
				return
			}
			var it *queue.Item
			if s.enc == nil {
				var wait bool
				timed(func() { it, wait = q.TryNext(h.Name) })
				if it == nil {
					if wait {
						park(s)
					}
					return
				}
			} else {
				timed(func() { it = q.Prefetch(h.Name) })
				if it == nil {
					park(s) // ask again after the next event
					return
				}
			}
			s.parked = false
			r := newRun(s, it)
			r.phase, r.end = phUpload, now+r.up
			s.pre = r
			ev.push(r)
		}
	}
	start := func(s *simSlot) {
		if s.pipe {
			advance(s)
		} else {
			poll(s)
		}
	}
	// Slots start in host order, one slot of every host before the second.
	order := append([]*simSlot(nil), slots...)
	sort.SliceStable(order, func(i, j int) bool { return slotRank(order[i], slots) < slotRank(order[j], slots) })
	for _, s := range order {
		start(s)
	}
	reportProgress := func() {
		timed(func() {
			for x := range running {
				if x.encEnd > x.encStart && now > x.encStart {
					f := min(1, max(0, (now-x.encStart)/(x.encEnd-x.encStart)))
					q.Progress(x.it, b.Hosts[x.slot.h].Name, f)
				}
			}
		})
	}
	var freed []*simSlot
	for !ev.empty() {
		r := ev.pop()
		if r.cancelled {
			continue
		}
		now = r.end
		res.Events++
		if o.MemSample != nil && res.Events%1000 == 0 {
			o.MemSample()
		}
		h := &b.Hosts[r.slot.h]
		freed = freed[:0]
		switch r.phase {
		case phUpload:
			r.phase = phReady
			freed = append(freed, r.slot)
		case phEncode:
			r.slot.enc = nil
			r.phase = phWaitDown
			r.slot.ret = append(r.slot.ret, r)
			freed = append(freed, r.slot)
		default: // the job ends
			var win bool
			timed(func() { win = q.Finish(r.it, h.Name) })
			delete(running, r)
			freed = append(freed, r.slot)
			if r.phase == phDownload {
				r.slot.ret = r.slot.ret[1:]
			} else {
				r.slot.run = nil
			}
			sj := r.it.Payload.(*simJob)
			if win && r.spec {
				res.CopyWins++
			}
			if !win {
				res.Wasted += now - r.start
			}
			for _, o := range sj.runs {
				if o != r && !o.cancelled && running[o] {
					o.cancelled = true // the loser is stopped and cleaned up
					res.Wasted += now - o.start
					delete(running, o)
					o.slot.run = nil
					freed = append(freed, o.slot)
				}
			}
		}
		for _, s := range freed {
			start(s)
		}
		for len(revoked) > 0 {
			s := revoked[0]
			revoked = revoked[1:]
			start(s)
		}
		if len(parked) > 0 {
			// Parked slots ask again; first let the queue see the progress
			// of every running encode, as ffmpeg's progress reports would.
			reportProgress()
			ps := append([]*simSlot(nil), parked...)
			parked = parked[:0]
			for _, s := range ps {
				s.parked = false
				if s.pipe {
					advance(s)
				} else if s.run == nil {
					poll(s)
				}
			}
		}
		for len(revoked) > 0 {
			s := revoked[0]
			revoked = revoked[1:]
			start(s)
		}
	}
	res.Makespan = now + o.CalibCost
	if p, r := q.Counts(); p+r > 0 {
		return res, fmt.Errorf("simulation ended with %d pending and %d running items", p, r)
	}
	return res, nil
}

func slotRank(s *simSlot, all []*simSlot) int {
	k := 0
	for _, x := range all {
		if x == s {
			break
		}
		if x.h == s.h {
			k++
		}
	}
	return k*1_000_000 + s.h
}
