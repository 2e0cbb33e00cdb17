package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Adaptive paces requests at a rate that follows the provider's throttling,
// for providers that say nothing of what is left (Alibaba Cloud counts per
// account and action, across every client, and only answers Throttling
// once the quota is spent). It starts at the documented rate, halves at a
// throttled answer, and grows back by one request per second for each
// second's worth of accepted ones, never above the documented rate:
// additive increase, multiplicative decrease. Clients that do this share
// a quota fairly and stay near it without talking to each other.
type Adaptive struct {
	max float64
	now func() time.Time

	mu   sync.Mutex
	rate float64
	next time.Time
	// lastCut is when the rate was last halved: the answers of requests
	// sent before it say nothing about the new rate.
	lastCut time.Time
	onRate  func(float64)
}

// minRate is the floor of an adaptive rate, per second.
const minRate = 1.0

// NewAdaptive paces at qps requests per second at most; onRate, if not
// nil, is told every new rate (for a metric).
func NewAdaptive(qps int, onRate func(float64)) *Adaptive {
	a := &Adaptive{max: float64(qps), rate: float64(qps), now: time.Now, onRate: onRate}
	if onRate != nil {
		onRate(a.rate)
	}
	return a
}

// Acquire waits for the next request's turn, or fails when that is after
// ctx's deadline. A nil Adaptive admits everything. Turns are taken when
// they come, not reserved ahead: a rate cut applies at once to every
// request still waiting.
func (a *Adaptive) Acquire(ctx context.Context) error {
	if a == nil {
		return nil
	}
	for {
		at, ok := a.take(a.now())
		if ok {
			return nil
		}
		if deadline, has := ctx.Deadline(); has && at.After(deadline) {
			return &ExhaustedError{until: at, limit: int(a.max), window: time.Second}
		}
		t := time.NewTimer(time.Until(at))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// take admits a request now, or says when the next turn is.
func (a *Adaptive) take(now time.Time) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.Before(a.next) {
		return a.next, false
	}
	a.next = now.Add(time.Duration(float64(time.Second) / a.rate))
	return time.Time{}, true
}

// Throttled halves the rate (once per the time one request takes at it).
func (a *Adaptive) Throttled() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if now.Sub(a.lastCut) < time.Duration(float64(time.Second)/a.rate) {
		return
	}
	a.rate = max(a.rate/2, minRate)
	a.lastCut = now
	a.next = now.Add(time.Duration(float64(time.Second) / a.rate))
	a.changed()
}

// Accepted grows the rate by one request per second per second's worth of
// accepted requests.
func (a *Adaptive) Accepted() {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rate < a.max {
		a.rate = min(a.rate+1/a.rate, a.max)
		a.changed()
	}
}

// Rate is the current rate per second.
func (a *Adaptive) Rate() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rate
}

func (a *Adaptive) changed() {
	if a.onRate != nil {
		a.onRate(a.rate)
	}
}
