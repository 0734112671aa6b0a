package bench

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/config"
	"clustertx/hosts"
	"clustertx/hosts/hoststest"
	"clustertx/internal/testenv"
	"clustertx/journal"
	"clustertx/queue"
)

// hetRounds: each round runs the five variants; medians are reported.
// CLUSTERTX_BENCH_ROUNDS sets another number (to look at one run's log).
func hetRounds(b *testing.B) int {
	if s := os.Getenv("CLUSTERTX_BENCH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("CLUSTERTX_BENCH_ROUNDS=%q: want a number ≥ 1", s)
		}
		return n
	}
	return 3
}

// hetSpeeds are the hosts' speeds (× real time): two mounted hosts and a
// streaming one, as in issue 14.
var hetSpeeds = []struct {
	name      string
	speed     int
	streaming bool
}{{"fast", 4, false}, {"mid", 2, false}, {"slow", 1, true}}

// hetClips draws a batch of the heterogeneous benchmark: the durations (s)
// of 12 clips of 4–40 s (whole seconds), in the order given to the run.
func hetClips(seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, seed))
	var out []float64
	for range 12 {
		out = append(out, float64(int(4+36*rng.Float64())))
	}
	return out
}

// hetBatches are the benchmark's two batches, both drawn by hetClips.
//   - "mixed" (seed 14) was its first. First-in-first-out pulling does well
//     on it in the order given: 1.10 × the lower bound simulated, where
//     random orders of the same clips give 1.19 at the median.
//   - "issue" is issue 14's batch as the issue describes it, taken by a
//     rule that looks at nothing of ours: the first seed whose 12 clips hold
//     4.8 min of media (285–291 s), among them a 39 s and a 37 s clip, and
//     on which first-in-first-out, simulated in the order given, ends at
//     1.35–1.40 × the lower bound, as pytranscoder did on the issue's
//     batch. TestIssueBatchFollowsItsRule checks that it is that seed.
var hetBatches = []struct {
	name string
	seed uint64
}{{"mixed", 14}, {"issue", 2610}}

// issueBatchFits is the rule that chose the "issue" batch (hetBatches).
func issueBatchFits(tb testing.TB, clips []float64) bool {
	var total float64
	var has39, has37 bool
	for _, d := range clips {
		total += d
		has39, has37 = has39 || d == 39, has37 || d == 37
	}
	if total < 285 || total > 291 || !has39 || !has37 {
		return false
	}
	r, err := Simulate(hetSimBatch(clips), SimOptions{Policy: queue.FIFO})
	if err != nil {
		tb.Fatal(err)
	}
	return r.Ratio() >= 1.35 && r.Ratio() <= 1.40
}

// hetSimBatch is the benchmark's cluster and clips, in the given order, for
// the simulator: speeds known (warm), no transfers, no per-job costs.
func hetSimBatch(order []float64) *Batch {
	all := map[string]bool{}
	bt := &Batch{}
	for _, h := range hetSpeeds {
		all[h.name] = true
		bt.Hosts = append(bt.Hosts, SimHost{Name: h.name, Speed: float64(h.speed), Weight: float64(h.speed), Slots: 1})
	}
	for _, d := range order {
		bt.Jobs = append(bt.Jobs, SimJob{Work: d, Actual: d, Eligible: all})
	}
	return bt
}

// BenchmarkHeteroCluster (issue 14, real): three real sshd hosts on
// loopback at 4×, 2× and 1× real time, the 1× one streaming (prefetch
// on), and a batch of 12 clips of 4–40 s (hetBatches, one sub-benchmark
// each; 160x120, so that the encode itself is
// cheap on 2 cores). Each host's ffmpeg is a wrapper that reads the input
// at its speed (-readrate), which gives stable ratios on a shared machine.
// Each of 3 rounds makes five runs, each on fresh copies: cold (fresh
// journal) and warm (a copy of the cold run's journal), with our scheduler
// and with first-in-first-out pulling as pytranscoder does it (no backup
// copies, no prefetch), and cold without the calibration encode
// (cold-nocal). Reports the median makespan ÷ lower bound of each, for the
// bound at the nominal speeds (max(Σ media ÷ Σ speeds, longest clip ÷ 4);
// it ignores per-job costs: SSH, transfers, verification) and at the
// speeds the hosts really had.
// About 12 minutes a batch; run it alone:
// go test -v -run '^$' -bench HeteroCluster -benchtime 1x -timeout 60m ./bench
// (-bench HeteroCluster/issue for one batch).
func BenchmarkHeteroCluster(b *testing.B) {
	for _, bt := range hetBatches {
		b.Run(bt.name, func(b *testing.B) { benchHetero(b, hetClips(bt.seed)) })
	}
}

