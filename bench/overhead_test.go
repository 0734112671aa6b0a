package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/config"
	"clustertx/hosts"
	"clustertx/hosts/hoststest"
	"clustertx/internal/testenv"
	"clustertx/media"
)

// Per-job overhead benchmark (issue benchmark 2): many tiny clips through
// the real manager on real sshd hosts, against the same ffmpeg commands
// run bare.
const (
	ovClips   = 30
	ovRounds  = 5
	ovSeconds = 0.5
	ovProfile = "tiny"
	// Clips per round whose job components are also timed one by one.
	ovCompClips = 10
	// A real (if cheap) encode: x264 ultrafast, audio copied. Mounted hosts
	// write next to the source, so no transfer is involved.
	ovProfileYAML = `
profiles:
  tiny:
    output_options: -c:v libx264 -preset ultrafast -crf 30 -c:a copy
    extension: .mkv
rules:
  default:
    profile: tiny
`
)

// ovLab is the benchmark's cluster: one media folder, three real sshd
// servers, each a mounted host that sees the media through its own symlink
// (standing in for an NFS mount) and a path substitution.
type ovLab struct {
	dir, media string
	servers    []*hoststest.SSHD
	views      []string
	known      string
}

func newOvLab(b *testing.B, n int) *ovLab {
	return newOvLabWith(b, make([]hoststest.Options, n)...)
}

// newOvLabWith is newOvLab with one server per element of opts, started
// with those options.
func newOvLabWith(b *testing.B, opts ...hoststest.Options) *ovLab {
	l := &ovLab{dir: b.TempDir()}
	l.media = filepath.Join(l.dir, "media")
	if err := os.MkdirAll(l.media, 0o755); err != nil {
		b.Fatal(err)
	}
	for i, o := range opts {
		l.servers = append(l.servers, hoststest.StartSSHD(b, o))
		view := filepath.Join(l.dir, fmt.Sprintf("host%d-view", i))
		if err := os.Symlink(l.media, view); err != nil {
			b.Fatal(err)
		}
		l.views = append(l.views, view)
	}
	l.known = filepath.Join(l.dir, "known_hosts")
	hoststest.WriteKnownHosts(b, l.known, l.servers...)
	return l
}

// config writes and loads a transcode.yml whose cluster "bench" holds the
// first n hosts, one slot each.
func (l *ovLab) config(b *testing.B, n int) *config.Config {
	return l.configWith(b, n, ovProfileYAML, fmt.Sprintf("transcode-%dhosts.yml", n))
}

// configWith writes and loads file name: cluster "bench" of the first n
// hosts (mounted, one slot each, with the extra host keys given) and the
// given profiles and rules.
func (l *ovLab) configWith(b *testing.B, n int, profilesYAML, name string, extra ...string) *config.Config {
	var y strings.Builder
	y.WriteString("config:\n  ffmpeg: ffmpeg\n  clusters:\n    bench:\n")
	for i, s := range l.servers[:n] {
		keys := append([]string{"type: mounted", "path-substitutions:", "  - " + l.media + "/ " + l.views[i] + "/"}, extra...)
		y.WriteString(s.YAML(fmt.Sprintf("host%d", i), keys...))
	}
	y.WriteString(profilesYAML)
	path := filepath.Join(l.dir, name)
	if err := os.WriteFile(path, []byte(y.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{Path: path, Strict: true})
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

// ovPristine makes the per-job benchmarks' ovClips short clips (ovSeconds
// each, with audio) in dir/pristine.
func ovPristine(b *testing.B, dir string) []string {
	pristineDir := filepath.Join(dir, "pristine")
	if err := os.MkdirAll(pristineDir, 0o755); err != nil {
		b.Fatal(err)
	}
	var pristine []string
	for i := 0; i < ovClips; i++ {
		p := filepath.Join(pristineDir, fmt.Sprintf("clip %02d.mp4", i))
		testenv.MakeClip(b, p, testenv.Clip{Seconds: ovSeconds, Width: 160, Height: 120, AudioLangs: []string{"eng"}})
		pristine = append(pristine, p)
	}
	return pristine
}

// copyClips copies the pristine clips into a fresh folder under the media
// folder (the runs replace their sources) and returns the copies' paths.
func copyClips(b *testing.B, pristine []string, dir string) []string {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	var out []string
	for _, p := range pristine {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Base(p))
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			b.Fatal(err)
		}
		out = append(out, dst)
	}
	return out
}

