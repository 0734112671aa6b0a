package e2e_test

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"clustertx/internal/testenv"
)

// Hostile file names over the real binary, on a mounted and a streaming
// host: every file is encoded, and no name is ever run by a shell (no
// marker file appears anywhere).
func TestHostileNamesEndToEnd(t *testing.T) {
	l := newLab(t, true)
	l.writeConfig("ultrafast", "nas", "gamer")
	marker := fmt.Sprintf("PWNED%d", time.Now().UnixNano()%1e6)
	names := []string{
		"a $(touch " + marker + ").mkv",
		"b `touch " + marker + "`.mkv",
		`c it's "quoted" \ back.mkv`,
		"d; touch " + marker + "; e.mkv",
		"e new\nline.mkv",
		"-f leading dash.mkv",
		"ü 日本語 ✓ émoji 🎬.mkv",
		"g | touch " + marker + " & h > i.mp4",
	}
	for _, n := range names {
		l.clip(n, testenv.Clip{Seconds: 1, AudioLangs: []string{"eng"}})
	}
	// Relative names from the media folder: "-f leading dash.mkv" must be
	// given after "--".
	args := l.args("-c", "lab", "--")
	args = append(args, names...)
	p, code := run(t, l.media, env(l.home, l.state), 120*time.Second, args...)
	out := p.output()
	if code != 0 {
		t.Errorf("exit code %d, want 0\n%s", code, out)
	}
	hostsUsed := map[string]bool{}
	for _, n := range names {
		final := filepath.Join(l.media, strings.TrimSuffix(n, filepath.Ext(n))+".mkv")
		if _, err := os.Stat(final); err != nil {
			t.Errorf("%q: output missing: %v", n, err)
			continue
		}
		if c := vcodec(t, final); c != "hevc" {
			t.Errorf("%q: output is %s, want hevc", n, c)
		}
	}
	for _, h := range []string{"nas", "gamer"} {
		if strings.Contains(p.stderr.String(), "host "+h+": done") {
			hostsUsed[h] = true
		}
	}
	if len(hostsUsed) != 2 {
		t.Errorf("want both nas and gamer to encode, got %v\n%s", hostsUsed, out)
	}
	if _, err := os.Stat(filepath.Join(l.media, names[len(names)-1])); err == nil {
		t.Errorf("the .mp4 source was not removed after its .mkv output was done")
	}

	// The marker must not exist anywhere a shell could have created it.
	roots := []string{l.dir, os.TempDir(), "/"}
	if u, err := user.Current(); err == nil {
		roots = append(roots, u.HomeDir)
	}
	if wd, err := os.Getwd(); err == nil {
		roots = append(roots, wd)
	}
	for _, r := range roots {
		var found []string
		if r == l.dir {
			_ = filepath.Walk(r, func(p string, _ os.FileInfo, err error) error {
				if err == nil && strings.Contains(filepath.Base(p), marker) && !strings.Contains(filepath.Base(p), ".") {
					found = append(found, p)
				}
				return nil
			})
		} else if _, err := os.Lstat(filepath.Join(r, marker)); err == nil {
			found = append(found, filepath.Join(r, marker))
		}
		if len(found) > 0 {
			t.Errorf("a file name was run by a shell: %q exist", found)
		}
	}
	l.checkNothingLeft(t, "")
	logOnFailure(t, out)
}

// One file fails in ffmpeg (-p broken), another succeeds (-p hevc): exit
// code 3, and the summary shows ffmpeg's last error line for the failure.
func TestOneFailureExitCode3(t *testing.T) {
	l := newLab(t, false)
	l.writeConfig("ultrafast", "manager")
	a := l.clip("a.mkv", testenv.Clip{Seconds: 1})
	b := l.clip("b.mkv", testenv.Clip{Seconds: 1})
	sumA := fileHash(t, a)
	p, code := run(t, l.dir, env(l.home, l.state), 60*time.Second,
		l.args("-c", "lab", "-p", "broken", a, "-p", "hevc", b)...)
	out := p.output()
	if code != 3 {
		t.Errorf("exit code %d, want 3\n%s", code, out)
	}
	line := summaryLine(p.stdout.String(), "a.mkv")
	// ffmpeg 5-7 end option errors with "Error splitting the argument list:
	// Option not found".
	if !strings.Contains(line, "failed") || !strings.Contains(line, "Option not found") {
		t.Errorf("summary for a.mkv should be failed with ffmpeg's last error line: %q\n%s", line, out)
	}
	if line := summaryLine(p.stdout.String(), "b.mkv"); !strings.Contains(line, "done") {
		t.Errorf("b.mkv not done: %q\n%s", line, out)
	}
	if fileHash(t, a) != sumA {
		t.Error("a.mkv (failed) was modified")
	}
	if c := vcodec(t, b); c != "hevc" {
		t.Errorf("b.mkv is %s, want hevc", c)
	}
	if left := leftovers(l.media); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}
}

