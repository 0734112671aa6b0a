package cluster_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"clustertx/cluster"
	"clustertx/hosts/hoststest"
	"clustertx/internal/testenv"
	"clustertx/journal"
)

// Issue 16: one profile, every host's best encoder. The hosts' "hardware"
// is hoststest.FakeHW: an ffmpeg wrapper that lists hevc_nvenc and
// hevc_qsv, encodes them with x265 and tags the output with the variant
// asked for, and fails like a real driver when told to.

// variantProfiles is one profile, auto, whose video is a chain: NVENC
// (with its -hwaccel input option), QSV, x265.
const variantProfiles = `
profiles:
  auto:
    output_options: -c:a copy -c:s copy
    extension: .mkv
    crf: 30
    encoders:
      - encoder: hevc_nvenc
        input_options: -hwaccel cuda
        options: -preset p5 -rc vbr
      - encoder: hevc_qsv
        options: -preset veryfast
      - encoder: libx265
        options: -preset ultrafast -x265-params log-level=error
rules:
  default:
    profile: auto
`

func (l *lab) writeVariantConfig(extraProfile string, hostsYAML ...string) {
	var b strings.Builder
	b.WriteString("config:\n  ffmpeg: ffmpeg\n  clusters:\n    lab:\n")
	for _, h := range hostsYAML {
		b.WriteString(h)
	}
	extra := strings.TrimPrefix(strings.TrimPrefix(extraProfile, "\n"), "profiles:\n")
	b.WriteString(strings.Replace(variantProfiles, "rules:\n", extra+"rules:\n", 1))
	l.cfgPath = filepath.Join(l.dir, "transcode.yml")
	must(l.t, os.WriteFile(l.cfgPath, []byte(b.String()), 0o644))
}

// fakeTag is the FAKEHW tag FakeHW puts on a job's output: the variant's
// encoder, "" for an encoder it did not fake.
func fakeTag(t *testing.T, path string) string {
	t.Helper()
	b, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream_tags=FAKEHW", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	return strings.TrimSpace(string(b))
}

func jobEncodes(hw *hoststest.FakeHW, failed bool) map[string]int {
	n := map[string]int{}
	for _, e := range hw.Encodes() {
		if !e.Test && e.Failed == failed {
			n[e.Encoder]++
		}
	}
	return n
}

func testEncodes(hw *hoststest.FakeHW) map[string]int {
	n := map[string]int{}
	for _, e := range hw.Encodes() {
		if e.Test {
			n[e.Encoder]++
		}
	}
	return n
}

