//go:build unix

package hosts

import (
	"os"
	"syscall"
)

// started is called once a direct local encode has started (nothing to do
// on Unix: childAttr already put it in its own process group).
func started(*os.Process) {}

// sigkillGroup sends SIGKILL to the process group pgid.
func sigkillGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

// stopGroup asks a direct local encode's process group to stop (hard: SIGKILL,
// else SIGTERM).
func stopGroup(p *os.Process, hard bool) {
	sig := syscall.SIGTERM
	if hard {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-p.Pid, sig)
}

// diskFree reports the bytes available to this user in dir.
func diskFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
