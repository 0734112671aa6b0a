package fileid

import "os"

// CopyMeta gives dst the permission bits of the source described by src,
// and its owner and group where this process may set them (as root, or a
// group the user is in). mtime is deliberately not copied: see the README
// ("Outputs"). What could not be copied is returned as an error for a
// warning; dst is still usable.
func CopyMeta(src os.FileInfo, dst string) error {
	// Owner first: a chown may clear mode bits.
	oerr := copyOwner(src, dst)
	if err := os.Chmod(dst, src.Mode().Perm()); err != nil {
		return err
	}
	return oerr
}
