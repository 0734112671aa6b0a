package profiles

import (
	"strings"
	"testing"

	"clustertx/media"
)

// The file pytranscoder's research verified against: spa (default) and eng
// audio, spa (default)/eng/fre subtitles.
func researchFile() *media.Info {
	return mkInfo(
		stream(1, "audio", "aac", "spa", true), stream(2, "audio", "ac3", "eng", false),
		stream(3, "subtitle", "subrip", "spa", true), stream(4, "subtitle", "subrip", "eng", false),
		stream(5, "subtitle", "ass", "fre", false),
	)
}

func TestLanguageMaps(t *testing.T) {
	font := media.Stream{Index: 6, Type: "attachment", Codec: "ttf", Language: "und"}
	withFont := researchFile()
	withFont.Streams = append(withFont.Streams, font)
	single := mkInfo(stream(1, "audio", "aac", "spa", true), stream(2, "subtitle", "subrip", "fre", false))

	tests := []struct {
		name    string
		profile string // YAML of the profile body, indented by 4
		info    *media.Info
		automap bool
		want    string // the words after the profile's own options
		notes   []string
		warns   []string
	}{
		{
			name:    "no selection: map everything",
			profile: "",
			info:    researchFile(), automap: true,
			want: "-map 0",
		},
		{
			name:    "automap off: ffmpeg default selection",
			profile: "audio: {include_languages: [eng]}",
			info:    researchFile(), automap: false,
			want: "",
		},
		{
			name:    "exclude spa, default eng (both types)",
			profile: "audio: {exclude_languages: spa, default_language: eng}\n    subtitle: {exclude_languages: [spa], default_language: eng}",
			info:    researchFile(), automap: true,
			want: "-map 0:0 -map 0:2 -map 0:4 -map 0:5 -disposition:a:0 default -disposition:s:0 default -disposition:s:1 0",
		},
		{
			name:    "include eng audio; subtitles eng+fre with default fre",
			profile: "audio: {include_languages: [eng]}\n    subtitle: {include_languages: [eng, fre], default_language: fre}",
			info:    researchFile(), automap: true,
			want: "-map 0:0 -map 0:2 -map 0:4 -map 0:5 -disposition:s:0 0 -disposition:s:1 default",
		},
		{
			name:    "language in both lists: include wins",
			profile: "audio:\n      include_languages: [spa]\n      exclude_languages: [spa, eng]",
			info:    researchFile(), automap: true,
			want:  "-map 0:0 -map 0:1 -map 0:3 -map 0:4 -map 0:5",
			warns: []string{`t.yml:6:26: profiles.p.audio.exclude_languages: "spa" is also in include_languages; include wins`},
		},
		{
			name:    "filter dropping every audio stream keeps all audio",
			profile: "audio: {include_languages: [jpn]}\n    subtitle: {include_languages: [jpn]}",
			info:    researchFile(), automap: true,
			want:  "-map 0:0 -map 0:1 -map 0:2",
			notes: []string{"audio language selection (include jpn) matches none of the audio streams (spa,eng); keeping all audio"},
		},
		{
			name:    "default already right: no disposition",
			profile: "audio: {exclude_languages: [eng], default_language: spa}",
			info:    researchFile(), automap: true,
			want: "-map 0:0 -map 0:1 -map 0:3 -map 0:4 -map 0:5",
		},
		{
			// pytranscoder: the same maps and no disposition (nothing
			// default was dropped). main moved the default to eng.
			name:    "default language dropped, but it was not the default: flags untouched",
			profile: "audio: {exclude_languages: [eng], default_language: eng}",
			info:    researchFile(), automap: true,
			want: "-map 0:0 -map 0:1 -map 0:3 -map 0:4 -map 0:5",
		},
		{
			name:    "default dropped, no kept stream in default_language",
			profile: "audio: {exclude_languages: [spa], default_language: fre}",
			info:    researchFile(), automap: true,
			want:  "-map 0:0 -map 0:2 -map 0:3 -map 0:4 -map 0:5",
			notes: []string{"default_language fre: the default audio stream is dropped and no kept one is in that language; no default is set"},
		},
		{
			// pytranscoder: -map 0 and nothing else. main moved the
			// default audio from Spanish to English.
			name:    "default only, no filter: nothing dropped, flags untouched",
			profile: "audio: {default_language: ENG}",
			info:    researchFile(), automap: true,
			want: "-map 0",
		},
		{
			// The case: no subtitle was on by default, so none is
			// switched on. main added -disposition:s:0 default.
			name:    "subtitle include+default, no default subtitle in the source",
			profile: "subtitle: {include_languages: [eng], default_language: eng}",
			info: mkInfo(stream(1, "audio", "aac", "eng", true), stream(2, "audio", "aac", "spa", false),
				stream(3, "subtitle", "subrip", "eng", false), stream(4, "subtitle", "subrip", "fre", false)),
			automap: true,
			want:    "-map 0:0 -map 0:1 -map 0:2 -map 0:3",
		},
		{
			name:    "attachments kept for mkv",
			profile: "subtitle: {exclude_languages: [fre]}",
			info:    withFont, automap: true,
			want: "-map 0:0 -map 0:1 -map 0:2 -map 0:3 -map 0:4 -map 0:6",
		},
		{
			name:    "single-stream file without lists: no maps (as pytranscoder)",
			profile: "audio: {default_language: eng}",
			info:    single, automap: true,
			want: "",
		},
		{
			name:    "single-stream file with a list: the list applies",
			profile: "subtitle: {include_languages: [eng]}",
			info:    single, automap: true,
			want: "-map 0:0 -map 0:1",
		},
		{
			name:    "profile's own -map wins",
			profile: "output_options: -map 0:v -map 0:a:0\n    audio: {include_languages: [eng]}",
			info:    researchFile(), automap: true,
			want:  "-map 0:v -map 0:a:0",
			notes: []string{"the profile sets its own -map; automatic stream mapping is skipped"},
		},
		{
			name:    "languages compare case-insensitively",
			profile: "audio: {include_languages: [ENG]}",
			info:    researchFile(), automap: true,
			want: "-map 0:0 -map 0:2 -map 0:3 -map 0:4 -map 0:5",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "profiles:\n  p:\n    extension: .mkv\n"
			if tc.profile != "" {
				src += "    " + tc.profile + "\n"
			}
			l, err := load(src, false)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := l.get(t, "p").Plan(tc.info, tc.automap)
			if err != nil {
				t.Fatal(err)
			}
			eqWords(t, "out", plan.Out, tc.want)
			if strings.Join(plan.Notes, "|") != strings.Join(tc.notes, "|") {
				t.Errorf("notes:\n got %q\nwant %q", plan.Notes, tc.notes)
			}
			for _, w := range tc.warns {
				if !hasWarning(l.warnings(), w) {
					t.Errorf("missing warning %q in %q", w, l.warnings())
				}
			}
		})
	}
}

