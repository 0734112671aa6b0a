package split

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"clustertx/media"
)

// index builds a CFR frame list: n frames at fps, starting at start, with
// a keyframe every gop frames.
func index(n int, fps float64, start float64, gop int) *media.VideoIndex {
	x := &media.VideoIndex{}
	for i := 0; i < n; i++ {
		x.PTS = append(x.PTS, start+float64(i)/fps)
		x.Key = append(x.Key, i%gop == 0)
	}
	return x
}

func TestCutEqualSharesAtKeyframes(t *testing.T) {
	// 10 minutes at 25 fps, keyframe every 2 s, segments of about 1 min.
	x := index(15000, 25, 0, 50)
	p := Cut(x, 600, 0, 60)
	if p == nil || len(p.Segments) != 10 {
		t.Fatalf("want 10 segments, got %+v", p)
	}
	total := 0
	for i, s := range p.Segments {
		total += s.Frames
		k := x.Count(0, s.Start) // index of its first frame
		if !x.Key[k] {
			t.Errorf("segment %d starts at %.3f, not a keyframe", i, s.Start)
		}
		if math.Abs(s.Start-60*float64(i)) > 1 {
			t.Errorf("segment %d starts at %.3f, want near %d", i, s.Start, 60*i)
		}
		if i > 0 {
			prev := x.PTS[k-1]
			if !(s.Seek > prev && s.Seek < s.Start) {
				t.Errorf("segment %d seek %.6f not between the frame before (%.6f) and its first (%.6f)", i, s.Seek, prev, s.Start)
			}
			if p.Segments[i-1].End != s.Start {
				t.Errorf("segment %d ends at %.3f, next starts at %.3f", i-1, p.Segments[i-1].End, s.Start)
			}
		} else if s.Seek != 0 {
			t.Errorf("first segment seeks to %.3f", s.Seek)
		}
		if s.Frames != x.Count(s.Start, s.End) {
			t.Errorf("segment %d: %d frames, index says %d", i, s.Frames, x.Count(s.Start, s.End))
		}
	}
	if total != 15000 || p.Frames != 15000 {
		t.Errorf("segments hold %d frames (plan %d), want 15000", total, p.Frames)
	}
	if !math.IsInf(p.Segments[9].End, 1) {
		t.Errorf("last segment must run to the end, ends %.3f", p.Segments[9].End)
	}
}

func TestCutSparseKeyframesNeverRepeatsACut(t *testing.T) {
	// Keyframes only every 100 s: ten 10-second targets share few keyframes.
	x := index(25*300, 25, 0.023, 2500)
	p := Cut(x, 300, 0, 10)
	if p == nil {
		t.Fatal("no plan")
	}
	if len(p.Segments) != 3 {
		t.Errorf("want 3 segments (keyframes at 0, 100, 200), got %d", len(p.Segments))
	}
	for i := 1; i < len(p.Segments); i++ {
		if p.Segments[i].Start <= p.Segments[i-1].Start {
			t.Errorf("cuts not increasing: %+v", p.Segments)
		}
	}
	if math.Abs(p.Offset-0.023) > 1e-9 {
		t.Errorf("video offset %.4f, want 0.023", p.Offset)
	}
}

func TestCutRefusesWhatCannotBeCut(t *testing.T) {
	if p := Cut(index(250, 25, 0, 25), 10, 0, 8); p != nil {
		t.Errorf("10 s in 8 s segments is one segment, got %d", len(p.Segments))
	}
	if p := Cut(index(2500, 25, 0, 5000), 100, 0, 10); p != nil {
		t.Errorf("a single keyframe cannot be cut, got %d segments", len(p.Segments))
	}
}

func TestEncodeArgsDropsProfileMapsAndSelectsVideo(t *testing.T) {
	out := []string{"-map", "0:v", "-map", "0:a:0", "-c:v", "libx265", "-crf", "24", "-map_metadata", "0", "-c:a", "aac"}
	s := Segment{Seek: 12.5, Frames: 300}
	got := EncodeArgs([]string{"-hwaccel", "auto"}, out, "/m/a b.mkv", s, 3)
	want := []string{"-hwaccel", "auto", "-seek_timestamp", "1", "-ss", "12.500000", "-i", "file:/m/a b.mkv",
		"-c:v", "libx265", "-crf", "24", "-c:a", "aac",
		"-map", "0:3", "-an", "-sn", "-dn", "-frames:v", "300", "-map_metadata", "-1", "-map_chapters", "-1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	first := EncodeArgs(nil, nil, "x.mkv", Segment{Frames: 10}, 0)
	if strings.Contains(strings.Join(first, " "), "-ss") {
		t.Errorf("the first segment must not seek: %q", first)
	}
}

func TestConcatListHasExactDurations(t *testing.T) {
	p := &Plan{Segments: []Segment{{Start: 0, End: 10.01}, {Start: 10.01, End: 20.02}, {Start: 20.02, End: math.Inf(1)}}}
	got, err := p.ConcatList([]string{"a.mkv", ".clustertx-0a1b-seg0001-2c3d.mkv", "c.mkv"})
	if err != nil {
		t.Fatal(err)
	}
	want := "ffconcat version 1.0\nfile 'a.mkv'\nduration 10.010000\nfile '.clustertx-0a1b-seg0001-2c3d.mkv'\nduration 10.010000\nfile 'c.mkv'\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// A name that is not a plain generated one never reaches the list: a
// newline would add directives of its own (a "file" line reading another
// file of the folder), and the format cannot quote it.
func TestConcatListRefusesHostileNames(t *testing.T) {
	p := &Plan{Segments: []Segment{{Start: 0, End: 1}, {Start: 1, End: math.Inf(1)}}}
	for _, name := range []string{"it's.mkv", "a\nfile '/etc/passwd'\n.mkv", "x y.mkv", "", "ü.mkv"} {
		if got, err := p.ConcatList([]string{"a.mkv", name}); err == nil {
			t.Errorf("%q: accepted:\n%s", name, got)
		}
	}
}

func TestJoinArgsRestoresVideoOffset(t *testing.T) {
	p := &Plan{Offset: 0.023}
	got := strings.Join(p.JoinArgs("l.txt", "rest.mkv", "src.mkv", "out.mkv", true), " ")
	want := "-itsoffset 0.023000 -f concat -safe 0 -i file:l.txt -i file:rest.mkv -i file:src.mkv -map 0:v -map 1 -map 2:t? -map_metadata 2 -map_chapters 2 -c copy file:out.mkv"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = strings.Join((&Plan{}).JoinArgs("l.txt", "", "src.mkv", "out.mp4", false), " ")
	want = "-f concat -safe 0 -i file:l.txt -i file:src.mkv -map 0:v -map_metadata 1 -map_chapters 1 -c copy file:out.mp4"
	if got != want {
		t.Errorf("no rest: got  %s\nwant %s", got, want)
	}
}

func TestUnsplittable(t *testing.T) {
	for _, c := range []struct {
		out  string
		want string
	}{
		{"-c:v libx265 -crf 24 -c:a copy", ""},
		{"-c:v libx265 -vf scale=1280:-2", ""},
		{"-filter_complex [0:v]scale=640:-2[v] -map [v]", "-filter_complex"},
		{"-c:v libx264 -r 30", "frame rate"},
		{"-vf scale=640:-2,fps=24", "fps"},
		{"-c:v libx264 -pass 2", "multi-pass"},
		{"-t 60", "-t"},
	} {
		got := Unsplittable(nil, strings.Fields(c.out))
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%q: got %q, want it to mention %q", c.out, got, c.want)
		}
	}
}
