package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"clustertx/hosts"
	"clustertx/media"
	"clustertx/profiles"
	"clustertx/progress"
	"clustertx/queue"
)

// cleanupTimeout bounds cleanup after a failure or cancel: it runs on its
// own context because the job's may already be cancelled.
const cleanupTimeout = 15 * time.Second

// maxHostFailures bounds how often one file may fail with a host error
// (connection lost, stalled encode…) before it is failed itself: host
// failures do not count as attempts, so without a bound a file that hangs
// ffmpeg would move from host to host forever.
const maxHostFailures = 4

// TempMarker is in the name of every temporary file clustertx creates, in
// source folders and in working_dirs, so that leftovers can be recognised.
const TempMarker = ".clustertx-"

type worker struct {
	m          *manager
	def        *hosts.Def
	t          hosts.Transport
	q          *queue.Queue
	slot       int
	hostFailed func(error)   // marks the host down (once) when a transport fails
	busy       *atomic.Int32 // encodes running on this host (all its slots)
	vis        *visibility   // files in a row the host could not reach (all its slots)
	ncpu       int           // the host's CPU count, read once for max_load
	pipe       *pipeline     // a prefetching streaming slot's jobs (prefetch.go); nil: one job at a time
}

func (w *worker) loop(ctx context.Context, results []*FileResult) {
	if w.prefetching() {
		w.prefetchLoop(ctx, results)
		return
	}
	for {
		if !w.waitForLoad(ctx) {
			return
		}
		it := w.q.Next(ctx, w.def.Name)
		if it == nil {
			return
		}
		if !w.runItem(ctx, it, results) {
			return
		}
	}
}

// errLost is a speculative copy that another copy beat.
var errLost = errors.New("another copy finished first")

// runItem runs one copy of an item on this host (with tail speculation the
// same file may run on two hosts: the first verified result wins, the other
// copy is stopped and discarded). Each copy fills its own FileResult; only
// the copy that ends the item publishes it. It returns false when the
// worker must stop (host failed, run interrupted).
func (w *worker) runItem(ctx context.Context, it *queue.Item, results []*FileResult) bool {
	if s, ok := it.Payload.(*segment); ok {
		return w.runSegmentItem(ctx, it, s, results)
	}
	job := it.Payload.(*Job)
	r := w.m.resultOf(job)
	publish := func() {
		w.m.resMu.Lock()
		results[it.ID] = r
		w.m.resMu.Unlock()
	}
	// Stop this copy as soon as it is no longer needed.
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lost := w.q.Lost(it, w.def.Name)
	go func() {
		select {
		case <-lost:
			cancel()
		case <-jctx.Done():
		}
	}()

	start := time.Now()
	w.m.logf("job: %s: start %s", w.def.Name, job.Item.Path)
	ji := JobInfo{ID: job.ID, Path: job.Item.Path, Host: w.def.Name, Slot: w.slot,
		Duration: job.Info.Duration, SrcSize: job.Info.Size, Attempt: w.q.Attempts(it) + 1}
	claim := func() bool { return w.q.Finish(it, w.def.Name) }
	w.busy.Add(1)
	err := w.runJob(jctx, it, job, r, ji, claim)
	w.busy.Add(-1)
	r.Elapsed = time.Since(start) - w.encodeWait(it) // a prefetched job's wait for the slot is not its time
	r.Host = w.def.Name
	ji.Profile = r.Profile
	switch {
	case err == nil:
		w.sawMedia()
		r.Attempts = w.q.Attempts(it) + 1
		publish()
		w.m.record(job, r)
		w.m.logf("job: %s: %s %s: %s", w.def.Name, r.Outcome, job.Item.Path, r.Reason)
		w.m.opts.Observer.JobFinished(ji, r)
	case ctx.Err() != nil:
		// Interrupted: the item stays pending and is reported as not run.
		w.q.HostFailedOn(it, w.def.Name)
		return false
	case errors.Is(err, errLost) || jctx.Err() != nil:
		w.m.logf("host %s: stopped its copy of %s: another host finished it first or took it over", w.def.Name, job.Item.Path)
	case hosts.IsTransport(err) && w.q.Requeues(it)+1 >= maxHostFailures:
		// The file has now taken down hosts (or stalled) this many
		// times: the file, not the hosts, is the likely cause.
		w.hostFailed(err)
		if !w.q.JobFailed(it, w.def.Name, 0) {
			r.Attempts = w.q.Attempts(it)
			r.Outcome, r.Reason = Failed, fmt.Sprintf("failed on hosts %d times, last: %s", maxHostFailures, oneLine(err))
			publish()
			w.m.record(job, r)
			w.m.logf("job: error: %s: %s", job.Item.Path, r.Reason)
			w.m.opts.Observer.JobFinished(ji, r)
		}
		return false
	case hosts.IsTransport(err):
		w.m.logf("warning: host %s failed while running %s: %v; the job goes back to the queue", w.def.Name, job.Item.Path, err)
		w.hostFailed(err)
		w.q.HostFailedOn(it, w.def.Name)
		return false
	default:
		retry, keepGoing := w.jobFailed(it, err)
		r.Attempts = w.q.Attempts(it)
		r.Outcome, r.Reason = Failed, oneLine(err)
		if retry {
			w.m.logf("warning: host %s: %s: %v; retrying", w.def.Name, job.Item.Path, err)
		} else {
			publish()
			w.m.record(job, r)
			w.m.logf("job: error: host %s: %s: %v", w.def.Name, job.Item.Path, err)
			w.m.opts.Observer.JobFinished(ji, r)
		}
		return keepGoing
	}
	return true
}