// One profile's files spread over hosts that use different variants:
// nas has NVENC; gamer's NVENC fails its test encode, so it falls back to
// QSV; the manager's ffmpeg fakes nothing, so it uses x265. --dry-run says
// so (and why each variant was passed over), and each output was written
// by its host's variant. A second run takes the test results from the
// journal.
func TestVariantsPerHost(t *testing.T) {
	l := newLab(t)
	nasHW, gamerHW := hoststest.NewFakeHW(t), hoststest.NewFakeHW(t)
	gamerHW.FailTest(t, "nvenc", true)
	l.writeVariantConfig("",
		"      manager:\n        type: local\n        fallback: no\n        encoders: [libx265]\n",
		l.nas.YAML("nas", "type: mounted", "ffmpeg: "+nasHW.Path, "path-substitutions:", "  - "+l.media+"/ "+l.view+"/"),
		l.gamer.YAML("gamer", "type: streaming", "ffmpeg: "+gamerHW.Path, "working_dir: "+l.work))
	var paths []string
	for _, name := range []string{"a.mp4", "b.mp4", "c.mp4", "d.mp4", "e.mp4"} {
		paths = append(paths, l.clip(name, testenv.Clip{Seconds: 1, AudioLangs: []string{"eng"}}))
	}
	jpath := filepath.Join(l.dir, "journal.jsonl")

	// The dry run: which variant each host uses, and why.
	_, out, err := l.run(context.Background(), func(o *cluster.Options) { o.DryRun = true }, items("lab", paths[0])...)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for _, want := range []string{
		"variant:  nas: hevc_nvenc\n",
		"variant:  gamer: hevc_qsv (passed over hevc_nvenc: test encode failed: OpenEncodeSessionEx failed",
		"variant:  manager: libx265 (passed over hevc_nvenc: excluded by host config (not in its encoders: list); hevc_qsv: excluded by host config",
		"nas (mounted, variant hevc_nvenc):",
		"gamer (streaming, variant hevc_qsv):",
		"-hwaccel cuda -i file:" + l.view,
		"-c:v hevc_nvenc -preset p5 -rc vbr -cq 30",
		"-c:v hevc_qsv -preset veryfast -global_quality 30",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run does not say %q:\n%s", want, out)
		}
	}
	if n := jobEncodes(nasHW, false); len(n) > 0 {
		t.Errorf("the dry run ran job encodes: %v", n)
	}
	if _, err := os.Stat(paths[0]); err != nil {
		t.Fatalf("dry run touched the source: %v", err)
	}

	j, err := journal.Open(jpath)
	if err != nil {
		t.Fatal(err)
	}
	rep, out, err := l.run(context.Background(), func(o *cluster.Options) { o.Journal = j }, items("lab", paths...)...)
	j.Close()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	want := map[string]string{"nas": "hevc_nvenc", "gamer": "hevc_qsv", "manager": ""}
	used := map[string]bool{}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done {
			t.Errorf("%s: %s: %s\n%s", f.Path, f.Outcome, f.Reason, out)
			continue
		}
		info := probe(t, f.Output)
		if info.VCodec() != "hevc" {
			t.Errorf("%s: codec %s, want hevc", f.Output, info.VCodec())
		}
		if got := fakeTag(t, f.Output); got != want[f.Host] {
			t.Errorf("%s (host %s) was written by %q, want %q", f.Output, f.Host, got, want[f.Host])
		}
		if wantV := map[string]string{"nas": "hevc_nvenc", "gamer": "hevc_qsv", "manager": "libx265"}[f.Host]; f.Variant != wantV {
			t.Errorf("%s: report says variant %q, host %s uses %q", f.Path, f.Variant, f.Host, wantV)
		}
		used[f.Host] = true
	}
	if len(used) < 2 {
		t.Errorf("all files went to one host (%v); the test wants them spread", used)
	}
	if n := jobEncodes(gamerHW, false)["hevc_nvenc"]; n > 0 {
		t.Errorf("gamer ran %d NVENC jobs although its NVENC test failed", n)
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}

	// The results are in the journal: a later run tests nothing again.
	before := testEncodes(nasHW)["hevc_nvenc"] + testEncodes(gamerHW)["hevc_nvenc"] + testEncodes(gamerHW)["hevc_qsv"]
	more := l.clip("g.mp4", testenv.Clip{Seconds: 1, AudioLangs: []string{"eng"}})
	j, err = journal.Open(jpath)
	if err != nil {
		t.Fatal(err)
	}
	rep, out, err = l.run(context.Background(), func(o *cluster.Options) { o.Journal = j; o.DryRun = true }, items("lab", more)...)
	j.Close()
	if err != nil {
		t.Fatal(err)
	}
	after := testEncodes(nasHW)["hevc_nvenc"] + testEncodes(gamerHW)["hevc_nvenc"] + testEncodes(gamerHW)["hevc_qsv"]
	if after != before {
		t.Errorf("test encodes ran again (%d → %d) although the journal has their results", before, after)
	}
	if !strings.Contains(out, "variant:  gamer: hevc_qsv (passed over hevc_nvenc: cached: failed on ffmpeg ") {
		t.Errorf("dry run does not show gamer's cached NVENC failure:\n%s", out)
	}
}

