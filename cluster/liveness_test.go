package cluster_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/internal/testenv"
	"clustertx/journal"
)

// Issue 14: the nightly run that never ended. Night 1: the remote host is
// down, so the fallback local host encodes everything and the journal
// learns that it is fast. Night 2: the remote host is up. The remote host
// used to leave every job to the faster host, and the fallback to the
// remote host, so every worker waited in queue.Next forever. A "leave it
// to a faster host" decision must never wait on a host that will not take
// the job.
func TestNightlyFallbackLearnedFastDoesNotHang(t *testing.T) {
	l := newLab(t)
	l.writeConfig("      manager:\n        type: local\n", l.nasYAML()) // mode both: manager is a fallback
	jpath := filepath.Join(l.dir, "journal.jsonl")
	runNight := func(paths []string) (*cluster.Report, string) {
		t.Helper()
		jr, err := journal.Open(jpath)
		must(t, err)
		defer jr.Close()
		// On today's main night 2 never ends: the timeout turns the hang
		// into a failure.
		ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
		defer cancel()
		rep, out, err := l.run(ctx, func(o *cluster.Options) { o.Journal = jr }, items("lab", paths...)...)
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		return rep, out
	}

	// Night 1: nas is down; the fallback does the work.
	l.nas.Stop()
	night1 := []string{l.clip("n1a.mkv", testenv.Clip{Seconds: 1}), l.clip("n1b.mkv", testenv.Clip{Seconds: 1})}
	rep, out := runNight(night1)
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done || f.Host != "manager" {
			t.Fatalf("night 1: %s: %s on %s, want done by the fallback\n%s", f.Path, f.Outcome, f.Host, out)
		}
	}
	// Whatever this machine measured, make the journal say the manager is
	// much faster than the remote host's prior: the case that hung.
	jr, err := journal.Open(jpath)
	must(t, err)
	for range 5 {
		must(t, jr.RecordSpeed("manager", "work", 100*1920*1080))
	}
	must(t, jr.Close())

	// Night 2: nas is back.
	l.nas.Start(t)
	var night2 []string
	for _, n := range []string{"a.mkv", "b.mkv", "c.mkv", "d.mkv"} {
		night2 = append(night2, l.clip(n, testenv.Clip{Seconds: 1}))
	}
	start := time.Now()
	rep, out = runNight(night2)
	if rep.Interrupted {
		t.Fatalf("night 2 hung: no job started in %s\n%s", time.Since(start).Round(time.Second), out)
	}
	if strings.Contains(out, "breaking the tie") {
		t.Errorf("night 2 ended only through the runtime guard, not by the scheduling rule:\n%s", out)
	}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done || f.Host != "nas" {
			t.Errorf("night 2: %s: %s on %s, want done by nas (the fallback stays idle while nas is up)", f.Path, f.Outcome, f.Host)
		}
	}
	t.Logf("night 2 took %s", time.Since(start).Round(time.Millisecond))
}

// Issue 14: a prefetch is a revocable reservation. gamer (streaming, known
// to be slow) encodes one file and holds the next, uploaded; nas (known to
// be fast) joins with nothing pending and takes the reserved file, which
// gamer drops: its staged copy is removed and the file is done once, by
// nas.
func TestIdleHostTakesAPrefetchedFile(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	l.slowProfile()
	jpath := filepath.Join(l.dir, "journal.jsonl")
	jr, err := journal.Open(jpath)
	must(t, err)
	defer jr.Close()
	for range 3 {
		must(t, jr.RecordSpeed("gamer", "work", 0.01*1920*1080))
		must(t, jr.RecordSpeed("nas", "work", 10*1920*1080))
	}
	l.nas.Stop() // gamer takes both files first
	a := l.clip("a.mkv", testenv.Clip{Seconds: 6})
	b := l.clip("b.mkv", testenv.Clip{Seconds: 4})
	held := make(chan bool, 1)
	go func() {
		// gamer encodes one file and holds the other, staged.
		ok := waitFor(60*time.Second, func() bool { return stagedSources(l.work) >= 2 && len(ffmpegOf(l.work)) > 0 })
		held <- ok
		l.nas.Start(t)
	}()
	rep, out, err := l.run(context.Background(), func(o *cluster.Options) { o.Journal = jr }, items("lab", a, b)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if !<-held {
		t.Fatalf("gamer never held a prefetched file while encoding another:\n%s", out)
	}
	var taken string
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done || f.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts: %s", f.Path, f.Outcome, f.Attempts, f.Reason)
		}
		if f.Host == "nas" {
			taken = f.Path
		}
	}
	if taken == "" || !strings.Contains(out, "prefetch "+taken) || !strings.Contains(out, "host gamer: stopped its copy of "+taken) {
		t.Errorf("want nas to take the file gamer prefetched, and gamer to drop it:\n%s", out)
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left: %q\n%s", left, out)
	}
}
