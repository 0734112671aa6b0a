package profiles

// The pytranscoder compatibility suite. Every case states what pytranscoder
// 2.2.7 did with the same config and file (from its source and the
// research report's verified runs, shared/research/pytranscoder.md) and
// what clustertx does. Where the two differ, the case names the warning
// (at load) or the plan note (per file) that says so; where pytranscoder
// failed (a crash, "Invalid predicate", an argv ffmpeg rejects) the case
// says so and only clustertx's result is checked.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"clustertx/internal/testenv"
	"clustertx/media"
)

// pyResult is what pytranscoder 2.2.7 did with a criterion.
type pyResult int

const (
	pyNo    pyResult = iota // evaluated, no match
	pyMatch                 // evaluated, match
	pyFails                 // the run failed: crash, "Invalid predicate", exit 1
)

func (r pyResult) String() string { return [...]string{"no match", "match", "failed"}[r] }

// compatFilm and compatEpisode are files of known codec, size, resolution,
// length and frame rate.
func compatFilm() *media.Info {
	info := mkInfo(stream(1, "audio", "aac", "jpn", true), stream(2, "audio", "ac3", "eng", false),
		stream(3, "subtitle", "subrip", "eng", false))
	info.Path = "/media/anime/Film (2001).mkv"
	info.Duration = 45 * 60
	info.Size = int64(2500.5 * 1048576)
	info.Video.FPS = 24000.0 / 1001
	return info
}

func compatEpisode() *media.Info {
	info := mkInfo(stream(1, "audio", "eac3", "eng", true))
	info.Path = "/media/tv/Show/S01E01.mkv"
	info.Video.Codec, info.Video.Width, info.Video.Height = "hevc", 1280, 720
	info.Duration = 22*60 + 30
	info.Size = 350 * 1048576
	info.Video.FPS = 30000.0 / 1001
	return info
}

type criterionCase struct {
	pred, yaml string // the criterion as written in transcode.yml
	media      func() *media.Info
	py         pyResult
	ours       bool
	warn       string // the warning that says how clustertx differs
}

