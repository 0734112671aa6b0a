package cluster

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"clustertx/hosts"
	"clustertx/media"
	"clustertx/profiles"
	"clustertx/queue"
	"clustertx/split"
)

// Split mode: a long file is cut at keyframes into segments; each segment
// is a queue item, so the segments of one film spread over the cluster like
// any jobs (faster hosts take more). The video of a segment is encoded on a
// host; everything else (audio, subtitles, chapters, metadata: the "rest")
// is encoded once, on the manager, while the segments run. When the last
// segment is verified, the worker that verified it joins the parts by
// stream copy, checks the frame count and the A/V durations, and hands the
// result to the same verification and atomic replacement as any output.

// splitSpec decides whether job is split: --split forces it (with the rule's
// or profile's lengths, else the defaults), --no-split forbids it, else the
// rule's split key, else the profile's.
func (m *manager) splitSpec(j *Job, rule *profiles.Rule) *profiles.Split {
	if m.opts.NoSplit {
		return nil
	}
	var spec *profiles.Split
	switch {
	case rule != nil && rule.Split != nil:
		spec = rule.Split
	case j.Profile.Split != nil:
		spec = j.Profile.Split
	}
	if m.opts.Split {
		if spec == nil {
			spec = profiles.DefaultSplit()
		}
		c := *spec
		c.Enabled = true
		spec = &c
	}
	return spec
}

// planSplit cuts j into segments when split mode applies to it. Files it
// does not apply to stay whole; when split mode was asked for but cannot
// be used, SplitNote says why.
func (m *manager) planSplit(ctx context.Context, j *Job, rule *profiles.Rule) {
	spec := m.splitSpec(j, rule)
	if spec == nil || !spec.Enabled {
		return
	}
	if !spec.Applies(j.Info.Duration) {
		if m.opts.Split {
			j.SplitNote = fmt.Sprintf("not split: %s is shorter than min_duration %s (or than two segments of %s)",
				media.FormatDuration(j.Info.Duration), media.FormatDuration(spec.MinDuration), media.FormatDuration(spec.Segment))
		}
		return
	}
	if j.Info.Video == nil {
		j.SplitNote = "not split: no video stream"
		return
	}
	plan, err := m.sharedPlan(j.Profile, j.Info)
	if err != nil {
		return // the job fails with this error when it runs
	}
	if why := split.Unsplittable(plan.In, plan.Out); why != "" {
		j.SplitNote = "not split: " + why
		return
	}
	// Every segment must be encoded with the same profile, or the parts
	// could not be joined: hosts with a fixed profile of their own that
	// differs are left out of a split job.
	var same []*hosts.Def
	for _, h := range j.Eligible {
		if p, err := profileFor(m.cfg, j, h); err == nil && p.Name == j.Profile.Name {
			same = append(same, h)
		}
	}
	if len(same) == 0 {
		j.SplitNote = "not split: every eligible host encodes it with a profile of its own"
		return
	}
	// Every segment must come from the same encoder too: one variant for
	// the film, and only the hosts that use it.
	var variant VariantChoice
	var variantWhy string
	if variantsOf(j.Profile) != nil {
		var capacities string
		variant, same, capacities = m.variantByCapacity(j, same)
		variantWhy = fmt.Sprintf("%s for every segment (the most expected capacity of: %s)", variant.Key, capacities)
		if variant.Key == "" {
			j.SplitNote = "not split: no eligible host's encoder variant is known yet (hosts down at plan time)"
			return
		}
		vp, err := forVariant(j.Profile, variant.Key)
		if err != nil {
			return
		}
		vplan, err := vp.Plan(j.Info, m.automap(vp))
		if err != nil {
			return
		}
		if why := split.Unsplittable(vplan.In, vplan.Out); why != "" {
			j.SplitNote = "not split: " + why + " (variant " + variant.Key + ")"
			return
		}
	}
	start := time.Now()
	x, err := m.prober.VideoIndex(ctx, j.Item.Path, j.Info.Video.Index)
	j.splitTime = time.Since(start)
	if err != nil {
		j.SplitNote = "not split: reading its keyframes: " + reasonOf(err)
		return
	}
	sp := split.Cut(x, j.Info.Duration, j.Info.StartTime, spec.Segment)
	if sp == nil {
		j.SplitNote = "not split: too few keyframes to cut it"
		return
	}
	j.Split, j.Eligible = sp, same
	j.Pinned, j.PinWhy = variant, variantWhy
}

