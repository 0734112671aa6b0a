package hosts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// execDirect is the local Exec of a Windows manager; its logic (exit codes,
// stderr tail, stop on cancel) is the same everywhere, so it is tested here
// with POSIX commands.
func TestExecDirect(t *testing.T) {
	l := NewLocal("local")
	if err := l.execDirect(context.Background(), []string{"true"}, nil, nil); err != nil {
		t.Fatalf("true: %v", err)
	}
	err := l.execDirect(context.Background(), []string{"sh", "-c", "echo broken >&2; exit 3"}, nil, nil)
	var xe *ExitError
	if !errors.As(err, &xe) || xe.Code != 3 || !strings.Contains(xe.Stderr, "broken") {
		t.Fatalf("exit 3: %#v", err)
	}
	if err := l.execDirect(context.Background(), []string{"/no/such/ffmpeg"}, nil, nil); !IsTransport(err) {
		t.Fatalf("missing binary: %v, want a transport error", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = l.execDirect(ctx, []string{"sleep", "30"}, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("cancel: %v after %v", err, time.Since(start))
	}
}
