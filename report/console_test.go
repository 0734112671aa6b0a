package report

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/hosts"
	"clustertx/progress"
)

// syncBuffer is a bytes.Buffer safe for the console's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until out contains sub, or fails after a while.
func waitFor(t *testing.T, out *syncBuffer, sub string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(out.String(), sub) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output:\n%s", sub, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var (
	jobA = cluster.JobInfo{ID: 0, Path: "/media/a.mkv", Host: "nas", Slot: 0, Profile: "hevc", Duration: 600, SrcSize: 3 << 30, Attempt: 1}
	jobB = cluster.JobInfo{ID: 1, Path: "/media/b.mkv", Host: "gpu2", Slot: 0, Profile: "nvenc", Duration: 300, SrcSize: 1 << 30, Attempt: 1}
	jobC = cluster.JobInfo{ID: 2, Path: "/media/c.mkv", Host: "gpu2", Slot: 0, Profile: "nvenc", Duration: 100, SrcSize: 1 << 29, Attempt: 1}
)

func prog(j cluster.JobInfo, f, speed float64) progress.Progress {
	return progress.Progress{OutTime: f * j.Duration, Duration: j.Duration, Percent: 100 * f, Speed: speed, Size: int64(f * 1e6)}
}

func resultOf(j cluster.JobInfo, o cluster.Outcome, reason string, out int64, el time.Duration) *cluster.FileResult {
	return &cluster.FileResult{Path: j.Path, Host: j.Host, Profile: j.Profile, Outcome: o, Reason: reason,
		SrcSize: j.SrcSize, OutSize: out, Duration: j.Duration, Elapsed: el, Attempts: 1}
}

// runEvents drives a console through a small run: two jobs in parallel,
// one done and one failed, then a third kept. between is called while a
// and b are both running.
func runEvents(c *Console, between func()) {
	c.HostChecked(hosts.CheckResult{Host: "nas", Up: true})
	c.HostChecked(hosts.CheckResult{Host: "gpu2", Up: true})
	c.Planned(3, 1000)
	c.JobStarted(jobA)
	c.JobStarted(jobB)
	c.JobProgress(jobA, prog(jobA, 0.55, 2.1))
	c.JobProgress(jobB, prog(jobB, 0.10, 4.0))
	c.Transfer("gpu2", true, 1<<30, 10*time.Second)
	if between != nil {
		between()
	}
	c.JobFinished(jobA, resultOf(jobA, cluster.Done, "", 1<<30, 130*time.Second))
	c.JobFinished(jobB, resultOf(jobB, cluster.Failed, "ffmpeg exited 1: Invalid data", 0, 5*time.Second))
	c.HostState("gpu2", false, "connection reset")
	c.JobStarted(jobC)
	c.JobFinished(jobC, resultOf(jobC, cluster.Kept, "kept original: saved only 3% (threshold 10%)", 500<<20, 40*time.Second))
	c.RunFinished(&cluster.Report{})
}

func TestConsoleNonTTY(t *testing.T) {
	var out syncBuffer
	c := NewConsole(&out, ConsoleOptions{TTY: ptr(false), Interval: 10 * time.Millisecond})
	defer c.Close()
	runEvents(c, func() { waitFor(t, &out, "clustertx: progress:") })
	c.Close()
	s := out.String()
	t.Logf("output:\n%s", s)
	if strings.ContainsAny(s, "\r\x1b") {
		t.Errorf("non-TTY output has \\r or an escape: %q", s)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	count := func(re string) int {
		n, rx := 0, regexp.MustCompile(re)
		for _, l := range lines {
			if rx.MatchString(l) {
				n++
			}
		}
		return n
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "clustertx: ") {
			t.Errorf("line without the clustertx: prefix: %q", l)
		}
	}
	for re, want := range map[string]int{
		`^clustertx: host nas: start a\.mkv \(profile hevc, 10m0s of media\)$`: 1,
		`^clustertx: host gpu2: start b\.mkv `:                                 1,
		`^clustertx: host gpu2: start c\.mkv `:                                 1,
		`: start `:                                                             3,
		`^clustertx: host nas: done a\.mkv: 3\.0 GiB → 1\.0 GiB \(67% saved\) in 2m10s$`:       1,
		`^clustertx: error: host gpu2: /media/b\.mkv: ffmpeg exited 1: Invalid data$`:          1,
		`^clustertx: host gpu2: kept original c\.mkv: saved only 3% \(threshold 10%\) in 40s$`: 1,
		`(done|error:|kept original) `: 3,
		// not verbose: no host state, no transfer
		`down|uploaded`: 0,
	} {
		if got := count(re); got != want {
			t.Errorf("%d lines match %q, want %d", got, re, want)
		}
	}
	// The periodic line, while a and b ran.
	if count(`^clustertx: progress: 0/3 files, 36% of media, ETA \S+, 2 running: gpu2 b\.mkv 10% 4\.0x, nas a\.mkv 55% 2\.1x$`) == 0 {
		t.Errorf("no periodic progress line of the expected form")
	}
	// After the run, no more periodic lines.
	n := len(s)
	time.Sleep(50 * time.Millisecond)
	if len(out.String()) != n {
		t.Errorf("console still writing after RunFinished: %q", out.String()[n:])
	}
}

