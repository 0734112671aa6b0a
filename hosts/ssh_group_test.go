package hosts_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"clustertx/hosts"
	"clustertx/internal/testenv"
)

// wrapperScript writes an `ffmpeg:` wrapper of the kind users configure
// (nice, no exec): the shell forks ffmpeg and waits for it, so ffmpeg is
// not the PID the watchdog started.
func wrapperScript(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ffmpeg-nice")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nnice -n 5 ffmpeg \"$@\"\necho wrapper done >&2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// slowEncodeArgv is a real encode of a real clip, read at its own rate
// (-re), that would run for about 20 s; m tags its command line for pgrep.
func slowEncodeArgv(t *testing.T, ffmpeg, m string) []string {
	t.Helper()
	testenv.NeedFFmpeg(t)
	clip := filepath.Join(t.TempDir(), "clip.mkv")
	testenv.MakeClip(t, clip, testenv.Clip{Seconds: 20, Width: 64, Height: 48, Rate: 10})
	return []string{ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-i", "file:" + clip,
		"-metadata", "comment=" + m, "-c:v", "libx264", "-preset", "ultrafast", "-f", "null", "-"}
}

// waitStarted waits up to d for a process whose command line contains m,
// and fails the test with msg when none comes.
func waitStarted(t *testing.T, m string, d time.Duration, msg string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for len(pgrep(t, m)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGone waits up to d for no process whose command line contains m.
func waitGone(t *testing.T, m string, d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		left := pgrep(t, m)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Issue 13 item 5: an `ffmpeg:` that is a wrapper script keeps encoding
// after a cancel when the watchdog signals only the PID it started. The
// remote encode runs in its own process group, and the whole group goes.
func TestSSHExecCancelKillsWrapperChildren(t *testing.T) {
	_, tr := start(t)
	m := marker(t)
	argv := slowEncodeArgv(t, wrapperScript(t), m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Exec(ctx, argv, nil, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(pgrep(t, "ffmpeg -nostdin.*"+m)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("remote ffmpeg never started under the wrapper")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want wrapping context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Exec did not return after cancel")
	}
	if el := time.Since(t0); el > 3*time.Second {
		t.Errorf("cancel took %v: the watchdog did not stop the encode (the fallback kill did)", el)
	}
	if left := waitGone(t, m, time.Second); len(left) > 0 {
		t.Fatalf("ffmpeg forked by the wrapper still running after cancel: %q", left)
	}
}

// The same when the SSH connection drops instead: the watchdog sees EOF
// and stops the whole group, with no client left to send a kill.
func TestSSHConnectionLossKillsWrapperChildren(t *testing.T) {
	_, tr := start(t)
	m := marker(t)
	argv := slowEncodeArgv(t, wrapperScript(t), m)
	done := make(chan error, 1)
	go func() { done <- tr.Exec(context.Background(), argv, nil, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(pgrep(t, "ffmpeg -nostdin.*"+m)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("remote ffmpeg never started under the wrapper")
		}
		time.Sleep(50 * time.Millisecond)
	}
	tr.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Exec succeeded after the connection was closed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec did not return after Close")
	}
	if left := waitGone(t, m, 5*time.Second); len(left) > 0 {
		t.Fatalf("ffmpeg forked by the wrapper still running after the connection closed: %q", left)
	}
}

// The local host: a cancelled wrapper takes its ffmpeg with it.
func TestLocalExecCancelKillsWrapperChildren(t *testing.T) {
	m := marker(t)
	argv := slowEncodeArgv(t, wrapperScript(t), m)
	tr := hosts.NewLocal("local")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Exec(ctx, argv, nil, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(pgrep(t, "ffmpeg -nostdin.*"+m)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("ffmpeg never started under the wrapper")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
	if left := waitGone(t, m, time.Second); len(left) > 0 {
		t.Fatalf("ffmpeg forked by the wrapper still running after cancel: %q", left)
	}
}

// localHelperEnv makes the test binary act as a manager that runs one
// local encode (argv in the variable, separated by US, 0x1f) and waits to be killed.
const localHelperEnv = "CLUSTERTX_TEST_LOCAL_MANAGER"

func TestLocalManagerHelper(t *testing.T) {
	spec := os.Getenv(localHelperEnv)
	if spec == "" {
		t.Skip("helper process for TestLocalManagerKilledStopsWrapperChildren")
	}
	err := hosts.NewLocal("local").Exec(context.Background(), strings.Split(spec, "\x1f"), nil, nil)
	t.Fatalf("the encode ended before the manager was killed: %v", err)
}

// A manager killed with SIGKILL cannot clean up: the encode it ran on the
// local host must still stop, including the ffmpeg a wrapper script forked
// (the parent-death signal reached only the script).
func TestLocalManagerKilledStopsWrapperChildren(t *testing.T) {
	m := marker(t)
	argv := slowEncodeArgv(t, wrapperScript(t), m)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLocalManagerHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), localHelperEnv+"="+strings.Join(argv, "\x1f"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	deadline := time.Now().Add(10 * time.Second)
	for len(pgrep(t, "ffmpeg -nostdin.*"+m)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("ffmpeg never started under the wrapper")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if left := waitGone(t, m, 4*time.Second); len(left) > 0 {
		for _, l := range left { // do not leave it running for the next tests
			if pid, err := strconv.Atoi(strings.Fields(l)[0]); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		t.Fatalf("encode still running after its manager was killed: %q", left)
	}
}
