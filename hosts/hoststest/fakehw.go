package hoststest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// FakeHW is an ffmpeg for a test host that pretends the host has NVIDIA
// (NVENC) and Intel (QSV) hardware encoders, which no test machine has:
// `-encoders` lists hevc_nvenc, h264_nvenc, hevc_qsv and h264_qsv besides
// the real ones, and an encode with one of them runs the real ffmpeg with
// libx265 (hevc_*) or libx264 (h264_*) instead, hardware-only options
// dropped (-hwaccel, -hwaccel_output_format, -init_hw_device,
// -filter_hw_device, -qsv_device, -rc, -tune, -b_ref_mode, -look_ahead…),
// -cq/-global_quality N turned into -crf N and -preset into ultrafast. A
// job's output gets a video stream tag FAKEHW=<encoder asked for>, so a
// test can tell which variant wrote it.
//
// Files in Dir make it fail the way real drivers fail (FailTest,
// FailAfter), and it logs every encode (Encodes) and the start and end of
// every hardware job (MaxConcurrent). Give each test host its own FakeHW.
type FakeHW struct {
	Dir  string // control files and logs
	Path string // the wrapper: the host's `ffmpeg:`
}

// NewFakeHW writes a wrapper around the ffmpeg in PATH into a temp dir.
func NewFakeHW(t testing.TB) *FakeHW {
	t.Helper()
	real, err := exec.LookPath("ffmpeg")
	if err != nil {
		SkipOrFail(t, "ffmpeg not found: %v", err)
	}
	dir := t.TempDir()
	f := &FakeHW{Dir: dir, Path: filepath.Join(dir, "ffmpeg")}
	script := strings.NewReplacer("@CTL@", shQuote(dir), "@REAL@", shQuote(real)).Replace(fakeHWScript)
	if err := os.WriteFile(f.Path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// SetVersion makes `ffmpeg -version`, and the banner of `ffmpeg -encoders`
// that the host check reads, report version v instead of the real one.
func (f *FakeHW) SetVersion(t testing.TB, v string) { f.write(t, "version", v) }

// FailTest makes test encodes (a lavfi input) with the family's encoders
// ("nvenc", "qsv") fail as on a host without that hardware; on false they
// work again.
func (f *FakeHW) FailTest(t testing.TB, family string, fail bool) {
	if !fail {
		os.Remove(filepath.Join(f.Dir, family+".testfail"))
		return
	}
	f.write(t, family+".testfail", "1")
}

// FailAfter makes job encodes (not test encodes) with the family's
// encoders fail with the driver's error after n of them have succeeded
// (n = 0: every one fails). n < 0 lifts it.
func (f *FakeHW) FailAfter(t testing.TB, family string, n int) {
	if n < 0 {
		os.Remove(filepath.Join(f.Dir, family+".failafter"))
		return
	}
	f.write(t, family+".failafter", strconv.Itoa(n))
}

func (f *FakeHW) write(t testing.TB, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.Dir, name), []byte(body+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// FakeEncode is one encode the wrapper ran.
type FakeEncode struct {
	Test    bool   // a test encode (lavfi input)
	Failed  bool   // made to fail (FailTest, FailAfter)
	Encoder string // the -c:v asked for
	Output  string // its last argument
}

// Encodes lists the encodes run so far, in order.
func (f *FakeHW) Encodes() []FakeEncode {
	var out []FakeEncode
	b, _ := os.ReadFile(filepath.Join(f.Dir, "encodes.log"))
	for _, l := range strings.Split(string(b), "\n") {
		p := strings.SplitN(l, "\t", 4)
		if len(p) < 4 {
			continue
		}
		out = append(out, FakeEncode{Test: p[0] == "test", Failed: p[1] == "failed", Encoder: p[2], Output: p[3]})
	}
	return out
}

// MaxConcurrent is the most hardware jobs of family that ran at once
// (from the start and end times the wrapper logged), and how many ran.
func (f *FakeHW) MaxConcurrent(family string) (most, total int) {
	fh, err := os.Open(filepath.Join(f.Dir, "sessions.log"))
	if err != nil {
		return 0, 0
	}
	defer fh.Close()
	type ev struct {
		ns    int64
		delta int
	}
	var evs []ev
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		p := strings.Fields(sc.Text()) // family start|end pid ns
		if len(p) != 4 || p[0] != family {
			continue
		}
		ns, err := strconv.ParseInt(p[3], 10, 64)
		if err != nil {
			continue
		}
		d := 1
		if p[1] == "end" {
			d = -1
		} else {
			total++
		}
		evs = append(evs, ev{ns, d})
	}
	// Ends before starts at the same instant: touching is not overlapping.
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].ns != evs[j].ns {
			return evs[i].ns < evs[j].ns
		}
		return evs[i].delta < evs[j].delta
	})
	n := 0
	for _, e := range evs {
		n += e.delta
		most = max(most, n)
	}
	return most, total
}

