package cluster

import (
	"time"

	"clustertx/hosts"
	"clustertx/progress"
)

// JobInfo identifies a running job in events.
type JobInfo struct {
	ID       int     // stable per file for the run
	Path     string  // source, manager's view
	Host     string  // host running it
	Slot     int     // slot index on that host
	Profile  string  // profile used on that host
	Duration float64 // source media seconds
	SrcSize  int64
	Attempt  int // 1 for the first try
	// Split mode: Segment is the segment's number (1-based) of Segments.
	// A segment has an ID of its own and its own Duration; its success is
	// reported with JobFinished(info, nil), and its film's final outcome
	// with Segments set and Segment 0.
	Segment, Segments int
	// Variant is the encoder variant this copy runs ("" for a classic
	// profile).
	Variant string

	family string   // Variant's hardware family
	skip   []string // variants this copy already failed with on its host
}

// Observer is told what happens during a run, for progress display,
// reports and metrics. Methods are called from many goroutines and must
// not block for long.
type Observer interface {
	// Planned reports how many files are queued so far and their total
	// media duration (seconds): first none, before any job starts, then the
	// new totals as the run plans more files while the first ones run. The
	// last call has the run's totals.
	Planned(files int, mediaSeconds float64)
	HostChecked(hosts.CheckResult)
	// HostState reports a host going down or coming (back) up during the run.
	HostState(host string, up bool, reason string)
	JobStarted(JobInfo)
	JobProgress(JobInfo, progress.Progress)
	JobFinished(JobInfo, *FileResult)
	// Transfer reports one finished SFTP transfer of a streaming job.
	Transfer(host string, upload bool, bytes int64, d time.Duration)
	RunFinished(*Report)
}

// NopObserver ignores everything; embed it to implement part of Observer.
type NopObserver struct{}

func (NopObserver) Planned(int, float64)                        {}
func (NopObserver) HostChecked(hosts.CheckResult)               {}
func (NopObserver) HostState(string, bool, string)              {}
func (NopObserver) JobStarted(JobInfo)                          {}
func (NopObserver) JobProgress(JobInfo, progress.Progress)      {}
func (NopObserver) JobFinished(JobInfo, *FileResult)            {}
func (NopObserver) Transfer(string, bool, int64, time.Duration) {}
func (NopObserver) RunFinished(*Report)                         {}

// Observers fans events out to several observers.
type Observers []Observer

func (o Observers) Planned(n int, secs float64) {
	for _, x := range o {
		x.Planned(n, secs)
	}
}
func (o Observers) HostChecked(c hosts.CheckResult) {
	for _, x := range o {
		x.HostChecked(c)
	}
}
func (o Observers) HostState(h string, up bool, r string) {
	for _, x := range o {
		x.HostState(h, up, r)
	}
}
func (o Observers) JobStarted(j JobInfo) {
	for _, x := range o {
		x.JobStarted(j)
	}
}
func (o Observers) JobProgress(j JobInfo, p progress.Progress) {
	for _, x := range o {
		x.JobProgress(j, p)
	}
}
func (o Observers) JobFinished(j JobInfo, r *FileResult) {
	for _, x := range o {
		x.JobFinished(j, r)
	}
}
func (o Observers) Transfer(h string, up bool, n int64, d time.Duration) {
	for _, x := range o {
		x.Transfer(h, up, n, d)
	}
}
func (o Observers) RunFinished(r *Report) {
	for _, x := range o {
		x.RunFinished(r)
	}
}
