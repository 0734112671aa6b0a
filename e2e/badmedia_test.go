package e2e_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"clustertx/internal/testenv"
)

// A batch of bad inputs next to good ones, with the built-in default
// config (no -y, empty HOME): every bad file is failed with a clear reason
// and left exactly as it was, the good ones are done, exit code 3.
//
// Unreadable files (permissions) cannot be simulated as root: not covered.
func TestBadMediaBatch(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	t.Cleanup(func() { killFFmpegUnder(dir) })
	media := filepath.Join(dir, "media")
	home := filepath.Join(dir, "home")
	state := filepath.Join(dir, "state")
	for _, d := range []string{media, home, state} {
		must(t, os.MkdirAll(d, 0o755))
	}
	good1 := filepath.Join(media, "good1.mkv")
	good2 := filepath.Join(media, "good2.mp4")
	testenv.MakeClip(t, good1, testenv.Clip{Seconds: 2, AudioLangs: []string{"eng"}})
	testenv.MakeClip(t, good2, testenv.Clip{Seconds: 2, AudioLangs: []string{"eng"}})

	corrupt := filepath.Join(media, "corrupt.mkv")
	junk := make([]byte, 64<<10)
	_, _ = rand.Read(junk)
	must(t, os.WriteFile(corrupt, junk, 0o644))
	zero := filepath.Join(media, "zero.mkv")
	must(t, os.WriteFile(zero, nil, 0o644))
	real := filepath.Join(dir, "real.mkv")
	testenv.MakeClip(t, real, testenv.Clip{Seconds: 3, AudioLangs: []string{"eng"}})
	data, err := os.ReadFile(real)
	must(t, err)
	truncated := filepath.Join(media, "truncated.mkv")
	must(t, os.WriteFile(truncated, data[:len(data)/3], 0o644))
	emptyDir := filepath.Join(media, "x.mkv")
	must(t, os.Mkdir(emptyDir, 0o755))
	missing := filepath.Join(media, "missing.mkv")

	bad := []string{corrupt, zero, truncated}
	before := hashes(t, bad)

	p, code := run(t, dir, env(home, state), 90*time.Second,
		"-p", "hevc", corrupt, zero, truncated, emptyDir+"/", missing, good1, good2)
	out := p.output()
	if code != 3 {
		t.Errorf("exit code %d, want 3\n%s", code, out)
	}
	stdout := p.stdout.String()
	for base, want := range map[string][]string{
		"corrupt.mkv":   {"failed", "Invalid data"},
		"zero.mkv":      {"failed", "empty file"},
		"truncated.mkv": {"failed"},
		"missing.mkv":   {"failed", "no such file"},
	} {
		line := summaryLine(stdout, base)
		if line == "" {
			t.Errorf("summary does not name %s\n%s", base, out)
			continue
		}
		for _, w := range want {
			if !strings.Contains(line, w) {
				t.Errorf("summary line for %s lacks %q: %s", base, w, line)
			}
		}
	}
	// The truncated file is a real mkv whose tail is missing: it must be
	// failed with a reason (it probes; the output does not match it).
	if line := summaryLine(stdout, "truncated.mkv"); line != "" && !strings.Contains(line, "duration") && !strings.Contains(line, "probe") {
		t.Errorf("truncated file's reason is not clear: %s", line)
	}
	// An empty directory named like a video: either walked (no files, not
	// in the summary) or reported as a directory; never a crash or "done".
	if line := summaryLine(stdout, "x.mkv"); line != "" && !strings.Contains(line, "directory") {
		t.Errorf("x.mkv/ directory: %s", line)
	}
	for _, base := range []string{"good1.mkv", "good2.mp4"} {
		if line := summaryLine(stdout, base); !strings.Contains(line, "done") {
			t.Errorf("%s not done: %q\n%s", base, line, out)
		}
	}
	if c := vcodec(t, good1); c != "hevc" {
		t.Errorf("good1.mkv is %s, want hevc", c)
	}
	if c := vcodec(t, filepath.Join(media, "good2.mkv")); c != "hevc" {
		t.Errorf("good2.mkv (output of good2.mp4) is %s, want hevc", c)
	}
	for f, h := range before {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("bad file %s was removed: %v", f, err)
			continue
		}
		if fileHash(t, f) != h {
			t.Errorf("bad file %s was modified", f)
		}
	}
	if st, err := os.Stat(emptyDir); err != nil || !st.IsDir() {
		t.Errorf("directory x.mkv was touched: %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("missing.mkv was created")
	}
	if left := leftovers(media); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}
	if t.Failed() {
		t.Log(out)
	}
}

// README: "Directories given as arguments are walked for media files". A
// directory whose name ends in a media extension ("Season 1.mkv/", or a
// Blu-ray style "Movie.mkv/" folder) must be walked like any other.
func TestDirectoryNamedLikeVideoIsWalked(t *testing.T) {
	testenv.NeedFFmpeg(t)
	for name, suffix := range map[string]string{"trailing slash": "/", "no trailing slash": ""} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			t.Cleanup(func() { killFFmpegUnder(dir) })
			home := filepath.Join(dir, "home")
			state := filepath.Join(dir, "state")
			must(t, os.MkdirAll(home, 0o755))
			must(t, os.MkdirAll(state, 0o755))
			folder := filepath.Join(dir, "media", "Film.mkv")
			inner := filepath.Join(folder, "inner.mkv")
			must(t, os.MkdirAll(folder, 0o755))
			testenv.MakeClip(t, inner, testenv.Clip{Seconds: 1})

			p, code := run(t, dir, env(home, state), 60*time.Second, "-p", "hevc", folder+suffix)
			if code != 0 {
				t.Errorf("exit code %d, want 0 (the directory is walked and inner.mkv encoded)\n%s", code, p.output())
			}
			if c := vcodec(t, inner); c != "hevc" {
				t.Errorf("inner.mkv is %s after the run, want hevc: the directory argument %q was not walked", c, folder+suffix)
			}
		})
	}
}
