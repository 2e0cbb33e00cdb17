// Package simkit is what the simulators share: a queue of injected faults
// (each hits the next matching calls a set number of times, and may delay the
// answer, drop the connection before the call is handled, or handle it and
// lose its answer) and per-call counters.
package simkit

import (
	"net/http"
	"sync"
	"time"
)

// Injected is what every simulator's fault carries.
type Injected interface {
	// Matches reports whether the fault applies to the call named name.
	Matches(name string) bool
	// Disruption is the fault's delay, and whether it drops the connection
	// before the call is handled (drop) or after (lose: the call takes
	// effect, but its answer is never sent).
	Disruption() (delay time.Duration, drop, lose bool)
}

// Queue holds faults in the order injected.
type Queue[F Injected] struct {
	mu    sync.Mutex
	items []*entry[F]
}

type entry[F Injected] struct {
	fault F
	left  int
}

// Add queues f for the next times matching calls (0 means 1).
func (q *Queue[F]) Add(f F, times int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = append(q.items, &entry[F]{fault: f, left: max(times, 1)})
}

// Take returns the first fault matching name, spending one of its uses.
func (q *Queue[F]) Take(name string) (F, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, e := range q.items {
		if e.fault.Matches(name) {
			if e.left--; e.left == 0 {
				q.items = append(q.items[:i:i], q.items[i+1:]...)
			}
			return e.fault, true
		}
	}
	var zero F
	return zero, false
}

// Pending is how many uses the queued faults have left.
func (q *Queue[F]) Pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, e := range q.items {
		n += e.left
	}
	return n
}

// Apply answers a call that fault f hits: after f's delay it drops the
// connection, or serves the call into the void and then drops the
// connection (an answer lost after the change was made, which the client
// cannot tell from one never made), or lets answer write f's error answer
// (answer returns false for a fault that only delays), or serves the call.
func Apply(w http.ResponseWriter, f Injected, answer func(http.ResponseWriter) bool, serve func(http.ResponseWriter)) {
	delay, drop, lose := f.Disruption()
	if delay > 0 {
		time.Sleep(delay)
	}
	switch {
	case drop:
		dropConnection(w)
	case lose:
		serve(&discard{header: http.Header{}})
		dropConnection(w)
	case !answer(w):
		serve(w)
	}
}

// dropConnection closes the connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// discard is an answer nobody receives.
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// Counter counts calls by name; the zero value is ready.
type Counter struct {
	mu sync.Mutex
	m  map[string]int
}

// Add counts one call.
func (c *Counter) Add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int{}
	}
	c.m[name]++
}

// Snapshot returns a copy of the counts.
func (c *Counter) Snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// Reset zeroes the counts.
func (c *Counter) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}
