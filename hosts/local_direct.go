package hosts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"time"
)

// execDirect runs argv as a child of the manager without a shell: the
// local Exec of a manager that has no /bin/sh (Windows). The command gets
// a process group of its own (childAttr) so a console Ctrl-C reaches only
// the manager, joins the kill-on-exit job (started), and is stopped on
// cancel by stopGroup.
func (l *LocalTransport) execDirect(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	tail := &TailBuffer{Max: 20}
	cmd.Stdout = stdout
	cmd.Stderr = tail
	if stderr != nil {
		cmd.Stderr = io.MultiWriter(stderr, tail)
	}
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
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
		return &ExitError{Code: ee.ExitCode(), Stderr: tail.Last(3)}
	}
	return &TransportError{Host: l.Name, Op: "wait " + argv[0], Err: err}
}
