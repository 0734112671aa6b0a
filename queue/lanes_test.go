package queue

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// profItem is an item of a profile (its Payload), which the lanes below
// map to an encoder variant per host.
func profItem(id int, work float64, profile string, hosts ...string) *Item {
	it := item(id, work, hosts...)
	it.Payload = profile
	return it
}

// laneTable is a lanes function: host → profile → lane (missing: Lane{}).
type laneTable map[string]map[string]Lane

func (lt laneTable) fn(it *Item, host string) Lane { return lt[host][it.Payload.(string)] }

var nvenc = Lane{Key: "hevc_nvenc", Family: "nvenc"}

// The GPU host's default (CPU) speed is slow, its NVENC lane fast: the
// film goes to it, and the CPU host, faster on the default lane, takes
// the clip. Without lanes the CPU host takes the film.
func TestFastLaneGetsTheFilm(t *testing.T) {
	for _, withLanes := range []bool{false, true} {
		q, _ := newVirtual(Options{})
		q.SetHostSpeed("gpu", 1)
		q.SetHostSpeed("cpu", 4)
		q.SetLaneSpeed("gpu", "hevc_nvenc", 20)
		if withLanes {
			q.SetLanes(laneTable{"gpu": {"hw": nvenc}}.fn)
		}
		q.Push(profItem(1, 10000, "hw", "gpu", "cpu"), profItem(2, 100, "hw", "gpu", "cpu"))
		got := mustNext(t, q, "cpu")
		switch {
		case withLanes && got.ID != 2:
			t.Fatalf("with lanes, cpu got %d, want the clip 2: the film takes 500 s on gpu's NVENC, 2500 s on cpu", got.ID)
		case !withLanes && got.ID != 1:
			t.Fatalf("without lanes, cpu got %d, want the film 1 (gpu is 4× slower on its default)", got.ID)
		}
		if withLanes {
			if got := mustNext(t, q, "gpu"); got.ID != 1 {
				t.Fatalf("gpu got %d, want the film", got.ID)
			}
		}
	}
}

// A host with 4 slots and an NVENC cap of 2 never holds more than 2 NVENC
// copies, whether they come from Next, Prefetch, Speculate or are queued
// and begun.
func TestSessionCapAcrossNextPrefetchSpeculateBegin(t *testing.T) {
	q, clk := newVirtual(Options{Speculate: true, SpecMinGain: sec(1)})
	q.SetSlots("gpu", 4)
	q.SetSlots("cpu", 1)
	q.ObserveSpeed("gpu", 1, time.Second) // remembered default speeds
	q.ObserveSpeed("cpu", 1, time.Second)
	q.SetLaneSpeed("gpu", "hevc_nvenc", 50)
	q.SetSessionCap("gpu", "nvenc", 2)
	q.SetLanes(laneTable{"gpu": {"hw": nvenc}}.fn)
	var items []*Item
	for i := range 6 {
		items = append(items, profItem(i, 1000-float64(i), "hw", "gpu", "cpu"))
	}
	q.Push(items...)
	gpu := q.hosts["gpu"]
	check := func(when string) {
		t.Helper()
		if n := gpu.family("nvenc"); n > 2 {
			t.Fatalf("%s: gpu holds %d NVENC copies, cap 2", when, n)
		}
	}
	q.SetDown("gpu", true) // cpu takes an item gpu would want for itself
	q.Push(profItem(99, 1000, "hw", "gpu", "cpu"))
	c := mustNext(t, q, "cpu") // 1000 s on cpu, 20 s on gpu: worth a copy
	q.SetDown("gpu", false)
	a, b := mustNext(t, q, "gpu"), mustNext(t, q, "gpu")
	check("two Next")
	if it, wait := q.TryNext("gpu"); it != nil || !wait {
		t.Fatalf("gpu at its cap got %v (wait %v), want nothing and to wait", it, wait)
	}
	if it := q.Prefetch("gpu"); it != nil {
		t.Fatalf("gpu at its cap prefetched %d", it.ID)
	}
	if it := q.Speculate("gpu"); it != nil {
		t.Fatalf("gpu at its cap got a speculative copy of %d", it.ID)
	}
	check("Speculate")
	clk.advance(sec(20))
	q.Done(a)
	d := q.Prefetch("gpu") // a session is free: one queued copy takes it
	if d == nil {
		t.Fatal("gpu with a free session prefetched nothing")
	}
	check("Prefetch")
	if it, _ := q.TryNext("gpu"); it != nil {
		t.Fatalf("gpu got %d while its queued copy holds the free session", it.ID)
	}
	if it := q.Speculate("gpu"); it != nil {
		t.Fatalf("gpu got a speculative copy of %d while its queued copy holds the free session", it.ID)
	}
	q.Done(b)
	q.Begin(d, "gpu")
	check("Begin")
	if it := q.Speculate("gpu"); it != c {
		t.Fatalf("gpu speculated %v, want a copy of cpu's item %d now that a session is free", it, c.ID)
	}
	check("Speculate with a free session")

	// Random operations: the cap holds throughout, and is reached.
	rng := rand.New(rand.NewPCG(1, 2))
	reached := false
	for step := range 2000 {
		clk.advance(sec(rng.Float64() * 5))
		if rng.IntN(10) == 0 {
			q.Push(profItem(100+step, 10+rng.Float64()*1000, []string{"hw", "cpu"}[rng.IntN(2)], "gpu", "cpu"))
		}
		switch rng.IntN(5) {
		case 0:
			q.TryNext("gpu")
		case 1:
			q.Prefetch("gpu")
		case 2:
			q.Speculate("gpu")
		case 3:
			for _, r := range gpu.runs {
				if r.queued && rng.IntN(2) == 0 {
					q.Begin(r.it, "gpu")
					break
				}
			}
		case 4:
			if len(gpu.runs) > 0 {
				r := gpu.runs[rng.IntN(len(gpu.runs))]
				if !r.queued {
					q.Finish(r.it, "gpu")
				}
			}
		}
		if rng.IntN(3) == 0 {
			q.TryNext("cpu")
		}
		check("random step")
		reached = reached || gpu.family("nvenc") == 2
	}
	if !reached {
		t.Fatal("the random steps never reached the cap: the check above says nothing")
	}
}