var criterionCases = []criterionCase{
	// vcodec: pytranscoder compared case-sensitively.
	{"vcodec", "'h264'", compatFilm, pyMatch, true, ""},
	{"vcodec", "'h264'", compatEpisode, pyNo, false, ""},
	{"vcodec", "'!hevc'", compatFilm, pyMatch, true, ""},
	{"vcodec", "'!hevc'", compatEpisode, pyNo, false, ""},
	{"vcodec", "'H264'", compatFilm, pyNo, true, "pytranscoder compared codec names case-sensitively"},
	{"vcodec", "hevc", compatEpisode, pyMatch, true, ""},
	// path: Python re.search; the leading ! was ignored.
	{"path", "'/anime/'", compatFilm, pyMatch, true, ""},
	{"path", "'.*/anime/.*'", compatEpisode, pyNo, false, ""},
	{"path", "'!/anime/'", compatFilm, pyMatch, false, "pytranscoder ignored the leading ! and matched the paths that contain"},
	{"path", "'!/anime/'", compatEpisode, pyNo, true, "clustertx negates it"},
	{"path", "'^(?!.*/anime/)'", compatFilm, pyNo, false, ""},
	{"path", "'^(?!.*/anime/)'", compatEpisode, pyMatch, true, ""},
	{"path", "'(?<=/tv/)Show'", compatEpisode, pyMatch, true, ""},
	{"path", `'/(?P<show>\w+)/S\d+E\d+'`, compatEpisode, pyMatch, true, ""},
	{"path", "'Westworld|Walking|Vikings|Expanse'", compatEpisode, pyNo, false, ""},
	{"path", "'^/media/tv'", compatFilm, pyNo, false, ""},
	// res_height / res_width: integers, < > ranges and !.
	{"res_height", "'1080'", compatFilm, pyMatch, true, ""},
	{"res_height", "'>720'", compatFilm, pyMatch, true, ""},
	{"res_height", "'>720'", compatEpisode, pyNo, false, ""},
	{"res_height", "'<720'", compatEpisode, pyNo, false, ""},
	{"res_height", "'721-1081'", compatFilm, pyMatch, true, ""},
	{"res_height", "'721-1081'", compatEpisode, pyNo, false, ""},
	{"res_height", "'!720'", compatFilm, pyMatch, true, ""},
	{"res_height", "'!720'", compatEpisode, pyNo, false, ""},
	{"res_height", "'!>30'", compatEpisode, pyNo, false, ""},
	{"res_width", "'1920'", compatFilm, pyMatch, true, ""},
	{"res_width", "'<1920'", compatEpisode, pyMatch, true, ""},
	{"res_height", "'<=720'", compatEpisode, pyFails, true, ""}, // SyntaxError in eval()
	{"res_height", "720", compatEpisode, pyFails, true, ""},     // TypeError: int is not iterable
	// runtime: minutes in the rule, seconds in pytranscoder's probe.
	{"runtime", "'45'", compatFilm, pyMatch, true, ""},
	{"runtime", "'22'", compatEpisode, pyNo, true, "pytranscoder matched runtime \"22\" only for a file exactly 22:00 long"},
	{"runtime", "'40-50'", compatFilm, pyMatch, true, ""},
	{"runtime", "'>44'", compatFilm, pyMatch, true, ""},
	{"runtime", "'<30'", compatEpisode, pyMatch, true, ""},
	{"runtime", "'30-65'", compatEpisode, pyNo, false, ""},
	// filesize_mb: MiB as a float; equality only for whole numbers.
	{"filesize_mb", "'>2500'", compatFilm, pyMatch, true, ""},
	{"filesize_mb", "'2500'", compatFilm, pyNo, false, ""},
	{"filesize_mb", "'2500.5'", compatFilm, pyNo, true, "pytranscoder took only whole numbers for equality and \"2500.5\" never matched"},
	{"filesize_mb", "'<2000'", compatEpisode, pyMatch, true, ""},
	{"filesize_mb", "'<2000'", compatFilm, pyNo, false, ""},
	// fps: truncated (23.976 → 23, 29.97 → 29).
	{"fps", "'23'", compatFilm, pyMatch, true, ""},
	{"fps", "'24'", compatFilm, pyNo, false, ""},
	{"fps", "'>23'", compatFilm, pyNo, false, ""},
	{"fps", "'>22'", compatFilm, pyMatch, true, ""},
	{"fps", "'29'", compatEpisode, pyMatch, true, ""},
	{"fps", "'>30'", compatEpisode, pyNo, false, ""},
	{"fps", "'>25'", compatEpisode, pyMatch, true, ""},
	{"fps", "'23.976'", compatFilm, pyNo, false, ""},
	// acodec and scodec are clustertx's: "Invalid predicate", exit 1.
	{"acodec", "'ac3'", compatFilm, pyFails, true, ""},
	{"scodec", "'!subrip'", compatEpisode, pyFails, true, ""},
}

func TestCompatCriteria(t *testing.T) {
	for _, tc := range criterionCases {
		name := fmt.Sprintf("%s: %s on %s", tc.pred, tc.yaml, filepath.Base(tc.media().Path))
		t.Run(name, func(t *testing.T) {
			l, err := load(fmt.Sprintf("profiles:\n  hevc: {extension: .mkv}\nrules:\n  r:\n    profile: hevc\n    criteria:\n      %s: %s\n", tc.pred, tc.yaml), false)
			if err != nil {
				t.Fatalf("clustertx refused a criterion pytranscoder %s with: %v", map[bool]string{true: "accepted", false: "failed"}[tc.py != pyFails], err)
			}
			got := MatchRules(l.rules, tc.media()) != nil
			if got != tc.ours {
				t.Errorf("clustertx: match = %v, want %v (pytranscoder: %s)", got, tc.ours, tc.py)
			}
			checkDifference(t, tc.py != pyFails && (tc.py == pyMatch) != tc.ours, tc.warn, l.warnings(), nil)
		})
	}
}

// checkDifference: where clustertx's result differs from pytranscoder's,
// one of the load warnings or plan notes must say so.
func checkDifference(t *testing.T, differs bool, want string, warnings, notes []string) {
	t.Helper()
	if !differs {
		return
	}
	if want == "" {
		t.Fatalf("clustertx differs from pytranscoder here; the case must name the warning that says so")
	}
	if !hasWarning(warnings, want) && !hasWarning(notes, want) {
		t.Errorf("differs from pytranscoder without saying so: want a warning or note containing %q\nwarnings: %q\nnotes: %q", want, warnings, notes)
	}
}

