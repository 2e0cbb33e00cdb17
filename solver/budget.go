package solver

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// budget is a client-side request budget for one credential: at most limit
// requests in any window, the way the provider counts them (Cloudflare: 1200
// per 5 minutes, sliding). Bursts are allowed up to the limit. A 429 from the
// provider blocks the budget until its Retry-After, so concurrent calls with
// the same credential wait instead of piling onto the provider.
type budget struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu           sync.Mutex
	sent         []time.Time // start times of the requests in the current window, oldest first
	blockedUntil time.Time
}

func newBudget(limit int, window time.Duration) *budget {
	return &budget{limit: limit, window: window, now: time.Now}
}

// budgetExhaustedError says the budget cannot admit a request before the
// caller's deadline. It counts as context.DeadlineExceeded, so an SDK retry
// loop stops on it rather than spinning.
type budgetExhaustedError struct {
	until  time.Time
	limit  int
	window time.Duration
}

func (e *budgetExhaustedError) Error() string {
	return fmt.Sprintf("the request budget for this credential (%d requests per %s, the provider's limit) is used up until %s, after this request's deadline",
		e.limit, e.window, e.until.UTC().Format(time.RFC3339))
}

func (e *budgetExhaustedError) Is(target error) bool { return target == context.DeadlineExceeded }

// wait blocks until the budget admits one request, or fails at once when that
// would be after ctx's deadline.
func (b *budget) wait(ctx context.Context) error {
	if b == nil || b.limit <= 0 {
		return nil
	}
	for {
		until, ok := b.take()
		if ok {
			return nil
		}
		if deadline, has := ctx.Deadline(); has && until.After(deadline) {
			return &budgetExhaustedError{until: until, limit: b.limit, window: b.window}
		}
		t := time.NewTimer(time.Until(until))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// take admits a request now, or says when one may be admitted.
func (b *budget) take() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if now.Before(b.blockedUntil) {
		return b.blockedUntil, false
	}
	cut := 0
	for cut < len(b.sent) && now.Sub(b.sent[cut]) >= b.window {
		cut++
	}
	if cut > 0 {
		b.sent = append(b.sent[:0], b.sent[cut:]...)
	}
	if len(b.sent) >= b.limit {
		return b.sent[0].Add(b.window), false
	}
	b.sent = append(b.sent, now)
	return time.Time{}, true
}

// blockUntil holds every request back until t (the provider's Retry-After).
func (b *budget) blockUntil(t time.Time) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.After(b.blockedUntil) {
		b.blockedUntil = t
	}
}
