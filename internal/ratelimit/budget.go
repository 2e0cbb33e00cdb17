// Package ratelimit holds the client-side request budgets that keep
// certbridge within a provider's per-account limits.
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Budget is a client-side request budget for one credential. Three things
// hold a request back, each its own small type:
//   - this process's own window (ownWindow): at most limit requests per
//     window, the way the provider counts them (Cloudflare: 1200 per 5
//     minutes), bursts allowed;
//   - the provider's own count when its answers carry one (providerCount):
//     what is left for every client of the account, less the share the
//     others will spend before the reset;
//   - a 429's Retry-After (BlockUntil), so concurrent calls with the same
//     credential wait instead of piling on.
type Budget struct {
	now func() time.Time

	mu           sync.Mutex
	own          ownWindow
	blockedUntil time.Time
	// sent counts the requests admitted; a request's number is its place
	// in the send order.
	sent uint64
	// counted counts the requests answered with a count (not refused):
	// the provider surely counted them.
	counted uint64
	counts  map[string]*providerCount
	// learning: the provider's answers carry its count, and none has come
	// back yet.
	learning bool
	// changed is closed, and replaced, whenever an answer comes back.
	changed chan struct{}
}

// Limit is a number of requests per window.
type Limit struct {
	Limit  int
	Window time.Duration
}

// New admits limit requests per window; a limit of 0 or less admits all.
func New(limit int, window time.Duration) *Budget {
	return &Budget{own: ownWindow{limit: limit, window: window}, now: time.Now, changed: make(chan struct{})}
}

// NewCounted is New for a provider whose answers carry its count (Done's
// Counts). Until the first answer is in, it sends one request: a process
// starting into a window that others have spent must not burst into it.
func NewCounted(limit int, window time.Duration) *Budget {
	b := New(limit, window)
	b.learning = true
	return b
}

// Counts is what an answer said of the provider's count: its Ratelimit and
// Ratelimit-Policy fields, and whether the provider refused the request
// (a 429, which it may not have counted).
type Counts struct {
	Remaining []Remaining
	Policies  []Policy
	Refused   bool
}

// Ticket is one admitted request. The caller ends it with Done once the
// request's answer, or its failure, is in.
type Ticket struct {
	b   *Budget
	seq uint64
	// held is how many of the budget's requests the provider surely
	// counted before this one was sent: those answered with a count.
	held   uint64
	slot   *slot
	waited bool
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

// Acquire blocks until the budget admits one request, or fails at once when
// that would be after ctx's deadline. A nil or unlimited budget admits
// everything (its Ticket is nil, and Done on it does nothing).
func (b *Budget) Acquire(ctx context.Context) (*Ticket, error) {
	if b == nil || b.own.limit <= 0 {
		return nil, nil
	}
	waited := false
	for {
		t, next, changed := b.take()
		if t != nil {
			t.waited = waited
			return t, nil
		}
		waited = true
		if deadline, has := ctx.Deadline(); has && !next.IsZero() && next.After(deadline) {
			return nil, &ExhaustedError{until: next, limit: b.own.limit, window: b.own.window}
		}
		if err := wait(ctx, next, changed); err != nil {
			return nil, err
		}
	}
}

// wait returns at next (when not zero), when changed is closed (when not
// nil), or with ctx's error.
func wait(ctx context.Context, next time.Time, changed <-chan struct{}) error {
	var timer <-chan time.Time
	if !next.IsZero() {
		t := time.NewTimer(time.Until(next))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer:
	case <-changed:
	}
	return nil
}

// take admits a request now, or says when to look again: at next, or
// when an answer comes back (changed is not nil).
func (b *Budget) take() (t *Ticket, next time.Time, changed <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if now.Before(b.blockedUntil) {
		return nil, b.blockedUntil, nil
	}
	awaitAnswer := false
	later := func(at time.Time, await bool) {
		if at.After(next) {
			next = at
		}
		awaitAnswer = awaitAnswer || await
	}
	if b.learning && b.sent > 0 {
		later(time.Time{}, true)
	}
	for _, c := range b.counts {
		later(c.admits(now, b.sent))
	}
	later(b.own.admits(now))
	if awaitAnswer {
		return nil, next, b.changed
	}
	if !next.IsZero() {
		return nil, next, nil
	}
	b.sent++
	for _, c := range b.counts {
		c.admitted(now, b.sent)
	}
	return &Ticket{b: b, seq: b.sent, held: b.counted, slot: b.own.take(now)}, time.Time{}, nil
}

// Waited reports whether the request had to wait for the budget.
func (t *Ticket) Waited() bool { return t != nil && t.waited }

// Done ends the request: its slot starts to age, and the provider's count
// its answer carried, if any, is applied as of this request's place in the
// send order.
func (t *Ticket) Done(counts Counts) {
	if t == nil {
		return
	}
	b := t.b
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	t.slot.done = now
	b.learning = false
	b.own.prune(now)
	if len(counts.Remaining) > 0 && !counts.Refused {
		b.counted++
	}
	for _, r := range counts.Remaining {
		c := b.counts[r.Policy]
		if c == nil {
			c = &providerCount{quota: b.own.limit, window: b.own.window}
			if b.counts == nil {
				b.counts = map[string]*providerCount{}
			}
			b.counts[r.Policy] = c
		}
		for _, p := range counts.Policies {
			if p.Policy == r.Policy {
				c.quota, c.window = p.Quota, p.Window
			}
		}
		c.observe(now, t.seq, t.held+1, b.sent, r, b.own.sentSince)
	}
	for _, c := range b.counts {
		c.answered(t.seq)
	}
	close(b.changed)
	b.changed = make(chan struct{})
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

// String writes the limit as ParseLimit reads it: "1200/5m0s".
func (l Limit) String() string { return fmt.Sprintf("%d/%s", l.Limit, l.Window) }

// ParseLimit reads a limit written "requests/window", such as "1200/5m".
func ParseLimit(s string) (Limit, error) {
	n, w, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, fmt.Errorf("%q is not requests/window, such as 1200/5m", s)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || limit < 1 {
		return Limit{}, fmt.Errorf("%q: the number of requests must be a whole number of at least 1", s)
	}
	window, err := time.ParseDuration(strings.TrimSpace(w))
	if err != nil || window < time.Second {
		return Limit{}, fmt.Errorf("%q: the window must be a duration of at least 1s, such as 5m", s)
	}
	return Limit{Limit: limit, Window: window}, nil
}