// The journal's test results hold for one ffmpeg version: a host whose
// ffmpeg changed is tested again (a pass and a failure alike), one whose
// ffmpeg did not is not. Local hosts: no SSH needed for this.
func TestVariantCacheInvalidatedByFFmpegVersion(t *testing.T) {
	l := &lab{t: t, dir: t.TempDir()}
	testenv.NeedFFmpeg(t)
	l.media = filepath.Join(l.dir, "media")
	must(t, os.MkdirAll(l.media, 0o755))
	a, b := hoststest.NewFakeHW(t), hoststest.NewFakeHW(t)
	a.SetVersion(t, "6.1")
	b.SetVersion(t, "6.1")
	b.FailTest(t, "nvenc", true)
	l.writeVariantConfig("",
		"      a:\n        type: local\n        fallback: no\n        ffmpeg: "+a.Path+"\n",
		"      b:\n        type: local\n        fallback: no\n        ffmpeg: "+b.Path+"\n")
	src := l.clip("x.mkv", testenv.Clip{Seconds: 1})
	jpath := filepath.Join(l.dir, "journal.jsonl")
	run := func(dry bool) string {
		t.Helper()
		j, err := journal.Open(jpath)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		_, out, err := l.run(context.Background(), func(o *cluster.Options) { o.Journal = j; o.DryRun = dry; o.Force = dry }, items("lab", src)...)
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		return out
	}
	run(false) // tests, and records them
	if n := testEncodes(a)["hevc_nvenc"]; n != 1 {
		t.Fatalf("a: %d NVENC tests in the first run, want 1", n)
	}
	if n := testEncodes(b); n["hevc_nvenc"] != 1 || n["hevc_qsv"] != 1 {
		t.Fatalf("b: tests %v in the first run, want NVENC and QSV once each", n)
	}
	out := run(true)
	if n := testEncodes(a)["hevc_nvenc"] + testEncodes(b)["hevc_nvenc"] + testEncodes(b)["hevc_qsv"]; n != 3 {
		t.Errorf("same ffmpeg: %d tests in all after the second run, want still 3", n)
	}
	if !strings.Contains(out, "variant:  b: hevc_qsv (passed over hevc_nvenc: cached: failed on ffmpeg 6.1 at ") {
		t.Errorf("second run does not show b's cached failure:\n%s", out)
	}
	// b's driver is fixed and its ffmpeg upgraded: tested again, and now
	// NVENC works there; a's ffmpeg did not change: not tested again.
	b.FailTest(t, "nvenc", false)
	b.SetVersion(t, "7.1")
	out = run(true)
	if n := testEncodes(b)["hevc_nvenc"]; n != 2 {
		t.Errorf("b: %d NVENC tests after its ffmpeg changed, want 2", n)
	}
	if n := testEncodes(a)["hevc_nvenc"]; n != 1 {
		t.Errorf("a: %d NVENC tests although its ffmpeg did not change, want 1", n)
	}
	if !strings.Contains(out, "variant:  b: hevc_nvenc\n") {
		t.Errorf("b should use NVENC on its new ffmpeg:\n%s", out)
	}
}