// film is a split file during the run.
type film struct {
	m       *manager
	job     *Job
	idx     int // index in the plan (and in the results)
	final   string
	tok     string
	ctx     context.Context // the run's
	q       *queue.Queue
	items   []*queue.Item
	results []*FileResult

	mu      sync.Mutex
	outs    []string // verified segment outputs (manager's view), by index
	outIDs  []string // their journal temp ids
	left    int
	over    bool // joined or failed: nothing more to do
	started time.Time

	stats SplitStats

	restOnce sync.Once
	restDone chan struct{}
	restPath string // "" when the output has no streams besides video
	restID   string
	restErr  error
}

// segment is the payload of a split file's queue item.
type segment struct {
	f   *film
	seg split.Segment
	id  int // JobInfo ID, unique in the run

	// The journal temp id of the output of the copy that claimed the item
	// (set by check, handed to the film by succeeded).
	outID string
}

// filmItems makes the queue items of split job j.
func (m *manager) filmItems(ctx context.Context, q *queue.Queue, idx int, j *Job, results []*FileResult) []*queue.Item {
	final, _ := outputPath(j.Item.Path, j.Profile.Extension, m.opts.Keep)
	f := &film{m: m, job: j, idx: idx, final: final, tok: token(), ctx: ctx, q: q, results: results,
		outs: make([]string, len(j.Split.Segments)), outIDs: make([]string, len(j.Split.Segments)),
		left: len(j.Split.Segments), restDone: make(chan struct{})}
	el := map[string]bool{}
	for _, h := range j.Eligible {
		el[h.Name] = true
	}
	px := float64(max(1, j.Info.Width()*j.Info.Height()))
	for _, s := range j.Split.Segments {
		f.items = append(f.items, &queue.Item{ID: idx, Work: s.Duration * px, Eligible: el,
			Payload: &segment{f: f, seg: s, id: int(m.nextID.Add(1))}})
	}
	return f.items
}

// segmentTask is a split film's segment as a task (task.go): its success
// only brings its film closer to the join, and its failure for good fails
// the film.
type segmentTask segment

func (s *segmentTask) label() string {
	return fmt.Sprintf("segment %d/%d of %s", s.seg.Index+1, len(s.f.job.Split.Segments), s.f.job.Item.Path)
}

// result is a scratch result: the film's is made at the join.
func (s *segmentTask) result(*manager) *FileResult { return &FileResult{} }

func (s *segmentTask) info(w *worker, it *queue.Item) JobInfo {
	return JobInfo{ID: s.id, Path: s.f.job.Item.Path, Host: w.def.Name, Slot: w.slot, Profile: s.f.job.Profile.Name,
		Duration: s.seg.Duration, Attempt: w.q.Attempts(it) + 1, Segment: s.seg.Index + 1, Segments: len(s.f.job.Split.Segments)}
}

func (s *segmentTask) succeeded(w *worker, it *queue.Item, ji JobInfo, r *FileResult) {
	w.m.opts.Observer.JobFinished(ji, nil)
	if s.f.segmentDone(w.def.Name, s.seg.Index, r.Output, s.outID) {
		// The join runs on the manager; this slot goes on with the next
		// job meanwhile. The run waits for it (manager.joins).
		w.m.joins.Add(1)
		go func() {
			defer w.m.joins.Done()
			s.f.join(w.def.Name)
		}()
	}
}

