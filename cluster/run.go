package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"clustertx/config"
	"clustertx/hosts"
	"clustertx/journal"
	"clustertx/media"
	"clustertx/quality"
	"clustertx/queue"
)

// Outcome is how a file ended.
type Outcome string

const (
	Done    Outcome = "done"    // encoded, verified, in place
	Kept    Outcome = "kept"    // original kept: threshold not met
	Skipped Outcome = "skipped" // by a SKIP rule, or no rule matched
	Failed  Outcome = "failed"  // probe error, encode failed, verification failed…
	NotRun  Outcome = "not run" // no reachable host could take it, or interrupted
	Changed Outcome = "changed" // the source changed during the encode: output discarded, new version left for the next run
	Planned Outcome = "planned" // --dry-run
)

// Connector opens the transport of a host. The app wires it to
// hosts.Connect; tests may wrap it.
type Connector func(ctx context.Context, def *hosts.Def) (hosts.Transport, error)

// Options configure a run.
type Options struct {
	Config       *config.Config
	Connect      Connector
	Keep         bool          // -k: never touch the source
	DryRun       bool          // plan and check hosts; change nothing
	OnlyHost     string        // --host NAME
	MaxAttempts  int           // job failures before a file is failed (default 2)
	CheckTimeout time.Duration // per-host check bound (default 15s)
	ProbeWorkers int           // concurrent ffprobe (default 2×CPUs)
	Verbose      bool          // log each job's exact command
	Observer     Observer      // progress, reports, metrics (nil: none)

	ReprobeInterval time.Duration // first re-probe of a down host (default 30s), doubling…
	ReprobeMax      time.Duration // …up to this (default 5m)
	HostWait        time.Duration // how long work may wait for any host to come back (default 5m)
	StallTimeout    time.Duration // an encode with no progress for this long is killed (default 5m)
	LoadRecheck     time.Duration // how often a host over its max_load is checked again (default 30s)
	StallGuard      time.Duration // pending work, an idle host up, nothing running this long: say why and break the tie (default 30s)
	Policy          queue.Policy  // how slots pick jobs (default queue.Smart; benchmarks compare queue.FIFO, pytranscoder's pulling)
	NoSpeculation   bool          // never start a second copy of a slow job on an idle host
	NoPrefetch      bool          // one job at a time per slot: no staging of the next file on streaming hosts, no encode while a result is checked
	Split           bool          // --split: split long files even where the config does not ask
	NoSplit         bool          // --no-split: never split
	SpecMinGain     time.Duration // a copy starts only if predicted to finish this much sooner (default 30s)
	// Calibrate: each host checked runs a short test encode (about a
	// second, within its check) with the options of the profile it will
	// run most; the speed measured is the queue's guess for a host with
	// neither a journal speed nor a weight (off unless --calibrate).
	Calibrate bool

	// Until ends the run's window (--until; zero: none): no job starts
	// that is predicted to end after it, and jobs still running then are
	// stopped as on Ctrl-C, unless Grace lets them finish. Their files, and
	// those not started, are not run ("window closed") and not failed.
	// Hosts' own windows (hosts.Def.Window) work the same way.
	Until time.Time
	Grace time.Duration    // a job running when its window closes may finish if it does within this long (default 0)
	Now   func() time.Time // the clock windows are read on (nil: time.Now); tests shift it

	Journal       *journal.Journal // resume journal (nil: none)
	Force         bool             // redo files the journal says are done or kept
	MaxFailedRuns int              // skip files that failed in this many earlier runs (0: never skip)

	// QualityTarget (--target) replaces the metric and target of every
	// file's quality: key, or gives one to files without. QualityOnly runs
	// only the searches (`clustertx quality -c`): no file is encoded, and
	// files without a quality: key are skipped.
	QualityTarget *QualityTarget
	QualityOnly   bool
	Out           io.Writer // plan, host table, summary
	Log           io.Writer // progress log lines
}

