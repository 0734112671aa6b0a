//go:build unix

package fileid

import (
	"errors"
	"os"
	"syscall"
)

func copyOwner(src os.FileInfo, dst string) error {
	st, ok := src.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return err
	}
	if now, ok := fi.Sys().(*syscall.Stat_t); ok && now.Uid == st.Uid && now.Gid == st.Gid {
		return nil
	}
	err = os.Chown(dst, int(st.Uid), int(st.Gid))
	if errors.Is(err, os.ErrPermission) {
		// Not root: the group may still be ours to set.
		if gerr := os.Chown(dst, -1, int(st.Gid)); gerr == nil {
			return nil
		}
		return nil // an unprivileged manager keeps its own owner: expected, not worth a warning
	}
	return err
}
