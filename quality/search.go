package quality

import (
	"fmt"
	"math"
)

// Obs is one round's result: every sample encoded at Level.
type Obs struct {
	Level    float64
	Score    float64 // mean over the samples, weighted by their length
	Bytes    int64   // encoded samples, total
	SrcBytes int64   // the samples as cut from the source, total
}

// SizePct is the encoded size in % of the source's, on the samples.
func (o Obs) SizePct() float64 {
	if o.SrcBytes <= 0 {
		return 0
	}
	return 100 * float64(o.Bytes) / float64(o.SrcBytes)
}

// Search is one file's search for the level that just meets the target.
// It is not safe for concurrent use: the caller runs a round, then Adds.
type Search struct {
	c      *Config
	lvl    Level
	lo, hi float64 // bounds, in levels
	start  float64
	obs    []Obs
	stop   string // why the search ended early, "" while it goes on
}

// NewSearch starts a search. start is the profile's own level (NaN when it
// sets none); it is the first level tried, clamped to the bounds.
func NewSearch(c *Config, l Level, start float64) (*Search, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	lo, hi, err := c.Bounds(l)
	if err != nil {
		return nil, err
	}
	if math.IsNaN(start) {
		start = (lo + hi) / 2
	}
	s := &Search{c: c, lvl: l, lo: lo, hi: hi}
	s.start = s.round(math.Min(math.Max(start, lo), hi))
	return s, nil
}

// Config is the search's config.
func (s *Search) Config() *Config { return s.c }

// Observations are the rounds so far, in the order they ran.
func (s *Search) Observations() []Obs { return append([]Obs(nil), s.obs...) }

// Add records a round.
func (s *Search) Add(o Obs) { s.obs = append(s.obs, o) }

// Everything below works in "up" coordinates, where up grows with
// quality (and size): up = level for HigherIsBetter encoders, -level for
// the others (CRF); and in the metric's interpolation scale (t).

func (s *Search) up(level float64) float64 {
	if s.lvl.HigherIsBetter {
		return level
	}
	return -level
}

func (s *Search) level(up float64) float64 { return s.up(up) } // the map is its own inverse

// round snaps a level to a whole number within the bounds. Every encoder
// clustertx knows takes whole levels (x264/x265 take fractions too, but a
// fraction of a CRF step is below what the samples can tell apart).
func (s *Search) round(level float64) float64 {
	return math.Min(math.Max(math.Round(level), math.Ceil(s.lo-1e-9)), math.Floor(s.hi+1e-9))
}

// T is the interpolation scale of a score: SSIM in decibels, the others
// as they are.
func T(m Metric, score float64) float64 {
	if m == SSIM {
		return -10 * math.Log10(math.Max(1e-10, 1-score))
	}
	return score
}

// slope is a typical change of T per level step of a CRF-like encoder,
// used while there is one observation only.
func slope(m Metric) float64 {
	switch m {
	case VMAF:
		return 1.2
	case SSIM:
		return 0.35
	default:
		return 0.4
	}
}

// tolerance is how close above the target a score may be for the search
// to stop there (in T units): well under one level step.
func tolerance(m Metric) float64 {
	switch m {
	case VMAF:
		return 0.3
	default:
		return 0.1
	}
}

// stopMargin is how far (in levels) below the passing level the
// interpolated crossing must lie for the search to stop without
// measuring the level in between: a third of a level, so that a crossing
// predicted near a level boundary is still measured.
const stopMargin = 0.3

// maxJump bounds one extrapolated step, in levels.
const maxJump = 12

func (s *Search) passes(o Obs) bool { return o.Score >= s.c.Target }

