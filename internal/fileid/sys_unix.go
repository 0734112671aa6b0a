//go:build unix

package fileid

import (
	"os"
	"syscall"
)

func sysFields(fi os.FileInfo, id *ID) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	id.Dev = uint64(st.Dev)
	id.Ino = uint64(st.Ino)
	id.CtimeNs = ctimeNs(st)
}
