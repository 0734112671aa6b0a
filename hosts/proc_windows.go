//go:build windows

package hosts

import (
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// childAttr starts a local encode in a process group of its own, so that a
// Ctrl-C in the console reaches only the manager, which then stops the
// encode and cleans up.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// killJob is a job object that kills its processes when its last handle
// closes, which happens when the manager exits however it exits: the
// Windows counterpart of Linux's parent-death signal.
var killJob = sync.OnceValue(func() windows.Handle {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{}
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return 0
	}
	return job
})

// started puts a local encode in the kill-on-exit job (best effort: without
// it an encode outlives a killed manager, as on macOS).
func started(p *os.Process) {
	job := killJob()
	if job == 0 {
		return
	}
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(p.Pid))
	if err != nil {
		return
	}
	defer windows.CloseHandle(h)
	_ = windows.AssignProcessToJobObject(job, h)
}

// stopGroup stops a local encode. Windows has no SIGTERM for a console
// program in another group: both levels terminate it (the output is a
// temporary file that is removed anyway).
func stopGroup(p *os.Process, _ bool) { _ = p.Kill() }

// sigkillGroup is never needed on Windows: local encodes run through
// execDirect, not the POSIX wrapper whose process group it kills.
func sigkillGroup(int) {}

// diskFree reports the bytes available to this user in dir.
func diskFree(dir string) (int64, error) {
	d, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, err
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(d, &avail, &total, &free); err != nil {
		return 0, err
	}
	return int64(avail), nil
}
