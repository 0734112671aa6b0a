package metrics

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"clustertx/cluster"
	"clustertx/hosts"
	"clustertx/progress"
)

// feed plays a small run: 2 hosts, 4 files queued; a done on nas, a failed
// try on gpu retried on nas and then failed, a streaming file done on gpu,
// one not run (only in the report), and gpu going down at the end.
func feed(t *testing.T, c *Collector) {
	t.Helper()
	c.SetQueued(4)
	c.HostChecked(hosts.CheckResult{Host: "nas", Up: true})
	c.HostChecked(hosts.CheckResult{Host: "gpu", Up: true})
	c.HostChecked(hosts.CheckResult{Host: "pi", Up: false, Reason: "connection refused"})
	c.SetHostLoad("nas", 1.5)
	c.HostInventory(hosts.InventoryResult{CheckResult: hosts.CheckResult{Host: "gpu", Up: true}, Cores: 16, Load1: 0.25, LoadOK: true})

	a := cluster.JobInfo{ID: 0, Path: "/m/a.mkv", Host: "nas", Duration: 120, SrcSize: 1000, Attempt: 1}
	b := cluster.JobInfo{ID: 1, Path: "/m/b.mkv", Host: "gpu", Duration: 60, SrcSize: 500, Attempt: 1}
	s := cluster.JobInfo{ID: 2, Path: "/m/s.mkv", Host: "gpu", Duration: 30, SrcSize: 800, Attempt: 1}
	c.JobStarted(a)
	c.JobStarted(b)
	c.JobProgress(a, progress.Progress{Speed: 2})
	c.JobProgress(b, progress.Progress{Speed: 5})
	expectGauge(t, c, "clustertx_workers_active", nil, 2)
	expectGauge(t, c, "clustertx_host_tasks", map[string]string{"host": "gpu"}, 1)
	expectGauge(t, c, "clustertx_host_encode_speed", map[string]string{"host": "gpu"}, 5)

	// b fails on gpu (no JobFinished: it is retried), then runs on nas.
	b2 := b
	b2.Host, b2.Attempt = "nas", 2
	c.JobStarted(b2)
	expectGauge(t, c, "clustertx_workers_active", nil, 2)
	expectGauge(t, c, "clustertx_host_tasks", map[string]string{"host": "gpu"}, 0)
	expectGauge(t, c, "clustertx_host_tasks", map[string]string{"host": "nas"}, 2)

	c.JobFinished(a, &cluster.FileResult{Path: a.Path, Host: "nas", Outcome: cluster.Done, SrcSize: 1000, OutSize: 400, Duration: 120, Elapsed: 40 * time.Second, Attempts: 1})
	c.JobFinished(b2, &cluster.FileResult{Path: b.Path, Host: "nas", Outcome: cluster.Failed, Reason: "exited 1", SrcSize: 500, Duration: 60, Elapsed: 3 * time.Second, Attempts: 2})
	expectGauge(t, c, "clustertx_workers_active", nil, 0)

	c.JobStarted(s)
	c.Transfer("gpu", true, 800, 2*time.Second)
	c.Transfer("gpu", false, 300, 500*time.Millisecond)
	c.JobFinished(s, &cluster.FileResult{Path: s.Path, Host: "gpu", Outcome: cluster.Done, SrcSize: 800, OutSize: 300, Duration: 30, Elapsed: 10 * time.Second, Attempts: 1})
	c.HostState("gpu", false, "connection lost")

	rep := &cluster.Report{Files: []*cluster.FileResult{
		{Path: a.Path, Outcome: cluster.Done},
		{Path: b.Path, Outcome: cluster.Failed},
		{Path: s.Path, Outcome: cluster.Done},
		{Path: "/m/n.mkv", Outcome: cluster.NotRun, Reason: "interrupted"},
	}}
	c.RunFinished(rep)
}

// gather parses the text exposition with expfmt.
func parseText(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	return mfs
}

