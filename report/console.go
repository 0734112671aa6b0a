// Package report shows a clustertx run to people and writes its record:
//
//   - Console, a cluster.Observer for the terminal (stderr): on a TTY one
//     aggregate progress bar in media seconds plus a live line per busy host
//     slot; elsewhere (cron, pipes) plain log lines only, one per job event
//     and a periodic progress line, with no \r and no ANSI escapes.
//   - Recorder, a cluster.Observer that keeps host state changes with their
//     times and transfer totals, for the summary and the JSON report.
//   - WriteSummary and WriteHostEvents, the end-of-run table and totals.
//   - WriteJSON and WriteJSONFile, the machine-readable report, schema
//     clustertx.report/v1 (see SCHEMA.md).
package report

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"clustertx/cluster"
	"clustertx/hosts"
	"clustertx/progress"
)

// ConsoleOptions configure a Console.
type ConsoleOptions struct {
	// Quiet shows failed jobs only: no bar, no progress lines (the caller
	// prints the summary).
	Quiet bool
	// Verbose also shows host state changes and SFTP transfers.
	Verbose bool
	// TTY forces terminal rendering on or off; nil detects it: w must be
	// an *os.File that is a terminal, and TERM must not be "dumb".
	TTY *bool
	// Interval is the period of the progress line when not on a terminal
	// (default 60s).
	Interval time.Duration
	// Width is the line width on a terminal when it cannot be asked
	// (w is not an *os.File); default 100.
	Width int
}

// redrawEvery throttles terminal redraws to about 4 a second.
const redrawEvery = 250 * time.Millisecond

// Console is a cluster.Observer that shows a run on w (normally stderr).
// Call SetTotal (and SetFiles) once the plan is known, and Close when
// done; RunFinished also stops it. Methods are safe for concurrent use and
// never block on anything but writing to w.
type Console struct {
	w    io.Writer
	opts ConsoleOptions
	tty  bool

	mu         sync.Mutex
	firstStart time.Time       // first JobStarted: ETA base of the progress line
	totalMedia float64         // from SetTotal
	totalFiles int             // from SetFiles
	known      map[int]float64 // job ID → media seconds, every job seen
	finished   map[int]bool    // job IDs that reached JobFinished
	doneMedia  float64         // media seconds of finished jobs
	active     map[slotKey]*activeJob
	bar        *progressbar.ProgressBar
	barMax     int64
	drawn      int  // lines of the live area now on screen
	dirty      bool // live area out of date
	stopped    bool
	logPartial []byte
	stop       chan struct{}
	loopDone   chan struct{}
	closeOnce  sync.Once
}

type slotKey struct {
	host string
	slot int
}

type activeJob struct {
	info    cluster.JobInfo
	p       progress.Progress
	started time.Time
}

// NewConsole returns a console writing to w and starts its redraw (TTY)
// or progress-line (non-TTY) goroutine; Close stops it.
func NewConsole(w io.Writer, opts ConsoleOptions) *Console {
	if opts.Interval <= 0 {
		opts.Interval = 60 * time.Second
	}
	if opts.Width <= 0 {
		opts.Width = 100
	}
	c := &Console{
		w: w, opts: opts,
		known:    map[int]float64{},
		finished: map[int]bool{},
		active:   map[slotKey]*activeJob{},
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	if opts.TTY != nil {
		c.tty = *opts.TTY
	} else {
		c.tty = IsTerminal(w)
	}
	if opts.Quiet {
		c.tty = false // no bar with --quiet (STYLE 15)
	}
	go c.loop()
	return c
}

// IsTerminal reports whether w is a terminal that understands cursor
// movement: an *os.File on a TTY, with TERM not "dumb".
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}

// TTY reports whether the console draws bars (terminal mode).
func (c *Console) TTY() bool { return c.tty }

// SetTotal sets the media seconds of all runnable jobs (the bar's 100%).
// Jobs seen in JobStarted add to it if it is lower than their sum.
func (c *Console) SetTotal(mediaSeconds float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.totalMedia = max(0, mediaSeconds)
	c.dirty = true
}

