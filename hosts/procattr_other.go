//go:build unix && !linux

package hosts

import "syscall"

// childAttr puts a local encode in its own process group. Outside Linux
// there is no parent-death signal: an encode outlives a killed manager.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
