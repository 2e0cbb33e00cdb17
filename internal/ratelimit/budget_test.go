package ratelimit

import (
	"context"
	"errors"
	"testing"
	"time"
)

func newTestBudget(limit int, window time.Duration) (*Budget, *fakeClock) {
	clock := &fakeClock{t: time.Now()} // Acquire compares with real deadlines
	b := NewCounted(limit, window)
	b.now = clock.now
	return b, clock
}

// count is an answer's Ratelimit and Ratelimit-Policy for policy "default".
func count(remaining int, reset time.Duration, quota int, window time.Duration) Counts {
	return Counts{Remaining: []Remaining{{"default", remaining, reset}}, Policies: []Policy{{"default", quota, window}}}
}

// must admits a request now or fails the test.
func must(t *testing.T, b *Budget, what string) *Ticket {
	t.Helper()
	tk, next, changed := b.take()
	if tk == nil {
		t.Fatalf("%s: held back (until %v, waiting for an answer %v)", what, next, changed != nil)
	}
	return tk
}

func TestBudget(t *testing.T) {
	t.Run("bursts up to the limit, then waits for the oldest answer plus the window", func(t *testing.T) {
		b, clock := newTestBudget(3, time.Minute)
		first := must(t, b, "the first request")
		first.Done(Counts{}) // an answer without a count: the local window alone holds
		tickets := []*Ticket{first}
		for i := range 2 {
			clock.advance(time.Second)
			tickets = append(tickets, must(t, b, "request of a burst of 3"))
			_ = i
		}
		for _, tk := range tickets[1:] {
			tk.Done(Counts{}) // answers arrive at +2s
		}
		tk, next, _ := b.take()
		if tk != nil {
			t.Fatal("a fourth request within the window was admitted")
		}
		if want := tickets[0].slot.done.Add(time.Minute); !next.Equal(want) {
			t.Errorf("next slot at %v, want %v (window after the first answer)", next, want)
		}
		clock.t = next
		must(t, b, "a request once the window has passed since the first answer")
	})
	t.Run("requests in flight hold their slots", func(t *testing.T) {
		b, clock := newTestBudget(1, time.Second)
		must(t, b, "the first request")
		clock.advance(time.Hour)
		if tk, _, changed := b.take(); tk != nil || changed == nil {
			t.Fatal("a slot was freed while its request is still in flight, or the wait is not for its answer")
		}
	})
	t.Run("a 429 blocks until Retry-After", func(t *testing.T) {
		b, clock := newTestBudget(100, time.Minute)
		must(t, b, "the first request").Done(Counts{})
		until := clock.now().Add(30 * time.Second)
		b.BlockUntil(until)
		if tk, next, _ := b.take(); tk != nil || !next.Equal(until) {
			t.Fatalf("want blocked until %v, got admitted=%v next=%v", until, tk != nil, next)
		}
		clock.advance(30 * time.Second)
		must(t, b, "after Retry-After")
	})
	t.Run("a wait past the deadline fails at once as DeadlineExceeded", func(t *testing.T) {
		b, _ := newTestBudget(1, time.Hour)
		tk, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		tk.Done(Counts{})
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
			tk, err := b.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			tk.Done(Counts{})
		}
	})
	t.Run("until the first answer, one request learns the count", func(t *testing.T) {
		b, _ := newTestBudget(1200, 5*time.Minute)
		first := must(t, b, "the first request")
		if tk, _, changed := b.take(); tk != nil || changed == nil {
			t.Fatal("a second request went before the first answer")
		}
		first.Done(count(1199, 5*time.Minute, 1200, 5*time.Minute))
		must(t, b, "a request after the first answer")
	})
}

