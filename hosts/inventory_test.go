package hosts_test

import (
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"clustertx/hosts"
	"clustertx/hosts/hoststest"
	"clustertx/internal/testenv"
)

const encodersSample = `Encoders:
 V..... = Video
 A..... = Audio
 S..... = Subtitle
 .F.... = Frame-level multithreading
 ..S... = Slice-level multithreading
 ...X.. = Codec is experimental
 ....B. = Supports draw_horiz_band
 .....D = Supports direct rendering method 1
 ------
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)
 V..... hevc_qsv             HEVC (Intel Quick Sync Video acceleration) (codec hevc)
 V....D hevc_vaapi           H.265/HEVC (VAAPI) (codec hevc)
 V....D libx265              libx265 H.265 / HEVC (codec hevc)
 V..... libsvtav1            SVT-AV1(Scalable Video Technology for AV1) encoder (codec av1)
 V..... hevc_videotoolbox    VideoToolbox H.265 Encoder (codec hevc)
 V..... mjpeg_qsv            MJPEG (Intel Quick Sync Video acceleration) (codec mjpeg)
 A....D aac                  AAC (Advanced Audio Coding)
 A....D libopus              libopus Opus (codec opus)
 S..... srt                  SubRip subtitle
`

func TestParseEncoders(t *testing.T) {
	got := hosts.ParseEncoders(encodersSample)
	want := []string{"libx264", "h264_nvenc", "hevc_qsv", "hevc_vaapi", "libx265", "libsvtav1", "hevc_videotoolbox", "mjpeg_qsv", "aac", "libopus", "srt"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseEncoders = %v\nwant %v", got, want)
	}
	for name, hw := range map[string]bool{"hevc_nvenc": true, "h264_qsv": true, "hevc_vaapi": true, "h264_videotoolbox": true,
		"av1_amf": true, "libx265": false, "libsvtav1": false, "aac": false} {
		if hosts.IsHWEncoder(name) != hw {
			t.Errorf("IsHWEncoder(%s) = %v", name, !hw)
		}
	}
}

func TestParseLoad(t *testing.T) {
	if l, ok := hosts.ParseLoadavg("0.52 0.58 0.59 1/467 12345\n"); !ok || l != [3]float64{0.52, 0.58, 0.59} {
		t.Errorf("ParseLoadavg = %v %v", l, ok)
	}
	for in, want := range map[string][3]float64{
		" 10:14:03 up 3 days,  2:01,  1 user,  load average: 0.52, 0.58, 0.59\n": {0.52, 0.58, 0.59},
		"10:14  up 3 days,  2:01, 2 users, load averages: 1.23 1.45 1.67\n":      {1.23, 1.45, 1.67},
		"10:14  up 3 days, 2 users, load average: 1,23, 1,45, 1,67\n":            {1.23, 1.45, 1.67},
		" 7:02PM  up 10 days, 1 user, load averages: 0.30, 0.25, 0.20\n":         {0.30, 0.25, 0.20},
		"10:14:03 up 1 min,  0 users,  load average: 12.00, 3.10, 1.00":          {12, 3.1, 1},
	} {
		if l, ok := hosts.ParseUptime(in); !ok || l != want {
			t.Errorf("ParseUptime(%q) = %v %v, want %v", in, l, ok, want)
		}
	}
	if _, ok := hosts.ParseUptime("garbage"); ok {
		t.Errorf("ParseUptime(garbage) ok")
	}
	gpus := hosts.ParseNvidiaSMI("GPU 0: NVIDIA GeForce RTX 3060 (UUID: GPU-1)\nGPU 1: NVIDIA GeForce RTX 3060 (UUID: GPU-2)\n")
	if len(gpus) != 2 || !strings.HasPrefix(gpus[1], "GPU 1: NVIDIA") {
		t.Errorf("ParseNvidiaSMI = %q", gpus)
	}
}

// fakeTransport answers Exec from a table keyed by the command line; a
// missing entry is "command not found" (exit 127), as from a POSIX shell.
type fakeTransport struct {
	mu    sync.Mutex
	out   map[string]string
	fail  map[string]bool
	calls []string
}

func (f *fakeTransport) Exec(_ context.Context, argv []string, stdout, stderr io.Writer) error {
	key := strings.Join(argv, " ")
	f.mu.Lock()
	f.calls = append(f.calls, key)
	f.mu.Unlock()
	for k, v := range f.out {
		if key == k || (strings.HasSuffix(k, "*") && strings.HasPrefix(key, strings.TrimSuffix(k, "*"))) {
			if f.fail[k] {
				if stderr != nil {
					io.WriteString(stderr, v)
				}
				return &hosts.ExitError{Code: 1, Stderr: v}
			}
			if stdout != nil {
				io.WriteString(stdout, v)
			}
			return nil
		}
	}
	return &hosts.ExitError{Code: 127, Stderr: argv[0] + ": command not found"}
}
func (f *fakeTransport) Upload(context.Context, string, string) error   { return nil }
func (f *fakeTransport) Download(context.Context, string, string) error { return nil }
func (f *fakeTransport) Remove(context.Context, string) error           { return nil }
func (f *fakeTransport) FreeSpace(context.Context, string) (int64, error) {
	return 42 << 30, nil
}
func (f *fakeTransport) Join(e ...string) string { return strings.Join(e, "/") }
func (f *fakeTransport) Close() error            { return nil }

