package cluster

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"clustertx/hosts"
	"clustertx/media"
	"clustertx/quality"
	"clustertx/queue"
)

// The search on a cluster. A file with a quality: key enters the queue as
// its search's first round: one item per sample, so the samples of a round
// spread over the hosts like split mode's segments and go through the same
// pipeline (task.go). When the last sample of a round is measured, the
// worker that measured it asks the search for the next level and pushes
// the next round's items (before its own item is finished, so no worker
// sees an empty queue in between), or pushes the file itself, to be
// encoded whole or split at the level chosen, or keeps the original when
// no level meets the target within the size cap.
//
// Samples are cut on the manager by stream copy, once per search, beside
// the source under hidden temporary names: mounted hosts read them over
// the share (as they read segments), streaming hosts get the sample file,
// which holds only the sample's packets. They are removed when the search
// ends.
//
// The metric is computed on the host that encoded the sample, when that
// host's ffmpeg has the metric's filter: it has both files at hand (its
// output and the sample it read), the measurements of a round run in
// parallel like its encodes, and VMAF costs about as much as a fast
// encode. A host whose ffmpeg lacks the filter (no libvmaf, an ffmpeg
// older than 7.1 for XPSNR) still encodes samples; the manager measures
// those (it has the sample, and the output comes back to it anyway).

// QualityStats is a file's search for the summary, the report and the
// journal.
type QualityStats struct {
	Metric         string
	Target         float64
	Encoder        string
	Option         string // "-crf"
	Met            bool
	Level          float64 // Met: the chosen level
	PredictedScore float64
	PredictedBytes int64
	PredictedPct   float64
	Samples        int
	SampleEncodes  int
	SamplesAt      []Span
	Hosts          []string      // hosts whose sample encodes counted
	Search         time.Duration // from the first sample's start to the decision
	// Measured is the finished file's score on the samples' stretches,
	// measured on the manager before it replaces the original (nil: not
	// measured: no level chosen, the manager's ffmpeg lacks the metric,
	// or the measurement failed, which is logged).
	Measured *float64
}

// runSearch is a search during a run: the search proper and its place in
// the queue.
type runSearch struct {
	*search
	m       *manager
	idx     int
	ctx     context.Context
	q       *queue.Queue
	results []*FileResult
	el      map[string]bool
	tok     string

	cutMu   []sync.Mutex // per sample: its cut
	cutDone []bool
	cutIDs  []string

	// under search.mu
	round int
	level float64
	got   []sampleScore
	have  []bool
	left  int
	items []*queue.Item
	first time.Time
	over  bool
}

// sampleItem is the payload of a sample's queue item in one round.
type sampleItem struct {
	rs    *runSearch
	i     int // sample index
	round int
	level float64
	id    int // JobInfo ID
}

// startSearch queues search sr of job j (index idx) and returns its first
// round's items; an error fails the file.
func (m *manager) startSearch(ctx context.Context, q *queue.Queue, idx int, j *Job, results []*FileResult, sr *search) ([]*queue.Item, error) {
	// Every sample, and the file, must be encoded with the profile the
	// search ran with: hosts with a fixed profile of their own that
	// differs are left out (as for split films).
	el := map[string]bool{}
	var same []*hosts.Def
	for _, h := range j.Eligible {
		if p, err := profileFor(m.cfg, j, h); err == nil && p.Name == j.Profile.Name {
			el[h.Name] = true
			same = append(same, h)
		}
	}
	if len(same) == 0 {
		return nil, fmt.Errorf("every eligible host encodes it with a profile of its own")
	}
	j.Eligible = same
	if j.Pinned.Key != "" {
		m.logf("quality: %s: encoder variant %s on %s", j.Item.Path, j.PinWhy, hostNames(same))
	}
	n := len(sr.samples)
	rs := &runSearch{search: sr, m: m, idx: idx, ctx: ctx, q: q, results: results, el: el, tok: token(),
		cutMu: make([]sync.Mutex, n), cutDone: make([]bool, n), cutIDs: make([]string, n)}
	sr.paths, sr.srcSize = make([]string, n), make([]int64, n)
	dir := filepath.Dir(j.Item.Path)
	for i := range sr.samples {
		sr.paths[i] = filepath.Join(dir, fmt.Sprintf("%s%s-q%02d.mkv", TempMarker, rs.tok, i))
	}
	m.searchMu.Lock()
	m.searches = append(m.searches, rs)
	m.searchMu.Unlock()
	level, _ := sr.s.Next()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.roundItems(level), nil
}

