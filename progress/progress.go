// Package progress parses ffmpeg's `-progress pipe:1` output: key=value
// blocks ending in progress=continue|end, stable across ffmpeg 4–7 (unlike
// the human stats line, whose kB became KiB in ffmpeg 7, and which this
// package does not read).
//
// Position comes from out_time_us (ffmpeg ≥ 4.1), else out_time_ms (which
// is also microseconds, ffmpeg trac #7345), else out_time (HH:MM:SS.micro).
// Early blocks may carry N/A or -9223372036854775807; those are clamped to
// 0, and positions are clamped to the source duration when it is known.
//
// The package is pure: it runs nothing and only parses what it is fed.
package progress

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Progress is the latest state of one encode, from ffmpeg's
// `-progress pipe:1` key=value blocks (stable across ffmpeg 4–7, unlike the
// human stats line).
type Progress struct {
	OutTime  float64 // media seconds encoded, in [0, Duration] when Duration is known
	Duration float64 // source media seconds the parser was given (0 unknown)
	Percent  float64 // 0-100, of the source duration (0 when unknown)
	Speed    float64 // × realtime (0 unknown, e.g. speed=N/A)
	FPS      float64
	Frame    int64
	Bitrate  float64   // output kbit/s so far (0 unknown)
	Size     int64     // output bytes so far
	Ended    bool      // progress=end: ffmpeg finished (successfully or not)
	Updated  time.Time // when the last block arrived (liveness)
}

// Fraction is the part of the source encoded, in [0, 1]; ok is false when
// the duration is unknown.
func (p Progress) Fraction() (f float64, ok bool) {
	if p.Duration <= 0 {
		return 0, false
	}
	return clamp(p.OutTime/p.Duration, 0, 1), true
}

// EstimatedSize extrapolates the final output size from the bytes written
// so far and the fraction done; ok is false while that is not meaningful
// (duration unknown, nothing written, or under 1% done).
func (p Progress) EstimatedSize() (n int64, ok bool) {
	f, ok := p.Fraction()
	if !ok || p.Size <= 0 || f < 0.01 {
		return 0, false
	}
	return int64(float64(p.Size) / f), true
}

// ETA estimates the wall time left. It prefers ffmpeg's own speed (media
// seconds per wall second) and falls back to extrapolating elapsed, the
// wall time since the encode started. ok is false when neither works
// (duration unknown, or nothing encoded yet).
func (p Progress) ETA(elapsed time.Duration) (d time.Duration, ok bool) {
	f, ok := p.Fraction()
	if !ok {
		return 0, false
	}
	if p.Ended || f >= 1 {
		return 0, true
	}
	left := p.Duration - p.OutTime
	if p.Speed > 0 {
		return seconds(left / p.Speed), true
	}
	if f > 0 && elapsed > 0 {
		return seconds(elapsed.Seconds() * (1 - f) / f), true
	}
	return 0, false
}

func seconds(s float64) time.Duration {
	if s > 1e9 || math.IsNaN(s) { // ~31 years: not an estimate any more
		s = 1e9
	}
	return time.Duration(s * float64(time.Second))
}

func clamp(x, lo, hi float64) float64 { return min(hi, max(lo, x)) }

// Parser is an io.Writer fed with ffmpeg's stdout. It calls OnUpdate (if
// set) with every complete block, from the writing goroutine.
type Parser struct {
	mu       sync.Mutex
	duration float64
	onUpdate func(Progress)
	partial  []byte
	cur      Progress
	last     Progress
	// which position key set cur.OutTime in this block: 3 out_time_us,
	// 2 out_time_ms, 1 out_time, 0 none (a lower one never overrides).
	posRank int
}

// NewParser returns a parser for a source of duration seconds (0 unknown).
func NewParser(duration float64, onUpdate func(Progress)) *Parser {
	if duration < 0 || math.IsNaN(duration) || math.IsInf(duration, 0) {
		duration = 0
	}
	return &Parser{duration: duration, onUpdate: onUpdate, cur: Progress{Duration: duration}, last: Progress{Duration: duration}}
}

func (p *Parser) Write(b []byte) (int, error) {
	p.mu.Lock()
	var updates []Progress
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexAny(p.partial, "\r\n")
		if i < 0 {
			break
		}
		if p.line(string(p.partial[:i])) {
			updates = append(updates, p.cur)
		}
		p.partial = p.partial[i+1:]
	}
	if len(p.partial) > 4096 { // not progress output; don't grow forever
		p.partial = p.partial[:0]
	}
	p.mu.Unlock()
	if p.onUpdate != nil { // outside the lock: the callback may call Last
		for _, u := range updates {
			p.onUpdate(u)
		}
	}
	return len(b), nil
}

// line consumes one key=value line; it reports whether a block ended.
// Values that do not parse (N/A, empty) leave the previous value.
func (p *Parser) line(l string) bool {
	k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
	if !ok {
		return false
	}
	v = strings.TrimSpace(v)
	switch k {
	case "out_time_us": // since ffmpeg 4.1
		p.position(v, 3)
	case "out_time_ms": // microseconds too (ffmpeg trac #7345)
		p.position(v, 2)
	case "out_time":
		if p.posRank <= 1 {
			if s, ok := parseClock(v); ok {
				p.setOutTime(s)
				p.posRank = 1
			}
		}
	case "frame":
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			p.cur.Frame = n
		}
	case "fps":
		if f, ok := parseNonNeg(v); ok {
			p.cur.FPS = f
		}
	case "speed":
		if f, ok := parseNonNeg(strings.TrimSpace(strings.TrimSuffix(v, "x"))); ok {
			p.cur.Speed = f
		} else {
			p.cur.Speed = 0 // N/A: unknown now, an old value would mislead ETA
		}
	case "bitrate":
		if f, ok := parseNonNeg(strings.TrimSpace(strings.TrimSuffix(v, "kbits/s"))); ok {
			p.cur.Bitrate = f
		}
	case "total_size":
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			p.cur.Size = n
		}
	case "progress":
		p.cur.Ended = v == "end"
		if p.duration > 0 {
			p.cur.Percent = clamp(100*p.cur.OutTime/p.duration, 0, 100)
		}
		p.cur.Updated = time.Now()
		p.last = p.cur
		p.posRank = 0
		return true
	}
	return false
}

// position handles out_time_us / out_time_ms: integer microseconds.
func (p *Parser) position(v string, rank int) {
	if p.posRank > rank {
		return
	}
	us, err := strconv.ParseInt(v, 10, 64)
	if err != nil { // N/A
		return
	}
	p.setOutTime(float64(us) / 1e6)
	p.posRank = rank
}

// setOutTime clamps s into [0, duration] (negative early values, e.g.
// -9223372036854775807, become 0).
func (p *Parser) setOutTime(s float64) {
	if math.IsNaN(s) || s < 0 {
		s = 0
	}
	if p.duration > 0 && s > p.duration {
		s = p.duration
	}
	p.cur.OutTime = s
}

func parseNonNeg(v string) (float64, bool) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// parseClock parses ffmpeg's out_time, [-]HH:MM:SS.ffffff.
func parseClock(v string) (float64, bool) {
	neg := strings.HasPrefix(v, "-")
	v = strings.TrimPrefix(v, "-")
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return 0, false
	}
	h, err1 := strconv.ParseFloat(parts[0], 64)
	m, err2 := strconv.ParseFloat(parts[1], 64)
	s, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, false
	}
	t := h*3600 + m*60 + s
	if neg {
		t = -t
	}
	return t, true
}

// Last returns the last complete progress block.
func (p *Parser) Last() Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}
