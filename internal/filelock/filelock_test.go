package filelock

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSecondOpenFileDoesNotGetTheLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	a, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if held, err := TryLock(a); held || err != nil {
		t.Fatalf("first TryLock: held=%v err=%v", held, err)
	}
	if held, err := TryLock(b); !held || err != nil {
		t.Fatalf("second TryLock: held=%v err=%v, want held", held, err)
	}
	// The holder's content stays readable through another handle (Windows
	// locks a byte past it).
	if _, err := a.WriteAt([]byte("pid 1\n"), 0); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(p); err != nil || string(got) != "pid 1\n" {
		t.Fatalf("read while locked: %q, %v", got, err)
	}
	if err := Unlock(a); err != nil {
		t.Fatal(err)
	}
	if held, err := TryLock(b); held || err != nil {
		t.Fatalf("TryLock after Unlock: held=%v err=%v", held, err)
	}
}