// FileResult is one file's line in the report.
type FileResult struct {
	Path    string
	Output  string // final output path (done) or where it would go (dry run)
	Host    string
	Profile string
	Variant string // the encoder variant that wrote the output ("" for a classic profile)
	Rule    string
	Outcome Outcome
	Reason  string
	// WindowClosed: not run because its hosts' windows (or the run's
	// --until) closed first; the next run takes it.
	WindowClosed bool
	SrcSize      int64
	OutSize      int64
	Duration     float64 // media seconds
	Elapsed      time.Duration
	Attempts     int
	Item         WorkItem
	Split        *SplitStats   // split mode only
	Quality      *QualityStats // files with a quality: key: the search
}

// SplitStats is where a split file's time went besides its segments'
// encodes: the split-mode overhead.
type SplitStats struct {
	Segments, Hosts int
	HostSeconds     map[string]float64 // media seconds of the segments each host encoded (the copies that counted)
	Index           time.Duration      // reading the keyframes (at plan time)
	Extract         time.Duration      // cutting streaming hosts' extracts on the manager, summed
	Rest            time.Duration      // encoding audio/subtitles on the manager (runs beside the segments)
	RestWait        time.Duration      // how long the join waited for the rest after the last segment
	Join            time.Duration      // the stream-copy join
	Verify          time.Duration      // checking the joined file and moving it into place
}

// Report is the result of a run.
type Report struct {
	Files       []*FileResult
	Hosts       []hosts.CheckResult    // the checks before work started
	HostEvents  map[string][]HostEvent // per host: when it was up or down during the run
	Interrupted bool
}

// Count returns how many files ended with outcome o.
func (r *Report) Count(o Outcome) int {
	n := 0
	for _, f := range r.Files {
		if f.Outcome == o {
			n++
		}
	}
	return n
}

// WindowClosed returns how many files were not run because a window
// closed (the run's --until, or their hosts' windows).
func (r *Report) WindowClosed() int {
	n := 0
	for _, f := range r.Files {
		if f.Outcome == NotRun && f.WindowClosed {
			n++
		}
	}
	return n
}

// Incomplete reports whether any file failed or was not run.
func (r *Report) Incomplete() bool { return r.Count(Failed)+r.Count(NotRun) > 0 }

// Run plans the work, checks the hosts, runs the queue and reports. It
// returns an error only for fatal problems (bad cluster name, no usable
// host at all); per-file problems are in the report.
func Run(ctx context.Context, opts Options, items []WorkItem) (*Report, error) {
	opts.defaults()
	return newManager(opts).run(ctx, items)
}

type manager struct {
	opts   Options
	cfg    *config.Config
	prober *media.Prober
	temps  *temps
	logMu  sync.Mutex

	resMu   sync.Mutex     // results[] (copies of one item race to publish)
	results []*FileResult  // execute's, one per planned job
	joins   sync.WaitGroup // split films being joined

	encMu    sync.Mutex
	encoders map[string]*hosts.EncoderSet // per host that answered the check

	varOnce      sync.Once
	variants     *variantState               // encoder variants: tests, choices, demotions (variants.go)
	profMu       sync.Mutex                  //
	planProfiles []planProfile               // profiles with variants the plan uses
	hostDefs     map[string]*hosts.Def       // every host of the run by name (for the lanes)
	q            atomic.Pointer[queue.Queue] // the run's queue, once it exists

	conns map[string]hosts.Transport // up hosts, from the checks until the run takes them over…
	runs  map[string]*hostRun        // …as host runs (encMu guards both)
	calib *calibrator                // Options.Calibrate: the check-time test encodes (nil: off)

	nextID    atomic.Int64                       // JobInfo IDs of segments and samples (after the files')
	searchMu  sync.Mutex                         // the fields below (quality_run.go)
	searches  []*runSearch                       // quality searches of the run
	lateFilms []*film                            // split films pushed after their search
	metrics   map[string]map[quality.Metric]bool // per host: what its ffmpeg can measure
	qresults  map[int]*QualityResult             // QualityOnly: per job index

	seenMu    sync.Mutex        // unseen's memory (visibility.go)
	seenOK    map[string]bool   // host + path substitution: a file was readable there
	seenBad   map[string]string // host + folder (host's view), or + substitution: why it is not
	seenFails map[string]int    // host + path substitution: folders that failed
}

