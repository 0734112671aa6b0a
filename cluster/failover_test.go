package cluster_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/internal/testenv"
	"clustertx/journal"
)

// slowProfile makes encodes take long enough to interfere with them.
func (l *lab) slowProfile() {
	data, _ := os.ReadFile(l.cfgPath)
	data = bytes.Replace(data, []byte("-preset ultrafast"), []byte("-preset slower"), 1)
	must(l.t, os.WriteFile(l.cfgPath, data, 0o644))
}

// waitFor polls cond (a test helper, not the code under test) until it
// holds or the deadline passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// ffmpegOf returns pids of running ffmpeg processes whose command line
// contains marker.
func ffmpegOf(marker string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.HasPrefix(string(cmd), "ffmpeg\x00") || !strings.Contains(string(cmd), marker) {
			continue
		}
		if stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); strings.Contains(string(stat), ") Z ") {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// Issue 8 (1): a host that is down at start joins as soon as it answers.
func TestLateJoinerTakesWork(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	l.slowProfile()
	l.gamer.Stop()
	var paths []string
	for i := 0; i < 5; i++ {
		paths = append(paths, l.clip("ep"+strconv.Itoa(i)+".mkv", testenv.Clip{Seconds: 4}))
	}
	go func() {
		time.Sleep(1500 * time.Millisecond)
		l.gamer.Start(t)
	}()
	rep, out, err := l.run(context.Background(), nil, items("lab", paths...)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	took := map[string]int{}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done {
			t.Errorf("%s: %s %s", f.Path, f.Outcome, f.Reason)
		}
		took[f.Host]++
	}
	if took["gamer"] == 0 {
		t.Errorf("the late host took no work: %v\n%s", took, out)
	}
	if !strings.Contains(out, "host gamer is up") {
		t.Errorf("no join message:\n%s", out)
	}
	ev := rep.HostEvents["gamer"]
	if len(ev) < 2 || ev[0].Up || !ev[len(ev)-1].Up {
		t.Errorf("gamer events %+v: want down at start, then up", ev)
	}
}

// Issue 4 (1): a host dying mid-encode or mid-upload loses the job to
// another host, never the file; its leftovers go when it answers again.
func TestHostDiesMidJob(t *testing.T) {
	for _, phase := range []string{"encode", "upload"} {
		t.Run(phase, func(t *testing.T) {
			l := newLab(t)
			l.writeConfig(l.nasYAML(), l.gamerYAML())
			l.slowProfile()
			profile := "" // rules: hevc, slow enough to be killed mid-encode
			clip := testenv.Clip{Seconds: 8, Width: 640, Height: 480}
			if phase == "upload" {
				// A big file that is quick to process: the upload is the long part.
				profile, clip = "remux", testenv.Clip{Seconds: 10, Width: 1280, Height: 720, Noise: true}
			}
			big := l.clip("big.mkv", clip)
			small := l.clip("small.mkv", testenv.Clip{Seconds: 2})
			sums := map[string]string{big: fileHash(t, big), small: fileHash(t, small)}
			killed := make(chan struct{})
			go func() {
				defer close(killed)
				var ok bool
				if phase == "encode" {
					ok = waitFor(30*time.Second, func() bool { return len(ffmpegOf(l.work)) > 0 })
				} else {
					ok = waitFor(30*time.Second, func() bool {
						entries, _ := os.ReadDir(l.work)
						for _, e := range entries {
							if info, err := e.Info(); err == nil && info.Size() > 0 && strings.Contains(e.Name(), "-src") {
								return true
							}
						}
						return false
					})
				}
				if !ok {
					t.Errorf("gamer never started the %s", phase)
				}
				l.gamer.Stop()
				time.Sleep(time.Second)
				l.gamer.Start(t) // it comes back: its leftovers must go
			}()
			jr, err := journal.Open(filepath.Join(l.dir, "journal.jsonl"))
			must(t, err)
			withJournal := func(o *cluster.Options) { o.Journal = jr }
			work := []cluster.WorkItem{{Path: big, Cluster: "lab", Profile: profile}, {Path: small, Cluster: "lab", Profile: profile}}
			rep, out, err := l.run(context.Background(), withJournal, work...)
			<-killed
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			// gamer is back now (killed closes after its restart). If it
			// came back before the run ended, its leftovers are
			// already gone; if not, they are in the journal and the next
			// run removes them (and skips both files, which are done).
			if left := leftovers(t, l.work); len(left) > 0 {
				_, out2, err2 := l.run(context.Background(), withJournal, work...)
				if err2 != nil {
					t.Fatalf("rerun: %v\n%s", err2, out2)
				}
				out += out2
			}
			jr.Close()
			for _, f := range rep.Files {
				if f.Outcome != cluster.Done {
					t.Errorf("%s: %s %s\n%s", f.Path, f.Outcome, f.Reason, out)
				}
				if sums[f.Path] == "" {
					t.Errorf("unexpected file %s", f.Path)
				}
			}
			if !strings.Contains(out, "host gamer is down") {
				t.Errorf("no host-down message:\n%s", out)
			}
			if phase == "upload" && !strings.Contains(out, "upload") {
				t.Errorf("gamer did not fail during the upload:\n%s", out)
			}
			t.Log(out)
			if left := leftovers(t, l.media, l.work); len(left) > 0 {
				t.Errorf("temp files left: %q\n%s", left, out)
			}
		})
	}
}

// A stalled encode (no progress for StallTimeout) is stopped and the job
// moves on; the stalled host is treated as failed and re-probed.
func TestStalledEncodeIsStoppedAndMoved(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	a := l.clip("a.mkv", testenv.Clip{Seconds: 8, Width: 640, Height: 480})
	go func() {
		if !waitFor(30*time.Second, func() bool { return len(ffmpegOf(l.work)) > 0 }) {
			return
		}
		for _, pid := range ffmpegOf(l.work) {
			syscall.Kill(pid, syscall.SIGSTOP) // frozen: no progress, no exit
		}
	}()
	// gamer takes the job first (nas is down at start and joins later).
	l.nas.Stop()
	go func() {
		time.Sleep(2 * time.Second)
		l.nas.Start(t)
	}()
	rep, out, err := l.run(context.Background(), func(o *cluster.Options) {
		o.StallTimeout = 2 * time.Second
		o.HostWait = 20 * time.Second
	}, items("lab", a)...)
	for _, pid := range ffmpegOf(l.work) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f := rep.Files[0]
	if f.Outcome != cluster.Done {
		t.Fatalf("%s %s\n%s", f.Outcome, f.Reason, out)
	}
	if !strings.Contains(out, "no progress for 2s") {
		t.Errorf("stall not reported:\n%s", out)
	}
}

// Issue 5: threshold_check estimates the saving from the output so far;
// a file that compresses well runs to the end, one that cannot reach the
// threshold is stopped early and its original kept.
func TestThresholdCheckEarlyAbort(t *testing.T) {
	testenv.NeedFFmpeg(t)
	l := &lab{t: t, dir: t.TempDir()}
	l.media = filepath.Join(l.dir, "media")
	l.writeConfig(l.localYAML())
	data, _ := os.ReadFile(l.cfgPath)
	// grow: lossless x264 makes the output far larger than the source.
	data = bytes.Replace(data, []byte("profiles:\n"), []byte(`profiles:
  grow:
    output_options: -c:v libx264 -preset slow -qp 0 -c:a copy
    extension: .mkv
    threshold: 20
    threshold_check: 10
`), 1)
	data = bytes.Replace(data, []byte("  hevc:\n"), []byte("  hevc:\n    threshold: 20\n    threshold_check: 10\n"), 1)
	must(t, os.WriteFile(l.cfgPath, data, 0o644))
	bad := l.clip("bad.mp4", testenv.Clip{Seconds: 20, Width: 640, Height: 480})
	good := l.clip("good.mp4", testenv.Clip{Seconds: 20, Width: 640, Height: 480})
	badSum := fileHash(t, bad)
	start := time.Now()
	rep, out, err := l.run(context.Background(), nil,
		cluster.WorkItem{Path: bad, Cluster: "lab", Profile: "grow"},
		cluster.WorkItem{Path: good, Cluster: "lab", Profile: "hevc"})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	byPath := map[string]*cluster.FileResult{}
	for _, f := range rep.Files {
		byPath[f.Path] = f
	}
	b := byPath[bad]
	if b.Outcome != cluster.Kept || !strings.Contains(b.Reason, "estimated saving") {
		t.Errorf("poorly compressing file: %s %s", b.Outcome, b.Reason)
	}
	if fileHash(t, bad) != badSum {
		t.Error("original of the aborted encode changed")
	}
	if g := byPath[good]; g.Outcome != cluster.Done {
		t.Errorf("well compressing file must not be aborted: %s %s", g.Outcome, g.Reason)
	}
	if left := leftovers(t, l.media); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}
	t.Logf("took %s", time.Since(start))
}

