package hosts_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"clustertx/hosts"
	"clustertx/hosts/hoststest"
	"clustertx/internal/testenv"
)

// TestEncode runs a variant's real options (input options before the
// generated input, video options after it) and says why it failed in
// ffmpeg's own words; the fake hardware wrapper tests use stands in for a
// GPU.
func TestTestEncodeFakeHW(t *testing.T) {
	testenv.NeedFFmpeg(t)
	hw := hoststest.NewFakeHW(t)
	def := &hosts.Def{Name: "gpu", Type: hosts.Local, FFmpeg: hw.Path}
	tr := hosts.NewLocal("gpu")
	ctx := context.Background()

	res := hosts.Check(ctx, def, tr)
	if !res.Up {
		t.Fatal(res.Reason)
	}
	set := res.Encoders
	if m := set.Missing(ctx, tr, []string{"-c:v", "hevc_nvenc"}); len(m) != 0 {
		t.Fatalf("the wrapper's -encoders should list hevc_nvenc (and its one-frame test pass): %v", m)
	}
	in := []string{"-hwaccel", "cuda", "-hwaccel_output_format", "cuda"}
	video := []string{"-c:v", "hevc_nvenc", "-preset", "p5", "-cq", "28", "-rc", "vbr"}
	if err := hosts.TestEncode(ctx, def, tr, in, video); err != nil {
		t.Fatalf("test encode with fake NVENC: %v", err)
	}
	hw.FailTest(t, "nvenc", true)
	err := hosts.TestEncode(ctx, def, tr, in, video)
	var te *hosts.TestEncodeError
	if !errors.As(err, &te) {
		t.Fatalf("failing test encode: %v (%T), want *TestEncodeError", err, err)
	}
	if !strings.Contains(te.Line, "OpenEncodeSessionEx failed") || strings.HasPrefix(te.Line, "[") {
		t.Errorf("reason %q: want the driver's line without its [encoder @ 0x…] prefix", te.Line)
	}
	// A software encoder is never faked, and an option ffmpeg rejects is
	// a test failure too, with ffmpeg's line.
	err = hosts.TestEncode(ctx, def, tr, nil, []string{"-c:v", "libx264", "-no-such-option", "1"})
	if !errors.As(err, &te) || !strings.Contains(te.Error(), "no-such-option") {
		t.Errorf("bad option: %v, want ffmpeg's complaint", err)
	}
	encs := hw.Encodes()
	var tests []string
	for _, e := range encs {
		if e.Test {
			tests = append(tests, e.Encoder)
		}
	}
	if !slices.Contains(tests, "hevc_nvenc") || !slices.Contains(tests, "libx264") {
		t.Errorf("wrapper log %+v: want the test encodes of hevc_nvenc and libx264", encs)
	}

	// A job encode through the wrapper writes a real HEVC file tagged
	// with the encoder asked for.
	hw.FailTest(t, "nvenc", false)
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src.mkv"), filepath.Join(dir, "out.mkv")
	testenv.MakeClip(t, src, testenv.Clip{Seconds: 1})
	argv := append([]string{hw.Path, "-nostdin", "-y", "-loglevel", "error"}, in...)
	argv = append(argv, "-i", src)
	argv = append(argv, video...)
	if err := tr.Exec(ctx, append(argv, out), nil, nil); err != nil {
		t.Fatalf("job encode: %v", err)
	}
	b, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name:stream_tags=FAKEHW", "-of", "csv=p=0", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "hevc,hevc_nvenc" {
		t.Errorf("output: %q, want hevc tagged hevc_nvenc", got)
	}
	hw.FailAfter(t, "nvenc", 0)
	if err := tr.Exec(ctx, append(argv, out), nil, nil); err == nil || !strings.Contains(err.Error(), "No NVENC capable devices found") {
		t.Errorf("job encode after FailAfter 0: %v, want the driver's error", err)
	}
	if most, total := hw.MaxConcurrent("nvenc"); most != 1 || total != 1 {
		t.Errorf("sessions: most %d, total %d; want 1, 1 (the failed one never started)", most, total)
	}
}