func TestConsoleQuietAndVerbose(t *testing.T) {
	var quiet syncBuffer
	c := NewConsole(&quiet, ConsoleOptions{TTY: ptr(true), Quiet: true, Verbose: true, Interval: 5 * time.Millisecond})
	runEvents(c, func() { time.Sleep(30 * time.Millisecond) })
	want := "clustertx: error: host gpu2: /media/b.mkv: ffmpeg exited 1: Invalid data\n"
	if got := quiet.String(); got != want {
		t.Errorf("quiet output:\n%q\nwant only the failure:\n%q", got, want)
	}

	var verbose syncBuffer
	c = NewConsole(&verbose, ConsoleOptions{TTY: ptr(false), Verbose: true})
	runEvents(c, nil)
	for _, want := range []string{
		"clustertx: host gpu2: uploaded 1.0 GiB in 10s (102.4 MiB/s)\n",
		"clustertx: warning: host gpu2: down: connection reset\n",
	} {
		if !strings.Contains(verbose.String(), want) {
			t.Errorf("verbose output lacks %q:\n%s", want, verbose.String())
		}
	}
}

func TestConsoleLogWriter(t *testing.T) {
	var out syncBuffer
	c := NewConsole(&out, ConsoleOptions{TTY: ptr(false)})
	defer c.Close()
	fmt.Fprintf(c.Log(), "clustertx: job: nas: start /media/a.mkv\nclustertx: job: nas: done /media/a.mkv: x\nclustertx: warning: host nas: /media/a.mkv: boom; ")
	fmt.Fprintf(c.Log(), "retrying\n")
	if got, want := out.String(), "clustertx: warning: host nas: /media/a.mkv: boom; retrying\n"; got != want {
		t.Errorf("Log() passed %q, want %q", got, want)
	}
}

// screen is a minimal terminal: it applies what the console writes
// (text, \n, \r and the escapes the console may use) to a grid, so tests
// can check what a person would see, not the bytes.
type screen struct {
	t     *testing.T
	lines [][]rune
	row   int
	col   int
}

func (s *screen) Write(p []byte) (int, error) {
	rs := []rune(string(p))
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '\n': // the tty's onlcr makes it \r\n
			s.row++
			s.col = 0
		case '\r':
			s.col = 0
		case 0x1b:
			j := i + 1
			if j >= len(rs) || rs[j] != '[' {
				s.t.Fatalf("unsupported escape at %q", string(rs[i:]))
			}
			j++
			k := j
			for k < len(rs) && rs[k] >= '0' && rs[k] <= '9' {
				k++
			}
			if k >= len(rs) {
				s.t.Fatalf("truncated escape %q", string(rs[i:]))
			}
			n, _ := strconv.Atoi(string(rs[j:k]))
			switch rs[k] {
			case 'A':
				s.row = max(0, s.row-max(n, 1))
			case 'K':
				s.grow()
				switch n {
				case 0:
					s.lines[s.row] = s.lines[s.row][:min(s.col, len(s.lines[s.row]))]
				case 2:
					s.lines[s.row] = nil
				default:
					s.t.Fatalf("unsupported erase %q", string(rs[i:k+1]))
				}
			default:
				s.t.Fatalf("unsupported escape %q", string(rs[i:k+1]))
			}
			i = k
		default:
			s.grow()
			l := s.lines[s.row]
			for len(l) <= s.col {
				l = append(l, ' ')
			}
			l[s.col] = r
			s.lines[s.row] = l
			s.col++
		}
	}
	return len(p), nil
}

func (s *screen) grow() {
	for len(s.lines) <= s.row {
		s.lines = append(s.lines, nil)
	}
}

