// Package testenv holds test helpers shared across packages: skipping (or
// failing, in CI) when a real tool is missing, and generating small real
// media clips with ffmpeg. Only tests import it.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Need skips the test when a binary is missing, or fails it when
// CLUSTERTX_TEST_DISALLOW_SKIP=1 (set by .ci/run, so CI never skips silently).
func Need(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			if os.Getenv("CLUSTERTX_TEST_DISALLOW_SKIP") == "1" {
				t.Fatalf("%s not found and CLUSTERTX_TEST_DISALLOW_SKIP=1", b)
			}
			t.Skipf("%s not found", b)
		}
	}
}

// NeedFFmpeg needs ffmpeg and ffprobe.
func NeedFFmpeg(t testing.TB) { t.Helper(); Need(t, "ffmpeg", "ffprobe") }

// Clip describes a generated test clip.
type Clip struct {
	Seconds    float64  // default 2
	Width      int      // default 320
	Height     int      // default 240
	Rate       int      // default 25
	VCodec     string   // default libx264
	AudioLangs []string // one sine audio stream (aac) per language
	SubLangs   []string // one subrip stream per language
	Noise      bool     // random noise video (compresses badly) instead of a test pattern
	GOP        int      // keyframe interval in frames (0: the encoder's default)
	Preset     string   // x264/x265 preset (default ultrafast, which has no B-frames)
	Chapters   int      // this many chapters of equal length
}

// MakeClip writes a real clip to path with ffmpeg.
func MakeClip(t testing.TB, path string, c Clip) {
	t.Helper()
	if err := Generate(path, c); err != nil {
		t.Fatal(err)
	}
}

// Generate writes a real clip to path with ffmpeg (usable outside tests, by
// the demo and benchmarks).
func Generate(path string, c Clip) error {
	if c.Seconds == 0 {
		c.Seconds = 2
	}
	if c.Width == 0 {
		c.Width, c.Height = 320, 240
	}
	if c.Rate == 0 {
		c.Rate = 25
	}
	if c.VCodec == "" {
		c.VCodec = "libx264"
	}
	dur := strconv.FormatFloat(c.Seconds, 'f', -1, 64)
	src := fmt.Sprintf("testsrc2=size=%dx%d:rate=%d:duration=%s", c.Width, c.Height, c.Rate, dur)
	if c.Noise {
		src = fmt.Sprintf("nullsrc=size=%dx%d:rate=%d:duration=%s,geq=random(1)*255:128:128", c.Width, c.Height, c.Rate, dur)
	}
	args := []string{"-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", src}
	for i := range c.AudioLangs {
		args = append(args, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:duration=%s", 300+100*i, dur))
	}
	dir := filepath.Dir(path)
	for i := range c.SubLangs {
		srt := filepath.Join(dir, fmt.Sprintf(".clip-sub-%d-%d.srt", os.Getpid(), i))
		body := fmt.Sprintf("1\n00:00:00,000 --> 00:00:01,000\nsubtitle %d\n", i)
		if err := os.WriteFile(srt, []byte(body), 0o644); err != nil {
			return err
		}
		defer os.Remove(srt)
		args = append(args, "-i", srt)
	}
	n := 1 + len(c.AudioLangs) + len(c.SubLangs)
	if c.Chapters > 0 {
		meta := filepath.Join(dir, fmt.Sprintf(".clip-chapters-%d.txt", os.Getpid()))
		var b strings.Builder
		b.WriteString(";FFMETADATA1\ntitle=generated clip\n")
		step := int64(c.Seconds * 1000 / float64(c.Chapters))
		for i := 0; i < c.Chapters; i++ {
			fmt.Fprintf(&b, "[CHAPTER]\nTIMEBASE=1/1000\nSTART=%d\nEND=%d\ntitle=Chapter %d\n", int64(i)*step, int64(i+1)*step, i+1)
		}
		if err := os.WriteFile(meta, []byte(b.String()), 0o644); err != nil {
			return err
		}
		defer os.Remove(meta)
		args = append(args, "-f", "ffmetadata", "-i", meta, "-map_chapters", strconv.Itoa(n), "-map_metadata", strconv.Itoa(n))
	}
	for i := 0; i < n; i++ {
		args = append(args, "-map", strconv.Itoa(i))
	}
	args = append(args, "-c:v", c.VCodec, "-pix_fmt", "yuv420p")
	if c.VCodec == "libx264" || c.VCodec == "libx265" {
		preset := c.Preset
		if preset == "" {
			preset = "ultrafast"
		}
		args = append(args, "-preset", preset)
	}
	if c.GOP > 0 {
		args = append(args, "-g", strconv.Itoa(c.GOP))
	}
	if len(c.AudioLangs) > 0 {
		args = append(args, "-c:a", "aac", "-b:a", "64k")
	}
	if len(c.SubLangs) > 0 {
		args = append(args, "-c:s", "srt")
	}
	for i, l := range c.AudioLangs {
		args = append(args, fmt.Sprintf("-metadata:s:a:%d", i), "language="+l)
		disp := "0"
		if i == 0 {
			disp = "default"
		}
		args = append(args, fmt.Sprintf("-disposition:a:%d", i), disp)
	}
	for i, l := range c.SubLangs {
		args = append(args, fmt.Sprintf("-metadata:s:s:%d", i), "language="+l)
	}
	args = append(args, "-t", dur, "file:"+path)
	out, err := exec.Command("ffmpeg", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("generating %s: %v: %s", path, err, out)
	}
	return nil
}
