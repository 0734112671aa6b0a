package quality

import (
	"math"
	"sort"
)

// Sample is one stretch of the source the search encodes: it starts at a
// keyframe (so it can be cut by stream copy) and lasts Duration seconds.
type Sample struct {
	Index    int
	Start    float64 // timestamp of its first frame, a keyframe
	Seek     float64 // what -ss is given: a hair after Start, before the next frame
	Duration float64
	Whole    bool // the sample is the whole film (too short to sample)
}

// Placement constants.
const (
	// MinSampleSeconds is the shortest sample: shorter ones measure the
	// encoder's start-up more than the film.
	MinSampleSeconds = 2
	// minSamples is the fewest samples a film long enough for them gets:
	// one sample alone would judge the film by one scene.
	minSamples = 2
	// edgeShare of the film at each end holds no sample (logos, credits).
	edgeShare = 0.05
	// budgetShare bounds what one round encodes: the samples together
	// take at most this share of the film, so that a search of three to
	// four rounds encodes about a tenth of the film's length (each
	// sample's fixed costs, ffmpeg's start and the measurement, come on
	// top). ab-av1 samples a similar share: 20 s every 12 minutes.
	budgetShare = 1.0 / 30
)

// Place chooses where the samples of a film of duration seconds are cut,
// given its keyframe timestamps (ascending) and the first frame after each
// (next[i] follows keys[i]; 0 when unknown). The samples are spread evenly
// over the film without its first and last 5 %, each starting at the
// keyframe at or before its even position. Their length is
// c.SampleSeconds, shortened on a short film so that together they take
// at most 1/30 of it; they are never under MinSampleSeconds, so a film
// for which even that is too much gets fewer samples (at least two); a
// film too short for those, with gaps as long as the samples between
// them, gets fewer still, and one too short for a single sample and its
// gap is sampled whole. Samples never overlap; two that would start at the
// same keyframe are one.
func Place(c *Config, duration float64, keys, next []float64) []Sample {
	n := max(1, c.Samples)
	length := c.SampleSeconds
	if length <= 0 {
		length = DefaultSampleSeconds
	}
	budget := duration * budgetShare
	length = min(length, max(MinSampleSeconds, budget/float64(n)))
	if n > minSamples && float64(n)*length > budget {
		// Samples at the shortest length still take more than the
		// budget: fewer of them.
		n = max(minSamples, int(budget/length))
	}
	usable := duration * (1 - 2*edgeShare)
	if fit := int(usable / length / 2); fit < n { // leave gaps as long as the samples
		n = fit
	}
	if n < 1 || len(keys) == 0 || duration <= 0 {
		return []Sample{{Start: 0, Duration: duration, Whole: true}}
	}
	first := keys[0]
	var out []Sample
	lastEnd := math.Inf(-1)
	for i := 0; i < n; i++ {
		center := first + duration*edgeShare + usable*(float64(i)+0.5)/float64(n)
		want := center - length/2
		k := sort.SearchFloat64s(keys, want+1e-9) - 1 // last keyframe at or before want
		if k < 0 {
			k = 0
		}
		// A sample must not start inside the previous one: move to the
		// next keyframe after its end, or drop it.
		for k < len(keys) && keys[k] < lastEnd-1e-9 {
			k++
		}
		if k >= len(keys) || keys[k] >= first+duration-MinSampleSeconds/2 {
			continue
		}
		start := keys[k]
		d := min(length, first+duration-start)
		seek := start
		if k < len(next) && next[k] > start {
			seek = (start + next[k]) / 2
		} else if start > first {
			seek = start + 0.0005
		}
		out = append(out, Sample{Index: len(out), Start: start, Seek: seek, Duration: d})
		lastEnd = start + d
	}
	if len(out) == 0 {
		return []Sample{{Start: 0, Duration: duration, Whole: true}}
	}
	return out
}

// Keyframes returns the keyframe timestamps of an index (PTS, Key: a
// media.VideoIndex's fields) and the timestamp of the frame after each, for
// Place.
func Keyframes(pts []float64, key []bool) (keys, next []float64) {
	for i, t := range pts {
		if i < len(key) && key[i] {
			keys = append(keys, t)
			n := 0.0
			if i+1 < len(pts) {
				n = pts[i+1]
			}
			next = append(next, n)
		}
	}
	return keys, next
}
