package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"clustertx/config"
	"clustertx/hosts"
	"clustertx/profiles"
	"clustertx/quality"
)

// The search's knob on a classic profile: the encoder named by -c:v and its
// quality option from internal/encoder, replaced where the profile sets it
// (every option of encoders that take several), added to the section that
// names the encoder where it does not (profiles.WithLevel); the profile
// itself is untouched.
func TestClassicKnob(t *testing.T) {
	opts := func(s string) profiles.Options {
		o, err := profiles.ParseOptions(s)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	for _, c := range []struct {
		name        string
		output      string
		video       string
		enc, option string
		cur         float64
		hasCur      bool
		wantOut     string
		wantVideo   string
	}{
		{"x265 in output", "-c:v libx265 -preset medium -crf 24 -c:a copy", "", "libx265", "-crf", 24, true,
			"-c:v libx265 -preset medium -crf 31 -c:a copy", ""},
		{"nvenc in video, no level", "-c:a copy", "-c:v hevc_nvenc -preset p5", "hevc_nvenc", "-cq", 0, false,
			"-c:a copy", "-c:v hevc_nvenc -preset p5 -cq 31"},
		{"amf takes two", "-c:v hevc_amf -qp_i 20 -qp_p 22", "", "hevc_amf", "-qp_i", 20, true,
			"-c:v hevc_amf -qp_i 31 -qp_p 31", ""},
		{"audio encoder first", "-c:a aac -vcodec libx264", "", "libx264", "-crf", 0, false,
			"-c:a aac -vcodec libx264 -crf 31", ""},
	} {
		p := &profiles.Profile{Name: "p", Output: opts(c.output), Video: opts(c.video)}
		k, err := knobOf(p, "")
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		cur, has := k.Current()
		if k.Encoder() != c.enc || k.Option() != c.option || cur != c.cur || has != c.hasCur {
			t.Errorf("%s: encoder %s option %s current %v %v", c.name, k.Encoder(), k.Option(), cur, has)
		}
		w, err := k.With(31)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := strings.Join(w.Output.Args(), " "); got != c.wantOut {
			t.Errorf("%s: output %q, want %q", c.name, got, c.wantOut)
		}
		if got := strings.Join(w.Video.Args(), " "); got != c.wantVideo {
			t.Errorf("%s: video %q, want %q", c.name, got, c.wantVideo)
		}
		if strings.Join(p.Output.Args(), " ") != c.output {
			t.Errorf("%s: the profile itself changed", c.name)
		}
	}
	for _, c := range []struct{ output, want string }{
		{"-c:v h264_v4l2m2m", "does not know how h264_v4l2m2m takes a constant-quality level"},
		{"-c:v copy -c:a aac", "names no video encoder"},
	} {
		p := &profiles.Profile{Name: "p", Output: opts(c.output)}
		if _, err := knobOf(p, ""); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.output, err, c.want)
		}
	}
}

// A rule's quality: replaces its profile's; --target replaces the metric
// and target, or gives a profile without the key a search with defaults.
func TestQualityOf(t *testing.T) {
	prof := &profiles.Profile{Quality: quality.Default(quality.VMAF, 95)}
	rule := &profiles.Rule{Quality: quality.Default(quality.SSIM, 0.98)}
	if c := qualityOf(rule, prof, nil); c.Metric != quality.SSIM || c == rule.Quality {
		t.Errorf("rule's: %+v (must be a copy)", c)
	}
	if c := qualityOf(nil, prof, nil); c.Metric != quality.VMAF {
		t.Errorf("profile's: %+v", c)
	}
	tg := &QualityTarget{Metric: quality.XPSNR, Value: 40}
	if c := qualityOf(nil, prof, tg); c.Metric != quality.XPSNR || c.Target != 40 || prof.Quality.Metric != quality.VMAF {
		t.Errorf("--target: %+v", c)
	}
	if c := qualityOf(nil, &profiles.Profile{}, tg); c == nil || c.Samples != quality.DefaultSamples {
		t.Errorf("--target without a key: %+v", c)
	}
	if c := qualityOf(nil, &profiles.Profile{}, nil); c != nil {
		t.Errorf("no key, no target: %+v", c)
	}
}

