package queue

import (
	"testing"
	"time"

	"clustertx/window"
)

func windowFunc(t *testing.T, s string) WindowFunc {
	t.Helper()
	w, err := window.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return w.At
}

// A host outside its window takes nothing, waits for it (something fits
// the window), takes work once it opens and none after it closes; a slower
// host does not leave work to it meanwhile.
func TestWindowKeepsHostIdleOutsideItsHours(t *testing.T) {
	q, clk := newVirtual(Options{}) // 00:00 UTC
	q.SetHostSpeed("pc", 10)
	q.SetHostSpeed("nas", 1)
	q.SetWindow("pc", windowFunc(t, "01:00-07:00"))
	q.Push(item(1, 100, "pc", "nas"), item(2, 500, "pc"), item(3, 400, "pc"))

	if it, wait := q.TryNext("pc"); it != nil || !wait {
		t.Fatalf("pc at 00:00 got %v (wait %v), want nothing and wait: its window opens at 01:00", it, wait)
	}
	if !q.Shut("pc") {
		t.Fatal("pc not shut at 00:00")
	}
	// The fast pc is shut: the nas must not leave item 1 to it.
	if it := mustNext(t, q, "nas"); it.ID != 1 {
		t.Fatalf("nas got %d, want 1", it.ID)
	}
	clk.advance(time.Hour)
	if it := mustNext(t, q, "pc"); it.ID != 2 {
		t.Fatalf("pc at 01:00 got %d, want 2", it.ID)
	}
	clk.advance(6 * time.Hour) // 07:00: closed again, until 01:00 tomorrow
	if it, _ := q.TryNext("pc"); it != nil {
		t.Fatalf("pc at 07:00 got %d, want nothing", it.ID)
	}
	if !q.Shut("pc") {
		t.Fatal("pc not shut at 07:00")
	}
}

// Inside a window (here the run's deadline) a host takes only what it is
// predicted to finish before it closes.
func TestWindowPredictedEndFits(t *testing.T) {
	q, clk := newVirtual(Options{})
	q.SetHostSpeed("a", 1)
	q.SetDeadline(clk.now().Add(100 * time.Second))
	q.Push(item(1, 150, "a"), item(2, 80, "a"), item(3, 30, "a"))
	it := mustNext(t, q, "a")
	if it.ID != 2 {
		t.Fatalf("got %d, want 2: 150 s does not fit the 100 s left, 80 s is the largest that does", it.ID)
	}
	clk.advance(80 * time.Second)
	q.Finish(it, "a")
	if it, wait := q.TryNext("a"); it != nil || wait {
		t.Fatalf("with 20 s left got %v (wait %v), want nothing and no wait: 30 s does not fit, nothing runs", it, wait)
	}
	if got := q.CloseAt("a"); !got.Equal(clk.now().Add(20 * time.Second)) {
		t.Fatalf("CloseAt = %s", got)
	}
	clk.advance(30 * time.Second)
	if !q.Shut("a") {
		t.Fatal("a not shut past the deadline")
	}
}

// In the last quarter of its window a host takes the shortest job that fits
// rather than the largest.
func TestWindowShortJobsNearTheEnd(t *testing.T) {
	q, clk := newVirtual(Options{})
	q.SetHostSpeed("a", 1)
	q.SetDeadline(clk.now().Add(100 * time.Second))
	q.Push(item(1, 20, "a"), item(2, 10, "a"), item(3, 5, "a"), item(4, 12, "a"))
	first := mustNext(t, q, "a")
	if first.ID != 1 {
		t.Fatalf("got %d first, want 1 (largest first while the window is young)", first.ID)
	}
	clk.advance(20 * time.Second)
	q.Finish(first, "a")          // speed sample: 1, as assumed
	clk.advance(60 * time.Second) // 20 s left of 100: the last quarter
	if it := mustNext(t, q, "a"); it.ID != 3 {
		t.Fatalf("near the end got %d, want 3 (the shortest, 5 s; 12 s and 10 s would fit too)", it.ID)
	}
}

// A host whose window never again fits anything does not make Next wait:
// the run ends rather than waiting for a window nothing fits.
func TestWindowNoWaitForWindowNothingFits(t *testing.T) {
	q, clk := newVirtual(Options{}) // 00:00 UTC
	q.SetHostSpeed("pc", 1)
	q.SetWindow("pc", windowFunc(t, "01:00-02:00"))
	q.Push(item(1, 2*3600, "pc")) // two hours of work, a one-hour window
	if it, wait := q.TryNext("pc"); it != nil || wait {
		t.Fatalf("got %v wait %v, want nothing and no wait", it, wait)
	}
	q.SetDeadline(clk.now().Add(30 * time.Minute)) // the window opens after the run ends
	q.Push(item(2, 60, "pc"))
	if it, wait := q.TryNext("pc"); it != nil || wait {
		t.Fatalf("with the deadline before the window got %v wait %v, want nothing and no wait", it, wait)
	}
}

// Without a deadline a host waits for its window's first opening in the
// run, but once it has been open and closed, what is left is for the next
// run: it does not wait for tomorrow's window.
func TestWindowNoDeadlineWaitsOnlyForTheFirstOpening(t *testing.T) {
	q, clk := newVirtual(Options{}) // 00:00 UTC
	q.SetHostSpeed("pc", 1)
	q.SetWindow("pc", windowFunc(t, "01:00-02:00"))
	q.Push(item(1, 1800, "pc"), item(2, 1800, "pc"), item(3, 1800, "pc"))
	if _, wait := q.TryNext("pc"); !wait {
		t.Fatal("at 00:00 pc does not wait for its window at 01:00")
	}
	clk.advance(time.Hour)
	a := mustNext(t, q, "pc")
	clk.advance(30 * time.Minute)
	q.Finish(a, "pc")
	b := mustNext(t, q, "pc")
	clk.advance(30 * time.Minute) // 02:00: closed; b stopped
	q.WindowStop(b, "pc")
	if it, wait := q.TryNext("pc"); it != nil || wait {
		t.Fatalf("at 02:00 got %v wait %v, want nothing and no wait (tomorrow's window is the next run's)", it, wait)
	}
	if n, _ := q.Counts(); n != 2 {
		t.Fatalf("%d pending, want 2 (the stopped one is back)", n)
	}
}
