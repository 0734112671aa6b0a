package cluster

import (
	"context"
	"strings"
	"sync"
	"time"

	"clustertx/hosts"
	"clustertx/internal/encoder"
	"clustertx/profiles"
)

// Calibration encode bounds (Options.Calibrate): the measured window, and
// the least check time that must be left for one to start (a host whose
// check took nearly --check-timeout is not delayed past it).
const (
	calibWindow  = 700 * time.Millisecond
	calibMinLeft = 1500 * time.Millisecond
	calibMax     = 1500 * time.Millisecond // the whole encode, start-up and stop included
)

// calibrator runs the calibration encodes of a run: once the files are
// probed it knows which profile each host will mostly run, and each host's
// check goroutine calls measure after its check. The speeds go to the queue
// as the guesses of hosts with neither a journal speed nor a weight.
type calibrator struct {
	m      *manager
	probed chan struct{} // closed when items and probes are set
	items  []WorkItem
	probes []probeResult

	once sync.Once
	jobs []*Job // one sample job per profile, most common profile first

	mu     sync.Mutex
	speeds map[string]float64 // host → calibrated speed (work units per second)
}

func newCalibrator(m *manager) *calibrator {
	return &calibrator{m: m, probed: make(chan struct{}), speeds: map[string]float64{}}
}

// setProbes hands over the probed files; measure waits for them.
func (c *calibrator) setProbes(items []WorkItem, probes []probeResult) {
	c.items, c.probes = items, probes
	close(c.probed)
}

// speed returns host's calibrated speed, 0 when it has none.
func (c *calibrator) speed(host string) float64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.speeds[host]
}

// samples resolves each probed file's profile the way plan does and keeps
// one file per profile, the most common profile first.
func (c *calibrator) samples() []*Job {
	c.once.Do(func() {
		count := map[string]int{}
		var jobs []*Job
		for i, it := range c.items {
			pr := c.probes[i]
			if pr.skip != "" || pr.Err != nil || pr.Info == nil || pr.Info.Video == nil {
				continue
			}
			name := it.Profile
			if name == "" {
				r := profiles.MatchRules(c.m.cfg.Rules, pr.Info)
				if r == nil || r.Skip {
					continue
				}
				name = r.Profile
			}
			prof, err := c.m.cfg.Profile(name)
			if err == nil && len(it.Mixins) > 0 {
				prof, err = c.m.cfg.Profiles.WithMixins(prof, it.Mixins)
			}
			if err != nil || prof.Validate() != nil {
				continue
			}
			key := prof.Name + "\x00" + strings.Join(it.Mixins, ",")
			if count[key] == 0 {
				jobs = append(jobs, &Job{Item: it, Info: pr.Info, Profile: prof})
			}
			count[key]++
		}
		keyOf := func(j *Job) string { return j.Profile.Name + "\x00" + strings.Join(j.Item.Mixins, ",") }
		// Stable: on a tie the profile seen first wins.
		for i := 1; i < len(jobs); i++ {
			for k := i; k > 0 && count[keyOf(jobs[k])] > count[keyOf(jobs[k-1])]; k-- {
				jobs[k], jobs[k-1] = jobs[k-1], jobs[k]
			}
		}
		c.jobs = jobs
	})
	return c.jobs
}

// measure runs host def's calibration encode on t with the options of the
// profile it will run most, within ctx (the host's check deadline). It
// fills the check result's estimate, or its note when it could not run;
// either way the host's check result (up, down) is unchanged.
func (c *calibrator) measure(ctx context.Context, def *hosts.Def, t hosts.Transport, r *hosts.CheckResult) {
	if why := c.known(def); why != "" {
		// The estimate would not be used: no encode, no check time spent.
		r.CalibNote = why
		return
	}
	select {
	case <-c.probed:
	case <-ctx.Done():
		return
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < calibMinLeft {
		r.CalibNote = "no time left in the check for a calibration encode"
		return
	}
	var job *Job
	for _, j := range c.samples() {
		if eligible(j, def) {
			job = j
			break
		}
	}
	if job == nil {
		return // nothing for it to do: no estimate needed
	}
	prof, err := profileFor(c.m.cfg, job, def)
	if err != nil {
		return
	}
	if variantsOf(prof) != nil {
		// Which variant the host uses is decided after the checks.
		r.CalibNote = "profile " + prof.Name + " has encoder variants: no calibration"
		return
	}
	plan, err := prof.Plan(job.Info, c.m.automap(prof))
	if err != nil {
		return
	}
	video := calibrationArgs(plan.Out)
	if len(encoder.In(video)) == 0 {
		r.CalibNote = "profile " + prof.Name + " encodes no video: no calibration"
		return
	}
	cctx, cancel := context.WithTimeout(ctx, calibMax)
	defer cancel()
	cal, err := hosts.Calibrate(cctx, def, t, video, calibWindow)
	r.CalibTime = cal.Total
	if err != nil {
		r.CalibNote = oneLine(err)
		return
	}
	r.Speed, r.CalibProfile = cal.Speed, prof.Name
	c.mu.Lock()
	c.speeds[def.Name] = cal.Speed
	c.mu.Unlock()
}

// known says why host def needs no calibration encode, "" when it does: a
// calibrated speed is only a first guess, and a speed the journal learned
// in an earlier run or a configured weight comes first (prior), so a
// nightly run with --calibrate pays for the encodes on its first night
// only.
func (c *calibrator) known(def *hosts.Def) string {
	if def.Weight > 0 {
		return "its weight gives its speed"
	}
	if j := c.m.opts.Journal; j != nil && j.Speeds()[def.Name][speedKey] > 0 {
		return "the journal has its speed from an earlier run"
	}
	return ""
}

// calibrationArgs keeps the options of a profile's output arguments that
// shape the video encode (codec, preset, rate control, filters, pixel
// format, threads…) and drops those that concern other streams, the
// mapping of the source's streams, metadata and the output container:
// the calibration input has one video stream and goes to the null muxer.
func calibrationArgs(out []string) []string {
	var keep []string
	for i := 0; i < len(out); i++ {
		flag := out[i]
		if !strings.HasPrefix(flag, "-") || len(flag) < 2 {
			continue // a stray value
		}
		n := 1
		if i+1 < len(out) && !isFlagWord(out[i+1]) {
			n = 2
		}
		group := out[i : i+n]
		i += n - 1
		if !calibKeeps(flag) {
			continue
		}
		keep = append(keep, group...)
	}
	return keep
}

// isFlagWord reports whether w starts a new option (not a negative number).
func isFlagWord(w string) bool {
	return len(w) > 1 && w[0] == '-' && (w[1] < '0' || w[1] > '9') && w[1] != '.'
}

// calibKeeps reports whether an output option is kept for the calibration
// encode.
func calibKeeps(flag string) bool {
	base, spec, _ := strings.Cut(flag[1:], ":")
	if spec != "" && strings.ContainsAny(spec[:1], "asdt") {
		return false // another stream type's option
	}
	switch base {
	case "map", "map_metadata", "map_chapters", "metadata", "disposition",
		"f", "movflags", "ss", "t", "to", "fs", "y", "n", "progress", "stats_period",
		"acodec", "scodec", "dcodec", "an", "sn", "dn", "vn", "ac", "ar", "af",
		"aq", "ab", "sample_fmt", "channel_layout", "attach", "max_muxing_queue_size",
		"shortest", "vframes", "copyts", "start_at_zero", "avoid_negative_ts", "tag", "frames":
		return false
	case "c", "codec":
		return spec != "" // -c copy / -c libx264 apply to all streams: ambiguous, dropped
	}
	return true
}