// roundItems starts a round at level and returns its items (rs.mu held).
func (rs *runSearch) roundItems(level float64) []*queue.Item {
	n := len(rs.samples)
	rs.round++
	rs.level, rs.got, rs.have, rs.left = level, make([]sampleScore, n), make([]bool, n), n
	px := float64(max(1, rs.job.Info.Width()*rs.job.Info.Height()))
	rs.items = nil
	for i, s := range rs.samples {
		rs.items = append(rs.items, &queue.Item{ID: rs.idx, Work: s.Duration * px, Eligible: rs.el,
			Payload: &sampleItem{rs: rs, i: i, round: rs.round, level: level, id: int(rs.m.nextID.Add(1))}})
	}
	rs.m.logf("quality: %s: round %d: %d samples at %s %s", rs.job.Item.Path, rs.round, n, rs.knob.Option(), quality.FormatLevel(level))
	return rs.items
}

// cut makes sample i on the manager, once per search. It runs on the
// run's context, not the copy's: a copy stopped meanwhile (its prefetch
// reservation taken over) must not fail the sample for the copies that
// wait for it. A failed cut is not remembered: the next copy tries again.
func (rs *runSearch) cut(i int) error {
	rs.mu.Lock()
	over := rs.over
	rs.mu.Unlock()
	if over {
		return errLost // a copy that outlived its search
	}
	rs.cutMu[i].Lock()
	defer rs.cutMu[i].Unlock()
	if rs.cutDone[i] {
		return nil
	}
	p := rs.paths[i]
	if rs.cutIDs[i] == "" {
		id, err := rs.m.temps.add("", p)
		if err != nil {
			return managerErr("journal", err)
		}
		rs.cutIDs[i] = id
	}
	j := rs.job
	argv := append(managerHead(rs.m.cfg.FFmpeg), quality.CutArgs(j.Item.Path, rs.samples[i], j.Info.Video.Index, p)...)
	stderr := &hosts.TailBuffer{Max: 20}
	if err := rs.m.local().Exec(rs.ctx, argv, nil, stderr); err != nil {
		if rs.ctx.Err() != nil {
			return rs.ctx.Err()
		}
		return managerErr(fmt.Sprintf("cutting sample %d out of the source", i+1), fmt.Errorf("%v: %s", err, stderr.Last(3)))
	}
	// srcSize[i] is written under cutMu[i] only: readers reach it after a
	// cut of their own returned, or under rs.mu after the sample was
	// recorded (which came after its cut). Taking rs.mu here would order
	// the locks against decide's (rs.mu, then cutMu in removeSamples).
	rs.srcSize[i], _ = fileSize(p)
	rs.cutDone[i] = true
	return nil
}

// removeSamples removes the cut samples (the search is over).
func (rs *runSearch) removeSamples() {
	for i, p := range rs.paths {
		rs.cutMu[i].Lock()
		if rs.cutIDs[i] != "" {
			rs.m.temps.removeLocal(p, rs.cutIDs[i], rs.m.logf)
			rs.cutIDs[i], rs.cutDone[i] = "", false
		}
		rs.cutMu[i].Unlock()
	}
}

