package metrics

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// Handler serves the collector's registry in the Prometheus exposition
// formats (text or OpenMetrics, as negotiated).
func (c *Collector) Handler() http.Handler {
	return promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{Registry: c.reg})
}

// healthHandler answers 200 with the run's Status as JSON.
func (c *Collector) healthHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(c.Status())
}

// Mux returns the HTTP routes: /metrics and /health.
func (c *Collector) Mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", c.Handler())
	mux.HandleFunc("/health", c.healthHandler)
	return mux
}

// Serve listens on addr ("127.0.0.1:9464", ":0"…) and serves /metrics and
// /health until stop is called or ctx is done. actualAddr is the address
// listened on (with the real port when addr asked for port 0). stop shuts
// the server down gracefully (5s at most) and is safe to call more than
// once.
func (c *Collector) Serve(ctx context.Context, addr string) (actualAddr string, stop func() error, err error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           c.Mux(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		case <-done:
		}
	}()
	var once sync.Once
	var stopErr error
	stop = func() error {
		once.Do(func() {
			close(done)
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stopErr = srv.Shutdown(sctx)
			if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) && stopErr == nil {
				stopErr = err
			}
		})
		return stopErr
	}
	return ln.Addr().String(), stop, nil
}

// WriteTextfile writes the metrics to path in the Prometheus text format
// for node_exporter's textfile collector (path should end in .prom). The
// file is replaced atomically: the metrics go to a hidden temporary file in
// the same directory (not ending in .prom, so the collector never reads a
// partial file), which is fsynced, made world-readable and renamed over
// path; the directory is then fsynced.
//
// prometheus.WriteToTextfile exists in this client version but neither
// fsyncs nor hides its temporary file, so expfmt is used directly.
func (c *Collector) WriteTextfile(path string) error {
	mfs, err := c.reg.Gather()
	if err != nil {
		return fmt.Errorf("metrics: gather: %w", err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("metrics: textfile: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriter(tmp)
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(bw, mf); err != nil {
			return fmt.Errorf("metrics: textfile: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("metrics: textfile: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("metrics: textfile: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("metrics: textfile: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("metrics: textfile: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("metrics: textfile: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil { // make the rename durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// StartTextfile writes the textfile now, then every `every` (default 15s),
// until ctx is done or stop is called; stop writes it once more (the final
// values) and waits for the writer to end. Write errors go to OnError when
// set. stop is safe to call more than once.
func (c *Collector) StartTextfile(ctx context.Context, path string, every time.Duration) (stop func()) {
	if every <= 0 {
		every = 15 * time.Second
	}
	c.writeTextfileReport(path)
	quit := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-quit:
				return
			case <-t.C:
				c.writeTextfileReport(path)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-ended
			c.writeTextfileReport(path)
		})
	}
}

func (c *Collector) writeTextfileReport(path string) {
	if err := c.WriteTextfile(path); err != nil {
		if c.OnError != nil {
			c.OnError(err)
		}
	}
}