// Planned is the cluster.Observer event the manager sends as the queue
// grows (the run plans files while the first ones run): SetFiles(files)
// and SetTotal(mediaSeconds), the totals so far.
func (c *Console) Planned(files int, mediaSeconds float64) {
	c.SetFiles(files)
	c.SetTotal(mediaSeconds)
}

// SetFiles sets the number of runnable files, for "3/10 files".
func (c *Console) SetFiles(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.totalFiles = max(0, n)
	c.dirty = true
}

// Close clears the live area and stops the console's goroutine. It is
// idempotent; events after Close are still logged but nothing is drawn.
func (c *Console) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.loopDone
		c.mu.Lock()
		defer c.mu.Unlock()
		c.clearLive()
		c.stopped = true
	})
	return nil
}

func (c *Console) loop() {
	defer close(c.loopDone)
	every := c.opts.Interval
	if c.tty {
		every = redrawEvery
	}
	if c.opts.Quiet {
		<-c.stop
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.mu.Lock()
			if c.tty {
				if c.dirty || len(c.active) > 0 { // running jobs: ETA and elapsed move
					c.redraw()
				}
			} else if len(c.active) > 0 {
				c.writeLine(c.progressLine())
			}
			c.mu.Unlock()
		}
	}
}

// HostChecked is not shown: the manager prints the host table.
func (c *Console) HostChecked(hosts.CheckResult) {}

// HostState shows a host leaving or (re)joining (Verbose; a host going
// down also drops its live lines, as its jobs go back to the queue).
func (c *Console) HostState(host string, up bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !up {
		for k := range c.active {
			if k.host == host {
				delete(c.active, k)
			}
		}
		c.dirty = true
	}
	if !c.opts.Verbose || c.opts.Quiet {
		return
	}
	if up {
		c.printf("host %s: up", host)
	} else {
		c.printf("warning: host %s: down: %s", host, reason)
	}
}

// JobStarted adds a live slot line and logs the start.
func (c *Console) JobStarted(j cluster.JobInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A restarted job (retry, or requeued from a failed host) and a slot
	// whose previous job ended without JobFinished (it will be retried)
	// both replace what was there.
	for k, a := range c.active {
		if a.info.ID == j.ID {
			delete(c.active, k)
		}
	}
	if c.firstStart.IsZero() {
		c.firstStart = time.Now()
	}
	c.active[slotKey{j.Host, j.Slot}] = &activeJob{info: j, started: time.Now(),
		p: progress.Progress{Duration: j.Duration}}
	if _, seen := c.known[j.ID]; !seen || j.Duration > 0 {
		c.known[j.ID] = max(0, j.Duration)
	}
	c.dirty = true
	if c.opts.Quiet {
		return
	}
	detail := []string{}
	if j.Profile != "" {
		detail = append(detail, "profile "+j.Profile)
	}
	if j.Duration > 0 {
		detail = append(detail, fmtSeconds(j.Duration)+" of media")
	}
	if j.Attempt > 1 {
		detail = append(detail, fmt.Sprintf("attempt %d", j.Attempt))
	}
	what := base(j.Path)
	if j.Segment > 0 {
		what = fmt.Sprintf("segment %d/%d of %s", j.Segment, j.Segments, what)
	}
	msg := fmt.Sprintf("host %s: start %s", j.Host, what)
	if len(detail) > 0 {
		msg += " (" + strings.Join(detail, ", ") + ")"
	}
	c.printf("%s", msg)
}

// JobProgress updates the job's live line and the bar.
func (c *Console) JobProgress(j cluster.JobInfo, p progress.Progress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := slotKey{j.Host, j.Slot}
	a := c.active[k]
	if a == nil { // progress without a start: show it anyway
		if c.finished[j.ID] {
			return
		}
		a = &activeJob{info: j, started: time.Now()}
		c.active[k] = a
		if _, seen := c.known[j.ID]; !seen {
			c.known[j.ID] = max(0, j.Duration)
		}
	} else if a.info.ID != j.ID {
		return // stale: the slot moved on
	}
	if p.Duration <= 0 {
		p.Duration = j.Duration
	}
	a.p = p
	c.dirty = true
}

