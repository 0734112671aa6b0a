// Package progress parses ffmpeg's `-progress pipe:1` output: key=value
// blocks ending in progress=continue|end, stable across ffmpeg 4–7 (unlike
// the human stats line, whose kB became KiB in ffmpeg 7). It is pure.
package progress

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Progress is the latest state of one encode, from ffmpeg's
// `-progress pipe:1` key=value blocks (stable across ffmpeg 4–7, unlike the
// human stats line).
type Progress struct {
	OutTime float64 // media seconds encoded
	Percent float64 // 0-100, of the source duration
	Speed   float64 // × realtime
	FPS     float64
	Size    int64 // output bytes so far
	Ended   bool
	Updated time.Time // when the last block arrived (liveness)
}

// Parser is an io.Writer fed with ffmpeg's stdout. It calls OnUpdate (if
// set) with every complete block, from the writing goroutine.
type Parser struct {
	mu       sync.Mutex
	duration float64
	onUpdate func(Progress)
	partial  []byte
	cur      Progress
	last     Progress
}

// NewParser returns a parser for a source of duration seconds (0 unknown).
func NewParser(duration float64, onUpdate func(Progress)) *Parser {
	return &Parser{duration: duration, onUpdate: onUpdate}
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
func (p *Parser) line(l string) bool {
	k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
	if !ok {
		return false
	}
	v = strings.TrimSpace(v)
	switch k {
	case "out_time_us", "out_time_ms": // both are microseconds (ffmpeg trac #7345)
		if us, err := strconv.ParseInt(v, 10, 64); err == nil && us >= 0 {
			p.cur.OutTime = float64(us) / 1e6
		}
	case "fps":
		p.cur.FPS, _ = strconv.ParseFloat(v, 64)
	case "speed":
		p.cur.Speed, _ = strconv.ParseFloat(strings.TrimSuffix(v, "x"), 64)
	case "total_size":
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			p.cur.Size = n
		}
	case "progress":
		p.cur.Ended = v == "end"
		if p.duration > 0 {
			p.cur.Percent = min(100, max(0, 100*p.cur.OutTime/p.duration))
		}
		p.cur.Updated = time.Now()
		p.last = p.cur
		return true
	}
	return false
}

// Last returns the last complete progress block.
func (p *Parser) Last() Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}
