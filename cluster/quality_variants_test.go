package cluster_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"clustertx/cluster"
	"clustertx/hosts/hoststest"
	"clustertx/internal/testenv"
)

// Quality searches of a profile with encoder variants (issues 16 and 17):
// the file is pinned to one variant for its samples and its final encode,
// as a split film is for its segments. nas's FakeHW has working NVENC;
// gamer's fails NVENC's test encode, so it uses the chain's last variant,
// libx264. With one slot each and no speeds known, the capacities tie and
// the earlier variant, NVENC, wins: only nas takes the file's encodes.

// searchedChain is a chain profile with a quality: key whose max is beyond
// NVENC's -cq range (1–51): it is moved into it, not an error.
const searchedChain = `
profiles:
  searched:
    output_options: -c:a copy
    extension: .mkv
    crf: 25  # near the level the clips need: fewer rounds
    encoders:
      - encoder: hevc_nvenc
        options: -preset p5 -rc vbr -g 25
      - encoder: libx264
        options: -preset ultrafast -g 25
    quality:
      metric: ssim
      target: 0.97
      min: 10
      max: 60
      samples: 2
      max_size: 400%  # the clips are x264 ultrafast: x265 at SSIM 0.97 is no smaller
`

// chainLab is the two hosts above with their fake hardware.
func chainLab(t *testing.T) (*lab, *hoststest.FakeHW, *hoststest.FakeHW) {
	l := newLab(t)
	nasHW, gamerHW := hoststest.NewFakeHW(t), hoststest.NewFakeHW(t)
	gamerHW.FailTest(t, "nvenc", true)
	l.writeVariantConfig(searchedChain,
		l.nas.YAML("nas", "type: mounted", "ffmpeg: "+nasHW.Path, "path-substitutions:", "  - "+l.media+"/ "+l.view+"/"),
		l.gamer.YAML("gamer", "type: streaming", "ffmpeg: "+gamerHW.Path, "working_dir: "+l.work))
	return l, nasHW, gamerHW
}

// videoEncodes counts the encodes (not test encodes) a FakeHW ran, by the
// encoder asked for; its other runs (-filters, measurements) name none.
func videoEncodes(hw *hoststest.FakeHW, failed bool) map[string]int {
	n := jobEncodes(hw, failed)
	delete(n, "")
	return n
}

// ssimOn measures out against src on the given stretches (accurate seeks
// on both), weighted by their length.
func ssimOn(t *testing.T, out, src string, spans []cluster.Span) float64 {
	t.Helper()
	re := regexp.MustCompile(`All:([0-9.]+)`)
	var sum, w float64
	for _, s := range spans {
		ss, d := strconv.FormatFloat(s.Start, 'f', 3, 64), strconv.FormatFloat(s.Duration, 'f', 3, 64)
		b, err := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-ss", ss, "-t", d, "-i", out, "-ss", ss, "-t", d, "-i", src,
			"-lavfi", "[0:v]setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS[r];[d][r]ssim", "-f", "null", "-").CombinedOutput()
		m := re.FindSubmatch(b)
		if err != nil || m == nil {
			t.Fatalf("measuring SSIM: %v\n%s", err, b)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		sum += v * s.Duration
		w += s.Duration
	}
	return sum / w
}

// The search and the final encode use one variant, on the hosts that use
// it; --dry-run says which and why, and that the bounds were moved.
func TestQualityChainOneVariant(t *testing.T) {
	l, nasHW, gamerHW := chainLab(t)
	src := l.clip("film.mkv", testenv.Clip{Seconds: 8, GOP: 25, AudioLangs: []string{"eng"}})
	orig := filepath.Join(l.dir, "film-source.mkv") // the film is replaced by its output
	data, err := os.ReadFile(src)
	must(t, err)
	must(t, os.WriteFile(orig, data, 0o644))
	work := cluster.WorkItem{Path: src, Cluster: "lab", Profile: "searched"}

	_, out, err := l.run(context.Background(), func(o *cluster.Options) { o.DryRun = true }, work)
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for _, want := range []string{
		"variant:  hevc_nvenc for every sample and the file (the most expected capacity of: hevc_nvenc on nas; libx264 on gamer)",
		"quality:  bounds moved into hevc_nvenc's range: max 60 to 51 (the encoder's range is 1 to 51)",
		"with hevc_nvenc -cq: levels 10 to 51, first 25",
		"hosts:    nas\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run does not say %q:\n%s", want, out)
		}
	}

	rep, out, err := l.run(context.Background(), nil, work)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f := rep.Files[0]
	q := f.Quality
	if f.Outcome != cluster.Done || f.Host != "nas" || f.Variant != "hevc_nvenc" || q == nil || !q.Met {
		t.Fatalf("%s: %s on %s with %q (%s), quality %+v; want done on nas with hevc_nvenc\n%s", f.Path, f.Outcome, f.Host, f.Variant, f.Reason, q, out)
	}
	if q.Encoder != "hevc_nvenc" || q.Option != "-cq" || q.Level < 10 || q.Level > 51 || !slices.Equal(q.Hosts, []string{"nas"}) {
		t.Errorf("search: %s %s %v on %v; want hevc_nvenc -cq in 10..51 on nas", q.Encoder, q.Option, q.Level, q.Hosts)
	}
	if !strings.Contains(out, "variant hevc_nvenc: quality: bounds max 60 to 51") {
		t.Errorf("the log does not say the bounds were moved:\n%s", out)
	}
	// Every encode of the file, samples and final, went through NVENC on
	// nas; gamer (libx264) encoded nothing.
	n := videoEncodes(nasHW, false)
	if len(n) != 1 || n["hevc_nvenc"] != q.SampleEncodes+1 {
		t.Errorf("nas's encodes %v, want %d with hevc_nvenc only (%d samples + the file)", n, q.SampleEncodes+1, q.SampleEncodes)
	}
	if n := videoEncodes(gamerHW, false); len(n) != 0 {
		t.Errorf("gamer encoded %v for a file pinned to hevc_nvenc", n)
	}
	if tag := fakeTag(t, f.Output); tag != "hevc_nvenc" {
		t.Errorf("output written by %q, want hevc_nvenc", tag)
	}
	got := ssimOn(t, f.Output, orig, q.SamplesAt)
	t.Logf("-cq %v after %d sample encodes: predicted SSIM %.4f, the output's %.4f", q.Level, q.SampleEncodes, q.PredictedScore, got)
	if got < 0.97 {
		t.Errorf("the output's SSIM on its samples is %.4f, below the target 0.97", got)
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}
}