// JobFinished logs the outcome and moves the job's media seconds to done.
func (c *Console) JobFinished(j cluster.JobInfo, r *cluster.FileResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, a := range c.active {
		if a.info.ID == j.ID {
			delete(c.active, k)
		}
	}
	if !c.finished[j.ID] {
		c.finished[j.ID] = true
		d := j.Duration
		if d <= 0 && r != nil {
			d = r.Duration
		}
		if j.Segments > 0 && j.Segment == 0 {
			d = 0 // a split file: its segments already counted its media
			c.known[j.ID] = 0
		}
		if _, seen := c.known[j.ID]; !seen {
			c.known[j.ID] = max(0, d)
		}
		c.doneMedia += c.known[j.ID]
	}
	c.dirty = true
	if r == nil {
		return
	}
	host := dash(r.Host)
	if r.Host == "" {
		host = dash(j.Host)
	}
	switch r.Outcome {
	case cluster.Failed:
		c.printf("error: host %s: %s: %s", host, r.Path, r.Reason)
	case cluster.Changed:
		c.printf("warning: host %s: %s: %s", host, r.Path, r.Reason)
	case cluster.Done:
		if c.opts.Quiet {
			return
		}
		msg := fmt.Sprintf("host %s: done %s", host, base(r.Path))
		if r.SrcSize > 0 && r.OutSize > 0 {
			s, _ := savingPercent(r.SrcSize, r.OutSize)
			msg += fmt.Sprintf(": %s → %s (%.0f%% saved)", fmtBytes(r.SrcSize), fmtBytes(r.OutSize), s)
		}
		msg += " in " + fmtDur(r.Elapsed)
		if sp := r.Split; sp != nil {
			msg += fmt.Sprintf(" (split in %d segments on %d hosts, joined in %s)", sp.Segments, sp.Hosts, fmtDur(sp.Join))
		}
		c.printf("%s", msg)
	case cluster.Kept:
		if c.opts.Quiet {
			return
		}
		c.printf("host %s: kept original %s: %s in %s", host, base(r.Path),
			dash(strings.TrimPrefix(r.Reason, "kept original: ")), fmtDur(r.Elapsed))
	default:
		if c.opts.Quiet {
			return
		}
		c.printf("host %s: %s %s: %s in %s", host, r.Outcome, base(r.Path), dash(r.Reason), fmtDur(r.Elapsed))
	}
}

