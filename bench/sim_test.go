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
