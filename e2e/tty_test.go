package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"clustertx/hosts/hoststest"
	"clustertx/internal/testenv"
)

// A real run on a terminal (a tmux pane): the screen shows one progress
// bar in media seconds and a live line per busy host slot. And the same run
// through a pipe has no carriage return and no escape sequence at all.
func TestTerminalShowsBarAndHostLines(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		hoststest.SkipOrFail(t, "tmux not found")
	}
	l := newLab(t, true)
	l.writeConfig("medium", "manager", "nas", "gamer")
	var files []string
	for _, n := range []string{"one.mkv", "two.mkv", "three.mkv"} {
		files = append(files, l.clip(n, testenv.Clip{Seconds: 6, Width: 640, Height: 480}))
	}
	sock := filepath.Join(l.dir, "tmux.sock")
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-S", sock}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { tmux("kill-server") })
	script := filepath.Join(l.dir, "run.sh")
	var cmd strings.Builder
	cmd.WriteString("cd " + quote(l.dir) + " && env HOME=" + quote(l.home) + " XDG_STATE_HOME=" + quote(l.state) + " " + quote(binary))
	for _, a := range append(l.args("-c", "lab"), files...) {
		cmd.WriteString(" " + quote(a))
	}
	cmd.WriteString("; echo EXIT=$?; sleep 30\n")
	must(t, os.WriteFile(script, []byte(cmd.String()), 0o755))
	if out, err := tmux("new-session", "-d", "-x", "160", "-y", "40", "sh "+quote(script)); err != nil {
		t.Fatalf("tmux: %v: %s", err, out)
	}
	var screen string
	sawBar, sawHost := false, false
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && !(sawBar && sawHost) {
		time.Sleep(200 * time.Millisecond)
		screen, _ = tmux("capture-pane", "-p")
		if strings.Contains(screen, "EXIT=") {
			break
		}
		for _, line := range strings.Split(screen, "\n") {
			// "1/3 files, 3 running at 0.6x; media s  36% |███     | (6/18) [..]"
			if strings.Contains(line, "files") && strings.Contains(line, "media") && strings.Count(line, "|") >= 2 {
				sawBar = true
			}
		}
		for _, h := range []string{"nas", "gamer", "manager"} {
			for _, line := range strings.Split(screen, "\n") {
				if strings.Contains(line, h) && strings.Contains(line, "%") && strings.Contains(line, ".mkv") && !strings.Contains(line, "start") {
					sawHost = true
				}
			}
		}
	}
	if !sawBar || !sawHost {
		t.Errorf("terminal never showed the bar (%v) and a live host line (%v); last screen:\n%s", sawBar, sawHost, screen)
	}
	// Wait for the end and check the summary made it to the screen.
	waitFor(120*time.Second, func() bool {
		s, _ := tmux("capture-pane", "-p", "-S", "-100")
		screen = s
		return strings.Contains(s, "EXIT=")
	})
	if !strings.Contains(screen, "EXIT=0") {
		t.Errorf("run did not end with exit 0:\n%s", screen)
	}
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
