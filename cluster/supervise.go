package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"clustertx/hosts"
	"clustertx/internal/encoder"
	"clustertx/profiles"
	"clustertx/queue"
)

// hostRun is one host during the run: its connection while it is up, and
// the bookkeeping that lets it leave and rejoin.
type hostRun struct {
	def *hosts.Def

	mu     sync.Mutex
	t      hosts.Transport // nil while down
	up     bool
	since  time.Time // when it last went up or down
	reason string    // why it is down
	events []HostEvent
	// benched: the host cannot reach the media (visibility.go) and is out
	// of the run for good, although it answers.
	benched bool
}

// HostEvent is a host joining or leaving the run, for the summary.
type HostEvent struct {
	Time   time.Time
	Up     bool
	Reason string
}

func (h *hostRun) set(up bool, t hosts.Transport, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.up, h.t, h.reason, h.since = up, t, reason, time.Now()
	h.events = append(h.events, HostEvent{Time: h.since, Up: up, Reason: reason})
}

func (h *hostRun) transport() hosts.Transport {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.t
}

// supervise runs a host for the whole run: while it is up, one worker per
// slot pulls from the queue; when it is down (at start, or after a host
// failure mid-run) it is re-probed with exponential backoff and rejoins as
// soon as it answers. It returns when the queue has nothing left that this
// host could ever take, or the run is over.
func (m *manager) supervise(ctx context.Context, h *hostRun, q *queue.Queue, results []*FileResult, runDone <-chan struct{}) {
	backoff := m.opts.ReprobeInterval
	for {
		if !hasWorkFor(q, h.def.Name) {
			return
		}
		if t := h.transport(); t != nil {
			failed := m.runSlots(ctx, h, t, q, results)
			h.mu.Lock()
			benched := h.benched
			h.mu.Unlock()
			if benched {
				t.Close()
				return
			}
			if !failed {
				return // the queue has nothing more for it
			}
			t.Close()
			backoff = m.opts.ReprobeInterval
			continue
		}
		// Down: wait, then probe again; stop as soon as the others have
		// done all it could take (the run ends then, not at the next probe).
		if !m.waitDown(ctx, q, h.def.Name, backoff, runDone) {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, m.opts.CheckTimeout)
		t, res := m.checkHost(cctx, h.def)
		cancel()
		if t == nil {
			h.mu.Lock()
			h.reason = res.Reason
			h.mu.Unlock()
			backoff = min(2*backoff, m.opts.ReprobeMax)
			continue
		}
		h.set(true, t, "")
		m.temps.cleanHost(ctx, h.def.Name, t, m.logf) // what it kept when it died
		q.SetDown(h.def.Name, false)
		m.logf("host %s is up (ffmpeg %s); it joins the run", h.def.Name, res.FFmpeg)
		m.opts.Observer.HostState(h.def.Name, true, "")
	}
}

// waitDown waits backoff before down host name is probed again, and
// reports whether it still has work to come back for.
func (m *manager) waitDown(ctx context.Context, q *queue.Queue, name string, backoff time.Duration, runDone <-chan struct{}) bool {
	timer := time.NewTimer(backoff)
	defer timer.Stop()
	poll := time.NewTicker(min(time.Second, backoff))
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-runDone:
			return false
		case <-poll.C:
			if !hasWorkFor(q, name) {
				return false
			}
		case <-timer.C:
			return hasWorkFor(q, name)
		}
	}
}

