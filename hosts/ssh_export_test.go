package hosts

import "time"

// SetKillGrace shortens the wait between stdin EOF and kill(1) in tests.
func SetKillGrace(t *SSHTransport, d time.Duration) { t.killGrace = d }

// SetRefusedPatience shortens how long a refused session is retried.
func SetRefusedPatience(t *SSHTransport, d time.Duration) { t.refusedPatience = d }
