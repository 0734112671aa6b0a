package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/internal/testenv"
	"clustertx/journal"
	"clustertx/progress"
)

type span struct{ start, end time.Time }

// pipeLog records when transfers and encodes ran: transfers from
// Observer.Transfer (it reports each one's duration when it ends), encodes
// from JobStarted to the progress block that says ffmpeg ended.
type pipeLog struct {
	cluster.NopObserver
	mu        sync.Mutex
	up, down  []span
	encStart  map[int]time.Time
	encodes   []span
	uploadEnd []int // remote ffmpeg processes running when each upload ended
	work      string
}

func (p *pipeLog) Transfer(_ string, upload bool, _ int64, d time.Duration) {
	now := time.Now()
	running := 0
	if upload {
		running = len(ffmpegOf(p.work))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if upload {
		p.up = append(p.up, span{now.Add(-d), now})
		p.uploadEnd = append(p.uploadEnd, running)
	} else {
		p.down = append(p.down, span{now.Add(-d), now})
	}
}

func (p *pipeLog) JobStarted(j cluster.JobInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.encStart == nil {
		p.encStart = map[int]time.Time{}
	}
	p.encStart[j.ID] = time.Now()
}

func (p *pipeLog) JobProgress(j cluster.JobInfo, pr progress.Progress) {
	if !pr.Ended {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.encodes = append(p.encodes, span{p.encStart[j.ID], time.Now()})
}

func byStart(s []span) []span {
	s = append([]span(nil), s...)
	sort.Slice(s, func(i, j int) bool { return s[i].start.Before(s[j].start) })
	return s
}

// Issue 6, streaming prefetch: a streaming host (one slot) uploads the
// next file while it encodes one, and sends results back while the next
// encodes, one ffmpeg at a time; with --no-prefetch every step waits for
// the one before. With one slot, the k-th file's upload ending before the
// (k-1)-th file's download starts is only possible if it ran during that
// file's encode.
func TestPrefetchOverlapsTransfersWithEncodes(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.gamerYAML())
	l.slowProfile() // ~2 s encodes: uploads of these clips take ~0.1 s
	for _, prefetch := range []bool{true, false} {
		t.Run(fmt.Sprintf("prefetch=%v", prefetch), func(t *testing.T) {
			var paths []string
			for i := 0; i < 3; i++ {
				paths = append(paths, l.clip(fmt.Sprintf("p%v/ep%d.mkv", prefetch, i), testenv.Clip{Seconds: 2, AudioLangs: []string{"eng"}}))
			}
			obs := &pipeLog{work: l.work}
			rep, out, err := l.run(context.Background(), func(o *cluster.Options) {
				o.Observer = obs
				o.NoPrefetch = !prefetch
			}, items("lab", paths...)...)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			for _, f := range rep.Files {
				if f.Outcome != cluster.Done || f.Attempts != 1 {
					t.Errorf("%s: %s after %d attempts: %s", f.Path, f.Outcome, f.Attempts, f.Reason)
					continue
				}
				info := probe(t, f.Output)
				if info.VCodec() != "hevc" || len(info.Audio) != 1 || info.Duration < 1.5 {
					t.Errorf("%s: %s, %d audio, %.2fs", f.Output, info.VCodec(), len(info.Audio), info.Duration)
				}
				if f.Elapsed <= 0 || f.Elapsed > 30*time.Second {
					t.Errorf("%s: elapsed %s", f.Path, f.Elapsed)
				}
			}
			obs.mu.Lock()
			up, down, enc := byStart(obs.up), byStart(obs.down), byStart(obs.encodes)
			running := append([]int(nil), obs.uploadEnd...)
			obs.mu.Unlock()
			if len(up) != 3 || len(down) != 3 || len(enc) != 3 {
				t.Fatalf("%d uploads, %d downloads, %d encodes, want 3 each\n%s", len(up), len(down), len(enc), out)
			}
			for k := 1; k < len(enc); k++ {
				if enc[k].start.Before(enc[k-1].end) {
					t.Errorf("encodes %d and %d overlap on a one-slot host: %v", k-1, k, enc)
				}
			}
			overlapped := 0
			for k := 1; k < len(up); k++ {
				if up[k].end.Before(down[k-1].start) {
					overlapped++
				}
				if !prefetch && up[k].start.Before(down[k-1].end) {
					t.Errorf("--no-prefetch: upload %d started before download %d ended", k, k-1)
				}
			}
			t.Logf("prefetch=%v: %d of 2 uploads ran during the previous encode; remote ffmpeg running at each upload's end: %v", prefetch, overlapped, running)
			if prefetch && (overlapped == 0 || !strings.Contains(out, "prefetch")) {
				t.Errorf("no upload overlapped an encode:\nuploads %v\ndownloads %v\n%s", up, down, out)
			}
			if !prefetch && overlapped > 0 {
				t.Errorf("--no-prefetch: %d uploads overlapped an encode", overlapped)
			}
			if left := leftovers(t, l.media, l.work); len(left) > 0 {
				t.Errorf("temp files left: %q", left)
			}
		})
	}
}

// A streaming host dies while it encodes one file and holds the next one,
// prefetched (uploaded, waiting for the encoder): both go back to the
// queue and are done elsewhere, and no temp file survives (what the dead
// host kept is removed when it answers again, or by the next run).
func TestHostDiesHoldingPrefetchedFile(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	l.slowProfile()
	l.nas.Stop() // gamer takes the files first; nas joins once gamer is gone
	var paths []string
	for i := 0; i < 3; i++ {
		paths = append(paths, l.clip(fmt.Sprintf("ep%d.mkv", i), testenv.Clip{Seconds: 3}))
	}
	held := make(chan bool, 1)
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		// Two staged sources in gamer's working_dir while one encodes: it
		// holds a prefetched file.
		ok := waitFor(60*time.Second, func() bool { return stagedSources(l.work) >= 2 && len(ffmpegOf(l.work)) > 0 })
		held <- ok
		l.gamer.Stop()
		l.nas.Start(t)
		time.Sleep(time.Second)
		l.gamer.Start(t) // it comes back: its leftovers must go
	}()
	jr, err := journal.Open(filepath.Join(l.dir, "journal.jsonl"))
	must(t, err)
	withJournal := func(o *cluster.Options) {
		o.Journal = jr
		o.HostWait = 30 * time.Second
	}
	rep, out, err := l.run(context.Background(), withJournal, items("lab", paths...)...)
	<-killed
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if !<-held {
		t.Errorf("gamer never held a prefetched file while encoding another:\n%s", out)
	}
	if left := leftovers(t, l.work); len(left) > 0 {
		// gamer came back after the run ended: the next run removes them.
		_, out2, err2 := l.run(context.Background(), withJournal, items("lab", paths...)...)
		if err2 != nil {
			t.Fatalf("rerun: %v\n%s", err2, out2)
		}
		out += out2
	}
	jr.Close()
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done {
			t.Errorf("%s: %s %s\n%s", f.Path, f.Outcome, f.Reason, out)
			continue
		}
		if f.Attempts != 1 {
			t.Errorf("%s: %d attempts: a host failure is not an attempt", f.Path, f.Attempts)
		}
		if probe(t, f.Output).VCodec() != "hevc" {
			t.Errorf("%s is not hevc", f.Output)
		}
	}
	if !strings.Contains(out, "host gamer is down") || !strings.Contains(out, "prefetch") {
		t.Errorf("want gamer to prefetch and then go down:\n%s", out)
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left: %q\n%s", left, out)
	}
	t.Log(out)
}

