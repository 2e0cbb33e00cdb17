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
//
// The provider's own count comes first when it sends one (Observe): it
// covers every client of the account — other replicas, other clusters,
// other tools — which no local window can see.
type Budget struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu           sync.Mutex
	slots        []*slot // oldest first
	blockedUntil time.Time
	// views are the provider's counts by policy name, from its answers.
	views map[string]*view
	// answered counts the requests whose answers came back.
	answered int
}

// view is the provider's count of one policy as its last answer gave it.
type view struct {
	remaining int
	resetAt   time.Time
	quota     int
	// admitted counts the requests admitted since the count was taken: the
	// provider may not have counted them yet.
	admitted  int
	lastAdmit time.Time
	// othersRate estimates, in requests per second, what the account's
	// other clients spend: the count's fall beyond this budget's own
	// answered requests, sampled every sampleEvery.
	othersRate      float64
	sampleAt        time.Time
	sampleRemaining int
	sampleAnswered  int
	// window is the policy's window, once an answer gave it.
	window time.Duration
}

// sampleEvery is how often the others' rate is estimated.
const sampleEvery = 250 * time.Millisecond

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
	if next := b.admitByViews(now); !next.IsZero() {
		return nil, next
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
	for _, v := range b.views {
		v.admitted++
		v.lastAdmit = now
	}
	return s, time.Time{}
}

// Reserve is the share of a quota left unspent for the account's other
// clients and the requests in flight everywhere.
const Reserve = 0.02

// paceBelow is the share of a quota below which requests are spread over
// the time left instead of sent at once.
const paceBelow = 0.5

// admitByViews applies the provider's counts: nothing is sent once only the
// reserve and what the account's other clients will spend before the reset
// (at the rate the count shows them spending) are left, and below half of
// the quota requests are spread evenly over the time to the reset.
//
// Each client of the account that does this leaves the others their share:
// with n of them spending at rate ρ each, one paces at (r/T) − (n−1)ρ, which
// settles at ρ = r/(nT): together they spend what is left exactly by the
// reset, and a foreign client's steady spending is left to it. It returns
// when to look again, or zero to admit.
func (b *Budget) admitByViews(now time.Time) time.Time {
	var next time.Time
	later := func(t time.Time) {
		if t.After(next) {
			next = t
		}
	}
	for _, v := range b.views {
		if v.resetAt.IsZero() {
			continue
		}
		if !now.Before(v.resetAt) {
			// The window reset: admit until the next count, keeping the
			// estimate of what the others spend. Forgetting it made every
			// replica of a shared quota burst at each window's start, see
			// the others' burst as their steady rate and hold back until
			// the next reset: a quarter of the quota spent per window.
			v.remaining, v.admitted, v.resetAt = 0, 0, time.Time{}
			continue
		}
		quota := v.quota
		if quota <= 0 {
			quota = max(v.remaining, b.limit)
		}
		reserve := max(1, int(float64(quota)*Reserve))
		// Leave what the others will spend before the reset.
		others := int(v.othersRate * v.resetAt.Sub(now).Seconds())
		avail := v.remaining - v.admitted - reserve - others
		switch {
		case avail <= 0 && v.remaining-v.admitted-reserve > 0:
			// Held back only for what the others are expected to spend:
			// the estimate is refreshed only by this budget's answers, so
			// one request checks it once it is probeEvery old (since the
			// last sample, and the last request admitted). Waiting for the reset
			// instead kept an estimate made while the others spent at
			// full speed: three replicas that had each seen the other two
			// do so sent one request a window for a minute after the
			// others had stopped.
			at := v.sampleAt
			if v.lastAdmit.After(at) {
				at = v.lastAdmit
			}
			if at = at.Add(probeEvery(v.window)); now.Before(at) {
				if v.resetAt.Before(at) {
					at = v.resetAt
				}
				later(at)
			}
		case avail <= 0:
			later(v.resetAt)
		case float64(avail) < float64(quota)*paceBelow:
			gap := v.resetAt.Sub(now) / time.Duration(avail)
			if at := v.lastAdmit.Add(gap); now.Before(at) {
				later(at)
			}
		}
	}
	return next
}

// probeEvery is how often a budget holding back for the others' share
// sends one request to see their spending again: a twentieth of the
// policy's window (15 s of Cloudflare's 5 minutes), at least sampleEvery.
func probeEvery(window time.Duration) time.Duration {
	return max(sampleEvery, window/20)
}

// Observe brings the budget in line with the provider's own count, from an
// answer's Ratelimit (and Ratelimit-Policy) fields.
func (b *Budget) Observe(remaining []Remaining, policies []Policy) {
	if b == nil || len(remaining) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.views == nil {
		b.views = map[string]*view{}
	}
	inFlight := 0
	for _, s := range b.slots {
		if s.done.IsZero() {
			inFlight++
		}
	}
	for _, r := range remaining {
		v, ok := b.views[r.Policy]
		switch {
		case !ok:
			v = &view{sampleAt: now, sampleRemaining: r.Remaining, sampleAnswered: b.answered}
			b.views[r.Policy] = v
		case r.Remaining > v.sampleRemaining || v.resetAt.IsZero():
			// A new window: start the sample again, keep the estimate.
			v.sampleAt, v.sampleRemaining, v.sampleAnswered = now, r.Remaining, b.answered
		case now.Sub(v.sampleAt) >= sampleEvery:
			spent := v.sampleRemaining - r.Remaining - (b.answered - v.sampleAnswered)
			rate := float64(max(spent, 0)) / now.Sub(v.sampleAt).Seconds()
			v.othersRate = (v.othersRate + rate) / 2
			v.sampleAt, v.sampleRemaining, v.sampleAnswered = now, r.Remaining, b.answered
		}
		v.remaining, v.resetAt, v.admitted = r.Remaining, now.Add(r.Reset), inFlight
		for _, p := range policies {
			if p.Policy == r.Policy {
				v.quota, v.window = p.Quota, p.Window
			}
		}
	}
}

func (b *Budget) release(s *slot) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s.done = b.now()
	b.answered++
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
