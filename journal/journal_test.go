package journal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func newPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "state", "clustertx", "journal.jsonl")
}

func mustOpen(t *testing.T, path string) *Journal {
	t.Helper()
	j, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return j
}

func sameEntry(a, b Entry) bool {
	ta, tb := a.Time, b.Time
	a.Time, b.Time = time.Time{}, time.Time{}
	qa, qb := a.Quality, b.Quality
	a.Quality, b.Quality = nil, nil
	sameQ := qa == qb || qa != nil && qb != nil && *qa == *qb
	return a == b && ta.Equal(tb) && sameQ
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestRoundTrip(t *testing.T) {
	path := newPath(t)
	j := mustOpen(t, path)
	k1 := Key{Path: "/media/a.mkv", Size: 100, MtimeNs: 1}
	k1b := Key{Path: "/media/a.mkv", Size: 50, MtimeNs: 2}     // the same path after replacement
	k2 := Key{Path: "/media/caf\xe9.avi", Size: 7, MtimeNs: 3} // Latin-1 name, not UTF-8
	recs := []Entry{
		{Key: k1, Outcome: Failed, Reason: "ffmpeg exit 1", Host: "nas", Profile: "hevc", Attempts: 1},
		{Key: k1, Outcome: Done, Output: "/media/a.mp4", Host: "box", Profile: "hevc", Attempts: 2,
			Quality: &Quality{Metric: "ssim", Target: 0.98, Option: "-crf", Level: 27, PredictedScore: 0.9812,
				PredictedBytes: 123456, SampleEncodes: 12, SearchSeconds: 31.5}},
		{Key: k2, Outcome: Kept, Output: "/media/caf\xe9.mkv", Profile: "hevc"},
		{Key: k1b, Outcome: Skipped, Reason: "rule small"},
	}
	for _, e := range recs {
		if err := j.Record(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Record(Entry{Key: k1, Outcome: "bogus"}); err == nil {
		t.Fatal("Record accepted an invalid outcome")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Record(recs[0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v, want ErrClosed", err)
	}

	j = mustOpen(t, path)
	defer j.Close()
	if w := j.Warnings(); len(w) != 0 {
		t.Fatalf("warnings on a clean journal: %q", w)
	}
	check := func(k Key, want Entry) {
		t.Helper()
		got, ok := j.Lookup(k)
		if !ok || !sameEntry(got, want) {
			t.Fatalf("Lookup(%q) = %+v, %v; want %+v", k.Path, got, ok, want)
		}
		if got.Time.IsZero() {
			t.Fatalf("Time not set by Record")
		}
	}
	got1, _ := j.Lookup(k1)
	recs[1].Time = got1.Time
	check(k1, recs[1]) // the latest, not the failure
	got2, _ := j.Lookup(k2)
	recs[2].Time = got2.Time
	check(k2, recs[2])
	if _, ok := j.Lookup(Key{Path: k1.Path, Size: 100, MtimeNs: 999}); ok {
		t.Fatal("Lookup matched a different mtime")
	}
	e, ok := j.LookupPath(k1.Path)
	if !ok || e.Key != k1b || e.Outcome != Skipped {
		t.Fatalf("LookupPath = %+v, %v; want the latest version (%+v, skipped)", e, ok, k1b)
	}
	if _, ok := j.LookupPath("/nope"); ok {
		t.Fatal("LookupPath found an unknown path")
	}
}

func TestKeyOfAndChangedFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "movie.mkv")
	if err := os.WriteFile(src, []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	rel, err := filepath.Rel(wd, src)
	if err != nil {
		t.Fatal(err)
	}
	k, err := KeyOf(rel)
	if err != nil {
		t.Fatal(err)
	}
	if k.Path != src || k.Size != 8 || k.MtimeNs == 0 {
		t.Fatalf("KeyOf = %+v", k)
	}
	j := mustOpen(t, newPath(t))
	defer j.Close()
	if err := j.Record(Entry{Key: k, Outcome: Done, Output: src}); err != nil {
		t.Fatal(err)
	}
	// The output replaced the source: new size and mtime.
	if err := os.WriteFile(src, []byte("encoded output"), 0o644); err != nil {
		t.Fatal(err)
	}
	k2, _ := KeyOf(src)
	if _, ok := j.Lookup(k2); ok {
		t.Fatal("Lookup matched a changed file")
	}
	if e, ok := j.LookupPath(src); !ok || e.Outcome != Done {
		t.Fatalf("LookupPath = %+v, %v; want done", e, ok)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/state")
	if got := DefaultPath(); got != "/var/state/clustertx/journal.jsonl" {
		t.Fatalf("DefaultPath = %q", got)
	}
	t.Setenv("XDG_STATE_HOME", "relative/ignored")
	t.Setenv("HOME", "/home/u")
	if got := DefaultPath(); got != "/home/u/.local/state/clustertx/journal.jsonl" {
		t.Fatalf("DefaultPath = %q", got)
	}
	if _, err := Open(""); err == nil || !strings.Contains(err.Error(), "no path") {
		t.Fatalf("Open(\"\") = %v", err)
	}
}

func TestCreatesPrivateFiles(t *testing.T) {
	path := newPath(t)
	j := mustOpen(t, path)
	defer j.Close()
	for p, want := range map[string]os.FileMode{filepath.Dir(path): 0o700 | os.ModeDir, path: 0o600, path + ".lock": 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

func writeSome(t *testing.T, path string, n int) int64 {
	t.Helper()
	j := mustOpen(t, path)
	for i := 0; i < n; i++ {
		if err := j.Record(Entry{Key: Key{Path: fmt.Sprintf("/m/%d", i), Size: int64(i)}, Outcome: Done}); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	return fileSize(t, path)
}

func appendRaw(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestTornTailIsDroppedAndTruncated(t *testing.T) {
	for name, tail := range map[string]string{
		"half object":          `{"v":1,"type":"entry","path":"/m/x","si`,
		"whole object, no \\n": `{"v":1,"type":"entry","path":"/m/x","size":1,"mtime_ns":1,"outcome":"done","time":"2026-01-01T00:00:00Z"}`,
		"zeros":                "\x00\x00\x00\x00\x00\x00",
		"garbage line":         "{\"v\":1,\"ty\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := newPath(t)
			good := writeSome(t, path, 3)
			appendRaw(t, path, tail)
			j := mustOpen(t, path)
			if w := j.Warnings(); len(w) != 1 || !strings.Contains(w[0], "torn") {
				t.Fatalf("warnings = %q, want one about the torn tail", w)
			}
			if got := fileSize(t, path); got != good {
				t.Fatalf("size after Open = %d, want %d (truncated to the last good record)", got, good)
			}
			if _, ok := j.LookupPath("/m/x"); ok {
				t.Fatal("torn record was applied")
			}
			// Appending after the truncation must give a readable record.
			if err := j.Record(Entry{Key: Key{Path: "/m/after"}, Outcome: Done}); err != nil {
				t.Fatal(err)
			}
			j.Close()
			j = mustOpen(t, path)
			defer j.Close()
			if w := j.Warnings(); len(w) != 0 {
				t.Fatalf("warnings on reopen: %q", w)
			}
			for _, p := range []string{"/m/0", "/m/1", "/m/2", "/m/after"} {
				if _, ok := j.LookupPath(p); !ok {
					t.Fatalf("%s lost", p)
				}
			}
		})
	}
}

func TestInvalidMiddleLineAndFutureVersion(t *testing.T) {
	path := newPath(t)
	writeSome(t, path, 2)
	future := `{"v":2,"type":"entry","path":"/m/future","new_field":[1,2]}` + "\n"
	appendRaw(t, path, "this is not json\n"+future+`{"v":1,"type":"entry","path":"","outcome":"done"}`+"\n")
	j := mustOpen(t, path)
	if err := j.Record(Entry{Key: Key{Path: "/m/last"}, Outcome: Done}); err != nil {
		t.Fatal(err)
	}
	size := fileSize(t, path)
	j.Close()

	j = mustOpen(t, path)
	w := strings.Join(j.Warnings(), "\n")
	for _, want := range []string{"skipped invalid line 3", "version 2", "line 5: skipped entry record: empty path"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings %q lack %q", w, want)
		}
	}
	if got := fileSize(t, path); got != size {
		t.Fatalf("a middle line caused truncation: %d → %d", size, got)
	}
	for _, p := range []string{"/m/0", "/m/1", "/m/last"} {
		if _, ok := j.LookupPath(p); !ok {
			t.Fatalf("%s lost", p)
		}
	}
	if _, ok := j.LookupPath("/m/future"); ok {
		t.Fatal("a version-2 record was interpreted")
	}
	if err := j.Compact(); err != nil {
		t.Fatal(err)
	}
	j.Close()
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), future) {
		t.Fatalf("the version-2 record was not kept verbatim by Compact:\n%s", b)
	}
	if strings.Contains(string(b), "not json") {
		t.Fatalf("Compact kept an invalid line:\n%s", b)
	}
	if n := countLines(t, path); n != 4 {
		t.Fatalf("%d lines after Compact, want 4:\n%s", n, b)
	}
}

func TestLockInProcess(t *testing.T) {
	path := newPath(t)
	j := mustOpen(t, path)
	_, err := Open(path)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second Open: %v, want *LockedError", err)
	}
	if le.PID != os.Getpid() {
		t.Fatalf("LockedError.PID = %d, want %d", le.PID, os.Getpid())
	}
	msg := err.Error()
	for _, want := range []string{fmt.Sprintf("pid %d", os.Getpid()), "started ", path, "wait for it or stop it"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	j.Close()
	j = mustOpen(t, path)
	j.Close()
}

func TestLockedErrorMessage(t *testing.T) {
	since := time.Date(2026, 3, 1, 2, 0, 0, 0, time.Local)
	e := &LockedError{Path: "/s/journal.jsonl", PID: 1234, Since: since}
	if got := formatSince(since, since.Add(3*time.Hour)); got != "02:00" {
		t.Fatalf("same day: %q", got)
	}
	if got := formatSince(since, since.Add(25*time.Hour)); got != "Sun Mar 1 02:00" {
		t.Fatalf("other day: %q", got)
	}
	if !strings.HasPrefix(e.Error(), "another clustertx run (pid 1234, started ") {
		t.Fatalf("message %q", e.Error())
	}
	if got := (&LockedError{Path: "/j"}).Error(); !strings.HasPrefix(got, "another clustertx run is using journal /j;") {
		t.Fatalf("message without holder info: %q", got)
	}
}

// ---- child processes ----

const (
	envMode = "CLUSTERTX_JOURNAL_HELPER"
	envPath = "CLUSTERTX_JOURNAL_PATH"
	envRun  = "CLUSTERTX_JOURNAL_RUN"
)

// TestHelperProcess is not a test: it is the child process the kill and
// lock tests start and SIGKILL. It prints what has returned successfully,
// each line in a single write, AFTER the call returned.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(envMode)
	if mode == "" {
		return
	}
	out := func(format string, args ...any) { os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n") }
	die := func(err error) { out("ERR %v", err); os.Exit(2) }
	deadline := time.AfterFunc(20*time.Second, func() { os.Exit(3) }) // parent died
	defer deadline.Stop()

	j, err := Open(os.Getenv(envPath))
	if err != nil {
		die(err)
	}
	run := os.Getenv(envRun)
	switch mode {
	case "hold":
		for _, id := range []string{"a", "b", "c"} {
			if err := j.AddTemp(Temp{ID: id, Host: "host-" + id, Path: "/tmp/x." + id}); err != nil {
				die(err)
			}
		}
		if err := j.DoneTemp("b"); err != nil {
			die(err)
		}
		out("ready")
		select {}
	case "loop":
		out("ready")
		for i := 0; ; i++ {
			if err := j.Record(Entry{Key: Key{Path: fmt.Sprintf("/run%s/f%d", run, i), Size: int64(i), MtimeNs: int64(i)}, Outcome: Done, Output: "/out"}); err != nil {
				die(err)
			}
			out("R %d", i)
			if err := j.Record(Entry{Key: Key{Path: "/run" + run + "/same"}, Outcome: Failed, Attempts: i}); err != nil {
				die(err)
			}
			out("S %d", i)
			id := fmt.Sprintf("r%s-%d", run, i)
			if err := j.AddTemp(Temp{ID: id, Path: "/tmp/" + id}); err != nil {
				die(err)
			}
			out("T %d", i)
			if i%2 == 0 {
				if err := j.DoneTemp(id); err != nil {
					die(err)
				}
				out("D %d", i)
			}
			if i%25 == 24 {
				if err := j.Compact(); err != nil {
					die(err)
				}
			}
		}
	}
	die(fmt.Errorf("unknown mode %q", mode))
}

type child struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	ready chan struct{}
	done  chan struct{}
}

func startChild(t *testing.T, mode, path, run string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), envMode+"="+mode, envPath+"="+path, envRun+"="+run)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
			if sc.Text() == "ready" {
				once.Do(func() { close(c.ready) })
			}
		}
	}()
	return c
}

