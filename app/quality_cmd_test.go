package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `clustertx quality`'s command line: no file, a bad --target or an
// unknown -p (given after the subcommand) is a usage error (exit 2) before
// anything is probed.
func TestQualityCommandLine(t *testing.T) {
	freshHome(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "transcode.yml")
	y := "config:\n  ffmpeg: ffmpeg\nprofiles:\n  plain:\n    output_options: -c:v libx264 -crf 23\n    extension: .mkv\n"
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	film := filepath.Join(dir, "film.mkv")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-y", cfg, "quality"}, ExitUsage, "no files given"},
		{[]string{"-y", cfg, "quality", "--target", "ssim=98", film}, ExitUsage, "between 0 and 1"},
		{[]string{"-y", cfg, "quality", "--target", "psnr", film}, ExitUsage, "METRIC=VALUE"},
		{[]string{"-y", cfg, "quality", "-p", "nope", film}, ExitUsage, "nope"},
	} {
		_, stderr, err := runCLI(t, c.args...)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if Code(err) != c.code || !strings.Contains(msg+stderr, c.want) {
			t.Errorf("%q: exit %d (%v), want %d with %q", c.args, Code(err), err, c.code, c.want)
		}
	}
}
