package queue

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Issue 14's nightly hang: the journal says the fallback host is fast, a
// regular host is up. The fallback stays back for the regular host, so the
// regular host must not leave the jobs to the fallback.
func TestRegularHostDoesNotWaitForAFastFallback(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetFallback("local", true)
	q.SetHostSpeed("local", 100)
	q.SetHostSpeed("remote", 1)
	for i := 1; i <= 4; i++ {
		q.Push(item(i, 1000, "local", "remote"))
	}
	if it, wait := q.TryNext("local"); it != nil || !wait {
		t.Fatalf("fallback got %v (wait=%v), want to stay back for remote", it, wait)
	}
	if it, _ := q.TryNext("remote"); it == nil {
		t.Fatal("remote got nothing: it waits for the fallback, which waits for it")
	}
	// Prefetch asks the same question of the other hosts.
	if it := q.Prefetch("remote"); it == nil {
		t.Fatal("remote's prefetch got nothing: it left the job to the fallback")
	}
}

// A host that is held (over max_load) is not waited for; once it takes
// work again, a slow host leaves it the film again.
func TestHeldHostIsNotWaitedFor(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetHostSpeed("slow", 1)
	q.SetHostSpeed("fast", 8)
	q.Push(item(1, 1000, "slow", "fast"), item(2, 10, "slow", "fast"))
	if it, _ := q.TryNext("slow"); it == nil || it.ID != 2 {
		t.Fatalf("slow got %v, want the clip 2 (the film is fast's)", it)
	}
	if it, wait := q.TryNext("slow"); it != nil || !wait {
		t.Fatalf("slow got %v (wait=%v), want to leave the film to fast", it, wait)
	}
	q.SetHeld("fast", true)
	it, _ := q.TryNext("slow")
	if it == nil || it.ID != 1 {
		t.Fatalf("slow got %v while fast is held, want the film", it)
	}
}

// A fallback does not stay back for a regular host that is held: nobody
// else would take the job.
func TestFallbackTakesOverFromAHeldHost(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetFallback("local", true)
	q.Push(item(1, 10, "local", "gamer"))
	if it, wait := q.TryNext("local"); it != nil || !wait {
		t.Fatalf("fallback got %v (wait=%v) while gamer takes work", it, wait)
	}
	q.SetHeld("gamer", true)
	if it, _ := q.TryNext("local"); it == nil {
		t.Fatal("fallback stays back for a held host")
	}
}

// A fallback held back by a regular host gets no speculative copy either.
func TestHeldBackFallbackGetsNoSpeculativeCopy(t *testing.T) {
	q, clk := newVirtual(Options{Speculate: true, SpecMinGain: sec(1)})
	q.SetFallback("local", true)
	q.SetHostSpeed("local", 100)
	q.SetHostSpeed("remote", 1)
	q.Push(item(1, 1000, "local", "remote"))
	mustNext(t, q, "remote")
	clk.advance(sec(10))
	if it, _ := q.TryNext("local"); it != nil {
		t.Fatalf("fallback got a copy of %d while remote is up", it.ID)
	}
}

