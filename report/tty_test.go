package report

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// skipOrFail skips, unless CLUSTERTX_TEST_DISALLOW_SKIP is set (CI), where
// a missing tool is a failure.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CLUSTERTX_TEST_DISALLOW_SKIP") != "" {
		t.Fatalf("%s (CLUSTERTX_TEST_DISALLOW_SKIP is set)", why)
	}
	t.Skip(why)
}

// TestTerminalSession runs testdata/ttydemo in a real terminal (a detached
// tmux pane, 120×30) and reads the screen back while it runs and after it
// exits: what a person would see, with x/term detecting the TTY.
func TestTerminalSession(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		skipOrFail(t, "tmux not installed")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		skipOrFail(t, "go command not in PATH")
	}
	bin := filepath.Join(t.TempDir(), "ttydemo")
	if out, err := exec.Command(goBin, "build", "-o", bin, "./testdata/ttydemo").CombinedOutput(); err != nil {
		t.Fatalf("building ttydemo: %v\n%s", err, out)
	}

	// A private tmux server (own socket, no config), killed at the end.
	sock := "clustertx-test-" + strconv.Itoa(os.Getpid())
	env := []string{"TERM=xterm-256color"}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "TMUX=") && !strings.HasPrefix(e, "TERM=") {
			env = append(env, e)
		}
	}
	tm := func(args ...string) (string, error) {
		cmd := exec.Command(tmux, append([]string{"-L", sock, "-f", "/dev/null"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := tm("new-session", "-d", "-x", "120", "-y", "30",
		bin+"; echo ttydemo-exit=$?; sleep 60"); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { tm("kill-server") })

	barRx := regexp.MustCompile(`^\d+/3 files, \d+ running.*; media s +\d+% \|[█ ]*\| \(\d+/1800\)`)
	slotRx := regexp.MustCompile(`^  (nas#[12]|gpu2) +(film|other|episode01)\.mkv +\d+\.\d% +\d+\.\d+x ETA `)
	var sawLive bool
	var last []string
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := tm("capture-pane", "-p")
		if err != nil {
			t.Fatalf("tmux capture-pane: %v\n%s", err, out)
		}
		last = strings.Split(strings.TrimRight(out, "\n"), "\n")
		bars, slots := 0, 0
		for _, l := range last {
			if barRx.MatchString(l) {
				bars++
			}
			if slotRx.MatchString(l) {
				slots++
			}
		}
		if bars > 1 {
			t.Fatalf("%d bars on screen (redraw stacked frames):\n%s", bars, out)
		}
		if bars == 1 && slots > 0 && !sawLive {
			sawLive = true
			t.Logf("live screen:\n%s", strings.TrimRight(out, "\n"))
		}
		if strings.Contains(out, "ttydemo-exit=") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ttydemo did not finish; screen:\n%s", out)
		}
		time.Sleep(40 * time.Millisecond)
	}
	screen := strings.Join(last, "\n")
	t.Logf("final screen:\n%s", screen)
	if !sawLive {
		t.Error("never saw the bar together with a per-host line")
	}
	if strings.Contains(screen, "not a terminal") {
		t.Error("ttydemo did not detect the tmux pane as a terminal")
	}
	if !strings.Contains(screen, "ttydemo-exit=0") {
		t.Error("ttydemo failed")
	}
	for _, name := range []string{"film.mkv", "other.mkv", "episode01.mkv"} {
		for _, what := range []string{"start", "done"} {
			re := regexp.MustCompile(`(?m)^clustertx: host \S+: ` + what + ` ` + regexp.QuoteMeta(name) + `\b`)
			if n := len(re.FindAllString(screen, -1)); n != 1 {
				t.Errorf("%q %s lines on the final screen: %d, want 1", name, what, n)
			}
		}
	}
	for _, l := range last {
		if barRx.MatchString(l) || slotRx.MatchString(l) {
			t.Errorf("live line left on the screen after the run: %q", l)
		}
	}
}