// A host at its NVENC cap still fills a free slot with an item whose lane
// there is the CPU encoder, passing over a larger NVENC item.
func TestCappedHostTakesACPULaneItem(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetSlots("gpu", 2)
	q.SetSessionCap("gpu", "nvenc", 1)
	q.SetLanes(laneTable{"gpu": {"hw": nvenc}}.fn)
	q.Push(profItem(1, 900, "hw", "gpu"), profItem(2, 800, "hw", "gpu"), profItem(3, 100, "plain", "gpu"))
	if got := mustNext(t, q, "gpu"); got.ID != 1 {
		t.Fatalf("gpu got %d, want the largest, 1", got.ID)
	}
	if got := mustNext(t, q, "gpu"); got.ID != 3 {
		t.Fatalf("gpu at its NVENC cap got %d, want the CPU-lane item 3", got.ID)
	}
	if it, wait := q.TryNext("gpu"); it != nil || !wait {
		t.Fatalf("gpu got %v (wait %v), want to wait for a session for item 2", it, wait)
	}
	q.Done(q.Pending()[0]) // item 1: the session frees
	if got := mustNext(t, q, "gpu"); got.ID != 2 {
		t.Fatalf("gpu got %d, want item 2 once its session is free", got.ID)
	}
}

// Items whose only host is at its cap wait; they are neither failed nor
// lost, and Next on another host does not return nil for them.
func TestItemsWaitForACappedHost(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetSlots("gpu", 3)
	q.SetSessionCap("gpu", "nvenc", 1)
	q.SetLanes(laneTable{"gpu": {"hw": nvenc}}.fn)
	q.Push(profItem(1, 10, "hw", "gpu"), profItem(2, 10, "hw", "gpu"))
	first := mustNext(t, q, "gpu")
	if it, wait := q.TryNext("gpu"); it != nil || !wait {
		t.Fatalf("gpu got %v (wait %v), want to wait", it, wait)
	}
	if p, r := q.Counts(); p != 1 || r != 1 {
		t.Fatalf("counts %d pending, %d running, want 1, 1", p, r)
	}
	q.Done(first)
	if got := mustNext(t, q, "gpu"); got.ID == first.ID {
		t.Fatalf("gpu got %d again", got.ID)
	}
}

