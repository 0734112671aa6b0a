package hosts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// pidMarker prefixes the line on which the POSIX wrapper reports the PID of
// the command it started in the background.
const pidMarker = "clustertx-pid="

// posixWrapper is the stdin-EOF watchdog: the command runs in the
// background with /dev/null as stdin, in a process group (and session) of
// its own, its PID goes to stderr, and a watcher that holds the session's
// stdin (saved as fd 3) stops that whole group when that stdin reaches EOF:
// when the client closes it on cancel, or when the connection dies (or, on
// the local host, when the manager dies). Exit status is the command's.
//
// The group is what makes a wrapper script (`ffmpeg: /usr/local/bin/ff`
// holding `nice ffmpeg "$@"`, without exec) stop too: signalling only the
// PID started would kill the script and leave the ffmpeg it forked encoding,
// and holding the session's stdout open. setsid(1) (util-linux, every Linux)
// starts the group; without it perl's setpgrp does (macOS, BSDs); with
// neither, only the PID is signalled. The PID reported is the group's ID
// (setsid does not fork: a background job of a shell without job control
// is not a group leader).
//
// When it fires, the watcher sends the group SIGTERM and, a second later,
// SIGKILL: a cancelled output is discarded anyway, and ffmpeg's SIGTERM
// path flushes the encoder, which for x265's deep lookahead can take many
// seconds. When the command the shell waits for has ended, the shell stops
// the watcher and, should the group still have members (a wrapper script
// died on SIGTERM while the ffmpeg it forked still flushes, or left
// something behind), ends them the same way before it exits. The watcher
// waits with the shell's own `read`, so after a normal exit no process is
// left behind; it holds neither stdout nor stderr, so it never keeps the
// session open.
func posixWrapper(argv []string) string {
	return "exec 3<&0 </dev/null\n" +
		"if command -v setsid >/dev/null 2>&1; then set -- setsid\n" +
		"elif command -v perl >/dev/null 2>&1; then set -- perl -e " + QuotePOSIX(perlSetpgrp) + "\n" +
		"else set --; fi\n" +
		"\"$@\" " + QuotePOSIX(argv...) + " 3<&- &\n" +
		"pid=$!\n" +
		"echo \"" + pidMarker + "$pid\" >&2\n" +
		"( read -r _ <&3; " + killGroup("TERM", "\"$pid\"") + "; sleep 1; " + killGroup("KILL", "\"$pid\"") + " ) >/dev/null 2>&1 &\n" +
		"wpid=$!\n" +
		"exec 3<&-\n" +
		"wait \"$pid\"; st=$?\n" +
		"kill \"$wpid\" 2>/dev/null; wait \"$wpid\" 2>/dev/null\n" +
		"if kill -0 -\"$pid\" 2>/dev/null; then kill -TERM -\"$pid\" 2>/dev/null; sleep 1; kill -KILL -\"$pid\" 2>/dev/null; fi\n" +
		"exit $st\n"
}

// perlSetpgrp execs its arguments in a new process group, or exits 127
// (command not found, as the shell would) with the shell's kind of message.
const perlSetpgrp = `setpgrp(0,0); exec {$ARGV[0]} @ARGV or do { print STDERR "$ARGV[0]: $!\n"; exit 127 }`

// killGroup is the shell command that sends sig to the process group pid
// leads, or to pid alone when there is no such group (no setsid or perl on
// the host).
func killGroup(sig, pid string) string {
	return "kill -" + sig + " -" + pid + " 2>/dev/null || kill -" + sig + " " + pid + " 2>/dev/null"
}

// CommandLine is the exact string Exec sends to the host for argv when the
// command gets a session of its own (for logs and tests); on the host's
// executor, argv goes as is and runs as this line would run it.
func (t *SSHTransport) CommandLine(argv []string) (string, error) {
	if t.windows {
		return QuoteCmd(argv...)
	}
	return posixWrapper(argv), nil
}