// Tail speculation: a job stuck on a slow host is started again on a host
// that becomes idle; the first verified copy wins, the other is stopped
// and cleaned up, and the original is replaced exactly once.
func TestSpeculativeCopyWins(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	a := l.clip("a.mp4", testenv.Clip{Seconds: 8, Width: 640, Height: 480})
	l.gamer.Stop() // nas takes the job first; gamer joins later
	go func() {
		// Freeze nas's encode: from the queue's point of view nas is now
		// far slower than predicted.
		if !waitFor(30*time.Second, func() bool { return len(ffmpegOf(l.view)) > 0 }) {
			return
		}
		time.Sleep(300 * time.Millisecond)
		for _, pid := range ffmpegOf(l.view) {
			syscall.Kill(pid, syscall.SIGSTOP)
		}
		l.gamer.Start(t)
	}()
	rep, out, err := l.run(context.Background(), func(o *cluster.Options) {
		o.StallTimeout = time.Minute // not a stall: a slow host
		o.SpecMinGain = time.Millisecond
	}, items("lab", a)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f := rep.Files[0]
	if f.Outcome != cluster.Done || f.Host != "gamer" {
		t.Fatalf("%s on %s: %s\n%s", f.Outcome, f.Host, f.Reason, out)
	}
	if !strings.Contains(out, "host nas: stopped its copy") {
		t.Errorf("the losing copy was not stopped:\n%s", out)
	}
	if !waitFor(5*time.Second, func() bool { return len(ffmpegOf(l.view)) == 0 }) {
		t.Errorf("nas's losing ffmpeg is still running: %v", ffmpegOf(l.view))
	}
	entries, _ := os.ReadDir(l.media)
	if len(entries) != 1 || entries[0].Name() != "a.mkv" {
		t.Errorf("media folder holds %v, want only a.mkv", entries)
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}
}

// Issue 4: a full disk mid-transfer is a host failure with a clear
// message, never a truncated file accepted as output. gamer's working_dir
// is a small tmpfs that fills up while the source is being uploaded.
func TestFullDiskMidUpload(t *testing.T) {
	l := newLab(t)
	a := l.clip("a.mkv", testenv.Clip{Seconds: 10, Width: 640, Height: 480, Noise: true})
	st, _ := os.Stat(a)
	// Room for the pre-check (2 × size + 64 MiB) and a little more.
	size := fmt.Sprintf("size=%dk", (2*st.Size()+80<<20)>>10)
	if err := syscall.Mount("tmpfs", l.work, "tmpfs", 0, size); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): the full-disk case needs it", err)
	}
	t.Cleanup(func() { syscall.Unmount(l.work, syscall.MNT_DETACH) })
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	l.nas.Stop() // gamer takes the file first; nas joins later
	sum := fileHash(t, a)
	go func() {
		// As soon as the upload starts, someone else fills the disk.
		waitFor(30*time.Second, func() bool {
			entries, _ := os.ReadDir(l.work)
			for _, e := range entries {
				if strings.Contains(e.Name(), "-src") {
					return true
				}
			}
			return false
		})
		f, err := os.Create(filepath.Join(l.work, "filler"))
		if err == nil {
			buf := make([]byte, 1<<20)
			for {
				if _, err := f.Write(buf); err != nil {
					break
				}
			}
			f.Close()
		}
		l.nas.Start(t)
	}()
	rep, out, err := l.run(context.Background(), func(o *cluster.Options) {
		// nas joins as soon as it is up: the wait only bounds a loaded
		// machine's restart and reconnect (2 s was once too short).
		o.Keep, o.HostWait = true, 20*time.Second
	}, cluster.WorkItem{Path: a, Cluster: "lab", Profile: "remux"})
	os.Remove(filepath.Join(l.work, "filler"))
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f := rep.Files[0]
	if f.Outcome != cluster.Done || f.Host != "nas" {
		t.Fatalf("%s on %s: %s\n%s", f.Outcome, f.Host, f.Reason, out)
	}
	if !strings.Contains(out, "host gamer is down") || !strings.Contains(out, "upload") {
		t.Errorf("the full disk should show as gamer failing during the upload:\n%s", out)
	}
	if fileHash(t, a) != sum {
		t.Error("original changed")
	}
	if probe(t, f.Output).Duration < 9.5 {
		t.Errorf("output is truncated: %v", probe(t, f.Output).Duration)
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}
}

