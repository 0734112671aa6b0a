package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"clustertx/cluster"
	"clustertx/internal/testenv"
	"clustertx/media"
)

func TestSplitArgsSticky(t *testing.T) {
	p, err := splitArgs([]string{"-v", "a.mkv", "-c", "A", "-p", "hevc", "b.mkv", "--host", "nas", "-m", "x,y", "c.mkv",
		"-c=B", "--from-file", "q.txt", "-y", "cfg.yml", "--", "-d.mkv"}, globalFlags())
	if err != nil {
		t.Fatal(err)
	}
	want := []cluster.WorkItem{
		{Path: "a.mkv"},
		{Path: "b.mkv", Cluster: "A", Profile: "hevc"},
		{Path: "c.mkv", Cluster: "A", Profile: "hevc", Mixins: []string{"x", "y"}},
		{Path: "-d.mkv", Cluster: "B", Profile: "hevc", Mixins: []string{"x", "y"}},
	}
	if len(p.items) != len(want) {
		t.Fatalf("items = %+v", p.items)
	}
	for i, w := range want {
		got := p.items[i]
		if len(got.Mixins) == 0 {
			got.Mixins = nil
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("item %d = %+v, want %+v", i, got, w)
		}
	}
	if got := strings.Join(p.global, " "); got != "-v --host nas -y cfg.yml" {
		t.Errorf("global = %q", got)
	}
	if len(p.fromFiles) != 1 || p.fromFiles[0].path != "q.txt" || p.fromFiles[0].state.cluster != "B" {
		t.Errorf("from-file = %+v", p.fromFiles)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"-c"}, {"--no-such-flag", "a.mkv"}, {"--max-attempts", "x", "a.mkv"}} {
		var out, errb bytes.Buffer
		err := Run(context.Background(), append([]string{"clustertx"}, args...), &out, &errb)
		if Code(err) != ExitUsage {
			t.Errorf("%v: code %d (%v), want %d", args, Code(err), err, ExitUsage)
		}
	}
}

func TestHelpExitsZero(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), []string{"clustertx", "--help"}, &out, &out)
	if err != nil || !strings.Contains(out.String(), "--dry-run") || !strings.Contains(out.String(), "--cluster NAME, -c NAME") {
		t.Fatalf("err=%v help=\n%s", err, out.String())
	}
}

// freshHome makes the test look like a fresh machine: no ~/.transcode.yml,
// no $CLUSTERTX_CONFIG, so the embedded default config applies.
func freshHome(t *testing.T) string {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_STATE_HOME", filepath.Join(home, ".state"))
	t.Setenv("CLUSTERTX_CONFIG", "")
	os.Unsetenv("CLUSTERTX_CONFIG")
	return home
}

func TestEmbeddedDefaultEncodesLocally(t *testing.T) {
	testenv.NeedFFmpeg(t)
	freshHome(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "movie.mp4")
	testenv.MakeClip(t, src, testenv.Clip{Seconds: 2, AudioLangs: []string{"eng"}})
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"clustertx", "-p", "hevc", src}, &out, &errb)
	if err != nil {
		t.Fatalf("err=%v\n%s\n%s", err, out.String(), errb.String())
	}
	dst := filepath.Join(dir, "movie.mkv")
	info, perr := (&media.Prober{FFprobe: "ffprobe"}).Probe(context.Background(), dst)
	if perr != nil || info.VCodec() != "hevc" || len(info.Audio) != 1 {
		t.Fatalf("output: %v %+v", perr, info)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Error("source not removed after a verified output")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the output", len(entries))
	}
}

func TestExitCodeThreeWhenAFileFails(t *testing.T) {
	testenv.NeedFFmpeg(t)
	freshHome(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mkv")
	testenv.MakeClip(t, good, testenv.Clip{Seconds: 1})
	bad := filepath.Join(dir, "bad.mkv")
	os.WriteFile(bad, []byte("not a video at all"), 0o644)
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"clustertx", "-p", "copy", good, bad, filepath.Join(dir, "missing.mkv")}, &out, &errb)
	if Code(err) != ExitIncomplete {
		t.Fatalf("code %d (%v), want 3\n%s", Code(err), err, out.String())
	}
	if !strings.Contains(out.String(), "no such file") || !strings.Contains(out.String(), "cannot probe") {
		t.Errorf("summary should give reasons:\n%s", out.String())
	}
	if data, _ := os.ReadFile(bad); string(data) != "not a video at all" {
		t.Error("bad input was modified")
	}
}