// runSlots runs the host's slot workers until none has anything left, and
// reports whether they stopped because the host failed.
func (m *manager) runSlots(ctx context.Context, h *hostRun, t hosts.Transport, q *queue.Queue, results []*FileResult) (hostFailed bool) {
	var wg sync.WaitGroup
	var once sync.Once
	failed := func(err error) {
		once.Do(func() {
			hostFailed = true
			reason := oneLine(err)
			h.set(false, nil, reason)
			q.SetDown(h.def.Name, true) // its other slots stop taking work
			m.logf("warning: host %s is down: %s; its jobs go back to the queue and it will be probed again", h.def.Name, reason)
			m.opts.Observer.HostState(h.def.Name, false, reason)
		})
	}
	busy := new(atomic.Int32)
	vis := &visibility{bench: func(reason string) {
		h.set(false, nil, reason)
		h.mu.Lock()
		h.benched = true
		h.mu.Unlock()
		q.SetDown(h.def.Name, true) // its other slots finish what they run and stop
		m.logf("warning: host %s %s; it leaves the run", h.def.Name, reason)
		m.opts.Observer.HostState(h.def.Name, false, reason)
	}}
	for slot := 0; slot < h.def.SlotCount(); slot++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{m: m, def: h.def, t: t, q: q, slot: slot, hostFailed: failed, busy: busy, vis: vis}
			w.loop(ctx, results)
		}()
	}
	wg.Wait()
	return hostFailed
}

// checkHost connects to a host and checks it; on success it returns the
// open transport.
func (m *manager) checkHost(ctx context.Context, def *hosts.Def) (hosts.Transport, hosts.CheckResult) {
	start := time.Now()
	t, err := m.opts.Connect(ctx, def)
	if err != nil {
		return nil, hosts.CheckResult{Host: def.Name, Type: def.Type, Latency: time.Since(start), Reason: oneLine(err), Free: -1, Load: -1}
	}
	// The load does not depend on the check: it is read beside it, on its
	// own session of the connection (each command costs a round trip and
	// a process start), and dropped if the check fails. The check reads
	// the encoder list.
	var (
		load    float64
		loadErr error
		side    sync.WaitGroup
	)
	side.Add(1)
	go func() {
		defer side.Done()
		load, loadErr = hosts.Load(ctx, t) // for max_load and the metrics
	}()
	r := hosts.Check(ctx, def, t)
	side.Wait()
	r.Latency = time.Since(start)
	if ctx.Err() != nil && !r.Up {
		r.Reason = fmt.Sprintf("check timed out after %s (%s)", m.opts.CheckTimeout, r.Reason)
	}
	if !r.Up {
		t.Close()
		return nil, r
	}
	if loadErr == nil {
		r.Load = load
	}
	m.setFFmpegVersion(def.Name, r.FFmpeg)
	m.encMu.Lock()
	if m.encoders == nil {
		m.encoders = map[string]*hosts.EncoderSet{}
	}
	m.encoders[def.Name] = r.Encoders
	m.encMu.Unlock()
	return t, r
}

// conn is host name's connection while it is up (nil while down): the
// check's, until the run's host runs take the connections over.
func (m *manager) conn(name string) hosts.Transport {
	m.encMu.Lock()
	r, t := m.runs[name], m.conns[name]
	m.encMu.Unlock()
	if r != nil {
		return r.transport()
	}
	return t
}

// lacksEncoder says why host h cannot encode job with the profile it would
// use there (an encoder its ffmpeg does not have, or hardware that fails a
// one-frame test), or "" when it can or nothing is known about the host.
func (m *manager) lacksEncoder(ctx context.Context, job *Job, h *hosts.Def) string {
	m.encMu.Lock()
	set := m.encoders[h.Name]
	m.encMu.Unlock()
	t := m.conn(h.Name)
	if t == nil {
		return ""
	}
	prof, err := profileFor(m.cfg, job, h)
	if err != nil {
		return ""
	}
	if variantsOf(prof) != nil {
		// Chosen even when the encoder list could not be read: the test
		// encodes decide.
		return m.lacksVariant(ctx, job, h, t, set, prof)
	}
	if set == nil {
		return ""
	}
	plan, err := prof.Plan(job.Info, m.automap(prof))
	if err != nil {
		return ""
	}
	missing := set.Missing(ctx, t, append(append([]string(nil), plan.In...), plan.Out...))
	var why []string
	for enc, r := range missing {
		why = append(why, enc+" ("+r+")")
	}
	sort.Strings(why)
	if len(why) == 0 {
		return ""
	}
	return "lacks " + strings.Join(why, ", ")
}

