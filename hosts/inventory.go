package hosts

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"clustertx/internal/encoder"
)

// InventoryResult is what a host can do: the host check (is it usable at
// all) plus its ffmpeg encoders, CPU, load and GPUs.
type InventoryResult struct {
	CheckResult

	OS string `json:"os"` // from the definition: linux, macos, win10

	// RTT is the round trip of a trivial command (`true`; on Windows
	// `cmd /c exit 0`), best of two, run before the other probes: connection
	// latency plus process start on the host.
	RTT time.Duration `json:"rtt"`

	// Encoders lists every encoder name of `ffmpeg -encoders`, in its order.
	Encoders []string `json:"encoders"`
	// SWEncoders are the notable software video encoders present
	// (libx265, libx264, libsvtav1, libaom-av1, librav1e, libvpx-vp9…).
	SWEncoders []string `json:"sw_encoders"`
	// HWEncoders are the hardware video encoders (h264/hevc/av1/vp9 ×
	// nvenc/qsv/vaapi/videotoolbox/amf/v4l2m2m/mf) compiled into ffmpeg
	// that encoded a one-frame test clip: the ones that actually work here.
	HWEncoders []string `json:"hw_encoders"`
	// HWUnusable are hardware encoders compiled in whose test encode failed
	// (no such GPU, no driver, no /dev/dri…), name → first error line.
	HWUnusable map[string]string `json:"hw_unusable,omitempty"`

	Cores  int     `json:"cores"`   // online CPUs; 0 unknown
	Load1  float64 `json:"load1"`   // load averages, when LoadOK
	Load5  float64 `json:"load5"`   //
	Load15 float64 `json:"load15"`  //
	LoadOK bool    `json:"load_ok"` // the load average was read

	// GPUs are the lines of `nvidia-smi -L` ("GPU 0: NVIDIA … (UUID: …)");
	// empty when nvidia-smi is absent or lists nothing.
	GPUs []string `json:"gpus"`

	// Notes are non-fatal problems met while probing (a command missing,
	// output not understood, Windows limits).
	Notes []string `json:"notes,omitempty"`
}

// hwVerified are the codec families whose hardware encoders get a test encode.
var hwVerified = []string{"h264_", "hevc_", "av1_", "vp9_"}

// notableSW are the software video encoders worth showing.
var notableSW = []string{"libx265", "libx264", "libsvtav1", "libaom-av1", "librav1e", "libvpx-vp9", "libvvenc", "libxvid"}

// IsHWEncoder reports whether an encoder name is a hardware encoder
// (hevc_nvenc, h264_qsv, hevc_vaapi, h264_videotoolbox, av1_amf…).
func IsHWEncoder(name string) bool { return encoder.IsHardware(name) }

// HasEncoder reports whether the host's ffmpeg can use the encoder: it is
// in `ffmpeg -encoders`, and for a hardware encoder of a tested family
// (h264/hevc/av1/vp9) its test encode worked. Use it with encoder.In to
// keep a profile away from a host that lacks its codec.
func (r InventoryResult) HasEncoder(name string) bool {
	found := false
	for _, e := range r.Encoders {
		if e == name {
			found = true
			break
		}
	}
	if !found {
		return false
	}
	if !IsHWEncoder(name) || !verifiable(name) {
		return true
	}
	for _, e := range r.HWEncoders {
		if e == name {
			return true
		}
	}
	return false
}

// MissingEncoders lists the encoders of a profile's argv (encoder.In) that
// the host cannot use; nil means the profile can run there.
func (r InventoryResult) MissingEncoders(args []string) []string {
	var out []string
	for _, e := range encoder.In(args) {
		if !r.HasEncoder(e) {
			out = append(out, e)
		}
	}
	return out
}

