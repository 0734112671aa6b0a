package cluster

import (
	"fmt"
	"sync"
	"time"

	"clustertx/hosts"
	"clustertx/queue"
)

// Windows: the run's --until (Options.Until) and the hosts' window: keys.
// The queue decides what a host takes inside its window (a job must be
// predicted to end before it closes; shortest first near the end) and
// keeps a host outside its window idle; this file tells the queue the
// windows, stops a job its window closes on (after Options.Grace), and
// says why the files left were not run.

// setWindows gives the queue the run's deadline and each host's window,
// and reports whether there is any.
func (m *manager) setWindows(q *queue.Queue, defs []*hosts.Def) bool {
	any := false
	if !m.opts.Until.IsZero() {
		q.SetDeadline(m.opts.Until)
		any = true
	}
	now := m.opts.Now()
	for _, h := range defs {
		if !h.Window.Always() {
			q.SetWindow(h.Name, h.Window.At)
			any = true
			if open, next := h.Window.At(now); !open {
				m.logf("host %s is outside its window (%s): it takes jobs from %s", h.Name, h.Window, next.Format("Mon 15:04"))
			}
		}
	}
	return any
}

// windowWatch stops a copy when its host's window, or the run's, closes
// before it ends (Grace later), unless the copy has claimed its item by
// then: a copy that is putting its output in place is never stopped.
type windowWatch struct {
	mu      sync.Mutex
	claimed bool
	closed  bool
	timer   *time.Timer
}

// watchWindow starts the watch of the copy of it on w's host; stop
// cancels the copy.
func (w *worker) watchWindow(stop func()) *windowWatch {
	ww := &windowWatch{}
	at := w.q.CloseAt(w.def.Name)
	if at.IsZero() {
		return ww
	}
	ww.timer = time.AfterFunc(at.Add(w.m.opts.Grace).Sub(w.m.opts.Now()), func() {
		ww.mu.Lock()
		defer ww.mu.Unlock()
		if !ww.claimed {
			ww.closed = true
			stop()
		}
	})
	return ww
}

// claim runs the copy's claim unless the window already stopped it.
func (ww *windowWatch) claim(claim func() bool) bool {
	ww.mu.Lock()
	defer ww.mu.Unlock()
	if ww.closed {
		return false
	}
	ww.claimed = claim()
	return ww.claimed
}

// stopped reports whether the window stopped the copy.
func (ww *windowWatch) stopped() bool {
	ww.mu.Lock()
	defer ww.mu.Unlock()
	return ww.closed
}

func (ww *windowWatch) done() {
	if ww.timer != nil {
		ww.timer.Stop()
	}
}

// windowStopped handles a copy stopped because its window closed: cleaned
// up like an interrupted one (runTask's deferred cleanup has run), given
// back to the queue without counting a requeue, and not reported: if no
// host takes it again in a window, it is not run ("window closed").
func (w *worker) windowStopped(it *queue.Item, t task) {
	why := "its window closed"
	if w.q.Shut(w.def.Name) && !w.m.opts.Until.IsZero() && !w.m.opts.Now().Before(w.m.opts.Until) {
		why = "the run's --until was reached"
	}
	grace := ""
	if w.m.opts.Grace > 0 {
		grace = fmt.Sprintf(" and %s of grace passed", w.m.opts.Grace)
	}
	w.m.logf("host %s: stopped %s: %s%s; temporary files removed, original untouched; it goes back to the queue", w.def.Name, t.label(), why, grace)
	w.q.WindowStop(it, w.def.Name)
}

// windowReason says why a file was left when windows closed.
func (m *manager) windowReason(j *Job) string {
	now := m.opts.Now()
	if !m.opts.Until.IsZero() && !now.Before(m.opts.Until) {
		return "window closed: --until " + m.opts.Until.Format("15:04") + " reached; the next run takes it"
	}
	return "window closed: no host that may take it (" + hostNames(j.Eligible) + ") can finish it before its window closes; the next run takes it"
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
