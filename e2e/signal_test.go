package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"clustertx/internal/testenv"
)

// slowBatch makes a lab with the manager, nas and gamer encoding hevc at a
// slow x265 preset, and n 640x480 clips.
func slowBatch(t *testing.T, preset, manager string, n int) (*lab, []string) {
	l := newLab(t, true)
	l.writeConfig(preset, manager, "nas", "gamer")
	var srcs []string
	for i := 0; i < n; i++ {
		srcs = append(srcs, l.clip(fmt.Sprintf("clip%d.mkv", i),
			testenv.Clip{Seconds: 4, Width: 640, Height: 480, AudioLangs: []string{"eng"}}))
	}
	return l, srcs
}

// remoteEncoding reports whether both remote hosts run ffmpeg: nas's
// command line names its view of the media, gamer's its working_dir.
func (l *lab) remoteEncoding() bool {
	return len(ffmpegUnder(l.view)) > 0 && len(ffmpegUnder(l.work)) > 0
}

// checkOriginals: every source is byte-identical, or (done before the
// signal) a verified hevc output reported done.
func checkOriginals(t *testing.T, sums map[string]string, stdout string) {
	t.Helper()
	for p, h := range sums {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s is gone: %v", p, err)
			continue
		}
		if fileHash(t, p) == h {
			continue
		}
		if c := vcodec(t, p); c != "hevc" {
			t.Errorf("%s changed and is not a verified output (codec %q)", p, c)
		}
		if line := summaryLine(stdout, filepath.Base(p)); !strings.Contains(line, "done") {
			t.Errorf("%s changed but the summary does not say done: %q", p, line)
		}
		t.Logf("%s was done before the signal", filepath.Base(p))
	}
}

// Ctrl-C while encodes run on the manager, a mounted and a streaming host:
// exit 130 within 15 s, originals untouched, no ffmpeg left, no temp files.
func TestSIGINTMidRun(t *testing.T) {
	l, srcs := slowBatch(t, "slower", "manager", 4)
	sums := hashes(t, srcs)
	p := startBinary(t, l.dir, env(l.home, l.state), l.args(append([]string{"-c", "lab"}, srcs...)...)...)
	if !waitFor(40*time.Second, func() bool { return l.remoteEncoding() || p.exited() }) || p.exited() {
		t.Fatalf("remote encodes never started\n%s", p.output())
	}
	time.Sleep(500 * time.Millisecond)
	t.Logf("encoding: %v", ffmpegUnder(l.dir))
	sigAt := time.Now()
	p.signal(syscall.SIGINT)
	code := p.wait(30 * time.Second)
	took := p.ended.Sub(sigAt)
	t.Logf("exited %s after SIGINT", took.Round(10*time.Millisecond))
	out := p.output()
	if code != 130 {
		t.Errorf("exit code %d, want 130\n%s", code, out)
	}
	if took > 15*time.Second {
		t.Errorf("took %s to exit after SIGINT, want ≤ 15s", took)
	}
	if !strings.Contains(p.stdout.String(), "interrupted") {
		t.Errorf("summary does not say the run was interrupted\n%s", out)
	}
	checkOriginals(t, sums, p.stdout.String())
	if left := waitNoFFmpeg(l.dir, 5*time.Second); len(left) > 0 {
		t.Errorf("ffmpeg still running 5s after the binary exited: %v", left)
	}
	l.checkNothingLeft(t, "")
	logOnFailure(t, out)
}

// Ctrl-C twice: the second forces an immediate exit (130). A forced exit
// skips cleanup, but it must not leave encoders running: the first Ctrl-C
// sent the local ffmpeg SIGTERM, and the SIGKILL that should follow 2s
// later (hosts/local.go) dies with the process; the local ffmpeg runs in
// its own process group, so the terminal's Ctrl-C does not reach it
// either. Remote encoders die with their SSH sessions.
func TestDoubleSIGINTForcesExit(t *testing.T) {
	// veryslow: ffmpeg's SIGTERM path flushes x265's lookahead, which then
	// takes many seconds, so an encoder that only got SIGTERM is still there.
	l, srcs := slowBatch(t, "veryslow", "manager", 3)
	sums := hashes(t, srcs)
	p := startBinary(t, l.dir, env(l.home, l.state), l.args(append([]string{"-c", "lab"}, srcs...)...)...)
	if !waitFor(40*time.Second, func() bool { return (l.remoteEncoding() && len(ffmpegUnder(l.media)) > 0) || p.exited() }) || p.exited() {
		t.Fatalf("encodes never started on all hosts\n%s", p.output())
	}
	time.Sleep(300 * time.Millisecond)
	sigAt := time.Now()
	p.signal(syscall.SIGINT)
	time.Sleep(100 * time.Millisecond)
	if !p.exited() {
		p.signal(syscall.SIGINT)
	}
	code := p.wait(10 * time.Second)
	took := p.ended.Sub(sigAt)
	t.Logf("exited %s after the first SIGINT", took.Round(10*time.Millisecond))
	out := p.output()
	if code != 130 {
		t.Errorf("exit code %d, want 130\n%s", code, out)
	}
	if took > 3*time.Second {
		t.Errorf("forced exit took %s, want prompt (≤ 3s)", took)
	}
	checkOriginals(t, sums, p.stdout.String())
	if left := waitNoFFmpeg(l.view, 5*time.Second); len(left) > 0 {
		t.Errorf("nas ffmpeg still running 5s after the forced exit: %v", left)
	}
	if left := waitNoFFmpeg(l.work, 5*time.Second); len(left) > 0 {
		t.Errorf("gamer ffmpeg still running 5s after the forced exit: %v", left)
	}
	if left := waitNoFFmpeg(l.media, 5*time.Second); len(left) > 0 {
		t.Errorf("local ffmpeg still running 5s after the forced exit (orphaned, still writing its temp file): %v\ntemp files: %q",
			left, leftovers(l.media))
	}
	logOnFailure(t, out)
}

