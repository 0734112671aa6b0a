package hosts

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The variant test encode's generated input: small and short, so the test
// costs the SSH session and ffmpeg's start-up (and the hardware's session
// setup, which is what it is there to try), not the encode.
const (
	testEncodeSrc     = "testsrc=size=320x240:rate=25"
	testEncodeSeconds = "0.2"
	testEncodeTimeout = 30 * time.Second
)

// TestEncodeError is a test encode that ran and failed: ffmpeg's exit and
// the last lines of its stderr.
type TestEncodeError struct {
	Host string
	Err  error  // the *ExitError (or what Exec returned)
	Line string // the first meaningful stderr line, "[hevc_nvenc @ 0x…] " prefix dropped
	Tail string // the last stderr lines, " | "-joined
}

func (e *TestEncodeError) Error() string {
	if e.Line != "" {
		return e.Line
	}
	return e.Err.Error()
}

func (e *TestEncodeError) Unwrap() error { return e.Err }

// TestEncode runs a short test encode on the host with the options a job
// would use: ffmpeg with inputArgs (-hwaccel, -init_hw_device…) before a
// generated lavfi testsrc input of a fifth of a second, then videoArgs (the
// encoder, its options and filters; no audio, subtitle, mapping or
// container options), to the null muxer. It writes nothing on the host, so
// --dry-run may run it too.
//
// nil means the encode worked. A *TestEncodeError means ffmpeg ran and
// failed (the encoder, its device or an option is unusable there); any
// other error is the host's or the connection's (a *TransportError, ctx
// cancelled) and says nothing about the variant.
//
// The input is generated in system memory: a profile whose filters expect
// frames already on the GPU (-hwaccel_output_format cuda with scale_cuda)
// fails here although it may work on real files; such profiles should
// upload explicitly (hwupload) or list a variant without the filter.
func TestEncode(ctx context.Context, def *Def, t Transport, inputArgs, videoArgs []string) error {
	ctx, cancel := context.WithTimeout(ctx, testEncodeTimeout)
	defer cancel()
	argv := FFmpegHead(def.FFmpegPath(), "error")
	argv = append(argv, inputArgs...)
	argv = append(argv, "-f", "lavfi", "-i", testEncodeSrc, "-t", testEncodeSeconds)
	argv = append(argv, videoArgs...)
	argv = append(argv, "-an", "-sn", "-dn", "-f", "null", "-")
	stderr := &TailBuffer{Max: 8}
	err := t.Exec(ctx, argv, nil, stderr)
	if err == nil {
		return nil
	}
	var xe *ExitError
	if !errors.As(err, &xe) || ctx.Err() != nil {
		if ctx.Err() != nil && !IsTransport(err) {
			return &TransportError{Host: def.Name, Op: "test encode", Err: fmt.Errorf("no answer within %s: %w", testEncodeTimeout, err)}
		}
		return err
	}
	return &TestEncodeError{Host: def.Name, Err: err, Line: ErrorLine(stderr.String()), Tail: stderr.Last(3)}
}

// ErrorLine picks the line of ffmpeg's stderr that says what went wrong:
// the first that is not a generic consequence ("Error initializing output
// stream", "Conversion failed!", "Nothing was written…"), without the
// "[encoder @ 0x…] " prefix; the first line when all are generic.
func ErrorLine(stderr string) string {
	first := ""
	for _, l := range splitLines(stderr) {
		l = firstLine(l)
		if l == "" {
			continue
		}
		if first == "" {
			first = l
		}
		if !genericFFmpegLine(l) {
			return l
		}
	}
	return first
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

var genericLines = []string{
	"Error initializing output stream",
	"Error while opening encoder for output stream",
	"Conversion failed!",
	"Nothing was written into output file",
	"Could not open encoder before EOF",
	"Error sending frames to consumers",
	"Task finished with error code",
	"Terminating thread with return code",
	"Error while filtering",
	"Failed to inject frame into filter network",
	"Error marking filters as finished",
}

func genericFFmpegLine(l string) bool {
	for _, g := range genericLines {
		if len(l) >= len(g) && l[:len(g)] == g {
			return true
		}
	}
	return false
}