// Exec runs argv on the host. POSIX hosts run it on the host's executor
// (ssh_executor.go), which starts with the connection's first command, so
// that the login shell and its dotfiles run once per connection, not once
// per command: argv in a process group of its own, stopped with everything
// it started when ctx is cancelled (SIGTERM, SIGKILL a second later) or the
// connection is lost (the executor sees its stdin close). Exec returns when
// the command has ended.
//
// Without an executor (no Perl on the host, PerCommandSessions) each
// command gets a session of its own and runs under the stdin-EOF watchdog
// wrapper, with the same guarantees: SIGTERM request, stdin closed (the
// watchdog signals the group), then after killGrace `kill -TERM` and
// `kill -KILL` of the group from a second session. Exec returns only when
// the session has ended.
//
// Windows hosts (cmd.exe) get no wrapper: on cancel the session is
// signalled and closed, which does not reliably stop the remote process
// (Win32-OpenSSH keeps children of closed sessions alive).
func (t *SSHTransport) Exec(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	if len(argv) == 0 {
		return errors.New("exec: empty command")
	}
	if err := t.alive("exec " + argv[0]); err != nil {
		return err
	}
	line, err := t.CommandLine(argv)
	if err != nil {
		return fmt.Errorf("host %s: %w", t.name, err)
	}
	op := "exec " + path.Base(argv[0])
	e, err := t.getExecutor(ctx)
	if err != nil {
		return fmt.Errorf("host %s: %s: waiting for the executor: %w", t.name, op, err)
	}
	if e != nil {
		return t.execOn(ctx, e, op, argv, stdout, stderr)
	}
	release, err := t.acquire(ctx, op)
	if err != nil {
		return err
	}
	defer release()
	sess, err := t.newSession(ctx, op)
	if err != nil {
		return err
	}
	defer sess.Close()
	stdin, err := sess.StdinPipe()
	if err != nil {
		return t.terr(op, err)
	}
	tail := &TailBuffer{Max: 20}
	var errw io.Writer = tail
	if stderr != nil {
		errw = io.MultiWriter(stderr, tail)
	}
	filter := &pidFilter{w: errw, disabled: t.windows}
	if stdout == nil {
		stdout = io.Discard
	}
	sess.Stdout = stdout
	sess.Stderr = filter
	if err := sess.Start(line); err != nil {
		return t.terr(op+": start", err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		t.stopRemote(sess, stdin, filter, done)
		return fmt.Errorf("host %s: %s stopped: %w", t.name, path.Base(argv[0]), ctx.Err())
	}
	_ = stdin.Close()
	filter.Flush()
	return t.execResult(op, err, tail)
}

// execOn is Exec on the executor.
func (t *SSHTransport) execOn(ctx context.Context, e *executor, op string, argv []string, stdout, stderr io.Writer) error {
	tail := &TailBuffer{Max: 20}
	var errw io.Writer = tail
	if stderr != nil {
		errw = io.MultiWriter(stderr, tail)
	}
	code, err := e.run(ctx, op, argv, stdout, errw)
	switch {
	case ctx.Err() != nil && err != nil && !IsTransport(err):
		return fmt.Errorf("host %s: %s stopped: %w", t.name, path.Base(argv[0]), ctx.Err())
	case err != nil:
		return err
	case code != 0:
		return &ExitError{Code: code, Stderr: tail.Last(3)}
	}
	return nil
}

func (t *SSHTransport) execResult(op string, err error, tail *TailBuffer) error {
	if err == nil {
		return nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		x := &ExitError{Code: ee.ExitStatus(), Stderr: tail.Last(3)}
		if sig := ee.Signal(); sig != "" {
			x.Code, x.Signal = -1, "SIG"+sig
		}
		return x
	}
	if derr := t.Err(); derr != nil {
		err = fmt.Errorf("%w (%v)", err, derr)
	}
	return t.terr(op, err)
}

// stopRemote runs the cancel sequence and returns when the session ended.
func (t *SSHTransport) stopRemote(sess *ssh.Session, stdin io.Closer, filter *pidFilter, done <-chan error) {
	_ = sess.Signal(ssh.SIGTERM) // refused for root logins before OpenSSH 10
	_ = stdin.Close()            // the watchdog sends SIGTERM
	wait := func(d time.Duration) bool {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-done:
			return true
		case <-timer.C:
			return false
		}
	}
	if wait(t.killGrace) {
		return
	}
	if pid := filter.PID(); pid > 0 && t.Err() == nil {
		t.opts.Logf("ssh %s: pid %d still running after stdin EOF; kill -TERM", t.name, pid)
		t.killPID(pid, "TERM")
		if wait(3 * time.Second) {
			return
		}
		t.opts.Logf("ssh %s: pid %d still running; kill -KILL", t.name, pid)
		t.killPID(pid, "KILL")
		if wait(3 * time.Second) {
			return
		}
	}
	_ = sess.Close()
	wait(3 * time.Second)
}

