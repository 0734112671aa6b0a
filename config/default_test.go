package config

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
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
	for name, vcodec := range map[string]string{"hevc": "hevc", "h264": "h264", "av1": "av1", "copy": "h264", "hevc-auto/libx265": "hevc"} {
		t.Run(name, func(t *testing.T) {
			pname, variant, _ := strings.Cut(name, "/")
			p, err := c.Profile(pname)
			if err != nil {
				t.Fatal(err)
			}
			if variant != "" {
				if p, err = p.ForVariant(variant); err != nil {
					t.Fatal(err)
				}
			}
			in, out := p.Args(info, c.Automap)
			dst := filepath.Join(dir, strings.ReplaceAll(name, "/", "-")+p.Extension+".tmp")
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

// The hevc-auto chain of the built-in default and of the example: every
// variant's video section as documented, the x265 level on libx265 only.
func TestShippedHevcChain(t *testing.T) {
	want := map[string]string{
		"hevc_nvenc":        "-c:v hevc_nvenc -preset p5 -rc vbr -b:v 0 -cq 27",
		"hevc_qsv":          "-c:v hevc_qsv -preset slow -global_quality 25",
		"hevc_vaapi":        "-c:v hevc_vaapi -vf format=nv12,hwupload -rc_mode CQP -qp 25",
		"hevc_videotoolbox": "-c:v hevc_videotoolbox -q:v 60",
		"libx265":           "-c:v libx265 -preset medium -crf 24",
	}
	order := []string{"hevc_nvenc", "hevc_qsv", "hevc_vaapi", "hevc_videotoolbox", "libx265"}
	for _, path := range []string{"", "../transcode.yml.example"} {
		c, err := Load(LoadOptions{Path: path, Getenv: noEnv, Home: t.TempDir(), Strict: true})
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Profile("hevc-auto")
		if err != nil {
			t.Fatalf("%s: %v", c.File, err)
		}
		var keys []string
		for _, v := range p.Variants() {
			keys = append(keys, v.Key)
			if got := strings.Join(v.Video.Args(), " "); got != want[v.Key] {
				t.Errorf("%s: %s video = %q, want %q", c.File, v.Key, got, want[v.Key])
			}
		}
		if !slices.Equal(keys, order) {
			t.Errorf("%s: variants %v, want %v", c.File, keys, order)
		}
		if p.Extension != ".mkv" {
			t.Errorf("%s: extension %q", c.File, p.Extension)
		}
	}
}