// lacksVariant is lacksEncoder for a profile with encoder variants: why
// no variant works on h, or an encoder besides the variant's (audio,
// subtitles) that h's ffmpeg lacks; "" when h can take the file.
func (m *manager) lacksVariant(ctx context.Context, job *Job, h *hosts.Def, t hosts.Transport, set *hosts.EncoderSet, prof *profiles.Profile) string {
	m.notePlanProfile(prof, job.Item.Mixins, job.Info)
	c := m.chooseVariant(ctx, h, t, prof, job.Item.Mixins, job.Info, nil)
	if c.Key == "" {
		return "no encoder variant of profile " + prof.Name + " works: " + c.Describe()
	}
	vp, err := forVariant(prof, c.Key)
	if err != nil {
		return err.Error()
	}
	plan, err := vp.Plan(job.Info, m.automap(vp))
	if err != nil {
		return ""
	}
	var lacks []string
	for _, enc := range encoder.In(append(append([]string(nil), plan.In...), plan.Out...)) {
		if enc != c.Encoder && set != nil && !set.Listed(enc) {
			lacks = append(lacks, enc+" (not in this host's ffmpeg -encoders)")
		}
	}
	if len(lacks) == 0 {
		return ""
	}
	return "lacks " + strings.Join(lacks, ", ")
}

// hasWorkFor reports whether any unfinished item may still go to host.
func hasWorkFor(q *queue.Queue, host string) bool { return q.HasWorkFor(host) }

// watchStuck closes the queue when pending work has had no live host to go
// to for HostWait: every host that could take it is down and none came
// back in time. Those files are then reported as not run.
//
// It is also the runtime guard of the scheduler: when work has been
// pending for StallGuard with nothing running although a host that may
// take it is up, it logs what the waiting hosts wait for and has the queue
// break the tie (queue.Unstick). The scheduling rule should never get
// there; the guard makes sure a night never ends in a silent hang.
func (m *manager) watchStuck(ctx context.Context, q *queue.Queue, runs map[string]*hostRun, done <-chan struct{}, giveUp func()) {
	tick := time.NewTicker(min(time.Second, m.opts.HostWait/4+time.Millisecond, m.opts.StallGuard/4+time.Millisecond))
	defer tick.Stop()
	var stuckSince, idleSince time.Time
	announced := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-tick.C:
		}
		pendingN, runningN := q.Counts()
		stuck := pendingN > 0 && runningN == 0
		if stuck {
			for _, it := range q.Pending() {
				for h := range it.Eligible {
					if r := runs[h]; r != nil && r.transport() != nil {
						stuck = false
						break
					}
				}
				if !stuck {
					break
				}
			}
		}
		if idle := pendingN > 0 && runningN == 0 && !stuck; !idle {
			idleSince = time.Time{}
		} else if idleSince.IsZero() {
			idleSince = time.Now()
		} else if waited := time.Since(idleSince); waited >= m.opts.StallGuard {
			if lines := q.Unstick(); lines != nil {
				m.logf("warning: %d jobs pending and nothing running for %s although a host that may take them is up: %s", pendingN, waited.Round(time.Second), strings.Join(lines, "; "))
			}
			idleSince = time.Time{}
		}
		switch {
		case !stuck:
			stuckSince, announced = time.Time{}, false
		case stuckSince.IsZero():
			stuckSince = time.Now()
		case !announced:
			m.logf("warning: %d jobs (files, or segments of split files) wait for a host: every host that can take them is down; waiting up to %s for one to come back", pendingN, m.opts.HostWait)
			announced = true
			fallthrough
		default:
			if time.Since(stuckSince) >= m.opts.HostWait {
				m.logf("error: no host came back within %s; %d jobs are not run", m.opts.HostWait, pendingN)
				giveUp()
				return
			}
		}
	}
}