func (s *segmentTask) failed(w *worker, it *queue.Item, ji JobInfo, r *FileResult, reason string) {
	s.f.fail(w.def.Name, fmt.Sprintf("segment %d: %s", s.seg.Index+1, reason), w.q.Attempts(it))
}

// begin notes that a segment started; the first one starts the
// rest (audio, subtitles…) on the manager.
func (f *film) begin() {
	f.mu.Lock()
	if f.started.IsZero() {
		f.started = time.Now()
	}
	f.mu.Unlock()
	f.restOnce.Do(func() { go f.encodeRest() })
}

// prepare names this copy's output on the manager (beside the final
// output, under a generated name), builds the command and, for a streaming
// host, how to cut the segment's packets out of the source (only those
// travel). The first segment to start also starts the film's rest.
func (s *segmentTask) prepare(ctx context.Context, w *worker, r *FileResult, ji *JobInfo) (*work, func(), error) {
	f, h, ts := s.f, w.def, w.m.temps
	job := f.job
	if err := w.m.pinnedOn(h, job.Pinned, ji, "segments"); err != nil {
		return nil, nil, err
	}
	f.begin()
	copyTok := token()
	local := f.segmentLocal(s.seg.Index, copyTok)
	argv, in, output, err := w.m.segmentArgv(job, h, w.t, s.seg, local, copyTok)
	if err != nil {
		return nil, nil, err
	}
	localID, err := ts.add("", local)
	if err != nil {
		return nil, nil, managerErr("journal", err)
	}
	var extract, extractID string
	var wk *work
	cleanup := func() {
		if extract != "" {
			ts.removeLocal(extract, extractID, w.m.logf)
			extract = ""
		}
		if !wk.kept { // not handed to the film
			ts.removeLocal(local, localID, w.m.logf)
		}
	}
	noThreshold := *job.Profile
	noThreshold.Threshold = 0 // the threshold applies to the joined file
	wk = &work{argv: argv, encJob: &Job{ID: s.id, Item: job.Item, Info: &media.Info{Duration: s.seg.Duration}}, encProf: &noThreshold,
		remoteIn: in, remoteOut: output, local: local, localID: localID}
	if h.Type == hosts.Streaming {
		wk.stage = func(ctx context.Context) (string, error) {
			p := strings.TrimSuffix(local, ".mkv") + "-src.mkv"
			id, err := ts.add("", p)
			if err != nil {
				return "", managerErr("journal", err)
			}
			extract, extractID = p, id
			xargv := append(managerHead(w.m.cfg.FFmpeg),
				split.ExtractArgs(job.Item.Path, s.seg, job.Info.Video.Index, p)...)
			xerr := &hosts.TailBuffer{Max: 20}
			xstart := time.Now()
			err = w.m.local().Exec(ctx, xargv, nil, xerr)
			f.mu.Lock()
			f.stats.Extract += time.Since(xstart)
			f.mu.Unlock()
			if err != nil {
				if ctx.Err() != nil {
					return "", ctx.Err()
				}
				return "", managerErr(fmt.Sprintf("cutting segment %d out of the source", s.seg.Index+1), fmt.Errorf("%v: %s", err, xerr.Last(3)))
			}
			return p, nil
		}
		wk.afterUpload = func() {
			ts.removeLocal(extract, extractID, w.m.logf)
			extract = ""
		}
	}
	return wk, cleanup, nil
}

// check counts the segment's frames: it is finished only when its output
// holds exactly its frames. The output then belongs to the film.
func (s *segmentTask) check(ctx context.Context, w *worker, wk *work, r *FileResult, claim func() bool) error {
	frames, err := w.m.prober.CountFrames(ctx, wk.local, 0)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("segment %d: output rejected: %v", s.seg.Index+1, err)
	}
	if frames != s.seg.Frames {
		return fmt.Errorf("segment %d: output has %d frames, expected %d", s.seg.Index+1, frames, s.seg.Frames)
	}
	if !claim() {
		return errLost
	}
	// Only the copy that claimed the item gets here.
	r.Output, s.outID, wk.kept = wk.local, wk.localID, true
	return nil
}

