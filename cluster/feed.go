package cluster

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"time"

	"clustertx/hosts"
	"clustertx/internal/fileid"
	"clustertx/media"
	"clustertx/queue"
)

// This file feeds the queue while the run goes: each file is planned as
// soon as its probe ends and its jobs are pushed, so the hosts start on the
// first files while the rest are still probed (a library of thousands of
// files on a NAS takes minutes to probe; an idle cluster meanwhile is
// wasted). Files are probed largest first, so what the hosts see first is
// what the scheduler would hand out first anyway; on a cold start a few of
// the smallest go before them, for the hosts whose speed is a guess.

// probed is one item's probe (or the journal's decision), as it arrives.
type probed struct {
	i int // index in the run's items
	r probeResult
}

type probeResult struct {
	media.Result
	src    fileid.ID // the version probed
	skip   Outcome   // set when the journal decided the item's outcome
	reason string
	finish *finishStep // an interrupted replace to finish (with skip)
}

// calibFirst is how many probed files the calibration encodes wait for
// (or all, when fewer): enough to see which profiles the batch mostly
// uses, without waiting for the whole library's probes.
const calibFirst = 8

// shortFirstWait bounds how long the other probes wait for those of the
// smallest files (probeStream).
const shortFirstWait = 2 * time.Second

// probeStream asks the journal about each item, then probes the others,
// ProbeWorkers at a time: the shortFirst smallest files, and once they are
// done the others, largest first; or all in the order given when inOrder.
// Every item arrives once on the channel, which is then closed. The
// calibration encodes (Options.Calibrate) get the first calibFirst files.
func (m *manager) probeStream(ctx context.Context, items []WorkItem, inOrder bool, shortFirst int) <-chan probed {
	out := make(chan probed, len(items))
	var todo []int
	srcs := make([]fileid.ID, len(items))
	for i, it := range items {
		// The version as it is now: what the journal is asked about, and
		// the version that is probed (taken before ffprobe reads the file,
		// so a change from here on is seen at the points of no return).
		now, err := fileid.Of(it.Path)
		if o, reason, ok, fin := m.journalSkip(it, now, err); ok {
			out <- probed{i, probeResult{skip: o, reason: reason, finish: fin}}
			continue
		}
		todo = append(todo, i)
		srcs[i] = now
	}
	if !inOrder {
		sort.SliceStable(todo, func(a, b int) bool { return srcs[todo[a]].Size > srcs[todo[b]].Size })
		// The smallest files go first, one per slot whose host's speed is
		// a guess: such a host starts on a short job, to learn its speed
		// before it commits to a long one (queue.Options.ShortFirst). The
		// others are probed once these are queued: probed largest first
		// only (or alongside), the queue held nothing but long files when
		// the hosts first asked, and they took them.
		shortFirst = min(shortFirst, len(todo))
		small := slices.Clone(todo[len(todo)-shortFirst:])
		slices.Reverse(small)
		todo = append(small, todo[:len(todo)-shortFirst]...)
	} else {
		shortFirst = 0
	}
	paths := make([]string, len(todo))
	for k, i := range todo {
		paths[k] = items[i].Path
	}
	calib := m.calib
	var mu sync.Mutex
	var got []probeResult
	n := 0
	if calib != nil {
		got = make([]probeResult, len(items))
	}
	toCalib := func() {
		calib.setProbes(items, append([]probeResult(nil), got...))
		calib = nil
	}
	deliver := func(k int, r media.Result) { // the probe of todo[k]
		pr := probeResult{Result: r, src: srcs[todo[k]]}
		out <- probed{todo[k], pr}
		mu.Lock()
		defer mu.Unlock()
		if calib != nil {
			got[todo[k]] = pr
			if n++; n >= calibFirst {
				toCalib()
			}
		}
	}
	go func() {
		defer close(out)
		first := make(chan struct{})
		go func() {
			defer close(first)
			m.prober.ProbeEach(ctx, paths[:shortFirst], m.opts.ProbeWorkers, deliver)
		}()
		// A probe that hangs (a sleeping disk, a stuck share) holds back
		// the others only for a while; then both sets run, up to twice
		// ProbeWorkers at once until the first ends.
		select {
		case <-first:
		case <-time.After(shortFirstWait):
		}
		m.prober.ProbeEach(ctx, paths[shortFirst:], m.opts.ProbeWorkers, func(k int, r media.Result) { deliver(shortFirst+k, r) })
		<-first
		mu.Lock()
		defer mu.Unlock()
		if calib != nil {
			toCalib()
		}
	}()
	return out
}

// collect waits for every item's probe.
func collect(c <-chan probed, n int) []probeResult {
	out := make([]probeResult, n)
	for p := range c {
		out[p.i] = p.r
	}
	return out
}

// feeder plans the run's files as their probes arrive and pushes their jobs
// to the queue, in batches: at once while the queue runs low, else when
// the batch reaches an eighth of what was pushed (so pushing stays linear
// in a large library) or a second has passed.
type feeder struct {
	m       *manager
	q       *queue.Queue
	results []*FileResult
	defs    map[string][]*hosts.Def // each cluster's hosts
	all     []*hosts.Def            // every host of the run
	runs    map[string]*hostRun
	warned  bool // that no host is up
	low     int  // pending items below which a batch goes at once: 2 × the run's slots

	batch    []*queue.Item
	since    time.Time // the oldest item of the batch
	pushed   int
	films    []*film // split films pushed
	searches sync.WaitGroup
	sem      chan struct{} // quality searches being prepared (they probe their film)

	mu     sync.Mutex // the counts below (searches add to them)
	nfiles int
	secs   float64
	lanes  bool // q.SetLanes was called
}