func verifiable(name string) bool {
	for _, p := range hwVerified {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Inventory finds what a connected host can do, using only its transport:
// the host Check (ffmpeg version, working_dir and free space for streaming
// hosts), the encoders of its ffmpeg (hardware ones verified by a one-frame
// test encode), CPU cores, load average, NVIDIA GPUs and the round trip of
// a trivial command. Probes run concurrently; each failure becomes a note,
// and only the Check decides Up. Windows hosts (os: win10) are probed on a
// best-effort basis with wmic; their load average does not exist.
func Inventory(ctx context.Context, def *Def, t Transport) InventoryResult {
	res := InventoryResult{OS: def.OS}
	if res.OS == "" {
		res.OS = "linux"
	}
	ffmpeg := def.FFmpegPath()
	var mu sync.Mutex
	note := func(format string, args ...any) {
		mu.Lock()
		res.Notes = append(res.Notes, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	run := func(argv ...string) (string, error) {
		var out bytes.Buffer
		err := t.Exec(ctx, argv, &out, nil)
		return out.String(), err
	}

	// The round trip first, alone: measured among the other probes it
	// would include their queueing for sessions and CPU.
	rtt := []string{"true"}
	if def.Windows() {
		rtt = []string{"cmd", "/c", "exit", "0"}
	}
	// Best of two: the first command on a new connection also pays for
	// one-time setup on either side.
	for i := 0; i < 2; i++ {
		start := time.Now()
		if _, err := run(rtt...); err != nil {
			note("round trip (%s): %v", strings.Join(rtt, " "), firstLine(err.Error()))
			break
		}
		if d := time.Since(start); res.RTT == 0 || d < res.RTT {
			res.RTT = d
		}
	}

	var wg sync.WaitGroup
	goDo := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	goDo(func() {
		c := Check(ctx, def, t) // reads the encoder list too
		mu.Lock()
		res.CheckResult = c
		mu.Unlock()
		if c.Encoders == nil {
			return
		}
		all := c.Encoders.Names()
		sw, hwOK, hwBad := classify(ctx, t, ffmpeg, all)
		mu.Lock()
		res.Encoders, res.SWEncoders = all, sw
		res.HWEncoders, res.HWUnusable = hwOK, hwBad
		mu.Unlock()
	})
	if def.Windows() {
		goDo(func() { inventoryWindows(run, &res, &mu, note) })
	} else {
		goDo(func() {
			n, err := cores(run)
			if err != nil {
				note("cpu cores: %v", err)
				return
			}
			mu.Lock()
			res.Cores = n
			mu.Unlock()
		})
		goDo(func() {
			l, err := loadAvg(run)
			if err != nil {
				note("load average: %v", err)
				return
			}
			mu.Lock()
			res.Load1, res.Load5, res.Load15, res.LoadOK = l[0], l[1], l[2], true
			mu.Unlock()
		})
	}
	goDo(func() {
		out, err := run("nvidia-smi", "-L")
		if err != nil {
			return // absent, or no driver: no NVIDIA GPU
		}
		gpus := ParseNvidiaSMI(out)
		mu.Lock()
		res.GPUs = gpus
		mu.Unlock()
	})
	wg.Wait()
	if res.CheckResult.Host == "" { // Check always fills it; defensive
		res.CheckResult.Host, res.CheckResult.Type = def.Name, def.Type
	}
	sort.Strings(res.Notes)
	return res
}

// classify splits the encoders into notable software ones and hardware
// ones, test-encoding the hardware encoders of the verified families.
func classify(ctx context.Context, t Transport, ffmpeg string, all []string) (sw, ok []string, bad map[string]string) {
	present := map[string]bool{}
	for _, e := range all {
		present[e] = true
	}
	for _, e := range notableSW {
		if present[e] {
			sw = append(sw, e)
		}
	}
	var tried []string
	for _, e := range all {
		if IsHWEncoder(e) && verifiable(e) {
			tried = append(tried, e)
		}
	}
	if len(tried) == 0 {
		return sw, nil, nil
	}
	errs := make([]string, len(tried))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, e := range tried {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = testEncode(ctx, t, ffmpeg, e)
		}()
	}
	wg.Wait()
	for i, e := range tried {
		if errs[i] == "" {
			ok = append(ok, e)
			continue
		}
		if bad == nil {
			bad = map[string]string{}
		}
		bad[e] = errs[i]
	}
	return sw, ok, bad
}

// testEncode encodes one synthetic frame with the encoder to the null
// muxer; "" means it worked, else the first error line.
func testEncode(ctx context.Context, t Transport, ffmpeg string, enc string) string {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	argv := FFmpegHead(ffmpeg, "error")
	src := []string{"-f", "lavfi", "-i", "color=c=black:s=256x256:r=25:d=1"}
	switch {
	case strings.HasSuffix(enc, "_vaapi"):
		dev := "/dev/dri/renderD128"
		argv = append(argv, "-init_hw_device", "vaapi=va:"+dev, "-filter_hw_device", "va")
		argv = append(argv, src...)
		argv = append(argv, "-vf", "format=nv12,hwupload")
	case strings.HasSuffix(enc, "_vulkan"):
		argv = append(argv, "-init_hw_device", "vulkan=vk", "-filter_hw_device", "vk")
		argv = append(argv, src...)
		argv = append(argv, "-vf", "format=nv12,hwupload")
	case strings.HasSuffix(enc, "_v4l2m2m"):
		argv = append(argv, src...)
		argv = append(argv, "-pix_fmt", "yuv420p")
	default: // nvenc, qsv, amf, videotoolbox, mf: system-memory NV12 frames
		argv = append(argv, src...)
		argv = append(argv, "-pix_fmt", "nv12")
	}
	argv = append(argv, "-frames:v", "1", "-c:v", enc, "-f", "null", "-")
	var stderr TailBuffer
	stderr.Max = 5
	err := t.Exec(ctx, argv, nil, &stderr)
	if err == nil {
		return ""
	}
	if msg := firstLine(stderr.String()); msg != "" {
		return msg
	}
	return firstLine(err.Error())
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	line, _, _ := strings.Cut(s, "\n")
	line = strings.TrimSpace(line)
	// Drop the "[h264_nvenc @ 0x55…] " prefix: the address is noise.
	if strings.HasPrefix(line, "[") {
		if i := strings.Index(line, "] "); i > 0 {
			line = line[i+2:]
		}
	}
	return line
}

// ParseEncoders returns the encoder names of `ffmpeg -encoders` output, in
// order: the second field of every line after the " ------" separator whose
// first field is the 6-character capability column (V....D, A....., …).
func ParseEncoders(out string) []string {
	var names []string
	started := false
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !started {
			if strings.HasPrefix(line, "---") {
				started = true
			}
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || len(f[0]) != 6 || !strings.ContainsRune("VASD", rune(f[0][0])) {
			continue
		}
		names = append(names, f[1])
	}
	return names
}

// ParseNvidiaSMI returns the GPU lines of `nvidia-smi -L`.
func ParseNvidiaSMI(out string) []string {
	var gpus []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "GPU ") {
			gpus = append(gpus, l)
		}
	}
	return gpus
}

type runFunc func(argv ...string) (string, error)

// cores tries nproc, getconf (Linux, BSD, macOS) and sysctl hw.ncpu (macOS, BSD).
func cores(run runFunc) (int, error) {
	var errs []string
	for _, argv := range [][]string{{"nproc"}, {"getconf", "_NPROCESSORS_ONLN"}, {"sysctl", "-n", "hw.ncpu"}} {
		out, err := run(argv...)
		if err != nil {
			errs = append(errs, argv[0]+": "+firstLine(err.Error()))
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(out)); err == nil && n > 0 {
			return n, nil
		}
		errs = append(errs, fmt.Sprintf("%s: unexpected output %q", argv[0], strings.TrimSpace(out)))
	}
	return 0, fmt.Errorf("%s", strings.Join(errs, "; "))
}

// loadAvg reads /proc/loadavg (Linux), else parses `uptime` (macOS, BSD).
func loadAvg(run runFunc) ([3]float64, error) {
	out, err := run("cat", "/proc/loadavg")
	if err == nil {
		if l, ok := ParseLoadavg(out); ok {
			return l, nil
		}
	}
	out, err2 := run("uptime")
	if err2 != nil {
		return [3]float64{}, fmt.Errorf("/proc/loadavg: %v; uptime: %v", firstLine(fmt.Sprint(err)), firstLine(err2.Error()))
	}
	if l, ok := ParseUptime(out); ok {
		return l, nil
	}
	return [3]float64{}, fmt.Errorf("uptime output not understood: %q", strings.TrimSpace(out))
}

// ParseLoadavg parses /proc/loadavg ("0.52 0.58 0.59 1/467 12345").
func ParseLoadavg(s string) ([3]float64, bool) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return [3]float64{}, false
	}
	return parse3(f[:3])
}

