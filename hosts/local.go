package hosts

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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

// Exec runs argv as a child in its own process group. When ctx is cancelled
// the group gets SIGTERM (ffmpeg finalises and exits), then SIGKILL after a
// grace period, and Exec returns only once the process is gone.
func (l *LocalTransport) Exec(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	if len(argv) == 0 {
		return errors.New("exec: empty command")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = nil
	tail := &TailBuffer{Max: 20}
	cmd.Stdout = stdout
	if stderr != nil {
		cmd.Stderr = io.MultiWriter(stderr, tail)
	} else {
		cmd.Stderr = tail
	}
	cmd.SysProcAttr = childAttr()
	// (Pdeathsig follows the OS thread that forks. The Go runtime retires
	// a thread only when a goroutine exits while locked to it, which never
	// happens here, so the encode lives exactly as long as the manager.)
	if err := cmd.Start(); err != nil {
		var ee *exec.Error
		if errors.As(err, &ee) || errors.Is(err, os.ErrNotExist) {
			return &TransportError{Host: l.Name, Op: "start " + argv[0], Err: err}
		}
		return &TransportError{Host: l.Name, Op: "start " + argv[0], Err: err}
	}
	started(cmd.Process)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		stopGroup(cmd.Process, false)
		select {
		case <-done:
		case <-time.After(2 * time.Second): // the output is discarded: no need to wait for a flush
			stopGroup(cmd.Process, true)
			<-done
		}
		return fmt.Errorf("%s stopped: %w", filepath.Base(argv[0]), ctx.Err())
	}
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

// Upload copies a local file to another local path (used only when a local
// host is given a working_dir).
func (l *LocalTransport) Upload(ctx context.Context, local, remote string) error {
	return l.copyFile(ctx, "upload", local, remote)
}

// Download copies a local file to another local path.
func (l *LocalTransport) Download(ctx context.Context, remote, local string) error {
	return l.copyFile(ctx, "download", remote, local)
}

func (l *LocalTransport) copyFile(ctx context.Context, op, from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return &TransportError{Host: l.Name, Op: op, Err: err}
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return &TransportError{Host: l.Name, Op: op, Err: err}
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			os.Remove(to)
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), ctxReader{ctx, in})
	if err != nil {
		return &TransportError{Host: l.Name, Op: op, Err: err}
	}
	if err := out.Sync(); err != nil {
		return &TransportError{Host: l.Name, Op: op, Err: err}
	}
	if err := out.Close(); err != nil {
		return &TransportError{Host: l.Name, Op: op, Err: err}
	}
	st, err := os.Stat(to)
	if err != nil || st.Size() != n {
		return &TransportError{Host: l.Name, Op: op, Err: fmt.Errorf("size mismatch after copy of %s", from)}
	}
	ok = true
	return nil
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

// LocalFreeSpace reports the bytes available to this user in dir on the
// manager's own disks.
func LocalFreeSpace(dir string) (int64, error) { return diskFree(dir) }

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