// stagedSources counts the complete-looking staged sources in a working_dir.
func stagedSources(dir string) int {
	entries, _ := os.ReadDir(dir)
	n := 0
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Size() > 0 && strings.Contains(e.Name(), "-src") {
			n++
		}
	}
	return n
}

// Ctrl-C while a streaming host encodes one file and holds the next:
// both stop, every staged file is removed, the originals are untouched.
func TestCancelWithPrefetchedFileCleansUp(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.gamerYAML())
	l.slowProfile()
	var paths []string
	sums := map[string]string{}
	for i := 0; i < 3; i++ {
		p := l.clip(fmt.Sprintf("ep%d.mkv", i), testenv.Clip{Seconds: 4})
		paths = append(paths, p)
		sums[p] = fileHash(t, p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan bool, 1)
	go func() {
		held <- waitFor(60*time.Second, func() bool { return stagedSources(l.work) >= 2 && len(ffmpegOf(l.work)) > 0 })
		cancel()
	}()
	rep, out, _ := l.run(ctx, nil, items("lab", paths...)...)
	if !<-held {
		t.Errorf("gamer never held a prefetched file:\n%s", out)
	}
	if !rep.Interrupted || rep.Count(cluster.NotRun) != 3 {
		t.Errorf("want 3 files not run after the interrupt:\n%s", out)
	}
	for p, s := range sums {
		if fileHash(t, p) != s {
			t.Errorf("original %s changed", p)
		}
	}
	if !waitFor(5*time.Second, func() bool { return len(ffmpegOf(l.work)) == 0 }) {
		t.Errorf("ffmpeg still running after cancel: %v", ffmpegOf(l.work))
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left: %q\n%s", left, out)
	}
}

// A working_dir with room for one job at a time (a small tmpfs): the slot
// neither prefetches nor takes the next job while a result is still on its
// way back, so no job fails its space check; every file is done at its
// first attempt.
func TestPrefetchRespectsWorkingDirSpace(t *testing.T) {
	l := newLab(t)
	var paths []string
	var size int64
	for i := 0; i < 3; i++ {
		p := l.clip(fmt.Sprintf("ep%d.mkv", i), testenv.Clip{Seconds: 2, Width: 640, Height: 480, Noise: true})
		st, err := os.Stat(p)
		must(t, err)
		size = max(size, st.Size())
		paths = append(paths, p)
	}
	// One job needs 2 × size + 64 MiB; a second one would need 2 × size more.
	opt := fmt.Sprintf("size=%dk", (2*size+64<<20+size/2)>>10)
	if err := syscall.Mount("tmpfs", l.work, "tmpfs", 0, opt); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): this case needs a small working_dir", err)
	}
	t.Cleanup(func() { syscall.Unmount(l.work, syscall.MNT_DETACH) })
	l.writeConfig(l.gamerYAML())
	most := 0
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() { // how many sources were ever staged at once
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			most = max(most, stagedSources(l.work))
		}
	}()
	rep, out, err := l.run(context.Background(), nil, items("lab", paths...)...)
	close(stop)
	<-watched
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done || f.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts: %s\n%s", f.Path, f.Outcome, f.Attempts, f.Reason, out)
		}
	}
	if most > 1 {
		t.Errorf("%d sources staged at once in a working_dir with room for one job", most)
	}
	if !strings.Contains(out, "no prefetch: working_dir") {
		t.Errorf("the slot never found the working_dir too small to prefetch:\n%s", out)
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}
}
