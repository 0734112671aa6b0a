package cluster_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/internal/testenv"
)

// Issue 8 (2): by default (mode both) the cluster's local host is a
// fallback: with a remote host up it takes nothing; with every remote host
// down it does the work.
func TestFallbackLocalHost(t *testing.T) {
	l := newLab(t)
	l.writeConfig("      manager:\n        type: local\n", l.nasYAML())
	var paths []string
	for _, n := range []string{"a.mkv", "b.mkv", "c.mkv"} {
		paths = append(paths, l.clip(n, testenv.Clip{Seconds: 2}))
	}
	rep, out, err := l.run(context.Background(), nil, items("lab", paths...)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "fallback") {
		t.Errorf("host table does not show the fallback role:\n%s", out)
	}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done || f.Host != "nas" {
			t.Errorf("%s: %s on %s (the fallback must stay idle while nas is up)", f.Path, f.Outcome, f.Host)
		}
	}

	// Every remote host down: the fallback takes over.
	l.nas.Stop()
	for _, n := range []string{"d.mkv", "e.mkv"} {
		paths = append(paths, l.clip(n, testenv.Clip{Seconds: 2}))
	}
	rep, out, err = l.run(context.Background(), nil, items("lab", paths[3:]...)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done || f.Host != "manager" {
			t.Errorf("%s: %s on %s, want done by the fallback manager", f.Path, f.Outcome, f.Host)
		}
	}
}

// Issue 8 (3): mode remote never uses the local host; with every remote
// host down the files are not run and the originals kept.
func TestModeRemoteAllDown(t *testing.T) {
	l := newLab(t)
	l.writeConfig("      mode: remote\n", "      manager:\n        type: local\n", l.nasYAML())
	l.nas.Stop()
	a := l.clip("a.mkv", testenv.Clip{Seconds: 1})
	sum := fileHash(t, a)
	start := time.Now()
	rep, out, err := l.run(context.Background(), nil, items("lab", a)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if rep.Count(cluster.NotRun) != 1 || !rep.Incomplete() {
		t.Errorf("want not run:\n%s", out)
	}
	if fileHash(t, a) != sum {
		t.Error("original changed")
	}
	if !strings.Contains(out, "disabled") || !strings.Contains(out, "mode remote") {
		t.Errorf("host table should show the local host disabled by mode remote:\n%s", out)
	}
	t.Logf("gave up after %s", time.Since(start))
}

// mode local: only local hosts; remote hosts are not contacted.
func TestModeLocal(t *testing.T) {
	l := newLab(t)
	l.writeConfig("      mode: local\n", "      manager:\n        type: local\n", l.nasYAML())
	a := l.clip("a.mkv", testenv.Clip{Seconds: 1})
	rep, out, err := l.run(context.Background(), nil, items("lab", a)...)
	if err != nil || rep.Files[0].Outcome != cluster.Done || rep.Files[0].Host != "manager" {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if strings.Contains(l.nas.Log(), "Accepted") {
		t.Error("mode local contacted the remote host")
	}
}

// --host NAME restricts a run to one host; the others are not contacted.
func TestOnlyHost(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.localYAML(), l.nasYAML(), l.gamerYAML())
	var paths []string
	for _, n := range []string{"a.mkv", "b.mkv"} {
		paths = append(paths, l.clip(n, testenv.Clip{Seconds: 1}))
	}
	rep, out, err := l.run(context.Background(), func(o *cluster.Options) { o.OnlyHost = "gamer" }, items("lab", paths...)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, f := range rep.Files {
		if f.Host != "gamer" || f.Outcome != cluster.Done {
			t.Errorf("%s: %s on %s", f.Path, f.Outcome, f.Host)
		}
	}
	if strings.Contains(l.nas.Log(), "Accepted") {
		t.Error("--host gamer contacted nas")
	}
}

// Issue 5: a profile whose encoder a host's ffmpeg lacks is not sent there
// (checked at start; Debian's ffmpeg lists hevc_nvenc without a GPU, so
// hardware encoders are test-encoded), and --dry-run says so.
func TestProfileNotSentToHostLackingItsEncoder(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.localYAML(), l.nasYAML())
	data, _ := os.ReadFile(l.cfgPath)
	data = bytes.Replace(data, []byte("profiles:\n"), []byte(`profiles:
  gpu:
    output_options: -c:v hevc_nvenc -c:a copy
    extension: .mkv
  imaginary:
    output_options: -c:v libimaginary265 -c:a copy
    extension: .mkv
`), 1)
	must(t, os.WriteFile(l.cfgPath, data, 0o644))
	a := l.clip("a.mkv", testenv.Clip{Seconds: 1})
	b := l.clip("b.mkv", testenv.Clip{Seconds: 1})
	work := []cluster.WorkItem{{Path: a, Cluster: "lab", Profile: "gpu"}, {Path: b, Cluster: "lab", Profile: "imaginary"}}
	rep, out, err := l.run(context.Background(), func(o *cluster.Options) { o.DryRun = true }, work...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, want := range []string{"nas: lacks hevc_nvenc (test encode failed", "nas: lacks libimaginary265 (not in this host's ffmpeg -encoders)", "no host can take it"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if rep.Count(cluster.NotRun) != 2 {
		t.Errorf("want both files not runnable:\n%s", out)
	}
	before := treeHash(t, l.media)
	rep, out, err = l.run(context.Background(), nil, work...)
	if err != nil || rep.Count(cluster.NotRun) != 2 || !rep.Incomplete() {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if treeHash(t, l.media) != before {
		t.Error("media changed")
	}
}

// Issue 5: a host with max_load takes no new job while its load average,
// besides our own encodes, is at or above the limit (the kids' gaming PC);
// the host table shows the load.
func TestMaxLoadHostStaysIdleWhileBusy(t *testing.T) {
	l := newLab(t)
	nas := strings.Replace(l.nasYAML(), "        type: mounted\n", "        type: mounted\n        max_load: 0.001\n", 1)
	l.writeConfig(nas, l.gamerYAML())
	// Someone else keeps the machine busy, so the load is well above 0.001.
	var stop atomic.Bool
	defer stop.Store(true)
	for i := 0; i < 2; i++ {
		go func() {
			for !stop.Load() { // burn CPU on purpose
			}
		}()
	}
	time.Sleep(3 * time.Second)
	var paths []string
	for _, n := range []string{"a.mkv", "b.mkv", "c.mkv"} {
		paths = append(paths, l.clip(n, testenv.Clip{Seconds: 1}))
	}
	rep, out, err := l.run(context.Background(), func(o *cluster.Options) { o.LoadRecheck = 200 * time.Millisecond }, items("lab", paths...)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done || f.Host != "gamer" {
			t.Errorf("%s: %s on %s; the busy host must not take work", f.Path, f.Outcome, f.Host)
		}
	}
	for _, want := range []string{"max_load 0.001", "host nas is busy"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
