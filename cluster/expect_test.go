package cluster

import (
	"testing"

	"clustertx/media"
)

func TestExpectedAudio(t *testing.T) {
	// 0 video, 1 spa, 2 eng, 3 fre, 4 sub
	src := &media.Info{Audio: []media.Stream{{Index: 1}, {Index: 2}, {Index: 3}}}
	for _, c := range []struct {
		args []string
		want int
	}{
		{nil, 1},                                        // ffmpeg picks one
		{[]string{"-c:a", "copy"}, 1},                   // no map
		{[]string{"-map", "0"}, 3},                      // everything
		{[]string{"-map", "0:V", "-map", "0:a?"}, 3},    // all audio
		{[]string{"-map", "0:0", "-map", "0:2"}, 1},     // by index
		{[]string{"-map", "0:0", "-map", "0:4"}, 0},     // only a subtitle besides video
		{[]string{"-map", "0:a:0", "-map", "0:a:2"}, 2}, // by audio position
		{[]string{"-map", "0", "-map", "-0:a:1"}, 2},    // negative map
		{[]string{"-map", "0", "-an"}, 0},
		{[]string{"-map", "0:m:language:eng"}, 1},   // not modelled: at least one
		{[]string{"-map", "0:v", "-map", "1:a"}, 0}, // audio from another input is not counted
	} {
		if got := expectedAudio(c.args, src); got != c.want {
			t.Errorf("%v: got %d, want %d", c.args, got, c.want)
		}
	}
	if got := expectedAudio([]string{"-map", "0"}, &media.Info{}); got != 0 {
		t.Errorf("no audio in the source: got %d", got)
	}
}