// jobTimes records when each job started and finished (first attempts).
type jobTimes struct {
	cluster.NopObserver
	mu            sync.Mutex
	starts        []time.Time
	inJob         time.Duration // Σ (finished − started) per job
	open          map[int]time.Time
	retried, fail int
}

func (o *jobTimes) JobStarted(j cluster.JobInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.open == nil {
		o.open = map[int]time.Time{}
	}
	now := time.Now()
	o.open[j.ID] = now
	o.starts = append(o.starts, now)
	if j.Attempt > 1 {
		o.retried++
	}
}

func (o *jobTimes) JobFinished(j cluster.JobInfo, r *cluster.FileResult) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	o.inJob += now.Sub(o.open[j.ID])
	if r.Outcome != cluster.Done {
		o.fail++
	}
}

// clusterRun is one timed cluster.Run of a batch.
type clusterRun struct {
	wall    time.Duration // the whole cluster.Run call
	startup time.Duration // run start → first job started (probe + host checks + plan)
	inJob   time.Duration // Σ per-job started → finished (encode over SSH + verify + rename)
}

// runCluster runs items through cluster.Run on cluster "bench" of cfg
// (hosts from known), with opts adjusted by set, and stops the benchmark
// unless every file ends done. It returns the report and the wall time.
func runCluster(b *testing.B, known string, cfg *config.Config, paths []string, set func(*cluster.Options)) (*cluster.Report, time.Duration) {
	sshOpts := hosts.SSHOptions{KnownHostsFiles: []string{known}, SSHConfigFile: "none", ConnectTimeout: 10 * time.Second}
	opts := cluster.Options{
		Config: cfg,
		Connect: func(ctx context.Context, d *hosts.Def) (hosts.Transport, error) {
			return hosts.Connect(ctx, d, sshOpts)
		},
		CheckTimeout: 15 * time.Second,
		Out:          io.Discard,
		Log:          io.Discard,
	}
	if set != nil {
		set(&opts)
	}
	var items []cluster.WorkItem
	for _, p := range paths {
		items = append(items, cluster.WorkItem{Path: p, Cluster: "bench"})
	}
	start := time.Now()
	rep, err := cluster.Run(context.Background(), opts, items)
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("cluster.Run: %v", err)
	}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done {
			b.Fatalf("%s: %s: %s", f.Path, f.Outcome, f.Reason)
		}
	}
	return rep, wall
}

func runBatch(b *testing.B, l *ovLab, cfg *config.Config, paths []string) clusterRun {
	return runBatchWith(b, l, cfg, paths, nil)
}

// runBatchWith is runBatch with set applied to the run's options.
func runBatchWith(b *testing.B, l *ovLab, cfg *config.Config, paths []string, set func(*cluster.Options)) clusterRun {
	obs := &jobTimes{}
	start := time.Now()
	_, wall := runCluster(b, l.known, cfg, paths, func(o *cluster.Options) {
		o.Observer = obs
		if set != nil {
			set(o)
		}
	})
	if obs.retried > 0 || obs.fail > 0 || len(obs.starts) != len(paths) {
		b.Fatalf("run was not clean: %d jobs started for %d files, %d retried, %d not done", len(obs.starts), len(paths), obs.retried, obs.fail)
	}
	first := slices.MinFunc(obs.starts, time.Time.Compare)
	return clusterRun{wall: wall, startup: first.Sub(start), inJob: obs.inJob}
}

