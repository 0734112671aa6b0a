package report

import (
	"sort"
	"sync"
	"time"

	"clustertx/cluster"
	"clustertx/hosts"
)

// HostEvent is one host state change, or the host's first check.
type HostEvent struct {
	Host   string
	Time   time.Time
	Up     bool
	Reason string // why it went down; empty when up
	Check  bool   // true: the check at the start of the run, not a change
}

// Recorder is a cluster.Observer that keeps what the final report needs
// beyond cluster.Report: when the run started and finished, host state
// changes with their times, and transfer totals per host. Use it next to
// a Console with cluster.Observers{console, rec}. Job events are ignored
// (the report has every file's result). It is safe for concurrent use.
type Recorder struct {
	cluster.NopObserver

	mu       sync.Mutex
	now      func() time.Time
	started  time.Time
	finished time.Time
	events   []HostEvent
	xfer     map[string]*transferTotals
}

type transferTotals struct {
	upBytes, downBytes int64
	upTime, downTime   time.Duration
}

// NewRecorder returns a recorder whose run starts now.
func NewRecorder() *Recorder {
	r := &Recorder{now: time.Now, xfer: map[string]*transferTotals{}}
	r.started = r.now()
	return r
}

// HostChecked records the host's state at the start of the run.
func (r *Recorder) HostChecked(c hosts.CheckResult) {
	r.add(HostEvent{Host: c.Host, Up: c.Up, Reason: c.Reason, Check: true})
}

// HostState records a host going down or coming back during the run.
func (r *Recorder) HostState(host string, up bool, reason string) {
	r.add(HostEvent{Host: host, Up: up, Reason: reason})
}

func (r *Recorder) add(e HostEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.Time = r.now()
	r.events = append(r.events, e)
}

// Transfer adds one SFTP transfer to the host's totals.
func (r *Recorder) Transfer(host string, upload bool, n int64, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.xfer[host]
	if t == nil {
		t = &transferTotals{}
		r.xfer[host] = t
	}
	if upload {
		t.upBytes += n
		t.upTime += d
	} else {
		t.downBytes += n
		t.downTime += d
	}
}

// RunFinished marks the end of the run.
func (r *Recorder) RunFinished(*cluster.Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = r.now()
}

// Started is when the recorder was made (the run's start).
func (r *Recorder) Started() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.started
}

// Finished is when RunFinished was called (zero before).
func (r *Recorder) Finished() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finished
}

// Events returns the host events in the order they happened.
func (r *Recorder) Events() []HostEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]HostEvent(nil), r.events...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// transfers returns a copy of host's transfer totals.
func (r *Recorder) transfers(host string) transferTotals {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.xfer[host]; t != nil {
		return *t
	}
	return transferTotals{}
}