// A variant whose test passed fails at run time with the driver's error:
// the file is encoded again on the same host with its next variant, nothing
// is lost (each source is replaced only by a verified output), the failure
// is reported with host, variant and ffmpeg's line, and after two such
// failures the host is demoted to its next variant for the rest of the run.
func TestVariantRuntimeFallback(t *testing.T) {
	l := newLab(t)
	hw := hoststest.NewFakeHW(t)
	hw.FailAfter(t, "nvenc", 0) // the test encode passes; every job fails
	l.writeVariantConfig("",
		l.nas.YAML("nas", "type: mounted", "ffmpeg: "+hw.Path, "path-substitutions:", "  - "+l.media+"/ "+l.view+"/"))
	var paths []string
	for _, name := range []string{"a.mp4", "b.mp4", "c.mp4", "d.mp4"} {
		paths = append(paths, l.clip(name, testenv.Clip{Seconds: 1, AudioLangs: []string{"eng"}}))
	}
	rep, out, err := l.run(context.Background(), nil, items("lab", paths...)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done {
			t.Errorf("%s: %s: %s\n%s", f.Path, f.Outcome, f.Reason, out)
			continue
		}
		if _, err := os.Stat(f.Path); !os.IsNotExist(err) {
			t.Errorf("source %s still there after a done encode", f.Path)
		}
		if got := fakeTag(t, f.Output); got != "hevc_qsv" {
			t.Errorf("%s written by %q, want hevc_qsv (the next variant)", f.Output, got)
		}
		if d := probe(t, f.Output).Duration; d < 0.8 {
			t.Errorf("%s: duration %.2f", f.Output, d)
		}
	}
	if n := jobEncodes(hw, true)["hevc_nvenc"]; n != 2 {
		t.Errorf("%d NVENC jobs failed, want 2 (then the host is demoted)", n)
	}
	if n := jobEncodes(hw, false)["hevc_nvenc"]; n != 0 {
		t.Errorf("%d NVENC jobs succeeded, want none", n)
	}
	for _, want := range []string{
		"warning: host nas: encoder variant hevc_nvenc failed on " + l.media,
		".mp4: No NVENC capable devices found\n",
		"host nas: retrying " + l.media,
		"with encoder variant hevc_qsv",
		"warning: host nas: encoder variant hevc_nvenc failed 2 times in this run; the host uses its next variant for the rest of the run",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log does not say %q:\n%s", want, out)
		}
	}
	if left := leftovers(t, l.media); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}
}