func (c *child) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-c.ready:
	case <-c.done:
		t.Fatalf("child ended before ready: %q", c.lines)
	case <-time.After(10 * time.Second):
		t.Fatal("child not ready after 10s")
	}
}

// kill SIGKILLs the child and returns everything it printed.
func (c *child) kill(t *testing.T) []string {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.done
	c.cmd.Wait()
	for _, l := range c.lines {
		if strings.HasPrefix(l, "ERR") {
			t.Fatalf("child failed: %s", l)
		}
	}
	return c.lines
}

func TestKillAtAnyInstant(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 child processes")
	}
	path := newPath(t)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	reportedTotal := 0
	for run := 0; run < 20; run++ {
		c := startChild(t, "loop", path, strconv.Itoa(run))
		var delay time.Duration
		if run%2 == 0 {
			// From process start: 0 ms kills it before or during Open.
			if run > 0 {
				delay = time.Duration(rng.Intn(40)) * time.Millisecond
			}
		} else {
			// In the middle of the append loop.
			c.waitReady(t)
			delay = time.Duration(rng.Intn(20)) * time.Millisecond
		}
		time.Sleep(delay)
		lines := c.kill(t)

		lastR, lastS, lastT := -1, -1, -1
		added, doneT := map[int]bool{}, map[int]bool{}
		for _, l := range lines {
			var op string
			var i int
			if n, _ := fmt.Sscanf(l, "%s %d", &op, &i); n != 2 {
				continue
			}
			switch op {
			case "R":
				lastR = i
			case "S":
				lastS = i
			case "T":
				lastT, added[i] = i, true
			case "D":
				doneT[i] = true
			}
		}
		reportedTotal += lastR + 1

		j, err := Open(path)
		if err != nil {
			t.Fatalf("run %d (killed after %v, %d records reported): Open: %v", run, delay, lastR+1, err)
		}
		for _, w := range j.Warnings() {
			if !strings.Contains(w, "dropped torn/invalid tail") {
				t.Errorf("run %d: unexpected warning (corruption?): %s", run, w)
			}
		}
		// Entries: a contiguous prefix including everything reported, plus
		// at most the one being written at the kill.
		m := -1
		for {
			if _, ok := j.Lookup(Key{Path: fmt.Sprintf("/run%d/f%d", run, m+1), Size: int64(m + 1), MtimeNs: int64(m + 1)}); !ok {
				break
			}
			m++
		}
		if m < lastR || m > lastR+1 {
			t.Fatalf("run %d (killed after %v): journal has f0..f%d, child reported f0..f%d", run, delay, m, lastR)
		}
		if e, ok := j.LookupPath(fmt.Sprintf("/run%d/f%d", run, m+2)); ok {
			t.Fatalf("run %d: hole in the journal: %+v present after a missing one", run, e)
		}
		if lastS >= 0 {
			e, ok := j.Lookup(Key{Path: fmt.Sprintf("/run%d/same", run)})
			if !ok || e.Attempts < lastS || e.Attempts > lastS+1 {
				t.Fatalf("run %d: repeated key: %+v %v, child reported attempts %d", run, e, ok, lastS)
			}
		}
		// Temps: every reported, not reported-done temp is pending; every
		// reported-done one is not; at most one unreported (being added).
		pending := map[int]bool{}
		prefix := fmt.Sprintf("r%d-", run)
		for _, tp := range j.PendingTemps() {
			if !strings.HasPrefix(tp.ID, prefix) {
				t.Fatalf("run %d: pending temp %+v from an earlier run survived its removal", run, tp)
			}
			i, _ := strconv.Atoi(strings.TrimPrefix(tp.ID, prefix))
			pending[i] = true
			if doneT[i] {
				t.Fatalf("run %d: temp %d pending although DoneTemp returned", run, i)
			}
			if !added[i] && i != lastT+1 {
				t.Fatalf("run %d: temp %d pending but never added", run, i)
			}
		}
		for i := range added {
			inFlight := i == lastT && i%2 == 0 // DoneTemp may have returned before "D" was printed
			if !doneT[i] && !pending[i] && !inFlight {
				t.Fatalf("run %d: temp %d added (AddTemp returned) but not pending", run, i)
			}
		}
		// What a real run does at start: remove the leftovers, then retire them.
		for _, tp := range j.PendingTemps() {
			if err := j.DoneTemp(tp.ID); err != nil {
				t.Fatal(err)
			}
		}
		ents, _ := os.ReadDir(filepath.Dir(path))
		for _, e := range ents {
			if e.Name() != "journal.jsonl" && e.Name() != "journal.jsonl.lock" {
				t.Fatalf("run %d: stale file %s left beside the journal", run, e.Name())
			}
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d records reported across 20 killed runs", reportedTotal)
	if reportedTotal == 0 {
		t.Fatal("no child ever got a record through: the test did not exercise anything")
	}
}

func TestLockHeldByChildThenKilled(t *testing.T) {
	path := newPath(t)
	c := startChild(t, "hold", path, "0")
	c.waitReady(t)
	_, err := Open(path)
	var le *LockedError
	if !errors.As(err, &le) {
		c.kill(t)
		t.Fatalf("Open while a child holds the lock: %v, want *LockedError", err)
	}
	if le.PID != c.cmd.Process.Pid || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", c.cmd.Process.Pid)) {
		t.Errorf("LockedError %q: want the child's pid %d", err, c.cmd.Process.Pid)
	}
	c.kill(t)
	j, err := Open(path)
	if err != nil {
		t.Fatalf("Open after the holder was SIGKILLed: %v", err)
	}
	defer j.Close()

	// PendingTemps: the child added a, b, c and finished b only.
	got := j.PendingTemps()
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "c" {
		t.Fatalf("PendingTemps = %+v, want a and c", got)
	}
	if got[0].Host != "host-a" || got[0].Path != "/tmp/x.a" || got[0].Time.IsZero() {
		t.Fatalf("PendingTemps[0] = %+v", got[0])
	}
	if err := j.DoneTemp("a"); err != nil {
		t.Fatal(err)
	}
	if err := j.AddTemp(Temp{ID: "c", Path: "/x"}); err == nil {
		t.Fatal("AddTemp accepted a duplicate pending id")
	}
	j.Close()
	j = mustOpen(t, path)
	if got := j.PendingTemps(); len(got) != 1 || got[0].ID != "c" {
		t.Fatalf("after DoneTemp(a) and reopen: %+v", got)
	}
}

