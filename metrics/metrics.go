// Package metrics exposes a batch run to Prometheus: a Collector that is a
// cluster.Observer and keeps counters, gauges and histograms (all named
// clustertx_*) on its own registry, served over HTTP (/metrics, /health)
// and/or written to a node_exporter textfile-collector file.
//
// The metric set covers what the ClusterPlex orchestrator exposes (jobs
// posted, completed, succeeded, failed, killed, active workers, per-host
// task count and CPU load) plus what a transcoding batch adds: bytes saved,
// media seconds processed, per-host encode speed, SFTP transfer volume and
// durations, job durations, host up/down, run start and last success time.
//
// The manager (package cluster) feeds it through the Observer interface.
// Two values the Observer events do not carry must be set by whoever knows
// them: SetQueued (the number of files queued for the run) and SetHostLoad
// (a host's 1-minute load average, e.g. from hosts.Inventory; HostInventory
// does that from an inventory result).
package metrics

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"clustertx/cluster"
	"clustertx/hosts"
	"clustertx/progress"
)

// Namespace prefixes every metric name.
const Namespace = "clustertx"

// Collector is a cluster.Observer that maintains the run's metrics. All
// methods are safe for concurrent use and never block on I/O.
type Collector struct {
	// OnError receives textfile write errors of StartTextfile (set it
	// before starting; nil ignores them).
	OnError func(error)

	reg *prometheus.Registry

	jobsPosted      prometheus.Gauge
	jobsStarted     prometheus.Counter
	jobsCompleted   prometheus.Counter
	jobsSucceeded   prometheus.Counter
	jobsFailed      prometheus.Counter
	jobsKilled      prometheus.Counter
	files           *prometheus.CounterVec // outcome
	workersActive   prometheus.Gauge
	hostTasks       *prometheus.GaugeVec // host
	hostLoad        *prometheus.GaugeVec // host
	hostCores       *prometheus.GaugeVec // host
	hostUp          *prometheus.GaugeVec // host
	hostSpeed       *prometheus.GaugeVec // host
	hostEncodeSecs  *prometheus.CounterVec
	bytesSaved      prometheus.Counter
	mediaSeconds    *prometheus.CounterVec // host
	transferBytes   *prometheus.CounterVec // host, direction
	transferSeconds *prometheus.HistogramVec
	jobSeconds      prometheus.Histogram
	runStart        prometheus.Gauge
	lastSuccess     prometheus.Gauge
	runFinished     prometheus.Gauge

	mu       sync.Mutex
	now      func() time.Time
	start    time.Time
	running  map[int]*runningJob // by JobInfo.ID: the current attempt of each file
	counted  map[string]bool     // FileResult.Path already counted by JobFinished
	queued   int
	done     int
	finished bool
}

type runningJob struct {
	host  string
	speed float64 // latest ffmpeg speed (× realtime)
}

// New returns a Collector on a fresh registry (never the global one), with
// the run start time set to now. The registry also carries the Go runtime
// and process collectors, as any Prometheus exporter does.
func New() *Collector {
	c := &Collector{
		reg:     prometheus.NewRegistry(),
		now:     time.Now,
		running: map[int]*runningJob{},
		counted: map[string]bool{},
	}
	f := factory{c.reg}
	c.jobsPosted = f.gauge("jobs_posted", "Files queued for this run (set by the manager).")
	c.jobsStarted = f.counter("jobs_started_total", "Encode attempts started (retries included).")
	c.jobsCompleted = f.counter("jobs_completed_total", "Files that reached a final outcome (any but planned).")
	c.jobsSucceeded = f.counter("jobs_succeeded_total", "Files encoded and put in place (outcome done).")
	c.jobsFailed = f.counter("jobs_failed_total", "Files that failed (probe, encode or verification error).")
	c.jobsKilled = f.counter("jobs_killed_total", "Files whose job was interrupted or not run, or aborted by the size threshold (outcomes not_run and kept).")
	c.files = f.counterVec("files_total", "Files by final outcome (cluster.Outcome, spaces replaced by _).", "outcome")
	c.workersActive = f.gauge("workers_active", "Encode jobs running now, all hosts.")
	c.hostTasks = f.gaugeVec("host_tasks", "Encode jobs running now on the host.", "host")
	c.hostLoad = f.gaugeVec("host_load1", "The host's 1-minute load average, as last measured.", "host")
	c.hostCores = f.gaugeVec("host_cpu_cores", "Online CPU cores of the host, as last measured.", "host")
	c.hostUp = f.gaugeVec("host_up", "1 when the host is up and taking jobs, 0 when down.", "host")
	c.hostSpeed = f.gaugeVec("host_encode_speed", "Encode speed of the host in media seconds per wall second: the sum over its running jobs, or the last finished job's average when idle.", "host")
	c.hostEncodeSecs = f.counterVec("host_encode_seconds_total", "Wall seconds spent on finished jobs of the host.", "host")
	c.bytesSaved = f.counter("bytes_saved_total", "Source bytes minus output bytes of files done (only savings are counted).")
	c.mediaSeconds = f.counterVec("media_seconds_processed_total", "Media seconds of files encoded (outcome done), by host.", "host")
	c.transferBytes = f.counterVec("transfer_bytes_total", "Bytes moved over SFTP for streaming hosts.", "host", "direction")
	c.transferSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "transfer_duration_seconds",
		Help:    "Duration of SFTP transfers (upload: source to host, download: output back).",
		Buckets: prometheus.ExponentialBuckets(0.1, 2.5, 10), // 0.1s … ~6.4min
	}, []string{"direction"})
	c.reg.MustRegister(c.transferSeconds)
	c.jobSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "job_duration_seconds",
		Help:    "Wall time of the final attempt of each finished file.",
		Buckets: prometheus.ExponentialBuckets(1, 2.5, 12), // 1s … ~6.6h
	})
	c.reg.MustRegister(c.jobSeconds)
	c.runStart = f.gauge("run_start_time_seconds", "Unix time the run started.")
	c.lastSuccess = f.gauge("last_success_timestamp_seconds", "Unix time the last file was done (0: none yet).")
	c.runFinished = f.gauge("run_finished", "1 once the run has finished.")
	c.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c.start = c.now()
	c.runStart.Set(float64(c.start.UnixNano()) / 1e9)
	return c
}