// killPID sends a signal to pid from a separate session, using the slot kept
// for that purpose (so it works even when all exec slots are busy). It
// reports whether the kill command ran (false: no slot or session in
// time, as on a host too loaded to start one within seconds).
func (t *SSHTransport) killPID(pid int, sig string) bool {
	select {
	case t.spare <- struct{}{}:
		defer func() { <-t.spare }()
	case <-time.After(3 * time.Second):
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := t.newSession(ctx, "kill")
	if err != nil {
		return false
	}
	defer s.Close()
	timer := time.AfterFunc(5*time.Second, func() { _ = s.Close() })
	defer timer.Stop()
	err = s.Run(killGroup(sig, strconv.Itoa(pid)))
	var xe *ssh.ExitError
	return err == nil || errors.As(err, &xe) // kill ran (it fails for a group already gone)
}

// pidFilter forwards stderr, removing the wrapper's "clustertx-pid=N\n"
// line wherever it appears (ffmpeg may have written a partial line first).
type pidFilter struct {
	w        io.Writer
	disabled bool

	mu   sync.Mutex
	buf  []byte
	done bool
	pid  int
}

func (f *pidFilter) PID() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pid
}

func (f *pidFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.disabled || f.done {
		_, err := f.w.Write(p)
		return len(p), err
	}
	f.buf = append(f.buf, p...)
	marker := []byte(pidMarker)
	var out []byte
	if i := bytes.Index(f.buf, marker); i >= 0 {
		nl := bytes.IndexByte(f.buf[i:], '\n')
		if nl < 0 {
			if len(f.buf)-i > 64 { // not ours after all
				out, f.buf, f.done = f.buf, nil, true
			} else {
				out, f.buf = f.buf[:i:i], f.buf[i:]
			}
		} else {
			num := string(f.buf[i+len(marker) : i+nl])
			if n, err := strconv.Atoi(num); err == nil {
				f.pid = n
			}
			out = append(append([]byte(nil), f.buf[:i]...), f.buf[i+nl+1:]...)
			f.buf, f.done = nil, true
		}
	} else {
		// Keep the longest suffix that could start the marker.
		keep := 0
		for k := min(len(marker)-1, len(f.buf)); k > 0; k-- {
			if bytes.HasSuffix(f.buf, marker[:k]) {
				keep = k
				break
			}
		}
		cut := len(f.buf) - keep
		out = append([]byte(nil), f.buf[:cut]...)
		f.buf = append([]byte(nil), f.buf[cut:]...)
	}
	if len(out) > 0 {
		if _, err := f.w.Write(out); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

// Flush writes anything held back.
func (f *pidFilter) Flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.buf) > 0 {
		_, _ = f.w.Write(f.buf)
		f.buf = nil
	}
}

// output runs a short helper command (no wrapper) and returns its stdout.
// code is the exit status (-1 if none).
//
// On the executor the line runs under /bin/sh (the helper lines are
// POSIX sh) instead of the login shell.
func (t *SSHTransport) output(ctx context.Context, op, line string) (out []byte, code int, err error) {
	e, err := t.getExecutor(ctx)
	if err != nil {
		return nil, -1, fmt.Errorf("host %s: %s: waiting for the executor: %w", t.name, op, err)
	}
	if e != nil {
		var so bytes.Buffer
		tail := &TailBuffer{Max: 5}
		code, err := e.run(ctx, op, []string{"/bin/sh", "-c", line}, &limitedBuffer{b: &so, max: 1 << 20}, tail)
		switch {
		case ctx.Err() != nil && err != nil && !IsTransport(err):
			return nil, -1, fmt.Errorf("host %s: %s: %w", t.name, op, ctx.Err())
		case err != nil:
			return nil, -1, err
		case code != 0:
			return so.Bytes(), code, &ExitError{Code: code, Stderr: tail.Last(2)}
		}
		return so.Bytes(), 0, nil
	}
	release, err := t.acquire(ctx, op)
	if err != nil {
		return nil, -1, err
	}
	defer release()
	sess, err := t.newSession(ctx, op)
	if err != nil {
		return nil, -1, err
	}
	defer sess.Close()
	var so bytes.Buffer
	tail := &TailBuffer{Max: 5}
	sess.Stdout = &limitedBuffer{b: &so, max: 1 << 20}
	sess.Stderr = tail
	if err := sess.Start(line); err != nil {
		return nil, -1, t.terr(op, err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Close()
		<-done
		return nil, -1, fmt.Errorf("host %s: %s: %w", t.name, op, ctx.Err())
	}
	if err == nil {
		return so.Bytes(), 0, nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return so.Bytes(), ee.ExitStatus(), &ExitError{Code: ee.ExitStatus(), Stderr: tail.Last(2)}
	}
	return nil, -1, t.execResult(op, err, tail)
}

type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}
