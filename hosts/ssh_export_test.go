package hosts

import (
	"io"
	"time"
)

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

// SetDownloadTap wraps what Download writes the received bytes to, until
// the test ends.
func SetDownloadTap(t interface{ Cleanup(func()) }, tap func(io.Writer) io.Writer) {
	old := downloadTap
	downloadTap = tap
	t.Cleanup(func() { downloadTap = old })
}

// SetSystemSSHConfig replaces /etc/ssh/ssh_config until the test ends, so
// that the machine's own (Debian's sets HashKnownHosts yes) does not
// decide a test.
func SetSystemSSHConfig(t interface{ Cleanup(func()) }, path string) {
	old := systemSSHConfig
	systemSSHConfig = path
	t.Cleanup(func() { systemSSHConfig = old })
}
