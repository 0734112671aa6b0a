package profiles

import (
	"strings"
	"testing"
)

const variantsCfg = `
profiles:
  hevc:
    input_options: -probesize 50M
    output_options: -f matroska -c copy
    output_options_audio: -c:a copy
    extension: .mkv
    crf: 24
    encoders:
      - encoder: hevc_nvenc
        input_options: -hwaccel cuda
        options: -preset p5 -rc vbr -b:v 0
        crf: 27
      - encoder: hevc_qsv
        options: -preset slow
      - encoder: hevc_vaapi
        options: [-global_quality 30, -qp 23]
      - encoder: hevc_videotoolbox
        crf: 60
      - libx265
      - name: x265-fast
        encoder: libx265
        options: -preset fast
        crf: off
  anime:
    include: hevc
    crf: 26
  tweaked:
    include: hevc
    output_options_video: -c:v libx264 -crf 20
  single:
    output_options_video: -c:v libx265 -crf 22 -preset medium
    extension: .mkv
  cq:
    output_options: -c:v hevc_nvenc -cq:v 21
    extension: .mkv
`

func TestVariantsDecode(t *testing.T) {
	l := mustLoad(t, variantsCfg)
	vs := l.get(t, "hevc").Variants()
	want := []struct {
		key, enc, family, input, video string
		crf                            float64 // 0: nil
	}{
		{"hevc_nvenc", "hevc_nvenc", "nvenc", "-hwaccel cuda", "-c:v hevc_nvenc -preset p5 -rc vbr -b:v 0 -cq 27", 27},
		{"hevc_qsv", "hevc_qsv", "qsv", "", "-c:v hevc_qsv -preset slow -global_quality 24", 24},
		// An explicit quality option wins: no mapped -qp is added, and
		// -global_quality (QSV's, not VAAPI's) is left alone.
		{"hevc_vaapi", "hevc_vaapi", "vaapi", "", "-c:v hevc_vaapi -global_quality 30 -qp 23", 23},
		{"hevc_videotoolbox", "hevc_videotoolbox", "videotoolbox", "", "-c:v hevc_videotoolbox -q:v 60", 60},
		{"libx265", "libx265", "", "", "-c:v libx265 -crf 24", 24},
		{"x265-fast", "libx265", "", "", "-c:v libx265 -preset fast", 0},
	}
	if len(vs) != len(want) {
		t.Fatalf("got %d variants, want %d: %+v", len(vs), len(want), vs)
	}
	for i, w := range want {
		v := vs[i]
		if v.Key != w.key || v.Encoder != w.enc || v.Family != w.family {
			t.Errorf("[%d] key/encoder/family = %q %q %q, want %q %q %q", i, v.Key, v.Encoder, v.Family, w.key, w.enc, w.family)
		}
		eqWords(t, w.key+" input", v.Input.Args(), w.input)
		eqWords(t, w.key+" video", v.Video.Args(), w.video)
		switch {
		case w.crf == 0 && v.CRF != nil:
			t.Errorf("%s: CRF = %v, want none", w.key, *v.CRF)
		case w.crf != 0 && (v.CRF == nil || *v.CRF != w.crf):
			t.Errorf("%s: CRF = %v, want %v", w.key, v.CRF, w.crf)
		}
	}
	if vs[0].Pos != "t.yml:9" || vs[4].Pos != "t.yml:19" {
		t.Errorf("Pos = %q, %q; want t.yml:9, t.yml:19", vs[0].Pos, vs[4].Pos)
	}
	// Variants returns a copy.
	vs[1].Video.words[0] = "changed"
	if l.get(t, "hevc").Variants()[1].Video.words[0] != "-c:v" {
		t.Error("Variants shares its options with the profile")
	}
	if l.get(t, "single").Variants() != nil {
		t.Error("a profile without encoders: has variants")
	}
}

