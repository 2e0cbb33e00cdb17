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