// A second run on the same journal while the first is running exits with
// code 4 naming the first run's pid (a dry run works meanwhile); the first
// run is unaffected.
func TestSecondRunIsLockedOut(t *testing.T) {
	l := newLab(t, false)
	l.writeConfig("slower", "manager")
	a := l.clip("a.mkv", testenv.Clip{Seconds: 3, AudioLangs: []string{"eng"}})
	first := startBinary(t, l.dir, env(l.home, l.state), l.args("-c", "lab", a)...)
	if !waitFor(20*time.Second, func() bool { return len(ffmpegUnder(l.media)) > 0 || first.exited() }) || first.exited() {
		t.Fatalf("first run's encode never started\n%s", first.output())
	}
	second, code := run(t, l.dir, env(l.home, l.state), 20*time.Second, l.args("-c", "lab", a)...)
	if code != 4 {
		t.Errorf("second run: exit code %d, want 4\n%s", code, second.output())
	}
	if want := fmt.Sprintf("pid %d", first.cmd.Process.Pid); !strings.Contains(second.stderr.String(), want) {
		t.Errorf("second run's message does not name %q:\n%s", want, second.output())
	}
	// A dry run takes no lock: it works while the first run holds it.
	if dry, code := run(t, l.dir, env(l.home, l.state), 20*time.Second, l.args("--dry-run", "-c", "lab", a)...); code != 0 || !strings.Contains(dry.output(), "planned") {
		t.Errorf("dry run during a run: exit code %d, want 0 and the plan\n%s", code, dry.output())
	}
	if first.exited() {
		t.Errorf("first run ended while the second ran\n%s", first.output())
	}
	if code := first.wait(90 * time.Second); code != 0 {
		t.Errorf("first run: exit code %d, want 0\n%s", code, first.output())
	}
	if c := vcodec(t, a); c != "hevc" {
		t.Errorf("a.mkv is %s after the first run, want hevc", c)
	}
}

// The streaming host's sshd dies while it encodes: the run goes on with
// the other hosts and finishes every file (exit 0), saying the host left.
func TestHostDiesMidRun(t *testing.T) {
	l := newLab(t, true)
	l.writeConfig("medium", "manager", "nas", "gamer")
	var srcs []string
	for i := 0; i < 4; i++ {
		srcs = append(srcs, l.clip(fmt.Sprintf("clip%d.mkv", i), testenv.Clip{Seconds: 3, Width: 640, Height: 480, AudioLangs: []string{"eng"}}))
	}
	p := startBinary(t, l.dir, env(l.home, l.state), l.args("-c", "lab", srcs[0], srcs[1], srcs[2], srcs[3])...)
	if !waitFor(30*time.Second, func() bool { return len(ffmpegUnder(l.work)) > 0 || p.exited() }) || p.exited() {
		t.Fatalf("gamer never started encoding\n%s", p.output())
	}
	l.gamer.Stop()
	stoppedAt := time.Now()
	code := p.wait(120 * time.Second)
	out := p.output()
	if code != 0 {
		t.Errorf("exit code %d, want 0\n%s", code, out)
	}
	t.Logf("run ended %s after gamer died", p.ended.Sub(stoppedAt).Round(100*time.Millisecond))
	for _, s := range srcs {
		if c := vcodec(t, s); c != "hevc" {
			t.Errorf("%s is %s, want hevc", filepath.Base(s), c)
		}
		if line := summaryLine(p.stdout.String(), filepath.Base(s)); !strings.Contains(line, "done") || strings.Contains(line, "gamer") {
			t.Errorf("summary for %s: %q (want done on another host)", filepath.Base(s), line)
		}
	}
	if !strings.Contains(p.stdout.String(), "host gamer left") && !strings.Contains(p.stderr.String(), "host gamer is down") {
		t.Errorf("output does not say that gamer went down\n%s", out)
	}
	if left := leftovers(l.media); len(left) > 0 {
		t.Errorf("temp files left in the media folder: %q", left)
	}
	logOnFailure(t, out)
}

