package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"clustertx/hosts"
	"clustertx/internal/fileid"
	"clustertx/journal"
)

// This file is where the manager meets the resume journal: which files an
// earlier run already finished, the record of every outcome, and the
// temporary files that must not outlive a crash. Without a journal
// (Options.Journal nil) all of it is a no-op, except that temp files are
// still tracked for the run so a dead host's leftovers can be removed when
// it answers again.

// journalSkip decides, before probing, whether an item was finished by an
// earlier run. It changes nothing: a replace that an interrupted run left
// half done (its verified output in place, the source not yet removed) is
// returned as a finishStep, which the run carries out when it feeds the
// file's plan to the queue (finishInterrupted) and a dry run only shows.
//
// now and statErr are the file's version as it is now (fileid.Of).
func (m *manager) journalSkip(it WorkItem, now fileid.ID, statErr error) (o Outcome, reason string, ok bool, fin *finishStep) {
	j := m.opts.Journal
	if j == nil || m.opts.Force {
		return "", "", false, nil
	}
	if statErr != nil {
		// Gone: was it replaced by an output in an earlier run?
		if e, ok := j.LookupPath(it.Path); ok && e.Outcome == journal.Done && e.Output != "" && e.Output != it.Path {
			if _, err := os.Stat(e.Output); err == nil {
				return Skipped, "already done in an earlier run: " + e.Output, true, nil
			}
		}
		return "", "", false, nil
	}
	e, ok := j.Lookup(journal.KeyOfID(now))
	if !ok {
		return "", "", false, nil
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	switch e.Outcome {
	case journal.Output:
		if e.Source == it.Path { // replaced in place: this is its own transcode
			return Skipped, "already done in an earlier run", true, nil
		}
		from := ""
		if e.Source != "" {
			from = " from " + displayPath(e.Source)
		}
		return Skipped, "written by clustertx in an earlier run" + from + "; not transcoded again (--force does)", true, nil
	case journal.Done:
		if e.Output == "" || e.Output == it.Path {
			if e.HasInode() && !e.Version().Same(now, false) {
				return Skipped, "already transcoded in an earlier run; this file has the original's name, size and date (restored from a backup?), so it is left alone (--force encodes it again)", true, nil
			}
			return Skipped, "already done in an earlier run", true, nil
		}
		if !exists(e.Output) {
			return "", "", false, nil // the output is gone: do it again
		}
		return Skipped, "already transcoded in an earlier run to " + displayPath(e.Output) + "; this file has the original's name, size and date (restored from a backup?), so it is left alone (--force encodes it again)", true, nil
	case journal.KeptCopy:
		if !exists(e.Output) {
			return "", "", false, nil
		}
		if m.opts.Keep {
			return Skipped, "already copied with -k in an earlier run: " + displayPath(e.Output), true, nil
		}
		return Skipped, "a copy was encoded with -k in an earlier run (" + displayPath(e.Output) + "), the original was kept; --force encodes it again and replaces it", true, nil
	case journal.Replacing:
		if !exists(e.Output) {
			return "", "", false, nil // stopped before the output took its name: encode again
		}
		switch {
		case !e.HasInode():
			return Skipped, "an older clustertx was replacing this file with " + displayPath(e.Output) + " and was stopped; it is left alone: remove whichever you do not want, or use --force", true, nil
		case !e.Version().Same(now, true):
			return Skipped, "an earlier run replaced this file with " + displayPath(e.Output) + " and was stopped; the file here is not the one it encoded (restored or replaced since), so it is left alone", true, nil
		case !ourOutput(j, e.Output):
			return Failed, "an earlier run replaced this file with " + displayPath(e.Output) + ", but that file has changed since; not removing the source (remove one of them, or use --force)", true, nil
		case m.opts.Keep:
			return Skipped, "an earlier run put its verified output in place (" + displayPath(e.Output) + ") but was stopped before removing the source; -k never removes it, a run without -k does", true, nil
		}
		fin = &finishStep{src: e.Version(), output: e.Output, profile: e.Profile, host: e.Host}
		return Skipped, "an earlier run put its verified output in place (" + displayPath(e.Output) + ") but was stopped before removing the source; the run removes it", true, fin
	case journal.Kept:
		return Skipped, "kept in an earlier run (" + e.Reason + ")", true, nil
	case journal.Failed:
		if m.opts.MaxFailedRuns > 0 && e.Attempts >= m.opts.MaxFailedRuns {
			return Skipped, fmt.Sprintf("failed in %d earlier runs (last: %s); --force retries it", e.Attempts, e.Reason), true, nil
		}
	}
	return "", "", false, nil
}

// finishStep is the rest of a replace an interrupted run started: the
// verified output is in place, the source (exactly this version) is to go.
type finishStep struct {
	src           fileid.ID
	output        string
	profile, host string
}

// finishInterrupted carries out job j's finish step, if planning found one,
// before its outcome is reported (a dry run only shows it). The source is
// removed only while it is still the recorded version.
func (m *manager) finishInterrupted(j *Job) {
	f := j.finish
	if f == nil {
		return
	}
	switch err := fileid.RemoveIfSame(f.src); {
	case errors.Is(err, fileid.ErrChanged):
		j.Outcome, j.Reason = Skipped, "an earlier run replaced this file with "+displayPath(f.output)+" and was stopped; the file here changed since, so it is left alone"
	case err != nil:
		j.Outcome, j.Reason = Failed, "an earlier run's output is in place but the source cannot be removed: "+err.Error()
	default:
		syncDir(filepath.Dir(f.src.Path))
		j.Outcome, j.Reason = Done, "finished an earlier run: source removed, output "+displayPath(f.output)
		m.recordVersion(f.src, journal.Done, f.output, f.profile, f.host)
	}
}

// record writes a file's outcome to the journal, for the version that was
// probed (the file may be gone or replaced by now).
func (m *manager) record(job *Job, r *FileResult) {
	j := m.opts.Journal
	if j == nil {
		return
	}
	var out journal.Outcome
	switch r.Outcome {
	case Done:
		out = journal.Done
		if m.opts.Keep {
			out = journal.KeptCopy
		}
	case Kept:
		out = journal.Kept
	case Changed:
		out = journal.Changed
	case Skipped:
		out = journal.Skipped
	case Failed:
		out = journal.Failed
	default:
		return
	}
	v := job.Src
	if v.Path == "" {
		var err error
		if v, err = fileid.Of(job.Item.Path); err != nil {
			return
		}
	}
	e := journal.Entry{Outcome: out, Output: r.Output, Reason: r.Reason, Host: r.Host, Profile: r.Profile, Attempts: 1}.WithVersion(v)
	if q := r.Quality; q != nil {
		e.Quality = &journal.Quality{Metric: q.Metric, Target: q.Target, Option: q.Option, Level: q.Level,
			PredictedScore: q.PredictedScore, PredictedBytes: q.PredictedBytes, SampleEncodes: q.SampleEncodes,
			SearchSeconds: q.Search.Seconds()}
		if q.Measured != nil {
			e.Quality.MeasuredScore = *q.Measured
		}
	}
	if out == journal.Failed {
		if prev, ok := j.Lookup(e.Key); ok && prev.Outcome == journal.Failed {
			e.Attempts = prev.Attempts + 1
		}
	}
	if err := j.Record(e); err != nil {
		m.logf("warning: journal: %v", err)
	}
}

// recordVersion records state o for source version v.
func (m *manager) recordVersion(v fileid.ID, o journal.Outcome, output, profile, host string) error {
	j := m.opts.Journal
	if j == nil {
		return nil
	}
	return j.Record(journal.Entry{Outcome: o, Output: output, Host: host, Profile: profile}.WithVersion(v))
}

// ourOutput reports whether the file at path is, by size, mtime and inode,
// the verified output an earlier run recorded (recordOutput) under that path.
func ourOutput(j *journal.Journal, path string) bool {
	now, err := fileid.Of(path)
	if err != nil {
		return false
	}
	e, ok := j.Lookup(journal.KeyOfID(now))
	return ok && e.Outcome == journal.Output && e.Version().Same(now, false)
}

// recordOutput remembers a verified output under its own identity, as it
// will be at final, before it is renamed there, so that a rerun recognises
// the file as ours (a rename keeps size, mtime and inode) even if the run
// dies right after the rename.
func (m *manager) recordOutput(out fileid.ID, final, src, profile, host string) error {
	j := m.opts.Journal
	if j == nil {
		return nil
	}
	out = withPath(out, final)
	return j.Record(journal.Entry{Outcome: journal.Output, Output: out.Path, Source: src, Host: host, Profile: profile}.WithVersion(out))
}

// temps tracks the temporary files of the run. Each is announced to the
// journal before it is created and retired once it is gone; remote ones
// that could not be removed (their host died) are kept per host and removed
// when the host answers again, or by the next run.
type temps struct {
	mu      sync.Mutex
	j       *journal.Journal
	orphans map[string]map[string]string // host → id → remote path
}

// add announces a temp file before it is created. If the journal cannot
// record it, the file must not be created (a crash could leak it).
func (ts *temps) add(host, path string) (string, error) {
	id := journal.NewTempID()
	if ts.j != nil {
		if err := ts.j.AddTemp(journal.Temp{ID: id, Host: host, Path: path}); err != nil {
			return "", fmt.Errorf("journal: %w", err)
		}
	}
	return id, nil
}

// removeLocal removes a temp file on the manager and retires it only once
// it is gone: one that cannot be removed now stays in the journal, and the
// next run tries again.
func (ts *temps) removeLocal(path, id string, logf func(string, ...any)) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		logf("warning: removing %s: %v (the next run tries again)", path, err)
		return
	}
	ts.done(id)
}

