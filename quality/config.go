package quality

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Metric names a quality metric as ffmpeg computes it.
type Metric string

// The metrics. Each is an ffmpeg filter: ssim is built into every ffmpeg;
// libvmaf only where ffmpeg was built with it (Debian's is not); xpsnr
// from ffmpeg 7.1 on.
const (
	SSIM  Metric = "ssim"
	VMAF  Metric = "vmaf"
	XPSNR Metric = "xpsnr"
)

// Metrics lists the metrics in the order they are documented.
var Metrics = []Metric{SSIM, VMAF, XPSNR}

// Filter is the ffmpeg filter that computes m.
func (m Metric) Filter() string {
	if m == VMAF {
		return "libvmaf"
	}
	return string(m)
}

// Label is how m is printed ("SSIM 0.98", "VMAF 95").
func (m Metric) Label() string { return strings.ToUpper(string(m)) }

// valid reports whether target t is a meaningful target for m.
func (m Metric) valid(t float64) error {
	switch m {
	case SSIM:
		if t <= 0 || t >= 1 {
			return fmt.Errorf("an SSIM target is the filter's value, between 0 and 1 (e.g. 0.98), found %s", fmtNum(t))
		}
	case VMAF:
		if t <= 0 || t > 100 {
			return fmt.Errorf("a VMAF target is between 0 and 100 (e.g. 95), found %s", fmtNum(t))
		}
	case XPSNR:
		if t <= 0 || t > 100 {
			return fmt.Errorf("an XPSNR target is in decibels (e.g. 40), found %s", fmtNum(t))
		}
	default:
		return fmt.Errorf("unknown metric %q (ssim, vmaf or xpsnr)", string(m))
	}
	return nil
}

// Defaults of the quality: key.
const (
	DefaultSamples       = 4
	DefaultSampleSeconds = 10
	DefaultMaxSizePct    = 100
	// MaxRounds bounds the search: each round encodes every sample once.
	MaxRounds = 6
)

// Config is a quality: key: what to aim for, and how to search for it.
type Config struct {
	Metric Metric
	Target float64 // in the metric's own unit (SSIM 0.98, VMAF 95, XPSNR 40 dB)

	// Min and Max bound the encoder's quality level (its own scale: -crf
	// 18 to 34). Nil: the encoder's range.
	Min, Max *float64
	// MaxSizePct is the largest output allowed, in % of the source
	// (default 100: never bigger than the source).
	MaxSizePct float64
	// Samples and SampleSeconds: how many samples, how long each (see
	// Place for short films).
	Samples       int
	SampleSeconds float64
}

// Default returns the defaults with metric m and target t.
func Default(m Metric, t float64) *Config {
	return &Config{Metric: m, Target: t, MaxSizePct: DefaultMaxSizePct, Samples: DefaultSamples, SampleSeconds: DefaultSampleSeconds}
}

// Check reports the first problem of c that does not depend on the
// encoder (those are checked by Bounds).
func (c *Config) Check() error {
	if c.Metric == "" {
		return fmt.Errorf("metric is required (ssim, vmaf or xpsnr)")
	}
	if c.Target == 0 {
		return fmt.Errorf("target is required (e.g. target: 95 for VMAF, 0.98 for SSIM)")
	}
	if err := c.Metric.valid(c.Target); err != nil {
		return err
	}
	if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
		return fmt.Errorf("min %s is above max %s", fmtNum(*c.Min), fmtNum(*c.Max))
	}
	if c.MaxSizePct <= 0 || c.MaxSizePct > 1000 {
		return fmt.Errorf("max_size must be a percentage of the source above 0 (e.g. 80), found %s", fmtNum(c.MaxSizePct))
	}
	if c.Samples < 1 || c.Samples > 100 {
		return fmt.Errorf("samples must be from 1 to 100, found %d", c.Samples)
	}
	if c.SampleSeconds < MinSampleSeconds {
		return fmt.Errorf("sample_seconds must be at least %s, found %s", fmtNum(MinSampleSeconds), fmtNum(c.SampleSeconds))
	}
	return nil
}

// Clone returns a copy of c that shares nothing with it.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	d := *c
	if c.Min != nil {
		v := *c.Min
		d.Min = &v
	}
	if c.Max != nil {
		v := *c.Max
		d.Max = &v
	}
	return &d
}

// ParseTarget parses --target's METRIC=VALUE ("ssim=0.98", "vmaf=95").
func ParseTarget(s string) (Metric, float64, error) {
	name, val, ok := strings.Cut(s, "=")
	if !ok {
		return "", 0, fmt.Errorf("expected METRIC=VALUE (ssim=0.98, vmaf=95, xpsnr=40), found %q", s)
	}
	m := Metric(strings.ToLower(strings.TrimSpace(name)))
	v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return "", 0, fmt.Errorf("%q: the target is not a number", s)
	}
	if err := m.valid(v); err != nil {
		return "", 0, err
	}
	return m, v, nil
}

// Level is how an encoder takes its quality level, for the search: the
// range, and which way is better (internal/encoder.Quality says it; this
// package keeps its own copy so that it depends on nothing).
type Level struct {
	Min, Max       float64
	HigherIsBetter bool
}

// Bounds are the levels the search may try: the config's bounds, within
// the encoder's range.
func (c *Config) Bounds(l Level) (lo, hi float64, err error) {
	lo, hi = l.Min, l.Max
	if c.Min != nil {
		if *c.Min < l.Min || *c.Min > l.Max {
			return 0, 0, fmt.Errorf("min %s is outside the encoder's range %s to %s", fmtNum(*c.Min), fmtNum(l.Min), fmtNum(l.Max))
		}
		lo = *c.Min
	}
	if c.Max != nil {
		if *c.Max < l.Min || *c.Max > l.Max {
			return 0, 0, fmt.Errorf("max %s is outside the encoder's range %s to %s", fmtNum(*c.Max), fmtNum(l.Min), fmtNum(l.Max))
		}
		hi = *c.Max
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("min %s is above max %s", fmtNum(lo), fmtNum(hi))
	}
	return lo, hi, nil
}

// Clamp returns c with bounds outside the encoder's range l moved to its
// nearest end, and says what moved ("" nothing did). A profile with
// encoder variants searches the one its file is pinned to, whose range the
// user could not know when writing min and max: their bounds hold where
// they can, rather than failing the file.
func (c *Config) Clamp(l Level) (*Config, string) {
	d := c.Clone()
	var moved []string
	clamp := func(name string, v *float64) {
		if v == nil || *v >= l.Min && *v <= l.Max {
			return
		}
		to := math.Min(math.Max(*v, l.Min), l.Max)
		moved = append(moved, fmt.Sprintf("%s %s to %s", name, fmtNum(*v), fmtNum(to)))
		*v = to
	}
	clamp("min", d.Min)
	clamp("max", d.Max)
	if len(moved) == 0 {
		return d, ""
	}
	return d, fmt.Sprintf("%s (the encoder's range is %s to %s)", strings.Join(moved, ", "), fmtNum(l.Min), fmtNum(l.Max))
}

func fmtNum(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// FormatLevel prints a level as the encoder's option takes it.
func FormatLevel(v float64) string { return fmtNum(v) }
