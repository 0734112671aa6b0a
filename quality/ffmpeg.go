package quality

import (
	"bufio"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"clustertx/split"
)

// The commands below are ffmpeg arguments after the program and its fixed
// leading flags (-nostdin, -y, log level: the caller's). Paths get
// ffmpeg's file: prefix, as everywhere in clustertx.

// CutArgs copies sample s of the video stream with absolute index stream
// out of src into output (Matroska): a stream copy from the keyframe at
// s.Start (-ss before -i lands on the keyframe at or before s.Seek), for
// s.Duration seconds, video only. Nothing is decoded, so it takes about as
// long as reading those bytes.
func CutArgs(src string, s Sample, stream int, output string) []string {
	var args []string
	if !s.Whole && s.Seek > 0 {
		args = append(args, "-ss", split.Seconds(s.Seek))
	}
	args = append(args, "-i", "file:"+src)
	if !s.Whole {
		args = append(args, "-t", split.Seconds(s.Duration))
	}
	return append(args, "-map", "0:"+strconv.Itoa(stream), "-c", "copy", "-an", "-sn", "-dn",
		"-map_metadata", "-1", "-map_chapters", "-1", "-f", "matroska", "file:"+output)
}

// EncodeArgs encodes a cut sample (input: its only stream is the video)
// with a profile's input and output options (in, out: the profile's argv
// with the level already set), its video only, into output.
func EncodeArgs(in, out []string, input, output string) []string {
	args := append([]string(nil), in...)
	args = append(args, "-i", "file:"+input)
	args = append(args, split.WithoutMaps(out)...)
	return append(args, "-map", "0:v:0", "-an", "-sn", "-dn",
		"-map_metadata", "-1", "-map_chapters", "-1", "-f", "matroska", "file:"+output)
}

// MeasureArgs computes metric m of distorted against reference. The
// distorted video is scaled to the reference's size (w×h; a profile may
// scale) and both start at timestamp 0, so frames pair up one to one; the
// result goes to the null muxer and the score to stderr (ParseScore).
// threads is libvmaf's n_threads (0: its default).
func MeasureArgs(m Metric, distorted, reference string, w, h, threads int) []string {
	filter := m.Filter()
	if m == VMAF && threads > 0 {
		filter += "=n_threads=" + strconv.Itoa(threads)
	}
	scale := ""
	if w > 0 && h > 0 {
		scale = fmt.Sprintf("scale=%d:%d:flags=bicubic,", w, h)
	}
	graph := fmt.Sprintf("[0:v]%ssetpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS[r];[d][r]%s", scale, filter)
	return []string{"-i", "file:" + distorted, "-i", "file:" + reference, "-lavfi", graph, "-f", "null", "-"}
}

// MeasureSpanArgs is MeasureArgs on one stretch of two full-length files
// (a finished encode against its source): both are decoded from start for
// dur seconds (an exact seek on each, so their frames pair up as in the
// source).
func MeasureSpanArgs(m Metric, distorted, reference string, start, dur float64, w, h int) []string {
	all := MeasureArgs(m, distorted, reference, w, h, 0)
	ss, t := split.Seconds(start), split.Seconds(dur)
	args := []string{"-ss", ss, "-t", t, all[0], all[1], "-ss", ss, "-t", t}
	return append(args, all[2:]...)
}

var (
	// [Parsed_ssim_3 @ 0x…] SSIM Y:0.987305 (18.963804) U:… V:… All:0.987297 (18.961059)
	ssimRe = regexp.MustCompile(`SSIM Y:.*\bAll:([0-9.]+)`)
	// [Parsed_libvmaf_4 @ 0x…] VMAF score: 95.123456 (libvmaf 2, ffmpeg 5+)
	// VMAF score = 94.595172 (libvmaf 1, ffmpeg 4)
	vmafRe = regexp.MustCompile(`VMAF score(?::| =) *([0-9.]+)`)
	// [Parsed_xpsnr_4 @ 0x…] XPSNR  Y: 41.8811  U: 44.2178  V: 45.0236  (minimum: 41.8811)
	xpsnrRe    = regexp.MustCompile(`XPSNR\s+[YR]: *([0-9.]+|inf)`)
	xpsnrMinRe = regexp.MustCompile(`\(minimum: *([0-9.]+|inf)\)`)
)

// ParseScore finds metric m's summary in ffmpeg's stderr: the last SSIM
// "All:" value, libvmaf's "VMAF score:", or XPSNR's minimum over the
// planes (its luma value when there is a single plane). An infinite
// XPSNR (identical pictures) is read as 100 dB.
func ParseScore(m Metric, stderr string) (float64, error) {
	var re *regexp.Regexp
	switch m {
	case SSIM:
		re = ssimRe
	case VMAF:
		re = vmafRe
	case XPSNR:
		re = xpsnrRe
	default:
		return 0, fmt.Errorf("unknown metric %q", string(m))
	}
	var val string
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if g := re.FindStringSubmatch(line); g != nil {
			val = g[1]
			if m == XPSNR {
				if mg := xpsnrMinRe.FindStringSubmatch(line); mg != nil {
					val = mg[1]
				}
			}
		}
	}
	if val == "" {
		return 0, fmt.Errorf("no %s score in ffmpeg's output", m.Label())
	}
	if val == "inf" {
		return 100, nil
	}
	v, err := strconv.ParseFloat(val, 64)
	if err != nil || math.IsNaN(v) {
		return 0, fmt.Errorf("bad %s score %q in ffmpeg's output", m.Label(), val)
	}
	return v, nil
}

// ProbeArgs measures m on two generated frames against themselves: an
// ffmpeg that lists m's filter may still be unable to compute it (libvmaf
// 1, in ffmpeg 4 builds, needs a model file that is often not installed:
// "Error loading model (.pkl)"). The run succeeds and ParseScore finds a
// score only where m works. Like MeasureArgs, the arguments follow the
// caller's fixed start (binary, log level: info).
func ProbeArgs(m Metric) []string {
	src := "testsrc2=s=176x144:r=25:d=0.08"
	return []string{"-f", "lavfi", "-i", src, "-f", "lavfi", "-i", src,
		"-lavfi", "[0:v][1:v]" + m.Filter(), "-f", "null", "-"}
}

// Supported returns the metrics an ffmpeg has, from the output of
// `ffmpeg -hide_banner -filters` (" TS. ssim  VV->V  Calculate the SSIM…").
func Supported(filters string) map[Metric]bool {
	have := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(filters))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && strings.Contains(f[2], "->") {
			have[f[1]] = true
		}
	}
	out := map[Metric]bool{}
	for _, m := range Metrics {
		if have[m.Filter()] {
			out[m] = true
		}
	}
	return out
}
