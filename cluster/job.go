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
	"time"

	"clustertx/hosts"
	"clustertx/media"
	"clustertx/profiles"
	"clustertx/progress"
	"clustertx/queue"
)

// cleanupTimeout bounds cleanup after a failure or cancel: it runs on its
// own context because the job's may already be cancelled.
const cleanupTimeout = 15 * time.Second

// TempMarker is in the name of every temporary file clustertx creates, in
// source folders and in working_dirs, so that leftovers can be recognised.
const TempMarker = ".clustertx-"

type worker struct {
	m    *manager
	def  *hosts.Def
	t    hosts.Transport
	q    *queue.Queue
	slot int
}

func (w *worker) loop(ctx context.Context, results []*FileResult) {
	for {
		it := w.q.Next(ctx, w.def.Name)
		if it == nil {
			return
		}
		job := it.Payload.(*Job)
		r := results[it.ID]
		start := time.Now()
		w.m.logf("%s: start %s", w.def.Name, job.Item.Path)
		ji := JobInfo{ID: job.ID, Path: job.Item.Path, Host: w.def.Name, Slot: w.slot,
			Duration: job.Info.Duration, SrcSize: job.Info.Size, Attempt: it.Attempts + 1}
		err := w.runJob(ctx, job, r, ji)
		r.Elapsed = time.Since(start)
		r.Host = w.def.Name
		ji.Profile = r.Profile
		switch {
		case err == nil:
			w.q.Done(it)
			r.Attempts = it.Attempts + 1
			w.m.logf("%s: %s %s: %s", w.def.Name, r.Outcome, job.Item.Path, r.Reason)
			w.m.opts.Observer.JobFinished(ji, r)
		case ctx.Err() != nil:
			// Interrupted: the item stays pending and is reported as not run.
			w.q.HostFailed(it)
			return
		case hosts.IsTransport(err):
			w.m.logf("warning: host %s failed while running %s: %v; the job goes back to the queue", w.def.Name, job.Item.Path, err)
			w.q.SetDown(w.def.Name, true)
			w.q.HostFailed(it)
			w.m.opts.Observer.HostState(w.def.Name, false, oneLine(err))
			return
		default:
			retry := w.q.JobFailed(it, w.def.Name, w.m.opts.MaxAttempts)
			r.Attempts = it.Attempts
			r.Outcome, r.Reason = Failed, oneLine(err)
			if retry {
				w.m.logf("warning: host %s: %s: %v; retrying", w.def.Name, job.Item.Path, err)
			} else {
				w.m.logf("error: host %s: %s: %v", w.def.Name, job.Item.Path, err)
				w.m.opts.Observer.JobFinished(ji, r)
			}
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
	if len(stem) > 120 {
		stem = stem[:120]
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
func (w *worker) runJob(ctx context.Context, job *Job, r *FileResult, ji JobInfo) (err error) {
	h, t := w.def, w.t
	prof, err := profileFor(w.m.cfg, job, h)
	if err != nil {
		return err
	}
	r.Profile = prof.Name
	ji.Profile = prof.Name
	obs := w.m.opts.Observer
	obs.JobStarted(ji)
	final, err := outputPath(job.Item.Path, prof.Extension, w.m.opts.Keep)
	if err != nil {
		return err
	}
	if final != job.Item.Path {
		if _, err := os.Lstat(final); err == nil {
			return fmt.Errorf("output %s already exists and is not the source; not overwriting it", final)
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

	// Whatever happens from here, no temporary file survives a failure.
	var remoteFiles []string
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		for _, f := range remoteFiles {
			if rerr := t.Remove(cctx, f); rerr != nil {
				w.m.logf("warning: host %s: removing %s: %v", h.Name, f, rerr)
			}
		}
		if err != nil || r.Outcome != Done {
			os.Remove(tmp)
		}
	}()

	if h.Type == hosts.Streaming {
		remoteFiles = append(remoteFiles, remoteIn, remoteOut)
		if err := w.checkRemoteSpace(ctx, job); err != nil {
			return err
		}
		start := time.Now()
		if err := t.Upload(ctx, job.Item.Path, remoteIn); err != nil {
			return err
		}
		obs.Transfer(h.Name, true, job.Info.Size, time.Since(start))
	}

	if w.m.opts.Verbose {
		w.m.logf("%s: run %s", h.Name, showArgv(argv))
	}
	prog := progress.NewParser(job.Info.Duration, func(p progress.Progress) { obs.JobProgress(ji, p) })
	stderr := &hosts.TailBuffer{Max: 20}
	if err := t.Exec(ctx, argv, prog, stderr); err != nil {
		var xe *hosts.ExitError
		if errors.As(err, &xe) {
			return fmt.Errorf("ffmpeg %s", xe.Error())
		}
		return err
	}

	if h.Type == hosts.Streaming {
		start := time.Now()
		if err := t.Download(ctx, remoteOut, tmp); err != nil {
			return err
		}
		if st, err := os.Stat(tmp); err == nil {
			obs.Transfer(h.Name, false, st.Size(), time.Since(start))
		}
	}
	return w.m.finish(ctx, job, prof, tmp, final, r)
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

// finish verifies the output, applies the threshold and moves it into
// place. The source is removed only after the verified output has its final
// name, so there is never a moment with neither.
func (m *manager) finish(ctx context.Context, job *Job, prof *profiles.Profile, tmp, final string, r *FileResult) error {
	expect := media.ExpectFrom(job.Info, keepsAudio(prof))
	out, err := m.prober.Verify(ctx, tmp, expect)
	if err != nil {
		return err
	}
	r.OutSize = out.Size
	if prof.Threshold > 0 && job.Info.Size > 0 {
		saved := 100 - int(out.Size*100/job.Info.Size)
		if saved < prof.Threshold {
			r.Outcome, r.Reason = Kept, fmt.Sprintf("kept original: saved only %d%% (threshold %d%%)", saved, prof.Threshold)
			return nil
		}
	}
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("syncing output: %w", err)
	}
	if final != job.Item.Path {
		// Refuse to clobber a file that appeared while we encoded.
		if err := os.Link(tmp, final); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("output %s appeared during the encode; not overwriting it", final)
			}
			if err := os.Rename(tmp, final); err != nil {
				return fmt.Errorf("moving output into place: %w", err)
			}
		} else {
			os.Remove(tmp)
		}
	} else if err := os.Rename(tmp, final); err != nil { // atomically replaces the source
		return fmt.Errorf("moving output into place: %w", err)
	}
	syncDir(filepath.Dir(final))
	r.Output = final
	r.Outcome = Done
	saved := 0
	if job.Info.Size > 0 {
		saved = 100 - int(out.Size*100/job.Info.Size)
	}
	r.Reason = fmt.Sprintf("%s → %s (%d%% saved)", media.FormatBytes(job.Info.Size), media.FormatBytes(out.Size), saved)
	if final != job.Item.Path && !m.opts.Keep {
		if err := os.Remove(job.Item.Path); err != nil {
			r.Reason += "; warning: could not remove the source: " + err.Error()
		}
		syncDir(filepath.Dir(job.Item.Path))
	}
	return nil
}

// keepsAudio reports whether the profile keeps audio (no -an anywhere).
func keepsAudio(p *profiles.Profile) bool {
	for _, o := range [][]string{p.Output.Args(), p.Audio.Args()} {
		for _, a := range o {
			if a == "-an" {
				return false
			}
		}
	}
	return true
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