// Real clips probed with ffprobe: the criteria see what a real file gives.
func TestCompatCriteriaOnRealClips(t *testing.T) {
	testenv.NeedFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	film := filepath.Join(dir, "anime", "film.mkv")
	if err := testenv.Generate(filepath.Join(dir, "ep.mkv"), testenv.Clip{Seconds: 1, Width: 640, Height: 360, Rate: 25,
		VCodec: "mpeg4", AudioLangs: []string{"spa", "eng"}, SubLangs: []string{"eng"}}); err != nil {
		t.Fatal(err)
	}
	// testenv makes whole frame rates; a film is 24000/1001.
	runFFmpeg(t, ctx, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24000/1001:duration=1",
		"-f", "lavfi", "-i", "sine=f=440:d=1", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
		"-metadata:s:a:0", "language=jpn", "-y", mkdir(t, film))
	prober := &media.Prober{FFprobe: "ffprobe"}
	probe := func(p string) *media.Info {
		info, err := prober.Probe(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return info
	}
	filmInfo, epInfo := probe(film), probe(filepath.Join(dir, "ep.mkv"))
	for _, tc := range []struct {
		pred, yaml string
		info       *media.Info
		py         pyResult
		ours       bool
	}{
		{"fps", "'23'", filmInfo, pyMatch, true},
		{"fps", "'>23'", filmInfo, pyNo, false},
		{"fps", "'25'", epInfo, pyMatch, true},
		{"res_height", "'240'", filmInfo, pyMatch, true},
		{"res_width", "'>320'", epInfo, pyMatch, true},
		{"vcodec", "'h264'", filmInfo, pyMatch, true},
		{"vcodec", "'mpeg4'", epInfo, pyMatch, true},
		{"filesize_mb", "'<1'", filmInfo, pyMatch, true},
		{"runtime", "'<1'", epInfo, pyMatch, true},
		{"path", "'/anime/'", filmInfo, pyMatch, true},
		{"path", "'^(?!.*/anime/)'", epInfo, pyMatch, true},
		{"acodec", "'aac'", epInfo, pyFails, true},
	} {
		l, err := load(fmt.Sprintf("profiles:\n  p: {extension: .mkv}\nrules:\n  r:\n    profile: p\n    criteria:\n      %s: %s\n", tc.pred, tc.yaml), false)
		if err != nil {
			t.Fatal(err)
		}
		if got := MatchRules(l.rules, tc.info) != nil; got != tc.ours {
			t.Errorf("%s: %s on %s (%s): match = %v, want %v (pytranscoder: %s)", tc.pred, tc.yaml, filepath.Base(tc.info.Path), tc.info.Summary(), got, tc.ours, tc.py)
		}
		if tc.py != pyFails && (tc.py == pyMatch) != tc.ours {
			t.Errorf("real-clip cases are all ones where both agree: %s %s", tc.pred, tc.yaml)
		}
	}
	// The language maps on the real file: spa (default) and eng audio.
	l := mustLoad(t, "profiles:\n  p:\n    extension: .mkv\n    audio: {default_language: eng}\n")
	eqWords(t, "default_language without a filter on a real file", l.get(t, "p").plan(epInfo, true).Out, "-map 0")
}

func mkdir(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// effect is what a -map/-disposition list does to a file: the source
// streams kept per type, in output order, "*" marking the default one.
func effect(info *media.Info, args []string) string {
	var kept []media.Stream
	for i := 0; i < len(args); i++ {
		if args[i] != "-map" || i+1 >= len(args) {
			continue
		}
		i++
		if args[i] == "0" {
			kept = append(kept, info.Streams...)
			continue
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(args[i], "0:"))
		for _, s := range info.Streams {
			if s.Index == n {
				kept = append(kept, s)
			}
		}
	}
	if !slices.Contains(args, "-map") {
		kept = slices.Clone(info.Streams)
	}
	out := map[string][]*media.Stream{}
	for i := range kept {
		out[kept[i].Type] = append(out[kept[i].Type], &kept[i])
	}
	for i := 0; i+1 < len(args); i++ {
		typ, idx, ok := strings.Cut(strings.TrimPrefix(args[i], "-disposition:"), ":")
		if !ok || !strings.HasPrefix(args[i], "-disposition:") {
			continue
		}
		n, _ := strconv.Atoi(idx)
		list := out[map[string]string{"a": "audio", "s": "subtitle"}[typ]]
		if n < len(list) {
			list[n].Default = args[i+1] == "default"
		}
	}
	var parts []string
	for _, typ := range []string{"audio", "subtitle"} {
		var ws []string
		for _, s := range out[typ] {
			w := strconv.Itoa(s.Index)
			if s.Default {
				w += "*"
			}
			ws = append(ws, w)
		}
		parts = append(parts, typ[:1]+"="+strings.Join(ws, ","))
	}
	return strings.Join(parts, " ")
}

// base is pytranscoder's shipped base profile (config-samples/transcode.yml).
const base = `  base:
    output_options:
      - "-f matroska"
      - "-max_muxing_queue_size 1024"
    output_options_subtitle:
      - "-c:s copy"
    output_options_audio:
      - "-c:a copy"
    extension: '.mkv'
    threshold: 18
    threshold_check: 20
    audio:
      include_languages:
        - "eng"
      default_language: eng
    subtitle:
      include_languages:
        - "eng"
      default_language: eng
`

func TestCompatLanguageMaps(t *testing.T) {
	engFirst := func() *media.Info { // eng audio is the default; no default subtitle
		return mkInfo(stream(1, "audio", "aac", "eng", true), stream(2, "audio", "aac", "spa", false),
			stream(3, "subtitle", "subrip", "eng", false), stream(4, "subtitle", "subrip", "fre", false))
	}
	for _, tc := range []struct {
		name    string
		profile string // the profile body, indented by 4 (or a whole profile named p)
		info    func() *media.Info
		py      string // pytranscoder's -map/-disposition words (research report, verified)
		ours    string // clustertx's effect: kept streams per type, * = default
		warn    string
	}{
		{"exclude spa, default eng (both)", "    audio: {exclude_languages: spa, default_language: eng}\n    subtitle: {exclude_languages: [spa], default_language: eng}\n",
			researchFile, "-map 0:0 -map 0:2 -disposition:a:0 default -map 0:4 -map 0:5", "a=2* s=4*,5", "never moved the default subtitle"},
		{"include eng audio; subtitles eng+fre, default fre", "    audio: {include_languages: [eng]}\n    subtitle: {include_languages: [eng, fre], default_language: fre}\n",
			researchFile, "-map 0:0 -map 0:2 -map 0:4 -map 0:5", "a=2 s=4,5*", "never moved the default subtitle"},
		{"language in both lists", "    audio: {include_languages: [spa], exclude_languages: [spa]}\n",
			researchFile, "-map 0:0 -map 0:3 -map 0:4 -map 0:5", "a=1* s=3*,4,5", "include wins and it is kept (pytranscoder 2.2.7 dropped it)"},
		{"default_language alone (the issue's case)", "    audio: {default_language: eng}\n",
			researchFile, "-map 0", "a=1*,2 s=3*,4,5", ""},
		{"no selection", "", researchFile, "-map 0", "a=1*,2 s=3*,4,5", ""},
		{"include matching no audio", "    audio: {include_languages: [jpn]}\n",
			researchFile, "-map 0:0 -map 0:3 -map 0:4 -map 0:5", "a=1*,2 s=3*,4,5", "matches none of the audio streams"},
		{"shipped base profile, default audio dropped", "base",
			researchFile, "-map 0:0 -map 0:2 -disposition:a:0 default -map 0:4", "a=2* s=4*", "never moved the default subtitle"},
		{"shipped base profile, nothing default dropped", "base",
			engFirst, "-map 0:0 -map 0:1 -map 0:3", "a=1* s=3", ""},
		{"subtitle include+default, no default subtitle (the issue's case)", "    subtitle: {include_languages: [eng], default_language: eng}\n",
			engFirst, "-map 0:0 -map 0:1 -map 0:2 -map 0:3", "a=1*,2 s=3", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "profiles:\n  p:\n    extension: .mkv\n" + tc.profile
			if tc.profile == "base" {
				src = "profiles:\n" + base + "  p:\n    include: base\n"
			}
			l := mustLoad(t, src)
			info := tc.info()
			pl, err := l.get(t, "p").Plan(info, true)
			if err != nil {
				t.Fatal(err)
			}
			ours, py := effect(info, pl.Out), effect(info, words(tc.py))
			if ours != tc.ours {
				t.Errorf("clustertx: %s (%q), want %s (pytranscoder: %s)", ours, pl.Out, tc.ours, py)
			}
			checkDifference(t, ours != py, tc.warn, l.warnings(), pl.Notes)
		})
	}
}

func TestCompatIncludes(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		profile    string
		section    func(*Profile) []string
		py, ours   string
		warn       string
	}{
		{"include chain: child, then earlier parents, then later ones", `
  cuda:
    output_options_video:
      - "-cq:v 19"
      - "-b:v 7M"
      - "-c:v hevc_nvenc"
  hevc_cuda:
    include: "base cuda"
    output_options_video:
      - "-b:v 4000K"
    output_options_audio:
      - "-c:a ac3"
      - "-b:a 768k"
    queue: 'cuda'`, "hevc_cuda", func(p *Profile) []string {
			return append(append(append(p.Output.Args(), p.Audio.Args()...), p.Video.Args()...), p.Subtitle.Args()...)
		},
			"-f matroska -max_muxing_queue_size 1024 -c:a ac3 -b:a 768k -cq:v 19 -b:v 4000K -c:v hevc_nvenc -c:s copy",
			"-f matroska -max_muxing_queue_size 1024 -c:a ac3 -b:a 768k -cq:v 19 -b:v 4000K -c:v hevc_nvenc -c:s copy", ""},
		{"string-form child section", `
  parent:
    output_options: ['-f matroska', '-c:a copy', '-crf 20']
  child:
    include: parent
    output_options: '-crf 18 -c:s copy'`, "child", func(p *Profile) []string { return p.Output.Args() },
			"-f matroska -c:a copy -crf", "-f matroska -c:a copy -crf 18 -c:s copy", "string-form section merged with parent's by flag name"},
		{"list item with three words", `
  p:
    output_options_video: ['-c:v libx264 -preset ultrafast']`, "p", func(p *Profile) []string { return p.Video.Args() },
			"-c:v", "-c:v libx264 -preset ultrafast", "pytranscoder 2.2.7 split it on blanks and kept only"},
		{"repeated flag items", `
  p:
    output_options: ['-map 0:v', '-map 0:a']`, "p", func(p *Profile) []string { return p.Output.Args() },
			"-map 0:a", "-map 0:v -map 0:a", "repeated -map is kept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mustLoad(t, "profiles:\n"+base+tc.yaml+"\n")
			got := tc.section(l.get(t, tc.profile))
			eqWords(t, "clustertx", got, tc.ours)
			checkDifference(t, tc.py != tc.ours, tc.warn, l.warnings(), nil)
		})
	}
	if p := mustLoad(t, "profiles:\n"+base+"  c:\n    include: base\n").get(t, "c"); p.Extension != ".mkv" || p.Threshold != 18 || p.ThresholdCheck != 20 || p.AudioSel == nil {
		t.Errorf("scalars and language maps are inherited whole, as in pytranscoder: %+v", p)
	}
	if _, err := load("profiles:\n  a:\n    include: b\n  b: {extension: .mkv}\n", false); err == nil || !strings.Contains(err.Error(), `included "b" not defined above`) {
		t.Errorf("pytranscoder exits 1 on an include of a later profile; clustertx: %v", err)
	}
}