type factory struct{ reg *prometheus.Registry }

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

// Registry is the collector's own registry (for extra metrics or tests).
func (c *Collector) Registry() *prometheus.Registry { return c.reg }

// OutcomeLabel is the label value of an outcome: its string with spaces
// replaced by underscores ("not run" → "not_run").
func OutcomeLabel(o cluster.Outcome) string { return strings.ReplaceAll(string(o), " ", "_") }

// Direction label values of the transfer metrics.
const (
	Upload   = "upload"
	Download = "download"
)

// SetQueued sets the number of files queued for the run (jobs posted). The
// manager calls it once the plan is known, and again if it changes.
func (c *Collector) SetQueued(n int) {
	c.mu.Lock()
	c.queued = n
	c.mu.Unlock()
	c.jobsPosted.Set(float64(n))
}

// SetHostLoad records a host's 1-minute load average.
func (c *Collector) SetHostLoad(host string, load1 float64) {
	c.hostLoad.WithLabelValues(host).Set(load1)
}

// HostInventory records what an inventory of the host found: load, cores,
// and up/down.
func (c *Collector) HostInventory(r hosts.InventoryResult) {
	if r.LoadOK {
		c.SetHostLoad(r.Host, r.Load1)
	}
	if r.Cores > 0 {
		c.hostCores.WithLabelValues(r.Host).Set(float64(r.Cores))
	}
	c.setUp(r.Host, r.Up)
}

func (c *Collector) setUp(host string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	c.hostUp.WithLabelValues(host).Set(v)
}

// HostChecked implements cluster.Observer.
func (c *Collector) HostChecked(r hosts.CheckResult) {
	c.setUp(r.Host, r.Up)
	c.hostTasks.WithLabelValues(r.Host).Set(0)
	if r.Up && r.Load >= 0 {
		c.SetHostLoad(r.Host, r.Load)
	}
}

