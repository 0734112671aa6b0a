package hosts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// LocalTransport is the manager itself: commands run as child processes,
// files are copied on the local filesystem.
type LocalTransport struct {
	Name string
}

// NewLocal returns the transport for a `type: local` host.
func NewLocal(name string) *LocalTransport { return &LocalTransport{Name: name} }

// Exec runs argv on the manager under the same watchdog as a POSIX SSH
// host (posixWrapper): /bin/sh starts the command in a process group (and
// session) of its own and a watcher holding a pipe from us signals that
// whole group when the pipe closes. Exec closes it on cancel, and the
// kernel closes it when the manager dies however it dies (kill -9, a crash,
// the forced exit of a second Ctrl-C), so the encode stops then too,
// including an ffmpeg that a wrapper script forked (the parent-death
// signal on the shell reaches only the shell). Exec returns once the
// command is gone: on cancel, the group gets SIGTERM and a second later
// SIGKILL from the watcher; should it still run after localKillGrace, we
// SIGKILL the group ourselves.
func (l *LocalTransport) Exec(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	if len(argv) == 0 {
		return errors.New("exec: empty command")
	}
	if runtime.GOOS == "windows" { // no /bin/sh: see execDirect
		return l.execDirect(ctx, argv, stdout, stderr)
	}
	cmd := exec.Command("/bin/sh", "-c", posixWrapper(argv))
	pr, pw, err := os.Pipe()
	if err != nil {
		return &TransportError{Host: l.Name, Op: "start " + argv[0], Err: err}
	}
	defer pw.Close() // also ends the watcher's leftover cat after a normal exit
	cmd.Stdin = pr
	tail := &TailBuffer{Max: 20}
	var errw io.Writer = tail
	if stderr != nil {
		errw = io.MultiWriter(stderr, tail)
	}
	filter := &pidFilter{w: errw}
	cmd.Stdout = stdout
	cmd.Stderr = filter
	cmd.SysProcAttr = childAttr()
	// (Pdeathsig follows the OS thread that forks. The Go runtime retires
	// a thread only when a goroutine exits while locked to it, which never
	// happens here, so the shell lives exactly as long as the manager; the
	// watcher outlives it by design.)
	if err := cmd.Start(); err != nil {
		pr.Close()
		return &TransportError{Host: l.Name, Op: "start " + argv[0], Err: err}
	}
	pr.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		pw.Close() // the watcher signals the command's group
		select {
		case <-done:
		case <-time.After(localKillGrace):
			if pid := filter.PID(); pid > 0 {
				sigkillGroup(pid)
			}
			sigkillGroup(cmd.Process.Pid)
			<-done
		}
		return fmt.Errorf("%s stopped: %w", filepath.Base(argv[0]), ctx.Err())
	}
	filter.Flush()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		xe := &ExitError{Code: ee.ExitCode(), Stderr: tail.Last(3)}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			xe.Code, xe.Signal = -1, ws.Signal().String()
		}
		return xe
	}
	return &TransportError{Host: l.Name, Op: "wait " + argv[0], Err: err}
}

// localKillGrace is how long a cancelled local command may take to go after
// the watcher's SIGTERM (and its SIGKILL a second later).
const localKillGrace = 3 * time.Second

// Upload copies a local file to another local path (used only when a local
// host is given a working_dir).
func (l *LocalTransport) Upload(ctx context.Context, local, remote string) error {
	return l.copyFile(ctx, "upload", local, remote, true)
}

// Download copies a local file to another local path.
func (l *LocalTransport) Download(ctx context.Context, remote, local string) error {
	return l.copyFile(ctx, "download", remote, local, false)
}

// copyFile copies from to to, then reads to back and compares its size and
// SHA-256 with what was read. Failures on the manager's side (the local
// argument of Upload or Download) are *LocalError, the others, the host's
// side, *TransportError; to is removed on any failure.
func (l *LocalTransport) copyFile(ctx context.Context, op, from, to string, upload bool) (err error) {
	fromErr := func(e error) error {
		if upload {
			return &LocalError{Op: "reading " + from + " to upload it", Err: e}
		}
		return &TransportError{Host: l.Name, Op: op + " " + from, Err: e}
	}
	toErr := func(e error) error {
		if upload {
			return &TransportError{Host: l.Name, Op: op + " " + to, Err: e}
		}
		return &LocalError{Op: "writing the download to " + to, Err: e}
	}
	in, err := os.Open(from)
	if err != nil {
		return fromErr(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return toErr(err)
	}
	closed := false
	defer func() {
		if !closed {
			out.Close()
		}
		if err != nil {
			os.Remove(to)
		}
	}()
	h := sha256.New()
	rd := &readCounter{r: ctxReader{ctx, in}}
	n, err := io.Copy(io.MultiWriter(out, h), rd)
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("host %s: %s %s: %w", l.Name, op, from, cerr)
	}
	if rd.err != nil {
		return fromErr(rd.err)
	}
	if err != nil {
		return toErr(err)
	}
	if err := out.Sync(); err != nil {
		return toErr(err)
	}
	closed = true
	if err := out.Close(); err != nil {
		return toErr(err)
	}
	back, err := os.Open(to)
	if err != nil {
		return toErr(err)
	}
	defer back.Close()
	h2 := sha256.New()
	m, err := io.Copy(h2, ctxReader{ctx, back})
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("host %s: %s %s: %w", l.Name, op, from, cerr)
	}
	if err != nil {
		return toErr(err)
	}
	if m != n || !bytes.Equal(h.Sum(nil), h2.Sum(nil)) {
		return toErr(fmt.Errorf("verification failed: wrote %d bytes of %s, read back %d with another SHA-256", n, from, m))
	}
	return nil
}

// readCounter passes reads through and keeps the first read error.
type readCounter struct {
	r   io.Reader
	n   int64
	err error
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Remove deletes a local file; a missing file is fine.
func (l *LocalTransport) Remove(_ context.Context, path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return &TransportError{Host: l.Name, Op: "remove", Err: err}
	}
	return nil
}

// FreeSpace reports the bytes available in dir.
func (l *LocalTransport) FreeSpace(_ context.Context, dir string) (int64, error) {
	free, err := diskFree(dir)
	if err != nil {
		return 0, &TransportError{Host: l.Name, Op: "statfs " + dir, Err: err}
	}
	return free, nil
}

// Join joins with the local separator.
func (l *LocalTransport) Join(elem ...string) string { return filepath.Join(elem...) }

// Close does nothing for the local host.
func (l *LocalTransport) Close() error { return nil }

var _ Transport = (*LocalTransport)(nil)