// brokenMountLab is the lab with two mounted hosts, nas and nas2 (the same
// sshd), whose path substitution points at a folder that does not exist
// there (a missing mount), beside the streaming host gamer.
func brokenMountLab(t *testing.T, files int) (*lab, []string) {
	l := newLab(t)
	gone := filepath.Join(l.dir, "not-mounted") + "/"
	l.writeConfig(
		l.nas.YAML("nas", "type: mounted", "path-substitutions:", "  - "+l.media+"/ "+gone),
		l.nas.YAML("nas2", "type: mounted", "path-substitutions:", "  - "+l.media+"/ "+gone),
		l.gamerYAML())
	var paths []string
	for i := 0; i < files; i++ {
		paths = append(paths, l.clip(fmt.Sprintf("season %d/ep%02d.mkv", i/2+1, i), testenv.Clip{Seconds: 1}))
	}
	return l, paths
}

// Checked at the start: the broken hosts are left out of every file (a dry
// run says why; after 3 folders with nothing readable, the whole path
// substitution is), and no file is ever sent to them.
func TestMountedHostsThatCannotSeeTheMediaAreLeftOut(t *testing.T) {
	l, paths := brokenMountLab(t, 8) // two per "season N" folder
	_, out, err := l.run(context.Background(), func(o *cluster.Options) { o.DryRun = true }, items("lab", paths...)...)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	gone := filepath.Join(l.dir, "not-mounted")
	if n := strings.Count(out, "not on:   nas: cannot read "+gone+"/season "); n != 6 {
		t.Errorf("dry run: %d files of the first 3 folders say nas cannot read them, want 6\n%s", n, out)
	}
	if n := strings.Count(out, "not on:   nas: cannot read files in 3 folders under "+gone+"/ there"); n != 2 {
		t.Errorf("dry run: after 3 unreadable folders the 4th folder's 2 files should be judged by the substitution (%d)\n%s", n, out)
	}
	rep, out, err := l.run(context.Background(), nil, items("lab", paths...)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done || f.Host != "gamer" {
			t.Errorf("%s: %s on %q (%s), want done on gamer", filepath.Base(f.Path), f.Outcome, f.Host, f.Reason)
		}
	}
	if strings.Contains(out, "job: nas") {
		t.Errorf("a file was sent to a host that cannot see it\n%s", out)
	}
}