// record takes sample i's measurement in round; the last of a round moves
// the search on. It reports false when the measurement is not needed any
// more (another copy's was taken, or the search moved on or ended).
func (rs *runSearch) record(round, i int, got sampleScore, host string) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.over || round != rs.round || rs.have[i] {
		return false
	}
	rs.got[i], rs.have[i] = got, true
	rs.hosts[host] = true
	rs.left--
	if rs.left > 0 {
		return true
	}
	o := rs.observe(rs.level, rs.got)
	rs.m.logf("quality: %s: %s %s: %s %s, %.0f%% of the source on %d samples", rs.job.Item.Path, rs.knob.Option(),
		quality.FormatLevel(rs.level), rs.cfg.Metric.Label(), quality.FormatScore(rs.cfg.Metric, o.Score), o.SizePct(), len(rs.samples))
	if next, ok := rs.s.Next(); ok {
		rs.q.Push(rs.roundItems(next)...)
		return true
	}
	rs.decide()
	return true
}

// stats is the search's QualityStats for decision d.
func (rs *runSearch) stats(d quality.Decision) *QualityStats {
	st := &QualityStats{Metric: string(rs.cfg.Metric), Target: rs.cfg.Target, Encoder: rs.knob.Encoder(),
		Met: d.Met, Samples: len(rs.samples), SampleEncodes: d.Rounds * len(rs.samples), Search: time.Since(rs.first)}
	if d.Met {
		st.Option, st.Level = rs.knob.Option(), d.Level
		st.PredictedScore, st.PredictedPct, st.PredictedBytes = d.Score, d.SizePct, d.PredictedBytes(rs.job.Info.Size)
	}
	for _, s := range rs.samples {
		st.SamplesAt = append(st.SamplesAt, Span{Start: s.Start, Duration: s.Duration})
	}
	for h := range rs.hosts {
		st.Hosts = append(st.Hosts, h)
	}
	slices.Sort(st.Hosts)
	return st
}

// decide ends the search (rs.mu held): the file goes to the queue at the
// chosen level, or keeps its original; with QualityOnly only the result
// is kept.
func (rs *runSearch) decide() {
	rs.over = true
	m, j := rs.m, rs.job
	d := rs.s.Decide()
	st := rs.stats(d)
	rs.removeSamples()
	if m.opts.QualityOnly {
		res := rs.resultLocked()
		res.Seconds = st.Search.Seconds()
		m.searchMu.Lock()
		m.qresults[rs.idx] = res
		m.searchMu.Unlock()
		r := m.resultOf(j)
		r.Outcome, r.Reason, r.Quality = Planned, "quality search only", st
		m.publish(rs.idx, r)
		return
	}
	if !d.Met {
		r := m.resultOf(j)
		r.Outcome, r.Reason, r.Quality = Kept, "quality: "+d.Reason, st
		m.publish(rs.idx, r)
		m.record(j, r)
		m.logf("job: %s %s: %s", r.Outcome, j.Item.Path, r.Reason)
		m.opts.Observer.JobFinished(JobInfo{ID: j.ID, Path: j.Item.Path, Profile: j.Profile.Name,
			Duration: j.Info.Duration, SrcSize: j.Info.Size, Attempt: 1}, r)
		return
	}
	prof, err := rs.knob.With(d.Level)
	if err != nil { // a level the search chose is within the encoder's range: not expected
		r := m.resultOf(j)
		r.Outcome, r.Reason, r.Quality = Failed, "quality: "+err.Error(), st
		m.publish(rs.idx, r)
		m.record(j, r)
		m.logf("job: error: %s: %s", j.Item.Path, r.Reason)
		m.opts.Observer.JobFinished(JobInfo{ID: j.ID, Path: j.Item.Path, Profile: j.Profile.Name,
			Duration: j.Info.Duration, SrcSize: j.Info.Size, Attempt: 1}, r)
		return
	}
	if variantsOf(j.Profile) != nil {
		j.chain = j.Profile
	}
	j.Profile, j.qstats = prof, st
	m.logf("quality: %s: %s %s (predicted %s %s, %.0f%% of the source) after %d sample encodes in %s",
		j.Item.Path, st.Option, quality.FormatLevel(st.Level), rs.cfg.Metric.Label(), quality.FormatScore(rs.cfg.Metric, st.PredictedScore),
		st.PredictedPct, st.SampleEncodes, st.Search.Round(100*time.Millisecond))
	if j.Split != nil {
		items := m.filmItems(rs.ctx, rs.q, rs.idx, j, rs.results)
		m.searchMu.Lock()
		m.lateFilms = append(m.lateFilms, items[0].Payload.(*segment).f)
		m.searchMu.Unlock()
		rs.q.Push(items...)
		return
	}
	rs.q.Push(&queue.Item{ID: rs.idx, Work: j.Work, Eligible: rs.el, Payload: j})
}