// Demoted from NVENC to libx265, the GPU host's prediction for the film
// uses libx265's speed: the CPU host no longer leaves the film to it.
func TestLanesChangedUsesTheNewLaneSpeed(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetHostSpeed("gpu", 4)
	q.SetHostSpeed("cpu", 4)
	q.SetLaneSpeed("gpu", "hevc_nvenc", 40)
	q.SetLaneSpeed("gpu", "libx265", 0.5)
	lt := laneTable{"gpu": {"hw": nvenc}}
	q.SetLanes(lt.fn)
	q.Push(profItem(1, 10000, "hw", "gpu", "cpu"), profItem(2, 10, "hw", "gpu", "cpu"))
	if got := mustNext(t, q, "cpu"); got.ID != 2 {
		t.Fatalf("cpu got %d, want the clip: the film is gpu's NVENC's", got.ID)
	}
	if it, wait := q.TryNext("cpu"); it != nil || !wait {
		t.Fatalf("cpu got %v (wait %v), want to wait for gpu", it, wait)
	}
	lt["gpu"]["hw"] = Lane{Key: "libx265"} // NVENC kept failing on gpu
	q.LanesChanged("gpu")
	if got := mustNext(t, q, "cpu"); got.ID != 1 {
		t.Fatalf("cpu got %d, want the film: gpu now needs 20000 s for it", got.ID)
	}
}

// A queued copy whose lane moves, by a demotion, into a family at its cap
// goes back to the queue and its Lost channel closes.
func TestLanesChangedDropsAQueuedCopyOverTheCap(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetSlots("gpu", 1)
	q.SetSessionCap("gpu", "qsv", 1)
	qsv := Lane{Key: "hevc_qsv", Family: "qsv"}
	lt := laneTable{"gpu": {"a": qsv, "b": nvenc}}
	q.SetLanes(lt.fn)
	q.Push(profItem(1, 100, "a", "gpu"), profItem(2, 50, "b", "gpu"))
	run1 := mustNext(t, q, "gpu")
	queued := q.Prefetch("gpu")
	if run1.ID != 1 || queued == nil || queued.ID != 2 {
		t.Fatalf("gpu runs %v and queued %v, want 1 and 2", run1, queued)
	}
	lost := q.Lost(queued, "gpu")
	lt["gpu"]["b"] = qsv // NVENC demoted to QSV, whose one session runs item 1
	q.LanesChanged("gpu")
	if !isClosed(lost) {
		t.Fatal("the queued copy over the QSV cap was not dropped")
	}
	if p, _ := q.Counts(); p != 1 {
		t.Fatalf("%d pending, want item 2 back", p)
	}
}

// Lane priors come back from ObservedLaneSpeeds as they were set, so the
// journal keeps them; a sample replaces a prior, and is recorded under
// the lane the copy ran with, not the host's default.
func TestObservedLaneSpeedsRoundTrip(t *testing.T) {
	q, clk := newVirtual(Options{})
	q.SetHostSpeed("gpu", 2)
	q.SetLaneSpeed("gpu", "hevc_nvenc", 12)
	q.SetLaneSpeed("igpu", "hevc_qsv", 7)
	want := map[string]map[string]float64{"gpu": {"hevc_nvenc": 12}, "igpu": {"hevc_qsv": 7}}
	got := q.ObservedLaneSpeeds()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ObservedLaneSpeeds = %v, want %v", got, want)
	}
	q2 := New()
	for h, m := range got {
		for k, s := range m {
			q2.SetLaneSpeed(h, k, s)
		}
	}
	if got2 := q2.ObservedLaneSpeeds(); !reflect.DeepEqual(got2, want) {
		t.Fatalf("fed back: %v, want %v", got2, want)
	}
	if s := q.LaneSpeed("gpu", "libx265"); s != q.HostSpeed("gpu") {
		t.Fatalf("an unknown lane: %v, want the host's default speed %v", s, q.HostSpeed("gpu"))
	}

	q.SetLanes(laneTable{"gpu": {"hw": nvenc}}.fn)
	q.Push(profItem(1, 300, "hw", "gpu"))
	it := mustNext(t, q, "gpu")
	clk.advance(10 * time.Second)
	q.Done(it)
	if s := q.LaneSpeed("gpu", "hevc_nvenc"); math.Abs(s-30) > 1e-9 {
		t.Fatalf("NVENC lane speed %v after 300 work in 10 s, want 30 (the sample replaces the prior)", s)
	}
	// No host has a default-lane sample: the weights are scaled by the lane
	// samples, gpu's 2 × 30/2.
	if s := q.HostSpeed("gpu"); math.Abs(s-30) > 1e-9 {
		t.Fatalf("default speed %v, want the weight 2 scaled by the lane samples: 30", s)
	}
	if _, ok := q.ObservedSpeeds()["gpu"]; ok {
		t.Fatal("the NVENC sample was recorded as the host's default speed")
	}
	if s := q.ObservedLaneSpeeds()["gpu"]["hevc_nvenc"]; math.Abs(s-30) > 1e-9 {
		t.Fatalf("ObservedLaneSpeeds has %v, want 30", s)
	}
}
