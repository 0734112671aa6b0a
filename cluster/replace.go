package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"clustertx/internal/fileid"
	"clustertx/journal"
	"clustertx/media"
	"clustertx/profiles"
)

// This file is the end of every job, whole file or split film: verify the
// output, apply the threshold, and put it in place. It holds the points of
// no return, and checks at each that the source is still the version that
// was probed (Job.Src): right before the output takes its final name and
// right before the source is removed. A source that changed meanwhile (a
// Sonarr/Radarr upgrade, a re-rip, `mv new.mkv film.mkv`) is left alone,
// the output is discarded, and the outcome is Changed: not a failure, the
// next run encodes the new version. The journal states are in the journal
// package's doc ("The life of a source version").

// errSourceChanged is a source that is not the probed version any more.
type errSourceChanged struct{ err error }

func (e *errSourceChanged) Error() string {
	return "source changed during the encode: " + e.err.Error()
}
func (e *errSourceChanged) Unwrap() error { return e.err }

// finish verifies the output, applies the threshold and moves it into
// place. The source is removed only after the verified output has its final
// name, so there is never a moment with neither. It returns nil with
// r.Outcome set (Done, Kept or Changed), or an error (the job failed; tmp
// is the caller's to remove).
func (m *manager) finish(ctx context.Context, job *Job, prof *profiles.Profile, tmp, final string, r *FileResult, claim func() bool) error {
	// A source that changed during the encode may have been read half
	// old, half new: say so rather than blame the output.
	if job.Src.Path != "" {
		if err := fileid.Check(job.Src, true); errors.Is(err, fileid.ErrChanged) {
			if !claim() {
				return errLost
			}
			r.Outcome, r.Reason = Changed, (&errSourceChanged{err}).Error()+"; the output was discarded and the new version is left alone (the next run encodes it)"
			return nil
		}
	}
	expect := media.ExpectFrom(job.Info)
	if plan, err := m.sharedPlan(prof, job.Info); err == nil {
		// The audio streams this command maps (none with -an).
		expect.Audio = expectedAudio(append(append([]string(nil), plan.In...), plan.Out...), job.Info)
	}
	out, err := m.prober.Verify(ctx, tmp, expect)
	if err != nil {
		return err
	}
	r.OutSize = out.Size
	// Only the first verified copy may touch the original (tail
	// speculation can run the file on two hosts).
	if !claim() {
		return errLost
	}
	m.checkPrediction(ctx, job, tmp, r)
	if prof.Threshold > 0 && job.Info.Size > 0 {
		saved := 100 - int(out.Size*100/job.Info.Size)
		if saved < prof.Threshold {
			r.Outcome, r.Reason = Kept, fmt.Sprintf("kept original: saved only %d%% (threshold %d%%)", saved, prof.Threshold)
			return nil
		}
	}
	err = m.place(job, prof, tmp, final, r)
	var ch *errSourceChanged
	if errors.As(err, &ch) {
		r.Outcome, r.Reason = Changed, ch.Error()+"; the output was discarded and the new version is left alone (the next run encodes it)"
		return nil
	}
	if err != nil {
		return err
	}
	saved := 0.0
	if job.Info.Size > 0 {
		saved = 100 * (1 - float64(out.Size)/float64(job.Info.Size))
	}
	r.Reason = fmt.Sprintf("%s → %s (%.0f%% saved)", media.FormatBytes(job.Info.Size), media.FormatBytes(out.Size), saved) + r.Reason
	return nil
}