// TestInventoryMacFallbacks: no nproc, no /proc/loadavg; sysctl and the
// macOS uptime form are used; a working videotoolbox encoder and a qsv one
// that fails its test encode.
func TestInventoryMacFallbacks(t *testing.T) {
	f := &fakeTransport{
		out: map[string]string{
			"ffmpeg -hide_banner -version": "ffmpeg version 7.1 Copyright (c) 2000-2024 the FFmpeg developers\n",
			"ffmpeg -encoders":             encodersSample,
			"true":                         "",
			"getconf _NPROCESSORS_ONLN":    "garbage",
			"sysctl -n hw.ncpu":            "10\n",
			"uptime":                       "10:14  up 3 days,  2:01, 2 users, load averages: 1.23 1.45 1.67\n",
			"ffmpeg -hide_banner -nostdin -loglevel error -f lavfi -i color=c=black:s=256x256:r=25:d=1 -pix_fmt nv12 -frames:v 1 -c:v hevc_videotoolbox -f null -": "",
			"ffmpeg -hide_banner -nostdin -loglevel error -f lavfi -i color=c=black:s=256x256:r=25:d=1 -pix_fmt nv12 -frames:v 1 -c:v hevc_qsv -f null -":          "[hevc_qsv @ 0x1234] Error creating a MFX session: -9.\nError initializing output stream\n",
			"ffmpeg -hide_banner -nostdin -loglevel error -f lavfi -i color=c=black:s=256x256:r=25:d=1 -pix_fmt nv12 -frames:v 1 -c:v h264_nvenc -f null -":        "Cannot load libcuda.so.1\n",
			"ffmpeg -hide_banner -nostdin -loglevel error -init_hw_device *":                                                                                       "Device creation failed: -22.\n",
		},
		fail: map[string]bool{},
	}
	for k := range f.out {
		if strings.Contains(k, "hevc_qsv") || strings.Contains(k, "h264_nvenc") || strings.Contains(k, "init_hw_device") {
			f.fail[k] = true
		}
	}
	def := &hosts.Def{Name: "mac", Type: hosts.Streaming, OS: "macos", WorkingDir: "/tmp/w", Enabled: true}
	f.out["test -d /tmp/w -a -w /tmp/w"] = ""
	r := hosts.Inventory(context.Background(), def, f)
	if !r.Up || r.FFmpeg != "7.1" || r.Free != 42<<30 {
		t.Fatalf("check part: %+v", r.CheckResult)
	}
	if r.Cores != 10 {
		t.Errorf("cores = %d, want 10 (sysctl); notes %q", r.Cores, r.Notes)
	}
	if !r.LoadOK || r.Load1 != 1.23 || r.Load15 != 1.67 {
		t.Errorf("load = %v %v %v ok=%v", r.Load1, r.Load5, r.Load15, r.LoadOK)
	}
	if !reflect.DeepEqual(r.HWEncoders, []string{"hevc_videotoolbox"}) {
		t.Errorf("HWEncoders = %v", r.HWEncoders)
	}
	if got := r.HWUnusable["hevc_qsv"]; got != "Error creating a MFX session: -9." {
		t.Errorf("HWUnusable[hevc_qsv] = %q (all: %v)", got, r.HWUnusable)
	}
	if _, tested := r.HWUnusable["mjpeg_qsv"]; tested {
		t.Errorf("mjpeg_qsv should not be test-encoded")
	}
	if !reflect.DeepEqual(r.SWEncoders, []string{"libx265", "libx264", "libsvtav1"}) {
		t.Errorf("SWEncoders = %v", r.SWEncoders)
	}
	for name, want := range map[string]bool{"libx265": true, "hevc_videotoolbox": true, "hevc_qsv": false, "h264_nvenc": false,
		"hevc_nvenc": false, "aac": true, "mjpeg_qsv": true, "libvvenc": false} {
		if r.HasEncoder(name) != want {
			t.Errorf("HasEncoder(%s) = %v, want %v", name, !want, want)
		}
	}
	if miss := r.MissingEncoders(strings.Fields("-c:v hevc_qsv -c:a aac -c:s copy")); !reflect.DeepEqual(miss, []string{"hevc_qsv"}) {
		t.Errorf("MissingEncoders = %v", miss)
	}
	if len(r.GPUs) != 0 {
		t.Errorf("GPUs = %v without nvidia-smi", r.GPUs)
	}
}