// waitingIn waits until a slot of host is blocked in Next.
func waitingIn(t *testing.T, q *Queue, host string) {
	t.Helper()
	for range 2000 {
		q.mu.Lock()
		h := q.hosts[host]
		n := 0
		if h != nil {
			n = h.waiting
		}
		q.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s never waited in Next", host)
}

// The runtime guard: a host the queue counts on never asks (something
// outside the queue holds it); with nothing running, Unstick says what the
// waiting host waits for and makes it take the job.
func TestUnstickBreaksTheTie(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetHostSpeed("slow", 1)
	q.SetHostSpeed("fast", 8) // up, but its worker never asks
	q.Push(item(1, 1000, "slow", "fast"))
	got := make(chan *Item, 1)
	go func() { got <- q.Next(context.Background(), "slow") }()
	waitingIn(t, q, "slow")
	lines := q.Unstick()
	text := strings.Join(lines, "\n")
	for _, want := range []string{"host slow waits: it left item 1 to host fast", "breaking the tie: host slow"} {
		if !strings.Contains(text, want) {
			t.Errorf("Unstick said %q, want %q", text, want)
		}
	}
	select {
	case it := <-got:
		if it == nil || it.ID != 1 {
			t.Fatalf("slow got %v, want item 1", it)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("slow still waits after Unstick")
	}
	// Something runs now: nothing to unstick.
	q.Push(item(2, 1000, "slow", "fast"))
	if lines := q.Unstick(); lines != nil {
		t.Errorf("Unstick with a job running: %q", lines)
	}
}

// A fallback that stays back for a regular host that never asks is told
// to take the job.
func TestUnstickLiftsTheFallbackReserve(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetFallback("local", true)
	q.Push(item(1, 10, "local", "remote"))
	got := make(chan *Item, 1)
	go func() { got <- q.Next(context.Background(), "local") }()
	waitingIn(t, q, "local")
	lines := q.Unstick()
	if !strings.Contains(strings.Join(lines, "\n"), "host local waits: it is a fallback and host(s) [remote] may take the work") {
		t.Errorf("Unstick said %q", lines)
	}
	select {
	case it := <-got:
		if it == nil || it.ID != 1 {
			t.Fatalf("local got %v, want item 1", it)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the fallback still waits after Unstick")
	}
}

// Issue 14's cold start: a slow host reserved a clip (Prefetch) while it
// encoded; a fast host goes idle with the clip still reserved and would
// finish it far sooner. It takes the clip, and the reservation is dropped.
func TestIdleHostRevokesAReservation(t *testing.T) {
	q, clk := newVirtual(Options{})
	q.SetHostSpeed("slow", 1)
	q.SetHostSpeed("fast", 4)
	q.Push(item(1, 40, "slow", "fast"), item(2, 400, "fast"))
	a := mustNext(t, q, "slow")
	b := mustNext(t, q, "fast")
	if a.ID != 1 || b.ID != 2 {
		t.Fatalf("slow got %d, fast %d", a.ID, b.ID)
	}
	q.Push(item(3, 37, "slow", "fast"))
	x := q.Prefetch("slow") // slow frees at 40 s and ends it at 77 s; fast only at 109 s
	if x == nil || x.ID != 3 {
		t.Fatalf("slow prefetched %v, want item 3", x)
	}
	lost := q.Lost(x, "slow")
	clk.advance(sec(60))
	q.Done(b) // fast is done early and idle; slow still encodes item 1
	got := mustNext(t, q, "fast")
	if got != x {
		t.Fatalf("fast got %d, want the reserved item 3", got.ID)
	}
	select {
	case <-lost:
	default:
		t.Fatal("the reservation on slow was not dropped")
	}
	q.Begin(x, "slow") // too late: nothing to begin
	if q.Finish(x, "slow") {
		t.Fatal("slow's dropped reservation won")
	}
	if !q.Finish(x, "fast") {
		t.Fatal("fast's copy did not win")
	}
}

// A reservation is kept when the idle host would not gain enough.
func TestReservationKeptForASmallGain(t *testing.T) {
	q, clk := newVirtual(Options{})
	q.ObserveSpeed("a", 1, time.Second)
	q.ObserveSpeed("b", 1.1, time.Second)
	q.Push(item(1, 10, "a", "b"), item(2, 100, "b"))
	mustNext(t, q, "a")
	bj := mustNext(t, q, "b")
	q.Push(item(3, 20, "a", "b"))
	x := q.Prefetch("a")
	if x == nil {
		t.Fatal("a prefetched nothing")
	}
	clk.advance(sec(9))
	q.Cancel(bj) // b is idle, at the speed it had
	if it, _ := q.TryNext("b"); it != nil {
		t.Fatalf("b took %d: a frees in 1 s and ends it at 30 s, b would end it at 27.2 s", it.ID)
	}
	// Faster, b would gain enough.
	q.ObserveSpeed("b", 20, time.Second)
	if it, _ := q.TryNext("b"); it != x {
		t.Fatalf("b took %v, want the reserved item 3", it)
	}
}

// A backup copy starts because the idle host's expected end beats the
// running copy's, even when that copy runs exactly as predicted (issue
// 14: the 1x host ran the 37 s clip at its known speed; the idle 4x host
// would have ended it at about 48 s instead of 80 s).
func TestBackupCopyByExpectedFinish(t *testing.T) {
	q, clk := newVirtual(Options{Speculate: true}) // SpecMinGain: the default 30 s
	q.ObserveSpeed("slow", 1, time.Second)
	q.ObserveSpeed("fast", 4, time.Second)
	q.Push(item(1, 400, "fast"))
	a := mustNext(t, q, "fast")
	q.Push(item(2, 37, "slow", "fast"))
	x := mustNext(t, q, "slow") // fast is busy for 100 s
	if x.ID != 2 {
		t.Fatalf("slow got %d", x.ID)
	}
	clk.advance(sec(1))
	q.Progress(x, "slow", 1.0/37) // exactly on time
	q.Cancel(a)                   // fast is idle
	if got, _ := q.TryNext("fast"); got != x {
		t.Fatalf("fast got %v, want a copy of the clip (36 s left on slow, 9.25 s on fast)", got)
	}
}

// Cold start: until its first sample, a host whose speed is a guess takes
// the largest job it would finish within 15% of the predicted rest of the
// batch (else the smallest); a host with a known prior does not.
func TestShortFirstWhileTheSpeedIsAGuess(t *testing.T) {
	q, clk := newVirtual(Options{ShortFirst: true})
	q.SetHostGuess("new", 1)
	q.SetHostSpeed("known", 1)
	q.Push(item(1, 300, "new", "known"), item(2, 10, "new", "known"), item(3, 100, "new", "known"), item(4, 20, "new", "known"))
	a := mustNext(t, q, "new")
	if a.ID != 4 { // 430 pending over 2 hosts: 215 s; 15%: 32 s
		t.Fatalf("new got %d, want 4, the largest within 32 s", a.ID)
	}
	if b := mustNext(t, q, "known"); b.ID != 1 {
		t.Fatalf("known got %d, want the largest, 1", b.ID)
	}
	clk.advance(sec(5))
	q.Done(a) // a sample: new is known now
	if c, _ := q.TryNext("new"); c == nil || c.ID != 3 {
		t.Fatalf("new got %v after its first sample, want the largest left, 3", c)
	}

	// Nothing short enough: the smallest.
	q2, _ := newVirtual(Options{ShortFirst: true})
	q2.SetHostGuess("new", 1)
	q2.Push(item(1, 300, "new"), item(2, 200, "new"))
	if it := mustNext(t, q2, "new"); it.ID != 2 {
		t.Fatalf("new got %d, want the smallest, 2", it.ID)
	}
}

// A busy host whose speed is a guess does not prefetch the smallest of the
// long items queued so far while files are still fed (they are probed
// largest first, so shorter ones may come); once the feed ends it may.
// Issue 14's 1× host prefetched a 39 s clip 1.9 s into a cold run, before
// the 17–27 s clips were queued, and ended the run 3 s after the others.
func TestGuessedHostPrefetchesNothingLongWhileFeeding(t *testing.T) {
	q, _ := newVirtual(Options{ShortFirst: true})
	q.SetHostGuess("s", 1)
	q.Feeding(true)
	q.Push(item(1, 10, "s"), item(2, 300, "s"), item(3, 200, "s"))
	if a := mustNext(t, q, "s"); a.ID != 1 {
		t.Fatalf("s got %d, want 1, the short one", a.ID)
	}
	if it := q.Prefetch("s"); it != nil {
		t.Fatalf("s prefetched %d while files are fed; want nothing long reserved", it.ID)
	}
	q.Feeding(false)
	if it := q.Prefetch("s"); it == nil || it.ID != 3 {
		t.Fatalf("s prefetched %v once every file is queued, want the smallest, 3", it)
	}
}

// Two copies of one item run (speculation); one fails while the other's
// worker reads the counters. Run with -race: the counters change under
// the queue's lock, so workers read them through Attempts and Requeues.
func TestCountersReadWhileAnotherCopyFails(t *testing.T) {
	q, clk := newVirtual(Options{Speculate: true, SpecMinGain: sec(1)})
	q.ObserveSpeed("slow", 1, time.Second)
	q.ObserveSpeed("fast", 10, time.Second)
	q.Push(item(1, 100, "slow", "fast"), item(2, 1000, "fast"))
	big := mustNext(t, q, "fast")
	it := mustNext(t, q, "slow")
	clk.advance(sec(1))
	q.Cancel(big)
	if c, _ := q.TryNext("fast"); c != it {
		t.Fatalf("fast got %v, want a copy of item 1", c)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if !q.JobFailed(it, "slow", 3) {
			t.Error("the fast copy should carry on")
		}
		q.HostFailedOn(it, "fast")
	}()
	var a, r int
	for range 100 {
		a, r = q.Attempts(it), q.Requeues(it)
	}
	<-done
	if a, r = q.Attempts(it), q.Requeues(it); a != 1 || r != 1 {
		t.Fatalf("attempts %d, requeues %d; want 1 and 1", a, r)
	}
}