// The pinned variant failing at run time on a host: the samples and the
// file go to another host with that variant. On its only host: the file
// fails with the reason, the original is kept, no temporary file is left.
func TestQualityChainVariantFails(t *testing.T) {
	l, nasHW, gamerHW := chainLab(t)
	nasHW.FailAfter(t, "nvenc", 0)
	gamerHW.FailTest(t, "nvenc", false) // both hosts use NVENC; nas's fails at run time
	src := l.clip("film.mkv", testenv.Clip{Seconds: 4, GOP: 25, AudioLangs: []string{"eng"}})
	rep, out, err := l.run(context.Background(), nil, cluster.WorkItem{Path: src, Cluster: "lab", Profile: "searched"})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f := rep.Files[0]
	if f.Outcome != cluster.Done || f.Host != "gamer" || f.Variant != "hevc_nvenc" || f.Quality == nil || !slices.Equal(f.Quality.Hosts, []string{"gamer"}) {
		t.Fatalf("%s: %s on %s with %q (%s), quality %+v; want done on gamer with hevc_nvenc\n%s", f.Path, f.Outcome, f.Host, f.Variant, f.Reason, f.Quality, out)
	}
	if n := videoEncodes(gamerHW, false); len(n) != 1 || n["hevc_nvenc"] != f.Quality.SampleEncodes+1 {
		t.Errorf("gamer's encodes %v, want %d with hevc_nvenc only", n, f.Quality.SampleEncodes+1)
	}
	if n := videoEncodes(nasHW, false); len(n) != 0 {
		t.Errorf("nas finished encodes %v: with another variant than the file's?", n)
	}

	// gamer uses libx264 now: nas is the only host with NVENC.
	gamerHW.FailTest(t, "nvenc", true)
	src2 := l.clip("film2.mkv", testenv.Clip{Seconds: 4, GOP: 25, AudioLangs: []string{"eng"}})
	sum := fileHash(t, src2)
	before := len(gamerHW.Encodes())
	rep, out, err = l.run(context.Background(), nil, cluster.WorkItem{Path: src2, Cluster: "lab", Profile: "searched"})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f = rep.Files[0]
	if f.Outcome != cluster.Failed || !strings.Contains(f.Reason, "variant hevc_nvenc") || !strings.Contains(f.Reason, "No NVENC capable devices found") {
		t.Errorf("%s: %s (%s), want failed with the variant's failure\n%s", f.Path, f.Outcome, f.Reason, out)
	}
	t.Logf("reason: %s", f.Reason)
	if fileHash(t, src2) != sum {
		t.Error("the original changed")
	}
	for _, e := range gamerHW.Encodes()[before:] {
		if !e.Test && e.Encoder != "" {
			t.Errorf("gamer encoded %s for a file pinned to hevc_nvenc", e.Encoder)
		}
	}
	if n := videoEncodes(nasHW, true); n["hevc_nvenc"] == 0 {
		t.Errorf("no failed NVENC encode on nas: %v", nasHW.Encodes())
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left: %q", left)
	}

	// nas down at plan time, and no variant works on gamer: no variant to
	// search with is known. Not the file's fault: not run, not failed.
	l.nas.Stop()
	l.writeVariantConfig(searchedChain,
		l.nas.YAML("nas", "type: mounted", "ffmpeg: "+nasHW.Path, "path-substitutions:", "  - "+l.media+"/ "+l.view+"/"),
		l.gamer.YAML("gamer", "type: streaming", "ffmpeg: "+gamerHW.Path, "working_dir: "+l.work, "encoders: [hevc_nvenc]"))
	rep, out, err = l.run(context.Background(), nil, cluster.WorkItem{Path: src2, Cluster: "lab", Profile: "searched"})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if f = rep.Files[0]; f.Outcome != cluster.NotRun || !strings.Contains(f.Reason, "no eligible host's encoder variant is known") {
		t.Errorf("%s: %s (%s), want not run: no variant known\n%s", f.Path, f.Outcome, f.Reason, out)
	}
}