const fakeHWScript = `#!/bin/sh
# clustertx test host's ffmpeg: fake NVENC and QSV (hoststest.FakeHW).
ctl=@CTL@
real=@REAL@
for a in "$@"; do
	case "$a" in
	-version)
		if [ -f "$ctl/version" ]; then
			echo "ffmpeg version $(cat "$ctl/version") Copyright (c) 2000-2025 the FFmpeg developers (fake hardware)"
			"$real" "$@" | tail -n +2
			exit 0
		fi
		exec "$real" "$@" ;;
	-encoders)
		if [ -f "$ctl/version" ]; then
			echo "ffmpeg version $(cat "$ctl/version") Copyright (c) 2000-2025 the FFmpeg developers (fake hardware)" >&2
			"$real" -hide_banner "$@" || exit $?
		else
			"$real" "$@" || exit $?
		fi
		echo " V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)"
		echo " V....D hevc_nvenc           NVIDIA NVENC hevc encoder (codec hevc)"
		echo " V..... h264_qsv             H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (Intel Quick Sync Video acceleration) (codec h264)"
		echo " V..... hevc_qsv             HEVC (Intel Quick Sync Video acceleration) (codec hevc)"
		exit 0 ;;
	esac
done
enc= fam= test=job prev= out=
for a in "$@"; do
	case "$prev" in
	-c:v|-vcodec|-codec:v|-c:V) enc=$a ;;
	esac
	case "$a" in lavfi) test=test ;; esac
	prev=$a out=$a
done
case "$enc" in
*_nvenc) fam=nvenc ;;
*_qsv) fam=qsv ;;
esac
if [ -z "$fam" ]; then
	printf '%s\t%s\t%s\t%s\n' "$test" ok "$enc" "$out" >>"$ctl/encodes.log"
	exec "$real" "$@"
fi
fail() {
	printf '%s\t%s\t%s\t%s\n' "$test" failed "$enc" "$out" >>"$ctl/encodes.log"
	if [ "$fam" = nvenc ]; then
		echo "[$enc @ 0x55d0c0a1b2c0] OpenEncodeSessionEx failed: no encode device (1): (no details)" >&2
		echo "[$enc @ 0x55d0c0a1b2c0] No NVENC capable devices found" >&2
	else
		echo "[$enc @ 0x55d0c0a1b2c0] Error creating a MFX session: -9." >&2
	fi
	echo "[vost#0:0/$enc @ 0x55d0c0a1b000] Error while opening encoder - maybe incorrect parameters such as bit_rate, rate, width or height." >&2
	echo "Conversion failed!" >&2
	exit 1
}
if [ "$test" = test ]; then
	[ -f "$ctl/$fam.testfail" ] && fail
else
	if [ -f "$ctl/$fam.failafter" ]; then
		n=$(cat "$ctl/$fam.failafter")
		c=$(cat "$ctl/$fam.count" 2>/dev/null || echo 0)
		[ "$c" -ge "$n" ] && fail
		echo $((c + 1)) >"$ctl/$fam.count"
	fi
fi
case "$enc" in
hevc_*) sw=libx265 ;;
*) sw=libx264 ;;
esac
n=$# i=0 skip=0 mode=
for a do
	shift
	i=$((i + 1))
	if [ "$skip" = 1 ]; then skip=0; continue; fi
	case "$mode" in
	enc) mode=; set -- "$@" "$sw"; continue ;;
	q) mode=; set -- "$@" -crf "$a"; continue ;;
	esac
	if [ "$i" = "$n" ] && [ "$test" = job ]; then
		set -- "$@" -metadata:s:v:0 "FAKEHW=$enc"
	fi
	case "$a" in
	-c:v|-vcodec|-codec:v|-c:V) set -- "$@" "$a"; mode=enc; continue ;;
	-cq|-global_quality|-qp) mode=q; continue ;;
	-preset) set -- "$@" -preset ultrafast; skip=1; continue ;;
	-hwaccel|-hwaccel_output_format|-hwaccel_device|-init_hw_device|-filter_hw_device|-qsv_device|-rc|-tune|-b_ref_mode|-look_ahead|-look_ahead_depth|-spatial_aq|-temporal_aq|-rc-lookahead|-extbrc|-async_depth|-multipass|-gpu)
		skip=1; continue ;;
	esac
	set -- "$@" "$a"
done
printf '%s\t%s\t%s\t%s\n' "$test" ok "$enc" "$out" >>"$ctl/encodes.log"
if [ "$test" = test ]; then
	exec "$real" "$@"
fi
echo "$fam start $$ $(date +%s%N)" >>"$ctl/sessions.log"
"$real" "$@"
rc=$?
echo "$fam end $$ $(date +%s%N)" >>"$ctl/sessions.log"
exit $rc
`
