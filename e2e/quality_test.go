package e2e_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"clustertx/hosts/hoststest"
)

// qualityJSON is the part of `clustertx quality --json` the tests read.
type qualityJSON struct {
	File           string   `json:"file"`
	Encoder        string   `json:"encoder"`
	Variant        string   `json:"variant"`
	Option         string   `json:"option"`
	Value          *float64 `json:"value"`
	Metric         string   `json:"metric"`
	Target         float64  `json:"target"`
	PredictedScore float64  `json:"predicted_score"`
	PredictedBytes int64    `json:"predicted_bytes"`
	Met            bool     `json:"met"`
	Reason         string   `json:"reason"`
	Samples        int      `json:"samples"`
	SampleEncodes  int      `json:"sample_encodes"`
	SamplesAt      []struct {
		Start, Duration float64
	} `json:"samples_at"`
	Rounds []struct {
		Level float64 `json:"level"`
	} `json:"rounds"`
	Hosts []string `json:"hosts"`
}

func decodeQuality(t *testing.T, out string) []qualityJSON {
	t.Helper()
	var res []qualityJSON
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r qualityJSON
		must(t, dec.Decode(&r))
		res = append(res, r)
	}
	return res
}

const qualityProfiles = `
profiles:
  x264:
    output_options: -c:v libx264 -preset ultrafast -crf 23 -c:a copy
    extension: .mkv
    quality:
      metric: ssim
      target: 0.97
      min: 14
      max: 40
rules:
  all:
    profile: x264
`

// ssimAt encodes each sample of src (cut as the search cut it: a stream
// copy from its keyframe) at -crf value with the profile's settings and
// returns the SSIM over the samples, weighted by their length: an
// independent check of what the search predicted.
func ssimAt(t *testing.T, dir, src string, value float64, at []struct{ Start, Duration float64 }) float64 {
	t.Helper()
	re := regexp.MustCompile(`All:([0-9.]+)`)
	var sum, w float64
	for i, s := range at {
		cut := filepath.Join(dir, "check-"+strconv.Itoa(i)+".mkv")
		enc := filepath.Join(dir, "check-"+strconv.Itoa(i)+"-enc.mkv")
		args := []string{"-nostdin", "-v", "error", "-y"}
		if s.Start > 0 {
			args = append(args, "-ss", strconv.FormatFloat(s.Start+0.001, 'f', 6, 64))
		}
		args = append(args, "-i", src, "-t", strconv.FormatFloat(s.Duration, 'f', 6, 64), "-map", "0:v:0", "-c", "copy", cut)
		runFF(t, args...)
		runFF(t, "-nostdin", "-v", "error", "-y", "-i", cut, "-c:v", "libx264", "-preset", "ultrafast",
			"-crf", strconv.FormatFloat(value, 'f', -1, 64), enc)
		out := runFF(t, "-nostdin", "-hide_banner", "-nostats", "-i", enc, "-i", cut, "-lavfi",
			"[0:v]setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS[r];[d][r]ssim", "-f", "null", "-")
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no SSIM in %s", out)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		sum += v * s.Duration
		w += s.Duration
	}
	return sum / w
}

// qualityClip writes a film of the given length as a library holds one: a
// high-quality encode (CRF 12, a keyframe a second) of a moving test
// pattern, with a sound track.
func qualityClip(t *testing.T, path string, seconds int) string {
	t.Helper()
	d := strconv.Itoa(seconds)
	runFF(t, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration="+d,
		"-f", "lavfi", "-i", "sine=frequency=440:duration="+d, "-c:v", "libx264", "-preset", "veryfast", "-crf", "12",
		"-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", path)
	return path
}

func runFF(t *testing.T, args ...string) string {
	t.Helper()
	var b bytes.Buffer
	cmd := exec.Command("ffmpeg", args...)
	cmd.Stderr, cmd.Stdout = &b, &b
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg %q: %v\n%s", args, err, b.String())
	}
	return b.String()
}

