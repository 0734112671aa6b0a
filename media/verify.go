package media

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// VerifyError says why an output was rejected. The original is kept.
type VerifyError struct {
	Path   string
	Reason string
}

func (e *VerifyError) Error() string { return "output rejected: " + e.Reason }

// Expect is what a verified output must have.
type Expect struct {
	Duration float64 // seconds; 0 skips the duration check
	Video    bool    // a video stream must be present
	Audio    int     // at least this many audio streams
}

// ExpectFrom derives the expectation from the source: its duration, a video
// stream if it had one, and audio if it had any and the profile keeps audio.
func ExpectFrom(src *Info, keepsAudio bool) Expect {
	e := Expect{Duration: src.Duration, Video: src.Video != nil}
	if keepsAudio && len(src.Audio) > 0 {
		e.Audio = 1
	}
	return e
}

// DurationTolerance is the allowed difference between source and output
// durations: max(0.5 s, 1 %).
func DurationTolerance(d float64) float64 { return math.Max(0.5, d*0.01) }

// Verify probes an output and checks it against e. It returns the probe of
// the output, or a *VerifyError saying what is wrong.
func (p *Prober) Verify(ctx context.Context, path string, e Expect) (*Info, error) {
	out, err := p.Probe(ctx, path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &VerifyError{path, "ffprobe cannot read it: " + reasonOf(err)}
	}
	if e.Video && out.Video == nil {
		return out, &VerifyError{path, "it has no video stream"}
	}
	if len(out.Audio) < e.Audio {
		return out, &VerifyError{path, fmt.Sprintf("it has %d audio streams, expected at least %d", len(out.Audio), e.Audio)}
	}
	if e.Duration > 0 {
		if diff := math.Abs(out.Duration - e.Duration); diff > DurationTolerance(e.Duration) {
			return out, &VerifyError{path, fmt.Sprintf("duration %.2fs differs from the source's %.2fs by more than %.2fs",
				out.Duration, e.Duration, DurationTolerance(e.Duration))}
		}
		// The container header can claim the full duration of a file whose
		// tail is missing (a truncated copy, a killed muxer), so read the
		// last packets and check they reach the end.
		end, err := p.lastPacketEnd(ctx, path, out)
		if err != nil {
			return out, &VerifyError{path, "cannot read its last packets: " + reasonOf(err)}
		}
		if diff := e.Duration - end; diff > DurationTolerance(e.Duration) {
			return out, &VerifyError{path, fmt.Sprintf("its packets end at %.2fs, the source lasts %.2fs (truncated output?)", end, e.Duration)}
		}
	}
	return out, nil
}

// lastPacketEnd returns the end time (pts + duration) of the last packet of
// the main stream, reading only the last few seconds of the file.
func (p *Prober) lastPacketEnd(ctx context.Context, path string, info *Info) (float64, error) {
	stream := "v:0"
	if info.Video == nil {
		stream = "0"
	}
	from := math.Max(0, info.Duration-10)
	out, err := p.run(ctx, "-v", "error", "-read_intervals", fmt.Sprintf("%.3f%%", from),
		"-select_streams", stream, "-show_entries", "packet=pts_time,duration_time",
		"-of", "csv=p=0", "file:"+path)
	if err != nil {
		return 0, err
	}
	var end float64
	for _, line := range strings.Split(out, "\n") {
		pts, dur, _ := strings.Cut(strings.TrimSpace(line), ",")
		t, err := strconv.ParseFloat(pts, 64)
		if err != nil {
			continue
		}
		d, _ := strconv.ParseFloat(strings.TrimSuffix(dur, ","), 64)
		end = math.Max(end, t+d)
	}
	return end, nil
}

func reasonOf(err error) string {
	if pe, ok := err.(*ProbeError); ok {
		return pe.Reason
	}
	return err.Error()
}