func TestCompatMixins(t *testing.T) {
	l := mustLoad(t, `
profiles:
  hevc:
    output_options: -f matroska -c:a copy
    output_options_video: -c:v libx265
    extension: .mkv
  hevc_audio:
    output_options: -f matroska
    output_options_video: -c:v libx265
    output_options_audio: -c:a copy
    extension: .mkv
  aac: {output_options_audio: -c:a aac}
  opus: {output_options_audio: -c:a libopus}
  x264: {output_options_video: -c:v libx264}
templates:
  qsv:
    cli:
      video-codec: -c:v hevc_qsv -f matroska
      audio-codec: -c:a copy
    extension: .mkv
`)
	for _, tc := range []struct {
		name, profile string
		mixins        []string
		cluster       bool
		py, ours      string // the output words
		warn          string
	}{
		{"mixin replaces a section the profile has", "hevc_audio", []string{"aac"}, false,
			"-f matroska -c:a aac -c:v libx265", "-f matroska -c:a aac -c:v libx265", ""},
		{"mixin sets a section the profile lacks", "hevc", []string{"aac"}, false,
			"-f matroska -c:a copy -c:v libx265", "-f matroska -c:a copy -c:a aac -c:v libx265", "so ffmpeg gets -c:a twice and uses the mixin's"},
		{"two mixins set one section", "hevc_audio", []string{"aac", "opus"}, false,
			"-f matroska -c:a aac -c:v libx265", "-f matroska -c:a libopus -c:v libx265", "pytranscoder 2.2.7 used the first (aac's); clustertx uses the last (opus's)"},
		{"mixin with -c", "hevc_audio", []string{"aac"}, true,
			"-f matroska -c:a copy -c:v libx265", "-f matroska -c:a aac -c:v libx265", "pytranscoder 2.2.7 dropped -m in cluster mode (-c); clustertx applies it"},
		{"mixin on a template", "qsv", []string{"x264"}, false,
			"-c:v hevc_qsv -f matroska -c:a copy", "-c:v libx264 -c:a copy", "pytranscoder ignored mixins on templates; clustertx replaces its cli video-codec with x264's output_options_video, dropping -f matroska"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := l.get(t, tc.profile)
			m, err := l.set.WithMixins(p, tc.mixins)
			if err != nil {
				t.Fatal(err)
			}
			eqWords(t, "clustertx", m.plan(nil, true).Out, tc.ours)
			var ws []string
			for _, w := range l.set.MixinWarnings(p, tc.mixins, tc.cluster) {
				ws = append(ws, w.Error())
			}
			checkDifference(t, tc.py != tc.ours, tc.warn, ws, nil)
			if tc.py == tc.ours && len(ws) != 0 {
				t.Errorf("no difference, yet warnings: %q", ws)
			}
		})
	}
}