// ParseUptime parses the load averages at the end of `uptime` output, in
// the Linux/BSD form "load average: 0.52, 0.58, 0.59" and the macOS form
// "load averages: 1.23 1.45 1.67" (decimal commas are accepted too).
func ParseUptime(s string) ([3]float64, bool) {
	i := strings.LastIndex(s, "load average")
	if i < 0 {
		return [3]float64{}, false
	}
	rest := s[i+len("load average"):]
	rest = strings.TrimPrefix(rest, "s")
	rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
	rest, _, _ = strings.Cut(rest, "\n")
	var f []string
	if strings.Contains(rest, ", ") {
		f = strings.Split(rest, ", ")
	} else {
		f = strings.Fields(rest)
	}
	if len(f) < 3 {
		return [3]float64{}, false
	}
	for i := range f {
		f[i] = strings.ReplaceAll(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(f[i]), ",")), ",", ".")
	}
	return parse3(f[:3])
}

func parse3(f []string) ([3]float64, bool) {
	var l [3]float64
	for i := 0; i < 3; i++ {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return [3]float64{}, false
		}
		l[i] = v
	}
	return l, true
}

// inventoryWindows fills cores (and a note about load) with wmic, which
// recent Windows releases may lack; failures are notes.
func inventoryWindows(run runFunc, res *InventoryResult, mu *sync.Mutex, note func(string, ...any)) {
	out, err := run("wmic", "cpu", "get", "NumberOfLogicalProcessors", "/value")
	if err != nil {
		note("cpu cores: wmic: %v", firstLine(err.Error()))
	} else {
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "NumberOfLogicalProcessors="); ok {
				if k, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					n += k // one line per CPU socket
				}
			}
		}
		if n > 0 {
			mu.Lock()
			res.Cores = n
			mu.Unlock()
		} else {
			note("cpu cores: wmic output not understood")
		}
	}
	note("load average: not available on Windows")
}