// HostState implements cluster.Observer. A host going down loses its
// running jobs (they go back to the queue without a JobFinished).
func (c *Collector) HostState(host string, up bool, _ string) {
	c.setUp(host, up)
	if up {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, j := range c.running {
		if j.host == host {
			delete(c.running, id)
		}
	}
	c.refreshLocked(host)
}

// JobStarted implements cluster.Observer. A new attempt of a file replaces
// the previous one (a retried job gets no JobFinished for its failed try).
func (c *Collector) JobStarted(j cluster.JobInfo) {
	c.jobsStarted.Inc()
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.running[j.ID]
	c.running[j.ID] = &runningJob{host: j.Host}
	if prev != nil && prev.host != j.Host {
		c.refreshLocked(prev.host)
	}
	c.refreshLocked(j.Host)
}

// JobProgress implements cluster.Observer.
func (c *Collector) JobProgress(j cluster.JobInfo, p progress.Progress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rj := c.running[j.ID]
	if rj == nil || rj.host != j.Host {
		return
	}
	rj.speed = p.Speed
	c.refreshLocked(j.Host)
}

// refreshLocked recomputes the host's task and speed gauges and the
// active-worker gauge from the running set. c.mu is held.
func (c *Collector) refreshLocked(host string) {
	n, speed := 0, 0.0
	for _, j := range c.running {
		if j.host == host {
			n++
			speed += j.speed
		}
	}
	c.hostTasks.WithLabelValues(host).Set(float64(n))
	if n > 0 {
		c.hostSpeed.WithLabelValues(host).Set(speed)
	}
	c.workersActive.Set(float64(len(c.running)))
}

// JobFinished implements cluster.Observer: the file's final outcome.
func (c *Collector) JobFinished(j cluster.JobInfo, r *cluster.FileResult) {
	if r == nil { // a segment of a split file: the file is not finished
		c.mu.Lock()
		delete(c.running, j.ID)
		c.workersActive.Set(float64(len(c.running)))
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	if rj := c.running[j.ID]; rj != nil {
		delete(c.running, j.ID)
	}
	host := j.Host
	if host == "" {
		host = r.Host
	}
	if host != "" {
		c.refreshLocked(host)
	}
	idle := true
	for _, rj := range c.running {
		if rj.host == host {
			idle = false
		}
	}
	already := c.counted[r.Path]
	c.counted[r.Path] = true
	c.mu.Unlock()

	if r.Elapsed > 0 {
		c.jobSeconds.Observe(r.Elapsed.Seconds())
		if host != "" {
			c.hostEncodeSecs.WithLabelValues(host).Add(r.Elapsed.Seconds())
		}
	}
	if r.Outcome == cluster.Done && host != "" {
		dur := r.Duration
		if dur <= 0 {
			dur = j.Duration
		}
		if dur > 0 {
			c.mediaSeconds.WithLabelValues(host).Add(dur)
			if idle && r.Elapsed > 0 {
				c.hostSpeed.WithLabelValues(host).Set(dur / r.Elapsed.Seconds())
			}
		}
	}
	if !already {
		c.count(r)
	}
}

// count adds one file's final outcome to the outcome counters.
func (c *Collector) count(r *cluster.FileResult) {
	c.files.WithLabelValues(OutcomeLabel(r.Outcome)).Inc()
	if r.Outcome == cluster.Planned {
		return
	}
	c.jobsCompleted.Inc()
	c.mu.Lock()
	c.done++
	c.mu.Unlock()
	switch r.Outcome {
	case cluster.Done:
		c.jobsSucceeded.Inc()
		src := r.SrcSize
		if saved := src - r.OutSize; r.OutSize > 0 && saved > 0 {
			c.bytesSaved.Add(float64(saved))
		}
		c.lastSuccess.Set(float64(c.now().UnixNano()) / 1e9)
	case cluster.Failed:
		c.jobsFailed.Inc()
	case cluster.NotRun, cluster.Kept, cluster.Changed:
		c.jobsKilled.Inc()
	}
}

// Transfer implements cluster.Observer.
func (c *Collector) Transfer(host string, upload bool, n int64, d time.Duration) {
	dir := Download
	if upload {
		dir = Upload
	}
	if n > 0 {
		c.transferBytes.WithLabelValues(host, dir).Add(float64(n))
	}
	c.transferSeconds.WithLabelValues(dir).Observe(d.Seconds())
}

// RunFinished implements cluster.Observer: files that never got a
// JobFinished (not run, skipped, probe failures, planned) are counted now,
// and nothing is running any more.
func (c *Collector) RunFinished(rep *cluster.Report) {
	c.mu.Lock()
	var todo []*cluster.FileResult
	if rep != nil {
		for _, f := range rep.Files {
			if f != nil && !c.counted[f.Path] {
				c.counted[f.Path] = true
				todo = append(todo, f)
			}
		}
	}
	hostsRunning := map[string]bool{}
	for _, j := range c.running {
		hostsRunning[j.host] = true
	}
	c.running = map[int]*runningJob{}
	for h := range hostsRunning {
		c.refreshLocked(h)
	}
	c.workersActive.Set(0)
	c.finished = true
	c.mu.Unlock()
	for _, f := range todo {
		c.count(f)
	}
	c.runFinished.Set(1)
}

// Status is the /health answer.
type Status struct {
	Status   string `json:"status"`   // "ok"
	Running  int    `json:"running"`  // jobs running now
	Done     int    `json:"done"`     // files with a final outcome
	Queued   int    `json:"queued"`   // files queued (SetQueued)
	Finished bool   `json:"finished"` // RunFinished was seen
	Uptime   string `json:"uptime"`
}

// Status reports the run's state.
func (c *Collector) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Status: "ok", Running: len(c.running), Done: c.done, Queued: c.queued, Finished: c.finished,
		Uptime: c.now().Sub(c.start).Round(time.Second).String()}
}

var _ cluster.Observer = (*Collector)(nil)

// Planned implements cluster.Observer: the files queued for the run are the
// jobs posted.
func (c *Collector) Planned(files int, _ float64) { c.SetQueued(files) }