// The provider's count covers other clients of the account: a budget that
// has spent nothing itself still stops when the count says the quota is
// gone, and spreads what is left once it runs low.
func TestBudgetFollowsTheProvidersCount(t *testing.T) {
	t.Run("a foreign client spent the quota: wait for the reset", func(t *testing.T) {
		b, clock := newTestBudget(1200, 5*time.Minute)
		must(t, b, "the first request").Done(count(20, 30*time.Second, 1200, 5*time.Minute))
		tk, next, _ := b.take()
		if tk != nil {
			t.Fatal("admitted with 20 left of 1200: that is within the reserve (24)")
		}
		if want := clock.now().Add(30 * time.Second); !next.Equal(want) {
			t.Errorf("next at %v, want the reset %v", next, want)
		}
		clock.advance(30 * time.Second)
		must(t, b, "after the reset")
	})
	t.Run("plenty left: sent at once", func(t *testing.T) {
		b, _ := newTestBudget(1200, 5*time.Minute)
		must(t, b, "the first request").Done(count(1100, 200*time.Second, 1200, 5*time.Minute))
		for range 50 {
			must(t, b, "a request with most of the quota left")
		}
	})
	t.Run("below half, others about: spread over the time left", func(t *testing.T) {
		b, clock := newTestBudget(1200, 5*time.Minute)
		// Others spent 1075 of the window: the first answer says 124 left.
		must(t, b, "the first request").Done(count(124, 100*time.Second, 1200, 5*time.Minute))
		must(t, b, "the first request after a count")
		tk, next, _ := b.take()
		if tk != nil {
			t.Fatal("a second request at once, with 98 left for 100 s")
		}
		// 124 - 1 sent since - 24 reserve = 99 left over 100 s.
		if gap := next.Sub(clock.now()); gap < time.Second || gap > 1100*time.Millisecond {
			t.Errorf("gap %v, want about 100s/99", gap)
		}
	})
	t.Run("requests sent since the count are counted against it", func(t *testing.T) {
		b, _ := newTestBudget(1200, 5*time.Minute)
		must(t, b, "the first request").Done(count(30, time.Hour, 1200, time.Hour))
		admitted := 0
		for range 10 {
			if tk, _, _ := b.take(); tk != nil {
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
		must(t, b, "the first request").Done(Counts{})
		for range 2 {
			must(t, b, "a request within the local window")
		}
		if tk, _, _ := b.take(); tk != nil {
			t.Error("a fourth request admitted past the local window")
		}
	})
}

// withSteadyNeighbour runs a process wanting far more than the quota
// beside a foreign client that spends 2 requests per second, half of
// Cloudflare's quota, without a budget, from a window before the process
// starts, and for a window after end, a time since the process started
// where the run stops.
func withSteadyNeighbour(end time.Duration) (*simulation, *client, *client, time.Time) {
	s := newSimulation(1, &counterModel{quota: cloudflareQuota.Limit, window: cloudflareQuota.Window}, 20*time.Millisecond, 150*time.Millisecond)
	start := s.now.Add(cloudflareQuota.Window + 20*time.Second)
	var times []time.Time
	for at := s.now; !at.After(start.Add(end + cloudflareQuota.Window)); at = at.Add(500 * time.Millisecond) {
		times = append(times, at)
	}
	foreign := s.foreign(times, 1)
	c := s.newClient(cloudflareQuota.Limit, cloudflareQuota.Window, 60)
	c.want(start, 100000)
	s.run(start.Add(end))
	return s, c, foreign, start
}

// A foreign client spending steadily is seen in the count's fall beyond
// the process's own requests, and its share until the reset is left to it:
// no 429 for anyone, and the process spends what the neighbour leaves.
func TestBudgetLeavesTheOthersTheirShare(t *testing.T) {
	s, c, foreign, start := withSteadyNeighbour(3 * cloudflareQuota.Window)
	if rate := c.b.counts["default"].othersRate; rate < 1.5 || rate > 2.5 {
		t.Errorf("the others' rate is estimated at %.1f per second, want about 2", rate)
	}
	if foreign.rejected+c.rejected != 0 {
		t.Errorf("%d of the neighbour's requests and %d of the process's answered 429", foreign.rejected, c.rejected)
	}
	for end, n := range s.model.perWindow {
		if end.After(start.Add(cloudflareQuota.Window)) && end.Before(start.Add(3*cloudflareQuota.Window)) && n < cloudflareQuota.Limit*9/10 {
			t.Errorf("only %d of %d spent in the window ending %s: the process left the neighbour's share unused", n, cloudflareQuota.Limit, end.Sub(start))
		}
	}
}

// The others' rate is an estimate of the account's other clients, not of
// one window: after the reset it still leaves them their share, rather
// than the process starting the window as if alone and bursting.
func TestBudgetKeepsTheOthersShareAcrossTheReset(t *testing.T) {
	s, c, _, _ := withSteadyNeighbour(cloudflareQuota.Window)
	s.run(s.model.windowEnd) // to the next reset
	sent := c.sent
	s.run(s.now.Add(10 * time.Second))
	// Half the window is the neighbour's: what is left, about 576, is
	// spread over 300 s, some 20 in 10 s, not sent at once.
	if n := c.sent - sent; n > 40 {
		t.Errorf("%d requests in the new window's first 10 s, want about 20", n)
	}
}

// A budget holding back for the others' share sends little and sees few
// counts, so it checks the others' spending with one request now and then:
// when they have stopped, the counts say so and it is admitted again
// before the reset.
func TestBudgetChecksTheOthersShareWhileHoldingBack(t *testing.T) {
	window := 6 * time.Second
	b, clock := newTestBudget(1200, window)
	// The others spend 200 per second: 50 per 250 ms.
	remaining, reset := 1100, 5*time.Second
	for range 9 {
		remaining--
		must(t, b, "a request while the others spend").Done(count(remaining, reset, 1200, window))
		clock.advance(250 * time.Millisecond)
		reset -= 250 * time.Millisecond
		remaining -= 50
	}
	// About 650 left, 2.75 s to the reset: about 550 of it is the others'.
	// The others stop. Each check is answered with the count unchanged
	// but for the check itself.
	admitted, heldBack := 0, 0
	for range 8 {
		tk, at, _ := b.take()
		if tk == nil {
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
		remaining--
		tk.Done(count(remaining, reset, 1200, window))
	}
	if heldBack == 0 {
		t.Error("never held back for the others' share: the test proves nothing")
	}
	if admitted < 4 {
		t.Errorf("%d requests admitted in 8 tries after the others stopped, want most of them", admitted)
	}
}

// An answer overtaken by a later request's answer carries an older count:
// it must not bring back what the newer count says is spent.
func TestBudgetKeepsTheNewerCountOfAnswersOutOfOrder(t *testing.T) {
	b, _ := newTestBudget(1200, 5*time.Minute)
	must(t, b, "the first request").Done(count(1000, time.Minute, 1200, 5*time.Minute))
	older := must(t, b, "a request answered late")
	newer := must(t, b, "a request answered first")
	newer.Done(count(30, time.Minute, 1200, 5*time.Minute))
	older.Done(count(900, time.Minute, 1200, 5*time.Minute))
	if got := b.counts["default"].remaining; got != 30 {
		t.Fatalf("the count reads %d left after the older answer, want the newer 30", got)
	}
	admitted := 0
	for range 10 {
		if tk, _, _ := b.take(); tk != nil {
			admitted++
		}
	}
	// 30 - 24 reserve = 6, spread: one at once.
	if admitted > 1 {
		t.Errorf("%d admitted at once on the overtaken count, want at most 1", admitted)
	}
}

// At the reset, a budget that shares the account does not admit a whole
// new window at once: every replica doing so would burst together. One
// request learns the new window's count first.
func TestBudgetLearnsTheNewWindowBeforeBursting(t *testing.T) {
	cases := []struct {
		name  string
		reset time.Duration // what the last answer before the reset said
	}{
		{"the reset passed", 2 * time.Second},
		{"the count said t=0", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, clock := newTestBudget(1200, 5*time.Minute)
			// Others spent 199 of the window: this process is not alone.
			must(t, b, "the first request").Done(count(1000, tc.reset, 1200, 5*time.Minute))
			clock.advance(tc.reset + time.Second)
			probe := must(t, b, "the request after the reset")
			if tk, _, changed := b.take(); tk != nil || changed == nil {
				t.Fatal("a second request went before the new window's count")
			}
			probe.Done(count(1100, 5*time.Minute, 1200, 5*time.Minute))
			for range 20 {
				must(t, b, "a request once the new window's count is in")
			}
		})
	}
}
