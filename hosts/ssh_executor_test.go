package hosts_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"clustertx/hosts"
	"clustertx/hosts/hoststest"
)

// startWith starts a server with opts and dials it with per-command
// sessions or not.
func startWith(t *testing.T, opts hoststest.Options, perCommand bool) (*hoststest.SSHD, *hosts.SSHTransport) {
	t.Helper()
	sshEnv(t)
	s := hoststest.StartSSHD(t, opts)
	o := baseOpts(khFile(t, s))
	o.PerCommandSessions = perCommand
	return s, dial(t, s, o)
}

// Issue 14: a host whose ~/.bashrc is slow (conda, pyenv, nvm init) paid it
// for every command. With the executor the login shell reads it once per
// connection: 20 commands, one read (≤ 2 allowed: the SFTP subsystem also
// starts through the login shell). The same host in per-command mode reads
// it once per command, which shows that the harness counts what it should.
func TestSSHExecutorReadsBashrcOnce(t *testing.T) {
	ctx := context.Background()
	s, tr := startWith(t, hoststest.Options{SlowBashrc: 300 * time.Millisecond}, false)
	for i := 0; i < 20; i++ {
		var out bytes.Buffer
		if err := tr.Exec(ctx, []string{"echo", strconv.Itoa(i)}, &out, nil); err != nil {
			t.Fatal(err)
		}
		if out.String() != strconv.Itoa(i)+"\n" {
			t.Fatalf("command %d: stdout %q", i, out.String())
		}
	}
	if _, ok, err := tr.RemoteSHA256(ctx, s.ConfigFile); err != nil || !ok { // a helper command (output) too
		t.Fatalf("RemoteSHA256: %v %v", ok, err)
	}
	if n := s.BashrcRuns(); n < 1 || n > 2 {
		t.Errorf("~/.bashrc read %d times for 21 commands on the executor, want 1 (≤ 2)", n)
	}

	s2, tr2 := startWith(t, hoststest.Options{SlowBashrc: 300 * time.Millisecond}, true)
	for i := 0; i < 3; i++ {
		if err := tr2.Exec(ctx, []string{"true"}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := s2.BashrcRuns(); n < 3 {
		t.Errorf("per-command sessions: ~/.bashrc read %d times for 3 commands, want ≥ 3 (the slow host does not slow every command)", n)
	}
}

// The dotfiles' environment still reaches the commands (PATH set in
// ~/.bashrc is how many hosts find their ffmpeg), and their noise on
// stdout does not upset the executor.
func TestSSHExecutorKeepsDotfilesEnvironment(t *testing.T) {
	s := hoststest.StartSSHD(t, hoststest.Options{SlowBashrc: time.Millisecond})
	rc := filepath.Join(s.Dir, "home", ".bashrc")
	f, err := os.OpenFile(rc, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "echo 'conda: base activated'\nexport CLUSTERTX_FROM_BASHRC=yes\n")
	f.Close()
	sshEnv(t)
	tr := dial(t, s, baseOpts(khFile(t, s)))
	var out bytes.Buffer
	if err := tr.Exec(context.Background(), []string{"sh", "-c", `echo "$CLUSTERTX_FROM_BASHRC"`}, &out, nil); err != nil {
		t.Fatal(err)
	}
	if out.String() != "yes\n" {
		t.Errorf("stdout %q, want the variable ~/.bashrc exported and nothing else", out.String())
	}
	if n := s.BashrcRuns(); n != 1 {
		t.Errorf("~/.bashrc read %d times, want 1", n)
	}
}

// Commands at once on one executor write stdout and stderr in interleaved
// chunks, text and binary; each command gets exactly its own bytes on each
// stream, in order.
func TestSSHExecutorConcurrentStreamsStaySeparate(t *testing.T) {
	_, tr := start(t)
	blob := filepath.Join(t.TempDir(), "blob")
	data := make([]byte, 300<<10)
	rand.Read(data)
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs, serrs := make([]bytes.Buffer, n), make([]bytes.Buffer, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tag := "job" + strconv.Itoa(i)
			script := `for k in 1 2 3 4 5 6 7 8 9 10; do echo "out $0 $k"; echo "err $0 $k" >&2; sleep 0.02; done; cat "$1"; echo "end $0" >&2`
			errs[i] = tr.Exec(context.Background(), []string{"sh", "-c", script, tag, blob}, &outs[i], &serrs[i])
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		tag := "job" + strconv.Itoa(i)
		if errs[i] != nil {
			t.Errorf("%s: %v", tag, errs[i])
			continue
		}
		var wantOut, wantErr bytes.Buffer
		for k := 1; k <= 10; k++ {
			fmt.Fprintf(&wantOut, "out %s %d\n", tag, k)
			fmt.Fprintf(&wantErr, "err %s %d\n", tag, k)
		}
		wantOut.Write(data)
		fmt.Fprintf(&wantErr, "end %s\n", tag)
		if !bytes.Equal(outs[i].Bytes(), wantOut.Bytes()) {
			t.Errorf("%s: stdout of %d bytes differs from the %d expected", tag, outs[i].Len(), wantOut.Len())
		}
		if serrs[i].String() != wantErr.String() {
			t.Errorf("%s: stderr %q, want %q", tag, serrs[i].String(), wantErr.String())
		}
	}
}

// Cancelling one of two commands on the executor stops its whole group (a
// grandchild included) and leaves the other one running to its end.
func TestSSHExecutorCancelOneKeepsOther(t *testing.T) {
	_, tr := start(t)
	m := marker(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	doneA := make(chan error, 1)
	go func() {
		// sh forks sh which forks the tagged loop: the loop is a grandchild.
		doneA <- tr.Exec(ctx, []string{"sh", "-c", "sh -c 'sh -c \"while :; do sleep 0.1; done\" " + m + "'; echo unreachable"}, nil, nil)
	}()
	var outB bytes.Buffer
	doneB := make(chan error, 1)
	go func() {
		doneB <- tr.Exec(context.Background(), []string{"sh", "-c", "sleep 1.5; echo still here"}, &outB, nil)
	}()
	waitStarted(t, m, 10*time.Second, "the grandchild never started")
	cancel()
	select {
	case err := <-doneA:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled command: %v, want wrapping context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec did not return after cancel")
	}
	if left := waitGone(t, m, time.Second); len(left) > 0 {
		t.Fatalf("grandchild still running after cancel: %q", left)
	}
	select {
	case err := <-doneB:
		if err != nil || outB.String() != "still here\n" {
			t.Errorf("the other command: %v, stdout %q", err, outB.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other command never ended")
	}
}

// The connection dies under a running command (its sshd process killed,
// no EOF sent by us): the executor sees its stdin close and stops the
// group; Exec returns a TransportError.
func TestSSHExecutorConnectionDeathKillsJobs(t *testing.T) {
	s, tr := start(t)
	m := marker(t)
	done := execLoop(context.Background(), tr, m)
	waitStarted(t, m, 10*time.Second, "command never started")
	for _, p := range s.ConnectionPIDs() {
		syscall.Kill(p, syscall.SIGKILL)
	}
	select {
	case err := <-done:
		var xe *hosts.ExitError
		if !hosts.IsTransport(err) || errors.As(err, &xe) {
			t.Errorf("err = %v (%T), want *TransportError", err, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec did not return after the connection died")
	}
	if left := waitGone(t, m, 5*time.Second); len(left) > 0 {
		t.Fatalf("command still running after its connection died: %q", left)
	}
}

// execLoop runs an endless loop tagged m on tr in the background; its
// Exec's error comes on the channel.
func execLoop(ctx context.Context, tr *hosts.SSHTransport, m string) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- tr.Exec(ctx, []string{"sh", "-c", "sh -c 'while :; do sleep 0.1; done' " + m}, nil, nil)
	}()
	return done
}

// perlPIDs lists the perl processes started for s's sessions: the
// executor.
func perlPIDs(s *hoststest.SSHD) []int {
	var out []int
	for _, p := range s.SessionPIDs() {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/comm"); strings.TrimSpace(string(b)) == "perl" {
			out = append(out, p)
		}
	}
	return out
}

// The executor itself is killed under a running command: the command is
// not lost silently (Exec returns a TransportError, so the job is retried)
// nor left running unseen (its group is stopped from a session of its
// own), and the next command gets a new executor.
func TestSSHExecutorDeathIsTransportError(t *testing.T) {
	s, tr := start(t)
	m := marker(t)
	done := execLoop(context.Background(), tr, m)
	waitStarted(t, m, 10*time.Second, "command never started")
	perls := perlPIDs(s)
	if len(perls) != 1 {
		t.Fatalf("want one executor, found perl processes %v", perls)
	}
	syscall.Kill(perls[0], syscall.SIGKILL)
	select {
	case err := <-done:
		var xe *hosts.ExitError
		if !hosts.IsTransport(err) || errors.As(err, &xe) {
			t.Errorf("err = %v (%T), want *TransportError", err, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec did not return after the executor died")
	}
	// The manager stops the orphans from sessions of their own, trying
	// again while the host is too loaded to start one (as under go test
	// ./..., where every package's ffmpeg and sshd share two cores).
	if left := waitGone(t, m, 30*time.Second); len(left) > 0 {
		t.Fatalf("command still running after its executor died: %q", left)
	}
	var out bytes.Buffer
	if err := tr.Exec(context.Background(), []string{"echo", "again"}, &out, nil); err != nil || out.String() != "again\n" {
		t.Fatalf("exec after the executor died: %v, stdout %q", err, out.String())
	}
	if tr.Err() != nil {
		t.Errorf("the executor's death marked the connection dead: %v", tr.Err())
	}
}

// noPerlPath is a PATH folder with the tools the tests use but no perl.
func noPerlPath(t *testing.T) string {
	dir := t.TempDir()
	for _, tool := range []string{"sh", "bash", "setsid", "sleep", "echo", "cat", "kill", "true", "printf", "df", "sha256sum", "ffmpeg"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			continue
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A host without perl: the executor cannot start, and every command gets
// a session of its own, with the usual exit status, streams and cancel.
func TestSSHExecutorFallbackWithoutPerl(t *testing.T) {
	s, tr := startWith(t, hoststest.Options{Path: noPerlPath(t)}, false)
	ctx := context.Background()
	var out, serr bytes.Buffer
	err := tr.Exec(ctx, []string{"sh", "-c", "echo out; echo oops >&2; exit 3"}, &out, &serr)
	var xe *hosts.ExitError
	if !errors.As(err, &xe) || xe.Code != 3 || out.String() != "out\n" || serr.String() != "oops\n" {
		t.Fatalf("err = %v, stdout %q, stderr %q", err, out.String(), serr.String())
	}
	for i := 0; i < 3; i++ {
		if err := tr.Exec(ctx, []string{"true"}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(s.Log(), "Starting session: command"); n < 5 {
		t.Errorf("%d command sessions for the executor attempt and 4 commands, want ≥ 5: not one session per command", n)
	}
	if len(perlPIDs(s)) != 0 {
		t.Error("a perl process runs on a host without perl")
	}
	m := marker(t)
	cctx, cancel := context.WithCancel(ctx)
	done := execLoop(cctx, tr, m)
	waitStarted(t, m, 10*time.Second, "command never started")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancel: %v", err)
	}
	if left := waitGone(t, m, 2*time.Second); len(left) > 0 {
		t.Fatalf("command still running after cancel: %q", left)
	}
}

// The conformance suite once more with one session per command, the mode of
// hosts without perl (TestConformanceSSH runs it on the executor).
func TestConformanceSSHPerCommand(t *testing.T) {
	hoststest.RunConformance(t, func(t *testing.T) hoststest.Host {
		s, tr := startWith(t, hoststest.Options{}, true)
		return hoststest.Host{Transport: tr, Dir: t.TempDir(), Kill: s.Stop}
	})
}

// On the executor the host's commands share one session: six at once
// beside the SFTP session fit in a MaxSessions of 2, with no refusal.
func TestSSHExecutorOneSession(t *testing.T) {
	s, tr := startWith(t, hoststest.Options{ExtraConfig: []string{"MaxSessions 2"}}, false)
	if _, err := tr.FreeSpace(context.Background(), s.Dir); err != nil { // the SFTP session
		t.Fatal(err)
	}
	concurrentExecs(t, tr, 6)
	if strings.Contains(s.Log(), "no more sessions") {
		t.Error("sshd refused a session: commands did not share the executor's")
	}
}
