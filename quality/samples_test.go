package quality

import (
	"math"
	"testing"
)

// gop returns the keyframes of a film of duration seconds at fps with a
// keyframe every gop seconds, and the frame after each.
func gop(duration, fps, every float64) (keys, next []float64) {
	for t := 0.0; t < duration; t += every {
		keys = append(keys, t)
		next = append(next, t+1/fps)
	}
	return keys, next
}

func TestPlaceSpreadsSamplesAtKeyframes(t *testing.T) {
	c := Default(SSIM, 0.98)
	dur := 7200.0
	keys, next := gop(dur, 25, 2.5)
	s := Place(c, dur, keys, next)
	if len(s) != 4 {
		t.Fatalf("%d samples, want 4: %+v", len(s), s)
	}
	for i, x := range s {
		if math.Mod(x.Start, 2.5) != 0 {
			t.Errorf("sample %d starts at %v, not a keyframe", i, x.Start)
		}
		if !(x.Seek > x.Start && x.Seek < x.Start+1/25.0) {
			t.Errorf("sample %d: seek %v not between its keyframe %v and the next frame", i, x.Seek, x.Start)
		}
		if x.Duration != 10 {
			t.Errorf("sample %d lasts %v, want 10", i, x.Duration)
		}
		if x.Start < 0.05*dur || x.Start+x.Duration > 0.95*dur {
			t.Errorf("sample %d at %v is in the first or last 5%%", i, x.Start)
		}
		// evenly spread: one per quarter of the usable part
		center := 0.05*dur + 0.9*dur*(float64(i)+0.5)/4
		if math.Abs(x.Start+5-center) > 2.5 {
			t.Errorf("sample %d centred at %v, want about %v", i, x.Start+5, center)
		}
	}
}

func TestPlaceShortFilms(t *testing.T) {
	c := Default(SSIM, 0.98)
	total := func(s []Sample) (sum float64) {
		for _, x := range s {
			sum += x.Duration
		}
		return sum
	}
	// 10 minutes: four samples, shrunk to keep a round at 1/30 of it.
	keys, next := gop(600, 25, 1)
	s := Place(c, 600, keys, next)
	if len(s) != 4 || total(s) > 600.0/30+1e-9 || s[0].Duration < MinSampleSeconds {
		t.Errorf("10 min: %d samples, %v s in all; want 4 within 20 s: %+v", len(s), total(s), s)
	}
	// 3 minutes: four samples of the shortest length would be 8 s, over
	// the 6 s budget: three.
	keys, next = gop(180, 25, 1)
	s = Place(c, 180, keys, next)
	if len(s) != 3 || total(s) > 180.0/30+1e-9 {
		t.Errorf("3 min: %d samples, %v s in all; want 3 within 6 s: %+v", len(s), total(s), s)
	}
	// 20 s: never fewer than two samples, of the minimum length.
	keys, next = gop(20, 25, 1)
	s = Place(c, 20, keys, next)
	if len(s) != 2 || s[0].Duration != MinSampleSeconds {
		t.Errorf("20 s: %+v", s)
	}
	for i := 1; i < len(s); i++ {
		if s[i].Start < s[i-1].Start+s[i-1].Duration {
			t.Errorf("20 s: samples %d and %d overlap: %+v", i-1, i, s)
		}
	}
	// 5 s: one sample.
	keys, next = gop(5, 25, 1)
	if s = Place(c, 5, keys, next); len(s) != 1 || s[0].Whole {
		t.Errorf("5 s: want one sample, got %+v", s)
	}
	// 3 s: too short for a sample and a gap as long: the whole film.
	keys, next = gop(3, 25, 1)
	s = Place(c, 3, keys, next)
	if len(s) != 1 || !s[0].Whole || s[0].Duration != 3 {
		t.Errorf("3 s: want the whole film, got %+v", s)
	}
	// Sparse keyframes: two samples that would start at the same keyframe
	// are one, and none overlaps.
	keys, next = gop(600, 25, 250)
	s = Place(c, 600, keys, next)
	for i := 1; i < len(s); i++ {
		if s[i].Start < s[i-1].Start+s[i-1].Duration {
			t.Errorf("sparse: overlap %+v", s)
		}
	}
	if len(s) == 0 || len(s) > 3 {
		t.Errorf("sparse keyframes at 0, 250, 500: %+v", s)
	}
}

func TestKeyframes(t *testing.T) {
	keys, next := Keyframes([]float64{0, 0.04, 0.08, 0.12, 0.16}, []bool{true, false, false, true, false})
	if len(keys) != 2 || keys[1] != 0.12 || next[1] != 0.16 || next[0] != 0.04 {
		t.Errorf("got %v %v", keys, next)
	}
}
