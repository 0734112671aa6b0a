package cluster

import (
	"errors"
	"fmt"
	"testing"

	"clustertx/hosts"
)

func TestMountProblemIsRecognisedFromFFmpegsMessage(t *testing.T) {
	in, out := "/mnt/media/Film (2001).mkv", "/mnt/media/.Film (2001).clustertx-ab12.mkv"
	ffmpegErr := func(stderr string) error {
		return fmt.Errorf("ffmpeg %w", &hosts.ExitError{Code: 1, Stderr: stderr})
	}
	mounted := &worker{def: &hosts.Def{Name: "nas", Type: hosts.Mounted}}
	for _, c := range []struct {
		stderr string
		want   bool
	}{
		{"file:" + in + ": No such file or directory", true},
		{"[in#0 @ 0x55] Error opening input: x\nfile:" + in + ": Permission denied\nError opening input files: Permission denied", true},
		{"[out#0/matroska @ 0x1] Error opening output " + out + ": Read-only file system", true}, // ffmpeg 6+
		{"file:" + out + ": Read-only file system", true},
		{in + ": Stale file handle", true},
		{"file:" + in + ": Invalid data found when processing input", false}, // the file's fault
		{"Unknown encoder 'libx265'", false},
		{"file:/other/file.mkv: No such file or directory", false}, // not one of ours
	} {
		err := mounted.mountProblem(ffmpegErr(c.stderr), in, out)
		var nv *notVisibleError
		if got := errors.As(err, &nv); got != c.want {
			t.Errorf("%q: classified %v, want %v (%v)", c.stderr, got, c.want, err)
		}
		var xe *hosts.ExitError
		if !errors.As(err, &xe) {
			t.Errorf("%q: the ffmpeg error is no longer wrapped: %v", c.stderr, err)
		}
	}
	streaming := &worker{def: &hosts.Def{Name: "gamer", Type: hosts.Streaming}}
	if err := streaming.mountProblem(ffmpegErr("file:"+in+": No such file or directory"), in, out); errors.As(err, new(*notVisibleError)) {
		t.Error("a streaming host has no mount to blame")
	}
	if err := mounted.mountProblem(errors.New("file:"+in+": No such file or directory"), in, out); errors.As(err, new(*notVisibleError)) {
		t.Error("only ffmpeg's exit is classified")
	}
}
