package hosts

import (
	"bytes"
	"context"
	"sync"

	"clustertx/internal/encoder"
)

// EncoderSet is what a host's ffmpeg can encode with, learned once per run:
// the `ffmpeg -encoders` list, and for hardware encoders (which Debian's
// ffmpeg lists whether or not the hardware exists) a one-frame test encode,
// run the first time a profile needs that encoder and then remembered.
type EncoderSet struct {
	def    *Def
	names  []string
	listed map[string]bool

	mu     sync.Mutex
	tested map[string]string // hardware encoder → "" (works) or why not
}

// Missing returns why each encoder that args (a profile's ffmpeg arguments)
// needs cannot be used on the host; empty when the profile can run there.
func (s *EncoderSet) Missing(ctx context.Context, t Transport, args []string) map[string]string {
	var out map[string]string
	add := func(enc, why string) {
		if out == nil {
			out = map[string]string{}
		}
		out[enc] = why
	}
	for _, enc := range encoder.In(args) {
		if !s.listed[enc] {
			add(enc, "not in this host's ffmpeg -encoders")
			continue
		}
		if !IsHWEncoder(enc) || !verifiable(enc) {
			continue
		}
		s.mu.Lock()
		why, done := s.tested[enc]
		s.mu.Unlock()
		if !done {
			ffmpeg := s.def.FFmpegPath()
			why = testEncode(ctx, t, ffmpeg, enc)
			s.mu.Lock()
			s.tested[enc] = why
			s.mu.Unlock()
		}
		if why != "" {
			add(enc, "test encode failed: "+why)
		}
	}
	return out
}

func runner(ctx context.Context, t Transport) runFunc {
	return func(argv ...string) (string, error) {
		var out bytes.Buffer
		err := t.Exec(ctx, argv, &out, nil)
		return out.String(), err
	}
}

// Load reads the host's 1-minute load average through the transport
// (POSIX hosts; Windows has no load average).
func Load(ctx context.Context, t Transport) (float64, error) {
	l, err := loadAvg(runner(ctx, t))
	return l[0], err
}

// Cores reads the host's CPU count (1 when it cannot be read).
func Cores(ctx context.Context, t Transport) int {
	n, err := cores(runner(ctx, t))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// Listed reports whether enc is in the host's `ffmpeg -encoders`.
func (s *EncoderSet) Listed(enc string) bool { return s.listed[enc] }

// NewEncoderSet is the EncoderSet of a host whose `ffmpeg -encoders` was
// already read (Inventory's Encoders).
func NewEncoderSet(def *Def, names []string) *EncoderSet {
	s := &EncoderSet{def: def, names: names, listed: map[string]bool{}, tested: map[string]string{}}
	for _, e := range names {
		s.listed[e] = true
	}
	return s
}

// Names lists the host's encoders in `ffmpeg -encoders` order.
func (s *EncoderSet) Names() []string { return s.names }
