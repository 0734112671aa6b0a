// Package queue is the shared work queue the host slots pull from. It owns
// ordering (largest work first), eligibility (which hosts may take which
// job), requeueing after a host failure, retry bookkeeping after a job
// failure, and knowing when a slot has nothing left to wait for. It is pure:
// no I/O, no knowledge of ffmpeg or SSH; items carry an opaque payload.
package queue

import (
	"context"
	"sort"
	"sync"
)

// Item is one unit of work.
type Item struct {
	ID       int
	Work     float64         // estimated cost (e.g. duration × pixels); larger goes first
	Eligible map[string]bool // hosts that may run it
	Payload  any

	Attempts int             // job failures so far (host failures do not count)
	FailedOn map[string]bool // hosts where it failed as a job (not tried there again while others remain)
	Requeues int             // host failures so far

	state state
	host  string // host running it, while running
}

type state int

const (
	pending state = iota
	running
	finished
)

// Queue is safe for concurrent use by every worker.
type Queue struct {
	mu      sync.Mutex
	cond    chan struct{} // closed and replaced on every change: a broadcast that works with select
	items   []*Item
	down    map[string]bool
	closed  bool
	pending int
	running int
}

// New returns an empty queue.
func New() *Queue {
	return &Queue{cond: make(chan struct{}), down: map[string]bool{}}
}

func (q *Queue) broadcast() {
	close(q.cond)
	q.cond = make(chan struct{})
}

// Push adds items. Items are served largest Work first; equal work keeps
// push order.
func (q *Queue) Push(items ...*Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, it := range items {
		if it.FailedOn == nil {
			it.FailedOn = map[string]bool{}
		}
		it.state = pending
		q.items = append(q.items, it)
		q.pending++
	}
	sort.SliceStable(q.items, func(i, j int) bool { return q.items[i].Work > q.items[j].Work })
	q.broadcast()
}

// canRun reports whether host may take it now: it is eligible there, and it
// has not already failed there unless every live eligible host has.
func (q *Queue) canRun(it *Item, host string) bool {
	if !it.Eligible[host] || q.down[host] {
		return false
	}
	if !it.FailedOn[host] {
		return true
	}
	for h := range it.Eligible {
		if !q.down[h] && !it.FailedOn[h] {
			return false // another live host has not tried it yet
		}
	}
	return true
}

// Next blocks until there is a job host can take, and marks it running on
// host. It returns nil when nothing left could ever go to host: no pending
// item it may take, and no running item that might come back to it. It also
// returns nil when ctx is done or the queue is closed.
func (q *Queue) Next(ctx context.Context, host string) *Item {
	for {
		q.mu.Lock()
		if q.closed || q.down[host] {
			q.mu.Unlock()
			return nil
		}
		wait := false
		for _, it := range q.items {
			switch it.state {
			case pending:
				if q.canRun(it, host) {
					it.state, it.host = running, host
					q.pending--
					q.running++
					q.mu.Unlock()
					return it
				}
			case running:
				if it.Eligible[host] {
					wait = true // it may fail and be requeued to us
				}
			}
		}
		ch := q.cond
		q.mu.Unlock()
		if !wait {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		}
	}
}

// Done marks a running item finished (succeeded, or failed for good).
func (q *Queue) Done(it *Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it.state == running {
		q.running--
	}
	it.state, it.host = finished, ""
	q.broadcast()
}

// HostFailed puts a running item back after its host failed (connection
// lost, host down, disk full…). This does not count as an attempt.
func (q *Queue) HostFailed(it *Item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if it.state == running {
		q.running--
		q.pending++
	}
	it.state, it.host = pending, ""
	it.Requeues++
	q.broadcast()
}

// JobFailed records a job failure of it on host. If it may be tried again
// (attempts < maxAttempts and a live eligible host has not failed it yet, or
// only failing hosts remain but attempts allow), it goes back to the queue
// and JobFailed returns true; otherwise the item is finished and it returns
// false.
func (q *Queue) JobFailed(it *Item, host string, maxAttempts int) (retry bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	it.Attempts++
	it.FailedOn[host] = true
	if it.state == running {
		q.running--
	}
	retry = it.Attempts < maxAttempts && q.anyLive(it)
	if retry {
		it.state, it.host = pending, ""
		q.pending++
	} else {
		it.state, it.host = finished, ""
	}
	q.broadcast()
	return retry
}

func (q *Queue) anyLive(it *Item) bool {
	for h := range it.Eligible {
		if !q.down[h] {
			return true
		}
	}
	return false
}

// SetDown marks a host down (true) or back up (false). Slots of a down host
// get nil from Next.
func (q *Queue) SetDown(host string, down bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.down[host] = down
	q.broadcast()
}

// Close wakes every waiting worker and makes Next return nil (cancellation).
func (q *Queue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.broadcast()
}

// Pending returns the items that never finished (no host could take them),
// in queue order.
func (q *Queue) Pending() []*Item {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*Item
	for _, it := range q.items {
		if it.state != finished {
			out = append(out, it)
		}
	}
	return out
}

// Counts returns how many items are pending and running.
func (q *Queue) Counts() (pendingN, runningN int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending, q.running
}