func benchHetero(b *testing.B, clips []float64) {
	testenv.NeedFFmpeg(b)
	dir := b.TempDir()
	media := filepath.Join(dir, "media")
	work := filepath.Join(dir, "work")
	for _, d := range []string{media, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	var y strings.Builder
	y.WriteString("config:\n  ffmpeg: ffmpeg\n  clusters:\n    bench:\n")
	var servers []*hoststest.SSHD
	var sum float64
	for _, h := range hetSpeeds {
		wrapper := filepath.Join(dir, "ffmpeg-"+h.name)
		script := fmt.Sprintf("#!/bin/sh\ncase \" $* \" in *\" -i \"*) exec ffmpeg -readrate %d \"$@\";; esac\nexec ffmpeg \"$@\"\n", h.speed)
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			b.Fatal(err)
		}
		s := hoststest.StartSSHD(b, hoststest.Options{})
		servers = append(servers, s)
		if h.streaming {
			y.WriteString(s.YAML(h.name, "type: streaming", "working_dir: "+work, "ffmpeg: "+wrapper))
		} else {
			view := filepath.Join(dir, h.name+"-view")
			if err := os.Symlink(media, view); err != nil {
				b.Fatal(err)
			}
			y.WriteString(s.YAML(h.name, "type: mounted", "path-substitutions:", "  - "+media+"/ "+view+"/", "ffmpeg: "+wrapper))
		}
		sum += float64(h.speed)
	}
	known := filepath.Join(dir, "known_hosts")
	hoststest.WriteKnownHosts(b, known, servers...)
	y.WriteString(ovProfileYAML)
	cfgPath := filepath.Join(dir, "transcode.yml")
	if err := os.WriteFile(cfgPath, []byte(y.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{Path: cfgPath, Strict: true})
	if err != nil {
		b.Fatal(err)
	}
	pristineDir := filepath.Join(dir, "pristine")
	if err := os.MkdirAll(pristineDir, 0o755); err != nil {
		b.Fatal(err)
	}
	var pristine []string
	var total, longest float64
	for i, d := range clips {
		p := filepath.Join(pristineDir, fmt.Sprintf("clip%02d.mp4", i))
		testenv.MakeClip(b, p, testenv.Clip{Seconds: d, Width: 160, Height: 120})
		pristine = append(pristine, p)
		total += d
		longest = max(longest, d)
	}
	lb := max(total/sum, longest/float64(hetSpeeds[0].speed))

	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		type result struct {
			name string
			wall time.Duration
		}
		var res []result
		busy, done := map[string]float64{}, map[string]float64{}
		checkPhase := map[string][]float64{} // run → seconds from Run to the host table
		estimates := map[string][]string{}   // host → calibrated speeds (cold runs)
		runs := []struct {
			name    string
			policy  queue.Policy
			journal string // the cold runs start one; the warm ones copy it
			warm    bool
			nocal   bool // Options.Calibrate off (FIFO ignores speeds: never calibrates)
		}{
			{"cold", queue.Smart, "smart", false, false},
			{"cold-nocal", queue.Smart, "nocal", false, true},
			{"FIFO-cold", queue.FIFO, "fifo", false, false},
			{"warm", queue.Smart, "smart", true, false},
			{"FIFO-warm", queue.FIFO, "smart", true, false},
		}
		for round := range hetRounds(b) {
			for k, r := range runs {
				if only := os.Getenv("CLUSTERTX_BENCH_RUNS"); only != "" && !strings.Contains(","+only+",", ","+r.name+",") && r.name != "cold" {
					continue
				}
				jpath := filepath.Join(dir, fmt.Sprintf("i%d-r%d-%s.jsonl", it, round, r.journal))
				if r.warm { // a copy of the cold run's journal: what it learned
					data, err := os.ReadFile(jpath)
					if err != nil {
						b.Fatal(err)
					}
					jpath = filepath.Join(dir, fmt.Sprintf("i%d-r%d-%d-warm.jsonl", it, round, k))
					if err := os.WriteFile(jpath, data, 0o644); err != nil {
						b.Fatal(err)
					}
				}
				jr, err := journal.Open(jpath)
				if err != nil {
					b.Fatal(err)
				}
				paths := copyClips(b, pristine, filepath.Join(media, fmt.Sprintf("i%d-r%d-%s", it, round, r.name)))
				cc := &checkClock{}
				rep, wall := runCluster(b, known, cfg, paths, func(o *cluster.Options) {
					o.Policy, o.Journal = r.policy, jr
					o.Calibrate = r.policy == queue.Smart && !r.nocal
					// First-in-first-out is pytranscoder's pulling: a slot
					// takes the next file when it is free, no backup copies
					// (as in the simulator's FIFO) and no prefetch (a FIFO
					// slot's prefetch is never taken back, so the 1× host
					// held a 35 s clip behind a 7 s one).
					fifo := r.policy == queue.FIFO
					o.NoSpeculation, o.NoPrefetch = fifo, fifo
					o.Observer = cc
					cc.start = time.Now()
					if os.Getenv("CLUSTERTX_BENCH_LOG") != "" { // the run's log lines, to see who did what and when
						o.Log = &stampWriter{w: os.Stderr, start: cc.start}
					}
				})
				if err := jr.Close(); err != nil {
					b.Fatal(err)
				}
				res = append(res, result{r.name, wall})
				checkPhase[r.name] = append(checkPhase[r.name], cc.at.Sub(cc.start).Seconds())
				if r.name == "cold" {
					for _, c := range rep.Hosts {
						estimates[c.Host] = append(estimates[c.Host], fmt.Sprintf("%.0f k (%.2f s)", c.Speed/1e3, c.CalibTime.Seconds()))
					}
				}
				for _, f := range rep.Files {
					busy[f.Host] += f.Elapsed.Seconds()
					done[f.Host] += f.Duration
				}
			}
		}
		// The speeds the hosts really had, per-job costs included: media
		// seconds done ÷ time spent on them, over all runs.
		var effSum, effFast float64
		var speeds []string
		for _, h := range hetSpeeds {
			if busy[h.name] > 0 {
				s := done[h.name] / busy[h.name]
				effSum += s
				effFast = max(effFast, s)
				speeds = append(speeds, fmt.Sprintf("%s %.2f×", h.name, s))
			}
		}
		lbEff := max(total/effSum, longest/effFast)
		var tbl strings.Builder
		fmt.Fprintf(&tbl, "hosts 4× and 2× (mounted), 1× (streaming); 12 clips, %.0f s of media; lower bound %.1f s at the nominal speeds, %.1f s at the measured ones (%s, per-job costs included)",
			total, lb, lbEff, strings.Join(speeds, ", "))
		walls := map[string][]float64{}
		var names []string
		for _, r := range res {
			if walls[r.name] == nil {
				names = append(names, r.name)
			}
			walls[r.name] = append(walls[r.name], r.wall.Seconds())
		}
		wall := map[string]float64{}
		for _, n := range names {
			w := median(walls[n])
			var per []string
			for _, x := range walls[n] {
				per = append(per, fmt.Sprintf("%.1f", x))
			}
			fmt.Fprintf(&tbl, "\n  %-10s %6.1f s  %.3f × LB  %.3f × measured LB  (rounds: %s s)", n, w, w/lb, w/lbEff, strings.Join(per, ", "))
			b.ReportMetric(w/lb, n+"/LB")
			b.ReportMetric(w/lbEff, n+"/mLB")
			wall[n] = w
		}
		for _, n := range names {
			fmt.Fprintf(&tbl, "\n  check phase %-10s median %.2f s", n, median(checkPhase[n]))
		}
		for _, h := range hetSpeeds {
			if e := estimates[h.name]; len(e) > 0 {
				fmt.Fprintf(&tbl, "\n  calibrated %s: %s (pixel-seconds/s at 1280x720; nominal %d × 921.6 k)", h.name, strings.Join(e, ", "), h.speed)
			}
		}
		for _, p := range [][2]string{{"warm", "FIFO-warm"}, {"cold", "FIFO-cold"}, {"cold", "cold-nocal"}} {
			if wall[p[0]] > 0 && wall[p[1]] > 0 {
				fmt.Fprintf(&tbl, "\n  %s ÷ %s %.3f", p[0], p[1], wall[p[0]]/wall[p[1]])
			}
		}
		b.Log(tbl.String())
	}
}

// stampWriter prefixes each write (a log line) with the seconds since start.
type stampWriter struct {
	w     io.Writer
	start time.Time
}

func (s *stampWriter) Write(p []byte) (int, error) {
	if _, err := fmt.Fprintf(s.w, "%6.2f %s", time.Since(s.start).Seconds(), p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// checkClock notes when the host table is reached: the check phase
// (connect, checks and, with Options.Calibrate, the calibration encodes,
// which wait for the first files probed). The rest of the files are
// probed while the first ones run.
type checkClock struct {
	cluster.NopObserver
	start, at time.Time
}

func (c *checkClock) HostChecked(hosts.CheckResult) {
	if c.at.IsZero() {
		c.at = time.Now()
	}
}
