package cluster

import (
	"slices"
	"strings"
	"testing"

	"clustertx/hosts"
	"clustertx/internal/encoder"
)

// TestPriorCalibrated: a calibrated speed is the guess of a host with
// neither a journal speed nor a weight; a journal speed or a weight wins,
// and a host without a calibration keeps priorSpeed. Every guess keeps
// the cold-start rule (guess = true).
func TestPriorCalibrated(t *testing.T) {
	const cal = 3e6
	for _, c := range []struct {
		name               string
		weight, remembered float64
		calibrated         float64
		want               float64
		guess              bool
	}{
		{"journal wins", 0, 5e5, cal, 5e5, false},
		{"weight wins", 2, 0, cal, 2 * priorSpeed, false},
		{"calibrated", 0, 0, cal, cal, true},
		{"nothing known", 0, 0, 0, priorSpeed, true},
	} {
		got, guess := prior(&hosts.Def{Name: "h", Weight: c.weight}, c.remembered, c.calibrated)
		if got != c.want || guess != c.guess {
			t.Errorf("%s: prior = %v, guess %v; want %v, %v", c.name, got, guess, c.want, c.guess)
		}
	}
}

// TestCalibrationArgs: the calibration encode keeps a profile's video
// options and drops the mapping, the other streams' options, metadata and
// the container's.
func TestCalibrationArgs(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"-map 0 -c:v libx264 -preset veryfast -crf 23 -c:a aac -b:a 128k -c:s copy -movflags +faststart",
			"-c:v libx264 -preset veryfast -crf 23"},
		{"-map 0:v:0 -map 0:a? -vcodec libx265 -x265-params log-level=error -acodec copy -metadata title=x -f matroska",
			"-vcodec libx265 -x265-params log-level=error"},
		{"-c copy", ""},
		{"-c:v copy -c:a aac", "-c:v copy"},
		{"-c:v h264_nvenc -rc vbr -cq 23 -vf scale=-2:720 -pix_fmt yuv420p -g -1 -threads 2 -disposition:a:0 default",
			"-c:v h264_nvenc -rc vbr -cq 23 -vf scale=-2:720 -pix_fmt yuv420p -g -1 -threads 2"},
	} {
		got := strings.Join(calibrationArgs(strings.Fields(c.in)), " ")
		if got != c.want {
			t.Errorf("calibrationArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if enc := encoder.In(calibrationArgs(strings.Fields("-c:v copy -c:a aac"))); !slices.Equal(enc, nil) {
		t.Errorf("a profile that copies the video has no encoder to calibrate, got %v", enc)
	}
}