// place puts the verified output tmp at final and, unless -k, retires the
// source: renamed over it when final is the source's own name, else linked
// beside it and the source removed. Returns *errSourceChanged when the
// source is not the probed version at a point of no return (the output
// has then not replaced anything, or has been taken away again).
func (m *manager) place(job *Job, prof *profiles.Profile, tmp, final string, r *FileResult) error {
	src := job.Src
	if src.Path == "" { // not probed through plan (tests): take it now
		var err error
		if src, err = fileid.Of(job.Item.Path); err != nil {
			return &errSourceChanged{err}
		}
	}
	// Point of no return 1: the output is about to take a final name.
	if err := fileid.Check(src, true); err != nil {
		if errors.Is(err, fileid.ErrChanged) {
			return &errSourceChanged{err}
		}
		return managerErr("checking the source", err)
	}
	if fi, err := os.Stat(src.Path); err == nil {
		if err := fileid.CopyMeta(fi, tmp); err != nil {
			m.logf("warning: %s: could not give the output the source's permissions: %v", displayPath(final), err)
		}
	}
	if err := syncFile(tmp); err != nil {
		return managerErr("syncing the output", err)
	}
	outID, err := fileid.Of(tmp)
	if err != nil {
		return managerErr("reading the output", err)
	}
	if err := m.recordOutput(outID, final, src.Path, prof.Name, r.Host); err != nil {
		return managerErr("journal", err)
	}
	keep := m.opts.Keep
	if final == src.Path {
		if keep { // outputPath never does this; be sure
			return fmt.Errorf("output %s would replace the source under -k", final)
		}
		// The rename atomically replaces the source: re-check as late as
		// possible (a stat away from the rename).
		if err := fileid.Check(src, true); err != nil {
			return &errSourceChanged{err}
		}
		if err := os.Rename(tmp, final); err != nil {
			return managerErr("moving the output into place", err)
		}
		syncDir(filepath.Dir(final))
		r.Output, r.Outcome = final, Done
		return nil
	}
	if !keep {
		if err := m.recordVersion(src, journal.Replacing, final, prof.Name, r.Host); err != nil {
			return managerErr("journal", err)
		}
	}
	// Refuse to clobber a file that appeared while we encoded.
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, os.ErrExist) {
			return noRetry(fmt.Errorf("output %s appeared during the encode; not overwriting it", final))
		}
		// No hard links here (some SMB/FUSE mounts): check, then rename.
		if _, serr := os.Lstat(final); serr == nil {
			return noRetry(fmt.Errorf("output %s appeared during the encode; not overwriting it", final))
		}
		if err := os.Rename(tmp, final); err != nil {
			return managerErr("moving the output into place", err)
		}
	} else {
		os.Remove(tmp)
	}
	syncDir(filepath.Dir(final))
	r.Output, r.Outcome = final, Done
	if keep {
		return nil
	}
	crashAt("before-source-removal")
	// Point of no return 2: the source is about to be removed.
	switch err := fileid.RemoveIfSame(src); {
	case errors.Is(err, fileid.ErrChanged):
		// The output is a transcode of a version that is gone: take it
		// away again (it is ours: same file as the verified output).
		if fileid.Check(withPath(outID, final), false) == nil {
			os.Remove(final)
			syncDir(filepath.Dir(final))
		}
		r.Output = ""
		return &errSourceChanged{err}
	case err != nil:
		r.Reason += "; warning: could not remove the source: " + err.Error()
	}
	syncDir(filepath.Dir(src.Path))
	return nil
}

func withPath(id fileid.ID, path string) fileid.ID {
	id.Path, _ = filepath.Abs(path)
	return id
}

// fileFailure fails the file at once, on whichever host it runs: the
// manager's own disk or journal failed (never the host's fault: a healthy
// host is not marked down), or the file's output cannot be placed. Another
// host would meet the same error, so it is not retried.
type fileFailure struct{ err error }

func (e *fileFailure) Error() string { return e.err.Error() }
func (e *fileFailure) Unwrap() error { return e.err }

// managerErr is a failure of the manager's own files during op.
func managerErr(op string, err error) error {
	return &fileFailure{fmt.Errorf("on the manager: %s: %w", op, err)}
}

// noRetry marks err as the file's own failure (see fileFailure).
func noRetry(err error) error { return &fileFailure{err} }

// isManagerError reports whether err fails the file without a retry.
func isManagerError(err error) bool {
	var ff *fileFailure
	return errors.As(err, &ff)
}

// crashPoint names a point of the replace where the manager kills itself
// as kill -9 would (CLUSTERTX_TEST_CRASH_AT), so that the end-to-end tests
// can leave exactly the state a crash there leaves. Unset in real runs.
var crashPoint = os.Getenv("CLUSTERTX_TEST_CRASH_AT")

func crashAt(point string) {
	if crashPoint != point {
		return
	}
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Kill()
		select {} // the kill is asynchronous: never go past the point
	}
}
