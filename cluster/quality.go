package cluster

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"clustertx/hosts"
	"clustertx/internal/encoder"
	"clustertx/media"
	"clustertx/profiles"
	"clustertx/quality"
)

// Quality-targeted encoding (issue 17): before a file with a quality:
// key is encoded, samples of it are encoded at candidate levels and
// measured against the source, and the level that just meets the target
// (package quality's search) is the one the file is encoded with. This
// file holds what the search needs from a profile (knob), the per-file
// search state, and the search run on the manager alone (`clustertx
// quality` without -c).

// knob is how the search sets a profile's quality level: the encoder the
// file goes through and how it takes a level (internal/encoder), the level
// the profile sets, and the profile at another level, which
// profiles.WithLevel makes (the one place a profile's level is edited).
// For a profile with encoder variants it is the variant the file is pinned
// to (Job.Pinned): its encoder, its level, its video section.
type knob struct {
	p   *profiles.Profile
	key string // the variant, "" for a classic profile
	enc string
	q   encoder.Quality
}

// knobOf finds how p's video encoder takes a quality level: that of the
// encoder its -c:v names, or with encoder variants that of variant key.
func knobOf(p *profiles.Profile, key string) (*knob, error) {
	enc := p.VideoEncoder()
	if vs := variantsOf(p); vs != nil {
		if key == "" {
			return nil, fmt.Errorf("profile %s has encoder variants and none was chosen for the search", p.Name)
		}
		for _, v := range vs {
			if v.Key == key {
				enc = v.Encoder
			}
		}
	}
	if enc == "" {
		return nil, fmt.Errorf("profile %s names no video encoder (-c:v): quality: needs one to search its level", p.Name)
	}
	q, ok := encoder.QualityOf(enc)
	if !ok {
		return nil, fmt.Errorf("profile %s: clustertx does not know how %s takes a constant-quality level, so quality: cannot search it", p.Name, enc)
	}
	return &knob{p: p, key: key, enc: enc, q: q}, nil
}

func (k *knob) Encoder() string { return k.enc }
func (k *knob) Variant() string { return k.key }
func (k *knob) Option() string  { return k.q.Flags[0] }
func (k *knob) Level() quality.Level {
	return quality.Level{Min: k.q.Min, Max: k.q.Max, HigherIsBetter: k.q.HigherIsBetter}
}

// Current is the level the profile sets (profiles.Profile.Level), if any.
func (k *knob) Current() (float64, bool) { return k.p.Level(k.key) }

// With is the profile at level (profiles.Profile.WithLevel): for a
// variant, the profile resolved to it.
func (k *knob) With(level float64) (*profiles.Profile, error) { return k.p.WithLevel(k.key, level) }

// qualityOf is the quality: config for a job: the rule's, else the
// profile's; target (--target) replaces its metric and target, or makes
// one with the defaults.
func qualityOf(rule *profiles.Rule, p *profiles.Profile, target *QualityTarget) *quality.Config {
	var c *quality.Config
	switch {
	case rule != nil && rule.Quality != nil:
		c = rule.Quality.Clone()
	case p != nil && p.Quality != nil:
		c = p.Quality.Clone()
	}
	if target != nil {
		if c == nil {
			c = quality.Default(target.Metric, target.Value)
		}
		c.Metric, c.Target = target.Metric, target.Value
	}
	return c
}

// QualityTarget is --target METRIC=VALUE.
type QualityTarget struct {
	Metric quality.Metric
	Value  float64
}

// QualityResult is one file's search, as `clustertx quality` prints it
// (and --json writes it).
type QualityResult struct {
	File           string   `json:"file"`
	Profile        string   `json:"profile,omitempty"`
	Encoder        string   `json:"encoder,omitempty"`
	Variant        string   `json:"variant,omitempty"` // the encoder variant searched, for a profile with encoders:
	Option         string   `json:"option,omitempty"`
	Value          *float64 `json:"value"` // null when the target cannot be met
	Metric         string   `json:"metric,omitempty"`
	Target         float64  `json:"target,omitempty"`
	PredictedScore float64  `json:"predicted_score,omitempty"`
	PredictedBytes int64    `json:"predicted_bytes,omitempty"`
	PredictedPct   float64  `json:"predicted_size_pct,omitempty"`
	SourceBytes    int64    `json:"source_bytes,omitempty"`
	Met            bool     `json:"met"`
	Reason         string   `json:"reason,omitempty"`
	Samples        int      `json:"samples,omitempty"`
	SampleSeconds  float64  `json:"sample_seconds,omitempty"`
	SampleEncodes  int      `json:"sample_encodes,omitempty"`
	SampleAt       []Span   `json:"samples_at,omitempty"` // where the samples were cut
	Rounds         []Round  `json:"rounds,omitempty"`
	Hosts          []string `json:"hosts,omitempty"` // where the samples were encoded
	Seconds        float64  `json:"seconds"`         // wall time of the search
	Error          string   `json:"error,omitempty"`
}