// feed plans every item of the stream, pushes the jobs and waits for the
// quality searches it started to queue their first round. inOrder keeps
// the items' order in the queue (FIFO, pytranscoder's pulling).
func (f *feeder) feed(ctx context.Context, items []WorkItem, in <-chan probed, inOrder bool) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	held := map[int]probeResult{}
	next := 0
	for in != nil {
		select {
		case p, ok := <-in:
			if !ok {
				in = nil
				break
			}
			if !inOrder {
				f.one(ctx, p.i, items[p.i], p.r)
				break
			}
			held[p.i] = p.r
			for {
				r, ok := held[next]
				if !ok {
					break
				}
				delete(held, next)
				f.one(ctx, next, items[next], r)
				next++
			}
		case <-tick.C:
		}
		f.flush(in == nil)
	}
	f.searches.Wait()
	f.flush(true)
}

// one plans item i and queues its jobs, or records the outcome planning
// decided.
func (f *feeder) one(ctx context.Context, i int, it WorkItem, pr probeResult) {
	m := f.m
	j := m.planJob(ctx, i, it, pr, f.defs[it.Cluster])
	if j.Outcome == "" && ctx.Err() != nil {
		j.Outcome, j.Reason = NotRun, "interrupted"
	}
	m.finishInterrupted(j)
	f.results[i] = m.resultOf(j)
	if j.Outcome != "" {
		if (j.Outcome == Skipped || j.Outcome == Failed) && !j.fromJournal {
			m.record(j, f.results[i])
		}
		return
	}
	f.useLanes()
	switch {
	case j.Quality != nil:
		// Its first round's samples go to the queue; the file follows
		// when the search has chosen its level (quality_run.go). Preparing
		// a search probes the film's packets: several at once, beside the
		// feeding.
		f.searches.Add(1)
		go func() {
			defer f.searches.Done()
			f.sem <- struct{}{}
			defer func() { <-f.sem }()
			f.startSearch(ctx, i, j)
		}()
	case j.Split != nil:
		fi := m.filmItems(ctx, f.q, i, j, f.results)
		f.films = append(f.films, fi[0].Payload.(*segment).f)
		f.add(j, fi...)
	default:
		el := map[string]bool{}
		for _, h := range j.Eligible {
			el[h.Name] = true
		}
		f.add(j, &queue.Item{ID: i, Work: j.Work, Eligible: el, Payload: j})
	}
}

// startSearch prepares and starts job j's quality search and pushes its
// first round; a search that cannot start ends the file here.
func (f *feeder) startSearch(ctx context.Context, i int, j *Job) {
	m, r := f.m, f.results[i]
	sr, err := m.newSearch(ctx, j, j.Quality)
	var items []*queue.Item
	if err == nil {
		items, err = m.startSearch(ctx, f.q, i, j, f.results, sr)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		r.Outcome, r.Reason = NotRun, "interrupted"
	case errors.As(err, new(*unpinnedError)):
		r.Outcome, r.Reason = NotRun, "quality: "+oneLine(err)
	case err != nil:
		r.Outcome, r.Reason = Failed, "quality: "+oneLine(err)
		m.record(j, r)
	default:
		f.mu.Lock()
		f.nfiles++
		f.secs += j.Info.Duration
		files, secs := f.nfiles, f.secs
		f.mu.Unlock()
		m.opts.Observer.Planned(files, secs)
		f.q.Push(items...)
	}
}

// add puts job j's items in the batch and counts the file.
func (f *feeder) add(j *Job, items ...*queue.Item) {
	if !f.warned && !anyUp(f.runs, f.all) {
		f.m.logf("warning: no host is reachable; waiting up to %s for one to come up", f.m.opts.HostWait)
	}
	f.warned = true
	if len(f.batch) == 0 {
		f.since = time.Now()
	}
	f.batch = append(f.batch, items...)
	f.mu.Lock()
	f.nfiles++
	f.secs += j.Info.Duration
	f.mu.Unlock()
}

// flush pushes the batch when it is due (or now, with force), after telling
// the observer the new totals.
func (f *feeder) flush(force bool) {
	if len(f.batch) == 0 {
		return
	}
	if !force && len(f.batch) < max(1, f.pushed/8) && time.Since(f.since) < time.Second {
		if pending, _ := f.q.Counts(); pending >= f.low {
			return
		}
	}
	f.mu.Lock()
	files, secs := f.nfiles, f.secs
	f.mu.Unlock()
	f.m.opts.Observer.Planned(files, secs)
	f.q.Push(f.batch...)
	f.pushed += len(f.batch)
	f.batch = nil
}

// useLanes gives the queue the manager's lanes once a planned profile has
// encoder variants (hosts with sessions: caps have them from the start).
func (f *feeder) useLanes() {
	f.m.profMu.Lock()
	variants := len(f.m.planProfiles) > 0
	f.m.profMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if variants && !f.lanes {
		f.lanes = true
		f.q.SetLanes(f.m.lane)
	}
}
