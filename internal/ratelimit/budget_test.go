package ratelimit

import (
	"context"
	"errors"
	"testing"
	"time"
)

// fakeClock drives a budget without waiting.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestBudget(limit int, window time.Duration) (*Budget, *fakeClock) {
	clock := &fakeClock{t: time.Now()} // acquire compares with real deadlines
	b := New(limit, window)
	b.now = clock.now
	return b, clock
}

func TestBudget(t *testing.T) {
	t.Run("bursts up to the limit, then waits for the oldest answer plus the window", func(t *testing.T) {
		b, clock := newTestBudget(3, time.Minute)
		var slots []*slot
		for i := range 3 {
			s, _ := b.take()
			if s == nil {
				t.Fatalf("request %d of a burst of 3 refused", i)
			}
			slots = append(slots, s)
			clock.advance(time.Second)
		}
		for _, s := range slots {
			b.release(s) // answers arrive at +3s
		}
		s, next := b.take()
		if s != nil {
			t.Fatal("a fourth request within the window was admitted")
		}
		if want := clock.now().Add(time.Minute); !next.Equal(want) {
			t.Errorf("next slot at %v, want %v (window after the first answer)", next, want)
		}
		clock.advance(time.Minute)
		if s, _ := b.take(); s == nil {
			t.Fatal("a slot must free once the window has passed since the answer")
		}
	})
	t.Run("requests in flight hold their slots", func(t *testing.T) {
		b, clock := newTestBudget(1, time.Second)
		if s, _ := b.take(); s == nil {
			t.Fatal("first request refused")
		}
		clock.advance(time.Hour)
		if s, _ := b.take(); s != nil {
			t.Fatal("a slot was freed while its request is still in flight")
		}
	})
	t.Run("a 429 blocks until Retry-After", func(t *testing.T) {
		b, clock := newTestBudget(100, time.Minute)
		until := clock.now().Add(30 * time.Second)
		b.BlockUntil(until)
		if s, next := b.take(); s != nil || !next.Equal(until) {
			t.Fatalf("want blocked until %v, got slot=%v next=%v", until, s != nil, next)
		}
		clock.advance(30 * time.Second)
		if s, _ := b.take(); s == nil {
			t.Fatal("still blocked after Retry-After")
		}
	})
	t.Run("a wait past the deadline fails at once as DeadlineExceeded", func(t *testing.T) {
		b, _ := newTestBudget(1, time.Hour)
		release, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		release()
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour/2)
		defer cancel()
		_, err = b.Acquire(ctx)
		var exhausted *ExhaustedError
		if !errors.As(err, &exhausted) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a disabled budget admits everything", func(t *testing.T) {
		var b *Budget
		for range 5 {
			if _, err := b.Acquire(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// The provider's count covers other clients of the account: a budget that
// has spent nothing itself still stops when the count says the quota is
// gone, and spreads what is left once it runs low.
func TestBudgetFollowsTheProvidersCount(t *testing.T) {
	t.Run("a foreign client spent the quota: wait for the reset", func(t *testing.T) {
		b, clock := newTestBudget(1200, 5*time.Minute)
		b.Observe([]Remaining{{"default", 20, 30 * time.Second}}, []Policy{{"default", 1200, 5 * time.Minute}})
		s, next := b.take()
		if s != nil {
			t.Fatal("admitted with 20 left of 1200: that is within the reserve (24)")
		}
		if want := clock.now().Add(30 * time.Second); !next.Equal(want) {
			t.Errorf("next at %v, want the reset %v", next, want)
		}
		clock.advance(30 * time.Second)
		if s, _ := b.take(); s == nil {
			t.Error("not admitted after the reset")
		}
	})
	t.Run("plenty left: sent at once", func(t *testing.T) {
		b, _ := newTestBudget(1200, 5*time.Minute)
		b.Observe([]Remaining{{"default", 1100, 200 * time.Second}}, []Policy{{"default", 1200, 5 * time.Minute}})
		for i := range 50 {
			if s, _ := b.take(); s == nil {
				t.Fatalf("request %d held back with most of the quota left", i)
			}
		}
	})
	t.Run("below half: spread over the time left", func(t *testing.T) {
		b, clock := newTestBudget(1200, 5*time.Minute)
		b.Observe([]Remaining{{"default", 124, 100 * time.Second}}, []Policy{{"default", 1200, 5 * time.Minute}})
		if s, _ := b.take(); s == nil {
			t.Fatal("the first request after a count is held back")
		}
		s, next := b.take()
		if s != nil {
			t.Fatal("a second request at once, with 99 left for 100 s")
		}
		// 124 - 1 admitted - 24 reserve = 99 left over 100 s.
		if gap := next.Sub(clock.now()); gap < time.Second || gap > 1100*time.Millisecond {
			t.Errorf("gap %v, want about 100s/99", gap)
		}
	})
	t.Run("requests admitted since the count are counted against it", func(t *testing.T) {
		b, _ := newTestBudget(1200, 5*time.Minute)
		b.Observe([]Remaining{{"default", 30, time.Hour}}, []Policy{{"default", 1200, time.Hour}})
		admitted := 0
		for range 10 {
			if s, _ := b.take(); s != nil {
				admitted++
			}
		}
		// 30 - 24 reserve = 6, paced: the first at once, the rest later.
		if admitted != 1 {
			t.Errorf("%d admitted at once, want 1", admitted)
		}
	})
	t.Run("without a count the local window holds", func(t *testing.T) {
		b, _ := newTestBudget(3, time.Minute)
		b.Observe(nil, nil)
		for range 3 {
			if s, _ := b.take(); s == nil {
				t.Fatal("held back within the local window")
			}
		}
		if s, _ := b.take(); s != nil {
			t.Error("a fourth request admitted past the local window")
		}
	})
}

// othersSpending is a budget that has watched Cloudflare's count fall by 4
// per second for two seconds without a request of its own (another client
// spends 4 per second), with the window's reset that far away.
func othersSpending(reset time.Duration) (*Budget, *fakeClock, []Policy) {
	b, clock := newTestBudget(1200, 5*time.Minute)
	policy := []Policy{{"default", 1200, 5 * time.Minute}}
	remaining := 1000
	b.Observe([]Remaining{{"default", remaining, reset}}, policy)
	for range 8 {
		clock.advance(250 * time.Millisecond)
		remaining--
		b.Observe([]Remaining{{"default", remaining, reset}}, policy)
	}
	return b, clock, policy
}

// A foreign client spending steadily is seen in the count's fall beyond
// the budget's own answered requests, and its share until the reset is
// left to it.
func TestBudgetLeavesTheOthersTheirShare(t *testing.T) {
	b, _, policy := othersSpending(100 * time.Second)
	b.mu.Lock()
	rate := b.views["default"].othersRate
	b.mu.Unlock()
	if rate < 3 || rate > 5 {
		t.Fatalf("the others' rate is estimated at %.1f per second, want about 4", rate)
	}
	// About 4/s × 100 s is the others' until the reset, 24 the reserve.
	b.Observe([]Remaining{{"default", 410, 100 * time.Second}}, policy)
	if s, _ := b.take(); s != nil {
		t.Error("admitted although what is left is the others' share until the reset")
	}
	b.Observe([]Remaining{{"default", 500, 100 * time.Second}}, policy)
	if s, _ := b.take(); s == nil {
		t.Error("held back although about 80 beyond the others' share are left")
	}
}

// The others' rate is an estimate of the account's other clients, not of
// one window: after the reset it still leaves them their share, rather
// than every client starting the window as if alone.
func TestBudgetKeepsTheOthersShareAcrossTheReset(t *testing.T) {
	b, clock, policy := othersSpending(10 * time.Second)
	clock.advance(10 * time.Second)
	s, _ := b.take()
	if s == nil {
		t.Fatal("not admitted after the reset, before any count of the new window")
	}
	b.release(s)
	// A new window of 100 s: about 4/s × 100 s are the others', 24 the
	// reserve, so 410 left is nothing for this client.
	b.Observe([]Remaining{{"default", 410, 100 * time.Second}}, policy)
	if s, _ := b.take(); s != nil {
		t.Error("admitted in the new window although what is left is the others' share until its reset")
	}
	clock.advance(2 * time.Second) // past the pace's gap after the request above
	b.Observe([]Remaining{{"default", 500, 100 * time.Second}}, policy)
	if s, _ := b.take(); s == nil {
		t.Error("held back although about 80 beyond the others' share are left")
	}
}

// A budget holding back for the others' share sends little and sees few
// counts, so it checks the others' spending with one request now and then:
// when they have stopped, the counts say so and it is admitted again
// before the reset.
func TestBudgetChecksTheOthersShareWhileHoldingBack(t *testing.T) {
	b, clock := newTestBudget(1200, 6*time.Second)
	policy := []Policy{{"default", 1200, 6 * time.Second}}
	// The others spend 200 per second: 50 per 250 ms.
	remaining := 1100
	b.Observe([]Remaining{{"default", remaining, 5 * time.Second}}, policy)
	for range 8 {
		clock.advance(250 * time.Millisecond)
		remaining -= 50
		b.Observe([]Remaining{{"default", remaining, 5 * time.Second}}, policy)
	}
	// 500 left, 3 s to the reset: about 600 of it is the others'.
	b.Observe([]Remaining{{"default", 500, 3 * time.Second}}, policy)
	// The others stop. Each check is answered with the count unchanged
	// but for the check itself.
	left, reset := 500, 3*time.Second
	admitted, heldBack := 0, 0
	for range 8 {
		s, at := b.take()
		if s == nil {
			if !at.Before(clock.now().Add(reset)) {
				t.Fatalf("after %d checks, held back until the reset %s away", admitted, reset)
			}
			heldBack++
			d := at.Sub(clock.now())
			clock.advance(d)
			reset -= d
			continue
		}
		admitted++
		b.release(s)
		left--
		b.Observe([]Remaining{{"default", left, reset}}, policy)
	}
	if heldBack == 0 {
		t.Error("never held back for the others' share: the test proves nothing")
	}
	if admitted < 4 {
		t.Errorf("%d requests admitted in 8 tries after the others stopped, want most of them", admitted)
	}
}
