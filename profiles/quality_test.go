package profiles

import (
	"strings"
	"testing"

	"clustertx/quality"
)

func TestQualityKey(t *testing.T) {
	l := mustLoad(t, `
profiles:
  base:
    output_options: -c:v libx265 -crf 24
    extension: .mkv
    quality:
      metric: VMAF
      target: 95
      min: 18
      max: 34
      max_size: 80%
      samples: 6
      sample_seconds: 15s
  child:
    include: base
  short:
    extension: .mkv
    quality: ssim=0.985
rules:
  anime:
    profile: child
    quality: {metric: ssim, target: 0.99}
    criteria:
      path: anime
`)
	b := l.get(t, "base").Quality
	if b == nil || b.Metric != quality.VMAF || b.Target != 95 || *b.Min != 18 || *b.Max != 34 ||
		b.MaxSizePct != 80 || b.Samples != 6 || b.SampleSeconds != 15 {
		t.Fatalf("base: %+v", b)
	}
	c := l.get(t, "child").Quality
	if c == nil || c.Target != 95 || c == b || c.Min == b.Min {
		t.Errorf("child: inherited %+v (must be a copy of base's)", c)
	}
	s := l.get(t, "short").Quality
	if s == nil || s.Metric != quality.SSIM || s.Target != 0.985 || s.Samples != quality.DefaultSamples || s.MaxSizePct != 100 || s.Min != nil {
		t.Errorf("short form: %+v", s)
	}
	if r := l.rules[0].Quality; r == nil || r.Metric != quality.SSIM || r.Target != 0.99 {
		t.Errorf("rule: %+v", r)
	}
	if cl := l.get(t, "base").Clone(); cl.Quality == b || *cl.Quality.Min != 18 {
		t.Errorf("Clone shares the quality config")
	}
}

func TestQualityKeyErrors(t *testing.T) {
	for _, c := range []struct{ yml, want string }{
		{"profiles:\n  p:\n    extension: .mkv\n    quality:\n      metric: ssim\n      target: 98\n", "t.yml:6:15: profiles.p.quality: an SSIM target is the filter's value, between 0 and 1"},
		{"profiles:\n  p:\n    extension: .mkv\n    quality:\n      metric: psnr\n      target: 40\n", "t.yml:5:15: profiles.p.quality.metric: unknown metric"},
		{"profiles:\n  p:\n    extension: .mkv\n    quality:\n      metric: vmaf\n      target: 95\n      min: 30\n      max: 20\n", "min 30 is above max 20"},
		{"profiles:\n  p:\n    extension: .mkv\n    quality: vmaf\n", "t.yml:4:14: profiles.p.quality: expected a mapping"},
		{"profiles:\n  p:\n    extension: .mkv\n    quality:\n      metric: vmaf\n      target: high\n", "t.yml:6:15: profiles.p.quality.target: expected a number"},
		{"profiles:\n  p:\n    extension: .mkv\n    quality:\n      metric: vmaf\n", "target is required"},
		{"profiles:\n  p:\n    extension: .mkv\nrules:\n  r:\n    profile: p\n    quality:\n      metrc: vmaf\n", "t.yml:8:7: rules.r.quality.metrc"},
	} {
		_, err := load(c.yml, true)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant %q", c.yml, err, c.want)
		}
	}
}