// Span is a stretch of the source, in seconds.
type Span struct {
	Start    float64 `json:"start"`
	Duration float64 `json:"duration"`
}

// Round is one level tried.
type Round struct {
	Level   float64 `json:"level"`
	Score   float64 `json:"score"`
	SizePct float64 `json:"size_pct"`
}

// search is one file's search in progress.
type search struct {
	job     *Job
	cfg     *quality.Config
	knob    *knob
	s       *quality.Search
	samples []quality.Sample
	paths   []string // the cut samples on the manager, by index
	srcSize []int64  // their sizes
	started time.Time
	clamped string // bounds moved into the pinned variant's range (quality.Config.Clamp), "" none

	mu    sync.Mutex
	hosts map[string]bool
}

// newSearch checks that job can be searched and places its samples. A
// profile with encoder variants is searched on the variant the file is
// pinned to (pinSearch, pinLocal), with the quality: bounds moved into
// that encoder's range where they fall outside it.
func (m *manager) newSearch(ctx context.Context, j *Job, cfg *quality.Config) (*search, error) {
	if j.Info.Video == nil {
		return nil, fmt.Errorf("no video stream to search a quality level for")
	}
	if variantsOf(j.Profile) != nil && j.Pinned.Key == "" {
		why := j.PinWhy
		if why == "" {
			why = "no eligible host's encoder variant is known (hosts down, or not checked)"
		}
		return nil, &unpinnedError{fmt.Sprintf("profile %s has encoder variants and the search needs one for all its samples: %s", j.Profile.Name, why)}
	}
	k, err := knobOf(j.Profile, j.Pinned.Key)
	if err != nil {
		return nil, err
	}
	start, ok := k.Current()
	if !ok {
		start = math.NaN()
	}
	clamped := ""
	if k.Variant() != "" {
		if cfg, clamped = cfg.Clamp(k.Level()); clamped != "" {
			m.logf("quality: %s: variant %s: quality: bounds %s", j.Item.Path, k.Variant(), clamped)
		}
	}
	s, err := quality.NewSearch(cfg, k.Level(), start)
	if err != nil {
		return nil, fmt.Errorf("profile %s (%s %s): quality: %v", j.Profile.Name, k.Encoder(), k.Option(), err)
	}
	x, err := m.prober.VideoIndex(ctx, j.Item.Path, j.Info.Video.Index)
	if err != nil {
		return nil, fmt.Errorf("reading its keyframes: %v", reasonOf(err))
	}
	keys, next := quality.Keyframes(x.PTS, x.Key)
	dur := j.Info.Duration
	if dur <= 0 && len(x.PTS) > 0 {
		dur = x.PTS[len(x.PTS)-1] - x.PTS[0]
	}
	return &search{job: j, cfg: cfg, knob: k, s: s, samples: quality.Place(cfg, dur, keys, next),
		started: time.Now(), hosts: map[string]bool{}, clamped: clamped}, nil
}

// unpinnedError is a search that cannot start because no eligible host's
// encoder variant is known (they were down at plan time): the hosts', not
// the file's, so the file is not run rather than failed.
type unpinnedError struct{ msg string }

func (e *unpinnedError) Error() string { return e.msg }

