package profiles

import (
	"strings"
	"testing"

	"clustertx/media"
)

// ruleMedia is the research report's truth-table file: h264 1920x1080,
// 45 min, 2500.5 MB, 23.976 fps, under /media/anime, with aac+ac3 audio and
// one subrip subtitle.
func ruleMedia() *media.Info {
	info := mkInfo(stream(1, "audio", "aac", "jpn", true), stream(2, "audio", "ac3", "eng", false),
		stream(3, "subtitle", "subrip", "eng", false))
	info.Path = "/media/anime/Show S01E01.mkv"
	info.Duration = 45*60 + 20
	info.Size = int64(2500.5 * 1048576)
	info.Video.FPS = 24000.0 / 1001
	return info
}

func TestParsePredicateMatch(t *testing.T) {
	tests := []struct {
		name, value string
		want        bool
	}{
		{"res_height", "1080", true},
		{"res_height", " 1080 ", true},
		{"res_height", ">720", true},
		{"res_height", "> 720", true},
		{"res_height", "<720", false},
		{"res_height", "<=1080", true},
		{"res_height", ">=1081", false},
		{"res_height", "720-1080", true},
		{"res_height", "720 - 1079", false},
		{"res_height", "!720", true},
		{"res_height", "!1080", false},
		{"res_height", "! >720", false},
		{"res_height", "=1080", true},
		{"res_width", "1920", true},
		{"runtime", "45", true}, // whole minutes: 45:20 is 45 minutes
		{"runtime", "46", false},
		{"runtime", "40-50", true},
		{"runtime", ">44", true},
		{"runtime", ">45.5", false},
		{"filesize_mb", ">2500", true},
		{"filesize_mb", "2500.5", true}, // pytranscoder: float never equals
		{"filesize_mb", "2500", false},
		{"filesize_mb", "2000-2500.5", true},
		// fps is truncated as pytranscoder did: 23.976 is 23.
		{"fps", "23", true},
		{"fps", "23.976", false}, // pytranscoder: never equal either
		{"fps", "24", false},
		{"fps", ">23", false},
		{"fps", ">22", true},
		{"fps", "<24", true},
		{"fps", "<=23.976", true},
		{"fps", "23-30", true},
		{"fps", "!>25", true},
		{"vcodec", "h264", true},
		{"vcodec", "H264", true},
		{"vcodec", "!hevc", true},
		{"vcodec", "!h264", false},
		{"acodec", "ac3", true}, // any audio stream
		{"acodec", "!ac3", false},
		{"acodec", "dts", false},
		{"acodec", "!dts", true},
		{"scodec", "subrip", true},
		{"scodec", "ass", false},
		{"scodec", "!ass", true},
		{"path", "/anime/", true},
		{"path", "!/anime/", false}, // pytranscoder ignored the !
		{"path", "!^/media/tv", true},
		{"path", "^/media/tv", false},
		{"path", `S\d+E\d+`, true},
		{"path", "(?i)/ANIME/", true},
		// Python re features (Go's regexp refused them on main):
		{"path", "^(?!.*/anime/)", false},
		{"path", "^(?!.*/tv/)", true},
		{"path", "(?<=/media/)anime", true},
		{"path", "(?<!/media/)anime", false},
		{"path", `/(?P<dir>\w+)/(?P=dir)`, false},
		{"path", `(?P<show>Show) S\d+`, true},
		{"path", `[(?P<]anime`, false}, // inside a class (?P< is literal
	}
	info := ruleMedia()
	for _, tc := range tests {
		p, err := ParsePredicate(tc.name, tc.value)
		if err != nil {
			t.Errorf("ParsePredicate(%s, %q): %v", tc.name, tc.value, err)
			continue
		}
		if got := p.Match(info); got != tc.want {
			t.Errorf("%s %q: Match = %v, want %v", tc.name, tc.value, got, tc.want)
		}
	}
}