// The same hosts joining mid-run are not checked up front: ffmpeg's failure
// to open the file there is recognised as the host's. Every file is done by
// the streaming host; a file refused by both broken hosts is not failed for
// it (their refusals cost no attempt), and a broken host leaves the run
// after 3 files in a row instead of failing through the library.
func TestMountedHostsThatCannotSeeTheMediaMidRun(t *testing.T) {
	l, paths := brokenMountLab(t, 8)
	l.slowProfile() // nas joins with work left
	l.nas.Stop()
	go func() { // once the run is past its plan: the first upload to gamer
		waitFor(30*time.Second, func() bool {
			e, _ := os.ReadDir(l.work)
			return len(e) > 0
		})
		l.nas.Start(t)
	}()
	rep, out, err := l.run(context.Background(), nil, items("lab", paths...)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done || f.Host != "gamer" {
			t.Errorf("%s: %s on %q (%s), want done on gamer", filepath.Base(f.Path), f.Outcome, f.Host, f.Reason)
		}
	}
	refusals := 0
	for _, h := range []string{"nas", "nas2"} {
		n := strings.Count(out, "warning: host "+h+": ")
		refusals += n
		if n > 3 {
			t.Errorf("%s failed %d files: it should have left the run after 3", h, n)
		}
		left := strings.Contains(out, "warning: host "+h+" cannot reach the media: 3 files in a row")
		if n == 3 && !left {
			t.Errorf("%s failed 3 files in a row but did not leave the run\n%s", h, out)
		}
	}
	if refusals == 0 {
		t.Fatalf("no file went to a broken host: the test exercised nothing\n%s", out)
	}
	if !strings.Contains(out, "cannot reach the file through its mount or path substitution") {
		t.Errorf("the failures are not explained as a mount problem\n%s", out)
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}
}