// pinSearch pins a searched file whose profile has encoder variants to
// one of them (Job.Pinned), at plan time: a split film keeps its
// segments' variant; any other file takes, of the variants its eligible
// hosts chose, the one with the most expected capacity
// (variantByCapacity, as split films do), and only the hosts that chose
// it stay eligible. Hosts with a fixed profile of their own are left out
// first (every sample and the file must be encoded with the profile the
// search ran with). A file none of whose hosts' choices is known stays
// unpinned, with PinWhy saying so: its search cannot start.
func (m *manager) pinSearch(j *Job) {
	if variantsOf(j.Profile) == nil || j.Pinned.Key != "" {
		return
	}
	var same []*hosts.Def
	for _, h := range j.Eligible {
		if p, err := profileFor(m.cfg, j, h); err == nil && p.Name == j.Profile.Name {
			same = append(same, h)
		}
	}
	v, on, capacities := m.variantByCapacity(j, same)
	if v.Key == "" {
		j.PinWhy = "no eligible host's encoder variant is known (hosts down at plan time)"
		return
	}
	j.Pinned, j.Eligible = v, on
	j.PinWhy = fmt.Sprintf("%s for every sample and the file (the most expected capacity of: %s)", v.Key, capacities)
}

// pinLocal pins a file searched on this machine (`clustertx quality`
// without -c) to the first variant of its profile that works here:
// chooseVariant on the local transport, whose test encode runs here.
func (m *manager) pinLocal(ctx context.Context, j *Job) error {
	if variantsOf(j.Profile) == nil || j.Pinned.Key != "" {
		return nil
	}
	var h *hosts.Def
	for _, e := range j.Eligible {
		if e.Name == LocalHostName {
			h = e
		}
	}
	if h == nil {
		h = &hosts.Def{Name: LocalHostName, Type: hosts.Local, Enabled: true, FFmpeg: m.cfg.FFmpeg, OS: "linux"}
	}
	c := m.chooseVariant(ctx, h, m.local(), j.Profile, j.Item.Mixins, j.Info, nil)
	if c.Key == "" {
		return fmt.Errorf("no encoder variant of profile %s works on this machine: %s", j.Profile.Name, c.Describe())
	}
	j.Pinned = c
	j.PinWhy = c.Key + ", the first that works on this machine" + strings.TrimPrefix(c.Describe(), c.Key)
	return nil
}

// cut copies the samples out of the source into dir (stream copy, on the
// manager). Their names owe nothing to the source's.
func (m *manager) cutSamples(ctx context.Context, sr *search, dir, tok string) error {
	j := sr.job
	for _, s := range sr.samples {
		p := filepath.Join(dir, fmt.Sprintf("%s%s-q%02d.mkv", TempMarker, tok, s.Index))
		sr.paths = append(sr.paths, p)
		argv := append(managerHead(m.cfg.FFmpeg), quality.CutArgs(j.Item.Path, s, j.Info.Video.Index, p)...)
		stderr := &hosts.TailBuffer{Max: 20}
		if err := m.local().Exec(ctx, argv, nil, stderr); err != nil {
			return fmt.Errorf("cutting sample %d: %v: %s", s.Index+1, err, stderr.Last(3))
		}
		size, _ := fileSize(p)
		sr.srcSize = append(sr.srcSize, size)
	}
	return nil
}

// sampleArgv is the command that encodes a sample (input) at level into
// output: head (the program and its fixed flags), then the profile's
// options with the level set.
func (sr *search) sampleArgv(head []string, level float64, input, output string, automap bool) ([]string, error) {
	p, err := sr.knob.With(level)
	if err != nil {
		return nil, err
	}
	plan, err := p.Plan(sr.job.Info, automap)
	if err != nil {
		return nil, err
	}
	return append(head, quality.EncodeArgs(plan.In, plan.Out, input, output)...), nil
}

// measureArgv measures distorted against reference with the ffmpeg at bin
// (info level: the metrics print their summary there).
func (sr *search) measureArgv(bin, distorted, reference string) []string {
	return append(measureHead(bin), quality.MeasureArgs(sr.cfg.Metric, distorted, reference, sr.job.Info.Width(), sr.job.Info.Height(), 0)...)
}

// sampleScore is one sample's measurement in a round.
type sampleScore struct {
	score float64
	bytes int64
}

