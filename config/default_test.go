package config

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"clustertx/internal/testenv"
	"clustertx/media"
)

// The built-in profiles must work with nothing but ffmpeg: encode a real
// clip with each and check that every audio and subtitle track survives.
func TestDefaultProfilesEncode(t *testing.T) {
	testenv.NeedFFmpeg(t)
	c, err := Load(LoadOptions{Getenv: noEnv, Home: t.TempDir(), Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "movie.mkv")
	testenv.MakeClip(t, src, testenv.Clip{Seconds: 1, Width: 160, Height: 120, AudioLangs: []string{"eng", "jpn"}, SubLangs: []string{"eng"}})
	prober := &media.Prober{FFprobe: c.FFprobe}
	info, err := prober.Probe(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	for name, vcodec := range map[string]string{"hevc": "hevc", "h264": "h264", "av1": "av1", "copy": "h264"} {
		t.Run(name, func(t *testing.T) {
			p, err := c.Profile(name)
			if err != nil {
				t.Fatal(err)
			}
			in, out := p.Args(info, c.Automap)
			dst := filepath.Join(dir, name+p.Extension+".tmp")
			args := append([]string{"-nostdin", "-v", "error", "-y"}, in...)
			args = append(append(append(args, "-i", "file:"+src), out...), "file:"+dst)
			if msg, err := exec.Command(c.FFmpeg, args...).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg %v: %v\n%s", args, err, msg)
			}
			got, err := prober.Probe(context.Background(), dst)
			if err != nil {
				t.Fatal(err)
			}
			if got.VCodec() != vcodec || len(got.Audio) != 2 || len(got.Subtitles) != 1 || len(got.Streams) != 4 {
				t.Errorf("output: %s", got.Summary())
			}
		})
	}
}