// Transfer logs an SFTP transfer (Verbose).
func (c *Console) Transfer(host string, upload bool, n int64, d time.Duration) {
	if !c.opts.Verbose || c.opts.Quiet {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	verb := "downloaded"
	if upload {
		verb = "uploaded"
	}
	rate := ""
	if d > 0 {
		rate = fmt.Sprintf(" (%s/s)", fmtBytes(int64(float64(n)/d.Seconds())))
	}
	c.printf("host %s: %s %s in %s%s", host, verb, fmtBytes(n), fmtDur(d), rate)
}

// RunFinished clears the live area and stops the console; the caller
// prints the summary.
func (c *Console) RunFinished(*cluster.Report) { c.Close() }

// Log returns a writer for the manager's Options.Log. The console already
// says what the manager logs about job starts, finishes and failures (the
// lines marked "job:"), so those are dropped; the rest (warnings, hosts
// joining, leftovers removed…) is printed above the live area, so it does
// not tear the bar. Quiet keeps only errors.
func (c *Console) Log() io.Writer { return logWriter{c} }

type logWriter struct{ c *Console }

func (l logWriter) Write(b []byte) (int, error) {
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logPartial = append(c.logPartial, b...)
	for {
		i := bytes.IndexByte(c.logPartial, '\n')
		if i < 0 {
			break
		}
		line := string(c.logPartial[:i])
		c.logPartial = c.logPartial[i+1:]
		if strings.HasPrefix(line, "clustertx: job: ") {
			continue
		}
		if !c.opts.Quiet || strings.Contains(line, "error:") {
			line = strings.TrimPrefix(line, "clustertx: ")
			c.printf("%s", line)
		}
	}
	return len(b), nil
}

// printf writes one message line, above the live area on a terminal.
// c.mu must be held.
func (c *Console) printf(format string, args ...any) {
	line := clean("clustertx: " + fmt.Sprintf(format, args...))
	if c.tty && !c.stopped {
		c.clearLive()
		io.WriteString(c.w, line+"\n")
		c.redraw()
		return
	}
	c.writeLine(line)
}

func (c *Console) writeLine(line string) { io.WriteString(c.w, line+"\n") }

// ---- non-TTY ----

// progressLine is the periodic non-TTY line:
// clustertx: progress: 3/10 files, 42% of media, 2 running: nas film.mkv 55% 2.1x, …
func (c *Console) progressLine() string {
	done, files := c.fileCounts()
	parts := []string{fmt.Sprintf("%d/%d files", done, files)}
	if f, ok := c.mediaFraction(); ok {
		s := fmt.Sprintf("%.0f%% of media", 100*f)
		if el := time.Since(c.firstStart); !c.firstStart.IsZero() && f > 0.001 && f < 1 {
			s += ", ETA " + fmtDur(time.Duration(float64(el)*(1-f)/f))
		}
		parts = append(parts, s)
	}
	var jobs []string
	for _, a := range c.sortedActive() {
		s := a.info.Host + " " + base(a.info.Path)
		if a.p.Duration > 0 {
			s += " " + pct(a.p.Percent)
		}
		if a.p.Speed > 0 {
			s += fmt.Sprintf(" %.1fx", a.p.Speed)
		}
		jobs = append(jobs, s)
	}
	line := "clustertx: progress: " + strings.Join(parts, ", ")
	line += fmt.Sprintf(", %d running", len(jobs))
	if len(jobs) > 0 {
		line += ": " + strings.Join(jobs, ", ")
	}
	return clean(line)
}

func (c *Console) fileCounts() (done, total int) {
	return len(c.finished), max(c.totalFiles, len(c.known))
}

// total is the bar's 100%: SetTotal, or the sum of the jobs seen if more.
func (c *Console) total() float64 {
	var sum float64
	for _, d := range c.known {
		sum += d
	}
	return max(c.totalMedia, sum)
}

// position is the media seconds done: finished jobs plus running ones.
func (c *Console) position() float64 {
	pos := c.doneMedia
	for _, a := range c.active {
		t := a.p.OutTime
		if a.info.Duration > 0 {
			t = min(t, a.info.Duration)
		}
		pos += t
	}
	return pos
}

func (c *Console) mediaFraction() (float64, bool) {
	t := c.total()
	if t <= 0 {
		return 0, false
	}
	return min(1, c.position()/t), true
}

func (c *Console) sortedActive() []*activeJob {
	out := make([]*activeJob, 0, len(c.active))
	for _, a := range c.active {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].info.Host != out[j].info.Host {
			return out[i].info.Host < out[j].info.Host
		}
		return out[i].info.Slot < out[j].info.Slot
	})
	return out
}

// ---- TTY ----

