package queue

import (
	"context"
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
