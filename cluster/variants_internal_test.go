package cluster

import (
	"errors"
	"fmt"
	"testing"

	"clustertx/hosts"
)

// Which encode failures are a hardware variant's driver (retry with the
// next variant, not the file's fault) and which line says so.
func TestDriverFailure(t *testing.T) {
	exit := func(stderr string) error { return fmt.Errorf("ffmpeg %w", &hosts.ExitError{Code: 1, Stderr: stderr}) }
	for _, c := range []struct {
		name   string
		err    error
		family string
		want   string
	}{
		{"nvenc, tail joined", exit("[hevc_nvenc @ 0x5] No NVENC capable devices found | [vost#0:0/hevc_nvenc @ 0x6] Error while opening encoder - maybe incorrect parameters | Conversion failed!"), "nvenc",
			"No NVENC capable devices found"},
		{"libcuda", exit("[AVHWDeviceContext @ 0x1] Cannot load libcuda.so.1\nDevice creation failed: -1."), "nvenc", "Cannot load libcuda.so.1"},
		{"nvenc out of memory", exit("[hevc_nvenc @ 0x1] OpenEncodeSessionEx failed: out of memory (10): (no details)"), "nvenc",
			"OpenEncodeSessionEx failed: out of memory (10): (no details)"},
		{"qsv", exit("[hevc_qsv @ 0x1] Error creating a MFX session: -9.\nConversion failed!"), "qsv", "Error creating a MFX session: -9."},
		{"qsv internal session", exit("[AVHWDeviceContext @ 0x1] Error initializing an internal MFX session: unsupported (-3)."), "qsv",
			"Error initializing an internal MFX session: unsupported (-3)."},
		{"vaapi", exit("[AVHWDeviceContext @ 0x1] Failed to initialise VAAPI connection: -1 (unknown libva error)."), "vaapi",
			"Failed to initialise VAAPI connection: -1 (unknown libva error)."},
		{"generic only", exit("[vost#0:0/hevc_qsv @ 0x2] Error while opening encoder - maybe incorrect parameters such as bit_rate\nConversion failed!"), "qsv",
			"Error while opening encoder - maybe incorrect parameters such as bit_rate"},
		{"software variant: the file's failure", exit("[libx265 @ 0x1] Error while opening encoder"), "", ""},
		{"not a driver", exit("[matroska @ 0x1] Invalid data found when processing input"), "nvenc", ""},
		{"out of memory is nvenc's only", exit("[hevc_qsv @ 0x1] out of memory"), "qsv", ""},
		{"host failure", &hosts.TransportError{Host: "h", Op: "encode", Err: errors.New("No NVENC capable devices found")}, "nvenc", ""},
	} {
		if got := driverFailure(c.err, c.family); got != c.want {
			t.Errorf("%s: driverFailure = %q, want %q", c.name, got, c.want)
		}
	}
}
