package progress

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// feed writes data to a new parser in chunks of n bytes (0: all at once)
// and returns every block it reported, in order.
func feed(t *testing.T, duration float64, data []byte, n int) ([]Progress, *Parser) {
	t.Helper()
	var got []Progress
	p := NewParser(duration, func(pr Progress) { got = append(got, pr) })
	if n <= 0 {
		n = len(data)
	}
	for len(data) > 0 {
		k := min(n, len(data))
		if w, err := p.Write(data[:k]); w != k || err != nil {
			t.Fatalf("Write = %d, %v", w, err)
		}
		data = data[k:]
	}
	return got, p
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkSequence asserts what must hold for any well-formed encode.
func checkSequence(t *testing.T, got []Progress) {
	t.Helper()
	if len(got) == 0 {
		t.Fatal("no progress block parsed")
	}
	for i, p := range got {
		if p.OutTime < 0 || p.Percent < 0 || p.Percent > 100 {
			t.Errorf("block %d: out of range: %+v", i, p)
		}
		if i > 0 && p.OutTime < got[i-1].OutTime {
			t.Errorf("block %d: out_time went back: %v after %v", i, p.OutTime, got[i-1].OutTime)
		}
		if i > 0 && p.Updated.Before(got[i-1].Updated) {
			t.Errorf("block %d: Updated went back", i)
		}
		if p.Ended != (i == len(got)-1) {
			t.Errorf("block %d of %d: Ended = %v", i, len(got), p.Ended)
		}
	}
}

func TestFFmpeg7Fixture(t *testing.T) {
	data := readFixture(t, "ffmpeg7.progress")
	for _, chunk := range []int{0, 1, 7, 64} {
		got, p := feed(t, 3, data, chunk)
		checkSequence(t, got)
		if len(got) != 5 {
			t.Fatalf("chunk %d: %d blocks, want 5", chunk, len(got))
		}
		// The early blocks: negative and N/A positions clamp to 0; N/A
		// values are unknown (0), not errors.
		for _, early := range got[:2] {
			if early.OutTime != 0 || early.Percent != 0 || early.Speed != 0 || early.Size != 0 || early.Bitrate != 0 {
				t.Errorf("chunk %d: early block not clamped/unknown: %+v", chunk, early)
			}
		}
		mid := got[2]
		if mid.OutTime != 1 || mid.Speed != 1.5 || mid.Size != 51200 || mid.Frame != 25 || mid.FPS != 24.5 || mid.Bitrate != 409.6 {
			t.Errorf("chunk %d: second real block: %+v", chunk, mid)
		}
		if want := 100.0 / 3; mid.Percent < want-0.01 || mid.Percent > want+0.01 {
			t.Errorf("chunk %d: Percent = %v, want %v", chunk, mid.Percent, want)
		}
		last := got[len(got)-1]
		if !last.Ended || last.Percent != 100 || last.OutTime != 3 || last.Speed != 1.55 || last.Size != 153600 {
			t.Errorf("chunk %d: last block: %+v", chunk, last)
		}
		if p.Last() != last {
			t.Errorf("chunk %d: Last() = %+v, want %+v", chunk, p.Last(), last)
		}
	}
}

func TestFFmpeg4Fixture(t *testing.T) {
	// ffmpeg 4.0 has no out_time_us: out_time_ms is microseconds as well.
	data := readFixture(t, "ffmpeg4.progress")
	for name, d := range map[string][]byte{
		"lf":   data,
		"crlf": bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n")), // Windows hosts
	} {
		got, _ := feed(t, 3, d, 5)
		checkSequence(t, got)
		if len(got) != 3 {
			t.Fatalf("%s: %d blocks, want 3", name, len(got))
		}
		if got[1].OutTime != 1.5 || got[1].Percent != 50 || got[1].Speed != 1 || got[1].Size != 48000 {
			t.Errorf("%s: middle block: %+v (out_time_ms must be read as microseconds)", name, got[1])
		}
		if !got[2].Ended || got[2].Percent != 100 {
			t.Errorf("%s: last block: %+v", name, got[2])
		}
	}
}

func TestOutTimeFallbackAndPriority(t *testing.T) {
	cases := []struct {
		name, in string
		want     float64
	}{
		{"out_time only", "out_time=00:01:02.500000\nprogress=continue\n", 62.5},
		{"out_time_ms is microseconds", "out_time_ms=1500000\nprogress=continue\n", 1.5},
		{"ms wins over clock", "out_time_ms=1500000\nout_time=00:00:09.000000\nprogress=continue\n", 1.5},
		{"us wins over ms and clock", "out_time_us=2000000\nout_time_ms=9000000\nout_time=00:00:09.000000\nprogress=continue\n", 2},
		{"us after clock still wins", "out_time=00:00:09.000000\nout_time_us=2000000\nprogress=continue\n", 2},
		{"negative clock", "out_time=-577014:32:22.775808\nprogress=continue\n", 0},
		{"beyond duration clamps", "out_time_us=500000000\nprogress=continue\n", 100},
		{"garbage ignored", "hello\n=\nout_time_us=x\nprogress=continue\n", 0},
	}
	for _, c := range cases {
		got, _ := feed(t, 100, []byte(c.in), 0)
		if len(got) != 1 || got[0].OutTime != c.want {
			t.Errorf("%s: got %+v, want OutTime %v", c.name, got, c.want)
		}
	}
	// Unknown duration: no percent, no clamp on the high side.
	got, _ := feed(t, 0, []byte("out_time_us=500000000\nprogress=continue\n"), 0)
	if got[0].OutTime != 500 || got[0].Percent != 0 {
		t.Errorf("unknown duration: %+v", got[0])
	}
	if _, ok := got[0].Fraction(); ok {
		t.Error("Fraction ok with unknown duration")
	}
}

func TestHelpers(t *testing.T) {
	p := Progress{OutTime: 25, Duration: 100, Speed: 2, Size: 1000}
	if f, ok := p.Fraction(); !ok || f != 0.25 {
		t.Errorf("Fraction = %v, %v", f, ok)
	}
	if n, ok := p.EstimatedSize(); !ok || n != 4000 {
		t.Errorf("EstimatedSize = %v, %v", n, ok)
	}
	if d, ok := p.ETA(time.Hour); !ok || d != 37500*time.Millisecond { // 75 media s at 2x
		t.Errorf("ETA with speed = %v, %v", d, ok)
	}
	p.Speed = 0 // speed=N/A: extrapolate the elapsed time instead
	if d, ok := p.ETA(10 * time.Second); !ok || d != 30*time.Second {
		t.Errorf("ETA from elapsed = %v, %v", d, ok)
	}
	if _, ok := (Progress{Duration: 100}).ETA(time.Second); ok {
		t.Error("ETA ok with nothing encoded and no speed")
	}
	if _, ok := (Progress{Duration: 100, OutTime: 0.5, Size: 10}).EstimatedSize(); ok {
		t.Error("EstimatedSize ok under 1%")
	}
	if d, ok := (Progress{Duration: 100, OutTime: 100, Ended: true}).ETA(time.Second); !ok || d != 0 {
		t.Errorf("ETA when ended = %v, %v", d, ok)
	}
}

// TestRealFFmpeg parses what the installed ffmpeg actually writes with
// -progress pipe:1, so a format change in a new ffmpeg shows up here.
func TestRealFFmpeg(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CLUSTERTX_TEST_DISALLOW_SKIP") != "" {
			t.Fatal("ffmpeg not installed (CLUSTERTX_TEST_DISALLOW_SKIP is set)")
		}
		t.Skip("ffmpeg not installed")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := filepath.Join(t.TempDir(), "out.mkv")
	// -re paces the 3 s clip at real time so several blocks arrive;
	// -stats_period makes them 4 a second. mpeg4 is ffmpeg's own encoder,
	// present in every build.
	cmd := exec.CommandContext(ctx, ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error",
		"-re", "-f", "lavfi", "-i", "testsrc=duration=3:size=320x240:rate=25",
		"-c:v", "mpeg4", "-stats_period", "0.25", "-nostats", "-progress", "pipe:1", "-y", out)
	var stdout, stderr bytes.Buffer
	var got []Progress
	p := NewParser(3, func(pr Progress) { got = append(got, pr) })
	cmd.Stdout = &teeWriter{p, &stdout}
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, stderr.String())
	}
	t.Logf("ffmpeg -progress output (%d bytes, %d blocks), first lines:\n%s", stdout.Len(), len(got), head(stdout.String(), 14))
	checkSequence(t, got)
	if len(got) < 3 {
		t.Fatalf("only %d blocks; want several with -re", len(got))
	}
	last := got[len(got)-1]
	if !last.Ended {
		t.Error("last block is not progress=end")
	}
	if last.Percent < 95 || last.Percent > 100 {
		t.Errorf("final percent = %v, want ~100", last.Percent)
	}
	if last.Speed <= 0 {
		t.Errorf("final speed = %v, want > 0", last.Speed)
	}
	if last.Size <= 0 {
		t.Errorf("final size = %v, want > 0", last.Size)
	}
	if st, err := os.Stat(out); err != nil || st.Size() == 0 {
		t.Errorf("output file: %v", err)
	}
	// Some block in the middle must have a usable speed and ETA.
	var mid bool
	for _, g := range got[:len(got)-1] {
		if _, ok := g.ETA(time.Second); ok && g.Speed > 0 && g.Percent > 0 && g.Percent < 100 {
			mid = true
		}
	}
	if !mid {
		t.Error("no intermediate block with percent, speed and ETA")
	}
}

type teeWriter struct {
	p   *Parser
	buf *bytes.Buffer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.buf.Write(b)
	return w.p.Write(b)
}

func head(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
