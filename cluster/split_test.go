package cluster_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/internal/testenv"
	"clustertx/journal"
)

// splitProfile adds profile "split" to the lab's config: lossless x264, so
// that every decoded frame of the output must equal the source's (a frame
// lost, repeated or shifted at a join shows), split in 4 s segments.
func (l *lab) splitProfile(preset string) {
	data, err := os.ReadFile(l.cfgPath)
	must(l.t, err)
	prof := "profiles:\n  split:\n    output_options: -c:v libx264 -preset " + preset + " -qp 0 -c:a aac -b:a 96k -c:s copy\n" +
		"    extension: .mkv\n    split:\n      min_duration: 10s\n      segment: 4s\n"
	data = bytes.Replace(data, []byte("profiles:\n"), []byte(prof), 1)
	must(l.t, os.WriteFile(l.cfgPath, data, 0o644))
}

// filmClip is a source worth splitting: 24 s, a keyframe every second,
// B-frames (so decode order differs from display order), audio, a
// subtitle stream and chapters.
var filmClip = testenv.Clip{Seconds: 24, GOP: 25, Preset: "veryfast", AudioLangs: []string{"eng"}, SubLangs: []string{"eng"}, Chapters: 3}

func ffprobeLines(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("ffprobe", append([]string{"-v", "error"}, args...)...).Output()
	if err != nil {
		t.Fatalf("ffprobe %q: %v", args, err)
	}
	return strings.Fields(strings.TrimSpace(string(out)))
}

// frameHashes decodes the video and returns one hash per frame.
func frameHashes(t *testing.T, path string) []string {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0", "-f", "framemd5", "-").Output()
	if err != nil {
		t.Fatalf("framemd5 %s: %v", path, err)
	}
	var h []string
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ",")
		h = append(h, strings.TrimSpace(f[len(f)-1]))
	}
	return h
}

// streamEnds returns the first timestamp and the end of the last packet of
// the first stream of type sel ("v" or "a").
func streamEnds(t *testing.T, path, sel string) (first, end float64) {
	t.Helper()
	lines := ffprobeLines(t, "-select_streams", sel+":0", "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", path)
	first = 1e9
	for _, l := range lines {
		parts := strings.Split(l, ",")
		p, err := strconv.ParseFloat(parts[0], 64)
		if err != nil {
			continue
		}
		var d float64
		if len(parts) > 1 {
			d, _ = strconv.ParseFloat(parts[1], 64)
		}
		first = min(first, p)
		end = max(end, p+d)
	}
	return first, end
}

type layout struct{ types, chapters string }

func layoutOf(t *testing.T, path string) layout {
	return layout{
		types:    strings.Join(ffprobeLines(t, "-show_entries", "stream=codec_type", "-of", "csv=p=0", path), ","),
		chapters: strings.Join(ffprobeLines(t, "-show_entries", "chapter=start_time", "-of", "csv=p=0", path), ","),
	}
}

// filmRef is what a split film's output is checked against: its source's
// decoded frames, stream layout and stream timing, taken before the run
// (which replaces the source).
type filmRef struct {
	frames         []string
	layout         layout
	v0, vEnd, aEnd float64
}

func refOf(t *testing.T, src string) filmRef {
	r := filmRef{frames: frameHashes(t, src), layout: layoutOf(t, src)}
	r.v0, r.vEnd = streamEnds(t, src, "v")
	_, r.aEnd = streamEnds(t, src, "a")
	return r
}

