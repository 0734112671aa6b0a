package bench

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"clustertx/queue"
)

// issueBatch is issue 14's cold-start cluster: hosts at 4×, 2× and 1× real
// time, the 1× one streaming (prefetch on), and 12 clips of 4–40 s.
func issueBatch(seed uint64) *Batch {
	rng := rand.New(rand.NewPCG(seed, 0xc01d))
	all := map[string]bool{"h4x": true, "h2x": true, "h1x": true}
	b := &Batch{Hosts: []SimHost{
		{Name: "h4x", Speed: 4, Weight: 4, Slots: 1},
		{Name: "h2x", Speed: 2, Weight: 2, Slots: 1},
		{Name: "h1x", Speed: 1, Weight: 1, Slots: 1, Bandwidth: 50e6},
	}}
	for range 12 {
		d := 4 + 36*rng.Float64()
		b.Jobs = append(b.Jobs, SimJob{Work: d, Actual: d, Eligible: all, Bytes: d * 10e6 / 8, OutBytes: d * 5e6 / 8})
	}
	return b
}

// BenchmarkColdStart (issue 14): how fast the scheduler learns host speeds
// it does not know. Cold: every host has the same prior. Compared, on the
// issue's small cluster (12 clips) and on 20 hosts × 200 files (GenBatch):
// the queue without help (cold), short jobs first while a host's speed is
// a guess (queue.Options.ShortFirst, what the manager uses), a calibration
// encode per host at check time (the queue is given the true speed ×
// lognormal σ 0.3, and 0.5 s is added), that calibrated speed as a guess
// with ShortFirst, the warm case (priors within ~25%
// of the truth, as a journal gives) and first-in-first-out, all with
// streaming prefetch. Reports median makespan ÷ lower bound per variant.
func BenchmarkColdStart(b *testing.B) {
	type variant struct {
		name string
		o    SimOptions
	}
	variants := []variant{
		{"cold", SimOptions{Cold: true}},
		{"short-first", SimOptions{Cold: true, ShortFirst: true}},
		{"calibrate", SimOptions{Calibrate: 0.3, CalibCost: 0.5}},
		{"calib+short", SimOptions{Calibrate: 0.3, CalibCost: 0.5, Cold: true, ShortFirst: true}},
		{"warm", SimOptions{}},
		{"FIFO", SimOptions{Cold: true, Policy: queue.FIFO}},
	}
	scenarios := []struct {
		name  string
		batch func(seed uint64) *Batch
	}{
		{"issue 3 hosts × 12 clips", issueBatch},
		{"20 hosts × 200 files", func(seed uint64) *Batch { return GenBatch(seed, 20, 200, 0.2) }},
	}
	for i := 0; i < b.N; i++ {
		var tbl strings.Builder
		for _, sc := range scenarios {
			fmt.Fprintf(&tbl, "\n%s, makespan ÷ lower bound, median of %d seeds (range):\n", sc.name, seeds)
			for _, v := range variants {
				var rs []float64
				for seed := uint64(1); seed <= seeds; seed++ {
					o := v.o
					o.Seed, o.Prefetch = seed, true
					rs = append(rs, simulate(b, sc.batch(seed), o).Ratio())
				}
				lo, hi := rs[0], rs[0]
				for _, r := range rs {
					lo, hi = min(lo, r), max(hi, r)
				}
				fmt.Fprintf(&tbl, "  %-15s %6.3f  (%.3f–%.3f)\n", v.name, median(rs), lo, hi)
				if sc.name[0] == 'i' {
					b.ReportMetric(median(rs), v.name+"/LB")
				}
			}
		}
		fmt.Printf("BenchmarkColdStart:%s", tbl.String())
	}
}

// BenchmarkFIFOOrders (issue 14): how much first-in-first-out pulling
// depends on the order the files come in, on the real benchmark's cluster
// and batches (BenchmarkHeteroCluster: 4×, 2×, 1×; hetBatches), simulated
// with speeds known (warm), no transfers and no per-job costs. For each
// batch in its own order and in 2,000 random orders of the same clips it
// reports FIFO's makespan ÷ the lower bound, and ours ÷ FIFO (ours does
// not depend on the order): the share of orders where ours ≤ 0.8 × FIFO
// says how often issue 14's "warm ≤ 0.8 × FIFO" can be met on that batch.
func BenchmarkFIFOOrders(b *testing.B) {
	const orders = 2000
	for _, bt := range hetBatches {
		b.Run(bt.name, func(b *testing.B) {
			clips := hetClips(bt.seed)
			var total float64
			for _, d := range clips {
				total += d
			}
			for i := 0; i < b.N; i++ {
				ours := simulate(b, hetSimBatch(clips), SimOptions{})
				given := simulate(b, hetSimBatch(clips), SimOptions{Policy: queue.FIFO})
				rng := rand.New(rand.NewPCG(14, 0x0dd5))
				var fifo, rel []float64
				under := 0
				for range orders {
					o := append([]float64(nil), clips...)
					rng.Shuffle(len(o), func(i, j int) { o[i], o[j] = o[j], o[i] })
					f := simulate(b, hetSimBatch(o), SimOptions{Policy: queue.FIFO})
					fifo, rel = append(fifo, f.Ratio()), append(rel, ours.Makespan/f.Makespan)
					if ours.Makespan <= 0.8*f.Makespan {
						under++
					}
				}
				sort.Float64s(fifo)
				b.Logf("batch %q: 12 clips, %.0f s of media, hosts 4×, 2×, 1× (warm, simulated); ours %.3f × the lower bound in any order\n"+
					"  the batch's order: FIFO %.3f × LB, ours ÷ FIFO %.3f\n"+
					"  %d random orders: FIFO median %.3f × LB (10th percentile %.3f, 90th %.3f); ours ÷ FIFO median %.3f; ≤ 0.8 in %.0f %% of orders",
					bt.name, total, ours.Ratio(), given.Ratio(), ours.Makespan/given.Makespan,
					orders, median(fifo), fifo[orders/10], fifo[orders*9/10], median(rel), 100*float64(under)/orders)
				b.ReportMetric(given.Ratio(), "FIFO-given/LB")
				b.ReportMetric(median(fifo), "FIFO/LB")
				b.ReportMetric(median(rel), "ours/FIFO")
			}
		})
	}
}

// TestIssueBatchFollowsItsRule: the benchmark's "issue" batch is the first
// seed that fits the rule written down for it (hetBatches), so that the
// batch was not picked for how our scheduler does on it.
func TestIssueBatchFollowsItsRule(t *testing.T) {
	var want uint64
	for _, bt := range hetBatches {
		if bt.name == "issue" {
			want = bt.seed
		}
	}
	for seed := uint64(1); seed <= want; seed++ {
		if issueBatchFits(t, hetClips(seed)) {
			if seed != want {
				t.Fatalf("seed %d fits the issue batch's rule first, not %d", seed, want)
			}
			return
		}
	}
	t.Fatalf("seed %d does not fit the issue batch's rule", want)
}
