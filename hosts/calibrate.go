package hosts

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"clustertx/progress"
)

// The calibration encode's generated input: a typical resolution, so that
// the speed measured is in the same units as a real job's work (source
// pixel-seconds), and a synthetic source, so that nothing is uploaded.
const (
	CalibWidth  = 1280
	CalibHeight = 720
	CalibRate   = 25
)

// Calibration is what a short test encode measured on a host.
type Calibration struct {
	Speed  float64       // source pixel-seconds encoded per wall second (the queue's work units)
	Frames int64         // frames encoded in the measured window
	Window time.Duration // the measured window: first progress block to last
	Total  time.Duration // the whole encode, start-up and stop included
}

// Calibrate runs a short real encode on the host: ffmpeg with the given
// video output options (a profile's, without its audio, subtitle and
// mapping options) on a generated lavfi testsrc2 input at 1280x720, 25
// frames/s, to the null muxer, reading its -progress output. It measures
// from the first progress block that reports frames (SSH session, ffmpeg
// start-up and the encoder's lookahead are left out) for window, then stops
// the encode. The whole call ends by ctx's deadline: a host whose encode
// has not produced two progress blocks by then gets an error, as does one
// whose ffmpeg fails (an encoder it lacks, an option it does not know).
// The input lasts 60 s (1,500 frames): a safety net should the encode
// outlive its session. Windows hosts are not calibrated: a cancelled
// command may keep running there (see SSHTransport.Exec).
func Calibrate(ctx context.Context, def *Def, t Transport, video []string, window time.Duration) (Calibration, error) {
	if def.Windows() {
		return Calibration{}, errors.New("no calibration encode on Windows hosts (a stopped command may keep running there)")
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	src := fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", CalibWidth, CalibHeight, CalibRate)
	argv := append(FFmpegHead(def.FFmpegPath(), "error"), "-f", "lavfi", "-i", src, "-t", "60")
	argv = append(argv, video...)
	argv = append(argv, "-an", "-sn", "-dn", "-stats_period", "0.1", "-progress", "pipe:1", "-f", "null", "-")

	var mu sync.Mutex
	var first, last progress.Progress
	p := progress.NewParser(0, func(pr progress.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if pr.Frame <= 0 {
			return
		}
		if first.Frame == 0 {
			first = pr
			return
		}
		last = pr
		if last.Updated.Sub(first.Updated) >= window {
			cancel() // measured enough: stop the encode
		}
	})
	stderr := &TailBuffer{Max: 5}
	err := t.Exec(ctx, argv, p, stderr)
	mu.Lock()
	defer mu.Unlock()
	c := Calibration{Total: time.Since(start)}
	if last.Frame > first.Frame && first.Frame > 0 {
		c.Frames = last.Frame - first.Frame
		c.Window = last.Updated.Sub(first.Updated)
	}
	if c.Window > 0 && (err == nil || ctx.Err() != nil) {
		c.Speed = float64(c.Frames) / CalibRate * CalibWidth * CalibHeight / c.Window.Seconds()
		return c, nil
	}
	if err == nil || ctx.Err() != nil {
		return c, errors.New("calibration encode: too slow to measure in the time allowed")
	}
	if msg := firstLine(stderr.String()); msg != "" {
		return c, fmt.Errorf("calibration encode: %s", msg)
	}
	return c, fmt.Errorf("calibration encode: %w", err)
}

// FormatSpeed shows a calibrated speed (pixel-seconds per second) as the
// multiple of real time at which it would encode 1080p: "2.4× 1080p".
func FormatSpeed(speed float64) string {
	return strconv.FormatFloat(speed/(1920*1080), 'f', 1, 64) + "× 1080p"
}
