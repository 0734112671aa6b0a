package queue

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

func item(id int, work float64, hosts ...string) *Item {
	el := map[string]bool{}
	for _, h := range hosts {
		el[h] = true
	}
	return &Item{ID: id, Work: work, Eligible: el}
}

func TestLargestWorkFirstAndEligibility(t *testing.T) {
	q := New()
	q.Push(item(1, 10, "a", "b"), item(2, 30, "b"), item(3, 20, "a"))
	ctx := context.Background()
	if got := q.Next(ctx, "a"); got.ID != 3 {
		t.Fatalf("a got %d, want 3 (largest it may take)", got.ID)
	}
	if got := q.Next(ctx, "b"); got.ID != 2 {
		t.Fatalf("b got %d, want 2", got.ID)
	}
	if got := q.Next(ctx, "a"); got.ID != 1 {
		t.Fatalf("a got %d, want 1", got.ID)
	}
}

func TestNextReturnsNilWhenNothingCanComeBack(t *testing.T) {
	q := New()
	q.Push(item(1, 1, "b"))
	if got := q.Next(context.Background(), "a"); got != nil {
		t.Fatalf("a got %v, want nil: nothing eligible for a", got)
	}
}

func TestWorkerWaitsForRunningItemThatMayBeRequeued(t *testing.T) {
	q := New()
	q.Push(item(1, 1, "a", "b"))
	ctx := context.Background()
	it := q.Next(ctx, "a")
	got := make(chan *Item)
	go func() { got <- q.Next(ctx, "b") }()
	select {
	case g := <-got:
		t.Fatalf("b returned %v while a's item could still come back", g)
	case <-time.After(50 * time.Millisecond):
	}
	q.SetDown("a", true)
	q.HostFailed(it)
	select {
	case g := <-got:
		if g == nil || g.ID != 1 {
			t.Fatalf("b got %v, want the requeued item 1", g)
		}
		if g.Attempts != 0 || g.Requeues != 1 {
			t.Fatalf("host failure must not count as an attempt: attempts=%d requeues=%d", g.Attempts, g.Requeues)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("b never got the requeued item")
	}
	q.Done(it)
	if got := q.Next(ctx, "b"); got != nil {
		t.Fatalf("after done, b got %v", got)
	}
}

func TestJobFailureRetriedOnAnotherHostFirst(t *testing.T) {
	q := New()
	q.Push(item(1, 1, "a", "b"))
	ctx := context.Background()
	it := q.Next(ctx, "a")
	if !q.JobFailed(it, "a", 2) {
		t.Fatal("first failure should be retried")
	}
	// a must not take it again while b has not tried it.
	waitA := make(chan *Item)
	go func() { waitA <- q.Next(ctx, "a") }()
	if got := q.Next(ctx, "b"); got == nil || got.ID != 1 {
		t.Fatalf("b got %v, want item 1", got)
	}
	if q.JobFailed(it, "b", 2) {
		t.Fatal("second failure with max 2 attempts must be final")
	}
	select {
	case g := <-waitA:
		if g != nil {
			t.Fatalf("a got %v after final failure", g)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a kept waiting after the item finished")
	}
	if p := q.Pending(); len(p) != 0 {
		t.Fatalf("pending = %d, want 0", len(p))
	}
}

// A host that could not run an item at all (Refused) costs it no attempt
// while another host has yet to try it; once every host has failed it, a
// refusal counts, so the item still ends.
func TestRefusedCountsNoAttemptWhileAnotherHostMayTry(t *testing.T) {
	q := New()
	q.Push(item(1, 1, "a", "b", "c"))
	ctx := context.Background()
	it := q.Next(ctx, "a")
	if !q.Refused(it, "a", 2) || it.Attempts != 0 {
		t.Fatalf("refused on a: attempts %d, want a retry and 0 attempts", it.Attempts)
	}
	if got := q.Next(ctx, "b"); got != it {
		t.Fatalf("b got %v, want the refused item", got)
	}
	if !q.Refused(it, "b", 2) || it.Attempts != 0 {
		t.Fatalf("refused on b: attempts %d, want a retry and 0 attempts (c has not tried)", it.Attempts)
	}
	if got := q.Next(ctx, "c"); got != it {
		t.Fatalf("c got %v", got)
	}
	if !q.JobFailed(it, "c", 2) || it.Attempts != 1 {
		t.Fatalf("failed on c: attempts %d, want 1 and a retry", it.Attempts)
	}
	// Every host has failed it now: a refusal counts, and ends it.
	if got := q.Next(ctx, "a"); got != it {
		t.Fatalf("a got %v on the last round", got)
	}
	if q.Refused(it, "a", 2) || it.Attempts != 2 {
		t.Fatalf("refused when every host has failed it: attempts %d, want 2 and no retry", it.Attempts)
	}
	if p := q.Pending(); len(p) != 0 {
		t.Fatalf("pending = %d, want 0", len(p))
	}
	// A down host does not count as one that may still try it.
	q2 := New()
	q2.Push(item(2, 1, "a", "b"))
	q2.SetDown("b", true)
	it2 := q2.Next(ctx, "a")
	if !q2.Refused(it2, "a", 2) || it2.Attempts != 1 {
		t.Fatalf("refused with the other host down: attempts %d, want 1", it2.Attempts)
	}
}

func TestFailedHostRetriesWhenItIsTheOnlyOne(t *testing.T) {
	q := New()
	q.Push(item(1, 1, "a"))
	ctx := context.Background()
	it := q.Next(ctx, "a")
	if !q.JobFailed(it, "a", 3) {
		t.Fatal("want retry with attempts left")
	}
	if got := q.Next(ctx, "a"); got == nil {
		t.Fatal("the only host must get the retry")
	}
}

func TestDownHostItemsAreLeftPending(t *testing.T) {
	q := New()
	q.Push(item(1, 1, "a"), item(2, 1, "a", "b"))
	q.SetDown("a", true)
	ctx := context.Background()
	if got := q.Next(ctx, "b"); got == nil || got.ID != 2 {
		t.Fatalf("b got %v, want 2", got)
	}
	if got := q.Next(ctx, "a"); got != nil {
		t.Fatalf("down host got %v", got)
	}
	p := q.Pending()
	if len(p) != 2 { // item 1 pending, item 2 running
		t.Fatalf("pending=%d, want 2 (one never runnable, one running)", len(p))
	}
}

func TestCloseWakesWaiters(t *testing.T) {
	q := New()
	q.Push(item(1, 1, "a", "b"))
	ctx := context.Background()
	q.Next(ctx, "a")
	done := make(chan struct{})
	go func() { q.Next(ctx, "b"); close(done) }()
	q.Close()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not wake the waiting worker")
	}
}

// ------------------------------------------------ virtual-clock scheduling

type vclock struct{ t time.Time }

func (c *vclock) now() time.Time          { return c.t }
func (c *vclock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newVirtual(o Options) (*Queue, *vclock) {
	c := &vclock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	o.Now = c.now
	return NewWithOptions(o), c
}

func sec(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func mustNext(t *testing.T, q *Queue, host string) *Item {
	t.Helper()
	it, _ := q.TryNext(host)
	if it == nil {
		t.Fatalf("%s got nothing", host)
	}
	return it
}

func TestEligibilityClasses(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.Push(item(1, 50, "gpu"), item(2, 40, "a", "gpu"), item(3, 30, "a"), item(4, 20, "a", "b", "gpu"))
	if got := mustNext(t, q, "b"); got.ID != 4 {
		t.Fatalf("b got %d, want 4: the only item b may run", got.ID)
	}
	if it, wait := q.TryNext("b"); it != nil || !wait {
		t.Fatalf("b: got %v wait=%v; want nothing now, but wait (item 4 runs and may come back)", it, wait)
	}
	if got := mustNext(t, q, "a"); got.ID != 2 {
		t.Fatalf("a got %d, want 2 (largest it may run)", got.ID)
	}
	if got := mustNext(t, q, "gpu"); got.ID != 1 {
		t.Fatalf("gpu got %d, want 1", got.ID)
	}
	if got := mustNext(t, q, "a"); got.ID != 3 {
		t.Fatalf("a got %d, want 3", got.ID)
	}
	if it, wait := q.TryNext("c"); it != nil || wait {
		t.Fatalf("unknown host c: got %v wait=%v, want nil and no wait", it, wait)
	}
}

func TestLPTOrderWithEqualSpeeds(t *testing.T) {
	q, _ := newVirtual(Options{})
	var items []*Item
	for i, w := range []float64{5, 90, 30, 90, 60, 10} {
		items = append(items, item(i, w, "a", "b"))
	}
	q.Push(items...)
	var got []int
	for i := 0; i < 6; i++ {
		got = append(got, mustNext(t, q, []string{"a", "b"}[i%2]).ID)
	}
	want := []int{1, 3, 4, 2, 5, 0} // largest first, equal work in push order
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestFIFOPolicy(t *testing.T) {
	q, _ := newVirtual(Options{Policy: FIFO})
	q.Push(item(0, 5, "a"), item(1, 90, "a"), item(2, 30, "a"))
	for want := 0; want < 3; want++ {
		if got := mustNext(t, q, "a"); got.ID != want {
			t.Fatalf("FIFO gave %d, want %d", got.ID, want)
		}
	}
}

// A 0.3× host must not take the biggest film when an 8× host frees up
// soon: it takes what it can finish in time, and the film waits for the
// fast host.
func TestSlowHostLeavesFilmToFastHost(t *testing.T) {
	q, clk := newVirtual(Options{})
	q.SetHostSpeed("slow", 0.3)
	q.SetHostSpeed("fast", 8)
	q.Push(item(1, 800, "slow", "fast")) // fast's current job: 100 s
	if got := mustNext(t, q, "fast"); got.ID != 1 {
		t.Fatalf("fast got %d", got.ID)
	}
	clk.advance(sec(20))
	q.Push(item(2, 10800, "slow", "fast"), item(3, 30, "slow", "fast")) // a 3 h film, a tiny clip
	if got := mustNext(t, q, "slow"); got.ID != 3 {
		t.Fatalf("slow got %d, want the clip 3 (the film is 10 h on slow, 23 min on fast after 80 s)", got.ID)
	}
	if it, wait := q.TryNext("slow"); it != nil || !wait {
		t.Fatalf("slow: got %v wait=%v, want to wait: the film is fast's", it, wait)
	}
	clk.advance(sec(80))
	q.Done(q.Pending()[1]) // fast's job (item 1) ends on time
	if got := mustNext(t, q, "fast"); got.ID != 2 {
		t.Fatalf("fast got %d, want the film", got.ID)
	}
}

// If the fast host stays busy long enough, the slow host still finishes
// the film sooner, and takes it.
func TestSlowHostTakesFilmWhenFastHostIsBusyLong(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetHostSpeed("slow", 1)
	q.SetHostSpeed("fast", 8)
	q.Push(item(1, 8*20000, "fast")) // fast busy for 20000 s
	mustNext(t, q, "fast")
	q.Push(item(2, 10800, "slow", "fast"))
	if got := mustNext(t, q, "slow"); got.ID != 2 {
		t.Fatalf("slow got %d, want the film: it ends at 10800 s, fast frees at 20000 s", got.ID)
	}
}

// The only host that may run an item never waits for another.
func TestOnlyEligibleHostNeverIdles(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetHostSpeed("slow", 0.3)
	q.SetHostSpeed("fast", 8)
	q.Push(item(1, 100000, "slow"), item(2, 100, "fast"))
	if got := mustNext(t, q, "slow"); got.ID != 1 {
		t.Fatalf("slow got %d", got.ID)
	}
}

func TestRequeueAfterHostFailureVirtual(t *testing.T) {
	q, clk := newVirtual(Options{})
	q.Push(item(1, 100, "a", "b"), item(2, 10, "a", "b"))
	it := mustNext(t, q, "a")
	clk.advance(sec(30))
	q.SetDown("a", true)
	q.HostFailed(it)
	if p, r := q.Counts(); p != 2 || r != 0 {
		t.Fatalf("counts %d/%d, want 2 pending 0 running", p, r)
	}
	got := mustNext(t, q, "b")
	if got != it || got.Requeues != 1 || got.Attempts != 0 {
		t.Fatalf("b got %d requeues=%d attempts=%d; want the requeued item, 1 requeue, no attempt", got.ID, got.Requeues, got.Attempts)
	}
	if it, wait := q.TryNext("a"); it != nil || wait {
		t.Fatal("a down host must get nil and not wait")
	}
	q.SetDown("a", false)
	if got := mustNext(t, q, "a"); got.ID != 2 {
		t.Fatalf("a, back up, got %d", got.ID)
	}
}

func TestSpeedModel(t *testing.T) {
	q, _ := newVirtual(Options{Alpha: 0.5})
	q.SetHostSpeed("a", 2)
	q.SetHostSpeed("b", 4)
	if s := q.HostSpeed("b"); s != 4 {
		t.Fatalf("prior b = %v", s)
	}
	q.ObserveSpeed("a", 1000, 10*time.Second) // 100 units/s: replaces the prior
	if s := q.HostSpeed("a"); s != 100 {
		t.Fatalf("a after first sample = %v, want 100", s)
	}
	if s := q.HostSpeed("b"); s != 200 {
		t.Fatalf("unobserved b = %v, want weight 4 × (100/2) = 200", s)
	}
	q.ObserveSpeed("a", 2000, 10*time.Second)
	if s := q.HostSpeed("a"); s != 150 {
		t.Fatalf("a after EWMA = %v, want 150", s)
	}
	if m := q.ObservedSpeeds(); len(m) != 1 || m["a"] != 150 {
		t.Fatalf("observed speeds %v", m)
	}
}

func TestDoneRecordsSpeed(t *testing.T) {
	q, clk := newVirtual(Options{})
	q.Push(item(1, 600, "a"))
	it := mustNext(t, q, "a")
	clk.advance(sec(60))
	q.Done(it)
	if s := q.HostSpeed("a"); s != 10 {
		t.Fatalf("speed after a 600-unit job in 60 s = %v, want 10", s)
	}
}

// specSetup: "slow" runs a big item (fast was down when it started), the
// queue is then empty, and the fast host would finish it 10× sooner.
func specSetup(t *testing.T, o Options) (*Queue, *vclock, *Item) {
	t.Helper()
	q, clk := newVirtual(o)
	q.SetHostSpeed("slow", 1)
	q.SetHostSpeed("fast", 10)
	q.SetDown("fast", true)
	q.Push(item(1, 10000, "slow", "fast"))
	it := mustNext(t, q, "slow")
	q.SetDown("fast", false)
	clk.advance(sec(100))
	return q, clk, it
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestSpeculationCopyWins(t *testing.T) {
	q, clk, it := specSetup(t, Options{})
	if got, wait := q.TryNext("fast"); got != nil || !wait {
		t.Fatalf("without Options.Speculate, Next gives no copy: got %v wait=%v", got, wait)
	}
	if got := q.Speculate("fast"); got != it {
		t.Fatalf("Speculate gave %v, want the slow host's item", got)
	}
	if got := q.Speculate("fast"); got != nil {
		t.Fatal("at most one extra copy")
	}
	if p, r := q.Counts(); p != 0 || r != 1 {
		t.Fatalf("counts %d/%d: a copy is the same running item", p, r)
	}
	lostSlow, lostFast := q.Lost(it, "slow"), q.Lost(it, "fast")
	clk.advance(sec(1000))
	if !q.Finish(it, "fast") {
		t.Fatal("first copy to finish must win")
	}
	if !isClosed(lostSlow) || isClosed(lostFast) {
		t.Fatalf("lost: slow=%v fast=%v; want only the slow copy told", isClosed(lostSlow), isClosed(lostFast))
	}
	if q.Finish(it, "slow") {
		t.Fatal("the second copy must lose")
	}
	if q.JobFailed(it, "slow", 2) || it.Attempts != 0 {
		t.Fatal("a stopped loser's failure changes nothing")
	}
	if p, r := q.Counts(); p != 0 || r != 0 {
		t.Fatalf("counts %d/%d", p, r)
	}
	if s := q.HostSpeed("fast"); s != 10 {
		t.Fatalf("winner's speed sample: %v, want 10", s)
	}
}

func TestSpeculationOriginalWins(t *testing.T) {
	q, clk, it := specSetup(t, Options{Speculate: true})
	if got, _ := q.TryNext("fast"); got != it { // Options.Speculate: Next hands out the copy
		t.Fatalf("Next gave %v, want a copy of item 1", got)
	}
	lostFast := q.Lost(it, "fast")
	clk.advance(sec(50))
	if !q.Finish(it, "slow") {
		t.Fatal("the original finished first: it wins")
	}
	if !isClosed(lostFast) {
		t.Fatal("the copy must be told it lost")
	}
	if q.Finish(it, "fast") {
		t.Fatal("the copy must lose")
	}
}

func TestSpeculationFailures(t *testing.T) {
	q, clk, it := specSetup(t, Options{})
	q.Speculate("fast")
	if !q.JobFailed(it, "fast", 1) {
		t.Fatal("the copy failed but the original runs: not final")
	}
	if p, r := q.Counts(); p != 0 || r != 1 || isClosed(q.Lost(it, "slow")) {
		t.Fatalf("the original must carry on: counts %d/%d", p, r)
	}
	clk.advance(sec(10))
	if !q.Finish(it, "slow") {
		t.Fatal("the original wins")
	}

	q, _, it = specSetup(t, Options{})
	q.Speculate("fast")
	q.HostFailedOn(it, "slow")
	if p, r := q.Counts(); p != 0 || r != 1 || it.Requeues != 0 {
		t.Fatalf("slow's host failed, the copy runs on: counts %d/%d requeues %d", p, r, it.Requeues)
	}
	if q.JobFailed(it, "fast", 1) {
		t.Fatal("no copy left and attempts used up: final")
	}
	if p, r := q.Counts(); p != 0 || r != 0 {
		t.Fatalf("counts %d/%d", p, r)
	}

	q, _, it = specSetup(t, Options{})
	q.Speculate("fast")
	q.HostFailedOn(it, "fast")
	q.HostFailedOn(it, "slow")
	if p, r := q.Counts(); p != 1 || r != 0 || it.Requeues != 1 {
		t.Fatalf("both copies lost to host failures: counts %d/%d requeues %d, want requeued once", p, r, it.Requeues)
	}
}

func TestNoSpeculationForSmallGain(t *testing.T) {
	q, clk := newVirtual(Options{})
	q.SetHostSpeed("slow", 1)
	q.SetHostSpeed("fast", 1.2)
	q.SetDown("fast", true)
	q.Push(item(1, 1000, "slow", "fast"))
	mustNext(t, q, "slow")
	q.SetDown("fast", false)
	clk.advance(sec(100))
	if got := q.Speculate("fast"); got != nil {
		t.Fatal("900 s left on slow vs 833 s on fast: not worth a copy")
	}
}

// A host that overruns its prediction for ever does not keep others
// waiting for ever.
func TestNoStarvationBehindStuckHost(t *testing.T) {
	q, clk := newVirtual(Options{})
	q.SetHostSpeed("slow", 0.3)
	q.SetHostSpeed("fast", 8)
	q.Push(item(1, 800, "fast"))
	mustNext(t, q, "fast") // predicted 100 s
	q.Push(item(2, 10800, "slow", "fast"))
	if it, wait := q.TryNext("slow"); it != nil || !wait {
		t.Fatal("slow should wait for fast at first")
	}
	clk.advance(100000 * time.Second) // fast is stuck
	if got := mustNext(t, q, "slow"); got.ID != 2 {
		t.Fatalf("slow got %d", got.ID)
	}
}

// Drive many hosts and items with failures through TryNext on a virtual
// clock: every item ends, and no slot is left waiting with work pending.
func TestEventLoopFinishesEverything(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	q, clk := newVirtual(Options{Speculate: true, SpecMinGain: time.Second})
	hostNames := []string{"h0", "h1", "h2", "h3", "h4", "h5"}
	speed := map[string]float64{}
	for _, h := range hostNames {
		speed[h] = 0.3 + 5*rng.Float64()
		q.SetHostSpeed(h, speed[h])
		q.SetSlots(h, 1+rng.IntN(2))
	}
	var items []*Item
	for i := 0; i < 400; i++ {
		var el []string
		for _, h := range hostNames {
			if rng.Float64() < 0.6 {
				el = append(el, h)
			}
		}
		if len(el) == 0 {
			el = []string{"h0"}
		}
		items = append(items, item(i, 100+5000*rng.Float64(), el...))
	}
	q.Push(items...)
	type ev struct {
		at   time.Time
		it   *Item
		host string
	}
	var running []ev
	slotsFree := map[string]int{}
	for _, h := range hostNames {
		slotsFree[h] = map[bool]int{true: 2, false: 1}[q.hosts[h].slots == 2]
	}
	fill := func() {
		for _, h := range hostNames {
			for slotsFree[h] > 0 {
				it, _ := q.TryNext(h)
				if it == nil {
					break
				}
				slotsFree[h]--
				d := sec(it.Work / speed[h] * math.Exp(0.5*rng.NormFloat64()))
				running = append(running, ev{clk.now().Add(d), it, h})
			}
		}
	}
	fill()
	ended := 0
	for len(running) > 0 {
		sort.Slice(running, func(i, j int) bool { return running[i].at.Before(running[j].at) })
		e := running[0]
		running = running[1:]
		clk.t = e.at
		slotsFree[e.host]++
		switch r := rng.Float64(); {
		case r < 0.05:
			if !q.JobFailed(e.it, e.host, 2) && e.it.state == finished {
				ended++
			}
		case r < 0.08:
			q.HostFailedOn(e.it, e.host)
		default:
			if q.Finish(e.it, e.host) {
				ended++
				for i := 0; i < len(running); i++ { // stop the losing copy
					if running[i].it == e.it {
						slotsFree[running[i].host]++
						running = append(running[:i], running[i+1:]...)
						i--
					}
				}
			}
		}
		fill()
	}
	if p, r := q.Counts(); p != 0 || r != 0 || ended != len(items) {
		t.Fatalf("ended with %d pending, %d running, %d/%d finished", p, r, ended, len(items))
	}
}

func TestHasWorkFor(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.Push(item(1, 10, "a", "b"), item(2, 10, "b"))
	if !q.HasWorkFor("a") || !q.HasWorkFor("b") || q.HasWorkFor("c") {
		t.Fatal("before any run")
	}
	it := mustNext(t, q, "a")
	q.Done(it)
	if q.HasWorkFor("a") || !q.HasWorkFor("b") {
		t.Fatal("after item 1 is done, only b has work")
	}
}

func TestFallbackHostTakesOnlyWhatNoOtherCan(t *testing.T) {
	q := New()
	q.SetFallback("local", true)
	q.Push(item(1, 10, "local", "remote"), item(2, 5, "local", "remote"), item(3, 1, "local"))
	// remote is up: local may take only the job nobody else can run.
	it, _ := q.TryNext("local")
	if it == nil || it.ID != 3 {
		t.Fatalf("fallback took %v, want only item 3", it)
	}
	q.Done(it)
	if it, wait := q.TryNext("local"); it != nil || !wait {
		t.Fatalf("fallback took %v (wait=%v) while the remote host is up", it, wait)
	}
	// A job that failed on the remote host may go to the fallback at once.
	r := q.Next(context.Background(), "remote")
	if r.ID != 1 {
		t.Fatalf("remote got %d", r.ID)
	}
	if !q.JobFailed(r, "remote", 2) {
		t.Fatal("want a retry")
	}
	if it, _ := q.TryNext("local"); it == nil || it.ID != 1 {
		t.Fatalf("fallback did not take the job that failed remotely: %v", it)
	}
	// The remote host goes down: the fallback takes everything left.
	q.SetDown("remote", true)
	if it, _ := q.TryNext("local"); it == nil || it.ID != 2 {
		t.Fatalf("fallback did not take over from the down host: %v", it)
	}
}

// ------------------------------------------------------------- prefetch

// Prefetch gives a busy host what it would take when its slot frees, by
// the same rule as Next: the fast host gets the film, the slow host leaves
// it (the fast one would finish it far sooner) and gets nothing.
func TestPrefetchGivesTheHostItsNextItem(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetHostSpeed("slow", 1)
	q.SetHostSpeed("fast", 10)
	q.SetSlots("slow", 1)
	q.SetSlots("fast", 1)
	q.Push(item(1, 100, "fast"), item(2, 5, "slow")) // fast busy until 10, slow until 5
	mustNext(t, q, "fast")
	mustNext(t, q, "slow")
	q.Push(item(3, 1000, "slow", "fast"))
	if got := q.Prefetch("slow"); got != nil {
		t.Fatalf("slow prefetched %d: the film ends at 1005 s there, at 110 s on fast", got.ID)
	}
	film := q.Prefetch("fast")
	if film == nil || film.ID != 3 {
		t.Fatalf("fast prefetched %v, want the film", film)
	}
	if p, r := q.Counts(); p != 0 || r != 3 {
		t.Fatalf("counts %d/%d: a prefetched item is running", p, r)
	}
	if got := q.Prefetch("fast"); got != nil {
		t.Fatalf("nothing left, fast prefetched %d", got.ID)
	}
}

// Prefetch is for a slot that frees later: a slow host does not prefetch
// the film that a faster host frees up for first, even with so much work
// pending that a slot free now would take the film (it would end before
// the predicted end of the batch).
func TestPrefetchLeavesFilmToHostThatFreesFirst(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetHostSpeed("slow", 1)
	q.SetHostSpeed("fast", 10)
	q.SetSlots("slow", 1)
	q.SetSlots("fast", 1)
	q.Push(item(1, 200, "fast"), item(2, 50, "slow")) // fast frees at 20 s, slow at 50 s
	mustNext(t, q, "fast")
	mustNext(t, q, "slow")
	var more []*Item
	for i := 0; i < 20; i++ {
		more = append(more, item(10+i, 600, "fast")) // 12000 units only fast may take
	}
	q.Push(append(more, item(3, 1000, "slow", "fast"))...)
	if got := q.Prefetch("slow"); got != nil {
		t.Fatalf("slow prefetched %d: the film ends at 1050 s there, at 120 s on fast", got.ID)
	}
	if got := q.Prefetch("fast"); got == nil || got.ID != 3 {
		t.Fatalf("fast prefetched %v, want the film", got)
	}
}

// A queued copy occupies its host's slot after the running job, for its
// full predicted time: another host then takes work it would otherwise
// leave to that host.
func TestQueuedCopyCountsInPredictions(t *testing.T) {
	for _, prefetch := range []bool{false, true} {
		q, _ := newVirtual(Options{})
		q.SetHostSpeed("slow", 1)
		q.SetHostSpeed("fast", 10)
		q.SetSlots("slow", 1)
		q.SetSlots("fast", 1)
		q.Push(item(1, 100, "fast")) // fast busy until 10
		mustNext(t, q, "fast")
		if prefetch {
			q.Push(item(2, 3000, "fast")) // then 300 s more
			if got := q.Prefetch("fast"); got == nil || got.ID != 2 {
				t.Fatalf("fast prefetched %v", got)
			}
		}
		q.Push(item(3, 150, "slow", "fast"))
		got, _ := q.TryNext("slow")
		switch {
		case prefetch && (got == nil || got.ID != 3):
			t.Fatalf("slow got %v: item 3 ends at 150 s on slow, at 325 s on fast after its queued film", got)
		case !prefetch && got != nil:
			t.Fatalf("slow took %d: fast frees at 10 s and ends it at 25 s", got.ID)
		}
	}
}

// Begin restarts a queued copy's clock: the speed sample of a prefetched
// item excludes the time it waited for the slot.
func TestBeginExcludesTheWaitFromTheSpeedSample(t *testing.T) {
	q, clk := newVirtual(Options{Alpha: 1})
	q.SetSlots("a", 1)
	q.Push(item(1, 100, "a"), item(2, 100, "a"))
	first := mustNext(t, q, "a")
	second := q.Prefetch("a")
	if second == nil || second.ID != 2 {
		t.Fatalf("prefetched %v", second)
	}
	clk.advance(sec(100))
	if !q.Finish(first, "a") {
		t.Fatal("first must win")
	}
	if s := q.HostSpeed("a"); s != 1 {
		t.Fatalf("speed %v after 100 units in 100 s", s)
	}
	q.Begin(second, "a")
	q.Begin(second, "a") // a second Begin changes nothing
	clk.advance(sec(50))
	if !q.Finish(second, "a") {
		t.Fatal("second must win")
	}
	if s := q.HostSpeed("a"); s != 2 {
		t.Fatalf("speed %v, want 2: 100 units in the 50 s since Begin, not the 150 s since Prefetch", s)
	}
}

// Until Begin, a queued copy's remaining time is its full prediction; after
// Begin it counts down from then.
func TestQueuedRemainingTime(t *testing.T) {
	q, clk := newVirtual(Options{})
	q.SetHostSpeed("a", 1)
	q.SetSlots("a", 1)
	q.Push(item(1, 100, "a"), item(2, 40, "a"))
	mustNext(t, q, "a")
	it := q.Prefetch("a")
	clk.advance(sec(30))
	r := it.runOn("a")
	if rem := r.remaining(q.clock()); rem != 40 {
		t.Fatalf("queued: remaining %v, want the full 40", rem)
	}
	if s := slotTimes(q.hosts["a"], q.clock(), nil); len(s) != 1 || s[0] != 30+70+40 {
		t.Fatalf("slot times %v, want [140]: the running job's 70 s left, then the queued 40 s", s)
	}
	q.Begin(it, "a")
	clk.advance(sec(10))
	if rem := r.remaining(q.clock()); rem != 30 {
		t.Fatalf("begun: remaining %v, want 30", rem)
	}
}

// A host that goes down while holding a queued item gives it back: the
// copy is lost and another host takes the item.
func TestHostDownWithQueuedItemRequeuesIt(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetSlots("a", 1)
	q.SetSlots("b", 1)
	q.SetDown("b", true)
	q.Push(item(1, 100, "a", "b"), item(2, 50, "a", "b"))
	first := mustNext(t, q, "a")
	second := q.Prefetch("a")
	if second == nil || second.ID != 2 {
		t.Fatalf("a prefetched %v", second)
	}
	lost := q.Lost(second, "a")
	q.SetDown("a", true)
	q.SetDown("b", false)
	q.HostFailedOn(first, "a")
	q.HostFailedOn(second, "a")
	if !isClosed(lost) {
		t.Fatal("the queued copy's Lost channel must be closed")
	}
	if p, r := q.Counts(); p != 2 || r != 0 || second.Requeues != 1 || second.Attempts != 0 {
		t.Fatalf("counts %d/%d requeues %d attempts %d: both items back, a host failure is no attempt", p, r, second.Requeues, second.Attempts)
	}
	if got := mustNext(t, q, "b"); got != first {
		t.Fatalf("b got %d", got.ID)
	}
	if got := mustNext(t, q, "b"); got != second {
		t.Fatalf("b got %d", got.ID)
	}
}

// Release gives a queued copy back without counting a requeue; JobFailed
// on a queued copy is an ordinary job failure.
func TestReleaseAndJobFailedOnQueuedCopy(t *testing.T) {
	q, _ := newVirtual(Options{})
	q.SetSlots("a", 1)
	q.SetDown("b", true) // else b, idle, would finish item 2 first: a would not prefetch it
	q.Push(item(1, 100, "a", "b"), item(2, 50, "a", "b"))
	mustNext(t, q, "a")
	it := q.Prefetch("a")
	if it == nil || it.ID != 2 {
		t.Fatalf("a prefetched %v", it)
	}
	q.SetDown("b", false)
	lost := q.Lost(it, "a")
	q.Release(it, "a")
	if p, r := q.Counts(); p != 1 || r != 1 || it.Requeues != 0 || isClosed(lost) {
		t.Fatalf("counts %d/%d requeues %d lost %v: released item pending, no requeue, Lost left to the caller", p, r, it.Requeues, isClosed(lost))
	}
	if got := mustNext(t, q, "b"); got != it {
		t.Fatalf("b got %d", got.ID)
	}
	q.HostFailedOn(it, "b") // back again, and b is gone: only a may take it
	q.SetDown("b", true)
	if again := q.Prefetch("a"); again != it {
		t.Fatalf("a prefetched %v", again)
	}
	q.SetDown("b", false)
	if !q.JobFailed(it, "a", 2) || it.Attempts != 1 || !it.FailedOn["a"] {
		t.Fatalf("a queued copy's job failure: attempts %d", it.Attempts)
	}
	if got := mustNext(t, q, "b"); got != it {
		t.Fatalf("b got %d after a failed it", got.ID)
	}
}

// A queued copy may be speculated on an idle faster host; when that copy
// wins, the queued one is told through Lost and Begin is a no-op.
func TestSpeculationOfQueuedCopy(t *testing.T) {
	q, clk := newVirtual(Options{SpecMinGain: time.Second})
	q.SetHostSpeed("slow", 1)
	q.SetHostSpeed("fast", 10)
	q.SetSlots("slow", 1)
	q.SetSlots("fast", 1)
	q.SetDown("fast", true)
	q.Push(item(1, 100, "slow", "fast"), item(2, 10000, "slow"))
	mustNext(t, q, "slow")
	queued := q.Prefetch("slow")
	if queued == nil || queued.ID != 1 {
		t.Fatalf("slow prefetched %v", queued)
	}
	q.SetDown("fast", false)
	lost := q.Lost(queued, "slow")
	// fast has nothing pending; the queued item takes 100 s on slow (once
	// it starts), 10 s here.
	if got := q.Speculate("fast"); got != queued {
		t.Fatalf("fast speculated %v, want the queued item", got)
	}
	clk.advance(sec(10))
	if !q.Finish(queued, "fast") {
		t.Fatal("the speculative copy finished first")
	}
	if !isClosed(lost) {
		t.Fatal("the queued copy must be told it lost")
	}
	q.Begin(queued, "slow") // too late: nothing happens
	if q.Finish(queued, "slow") {
		t.Fatal("the queued copy lost")
	}
	if s := q.HostSpeed("fast"); s != 10 {
		t.Fatalf("fast speed %v, want 10", s)
	}
	if p, r := q.Counts(); p != 0 || r != 1 {
		t.Fatalf("counts %d/%d: only slow's film runs", p, r)
	}
}

// Drive hosts whose every slot prefetches its next item while it runs one
// (as streaming hosts do), with job and host failures, releases and
// speculation: every item ends and the counts come back to zero.
func TestEventLoopWithPrefetchFinishesEverything(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 3))
	q, clk := newVirtual(Options{Speculate: true, SpecMinGain: time.Second})
	hostNames := []string{"h0", "h1", "h2", "h3"}
	speed := map[string]float64{}
	type slot struct {
		host     string
		cur      *Item
		end      time.Time
		prefetch *Item
	}
	var slots []*slot
	for i, h := range hostNames {
		speed[h] = 0.5 + 4*rng.Float64()
		q.SetHostSpeed(h, speed[h])
		n := 1 + i%2
		q.SetSlots(h, n)
		for k := 0; k < n; k++ {
			slots = append(slots, &slot{host: h})
		}
	}
	var items []*Item
	for i := 0; i < 300; i++ {
		var el []string
		for _, h := range hostNames {
			if rng.Float64() < 0.7 {
				el = append(el, h)
			}
		}
		if len(el) == 0 {
			el = []string{"h1"}
		}
		items = append(items, item(i, 100+3000*rng.Float64(), el...))
	}
	q.Push(items...)
	ended := map[*Item]bool{}
	prefetched := 0
	begin := func(s *slot, it *Item) {
		s.cur = it
		s.end = clk.now().Add(sec(it.Work / speed[s.host] * math.Exp(0.4*rng.NormFloat64())))
		if s.prefetch == nil {
			if s.prefetch = q.Prefetch(s.host); s.prefetch != nil {
				prefetched++
			}
		}
	}
	fill := func() {
		for _, s := range slots {
			if s.cur != nil {
				continue
			}
			if p := s.prefetch; p != nil {
				s.prefetch = nil
				if isClosed(q.Lost(p, s.host)) {
					continue // another copy won meanwhile
				}
				q.Begin(p, s.host)
				begin(s, p)
				continue
			}
			if it, _ := q.TryNext(s.host); it != nil {
				begin(s, it)
			}
		}
	}
	stop := func(it *Item) { // a copy won: stop the others
		for _, s := range slots {
			if s.cur == it {
				s.cur = nil
			}
			if s.prefetch == it {
				s.prefetch = nil
			}
		}
	}
	fill()
	for {
		var next *slot
		for _, s := range slots {
			if s.cur != nil && (next == nil || s.end.Before(next.end)) {
				next = s
			}
		}
		if next == nil {
			break
		}
		clk.t = next.end
		it := next.cur
		next.cur = nil
		switch r := rng.Float64(); {
		case r < 0.04:
			if !q.JobFailed(it, next.host, 2) && it.state == finished {
				ended[it] = true
			}
		case r < 0.07: // the host fails: both its copies go back
			q.HostFailedOn(it, next.host)
			if p := next.prefetch; p != nil {
				next.prefetch = nil
				q.HostFailedOn(p, next.host)
			}
		case r < 0.09: // the slot gives its queued item back
			if p := next.prefetch; p != nil {
				next.prefetch = nil
				q.Release(p, next.host)
			}
			if q.Finish(it, next.host) {
				ended[it] = true
				stop(it)
			}
		default:
			if q.Finish(it, next.host) {
				ended[it] = true
				stop(it)
			}
		}
		fill()
	}
	if p, r := q.Counts(); p != 0 || r != 0 || len(ended) != len(items) {
		t.Fatalf("ended with %d pending, %d running, %d/%d finished", p, r, len(ended), len(items))
	}
	for _, h := range q.hostList {
		if len(h.runs) != 0 {
			t.Fatalf("host %s still has %d runs", h.name, len(h.runs))
		}
	}
	if prefetched < len(items)/2 {
		t.Fatalf("only %d items were prefetched", prefetched)
	}
}

// Cancel ends pending and running items alike, tells running copies
// through Lost, and takes no speed sample (a stopped copy says nothing
// about its host's speed).
func TestCancelEndsItemsWithoutASpeedSample(t *testing.T) {
	q, clk := newVirtual(Options{})
	q.SetSlots("a", 1)
	q.SetHostSpeed("a", 1)
	el := map[string]bool{"a": true}
	run, pend := &Item{ID: 1, Work: 100, Eligible: el}, &Item{ID: 2, Work: 50, Eligible: el}
	q.Push(run, pend)
	if got, _ := q.TryNext("a"); got != run {
		t.Fatalf("want item 1 first, got %v", got)
	}
	lost := q.Lost(run, "a")
	clk.advance(time.Second) // 100 work in 1 s would read as speed 100
	q.Cancel(run)
	q.Cancel(pend)
	select {
	case <-lost:
	default:
		t.Error("the running copy was not told it is lost")
	}
	if p, r := q.Counts(); p != 0 || r != 0 {
		t.Errorf("counts after cancel: %d pending, %d running", p, r)
	}
	if len(q.ObservedSpeeds()) != 0 {
		t.Errorf("cancel took a speed sample: %v", q.ObservedSpeeds())
	}
	if q.HasWorkFor("a") {
		t.Error("cancelled items still count as work")
	}
}