// ---- compaction and speeds ----

type snapshot struct {
	byKey  map[Key]Entry
	byPath map[string]Entry
	temps  []Temp
	speeds map[string]map[string]float64
}

func snap(j *Journal, keys []Key) snapshot {
	s := snapshot{byKey: map[Key]Entry{}, byPath: map[string]Entry{}, temps: j.PendingTemps(), speeds: j.Speeds()}
	for _, k := range keys {
		if e, ok := j.Lookup(k); ok {
			s.byKey[k] = e
		}
		if e, ok := j.LookupPath(k.Path); ok {
			s.byPath[k.Path] = e
		}
	}
	return s
}

func compareSnap(t *testing.T, what string, a, b snapshot) {
	t.Helper()
	if len(a.byKey) != len(b.byKey) || len(a.byPath) != len(b.byPath) {
		t.Fatalf("%s: %d/%d entries, want %d/%d", what, len(b.byKey), len(b.byPath), len(a.byKey), len(a.byPath))
	}
	for k, e := range a.byKey {
		if !sameEntry(e, b.byKey[k]) {
			t.Fatalf("%s: Lookup(%+v) = %+v, want %+v", what, k, b.byKey[k], e)
		}
	}
	for p, e := range a.byPath {
		if !sameEntry(e, b.byPath[p]) {
			t.Fatalf("%s: LookupPath(%s) = %+v, want %+v", what, p, b.byPath[p], e)
		}
	}
	if len(a.temps) != len(b.temps) {
		t.Fatalf("%s: temps %+v, want %+v", what, b.temps, a.temps)
	}
	for i := range a.temps {
		x, y := a.temps[i], b.temps[i]
		if x.ID != y.ID || x.Host != y.Host || x.Path != y.Path || !x.Time.Equal(y.Time) {
			t.Fatalf("%s: temp %d = %+v, want %+v", what, i, y, x)
		}
	}
	if fmt.Sprint(a.speeds) != fmt.Sprint(b.speeds) {
		t.Fatalf("%s: speeds %v, want %v", what, b.speeds, a.speeds)
	}
}