// The knob of a profile with encoder variants is that of the variant the
// search is pinned to: its encoder and quality option, its resolved level
// (its own crf, else the profile's), and the profile resolved to it at a
// level (profiles.WithLevel).
func TestVariantKnob(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.yml")
	if err := os.WriteFile(path, []byte(`
profiles:
  chain:
    output_options: -c:a copy
    extension: .mkv
    crf: 24
    encoders:
      - encoder: hevc_nvenc
        options: -preset p5
        crf: 27
      - encoder: libx264
        options: -preset ultrafast
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{Path: path, Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := cfg.Profile("chain")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key, enc, option string
		cur              float64
		video            string
	}{
		{"hevc_nvenc", "hevc_nvenc", "-cq", 27, "-c:v hevc_nvenc -preset p5 -cq 31"},
		{"libx264", "libx264", "-crf", 24, "-c:v libx264 -preset ultrafast -crf 31"},
	} {
		k, err := knobOf(p, c.key)
		if err != nil {
			t.Fatalf("%s: %v", c.key, err)
		}
		cur, ok := k.Current()
		if k.Encoder() != c.enc || k.Option() != c.option || k.Variant() != c.key || !ok || cur != c.cur {
			t.Errorf("%s: encoder %s option %s variant %s current %v %v", c.key, k.Encoder(), k.Option(), k.Variant(), cur, ok)
		}
		w, err := k.With(31)
		if err != nil {
			t.Fatalf("%s: %v", c.key, err)
		}
		if got := strings.Join(w.Video.Args(), " "); got != c.video || w.VariantKey != c.key || w.Variants() != nil {
			t.Errorf("%s at 31: video %q (variant %q), want %q resolved to the variant", c.key, got, w.VariantKey, c.video)
		}
	}
	if _, err := knobOf(p, ""); err == nil || !strings.Contains(err.Error(), "none was chosen") {
		t.Errorf("a chain without a variant: %v", err)
	}
}

// TestMetricsOnProvesEachMetric: a metric counts only where a two-frame
// measurement works. The fake ffmpeg lists libvmaf and xpsnr, but its
// libvmaf fails the way a libvmaf 1 build without its model file does;
// xpsnr answers in ffmpeg 7.1's format. SSIM needs no proof.
func TestMetricsOnProvesEachMetric(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ffmpeg")
	script := `#!/bin/sh
case "$*" in
*-filters*)
	echo " TS. ssim              VV->V      Calculate the SSIM between two video streams."
	echo " ... libvmaf           VV->V      Calculate the VMAF between two video streams."
	echo " ... xpsnr             VV->V      Calculate the extended perceptually weighted peak signal-to-noise ratio (XPSNR) between two video streams."
	exit 0 ;;
*libvmaf*)
	echo "Start calculating VMAF score..." >&2
	echo "Caught VmafException: Error loading model (.pkl): Trouble reading the file:/usr/local/share/model/vmaf_v0.6.1.pkl" >&2
	exit 1 ;;
*xpsnr*)
	echo "[Parsed_xpsnr_0 @ 0x55d1] XPSNR  Y: inf  U: inf  V: inf  (minimum: inf)" >&2
	exit 0 ;;
esac
exit 1
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	have, err := metricsOn(t.Context(), hosts.NewLocal("m"), bin)
	if err != nil {
		t.Fatal(err)
	}
	if !have[quality.SSIM] || !have[quality.XPSNR] || have[quality.VMAF] {
		t.Errorf("got %v: want SSIM and XPSNR, not VMAF (listed, but it cannot load its model)", have)
	}
}