// clearLive erases the live area: the cursor goes up to its first line
// and everything below is cleared line by line. c.mu must be held.
func (c *Console) clearLive() {
	if !c.tty || c.drawn == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\x1b[%dA", c.drawn)
	for i := 0; i < c.drawn; i++ {
		b.WriteString("\x1b[2K\n")
	}
	fmt.Fprintf(&b, "\x1b[%dA", c.drawn)
	io.WriteString(c.w, b.String())
	c.drawn = 0
}

// redraw replaces the live area (the bar, then one line per busy slot) in
// a single write. Each line is cut to the terminal width so that none
// wraps, which would break the cursor arithmetic. c.mu must be held.
func (c *Console) redraw() {
	c.dirty = false
	if !c.tty || c.stopped {
		return
	}
	width := c.width()
	lines := []string{}
	if bar := c.barLine(); bar != "" {
		lines = append(lines, bar)
	}
	act := c.sortedActive()
	perHost := map[string]int{}
	for _, a := range act {
		perHost[a.info.Host]++
	}
	for _, a := range act {
		lines = append(lines, c.slotLine(a, perHost[a.info.Host] > 1))
	}
	var b strings.Builder
	if c.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", c.drawn)
	}
	for _, l := range lines {
		b.WriteString("\x1b[2K")
		b.WriteString(truncate(clean(l), width-1))
		b.WriteString("\n")
	}
	// Clear lines left over from a taller frame, then come back up.
	if extra := c.drawn - len(lines); extra > 0 {
		for i := 0; i < extra; i++ {
			b.WriteString("\x1b[2K\n")
		}
		fmt.Fprintf(&b, "\x1b[%dA", extra)
	}
	io.WriteString(c.w, b.String())
	c.drawn = len(lines)
}

func (c *Console) width() int {
	if f, ok := c.w.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 10 {
			return w
		}
	}
	return c.opts.Width
}

// barLine renders the aggregate bar in media seconds with progressbar:
//
//	2/10 files, 2 running at 6.1x; media s  36% |██████      | (360/1000) [1m0s:1m47s]
//
// (files finished/total, running jobs and their summed speed, then media
// seconds done/total, elapsed and ETA as progressbar computes them).
// The bar writes to io.Discard; its rendered text is placed in the live
// area by redraw, as progressbar has no multi-line support (#39).
func (c *Console) barLine() string {
	total := int64(c.total() + 0.5)
	if total <= 0 {
		return ""
	}
	if c.bar == nil {
		c.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(io.Discard),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(), // renders on every Set, so elapsed/ETA move
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(0),
		)
		c.barMax = total
	} else if total != c.barMax {
		c.bar.ChangeMax64(total)
		c.barMax = total
	}
	// Stay below the maximum: at it progressbar freezes as finished, and
	// more jobs may still be added.
	pos := min(int64(c.position()), total-1)
	done, files := c.fileCounts()
	var speed float64
	for _, a := range c.active {
		speed += a.p.Speed
	}
	desc := fmt.Sprintf("%d/%d files, %d running", done, files, len(c.active))
	if speed > 0 {
		desc += fmt.Sprintf(" at %.1fx", speed)
	}
	c.bar.Describe(desc + "; media s ")
	c.bar.Set64(pos)
	return strings.TrimRight(strings.TrimLeft(c.bar.String(), "\r"), " ")
}

// slotLine is one busy slot: host, file, percent, speed, ETA.
func (c *Console) slotLine(a *activeJob, showSlot bool) string {
	host := a.info.Host
	if showSlot {
		host = fmt.Sprintf("%s#%d", host, a.info.Slot+1)
	}
	s := fmt.Sprintf("  %-10s %-40s", host, truncate(base(a.info.Path), 40))
	if a.p.Duration > 0 {
		s += fmt.Sprintf(" %5.1f%%", a.p.Percent)
	} else {
		s += fmt.Sprintf(" %6s", fmtSeconds(a.p.OutTime))
	}
	if a.p.Speed > 0 {
		s += fmt.Sprintf(" %5.2fx", a.p.Speed)
	} else {
		s += "     -x"
	}
	if eta, ok := a.p.ETA(time.Since(a.started)); ok {
		s += " ETA " + fmtDur(eta)
	}
	if n, ok := a.p.EstimatedSize(); ok && a.info.SrcSize > 0 {
		s += fmt.Sprintf(" → ~%s", fmtBytes(n))
	}
	return s
}

// clean replaces control characters (a file name may hold newlines or
// escape sequences) so that a line stays one line and draws no escapes.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

// truncate cuts s to n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n == 1 {
		return "…"
	}
	return string(r[:n-1]) + "…"
}

var _ cluster.Observer = (*Console)(nil)
var _ cluster.Observer = (*Recorder)(nil)