// Next returns the level the next round encodes, or false when the search
// is over (then call Decide).
func (s *Search) Next() (float64, bool) {
	if s.stop != "" || len(s.obs) >= MaxRounds {
		return 0, false
	}
	if len(s.obs) == 0 {
		return s.start, true
	}
	target := T(s.c.Metric, s.c.Target)
	pass, fail := s.bracket()
	upLo, upHi := math.Min(s.up(s.lo), s.up(s.hi)), math.Max(s.up(s.lo), s.up(s.hi))
	var next float64 // in up coordinates
	switch {
	case pass != nil && fail != nil:
		// Bracketed: the target lies between a failing (lower) and a
		// passing (higher) level.
		a, b := s.up(fail.Level), s.up(pass.Level)
		if b-a <= 1+1e-9 {
			s.stop = "bracketed"
			return 0, false
		}
		if T(s.c.Metric, pass.Score)-target <= tolerance(s.c.Metric) {
			s.stop = "close enough"
			return 0, false
		}
		x := s.interpolate(fail, pass, target)
		if b-x <= 1-stopMargin {
			// The curve through the observations crosses the target less
			// than a level below the passing one: the next level down is
			// predicted to fail, by stopMargin levels at least, so
			// measuring it would most likely buy nothing.
			s.stop = "the next level down is predicted to fail"
			return 0, false
		}
		// The lowest level predicted to pass: if it does, the round
		// after usually stops by the rule above.
		next = math.Ceil(x - 1e-9)
		next = math.Min(math.Max(next, a+1), b-1) // strictly inside
	case pass != nil:
		// Every level so far passes: go down (smaller) toward the target.
		b := s.up(pass.Level)
		if b <= upLo+1e-9 {
			s.stop = "the lowest level allowed passes"
			return 0, false
		}
		if T(s.c.Metric, pass.Score)-target <= tolerance(s.c.Metric) {
			s.stop = "close enough"
			return 0, false
		}
		next = b - s.step(pass, T(s.c.Metric, pass.Score)-target)
		next = math.Max(next, upLo)
	default:
		// Every level so far fails: go up (better).
		a := s.up(fail.Level)
		if a >= upHi-1e-9 {
			s.stop = "the best level allowed fails"
			return 0, false
		}
		if fail.SizePct() > s.c.MaxSizePct {
			s.stop = "over the size cap"
			return 0, false
		}
		next = a + s.step(fail, target-T(s.c.Metric, fail.Score))
		next = math.Min(next, upHi)
	}
	lvl := s.round(s.level(next))
	for _, o := range s.obs {
		if o.Level == lvl {
			s.stop = "no new level to try"
			return 0, false
		}
	}
	return lvl, true
}

// interpolate returns where (in up coordinates, strictly between fail and
// pass) the score curve crosses target: on the parabola through the
// bracket and the observation nearest to it when there is a third one
// no farther from the bracket than its width
// (score curves bend: VMAF flattens toward 100, so a straight line creeps
// toward the target from one side), else on the line through the two.
func (s *Search) interpolate(fail, pass *Obs, target float64) float64 {
	m := s.c.Metric
	us := []float64{s.up(fail.Level), s.up(pass.Level)}
	ts := []float64{T(m, fail.Score), T(m, pass.Score)}
	var third *Obs
	for i := range s.obs {
		o := &s.obs[i]
		if o.Level == fail.Level || o.Level == pass.Level {
			continue
		}
		d := math.Min(math.Abs(s.up(o.Level)-us[0]), math.Abs(s.up(o.Level)-us[1]))
		if third == nil || d < math.Min(math.Abs(s.up(third.Level)-us[0]), math.Abs(s.up(third.Level)-us[1])) {
			third = o
		}
	}
	// A third point far outside the bracket says little about the curve
	// inside it.
	if third != nil && math.Min(math.Abs(s.up(third.Level)-us[0]), math.Abs(s.up(third.Level)-us[1])) <= math.Abs(us[1]-us[0]) {
		us, ts = append(us, s.up(third.Level)), append(ts, T(m, third.Score))
	}
	if ts[1] <= ts[0] {
		return (us[0] + us[1]) / 2
	}
	// p is the interpolating polynomial (Lagrange) through the points.
	p := func(u float64) float64 {
		var sum float64
		for i := range us {
			term := ts[i]
			for j := range us {
				if j != i {
					term *= (u - us[j]) / (us[i] - us[j])
				}
			}
			sum += term
		}
		return sum
	}
	// p(a) < target <= p(b): bisect p (cheap, and sure to find a crossing
	// even where a parabola is not monotone).
	a, b := us[0], us[1]
	for range 60 {
		mid := (a + b) / 2
		if p(mid) < target {
			a = mid
		} else {
			b = mid
		}
	}
	return b
}

// step is how many levels to move from o to cover a score gap of gap (T
// units, > 0): from the slope between o and its nearest other observation
// when there is one, else a typical slope; at least one level, at most
// maxJump, and a quarter more than the estimate, so that an unbracketed
// target is bracketed by the next round rather than approached.
func (s *Search) step(o *Obs, gap float64) float64 {
	k := slope(s.c.Metric)
	if other := s.nearest(o); other != nil {
		du := s.up(o.Level) - s.up(other.Level)
		dt := T(s.c.Metric, o.Score) - T(s.c.Metric, other.Score)
		if du != 0 && dt/du > 0 {
			k = dt / du
		}
	}
	return math.Min(math.Max(1, math.Ceil(1.25*gap/k)), maxJump)
}

