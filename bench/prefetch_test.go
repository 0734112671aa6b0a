package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/config"
	"clustertx/hosts/hoststest"
	"clustertx/internal/testenv"
	"clustertx/queue"
)

// Streaming prefetch benchmark (issue 6, "Speed"; benchmark 5 in
// bench/README.md): the same heterogeneous batch through a streaming host
// with prefetch off and on.
const (
	pfRounds  = 5
	pfProfile = `
profiles:
  h264:
    output_options: -c:v libx264 -preset veryfast -crf 28 -c:a copy
    extension: .mkv
rules:
  default:
    profile: h264
`
)

// pfClips is the batch: short clips of mixed resolution and bitrate, so
// that some jobs are dominated by their encode and others carry large
// files (noise compresses badly).
var pfClips = []struct {
	n    int
	clip testenv.Clip
}{
	{3, testenv.Clip{Seconds: 2, Width: 640, Height: 480, Noise: true, AudioLangs: []string{"eng"}}},
	{3, testenv.Clip{Seconds: 1, Width: 1280, Height: 720, Noise: true, AudioLangs: []string{"eng"}}},
	{3, testenv.Clip{Seconds: 3, Width: 1280, Height: 720, AudioLangs: []string{"eng"}}},
	{3, testenv.Clip{Seconds: 4, Width: 320, Height: 240, AudioLangs: []string{"eng"}}},
}

// xferTimes sums the transfers a run reports.
type xferTimes struct {
	cluster.NopObserver
	mu      sync.Mutex
	d       time.Duration
	n       int
	bytes   int64
	started int
}

func (x *xferTimes) Transfer(_ string, _ bool, n int64, d time.Duration) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.d += d
	x.n++
	x.bytes += n
}

func (x *xferTimes) JobStarted(cluster.JobInfo) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.started++
}