func (ts *temps) done(id string) {
	if ts.j != nil {
		ts.j.DoneTemp(id)
	}
}

func (ts *temps) orphan(host, id, path string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.orphans == nil {
		ts.orphans = map[string]map[string]string{}
	}
	if ts.orphans[host] == nil {
		ts.orphans[host] = map[string]string{}
	}
	ts.orphans[host][id] = path
}

// cleanHost removes what is known to be left on host: orphans of this run
// and pending temps of earlier runs.
func (ts *temps) cleanHost(ctx context.Context, host string, t hosts.Transport, logf func(string, ...any)) {
	ts.mu.Lock()
	todo := map[string]string{}
	for id, p := range ts.orphans[host] {
		todo[id] = p
	}
	ts.mu.Unlock()
	if ts.j != nil {
		for _, tp := range ts.j.PendingTemps() {
			if tp.Host == host {
				todo[tp.ID] = tp.Path
			}
		}
	}
	for id, p := range todo {
		if err := t.Remove(ctx, p); err != nil {
			logf("warning: host %s: removing leftover %s: %v", host, p, err)
			continue
		}
		ts.mu.Lock()
		delete(ts.orphans[host], id)
		ts.mu.Unlock()
		ts.done(id)
	}
}

// cleanLocal removes leftovers of earlier runs on the manager itself.
func (ts *temps) cleanLocal(logf func(string, ...any)) {
	if ts.j == nil {
		return
	}
	for _, tp := range ts.j.PendingTemps() {
		if tp.Host != "" {
			continue
		}
		switch err := os.Remove(tp.Path); {
		case err == nil:
			logf("removed leftover temporary file %s from an interrupted run", tp.Path)
		case !errors.Is(err, os.ErrNotExist): // never created: nothing to say
			logf("warning: removing leftover %s: %v", tp.Path, err)
			continue
		}
		ts.done(tp.ID)
	}
}

