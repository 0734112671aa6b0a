package profiles

import (
	"strings"
	"testing"
)

func TestSplitKey(t *testing.T) {
	l := mustLoad(t, `
profiles:
  base:
    output_options: -c:v libx265
    extension: .mkv
    split:
      min_duration: 1h
      segment: "00:04:30"
  child:
    include: base
  on:
    extension: .mkv
    split: yes
  off:
    include: base
    split: no
rules:
  films:
    profile: child
    split: {min_duration: 45m, segment: 120}
    criteria:
      runtime: '>60'
`)
	for _, c := range []struct {
		name     string
		enabled  bool
		min, seg float64
	}{
		{"base", true, 3600, 270},
		{"child", true, 3600, 270}, // inherited through include
		{"on", true, DefaultSplitMin, DefaultSplitSegment},
		{"off", false, DefaultSplitMin, DefaultSplitSegment}, // its own key wins over the include
	} {
		s := l.get(t, c.name).Split
		if s == nil || s.Enabled != c.enabled || s.MinDuration != c.min || s.Segment != c.seg {
			t.Errorf("%s: split %+v, want enabled=%v min=%v segment=%v", c.name, s, c.enabled, c.min, c.seg)
		}
	}
	if r := l.rules[0]; r.Split == nil || r.Split.MinDuration != 45*60 || r.Split.Segment != 120 {
		t.Errorf("rule split %+v", l.rules[0].Split)
	}
	if s := l.get(t, "base").Split; s.Applies(59*60) || !s.Applies(2*3600) {
		t.Errorf("Applies: 59m and 2h against min 1h wrong")
	}
}

func TestSplitKeyErrors(t *testing.T) {
	for _, c := range []struct{ yml, want string }{
		{"profiles:\n  p:\n    extension: .mkv\n    split:\n      segment: 5 minutes\n", "t.yml:5:16: profiles.p.split.segment"},
		{"profiles:\n  p:\n    extension: .mkv\n    split:\n      segment: 0\n", "at least 1s"},
		{"profiles:\n  p:\n    extension: .mkv\n    split: sometimes\n", "t.yml:4:12: profiles.p.split"},
	} {
		_, err := load(c.yml, false)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error containing %q", c.yml, err, c.want)
		}
	}
	if _, err := load("profiles:\n  p:\n    extension: .mkv\n    split:\n      segmnet: 5m\n", true); err == nil || !strings.Contains(err.Error(), "segment") {
		t.Errorf("misspelt key in strict mode: %v", err)
	}
}

func TestParseSeconds(t *testing.T) {
	for in, want := range map[string]float64{"90": 90, "1.5": 1.5, "5m": 300, "1h30m": 5400, "01:30:00": 5400, "4:30": 270} {
		if got, err := ParseSeconds(in); err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-5", "5 minutes", "1:xx"} {
		if _, err := ParseSeconds(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