// BenchmarkPrefetch (real): 12 clips of mixed size (noise 640x480 and
// 1280x720, test pattern 1280x720 and 320x240, 1–4 s, with AAC audio)
// encoded with x264 veryfast through cluster.Run on one streaming host (a
// real sshd on loopback, one slot), with prefetch off (--no-prefetch) and
// on, on fresh copies of the clips, in alternating order over 5 rounds.
// Reports the median of the per-round wall ratios on ÷ off (< 1: prefetch
// is faster), the median walls, and the transfer time there was to hide.
func BenchmarkPrefetch(b *testing.B) {
	testenv.NeedFFmpeg(b)
	dir := b.TempDir()
	media, work := filepath.Join(dir, "media"), filepath.Join(dir, "work")
	for _, d := range []string{media, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	srv := hoststest.StartSSHD(b, hoststest.Options{})
	known := filepath.Join(dir, "known_hosts")
	hoststest.WriteKnownHosts(b, known, srv)
	cfgPath := filepath.Join(dir, "transcode.yml")
	yml := "config:\n  ffmpeg: ffmpeg\n  clusters:\n    bench:\n" + srv.YAML("gamer", "type: streaming", "working_dir: "+work) + pfProfile
	if err := os.WriteFile(cfgPath, []byte(yml), 0o644); err != nil {
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
	var total int64
	for k, c := range pfClips {
		for i := 0; i < c.n; i++ {
			p := filepath.Join(pristineDir, fmt.Sprintf("clip %d-%d.mp4", k, i))
			testenv.MakeClip(b, p, c.clip)
			st, err := os.Stat(p)
			if err != nil {
				b.Fatal(err)
			}
			total += st.Size()
			pristine = append(pristine, p)
		}
	}
	runOnce := func(paths []string, prefetch bool) (time.Duration, *xferTimes) {
		obs := &xferTimes{}
		_, wall := runCluster(b, known, cfg, paths, func(o *cluster.Options) {
			o.NoPrefetch, o.Observer = !prefetch, obs
		})
		if obs.started != len(paths) {
			b.Fatalf("%d jobs started for %d files (a retry makes the run unclean)", obs.started, len(paths))
		}
		return wall, obs
	}

	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		var ratio, offS, onS, xferS []float64
		for round := 0; round < pfRounds; round++ {
			rdir := filepath.Join(media, fmt.Sprintf("i%d-r%d", it, round))
			offSrc := copyClips(b, pristine, filepath.Join(rdir, "off"))
			onSrc := copyClips(b, pristine, filepath.Join(rdir, "on"))
			var off, on time.Duration
			var offX *xferTimes
			steps := []func(){
				func() { off, offX = runOnce(offSrc, false) },
				func() { on, _ = runOnce(onSrc, true) },
			}
			for k := range steps { // alternate which goes first
				steps[(k+round)%len(steps)]()
			}
			if err := os.RemoveAll(rdir); err != nil {
				b.Fatal(err)
			}
			if left, _ := os.ReadDir(work); len(left) > 0 {
				b.Fatalf("working_dir not empty after a run: %v", left)
			}
			ratio = append(ratio, on.Seconds()/off.Seconds())
			offS, onS, xferS = append(offS, off.Seconds()), append(onS, on.Seconds()), append(xferS, offX.d.Seconds())
		}
		var per []string
		for _, r := range ratio {
			per = append(per, fmt.Sprintf("%.3f", r))
		}
		b.Logf("real: %d clips (%.0f MiB; noise 640x480 and 1280x720, pattern 1280x720 and 320x240, 1–4 s, AAC) → x264 veryfast, 1 streaming host × 1 slot, loopback sshd; medians of %d rounds",
			len(pristine), float64(total)/(1<<20), pfRounds)
		b.Logf("prefetch off %.2f s, on %.2f s: on/off %.3f (per round %s); Σ transfers in the off run %.2f s (%.0f%% of its wall)",
			median(offS), median(onS), median(ratio), strings.Join(per, " "), median(xferS), 100*median(xferS)/median(offS))
		b.ReportMetric(median(ratio), "on/off")
		b.ReportMetric(median(offS), "off-s")
		b.ReportMetric(median(onS), "on-s")
		b.ReportMetric(median(xferS), "xfer-s")
	}
}

// BenchmarkPrefetchSim (simulated): 20 hosts × 2,000 files (GenBatch, as
// BenchmarkSchedulerSim), the second half of the hosts streaming: each job
// there uploads its source and downloads its output (sizes: duration ×
// 4/10/40 Mbit/s for 720p/1080p/2160p; outputs half as large), prefetch
// off and on, 7 seeds, for a gigabit link (110 MB/s) and a 100 Mbit/s one
// (11 MB/s). Work estimates are noisy (actual = estimate × lognormal σ
// 0.2); runs take exactly their work (with run noise and no speculation,
// the same straggler ends most batches either way and hides the
// difference); no speculation (the simulator does not combine it with
// prefetch). Reports the median makespan ratio on ÷ off.
func BenchmarkPrefetchSim(b *testing.B) {
	links := []struct {
		name string
		bw   float64
	}{{"1G", 110e6}, {"100M", 11e6}}
	for i := 0; i < b.N; i++ {
		var tbl strings.Builder
		fmt.Fprintf(&tbl, "\n%-5s", "seed")
		for _, l := range links {
			fmt.Fprintf(&tbl, " %12s %12s %8s", "off/LB "+l.name, "on/LB "+l.name, "on/off")
		}
		fmt.Fprintln(&tbl)
		rel := make([][]float64, len(links))
		offLB := make([][]float64, len(links))
		onLB := make([][]float64, len(links))
		for seed := uint64(1); seed <= seeds; seed++ {
			fmt.Fprintf(&tbl, "%-5d", seed)
			for k, l := range links {
				batch := WithStreaming(GenBatch(seed, 20, 2000, 0.2), l.bw)
				off := simulate(b, batch, SimOptions{Policy: queue.Smart, Seed: seed})
				on := simulate(b, batch, SimOptions{Policy: queue.Smart, Seed: seed, Prefetch: true})
				rel[k] = append(rel[k], on.Makespan/off.Makespan)
				offLB[k], onLB[k] = append(offLB[k], off.Ratio()), append(onLB[k], on.Ratio())
				fmt.Fprintf(&tbl, " %12.4f %12.4f %8.3f", off.Ratio(), on.Ratio(), on.Makespan/off.Makespan)
			}
			fmt.Fprintln(&tbl)
		}
		fmt.Fprintf(&tbl, "%-5s", "median")
		for k := range links {
			fmt.Fprintf(&tbl, " %12.4f %12.4f %8.3f", median(offLB[k]), median(onLB[k]), median(rel[k]))
		}
		fmt.Printf("BenchmarkPrefetchSim: 20 hosts × 2,000 files, hosts 10–19 streaming, makespan ÷ lower bound (the bound ignores transfers):%s\n", tbl.String())
		for k, l := range links {
			b.ReportMetric(median(rel[k]), "on/off-"+l.name)
		}
		b.ReportMetric(median(offLB[0]), "off/LB-1G")
		b.ReportMetric(median(onLB[0]), "on/LB-1G")
	}
}
