package cluster

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"clustertx/config"
	"clustertx/hosts"
	"clustertx/media"
)

// --dry-run shows, for an os: win10 host, the exact cmd.exe line that is
// sent (on main it showed POSIX-quoted words, which cmd.exe would not read
// the same way).
func TestDryRunShowsExactCmdLineForWindowsHosts(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "t.yml")
	if err := os.WriteFile(cfgFile, []byte(`profiles:
  hevc:
    output_options: -c:v libx265 -metadata "title=A & B 100%"
    extension: .mkv
config:
  clusters:
    home:
      winpc:
        type: mounted
        os: win10
        ip: winpc.example
        ffmpeg: 'c:\ffmpeg\bin\ffmpeg.exe'
        path-substitutions:
          - '/media/ m:\video\'
      nas:
        type: mounted
        ip: nas.example
        path-substitutions:
          - '/media/ /mnt/media/'
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{Path: cfgFile, Getenv: func(string) string { return "" }, Home: dir})
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := cfg.Cluster("home")
	prof, _ := cfg.Profiles.Get("hevc")
	info := &media.Info{Path: "/media/Film (2001).mkv", Duration: 60}
	j := &Job{Item: WorkItem{Path: info.Path, Cluster: "home"}, Info: info, Profile: prof}
	m := newManager(Options{Config: cfg})

	for _, h := range cl.Hosts {
		var buf bytes.Buffer
		m.printHostCommand(&buf, j, h)
		final, _ := outputPath(j.Item.Path, prof.Extension, false)
		argv, _, _, _, err := m.commandFor(j, h, joinOnly{h}, prof, "", tempPath(final, "XXXXXXXXXXXX"), "XXXXXXXXXXXX")
		if err != nil {
			t.Fatal(err)
		}
		var want string
		if h.Windows() {
			if want, err = hosts.QuoteCmd(argv...); err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{`"title=A & B 100"^%`, `m:\video\`, `c:\ffmpeg\bin\ffmpeg.exe`} {
				if !strings.Contains(want, w) {
					t.Errorf("cmd.exe line lacks %s: %s", w, want)
				}
			}
		} else {
			want = showArgv(argv)
			if !strings.Contains(want, `'title=A & B 100%'`) {
				t.Errorf("POSIX line: %s", want)
			}
		}
		if !strings.Contains(buf.String(), "      run      "+want+"\n") {
			t.Errorf("%s: dry run shows\n%s\nwant the run line %s", h.Name, buf.String(), want)
		}
	}
}