func TestParsePredicateErrors(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"res_height", "abc", `invalid value "abc"`},
		{"res_height", "<", `invalid value "<"`},
		{"res_height", "=>720", `invalid value "=>720"`},
		{"res_height", "-720", `invalid value "-720"`},
		{"res_height", "1081-720", `invalid range "1081-720"`},
		{"res_height", "720-", `invalid value "720-"`},
		{"fps", "", `invalid value ""`},
		{"vcodec", "!", "expected a codec name"},
		{"path", "(unclosed", `invalid regular expression "(unclosed"`},
		{"path", "(?<!x", `invalid regular expression`},
		{"source_size", "<100", "never implemented; use filesize_mb"},
		{"res_heigth", "720", "unknown predicate \"res_heigth\"; did you mean res_height? (valid: vcodec,"},
		{"res", "720", "unknown predicate \"res\"; did you mean res_height or res_width? (valid:"},
		{"filesize", "<100", "unknown predicate \"filesize\"; did you mean filesize_mb? (valid:"},
	}
	for _, tc := range tests {
		_, err := ParsePredicate(tc.name, tc.value)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePredicate(%s, %q) error = %v, want it to contain %q", tc.name, tc.value, err, tc.want)
		}
	}
}

const rulesProfiles = `
profiles:
  hevc:
    extension: .mkv
  anime:
    extension: .mkv
  mp3_hq:
    output_options_audio: -c:a libmp3lame
templates:
  tmpl:
    cli: {video-codec: -c:v libx265}
    extension: .mkv
`

func TestDecodeRules(t *testing.T) {
	l := mustLoad(t, rulesProfiles+`
rules:
  'already hevc':
    profile: skip
    criteria:
      vcodec: hevc
  'small enough':
    profile: SKIP
    criteria:
      filesize_mb: '<2000'
      res_height: 721-1081
  'anime':
    profile: anime
    criteria:
      path: '/anime/'
      res_height: 1080
      fps: 23
  'template':
    profile: tmpl
    criteria:
      acodec: '!aac'
  'default':
    profile: hevc
`)
	if len(l.rules) != 5 {
		t.Fatalf("got %d rules, want 5", len(l.rules))
	}
	r0 := l.rules[0]
	if !r0.Skip || r0.Name != "already hevc" || r0.Pos != "t.yml:14" || len(r0.Criteria) != 1 {
		t.Errorf("rule 0 = %+v", r0)
	}

	anime := ruleMedia()
	hevc := ruleMedia()
	hevc.Video.Codec = "hevc"
	small := ruleMedia()
	small.Path, small.Size = "/media/tv/x.mkv", 1500*1048576
	tv := ruleMedia()
	tv.Path = "/media/tv/x.mkv"
	noAAC := ruleMedia()
	noAAC.Path, noAAC.Audio = "/media/tv/x.mkv", noAAC.Audio[1:]
	tests := []struct {
		what string
		info *media.Info
		want string
	}{
		{"hevc is skipped before anything else", hevc, "already hevc"},
		{"small file skipped", small, "small enough"},
		{"anime path", anime, "anime"},
		{"no aac audio → template", noAAC, "template"},
		{"falls through to the rule without criteria", tv, "default"},
	}
	for _, tc := range tests {
		r := MatchRules(l.rules, tc.info)
		if r == nil || r.Name != tc.want {
			t.Errorf("%s: matched %v, want %q", tc.what, r, tc.want)
		}
	}
	if r := MatchRules(l.rules[:4], tv); r != nil {
		t.Errorf("no rule should match, got %q", r.Name)
	}
}

func TestDecodeRulesErrors(t *testing.T) {
	tests := []struct{ name, rules, want string }{
		{"bad predicate", `
  r:
    profile: hevc
    criteria:
      res_heigth: 720`, `t.yml:16:7: rules.r.criteria.res_heigth: unknown predicate "res_heigth"`},
		{"bad numeric value", `
  r:
    profile: hevc
    criteria:
      runtime: 'about 40'`, `t.yml:16:16: rules.r.criteria.runtime: invalid value "about 40"`},
		{"bad regex", `
  r:
    profile: hevc
    criteria:
      path: '[a-'`, `t.yml:16:13: rules.r.criteria.path: invalid regular expression "[a-"`},
		{"unknown profile", `
  r:
    profile: hevcc`, `t.yml:14:14: rules.r.profile: no profile or template named "hevcc"; did you mean hevc`},
		{"missing profile", `
  r:
    criteria: {vcodec: hevc}`, `t.yml:13:3: rules.r.profile: a rule needs a profile`},
		{"criteria as a list", `
  r:
    profile: hevc
    criteria:
      - vcodec: hevc`, `t.yml:16:7: rules.r.criteria: criteria must be a mapping`},
		{"list value", `
  r:
    profile: hevc
    criteria:
      vcodec: [hevc, h264]`, `t.yml:16:15: rules.r.criteria.vcodec: expected a single value`},
	}
	for _, tc := range tests {
		_, err := load(rulesProfiles+"rules:"+tc.rules+"\n", false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v\nwant it to contain %q", tc.name, err, tc.want)
		}
	}

	_, err := load(rulesProfiles+"rules:\n  r:\n    profile: hevc\n    priority: 1\n", false)
	if err == nil || !strings.Contains(err.Error(), "t.yml:15:5: rules.r.priority: unknown key (an unknown key in a rule is an error") {
		t.Errorf("unknown rule key: err = %v", err)
	}
	l, err := load(rulesProfiles+"rules:\n  r:\n    profile: hevc\n  frag:\n    profile: mp3_hq\n", false)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"t.yml:16:14: rules.frag.profile: files matching this rule will fail: t.yml:6:3: profiles.mp3_hq: extension is required",
	} {
		if !hasWarning(l.warnings(), w) {
			t.Errorf("missing warning %q in %q", w, l.warnings())
		}
	}
}

