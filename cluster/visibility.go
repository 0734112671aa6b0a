package cluster

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"

	"clustertx/hosts"
	"clustertx/queue"
)

// This file handles a mounted host that cannot reach the media through its
// own view of the share: the NFS/SMB mount is missing or stale, a path
// substitution points at the wrong place, the share is read-only there.
// ffmpeg then fails at once on every file. That is the host's problem, not
// the file's: the attempt is not counted against the file (queue.Refused)
// and, after notVisibleBench such failures in a row with no file done in
// between, the host leaves the run instead of failing through the library.

// notVisibleBench is how many files in a row a mounted host may fail to
// open before it leaves the run.
const notVisibleBench = 3

// notVisibleError is ffmpeg on a mounted host failing to open the source,
// or to create the output beside it, through the host's own path.
type notVisibleError struct {
	host string
	line string // ffmpeg's message
	err  error
}

func (e *notVisibleError) Error() string {
	return fmt.Sprintf("host %s cannot reach the file through its mount or path substitution (%s)", e.host, e.line)
}

func (e *notVisibleError) Unwrap() error { return e.err }

// accessProblems are the errno texts ffmpeg prints after a path it cannot
// open.
var accessProblems = []string{
	": No such file or directory",
	": Permission denied",
	": Not a directory",
	": Read-only file system",
	": Stale file handle",
	": Transport endpoint is not connected",
}

// mountProblem returns err as a *notVisibleError when this worker's host is
// a mounted one and ffmpeg's own message says it could not open one of
// paths (the host's view of the source and of the output); otherwise err.
func (w *worker) mountProblem(err error, paths ...string) error {
	if w.def.Type != hosts.Mounted {
		return err
	}
	var xe *hosts.ExitError
	if !errors.As(err, &xe) {
		return err
	}
	for _, line := range strings.Split(xe.Stderr, "\n") {
		for _, p := range paths {
			if p == "" {
				continue
			}
			i := strings.Index(line, p)
			if i < 0 {
				continue
			}
			rest := line[i+len(p):]
			for _, a := range accessProblems {
				if strings.HasPrefix(rest, a) {
					return &notVisibleError{host: w.def.Name, line: strings.TrimSpace(line), err: err}
				}
			}
		}
	}
	return err
}

// jobFailed tells the queue that it failed on this worker's host with err
// (not a transport failure) and reports whether it will be retried and
// whether this slot may go on. A host that could not reach the file costs
// the file no attempt while another host may still try it.
func (w *worker) jobFailed(it *queue.Item, err error) (retry, keepGoing bool) {
	if isManagerError(err) || hosts.IsLocal(err) {
		// The manager's own disk: another host would meet the same error.
		return w.q.JobFailed(it, w.def.Name, 1), true
	}
	var ve *variantError
	if errors.As(err, &ve) {
		// The host's hardware, not the file: another host (for a split
		// film's segment, one with the film's variant) tries it; the
		// attempt counts only when no other host is left.
		return w.q.Refused(it, w.def.Name, w.m.opts.MaxAttempts), true
	}
	var nv *notVisibleError
	if errors.As(err, &nv) {
		return w.q.Refused(it, w.def.Name, w.m.opts.MaxAttempts), w.cannotSee(nv)
	}
	return w.q.JobFailed(it, w.def.Name, w.m.opts.MaxAttempts), true
}

// visibility counts, for one host, the files in a row it could not reach.
type visibility struct {
	mu      sync.Mutex
	inARow  int
	benched bool
	bench   func(reason string) // takes the host out of the run (once)
}

// sawMedia notes that the host finished a job: its view of the media works.
func (w *worker) sawMedia() {
	if w.vis == nil {
		return
	}
	w.vis.mu.Lock()
	w.vis.inARow = 0
	w.vis.mu.Unlock()
}

// cannotSee notes a file the host could not reach and reports whether the
// slot may go on; at notVisibleBench in a row the host leaves the run.
func (w *worker) cannotSee(nv *notVisibleError) (keepGoing bool) {
	if w.vis == nil {
		return true
	}
	w.vis.mu.Lock()
	defer w.vis.mu.Unlock()
	w.vis.inARow++
	if w.vis.inARow < notVisibleBench && !w.vis.benched {
		return true
	}
	if !w.vis.benched {
		w.vis.benched = true
		w.vis.bench(fmt.Sprintf("cannot reach the media: %d files in a row failed to open (last: %s); check its mount and path-substitutions", w.vis.inARow, nv.line))
	}
	return false
}

// unseen says why mounted host h cannot see job's file, or "" when it can
// or nothing is known (the host is down, or runs Windows). It runs
// `test -r` on the host's path of the file: once one file under a path
// substitution is readable there the mount works and the substitution's
// other files are not checked; a failure is remembered for the file's
// folder, and for the whole substitution once notVisibleBench folders
// failed with none readable. So a dry run shows a missing mount up front,
// and a run does not send the host files it cannot open (what slips through
// is caught by mountProblem during the run).
func (m *manager) unseen(ctx context.Context, job *Job, h *hosts.Def) string {
	if why := h.PathProblem(job.Item.Path); why != "" && h.Type == hosts.Mounted {
		return why
	}
	if h.Type != hosts.Mounted || h.Windows() {
		return ""
	}
	t := m.conn(h.Name)
	if t == nil {
		return ""
	}
	mapped, sub, ok := h.MapPathSub(job.Item.Path)
	if !ok {
		return ""
	}
	m.seenMu.Lock()
	defer m.seenMu.Unlock()
	if m.seenOK == nil {
		m.seenOK, m.seenBad, m.seenFails = map[string]bool{}, map[string]string{}, map[string]int{}
	}
	subKey := h.Name + "\x00" + sub.Src + "\x00" + sub.Dst
	dirKey := h.Name + "\x00" + path.Dir(mapped)
	if m.seenOK[subKey] {
		return ""
	}
	if why, ok := m.seenBad[dirKey]; ok {
		return why
	}
	if why, ok := m.seenBad[subKey]; ok {
		return why
	}
	cctx, cancel := context.WithTimeout(ctx, m.opts.CheckTimeout)
	defer cancel()
	err := t.Exec(cctx, []string{"test", "-r", mapped}, nil, nil)
	var xe *hosts.ExitError
	switch {
	case err == nil:
		m.seenOK[subKey] = true
		return ""
	case errors.As(err, &xe) && xe.Code == 1:
		why := fmt.Sprintf("cannot read %s there (check its mount and path-substitutions)", mapped)
		m.seenBad[dirKey] = why
		// Folders in a row with nothing readable under the substitution:
		// the whole of it is unreachable; spare a large library one
		// check per folder.
		if m.seenFails[subKey]++; m.seenFails[subKey] >= notVisibleBench {
			m.seenBad[subKey] = fmt.Sprintf("cannot read files in %d folders under %s there (check its mount and path-substitutions)", notVisibleBench, sub.Dst)
		}
		return why
	default:
		return "" // no answer: the run will tell
	}
}