// check checks a split film's output against its source.
func (src filmRef) check(t *testing.T, out string) {
	t.Helper()
	got := frameHashes(t, out)
	if len(got) != len(src.frames) {
		t.Errorf("output has %d frames, source %d", len(got), len(src.frames))
	}
	for i := 0; i < min(len(got), len(src.frames)); i++ {
		if got[i] != src.frames[i] {
			t.Errorf("frame %d differs from the source's (first of possibly more)", i)
			break
		}
	}
	if l := layoutOf(t, out); l != src.layout {
		t.Errorf("stream layout %+v, source %+v", l, src.layout)
	}
	v0, vEnd := streamEnds(t, out, "v")
	_, aEnd := streamEnds(t, out, "a")
	if d := v0 - src.v0; d > 0.001 || d < -0.001 {
		t.Errorf("video starts at %.3f, source at %.3f (A/V offset changed)", v0, src.v0)
	}
	if d := vEnd - src.vEnd; d > 0.001 || d < -0.001 {
		t.Errorf("video ends at %.3f, source at %.3f", vEnd, src.vEnd)
	}
	if d := aEnd - src.aEnd; d > 0.05 || d < -0.05 { // re-encoded audio ends on its own frames
		t.Errorf("audio ends at %.3f, source at %.3f", aEnd, src.aEnd)
	}
}

// filmDone returns the film's result after a run, failing the test unless
// the run worked and the film is done.
func filmDone(t *testing.T, rep *cluster.Report, out string, err error) *cluster.FileResult {
	t.Helper()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	f := rep.Files[0]
	if f.Outcome != cluster.Done {
		t.Fatalf("%s: %s\n%s", f.Outcome, f.Reason, out)
	}
	return f
}

// Issue 7: one film split over a mounted and a streaming host comes back
// frame for frame, with its audio, subtitles and chapters, in sync.
func TestSplitAcrossMountedAndStreaming(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	l.splitProfile("ultrafast")
	src := l.clip("Films/the film (2024).mkv", filmClip)
	ref := refOf(t, src)
	if ref.layout.types != "video,audio,subtitle" || len(strings.Split(ref.layout.chapters, ",")) != 3 {
		t.Fatalf("generated source has layout %+v", ref.layout)
	}

	rep, out, err := l.run(context.Background(), nil, cluster.WorkItem{Path: src, Cluster: "lab", Profile: "split"})
	f := filmDone(t, rep, out, err)
	if !strings.Contains(f.Reason, "split in 6 segments") {
		t.Errorf("reason %q does not say it was split in 6", f.Reason)
	}
	for _, h := range []string{"nas", "gamer"} {
		if !strings.Contains(out, "job: "+h+": start segment") {
			t.Errorf("host %s ran no segment:\n%s", h, out)
		}
	}
	ref.check(t, f.Output)
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left behind: %q", left)
	}
}

// Issue 7: a host killed in the middle of a segment loses that segment to
// another host; the film still comes back exactly.
func TestSplitSurvivesHostDeathMidSegment(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	l.splitProfile("veryslow") // slow enough to be caught mid-segment
	clip := filmClip
	clip.Width, clip.Height = 640, 480
	src := l.clip("film.mkv", clip)
	ref := refOf(t, src)

	killed := make(chan struct{})
	go func() {
		defer close(killed)
		if !waitFor(60*time.Second, func() bool { return len(ffmpegOf(l.work)) > 0 }) {
			t.Error("gamer never started a segment")
		}
		l.gamer.Stop()
		time.Sleep(time.Second)
		l.gamer.Start(t)
	}()
	jr, err := journal.Open(filepath.Join(l.dir, "journal.jsonl"))
	must(t, err)
	defer jr.Close()
	withJournal := func(o *cluster.Options) { o.Journal = jr }
	work := cluster.WorkItem{Path: src, Cluster: "lab", Profile: "split"}
	rep, out, err := l.run(context.Background(), withJournal, work)
	<-killed
	f := filmDone(t, rep, out, err)
	if !strings.Contains(out, "host gamer failed while running segment") {
		t.Errorf("gamer did not fail mid-segment:\n%s", out)
	}
	ref.check(t, f.Output)
	// The dead host's leftovers go when it answers again: in this run if
	// it came back in time, else at the next (which finds the film done).
	if left := leftovers(t, l.work); len(left) > 0 {
		if _, out2, err := l.run(context.Background(), withJournal, work); err != nil {
			t.Fatalf("rerun: %v\n%s", err, out2)
		}
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left behind: %q\n%s", left, out)
	}
}

