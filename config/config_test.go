package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"clustertx/hosts"
)

const fixtures = "../testdata/configs/"

// noEnv is a Getenv that sees no variables, so the developer's own
// $CLUSTERTX_CONFIG never leaks into a test.
func noEnv(string) string { return "" }

// load loads a fixture with an empty home and environment.
func load(t *testing.T, name string, strict bool) (*Config, error) {
	t.Helper()
	return Load(LoadOptions{Path: fixtures + name, Strict: strict, Getenv: noEnv, Home: t.TempDir()})
}

func mustLoad(t *testing.T, name string) *Config {
	t.Helper()
	c, err := load(t, name, false)
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	return c
}

// writeFile writes a config into dir and returns its path.
func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadString loads body from a temporary file called test.yml.
func loadString(t *testing.T, body string, strict bool) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	p := writeFile(t, dir, "test.yml", body)
	return Load(LoadOptions{Path: p, Strict: strict, Getenv: noEnv, Home: dir})
}

func host(t *testing.T, c *Config, cluster, name string) *hosts.Def {
	t.Helper()
	cl, ok := c.Cluster(cluster)
	if !ok {
		t.Fatalf("no cluster %q (have %v)", cluster, c.ClusterNames())
	}
	h, ok := cl.Host(name)
	if !ok {
		t.Fatalf("cluster %s has no host %q", cluster, name)
	}
	return h
}

func warningStrings(c *Config) []string {
	var out []string
	for _, w := range c.Warnings {
		out = append(out, w.Error())
	}
	return out
}

// checkWarnings asserts that the warnings start with want, in order.
func checkWarnings(t *testing.T, c *Config, want []string) {
	t.Helper()
	got := warningStrings(c)
	if len(got) != len(want) {
		t.Errorf("got %d warnings, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
		return
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("warning %d:\n got %s\nwant prefix %s", i, got[i], want[i])
		}
	}
}

func TestLoadMessy(t *testing.T) {
	c := mustLoad(t, "messy.yml")
	f := fixtures + "messy.yml"
	checkWarnings(t, c, []string{
		f + ":36:1: extras: unknown key; ignored",
		f + ":35:3: config.automap: duplicate key (line 7 also defines it)",
		f + ":6:3: config.colorize: colorize is ignored by clustertx (",
		f + ":8:3: config.plex_server: plex_server is ignored by clustertx (",
		f + ":9:3: config.hbcli: hbcli is ignored by clustertx (",
		f + ":10:3: config.docker: docker is ignored by clustertx (",
		f + ":12:3: config.ssh: ssh is ignored by clustertx (",
		f + ":13:3: config.verbose: unknown key; ignored",
		f + ":25:9: config.clusters.home.2024.status: duplicate key (line 24 also defines it)",
		f + ":31:9: config.clusters.home.nas.hbcli: hbcli is ignored",
	})
	if c.FFmpeg != "/opt/ffmpeg/bin/ffmpeg" {
		t.Errorf("FFmpeg = %q (tab after the quoted scalar)", c.FFmpeg)
	}
	if c.Automap {
		t.Error("automap: the last of yes/off should win")
	}
	if want := []string{".mkv", ".mp4", ".ts"}; !reflect.DeepEqual(c.MediaExtensions, want) {
		t.Errorf("MediaExtensions = %v, want %v", c.MediaExtensions, want)
	}
	if want := []hosts.QueueSlots{{Queue: "cuda", Slots: 2}}; !reflect.DeepEqual(c.Queues, want) {
		t.Errorf("Queues = %v", c.Queues)
	}
	h := host(t, c, "home", "2024")
	if h.User != "1001" || h.Port != 2222 || h.Enabled || h.Type != hosts.Mounted || h.Address != "10.0.0.24" {
		t.Errorf("host 2024 = %+v", h)
	}
	nas := host(t, c, "home", "nas")
	if want := []hosts.QueueSlots{{Queue: "_default", Slots: 1}, {Queue: "cuda", Slots: 0}}; !reflect.DeepEqual(nas.Queues, want) {
		t.Errorf("nas queues = %v", nas.Queues)
	}
	if got := c.HostNames(); !reflect.DeepEqual(got, []string{"2024", "nas"}) {
		t.Errorf("HostNames = %v", got)
	}
}

