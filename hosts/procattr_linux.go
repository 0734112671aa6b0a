package hosts

import "syscall"

// childAttr puts a local encode in its own process group (so a cancel can
// signal ffmpeg and anything it started) and has the kernel SIGKILL it if
// the manager dies, however it dies: kill -9, a crash, or the forced exit
// of a second Ctrl-C. Without that, an orphaned ffmpeg would run on for
// hours and write into a temporary file the next run removes.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
