package hosts

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing the file's dirty pages
// in [off, off+n) to disk now, without waiting for them (sync_file_range
// with SYNC_FILE_RANGE_WRITE). It promises no durability (only fsync
// does), but the disk then works while the download goes on, and the
// fsync at the end finds little left to write.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}
