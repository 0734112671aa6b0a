package queue

// run is one running copy of an item.
type run struct {
	it       *Item
	h        *hostState
	start    float64 // seconds since t0 (for a queued run: when it was handed out, until Begin)
	progress float64 // 0..1, from Progress
	queued   bool    // handed out by Prefetch; waits for a slot of h until Begin
	lane     uint32  // the item's lane on h when handed out (queued: updated by LanesChanged), in Queue.laneTab; 0: Lane{}
	lost     chan struct{}
}

func (r *run) drop() {
	if r.lost != nil {
		select {
		case <-r.lost:
		default:
			close(r.lost)
		}
	}
}

// start marks it running on h (first copy); queued: a copy from Prefetch.
func (q *Queue) start(it *Item, h *hostState, now float64, queued bool) {
	it.state, it.host = running, h.name
	q.pendingN--
	q.runningN++
	q.pendingWork -= it.Work
	if !it.special {
		it.cls.pendingN--
	}
	q.addRun(it, h, now, queued)
}

func (q *Queue) addRun(it *Item, h *hostState, now float64, queued bool) *run {
	r := &run{it: it, h: h, start: now, queued: queued}
	if q.laneFn != nil {
		r.lane = q.laneRef(q.lane(it, h))
	}
	it.runs = append(it.runs, r)
	h.runs = append(h.runs, r)
	q.sawBusy(h, 0)
	return r
}

// sawBusy notes that h has its active runs, plus extra slots asking, busy
// at once (the slot count inferred when SetSlots was not called).
func (q *Queue) sawBusy(h *hostState, extra int) {
	if n := h.active() + h.waiting + extra; n > h.seen {
		h.seen = n
		if h.slots == 0 {
			q.updateSpeeds()
		}
	}
}

// removeRun removes r from its host and item.
func (q *Queue) removeRun(r *run) {
	h := r.h
	for i, x := range h.runs {
		if x == r {
			h.runs[i] = h.runs[len(h.runs)-1]
			h.runs[len(h.runs)-1] = nil
			h.runs = h.runs[:len(h.runs)-1]
			break
		}
	}
	it := r.it
	for i, x := range it.runs {
		if x == r {
			it.runs = append(it.runs[:i], it.runs[i+1:]...)
			break
		}
	}
	if len(it.runs) > 0 {
		it.host = it.runs[0].h.name
	}
}

func (it *Item) runOn(host string) *run {
	for _, r := range it.runs {
		if r.h.name == host {
			return r
		}
	}
	return nil
}

// Progress records how far (0..1) the copy of it on host is; the queue
// then predicts its remaining time from its progress rather than its speed.
func (q *Queue) Progress(it *Item, host string, fraction float64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if r := it.runOn(host); r != nil {
		r.progress = fraction
		if q.opts.Speculate {
			q.broadcast()
		}
	}
}

// Lost returns a channel closed when the copy of it on host is no longer
// needed: another copy won, or the item was finished or requeued without
// it. The manager stops the job and cleans up when it closes. If host runs
// no copy of it, the channel is already closed.
func (q *Queue) Lost(it *Item, host string) <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := it.runOn(host)
	if r == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	if r.lost == nil {
		r.lost = make(chan struct{})
	}
	return r.lost
}

// finish ends it for good; winner (may be nil) is the copy that finished it.
func (q *Queue) finish(it *Item, winner *run) {
	now := q.clock()
	if winner != nil && !winner.queued { // a copy that never began says nothing of its host's speed
		if el := now - winner.start; el > 0 {
			q.observeKey(winner.h, winner.key(), it.Work/el)
		}
	}
	switch it.state {
	case running:
		q.runningN--
	case pending:
		q.pendingN--
		q.pendingWork -= it.Work
		if !it.special {
			it.cls.pendingN--
		}
	case finished:
		return
	}
	it.cls.live--
	for _, r := range append([]*run(nil), it.runs...) {
		q.removeRun(r)
		if r != winner {
			r.drop()
		}
	}
	it.state, it.host = finished, ""
	q.broadcast()
}

// Finish records that the copy of it on host succeeded. The first copy to
// finish wins: Finish returns true and the item is done (any other copy is
// told through Lost). A copy that lost, or that host no longer runs, gets
// false and must discard its output.
func (q *Queue) Finish(it *Item, host string) (winner bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it.state != running {
		return false
	}
	r := it.runOn(host)
	if r == nil {
		return false
	}
	q.finish(it, r)
	return true
}