// fail ends the search: the file failed (a sample failed for good).
func (rs *runSearch) fail(host, reason string, attempts int) {
	rs.mu.Lock()
	if rs.over {
		rs.mu.Unlock()
		return
	}
	rs.over = true
	items := rs.items
	rs.mu.Unlock()
	for _, it := range items {
		rs.q.Cancel(it)
	}
	rs.removeSamples()
	m, j := rs.m, rs.job
	r := m.resultOf(j)
	r.Host, r.Outcome, r.Reason, r.Attempts = host, Failed, "quality search: "+reason, attempts
	m.publish(rs.idx, r)
	m.record(j, r)
	m.logf("job: error: %s: %s", j.Item.Path, r.Reason)
	m.opts.Observer.JobFinished(JobInfo{ID: j.ID, Path: j.Item.Path, Host: host, Profile: j.Profile.Name,
		Duration: j.Info.Duration, SrcSize: j.Info.Size, Attempt: attempts}, r)
}

// cleanupSearches removes what unfinished searches left (end of the run).
func (m *manager) cleanupSearches() {
	m.searchMu.Lock()
	searches := slices.Clone(m.searches)
	films := slices.Clone(m.lateFilms)
	m.searchMu.Unlock()
	for _, rs := range searches {
		rs.mu.Lock()
		rs.over = true
		rs.mu.Unlock()
		rs.removeSamples()
	}
	for _, f := range films {
		f.abandon()
	}
}

// hostMetrics is what host h's ffmpeg can measure (asked once per host).
func (m *manager) hostMetrics(ctx context.Context, h *hosts.Def, t hosts.Transport) map[quality.Metric]bool {
	m.searchMu.Lock()
	have, ok := m.metrics[h.Name]
	m.searchMu.Unlock()
	if ok {
		return have
	}
	have, err := metricsOn(ctx, t, h.FFmpegPath())
	if err != nil {
		return nil // not remembered: asked again next time
	}
	m.searchMu.Lock()
	m.metrics[h.Name] = have
	m.searchMu.Unlock()
	return have
}

// sampleTask is a sample's encode and measurement as a task (task.go).
type sampleTask sampleItem

func (s *sampleTask) label() string {
	return fmt.Sprintf("sample %d/%d at %s %s of %s", s.i+1, len(s.rs.samples), s.rs.knob.Option(), quality.FormatLevel(s.level), s.rs.job.Item.Path)
}

func (s *sampleTask) result(*manager) *FileResult { return &FileResult{} }

func (s *sampleTask) info(w *worker, it *queue.Item) JobInfo {
	return JobInfo{ID: s.id, Path: s.rs.job.Item.Path, Host: w.def.Name, Slot: w.slot, Profile: s.rs.job.Profile.Name,
		Duration: s.rs.samples[s.i].Duration, Attempt: w.q.Attempts(it) + 1}
}

func (s *sampleTask) succeeded(w *worker, it *queue.Item, ji JobInfo, r *FileResult) {
	w.m.opts.Observer.JobFinished(ji, nil)
}

