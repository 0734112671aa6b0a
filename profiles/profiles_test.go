package profiles

import (
	"slices"
	"strings"
	"testing"
)

const includeCfg = `
profiles:
  base:
    output_options:
      - -f matroska
      - -max_muxing_queue_size 1024
      - -crf 20
      - -map 0:v
      - -map 0:a
    output_options_audio: -c:a copy
    extension: '.mkv'
    threshold: 18
    threshold_check: 20
    audio:
      include_languages: [eng]
      default_language: eng
  cuda:
    input_options: -hwaccel cuda
    output_options_video:
      - -c:v hevc_nvenc
      - -preset slow
    queue: cuda
    threshold: 10
    extension: .mp4
  hevc_cuda:
    include: "base cuda"
    output_options:
      - -crf 18
      - -map 0
    output_options_video:
      - -b:v 4000K
    output_options_audio: -c:a ac3 -b:a 768k
  chain:
    include: hevc_cuda
    threshold: 0
    queue: ""
`

func TestInclude(t *testing.T) {
	l := mustLoad(t, includeCfg)
	p := l.get(t, "hevc_cuda")
	tests := []struct{ what, got, want string }{
		{"input_options (from cuda)", strings.Join(p.Input.Args(), " "), "-hwaccel cuda"},
		{"output_options (child wins by flag, -map set replaced)", strings.Join(p.Output.Args(), " "),
			"-f matroska -max_muxing_queue_size 1024 -crf 18 -map 0"},
		{"video (cuda's, plus child's new flag)", strings.Join(p.Video.Args(), " "), "-c:v hevc_nvenc -preset slow -b:v 4000K"},
		{"audio (string child merged by flag)", strings.Join(p.Audio.Args(), " "), "-c:a ac3 -b:a 768k"},
		{"extension: earlier parent wins", p.Extension, ".mkv"},
		{"queue: only cuda sets it", p.Queue, "cuda"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.what, tc.got, tc.want)
		}
	}
	if p.Threshold != 18 || p.ThresholdCheck != 20 {
		t.Errorf("threshold/check = %d/%d, want 18/20 (earlier parent base wins over cuda)", p.Threshold, p.ThresholdCheck)
	}
	if p.AudioSel == nil || !slices.Equal(p.AudioSel.Include, []string{"eng"}) || p.AudioSel.Default != "eng" {
		t.Errorf("audio selection not inherited whole: %+v", p.AudioSel)
	}
	if p.AudioSel == l.get(t, "base").AudioSel {
		t.Error("audio selection shared with the parent (aliasing)")
	}

	// A chain: chain ← hevc_cuda ← base, cuda; explicit zero values win.
	c := l.get(t, "chain")
	if c.Threshold != 0 || c.Queue != "" || c.ThresholdCheck != 20 || c.Extension != ".mkv" {
		t.Errorf("chain: threshold=%d queue=%q check=%d ext=%q, want 0 \"\" 20 .mkv", c.Threshold, c.Queue, c.ThresholdCheck, c.Extension)
	}
	eqWords(t, "chain video", c.Video.Args(), "-c:v hevc_nvenc -preset slow -b:v 4000K")

	// Parents are never modified by the children that include them.
	eqWords(t, "base output after includes", l.get(t, "base").Output.Args(),
		"-f matroska -max_muxing_queue_size 1024 -crf 20 -map 0:v -map 0:a")
	eqWords(t, "cuda video after includes", l.get(t, "cuda").Video.Args(), "-c:v hevc_nvenc -preset slow")
	if got := l.set.Names(); !slices.Equal(got, []string{"base", "cuda", "hevc_cuda", "chain"}) {
		t.Errorf("Names = %q, want file order", got)
	}
	if !hasWarning(l.warnings(), "t.yml:24:3: profiles.hevc_cuda.output_options_audio: string-form section merged with base's") {
		t.Errorf("no warning about the string-form merge: %q", l.warnings())
	}
}

func TestIncludeErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"unknown", `
profiles:
  a:
    include: base nosuch
    extension: .mkv
  base: {extension: .mkv}
`, `t.yml:3:14: profiles.a.include: included "base" not defined above`},
		{"defined below", `
profiles:
  a:
    extension: .mkv
  b:
    include: a c
  c:
    extension: .mkv
`, `t.yml:5:14: profiles.b.include: included "c" not defined above`},
		{"self", `
profiles:
  a:
    include: [a]
`, `t.yml:3:14: profiles.a.include: included "a" not defined above`},
	}
	for _, tc := range tests {
		_, err := load(tc.src, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestMixins(t *testing.T) {
	l := mustLoad(t, `
profiles:
  main:
    input_options: -hwaccel cuda
    output_options: -f matroska
    output_options_video: -c:v hevc_nvenc
    extension: .mkv
  mp3_hq:
    output_options_audio:
      - -c:a libmp3lame
      - -q:a 330
  aac:
    output_options_audio: -c:a aac
    output_options_subtitle: -c:s copy
  x264:
    input_options: -ignored
    output_options: -ignored
    output_options_video: -c:v libx264
`)
	main := l.get(t, "main")
	tests := []struct {
		mixins                   []string
		audio, video, sub, input string
	}{
		{nil, "", "-c:v hevc_nvenc", "", "-hwaccel cuda"},
		{[]string{"mp3_hq"}, "-c:a libmp3lame -q:a 330", "-c:v hevc_nvenc", "", "-hwaccel cuda"},
		{[]string{"mp3_hq", "aac"}, "-c:a aac", "-c:v hevc_nvenc", "-c:s copy", "-hwaccel cuda"}, // last wins
		{[]string{"aac", "mp3_hq"}, "-c:a libmp3lame -q:a 330", "-c:v hevc_nvenc", "-c:s copy", "-hwaccel cuda"},
		{[]string{"x264"}, "", "-c:v libx264", "", "-hwaccel cuda"},
	}
	for _, tc := range tests {
		p, err := l.set.WithMixins(main, tc.mixins)
		if err != nil {
			t.Fatalf("WithMixins(%v): %v", tc.mixins, err)
		}
		for _, c := range []struct {
			sec  string
			got  []string
			want string
		}{
			{"audio", p.Audio.Args(), tc.audio}, {"video", p.Video.Args(), tc.video},
			{"subtitle", p.Subtitle.Args(), tc.sub}, {"input", p.Input.Args(), tc.input},
			{"output", p.Output.Args(), "-f matroska"},
		} {
			eqWords(t, strings.Join(tc.mixins, ",")+" "+c.sec, c.got, c.want)
		}
	}
	if len(main.Audio.Args()) != 0 {
		t.Error("WithMixins modified the original profile")
	}
	if _, err := l.set.WithMixins(main, []string{"aac", "nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown mixin: error = %v, want one naming \"nope\"", err)
	}
}

func TestTemplates(t *testing.T) {
	l := mustLoad(t, `
profiles:
  qsv:
    output_options: -old
    extension: .mp4
templates:
  qsv:
    cli:
      input-options: ["-hwaccel", "qsv"]
      video-codec: "-c:v hevc_qsv -preset medium -f matroska"
      audio-codec: "-c:a copy"
      subtitles:
    audio-lang: "eng *jpn"
    subtitle-lang: eng
    threshold: 15
    threshold_check: "30%"
    queue: qsv
    extension: mkv
  plain:
    cli:
      video-codec: -c:v libx264
      audio-codec: ""
`)
	q := l.get(t, "qsv")
	if !q.Template || q.Extension != ".mkv" || q.Queue != "qsv" || q.Threshold != 15 || q.ThresholdCheck != 30 {
		t.Errorf("template fields: %+v", q)
	}
	if len(q.Output.Args()) != 0 {
		t.Errorf("template kept the replaced profile's options: %q", q.Output.Args())
	}
	if !hasWarning(l.warnings(), `t.yml:6:3: templates.qsv: template replaces the profile "qsv" defined at t.yml:2`) {
		t.Errorf("no namespace warning: %q", l.warnings())
	}
	if q.AudioSel == nil || !slices.Equal(q.AudioSel.Include, []string{"eng", "jpn"}) || q.AudioSel.Default != "jpn" {
		t.Errorf("audio-lang: %+v, want include [eng jpn] default jpn", q.AudioSel)
	}
	if q.SubtitleSel == nil || q.SubtitleSel.Default != "eng" {
		t.Errorf("single subtitle-lang is the default: %+v", q.SubtitleSel)
	}
	info := mkInfo(stream(1, "audio", "aac", "eng", true), stream(2, "audio", "aac", "jpn", false),
		stream(3, "audio", "aac", "fre", false), stream(4, "subtitle", "subrip", "eng", false))
	in, out := q.Args(info, true)
	eqWords(t, "template in", in, "-hwaccel qsv")
	eqWords(t, "template out", out, "-c:v hevc_qsv -preset medium -f matroska -c:a copy "+
		"-map 0:0 -map 0:1 -map 0:2 -map 0:4") // no default track dropped: flags untouched
	for _, w := range out {
		if w == "" {
			t.Errorf("empty argv word in %q", out)
		}
	}

	p := l.get(t, "plain")
	_, out = p.Args(info, true)
	eqWords(t, "template without langs", out, "-c:v libx264 -map 0")
	if err := p.Validate(); err == nil || err.Error() != "t.yml:18:3: templates.plain: extension is required (e.g. extension: .mkv)" {
		t.Errorf("template without extension: Validate() = %v", err)
	}

	_, err := load(`
templates:
  nocli:
    extension: .mkv
`, false)
	if err == nil || !strings.Contains(err.Error(), "t.yml:2:3: templates.nocli: a template needs a cli: section") {
		t.Errorf("template without cli: error = %v", err)
	}
}

func TestExtensionRequired(t *testing.T) {
	l := mustLoad(t, `
profiles:
  mp3_hq:
    output_options_audio: -c:a libmp3lame
  hevc:
    output_options: -c:v libx265
  child:
    include: mp3_hq
    extension: webm
`)
	err := l.get(t, "hevc").Validate()
	want := "t.yml:4:3: profiles.hevc: extension is required (e.g. extension: .mkv)"
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want %q", err, want)
	}
	if _, err := l.get(t, "hevc").Plan(mkInfo(), true); err == nil || err.Error() != want {
		t.Errorf("Plan() error = %v, want %q", err, want)
	}
	if err := l.get(t, "child").Validate(); err != nil {
		t.Errorf("child with extension: %v", err)
	}
	if got := l.get(t, "child").Extension; got != ".webm" {
		t.Errorf("extension = %q, want .webm", got)
	}
	// Mixin-only fragments still load, and still work as mixins.
	if _, err := l.set.WithMixins(l.get(t, "child"), []string{"mp3_hq"}); err != nil {
		t.Error(err)
	}
	if err := (&Profile{Name: "x"}).Validate(); err == nil || !strings.Contains(err.Error(), `profile "x": extension is required`) {
		t.Errorf("unpositioned Validate() = %v", err)
	}
}

func TestAutomapBools(t *testing.T) {
	tests := []struct {
		val     string
		want    bool
		wantErr bool
	}{
		{"yes", true, false}, {"no", false, false}, {"on", true, false}, {"off", false, false},
		{"True", true, false}, {"false", false, false}, {"Y", true, false}, {"'no'", false, false},
		{"maybe", false, true},
	}
	info := mkInfo(stream(1, "audio", "aac", "eng", false), stream(2, "audio", "aac", "spa", false))
	for _, tc := range tests {
		l, err := load("profiles:\n  p:\n    extension: .mkv\n    automap: "+tc.val+"\n", false)
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), "t.yml:4:14: profiles.p.automap: expected yes/no") {
				t.Errorf("automap %s: error = %v", tc.val, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("automap %s: %v", tc.val, err)
		}
		p := l.get(t, "p")
		if p.Automap == nil || *p.Automap != tc.want {
			t.Errorf("automap %s: got %v, want %v", tc.val, p.Automap, tc.want)
		}
		// The profile setting overrides the global one, both ways.
		for _, global := range []bool{true, false} {
			_, out := p.Args(info, global)
			if mapped := slices.Contains(out, "-map"); mapped != tc.want {
				t.Errorf("automap %s, global %v: mapped=%v, want %v", tc.val, global, mapped, tc.want)
			}
		}
	}
}