func find(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		for k, v := range labels {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(mfs, name, labels)
	if m == nil {
		t.Fatalf("metric %s%v not found", name, labels)
	}
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	t.Fatalf("metric %s%v is not a counter or gauge", name, labels)
	return 0
}

func expectGauge(t *testing.T, c *Collector, name string, labels map[string]string, want float64) {
	t.Helper()
	mfs, err := c.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	if got := value(t, byName, name, labels); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// checkRun asserts the values the run of feed must leave.
func checkRun(t *testing.T, mfs map[string]*dto.MetricFamily) {
	t.Helper()
	host := func(h string) map[string]string { return map[string]string{"host": h} }
	want := []struct {
		name   string
		labels map[string]string
		v      float64
	}{
		{"clustertx_jobs_posted", nil, 4},
		{"clustertx_jobs_started_total", nil, 4},
		{"clustertx_jobs_completed_total", nil, 4},
		{"clustertx_jobs_succeeded_total", nil, 2},
		{"clustertx_jobs_failed_total", nil, 1},
		{"clustertx_jobs_killed_total", nil, 1},
		{"clustertx_files_total", map[string]string{"outcome": "done"}, 2},
		{"clustertx_files_total", map[string]string{"outcome": "failed"}, 1},
		{"clustertx_files_total", map[string]string{"outcome": "not_run"}, 1},
		{"clustertx_workers_active", nil, 0},
		{"clustertx_host_tasks", host("nas"), 0},
		{"clustertx_host_tasks", host("gpu"), 0},
		{"clustertx_host_load1", host("nas"), 1.5},
		{"clustertx_host_load1", host("gpu"), 0.25},
		{"clustertx_host_cpu_cores", host("gpu"), 16},
		{"clustertx_host_up", host("nas"), 1},
		{"clustertx_host_up", host("gpu"), 0},
		{"clustertx_host_up", host("pi"), 0},
		{"clustertx_bytes_saved_total", nil, 600 + 500},
		{"clustertx_media_seconds_processed_total", host("nas"), 120},
		{"clustertx_media_seconds_processed_total", host("gpu"), 30},
		{"clustertx_host_encode_speed", host("gpu"), 3}, // idle: last job 30s in 10s
		{"clustertx_host_encode_seconds_total", host("nas"), 43},
		{"clustertx_transfer_bytes_total", map[string]string{"host": "gpu", "direction": "upload"}, 800},
		{"clustertx_transfer_bytes_total", map[string]string{"host": "gpu", "direction": "download"}, 300},
		{"clustertx_run_finished", nil, 1},
	}
	for _, w := range want {
		if got := value(t, mfs, w.name, w.labels); got != w.v {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.v)
		}
	}
	if m := find(mfs, "clustertx_job_duration_seconds", nil); m == nil || m.GetHistogram().GetSampleCount() != 3 ||
		m.GetHistogram().GetSampleSum() != 53 {
		t.Errorf("job_duration_seconds = %v, want 3 samples summing to 53", m)
	}
	if m := find(mfs, "clustertx_transfer_duration_seconds", map[string]string{"direction": "upload"}); m == nil ||
		m.GetHistogram().GetSampleCount() != 1 || m.GetHistogram().GetSampleSum() != 2 {
		t.Errorf("transfer_duration_seconds{upload} = %v", m)
	}
	now := float64(time.Now().Unix())
	for _, n := range []string{"clustertx_run_start_time_seconds", "clustertx_last_success_timestamp_seconds"} {
		if v := value(t, mfs, n, nil); math.Abs(v-now) > 60 {
			t.Errorf("%s = %v, want about %v", n, v, now)
		}
	}
	if mfs["go_goroutines"] == nil {
		t.Errorf("go collector missing")
	}
}

func TestServeMetricsAndHealth(t *testing.T) {
	c := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, stop, err := c.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("actual address %q has no port", addr)
	}

	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 200 || st.Status != "ok" {
		t.Fatalf("/health: %d %+v %v", resp.StatusCode, st, err)
	}
	resp.Body.Close()

	feed(t, c)

	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	mfs := parseText(t, resp.Body)
	resp.Body.Close()
	checkRun(t, mfs)

	resp, err = http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	st = Status{}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if st.Status != "ok" || st.Done != 4 || st.Queued != 4 || st.Running != 0 || !st.Finished {
		t.Errorf("/health after the run = %+v", st)
	}

	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := http.Get("http://" + addr + "/health"); err == nil {
		t.Errorf("server still answering after stop")
	}
	if err := stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestServeStopsWithContext(t *testing.T) {
	c := New()
	ctx, cancel := context.WithCancel(context.Background())
	addr, stop, err := c.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := http.Get("http://" + addr + "/health"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server still up 5s after ctx cancel")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = stop()
}

func TestServeBadAddress(t *testing.T) {
	if _, _, err := New().Serve(context.Background(), "256.0.0.1:bad"); err == nil {
		t.Fatal("no error for a bad address")
	}
}

func TestWriteTextfileAtomic(t *testing.T) {
	c := New()
	feed(t, c)
	dir := t.TempDir()
	path := filepath.Join(dir, "clustertx.prom")
	if err := os.WriteFile(path, []byte("stale content\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path)
	if err := c.WriteTextfile(path); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Replaced by rename, not rewritten in place: a new inode.
	if os.SameFile(before, after) {
		t.Errorf("textfile rewritten in place, not replaced by rename")
	}
	if after.Mode().Perm() != 0o644 {
		t.Errorf("textfile mode %v, want 0644 (node_exporter must read it)", after.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "clustertx.prom" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only clustertx.prom (no temp left)", names)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	checkRun(t, parseText(t, f))

	// A failed write leaves the old file and no temp.
	if err := c.WriteTextfile(filepath.Join(dir, "missing", "x.prom")); err == nil {
		t.Errorf("no error writing into a missing directory")
	}
}

// TestTextfileReadersNeverSeePartial reads the file while it is rewritten
// in a loop: every read must parse and be complete.
func TestTextfileReadersNeverSeePartial(t *testing.T) {
	c := New()
	feed(t, c)
	path := filepath.Join(t.TempDir(), "run.prom")
	if err := c.WriteTextfile(path); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 50; i++ {
			c.SetQueued(i)
			if err := c.WriteTextfile(path); err != nil {
				t.Error(err)
			}
		}
		close(done)
	}()
	reads := 0
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		mfs := parseText(t, strings.NewReader(string(data)))
		if mfs["clustertx_run_finished"] == nil || mfs["clustertx_jobs_posted"] == nil {
			t.Fatalf("incomplete textfile read:\n%s", data)
		}
	}
	wg.Wait()
	t.Logf("%d complete reads during 50 rewrites", reads)
}

func TestStartTextfile(t *testing.T) {
	c := New()
	var errs []error
	var mu sync.Mutex
	c.OnError = func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
	path := filepath.Join(t.TempDir(), "run.prom")
	stop := c.StartTextfile(context.Background(), path, 10*time.Millisecond)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("not written at start: %v", err)
	}
	c.SetQueued(7)
	deadline := time.Now().Add(5 * time.Second)
	for {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		mfs := parseText(t, f)
		f.Close()
		if value(t, mfs, "clustertx_jobs_posted", nil) == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("periodic write did not pick up the new value")
		}
		time.Sleep(10 * time.Millisecond)
	}
	feed(t, c) // sets queued back to 4 and finishes the run
	stop()
	stop()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	checkRun(t, parseText(t, f)) // the final write has the final values
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		t.Errorf("write errors: %v", errs)
	}
}

func TestOutcomeLabel(t *testing.T) {
	if got := OutcomeLabel(cluster.NotRun); got != "not_run" {
		t.Errorf("OutcomeLabel(NotRun) = %q", got)
	}
}

// The load read at the host check reaches clustertx_host_load1.
func TestHostCheckSetsLoad(t *testing.T) {
	c := New()
	c.HostChecked(hosts.CheckResult{Host: "nas", Up: true, Load: 1.5})
	c.HostChecked(hosts.CheckResult{Host: "pi", Up: false, Load: -1})
	if got := testutil.ToFloat64(c.hostLoad.WithLabelValues("nas")); got != 1.5 {
		t.Errorf("host_load1{nas} = %v, want 1.5", got)
	}
	if n := testutil.CollectAndCount(c.hostLoad); n != 1 {
		t.Errorf("%d load series, want 1 (a down host has no load)", n)
	}
}