func TestCompatTemplates(t *testing.T) {
	l := mustLoad(t, `
templates:
  star:
    cli:
      video-codec: -c:v libx265
      audio-codec: -c:a copy
    audio-lang: "eng *jpn"
    extension: .mkv
  subs:
    cli:
      video-codec: -c:v libx265
    subtitle-lang: eng
    extension: .mkv
  all:
    cli:
      video-codec: -c:v libx265
      audio-codec: ""
    extension: .mkv
`)
	three := mkInfo(stream(1, "audio", "aac", "eng", true), stream(2, "audio", "aac", "jpn", false),
		stream(3, "audio", "aac", "fre", false))
	for _, tc := range []struct {
		name, tmpl string
		info       *media.Info
		py         string // pytranscoder's words after the options
		ours       string // clustertx's effect (see effect)
		warn       string
	}{
		{"*lang marker: pytranscoder dropped the marked tracks", "star", three, "-map 0:0 -map 0:1", "a=1*,2 s=", `pytranscoder compared "*jpn" with the track languages, so it dropped the jpn tracks`},
		{"subtitle-lang with a default subtitle dropped", "subs", researchFile(), "-map 0:0 -map 0:1 -map 0:2 -map 0:4", "a=1*,2 s=4*", "never moved the default subtitle"},
		{"no languages: everything", "all", researchFile(), "-map 0", "a=1*,2 s=3*,4,5", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl, err := l.get(t, tc.tmpl).Plan(tc.info, true)
			if err != nil {
				t.Fatal(err)
			}
			ours, py := effect(tc.info, pl.Out), effect(tc.info, words(tc.py))
			if ours != tc.ours {
				t.Errorf("clustertx: %s (%q), want %s (pytranscoder: %s)", ours, pl.Out, tc.ours, py)
			}
			checkDifference(t, ours != py, tc.warn, l.warnings(), pl.Notes)
		})
	}
	// pytranscoder emitted '' for an empty audio-codec, which ffmpeg rejects.
	if out := l.get(t, "all").plan(researchFile(), true).Out; slices.Contains(out, "") {
		t.Errorf("empty argv word: %q", out)
	}
}