// waitForLoad holds a slot of a host with max_load while the host is busy
// with other work (someone is playing a game on it): the load average, less
// what our own running encodes account for, must be under max_load before
// the slot takes a new job. It re-checks every LoadRecheck, and returns
// false when the run is over or nothing is left for this host.
func (w *worker) waitForLoad(ctx context.Context) bool {
	if w.def.MaxLoad <= 0 {
		return true
	}
	announced := false
	if w.ncpu == 0 {
		w.ncpu = hosts.Cores(ctx, w.t) // once per worker: it does not change
	}
	ncpu := w.ncpu
	for {
		load, err := hosts.Load(ctx, w.t)
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			return true // unknown load: do not hold the host back
		}
		own := float64(w.busy.Load()) * max(1, float64(ncpu)/float64(w.def.SlotCount()))
		other := load - own
		if other < w.def.MaxLoad {
			w.q.SetHeld(w.def.Name, false)
			if announced {
				w.m.logf("host %s: load %.2f is under max_load %g again; taking jobs", w.def.Name, other, w.def.MaxLoad)
			}
			return true
		}
		// Held: the other hosts do not leave jobs to it meanwhile.
		w.q.SetHeld(w.def.Name, true)
		if !announced {
			w.m.logf("host %s is busy (load %.2f besides our encodes, max_load %g): not taking new jobs for now", w.def.Name, other, w.def.MaxLoad)
			announced = true
		}
		timer := time.NewTimer(w.m.opts.LoadRecheck)
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
		}
		if !w.q.HasWorkFor(w.def.Name) {
			return false
		}
	}
}

// outputPath is where a finished output goes: the source folder, source
// stem + profile extension. With keep, an output that would have the
// source's own name gets ".transcoded" before the extension instead.
func outputPath(src, ext string, keep bool) (string, error) {
	if ext == "" {
		return "", errors.New("profile has no extension")
	}
	dir, base := filepath.Split(src)
	stem := strings.TrimSuffix(base, filepath.Ext(base))
	if stem == "" {
		stem = base
	}
	out := filepath.Join(dir, stem+ext)
	if keep && out == src {
		out = filepath.Join(dir, stem+".transcoded"+ext)
	}
	return out, nil
}

