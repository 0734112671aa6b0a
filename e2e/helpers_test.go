// Package e2e_test runs the real clustertx binary as a user would: built
// once by TestMain, started with exec, interrupted with real signals,
// against real ffmpeg and real OpenSSH sshd hosts on loopback.
package e2e_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"clustertx/hosts/hoststest"
	"clustertx/internal/testenv"
)

// binary is the clustertx binary built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "clustertx")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Dir = ".." // the module root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building clustertx: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ------------------------------------------------------------------ the lab

// lab is a test cluster "lab": the manager (local host "manager"), a
// mounted host "nas" that sees the media folder through a symlink and a path
// substitution, and a streaming host "gamer" with its own working_dir. Each
// remote host is a real sshd on loopback.
type lab struct {
	t       *testing.T
	dir     string
	media   string // the manager's view
	view    string // the mounted host's view (a symlink to media)
	work    string // gamer's working_dir
	home    string // HOME of the binary
	state   string // XDG_STATE_HOME of the binary
	known   string
	cfgPath string
	nas     *hoststest.SSHD
	gamer   *hoststest.SSHD
}

func newLab(t *testing.T, remotes bool) *lab {
	t.Helper()
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	l := &lab{t: t, dir: dir,
		media: filepath.Join(dir, "media"), view: filepath.Join(dir, "nas-view"),
		work: filepath.Join(dir, "gamer-work"), home: filepath.Join(dir, "home"),
		state: filepath.Join(dir, "state"), known: filepath.Join(dir, "known_hosts")}
	for _, d := range []string{l.media, l.work, l.home, l.state} {
		must(t, os.MkdirAll(d, 0o755))
	}
	must(t, os.Symlink(l.media, l.view))
	if remotes {
		l.nas = hoststest.StartSSHD(t, hoststest.Options{})
		l.gamer = hoststest.StartSSHD(t, hoststest.Options{})
		hoststest.WriteKnownHosts(t, l.known, l.nas, l.gamer)
	} else {
		must(t, os.WriteFile(l.known, nil, 0o600))
	}
	// Whatever happens, no ffmpeg of this test outlives it.
	t.Cleanup(func() { killFFmpegUnder(dir) })
	return l
}

// profileYAML: hevc with the given x265 preset; broken fails in ffmpeg's
// option parsing.
func profilesYAML(preset string) string {
	return fmt.Sprintf(`
profiles:
  hevc:
    output_options: -c:v libx265 -preset %s -crf 32 -x265-params log-level=error -c:a copy -c:s copy
    extension: .mkv
  broken:
    output_options: -c:v libx265 -preset ultrafast -no_such_option 1 -c:a copy
    extension: .mkv
rules:
  skip hevc:
    profile: SKIP
    criteria:
      vcodec: hevc
  default:
    profile: hevc
`, preset)
}

// writeConfig writes transcode.yml with cluster "lab" made of the named
// hosts ("manager", "manager2", "nas", "nas2", "gamer", "gamer2"; the 2
// variants have 2 slots), hevc at the given x265 preset.
func (l *lab) writeConfig(preset string, hostNames ...string) {
	var b strings.Builder
	b.WriteString("config:\n  ffmpeg: ffmpeg\n  clusters:\n    lab:\n")
	for _, h := range hostNames {
		// "nas2"/"gamer2": the host with 2 slots.
		slots := ""
		if h == "nas2" || h == "gamer2" {
			h, slots = strings.TrimSuffix(h, "2"), "        slots: 2\n"
		}
		switch h {
		case "manager":
			// fallback: no — the manager encodes alongside the remote
			// hosts instead of waiting for them to be busy or down.
			b.WriteString("      manager:\n        type: local\n        fallback: no\n")
		case "manager2":
			b.WriteString("      manager:\n        type: local\n        slots: 2\n        fallback: no\n")
		case "nas":
			b.WriteString(l.nas.YAML("nas", "type: mounted", "path-substitutions:", "  - "+l.media+"/ "+l.view+"/"))
			b.WriteString(slots)
		case "gamer":
			b.WriteString(l.gamer.YAML("gamer", "type: streaming", "working_dir: "+l.work))
			b.WriteString(slots)
		default:
			l.t.Fatalf("unknown host %s", h)
		}
	}
	b.WriteString(profilesYAML(preset))
	l.cfgPath = filepath.Join(l.dir, "transcode.yml")
	must(l.t, os.WriteFile(l.cfgPath, []byte(b.String()), 0o644))
}

func (l *lab) clip(name string, c testenv.Clip) string {
	l.t.Helper()
	p := filepath.Join(l.media, name)
	must(l.t, os.MkdirAll(filepath.Dir(p), 0o755))
	testenv.MakeClip(l.t, p, c)
	return p
}

// args are the flags every lab run uses, then extra.
func (l *lab) args(extra ...string) []string {
	a := []string{"-y", l.cfgPath, "--known-hosts", l.known, "--ssh-config", "none",
		"--reprobe-interval", "300ms", "--host-wait", "3s", "--check-timeout", "5s"}
	return append(a, extra...)
}

// ------------------------------------------------------------- the binary

