package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A library reached through a symbolic link is walked (a nightly cron on
// /mnt/media → /volume1/media used to find nothing), links to folders
// inside are followed without looping, and a file reached twice is taken
// once.
func TestExpandPathsFollowsFolderLinks(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "volume1", "media")
	for _, p := range []string{"show/e1.mkv", "film.mp4", "extras/x.mkv"} {
		p = filepath.Join(lib, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mnt := filepath.Join(dir, "mnt-media")
	for _, l := range [][2]string{
		{lib, mnt}, // the argument itself is a link
		{filepath.Join(lib, "extras"), filepath.Join(lib, "show", "more")},    // a link to a folder inside
		{lib, filepath.Join(lib, "show", "loop")},                             // a link back up
		{filepath.Join(lib, "film.mp4"), filepath.Join(lib, "film-link.mp4")}, // a link to a file: not taken
	} {
		if err := os.Symlink(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	got := expandPaths([]WorkItem{{Path: mnt}, {Path: lib}}, []string{".mkv", ".mp4"})
	var names []string
	for _, it := range got {
		rel, _ := filepath.Rel(dir, it.Path)
		names = append(names, rel)
	}
	want := []string{"mnt-media/extras/x.mkv", "mnt-media/film.mp4", "mnt-media/show/e1.mkv"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("got %q, want %q", names, want)
	}
}
