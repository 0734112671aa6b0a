package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"clustertx/hosts"
	"clustertx/media"
	"clustertx/profiles"
	"clustertx/queue"
)

// This file is the one pipeline every queue item goes through on a host,
// whole file or split film's segment: runCopy decides what an outcome
// means for the queue and the host (done, lost to another copy, host
// failure, job failure), runTask stages, encodes, fetches and checks. A
// task says only what differs between the two: the command and the files
// (prepare), what makes its output good (check), and what success and a
// failure for good mean (succeeded, failed).

// task is one queue item's work: *fileTask (job.go), *segmentTask
// (split.go) or *sampleTask (quality_run.go).
type task interface {
	// info describes this copy for the observer.
	info(w *worker, it *queue.Item) JobInfo
	// label names it in log lines ("film.mkv", "segment 2/5 of film.mkv").
	label() string
	// result is the FileResult this copy fills.
	result(m *manager) *FileResult
	// prepare resolves the command and the files of this copy on w's host,
	// announcing its manager-side temp files; cleanup removes them (also
	// after a failure or a lost copy).
	prepare(ctx context.Context, w *worker, r *FileResult, ji *JobInfo) (wk *work, cleanup func(), err error)
	// check runs once the output is on the manager (written there by a
	// mounted or local host, downloaded from a streaming one). It must
	// claim the item (claim) before touching anything the user sees.
	check(ctx context.Context, w *worker, wk *work, r *FileResult, claim func() bool) error
	// succeeded and failed end the item: the copy that ends it reports it.
	succeeded(w *worker, it *queue.Item, ji JobInfo, r *FileResult)
	failed(w *worker, it *queue.Item, ji JobInfo, r *FileResult, reason string)
}

// work is what one copy of a task runs on its host.
type work struct {
	argv    []string
	encJob  *Job              // what the encode reports progress against
	encProf *profiles.Profile // its threshold is checked during the encode
	// Streaming hosts: stage (if set) makes the manager file to upload
	// (a segment's extract); upload is that file, remoteIn/remoteOut the
	// host's copies.
	stage               func(ctx context.Context) (string, error)
	afterUpload         func() // the staged file is not needed any more
	upload              string
	remoteIn, remoteOut string
	local               string // the output on the manager
	localID             string // its journal temp id
	kept                bool   // the output was handed on (a segment's, to its film)
	final               string // a file's: where the output goes
	size                int64  // bytes to stage (space checks)
	// measure (if set) runs on the host after a successful encode, before
	// the output is fetched (a quality sample's metric); state is the
	// task's own, from prepare to check.
	measure func(ctx context.Context) error
	state   any
}

func taskOf(it *queue.Item) task {
	switch p := it.Payload.(type) {
	case *segment:
		return (*segmentTask)(p)
	case *Job:
		return (*fileTask)(p)
	case *sampleItem:
		return (*sampleTask)(p)
	}
	panic(fmt.Sprintf("cluster: queue item of unknown kind %T", it.Payload))
}

// errLost is a speculative copy that another copy beat.
var errLost = errors.New("another copy finished first")

// runCopy runs one copy of an item on this host (with tail speculation the
// same item may run on two hosts: the first verified result wins, the
// other copy is stopped and discarded). Each copy fills its own
// FileResult; only the copy that ends the item reports it. It returns
// false when the worker must stop (host failed, run interrupted).
func (w *worker) runCopy(ctx context.Context, it *queue.Item) bool {
	t := taskOf(it)
	// Stop this copy as soon as it is no longer needed.
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lost := w.q.Lost(it, w.def.Name)
	win := w.watchWindow(cancel)
	defer win.done()
	go func() {
		select {
		case <-lost:
			cancel()
		case <-jctx.Done():
		}
	}()

	r := t.result(w.m)
	ji := t.info(w, it)
	start := time.Now()
	w.m.logf("job: %s: start %s", w.def.Name, t.label())
	claim := func() bool { return win.claim(func() bool { return w.q.Finish(it, w.def.Name) }) }
	w.busy.Add(1)
	err := w.runTask(jctx, it, t, r, &ji, claim)
	// A hardware variant whose driver failed: again on this host with its
	// next working variant, when it has one (variants.go).
	for err != nil && jctx.Err() == nil && !win.stopped() && w.variantFailed(jctx, it, t, &ji, &err) {
		ji.Attempt = w.q.Attempts(it) + 1
		err = w.runTask(jctx, it, t, r, &ji, claim)
	}
	w.busy.Add(-1)
	r.Elapsed = time.Since(start) - w.encodeWait(it) // a prefetched job's wait for the slot is not its time
	r.Host = w.def.Name
	switch {
	case err == nil:
		w.sawMedia()
		t.succeeded(w, it, ji, r)
	case ctx.Err() != nil:
		// Interrupted: the item stays pending and is reported as not run.
		w.q.HostFailedOn(it, w.def.Name)
		return false
	case win.stopped():
		w.windowStopped(it, t)
	case errors.Is(err, errLost) || jctx.Err() != nil:
		w.m.logf("host %s: stopped its copy of %s: another host finished it first or took it over", w.def.Name, t.label())
	case hosts.IsTransport(err) && w.q.Requeues(it)+1 >= maxHostFailures:
		// The item has now taken down hosts (or stalled) this many
		// times: the file, not the hosts, is the likely cause.
		w.hostFailed(err)
		if !w.q.JobFailed(it, w.def.Name, 0) {
			t.failed(w, it, ji, r, fmt.Sprintf("failed on hosts %d times, last: %s", maxHostFailures, oneLine(err)))
		}
		return false
	case hosts.IsTransport(err):
		w.m.logf("warning: host %s failed while running %s: %v; it goes back to the queue", w.def.Name, t.label(), err)
		w.hostFailed(err)
		w.q.HostFailedOn(it, w.def.Name)
		return false
	default:
		retry, keepGoing := w.jobFailed(it, err)
		if retry {
			w.m.logf("warning: host %s: %s: %v; retrying", w.def.Name, t.label(), err)
		} else {
			t.failed(w, it, ji, r, oneLine(err))
		}
		return keepGoing
	}
	return true
}

