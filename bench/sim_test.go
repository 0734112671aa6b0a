package bench

import (
	"math"
	"testing"

	"clustertx/queue"
)

func TestSimSingleSlotIsSumOfJobs(t *testing.T) {
	b := GenBatch(3, 1, 50, 0)
	r, err := Simulate(b, SimOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var want float64
	for _, j := range b.Jobs {
		want += j.Actual / b.Hosts[0].Speed
	}
	if b.Hosts[0].Slots == 1 && math.Abs(r.Makespan-want) > 1e-6*want {
		t.Fatalf("makespan %v, want %v", r.Makespan, want)
	}
	if r.Makespan < r.LowerBound*(1-1e-9) {
		t.Fatalf("makespan %v below the lower bound %v", r.Makespan, r.LowerBound)
	}
}

func TestSimSmallBatchesEndAboveLowerBound(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		b := GenBatch(seed, 6, 200, 0.2)
		for _, o := range []SimOptions{{Policy: queue.Smart}, {Policy: queue.FIFO}, {Policy: queue.Smart, Speculate: true, RunNoise: 0.4}} {
			o.Seed = seed
			r, err := Simulate(b, o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Makespan < r.LowerBound*(1-1e-9) && o.RunNoise == 0 {
				t.Fatalf("seed %d %+v: makespan %v below the lower bound %v", seed, o, r.Makespan, r.LowerBound)
			}
			r2, _ := Simulate(b, o)
			if r2.Makespan != r.Makespan {
				t.Fatalf("not deterministic: %v vs %v", r.Makespan, r2.Makespan)
			}
		}
	}
}

// A streaming host alone: without prefetch every job uploads, encodes and
// downloads in turn; with prefetch the transfers hide behind the encodes
// except the first upload and the last download.
func TestSimPrefetchHidesTransfers(t *testing.T) {
	b := WithStreaming(GenBatch(3, 1, 50, 0), 110e6)
	b.Hosts[0].Slots = 1
	h := b.Hosts[0]
	if h.Bandwidth == 0 {
		t.Fatal("WithStreaming left the only host mounted")
	}
	var enc, xfer, minUp, maxUp, minDown, maxDown float64
	minUp, minDown = math.Inf(1), math.Inf(1)
	for _, j := range b.Jobs {
		up, down := j.Bytes/h.Bandwidth, j.OutBytes/h.Bandwidth
		enc += j.Actual / h.Speed
		xfer += up + down
		minUp, maxUp, minDown, maxDown = min(minUp, up), max(maxUp, up), min(minDown, down), max(maxDown, down)
	}
	off, err := Simulate(b, SimOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	on, err := Simulate(b, SimOptions{Seed: 1, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(off.Makespan-(enc+xfer)) > 1e-6*off.Makespan {
		t.Fatalf("off: makespan %v, want Σ (upload + encode + download) = %v", off.Makespan, enc+xfer)
	}
	if on.Makespan < enc+minUp+minDown-1e-6 || on.Makespan > enc+maxUp+maxDown+1e-6 {
		t.Fatalf("on: makespan %v, want Σ encode %v + one upload + one download", on.Makespan, enc)
	}
	t.Logf("one streaming host, 50 files: off %.0f s, on %.0f s (Σ encode %.0f s, Σ transfers %.0f s)", off.Makespan, on.Makespan, enc, xfer)
}

func TestSimPrefetchMixedCluster(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		b := WithStreaming(GenBatch(seed, 8, 300, 0.2), 11e6)
		off, err := Simulate(b, SimOptions{Seed: seed, RunNoise: 0.3})
		if err != nil {
			t.Fatal(err)
		}
		on, err := Simulate(b, SimOptions{Seed: seed, RunNoise: 0.3, Prefetch: true})
		if err != nil {
			t.Fatal(err)
		}
		again, _ := Simulate(b, SimOptions{Seed: seed, RunNoise: 0.3, Prefetch: true})
		if again.Makespan != on.Makespan {
			t.Fatalf("not deterministic: %v vs %v", on.Makespan, again.Makespan)
		}
		if on.Makespan < on.LowerBound*(1-1e-9) {
			t.Fatalf("seed %d: makespan %v below the lower bound %v", seed, on.Makespan, on.LowerBound)
		}
		t.Logf("seed %d: on/off %.3f", seed, on.Makespan/off.Makespan)
	}
	if _, err := Simulate(GenBatch(1, 2, 5, 0), SimOptions{Prefetch: true, Speculate: true}); err == nil {
		t.Fatal("Prefetch with Speculate must be refused")
	}
}