// A profile with encoders: has no argv of its own: the caller picks a
// variant first. ForVariant's copy builds the exact argv of a
// single-encoder profile: the variant's input options after the profile's
// (before -i), its video section where output_options_video goes.
func TestForVariantArgv(t *testing.T) {
	l := mustLoad(t, variantsCfg)
	p := l.get(t, "hevc")
	if _, err := p.Plan(mkInfo(), false); err == nil || !strings.Contains(err.Error(), "t.yml:2:3: profiles.hevc: profile hevc has encoders: (hevc_nvenc, hevc_qsv,") {
		t.Errorf("Plan of the chain: %v", err)
	}
	c, err := p.ForVariant("hevc_nvenc")
	if err != nil {
		t.Fatal(err)
	}
	if c.Variants() != nil || c.VariantKey != "hevc_nvenc" {
		t.Errorf("copy: variants %v, key %q", c.Variants(), c.VariantKey)
	}
	pl, err := c.Plan(mkInfo(), false)
	if err != nil {
		t.Fatal(err)
	}
	eqWords(t, "nvenc in", pl.In, "-probesize 50M -hwaccel cuda")
	eqWords(t, "nvenc out", pl.Out, "-f matroska -c copy -c:a copy -c:v hevc_nvenc -preset p5 -rc vbr -b:v 0 -cq 27")

	c, err = p.ForVariant("x265-fast")
	if err != nil {
		t.Fatal(err)
	}
	pl, _ = c.Plan(mkInfo(), false)
	eqWords(t, "x265-fast in", pl.In, "-probesize 50M")
	eqWords(t, "x265-fast out", pl.Out, "-f matroska -c copy -c:a copy -c:v libx265 -preset fast")

	eqWords(t, "profile input after ForVariant", p.Input.Args(), "-probesize 50M")
	if _, err := p.ForVariant("hevc_amf"); err == nil || !strings.Contains(err.Error(), `no encoder variant "hevc_amf" (it has hevc_nvenc, hevc_qsv, hevc_vaapi, hevc_videotoolbox, libx265, x265-fast)`) {
		t.Errorf("unknown variant: %v", err)
	}
	if _, err := l.get(t, "single").ForVariant("libx265"); err == nil {
		t.Error("ForVariant on a profile without encoders: no error")
	}
}

// A profile without encoders: is what it was: same argv, Plan works.
func TestNoVariantsUnchanged(t *testing.T) {
	l := mustLoad(t, variantsCfg)
	pl, err := l.get(t, "single").Plan(mkInfo(), false)
	if err != nil {
		t.Fatal(err)
	}
	eqWords(t, "single out", pl.Out, "-c:v libx265 -crf 22 -preset medium")
}

func TestVariantsInclude(t *testing.T) {
	l := mustLoad(t, variantsCfg)
	// anime inherits the chain and its crf maps onto every variant
	// without a level of its own.
	vs := l.get(t, "anime").Variants()
	if len(vs) != 6 {
		t.Fatalf("anime: %d variants, want the 6 of hevc", len(vs))
	}
	eqWords(t, "anime nvenc", vs[0].Video.Args(), "-c:v hevc_nvenc -preset p5 -rc vbr -b:v 0 -cq 27")
	eqWords(t, "anime qsv", vs[1].Video.Args(), "-c:v hevc_qsv -preset slow -global_quality 26")
	eqWords(t, "anime x265", vs[4].Video.Args(), "-c:v libx265 -crf 26")
	eqWords(t, "hevc x265 after anime", l.get(t, "hevc").Variants()[4].Video.Args(), "-c:v libx265 -crf 24")

	// crf: off in a child: variants without a level of their own get none.
	l2 := mustLoad(t, variantsCfg+`
  nolevel:
    include: hevc
    crf: off
`)
	vs = l2.get(t, "nolevel").Variants()
	eqWords(t, "nolevel qsv", vs[1].Video.Args(), "-c:v hevc_qsv -preset slow")
	eqWords(t, "nolevel nvenc (own crf)", vs[0].Video.Args(), "-c:v hevc_nvenc -preset p5 -rc vbr -b:v 0 -cq 27")
	if vs[1].CRF != nil {
		t.Errorf("nolevel qsv: CRF %v, want none", *vs[1].CRF)
	}

	// A video section set nearer than an included chain replaces it.
	tw := l.get(t, "tweaked")
	if tw.Variants() != nil {
		t.Errorf("tweaked: variants %v, want the video section only", tw.Variants())
	}
	pl, err := tw.Plan(mkInfo(), false)
	if err != nil {
		t.Fatal(err)
	}
	eqWords(t, "tweaked out", pl.Out, "-f matroska -c copy -c:a copy -c:v libx264 -crf 20")

	// A child's chain replaces an included video section.
	l = mustLoad(t, `
profiles:
  base:
    output_options_video: -c:v libx264 -crf 20
    extension: .mkv
  gpu:
    include: base
    encoders: [h264_nvenc]
  fix:
    include: gpu
    output_options_video: -cq 20
`)
	g := l.get(t, "gpu")
	if vs := g.Variants(); len(vs) != 1 || g.Video.IsSet() {
		t.Fatalf("gpu: variants %v, video %q", vs, g.Video.Args())
	}
	eqWords(t, "gpu variant", g.Variants()[0].Video.Args(), "-c:v h264_nvenc")
	if !hasWarning(l.warnings(), "t.yml:8:3: profiles.fix.output_options_video: this video section replaces the encoders: of gpu (line 5) and names no encoder") {
		t.Errorf("no warning for a codec-less video section replacing a chain: %q", l.warnings())
	}
}

