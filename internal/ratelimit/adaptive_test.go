package ratelimit

import (
	"context"
	"testing"
	"time"
)

func TestAdaptive(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	a := NewAdaptive(60, nil)
	a.now = clock.now
	t.Run("paces at the documented rate", func(t *testing.T) {
		start := clock.now()
		for i := range 60 {
			at, ok := a.take(clock.now())
			for !ok {
				clock.t = at
				at, ok = a.take(clock.now())
			}
			if i == 0 && !clock.now().Equal(start) {
				t.Fatal("the first request waited")
			}
		}
		if span := clock.now().Sub(start); span < 970*time.Millisecond || span > 990*time.Millisecond {
			t.Errorf("the 60th of 60 requests at 60 per second goes after %v, want 59/60 s", span)
		}
	})
	t.Run("halves at a throttled answer, once per request interval", func(t *testing.T) {
		clock.advance(time.Minute)
		a.Throttled()
		a.Throttled() // the answer of another request sent before the cut
		if r := a.Rate(); r != 30 {
			t.Fatalf("rate %v after one throttling, want 30", r)
		}
		clock.advance(time.Second)
		a.Throttled()
		if r := a.Rate(); r != 15 {
			t.Fatalf("rate %v after a second throttling, want 15", r)
		}
	})
	t.Run("grows back by about one per second of accepted requests", func(t *testing.T) {
		for range 15 { // a second's worth at 15 per second
			a.Accepted()
		}
		if r := a.Rate(); r < 15.9 || r > 16.1 {
			t.Errorf("rate %v, want about 16", r)
		}
		for range 10000 {
			a.Accepted()
		}
		if r := a.Rate(); r != 60 {
			t.Errorf("rate %v, never above the documented 60", r)
		}
	})
	t.Run("a deadline before the turn fails at once", func(t *testing.T) {
		b := NewAdaptive(1, nil)
		b.now = clock.now
		_, _ = b.take(clock.now())
		ctx, cancel := context.WithDeadline(context.Background(), clock.now().Add(100*time.Millisecond))
		defer cancel()
		if err := b.Acquire(ctx); err == nil {
			t.Error("a turn a second away was granted to a call with 100 ms left")
		}
	})
}
