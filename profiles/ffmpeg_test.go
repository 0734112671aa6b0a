package profiles

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"clustertx/media"
)

// needFFmpeg skips the test when ffmpeg/ffprobe are missing, unless
// CLUSTERTX_TEST_DISALLOW_SKIP=1 makes that a failure (CI).
func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CLUSTERTX_TEST_DISALLOW_SKIP") == "1" {
				t.Fatalf("%s not found and CLUSTERTX_TEST_DISALLOW_SKIP=1", bin)
			}
			t.Skipf("%s not found", bin)
		}
	}
}

func runFFmpeg(t *testing.T, ctx context.Context, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-nostdin", "-y", "-v", "error"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// makeSource writes a small MKV: video, audio spa(default)/eng/jpn,
// subtitles eng(default)/fre/ger, and a font attachment.
func makeSource(t *testing.T, ctx context.Context, dir string) string {
	t.Helper()
	for _, name := range []string{"a.srt", "b.srt", "c.srt"} {
		srt := "1\n00:00:00,000 --> 00:00:00,900\n" + name + "\n\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(srt), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	font := filepath.Join(dir, "font.ttf")
	if err := os.WriteFile(font, []byte("not really a font"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src.mkv")
	runFFmpeg(t, ctx,
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=1",
		"-f", "lavfi", "-i", "sine=f=440:d=1",
		"-f", "lavfi", "-i", "sine=f=660:d=1",
		"-f", "lavfi", "-i", "sine=f=880:d=1",
		"-i", filepath.Join(dir, "a.srt"), "-i", filepath.Join(dir, "b.srt"), "-i", filepath.Join(dir, "c.srt"),
		"-map", "0", "-map", "1", "-map", "2", "-map", "3", "-map", "4", "-map", "5", "-map", "6",
		"-attach", font, "-metadata:s:t", "mimetype=application/x-truetype-font",
		"-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-c:s", "srt",
		"-metadata:s:a:0", "language=spa", "-metadata:s:a:1", "language=eng", "-metadata:s:a:2", "language=jpn",
		"-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=fre", "-metadata:s:s:2", "language=ger",
		"-disposition:a:0", "default", "-disposition:a:1", "0", "-disposition:a:2", "0",
		"-disposition:s:0", "default", "-disposition:s:1", "0", "-disposition:s:2", "0",
		src)
	return src
}

func TestFFmpegLanguageSelection(t *testing.T) {
	needFFmpeg(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	src := makeSource(t, ctx, dir)
	prober := &media.Prober{FFprobe: "ffprobe"}
	info, err := prober.Probe(ctx, src)
	if err != nil {
		t.Fatal(err)
	}

	l := mustLoad(t, `
profiles:
  p:
    extension: .mkv
    output_options: -f matroska
    output_options_video: -c:v libx264 -preset ultrafast -crf 40
    output_options_audio: [-c:a copy]
    output_options_subtitle: -c:s copy
    audio:
      exclude_languages: spa
      default_language: eng
    subtitle:
      include_languages: [fre, ger]
      default_language: fre
`)
	plan, err := l.get(t, "p").Plan(info, true)
	if err != nil {
		t.Fatal(err)
	}
	eqWords(t, "out", plan.Out, "-f matroska -c:a copy -c:v libx264 -preset ultrafast -crf 40 -c:s copy "+
		"-map 0:0 -map 0:2 -map 0:3 -map 0:5 -map 0:6 -map 0:7 "+
		"-disposition:a:0 default -disposition:a:1 0 -disposition:s:0 default -disposition:s:1 0")
	if len(plan.Notes) != 0 {
		t.Errorf("unexpected notes %q", plan.Notes)
	}

	dst := filepath.Join(dir, "out.mkv.tmp")
	args := append(append(append([]string{}, plan.In...), "-i", "file:"+src), plan.Out...)
	runFFmpeg(t, ctx, append(args, "file:"+dst)...)

	out, err := prober.Probe(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	type track struct {
		lang string
		def  bool
	}
	check := func(what string, got []media.Stream, want []track) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %d streams, want %d (%s)", what, len(got), len(want), out.Summary())
			return
		}
		for i, w := range want {
			if got[i].Language != w.lang || got[i].Default != w.def {
				t.Errorf("%s %d: %s default=%v, want %s default=%v", what, i, got[i].Language, got[i].Default, w.lang, w.def)
			}
		}
	}
	check("audio", out.Audio, []track{{"eng", true}, {"jpn", false}})
	check("subtitle", out.Subtitles, []track{{"fre", true}, {"ger", false}})
	attachments := 0
	for _, s := range out.Streams {
		if s.Type == "attachment" {
			attachments++
		}
	}
	if out.Video == nil || out.Video.Codec != "h264" || attachments != 1 {
		t.Errorf("video/attachments not kept: %s, %d attachment(s)", out.Summary(), attachments)
	}
}