// kill -9 while encodes run, then the same command again: the rerun
// finishes everything (exit 0), every file is encoded exactly once, the
// killed run's temp files are gone (local, mounted and streaming), and the
// remote ffmpeg processes died with their SSH connections.
func TestKill9ThenRerun(t *testing.T) {
	l := newLab(t, true)
	// 5 slots for 5 files: each remote host has a second slot, so whichever
	// host takes the small file still has a big one running at the kill.
	l.writeConfig("slower", "manager", "nas2", "gamer2")
	var srcs []string
	for i := 0; i < 4; i++ {
		srcs = append(srcs, l.clip(fmt.Sprintf("big%d.mkv", i),
			testenv.Clip{Seconds: 4, Width: 640, Height: 480, AudioLangs: []string{"eng"}}))
	}
	// Small enough to finish before the kill.
	srcs = append(srcs, l.clip("small.mkv", testenv.Clip{Seconds: 1, Width: 160, Height: 120, AudioLangs: []string{"eng"}}))
	sums := hashes(t, srcs)
	args := l.args(append([]string{"-c", "lab"}, srcs...)...)

	p := startBinary(t, l.dir, env(l.home, l.state), args...)
	ready := func() bool {
		done := 0
		for _, n := range encodesDone(t, l.state) {
			done += n
		}
		return done > 0 && l.remoteEncoding() && len(leftovers(l.media, l.work)) > 0
	}
	if !waitFor(60*time.Second, func() bool { return ready() || p.exited() }) || p.exited() {
		t.Fatalf("never had a file done while remote encodes ran\n%s", p.output())
	}
	running := ffmpegUnder(l.dir)
	tempsBefore := leftovers(l.media, l.work)
	doneBefore := encodesDone(t, l.state)
	p.signal(syscall.SIGKILL)
	killedAt := time.Now()
	p.wait(5 * time.Second)
	t.Logf("killed with running ffmpeg %v\ntemp files %q\ndone %v", running, tempsBefore, doneBefore)

	// The remote encoders must die with their SSH sessions.
	for name, sub := range map[string]string{"nas": l.view, "gamer": l.work} {
		if left := waitNoFFmpeg(sub, 5*time.Second); len(left) > 0 {
			t.Errorf("%s: ffmpeg still running %s after the manager was killed: %v", name, time.Since(killedAt).Round(time.Second), left)
		} else {
			t.Logf("%s: remote ffmpeg gone within %s of the kill", name, time.Since(killedAt).Round(100*time.Millisecond))
		}
	}
	if left := ffmpegUnder(l.media); len(left) > 0 {
		t.Logf("note: local ffmpeg orphaned by kill -9 still runs (no parent-death signal): %v", left)
	}

	// The same command again (at a fast preset, to keep the test short).
	l.writeConfig("ultrafast", "manager", "nas2", "gamer2")
	p2, code := run(t, l.dir, env(l.home, l.state), 120*time.Second, args...)
	out := p2.output()
	if code != 0 {
		t.Errorf("rerun: exit code %d, want 0\n%s", code, out)
	}
	for _, s := range srcs {
		if c := vcodec(t, s); c != "hevc" {
			t.Errorf("%s is %s after the rerun, want hevc", filepath.Base(s), c)
		}
	}
	for _, s := range srcs {
		line := summaryLine(p2.stdout.String(), filepath.Base(s))
		if doneBefore[s] > 0 {
			if !strings.Contains(line, "already done in an earlier run") {
				t.Errorf("%s was done by the killed run; rerun summary: %q", filepath.Base(s), line)
			}
			if fileHash(t, s) == sums[s] {
				t.Errorf("%s: journal says done but the file is the original", s)
			}
		} else if !strings.Contains(line, "done") || strings.Contains(line, "earlier run") {
			t.Errorf("%s was not done by the killed run; rerun summary: %q", filepath.Base(s), line)
		}
	}
	for _, s := range srcs {
		if n := encodesDone(t, l.state)[s]; n != 1 {
			t.Errorf("%s encoded %d times according to the journal, want exactly 1", filepath.Base(s), n)
		}
	}
	if left := leftovers(l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left after the rerun: %q (before the kill: %q)", left, tempsBefore)
	}
	if ents := dirEntries(l.work); len(ents) > 0 {
		t.Errorf("working_dir not empty after the rerun: %q", ents)
	}
	logOnFailure(t, out)
}

// kill -9 of the manager while the manager itself encodes: the local ffmpeg
// must not outlive it. Remote encoders die with their SSH session (the
// watchdog); the local one runs in its own process group (hosts/local.go,
// Setpgid without Pdeathsig), so nothing stops it: it burns CPU for the
// rest of its encode, writing a temp file the next run deletes under it.
func TestKill9LocalEncoderDies(t *testing.T) {
	l := newLab(t, false)
	l.writeConfig("slower", "manager")
	a := l.clip("a.mkv", testenv.Clip{Seconds: 4, Width: 640, Height: 480})
	p := startBinary(t, l.dir, env(l.home, l.state), l.args("-c", "lab", a)...)
	if !waitFor(30*time.Second, func() bool { return len(ffmpegUnder(l.media)) > 0 || p.exited() }) || p.exited() {
		t.Fatalf("the local encode never started\n%s", p.output())
	}
	p.signal(syscall.SIGKILL)
	p.wait(5 * time.Second)
	if left := waitNoFFmpeg(l.media, 5*time.Second); len(left) > 0 {
		t.Errorf("local ffmpeg still running 5s after the manager was killed with SIGKILL: %v", left)
	}
}