// TestQualityCommandLocal is issue 17's `clustertx quality` on this
// machine: the search over a generated clip with SSIM picks a -crf within
// the bounds whose score on the samples, measured independently, meets the
// target; an unreachable target is reported with a reason and no setting;
// no file is changed and no temporary file is left.
func TestQualityCommandLocal(t *testing.T) {
	l := newLab(t, false)
	l.cfgPath = filepath.Join(l.dir, "transcode.yml")
	must(t, os.WriteFile(l.cfgPath, []byte("config:\n  ffmpeg: ffmpeg\n"+qualityProfiles), 0o644))
	src := qualityClip(t, filepath.Join(l.media, "film.mkv"), 14)
	before, err := os.Stat(src)
	must(t, err)
	listing := func() []string {
		es, err := os.ReadDir(l.media)
		must(t, err)
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}
	files := listing()

	p := startBinary(t, l.dir, env(l.home, l.state), l.args("quality", "--json", src)...)
	if code := p.wait(5 * time.Minute); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, p.stdout, p.stderr)
	}
	res := decodeQuality(t, p.stdout.String())
	if len(res) != 1 {
		t.Fatalf("want one JSON object, got %d:\n%s", len(res), p.stdout)
	}
	r := res[0]
	t.Logf("search: %s", strings.TrimSpace(p.stdout.String()))
	if r.File != src || r.Encoder != "libx264" || r.Option != "-crf" || r.Metric != "ssim" || r.Target != 0.97 {
		t.Errorf("fields: %+v", r)
	}
	if !r.Met || r.Value == nil || *r.Value < 14 || *r.Value > 40 {
		t.Fatalf("want a -crf within 14..40, got %+v\nstderr:\n%s", r, p.stderr)
	}
	if r.PredictedScore < 0.97 || r.PredictedBytes <= 0 || r.PredictedBytes >= before.Size() {
		t.Errorf("predicted score %v, bytes %d (source %d)", r.PredictedScore, r.PredictedBytes, before.Size())
	}
	if r.Samples < 2 || len(r.SamplesAt) != r.Samples || r.SampleEncodes != r.Samples*len(r.Rounds) || len(r.Rounds) > 6 {
		t.Errorf("samples %d at %v, %d encodes in %d rounds", r.Samples, r.SamplesAt, r.SampleEncodes, len(r.Rounds))
	}
	got := ssimAt(t, l.dir, src, *r.Value, r.SamplesAt)
	if got < 0.97 {
		t.Errorf("-crf %v: SSIM %.4f on the samples, below the target 0.97", *r.Value, got)
	}
	if got-r.PredictedScore > 0.002 || r.PredictedScore-got > 0.002 {
		t.Errorf("-crf %v: predicted SSIM %.4f, measured %.4f", *r.Value, r.PredictedScore, got)
	}

	// A target beyond the bounds: no setting, a reason, still exit 0.
	p = startBinary(t, l.dir, env(l.home, l.state), l.args("quality", "--json", "--target", "ssim=0.9999", src)...)
	if code := p.wait(5 * time.Minute); code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, p.stderr)
	}
	res = decodeQuality(t, p.stdout.String())
	if len(res) != 1 || res[0].Met || res[0].Value != nil || !strings.Contains(res[0].Reason, "SSIM 0.9999 not reached") {
		t.Errorf("unreachable target: %s", p.stdout)
	}

	after, err := os.Stat(src)
	must(t, err)
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the source changed")
	}
	if now := listing(); strings.Join(now, "\n") != strings.Join(files, "\n") {
		t.Errorf("media folder was %v, is %v", files, now)
	}

	// --dry-run: the plan, nothing encoded.
	p = startBinary(t, l.dir, env(l.home, l.state), l.args("quality", "--dry-run", src)...)
	if code := p.wait(time.Minute); code != 0 {
		t.Fatalf("dry run: exit %d\n%s", code, p.stderr)
	}
	for _, want := range []string{"SSIM 0.9700 with libx264 -crf: levels 14 to 40, first 23", "sample 1:", "hosts:    local"} {
		if !strings.Contains(p.stdout.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, p.stdout)
		}
	}
}

// TestQualityCommandLocalChain: `clustertx quality` on this machine with a
// profile whose video is a chain of encoder variants searches the first
// variant that works here. The manager's ffmpeg is hoststest.FakeHW with
// NVENC failing its test encode, so that is libx264 on any machine; the
// JSON and --dry-run say so.
func TestQualityCommandLocalChain(t *testing.T) {
	l := newLab(t, false)
	hw := hoststest.NewFakeHW(t)
	hw.FailTest(t, "nvenc", true)
	l.cfgPath = filepath.Join(l.dir, "transcode.yml")
	must(t, os.WriteFile(l.cfgPath, []byte("config:\n  ffmpeg: "+hw.Path+`
profiles:
  chain:
    output_options: -c:a copy
    extension: .mkv
    crf: 23
    encoders:
      - encoder: hevc_nvenc
        options: -preset p5
      - encoder: libx264
        options: -preset ultrafast -g 25
    quality: {metric: ssim, target: 0.97, min: 14, max: 40, samples: 2}
`), 0o644))
	src := qualityClip(t, filepath.Join(l.media, "film.mkv"), 6)
	sum := fileHash(t, src)

	p := startBinary(t, l.dir, env(l.home, l.state), l.args("quality", "--dry-run", "-p", "chain", src)...)
	if code := p.wait(time.Minute); code != 0 {
		t.Fatalf("dry run: exit %d\n%s", code, p.stderr)
	}
	for _, want := range []string{
		"variant:  libx264, the first that works on this machine (passed over hevc_nvenc: test encode failed: ",
		"SSIM 0.9700 with libx264 -crf: levels 14 to 40, first 23",
	} {
		if !strings.Contains(p.stdout.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, p.stdout)
		}
	}

	p = startBinary(t, l.dir, env(l.home, l.state), l.args("quality", "--json", "-p", "chain", src)...)
	if code := p.wait(5 * time.Minute); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, p.stdout, p.stderr)
	}
	res := decodeQuality(t, p.stdout.String())
	if len(res) != 1 {
		t.Fatalf("want one JSON object, got %d:\n%s", len(res), p.stdout)
	}
	r := res[0]
	t.Logf("search: %s", strings.TrimSpace(p.stdout.String()))
	if r.Encoder != "libx264" || r.Variant != "libx264" || r.Option != "-crf" || !r.Met || r.Value == nil || *r.Value < 14 || *r.Value > 40 {
		t.Errorf("want libx264 -crf within 14..40, got %+v\nstderr:\n%s", r, p.stderr)
	}
	for _, e := range hw.Encodes() {
		if !e.Test && e.Encoder != "" && e.Encoder != "libx264" {
			t.Errorf("a sample was encoded with %s", e.Encoder)
		}
	}
	if fileHash(t, src) != sum {
		t.Error("the source changed")
	}
}

