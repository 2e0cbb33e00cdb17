// Package simkit is what the simulators share: a queue of injected faults
// (each hits the next matching calls a set number of times, and may delay the
// answer or drop the connection) and per-call counters.
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
	// Disruption is the fault's delay, and whether it drops the connection.
	Disruption() (delay time.Duration, drop bool)
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

// Disrupt applies f's delay, then drops the connection if f says so; it
// returns true when it did (the call is answered).
func Disrupt(w http.ResponseWriter, f Injected) bool {
	delay, drop := f.Disruption()
	if delay > 0 {
		time.Sleep(delay)
	}
	if !drop {
		return false
	}
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return true
		}
	}
	panic(http.ErrAbortHandler)
}

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
