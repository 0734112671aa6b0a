package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"clustertx", "--version"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(out.String())
	if !strings.HasPrefix(line, "clustertx ") || !strings.Contains(line, "commit ") ||
		!strings.Contains(line, runtime.Version()) || !strings.Contains(line, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("--version = %q", line)
	}
	Version, Commit = "v1.2.3", "0123456789abcdef"
	defer func() { Version, Commit = "", "" }()
	if got := versionLine(); !strings.HasPrefix(got, "clustertx v1.2.3 (commit 0123456789ab") {
		t.Errorf("with link-time version: %q", got)
	}
}

func TestHelpListsCommandsAndExitCodes(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"clustertx", "--help"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hosts ", "completion ", "4 another run holds the journal lock", "--version", "--notify URL"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

// A usage error is reported as an error (main adds one line pointing to
// --help); the help text is not printed.
func TestUsageErrorPrintsNoHelp(t *testing.T) {
	for _, args := range [][]string{{"--no-such-flag", "a.mkv"}, {"--max-attempts", "x", "a.mkv"}, {"hosts", "--no-such-flag"}} {
		var out, errb bytes.Buffer
		err := Run(context.Background(), append([]string{"clustertx"}, args...), &out, &errb)
		if Code(err) != ExitUsage || err.Error() == "" {
			t.Errorf("%v: code %d (%v)", args, Code(err), err)
		}
		if strings.Contains(out.String()+errb.String(), "GLOBAL OPTIONS") {
			t.Errorf("%v printed the help:\n%s%s", args, out.String(), errb.String())
		}
	}
}

func TestCompletion(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "t.yml")
	os.WriteFile(cfg, []byte(`config:
  clusters:
    household:
      nas: {type: local, ffmpeg: ffmpeg}
    lab:
      gpu: {type: local, ffmpeg: ffmpeg}
profiles:
  hevc_nvenc: {output_options: "-c:v hevc_nvenc", extension: .mkv}
  anime: {output_options: "-c:v libx265", extension: .mkv}
templates:
  tmpl: {cli: {video-codec: "-c:v libx265"}}
`), 0o644)
	complete := func(words ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		args := append(append([]string{"clustertx"}, words...), completeFlag)
		if err := Run(context.Background(), args, &out, &errb); err != nil {
			t.Fatalf("%v: %v", words, err)
		}
		return strings.TrimSpace(out.String())
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"-y", cfg, "-c"}, "household\nlab"},
		{[]string{"-y", cfg, "a.mkv", "-c", "lab", "b.mkv", "--cluster"}, "household\nlab"},
		{[]string{"-y", cfg, "-p"}, "hevc_nvenc\nanime"},
		{[]string{"-y", cfg, "-m"}, "hevc_nvenc\nanime"},
		{[]string{"-y", cfg, "-t"}, "tmpl"},
		{[]string{"-y", cfg, "hosts", "-c"}, "household\nlab"},
		{[]string{"-y", cfg, "film.mkv"}, ""}, // the shell completes file names
		{[]string{"completion"}, "bash\nzsh\nfish\npwsh"},
		{[]string{"hosts", "--js"}, "--json:print a JSON array"},
	} {
		if got := complete(tc.words...); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.words, got, tc.want)
		}
	}
	if got := complete("--no-sp"); !strings.HasPrefix(got, "--no-split:never split a file") || !strings.Contains(got, "--no-speculation:") {
		t.Errorf("flags: %q", got)
	}

	for shell, want := range map[string]string{"bash": "complete -o bashdefault -o default -F __clustertx_bash_autocomplete clustertx",
		"zsh": "compdef _clustertx clustertx", "fish": "complete -c clustertx -a '(__clustertx_perform_completion)'"} {
		var out bytes.Buffer
		if err := Run(context.Background(), []string{"clustertx", "completion", shell}, &out, &out); err != nil {
			t.Fatalf("%s: %v", shell, err)
		}
		if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), completeFlag) {
			t.Errorf("completion %s lacks %q:\n%s", shell, want, out.String())
		}
	}
}
