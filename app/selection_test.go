package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An unknown -p/-t/-m is a usage error (exit 2) and a cluster with no hosts
// a config error (exit 1), both before any file is probed: the files here
// do not exist, so reaching the probe would fail them instead (exit 3, as
// on main).
func TestSelectionsCheckedBeforeRunning(t *testing.T) {
	home := freshHome(t)
	cfg := filepath.Join(home, "t.yml")
	if err := os.WriteFile(cfg, []byte(`profiles:
  hevc: {extension: .mkv, output_options: -c:v libx265}
  aac: {output_options_audio: -c:a aac}
config:
  clusters:
    empty:
    home:
      me: {type: local}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(home, "missing.mkv")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-p", "hvec", missing}, ExitUsage, `-p/-t: unknown profile "hvec" (did you mean hevc?)`},
		{[]string{"-t", "nope", missing}, ExitUsage, `-p/-t: unknown profile "nope"`},
		{[]string{"-c", "home", "-m", "acc", missing}, ExitUsage, `-m: unknown mixin "acc"`},
		{[]string{"-c", "empty", missing}, ExitFatal, "cluster empty has no hosts"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"clustertx", "-y", cfg, "--no-journal", "--dry-run"}, tc.args...)
		err := Run(context.Background(), args, &out, &errb)
		if Code(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: code %d, err %v; want %d and %q", tc.args, Code(err), err, tc.code, tc.want)
		}
		if strings.Contains(out.String()+errb.String(), "missing.mkv") {
			t.Errorf("%v: the file was looked at before the check:\n%s%s", tc.args, out.String(), errb.String())
		}
	}
}
