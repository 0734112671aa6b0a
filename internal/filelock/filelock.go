// Package filelock takes advisory, whole-file exclusive locks on open files
// on every platform the manager runs on: flock(2) on Unix, LockFileEx on
// Windows. The kernel releases a lock when its holder dies, so a crash
// never leaves a stale lock. Locks belong to the open file: a second open
// of the same file, in this process or another, does not get it.
package filelock

import (
	"errors"
	"os"
)

// ErrUnsupported is returned where the platform has no file locking.
var ErrUnsupported = errors.New("file locking is not supported on this operating system")

// TryLock takes an exclusive lock on f without waiting. held reports that
// another open file has it.
func TryLock(f *os.File) (held bool, err error) { return tryLock(f) }

// Lock takes an exclusive lock on f, waiting for it.
func Lock(f *os.File) error { return lock(f) }

// Unlock releases the lock on f (closing f releases it too).
func Unlock(f *os.File) error { return unlock(f) }