func (s *sampleTask) failed(w *worker, it *queue.Item, ji JobInfo, r *FileResult, reason string) {
	w.m.opts.Observer.JobFinished(ji, nil)
	s.rs.fail(w.def.Name, fmt.Sprintf("sample %d at %s %s: %s", s.i+1, s.rs.knob.Option(), quality.FormatLevel(s.level), reason), w.q.Attempts(it))
}

// prepare cuts the sample on the manager (first use), names this copy's
// output beside it, and builds the encode and, where the host's ffmpeg has
// the metric, the measurement that runs on the host after it.
func (s *sampleTask) prepare(ctx context.Context, w *worker, r *FileResult, ji *JobInfo) (*work, func(), error) {
	rs, h, ts := s.rs, w.def, w.m.temps
	if err := w.m.pinnedOn(h, rs.job.Pinned, ji, "samples"); err != nil {
		return nil, nil, err
	}
	rs.mu.Lock()
	if rs.first.IsZero() {
		rs.first = time.Now()
	}
	rs.mu.Unlock()
	if err := rs.cut(s.i); err != nil {
		return nil, nil, err
	}
	sample := rs.paths[s.i]
	copyTok := token()
	local := filepath.Join(filepath.Dir(sample), fmt.Sprintf("%s%s-q%02d-%s.mkv", TempMarker, rs.tok, s.i, copyTok))
	localID, err := ts.add("", local)
	if err != nil {
		return nil, nil, managerErr("journal", err)
	}
	cleanup := func() { ts.removeLocal(local, localID, w.m.logf) }
	var in, out string
	if h.Type == hosts.Streaming {
		in = w.t.Join(h.WorkingDir, "clustertx-"+copyTok+"-sample.mkv")
		out = w.t.Join(h.WorkingDir, "clustertx-"+copyTok+"-out.mkv")
	} else {
		var ok bool
		if in, ok = h.MapPath(sample); !ok {
			cleanup()
			return nil, nil, fmt.Errorf("host %s cannot see %s (no path substitution applies)", h.Name, sample)
		}
		if out, ok = h.MapPath(local); !ok {
			cleanup()
			return nil, nil, fmt.Errorf("host %s cannot see %s (no path substitution applies)", h.Name, local)
		}
	}
	argv, err := rs.sampleArgv(encodeHead(h.FFmpegPath()), s.level, in, out, w.m.automap(rs.job.Profile))
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	noThreshold := *rs.job.Profile
	noThreshold.Threshold = 0
	st := &sampleState{}
	wk := &work{argv: argv, encJob: &Job{ID: s.id, Item: rs.job.Item, Info: &media.Info{Duration: rs.samples[s.i].Duration}},
		encProf: &noThreshold, remoteIn: in, remoteOut: out, local: local, localID: localID, state: st}
	if h.Type == hosts.Streaming {
		wk.upload, wk.size = sample, rs.srcSize[s.i] // set by the cut above
	}
	if h.Type != hosts.Local && w.m.hostMetrics(ctx, h, w.t)[rs.cfg.Metric] {
		wk.measure = func(ctx context.Context) error {
			var errb limitedBuffer
			if err := w.t.Exec(ctx, rs.measureArgv(h.FFmpegPath(), out, in), nil, &errb); err != nil {
				if hosts.IsTransport(err) || ctx.Err() != nil {
					return err
				}
				return fmt.Errorf("measuring %s on %s: %v: %s", rs.cfg.Metric.Label(), h.Name, err, media.LastLine(errb.String()))
			}
			v, err := quality.ParseScore(rs.cfg.Metric, errb.String())
			if err != nil {
				return fmt.Errorf("measuring on %s: %v", h.Name, err)
			}
			st.score, st.measured = v, true
			return nil
		}
	}
	return wk, cleanup, nil
}

// sampleState is what a sample copy learnt on its host.
type sampleState struct {
	score    float64
	measured bool
}

