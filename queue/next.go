package queue

import (
	"context"
	"math"
	"time"
)

// tryNext is Next without blocking.
func (q *Queue) tryNext(host string) (it *Item, wait bool) {
	if q.closed {
		return nil, false
	}
	h := q.host(host)
	if h.down {
		return nil, false
	}
	q.sawBusy(h, 1)
	now := q.clock()
	q.refreshWindows(now)
	if h.shut {
		return nil, q.shutWait(h)
	}
	it, wait, deferred := q.pick(h, now, now, false)
	if it != nil {
		if q.nearEnd(h, now) {
			if s := q.shortest(h, h.limit-now); s != nil {
				it = s
			}
		}
		q.start(it, h, now, false)
		return it, true
	}
	if wait {
		if it := q.revoke(h, now); it != nil {
			return it, true
		}
	}
	if wait && !deferred && q.opts.Speculate && !q.feeding {
		if it := q.speculate(h, now); it != nil {
			return it, true
		}
	}
	if wait && !math.IsInf(h.limit, 1) && q.shortest(h, h.limit-now) == nil {
		wait = q.shutWait(h) // nothing it may run fits what is left of its window
	}
	return nil, wait
}

// TryNext is Next without blocking, for event-driven callers such as the
// simulator: it returns an item (marked running on host), or nil and
// whether something may still come to host later (call again after the
// next change).
func (q *Queue) TryNext(host string) (it *Item, wait bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.tryNext(host)
}

// Next blocks until there is a job host can take, and marks it running on
// host. It returns nil when nothing left could ever go to host: no pending
// item it may take, and no running item that might come back to it. It also
// returns nil when ctx is done, the queue is closed or host is down. With
// Options.Speculate the item may be a second copy of a running item: see
// Finish and Lost.
func (q *Queue) Next(ctx context.Context, host string) *Item {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		it, wait := q.tryNext(host)
		if it != nil || !wait {
			q.mu.Unlock()
			return it
		}
		h := q.hosts[host]
		h.waiting++
		q.waiters++
		ch := q.cond
		q.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(q.opts.Recheck)
		} else {
			timer.Reset(q.opts.Recheck)
		}
		var done bool
		select {
		case <-ctx.Done():
			done = true
		case <-ch:
		case <-timer.C:
		}
		q.mu.Lock()
		h.waiting--
		q.waiters--
		q.mu.Unlock()
		if done {
			return nil
		}
	}
}
