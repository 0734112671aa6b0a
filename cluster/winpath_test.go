package cluster_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"clustertx/cluster"
	"clustertx/config"
	"clustertx/internal/testenv"
)

// Issue 13 item 9: a '\' in a Linux file name became a folder separator on
// an os: win10 mounted host, which was then given another file's path. The
// plan now leaves that host out for that file and says why; files with
// ordinary names still go to it. PlanFiles contacts no host.
func TestPlanRefusesWindowsHostForUnrepresentableName(t *testing.T) {
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	yml := filepath.Join(dir, "transcode.yml")
	os.WriteFile(yml, []byte(`config:
  clusters:
    home:
      winpc:
        type: mounted
        os: win10
        ip: 192.0.2.61
        user: mark
        ffmpeg: 'c:\ffmpeg\bin\ffmpeg.exe'
        path-substitutions:
          - '`+dir+`/ m:\media\'
profiles:
  h264:
    output_options: -c:v libx264 -preset ultrafast
    extension: .mkv
rules:
  all:
    profile: h264
    criteria:
      runtime: '>0'
`), 0o644)
	cfg, err := config.Load(config.LoadOptions{Path: yml})
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, `a\b.mp4`)
	good := filepath.Join(dir, "ok.mp4")
	testenv.MakeClip(t, bad, testenv.Clip{Seconds: 1})
	testenv.MakeClip(t, good, testenv.Clip{Seconds: 1})
	opts := cluster.Options{Config: cfg}
	plan, err := cluster.PlanFiles(context.Background(), opts, []cluster.WorkItem{{Path: bad, Cluster: "home"}, {Path: good, Cluster: "home"}})
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]*cluster.Job{}
	for _, j := range plan.Jobs {
		byPath[j.Item.Path] = j
	}
	b, g := byPath[bad], byPath[good]
	if b == nil || g == nil {
		t.Fatalf("jobs %v", plan.Jobs)
	}
	if len(b.Eligible) != 0 || !strings.Contains(b.Excluded["winpc"], "folder separator") {
		t.Errorf(`a\b.mp4: eligible %v, excluded %q; want winpc refused because of the '\'`, names(b.Eligible), b.Excluded)
	}
	if b.Outcome != cluster.NotRun || !strings.Contains(b.Reason, "winpc") {
		t.Errorf(`a\b.mp4: outcome %s %q`, b.Outcome, b.Reason)
	}
	if len(g.Eligible) != 1 || g.Eligible[0].Name != "winpc" {
		t.Errorf("ok.mp4: eligible %v, excluded %v", names(g.Eligible), g.Excluded)
	}
	var buf bytes.Buffer
	cluster.WritePlan(&buf, opts, plan)
	if text := buf.String(); !strings.Contains(text, `m:\media\ok.mp4`) || strings.Contains(text, `m:\media\a\b.mp4`) {
		t.Errorf("dry run text:\n%s", text)
	}
}