// bareArgvs builds, for each clip, the argv the manager runs (same
// profile, same stream plan, same fixed flags via cluster.FFmpegArgv) with
// local paths, writing to outDir.
func bareArgvs(b *testing.B, cfg *config.Config, paths []string, outDir string) [][]string {
	prof, err := cfg.Profile(ovProfile)
	if err != nil {
		b.Fatal(err)
	}
	prober := &media.Prober{FFprobe: cfg.FFprobe}
	var out [][]string
	for i, p := range paths {
		info, err := prober.Probe(context.Background(), p)
		if err != nil {
			b.Fatal(err)
		}
		plan, err := prof.Plan(info, cfg.Automap)
		if err != nil {
			b.Fatal(err)
		}
		dst := filepath.Join(outDir, fmt.Sprintf("bare-%02d%s", i, prof.Extension))
		out = append(out, cluster.FFmpegArgv(cfg.FFmpeg, plan.In, plan.Out, p, dst))
	}
	return out
}

// runBare runs the argvs one after the other and returns each one's wall
// time (process start to exit, stdout discarded like the progress).
func runBare(b *testing.B, argvs [][]string) []time.Duration {
	var out []time.Duration
	for _, argv := range argvs {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout = io.Discard
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		out = append(out, time.Since(start))
		if err != nil {
			b.Fatalf("bare %v: %v: %s", argv, err, stderr.String())
		}
	}
	return out
}

func sum(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s
}

// components times, per clip, the pieces a mounted job adds to the bare
// encode, outside the manager: the same ffmpeg argv run over the host's
// SSH transport (Exec: session + watchdog wrapper + remote process), an
// empty command over SSH (the session cost alone), the output
// verification (media.Prober.Verify: two ffprobe runs), the fsyncs of the
// output and its folders, and one bare `ffprobe -version` (the cost of
// spawning an ffmpeg-family binary). Returns per-clip medians in ms.
type componentTimes struct{ sshFFmpeg, sshTrue, verify, sync, bare, spawn float64 }