func TestVariantsMixins(t *testing.T) {
	l := mustLoad(t, variantsCfg+`
  x264:
    output_options_video: -c:v libx264 -crf 20
  chain:
    output_options_audio: -c:a aac
    encoders: [hevc_nvenc, libx265]
    crf: 25
`)
	p, err := l.set.WithMixins(l.get(t, "hevc"), []string{"x264"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Variants() != nil {
		t.Errorf("a mixin's video section left the chain: %v", p.Variants())
	}
	pl, err := p.Plan(mkInfo(), false)
	if err != nil {
		t.Fatal(err)
	}
	eqWords(t, "hevc -m x264", pl.Out, "-f matroska -c copy -c:a copy -c:v libx264 -crf 20")

	p, err = l.set.WithMixins(l.get(t, "single"), []string{"chain"})
	if err != nil {
		t.Fatal(err)
	}
	vs := p.Variants()
	if len(vs) != 2 || p.Video.IsSet() {
		t.Fatalf("single -m chain: variants %v, video %q", vs, p.Video.Args())
	}
	eqWords(t, "mixin chain nvenc", vs[0].Video.Args(), "-c:v hevc_nvenc -cq 25")
	if ws := l.set.MixinWarnings(l.get(t, "single"), []string{"chain"}, false); len(ws) != 1 || !strings.Contains(ws[0].Msg, "mixin chain sets output_options_audio") {
		t.Errorf("a chain replacing an existing video section is no news; got %v", ws)
	}
}

func TestWithLevel(t *testing.T) {
	l := mustLoad(t, variantsCfg)
	p := l.get(t, "hevc")
	for _, tc := range []struct {
		key   string
		level float64
		video string
	}{
		{"hevc_nvenc", 30, "-c:v hevc_nvenc -preset p5 -rc vbr -b:v 0 -cq 30"},
		{"hevc_vaapi", 21, "-c:v hevc_vaapi -global_quality 30 -qp 21"},
		{"x265-fast", 20, "-c:v libx265 -preset fast -crf 20"},
		{"hevc_videotoolbox", 70, "-c:v hevc_videotoolbox -q:v 70"},
	} {
		c, err := p.WithLevel(tc.key, tc.level)
		if err != nil {
			t.Errorf("%s: %v", tc.key, err)
			continue
		}
		eqWords(t, tc.key+" at level", c.Video.Args(), tc.video)
	}
	if v, ok := p.Level("hevc_nvenc"); !ok || v != 27 {
		t.Errorf("hevc_nvenc's level: %v %v, want 27", v, ok)
	}
	eqWords(t, "hevc's own variant after WithLevel", p.Variants()[0].Video.Args(), "-c:v hevc_nvenc -preset p5 -rc vbr -b:v 0 -cq 27")
	if _, err := p.WithLevel("hevc_nvenc", 60); err == nil || !strings.Contains(err.Error(), "level 60 is outside hevc_nvenc's -cq range 1–51") {
		t.Errorf("level out of range: %v", err)
	}
	if _, err := p.WithLevel("hevc_vaapi", 21.5); err == nil || !strings.Contains(err.Error(), "hevc_vaapi takes whole levels only") {
		t.Errorf("a fractional level for VAAPI's -qp: %v", err)
	}

	// Without variants: the quality option already there gets the value,
	// as written (-cq:v stays -cq:v), wherever it is.
	c, err := l.get(t, "single").WithLevel("", 19)
	if err != nil {
		t.Fatal(err)
	}
	eqWords(t, "single at 19", c.Video.Args(), "-c:v libx265 -crf 19 -preset medium")
	eqWords(t, "single itself", l.get(t, "single").Video.Args(), "-c:v libx265 -crf 22 -preset medium")
	if c, err = l.get(t, "cq").WithLevel("", 25); err != nil {
		t.Fatal(err)
	}
	eqWords(t, "cq at 25", c.Output.Args(), "-c:v hevc_nvenc -cq:v 25")

	l = mustLoad(t, `
profiles:
  nolevel:
    output_options_video: -c:v libx265 -preset slow
    extension: .mkv
  inoutput:
    output_options: -c:a aac -vcodec hevc_nvenc -preset p5
    extension: .mkv
  overridden:
    output_options: -c copy -c:v libx264
    output_options_video: -c:v libx265
    extension: .mkv
  amf:
    output_options: -c:v hevc_amf -qp_i 20
    extension: .mkv
  v4l2:
    output_options: -c:v h264_v4l2m2m
    extension: .mkv
  nocodec:
    extension: .mkv
`)
	// A profile that sets no level gets one, in the section that names
	// its encoder; the profile itself is untouched.
	if c, err = l.get(t, "nolevel").WithLevel("", 20); err != nil {
		t.Fatal(err)
	}
	eqWords(t, "nolevel at 20", c.Video.Args(), "-c:v libx265 -preset slow -crf 20")
	eqWords(t, "nolevel itself", l.get(t, "nolevel").Video.Args(), "-c:v libx265 -preset slow")
	if c, err = l.get(t, "inoutput").WithLevel("", 28); err != nil {
		t.Fatal(err)
	}
	eqWords(t, "inoutput's output at 28", c.Output.Args(), "-c:a aac -vcodec hevc_nvenc -preset p5 -cq 28")
	eqWords(t, "inoutput's video at 28", c.Video.Args(), "")
	if c, err = l.get(t, "overridden").WithLevel("", 21); err != nil {
		t.Fatal(err)
	}
	eqWords(t, "overridden's output at 21", c.Output.Args(), "-c copy -c:v libx264")
	eqWords(t, "overridden's video at 21", c.Video.Args(), "-c:v libx265 -crf 21")
	if c, err = l.get(t, "amf").WithLevel("", 25); err != nil { // AMF takes the level per frame type
		t.Fatal(err)
	}
	eqWords(t, "amf at 25", c.Output.Args(), "-c:v hevc_amf -qp_i 25 -qp_p 25")
	if _, err := l.get(t, "v4l2").WithLevel("", 20); err == nil || !strings.Contains(err.Error(), "does not know how h264_v4l2m2m takes a quality level") {
		t.Errorf("an encoder without a known quality option: %v", err)
	}
	for name, want := range map[string]float64{"nolevel": -1, "inoutput": -1, "amf": 20, "overridden": -1} {
		if v, ok := l.get(t, name).Level(""); ok != (want >= 0) || ok && v != want {
			t.Errorf("%s: Level = %v %v, want %v", name, v, ok, want)
		}
	}
	if _, err := l.get(t, "nocodec").WithLevel("", 20); err == nil || !strings.Contains(err.Error(), "names no video encoder") {
		t.Errorf("no encoder: %v", err)
	}
	// A ForVariant copy of a variant without a level gets one added.
	c, err = mustLoad(t, variantsCfg).get(t, "hevc").ForVariant("x265-fast")
	if err != nil {
		t.Fatal(err)
	}
	if c, err = c.WithLevel("x265-fast", 23); err != nil {
		t.Fatal(err)
	}
	eqWords(t, "copy at 23", c.Video.Args(), "-c:v libx265 -preset fast -crf 23")
}

func TestVariantErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"duplicate", `
profiles:
  p:
    encoders:
      - hevc_nvenc
      - encoder: libx265
      - encoder: hevc_nvenc
        options: -preset p7
`, "t.yml:6:9: profiles.p.encoders[2]: hevc_nvenc is already in this list (profiles.p.encoders[0], line 4): give one of them a name:"},
		{"duplicate name", `
profiles:
  p:
    encoders:
      - {name: x, encoder: libx265}
      - {name: x, encoder: libx264}
`, "t.yml:5:9: profiles.p.encoders[1]: x is already in this list"},
		{"crf out of range", `
profiles:
  p:
    crf: 24
    encoders:
      - encoder: hevc_nvenc
        crf: 52
`, "t.yml:6:14: profiles.p.encoders[0].crf: crf 52 is outside hevc_nvenc's -cq range 1–51 (variant hevc_nvenc (encoders[0], line 5))"},
		{"profile crf out of range", `
profiles:
  p:
    crf: 0
    encoders: [libx265, hevc_qsv]
`, "t.yml:3:10: profiles.p.crf: crf 0 is outside hevc_qsv's -global_quality range 1–51 (variant hevc_qsv (encoders[1], line 4))"},
		{"unknown encoder quality", `
profiles:
  p:
    crf: 24
    encoders:
      - hevc_v4l2m2m
`, "t.yml:5:9: profiles.p.encoders[0]: profile p sets crf 24 (line 3), but clustertx does not know how hevc_v4l2m2m takes a quality level: write it in this variant's options and set crf: off here"},
		{"own crf, unknown encoder", `
profiles:
  p:
    encoders:
      - {encoder: mystery, crf: 20}
`, "t.yml:4:33: profiles.p.encoders[0].crf: clustertx does not know how mystery takes a quality level"},
		{"videotoolbox direction", `
profiles:
  p:
    crf: 24
    encoders: [hevc_videotoolbox]
`, "t.yml:4:16: profiles.p.encoders[0]: profile p sets crf 24 (line 3), but hevc_videotoolbox's -q:v runs the other way (higher is better quality): give this variant its own crf:"},
		{"crf and option", `
profiles:
  p:
    encoders:
      - encoder: libx265
        options: -crf 20
        crf: 22
`, "t.yml:6:14: profiles.p.encoders[0].crf: options already set libx265's quality (-crf); give the level once"},
		{"unknown key", `
profiles:
  p:
    encoders:
      - encoder: libx265
        option: -preset slow
`, "t.yml:5:9: profiles.p.encoders[0].option: unknown key; did you mean options? (a misspelt key in a variant would silently change the encode)"},
		{"both", `
profiles:
  p:
    output_options_video: -c:v libx265
    encoders: [hevc_nvenc]
`, "t.yml:4:5: profiles.p.encoders: output_options_video (line 3) and encoders: both set the video; choose one"},
		{"no encoder", `
profiles:
  p:
    encoders:
      - options: -preset slow
`, "t.yml:4:9: profiles.p.encoders[0]: a variant needs encoder:"},
		{"encoder with options", `
profiles:
  p:
    encoders: ["-c:v hevc_nvenc"]
`, `t.yml:3:16: profiles.p.encoders[0]: expected an encoder name alone (e.g. hevc_nvenc), found "-c:v hevc_nvenc"`},
		{"codec in options", `
profiles:
  p:
    encoders:
      - {encoder: hevc_nvenc, options: -c:v libx265}
`, "t.yml:4:40: profiles.p.encoders[0].options: options set the encoder again (-c:v)"},
		{"codec in output_options", `
profiles:
  p:
    output_options: -c:v libx265
    encoders: [hevc_nvenc]
`, "t.yml:2:3: profiles.p: output_options sets the video encoder (-c:v) but the profile has encoders:"},
		{"empty", `
profiles:
  p:
    encoders: []
`, "t.yml:3:15: profiles.p.encoders: expected a list of encoders"},
		{"crf without encoders", `
profiles:
  p:
    output_options_video: -c:v libx265
    crf: 24
`, "t.yml:4:10: profiles.p.crf: crf applies to the variants of encoders:, and this profile's video is one section"},
		{"crf on a child without encoders", `
profiles:
  base: {extension: .mkv}
  p:
    include: base
    crf: 24
`, "t.yml:5:10: profiles.p.crf: crf applies to the variants of encoders:, and this profile has none (nor does any profile it includes)"},
		{"bad crf", `
profiles:
  p:
    crf: high
    encoders: [libx265]
`, `t.yml:3:10: profiles.p.crf: expected a quality level such as 24, or off, found "high"`},
	} {
		_, err := load(tc.src, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v\nwant it to contain %q", tc.name, err, tc.want)
		}
	}
}

// Rules name a profile with encoders: like any other, and the profile
// they select has the chain.
func TestRuleSelectsVariantsProfile(t *testing.T) {
	l := mustLoad(t, variantsCfg+`
rules:
  already hevc:
    profile: SKIP
    criteria: {vcodec: hevc}
  everything:
    profile: hevc
`)
	r := MatchRules(l.rules, mkInfo())
	if r == nil || r.Profile != "hevc" {
		t.Fatalf("rule: %+v", r)
	}
	if vs := l.get(t, r.Profile).Variants(); len(vs) != 6 || vs[0].Key != "hevc_nvenc" {
		t.Errorf("the rule's profile has variants %v", vs)
	}
}