// Done marks an item finished (succeeded, or failed for good), whatever
// copies run. With one copy it is that copy's success (and a speed
// sample); callers that may run copies use Finish.
func (q *Queue) Done(it *Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var w *run
	if len(it.runs) == 1 {
		w = it.runs[0]
	}
	q.finish(it, w)
}

// Cancel ends an item that is no longer wanted (e.g. the other segments of
// a split file that failed), pending or running: running copies are told
// through Lost. Unlike Done it takes no speed sample.
func (q *Queue) Cancel(it *Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.finish(it, nil)
}

// HostFailed puts a running item back after its host failed (connection
// lost, host down, disk full…). This does not count as an attempt. It acts
// on the item's first copy; callers that may run copies use HostFailedOn.
func (q *Queue) HostFailed(it *Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it.state != running || len(it.runs) == 0 {
		return
	}
	q.hostFailed(it, it.runs[0])
}

// HostFailedOn is HostFailed for the copy of it on host: the copy goes
// away; the item goes back to the queue only if no other copy runs.
func (q *Queue) HostFailedOn(it *Item, host string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if r := it.runOn(host); r != nil && it.state == running {
		q.hostFailed(it, r)
	}
}

func (q *Queue) hostFailed(it *Item, r *run) {
	q.removeRun(r)
	r.drop()
	if len(it.runs) == 0 {
		it.state, it.host = pending, ""
		it.Requeues++
		q.runningN--
		q.reinsert(it)
	}
	q.broadcast()
}

// JobFailed records a job failure of it on host. If another copy of it is
// still running, that copy carries on and JobFailed returns true. Otherwise,
// if it may be tried again (attempts < maxAttempts and a live eligible host
// remains; hosts that failed it come last), it goes back to the queue and
// JobFailed returns true; else the item is finished and it returns false.
// On an item already finished (a copy that lost) it does nothing and
// returns false.
func (q *Queue) JobFailed(it *Item, host string, maxAttempts int) (retry bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.jobFailed(it, host, maxAttempts, true)
}

// Refused is JobFailed for a failure that says nothing about the item:
// host could not run it at all (a mounted host that cannot reach the file).
// The attempt is not counted while a live eligible host that has not
// failed the item remains to try it; host comes last for it, as after
// JobFailed. Once no such host remains it counts like JobFailed, so an item
// no host can run still ends.
func (q *Queue) Refused(it *Item, host string, maxAttempts int) (retry bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	untried := false
	for name, ok := range it.Eligible {
		if g := q.hosts[name]; ok && name != host && g != nil && !g.down && !it.FailedOn[name] {
			untried = true
			break
		}
	}
	return q.jobFailed(it, host, maxAttempts, !untried)
}

func (q *Queue) jobFailed(it *Item, host string, maxAttempts int, count bool) (retry bool) {
	if it.state == finished {
		return false
	}
	if count {
		it.Attempts++
	}
	if it.FailedOn == nil {
		it.FailedOn = map[string]bool{}
	}
	it.FailedOn[host] = true
	if r := it.runOn(host); r != nil {
		q.removeRun(r)
		r.drop()
	}
	if it.state == running && len(it.runs) > 0 {
		q.broadcast()
		return true // the other copy carries on
	}
	retry = (!count || it.Attempts < maxAttempts) && q.anyLive(it)
	if !retry {
		q.finish(it, nil)
		return false
	}
	if it.state == running {
		it.state, it.host = pending, ""
		q.runningN--
		it.special = true
		q.reinsert(it)
	} else if !it.special { // pending in its class: move it to the special list
		it.special = true
		it.cls.pendingN--
		q.special = append(q.special, it)
	}
	q.broadcast()
	return true
}

// Attempts returns how many times it failed as a job so far. The count
// changes under the queue's lock when a copy fails, possibly while another
// copy runs (speculation): a worker reads it here, not from the field.
func (q *Queue) Attempts(it *Item) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return it.Attempts
}

// Requeues returns how many times it went back to the queue after a host
// failure (see Attempts).
func (q *Queue) Requeues(it *Item) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return it.Requeues
}