// segmentArgv is the command host h runs for segment s of job, and the
// remote paths involved (a streaming host reads an uploaded extract in its
// working_dir; others read the source through path substitution and write
// local, the segment's output beside the source). Used by the run and by
// --dry-run.
func (m *manager) segmentArgv(job *Job, h *hosts.Def, t hosts.Transport, s split.Segment, local, copyTok string) (argv []string, in, out string, err error) {
	prof, err := forVariant(job.Profile, job.Pinned.Key)
	if err != nil {
		return nil, "", "", err
	}
	plan, err := prof.Plan(job.Info, m.automap(prof))
	if err != nil {
		return nil, "", "", err
	}
	stream := job.Info.Video.Index
	if h.Type == hosts.Streaming {
		in = t.Join(h.WorkingDir, "clustertx-"+copyTok+"-seg.mkv")
		out = t.Join(h.WorkingDir, "clustertx-"+copyTok+"-out.mkv")
		stream = 0 // the extract holds the video stream only
	} else {
		var ok bool
		if in, ok = h.MapPath(job.Item.Path); !ok {
			return nil, "", "", fmt.Errorf("host %s cannot see %s (no path substitution applies)", h.Name, job.Item.Path)
		}
		if out, ok = h.MapPath(local); !ok {
			return nil, "", "", fmt.Errorf("host %s cannot see %s (no path substitution applies)", h.Name, local)
		}
	}
	argv = encodeHead(h.FFmpegPath())
	argv = append(argv, split.EncodeArgs(plan.In, plan.Out, in, s, stream)...)
	return append(argv, "file:"+out), in, out, nil
}

// segmentLocal is where segment i's output goes on the manager: beside the
// final output, hidden, in Matroska (it takes any codec), under a generated
// ASCII name that owes nothing to the user's file name (it goes into the
// join's concat list).
func (f *film) segmentLocal(i int, copyTok string) string {
	return filepath.Join(filepath.Dir(f.final), fmt.Sprintf("%s%s-seg%04d-%s.mkv", TempMarker, f.tok, i, copyTok))
}

// local is the manager's own transport, for the commands split mode runs on
// the manager (cutting extracts, the rest, the join).
func (m *manager) local() hosts.Transport {
	return hosts.NewLocal("manager")
}

// segmentDone records segment i's verified output; it reports whether it
// was the last one (the caller then joins).
func (f *film) segmentDone(host string, i int, out, id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.over {
		f.m.temps.removeLocal(out, id, f.m.logf)
		return false
	}
	f.outs[i], f.outIDs[i] = out, id
	if f.stats.HostSeconds == nil {
		f.stats.HostSeconds = map[string]float64{}
	}
	f.stats.HostSeconds[host] += f.job.Split.Segments[i].Duration
	f.left--
	return f.left == 0
}

// encodeRest encodes everything but the video once, on the manager.
func (f *film) encodeRest() {
	defer close(f.restDone)
	j, m := f.job, f.m
	prof := j.Profile
	if j.chain != nil { // searched: Profile is its variant at the level chosen
		prof = j.chain
	}
	plan, err := m.sharedPlan(prof, j.Info) // the manager encodes no video: no variant
	if err != nil {
		f.restErr = err
		return
	}
	if len(j.Info.Audio) == 0 && len(j.Info.Subtitles) == 0 || hasWords(plan.Out, "-an") && hasWords(plan.Out, "-sn") {
		return // nothing but video
	}
	ext := strings.ToLower(j.Profile.Extension)
	if !safeExt(ext) {
		ext = ".mkv"
	}
	path := filepath.Join(filepath.Dir(f.final), TempMarker+f.tok+"-rest"+ext)
	id, err := m.temps.add("", path)
	if err != nil {
		f.restErr = err
		return
	}
	f.restPath, f.restID = path, id
	argv := append(managerHead(m.cfg.FFmpeg),
		split.RestArgs(plan.In, plan.Out, j.Item.Path, path)...)
	stderr := &hosts.TailBuffer{Max: 20}
	start := time.Now()
	if err := m.local().Exec(f.ctx, argv, nil, stderr); err != nil {
		f.restErr = fmt.Errorf("encoding the audio and subtitles: %v: %s", err, stderr.Last(3))
	}
	f.stats.Rest = time.Since(start) // read after restDone closes
}

