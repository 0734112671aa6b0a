package cluster_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/config"
	"clustertx/hosts"
	"clustertx/hosts/hoststest"
	"clustertx/internal/testenv"
	"clustertx/media"
	"clustertx/report"
)

// lab is a test cluster: a media folder, a manager (local host), a mounted
// host that sees the media through another path (a symlink standing in for
// an NFS mount, plus a path substitution), and a streaming host with its
// own working_dir. Both remote hosts are real sshd processes on loopback.
type lab struct {
	t       *testing.T
	dir     string
	media   string // the manager's view
	view    string // the mounted host's view
	work    string // the streaming host's working_dir
	nas     *hoststest.SSHD
	gamer   *hoststest.SSHD
	known   string
	cfgPath string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	l := &lab{t: t, dir: dir, media: filepath.Join(dir, "media"), view: filepath.Join(dir, "nas-view"), work: filepath.Join(dir, "gamer-work")}
	must(t, os.MkdirAll(l.media, 0o755))
	must(t, os.MkdirAll(l.work, 0o755))
	must(t, os.Symlink(l.media, l.view))
	l.nas = hoststest.StartSSHD(t, hoststest.Options{})
	l.gamer = hoststest.StartSSHD(t, hoststest.Options{})
	l.known = filepath.Join(dir, "known_hosts")
	hoststest.WriteKnownHosts(t, l.known, l.nas, l.gamer)
	return l
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const labProfiles = `
profiles:
  remux:
    output_options: -c copy
    extension: .mkv
  hevc:
    output_options: -c:v libx265 -preset ultrafast -crf 32 -x265-params log-level=error -c:a copy -c:s copy
    extension: .mkv
rules:
  skip hevc:
    profile: SKIP
    criteria:
      vcodec: hevc
  default:
    profile: hevc
`

// writeConfig writes transcode.yml with cluster "lab" made of the given
// hosts (local, nas, gamer) and returns its path.
func (l *lab) writeConfig(hostsYAML ...string) string {
	var b strings.Builder
	b.WriteString("config:\n  ffmpeg: ffmpeg\n  clusters:\n    lab:\n")
	for _, h := range hostsYAML {
		b.WriteString(h)
	}
	b.WriteString(labProfiles)
	l.cfgPath = filepath.Join(l.dir, "transcode.yml")
	must(l.t, os.WriteFile(l.cfgPath, []byte(b.String()), 0o644))
	return l.cfgPath
}

// localYAML is the manager as a normal worker (by default a cluster's
// local host is a fallback: mode both).
func (l *lab) localYAML() string {
	return "      manager:\n        type: local\n        fallback: no\n"
}

func (l *lab) nasYAML() string {
	return l.nas.YAML("nas", "type: mounted", "path-substitutions:", "  - "+l.media+"/ "+l.view+"/")
}

func (l *lab) gamerYAML() string {
	return l.gamer.YAML("gamer", "type: streaming", "working_dir: "+l.work)
}

func (l *lab) run(ctx context.Context, opt func(*cluster.Options), items ...cluster.WorkItem) (*cluster.Report, string, error) {
	l.t.Helper()
	cfg, err := config.Load(config.LoadOptions{Path: l.cfgPath, Strict: true})
	if err != nil {
		l.t.Fatal(err)
	}
	var out, log bytes.Buffer
	sshOpts := hosts.SSHOptions{KnownHostsFiles: []string{l.known}, SSHConfigFile: "none", ConnectTimeout: 5 * time.Second}
	opts := cluster.Options{
		Config: cfg,
		Connect: func(ctx context.Context, d *hosts.Def) (hosts.Transport, error) {
			return hosts.Connect(ctx, d, sshOpts)
		},
		CheckTimeout: 5 * time.Second,
		Out:          &out,
		Log:          &log,
		// Short timers: a down host is re-probed quickly, and work waits
		// only briefly for a host to come back.
		ReprobeInterval: 300 * time.Millisecond,
		HostWait:        2 * time.Second,
	}
	if opt != nil {
		opt(&opts)
	}
	if os.Getenv("CLUSTERTX_TEST_LOG") != "" { // live debugging
		opts.Log = io.MultiWriter(&log, os.Stderr)
		sshOpts.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, "ssh: "+f+"\n", a...) }
		opts.Verbose = true
	}
	rep, err := cluster.Run(ctx, opts, items)
	if rep != nil {
		report.WriteSummary(&out, rep)
	}
	return rep, out.String() + log.String(), err
}

