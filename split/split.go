// Package split owns split mode's pure parts: choosing keyframe cut points
// that make segments of roughly equal length, counting each segment's
// frames, and building the ffmpeg commands that cut, encode and join them.
// It runs nothing; the cluster package runs the commands and checks their
// outputs.
//
// # How a film is cut and put back together
//
// A segment starts at a keyframe of the source and holds the frames up to
// the next cut. Each segment is encoded from an exact, decoded seek:
// "-seek_timestamp 1 -ss T" with T halfway between the frame before the cut
// and the cut's keyframe, so that rounding of printed timestamps can never
// drop or add a frame, and "-frames:v N" with N counted from the packet
// list. Video only: audio, subtitles, chapters and metadata are produced
// once for the whole file (the "rest"), so there is nothing to click or gap
// at a join. The join is a stream copy of the segments (concat demuxer) and
// the rest.
//
// Hosts that cannot see the source get an extract: the segment's packets,
// copied with their original timestamps (-copyts), starting at or before
// the seek point. They run the same seek on it.
package split

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"clustertx/media"
)

// Segment is one part of a split file.
type Segment struct {
	Index    int
	Start    float64 // timestamp of its first frame (a keyframe)
	End      float64 // timestamp of the next segment's first frame; +Inf for the last
	Seek     float64 // exact seek point (< Start, > the frame before); 0 for the first segment
	Frames   int     // frames it must have
	Duration float64 // seconds of media (for progress and work)
}

// Plan is how a file is split.
type Plan struct {
	Segments []Segment
	Frames   int     // frames of the whole video stream
	Offset   float64 // how much later than the file's start its video starts (restored at the join)
}

// Joins is the number of joins between segments.
func (p *Plan) Joins() int { return len(p.Segments) - 1 }

// Cut chooses cut points for segments of about segLen seconds: the targets
// are equal shares of the duration, and each cut is the keyframe nearest
// its target (two targets never share a keyframe). It returns nil when the
// file cannot be cut in at least two segments (too short, or too few
// keyframes).
func Cut(x *media.VideoIndex, duration, start, segLen float64) *Plan {
	if x == nil || len(x.PTS) < 2 || segLen <= 0 {
		return nil
	}
	first := x.PTS[0]
	if duration <= 0 {
		duration = x.PTS[len(x.PTS)-1] - first
	}
	n := int(math.Round(duration / segLen))
	if n < 2 {
		return nil
	}
	var keys []int // frame indexes of keyframes, except the first frame
	for i := 1; i < len(x.PTS); i++ {
		if x.Key[i] {
			keys = append(keys, i)
		}
	}
	var cuts []int
	k := 0
	for s := 1; s < n; s++ {
		target := first + duration*float64(s)/float64(n)
		// advance to the keyframe nearest target, never going back
		for k+1 < len(keys) && math.Abs(x.PTS[keys[k+1]]-target) <= math.Abs(x.PTS[keys[k]]-target) {
			k++
		}
		if k >= len(keys) {
			break
		}
		if len(cuts) == 0 || keys[k] > cuts[len(cuts)-1] {
			cuts = append(cuts, keys[k])
		}
	}
	if len(cuts) == 0 {
		return nil
	}
	p := &Plan{Frames: len(x.PTS), Offset: max(0, first-start)}
	starts := append([]int{0}, cuts...)
	for i, a := range starts {
		b := len(x.PTS)
		if i+1 < len(starts) {
			b = starts[i+1]
		}
		s := Segment{Index: i, Start: x.PTS[a], End: math.Inf(1), Frames: b - a}
		if i+1 < len(starts) {
			s.End = x.PTS[b]
			s.Duration = s.End - s.Start
		} else {
			s.Duration = max(0, start+duration-s.Start)
		}
		if a > 0 {
			s.Seek = (x.PTS[a-1] + x.PTS[a]) / 2
		}
		p.Segments = append(p.Segments, s)
	}
	return p
}

// Seconds formats a timestamp for ffmpeg, exactly enough for a seek
// between two frames (microseconds, ffmpeg's internal time base).
func Seconds(t float64) string { return strconv.FormatFloat(t, 'f', 6, 64) }

// EncodeArgs builds the ffmpeg arguments between the fixed leading flags
// and the output name for one segment: the profile's input options, the
// seek, the input, then the profile's output options without its stream
// maps, then this segment's own: its video stream only, its frame count,
// no metadata or chapters (the rest carries them). stream is the video
// stream's index in input (0 in an extract).
func EncodeArgs(in, out []string, input string, s Segment, stream int) []string {
	args := append([]string(nil), in...)
	if s.Seek > 0 {
		args = append(args, "-seek_timestamp", "1", "-ss", Seconds(s.Seek))
	}
	args = append(args, "-i", "file:"+input)
	args = append(args, WithoutMaps(out)...)
	return append(args, "-map", "0:"+strconv.Itoa(stream), "-an", "-sn", "-dn",
		"-frames:v", strconv.Itoa(s.Frames), "-map_metadata", "-1", "-map_chapters", "-1")
}

