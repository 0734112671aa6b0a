package hosts

import "time"

// SetKillGrace shortens the wait between stdin EOF and kill(1) in tests.
func SetKillGrace(t *SSHTransport, d time.Duration) { t.killGrace = d }

// SetRefusedPatience shortens how long a refused session is retried.
func SetRefusedPatience(t *SSHTransport, d time.Duration) { t.refusedPatience = d }

// SetCheckLoopbackIP makes CheckHostIP apply to loopback addresses (which
// OpenSSH exempts) until the test ends: the test servers are all on
// loopback.
func SetCheckLoopbackIP(t interface{ Cleanup(func()) }, on bool) {
	old := checkLoopbackIP
	checkLoopbackIP = on
	t.Cleanup(func() { checkLoopbackIP = old })
}