func (s *Search) nearest(o *Obs) *Obs {
	var best *Obs
	for i := range s.obs {
		x := &s.obs[i]
		if x.Level == o.Level {
			continue
		}
		if best == nil || math.Abs(x.Level-o.Level) < math.Abs(best.Level-o.Level) {
			best = x
		}
	}
	return best
}

// bracket returns the passing observation with the lowest quality (the
// smallest passing level) and the failing one with the highest quality
// below it. A failing level above a passing one (noise, a non-monotone
// curve) is ignored for the bracket.
func (s *Search) bracket() (pass, fail *Obs) {
	for i := range s.obs {
		o := &s.obs[i]
		if s.passes(*o) && (pass == nil || s.up(o.Level) < s.up(pass.Level)) {
			pass = o
		}
	}
	for i := range s.obs {
		o := &s.obs[i]
		if s.passes(*o) || pass != nil && s.up(o.Level) >= s.up(pass.Level) {
			continue
		}
		if fail == nil || s.up(o.Level) > s.up(fail.Level) {
			fail = o
		}
	}
	return pass, fail
}

// Decision is what a search concluded.
type Decision struct {
	Met     bool    // a level meets the target within the size cap
	Level   float64 // the chosen level (Met), else the best one tried
	Score   float64 // its score on the samples: the predicted score
	SizePct float64 // its size in % of the source on the samples
	Rounds  int     // rounds run (each encodes every sample once)
	Reason  string  // why the target cannot be met (not Met)
}

// PredictedBytes scales a source size by the sample size ratio.
func (d Decision) PredictedBytes(source int64) int64 {
	return int64(math.Round(float64(source) * d.SizePct / 100))
}

// Decide returns the search's result: the passing level with the smallest
// output, or why there is none within the size cap.
func (s *Search) Decide() Decision {
	d := Decision{Rounds: len(s.obs)}
	if len(s.obs) == 0 {
		d.Reason = "no sample was encoded"
		return d
	}
	pass, _ := s.bracket()
	target := s.c.Metric.Label() + " " + fmtNum(s.c.Target)
	if pass == nil {
		best := s.obs[0]
		for _, o := range s.obs {
			if o.Score > best.Score {
				best = o
			}
		}
		d.Level, d.Score, d.SizePct = best.Level, best.Score, best.SizePct()
		switch {
		case s.stop == "over the size cap":
			d.Reason = fmt.Sprintf("%s not reached within max_size %s%%: level %s scores %s and is already %.0f%% of the source on the samples",
				target, fmtNum(s.c.MaxSizePct), fmtNum(best.Level), FormatScore(s.c.Metric, best.Score), best.SizePct())
		case s.stop == "the best level allowed fails":
			d.Reason = fmt.Sprintf("%s not reached: the best level allowed, %s, scores %s", target, fmtNum(best.Level), FormatScore(s.c.Metric, best.Score))
		default:
			d.Reason = fmt.Sprintf("%s not reached in %d rounds: the best level tried, %s, scores %s", target, len(s.obs), fmtNum(best.Level), FormatScore(s.c.Metric, best.Score))
		}
		return d
	}
	d.Level, d.Score, d.SizePct = pass.Level, pass.Score, pass.SizePct()
	if d.SizePct > s.c.MaxSizePct {
		d.Reason = fmt.Sprintf("%s needs level %s or better, which is %.0f%% of the source on the samples, above max_size %s%%",
			target, fmtNum(pass.Level), d.SizePct, fmtNum(s.c.MaxSizePct))
		return d
	}
	d.Met = true
	return d
}

// Levels lists the levels tried, in the order they ran.
func (s *Search) Levels() []float64 {
	var out []float64
	for _, o := range s.obs {
		out = append(out, o.Level)
	}
	return out
}

// FormatScore prints a score as the metric's users read it.
func FormatScore(m Metric, v float64) string {
	switch m {
	case SSIM:
		return fmt.Sprintf("%.4f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// Start is the first level the search tries; Lo and Hi its bounds.
func (s *Search) Start() float64 { return s.start }

// Range returns the bounds of the levels the search may try.
func (s *Search) Range() (lo, hi float64) { return s.lo, s.hi }