func TestInventoryWindows(t *testing.T) {
	f := &fakeTransport{out: map[string]string{
		`C:\ffmpeg\bin\ffmpeg.exe -hide_banner -version`: "ffmpeg version 6.0-full_build-www.gyan.dev\r\n",
		`C:\ffmpeg\bin\ffmpeg.exe -encoders`:             encodersSample,
		"wmic cpu get NumberOfLogicalProcessors /value":  "\r\r\nNumberOfLogicalProcessors=12\r\r\n\r\r\n",
		"nvidia-smi -L": "GPU 0: NVIDIA GeForce RTX 4070 (UUID: GPU-abc)\r\n",
		"cmd /c exit 0": "",
		`C:\ffmpeg\bin\ffmpeg.exe -hide_banner -nostdin -loglevel error -f lavfi -i color=c=black:s=256x256:r=25:d=1 -pix_fmt nv12 -frames:v 1 -c:v h264_nvenc -f null -`: "",
	}, fail: map[string]bool{}}
	def := &hosts.Def{Name: "win", Type: hosts.Mounted, OS: "win10", FFmpeg: `C:\ffmpeg\bin\ffmpeg.exe`, Enabled: true}
	r := hosts.Inventory(context.Background(), def, f)
	if !r.Up || r.Cores != 12 || r.LoadOK || len(r.GPUs) != 1 || !r.HasEncoder("h264_nvenc") {
		t.Fatalf("windows inventory: %+v", r)
	}
	found := false
	for _, n := range r.Notes {
		found = found || strings.Contains(n, "load average: not available on Windows")
	}
	if !found {
		t.Errorf("notes = %q", r.Notes)
	}
	for _, c := range f.calls {
		if strings.HasPrefix(c, "nproc") || strings.HasPrefix(c, "cat ") || strings.HasPrefix(c, "uptime") {
			t.Errorf("POSIX command %q run on a Windows host", c)
		}
	}
}

func TestInventoryFFmpegMissing(t *testing.T) {
	f := &fakeTransport{out: map[string]string{"nproc": "4\n", "cat /proc/loadavg": "0.1 0.2 0.3 1/2 3\n", "true": ""}}
	r := hosts.Inventory(context.Background(), &hosts.Def{Name: "x", Type: hosts.Mounted, Enabled: true}, f)
	if r.Up || !strings.Contains(r.Reason, "ffmpeg not found") || r.Cores != 4 || !r.LoadOK || r.HasEncoder("libx264") {
		t.Fatalf("inventory without ffmpeg: %+v", r)
	}
}

func checkRealInventory(t *testing.T, r hosts.InventoryResult) {
	t.Helper()
	if !r.Up {
		t.Fatalf("host down: %s (notes %q)", r.Reason, r.Notes)
	}
	if r.FFmpeg == "" || len(r.Encoders) < 10 {
		t.Errorf("ffmpeg %q, %d encoders", r.FFmpeg, len(r.Encoders))
	}
	if !r.HasEncoder("libx264") {
		t.Errorf("libx264 missing from %v", r.SWEncoders)
	}
	if r.Cores < 1 {
		t.Errorf("cores = %d; notes %q", r.Cores, r.Notes)
	}
	if !r.LoadOK || r.Load1 < 0 {
		t.Errorf("load not parsed: %v ok=%v; notes %q", r.Load1, r.LoadOK, r.Notes)
	}
	if r.RTT <= 0 || r.RTT > 10*time.Second {
		t.Errorf("RTT = %v", r.RTT)
	}
	// No GPU on the test machine: whatever nvenc ffmpeg lists must fail its
	// test encode and not count.
	if _, err := exec.LookPath("nvidia-smi"); err != nil {
		for _, e := range r.Encoders {
			if strings.HasSuffix(e, "_nvenc") && r.HasEncoder(e) {
				t.Errorf("%s counted as usable without a GPU", e)
			}
		}
		if len(r.GPUs) != 0 {
			t.Errorf("GPUs = %v", r.GPUs)
		}
	}
	t.Logf("ffmpeg %s, cores %d, load %.2f, rtt %v, hw %v, sw %v, unusable %d, notes %q",
		r.FFmpeg, r.Cores, r.Load1, r.RTT, r.HWEncoders, r.SWEncoders, len(r.HWUnusable), r.Notes)
}

func TestInventoryLocal(t *testing.T) {
	testenv.NeedFFmpeg(t)
	def := &hosts.Def{Name: "local", Type: hosts.Local, FFmpeg: "ffmpeg", Enabled: true}
	r := hosts.Inventory(context.Background(), def, hosts.NewLocal("local"))
	checkRealInventory(t, r)
	if r.Free != -1 {
		t.Errorf("Free = %d for a local host without working_dir", r.Free)
	}
}

func TestInventorySSH(t *testing.T) {
	testenv.NeedFFmpeg(t)
	s := hoststest.StartSSHD(t, hoststest.Options{})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	hoststest.WriteKnownHosts(t, kh, s)
	def := s.Def("sshhost")
	def.Type = hosts.Streaming
	def.WorkingDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tr, err := hosts.Connect(ctx, def, hosts.SSHOptions{KnownHostsFiles: []string{kh}, SSHConfigFile: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	r := hosts.Inventory(ctx, def, tr)
	checkRealInventory(t, r)
	if r.Free <= 0 {
		t.Errorf("Free = %d for a streaming host", r.Free)
	}
}
