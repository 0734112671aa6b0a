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
	"time"
	"unicode/utf8"

	"clustertx/hosts"
	"clustertx/internal/fileid"
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
	if w.pipelining() {
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
		if !w.runCopy(ctx, it) {
			return
		}
	}
}

// fileTask is a whole file as a task (task.go).
type fileTask Job

func (t *fileTask) job() *Job { return (*Job)(t) }

func (t *fileTask) label() string { return t.Item.Path }

func (t *fileTask) result(m *manager) *FileResult { return m.resultOf(t.job()) }

func (t *fileTask) info(w *worker, it *queue.Item) JobInfo {
	return JobInfo{ID: t.ID, Path: t.Item.Path, Host: w.def.Name, Slot: w.slot,
		Duration: t.Info.Duration, SrcSize: t.Info.Size, Attempt: w.q.Attempts(it) + 1}
}

func (t *fileTask) succeeded(w *worker, it *queue.Item, ji JobInfo, r *FileResult) {
	r.Attempts = w.q.Attempts(it) + 1
	w.m.publish(it.ID, r)
	w.m.record(t.job(), r)
	w.m.logf("job: %s: %s %s: %s", w.def.Name, r.Outcome, t.Item.Path, r.Reason)
	w.m.opts.Observer.JobFinished(ji, r)
}

func (t *fileTask) failed(w *worker, it *queue.Item, ji JobInfo, r *FileResult, reason string) {
	r.Attempts = w.q.Attempts(it)
	r.Outcome, r.Reason = Failed, reason
	w.m.publish(it.ID, r)
	w.m.record(t.job(), r)
	w.m.logf("job: error: host %s: %s: %s", w.def.Name, t.Item.Path, reason)
	w.m.opts.Observer.JobFinished(ji, r)
}

// prepare resolves the profile (a host may have a fixed one), the output's
// final and temporary names and the command, and announces the temp file.
func (t *fileTask) prepare(ctx context.Context, w *worker, r *FileResult, ji *JobInfo) (*work, func(), error) {
	job, h := t.job(), w.def
	prof, err := profileFor(w.m.cfg, job, h)
	if err != nil {
		return nil, nil, err
	}
	// The encoder variant this host uses for the profile (the first that
	// works there, less those this copy already failed with).
	vprof, choice, err := w.m.variantProfile(ctx, h, w.t, job, prof, ji.skip)
	if err != nil {
		return nil, nil, err
	}
	ji.Variant, ji.family = choice.Key, choice.Family
	if job.Pinned.Key != "" {
		// A searched file, its profile resolved to the variant it was
		// searched with: only hosts that use it take it.
		if err := w.m.pinnedOn(h, job.Pinned, ji, "files"); err != nil {
			return nil, nil, err
		}
		choice = job.Pinned
	}
	r.Profile, r.Host, r.Variant = prof.Name, h.Name, choice.Key
	ji.Profile = prof.Name
	final, err := outputPath(job.Item.Path, prof.Extension, w.m.opts.Keep)
	if err != nil {
		return nil, nil, err
	}
	if final != job.Item.Path {
		if _, err := os.Lstat(final); err == nil {
			return nil, nil, noRetry(fmt.Errorf("output %s already exists and is not the source; not overwriting it", final))
		}
	}
	// The output is written beside the source: a folder the manager cannot
	// write (read-only mount, another user's) is the file's problem here,
	// not the host's, whichever host would encode it.
	if err := fileid.Writable(filepath.Dir(final)); err != nil {
		return nil, nil, managerErr("the output folder "+filepath.Dir(final)+" is not writable", err)
	}
	tok := token()
	tmp := tempPath(final, tok)
	argv, remoteIn, remoteOut, notes, err := w.m.commandFor(job, h, w.t, prof, choice.Key, tmp, tok)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range notes {
		w.m.logf("note: %s: %s", filepath.Base(job.Item.Path), n)
	}
	tmpID, err := w.m.temps.add("", tmp)
	if err != nil {
		return nil, nil, managerErr("journal", err)
	}
	wk := &work{argv: argv, encJob: job, encProf: vprof, upload: job.Item.Path, remoteIn: remoteIn, remoteOut: remoteOut,
		local: tmp, size: job.Info.Size, final: final}
	// Done: tmp was renamed into place, or linked there and unlinked; a
	// name left behind goes now.
	return wk, func() { w.m.temps.removeLocal(tmp, tmpID, w.m.logf) }, nil
}

// check verifies the output and puts it in place (finish).
func (t *fileTask) check(ctx context.Context, w *worker, wk *work, r *FileResult, claim func() bool) error {
	return w.m.finish(ctx, t.job(), wk.encProf, wk.local, wk.final, r, claim)
}

// publish makes r the reported result of the item with index i.
func (m *manager) publish(i int, r *FileResult) {
	m.resMu.Lock()
	m.results[i] = r
	m.resMu.Unlock()
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
	argv := encodeHead(ffmpeg)
	argv = append(argv, in...)
	argv = append(argv, "-i", "file:"+input)
	argv = append(argv, out...)
	return append(argv, "file:"+output)
}

// encodeHead is the fixed start of every encode a host runs: warnings
// only, overwrite the temp output, and machine-readable progress on stdout.
func encodeHead(ffmpeg string) []string {
	return append(hosts.FFmpegHead(ffmpeg, "warning"), "-y", "-nostats", "-progress", "pipe:1")
}

// managerHead is the fixed start of the commands split mode and the
// quality search run on the manager itself (cuts, rest, join): errors
// only, no progress.
func managerHead(ffmpeg string) []string {
	return append(hosts.FFmpegHead(ffmpeg, "error"), "-y")
}

// measureHead is the fixed start of a quality measurement (on a host or
// the manager): info level, where the metric filters print their summary,
// without the progress lines.
func measureHead(ffmpeg string) []string {
	return append(hosts.FFmpegHead(ffmpeg, "info"), "-nostats")
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
// paths involved, without touching anything. Used by the run and by
// --dry-run. variant is the encoder variant of prof that h uses ("" for a
// classic profile): its input and video sections replace the profile's.
func (m *manager) commandFor(job *Job, h *hosts.Def, t hosts.Transport, prof *profiles.Profile, variant, tmp, tok string) (argv []string, remoteIn, remoteOut string, notes []string, err error) {
	if prof, err = forVariant(prof, variant); err != nil {
		return nil, "", "", nil, err
	}
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
