package profiles

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitShell(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "  -c:v   libx264\t-crf 20 ", want: []string{"-c:v", "libx264", "-crf", "20"}},
		{in: `-metadata title="A B"`, want: []string{"-metadata", "title=A B"}},
		{in: `-metadata 'title=A "B"'`, want: []string{"-metadata", `title=A "B"`}},
		{in: `-metadata title=A\ B`, want: []string{"-metadata", "title=A B"}},
		{in: `-metadata title="say \"hi\""`, want: []string{"-metadata", `title=say "hi"`}},
		{in: `-metadata comment=""`, want: []string{"-metadata", "comment="}},
		{in: `-vtag ''`, want: []string{"-vtag", ""}},
		{in: `-vf subtitles=C:\media\x.srt`, want: []string{"-vf", `subtitles=C:\media\x.srt`}},
		{in: `a\\b`, want: []string{`a\b`}},
		{in: `-vf "drawtext=text='x y'"`, want: []string{"-vf", "drawtext=text='x y'"}},
		{in: `-f matroska; rm -rf /`, want: []string{"-f", "matroska;", "rm", "-rf", "/"}},
		{in: `-metadata title="A B`, wantErr: true},
		{in: `-metadata title='A B`, wantErr: true},
	}
	for _, tc := range tests {
		got, err := SplitShell(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("SplitShell(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !slices.Equal(got, tc.want) {
			t.Errorf("SplitShell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOptionForms(t *testing.T) {
	l := mustLoad(t, `
profiles:
  str:
    extension: mkv
    output_options: -f matroska -metadata title="A B" -map 0:v -map 0:a
  list:
    extension: .mkv
    input_options:
    output_options:
      - "-c:v libx264 -preset fast"
      - -map 0:v
      - -map 0:a
      - -metadata title="My Movie"
      - -metadata comment=x
      - -crf
      - 20
      -
  empty:
    extension: .mp4
    output_options: ""
    output_options_audio: []
`)
	str := l.get(t, "str")
	eqWords(t, "string form", str.Output.Args(), "-f matroska -metadata title=A~B -map 0:v -map 0:a")
	list := l.get(t, "list")
	got := list.Output.Args()
	want := []string{"-c:v", "libx264", "-preset", "fast", "-map", "0:v", "-map", "0:a",
		"-metadata", "title=My Movie", "-metadata", "comment=x", "-crf", "20"}
	if !slices.Equal(got, want) {
		t.Errorf("list form:\n got %q\nwant %q", got, want)
	}
	if !list.Input.IsSet() || len(list.Input.Args()) != 0 {
		t.Errorf("null input_options: set=%v args=%q, want a present empty section", list.Input.IsSet(), list.Input.Args())
	}
	if str.Extension != ".mkv" {
		t.Errorf("extension without dot: got %q, want .mkv", str.Extension)
	}
	e := l.get(t, "empty")
	if len(e.Output.Args())+len(e.Audio.Args()) != 0 {
		t.Errorf("empty sections produced words: %q %q", e.Output.Args(), e.Audio.Args())
	}
	ws := l.warnings()
	for _, w := range []string{
		`t.yml:9:9: profiles.list.output_options[0]: kept whole as ["-c:v" "libx264" "-preset" "fast"]`,
		`t.yml:12:9: profiles.list.output_options[3]: kept whole as ["-metadata" "title=My Movie"]`,
		"t.yml:11:9: profiles.list.output_options[2]: repeated -map is kept",
		"t.yml:13:9: profiles.list.output_options[4]: repeated -metadata is kept",
	} {
		if !hasWarning(ws, w) {
			t.Errorf("missing warning %q in %q", w, ws)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{`
profiles:
  p:
    output_options: -metadata title="A B
`, `t.yml:3:21: profiles.p.output_options: unterminated quote`},
		{`
profiles:
  p:
    output_options:
      - -c:v x
      - -metadata 'x
`, `t.yml:5:9: profiles.p.output_options[1]: unterminated quote`},
		{`
profiles:
  p:
    output_options: {a: b}
`, `t.yml:3:21: profiles.p.output_options: expected ffmpeg options`},
		{`
profiles:
  p:
    output_options:
      - [a, b]
`, `t.yml:4:9: profiles.p.output_options[0]: expected a single value`},
	}
	for _, tc := range tests {
		_, err := load(tc.src, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error = %v, want it to contain %q", err, tc.want)
		}
	}
}

func TestMergeOptions(t *testing.T) {
	tests := []struct {
		name, parent, child, want string
	}{
		{"child flag replaces parent value in place", "-f matroska -crf 20 -c:a copy", "-crf 18", "-f matroska -crf 18 -c:a copy"},
		{"new child flags appended", "-f matroska", "-c:v hevc -preset slow", "-f matroska -c:v hevc -preset slow"},
		{"repeated -map set replaced whole", "-map 0:v -f matroska -map 0:a", "-map 0 -map -0:d", "-map 0 -map -0:d -f matroska"},
		{"negative numbers are values", "-strict -2 -crf 20", "-strict -1", "-strict -1 -crf 20"},
		{"valueless flags", "-an -sn -crf 20", "-sn", "-an -sn -crf 20"},
		{"absent child keeps parent", "-crf 20", "<absent>", "-crf 20"},
		{"absent parent keeps child", "<absent>", "-crf 18", "-crf 18"},
		{"empty child keeps parent", "-crf 20", "", "-crf 20"},
	}
	opt := func(s string) Options {
		if s == "<absent>" {
			return Options{}
		}
		o, err := ParseOptions(s)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	for _, tc := range tests {
		got := mergeOptions(opt(tc.parent), opt(tc.child)).Args()
		if !slices.Equal(got, words(tc.want)) && !(len(got) == 0 && tc.want == "") {
			t.Errorf("%s: merge(%q, %q) = %q, want %q", tc.name, tc.parent, tc.child, got, tc.want)
		}
	}
}

func TestOptionsHasAndCopy(t *testing.T) {
	o := NewOptions("-c:v", "libx264", "-map", "0")
	if !o.Has("-map") || o.Has("0") || o.Has("-crf") {
		t.Errorf("Has: -map=%v 0=%v -crf=%v, want true false false", o.Has("-map"), o.Has("0"), o.Has("-crf"))
	}
	a := o.Args()
	a[0] = "changed"
	if o.Args()[0] != "-c:v" {
		t.Error("Args returned the internal slice")
	}
}