func token() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// tempPath is a hidden, unique name beside dst, ending in dst's extension
// so ffmpeg picks the right muxer, and on the same filesystem so the final
// rename is atomic.
func tempPath(dst, tok string) string {
	dir, base := filepath.Split(dst)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	if len(stem) > 120 { // whole characters: a cut UTF-8 sequence makes an invalid name on some filesystems
		cut := 120
		for cut > 0 && !utf8.RuneStart(stem[cut]) {
			cut--
		}
		stem = stem[:cut]
	}
	return filepath.Join(dir, "."+stem+TempMarker+tok+ext)
}

// FFmpegArgv builds the full ffmpeg command: program, fixed flags that make
// it safe for unattended remote runs, the profile's input options, the
// input, the profile's output options and the output. Paths get ffmpeg's
// "file:" prefix so a leading '-' or a "name:" prefix is never misread.
func FFmpegArgv(ffmpeg string, in, out []string, input, output string) []string {
	if ffmpeg == "" {
		ffmpeg = "ffmpeg"
	}
	argv := []string{ffmpeg, "-nostdin", "-hide_banner", "-y", "-loglevel", "warning", "-nostats", "-progress", "pipe:1"}
	argv = append(argv, in...)
	argv = append(argv, "-i", "file:"+input)
	argv = append(argv, out...)
	return append(argv, "file:"+output)
}

// streamingNames are the remote file names for a streaming job: ASCII-only
// and unique, so that hostile source names never reach the remote shell and
// two sources with the same base name never collide.
func streamingNames(t hosts.Transport, workdir, src, ext, tok string) (in, out string) {
	srcExt := strings.ToLower(filepath.Ext(src))
	if !safeExt(srcExt) {
		srcExt = ".media"
	}
	return t.Join(workdir, "clustertx-"+tok+"-src"+srcExt), t.Join(workdir, "clustertx-"+tok+"-out"+ext)
}