func TestUnknownClusterIsFatal(t *testing.T) {
	freshHome(t)
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"clustertx", "-c", "nope", "x.mkv"}, &out, &errb)
	if Code(err) != ExitFatal || !strings.Contains(err.Error(), `cluster "nope" not found`) {
		t.Fatalf("code %d err %v", Code(err), err)
	}
}

func TestConfigErrorIsFatalWithPosition(t *testing.T) {
	freshHome(t)
	cfg := filepath.Join(t.TempDir(), "t.yml")
	os.WriteFile(cfg, []byte("config:\n  clusters:\n    c:\n      h:\n        type: agent\n        ip: 1.2.3.4\n"), 0o644)
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"clustertx", "-y", cfg, "-c", "c", "x.mkv"}, &out, &errb)
	if Code(err) != ExitFatal || !strings.Contains(err.Error(), cfg+":5:") || !strings.Contains(err.Error(), "streaming") {
		t.Fatalf("code %d err %v", Code(err), err)
	}
}

func TestQueueFileCleanup(t *testing.T) {
	testenv.NeedFFmpeg(t)
	freshHome(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mkv")
	testenv.MakeClip(t, good, testenv.Clip{Seconds: 1})
	missing := filepath.Join(dir, "missing.mkv")
	q := filepath.Join(dir, "queue.txt")
	os.WriteFile(q, []byte("# nightly\n"+good+"\n\n"+missing+"\n"), 0o600)
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"clustertx", "-p", "copy", "--from-file", q}, &out, &errb)
	if Code(err) != ExitIncomplete {
		t.Fatalf("code %d (%v)\n%s", Code(err), err, out.String())
	}
	data, _ := os.ReadFile(q)
	if strings.Contains(string(data), good) || !strings.Contains(string(data), missing) || !strings.Contains(string(data), "# nightly") {
		t.Errorf("queue file after run:\n%s", data)
	}
	if st, _ := os.Stat(q); st.Mode().Perm() != 0o600 {
		t.Errorf("queue file mode changed to %v", st.Mode())
	}
}

func TestDefaultQueueFileWhenNoFilesGiven(t *testing.T) {
	testenv.NeedFFmpeg(t)
	freshHome(t)
	dir := t.TempDir()
	a := filepath.Join(dir, "a.mkv")
	testenv.MakeClip(t, a, testenv.Clip{Seconds: 1})
	q := filepath.Join(dir, "queue.txt")
	os.WriteFile(q, []byte(a+"\n"), 0o644)
	cfg := filepath.Join(dir, "t.yml")
	os.WriteFile(cfg, []byte("config:\n  default_queue_file: "+q+"\nprofiles:\n  remux:\n    output_options: -c copy\n    extension: .mkv\nrules:\n  all:\n    profile: remux\n"), 0o644)
	var out, errb bytes.Buffer
	if err := Run(context.Background(), []string{"clustertx", "-y", cfg}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s%s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "1 done") {
		t.Errorf("summary:\n%s", out.String())
	}
	if data, _ := os.ReadFile(q); strings.TrimSpace(string(data)) != "" {
		t.Errorf("finished entry still in the queue file: %q", data)
	}
}

func TestDryRunEmbeddedDefaultWritesNothing(t *testing.T) {
	testenv.NeedFFmpeg(t)
	home := freshHome(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "some.mkv")
	testenv.MakeClip(t, src, testenv.Clip{Seconds: 1})
	before, _ := os.ReadFile(src)
	var out, errb bytes.Buffer
	if err := Run(context.Background(), []string{"clustertx", "--dry-run", "-p", "hevc", src}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	for _, want := range []string{"local", "profile:  hevc", "libx265", "planned"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, out.String())
		}
	}
	after, _ := os.ReadFile(src)
	entries, _ := os.ReadDir(dir)
	homeEntries, _ := os.ReadDir(home)
	if !bytes.Equal(before, after) || len(entries) != 1 || len(homeEntries) != 0 { // no journal either
		t.Errorf("dry run wrote something: %v %v", entries, homeEntries)
	}
}