func TestLoadMessyStrict(t *testing.T) {
	_, err := load(t, "messy.yml", true)
	want := fixtures + "messy.yml:36:1: extras: unknown key"
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "--strict") {
		t.Fatalf("err = %v, want prefix %q", err, want)
	}
	// Legacy keys stay warnings under --strict: they are known, just unused.
	c, err := loadString(t, "config:\n  ssh: /usr/bin/ssh\n  colorize: no\n", true)
	if err != nil {
		t.Fatalf("legacy keys under strict: %v", err)
	}
	if len(c.Warnings) != 2 {
		t.Errorf("warnings: %v", warningStrings(c))
	}
}

// An unknown key inside a rule or a host is an error even without
// --strict (on main it was a warning: a misspelt criteria: made the rule
// match every file); elsewhere it stays a warning.
func TestUnknownKeyInRuleOrHostIsError(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"host", "config:\n  clusters:\n    c:\n      h:\n        type: local\n        colour: yes\n",
			"test.yml:6:9: config.clusters.c.h.colour: unknown key (an unknown key in a host is an error"},
		{"host typo", "config:\n  clusters:\n    c:\n      h:\n        type: local\n        path-substitutons: [/a/ /b/]\n",
			"config.clusters.c.h.path-substitutons: unknown key; did you mean path-substitutions? (an unknown key in a host"},
		{"path substitution map", "config:\n  clusters:\n    c:\n      h:\n        type: mounted\n        ip: x\n        path-substitution: {src: /a/, dst: /b/, from: /c/}\n",
			"config.clusters.c.h.path-substitution.from: unknown key"},
		{"rule", "profiles:\n  p: {extension: .mkv}\nrules:\n  r:\n    profile: SKIP\n    critera: {vcodec: hevc}\n",
			"test.yml:6:5: rules.r.critera: unknown key; did you mean criteria? (an unknown key in a rule is an error: ignoring a misspelt criteria: would make the rule match every file)"},
		{"old rules: key", "profiles:\n  p: {extension: .mkv}\nrules:\n  r:\n    profile: p\n    rules: {vcodec: hevc}\n",
			"rules.r.rules: unknown key; did you mean criteria? (pytranscoder before 1.4.6 called it rules:)"},
	} {
		_, err := loadString(t, tc.yaml, false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v\nwant it to contain %q", tc.name, err, tc.want)
		}
	}
	// Elsewhere an unknown key is still a warning.
	c, err := loadString(t, "profiles:\n  p: {extension: .mkv, colour: red}\nconfig:\n  colour: red\n", false)
	if err != nil {
		t.Fatal(err)
	}
	ws := strings.Join(warningStrings(c), "\n")
	for _, w := range []string{"test.yml:2:24: profiles.p.colour: unknown key; ignored", "test.yml:4:3: config.colour: unknown key; ignored"} {
		if !strings.Contains(ws, w) {
			t.Errorf("missing warning %q in\n%s", w, ws)
		}
	}
}

func TestLoadSyntaxErrorNamesFileAndLine(t *testing.T) {
	_, err := loadString(t, "config:\n  ffmpeg: /usr/bin/ffmpeg\n  queues:\n    cuda: 1\n    qsv: 2: 3\n", false)
	if err == nil || !strings.Contains(err.Error(), "test.yml:5: mapping values are not allowed") {
		t.Fatalf("err = %v, want the file name and line 5", err)
	}
}

func TestLoadSearchOrder(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := func(ffmpeg string) string { return "config:\n  ffmpeg: " + ffmpeg + "\n" }
	flagFile := writeFile(t, dir, "flag.yml", cfg("/flag/ffmpeg"))
	envFile := writeFile(t, dir, "env.yml", cfg("/env/ffmpeg"))
	homeFile := writeFile(t, home, ".transcode.yml", cfg("/home/ffmpeg"))
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvVar {
				return v
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name   string
		opts   LoadOptions
		file   string
		ffmpeg string
	}{
		{"-y beats everything", LoadOptions{Path: flagFile, Getenv: env(envFile), Home: home}, flagFile, "/flag/ffmpeg"},
		{"env beats home", LoadOptions{Getenv: env(envFile), Home: home}, envFile, "/env/ffmpeg"},
		{"home file", LoadOptions{Getenv: env(""), Home: home}, homeFile, "/home/ffmpeg"},
		{"~/ in -y", LoadOptions{Path: "~/.transcode.yml", Getenv: env(""), Home: home}, homeFile, "/home/ffmpeg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if c.File != tc.file || c.FFmpeg != tc.ffmpeg || c.Embedded {
				t.Errorf("File=%q FFmpeg=%q Embedded=%v; want %q %q", c.File, c.FFmpeg, c.Embedded, tc.file, tc.ffmpeg)
			}
		})
	}

	missing := filepath.Join(dir, "nope.yml")
	_, err := Load(LoadOptions{Path: missing, Getenv: env(envFile), Home: home})
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "-y") {
		t.Errorf("missing -y file: %v", err)
	}
	_, err = Load(LoadOptions{Getenv: env(missing), Home: home})
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), EnvVar) {
		t.Errorf("missing $%s file: %v", EnvVar, err)
	}
}