func safeExt(ext string) bool {
	if len(ext) < 2 || len(ext) > 10 || ext[0] != '.' {
		return false
	}
	for _, c := range ext[1:] {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// commandFor returns the argv that host h runs for job, and the remote
// paths involved, without touching anything. Used by the run and by --dry-run.
func (m *manager) commandFor(job *Job, h *hosts.Def, t hosts.Transport, prof *profiles.Profile, tmp, tok string) (argv []string, remoteIn, remoteOut string, notes []string, err error) {
	plan, err := prof.Plan(job.Info, m.automap(prof))
	if err != nil {
		return nil, "", "", nil, err
	}
	switch h.Type {
	case hosts.Streaming:
		remoteIn, remoteOut = streamingNames(t, h.WorkingDir, job.Item.Path, prof.Extension, tok)
	default:
		var ok bool
		if remoteIn, ok = h.MapPath(job.Item.Path); !ok {
			return nil, "", "", nil, fmt.Errorf("host %s cannot see %s (no path substitution applies)", h.Name, job.Item.Path)
		}
		if remoteOut, ok = h.MapPath(tmp); !ok {
			return nil, "", "", nil, fmt.Errorf("host %s cannot see %s (no path substitution applies)", h.Name, tmp)
		}
	}
	return FFmpegArgv(h.FFmpeg, plan.In, plan.Out, remoteIn, remoteOut), remoteIn, remoteOut, plan.Notes, nil
}

func (m *manager) automap(p *profiles.Profile) bool {
	if p.Automap != nil {
		return *p.Automap
	}
	return m.cfg.Automap
}

// runJob carries one job through its lifecycle on this worker's host. It
// returns nil when the file reached a final outcome recorded in r (done or
// kept); a *hosts.TransportError when the host failed (the job is
// requeued); any other error is a job failure.
func (w *worker) runJob(ctx context.Context, it *queue.Item, job *Job, r *FileResult, ji JobInfo, claim func() bool) (err error) {
	h, t := w.def, w.t
	prof, err := profileFor(w.m.cfg, job, h)
	if err != nil {
		return err
	}
	r.Profile, r.Host = prof.Name, h.Name
	ji.Profile = prof.Name
	obs := w.m.opts.Observer
	if w.pipe == nil {
		obs.JobStarted(ji) // a prefetching slot's job starts with its encode, below
	}
	final, err := outputPath(job.Item.Path, prof.Extension, w.m.opts.Keep)
	if err != nil {
		return err
	}
	if final != job.Item.Path {
		if _, err := os.Lstat(final); err == nil {
			return noRetry(fmt.Errorf("output %s already exists and is not the source; not overwriting it", final))
		}
	}
	tok := token()
	tmp := tempPath(final, tok)
	argv, remoteIn, remoteOut, notes, err := w.m.commandFor(job, h, t, prof, tmp, tok)
	if err != nil {
		return err
	}
	for _, n := range notes {
		w.m.logf("note: %s: %s", filepath.Base(job.Item.Path), n)
	}

	// Whatever happens from here, no temporary file survives: each is
	// announced to the journal before it exists, and removed on every path
	// out (a dead host's are removed when it answers again, or next run).
	ts := w.m.temps
	var remoteFiles []remoteTemp
	tmpID, err := ts.add("", tmp)
	if err != nil {
		return err
	}
	defer func() {
		w.removeRemote(remoteFiles)
		// Done: tmp was renamed into place, or linked there and unlinked;
		// a name left behind goes now.
		ts.removeLocal(tmp, tmpID, w.m.logf)
	}()

	if h.Type == hosts.Streaming {
		for _, p := range []string{remoteIn, remoteOut} {
			id, err := ts.add(h.Name, p)
			if err != nil {
				return err
			}
			remoteFiles = append(remoteFiles, remoteTemp{id, p})
		}
		if err := w.checkRemoteSpace(ctx, job); err != nil {
			return err
		}
		start := time.Now()
		if err := t.Upload(ctx, job.Item.Path, remoteIn); err != nil {
			return err
		}
		obs.Transfer(h.Name, true, job.Info.Size, time.Since(start))
	}

	// A prefetching streaming slot runs one ffmpeg at a time: this job may
	// have uploaded its file while the previous one encoded.
	if err := w.acquireEncode(ctx, it); err != nil {
		return err
	}
	if w.pipe != nil {
		obs.JobStarted(ji)
	}
	if w.m.opts.Verbose {
		w.m.logf("%s: run %s", h.Name, hostCommand(h, argv))
	}
	encErr := w.encode(ctx, job, prof, argv, ji, r)
	w.releaseEncode(ctx, encErr)
	if encErr != nil {
		return w.mountProblem(encErr, remoteIn, remoteOut)
	}
	if r.Outcome == Kept {
		if !claim() {
			return errLost
		}
		return nil
	}

	if h.Type == hosts.Streaming {
		// One result at a time comes back (and is verified) per prefetching
		// slot, while the slot's next job encodes.
		if err := w.acquireDownload(ctx); err != nil {
			return err
		}
		defer w.releaseDownload()
		// The output comes back beside the source: the manager's disk must
		// hold it (outputs are rarely larger than their source).
		var st syscall.Statfs_t
		if err := syscall.Statfs(filepath.Dir(tmp), &st); err == nil {
			if free := int64(st.Bavail) * int64(st.Bsize); free < job.Info.Size+64<<20 {
				return managerErr("free space", fmt.Errorf("only %s free in %s for the output of %s; not downloading it",
					media.FormatBytes(free), filepath.Dir(tmp), filepath.Base(job.Item.Path)))
			}
		}
		start := time.Now()
		if err := t.Download(ctx, remoteOut, tmp); err != nil {
			return err
		}
		if st, err := os.Stat(tmp); err == nil {
			obs.Transfer(h.Name, false, st.Size(), time.Since(start))
		}
	}
	return w.m.finish(ctx, job, prof, tmp, final, r, claim)
}

// remoteTemp is a file a job created on its host, announced to the journal.
type remoteTemp struct{ id, path string }

// removeRemote removes a job's files on its host, on a context of its own
// (the job's may be cancelled). A file the host cannot remove now is left to
// the journal: it goes when the host answers again, or at the next run.
func (w *worker) removeRemote(files []remoteTemp) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	ts := w.m.temps
	for _, f := range files {
		if err := w.t.Remove(ctx, f.path); err != nil {
			w.m.logf("warning: host %s: removing %s: %v (will retry when it answers again)", w.def.Name, f.path, err)
			ts.orphan(w.def.Name, f.id, f.path)
			continue
		}
		ts.done(f.id)
	}
}

var (
	errStalled   = errors.New("stalled")
	errThreshold = errors.New("threshold not met")
)

// encode runs ffmpeg on the host and watches it: an encode that reports no
// progress for StallTimeout is stopped and counts as a host failure (the
// job goes elsewhere); with threshold_check, once that share of the file is
// encoded the saving is estimated from the output size so far against the
// same share of the source, and an encode that cannot reach the threshold
// is stopped and the original kept (r.Outcome = Kept, nil error). The check
// repeats on every progress block from that point on: encoder lookahead and
// muxer buffering make the output size lag the position, so early
// estimates are optimistic (never pessimistic) and one check would miss.
func (w *worker) encode(ctx context.Context, job *Job, prof *profiles.Profile, argv []string, ji JobInfo, r *FileResult) error {
	h, t, obs := w.def, w.t, w.m.opts.Observer
	ectx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var estimate int
	prog := progress.NewParser(job.Info.Duration, func(p progress.Progress) {
		obs.JobProgress(ji, p)
		if prof.Threshold <= 0 || prof.ThresholdCheck >= 100 || p.Percent < float64(prof.ThresholdCheck) || p.Ended {
			return
		}
		if saving, ok := estimatedSaving(p, job.Info); ok && saving < prof.Threshold && ectx.Err() == nil {
			estimate = saving
			cancel(errThreshold)
		}
	})
	go func() { // stall watchdog
		started := time.Now()
		tick := time.NewTicker(min(w.m.opts.StallTimeout/4, 5*time.Second))
		defer tick.Stop()
		for {
			select {
			case <-ectx.Done():
				return
			case <-tick.C:
			}
			last := prog.Last().Updated
			if last.IsZero() {
				last = started
			}
			if time.Since(last) > w.m.opts.StallTimeout {
				cancel(errStalled)
				return
			}
		}
	}()
	stderr := &hosts.TailBuffer{Max: 20}
	err := t.Exec(ectx, argv, prog, stderr)
	if err == nil {
		return nil
	}
	if ctx.Err() == nil {
		switch context.Cause(ectx) {
		case errThreshold:
			r.Outcome = Kept
			r.Reason = fmt.Sprintf("kept original: estimated saving %d%% < threshold %d%% (checked at %d%%)", estimate, prof.Threshold, prof.ThresholdCheck)
			return nil
		case errStalled:
			return &hosts.TransportError{Host: h.Name, Op: "encode", Err: fmt.Errorf("no progress for %s; encode stopped", w.m.opts.StallTimeout)}
		}
	}
	var xe *hosts.ExitError
	if errors.As(err, &xe) {
		return fmt.Errorf("ffmpeg %w", xe)
	}
	return err
}

// estimatedSaving estimates the final saving (percent) from the output
// size so far against the part of the source already encoded.
func estimatedSaving(p progress.Progress, src *media.Info) (int, bool) {
	if src.Duration <= 0 || src.Size <= 0 || p.OutTime <= 0 || p.Size <= 0 {
		return 0, false
	}
	expected := float64(src.Size) * min(1, p.OutTime/src.Duration)
	return 100 - int(float64(p.Size)*100/expected), true
}

// checkRemoteSpace refuses to stage a file the working_dir cannot hold
// (source plus an output as large as the source, plus a margin).
func (w *worker) checkRemoteSpace(ctx context.Context, job *Job) error {
	free, err := w.t.FreeSpace(ctx, w.def.WorkingDir)
	if err != nil {
		return err
	}
	need := 2*job.Info.Size + 64<<20
	if free >= 0 && free < need {
		return fmt.Errorf("working_dir %s on %s has %s free, %s needed for %s",
			w.def.WorkingDir, w.def.Name, media.FormatBytes(free), media.FormatBytes(need), filepath.Base(job.Item.Path))
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
