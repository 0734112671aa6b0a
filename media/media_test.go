package media

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"clustertx/internal/testenv"
)

func TestRational(t *testing.T) {
	for in, want := range map[string]float64{"30000/1001": 29.97002997002997, "25/1": 25, "25": 25, "0/0": 0, "x": 0, "": 0} {
		if got := Rational(in); got != want {
			t.Errorf("Rational(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestProbeRealFile(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "-leading dash $(x).mkv")
	testenv.MakeClip(t, src, testenv.Clip{Seconds: 2, AudioLangs: []string{"spa", "eng"}, SubLangs: []string{"eng"}})
	p := &Prober{FFprobe: "ffprobe"}
	info, err := p.Probe(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if info.VCodec() != "h264" || info.Width() != 320 || info.Height() != 240 {
		t.Errorf("video = %s %dx%d", info.VCodec(), info.Width(), info.Height())
	}
	if info.FPS() != 25 {
		t.Errorf("fps = %v", info.FPS())
	}
	if d := info.Duration; d < 1.9 || d > 2.2 {
		t.Errorf("duration = %v", d)
	}
	if len(info.Audio) != 2 || info.Audio[0].Language != "spa" || info.Audio[1].Language != "eng" || !info.Audio[0].Default {
		t.Errorf("audio = %+v", info.Audio)
	}
	if len(info.Subtitles) != 1 || info.Subtitles[0].Codec != "subrip" {
		t.Errorf("subtitles = %+v", info.Subtitles)
	}
	if !info.MultiStream() {
		t.Error("two audio streams: want MultiStream")
	}
}

func TestProbeBadInputs(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.mkv")
	os.WriteFile(empty, nil, 0o644)
	junk := filepath.Join(dir, "junk.mkv")
	os.WriteFile(junk, []byte(strings.Repeat("not a video ", 1000)), 0o644)
	folder := filepath.Join(dir, "folder.mkv")
	os.Mkdir(folder, 0o755)
	p := &Prober{FFprobe: "ffprobe"}
	cases := map[string]string{
		empty:                         "empty file",
		junk:                          "ffprobe:",
		folder:                        "is a directory",
		filepath.Join(dir, "nothere"): "no such file",
	}
	paths := []string{empty, junk, folder, filepath.Join(dir, "nothere")}
	var mu sync.Mutex
	got := map[int]Result{}
	p.ProbeEach(context.Background(), paths, 2, func(i int, r Result) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := got[i]; dup || r.Path != paths[i] {
			t.Errorf("result %d (%s) given twice or for the wrong path", i, r.Path)
		}
		got[i] = r
	})
	if len(got) != len(paths) {
		t.Fatalf("%d results for %d paths", len(got), len(paths))
	}
	for _, r := range got {
		var pe *ProbeError
		if !errors.As(r.Err, &pe) {
			t.Errorf("%s: err = %v, want ProbeError", r.Path, r.Err)
			continue
		}
		if !strings.Contains(pe.Reason, cases[r.Path]) {
			t.Errorf("%s: reason %q, want it to contain %q", r.Path, pe.Reason, cases[r.Path])
		}
	}
}

func TestVerify(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.mkv")
	testenv.MakeClip(t, src, testenv.Clip{Seconds: 3, AudioLangs: []string{"eng"}})
	p := &Prober{FFprobe: "ffprobe"}
	info, err := p.Probe(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	// A truncated encode (1 s of 3) must be rejected on duration.
	short := filepath.Join(dir, "short.mkv")
	if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-y", "-i", src, "-t", "1", "-c", "copy", short).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	_, err = p.Verify(context.Background(), short, ExpectFrom(info))
	var ve *VerifyError
	if !errors.As(err, &ve) || !strings.Contains(ve.Reason, "duration") {
		t.Fatalf("short output: err = %v, want duration rejection", err)
	}
	// Dropping audio is rejected when the profile keeps audio.
	noaudio := filepath.Join(dir, "noaudio.mkv")
	if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-y", "-i", src, "-an", "-c", "copy", noaudio).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := p.Verify(context.Background(), noaudio, ExpectFrom(info)); !errors.As(err, &ve) || !strings.Contains(ve.Reason, "audio") {
		t.Fatalf("no-audio output: err = %v, want audio rejection", err)
	}
	// A truncated file (half the bytes) is rejected one way or another.
	data, _ := os.ReadFile(src)
	trunc := filepath.Join(dir, "trunc.mkv")
	os.WriteFile(trunc, data[:len(data)/3], 0o644)
	if _, err := p.Verify(context.Background(), trunc, ExpectFrom(info)); err == nil {
		t.Fatal("truncated output accepted")
	}
	// The source itself passes.
	if _, err := p.Verify(context.Background(), src, ExpectFrom(info)); err != nil {
		t.Fatalf("source rejected: %v", err)
	}
}
