// Package encoder owns what clustertx knows about ffmpeg's video encoders by
// name alone: which hardware family an encoder belongs to (for session caps
// and fallback), and how each takes a constant-quality level (the option,
// its range and its direction), so that one quality setting can be written
// once and mapped per encoder. It runs nothing; whether a host can really
// use an encoder is for its test encode (package hosts) to say.
package encoder

import (
	"math"
	"strconv"
	"strings"
)

// families maps an encoder-name suffix to its hardware family.
var families = []struct{ suffix, family string }{
	{"_nvenc", "nvenc"},
	{"_qsv", "qsv"},
	{"_vaapi", "vaapi"},
	{"_videotoolbox", "videotoolbox"},
	{"_amf", "amf"},
	{"_v4l2m2m", "v4l2m2m"},
	{"_mf", "mf"},
	{"_vulkan", "vulkan"},
	{"_rkmpp", "rkmpp"},
	{"_mediacodec", "mediacodec"},
	{"_omx", "omx"},
	{"_d3d12va", "d3d12va"},
}

// Family returns the hardware family of an encoder ("nvenc", "qsv",
// "vaapi", "videotoolbox", "amf", …), or "" for a software encoder.
func Family(name string) string {
	for _, f := range families {
		if strings.HasSuffix(name, f.suffix) {
			return f.family
		}
	}
	return ""
}

// Families lists the hardware families Family knows, in a fixed order.
func Families() []string {
	out := make([]string, len(families))
	for i, f := range families {
		out[i] = f.family
	}
	return out
}

// IsHardware reports whether name is a hardware encoder.
func IsHardware(name string) bool { return Family(name) != "" }

// Quality is how an encoder takes a constant-quality level.
type Quality struct {
	// Flags are the options the level is given to, each followed by the
	// level (AMF takes it per frame type).
	Flags []string
	// Min and Max bound the level.
	Min, Max float64
	// HigherIsBetter is true where a larger level means better quality
	// and bigger files (VideoToolbox's -q:v); for the rest a larger level
	// means a smaller, worse output.
	HigherIsBetter bool
	// Integer is true where ffmpeg takes only whole levels (QSV's
	// -global_quality, VAAPI's -qp, SVT-AV1's -crf…): a search must round.
	Integer bool
}

// software encoders by name; hardware ones by family (below).
var bySoftware = map[string]Quality{
	"libx265":    {Flags: []string{"-crf"}, Min: 0, Max: 51},
	"libx264":    {Flags: []string{"-crf"}, Min: 0, Max: 51},
	"libsvtav1":  {Flags: []string{"-crf"}, Min: 1, Max: 63, Integer: true},
	"libaom-av1": {Flags: []string{"-crf"}, Min: 0, Max: 63, Integer: true},
	"libvpx-vp9": {Flags: []string{"-crf"}, Min: 0, Max: 63, Integer: true},
	"libvvenc":   {Flags: []string{"-qp"}, Min: 0, Max: 63, Integer: true},
	"librav1e":   {Flags: []string{"-qp"}, Min: 0, Max: 255, Integer: true},
}

var byFamily = map[string]Quality{
	"nvenc":        {Flags: []string{"-cq"}, Min: 1, Max: 51},
	"qsv":          {Flags: []string{"-global_quality"}, Min: 1, Max: 51, Integer: true},
	"vaapi":        {Flags: []string{"-qp"}, Min: 1, Max: 51, Integer: true},
	"amf":          {Flags: []string{"-qp_i", "-qp_p"}, Min: 0, Max: 51, Integer: true},
	"videotoolbox": {Flags: []string{"-q:v"}, Min: 1, Max: 100, HigherIsBetter: true, Integer: true},
}

// QualityOf returns how encoder name takes a constant-quality level, or
// false when clustertx does not know (an encoder without a constant-quality
// mode, such as v4l2m2m, or one it has never heard of).
func QualityOf(name string) (Quality, bool) {
	if q, ok := bySoftware[name]; ok {
		return q, true
	}
	q, ok := byFamily[Family(name)]
	return q, ok
}

// QualityArgs returns the options that set level v on encoder name
// ("-crf 24" for libx265, "-cq 24" for hevc_nvenc), or false when the
// encoder's quality option is unknown, v is outside its range, or v is
// fractional where the encoder takes whole levels only.
func QualityArgs(name string, v float64) ([]string, bool) {
	q, ok := QualityOf(name)
	if !ok || v < q.Min || v > q.Max || (q.Integer && v != math.Trunc(v)) {
		return nil, false
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	var args []string
	for _, f := range q.Flags {
		args = append(args, f, s)
	}
	return args, true
}