// observe folds a round's sample measurements into the search.
func (sr *search) observe(level float64, got []sampleScore) quality.Obs {
	var wsum, w float64
	var bytes, src int64
	for i, g := range got {
		d := sr.samples[i].Duration
		wsum += g.score * d
		w += d
		bytes += g.bytes
		src += sr.srcSize[i]
	}
	o := quality.Obs{Level: level, Score: wsum / math.Max(w, 1e-9), Bytes: bytes, SrcBytes: src}
	sr.s.Add(o)
	return o
}

// result is the search's QualityResult.
func (sr *search) result() *QualityResult {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	return sr.resultLocked()
}

// resultLocked is result with sr.mu held.
func (sr *search) resultLocked() *QualityResult {
	j := sr.job
	d := sr.s.Decide()
	r := &QualityResult{File: j.Item.Path, Profile: j.Profile.Name, Encoder: sr.knob.Encoder(), Variant: sr.knob.Variant(), Option: sr.knob.Option(),
		Metric: string(sr.cfg.Metric), Target: sr.cfg.Target, SourceBytes: j.Info.Size, Met: d.Met,
		Samples: len(sr.samples), SampleEncodes: d.Rounds * len(sr.samples), Seconds: time.Since(sr.started).Seconds()}
	if len(sr.samples) > 0 {
		r.SampleSeconds = sr.samples[0].Duration
	}
	for _, s := range sr.samples {
		r.SampleAt = append(r.SampleAt, Span{Start: s.Start, Duration: s.Duration})
	}
	for _, o := range sr.s.Observations() {
		r.Rounds = append(r.Rounds, Round{Level: o.Level, Score: o.Score, SizePct: o.SizePct()})
	}
	for h := range sr.hosts {
		r.Hosts = append(r.Hosts, h)
	}
	slices.Sort(r.Hosts)
	if d.Met {
		v := d.Level
		r.Value = &v
		r.PredictedScore, r.PredictedPct, r.PredictedBytes = d.Score, d.SizePct, d.PredictedBytes(j.Info.Size)
	} else {
		r.Reason = d.Reason
	}
	return r
}

// SearchQuality runs the quality search for each item, on the manager
// (items without a cluster; `clustertx quality` without -c): samples are
// cut, encoded and measured here, one at a time. It changes no file: the
// samples live in a temporary folder that is removed. Per-file problems
// are in the results; the error is for fatal ones (config, cluster).
func SearchQuality(ctx context.Context, opts Options, items []WorkItem, target *QualityTarget) ([]*QualityResult, error) {
	opts.defaults()
	m := newManager(opts)
	_, clusterHosts, items, err := m.resolve(items)
	if err != nil {
		return nil, err
	}
	p := m.planAll(ctx, items, clusterHosts)
	bin := m.cfg.FFmpeg
	var have map[quality.Metric]bool
	var out []*QualityResult
	for _, j := range p.Jobs {
		r := &QualityResult{File: j.Item.Path}
		if j.Profile != nil {
			r.Profile = j.Profile.Name
		}
		out = append(out, r)
		if j.Outcome != "" {
			r.Error = string(j.Outcome) + ": " + j.Reason
			continue
		}
		cfg := qualityOf(m.ruleOf(j), j.Profile, target)
		if cfg == nil {
			r.Error = fmt.Sprintf("profile %s has no quality: key (give one, or --target METRIC=VALUE)", j.Profile.Name)
			continue
		}
		if have == nil {
			if have, err = localMetrics(ctx, bin); err != nil {
				return nil, err
			}
		}
		if !have[cfg.Metric] {
			r.Error = noMetric(cfg.Metric, "the manager")
			continue
		}
		err := m.pinLocal(ctx, j)
		var res *QualityResult
		if err == nil {
			res, err = m.searchLocal(ctx, j, cfg)
		}
		if err != nil {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			r.Error = oneLine(err)
			continue
		}
		*r = *res
	}
	return out, nil
}

// ruleOf is the rule that chose job's profile (nil when forced or none).
func (m *manager) ruleOf(j *Job) *profiles.Rule {
	if j.Rule == "" {
		return nil
	}
	for _, r := range m.cfg.Rules {
		if r.Name == j.Rule {
			return r
		}
	}
	return nil
}

func noMetric(metric quality.Metric, where string) string {
	why := ""
	if metric == quality.VMAF {
		why = " (ffmpeg built without libvmaf, as Debian's is; use metric ssim, or xpsnr with ffmpeg 7.1+)"
	}
	return fmt.Sprintf("the ffmpeg on %s has no %s filter%s", where, metric.Filter(), why)
}

