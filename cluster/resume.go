package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"clustertx/hosts"
	"clustertx/journal"
)

// This file is where the manager meets the resume journal: which files an
// earlier run already finished, the record of every outcome, and the
// temporary files that must not outlive a crash. Without a journal
// (Options.Journal nil) all of it is a no-op, except that temp files are
// still tracked for the run so a dead host's leftovers can be removed when
// it answers again.

// journalSkip decides, before probing, whether an item was finished by an
// earlier run. It may also finish what an interrupted run left half done
// (a verified output in place, the source not yet removed).
func (m *manager) journalSkip(it WorkItem) (Outcome, string, bool) {
	j := m.opts.Journal
	if j == nil || m.opts.Force {
		return "", "", false
	}
	key, err := journal.KeyOf(it.Path)
	if err != nil {
		// Gone: was it replaced by an output in an earlier run?
		if e, ok := j.LookupPath(it.Path); ok && e.Outcome == journal.Done && e.Output != "" && e.Output != it.Path {
			if _, err := os.Stat(e.Output); err == nil {
				return Skipped, "already done in an earlier run: " + e.Output, true
			}
		}
		return "", "", false
	}
	e, ok := j.Lookup(key)
	if !ok {
		return "", "", false
	}
	switch e.Outcome {
	case journal.Done:
		if e.Output == "" || e.Output == it.Path {
			return Skipped, "already done in an earlier run", true
		}
		if _, err := os.Stat(e.Output); err != nil {
			return "", "", false // the output is gone: do it again
		}
		if m.opts.Keep {
			return Skipped, "already done in an earlier run: " + e.Output, true
		}
		// An earlier run put the verified output in place and was stopped
		// before it removed the source: finish that now — but only if the
		// file there is still the one that run wrote.
		if !ourOutput(j, e.Output) {
			return Failed, "an earlier run replaced this file with " + e.Output + ", but that file has changed since; not removing the source (remove one of them, or use --force)", true
		}
		if m.opts.DryRun {
			return Skipped, "an earlier run put its verified output in place (" + e.Output + ") but was stopped before removing the source; a real run removes it", true
		}
		if err := os.Remove(it.Path); err != nil {
			return Failed, "earlier run's output is in place but the source cannot be removed: " + err.Error(), true
		}
		syncDir(filepath.Dir(it.Path))
		return Done, "finished an earlier run: source removed, output " + e.Output, true
	case journal.Kept:
		return Skipped, "kept in an earlier run (" + e.Reason + ")", true
	case journal.Failed:
		if m.opts.MaxFailedRuns > 0 && e.Attempts >= m.opts.MaxFailedRuns {
			return Skipped, fmt.Sprintf("failed in %d earlier runs (last: %s); --force retries it", e.Attempts, e.Reason), true
		}
	}
	return "", "", false
}

// record writes a file's outcome to the journal.
func (m *manager) record(path string, r *FileResult) {
	j := m.opts.Journal
	if j == nil {
		return
	}
	var out journal.Outcome
	switch r.Outcome {
	case Done:
		out = journal.Done
	case Kept:
		out = journal.Kept
	case Skipped:
		out = journal.Skipped
	case Failed:
		out = journal.Failed
	default:
		return
	}
	key, err := journal.KeyOf(path)
	if err != nil {
		if r.Outcome != Done {
			return
		}
		key = journal.Key{Path: path} // source removed: remembered by path
	}
	e := journal.Entry{Key: key, Outcome: out, Output: r.Output, Reason: r.Reason, Host: r.Host, Profile: r.Profile, Attempts: 1}
	if out == journal.Failed {
		if prev, ok := j.Lookup(key); ok && prev.Outcome == journal.Failed {
			e.Attempts = prev.Attempts + 1
		}
	}
	if err := j.Record(e); err != nil {
		m.logf("warning: journal: %v", err)
	}
}

// ourOutput reports whether the file at path is, by size and mtime, the
// verified output an earlier run recorded (recordOutput) under that path.
func ourOutput(j *journal.Journal, path string) bool {
	key, err := journal.KeyOf(path)
	if err != nil {
		return false
	}
	e, ok := j.Lookup(key)
	return ok && e.Outcome == journal.Done && e.Output == key.Path
}

// recordReplacing records, before the output takes its final name, that the
// source is done and is to be removed. A run killed between putting the
// output in place and removing the source then leaves a journal from which
// the next run finishes the job (journalSkip, after checking with ourOutput
// that the file there is the one this run wrote) instead of failing on an
// output that "already exists".
func (m *manager) recordReplacing(src, final, profile, host string) error {
	j := m.opts.Journal
	if j == nil {
		return nil
	}
	key, err := journal.KeyOf(src)
	if err != nil {
		return err
	}
	return j.Record(journal.Entry{Key: key, Outcome: journal.Done, Output: final, Host: host, Profile: profile, Reason: "output in place; source to be removed"})
}

// recordOutput remembers a verified output under its own identity before it
// is renamed into place, so that a rerun recognises the file as our output
// (rename keeps size and mtime) even if the run dies right after the rename.
func (m *manager) recordOutput(tmp, final, profile, host string) error {
	j := m.opts.Journal
	if j == nil {
		return nil
	}
	key, err := journal.KeyOf(tmp)
	if err != nil {
		return err
	}
	key.Path, _ = filepath.Abs(final)
	return j.Record(journal.Entry{Key: key, Outcome: journal.Done, Output: final, Host: host, Profile: profile, Reason: "output of clustertx"})
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
