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
	"clustertx/hosts"
	"clustertx/internal/testenv"
)

// The plan of a realistic pytranscoder 2.2.7 config, on real generated
// files. Its hosts sit at private addresses, so nothing here may contact
// them: PlanFiles talks to no host.
func TestPlanOfPytranscoder227Config(t *testing.T) {
	testenv.NeedFFmpeg(t)
	cfg, err := config.Load(config.LoadOptions{Path: "../testdata/configs/pytranscoder-2.2.7.yml"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	anime := filepath.Join(dir, "anime", "show.mkv")
	os.MkdirAll(filepath.Dir(anime), 0o755)
	testenv.MakeClip(t, anime, testenv.Clip{Seconds: 2, AudioLangs: []string{"jpn", "eng"}, SubLangs: []string{"eng"}})
	film := filepath.Join(dir, "film.mkv")
	testenv.MakeClip(t, film, testenv.Clip{Seconds: 2, AudioLangs: []string{"spa", "eng", "fre"}, SubLangs: []string{"spa", "eng"}})
	done := filepath.Join(dir, "done.mkv")
	testenv.MakeClip(t, done, testenv.Clip{Seconds: 1, VCodec: "libx265"})
	broken := filepath.Join(dir, "broken.mkv")
	os.WriteFile(broken, []byte("garbage"), 0o644)

	opts := cluster.Options{Config: cfg}
	items := []cluster.WorkItem{
		{Path: anime, Cluster: "household"},
		{Path: film, Cluster: "household"},
		{Path: done, Cluster: "household"},
		{Path: broken, Cluster: "household"},
		{Path: film, Cluster: "household", Profile: "hevc_cuda", Mixins: []string{"mp3_hq"}}, // same file twice: planned once
	}
	plan, err := cluster.PlanFiles(context.Background(), opts, items)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Jobs) != 4 {
		t.Fatalf("%d jobs, want 4 (a file named twice is planned once)", len(plan.Jobs))
	}
	byPath := map[string]*cluster.Job{}
	for _, j := range plan.Jobs {
		byPath[j.Item.Path] = j
	}

	a := byPath[anime]
	if a.Rule != "anime" || a.Profile.Name != "hevc_cuda_anime" {
		t.Errorf("anime: rule %q profile %v", a.Rule, a.Profile)
	}
	// include chain hevc_cuda_anime → hevc_cuda → base cuda: child wins by flag.
	video := strings.Join(a.Profile.Video.Args(), " ")
	if !strings.Contains(video, "-b:v 3000K") || strings.Contains(video, "-b:v 7M") || !strings.Contains(video, "-c:v hevc_nvenc") {
		t.Errorf("anime video section after includes: %s", video)
	}
	// queue cuda: only gamer serves it (mediacenter serves _default,
	// macpro cannot see a file outside /volume1/media, winpc is disabled).
	if len(a.Eligible) != 1 || a.Eligible[0].Name != "gamer" {
		t.Errorf("anime eligible = %v", names(a.Eligible))
	}

	f := byPath[film]
	if f.Rule != "default" || f.Profile.Name != "hevc_cuda" {
		t.Errorf("film: rule %q profile %v", f.Rule, f.Profile)
	}
	plan2, _ := f.Profile.Plan(f.Info, cfg.Automap)
	out := strings.Join(plan2.Out, " ")
	// base: audio and subtitles include eng only, eng default.
	// Streams: 0 video, 1 spa, 2 eng, 3 fre, 4 sub spa, 5 sub eng.
	for _, want := range []string{"-map 0:0", "-map 0:2", "-map 0:5", "-disposition:a:0 default", "-c:a ac3", "-b:a 768k", "-f matroska"} {
		if !strings.Contains(out, want) {
			t.Errorf("film args lack %q: %s", want, out)
		}
	}
	for _, bad := range []string{"-map 0:1", "-map 0:3", "-map 0:4"} {
		if strings.Contains(out+" ", bad+" ") {
			t.Errorf("film args keep %q: %s", bad, out)
		}
	}

	d := byPath[done]
	if d.Outcome != cluster.Skipped || !strings.Contains(d.Reason, "skip video if already encoded") {
		t.Errorf("hevc source: %s %s", d.Outcome, d.Reason)
	}
	b := byPath[broken]
	if b.Outcome != cluster.Failed || !strings.Contains(b.Reason, "cannot probe") {
		t.Errorf("broken: %s %s", b.Outcome, b.Reason)
	}

	// Mixins apply in cluster mode (pytranscoder dropped them with -c).
	plan3, err := cluster.PlanFiles(context.Background(), opts, items[4:])
	if err != nil {
		t.Fatal(err)
	}
	m := plan3.Jobs[0]
	if m.Rule != "" || !strings.Contains(strings.Join(m.Profile.Audio.Args(), " "), "-c:a libmp3lame") {
		t.Errorf("mixin not applied: rule %q audio %v", m.Rule, m.Profile.Audio.Args())
	}

	// The dry-run text shows the Windows streaming host's remote paths and command.
	var buf bytes.Buffer
	cluster.WritePlan(&buf, opts, plan)
	text := buf.String()
	for _, want := range []string{"rule:     anime", "profile:  hevc_cuda_anime", `c:\temp\clustertx-`, "upload", "c:/ffmpeg/bin/ffmpeg", "outcome:  skipped"} {
		if !strings.Contains(text, want) {
			t.Errorf("plan text lacks %q:\n%s", want, text)
		}
	}
}

func TestPlanSeedDocConfig(t *testing.T) {
	testenv.NeedFFmpeg(t)
	cfg, err := config.Load(config.LoadOptions{Path: "../testdata/configs/seed-doc.yml"})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, w := range cfg.Warnings {
		b.WriteString(w.Error() + "\n")
	}
	t.Log(b.String())
	src := filepath.Join(t.TempDir(), "x.mkv")
	testenv.MakeClip(t, src, testenv.Clip{Seconds: 1})
	var clusterName string
	for _, c := range cfg.Clusters {
		clusterName = c.Name
		break
	}
	plan, err := cluster.PlanFiles(context.Background(), cluster.Options{Config: cfg}, []cluster.WorkItem{{Path: src, Cluster: clusterName, Profile: firstProfile(cfg)}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	cluster.WritePlan(&buf, cluster.Options{Config: cfg}, plan)
	// Seed-doc hosts have a fixed profile; the dry run says which one each uses.
	if !strings.Contains(buf.String(), ", profile ") {
		t.Errorf("dry run does not show the hosts' fixed profiles:\n%s", buf.String())
	}
}

func firstProfile(cfg *config.Config) string {
	for _, n := range cfg.Profiles.Names() {
		if p, _ := cfg.Profiles.Get(n); p.Validate() == nil {
			return n
		}
	}
	return ""
}

func names(defs []*hosts.Def) []string {
	var out []string
	for _, d := range defs {
		out = append(out, d.Name)
	}
	return out
}
