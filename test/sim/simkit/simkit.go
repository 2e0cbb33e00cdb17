// Package simkit is what the simulators share: the latency of their
// answers, a queue of injected faults (each hits the next matching calls a
// set number of times, and may delay the answer, drop the connection before
// the call is handled, or handle it and lose its answer) and per-call
// counters.
package simkit

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// Latency is the time between a call's arrival and its answer, drawn
// evenly between Min and Max for each call. A call is counted, and takes
// effect, when it arrives; only its answer waits, as it does across a
// network: a client sees its own requests counted before it has their
// answers.
type Latency struct {
	Min, Max time.Duration
}

// DefaultLatency is what the simulators answer with unless a test sets
// another: real APIs answer tens of milliseconds after they counted a
// call, and a behaviour that holds only with instant answers is a bug.
var DefaultLatency = Latency{Min: 20 * time.Millisecond, Max: 150 * time.Millisecond}

// Instant answers at once: for tests where when an answer comes cannot
// matter, such as a message's wording.
var Instant = Latency{}

// draw is one call's latency.
func (l Latency) draw() time.Duration {
	if l.Max <= l.Min {
		return l.Min
	}
	return l.Min + time.Duration(rand.Int64N(int64(l.Max-l.Min)+1))
}

// Serve handles a call at once and holds its answer back until the
// call's latency has passed since it arrived, or until its caller gave up.
// A connection the handler drops is dropped at once.
func (l Latency) Serve(w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter)) {
	answerAt := time.Now().Add(l.draw())
	h := &held{w: w, header: http.Header{}}
	serve(h)
	if h.hijacked {
		return
	}
	if d := time.Until(answerAt); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	for k, v := range h.header {
		w.Header()[k] = v
	}
	if h.status != 0 {
		w.WriteHeader(h.status)
	}
	_, _ = w.Write(h.body.Bytes())
}

// held is an answer kept until its time comes.
type held struct {
	w        http.ResponseWriter
	header   http.Header
	status   int
	body     bytes.Buffer
	hijacked bool
}

func (h *held) Header() http.Header { return h.header }
func (h *held) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}
func (h *held) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

// Hijack hands over the connection, for a fault that drops it.
func (h *held) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.w.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	h.hijacked = true
	return hj.Hijack()
}

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