// Issue 7: --dry-run shows the segments and their cut points, and the
// commands, and touches nothing.
func TestSplitDryRunShowsSegments(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	l.splitProfile("ultrafast")
	src := l.clip("film.mkv", filmClip)
	short := l.clip("short.mkv", testenv.Clip{Seconds: 6})
	before := treeHash(t, l.dir)
	_, out, err := l.run(context.Background(), func(o *cluster.Options) { o.DryRun = true; o.Split = true },
		cluster.WorkItem{Path: src, Cluster: "lab", Profile: "split"}, cluster.WorkItem{Path: short, Cluster: "lab", Profile: "split"})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if after := treeHash(t, l.dir); after != before {
		t.Error("dry run changed files")
	}
	for _, want := range []string{"split:    6 segments, cut at keyframes (600 frames",
		"#1   at 0:00:00", "#2   at 0:00:04 (4.023000)", "-ss 4.003000", "-frames:v 100",
		"cut      ffmpeg -copyts", "rest     ffmpeg", "join     ffmpeg -itsoffset 0.023000 -f concat",
		"split:    not split: 0:00:06 is shorter than min_duration"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
}

// Issue 7: a segment that fails on one host is retried alone on another;
// the film still comes back exactly. nas's ffmpeg answers the host checks
// but fails every segment encode.
func TestSplitFailedSegmentIsRetriedElsewhere(t *testing.T) {
	l := newLab(t)
	broken := filepath.Join(l.dir, "broken-ffmpeg")
	must(t, os.WriteFile(broken, []byte("#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = -frames:v ] && { echo 'simulated encoder crash' >&2; exit 1; }; done\nexec ffmpeg \"$@\"\n"), 0o755))
	l.writeConfig(l.nas.YAML("nas", "type: mounted", "ffmpeg: "+broken, "path-substitutions:", "  - "+l.media+"/ "+l.view+"/"), l.gamerYAML())
	l.splitProfile("ultrafast")
	src := l.clip("film.mkv", filmClip)
	ref := refOf(t, src)
	rep, out, err := l.run(context.Background(), nil, cluster.WorkItem{Path: src, Cluster: "lab", Profile: "split"})
	f := filmDone(t, rep, out, err)
	if !strings.Contains(out, "simulated encoder crash; retrying") {
		t.Errorf("no segment failed on nas and was retried:\n%s", out)
	}
	ref.check(t, f.Output)
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left behind: %q", left)
	}
}

// Ctrl-C in the middle of a split film: the original is untouched and no
// segment, extract, rest or remote file is left anywhere.
func TestSplitInterruptedLeavesNothing(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	l.splitProfile("veryslow")
	clip := filmClip
	clip.Width, clip.Height = 640, 480
	src := l.clip("film.mkv", clip)
	before := fileHash(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		if !waitFor(60*time.Second, func() bool { return len(ffmpegOf(l.work)) > 0 && len(ffmpegOf(l.view)) > 0 }) {
			t.Error("the hosts never both encoded a segment")
		}
		cancel()
	}()
	rep, out, err := l.run(ctx, nil, cluster.WorkItem{Path: src, Cluster: "lab", Profile: "split"})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if f := rep.Files[0]; f.Outcome != cluster.NotRun || !rep.Interrupted {
		t.Errorf("%s: %s (interrupted %v)", f.Outcome, f.Reason, rep.Interrupted)
	}
	if fileHash(t, src) != before {
		t.Error("the source changed")
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Errorf("temp files left behind: %q\n%s", left, out)
	}
	if !waitFor(5*time.Second, func() bool { return len(ffmpegOf(l.dir)) == 0 }) {
		t.Errorf("ffmpeg still running after the run: %v", ffmpegOf(l.dir))
	}
}