func TestCompactKeepsSemantics(t *testing.T) {
	path := newPath(t)
	j := mustOpen(t, path)
	var keys []Key
	outcomes := []Outcome{Failed, Done, Kept, Skipped}
	for i := 0; i < 300; i++ {
		// 30 paths, 2 versions each, several records per version.
		k := Key{Path: fmt.Sprintf("/m/%d.mkv", i%30), Size: int64(i % 60), MtimeNs: int64(i % 60)}
		keys = append(keys, k)
		if err := j.Record(Entry{Key: k, Outcome: outcomes[i%4], Attempts: i, Host: "h" + strconv.Itoa(i%3)}); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			id := NewTempID()
			if err := j.AddTemp(Temp{ID: id, Host: "nas", Path: "/m/.tmp-" + id}); err != nil {
				t.Fatal(err)
			}
			if i%20 == 0 {
				j.DoneTemp(id)
			}
			if err := j.RecordSpeed("h"+strconv.Itoa(i%3), "hevc", float64(i+1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := snap(j, keys)
	linesBefore := countLines(t, path)
	if err := j.Compact(); err != nil {
		t.Fatal(err)
	}
	compareSnap(t, "after Compact", before, snap(j, keys))
	live := 60 + 15 + 3 // keys, pending temps, speeds
	if n := countLines(t, path); n != live {
		t.Fatalf("%d lines after Compact (was %d), want %d", n, linesBefore, live)
	}
	// Appends after compaction go to the new file.
	extra := Key{Path: "/m/extra", Size: 1}
	keys = append(keys, extra)
	if err := j.Record(Entry{Key: extra, Outcome: Done}); err != nil {
		t.Fatal(err)
	}
	before = snap(j, keys)
	j.Close()
	j = mustOpen(t, path)
	defer j.Close()
	if w := j.Warnings(); len(w) != 0 {
		t.Fatalf("warnings after Compact: %q", w)
	}
	compareSnap(t, "after reopen", before, snap(j, keys))
}

func TestOpenCompactsAGrownLog(t *testing.T) {
	path := newPath(t)
	j := mustOpen(t, path)
	for i := 0; i < 1200; i++ {
		if err := j.Record(Entry{Key: Key{Path: fmt.Sprintf("/m/%d", i%10)}, Outcome: Failed, Attempts: i}); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	// A leftover of a compaction killed before its rename.
	if err := os.WriteFile(path+".compact", []byte(`{"v":1,"type":"entry","pa`), 0o600); err != nil {
		t.Fatal(err)
	}
	j = mustOpen(t, path)
	defer j.Close()
	if n := countLines(t, path); n != 10 {
		t.Fatalf("%d lines after Open, want 10 (compacted)", n)
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover .compact not removed: %v", err)
	}
	if e, ok := j.LookupPath("/m/9"); !ok || e.Attempts != 1199 {
		t.Fatalf("LookupPath after compaction = %+v, %v", e, ok)
	}
}

func TestSpeedsSmoothing(t *testing.T) {
	path := newPath(t)
	j := mustOpen(t, path)
	for _, v := range []float64{10, 20, 30, 40} {
		if err := j.RecordSpeed("nas", "hevc", v); err != nil {
			t.Fatal(err)
		}
	}
	j.RecordSpeed("box", "hevc", 2)
	j.RecordSpeed("nas", "h264", 5)
	if err := j.RecordSpeed("nas", "hevc", math.NaN()); err == nil {
		t.Fatal("RecordSpeed accepted NaN")
	}
	if err := j.RecordSpeed("nas", "hevc", 0); err == nil {
		t.Fatal("RecordSpeed accepted 0")
	}
	// Mean of the first three (10, 20, 30 → 20), then EWMA 0.3: 20 + 0.3×(40−20) = 26.
	want := map[string]map[string]float64{"nas": {"hevc": 26, "h264": 5}, "box": {"hevc": 2}}
	check := func(what string) {
		t.Helper()
		got := j.Speeds()
		for h, m := range want {
			for p, v := range m {
				if math.Abs(got[h][p]-v) > 1e-9 {
					t.Fatalf("%s: Speeds()[%s][%s] = %v, want %v (all: %v)", what, h, p, got[h][p], v, got)
				}
			}
		}
		got["nas"]["hevc"] = -1 // a copy
	}
	check("live")
	j.Close()
	j = mustOpen(t, path)
	check("reopened")
	if err := j.Compact(); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = mustOpen(t, path)
	defer j.Close()
	check("compacted")
	// Smoothing continues from the stored state: 26 + 0.3×(6−26) = 20.
	j.RecordSpeed("nas", "hevc", 6)
	if got := j.Speeds()["nas"]["hevc"]; math.Abs(got-20) > 1e-9 {
		t.Fatalf("after compaction, next observation gives %v, want 20", got)
	}
}

func TestConcurrentWriters(t *testing.T) {
	path := newPath(t)
	j := mustOpen(t, path)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				id := fmt.Sprintf("%d-%d", w, i)
				if err := j.AddTemp(Temp{ID: id, Path: "/t/" + id}); err != nil {
					t.Error(err)
				}
				if err := j.Record(Entry{Key: Key{Path: "/m/" + id}, Outcome: Done}); err != nil {
					t.Error(err)
				}
				j.RecordSpeed(fmt.Sprint("h", w), "p", float64(i+1))
				if err := j.DoneTemp(id); err != nil {
					t.Error(err)
				}
				if i == 12 && w == 0 {
					if err := j.Compact(); err != nil {
						t.Error(err)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	j.Close()
	j = mustOpen(t, path)
	defer j.Close()
	if w := j.Warnings(); len(w) != 0 {
		t.Fatalf("warnings: %q", w)
	}
	for w := 0; w < 8; w++ {
		for i := 0; i < 25; i++ {
			if _, ok := j.LookupPath(fmt.Sprintf("/m/%d-%d", w, i)); !ok {
				t.Fatalf("record %d-%d lost", w, i)
			}
		}
	}
	if p := j.PendingTemps(); len(p) != 0 {
		t.Fatalf("pending temps: %+v", p)
	}
	if len(j.Speeds()) != 8 {
		t.Fatalf("speeds: %v", j.Speeds())
	}
}

// --dry-run reads the journal: while a real run holds the lock, without
// creating anything, and without truncating a record being appended.
func TestOpenReadOnly(t *testing.T) {
	missing := newPath(t)
	j, err := OpenReadOnly(missing)
	if err != nil {
		t.Fatalf("OpenReadOnly of a missing journal: %v", err)
	}
	if _, ok := j.LookupPath("/m/0"); ok {
		t.Error("empty journal has an entry")
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly created %s: %v", filepath.Dir(missing), err)
	}
	j.Close()

	path := newPath(t)
	writeSome(t, path, 3)
	w := mustOpen(t, path) // a real run holds the lock
	defer w.Close()
	if err := w.RecordSpeed("nas", "hevc", 2.5); err != nil {
		t.Fatal(err)
	}
	appendRaw(t, path, `{"v":1,"type":"entry","path":"/m/torn","si`)
	size := fileSize(t, path)

	r, err := OpenReadOnly(path)
	if err != nil {
		t.Fatalf("OpenReadOnly while locked: %v", err)
	}
	for _, p := range []string{"/m/0", "/m/1", "/m/2"} {
		if e, ok := r.LookupPath(p); !ok || e.Outcome != Done {
			t.Errorf("%s: %+v, %v; want done", p, e, ok)
		}
	}
	if _, ok := r.LookupPath("/m/torn"); ok {
		t.Error("the torn record was applied")
	}
	if s := r.Speeds()["nas"]["hevc"]; s != 2.5 {
		t.Errorf("speed = %v, want 2.5", s)
	}
	if err := r.Record(Entry{Key: Key{Path: "/m/x"}, Outcome: Done}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Record on a read-only journal: %v, want ErrReadOnly", err)
	}
	if err := r.AddTemp(Temp{ID: "a", Path: "/tmp/x"}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("AddTemp on a read-only journal: %v", err)
	}
	if err := r.Compact(); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Compact on a read-only journal: %v", err)
	}
	if _, ok := r.LookupPath("/m/x"); ok {
		t.Error("a refused Record was applied")
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	if got := fileSize(t, path); got != size {
		t.Errorf("journal size %d after the read-only open, was %d", got, size)
	}
	// The writer still works: nothing was taken from it.
	if err := w.Record(Entry{Key: Key{Path: "/m/3"}, Outcome: Done}); err != nil {
		t.Errorf("the locked writer after a read-only open: %v", err)
	}
}

// An encoder variant's test result is remembered per host and signature,
// survives reopening and compaction, and answers only for the ffmpeg
// version it ran on; a failure is forgotten after EncoderTestFailTTL.
func TestEncoderTestCache(t *testing.T) {
	path := newPath(t)
	j := mustOpen(t, path)
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	ok := EncoderTest{Host: "gpu", Sig: "hevc_nvenc|in|out", Encoder: "hevc_nvenc", FFmpeg: "6.1", OK: true, Time: t0}
	bad := EncoderTest{Host: "gpu", Sig: "hevc_qsv|in|out", Encoder: "hevc_qsv", FFmpeg: "6.1", Reason: "Error creating a MFX session: -9.", Time: t0}
	for _, r := range []EncoderTest{ok, bad} {
		if err := j.RecordEncoderTest(r); err != nil {
			t.Fatal(err)
		}
	}
	check := func(j *Journal, when string) {
		t.Helper()
		got, hit := j.EncoderTest("gpu", ok.Sig, "6.1", t0.Add(time.Hour))
		if !hit || !got.OK || got.Encoder != "hevc_nvenc" {
			t.Errorf("%s: nvenc on 6.1: %+v, %v; want the passing record", when, got, hit)
		}
		if _, hit := j.EncoderTest("gpu", ok.Sig, "7.0", t0.Add(time.Hour)); hit {
			t.Errorf("%s: a record of ffmpeg 6.1 answered for ffmpeg 7.0", when)
		}
		if _, hit := j.EncoderTest("other", ok.Sig, "6.1", t0.Add(time.Hour)); hit {
			t.Errorf("%s: a record of host gpu answered for host other", when)
		}
		got, hit = j.EncoderTest("gpu", bad.Sig, "6.1", t0.Add(24*time.Hour))
		if !hit || got.OK || got.Reason != bad.Reason || !got.Time.Equal(t0) {
			t.Errorf("%s: qsv failure: %+v, %v", when, got, hit)
		}
		if _, hit := j.EncoderTest("gpu", bad.Sig, "6.1", t0.Add(EncoderTestFailTTL+time.Hour)); hit {
			t.Errorf("%s: a failure older than the TTL still answered", when)
		}
		if _, hit := j.EncoderTest("gpu", ok.Sig, "6.1", t0.Add(EncoderTestFailTTL+time.Hour)); !hit {
			t.Errorf("%s: a pass must not expire", when)
		}
	}
	check(j, "same journal")
	// A newer result replaces the older one.
	bad2 := bad
	bad2.OK, bad2.Reason = true, ""
	if err := j.RecordEncoderTest(bad2); err != nil {
		t.Fatal(err)
	}
	if got, _ := j.EncoderTest("gpu", bad.Sig, "6.1", t0); !got.OK {
		t.Errorf("the later record should win: %+v", got)
	}
	if err := j.RecordEncoderTest(bad); err != nil {
		t.Fatal(err)
	}
	if err := j.Compact(); err != nil {
		t.Fatal(err)
	}
	if n := countLines(t, path); n != 2 {
		t.Errorf("compacted journal has %d lines, want 2 (one per host and signature)", n)
	}
	j.Close()
	j = mustOpen(t, path)
	defer j.Close()
	check(j, "reopened after compaction")
	ro, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	check(ro, "read-only")
	if err := ro.RecordEncoderTest(ok); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only RecordEncoderTest: %v, want ErrReadOnly", err)
	}
}
