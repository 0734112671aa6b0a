//go:build !unix

package fileid

import "os"

// Windows (and anything else): size and mtime only.
func sysFields(os.FileInfo, *ID) {}
