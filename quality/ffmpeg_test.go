package quality

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// ssimOut was captured from this machine's ffmpeg 5.1.9 (Debian 12):
// ffmpeg -i d.mkv -i r.mkv -lavfi "[0:v]scale=320:240:flags=bicubic,setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS[r];[d][r]ssim" -f null -
const ssimOut = `Input #0, matroska,webm, from 'file:d.mkv':
frame=   50 fps=0.0 q=-0.0 Lsize=N/A time=00:00:02.00 bitrate=N/A speed=   7x    
video:23kB audio:0kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: unknown
[Parsed_ssim_3 @ 0x564be2af11c0] SSIM Y:0.987305 (18.963804) U:0.985388 (18.352831) V:0.989175 (19.655659) All:0.987297 (18.961059)
`

// Identical inputs (same ffmpeg): infinite dB.
const ssimSame = `[Parsed_ssim_0 @ 0x55ae0a1cd400] SSIM Y:1.000000 (inf) U:1.000000 (inf) V:1.000000 (inf) All:1.000000 (inf)`

// This machine's ffmpeg has neither libvmaf nor xpsnr. These lines follow
// the filters' format strings: libvmaf's "VMAF score: %f" (ffmpeg 6+,
// vf_libvmaf.c uninit) and xpsnr's "XPSNR  %c: %3.4f" per plane with
// "  (minimum: %3.4f)" (ffmpeg 7.1, vf_xpsnr.c uninit).
//
// vmafOld was captured from a real libvmaf 1 build (a 2018 static ffmpeg
// 4.1, with the vmaf_float_v0.6.1.pkl model from Netflix's repository),
// whose summary line has another form.
const vmafOld = "Start calculating VMAF score...\nExec FPS: 47.154622\nVMAF score = 94.595172\n"

const (
	vmafOut  = "[Parsed_libvmaf_4 @ 0x5581c7a0f2c0] VMAF score: 95.123456\n"
	xpsnrOut = "[Parsed_xpsnr_4 @ 0x55d1] XPSNR  Y: 41.8811  U: 44.2178  V: 40.0236  (minimum: 40.0236)\n"
	xpsnrY   = "[Parsed_xpsnr_0 @ 0x55d1] XPSNR  Y: 38.5000\n"
)

func TestParseScore(t *testing.T) {
	for _, tc := range []struct {
		m    Metric
		out  string
		want float64
	}{
		{SSIM, ssimOut, 0.987297},
		{SSIM, ssimSame, 1},
		{VMAF, vmafOut, 95.123456},
		{VMAF, vmafOld, 94.595172},
		{XPSNR, xpsnrOut, 40.0236},
		{XPSNR, xpsnrY, 38.5},
	} {
		got, err := ParseScore(tc.m, tc.out)
		if err != nil || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: got %v, %v; want %v", tc.m, got, err, tc.want)
		}
	}
	if _, err := ParseScore(VMAF, ssimOut); err == nil || !strings.Contains(err.Error(), "no VMAF score") {
		t.Errorf("VMAF in SSIM output: %v", err)
	}
	// ffmpeg's own dB figure is T's.
	if got := T(SSIM, 0.987297); math.Abs(got-18.961059) > 1e-3 {
		t.Errorf("T(SSIM 0.987297) = %v, ffmpeg says 18.961059 dB", got)
	}
}

func TestSupported(t *testing.T) {
	out := `Filters:
  T.. = Timeline support
  | = Source or sink filter
 TS. psnr              VV->V      Calculate the PSNR between two video streams.
 TS. ssim              VV->V      Calculate the SSIM between two video streams.
 ... vmafmotion        V->V       Calculate the VMAF Motion score.
`
	got := Supported(out)
	if !got[SSIM] || got[VMAF] || got[XPSNR] {
		t.Errorf("Debian 12's filters: got %v, want ssim only (vmafmotion is not libvmaf)", got)
	}
	got = Supported(out + " ... libvmaf           VV->V      Calculate the VMAF between two video streams.\n TS. xpsnr  VV->V  XPSNR\n")
	if !got[VMAF] || !got[XPSNR] {
		t.Errorf("with libvmaf and xpsnr: %v", got)
	}
}

func TestArgs(t *testing.T) {
	cut := CutArgs("/m/a b.mkv", Sample{Start: 60, Seek: 60.02, Duration: 10}, 1, "/tmp/s.mkv")
	want := []string{"-ss", "60.020000", "-i", "file:/m/a b.mkv", "-t", "10.000000", "-map", "0:1", "-c", "copy",
		"-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1", "-f", "matroska", "file:/tmp/s.mkv"}
	if !slices.Equal(cut, want) {
		t.Errorf("cut:\n got %q\nwant %q", cut, want)
	}
	whole := CutArgs("a.mkv", Sample{Duration: 5, Whole: true}, 0, "s.mkv")
	if slices.Contains(whole, "-ss") || slices.Contains(whole, "-t") {
		t.Errorf("a whole-film sample is not cut: %q", whole)
	}
	enc := EncodeArgs([]string{"-hwaccel", "auto"}, []string{"-map", "0:a", "-c:v", "libx264", "-crf", "22", "-c:a", "aac"}, "s.mkv", "e.mkv")
	wantEnc := []string{"-hwaccel", "auto", "-i", "file:s.mkv", "-c:v", "libx264", "-crf", "22", "-c:a", "aac",
		"-map", "0:v:0", "-an", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1", "-f", "matroska", "file:e.mkv"}
	if !slices.Equal(enc, wantEnc) {
		t.Errorf("encode:\n got %q\nwant %q", enc, wantEnc)
	}
	m := MeasureArgs(VMAF, "e.mkv", "s.mkv", 1920, 1080, 2)
	if g := m[5]; g != "[0:v]scale=1920:1080:flags=bicubic,setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS[r];[d][r]libvmaf=n_threads=2" {
		t.Errorf("vmaf graph %q", g)
	}
	span := MeasureSpanArgs(SSIM, "out.mkv", "src.mkv", 60, 10, 0, 0)
	wantSpan := []string{"-ss", "60.000000", "-t", "10.000000", "-i", "file:out.mkv", "-ss", "60.000000", "-t", "10.000000", "-i", "file:src.mkv",
		"-lavfi", "[0:v]setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS[r];[d][r]ssim", "-f", "null", "-"}
	if !slices.Equal(span, wantSpan) {
		t.Errorf("span:\n got %q\nwant %q", span, wantSpan)
	}
	if m[1] != "file:e.mkv" || m[3] != "file:s.mkv" {
		t.Errorf("distorted first, reference second (libvmaf's order): %q", m)
	}
}
