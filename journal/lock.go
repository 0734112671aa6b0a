package journal

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"clustertx/internal/filelock"
)

// LockedError is returned by Open when another process holds the journal's
// lock. The caller should exit with a distinct exit code.
type LockedError struct {
	Path  string    // the journal
	PID   int       // the holder's pid; 0 if unknown
	Host  string    // the holder's host name, if known
	Since time.Time // when the holder took the lock; zero if unknown
}

func (e *LockedError) Error() string {
	var who string
	if e.PID > 0 {
		who = fmt.Sprintf("pid %d", e.PID)
		if me, _ := os.Hostname(); e.Host != "" && e.Host != me {
			who += " on " + e.Host
		}
	}
	if !e.Since.IsZero() {
		if who != "" {
			who += ", "
		}
		who += "started " + formatSince(e.Since, time.Now())
	}
	if who != "" {
		who = " (" + who + ")"
	}
	return fmt.Sprintf("another clustertx run%s is using journal %s; it may still be running from last night — wait for it or stop it", who, e.Path)
}

func formatSince(t, now time.Time) string {
	t = t.Local()
	y1, m1, d1 := t.Date()
	y2, m2, d2 := now.Local().Date()
	if y1 == y2 && m1 == m2 && d1 == d2 {
		return t.Format("15:04")
	}
	return t.Format("Mon Jan 2 15:04")
}

// lockInfo is the content of the lock file: informational only, the lock
// itself is the flock.
type lockInfo struct {
	PID   int       `json:"pid"`
	Host  string    `json:"host,omitempty"`
	Since time.Time `json:"since"`
}

func lockPath(journal string) string { return journal + ".lock" }

func acquireLock(journal string) (*os.File, error) {
	p := lockPath(journal)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal lock: %w", err)
	}
	held, err := filelock.TryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("journal lock %s: %w", p, err)
	}
	if held {
		le := &LockedError{Path: journal}
		var info lockInfo
		if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &info) == nil {
			le.PID, le.Host, le.Since = info.PID, info.Host, info.Since
		}
		f.Close()
		return nil, le
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(lockInfo{PID: os.Getpid(), Host: host, Since: time.Now().Round(0)})
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(append(b, '\n'), 0) // informational: failure is harmless
	}
	return f, nil
}

func releaseLock(f *os.File) error {
	if f == nil {
		return nil
	}
	_ = f.Truncate(0) // while still holding it: nobody reads a stale pid
	_ = filelock.Unlock(f)
	return f.Close()
}
