package config

import (
	"errors"
	"strings"
	"testing"
)

const selectionConfig = `profiles:
  hevc:
    output_options: -f matroska -c:a copy
    output_options_video: -c:v libx265
    extension: .mkv
  aac:
    output_options_audio: -c:a aac -b:a 160k
  opus:
    output_options_audio: -c:a libopus
  x264:
    output_options_video: -c:v libx264 -crf 20
templates:
  qsv:
    cli:
      video-codec: -c:v hevc_qsv -f matroska -max_muxing_queue_size 1024
      audio-codec: -c:a copy
    extension: .mkv
rules:
  skip hevc:
    profile: SKIP
    criteria: {vcodec: hevc}
  default:
    profile: hevc
config:
  clusters:
    empty:
      mode: remote
    home:
      me: {type: local}
`

// Unknown -p/-t/-m are usage errors found before anything runs; on main
// they were per-file failures after probing (exit 3).
func TestCheckSelectionsErrors(t *testing.T) {
	c, err := loadString(t, selectionConfig, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sel   Selection
		want  string
		usage bool
	}{
		{Selection{Profile: "hvec"}, `-p/-t: unknown profile "hvec" (did you mean hevc?)`, true},
		{Selection{Cluster: "home", Mixins: []string{"acc"}}, `-m: unknown mixin "acc" (mixins are profiles of the config); did you mean aac?`, true},
		// main: a warning at load, then every file failed (exit 3).
		{Selection{Cluster: "empty"}, "test.yml:26: cluster empty has no hosts", false},
	} {
		_, err := c.CheckSelections([]Selection{{}, tc.sel})
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrUsage) != tc.usage {
			t.Errorf("%+v: err = %v (usage %v), want %q (usage %v)", tc.sel, err, errors.Is(err, ErrUsage), tc.want, tc.usage)
		}
	}
	if ws, err := c.CheckSelections([]Selection{{Profile: "qsv"}, {Cluster: "home", Profile: "hevc"}}); err != nil || len(ws) != 0 {
		t.Errorf("valid selections: %v, %v", ws, err)
	}
}

// Each way mixins apply differently from pytranscoder 2.2.7 is one warning
// naming the mixin's file:line (none of these warned on main).
func TestCheckSelectionsMixinWarnings(t *testing.T) {
	c, err := loadString(t, selectionConfig, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		sels []Selection
		want []string
	}{
		{"mixin with -c, profile lacks the audio section",
			[]Selection{{Cluster: "home", Profile: "hevc", Mixins: []string{"aac"}}, {Cluster: "home", Profile: "hevc", Mixins: []string{"aac"}}},
			[]string{
				"test.yml:6:3: profiles.aac: mixin aac: pytranscoder 2.2.7 dropped -m in cluster mode (-c); clustertx applies it",
				"test.yml:6:3: profiles.aac: mixin aac sets output_options_audio, which profile hevc (line 2) lacks: pytranscoder ignored the mixin's section; clustertx adds it, so ffmpeg gets -c:a twice and uses the mixin's",
			}},
		{"last mixin wins; rules choose the profile",
			[]Selection{{Mixins: []string{"aac", "opus"}}},
			[]string{
				"test.yml:8:3: profiles.opus: mixins aac, opus all set output_options_audio: pytranscoder 2.2.7 used the first (aac's); clustertx uses the last (opus's), as pytranscoder's docs say",
				"test.yml:8:3: profiles.opus: mixin opus sets output_options_audio, which profile hevc (line 2) lacks",
			}},
		{"mixin on a template",
			[]Selection{{Profile: "qsv", Mixins: []string{"x264"}}},
			[]string{
				"test.yml:10:3: profiles.x264: mixin x264 with template qsv: pytranscoder ignored mixins on templates; clustertx replaces its cli video-codec with x264's output_options_video, dropping -f matroska -max_muxing_queue_size 1024",
			}},
		{"mixin replacing a section the profile has: same in both",
			[]Selection{{Profile: "hevc", Mixins: []string{"x264"}}}, nil},
	} {
		ws, err := c.CheckSelections(tc.sels)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []string
		for _, w := range ws {
			got = append(got, w.Error())
			if !w.Compat {
				t.Errorf("%s: not marked Compat: %s", tc.name, w.Error())
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %d warnings, want %d:\n%s", tc.name, len(got), len(tc.want), strings.Join(got, "\n"))
			continue
		}
		for i := range tc.want {
			if !strings.HasSuffix(got[i], tc.want[i]) && !strings.Contains(got[i], tc.want[i]) {
				t.Errorf("%s: warning %d:\n got %s\nwant %s", tc.name, i, got[i], tc.want[i])
			}
		}
	}
}