// localMetrics lists the metrics the manager's ffmpeg can compute.
func localMetrics(ctx context.Context, bin string) (map[quality.Metric]bool, error) {
	if bin == "" {
		bin = hosts.DefaultFFmpeg
	}
	return metricsOn(ctx, hosts.NewLocal("manager"), bin)
}

// metricsOn lists the metrics ffmpeg bin on t can compute: those whose
// filter `ffmpeg -filters` lists, each but SSIM (built into every ffmpeg)
// proven by a measurement of two generated frames (quality.ProbeArgs), so
// a libvmaf without its model file is not counted.
func metricsOn(ctx context.Context, t hosts.Transport, bin string) (map[quality.Metric]bool, error) {
	var out, errb limitedBuffer
	if err := t.Exec(ctx, []string{bin, "-hide_banner", "-filters"}, &out, &errb); err != nil {
		return nil, fmt.Errorf("listing the filters of %s: %v", bin, err)
	}
	have := quality.Supported(out.String())
	for metric := range have {
		if metric == quality.SSIM {
			continue
		}
		var probe limitedBuffer
		err := t.Exec(ctx, append(measureHead(bin), quality.ProbeArgs(metric)...), nil, &probe)
		if err == nil {
			_, err = quality.ParseScore(metric, probe.String())
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			delete(have, metric)
		}
	}
	return have, nil
}

// searchLocal runs one file's search on the manager.
func (m *manager) searchLocal(ctx context.Context, j *Job, cfg *quality.Config) (*QualityResult, error) {
	sr, err := m.newSearch(ctx, j, cfg)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "clustertx-quality-")
	if err != nil {
		return nil, managerErr("temporary folder", err)
	}
	defer os.RemoveAll(dir)
	tok := token()
	if err := m.cutSamples(ctx, sr, dir, tok); err != nil {
		return nil, err
	}
	sr.hosts[LocalHostName] = true
	lt := m.local()
	for {
		level, ok := sr.s.Next()
		if !ok {
			break
		}
		got := make([]sampleScore, len(sr.samples))
		for i, in := range sr.paths {
			out := filepath.Join(dir, fmt.Sprintf("%s%s-q%02d-%s.mkv", TempMarker, tok, i, quality.FormatLevel(level)))
			argv, err := sr.sampleArgv(managerHead(m.cfg.FFmpeg), level, in, out, m.automap(j.Profile))
			if err != nil {
				return nil, err
			}
			if m.opts.Verbose {
				m.logf("quality: %s: run %s", j.Item.Path, hostCommand(&hosts.Def{Name: LocalHostName, Type: hosts.Local}, argv))
			}
			stderr := &hosts.TailBuffer{Max: 20}
			if err := lt.Exec(ctx, argv, nil, stderr); err != nil {
				return nil, fmt.Errorf("encoding sample %d at %s %s: %v: %s", i+1, sr.knob.Option(), quality.FormatLevel(level), err, stderr.Last(3))
			}
			score, err := m.measureLocal(ctx, sr, out, in)
			if err != nil {
				return nil, fmt.Errorf("measuring sample %d at %s %s: %v", i+1, sr.knob.Option(), quality.FormatLevel(level), err)
			}
			size, _ := fileSize(out)
			got[i] = sampleScore{score: score, bytes: size}
			os.Remove(out)
		}
		o := sr.observe(level, got)
		m.logf("quality: %s: %s %s: %s %s, %.0f%% of the source on %d samples", j.Item.Path, sr.knob.Option(),
			quality.FormatLevel(level), cfg.Metric.Label(), quality.FormatScore(cfg.Metric, o.Score), o.SizePct(), len(sr.samples))
	}
	return sr.result(), nil
}

// measureLocal computes the search's metric of distorted against
// reference on the manager.
func (m *manager) measureLocal(ctx context.Context, sr *search, distorted, reference string) (float64, error) {
	var errb limitedBuffer
	if err := m.local().Exec(ctx, sr.measureArgv(m.cfg.FFmpeg, distorted, reference), nil, &errb); err != nil {
		return 0, fmt.Errorf("%v: %s", err, media.LastLine(errb.String()))
	}
	return quality.ParseScore(sr.cfg.Metric, errb.String())
}