func TestUnknownAndDeadKeys(t *testing.T) {
	src := `
profiles:
  p:
    extension: .mkv
    output_option: -crf 20
    processor: hbcli
    output_options_subtitles: -c:s copy
    audio:
      include_language: eng
`
	l, err := load(src, false)
	if err != nil {
		t.Fatal(err)
	}
	ws := l.warnings()
	for _, w := range []string{
		"t.yml:4:5: profiles.p.output_option: unknown key; did you mean output_options?; ignored",
		"t.yml:5:5: profiles.p.processor: ignored: HandBrakeCLI",
		"t.yml:6:5: profiles.p.output_options_subtitles: did you mean output_options_subtitle?",
		"t.yml:8:7: profiles.p.audio.include_language: unknown key; did you mean include_languages",
	} {
		if !hasWarning(ws, w) {
			t.Errorf("missing warning %q in %q", w, ws)
		}
	}
	eqWords(t, "misspelt subtitle section is used", l.get(t, "p").Subtitle.Args(), "-c:s copy")

	_, err = load(src, true)
	if err == nil || !strings.Contains(err.Error(), "t.yml:4:5: profiles.p.output_option: unknown key; did you mean output_options? (--strict") {
		t.Errorf("strict: error = %v", err)
	}
}

func TestThresholds(t *testing.T) {
	tests := []struct {
		val     string
		want    int
		wantErr string
	}{
		{"15", 15, ""}, {`"15"`, 15, ""}, {`"15%"`, 15, ""}, {"0", 0, ""},
		{"101", 0, "t.yml:4:16: profiles.p.threshold: expected a percentage from 0 to 100"},
		{"lots", 0, "t.yml:4:16: profiles.p.threshold: expected a whole number"},
	}
	for _, tc := range tests {
		l, err := load("profiles:\n  p:\n    extension: .mkv\n    threshold: "+tc.val+"\n", false)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("threshold %s: error = %v, want %q", tc.val, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("threshold %s: %v", tc.val, err)
		}
		if p := l.get(t, "p"); p.Threshold != tc.want || p.ThresholdCheck != 100 {
			t.Errorf("threshold %s: got %d (check %d), want %d (check 100)", tc.val, p.Threshold, p.ThresholdCheck, tc.want)
		}
	}
}
