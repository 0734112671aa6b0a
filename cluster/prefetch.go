package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"clustertx/hosts"
	"clustertx/media"
	"clustertx/queue"
)

// Pipelined slots and streaming prefetch. A slot would otherwise leave its
// encoder idle while it checks a result (verification, replacing the
// source: an ffprobe and a few renames, about 60 ms a job on a fast
// machine) and, on a streaming host, while it uploads a file and
// downloads the result. So each slot pipelines up to three jobs: on a
// streaming host one uploading (or waiting with its file uploaded), one
// encoding, one downloading and verifying its output; on the others one
// encoding and up to two being checked. The encode token (one per slot)
// keeps it to one ffmpeg per slot; the download token to one streaming
// result on its way back.
//
// While a job encodes, a streaming slot asks the queue (queue.Prefetch) for
// the item it will take next and starts it when the working_dir has room for
// it; the job uploads its file and waits for the token. If the queue has
// nothing for the slot yet, the slot takes work as usual (a blocking
// queue.Next) once the token is free.
//
// Nothing-is-lost rules are those of any job: each job announces and
// removes its own temp files (runJob). When a job stops the slot (host
// failure, interruption), the slot takes no more work, gives back the jobs
// that have not started to encode (queue.Release: they did not fail, so it
// is no requeue), stops them (their uploads are cancelled and their remote
// files removed, or left to the journal when the host is gone) and waits
// for every job in flight before it returns.

// maxInFlight bounds the jobs a prefetching slot holds at once: uploading,
// encoding, downloading.
const maxInFlight = 3

// prefetchRecheck is how often an encoding slot whose queue.Prefetch gave
// nothing asks again (predictions change as time passes).
const prefetchRecheck = time.Second

// workdirMargin is the room left free in a working_dir beyond the files a
// slot stages there.
const workdirMargin = 64 << 20

// workdirNeed is the room a working_dir needs to stage a source of size
// bytes: the source and an output as large, the output still to come of
// a job encoding there (at most about its source's size, encoding; 0:
// none) and the margin.
func workdirNeed(size, encoding int64) int64 { return 2*size + encoding + workdirMargin }

// stage is where a job of a prefetching slot is in its pipeline.
type stage int

const (
	stageUpload stage = iota // uploading, or uploaded and waiting for the encode token
	stageEncode              // holds the encode token
	stageReturn              // encoded: downloading, verifying, replacing
	// stageSettling: its encode failed. The slot takes no new work until
	// the job has settled: what the failure means is decided as it does
	// (a mounted host that cannot reach the media leaves the run after a
	// few such failures in a row, a dead host stops the slot), and a job
	// started meanwhile would meet the same failure once more.
	stageSettling
)

// pipeline is a prefetching slot's state.
type pipeline struct {
	enc  chan struct{} // encode token: held from the start of a job's ffmpeg to its end
	dl   chan struct{} // download token: held while a job downloads and verifies its output
	wake chan struct{} // cap 1: a job moved; the slot looks again

	q         *queue.Queue
	host      string
	interrupt context.CancelFunc // ends the slot's blocking Next or load wait

	mu     sync.Mutex
	jobs   map[*queue.Item]*piped
	holder *queue.Item // job holding the encode token
	failed bool        // the slot takes no more work
}

type piped struct {
	stage    stage
	cancel   context.CancelFunc // stops the job
	released bool               // given back to the queue by stopLocked
	waited   time.Duration      // time spent waiting for the encode token
}

// stopLocked makes the slot take no more work, and gives back to the queue
// and stops the jobs that have not started to encode (they did nothing
// wrong: no requeue is counted). Jobs encoding or returning their result
// finish, or fail, on their own. p.mu is held.
func (p *pipeline) stopLocked() {
	p.failed = true
	p.interrupt()
	for it, j := range p.jobs {
		if j.stage == stageUpload && !j.released {
			j.released = true
			p.q.Release(it, p.host)
			j.cancel()
		}
	}
}

func (p *pipeline) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// pipelining reports whether this worker's slot pipelines its jobs: every
// host, unless Options.NoPrefetch. On a mounted or local host the next job
// starts its encode while the last one's output is verified and replaces
// its source (per-job costs that would otherwise leave the encoder idle);
// a streaming host also stages its next file while one encodes
// (prefetching).
func (w *worker) pipelining() bool { return !w.m.opts.NoPrefetch }

// prefetching reports whether this worker's slot stages its next job
// while one encodes (queue.Prefetch): pipelining streaming hosts, whose
// next file needs an upload.
func (w *worker) prefetching() bool {
	return w.def.Type == hosts.Streaming && w.pipelining()
}

