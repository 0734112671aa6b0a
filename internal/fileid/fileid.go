// Package fileid owns the identity of one version of a file: what the
// manager compares, at each point of no return, to know that the file it is
// about to replace or remove is still the version it probed. A version is
// its path, size and modification time (what the journal keys on), plus,
// where the platform has them, the device and inode (a file moved or copied
// over the old one, as Sonarr/Radarr and `mv` do, has another inode) and
// the inode change time (a rewrite in place that kept size and mtime, as
// `cp -p` or `rsync -a` onto the same inode do, changes it).
package fileid

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ID is one version of a file. Dev, Ino and CtimeNs are zero where the
// platform does not provide them (Windows); they are then not compared.
type ID struct {
	Path    string // absolute, cleaned; symlinks not resolved
	Size    int64
	MtimeNs int64
	Dev     uint64
	Ino     uint64
	CtimeNs int64
}

// Of returns the identity of the file at path as it is now. It does not
// follow a final symlink's target for the path, but stats what the path
// points to (os.Stat), as every reader of the file would.
func Of(path string) (ID, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ID{}, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return ID{}, err
	}
	return FromInfo(abs, fi), nil
}

// FromInfo is the identity of an already stat'ed file at abs.
func FromInfo(abs string, fi os.FileInfo) ID {
	id := ID{Path: abs, Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	sysFields(fi, &id)
	return id
}

// HasInode reports whether the platform gave device and inode numbers.
func (id ID) HasInode() bool { return id.Dev != 0 || id.Ino != 0 }

// Same reports whether now is the same version as id: same size and mtime,
// same device and inode when both are known, and same ctime when both are
// known and withCtime is set. The ctime also moves when the file is renamed
// or its mode changes, so it is compared only where nothing of ours has
// touched the file since id was taken.
func (id ID) Same(now ID, withCtime bool) bool {
	if id.Size != now.Size || id.MtimeNs != now.MtimeNs {
		return false
	}
	if id.HasInode() && now.HasInode() && (id.Dev != now.Dev || id.Ino != now.Ino) {
		return false
	}
	if withCtime && id.CtimeNs != 0 && now.CtimeNs != 0 && id.CtimeNs != now.CtimeNs {
		return false
	}
	return true
}

// ErrChanged is returned when the file at a path is no longer the version
// that was expected there (replaced, rewritten, touched or removed).
var ErrChanged = errors.New("the file changed")

// ChangedError says how a file differs from the version that was expected.
type ChangedError struct {
	Path string
	Why  string
}

func (e *ChangedError) Error() string { return e.Path + ": " + e.Why }

// Unwrap makes errors.Is(err, ErrChanged) true.
func (e *ChangedError) Unwrap() error { return ErrChanged }

// Check returns nil when the file at id.Path is still version id, else a
// *ChangedError saying what differs.
func Check(id ID, withCtime bool) error {
	now, err := Of(id.Path)
	if errors.Is(err, os.ErrNotExist) {
		return &ChangedError{Path: id.Path, Why: "it was removed or renamed"}
	}
	if err != nil {
		return err
	}
	if id.Same(now, withCtime) {
		return nil
	}
	return &ChangedError{Path: id.Path, Why: describe(id, now)}
}

func describe(was, now ID) string {
	switch {
	case was.HasInode() && now.HasInode() && (was.Dev != now.Dev || was.Ino != now.Ino):
		return "another file was put in its place"
	case was.Size != now.Size:
		return fmt.Sprintf("its size changed (%d → %d bytes)", was.Size, now.Size)
	case was.MtimeNs != now.MtimeNs:
		return "its modification time changed"
	default:
		return "it was rewritten in place"
	}
}

// RemoveIfSame removes path only while it is still version id (see Check,
// with ctime). A file that changed is left alone and a *ChangedError
// returned.
func RemoveIfSame(id ID) error {
	if err := Check(id, true); err != nil {
		return err
	}
	return os.Remove(id.Path)
}
