package hosts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CheckResult is what a host check found: one row of the host table.
type CheckResult struct {
	Host    string
	Type    Type
	Up      bool
	Latency time.Duration // connect + checks
	FFmpeg  string        // ffmpeg version, e.g. "5.1.9-0+deb12u1"
	Reason  string        // why the host is down
	Free    int64         // streaming: bytes free in working_dir (-1 unknown)
	Load    float64       // 1-minute load average when the host has max_load (-1 unknown)
	// Encoders is the host's `ffmpeg -encoders`, read by the check (nil
	// when the host is down).
	Encoders *EncoderSet

	// The calibration encode (cluster.Options.Calibrate), when it ran.
	Speed        float64       // measured speed, source pixel-seconds per second (0 none)
	CalibProfile string        // the profile whose options it used
	CalibTime    time.Duration // its wall time, start-up and stop included
	CalibNote    string        // why there is no estimate, when it failed or could not run
}

// Check verifies that a connected host can work: its ffmpeg runs, and for a
// streaming host working_dir exists and is writable. It writes nothing.
func Check(ctx context.Context, def *Def, t Transport) CheckResult {
	start := time.Now()
	res := CheckResult{Host: def.Name, Type: def.Type, Free: -1, Load: -1}
	down := func(format string, args ...any) CheckResult {
		res.Reason = fmt.Sprintf(format, args...)
		res.Latency = time.Since(start)
		return res
	}
	ffmpeg := def.FFmpegPath()
	// One ffmpeg start gives both the version (the banner, on stderr) and
	// the encoder list (stdout): each start costs a process and, on a
	// Raspberry Pi, half a second of loading ffmpeg's libraries.
	var out, banner bytes.Buffer
	if err := t.Exec(ctx, []string{ffmpeg, "-encoders"}, &out, &limitedBuffer{b: &banner, max: 64 << 10}); err != nil {
		var xe *ExitError
		if errors.As(err, &xe) {
			if xe.Code == 127 {
				return down("ffmpeg not found at %q", ffmpeg)
			}
			return down("%s -encoders failed: %v", ffmpeg, err)
		}
		return down("running %s: %v", ffmpeg, errors.Unwrap(err))
	}
	res.Encoders = NewEncoderSet(def, ParseEncoders(out.String()))
	if v := bannerVersion(banner.String()); v != "" {
		res.FFmpeg = v
	} else {
		// No banner (a wrapper that silences stderr): ask for it.
		out.Reset()
		if err := t.Exec(ctx, []string{ffmpeg, "-hide_banner", "-version"}, &out, nil); err != nil {
			return down("%s -version failed: %v", ffmpeg, err)
		}
		res.FFmpeg = ParseFFmpegVersion(out.String())
	}
	if def.Type == Streaming {
		if !def.Windows() {
			err := t.Exec(ctx, []string{"test", "-d", def.WorkingDir, "-a", "-w", def.WorkingDir}, nil, nil)
			var xe *ExitError
			if errors.As(err, &xe) {
				return down("working_dir %s does not exist or is not writable", def.WorkingDir)
			} else if err != nil {
				return down("checking working_dir %s: %v", def.WorkingDir, err)
			}
		}
		free, err := t.FreeSpace(ctx, def.WorkingDir)
		if err != nil {
			return down("working_dir %s: %v", def.WorkingDir, errors.Unwrap(err))
		}
		res.Free = free
	}
	res.Up = true
	res.Latency = time.Since(start)
	return res
}

// bannerVersion is the version in ffmpeg's banner ("ffmpeg version 5.1.9
// Copyright…", its first line on stderr), "" when there is none.
func bannerVersion(stderr string) string {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "ffmpeg version ") {
			return ParseFFmpegVersion(strings.TrimSpace(line))
		}
	}
	return ""
}

// ParseFFmpegVersion extracts the version from `ffmpeg -version` output.
func ParseFFmpegVersion(out string) string {
	line, _, _ := strings.Cut(out, "\n")
	f := strings.Fields(line)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "version" {
			return f[i+1]
		}
	}
	return strings.TrimSpace(line)
}