// acquireEncode waits until this slot may start an encode: on a
// prefetching slot, until the previous job's ffmpeg has ended (its output
// may still be on its way back). The job that gets the token must call
// releaseEncode when its ffmpeg ends, on every path. A copy handed out by
// queue.Prefetch is begun here (queue.Begin), so its time counts from its
// encode. On a slot that does not prefetch it returns nil at once. It fails
// only when ctx ends: the copy was lost, the slot stopped, the run was
// interrupted.
func (w *worker) acquireEncode(ctx context.Context, it *queue.Item) error {
	p := w.pipe
	if p == nil {
		return nil
	}
	waitStart := time.Now()
	select {
	case p.enc <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("host %s: waiting to encode: %w", w.def.Name, ctx.Err())
	}
	p.mu.Lock()
	// Checked under the lock: the slot stops its waiting jobs under it too,
	// so a job either starts its encode or is stopped, never both.
	if err := ctx.Err(); err != nil {
		p.mu.Unlock()
		<-p.enc
		return fmt.Errorf("host %s: waiting to encode: %w", w.def.Name, err)
	}
	p.holder = it
	if j := p.jobs[it]; j != nil {
		j.stage, j.waited = stageEncode, time.Since(waitStart)
	}
	p.mu.Unlock()
	w.q.Begin(it, w.def.Name)
	p.poke()
	return nil
}

// releaseEncode gives back the encode token taken by acquireEncode; ctx
// is the job's and err what its encode returned. A transport error
// (connection lost, stalled encode) while ctx is live is a host failure,
// as runItem treats it: the host is marked down at once and the slot
// stops, so that the jobs waiting for the token go back to the queue
// instead of meeting the failure one after the other. A no-op on a slot
// that does not prefetch.
func (w *worker) releaseEncode(ctx context.Context, err error) {
	p := w.pipe
	if p == nil {
		return
	}
	hostFailed := ctx.Err() == nil && hosts.IsTransport(err)
	if hostFailed {
		w.hostFailed(err) // before the jobs go back: no slot of this host may take them again
	}
	p.mu.Lock()
	if j := p.jobs[p.holder]; j != nil {
		j.stage = stageReturn
		if err != nil {
			j.stage = stageSettling
		}
	}
	p.holder = nil
	if hostFailed {
		p.stopLocked()
	}
	p.mu.Unlock()
	<-p.enc
	p.poke()
}

// acquireDownload waits until no other job of this prefetching slot is
// downloading or verifying its output, so that the first result back is
// the first one done; releaseDownload ends the turn. Both are no-ops on a
// slot that does not prefetch.
func (w *worker) acquireDownload(ctx context.Context) error {
	if w.pipe == nil {
		return nil
	}
	select {
	case w.pipe.dl <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("host %s: waiting to download: %w", w.def.Name, ctx.Err())
	}
}

func (w *worker) releaseDownload() {
	if w.pipe != nil {
		<-w.pipe.dl
	}
}

// encodeWait is how long it waited for this slot's encode token (zero on
// a slot that does not prefetch): not time spent on it.
func (w *worker) encodeWait(it *queue.Item) time.Duration {
	if w.pipe == nil {
		return 0
	}
	w.pipe.mu.Lock()
	defer w.pipe.mu.Unlock()
	if j := w.pipe.jobs[it]; j != nil {
		return j.waited
	}
	return 0
}

