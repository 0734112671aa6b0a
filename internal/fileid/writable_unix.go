//go:build unix

package fileid

import "syscall"

// Writable reports whether this process may create files in dir (a
// read-only mount, a folder of another user): nil when it may.
func Writable(dir string) error {
	return syscall.Access(dir, 0x2) // W_OK
}