func (l *lab) clip(name string, c testenv.Clip) string {
	p := filepath.Join(l.media, name)
	must(l.t, os.MkdirAll(filepath.Dir(p), 0o755))
	testenv.MakeClip(l.t, p, c)
	return p
}

func items(clusterName string, paths ...string) []cluster.WorkItem {
	var out []cluster.WorkItem
	for _, p := range paths {
		out = append(out, cluster.WorkItem{Path: p, Cluster: clusterName})
	}
	return out
}

// leftovers lists clustertx temp files anywhere under dir.
func leftovers(t *testing.T, dirs ...string) []string {
	var out []string
	for _, dir := range dirs {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(d.Name(), "clustertx") {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

func probe(t *testing.T, path string) *media.Info {
	t.Helper()
	info, err := (&media.Prober{FFprobe: "ffprobe"}).Probe(context.Background(), path)
	if err != nil {
		t.Fatalf("probing output: %v", err)
	}
	return info
}

func TestClusterRunLocalMountedStreaming(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.localYAML(), l.nasYAML(), l.gamerYAML())
	srcs := map[string]float64{ // name → seconds
		"Show/episode 01.mkv":             3,
		"Show/episode 02.mkv":             2,
		"film (2024).mp4":                 4,
		"it's a $(touch pwned) `id`.mkv":  2,
		"-leading dash; rm -rf x & y.mp4": 2,
		"Show/ünïcode 日本.mkv":             3,
	}
	var paths []string
	for name, sec := range srcs {
		paths = append(paths, l.clip(name, testenv.Clip{Seconds: sec, AudioLangs: []string{"eng"}}))
	}
	rep, out, err := l.run(context.Background(), nil, items("lab", paths...)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	t.Log(out)
	took := map[string]int{}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done {
			t.Errorf("%s: %s: %s", f.Path, f.Outcome, f.Reason)
			continue
		}
		took[f.Host]++
		info := probe(t, f.Output)
		if info.VCodec() != "hevc" {
			t.Errorf("%s: output codec %s, want hevc", f.Output, info.VCodec())
		}
		if len(info.Audio) != 1 {
			t.Errorf("%s: %d audio streams, want 1", f.Output, len(info.Audio))
		}
		if diff := info.Duration - f.Duration; diff > 0.5 || diff < -0.5 {
			t.Errorf("%s: duration %.2f, source %.2f", f.Output, info.Duration, f.Duration)
		}
		if filepath.Ext(f.Path) == ".mp4" {
			if _, err := os.Stat(f.Path); !os.IsNotExist(err) {
				t.Errorf("source %s still exists after a done encode to %s", f.Path, f.Output)
			}
		}
	}
	for _, h := range []string{"manager", "nas", "gamer"} {
		if took[h] == 0 {
			t.Errorf("host %s took no work (%v)", h, took)
		}
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left behind: %q", left)
	}
	if entries, _ := os.ReadDir(l.work); len(entries) > 0 {
		t.Errorf("streaming working_dir not empty: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(l.media, "pwned")); err == nil {
		t.Error("a file name was executed by a shell: pwned exists")
	}
	if _, err := os.Stat("pwned"); err == nil {
		t.Error("a file name was executed by a shell: ./pwned exists")
	}
	if rep.Incomplete() {
		t.Error("report says incomplete")
	}
}

func TestHostDownAtStartIsSkipped(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	l.gamer.Stop()
	a := l.clip("a.mkv", testenv.Clip{Seconds: 2})
	b := l.clip("b.mkv", testenv.Clip{Seconds: 2})
	rep, out, err := l.run(context.Background(), nil, items("lab", a, b)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "DOWN") || !strings.Contains(out, "gamer") || !strings.Contains(out, "down since") || !strings.Contains(out, "next probe in 300ms") {
		t.Errorf("host table does not show gamer down, since when and the next probe:\n%s", out)
	}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done || f.Host != "nas" {
			t.Errorf("%s: %s on %q: %s", f.Path, f.Outcome, f.Host, f.Reason)
		}
	}
}

func TestAllHostsDownReportsNotRunAndTouchesNothing(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	l.nas.Stop()
	l.gamer.Stop()
	a := l.clip("a.mkv", testenv.Clip{Seconds: 2})
	before := treeHash(t, l.media)
	rep, out, err := l.run(context.Background(), nil, items("lab", a)...)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.Count(cluster.NotRun) != 1 || !rep.Incomplete() {
		t.Errorf("want the file reported as not run:\n%s", out)
	}
	for _, want := range []string{"no host is reachable", "no host came back within 2s"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if treeHash(t, l.media) != before {
		t.Error("media tree changed")
	}
}

func TestUnservedQueueIsReportedNotRun(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.localYAML())
	// A profile whose queue no host serves.
	data, _ := os.ReadFile(l.cfgPath)
	data = bytes.Replace(data, []byte("  hevc:\n"), []byte("  hevc:\n    queue: gpu\n"), 1)
	must(t, os.WriteFile(l.cfgPath, data, 0o644))
	a := l.clip("a.mkv", testenv.Clip{Seconds: 1})
	rep, out, err := l.run(context.Background(), nil, items("lab", a)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if rep.Count(cluster.NotRun) != 1 || !rep.Incomplete() {
		t.Fatalf("want 1 not run (queue gpu unserved), got:\n%s", out)
	}
	if !strings.Contains(rep.Files[0].Reason, `"gpu"`) {
		t.Errorf("reason %q should name the queue", rep.Files[0].Reason)
	}
}

func TestDryRunWritesNothingAndShowsCommands(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.localYAML(), l.nasYAML(), l.gamerYAML())
	a := l.clip("Show/it's $(x).mkv", testenv.Clip{Seconds: 2, AudioLangs: []string{"eng"}})
	before := treeHash(t, l.dir)
	rep, out, err := l.run(context.Background(), func(o *cluster.Options) { o.DryRun = true }, items("lab", a)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if after := treeHash(t, l.dir); after != before {
		t.Error("dry run changed files")
	}
	for _, want := range []string{"HOST", "nas", "gamer", "manager", "rule:     default", "profile:  hevc",
		"upload", "download", filepath.Join(l.view, "Show"), "libx265", "-progress pipe:1"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	if rep.Count(cluster.Planned) != 1 {
		t.Errorf("want 1 planned file")
	}
}

func TestKeepNeverTouchesSource(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.localYAML())
	a := l.clip("a.mkv", testenv.Clip{Seconds: 2})
	sum := fileHash(t, a)
	rep, out, err := l.run(context.Background(), func(o *cluster.Options) { o.Keep = true }, items("lab", a)...)
	if err != nil || rep.Count(cluster.Done) != 1 {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if fileHash(t, a) != sum {
		t.Error("source changed with -k")
	}
	want := filepath.Join(l.media, "a.transcoded.mkv")
	if rep.Files[0].Output != want {
		t.Errorf("output %s, want %s", rep.Files[0].Output, want)
	}
	if probe(t, want).VCodec() != "hevc" {
		t.Error("kept output is not hevc")
	}
}

func TestSeedDocFixedProfileHost(t *testing.T) {
	l := newLab(t)
	host := fmt.Sprintf(`      nas:
        type: mounted
        ip: %s
        port: %d
        user: %s
        identity_file: %s
        path-substitution:
          src: %s/
          dest: %s/
        profile: h264
`, l.nas.Host, l.nas.Port, l.nas.User, l.nas.IdentityFile, l.media, l.view)
	l.writeConfig(host)
	data, _ := os.ReadFile(l.cfgPath)
	data = bytes.Replace(data, []byte("profiles:\n"), []byte("profiles:\n  h264:\n    output_options: -c:v libx264 -preset ultrafast -c:a copy\n    extension: .mp4\n"), 1)
	must(t, os.WriteFile(l.cfgPath, data, 0o644))
	a := l.clip("a.mkv", testenv.Clip{Seconds: 2})
	rep, out, err := l.run(context.Background(), nil, items("lab", a)...)
	if err != nil || rep.Count(cluster.Done) != 1 {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f := rep.Files[0]
	if f.Profile != "h264" || filepath.Ext(f.Output) != ".mp4" || probe(t, f.Output).VCodec() != "h264" {
		t.Errorf("host profile not used: profile %s output %s", f.Profile, f.Output)
	}
}

func TestTwoClustersShareAHost(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML())
	data, _ := os.ReadFile(l.cfgPath)
	second := "    other:\n" + l.nasYAML() + l.gamerYAML()
	data = bytes.Replace(data, []byte("profiles:"), []byte(second+"profiles:"), 1)
	must(t, os.WriteFile(l.cfgPath, data, 0o644))
	a := l.clip("a.mkv", testenv.Clip{Seconds: 2})
	b := l.clip("b.mkv", testenv.Clip{Seconds: 2})
	rep, out, err := l.run(context.Background(), nil, append(items("lab", a), items("other", b)...)...)
	if err != nil || rep.Count(cluster.Done) != 2 {
		t.Fatalf("run: %v\n%s", err, out)
	}
	n := 0
	for _, h := range rep.Hosts {
		if h.Host == "nas" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("nas checked %d times, want once (one host, one connection)", n)
	}
	if rep.Files[0].Host != "nas" {
		t.Errorf("file of cluster lab ran on %s", rep.Files[0].Host)
	}
}

func treeHash(t *testing.T, dir string) string {
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fmt.Fprintf(h, "%s %v\n", p, d.Type())
		if d.Type().IsRegular() {
			data, _ := os.ReadFile(p)
			h.Write(data)
		}
		return nil
	})
	return fmt.Sprintf("%x", h.Sum(nil))
}

func fileHash(t *testing.T, p string) string {
	data, err := os.ReadFile(p)
	must(t, err)
	return fmt.Sprintf("%x", sha256.Sum256(data))
}

var hostileNames = []string{
	"it's a $(touch pwned1) name.mkv",
	"back`touch pwned2`tick.mkv",
	`double "quote" and \backslash.mkv`,
	"semi; touch pwned3 & amp | pipe.mkv",
	"-leading dash.mkv",
	"new\nline.mkv",
	"%PATH% and !x! 日本語 ünï.mkv",
	"  spaces  .mkv",
	"glob*?[x].mkv",
}

// Hostile names through each SSH host type alone, so no local encode can
// hide a quoting bug: every file encodes and nothing the names contain runs.
func TestHostileNamesOverSSH(t *testing.T) {
	for _, hostType := range []string{"mounted", "streaming"} {
		t.Run(hostType, func(t *testing.T) {
			l := newLab(t)
			if hostType == "mounted" {
				l.writeConfig(l.nasYAML())
			} else {
				l.writeConfig(l.gamerYAML())
			}
			var paths []string
			for _, n := range hostileNames {
				paths = append(paths, l.clip(n, testenv.Clip{Seconds: 1}))
			}
			cwd, _ := os.Getwd()
			rep, out, err := l.run(context.Background(), nil, items("lab", paths...)...)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			for _, f := range rep.Files {
				if f.Outcome != cluster.Done {
					t.Errorf("%q: %s: %s", f.Path, f.Outcome, f.Reason)
					continue
				}
				if probe(t, f.Output).VCodec() != "hevc" {
					t.Errorf("%q: output is not hevc", f.Output)
				}
			}
			for _, dir := range []string{l.media, l.work, cwd, os.Getenv("HOME"), "/tmp"} {
				for _, p := range []string{"pwned1", "pwned2", "pwned3"} {
					if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
						os.Remove(filepath.Join(dir, p))
						t.Errorf("a file name was run by a shell: %s/%s exists", dir, p)
					}
				}
			}
			if left := leftovers(t, l.media, l.work); len(left) > 0 {
				t.Errorf("temp files left behind: %q", left)
			}
		})
	}
}

func TestThresholdKeepsOriginal(t *testing.T) {
	testenv.NeedFFmpeg(t)
	l := &lab{t: t, dir: t.TempDir()}
	l.media = filepath.Join(l.dir, "media")
	l.writeConfig(l.localYAML())
	data, _ := os.ReadFile(l.cfgPath)
	// hevc saves ~75% on these clips: a 99% threshold cannot be met, 10% can.
	strict := bytes.Replace(data, []byte("  hevc:\n"), []byte("  hevc:\n    threshold: 99\n"), 1)
	must(t, os.WriteFile(l.cfgPath, strict, 0o644))
	a := l.clip("a.mp4", testenv.Clip{Seconds: 2})
	sum := fileHash(t, a)
	rep, out, err := l.run(context.Background(), nil, items("lab", a)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f := rep.Files[0]
	if f.Outcome != cluster.Kept || !strings.Contains(f.Reason, "kept original: saved only") {
		t.Fatalf("outcome %s: %s", f.Outcome, f.Reason)
	}
	if fileHash(t, a) != sum {
		t.Error("original changed")
	}
	if entries, _ := os.ReadDir(l.media); len(entries) != 1 {
		t.Errorf("media folder holds %v, want only the original", entries)
	}
	if rep.Incomplete() {
		t.Error("a kept original is a normal outcome, not a failure")
	}
	lenient := bytes.Replace(data, []byte("  hevc:\n"), []byte("  hevc:\n    threshold: 10\n"), 1)
	must(t, os.WriteFile(l.cfgPath, lenient, 0o644))
	rep, out, err = l.run(context.Background(), nil, items("lab", a)...)
	if err != nil || rep.Files[0].Outcome != cluster.Done {
		t.Fatalf("10%% threshold: %v\n%s", err, out)
	}
}

// A failing encode on a streaming host: the file is failed with ffmpeg's
// error, the original is untouched, and both remote files are gone.
func TestStreamingFailureCleansUp(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.gamerYAML())
	data, _ := os.ReadFile(l.cfgPath)
	data = bytes.Replace(data, []byte("-c:s copy\n"), []byte("-c:s copy -no_such_option 1\n"), 1)
	must(t, os.WriteFile(l.cfgPath, data, 0o644))
	a := l.clip("a.mp4", testenv.Clip{Seconds: 1})
	sum := fileHash(t, a)
	rep, out, err := l.run(context.Background(), nil, items("lab", a)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f := rep.Files[0]
	if f.Outcome != cluster.Failed || !strings.Contains(f.Reason, "no_such_option") || f.Attempts != 2 {
		t.Errorf("outcome %s after %d attempts: %s", f.Outcome, f.Attempts, f.Reason)
	}
	if fileHash(t, a) != sum {
		t.Error("original changed")
	}
	if entries, _ := os.ReadDir(l.work); len(entries) > 0 {
		t.Errorf("working_dir not cleaned after failure: %v", entries)
	}
	if left := leftovers(t, l.media); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}
}

// Cancelling a run (Ctrl-C) mid-encode stops the remote ffmpeg on every
// host, removes partial outputs and staged files, and keeps the originals.
func TestCancelStopsRemoteEncodesAndCleansUp(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	// A slow profile so the encodes are still running when we cancel.
	data, _ := os.ReadFile(l.cfgPath)
	data = bytes.Replace(data, []byte("-preset ultrafast"), []byte("-preset veryslow"), 1)
	must(t, os.WriteFile(l.cfgPath, data, 0o644))
	a := l.clip("a.mkv", testenv.Clip{Seconds: 12, Width: 640, Height: 480})
	b := l.clip("b.mkv", testenv.Clip{Seconds: 12, Width: 640, Height: 480})
	sums := map[string]string{a: fileHash(t, a), b: fileHash(t, b)}
	ctx, cancel := context.WithCancel(context.Background())
	var cancelledAt time.Time
	go func() {
		// Cancel once both hosts are encoding.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if len(l.nas.SessionPIDs()) > 0 && len(l.gamer.SessionPIDs()) > 0 && len(remoteFFmpeg(l.dir)) >= 2 {
				time.Sleep(300 * time.Millisecond)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		cancelledAt = time.Now()
		cancel()
	}()
	start := time.Now()
	rep, out, _ := l.run(ctx, nil, items("lab", a, b)...)
	if time.Since(start) > 40*time.Second {
		t.Errorf("cancel took %s", time.Since(start))
	}
	if !rep.Interrupted || rep.Count(cluster.NotRun) != 2 {
		t.Errorf("want 2 files not run after interrupt:\n%s", out)
	}
	for p, s := range sums {
		if fileHash(t, p) != s {
			t.Errorf("original %s changed", p)
		}
	}
	// The remote ffmpeg processes must be gone (give sshd a moment to reap).
	deadline := time.Now().Add(5 * time.Second)
	for len(remoteFFmpeg(l.dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := remoteFFmpeg(l.dir); len(left) > 0 {
		ps, _ := exec.Command("ps", "-eo", "pid,ppid,stat,etimes,args", "--forest").CombinedOutput()
		t.Errorf("ffmpeg still running %s after cancel: %v\n%s", time.Since(cancelledAt), left, ps)
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}
	if entries, _ := os.ReadDir(l.work); len(entries) > 0 {
		t.Errorf("working_dir not cleaned after cancel: %v", entries)
	}
}

// remoteFFmpeg lists running ffmpeg processes that write a clustertx temp
// output under dir (a test's hosts' media and working dirs).
func remoteFFmpeg(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		// Only this test's: other packages' tests run beside it.
		if len(args) > 0 && filepath.Base(args[0]) == "ffmpeg" && strings.Contains(string(cmdline), "clustertx-") && strings.Contains(string(cmdline), dir) {
			if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && strings.Contains(string(stat), ") Z ") {
				continue // zombie: already dead
			}
			out = append(out, e.Name()+": "+strings.Join(args, " "))
		}
	}
	return out
}