// prefetchLoop is loop for a pipelining slot: see the comment at the top
// of this file. Only a streaming slot prefetches; on the other hosts the
// loop only lets the next job encode while the last one is checked.
func (w *worker) prefetchLoop(ctx context.Context, results []*FileResult) {
	host := w.def.Name
	nctx, interrupt := context.WithCancel(ctx)
	defer interrupt()
	p := &pipeline{enc: make(chan struct{}, 1), dl: make(chan struct{}, 1), wake: make(chan struct{}, 1),
		q: w.q, host: host, interrupt: interrupt, jobs: map[*queue.Item]*piped{}}
	w.pipe = p
	var wg sync.WaitGroup
	start := func(it *queue.Item) {
		jctx, cancel := context.WithCancel(ctx)
		p.mu.Lock()
		p.jobs[it] = &piped{cancel: cancel}
		p.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := w.runCopy(jctx, it)
			cancel()
			p.mu.Lock()
			delete(p.jobs, it)
			if !ok {
				p.stopLocked()
			}
			p.mu.Unlock()
			p.poke()
		}()
	}
	recheck := time.NewTicker(prefetchRecheck)
	defer recheck.Stop()
	var full *queue.Item // the encoding job during which the working_dir had no room for another
	cramped := false     // no room for the next job until the jobs in flight are done
	for ctx.Err() == nil {
		p.mu.Lock()
		failed, holder, n, waiting, settling := p.failed, p.holder, len(p.jobs), 0, 0
		for _, j := range p.jobs {
			switch j.stage {
			case stageUpload:
				waiting++
			case stageSettling:
				settling++
			}
		}
		p.mu.Unlock()
		if failed {
			break
		}
		if n == 0 {
			cramped = false
		}
		if holder == nil {
			full = nil
		}
		if waiting == 0 && settling == 0 && n < maxInFlight && !cramped {
			if holder == nil {
				// Free to encode and nobody waits to: take work as any slot does.
				if !w.waitForLoad(nctx) {
					break
				}
				it := w.q.Next(nctx, host)
				if it == nil {
					break
				}
				// Results still on their way back hold room in the
				// working_dir: without room for this job too, it waits
				// for them (rather than fail its space check).
				if n > 0 && w.def.Type == hosts.Streaming && !w.roomFor(ctx, it, nil) {
					w.q.Release(it, host)
					cramped = true
					continue
				}
				start(it)
				continue
			}
			if holder != full && w.prefetching() {
				if it := w.q.Prefetch(host); it != nil {
					if pipelined(it) && w.roomFor(ctx, it, holder) && w.underMaxLoad(ctx) {
						w.m.logf("job: %s: prefetch %s while %s encodes", host, jobPath(it), jobPath(holder))
						start(it)
						continue
					}
					// Not now: after this encode, the slot takes work as usual.
					w.q.Release(it, host)
					full = holder
				}
			}
		}
		select {
		case <-p.wake:
		case <-recheck.C:
		case <-ctx.Done():
		}
	}
	p.mu.Lock()
	p.stopLocked()
	p.mu.Unlock()
	wg.Wait()
}

// roomFor reports whether the working_dir has room for next while the
// encoding job (nil: none) still writes its output: next's source and an
// output as large, the encoding job's output still to come (at most about
// its source's size) and a margin. What the slot already staged there is
// already counted by the free space.
func (w *worker) roomFor(ctx context.Context, next, encoding *queue.Item) bool {
	free, err := w.t.FreeSpace(ctx, w.def.WorkingDir)
	if err != nil {
		return false // the encoding job meets the problem, if it is one
	}
	need := workdirNeed(itemSize(next), itemSize(encoding))
	if free >= 0 && free < need {
		w.m.logf("job: %s: no prefetch: working_dir %s has %s free, %s needed", w.def.Name, w.def.WorkingDir, media.FormatBytes(free), media.FormatBytes(need))
		return false
	}
	return true
}

// underMaxLoad reports whether a host with max_load may take another job
// now (waitForLoad's test, without waiting): a busy host's slot takes its
// next job the usual way, after its encode.
func (w *worker) underMaxLoad(ctx context.Context) bool {
	if w.def.MaxLoad <= 0 {
		return true
	}
	load, err := hosts.Load(ctx, w.t)
	if err != nil {
		return false
	}
	if w.ncpu == 0 {
		w.ncpu = hosts.Cores(ctx, w.t)
	}
	own := float64(w.busy.Load()) * max(1, float64(w.ncpu)/float64(w.def.SlotCount()))
	return load-own < w.def.MaxLoad
}

// pipelined reports whether it is a job that takes the slot's encode
// token (acquireEncode), so that it may be prefetched: whole files (runJob)
// and split mode's segments (runSegment). Anything else runs on a
// prefetching slot one at a time.
func pipelined(it *queue.Item) bool {
	switch it.Payload.(type) {
	case *Job, *segment, *sampleItem:
		return true
	}
	return false
}

// itemSize is the size of an item's source file (0 when unknown or nil).
func itemSize(it *queue.Item) int64 {
	if it == nil {
		return 0
	}
	switch pl := it.Payload.(type) {
	case *Job:
		if pl.Info != nil {
			return pl.Info.Size
		}
	case *segment:
		// Its share of the source (the extract holds its packets).
		if in := pl.f.job.Info; in != nil && in.Duration > 0 {
			return int64(float64(in.Size) * min(1, pl.seg.Duration/in.Duration))
		}
	case *sampleItem:
		if in := pl.rs.job.Info; in != nil && in.Duration > 0 {
			return int64(float64(in.Size) * min(1, pl.rs.samples[pl.i].Duration/in.Duration))
		}
	}
	return 0
}

func jobPath(it *queue.Item) string {
	switch pl := it.Payload.(type) {
	case *Job:
		return pl.Item.Path
	case *segment:
		return fmt.Sprintf("segment %d of %s", pl.seg.Index+1, pl.f.job.Item.Path)
	case *sampleItem:
		return searchLabel(pl)
	}
	return fmt.Sprint(it.ID)
}
