// Package ratelimit holds the client-side request budgets that keep
// certbridge within a provider's per-account limits.
package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Budget is a client-side request budget for one credential: at most limit
// requests in any window, the way the provider counts them (Cloudflare: 1200
// per 5 minutes, sliding). Bursts are allowed up to the limit. A request holds
// its slot from when it is sent until window after its answer came back: the
// provider stamps it somewhere in between, so the slot never frees before the
// provider's count drops. A 429 blocks the budget until its Retry-After, so
// concurrent calls with the same credential wait instead of piling on.
type Budget struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu           sync.Mutex
	slots        []*slot // oldest first
	blockedUntil time.Time
}

type slot struct {
	done time.Time // zero while the request is in flight
}

// Limit is a number of requests per window.
type Limit struct {
	Limit  int
	Window time.Duration
}

// New admits limit requests per window; a limit of 0 or less admits all.
func New(limit int, window time.Duration) *Budget {
	return &Budget{limit: limit, window: window, now: time.Now}
}

// ExhaustedError says the budget cannot admit a request before the
// caller's deadline. It counts as context.DeadlineExceeded, so an SDK retry
// loop stops on it rather than spinning.
type ExhaustedError struct {
	until  time.Time
	limit  int
	window time.Duration
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("the request budget for this credential (%d requests per %s, the provider's limit) is used up until %s, after this request's deadline",
		e.limit, e.window, e.until.UTC().Format(time.RFC3339))
}

func (e *ExhaustedError) Is(target error) bool { return target == context.DeadlineExceeded }

// inFlightPoll is how often a full budget of requests still in flight is
// looked at again.
const inFlightPoll = 20 * time.Millisecond

// Acquire blocks until the budget admits one request, or fails at once when
// that would be after ctx's deadline. The caller calls release when the
// request's answer has arrived.
func (b *Budget) Acquire(ctx context.Context) (release func(), err error) {
	if b == nil || b.limit <= 0 {
		return func() {}, nil
	}
	for {
		s, until := b.take()
		if s != nil {
			return func() { b.release(s) }, nil
		}
		if deadline, has := ctx.Deadline(); has && until.After(deadline) {
			return nil, &ExhaustedError{until: until, limit: b.limit, window: b.window}
		}
		t := time.NewTimer(time.Until(until))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// take admits a request now, or says when to look again.
func (b *Budget) take() (*slot, time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if now.Before(b.blockedUntil) {
		return nil, b.blockedUntil
	}
	kept := b.slots[:0]
	var next time.Time
	for _, s := range b.slots {
		if s.done.IsZero() || now.Sub(s.done) < b.window {
			kept = append(kept, s)
			if free := s.done.Add(b.window); !s.done.IsZero() && (next.IsZero() || free.Before(next)) {
				next = free
			}
		}
	}
	clear(b.slots[len(kept):])
	b.slots = kept
	if len(b.slots) >= b.limit {
		if next.IsZero() {
			next = now.Add(inFlightPoll)
		}
		return nil, next
	}
	s := &slot{}
	b.slots = append(b.slots, s)
	return s, time.Time{}
}

func (b *Budget) release(s *slot) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s.done = b.now()
}

// BlockUntil holds every request back until t (the provider's Retry-After).
func (b *Budget) BlockUntil(t time.Time) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.After(b.blockedUntil) {
		b.blockedUntil = t
	}
}
