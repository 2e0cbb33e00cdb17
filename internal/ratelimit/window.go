package ratelimit

import "time"

// ownWindow is this process's own spending of a credential: at most limit
// requests in any window. A request holds its slot from when it is sent
// until window after its answer came back: the provider counts it
// somewhere in between, so the slot never frees before the provider's
// count of it drops.
type ownWindow struct {
	limit  int
	window time.Duration
	slots  []*slot // oldest first
}

type slot struct {
	sent time.Time
	done time.Time // zero while the request is in flight
}

// prune drops the slots that have aged out.
func (w *ownWindow) prune(now time.Time) {
	kept := w.slots[:0]
	for _, s := range w.slots {
		if s.done.IsZero() || now.Sub(s.done) < w.window {
			kept = append(kept, s)
		}
	}
	clear(w.slots[len(kept):])
	w.slots = kept
}

// admits says whether a request may be sent now: zero to admit, else when
// the oldest answered slot frees. When every slot is held by a request in
// flight, only an answer can free one: inFlight is set.
func (w *ownWindow) admits(now time.Time) (next time.Time, inFlight bool) {
	w.prune(now)
	if len(w.slots) < w.limit {
		return time.Time{}, false
	}
	for _, s := range w.slots {
		if free := s.done.Add(w.window); !s.done.IsZero() && (next.IsZero() || free.Before(next)) {
			next = free
		}
	}
	return next, next.IsZero()
}

func (w *ownWindow) take(now time.Time) *slot {
	s := &slot{sent: now}
	w.slots = append(w.slots, s)
	return s
}

// sentSince counts the requests sent since t, answered or not; it sees as
// far back as the window.
func (w *ownWindow) sentSince(t time.Time) int {
	n := 0
	for _, s := range w.slots {
		if !s.sent.Before(t) {
			n++
		}
	}
	return n
}