// hostsWithLeftovers lists hosts that still have files to clean.
func (ts *temps) hostsWithLeftovers() []string {
	seen := map[string]bool{}
	ts.mu.Lock()
	for h, m := range ts.orphans {
		if len(m) > 0 {
			seen[h] = true
		}
	}
	ts.mu.Unlock()
	if ts.j != nil {
		for _, tp := range ts.j.PendingTemps() {
			if tp.Host != "" {
				seen[tp.Host] = true
			}
		}
	}
	var out []string
	for h := range seen {
		out = append(out, h)
	}
	return out
}

// finalCleanup gives hosts with leftovers one last chance at the end of the
// run: connect (bounded) and remove them. What stays is in the journal for
// the next run.
func (m *manager) finalCleanup(runs map[string]*hostRun) {
	for _, name := range m.temps.hostsWithLeftovers() {
		r := runs[name]
		if r == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		t := r.transport()
		owned := false
		if t == nil {
			var res hosts.CheckResult
			if t, res = m.checkHost(ctx, r.def); t == nil {
				m.logf("warning: host %s is still down (%s); its leftover files will be removed by a later run", name, res.Reason)
				cancel()
				continue
			}
			owned = true
		}
		m.temps.cleanHost(ctx, name, t, m.logf)
		if owned {
			t.Close()
		}
		cancel()
	}
}