func components(b *testing.B, t hosts.Transport, def *hosts.Def, cfg *config.Config, srcs []string, argvs [][]string, bare []time.Duration) componentTimes {
	ctx := context.Background()
	prober := &media.Prober{FFprobe: cfg.FFprobe}
	var sshFF, sshTrue, verify, syncs, bareMS, spawn []float64
	for i, src := range srcs {
		argv := slices.Clone(argvs[i])
		out := strings.TrimPrefix(argv[len(argv)-1], "file:") // the bare run's output, overwritten
		for k := range argv {                                 // map the input and output through the host's path substitution
			if p, ok := strings.CutPrefix(argv[k], "file:"); ok {
				mp, ok := def.MapPath(p)
				if !ok {
					b.Fatalf("host cannot see %s", p)
				}
				argv[k] = "file:" + mp
			}
		}
		start := time.Now()
		if err := t.Exec(ctx, argv, io.Discard, nil); err != nil {
			b.Fatalf("ffmpeg over ssh: %v", err)
		}
		sshFF = append(sshFF, ms(time.Since(start)))
		start = time.Now()
		if err := t.Exec(ctx, []string{"true"}, nil, nil); err != nil {
			b.Fatalf("true over ssh: %v", err)
		}
		sshTrue = append(sshTrue, ms(time.Since(start)))
		srcInfo, err := prober.Probe(ctx, src)
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		if _, err := prober.Verify(ctx, out, media.ExpectFrom(srcInfo)); err != nil {
			b.Fatalf("verify %s: %v", out, err)
		}
		verify = append(verify, ms(time.Since(start)))
		start = time.Now()
		for _, p := range []string{out, filepath.Dir(out), filepath.Dir(src)} { // output, then both folders, as finish does
			f, err := os.Open(p)
			if err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		syncs = append(syncs, ms(time.Since(start)))
		bareMS = append(bareMS, ms(bare[i]))
		start = time.Now()
		if err := exec.Command(cfg.FFprobe, "-v", "error", "-version").Run(); err != nil {
			b.Fatal(err)
		}
		spawn = append(spawn, ms(time.Since(start)))
	}
	return componentTimes{median(sshFF), median(sshTrue), median(verify), median(syncs), median(bareMS), median(spawn)}
}

func fmtList(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.1f", x))
	}
	return strings.Join(parts, " ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkPerJobOverhead (issue benchmark 2): 30 clips of 0.5 s at
// 160x120 (x264 + AAC) encoded with x264 ultrafast through cluster.Run on
// real sshd hosts on loopback (mounted type: symlinked view + path
// substitution), against the sum of the same ffmpeg commands run bare and
// sequentially. Each of 5 rounds runs, in a rotating order, on fresh
// copies of the clips:
//   - bare: the 30 argvs via exec.Command, one after the other;
//   - 1 host × 1 slot: the manager's true per-job cost, since the encodes
//     are serial exactly like the bare ones;
//   - 3 hosts × 1 slot: the setup. On a 2-core machine three
//     parallel encodes overlap, so this wall can come out below Σ bare and
//     its "overhead" is not a cost measurement.
//
// overhead/job = (cluster.Run wall − Σ bare) ÷ jobs, target ≤ 50 ms. The
// 1-host run is also split into start-up (probe + host checks until the
// first job starts), in-job extra (Σ per-job started→finished − Σ bare:
// SSH session, remote process, verification probe, sync, rename) and
// between-job gaps plus the tail.
func BenchmarkPerJobOverhead(b *testing.B) {
	testenv.NeedFFmpeg(b)
	l := newOvLab(b, 3)
	pristine := ovPristine(b, l.dir)
	cfg1, cfg3 := l.config(b, 1), l.config(b, 3)
	def := l.servers[0].Def("host0")
	def.Type = hosts.Mounted
	def.PathSubs = []hosts.PathSub{{Src: l.media + "/", Dst: l.views[0] + "/"}}
	tr, err := hosts.Connect(context.Background(), def, hosts.SSHOptions{KnownHostsFiles: []string{l.known}, SSHConfigFile: "none"})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()

	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		var bareMS, wall1MS, wall3MS, ov1, ov3, startup1, injob1, gaps1 []float64
		var comp []componentTimes
		for round := 0; round < ovRounds; round++ {
			dir := filepath.Join(l.media, fmt.Sprintf("i%d-r%d", it, round))
			bareSrc := copyClips(b, pristine, filepath.Join(dir, "bare-src"))
			bareOut := filepath.Join(dir, "bare-out")
			if err := os.MkdirAll(bareOut, 0o755); err != nil {
				b.Fatal(err)
			}
			argvs := bareArgvs(b, cfg1, bareSrc, bareOut)
			src1 := copyClips(b, pristine, filepath.Join(dir, "one"))
			src3 := copyClips(b, pristine, filepath.Join(dir, "three"))

			var bare time.Duration
			var bareEach []time.Duration
			var r1, r3 clusterRun
			steps := []func(){
				func() { bareEach = runBare(b, argvs); bare = sum(bareEach) },
				func() { r1 = runBatch(b, l, cfg1, src1) },
				func() { r3 = runBatch(b, l, cfg3, src3) },
			}
			for k := range steps { // rotate the order so no variant always goes first
				steps[(k+round)%len(steps)]()
			}
			comp = append(comp, components(b, tr, def, cfg1, bareSrc[:ovCompClips], argvs[:ovCompClips], bareEach[:ovCompClips]))
			if err := os.RemoveAll(dir); err != nil {
				b.Fatal(err)
			}

			jobs := float64(ovClips)
			o1 := (ms(r1.wall) - ms(bare)) / jobs
			o3 := (ms(r3.wall) - ms(bare)) / jobs
			bareMS = append(bareMS, ms(bare))
			wall1MS = append(wall1MS, ms(r1.wall))
			wall3MS = append(wall3MS, ms(r3.wall))
			ov1 = append(ov1, o1)
			ov3 = append(ov3, o3)
			startup1 = append(startup1, ms(r1.startup))
			injob1 = append(injob1, (ms(r1.inJob)-ms(bare))/jobs)
			gaps1 = append(gaps1, (ms(r1.wall)-ms(r1.startup)-ms(r1.inJob))/jobs)
		}
		verdict := func(v float64) string {
			if v <= 50 {
				return "meets"
			}
			return "MISSES"
		}
		pick := func(f func(componentTimes) float64) float64 {
			var xs []float64
			for _, c := range comp {
				xs = append(xs, f(c))
			}
			return median(xs)
		}
		cBare := pick(func(c componentTimes) float64 { return c.bare })
		cSSH := pick(func(c componentTimes) float64 { return c.sshFFmpeg })
		cTrue := pick(func(c componentTimes) float64 { return c.sshTrue })
		cVerify := pick(func(c componentTimes) float64 { return c.verify })
		cSync := pick(func(c componentTimes) float64 { return c.sync })
		cSpawn := pick(func(c componentTimes) float64 { return c.spawn })
		m1, m3 := median(ov1), median(ov3)
		// At most 10 lines: the testing package truncates benchmark output there.
		b.Logf("%d clips of %.1fs 160x120 (x264+aac), profile %q = x264 ultrafast + audio copy, mounted hosts on loopback sshd; medians of %d rounds; target (wall − Σ bare) ÷ jobs ≤ 50 ms",
			ovClips, ovSeconds, ovProfile, ovRounds)
		b.Logf("%-28s %9s %9s %16s  %s", "variant", "wall-ms", "Σbare-ms", "(wall−Σbare)/job", "verdict")
		b.Logf("%-28s %9.0f %9.0f %13.1f ms  %s (fair: serial, like Σ bare)", "1 host × 1 slot", median(wall1MS), median(bareMS), m1, verdict(m1))
		b.Logf("%-28s %9.0f %9.0f %13.1f ms  %s (issue's formula; 3 encodes overlap on 2 cores, so it understates the cost)", "3 hosts × 1 slot", median(wall3MS), median(bareMS), m3, verdict(m3))
		b.Logf("per round, 1 host: %s ms/job; 3 hosts: %s ms/job", fmtList(ov1), fmtList(ov3))
		b.Logf("1-host split: start-up %.0f ms once per run (probe + connect + ffmpeg checks = %.1f ms/job here), in-job extra %.1f ms/job, between jobs %.1f ms/job",
			median(startup1), median(startup1)/ovClips, median(injob1), median(gaps1))
		b.Logf("in-job pieces timed alone (ms, %d clips/round): same argv over SSH %.1f vs bare %.1f (+%.1f; `true` over SSH %.1f), verify %.1f (ffprobe; one ffprobe -version spawn %.1f), fsync output+2 dirs %.1f; extras sum %.1f",
			ovCompClips, cSSH, cBare, cSSH-cBare, cTrue, cVerify, cSpawn, cSync, cSSH-cBare+cVerify+cSync)
		b.ReportMetric(cSSH-cBare, "ssh-exec-extra-ms")
		b.ReportMetric(cVerify, "verify-ms")
		b.ReportMetric(cSync, "fsync-ms")
		b.ReportMetric(m1, "ovh-1host-ms/job")
		b.ReportMetric(m3, "ovh-3hosts-ms/job")
		b.ReportMetric(median(bareMS)/ovClips, "bare-ms/job")
		b.ReportMetric(median(wall1MS)/median(bareMS), "wall1h/Σbare")
		b.ReportMetric(median(wall3MS)/median(bareMS), "wall3h/Σbare")
		b.ReportMetric(median(startup1), "startup-1host-ms")
		b.ReportMetric(median(injob1), "injob-1host-ms/job")
	}
}
