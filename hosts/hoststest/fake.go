package hoststest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"

	"clustertx/hosts"
)

// Fake is a fast, honest hosts.Transport for tests of the manager: a host
// that lives on this machine without SSH. Commands run as real processes
// (in a process group of their own, killed with it on cancel), files are
// real files and copies are verified, so RunConformance holds for it as for
// the real transports; what it adds is control over the host's fate:
//
//   - Die drops the "connection": running commands are stopped and return a
//     *hosts.TransportError, as do all later calls, like an SSH host that
//     went away (its watchdog kills the encode on the far side).
//   - Before runs before every operation and can fail it, or kill the host
//     at a chosen step (a host dying right after an upload, say).
//   - SetFreeSpace makes the host report a full (or roomy) disk.
//   - Calls lists every operation, for assertions.
//
// Paths are this machine's paths: a mounted fake host sees the manager's
// files through its path substitutions (often the identity), a streaming
// one stages files in a working_dir the test creates.
type Fake struct {
	name  string
	local *hosts.LocalTransport

	// Before, when set, runs before each operation with its name (see Call)
	// and its first argument (argv[0], or the host-side path). A non-nil
	// error is the operation's result and nothing is done; it is returned
	// as is when it is a *hosts.ExitError, *hosts.TransportError or
	// *hosts.LocalError, and wrapped in a *hosts.TransportError otherwise.
	// It may call Die. Set it before the fake is used.
	Before func(op, arg string) error

	mu      sync.Mutex
	calls   []Call
	free    int64           // -1: the real free space
	life    context.Context // cancelled when the host dies
	die     context.CancelFunc
	deadErr error
	running int
}

// Call is one operation on a Fake: Op is "exec", "upload", "download",
// "remove" or "freespace"; Args are argv for exec, (local, remote) for
// upload, (remote, local) for download, the path for remove and freespace.
type Call struct {
	Op   string
	Args []string
}

var _ hosts.Transport = (*Fake)(nil)

// NewFake returns a live fake host named name.
func NewFake(name string) *Fake {
	life, die := context.WithCancel(context.Background())
	return &Fake{name: name, local: hosts.NewLocal(name), free: -1, life: life, die: die}
}

// Name is the host name errors carry.
func (f *Fake) Name() string { return f.name }

// Die makes the host unreachable with err as the reason: running commands
// are stopped (their whole process group) and return a
// *hosts.TransportError, and so does every later call. Safe to call more
// than once; the first reason stays.
func (f *Fake) Die(err error) {
	if err == nil {
		err = errors.New("connection lost")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deadErr == nil {
		f.deadErr = err
		f.die()
	}
}

// Done is closed when the host died (or was closed).
func (f *Fake) Done() <-chan struct{} { return f.life.Done() }

// Err is why the host died, nil while it lives.
func (f *Fake) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deadErr
}

// SetFreeSpace makes FreeSpace report n bytes; n < 0 restores the real
// figure of the folder asked about.
func (f *Fake) SetFreeSpace(n int64) {
	f.mu.Lock()
	f.free = n
	f.mu.Unlock()
}

// Calls returns a copy of the operations so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Call, len(f.calls))
	for i, c := range f.calls {
		out[i] = Call{Op: c.Op, Args: append([]string(nil), c.Args...)}
	}
	return out
}

// Running is how many commands are running now.
func (f *Fake) Running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

// begin records an operation and decides whether it may go on.
func (f *Fake) begin(op string, args ...string) error {
	f.mu.Lock()
	f.calls = append(f.calls, Call{Op: op, Args: append([]string(nil), args...)})
	before := f.Before
	f.mu.Unlock()
	if err := f.deadError(op, args[0]); err != nil {
		return err
	}
	if before != nil {
		if err := before(op, args[0]); err != nil {
			var xe *hosts.ExitError
			var te *hosts.TransportError
			var le *hosts.LocalError
			if errors.As(err, &xe) || errors.As(err, &te) || errors.As(err, &le) {
				return err
			}
			return &hosts.TransportError{Host: f.name, Op: op + " " + args[0], Err: err}
		}
		// Before may have killed the host.
		return f.deadError(op, args[0])
	}
	return nil
}

func (f *Fake) deadError(op, arg string) error {
	if err := f.Err(); err != nil {
		return &hosts.TransportError{Host: f.name, Op: op + " " + arg, Err: err}
	}
	return nil
}

// during runs fn with a context that ends when ctx does or the host dies;
// a death turns fn's result into a *hosts.TransportError.
func (f *Fake) during(ctx context.Context, op, arg string, fn func(context.Context) error) error {
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(f.life, cancel)
	defer stop()
	err := fn(ictx)
	if ctx.Err() == nil {
		if derr := f.deadError(op, arg); derr != nil {
			return derr
		}
	}
	return err
}

// Exec runs argv as a local process group; see hosts.LocalTransport.Exec.
func (f *Fake) Exec(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	if len(argv) == 0 {
		return errors.New("exec: empty command")
	}
	if err := f.begin("exec", argv...); err != nil {
		return err
	}
	f.mu.Lock()
	f.running++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}()
	return f.during(ctx, "exec", filepath.Base(argv[0]), func(ctx context.Context) error {
		return f.local.Exec(ctx, argv, stdout, stderr)
	})
}

// Upload copies local to remote and verifies size and SHA-256.
func (f *Fake) Upload(ctx context.Context, local, remote string) error {
	if err := f.begin("upload", local, remote); err != nil {
		return err
	}
	return f.during(ctx, "upload", remote, func(ctx context.Context) error {
		return f.local.Upload(ctx, local, remote)
	})
}

// Download copies remote to local and verifies size and SHA-256.
func (f *Fake) Download(ctx context.Context, remote, local string) error {
	if err := f.begin("download", remote, local); err != nil {
		return err
	}
	return f.during(ctx, "download", remote, func(ctx context.Context) error {
		return f.local.Download(ctx, remote, local)
	})
}

// Remove deletes remote; a missing file is not an error.
func (f *Fake) Remove(ctx context.Context, remote string) error {
	if err := f.begin("remove", remote); err != nil {
		return err
	}
	return f.local.Remove(ctx, remote)
}

// FreeSpace reports the real free space in dir, or what SetFreeSpace set
// (dir must exist either way).
func (f *Fake) FreeSpace(ctx context.Context, dir string) (int64, error) {
	if err := f.begin("freespace", dir); err != nil {
		return 0, err
	}
	n, err := f.local.FreeSpace(ctx, dir)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.free >= 0 {
		return f.free, nil
	}
	return n, nil
}

// Join joins with '/'.
func (f *Fake) Join(elem ...string) string { return filepath.Join(elem...) }

// Close makes the host unreachable, like closing a connection: running
// commands are stopped.
func (f *Fake) Close() error {
	f.Die(errors.New("transport closed"))
	return nil
}

// String names the fake in test output.
func (f *Fake) String() string { return fmt.Sprintf("fake host %s", f.name) }
