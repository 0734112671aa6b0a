package cluster_test

import (
	"context"
	"strings"
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
