package hosts

import (
	"reflect"
	"strings"
	"testing"

	"clustertx/internal/yamlx"
)

// decodeHosts decodes every host of a YAML mapping written as the body of
// config.clusters.home, so that positions are those of src.
func decodeHosts(t *testing.T, strict bool, src string) ([]*Def, []*yamlx.Warning, error) {
	t.Helper()
	d := &yamlx.Decoder{File: "test.yml", Strict: strict}
	root, err := d.Parse([]byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	pairs, err := d.Mapping(root, "config.clusters.home")
	if err != nil {
		t.Fatalf("mapping: %v", err)
	}
	var defs []*Def
	for _, p := range pairs {
		def, err := DecodeHostHome(d, "home", p, "/home/enc")
		if err != nil {
			return defs, d.Warnings, err
		}
		defs = append(defs, def)
	}
	return defs, d.Warnings, nil
}

func mustDecode(t *testing.T, src string) ([]*Def, []*yamlx.Warning) {
	t.Helper()
	defs, warns, err := decodeHosts(t, false, src)
	if err != nil {
		t.Fatalf("DecodeHost: %v", err)
	}
	return defs, warns
}

// The 2.2.x form, from pytranscoder's Cluster.md and cluster-sample.yml.
func TestDecodeHost227Form(t *testing.T) {
	defs, warns := mustDecode(t, `
mediacenter:
  type: local
  ffmpeg:         '/usr/bin/ffmpeg'
  status:          'enabled'
macpro:
  type:  mounted
  os:    macos
  ip:    192.168.2.65
  user:  sshuser
  ffmpeg:      '/usr/bin/ffmpeg'
  working_dir: /tmp
  path-substitutions:
    - /volume1/media/ /media/
  profiles:
    - hevc
    - h264 av1
  status: 'enabled'
gamer:
  type:   streaming
  os:     win10
  ip:     192.168.2.64
  user:   matt
  working_dir: 'c:\temp'
  ffmpeg:      'c:/ffmpeg/bin/ffmpeg'
  queues:
    qsv: 1
    cuda: 2
  status: 'enabled'
winpc:
  os: win10
  type: mounted
  ip: 192.168.2.61
  user: mark
  ffmpeg: 'c:\ffmpeg\bin\ffmpeg.exe'
  queues:
    qsv: 1
  working_dir: 'c:\temp'
  path-substitutions:
    - '/mnt/merger/media/video/Television/ m:video\Television\'
    - '/mnt/merger/media/video/ m:video\'
    - '/mnt/downloads/ z:\'
  status: disabled
`)
	// The one warning: pytranscoder never read profiles:, clustertx does.
	if len(warns) != 1 || !warns[0].Compat || !strings.Contains(warns[0].Error(), "config.clusters.home.macpro.profiles: pytranscoder 2.2.5-2.2.7 never read") {
		t.Errorf("warnings: %v", warns)
	}
	want := []*Def{
		{Name: "mediacenter", Cluster: "home", Type: Local, Enabled: true, OS: localOS(), FFmpeg: "/usr/bin/ffmpeg", Slots: 1, Pos: "test.yml:2"},
		{Name: "macpro", Cluster: "home", Type: Mounted, Enabled: true, Address: "192.168.2.65", User: "sshuser", OS: "macos",
			FFmpeg: "/usr/bin/ffmpeg", PathSubs: []PathSub{{"/volume1/media/", "/media/"}}, Slots: 1,
			Profiles: []string{"hevc", "h264", "av1"}, Pos: "test.yml:6"},
		{Name: "gamer", Cluster: "home", Type: Streaming, Enabled: true, Address: "192.168.2.64", User: "matt", OS: "win10",
			FFmpeg: "c:/ffmpeg/bin/ffmpeg", WorkingDir: `c:\temp`, Queues: []QueueSlots{{"qsv", 1}, {"cuda", 2}}, Pos: "test.yml:19"},
		{Name: "winpc", Cluster: "home", Type: Mounted, Enabled: false, Address: "192.168.2.61", User: "mark", OS: "win10",
			FFmpeg: `c:\ffmpeg\bin\ffmpeg.exe`, Queues: []QueueSlots{{"qsv", 1}},
			PathSubs: []PathSub{
				{"/mnt/merger/media/video/Television/", `m:video\Television\`},
				{"/mnt/merger/media/video/", `m:video\`},
				{"/mnt/downloads/", `z:\`},
			}, Pos: "test.yml:30"},
	}
	if len(defs) != len(want) {
		t.Fatalf("got %d hosts, want %d", len(defs), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(defs[i], want[i]) {
			t.Errorf("host %s:\n got %+v\nwant %+v", want[i].Name, defs[i], want[i])
		}
	}
}

// The older form of the seed cluster docs: one path-substitution map and a
// fixed profile per host; status optional.
func TestDecodeHostSeedDocForm(t *testing.T) {
	defs, warns := mustDecode(t, `
macpro:                   # name of this host
  type: mounted           # shared filesystem
  ip: 192.168.2.65
  user: sshuser
  ffmpeg: '/usr/bin/ffmpeg'
  path-substitution:      # optional
    src: /volume1/media/
    dest: /media/
  profile: hevc           # profile for all encoding on this host
  status: enabled
shared:
  type: streaming
  ip: 192.168.2.64
  user: encodeuser
  working_dir: '/tmp'
  ffmpeg: '/usr/bin/ffmpeg'
  profile: hevc_cuda
`)
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	mac, shared := defs[0], defs[1]
	if mac.Type != Mounted || mac.Profile != "hevc" || !mac.Enabled ||
		!reflect.DeepEqual(mac.PathSubs, []PathSub{{"/volume1/media/", "/media/"}}) {
		t.Errorf("macpro = %+v", mac)
	}
	if shared.Type != Streaming || shared.Profile != "hevc_cuda" || !shared.Enabled || shared.WorkingDir != "/tmp" ||
		shared.OS != "linux" || shared.Slots != 1 {
		t.Errorf("shared = %+v", shared)
	}
}

func TestDecodeHostOurKeysAndDefaults(t *testing.T) {
	defs, warns := mustDecode(t, `
nas:
  type: mounted
  ip: nas-alias
  port: "2222"
  identity_file: ~/.ssh/id_encode
  slots: 3
  path-substitutions: "/srv/media/ /media/"
  profiles: hevc h264
bare:
  type: mounted
  ip: 10.0.0.9
  slots: 0
`)
	if len(warns) != 1 || !strings.Contains(warns[0].Error(), "this host only takes jobs whose profile is hevc, h264") {
		t.Errorf("warnings: %v", warns)
	}
	nas := defs[0]
	if nas.Port != 2222 || nas.IdentityFile != "/home/enc/.ssh/id_encode" || nas.Slots != 3 || nas.User != "" ||
		nas.OS != "linux" || nas.FFmpeg != "ffmpeg" || !nas.Enabled ||
		!reflect.DeepEqual(nas.Profiles, []string{"hevc", "h264"}) ||
		!reflect.DeepEqual(nas.PathSubs, []PathSub{{"/srv/media/", "/media/"}}) {
		t.Errorf("nas = %+v", nas)
	}
	if defs[1].Slots != 0 {
		t.Errorf("explicit slots: 0 became %d", defs[1].Slots)
	}
}

func TestDecodeHostPathSubstitutionForms(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []PathSub
	}{
		{"string list", `path-substitutions: ["/a/ /x/", "/b/ /y/"]`, []PathSub{{"/a/", "/x/"}, {"/b/", "/y/"}}},
		{"one string", `path-substitutions: "/a/  /x/"`, []PathSub{{"/a/", "/x/"}}},
		{"pair items", "path-substitutions:\n    - [/a/, /x/]\n    - '/b/ /y/'", []PathSub{{"/a/", "/x/"}, {"/b/", "/y/"}}},
		{"bare pair", `path-substitutions: [/a/, /x/]`, []PathSub{{"/a/", "/x/"}}},
		{"map items", "path-substitutions:\n    - {src: /a b/, dest: /x/}\n    - {src: /c/, dst: /z/}", []PathSub{{"/a b/", "/x/"}, {"/c/", "/z/"}}},
		{"singular map", "path-substitution:\n    src: /a/\n    dest: /x/", []PathSub{{"/a/", "/x/"}}},
		{"singular list of maps", "path-substitution:\n    - src: /a/\n      dest: /x/\n    - src: /b/\n      dest: /y/", []PathSub{{"/a/", "/x/"}, {"/b/", "/y/"}}},
		{"both keys", "path-substitutions: ['/a/ /x/']\n  path-substitution: {src: /b/, dest: /y/}", []PathSub{{"/a/", "/x/"}, {"/b/", "/y/"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defs, warns := mustDecode(t, "h:\n  type: mounted\n  ip: h\n  "+tc.yaml+"\n")
			if len(warns) != 0 {
				t.Errorf("warnings: %v", warns)
			}
			if !reflect.DeepEqual(defs[0].PathSubs, tc.want) {
				t.Errorf("got %+v, want %+v", defs[0].PathSubs, tc.want)
			}
		})
	}
}

// Every validation error names file:line:col, the key path and the problem.
func TestDecodeHostErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"missing type", "h:\n  ip: 1.2.3.4\n", []string{"test.yml:1:1: config.clusters.home.h: ", "no type"}},
		{"empty host", "h:\n", []string{"test.yml:1:1: config.clusters.home.h: ", "empty host definition"}},
		{"agent", "h:\n  type: agent\n  ip: 1.2.3.4\n",
			[]string{"test.yml:2:9: config.clusters.home.h.type: ", "9567", "unauthenticated", "anyone on the network", "type: streaming", "SSH"}},
		{"unknown type", "h:\n  ip: x\n  type: nfs\n",
			[]string{"test.yml:3:9: config.clusters.home.h.type: ", `unknown host type "nfs"`, "local", "mounted", "streaming"}},
		{"mounted without ip", "h:\n  type: mounted\n", []string{"test.yml:1:1: config.clusters.home.h.ip: ", "needs ip"}},
		{"streaming without ip", "h:\n  type: streaming\n  working_dir: /tmp\n", []string{"test.yml:1:1: config.clusters.home.h.ip: ", "needs ip"}},
		{"streaming without working_dir", "h:\n  type: streaming\n  ip: x\n",
			[]string{"test.yml:1:1: config.clusters.home.h.working_dir: ", "needs working_dir"}},
		{"bad os", "h:\n  type: mounted\n  ip: x\n  os: windows\n",
			[]string{"test.yml:4:7: config.clusters.home.h.os: ", `unknown os "windows"`, "linux, macos or win10"}},
		{"port zero", "h:\n  type: mounted\n  ip: x\n  port: 0\n", []string{"test.yml:4:9: config.clusters.home.h.port: ", "between 1 and 65535"}},
		{"port big", "h:\n  type: mounted\n  ip: x\n  port: 70000\n", []string{"test.yml:4:9: config.clusters.home.h.port: "}},
		{"port word", "h:\n  type: mounted\n  ip: x\n  port: ssh\n", []string{"test.yml:4:9: config.clusters.home.h.port: ", "whole number"}},
		{"negative slots", "h:\n  type: local\n  slots: -1\n", []string{"test.yml:3:10: config.clusters.home.h.slots: ", "0 or more"}},
		{"negative queue", "h:\n  type: local\n  queues:\n    cuda: 1\n    qsv: -2\n",
			[]string{"test.yml:5:10: config.clusters.home.h.queues.qsv: ", "0 or more"}},
		{"path sub three words", "h:\n  type: mounted\n  ip: x\n  path-substitutions:\n    - /a/ /b/ /c/\n",
			[]string{"test.yml:5:7: config.clusters.home.h.path-substitutions[0]: ", "two paths separated by a space"}},
		{"path sub one word", "h:\n  type: mounted\n  ip: x\n  path-substitutions:\n    - /a/\n    - /b/\n    - /c/\n",
			[]string{"test.yml:5:7: config.clusters.home.h.path-substitutions[0]: "}},
		{"path sub missing dest", "h:\n  type: mounted\n  ip: x\n  path-substitution:\n    src: /a/\n",
			[]string{"test.yml:5:5: config.clusters.home.h.path-substitution: ", "needs both src and dest"}},
		{"queues not a map", "h:\n  type: local\n  queues: [a, b]\n", []string{"test.yml:3:11: config.clusters.home.h.queues: ", "expected a mapping"}},
		{"empty encoders", "h:\n  type: local\n  encoders: []\n", []string{"test.yml:3:13: config.clusters.home.h.encoders: ", "at least one encoder"}},
		{"pinned and excluded", "h:\n  type: local\n  encoders: [hevc_qsv, libx265]\n  exclude_encoders: [hevc_qsv]\n",
			[]string{"test.yml:4:21: config.clusters.home.h.exclude_encoders: ", "hevc_qsv is both in encoders:"}},
		{"unknown family", "h:\n  type: local\n  sessions: {nvec: 2}\n",
			[]string{"test.yml:3:14: config.clusters.home.h.sessions.nvec: ", `unknown hardware family "nvec"`, "did you mean nvenc?"}},
		{"zero sessions", "h:\n  type: local\n  sessions:\n    qsv: 0\n",
			[]string{"test.yml:4:10: config.clusters.home.h.sessions.qsv: ", "1 or more", "exclude_encoders"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeHosts(t, false, tc.yaml)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestDecodeHostWarnings(t *testing.T) {
	defs, warns := mustDecode(t, `
old:
  type: mounted
  ip: x
  hbcli: /usr/bin/HandBrakeCLI
  templates: [qsv]
  remote_copy_cmd: scp
  status: "off"
`)
	want := []string{
		"test.yml:5:3: config.clusters.home.old.hbcli: hbcli is ignored",
		"test.yml:6:3: config.clusters.home.old.templates: templates is ignored",
		"test.yml:7:3: config.clusters.home.old.remote_copy_cmd: remote_copy_cmd is ignored",
		`test.yml:8:11: config.clusters.home.old.status: status "off" is neither enabled nor disabled; the host is disabled`,
	}
	if len(warns) != len(want) {
		t.Fatalf("got %d warnings, want %d: %v", len(warns), len(want), warns)
	}
	for i, w := range want {
		if !strings.HasPrefix(warns[i].Error(), w) {
			t.Errorf("warning %d = %q, want prefix %q", i, warns[i], w)
		}
	}
	if defs[0].Enabled {
		t.Error("status: off left the host enabled")
	}

	_, _, err := decodeHosts(t, true, "h:\n  type: local\n  colour: yes\n")
	if err == nil || !strings.Contains(err.Error(), "test.yml:3:3: config.clusters.home.h.colour: unknown key") {
		t.Errorf("strict: err = %v", err)
	}
}

func TestDecodeHostIgnoredSettings(t *testing.T) {
	defs, warns := mustDecode(t, `
local:
  type: local
  working_dir: /tmp
  path-substitutions: ['/a/ /b/']
mounted:
  type: mounted
  ip: x
  working_dir: /tmp
  queues: {cuda: 2}
  slots: 4
`)
	if defs[0].WorkingDir != "" || defs[1].WorkingDir != "" {
		t.Errorf("working_dir kept on non-streaming hosts: %q %q", defs[0].WorkingDir, defs[1].WorkingDir)
	}
	if defs[0].PathSubs != nil {
		t.Errorf("path substitutions kept on a local host: %v", defs[0].PathSubs)
	}
	if defs[1].Slots != 0 || defs[1].SlotCount() != 2 {
		t.Errorf("slots with queues: Slots=%d SlotCount=%d", defs[1].Slots, defs[1].SlotCount())
	}
	// working_dir: silent; path substitution on local and slots with queues: one warning each.
	if len(warns) != 2 || !strings.Contains(warns[0].Error(), "test.yml:5:3:") || !strings.Contains(warns[1].Error(), "test.yml:11:3:") {
		t.Errorf("warnings: %v", warns)
	}
}

func TestExpandHome(t *testing.T) {
	for in, want := range map[string]string{
		"~/.ssh/id": "/h/.ssh/id", "~": "/h", "/abs": "/abs", "rel/~/x": "rel/~/x", "~bob/x": "~bob/x",
	} {
		if got := ExpandHome(in, "/h"); got != want {
			t.Errorf("ExpandHome(%q) = %q, want %q", in, got, want)
		}
	}
}

// encoders: pins a host's variants (only those, the profile's order kept),
// exclude_encoders: forbids some, sessions: caps hardware families.
func TestDecodeHostEncoderKeys(t *testing.T) {
	defs, _ := mustDecode(t, `
gpu:
  type: local
  encoders: [hevc_qsv, libx265]
  sessions: {nvenc: 3, qsv: 2}
box:
  type: local
  exclude_encoders:
    - hevc_vaapi
`)
	gpu, box := defs[0], defs[1]
	if !reflect.DeepEqual(gpu.Encoders, []string{"hevc_qsv", "libx265"}) || gpu.ExcludeEncoders != nil {
		t.Errorf("gpu: encoders %q, exclude %q", gpu.Encoders, gpu.ExcludeEncoders)
	}
	if want := []FamilyCap{{"nvenc", 3}, {"qsv", 2}}; !reflect.DeepEqual(gpu.Sessions, want) {
		t.Errorf("gpu sessions %+v, want %+v", gpu.Sessions, want)
	}
	for _, c := range []struct {
		def       *Def
		enc, want string
	}{
		{gpu, "hevc_qsv", ""},
		{gpu, "libx265", ""},
		{gpu, "hevc_nvenc", "not in its encoders: list"},
		{box, "hevc_vaapi", "exclude_encoders"},
		{box, "hevc_nvenc", ""},
	} {
		got := c.def.EncoderAllowed(c.enc)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s.EncoderAllowed(%s) = %q, want %q", c.def.Name, c.enc, got, c.want)
		}
	}
}