// proc is one run of the binary.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout *syncBuf
	stderr *syncBuf
	done   chan struct{}
	start  time.Time
	ended  time.Time
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a minimal environment: HOME and XDG_STATE_HOME per test, no
// CLUSTERTX_CONFIG, no ssh-agent.
func env(home, state string) []string {
	e := []string{"HOME=" + home, "XDG_STATE_HOME=" + state, "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	return e
}

// startBinary starts clustertx in its own process group; the group is
// killed when the test ends if it is still running.
func startBinary(t *testing.T, dir string, environ []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, stdout: &syncBuf{}, stderr: &syncBuf{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Dir = dir
	p.cmd.Env = environ
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.start = time.Now()
	must(t, p.cmd.Start())
	go func() {
		_ = p.cmd.Wait()
		p.ended = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// wait waits up to d for the binary to exit and returns its exit code
// (-1 when it did not exit in time or was killed by a signal).
func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		p.t.Errorf("clustertx did not exit within %s\nstdout:\n%s\nstderr:\n%s", d, p.stdout, p.stderr)
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return -1
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

func (p *proc) output() string {
	return "--- stdout:\n" + p.stdout.String() + "--- stderr:\n" + p.stderr.String()
}

// run runs the binary to completion (at most d) and returns its exit code.
func run(t *testing.T, dir string, environ []string, d time.Duration, args ...string) (*proc, int) {
	t.Helper()
	p := startBinary(t, dir, environ, args...)
	return p, p.wait(d)
}

// ---------------------------------------------------------------- /proc

// ffmpegUnder lists live (not zombie) ffmpeg processes whose command line
// contains substr, as "pid: args".
func ffmpegUnder(substr string) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if filepath.Base(args[0]) != "ffmpeg" || !strings.Contains(string(cmdline), substr) {
			continue
		}
		if zombie(pid) {
			continue
		}
		out[pid] = strings.Join(args, " ")
	}
	return out
}

func zombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone
	}
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	return len(f) == 0 || f[0] == "Z"
}

// killFFmpegUnder kills, by pid, the ffmpeg processes this test started
// (their command line names the test's temp dir).
func killFFmpegUnder(dir string) {
	for pid := range ffmpegUnder(dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// waitNoFFmpeg polls up to d until no ffmpeg names substr; it returns what
// is left.
func waitNoFFmpeg(substr string, d time.Duration) map[int]string {
	deadline := time.Now().Add(d)
	for {
		left := ffmpegUnder(substr)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitFor polls cond every 50ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// --------------------------------------------------------------- files

func fileHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("hash: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func hashes(t *testing.T, paths []string) map[string]string {
	m := map[string]string{}
	for _, p := range paths {
		m[p] = fileHash(t, p)
	}
	return m
}

// leftovers lists clustertx temp files (names containing "clustertx")
// anywhere under dirs.
func leftovers(dirs ...string) []string {
	var out []string
	for _, dir := range dirs {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(d.Name(), "clustertx") {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// checkNothingLeft fails t if a clustertx temp file is left in the media
// folder or gamer's working_dir, or the working_dir is not empty; when says
// at which point (e.g. " after the rerun").
func (l *lab) checkNothingLeft(t *testing.T, when string) {
	t.Helper()
	if left := leftovers(l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left%s: %q", when, left)
	}
	if ents := dirEntries(l.work); len(ents) > 0 {
		t.Errorf("working_dir not empty%s: %q", when, ents)
	}
}

// logOnFailure logs the binary's output when t failed, or always with
// E2E_LOG set.
func logOnFailure(t *testing.T, out string) {
	t.Helper()
	if t.Failed() || os.Getenv("E2E_LOG") != "" {
		t.Log(out)
	}
}

func dirEntries(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// vcodec probes the first video stream's codec of path.
func vcodec(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name", "-of", "csv=p=0", "file:"+path).Output()
	if err != nil {
		t.Errorf("ffprobe %s: %v", path, err)
		return ""
	}
	return strings.TrimSpace(string(out))
}

// ------------------------------------------------------------- journal

type journalRec struct {
	Type    string `json:"type"`
	Path    any    `json:"path"`
	Outcome string `json:"outcome"`
	Output  any    `json:"output"`
	Reason  string `json:"reason"`
	Host    string `json:"host"`
	ID      string `json:"id"`
}

func readJournal(t *testing.T, state string) []journalRec {
	t.Helper()
	f, err := os.Open(filepath.Join(state, "clustertx", "journal.jsonl"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	defer f.Close()
	var out []journalRec
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r journalRec
		if json.Unmarshal(sc.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

// encodesDone counts, per source path, the journal's "done" entries for
// encodes (not the "output of clustertx" records of the outputs).
func encodesDone(t *testing.T, state string) map[string]int {
	m := map[string]int{}
	for _, r := range readJournal(t, state) {
		if r.Type == "entry" && r.Outcome == "done" && r.Reason != "output of clustertx" {
			if s, ok := r.Path.(string); ok {
				m[s]++
			}
		}
	}
	return m
}

// summaryLine returns the summary table line for the file named base
// (stdout), or "".
func summaryLine(stdout, base string) string {
	for _, line := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(line, base+" ") {
			return line
		}
	}
	return ""
}