// ExtractArgs builds the ffmpeg arguments (after the program and its quiet
// flags) that copy a segment's video packets, with their timestamps, for a
// host that cannot see the source. The copy starts at the keyframe at or
// before the seek point and runs a little past the segment's end.
func ExtractArgs(src string, s Segment, stream int, output string) []string {
	args := []string{"-copyts"}
	if s.Seek > 0 {
		args = append(args, "-ss", Seconds(s.Seek))
	}
	args = append(args, "-i", "file:"+src, "-map", "0:"+strconv.Itoa(stream), "-c", "copy")
	if !math.IsInf(s.End, 1) {
		args = append(args, "-to", Seconds(s.End+2))
	}
	return append(args, "-f", "matroska", "file:"+output)
}

// RestArgs builds the ffmpeg arguments that encode everything but the
// video, once for the whole file: the profile's options with its maps,
// video switched off. The rest keeps the source's chapters and metadata.
func RestArgs(in, out []string, src, output string) []string {
	args := append([]string(nil), in...)
	args = append(args, "-i", "file:"+src)
	args = append(args, out...)
	return append(args, "-vn", "file:"+output)
}

// JoinArgs builds the ffmpeg arguments that join the segments (listed in
// the concat file list) and the rest (may be "" when the output has no
// other streams) by stream copy. Chapters, metadata and attachments come
// from the source.
func (p *Plan) JoinArgs(list, rest, src, output string, attachments bool) []string {
	var args []string
	if p.Offset > 0 {
		// The joined video starts at 0; the source's started this much
		// after its audio (encoder delay, a muxer's shift): keep that.
		args = append(args, "-itsoffset", Seconds(p.Offset))
	}
	args = append(args, "-f", "concat", "-safe", "0", "-i", "file:"+list)
	srcIn := "1"
	if rest != "" {
		args = append(args, "-i", "file:"+rest)
		srcIn = "2"
	}
	args = append(args, "-i", "file:"+src, "-map", "0:v")
	if rest != "" {
		args = append(args, "-map", "1")
	}
	if attachments {
		args = append(args, "-map", srcIn+":t?")
	}
	return append(args, "-map_metadata", srcIn, "-map_chapters", srcIn, "-c", "copy", "file:"+output)
}

// ConcatList is the concat demuxer's list of the segment files, in order.
// Each segment but the last gets its exact length in the source (the time
// from its first frame to the next segment's): a container's own duration
// is padded (first timestamp, last frame's length), and trusting it would
// add a frame's worth of drift at every join.
//
// The names must be plain generated ones (letters, digits, '.', '-', '_'):
// the concat format has no way to quote a newline, which would add
// directives of its own (a "file" line reading another file of the folder).
func (p *Plan) ConcatList(files []string) (string, error) {
	var b strings.Builder
	b.WriteString("ffconcat version 1.0\n")
	for i, f := range files {
		if !plainName(f) {
			return "", fmt.Errorf("segment file name %q is not a plain generated name", f)
		}
		fmt.Fprintf(&b, "file '%s'\n", f)
		if i < len(p.Segments) && !math.IsInf(p.Segments[i].End, 1) {
			fmt.Fprintf(&b, "duration %s\n", Seconds(p.Segments[i].End-p.Segments[i].Start))
		}
	}
	return b.String(), nil
}

func plainName(f string) bool {
	if f == "" {
		return false
	}
	for _, c := range f {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// WithoutMaps drops the stream-selection options a segment must not carry
// (it selects its video stream itself).
func WithoutMaps(out []string) []string {
	var res []string
	for i := 0; i < len(out); i++ {
		switch out[i] {
		case "-map", "-map_metadata", "-map_chapters":
			i++ // and its value
			continue
		}
		res = append(res, out[i])
	}
	return res
}

// Unsplittable reports why a profile's options cannot be split (empty when
// they can): options that work on the whole timeline or on several
// streams at once.
func Unsplittable(in, out []string) string {
	for _, w := range append(append([]string(nil), in...), out...) {
		switch {
		case w == "-filter_complex" || w == "-lavfi" || strings.HasPrefix(w, "-filter_complex"):
			return "the profile uses -filter_complex"
		case w == "-ss" || w == "-t" || w == "-to" || w == "-sseof":
			return "the profile sets " + w
		case w == "-pass" || strings.HasPrefix(w, "-pass:"):
			return "the profile runs a multi-pass encode"
		case w == "-r" || strings.HasPrefix(w, "-r:") || w == "-fpsmax" || w == "-vsync" || w == "-fps_mode":
			return "the profile changes the frame rate (" + w + ")"
		}
	}
	for i, w := range out {
		if (w == "-vf" || w == "-filter:v" || w == "-filter") && i+1 < len(out) {
			for _, f := range []string{"fps", "framerate", "select", "minterpolate", "tinterlace", "framestep", "decimate", "telecine", "yadif", "bwdif", "trim", "tpad", "loop", "reverse", "setpts"} {
				for _, part := range strings.Split(out[i+1], ",") {
					name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
					if name == f {
						return "the profile's filter " + f + " works on the timeline"
					}
				}
			}
		}
	}
	return ""
}