// When the host that failed has no other variant, the file goes to
// another host (without counting an attempt); a source is never touched
// by a failed encode.
func TestVariantRuntimeFailureGoesElsewhere(t *testing.T) {
	l := newLab(t)
	hw := hoststest.NewFakeHW(t)
	hw.FailAfter(t, "nvenc", 0)
	l.writeVariantConfig("",
		l.nas.YAML("nas", "type: mounted", "ffmpeg: "+hw.Path, "encoders: [hevc_nvenc]", "path-substitutions:", "  - "+l.media+"/ "+l.view+"/"),
		"      manager:\n        type: local\n        fallback: yes\n")
	src := l.clip("a.mkv", testenv.Clip{Seconds: 1, AudioLangs: []string{"eng"}})
	rep, out, err := l.run(context.Background(), nil, items("lab", src)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f := rep.Files[0]
	if f.Outcome != cluster.Done || f.Host != "manager" || f.Attempts != 1 {
		t.Fatalf("%s: %s on %s after %d attempts (%s), want done on manager after 1\n%s", f.Path, f.Outcome, f.Host, f.Attempts, f.Reason, out)
	}
	if n := jobEncodes(hw, true)["hevc_nvenc"]; n != 1 {
		t.Errorf("%d failed NVENC jobs on nas, want 1", n)
	}
	if !strings.Contains(out, "encoder variant hevc_nvenc failed on host nas: No NVENC capable devices found") {
		t.Errorf("the failure is not reported with host, variant and ffmpeg's line:\n%s", out)
	}
}

// sessions: {nvenc: 1} on a host with 3 slots: never two NVENC encodes at
// once there.
func TestVariantSessionCap(t *testing.T) {
	l := newLab(t)
	hw := hoststest.NewFakeHW(t)
	l.writeVariantConfig("",
		l.nas.YAML("nas", "type: mounted", "ffmpeg: "+hw.Path, "slots: 3", "sessions: {nvenc: 1}", "path-substitutions:", "  - "+l.media+"/ "+l.view+"/"))
	var paths []string
	for _, name := range []string{"a.mkv", "b.mkv", "c.mkv", "d.mkv"} {
		paths = append(paths, l.clip(name, testenv.Clip{Seconds: 1}))
	}
	j, err := journal.Open(filepath.Join(l.dir, "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rep, out, err := l.run(context.Background(), func(o *cluster.Options) { o.Journal = j }, items("lab", paths...)...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, f := range rep.Files {
		if f.Outcome != cluster.Done {
			t.Errorf("%s: %s: %s", f.Path, f.Outcome, f.Reason)
		}
	}
	// The speed observed is the host's speed with that variant, and the
	// journal keeps it for the next run beside the host's own.
	if v := j.Speeds()["nas"]["variant:hevc_nvenc"]; !(v > 0) {
		t.Errorf("journal speeds %v: no speed of nas with hevc_nvenc", j.Speeds())
	}
	most, total := hw.MaxConcurrent("nvenc")
	if total != len(paths) || most != 1 {
		t.Errorf("NVENC jobs: %d in all, at most %d at once; want %d, 1\n%s", total, most, len(paths), out)
	}
}

// TestSessionCapCoversSamples: a classic profile whose -c:v is a hardware
// encoder, searched with quality:, on a host with 3 slots and an NVENC
// cap of 1: the samples of two films take NVENC sessions like the films
// do, so no two NVENC encodes ever run at once there.
func TestSessionCapCoversSamples(t *testing.T) {
	l := newLab(t)
	hw := hoststest.NewFakeHW(t)
	l.writeVariantConfig(`
profiles:
  nv:
    output_options: -map 0:v -c:v hevc_nvenc -preset p5 -cq 28 -g 25
    extension: .mkv
    quality: ssim=0.9
`, l.nas.YAML("nas", "type: mounted", "ffmpeg: "+hw.Path, "slots: 3", "sessions: {nvenc: 1}", "path-substitutions:", "  - "+l.media+"/ "+l.view+"/"))
	var paths []string
	for _, name := range []string{"a.mkv", "b.mkv"} {
		paths = append(paths, l.clip(name, testenv.Clip{Seconds: 8, GOP: 25}))
	}
	var work []cluster.WorkItem
	for _, p := range paths {
		work = append(work, cluster.WorkItem{Path: p, Cluster: "lab", Profile: "nv"})
	}
	rep, out, err := l.run(context.Background(), nil, work...)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, f := range rep.Files {
		if f.Quality == nil || f.Quality.SampleEncodes < 2 {
			t.Errorf("%s: %s (%s): no search ran: %+v", f.Path, f.Outcome, f.Reason, f.Quality)
		}
	}
	most, total := hw.MaxConcurrent("nvenc")
	if total < 4 || most != 1 {
		t.Errorf("NVENC encodes (samples and files): %d in all, at most %d at once; want several, 1\n%s", total, most, out)
	}
}

// A split film's segments all use one variant: the one with the most
// expected capacity among the hosts that use it (here NVENC, on nas and
// gamer, over the manager's x265), and only those hosts take segments.
func TestVariantSplitFilmOneVariant(t *testing.T) {
	l := newLab(t)
	nasHW, gamerHW := hoststest.NewFakeHW(t), hoststest.NewFakeHW(t)
	splitProf := `
profiles:
  auto-split:
    include: auto
    split:
      min_duration: 10s
      segment: 4s
`
	l.writeVariantConfig(splitProf,
		"      manager:\n        type: local\n        fallback: no\n        exclude_encoders: [hevc_nvenc, hevc_qsv]\n",
		l.nas.YAML("nas", "type: mounted", "ffmpeg: "+nasHW.Path, "slots: 2", "path-substitutions:", "  - "+l.media+"/ "+l.view+"/"),
		l.gamer.YAML("gamer", "type: streaming", "ffmpeg: "+gamerHW.Path, "working_dir: "+l.work))
	src := l.clip("film.mkv", testenv.Clip{Seconds: 16, GOP: 25, AudioLangs: []string{"eng"}})
	work := cluster.WorkItem{Path: src, Cluster: "lab", Profile: "auto-split"}
	_, out, err := l.run(context.Background(), func(o *cluster.Options) { o.DryRun = true }, work)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for _, want := range []string{
		"split:    variant hevc_nvenc for every segment (the most expected capacity of: hevc_nvenc on gamer, nas; libx265 on manager)",
		"nas (mounted, variant hevc_nvenc), segment #2:",
		"gamer (streaming, variant hevc_nvenc), segment #2:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "manager (local") {
		t.Errorf("the manager (x265) is given segments of an NVENC film:\n%s", out)
	}
	rep, out, err := l.run(context.Background(), nil, work)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f := rep.Files[0]
	if f.Outcome != cluster.Done || f.Split == nil {
		t.Fatalf("%s: %s (%s), want done split\n%s", f.Path, f.Outcome, f.Reason, out)
	}
	for h := range f.Split.HostSeconds {
		if h == "manager" {
			t.Errorf("the manager encoded segments: %v", f.Split.HostSeconds)
		}
	}
	n := 0
	for _, hw := range []*hoststest.FakeHW{nasHW, gamerHW} {
		for enc, k := range jobEncodes(hw, false) {
			if enc != "hevc_nvenc" {
				t.Errorf("a segment was encoded with %s", enc)
			}
			n += k
		}
	}
	if n < f.Split.Segments {
		t.Errorf("%d NVENC segment encodes for %d segments", n, f.Split.Segments)
	}
}

// A split film's variant failing at run time on one host: its segments go
// to another host with the same variant. When no host is left with it,
// the film fails with the reason and the original is kept.
func TestVariantSplitFilmRuntimeFailure(t *testing.T) {
	l := newLab(t)
	nasHW, gamerHW := hoststest.NewFakeHW(t), hoststest.NewFakeHW(t)
	nasHW.FailAfter(t, "nvenc", 0)
	splitProf := `
profiles:
  auto-split:
    include: auto
    split:
      min_duration: 8s
      segment: 4s
`
	l.writeVariantConfig(splitProf,
		l.nas.YAML("nas", "type: mounted", "ffmpeg: "+nasHW.Path, "path-substitutions:", "  - "+l.media+"/ "+l.view+"/"),
		l.gamer.YAML("gamer", "type: streaming", "ffmpeg: "+gamerHW.Path, "working_dir: "+l.work))
	src := l.clip("film.mkv", testenv.Clip{Seconds: 12, GOP: 25, AudioLangs: []string{"eng"}})
	work := cluster.WorkItem{Path: src, Cluster: "lab", Profile: "auto-split"}
	rep, out, err := l.run(context.Background(), nil, work)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f := rep.Files[0]
	if f.Outcome != cluster.Done || f.Split == nil {
		t.Fatalf("%s: %s (%s), want done split\n%s", f.Path, f.Outcome, f.Reason, out)
	}
	if _, ok := f.Split.HostSeconds["nas"]; ok {
		t.Errorf("nas's NVENC fails, yet it encoded segments: %v", f.Split.HostSeconds)
	}
	if n := jobEncodes(gamerHW, false); n["hevc_nvenc"] != f.Split.Segments || len(n) != 1 {
		t.Errorf("gamer's segment encodes %v, want %d with hevc_nvenc only", n, f.Split.Segments)
	}
	if n := jobEncodes(nasHW, false); len(n) != 0 {
		t.Errorf("nas finished segment encodes %v: with another variant than the film's?", n)
	}

	// No host left with the film's variant: the film fails, the original stays.
	gamerHW.FailAfter(t, "nvenc", 0)
	src2 := l.clip("film2.mkv", testenv.Clip{Seconds: 12, GOP: 25, AudioLangs: []string{"eng"}})
	sum := fileHash(t, src2)
	rep, out, err = l.run(context.Background(), nil, cluster.WorkItem{Path: src2, Cluster: "lab", Profile: "auto-split"})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f = rep.Files[0]
	if f.Outcome != cluster.Failed || !strings.Contains(f.Reason, "variant hevc_nvenc") || !strings.Contains(f.Reason, "No NVENC capable devices found") {
		t.Errorf("%s: %s (%s), want failed with the variant's failure\n%s", f.Path, f.Outcome, f.Reason, out)
	}
	if got := fileHash(t, src2); got != sum {
		t.Error("the original changed")
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}
}