// A file name with a newline must not split clustertx's log lines: the
// console drops "clustertx: job: …" lines by prefix, line by line, so the
// part of a job line after the newline leaks out as a stray line — and a
// crafted name can forge any message ("…\nclustertx: warning: …").
func TestNewlineInNameDoesNotForgeLogLines(t *testing.T) {
	l := newLab(t, false)
	l.writeConfig("ultrafast", "manager")
	name := "x\nclustertx: FORGED.mkv"
	l.clip(name, testenv.Clip{Seconds: 1})
	p, code := run(t, l.media, env(l.home, l.state), 60*time.Second, l.args("-c", "lab", "--", name)...)
	if code != 0 {
		t.Errorf("exit code %d, want 0\n%s", code, p.output())
	}
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		if strings.HasPrefix(line, "clustertx: FORGED") || strings.HasPrefix(line, "clustertx: clustertx: FORGED") {
			t.Errorf("stderr has a line forged by a file name: %q\n%s", line, p.output())
		}
	}
}

// --dry-run reads the journal: it shows what a real run would skip or
// finish, changes nothing, and agrees with the real run that follows.
func TestDryRunReadsJournal(t *testing.T) {
	l := newLab(t, false)
	l.writeConfig("ultrafast", "manager")
	done := l.clip("a.mp4", testenv.Clip{Seconds: 1})
	src := l.clip("b.mp4", testenv.Clip{Seconds: 1})
	out := strings.TrimSuffix(src, ".mp4") + ".mkv"

	if p, code := run(t, l.dir, env(l.home, l.state), 60*time.Second, l.args("-c", "lab", done)...); code != 0 {
		t.Fatalf("first run: exit %d\n%s", code, p.output())
	}
	// A run killed (kill -9) between putting its output in place and
	// removing the source.
	crash := append(env(l.home, l.state), "CLUSTERTX_TEST_CRASH_AT=before-source-removal")
	if p, code := run(t, l.dir, crash, 60*time.Second, l.args("-c", "lab", src)...); code != -1 && code != 137 {
		t.Fatalf("the crashing run: exit %d\n%s", code, p.output())
	}
	if !exists(src) || !exists(out) {
		t.Fatalf("after the crash: source there %v, output there %v", exists(src), exists(out))
	}
	journalBefore := fileHash(t, filepath.Join(l.state, "clustertx", "journal.jsonl"))

	p, code := run(t, l.dir, env(l.home, l.state), 60*time.Second, l.args("--dry-run", "-c", "lab", done)...)
	if code != 0 || !strings.Contains(p.output(), "already done in an earlier run: "+strings.TrimSuffix(done, ".mp4")+".mkv") {
		t.Errorf("dry run on the replaced source: exit %d, no 'already done':\n%s", code, p.output())
	}

	// The output was modified since: the source must stay.
	ofi, err := os.Stat(out)
	must(t, err)
	must(t, os.Chtimes(out, time.Now(), time.Now().Add(time.Hour)))
	p, code = run(t, l.dir, env(l.home, l.state), 60*time.Second, l.args("--dry-run", "-c", "lab", src)...)
	if !strings.Contains(p.output(), "has changed since; not removing the source") {
		t.Errorf("dry run with the output changed since: exit %d\n%s", code, p.output())
	}
	must(t, os.Chtimes(out, time.Now(), ofi.ModTime()))

	p, code = run(t, l.dir, env(l.home, l.state), 60*time.Second, l.args("--dry-run", "-c", "lab", src)...)
	if code != 0 || !strings.Contains(p.output(), "the run removes it") || strings.Contains(p.output(), "profile:  hevc") {
		t.Errorf("dry run on a half-finished file: exit %d\n%s", code, p.output())
	}
	if !exists(src) {
		t.Error("the dry run removed the source")
	}
	if h := fileHash(t, filepath.Join(l.state, "clustertx", "journal.jsonl")); h != journalBefore {
		t.Error("the dry runs changed the journal")
	}

	p, code = run(t, l.dir, env(l.home, l.state), 60*time.Second, l.args("-c", "lab", src)...)
	if code != 0 || !strings.Contains(summaryLine(p.stdout.String(), "b.mp4"), "finished an earlier run") {
		t.Errorf("real run on the half-finished file: exit %d\n%s", code, p.output())
	}
	if exists(src) {
		t.Error("the real run left the source")
	}
	if c := vcodec(t, out); c != "hevc" {
		t.Errorf("%s is %s, want hevc", out, c)
	}
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }
