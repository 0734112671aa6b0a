package fileid

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckSeesEveryKindOfChange(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "film.mkv")
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	fresh := func() ID {
		os.Remove(p)
		write(t, p, "version one")
		os.Chtimes(p, mtime, mtime)
		id, err := Of(p)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	cases := []struct {
		name   string
		change func()
		inode  bool // only detectable with inode/ctime
	}{
		{"unchanged", func() {}, false},
		{"removed", func() { os.Remove(p) }, false},
		{"grown", func() { write(t, p, "version one, longer") }, false},
		{"touched", func() { os.Chtimes(p, time.Now(), time.Now()) }, false},
		{"replaced by mv, same size and mtime", func() {
			n := filepath.Join(dir, "new")
			write(t, n, "version two")
			os.Chtimes(n, mtime, mtime)
			if err := os.Rename(n, p); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"rewritten in place, mtime restored", func() {
			time.Sleep(10 * time.Millisecond) // let the ctime move
			write(t, p, "version two")
			os.Chtimes(p, mtime, mtime)
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := fresh()
			c.change()
			err := Check(id, true)
			if c.name == "unchanged" {
				if err != nil {
					t.Fatalf("unchanged file reported as changed: %v", err)
				}
				return
			}
			if c.inode && runtime.GOOS == "windows" {
				t.Skip("no inode or ctime on windows")
			}
			if !errors.Is(err, ErrChanged) {
				t.Fatalf("change not seen: err = %v", err)
			}
		})
	}
}

func TestRemoveIfSameLeavesANewVersionAlone(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.mp4")
	write(t, p, "old")
	id, err := Of(p)
	if err != nil {
		t.Fatal(err)
	}
	n := filepath.Join(dir, "n")
	write(t, n, "new version")
	if err := os.Rename(n, p); err != nil {
		t.Fatal(err)
	}
	if err := RemoveIfSame(id); !errors.Is(err, ErrChanged) {
		t.Fatalf("RemoveIfSame on a replaced file: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "new version" {
		t.Fatalf("the new version was touched: %q", b)
	}
	id2, _ := Of(p)
	if err := RemoveIfSame(id2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("same version not removed: %v", err)
	}
}