// text is the screen, trailing blanks trimmed.
func (s *screen) text() []string {
	var out []string
	for _, l := range s.lines {
		out = append(out, strings.TrimRight(string(l), " "))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func TestConsoleTTY(t *testing.T) {
	scr := &screen{t: t}
	var raw syncBuffer
	var mu sync.Mutex // the screen is fed from the console's goroutine too
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		raw.Write(p)
		return scr.Write(p)
	})
	c := NewConsole(w, ConsoleOptions{TTY: ptr(true), Width: 120})
	defer c.Close()
	look := func() []string {
		c.mu.Lock()
		c.redraw()
		c.mu.Unlock()
		mu.Lock()
		defer mu.Unlock()
		return scr.text()
	}
	barRx := regexp.MustCompile(`^(\d+)/3 files, (\d+) running(?: at [\d.]+x)?; media s +(\d+)% \|[█ ]+\| \((\d+)/1000\) `)

	var during []string
	runEvents(c, func() {
		during = look()
		look() // a second frame must replace the first, not add to it
		during = look()
	})
	t.Logf("screen while a and b run:\n%s", strings.Join(during, "\n"))
	want := []string{
		"clustertx: host nas: start a.mkv (profile hevc, 10m0s of media)",
		"clustertx: host gpu2: start b.mkv (profile nvenc, 5m0s of media)",
	}
	if len(during) != 5 || during[0] != want[0] || during[1] != want[1] {
		t.Fatalf("want 2 message lines, the bar and 2 slot lines, got:\n%s", strings.Join(during, "\n"))
	}
	m := barRx.FindStringSubmatch(during[2])
	if m == nil || m[1] != "0" || m[2] != "2" || m[3] != "36" || m[4] != "360" { // 330 + 30 of 1000 media s
		t.Errorf("bar line = %q, want 0/3 files, 2 running, 36%% (360/1000)", during[2])
	}
	for i, re := range []string{
		`^  gpu2 +b\.mkv +10\.0%  4\.00x ETA 1m8s → ~`,
		`^  nas +a\.mkv +55\.0%  2\.10x ETA 2m9s → ~`,
	} {
		if !regexp.MustCompile(re).MatchString(during[3+i]) {
			t.Errorf("slot line %d = %q, want %s", i, during[3+i], re)
		}
	}

	final := look()
	t.Logf("screen after the run:\n%s", strings.Join(final, "\n"))
	if len(final) != 6 {
		t.Errorf("after Close want the 6 message lines only, got:\n%s", strings.Join(final, "\n"))
	}
	for _, l := range final {
		if barRx.MatchString(l) || strings.HasPrefix(l, "  ") {
			t.Errorf("live line left on screen after Close: %q", l)
		}
	}
	if !strings.Contains(raw.String(), "\x1b[2K") || !regexp.MustCompile(`\x1b\[\d+A`).MatchString(raw.String()) {
		t.Error("no line clear / cursor up in TTY output")
	}
}

func TestConsoleRetryAndHostDown(t *testing.T) {
	var out syncBuffer
	c := NewConsole(&out, ConsoleOptions{TTY: ptr(false)})
	defer c.Close()
	c.SetTotal(900)
	c.JobStarted(jobA)
	c.JobProgress(jobA, prog(jobA, 0.5, 1))
	// The host fails: the job goes back to the queue, its progress with it.
	c.HostState("nas", false, "eof")
	c.mu.Lock()
	if len(c.active) != 0 || c.position() != 0 {
		t.Errorf("after host down: %d active, position %v", len(c.active), c.position())
	}
	c.mu.Unlock()
	// Restarted elsewhere (attempt 2), then a stale progress from the old
	// slot, then finished: counted once.
	a2 := jobA
	a2.Host, a2.Attempt = "gpu2", 2
	c.JobStarted(a2)
	c.JobProgress(jobA, prog(jobA, 0.9, 1))
	c.JobFinished(a2, resultOf(a2, cluster.Done, "", 1<<30, time.Minute))
	c.JobFinished(a2, resultOf(a2, cluster.Done, "", 1<<30, time.Minute))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.active) != 0 || c.doneMedia != 600 || len(c.finished) != 1 {
		t.Errorf("after restart: %d active, done %v media s, %d finished", len(c.active), c.doneMedia, len(c.finished))
	}
	if !strings.Contains(out.String(), "start a.mkv (profile hevc, 10m0s of media, attempt 2)") {
		t.Errorf("attempt not shown:\n%s", out.String())
	}
}

func TestHostileFileNames(t *testing.T) {
	var out syncBuffer
	c := NewConsole(&out, ConsoleOptions{TTY: ptr(false)})
	j := jobA
	j.Path = "/media/evil\x1b[2J\rname\n.mkv"
	c.JobStarted(j)
	c.JobFinished(j, resultOf(j, cluster.Failed, "bad\ndata", 0, 0))
	c.Close()
	if s := out.String(); strings.ContainsAny(s, "\r\x1b") || strings.Count(s, "\n") != 2 {
		t.Errorf("control characters from a file name reached the output: %q", s)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