// runTask carries one copy of a task through staging, encoding, fetching
// and checking on this worker's host. It returns nil when the task reached
// its end in r (for a file: done, kept or changed); a
// *hosts.TransportError when the host failed (the item is requeued); any
// other error is a job failure.
func (w *worker) runTask(ctx context.Context, it *queue.Item, t task, r *FileResult, ji *JobInfo, claim func() bool) (err error) {
	h, tr, obs := w.def, w.t, w.m.opts.Observer
	wk, cleanup, err := t.prepare(ctx, w, r, ji)
	if err != nil {
		return err
	}
	if w.pipe == nil {
		obs.JobStarted(*ji) // a prefetching slot's job starts with its encode, below
	}
	// Whatever happens from here, no temporary file survives: each is
	// announced to the journal before it exists, and removed on every path
	// out (a dead host's are removed when it answers again, or next run).
	var remoteFiles []remoteTemp
	defer func() {
		w.removeRemote(remoteFiles)
		cleanup()
	}()

	if h.Type == hosts.Streaming {
		if wk.stage != nil {
			if wk.upload, err = wk.stage(ctx); err != nil {
				return err
			}
			if size, ok := fileSize(wk.upload); ok {
				wk.size = size
			}
		}
		for _, p := range []string{wk.remoteIn, wk.remoteOut} {
			id, err := w.m.temps.add(h.Name, p)
			if err != nil {
				return managerErr("journal", err)
			}
			remoteFiles = append(remoteFiles, remoteTemp{id, p})
		}
		if err := w.checkRemoteSpace(ctx, wk.size, t.label()); err != nil {
			return err
		}
		start := time.Now()
		if err := tr.Upload(ctx, wk.upload, wk.remoteIn); err != nil {
			return err
		}
		obs.Transfer(h.Name, true, wk.size, time.Since(start))
		if wk.afterUpload != nil {
			wk.afterUpload()
		}
	}

	// A prefetching streaming slot runs one ffmpeg at a time: this copy may
	// have uploaded its file while the previous one encoded.
	if err := w.acquireEncode(ctx, it); err != nil {
		return err
	}
	if w.pipe != nil {
		obs.JobStarted(*ji)
	}
	if w.m.opts.Verbose {
		w.m.logf("%s: run %s", h.Name, hostCommand(h, wk.argv))
	}
	encErr := w.encode(ctx, wk.encJob, wk.encProf, wk.argv, *ji, r)
	w.releaseEncode(ctx, encErr)
	if encErr != nil {
		return w.mountProblem(encErr, wk.remoteIn, wk.remoteOut)
	}
	if wk.measure != nil {
		if err := wk.measure(ctx); err != nil {
			return err
		}
	}
	if r.Outcome == Kept { // the threshold check stopped the encode
		if !claim() {
			return errLost
		}
		return nil
	}

	if h.Type == hosts.Streaming {
		// One result at a time comes back (and is checked) per prefetching
		// slot, while the slot's next job encodes.
		if err := w.acquireDownload(ctx); err != nil {
			return err
		}
		defer w.releaseDownload()
		// The output comes back beside the source: the manager's disk must
		// hold it (outputs are rarely larger than their source).
		if err := localSpace(ctx, filepath.Dir(wk.local), wk.size+64<<20, "the output of "+t.label()); err != nil {
			return err
		}
		start := time.Now()
		if err := tr.Download(ctx, wk.remoteOut, wk.local); err != nil {
			return err
		}
		if size, ok := fileSize(wk.local); ok {
			obs.Transfer(h.Name, false, size, time.Since(start))
		}
	}
	return t.check(ctx, w, wk, r, claim)
}

// checkRemoteSpace refuses to stage size bytes the working_dir cannot hold
// (the staged file plus an output as large, plus a margin).
func (w *worker) checkRemoteSpace(ctx context.Context, size int64, what string) error {
	free, err := w.t.FreeSpace(ctx, w.def.WorkingDir)
	if err != nil {
		return err
	}
	need := workdirNeed(size, 0)
	if free >= 0 && free < need {
		return fmt.Errorf("working_dir %s on %s has %s free, %s needed for %s",
			w.def.WorkingDir, w.def.Name, media.FormatBytes(free), media.FormatBytes(need), what)
	}
	return nil
}

// localSpace is the manager's one free-space check: dir must have need
// bytes free for what. A shortage is the manager's (managerErr), never a
// host's; an unknown free space lets the write find out.
func localSpace(ctx context.Context, dir string, need int64, what string) error {
	free, err := hosts.NewLocal("manager").FreeSpace(ctx, dir)
	if err != nil || free < 0 || free >= need {
		return nil
	}
	return managerErr("free space", fmt.Errorf("only %s free in %s, %s needed for %s",
		media.FormatBytes(free), dir, media.FormatBytes(need), what))
}

func fileSize(p string) (int64, bool) {
	st, err := os.Stat(p)
	if err != nil {
		return 0, false
	}
	return st.Size(), true
}