func TestAttachmentsDroppedForMP4(t *testing.T) {
	info := researchFile()
	info.Streams = append(info.Streams, media.Stream{Index: 6, Type: "attachment", Codec: "ttf"})
	p := &Profile{Name: "p", Extension: ".mp4", SubtitleSel: &LangSelect{Exclude: []string{"fre"}}}
	plan, err := p.Plan(info, true)
	if err != nil {
		t.Fatal(err)
	}
	eqWords(t, "out", plan.Out, "-map 0:0 -map 0:1 -map 0:2 -map 0:3 -map 0:4")
	if len(plan.Notes) != 1 || !strings.Contains(plan.Notes[0], "1 attachment stream(s) dropped: .mp4") {
		t.Errorf("notes = %q", plan.Notes)
	}
}

func TestArgOrder(t *testing.T) {
	l := mustLoad(t, `
profiles:
  p:
    extension: .mkv
    output_options_subtitle: -c:s copy
    output_options_video: -c:v libx265
    output_options_audio: -c:a copy
    output_options: -f matroska
    input_options: -hwaccel auto
`)
	in, out := l.get(t, "p").Args(nil, true)
	eqWords(t, "in", in, "-hwaccel auto")
	eqWords(t, "out: output, audio, video, subtitle (not file order)", out, "-f matroska -c:a copy -c:v libx265 -c:s copy")
}
