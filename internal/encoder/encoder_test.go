package encoder

import (
	"slices"
	"testing"
)

func TestFamily(t *testing.T) {
	for name, want := range map[string]string{
		"hevc_nvenc": "nvenc", "h264_qsv": "qsv", "hevc_vaapi": "vaapi",
		"hevc_videotoolbox": "videotoolbox", "av1_amf": "amf",
		"libx265": "", "libsvtav1": "", "mpeg4": "",
	} {
		if got := Family(name); got != want {
			t.Errorf("Family(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestQualityArgs(t *testing.T) {
	for _, c := range []struct {
		name string
		v    float64
		want []string
	}{
		{"libx265", 24, []string{"-crf", "24"}},
		{"hevc_nvenc", 26.5, []string{"-cq", "26.5"}},
		{"hevc_qsv", 25, []string{"-global_quality", "25"}},
		{"hevc_vaapi", 25, []string{"-qp", "25"}},
		{"hevc_amf", 25, []string{"-qp_i", "25", "-qp_p", "25"}},
		{"hevc_videotoolbox", 65, []string{"-q:v", "65"}},
	} {
		got, ok := QualityArgs(c.name, c.v)
		if !ok || !slices.Equal(got, c.want) {
			t.Errorf("QualityArgs(%q, %v) = %q, %v; want %q", c.name, c.v, got, ok, c.want)
		}
	}
	for _, c := range []struct {
		name string
		v    float64
	}{{"libx265", 52}, {"hevc_v4l2m2m", 20}, {"mystery", 20}, {"hevc_videotoolbox", 0}, {"hevc_qsv", 24.5}, {"hevc_vaapi", 25.5}} {
		if got, ok := QualityArgs(c.name, c.v); ok {
			t.Errorf("QualityArgs(%q, %v) = %q, want refusal", c.name, c.v, got)
		}
	}
	if q, _ := QualityOf("hevc_videotoolbox"); !q.HigherIsBetter {
		t.Error("VideoToolbox's -q:v: higher is better")
	}
}