// With nothing to find, Load falls back to the embedded default. Needs the
// real profiles package (the default defines profiles).
func TestLoadEmbeddedDefault(t *testing.T) {
	c, err := Load(LoadOptions{Getenv: noEnv, Home: t.TempDir(), Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Embedded || c.File != EmbeddedName {
		t.Errorf("Embedded=%v File=%q", c.Embedded, c.File)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", warningStrings(c))
	}
	if len(c.Clusters) != 1 || c.Clusters[0].Name != "local" || len(c.Clusters[0].Hosts) != 1 {
		t.Fatalf("clusters: %+v", c.Clusters)
	}
	h := c.Clusters[0].Hosts[0]
	if h.Name != "local" || h.Type != hosts.Local || !h.Enabled || h.FFmpeg != "ffmpeg" {
		t.Errorf("local host = %+v", h)
	}
	if c.FFmpeg != "ffmpeg" || !c.Automap || !reflect.DeepEqual(c.MediaExtensions, DefaultMediaExtensions) {
		t.Errorf("globals: ffmpeg=%q automap=%v exts=%v", c.FFmpeg, c.Automap, c.MediaExtensions)
	}
	for _, name := range []string{"hevc", "h264", "av1", "copy"} {
		p, err := c.Profile(name)
		if err != nil {
			t.Errorf("Profile(%s): %v", name, err)
			continue
		}
		if p.Extension != ".mkv" {
			t.Errorf("%s: extension %q", name, p.Extension)
		}
	}
	_, err = c.Profile("hvec")
	if err == nil || !strings.Contains(err.Error(), `unknown profile "hvec"`) || !strings.Contains(err.Error(), "did you mean hevc?") ||
		!strings.Contains(err.Error(), "hevc, h264, av1, copy") {
		t.Errorf("Profile(hvec): %v", err)
	}
}

func TestLoadNoConfigSection(t *testing.T) {
	for _, body := range []string{"", "# only a comment\n", "{}\n"} {
		c, err := loadString(t, body, true)
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Error(), "test.yml:1:1: config: no config: section") {
			t.Errorf("%q: warnings %v", body, warningStrings(c))
		}
		if c.FFmpeg != "ffmpeg" || len(c.Clusters) != 0 || !c.Automap {
			t.Errorf("%q: defaults not applied: %+v", body, c)
		}
	}
}

func TestLoadGlobalKeys(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "t.yml", `config:
  ffmpeg: /usr/bin/ffmpeg
  default_queue_file: ~/queue.txt
  fls_path: ~/fast
  automap: Off
  queues: {cuda: 2, qsv: 1}
  media_extensions: [MKV, mp4, .Ts mts]
`)
	c, err := Load(LoadOptions{Path: p, Getenv: noEnv, Home: "/home/u", Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.DefaultQueueFile != "/home/u/queue.txt" || c.FLSPath != "/home/u/fast" || c.Automap || c.FFmpeg != "/usr/bin/ffmpeg" {
		t.Errorf("globals: %+v", c)
	}
	if !reflect.DeepEqual(c.Queues, []hosts.QueueSlots{{Queue: "cuda", Slots: 2}, {Queue: "qsv", Slots: 1}}) {
		t.Errorf("queues: %v", c.Queues)
	}
	if !reflect.DeepEqual(c.MediaExtensions, []string{".mkv", ".mp4", ".ts", ".mts"}) {
		t.Errorf("media_extensions: %v", c.MediaExtensions)
	}
	if c.FFprobe == "" {
		t.Error("FFprobe not set")
	}
}

func TestLoadFFprobeBesideFFmpeg(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ffmpeg", "ffprobe"} {
		writeFile(t, dir, f, "#!/bin/sh\n")
	}
	p := writeFile(t, dir, "t.yml", "config:\n  ffmpeg: "+filepath.Join(dir, "ffmpeg")+"\n")
	c, err := Load(LoadOptions{Path: p, Getenv: noEnv, Home: dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.FFprobe != filepath.Join(dir, "ffprobe") {
		t.Errorf("FFprobe = %q", c.FFprobe)
	}
}

// Every validation error names file:line:col and the key.
func TestLoadErrorsArePositioned(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"top level not a map", "- a\n- b\n", "test.yml:1:1: expected a mapping"},
		{"config not a map", "config: [a]\n", "test.yml:1:9: config: expected a mapping"},
		{"automap", "config:\n  automap: maybe\n", "test.yml:2:12: config.automap: expected yes/no"},
		{"queue slots", "config:\n  queues:\n    cuda: -1\n", "test.yml:3:11: config.queues.cuda: queue slots must be 0 or more"},
		{"queue word", "config:\n  queues:\n    cuda: two\n", "test.yml:3:11: config.queues.cuda: expected a whole number"},
		{"ffmpeg list", "config:\n  ffmpeg: [a, b]\n", "test.yml:2:11: config.ffmpeg: expected a single value"},
		{"no extensions", "config:\n  media_extensions: []\n", "test.yml:2:21: config.media_extensions: lists no extensions"},
		{"clusters list", "config:\n  clusters: [a]\n", "test.yml:2:13: config.clusters: expected a mapping"},
		{"cluster hosts list", "config:\n  clusters:\n    c: [a]\n", "test.yml:3:8: config.clusters.c: expected a mapping"},
		{"agent host", "config:\n  clusters:\n    c:\n      fam:\n        type: agent\n",
			"test.yml:5:15: config.clusters.c.fam.type: type agent is refused"},
		{"host without ip", "config:\n  clusters:\n    c:\n      box:\n        type: streaming\n        working_dir: /tmp\n",
			"test.yml:4:7: config.clusters.c.box.ip: streaming host box needs ip"},
		{"fixed profile undefined", "config:\n  clusters:\n    c:\n      box:\n        type: local\n        profile: hevc\n",
			`test.yml:6:18: config.clusters.c.box.profile: host box uses profile "hevc", which is not defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadString(t, tc.body, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadHostProfilesListWarns(t *testing.T) {
	c, err := loadString(t, "config:\n  clusters:\n    c:\n      box:\n        type: local\n        profiles:\n          - hevc\n", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 2 || !strings.Contains(c.Warnings[1].Error(), `test.yml:7:13: config.clusters.c.box.profiles: profile "hevc" is not defined`) {
		t.Errorf("warnings: %v", warningStrings(c))
	}
}

func TestLoadSameHostInTwoClusters(t *testing.T) {
	const tmpl = `config:
  clusters:
    all:
      nas: {type: mounted, ip: 10.0.0.5, user: enc}
      gpu: {type: streaming, ip: 10.0.0.6, working_dir: /tmp}
    storage:
      nas: {%s}
`
	c, err := loadString(t, fmt.Sprintf(tmpl, "type: mounted, ip: 10.0.0.5, user: enc, status: disabled"), true)
	if err != nil {
		t.Fatalf("agreeing definitions: %v", err)
	}
	if got := c.HostNames(); !reflect.DeepEqual(got, []string{"nas", "gpu"}) {
		t.Errorf("HostNames = %v", got)
	}
	if cl, _ := c.Cluster("storage"); len(cl.Hosts) != 1 || cl.Hosts[0].Cluster != "storage" {
		t.Errorf("storage cluster: %+v", cl)
	}

	for _, tc := range []struct{ second, want string }{
		{"type: mounted, ip: 10.0.0.7, user: enc", `different ip ("10.0.0.5" vs "10.0.0.7")`},
		{"type: mounted, ip: 10.0.0.5, user: root", `different user ("enc" vs "root")`},
		{"type: mounted, ip: 10.0.0.5, user: enc, port: 2222", "different port (0 vs 2222)"},
		{"type: local", "different type (mounted vs local)"},
	} {
		_, err := loadString(t, fmt.Sprintf(tmpl, tc.second), false)
		if err == nil || !strings.Contains(err.Error(), "test.yml:7:7: config.clusters.storage.nas: host nas is also defined at") ||
			!strings.Contains(err.Error(), "test.yml:4 (cluster all)") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v", tc.second, err)
		}
	}
}

// --- Tests below load files with profiles: they need the real profiles package. ---

func TestLoadPytranscoder227(t *testing.T) {
	c := mustLoad(t, "pytranscoder-2.2.7.yml")
	f := fixtures + "pytranscoder-2.2.7.yml"
	checkWarnings(t, c, []string{
		f + ":73:5: profiles.base.subtitle: pytranscoder 2.2.7 never moved the default subtitle",
		f + ":142:5: templates.qsv_tmpl.subtitle-lang: pytranscoder 2.2.7 never moved the default subtitle",
		f + ":6:3: config.ssh: ssh is ignored by clustertx (",
		f + ":27:9: config.clusters.household.macpro.profiles: pytranscoder 2.2.5-2.2.7 never read a host's profiles: list",
	})

	if c.FFmpeg != "/usr/bin/ffmpeg" || c.DefaultQueueFile != "/volume1/queue.txt" || c.FLSPath != "/mnt/fast" || !c.Automap {
		t.Errorf("globals: %+v", c)
	}
	if !reflect.DeepEqual(c.Queues, []hosts.QueueSlots{{Queue: "qsv", Slots: 1}, {Queue: "cuda", Slots: 2}}) {
		t.Errorf("queues: %v", c.Queues)
	}
	if got := c.HostNames(); !reflect.DeepEqual(got, []string{"mediacenter", "macpro", "gamer", "winpc"}) {
		t.Errorf("hosts: %v", got)
	}
	if h := host(t, c, "household", "mediacenter"); h.Type != hosts.Local || !h.Enabled || h.FFmpeg != "/usr/bin/ffmpeg" || h.Slots != 1 {
		t.Errorf("mediacenter = %+v", h)
	}
	mac := host(t, c, "household", "macpro")
	if mac.Type != hosts.Mounted || mac.OS != "macos" || mac.User != "sshuser" ||
		!reflect.DeepEqual(mac.PathSubs, []hosts.PathSub{{Src: "/volume1/media/", Dst: "/media/"}}) ||
		!reflect.DeepEqual(mac.Profiles, []string{"hevc", "h264"}) {
		t.Errorf("macpro = %+v", mac)
	}
	gamer := host(t, c, "household", "gamer")
	if gamer.Type != hosts.Streaming || gamer.WorkingDir != `c:\temp` || !gamer.Windows() ||
		!reflect.DeepEqual(gamer.Queues, []hosts.QueueSlots{{Queue: "qsv", Slots: 1}, {Queue: "cuda", Slots: 2}}) {
		t.Errorf("gamer = %+v", gamer)
	}
	winpc := host(t, c, "household", "winpc")
	if winpc.Enabled || len(winpc.PathSubs) != 3 || winpc.PathSubs[1] != (hosts.PathSub{Src: "/mnt/merger/media/video/", Dst: `m:video\`}) {
		t.Errorf("winpc = %+v", winpc)
	}

	if got := c.Profiles.Names(); len(got) != 9 {
		t.Errorf("profiles and templates: %v", got)
	}
	for _, name := range []string{"hevc_cuda", "mp3_hq", "qsv_tmpl"} {
		if _, err := c.Profile(name); err != nil {
			t.Error(err)
		}
	}
	if p, _ := c.Profile("hevc_cuda"); p != nil && p.Queue != "cuda" {
		t.Errorf("hevc_cuda queue %q", p.Queue)
	}
	if len(c.Rules) != 6 || !c.Rules[0].Skip || c.Rules[5].Profile != "hevc_cuda" {
		t.Errorf("rules: %+v", c.Rules)
	}
}

func TestLoadSeedDoc(t *testing.T) {
	dir := t.TempDir()
	c, err := Load(LoadOptions{Path: fixtures + "seed-doc.yml", Getenv: noEnv, Home: dir})
	if err != nil {
		t.Fatal(err)
	}
	checkWarnings(t, c, []string{fixtures + "seed-doc.yml:9:3: config.plex_server: plex_server is ignored by clustertx ("})
	if c.DefaultQueueFile != filepath.Join(dir, "transcode-queue.txt") {
		t.Errorf("default_queue_file = %q", c.DefaultQueueFile)
	}
	mac := host(t, c, "household", "macpro")
	if mac.Profile != "hevc" || mac.Type != hosts.Mounted || !mac.Enabled ||
		!reflect.DeepEqual(mac.PathSubs, []hosts.PathSub{{Src: "/volume1/media/", Dst: "/media/"}}) {
		t.Errorf("macpro = %+v", mac)
	}
	w := host(t, c, "walkthrough", "workstation")
	if w.Profile != "qsv" || !w.Enabled || w.PathSubs[0].Dst != "/mnt/media/" {
		t.Errorf("workstation = %+v", w)
	}
	s := host(t, c, "walkthrough", "shared")
	if s.Profile != "hevc_cuda" || s.Type != hosts.Streaming || s.WorkingDir != "/tmp" {
		t.Errorf("shared = %+v", s)
	}
	if got := c.ClusterNames(); !reflect.DeepEqual(got, []string{"household", "walkthrough"}) {
		t.Errorf("clusters: %v", got)
	}
}

// The documented example must load under --strict with no warning but the
// ones that say where it uses clustertx's meaning of a pytranscoder key.
func TestExampleLoadsStrictWithoutWarnings(t *testing.T) {
	c, err := Load(LoadOptions{Path: "../transcode.yml.example", Strict: true, Getenv: noEnv, Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var other []string
	compat := 0
	for _, w := range c.Warnings {
		if w.Compat {
			compat++
		} else {
			other = append(other, w.Error())
		}
	}
	if len(other) != 0 || compat != 6 {
		t.Errorf("want only the 6 compatibility warnings (subtitle default twice, template *lang, path '!', host profiles:, profile automap); got:\n%s",
			strings.Join(warningStrings(c), "\n"))
	}
	if len(c.Clusters) == 0 || len(c.Rules) == 0 || len(c.Profiles.Names()) == 0 {
		t.Errorf("example defines too little: %d clusters, %d rules, %v profiles", len(c.Clusters), len(c.Rules), c.Profiles.Names())
	}
	types := map[hosts.Type]bool{}
	var disabled, fixed, win bool
	for _, cl := range c.Clusters {
		for _, h := range cl.Hosts {
			types[h.Type] = true
			disabled = disabled || !h.Enabled
			fixed = fixed || h.Profile != ""
			win = win || h.Windows()
		}
	}
	if len(types) != 3 || !disabled || !fixed || !win {
		t.Errorf("example lacks a host kind: types=%v disabled=%v fixed-profile=%v windows=%v", types, disabled, fixed, win)
	}
}

// Each deliberate difference from pytranscoder that a config can show is
// one warning at load, naming file:line, what pytranscoder did and what
// clustertx does. None of these warned on main.
func TestCompatWarningsAtLoad(t *testing.T) {
	c, err := loadString(t, `profiles:
  hevc:
    extension: .mkv
    automap: no
  copy:
    extension: .mkv
    automap: yes
rules:
  'not anime':
    profile: hevc
    criteria:
      path: '!/anime/'
config:
  clusters:
    home:
      a:
        type: local
        status: Enabled
        profiles: [hevc]
      b:
        type: local
        status: enabled
`, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`test.yml:12:13: rules.not anime.criteria.path: pytranscoder ignored the leading ! and matched the paths that contain "/anime/"; clustertx negates it`,
		`test.yml:18:17: config.clusters.home.a.status: pytranscoder disabled this host (only the exact word enabled enables one); clustertx reads "Enabled" as enabled`,
		`test.yml:19:9: config.clusters.home.a.profiles: pytranscoder 2.2.5-2.2.7 never read a host's profiles: list and sent it any job of its queues; clustertx enforces it`,
		`test.yml:4:14: profiles.hevc.automap: pytranscoder 2.2.6+ ignored a profile's automap and used config.automap (yes); clustertx honours it`,
	}
	got := warningStrings(c)
	if len(got) != len(want) {
		t.Fatalf("got %d warnings, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) || !c.Warnings[i].Compat {
			t.Errorf("warning %d:\n got %s\nwant %s", i, got[i], w)
		}
	}
	if h := host(t, c, "home", "a"); !h.Enabled {
		t.Error("status: Enabled should enable the host")
	}
}