func hasWords(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

// abandon ends a film still unfinished when the run ends: its parts go,
// once, whoever else ends it.
func (f *film) abandon() {
	f.mu.Lock()
	over := f.over
	f.over = true
	f.mu.Unlock()
	if !over {
		f.cleanup()
	}
}

// fail ends the film: its other segments are dropped (running copies are
// stopped through Lost), their outputs removed, the original untouched.
func (f *film) fail(host, reason string, attempts int) {
	f.mu.Lock()
	if f.over {
		f.mu.Unlock()
		return
	}
	f.over = true
	f.mu.Unlock()
	for _, it := range f.items {
		f.q.Cancel(it)
	}
	f.cleanup()
	r := f.m.resultOf(f.job)
	r.Host, r.Outcome, r.Reason, r.Attempts = host, Failed, reason, attempts
	r.Elapsed = time.Since(f.started)
	f.publish(r)
	f.m.logf("job: error: %s: %s", f.job.Item.Path, reason)
}

func (f *film) publish(r *FileResult) {
	m := f.m
	m.resMu.Lock()
	f.results[f.idx] = r
	m.resMu.Unlock()
	m.record(f.job, r)
	m.opts.Observer.JobFinished(JobInfo{ID: f.job.ID, Path: f.job.Item.Path, Host: r.Host, Profile: r.Profile,
		Duration: f.job.Info.Duration, SrcSize: f.job.Info.Size, Attempt: 1, Segments: len(f.job.Split.Segments)}, r)
}

// cleanup removes the segment outputs and the rest (after the join, or
// when the film failed). It waits for the rest's encode to stop first.
func (f *film) cleanup() {
	f.restOnce.Do(func() { close(f.restDone) }) // never started: nothing to wait for
	<-f.restDone
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.outs {
		if p != "" {
			f.m.temps.removeLocal(p, f.outIDs[i], f.m.logf)
			f.outs[i] = ""
		}
	}
	if f.restPath != "" {
		f.m.temps.removeLocal(f.restPath, f.restID, f.m.logf)
		f.restPath = ""
	}
}

// join puts the film back together, checks it, and replaces the original
// through the same finish as any job.
func (f *film) join(host string) {
	m, j := f.m, f.job
	ctx := f.ctx
	r := m.resultOf(j)
	r.Host = host
	err := f.joinAndFinish(ctx, r)
	f.mu.Lock()
	f.over = true
	f.mu.Unlock()
	f.cleanup()
	r.Elapsed = time.Since(f.started)
	r.Attempts = 1
	f.mu.Lock()
	st := f.stats
	f.mu.Unlock()
	st.Segments, st.Hosts, st.Index = len(j.Split.Segments), len(st.HostSeconds), j.splitTime
	r.Split = &st
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted at the very end: the original is untouched.
			r.Outcome, r.Reason = NotRun, "interrupted"
			m.resMu.Lock()
			f.results[f.idx] = r
			m.resMu.Unlock()
			return
		}
		r.Outcome, r.Reason = Failed, "joining segments: "+oneLine(err)
		f.publish(r)
		m.logf("job: error: %s: %s", j.Item.Path, r.Reason)
		return
	}
	r.Reason += fmt.Sprintf("; split in %d segments on %d hosts, joined in %s", len(j.Split.Segments), st.Hosts, st.Join.Round(10*time.Millisecond))
	f.publish(r)
	m.logf("job: %s %s: %s", r.Outcome, j.Item.Path, r.Reason)
}