func (m *manager) logf(format string, args ...any) {
	// One message, one line: a control character in a file name must not
	// split it (a name holding "\nclustertx: …" would forge a log line).
	msg := oneLineText(fmt.Sprintf(format, args...))
	m.logMu.Lock()
	defer m.logMu.Unlock()
	fmt.Fprintf(m.opts.Log, "clustertx: %s\n", msg)
}

// oneLineText replaces control characters (newlines, carriage returns,
// escapes…) with '?' so that text from file names stays on its line.
func oneLineText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

// displayPath shows a path on a line of its own: as is, or Go-quoted when
// it holds control characters (so it can still be told apart and copied).
func displayPath(p string) string {
	if oneLineText(p) == p {
		return p
	}
	return strconv.Quote(p)
}

// defaults fills in unset options.
func (o *Options) defaults() {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 2
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 15 * time.Second
	}
	if o.ProbeWorkers <= 0 {
		o.ProbeWorkers = 2 * runtime.NumCPU()
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Observer == nil {
		o.Observer = NopObserver{}
	}
	if o.ReprobeInterval <= 0 {
		o.ReprobeInterval = 30 * time.Second
	}
	if o.ReprobeMax < o.ReprobeInterval {
		o.ReprobeMax = max(5*time.Minute, o.ReprobeInterval)
	}
	if o.HostWait <= 0 {
		o.HostWait = 5 * time.Minute
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 5 * time.Minute
	}
	if o.LoadRecheck <= 0 {
		o.LoadRecheck = 30 * time.Second
	}
	if o.StallGuard <= 0 {
		o.StallGuard = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// PlanFiles builds the plan for items: directories expanded, files probed,
// rules and profiles resolved, eligible hosts chosen. It contacts no host
// and changes nothing.
func PlanFiles(ctx context.Context, opts Options, items []WorkItem) (*Plan, error) {
	opts.defaults()
	m := newManager(opts)
	_, clusterHosts, items, err := m.resolve(items)
	if err != nil {
		return nil, err
	}
	return m.planAll(ctx, items, clusterHosts), nil
}

// WritePlan prints what --dry-run promises for each planned file.
func WritePlan(w io.Writer, opts Options, p *Plan) {
	opts.defaults()
	opts.Out = w
	newManager(opts).printPlan(p)
}

func newManager(opts Options) *manager {
	return &manager{opts: opts, cfg: opts.Config, prober: &media.Prober{FFprobe: opts.Config.FFprobe},
		temps: &temps{j: opts.Journal}, metrics: map[string]map[quality.Metric]bool{}, qresults: map[int]*QualityResult{}}
}

// resolve expands the items and finds the hosts of every cluster named.
func (m *manager) resolve(items []WorkItem) (*hostSet, map[string][]*hosts.Def, []WorkItem, error) {
	items = expandPaths(items, m.cfg.MediaExtensions)
	hs := newHostSet(m.cfg, m.opts.OnlyHost)
	clusterHosts := map[string][]*hosts.Def{}
	for _, it := range items {
		if _, done := clusterHosts[it.Cluster]; done {
			continue
		}
		defs, err := hs.cluster(it.Cluster)
		if err != nil {
			return nil, nil, nil, err
		}
		clusterHosts[it.Cluster] = defs
	}
	m.hostDefs = hs.byName
	if m.opts.OnlyHost != "" && len(hs.order) == 0 {
		return nil, nil, nil, fmt.Errorf("--host %s: no enabled host of that name in the clusters named", m.opts.OnlyHost)
	}
	return hs, clusterHosts, items, nil
}

// run checks the hosts while the files are probed, then runs the queue
// while the feeder plans the files as their probes end (a dry run plans
// them all and prints the plan).
func (m *manager) run(ctx context.Context, items []WorkItem) (*Report, error) {
	hs, clusterHosts, items, err := m.resolve(items)
	if err != nil {
		return nil, err
	}

	if !m.opts.DryRun {
		m.temps.cleanLocal(m.logf)
	}
	// Probe files and check hosts at the same time: both wait on I/O.
	var checks []hosts.CheckResult
	m.conns = map[string]hosts.Transport{}
	checkDone := make(chan struct{})
	if m.opts.Calibrate {
		m.calib = newCalibrator(m)
	}
	go func() {
		defer close(checkDone)
		checks = m.checkHosts(ctx, hs.order)
	}()
	// Under FIFO (pytranscoder's pulling, for comparison) the queue keeps
	// the order given, so the files are probed in that order too.
	inOrder := m.opts.Policy == queue.FIFO
	known := m.rememberedSpeeds()
	probes := m.probeStream(ctx, items, inOrder, guessedSlots(hs.order, known))
	<-checkDone
	defer m.closeConns()

	rep := &Report{Hosts: checks}
	for _, c := range checks {
		m.opts.Observer.HostChecked(c)
		if c.Up && c.CalibNote != "" && m.opts.Verbose {
			m.logf("host %s: no calibration encode: %s", c.Host, c.CalibNote)
		}
	}
	printHostTable(m.opts.Out, checks, hs, &m.opts)
	defer func() { m.opts.Observer.RunFinished(rep) }()

	if m.opts.DryRun {
		plan := m.plan(ctx, items, collect(probes, len(items)), clusterHosts)
		m.printPlan(plan)
		for _, j := range plan.Jobs {
			rep.Files = append(rep.Files, m.planResult(j))
		}
		return rep, nil
	}

	runs := map[string]*hostRun{}
	for _, h := range hs.order {
		r := &hostRun{def: h}
		if t, ok := m.conns[h.Name]; ok {
			r.set(true, t, "")
			m.temps.cleanHost(ctx, h.Name, t, m.logf) // leftovers of an interrupted run
		} else {
			r.set(false, nil, checkReason(checks, h.Name))
		}
		runs[h.Name] = r
	}
	m.encMu.Lock()
	m.runs, m.conns = runs, nil // the host runs own the connections now
	m.encMu.Unlock()
	defer func() {
		for _, r := range runs {
			if t := r.transport(); t != nil {
				t.Close()
			}
		}
	}()
	rep.Files = m.execute(ctx, items, probes, inOrder, known, clusterHosts, hs.order, runs)
	m.finalCleanup(runs)
	rep.HostEvents = map[string][]HostEvent{}
	for name, r := range runs {
		r.mu.Lock()
		rep.HostEvents[name] = append([]HostEvent(nil), r.events...)
		r.mu.Unlock()
	}
	rep.Interrupted = ctx.Err() != nil
	return rep, nil
}

func anyUp(runs map[string]*hostRun, defs []*hosts.Def) bool {
	for _, d := range defs {
		if runs[d.Name].transport() != nil {
			return true
		}
	}
	return false
}

func checkReason(checks []hosts.CheckResult, name string) string {
	for _, c := range checks {
		if c.Host == name {
			return c.Reason
		}
	}
	return ""
}

// checkHosts connects to and checks every host in parallel, each bounded by
// CheckTimeout. Up hosts keep their connection for the run.
func (m *manager) checkHosts(ctx context.Context, defs []*hosts.Def) []hosts.CheckResult {
	res := make([]hosts.CheckResult, len(defs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, def := range defs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, m.opts.CheckTimeout)
			defer cancel()
			t, r := m.checkHost(cctx, def)
			if t != nil && m.calib != nil {
				m.calib.measure(cctx, def, t, &r)
			}
			res[i] = r
			if t == nil {
				return
			}
			mu.Lock()
			m.conns[def.Name] = t
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res
}

func (m *manager) closeConns() {
	for _, t := range m.conns {
		t.Close()
	}
}

func oneLine(err error) string {
	s := err.Error()
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

// reasonOf is the reason a file that could not be probed failed.
func reasonOf(err error) string {
	var pe *media.ProbeError
	if errors.As(err, &pe) {
		return "cannot probe: " + pe.Reason
	}
	return err.Error()
}

func (m *manager) resultOf(j *Job) *FileResult {
	r := &FileResult{Path: j.Item.Path, Rule: j.Rule, Outcome: j.Outcome, Reason: j.Reason, Item: j.Item}
	if j.Info != nil {
		r.SrcSize, r.Duration = j.Info.Size, j.Info.Duration
	}
	if j.Profile != nil {
		r.Profile = j.Profile.Name
	}
	r.Variant = j.Pinned.Key // a split film's or a searched file's; another file's is set by its copy
	if j.qstats != nil {
		st := *j.qstats
		r.Quality = &st
	}
	return r
}

func (m *manager) planResult(j *Job) *FileResult {
	r := m.resultOf(j)
	if r.Outcome == "" {
		r.Outcome = Planned
		if out, err := outputPath(j.Item.Path, j.Profile.Extension, m.opts.Keep); err == nil {
			r.Output = out
		}
	}
	return r
}

// priorSpeed is the speed assumed for a host of weight 1 before anything
// was observed, in the queue's work units (source pixel-seconds per wall
// second): 1080p encoded in real time. It only has to be the right order
// of magnitude: the first finished job replaces it, and later runs start
// from what the journal remembers.
const priorSpeed = 1920 * 1080

// speedKey is the journal's profile key for a host's observed speed in the
// queue's work units (source seconds × pixels per second), all profiles.
const speedKey = "work"

// execute runs the queue: a supervisor per host of the run (all) runs one
// worker per slot while the host is up and re-probes it while it is down,
// while a feeder plans the files as their probes arrive and queues them.
func (m *manager) execute(ctx context.Context, files []WorkItem, probes <-chan probed, inOrder bool, known map[string]map[string]float64, clusterHosts map[string][]*hosts.Def, all []*hosts.Def, runs map[string]*hostRun) []*FileResult {
	q := queue.NewWithOptions(queue.Options{Speculate: !m.opts.NoSpeculation, SpecMinGain: m.opts.SpecMinGain, ShortFirst: true, Policy: m.opts.Policy, Now: m.opts.Now})
	m.q.Store(q) // a variant chosen during the run updates its lanes
	windows := m.setWindows(q, all)
	results := make([]*FileResult, len(files))
	m.results = results
	m.nextID.Store(int64(len(files))) // segment and sample JobInfo IDs come after the files'
	// Speed priors: what earlier runs observed (the journal), else the
	// host's weight. The queue replaces them with what this run observes.
	// A host with neither is a guess: it takes short jobs first until its
	// first one is done (a cold start learns its speeds fast that way).
	// The guess is the speed its calibration encode measured when it ran
	// one (Options.Calibrate), else priorSpeed. known is what the journal
	// remembered at the start of the run (rememberedSpeeds).
	f := &feeder{m: m, q: q, results: results, defs: clusterHosts, runs: runs, all: all, sem: make(chan struct{}, max(1, m.opts.ProbeWorkers))}
	for _, h := range all {
		q.SetSlots(h.Name, h.SlotCount())
		f.low += 2 * h.SlotCount()
		q.SetFallback(h.Name, h.Fallback)
		if v, guess := prior(h, known[h.Name][speedKey], m.calib.speed(h.Name)); guess {
			q.SetHostGuess(h.Name, v)
		} else {
			q.SetHostSpeed(h.Name, v)
		}
		if runs[h.Name].transport() == nil {
			q.SetDown(h.Name, true)
		}
		// Encoder variants: each host's speed per variant (what the
		// journal remembers), and its hardware session caps.
		for k, v := range known[h.Name] {
			if variant, ok := strings.CutPrefix(k, laneSpeedKey("")); ok && variant != "" && v > 0 {
				q.SetLaneSpeed(h.Name, variant, v)
			}
		}
		for _, c := range h.Sessions {
			q.SetSessionCap(h.Name, c.Family, c.N)
			f.lanes = true
		}
	}
	if f.lanes { // else the feeder sets them at the first profile with variants
		q.SetLanes(m.lane)
	}
	defer func() {
		if m.opts.Journal == nil {
			return
		}
		for h, v := range q.ObservedSpeeds() {
			if err := m.opts.Journal.RecordSpeed(h, speedKey, v); err != nil {
				m.logf("warning: journal: %v", err)
			}
		}
		for h, lanes := range q.ObservedLaneSpeeds() {
			for variant, v := range lanes {
				if err := m.opts.Journal.RecordSpeed(h, laneSpeedKey(variant), v); err != nil {
					m.logf("warning: journal: %v", err)
				}
			}
		}
	}()
	m.opts.Observer.Planned(0, 0)
	q.Feeding(true)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		defer q.Feeding(false)
		f.feed(ctx, files, probes, inOrder)
	}()
	stop := context.AfterFunc(ctx, q.Close)
	defer stop()

	gaveUp := make(chan struct{})
	var giveUpOnce sync.Once
	giveUp := func() { giveUpOnce.Do(func() { close(gaveUp); q.Close() }) }
	done := make(chan struct{})
	go m.watchStuck(ctx, q, runs, done, giveUp)

	var wg sync.WaitGroup
	for _, h := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.supervise(ctx, runs[h.Name], q, results, gaveUp)
		}()
	}
	wg.Wait()
	<-fed
	m.joins.Wait()
	close(done)
	m.cleanupSearches()
	for _, f := range f.films { // unfinished films: their parts go
		f.abandon()
	}

	for _, it := range q.Pending() {
		var j *Job
		switch pl := it.Payload.(type) {
		case *Job:
			j = pl
		case *segment:
			j = pl.f.job
		case *sampleItem:
			j = pl.rs.job
		}
		r := results[it.ID]
		r.Outcome = NotRun
		switch {
		case ctx.Err() != nil:
			r.Reason = "interrupted"
		case windows && !isClosed(gaveUp):
			r.Reason, r.WindowClosed = m.windowReason(j), true
		default:
			r.Reason = "no reachable host could take it (eligible: " + hostNames(j.Eligible) + ")"
		}
	}
	return results
}

// prior is host h's speed before this run observes one: the journal's
// (remembered > 0), else its weight, else a guess: its calibration
// encode's speed (calibrated > 0), else priorSpeed.
func prior(h *hosts.Def, remembered, calibrated float64) (speed float64, guess bool) {
	switch {
	case remembered > 0:
		return remembered, false
	case h.Weight > 0:
		return h.Weight * priorSpeed, false
	case calibrated > 0:
		return calibrated, true
	}
	return priorSpeed, true
}

// rememberedSpeeds is what the journal remembers of each host's speeds
// (host → key → speed: speedKey, and one per encoder variant), or nil
// without a journal.
func (m *manager) rememberedSpeeds() map[string]map[string]float64 {
	if m.opts.Journal == nil {
		return nil
	}
	return m.opts.Journal.Speeds()
}

// guessedSlots counts the slots of the hosts whose speed the run starts
// from a guess (prior): no speed remembered in known, no weight.
// Calibration does not count: a calibrated speed is a guess too.
func guessedSlots(defs []*hosts.Def, known map[string]map[string]float64) int {
	n := 0
	for _, h := range defs {
		if _, guess := prior(h, known[h.Name][speedKey], 0); guess {
			n += h.SlotCount()
		}
	}
	return n
}

func hostNames(defs []*hosts.Def) string {
	var names []string
	for _, d := range defs {
		names = append(names, d.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