func TestRuleNilInfo(t *testing.T) {
	p, _ := ParsePredicate("vcodec", "!hevc")
	r := &Rule{Name: "x", Criteria: []*Predicate{p}}
	if r.Match(nil) {
		t.Error("a criterion matched a file without probe data")
	}
	if !(&Rule{Name: "default"}).Match(nil) {
		t.Error("a rule without criteria must always match")
	}
}

func TestPythonToNet(t *testing.T) {
	for in, want := range map[string]string{
		`(?P<name>x)(?P=name)`: `(?<name>x)\k<name>`,
		`\(?P<x>`:              `\(?P<x>`,
		`[(?P<]`:               `[(?P<]`,
		`[]](?P<a>b)`:          `[]](?<a>b)`,
		`^(?!.*/anime/)`:       `^(?!.*/anime/)`,
	} {
		if got := pythonToNet(in); got != want {
			t.Errorf("pythonToNet(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPathRegexBackrefAndUnicode(t *testing.T) {
	info := &media.Info{Path: "/media/Amélie/Amélie.mkv"}
	for _, tc := range []struct {
		re   string
		want bool
	}{
		{`/(?P<d>\w+)/(?P=d)\.mkv$`, true}, // \w is Unicode, as in Python 3
		{`^/media/\w+/`, true},
		{`Amelie`, false},
	} {
		p, err := ParsePredicate("path", tc.re)
		if err != nil {
			t.Fatalf("%q: %v", tc.re, err)
		}
		if got := p.Match(info); got != tc.want {
			t.Errorf("path %q on %s: %v, want %v", tc.re, info.Path, got, tc.want)
		}
	}
}

func TestFPSFractionWarns(t *testing.T) {
	l := mustLoad(t, `
profiles:
  hevc: {extension: .mkv}
rules:
  film:
    profile: hevc
    criteria:
      fps: '23.976'
`)
	if ws := l.warnings(); !hasWarning(ws, `t.yml:7:12: rules.film.criteria.fps: fps "23.976": frame rates are compared as whole numbers`) {
		t.Errorf("warnings = %q", ws)
	}
	if MatchRules(l.rules, ruleMedia()) != nil {
		t.Error("fps: '23.976' matched a 23.976 fps film; pytranscoder never matched it")
	}
}

// Values YAML reads as something else than what was typed: on main an
// unquoted !hevc failed with "expected a codec name", >5 with "invalid
// value" and no word of quoting.
func TestUnquotedCriteria(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"vcodec: !hevc", "t.yml:7:15: rules.r.criteria.vcodec: an unquoted value starting with ! is a YAML tag; quote it: vcodec: '!hevc'"},
		{"path: !/anime/", "quote it: path: '!/anime/'"},
		{"fps: >5", "t.yml:7:12: rules.r.criteria.fps: an unquoted value starting with > or | begins a YAML block scalar; quote it, e.g. fps: '>25'"},
	} {
		_, err := load("profiles:\n  hevc: {extension: .mkv}\nrules:\n  r:\n    profile: hevc\n    criteria:\n      "+tc.yaml+"\n", false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v\nwant it to contain %q", tc.yaml, err, tc.want)
		}
	}
}