// reportQuality is the part of --report's file entries the cluster test
// reads.
type reportQuality struct {
	Files []struct {
		Path    string `json:"path"`
		Output  string `json:"output"`
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
		Quality *struct {
			Option         string       `json:"option"`
			Value          *float64     `json:"value"`
			PredictedScore *float64     `json:"predicted_score"`
			SampleEncodes  int          `json:"sample_encodes"`
			SamplesAt      [][2]float64 `json:"samples_at"`
			Hosts          []string     `json:"hosts"`
			SearchShare    float64      `json:"search_share"`
			MeasuredScore  *float64     `json:"measured_score"`
		} `json:"quality"`
	} `json:"files"`
}

// ssimOnSpans measures an encoded file against its source on the given
// spans (decoded, accurate seeks on both), weighted by their length.
func ssimOnSpans(t *testing.T, out, src string, spans [][2]float64) float64 {
	t.Helper()
	re := regexp.MustCompile(`All:([0-9.]+)`)
	var sum, w float64
	for _, s := range spans {
		ss, d := strconv.FormatFloat(s[0], 'f', 3, 64), strconv.FormatFloat(s[1], 'f', 3, 64)
		o := runFF(t, "-nostdin", "-hide_banner", "-nostats", "-ss", ss, "-t", d, "-i", out, "-ss", ss, "-t", d, "-i", src,
			"-lavfi", "[0:v]setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS[r];[d][r]ssim", "-f", "null", "-")
		m := re.FindStringSubmatch(o)
		if m == nil {
			t.Fatalf("no SSIM in %s", o)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		sum += v * s[1]
		w += s[1]
	}
	return sum / w
}

// TestQualityCluster is issue 17's "done when" on real sshd hosts: a
// search over a mounted and a streaming host with SSIM spreads its samples
// over both, chooses a -crf within the bounds, and the file encoded at it
// meets the target on its samples; a file that cannot meet the target
// within its size cap keeps its original, with the reason. `clustertx
// quality -c` runs the same search on the hosts and changes nothing.
func TestQualityCluster(t *testing.T) {
	l := newLab(t, true)
	l.cfgPath = filepath.Join(l.dir, "transcode.yml")
	cfg := "config:\n  ffmpeg: ffmpeg\n  clusters:\n    lab:\n" +
		l.nas.YAML("nas", "type: mounted", "path-substitutions:", "  - "+l.media+"/ "+l.view+"/") +
		l.gamer.YAML("gamer", "type: streaming", "working_dir: "+l.work) + `
profiles:
  x264:
    # A keyframe every 2 s, as long as the samples of a 20 s film: each
    # sample then holds one keyframe, as the film does per 2 s. (With
    # x264's default of one per 10 s, 2 s samples hold five times the
    # film's share of keyframes and score higher than the film.)
    output_options: -c:v libx264 -preset ultrafast -g 50 -crf 23 -c:a copy
    extension: .mkv
    quality:
      metric: ssim
      target: 0.97
      min: 14
      max: 40
      samples: 4
rules:
  tight:
    profile: x264
    quality: {metric: ssim, target: 0.97, min: 14, max: 40, max_size: 5}
    criteria:
      path: /tight/
  all:
    profile: x264
`
	must(t, os.WriteFile(l.cfgPath, []byte(cfg), 0o644))
	must(t, os.MkdirAll(filepath.Join(l.media, "tight"), 0o755))
	film := qualityClip(t, filepath.Join(l.media, "film.mkv"), 20)
	tight := qualityClip(t, filepath.Join(l.media, "tight", "film.mkv"), 20)
	tightBefore, err := os.Stat(tight)
	must(t, err)
	orig := filepath.Join(l.dir, "film-source.mkv") // the film is replaced by its output
	data, err := os.ReadFile(film)
	must(t, err)
	must(t, os.WriteFile(orig, data, 0o644))

	// --dry-run shows the search plan: samples, first level, hosts.
	p := startBinary(t, l.dir, env(l.home, l.state), l.args("-c", "lab", "--dry-run", film)...)
	if code := p.wait(time.Minute); code != 0 {
		t.Fatalf("dry run: exit %d\n%s", code, p.stderr)
	}
	for _, want := range []string{"quality:  SSIM 0.9700 with libx264 -crf: levels 14 to 40, first 23", "sample 2: 2s from the keyframe at", "hosts:    gamer, nas"} {
		if !strings.Contains(p.stdout.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, p.stdout)
		}
	}

	// Only the search, on the hosts: nothing changes.
	p = startBinary(t, l.dir, env(l.home, l.state), l.args("quality", "-c", "lab", "--json", film)...)
	if code := p.wait(5 * time.Minute); code != 0 {
		t.Fatalf("quality -c: exit %d\nstdout:\n%s\nstderr:\n%s", code, p.stdout, p.stderr)
	}
	res := decodeQuality(t, p.stdout.String())
	if len(res) != 1 || res[0].Value == nil || *res[0].Value < 14 || *res[0].Value > 40 || len(res[0].Hosts) != 2 {
		t.Errorf("quality -c: want a -crf in 14..40 from samples on both hosts, got %s\nstderr:\n%s", p.stdout, p.stderr)
	}
	if _, err := os.Stat(filepath.Join(l.media, "film.mkv")); err != nil {
		t.Fatalf("quality -c changed the film: %v", err)
	}

	// The run: search, then encode at the level found.
	rep := filepath.Join(l.dir, "report.json")
	p = startBinary(t, l.dir, env(l.home, l.state), l.args("-c", "lab", "--report", rep, film, tight)...)
	if code := p.wait(5 * time.Minute); code != 0 {
		t.Fatalf("run: exit %d\nstdout:\n%s\nstderr:\n%s", code, p.stdout, p.stderr)
	}
	t.Logf("summary:\n%s", p.stdout)
	data, err = os.ReadFile(rep)
	must(t, err)
	var r reportQuality
	must(t, json.Unmarshal(data, &r))
	if len(r.Files) != 2 {
		t.Fatalf("report: %s", data)
	}
	f := r.Files[0]
	q := f.Quality
	if f.Outcome != "done" || q == nil || q.Value == nil || *q.Value < 14 || *q.Value > 40 || q.Option != "-crf" {
		t.Fatalf("film: %s", data)
	}
	if len(q.Hosts) != 2 {
		t.Errorf("film: samples encoded on %v, want both hosts", q.Hosts)
	}
	if q.SampleEncodes < len(q.SamplesAt) || q.SearchShare <= 0 || q.SearchShare >= 1 {
		t.Errorf("film: %d sample encodes of %d samples, search share %v", q.SampleEncodes, len(q.SamplesAt), q.SearchShare)
	}
	got := ssimOnSpans(t, f.Output, orig, q.SamplesAt)
	t.Logf("film: %s %v, predicted SSIM %.4f, measured on the output %.4f", q.Option, *q.Value, *q.PredictedScore, got)
	if got < 0.97 {
		t.Errorf("film: the output's SSIM on its samples is %.4f, below the target 0.97", got)
	}
	// The run checked its own prediction the same way.
	if m := q.MeasuredScore; m == nil || *m-got > 0.001 || got-*m > 0.001 {
		t.Errorf("film: the run's measured score %v, measured here %.4f", m, got)
	}

	k := r.Files[1]
	if k.Outcome != "kept" || !strings.Contains(k.Reason, "max_size 5%") || k.Quality == nil || k.Quality.Value != nil {
		t.Errorf("tight: want kept for the size cap, got %s %q", k.Outcome, k.Reason)
	}
	after, err := os.Stat(tight)
	must(t, err)
	if after.Size() != tightBefore.Size() || !after.ModTime().Equal(tightBefore.ModTime()) {
		t.Errorf("tight: the original changed")
	}
	for _, d := range []string{l.media, filepath.Join(l.media, "tight"), l.work} {
		es, err := os.ReadDir(d)
		must(t, err)
		for _, e := range es {
			if strings.Contains(e.Name(), ".clustertx-") || strings.HasPrefix(e.Name(), "clustertx-") {
				t.Errorf("temporary file left: %s", filepath.Join(d, e.Name()))
			}
		}
	}
}
