package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"clustertx/internal/testenv"
)

// Issue 7 from the command line: --split splits a long file (lengths from
// the profile's split: key, which alone says no), --no-split keeps it whole
// even where the rule asks for it; --dry-run shows the segments.
func TestSplitFlags(t *testing.T) {
	l := newLab(t, false)
	l.cfgPath = filepath.Join(l.dir, "transcode.yml")
	must(t, os.WriteFile(l.cfgPath, []byte(`config:
  ffmpeg: ffmpeg
  clusters:
    lab:
      manager:
        type: local
        fallback: no
        slots: 2
profiles:
  hevc:
    output_options: -c:v libx265 -preset ultrafast -crf 32 -x265-params log-level=error -c:a aac -c:s copy
    extension: .mkv
    split:
      min_duration: 10s
      segment: 4s
  hevc_nosplit:
    include: hevc
    split: no
rules:
  whole:
    profile: hevc
    split: no
    criteria:
      path: /whole/
  default:
    profile: hevc_nosplit
`), 0o644))
	clip := testenv.Clip{Seconds: 12, GOP: 25, AudioLangs: []string{"eng"}}
	forced := l.clip("forced/a.mkv", clip)
	kept := l.clip("whole/b.mkv", clip)
	frames := func(p string) string {
		out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0",
			"-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", p).Output()
		must(t, err)
		return strings.TrimSpace(string(out))
	}

	p, code := run(t, l.dir, env(l.home, l.state), 60*time.Second, l.args("--dry-run", "--split", "-c", "lab", "-p", "hevc", forced)...)
	if code != 0 || !strings.Contains(p.output(), "split:    3 segments") {
		t.Fatalf("--dry-run --split: exit %d, no 3 segments shown:\n%s", code, p.output())
	}

	// hevc_nosplit says split: no, with the default lengths: --split turns
	// it on, but 12 s is under the default 30m minimum.
	p, code = run(t, l.dir, env(l.home, l.state), 60*time.Second, l.args("--dry-run", "--split", "-c", "lab", kept)...)
	if code != 0 || !strings.Contains(p.output(), "not split: 0:00:12 is shorter than min_duration 0:30:00") {
		t.Errorf("the rule's split: no with --split: exit %d\n%s", code, p.output())
	}

	p, code = run(t, l.dir, env(l.home, l.state), 120*time.Second, l.args("--split", "-c", "lab", "-p", "hevc", forced)...)
	if code != 0 || !strings.Contains(p.output(), "split in 3 segments") {
		t.Fatalf("--split run: exit %d\n%s", code, p.output())
	}
	if c, n := vcodec(t, forced), frames(forced); c != "hevc" || n != "300" {
		t.Errorf("split output: %s with %s frames, want hevc with 300", c, n)
	}

	p, code = run(t, l.dir, env(l.home, l.state), 120*time.Second, l.args("--no-split", "-c", "lab", "-p", "hevc", kept)...)
	if code != 0 || strings.Contains(p.output(), "segment") {
		t.Errorf("--no-split run: exit %d, or it split:\n%s", code, p.output())
	}
	if c := vcodec(t, kept); c != "hevc" {
		t.Errorf("--no-split output is %s", c)
	}
	if left := leftovers(l.media); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}
}