// limitedBuffer keeps the last 256 KiB written to it: enough for any
// metric's summary, bounded for a chatty ffmpeg.
type limitedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - 256<<10; over > 0 {
		b.buf = b.buf[over:]
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// PlanQuality prints, for --dry-run, each file's search plan: its quality
// config, the encoder option and the levels it may try, where its samples
// are cut, and the hosts that would encode them. It reads the files'
// keyframes and contacts no host.
func PlanQuality(ctx context.Context, opts Options, items []WorkItem, target *QualityTarget, w io.Writer) error {
	opts.defaults()
	m := newManager(opts)
	_, clusterHosts, items, err := m.resolve(items)
	if err != nil {
		return err
	}
	p := m.planAll(ctx, items, clusterHosts)
	for _, j := range p.Jobs {
		fmt.Fprintf(w, "%s\n", displayPath(j.Item.Path))
		if j.Outcome != "" {
			fmt.Fprintf(w, "  %s: %s\n", j.Outcome, j.Reason)
			continue
		}
		cfg := qualityOf(m.ruleOf(j), j.Profile, target)
		if cfg == nil {
			fmt.Fprintf(w, "  no search: profile %s has no quality: key (give one, or --target METRIC=VALUE)\n", j.Profile.Name)
			continue
		}
		fmt.Fprintf(w, "  profile:  %s\n", j.Profile.Name)
		if variantsOf(j.Profile) != nil {
			if j.Item.Cluster == "" {
				if err := m.pinLocal(ctx, j); err != nil {
					j.PinWhy = err.Error()
				}
			} else if j.Pinned.Key == "" {
				// No host was checked: the hosts' variants are not known.
				j.PinWhy = "chosen when the hosts are checked: of the variants the eligible hosts use, the one with the most expected capacity " +
					"(`clustertx --dry-run -c " + j.Item.Cluster + " FILE` checks them and names it)"
			}
		}
		m.printSearch(ctx, w, j, cfg)
		fmt.Fprintf(w, "  hosts:    %s\n", hostNames(j.Eligible))
	}
	return nil
}

// printSearch writes a file's search plan for --dry-run: the target, the
// encoder option, the levels it may try and the first, and its samples.
func (m *manager) printSearch(ctx context.Context, w io.Writer, j *Job, cfg *quality.Config) {
	if variantsOf(j.Profile) != nil {
		if j.Pinned.Key == "" {
			fmt.Fprintf(w, "  variant:  %s\n", j.PinWhy)
			fmt.Fprintf(w, "  quality:  %s %s on that variant's encoder\n", cfg.Metric.Label(), quality.FormatScore(cfg.Metric, cfg.Target))
			return
		}
		fmt.Fprintf(w, "  variant:  %s\n", j.PinWhy)
	}
	sr, err := m.newSearch(ctx, j, cfg)
	if err != nil {
		fmt.Fprintf(w, "  quality:  no search: %v\n", err)
		return
	}
	if sr.clamped != "" {
		fmt.Fprintf(w, "  quality:  bounds moved into %s's range: %s\n", sr.knob.Encoder(), sr.clamped)
	}
	lo, hi := sr.s.Range()
	fmt.Fprintf(w, "  quality:  %s %s with %s %s: levels %s to %s, first %s, at most %d rounds, max_size %s%%\n",
		cfg.Metric.Label(), quality.FormatScore(cfg.Metric, cfg.Target), sr.knob.Encoder(), sr.knob.Option(),
		quality.FormatLevel(lo), quality.FormatLevel(hi), quality.FormatLevel(sr.s.Start()), quality.MaxRounds, quality.FormatLevel(cfg.MaxSizePct))
	for _, s := range sr.samples {
		if s.Whole {
			fmt.Fprintf(w, "  sample:   the whole film (%s)\n", media.FormatDuration(s.Duration))
			continue
		}
		fmt.Fprintf(w, "  sample %d: %s from the keyframe at %s\n", s.Index+1, strconv.FormatFloat(s.Duration, 'f', -1, 64)+"s", media.FormatDuration(s.Start))
	}
}
