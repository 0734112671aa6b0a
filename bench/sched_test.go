package bench

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"clustertx/queue"
)

const seeds = 7

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func simulate(b *testing.B, batch *Batch, o SimOptions) SimResult {
	b.Helper()
	r, err := Simulate(batch, o)
	if err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkSchedulerSim (issue benchmark 1, quality): 20 hosts × 2,000
// files over 7 seeds, the real queue on a virtual clock. Reports the median
// makespan ÷ lower bound of our scheduler (target ≤ 1.05) and, on the same
// batches, first-in-first-out pulling (pytranscoder) and speed-blind
// largest-first (the previous queue) as ratios to ours.
func BenchmarkSchedulerSim(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var ours, fifo, lpt, fifoRel, lptRel []float64
		var tbl strings.Builder
		fmt.Fprintf(&tbl, "\n%-5s %12s %10s %10s %10s\n", "seed", "LB (h)", "ours/LB", "FIFO/LB", "LPT/LB")
		for seed := uint64(1); seed <= seeds; seed++ {
			batch := GenBatch(seed, 20, 2000, 0)
			s := simulate(b, batch, SimOptions{Policy: queue.Smart, Seed: seed})
			f := simulate(b, batch, SimOptions{Policy: queue.FIFO, Seed: seed})
			l := simulate(b, batch, SimOptions{Policy: queue.LPT, Seed: seed})
			ours, fifo, lpt = append(ours, s.Ratio()), append(fifo, f.Ratio()), append(lpt, l.Ratio())
			fifoRel, lptRel = append(fifoRel, f.Makespan/s.Makespan), append(lptRel, l.Makespan/s.Makespan)
			fmt.Fprintf(&tbl, "%-5d %12.1f %10.4f %10.4f %10.4f\n", seed, s.LowerBound/3600, s.Ratio(), f.Ratio(), l.Ratio())
		}
		fmt.Fprintf(&tbl, "%-5s %12s %10.4f %10.4f %10.4f\n", "median", "", median(ours), median(fifo), median(lpt))
		fmt.Fprintf(&tbl, "FIFO ÷ ours (median of per-seed ratios): %.3f   LPT ÷ ours: %.3f   target ours/LB ≤ 1.05", median(fifoRel), median(lptRel))
		fmt.Printf("BenchmarkSchedulerSim: 20 hosts × 2,000 files, makespan ÷ lower bound:%s\n", tbl.String())
		b.ReportMetric(median(ours), "ours/LB")
		b.ReportMetric(median(fifoRel), "FIFO/ours")
		b.ReportMetric(median(lptRel), "LPT/ours")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSchedulerScale (issue benchmark 1, cost): 100 hosts × 100,000
// files through the real queue. Reports the manager's wall and CPU time for
// the whole simulated batch (queue + simulator), the time spent inside queue
// calls, and peak heap (target < 200 MB), with makespan ÷ lower bound.
func BenchmarkSchedulerScale(b *testing.B) { benchScale(b, false) }

// BenchmarkSchedulerScaleLanes is BenchmarkSchedulerScale with encoder
// lanes and session caps (SimOptions.Lanes): the cost of issue 16's
// per-variant speeds on the same batch.
func BenchmarkSchedulerScaleLanes(b *testing.B) { benchScale(b, true) }

func benchScale(b *testing.B, lanes bool) {
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var peakInuse, peakSys uint64
		sample := func() {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peakInuse = max(peakInuse, m.HeapInuse)
			peakSys = max(peakSys, m.HeapSys)
		}
		cpu0, wall0 := cpuTime(), time.Now()
		batch := GenBatch(1, 100, 100_000, 0)
		sample()
		r := simulate(b, batch, SimOptions{Policy: queue.Smart, Seed: 1, MemSample: sample, Lanes: lanes})
		sample()
		wall, cpu := time.Since(wall0), cpuTime()-cpu0
		mb := func(x uint64) float64 { return float64(x) / (1 << 20) }
		b.Logf("100 hosts × 100,000 files (lanes %v): makespan/LB %.4f, %d events; wall %.2fs, CPU %.2fs, in queue calls %.2fs; peak heap in use %.0f MB (heap reserved %.0f MB; target < 200 MB)",
			lanes, r.Ratio(), r.Events, wall.Seconds(), cpu.Seconds(), r.QueueTime.Seconds(), mb(peakInuse), mb(peakSys))
		b.ReportMetric(r.Ratio(), "ours/LB")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(cpu.Seconds(), "cpu-s")
		b.ReportMetric(r.QueueTime.Seconds(), "queue-s")
		b.ReportMetric(mb(peakInuse), "peak-heap-MB")
	}
}

// BenchmarkSpeculation (issue benchmark 5): 20 hosts × 2,000 files whose
// predictions are noisy (actual work = estimate × lognormal σ 0.2, each run
// × lognormal σ 0.4), with and without tail speculation, 7 seeds. Reports
// the median makespan ratio on ÷ off (< 1 is a gain) and the work thrown
// away by losing copies.
func BenchmarkSpeculation(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var rel, on, off, waste []float64
		var tbl strings.Builder
		fmt.Fprintf(&tbl, "\n%-5s %10s %10s %8s %8s %10s\n", "seed", "off/LB", "on/LB", "on/off", "copies", "wasted %")
		for seed := uint64(1); seed <= seeds; seed++ {
			batch := GenBatch(seed, 20, 2000, 0.2)
			o := simulate(b, batch, SimOptions{Policy: queue.Smart, Seed: seed, RunNoise: 0.4})
			s := simulate(b, batch, SimOptions{Policy: queue.Smart, Seed: seed, RunNoise: 0.4, Speculate: true})
			var slotSecs float64
			for _, h := range batch.Hosts {
				slotSecs += float64(h.Slots)
			}
			w := 100 * s.Wasted / (slotSecs * s.Makespan)
			rel, on, off, waste = append(rel, s.Makespan/o.Makespan), append(on, s.Ratio()), append(off, o.Ratio()), append(waste, w)
			fmt.Fprintf(&tbl, "%-5d %10.4f %10.4f %8.3f %8d %10.2f\n", seed, o.Ratio(), s.Ratio(), s.Makespan/o.Makespan, s.Copies, w)
		}
		fmt.Fprintf(&tbl, "%-5s %10.4f %10.4f %8.3f %8s %10.2f", "median", median(off), median(on), median(rel), "", median(waste))
		fmt.Printf("BenchmarkSpeculation: on vs off, noisy predictions (wasted = loser slot-time ÷ cluster slot-time):%s\n", tbl.String())
		b.ReportMetric(median(rel), "on/off")
		b.ReportMetric(median(on), "on/LB")
		b.ReportMetric(median(off), "off/LB")
		b.ReportMetric(median(waste), "wasted-%")
	}
}