func (f *film) joinAndFinish(ctx context.Context, r *FileResult) error {
	m, j := f.m, f.job
	wait := time.Now()
	select {
	case <-f.restDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	f.stats.RestWait = time.Since(wait)
	if f.restErr != nil {
		return f.restErr
	}
	// The joined file is about the size of its parts: the disk must hold
	// it beside them.
	var need int64 = 64 << 20
	for _, p := range append(append([]string(nil), f.outs...), f.restPath) {
		if st, err := os.Stat(p); err == nil {
			need += st.Size()
		}
	}
	if err := localSpace(ctx, filepath.Dir(f.final), need, "joining the segments"); err != nil {
		return err
	}
	tmp := tempPath(f.final, f.tok)
	tmpID, err := m.temps.add("", tmp)
	if err != nil {
		return err
	}
	list := filepath.Join(filepath.Dir(f.final), TempMarker+f.tok+"-list.txt")
	listID, err := m.temps.add("", list)
	if err != nil {
		return err
	}
	defer func() {
		m.temps.removeLocal(list, listID, m.logf)
		m.temps.removeLocal(tmp, tmpID, m.logf) // gone already when it was placed
	}()
	var names []string
	for _, p := range f.outs {
		names = append(names, filepath.Base(p)) // beside the list
	}
	text, err := j.Split.ConcatList(names)
	if err != nil {
		return err
	}
	if err := os.WriteFile(list, []byte(text), 0o600); err != nil {
		return managerErr("writing the concat list", err)
	}
	mkv := strings.EqualFold(j.Profile.Extension, ".mkv") || strings.EqualFold(j.Profile.Extension, ".mka")
	argv := append(managerHead(m.cfg.FFmpeg),
		j.Split.JoinArgs(list, f.restPath, j.Item.Path, tmp, mkv)...)
	stderr := &hosts.TailBuffer{Max: 20}
	start := time.Now()
	if err := m.local().Exec(ctx, argv, nil, stderr); err != nil {
		return fmt.Errorf("ffmpeg: %v: %s", err, stderr.Last(3))
	}
	f.stats.Join = time.Since(start)
	start = time.Now()
	defer func() { f.stats.Verify = time.Since(start) }()
	if err := m.checkJoin(ctx, f, tmp); err != nil {
		return err
	}
	return m.finish(ctx, j, j.Profile, tmp, f.final, r, func() bool { return true })
}

// checkJoin checks what only a joined file can get wrong: its frame count
// against the source's (within one frame per join), and that its audio
// and video end together as they did in the source.
func (m *manager) checkJoin(ctx context.Context, f *film, path string) error {
	sp := f.job.Split
	tail := max(0, f.job.Info.Duration-10)
	out, err := m.prober.Streams(ctx, path, tail, true)
	if err != nil {
		return err
	}
	if d := out.VideoFrames - sp.Frames; d < -sp.Joins() || d > sp.Joins() {
		return &media.VerifyError{Path: path, Reason: fmt.Sprintf("joined video has %d frames, the source %d", out.VideoFrames, sp.Frames)}
	}
	src, err := m.prober.Streams(ctx, f.job.Item.Path, tail, false)
	if err != nil {
		return err
	}
	skew := func(r *media.StreamReport) (float64, bool) {
		if r.Info.Video == nil || len(r.Info.Audio) == 0 {
			return 0, false
		}
		return r.Ends[r.Info.Video.Index] - r.Ends[r.Info.Audio[0].Index], true
	}
	so, ok1 := skew(out)
	ss, ok2 := skew(src)
	if ok1 && ok2 {
		frame := 1 / math.Max(1, f.job.Info.FPS())
		// Half a frame, plus an audio frame's worth for a re-encoded
		// audio track (whose end is rounded to its frames).
		if d := math.Abs(so - ss); d > 0.5*frame+0.03 {
			return &media.VerifyError{Path: path, Reason: fmt.Sprintf("audio and video end %.3fs apart, %.3fs in the source", so, ss)}
		}
	}
	return nil
}