// check measures the sample on the manager when its host did not, and
// hands the measurement to the search, before the item is claimed (see
// record: the next round must be queued while this item still runs).
func (s *sampleTask) check(ctx context.Context, w *worker, wk *work, r *FileResult, claim func() bool) error {
	rs := s.rs
	st := wk.state.(*sampleState)
	if !st.measured {
		v, err := w.m.measureLocal(ctx, rs.search, wk.local, rs.paths[s.i])
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return managerErr("measuring sample "+fmt.Sprint(s.i+1), err)
		}
		st.score = v
	}
	size, ok := fileSize(wk.local)
	if !ok || size == 0 {
		return fmt.Errorf("sample %d: no output", s.i+1)
	}
	rs.record(s.round, s.i, sampleScore{score: st.score, bytes: size}, w.def.Name)
	if !claim() {
		return errLost
	}
	return nil
}

// searchLabel names a sample item in log lines of the queue's helpers.
func searchLabel(pl *sampleItem) string {
	return strings.TrimSpace(fmt.Sprintf("sample %d of %s", pl.i+1, pl.rs.job.Item.Path))
}

// SearchQualityCluster runs only the search of each file, on the hosts of
// the items' cluster (`clustertx quality -c`): samples go through the
// shared queue as in a run, no file is encoded or changed.
func SearchQualityCluster(ctx context.Context, opts Options, items []WorkItem, target *QualityTarget) ([]*QualityResult, error) {
	opts.defaults()
	opts.QualityOnly, opts.QualityTarget, opts.Journal = true, target, nil
	opts.NoSpeculation = true // a second copy of a short sample gains nothing
	opts.Out = io.Discard     // the results are the output (--json): no host table, no summary
	m := newManager(opts)
	rep, err := m.run(ctx, items)
	if rep == nil {
		return nil, err
	}
	var out []*QualityResult
	for i, f := range rep.Files {
		m.searchMu.Lock()
		res := m.qresults[i]
		m.searchMu.Unlock()
		if res == nil {
			res = &QualityResult{File: f.Path, Profile: f.Profile, Error: string(f.Outcome) + ": " + f.Reason}
		}
		out = append(out, res)
	}
	return out, err
}

// checkPrediction measures the finished output (tmp) against the source
// on the stretches the samples were cut from, on the manager, and records
// the score beside the prediction. The output is still under its
// temporary name and the source in place. A failure only loses the
// figure.
func (m *manager) checkPrediction(ctx context.Context, job *Job, tmp string, r *FileResult) {
	q := r.Quality
	if q == nil || !q.Met || len(q.SamplesAt) == 0 {
		return
	}
	metric := quality.Metric(q.Metric)
	m.searchMu.Lock()
	have, ok := m.metrics[""] // "": the manager
	m.searchMu.Unlock()
	if !ok {
		var err error
		if have, err = localMetrics(ctx, m.cfg.FFmpeg); err != nil {
			m.logf("warning: %s: checking the predicted score: %v", job.Item.Path, err)
			return
		}
		m.searchMu.Lock()
		m.metrics[""] = have
		m.searchMu.Unlock()
	}
	if !have[metric] {
		return
	}
	var sum, w float64
	for _, s := range q.SamplesAt {
		argv := append(measureHead(m.cfg.FFmpeg),
			quality.MeasureSpanArgs(metric, tmp, job.Item.Path, s.Start, s.Duration, job.Info.Width(), job.Info.Height())...)
		var errb limitedBuffer
		if err := m.local().Exec(ctx, argv, nil, &errb); err != nil {
			m.logf("warning: %s: checking the predicted score: %v: %s", job.Item.Path, err, media.LastLine(errb.String()))
			return
		}
		v, err := quality.ParseScore(metric, errb.String())
		if err != nil {
			m.logf("warning: %s: checking the predicted score: %v", job.Item.Path, err)
			return
		}
		sum += v * s.Duration
		w += s.Duration
	}
	if w > 0 {
		v := sum / w
		q.Measured = &v
	}
}
