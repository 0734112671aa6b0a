package media

import (
	"context"
	"fmt"
	"math"
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
// stream if it had one, and an audio stream if it had any. Callers that know
// the command's stream maps set Audio more precisely.
func ExpectFrom(src *Info) Expect {
	e := Expect{Duration: src.Duration, Video: src.Video != nil}
	if len(src.Audio) > 0 {
		e.Audio = 1
	}
	return e
}

// DurationTolerance is the allowed difference between source and output
// durations: max(0.5 s, 1 %).
func DurationTolerance(d float64) float64 { return math.Max(0.5, d*0.01) }

// Verify probes an output and checks it against e, with one ffprobe run
// that also reads the packets of the last seconds. It returns the probe of
// the output, or a *VerifyError saying what is wrong.
func (p *Prober) Verify(ctx context.Context, path string, e Expect) (*Info, error) {
	var tailFrom float64
	if e.Duration > 0 {
		tailFrom = math.Max(0.001, e.Duration-10)
	}
	out, end, err := p.probe(ctx, path, tailFrom)
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
		// tail is missing (a truncated copy, a killed muxer), so the last
		// packets must reach the end too.
		if diff := e.Duration - end; diff > DurationTolerance(e.Duration) {
			return out, &VerifyError{path, fmt.Sprintf("its packets end at %.2fs, the source lasts %.2fs (truncated output?)", end, e.Duration)}
		}
	}
	return out, nil
}

func reasonOf(err error) string {
	if pe, ok := err.(*ProbeError); ok {
		return pe.Reason
	}
	return err.Error()
}
