package ratelimit

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"time"
)

// A discrete-event model of clients sharing one provider quota, on a fake
// clock, to drive budgets the way real latency and concurrency do without
// waiting for them.

// counterModel is the provider's count as Cloudflare keeps it: a fixed
// window of quota requests from the first one; a request is counted when
// it arrives; the one that exceeds the quota blocks every client for a
// whole window (429, not counted). Each answer carries the count as of the
// request's arrival, or, with stampAtAnswer, as of its answer.
type counterModel struct {
	quota         int
	window        time.Duration
	stampAtAnswer bool

	windowEnd, blockedTil time.Time
	count, rejected       int
	perWindow             map[time.Time]int // requests counted in each window, by its end
}

func (m *counterModel) roll(now time.Time) {
	if !now.Before(m.windowEnd) {
		m.windowEnd, m.count = now.Add(m.window), 0
	}
}

// arrive counts a request and says whether it was admitted.
func (m *counterModel) arrive(now time.Time) bool {
	m.roll(now)
	if now.Before(m.blockedTil) || m.count >= m.quota {
		if !now.Before(m.blockedTil) {
			m.blockedTil, m.windowEnd = now.Add(m.window), now.Add(m.window)
		}
		m.rejected++
		return false
	}
	m.count++
	if m.perWindow == nil {
		m.perWindow = map[time.Time]int{}
	}
	m.perWindow[m.windowEnd]++
	return true
}

// counts is the count an answer carries, as of now.
func (m *counterModel) counts(now time.Time, admitted bool) Counts {
	policy := []Policy{{"default", m.quota, m.window}}
	if !admitted {
		return Counts{[]Remaining{{"default", 0, ceilSeconds(m.blockedTil.Sub(now))}}, policy, true}
	}
	m.roll(now)
	return Counts{[]Remaining{{"default", m.quota - m.count, ceilSeconds(m.windowEnd.Sub(now))}}, policy, false}
}

func ceilSeconds(d time.Duration) time.Duration {
	return max(0, (d+time.Second-1)/time.Second*time.Second)
}

// simulation runs events in time order on one clock.
type simulation struct {
	now    time.Time
	events eventQueue
	seq    int
	rng    *rand.Rand
	model  *counterModel
	// latency draws a request's time from arrival to answer; uplink its
	// time from being sent to arriving, which reorders requests sent
	// close together.
	latency, uplink func() time.Duration
	// waiting are the clients to wake when any answer comes back.
	waiting []func()
}

type event struct {
	at  time.Time
	seq int
	fn  func()
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	return q[i].at.Before(q[j].at) || q[i].at.Equal(q[j].at) && q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func newSimulation(seed uint64, model *counterModel, minLatency, maxLatency time.Duration) *simulation {
	s := &simulation{now: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), model: model}
	s.latency = func() time.Duration {
		return minLatency + time.Duration(s.rng.Int64N(int64(maxLatency-minLatency)+1))
	}
	s.uplink = func() time.Duration { return time.Duration(s.rng.Int64N(int64(20 * time.Millisecond))) }
	return s
}

func (s *simulation) at(t time.Time, fn func()) {
	s.seq++
	heap.Push(&s.events, event{at: t, seq: s.seq, fn: fn})
}

// run plays the events until end and moves the clock there.
func (s *simulation) run(end time.Time) {
	same := 0
	for s.events.Len() > 0 && !s.events[0].at.After(end) {
		e := heap.Pop(&s.events).(event)
		if e.at.After(s.now) {
			s.now, same = e.at, 0
		}
		if same++; same > 100000 {
			panic(fmt.Sprintf("a livelock: %d events at %s", same, s.now))
		}
		e.fn()
	}
	if end.After(s.now) {
		s.now = end
	}
}

// answered wakes every client waiting for an answer.
func (s *simulation) answered() {
	w := s.waiting
	s.waiting = nil
	for _, fn := range w {
		s.at(s.now, fn)
	}
}

// send makes one request: it arrives after the uplink's delay, is counted
// then, and answered after the latency. done runs with whether the
// provider admitted it.
func (s *simulation) send(ticket *Ticket, b *Budget, done func(admitted bool)) {
	s.at(s.now.Add(s.uplink()), func() { s.arrive(ticket, b, done) })
}

func (s *simulation) arrive(ticket *Ticket, b *Budget, done func(admitted bool)) {
	admitted := s.model.arrive(s.now)
	arrival := s.model.counts(s.now, admitted)
	s.at(s.now.Add(s.latency()), func() {
		// Written at the arrival (or the answer), read at the answer: the
		// seconds to the reset are late by the way back, as on the wire.
		counts := arrival
		if s.model.stampAtAnswer {
			counts = s.model.counts(s.now, admitted)
		}
		ticket.Done(counts)
		if !admitted && b != nil {
			b.BlockUntil(s.model.blockedTil)
		}
		done(admitted)
		s.answered()
	})
}

// client is a process with a budget sending a backlog of requests, at
// most concurrency at a time.
type client struct {
	s           *simulation
	b           *Budget
	concurrency int
	backlog     int
	inFlight    int
	sent, done  int
	// waits counts the times a request was ready and the budget held it back.
	waits    int
	rejected int
	wake     int // the generation of the newest wake-up scheduled
	// onAnswer, when set, runs as each answer comes back.
	onAnswer func()
}

func (s *simulation) newClient(limit int, window time.Duration, concurrency int) *client {
	b := NewCounted(limit, window)
	b.now = func() time.Time { return s.now }
	return &client{s: s, b: b, concurrency: concurrency}
}

// want adds n requests to the backlog at t.
func (c *client) want(t time.Time, n int) {
	c.s.at(t, func() { c.backlog += n; c.pump() })
}

func (c *client) pump() {
	for c.backlog > 0 && c.inFlight < c.concurrency {
		t, next, changed := c.b.take()
		if t == nil {
			c.waits++
			// Only the wake-up for the newest refusal counts.
			c.wake++
			gen := c.wake
			wake := func() {
				if c.wake == gen {
					c.pump()
				}
			}
			if changed != nil {
				c.s.waiting = append(c.s.waiting, wake)
			}
			if !next.IsZero() {
				c.s.at(next, wake)
			}
			return
		}
		c.backlog--
		c.inFlight++
		c.sent++
		c.s.send(t, c.b, func(admitted bool) {
			if c.onAnswer != nil {
				c.onAnswer()
			}
			c.inFlight--
			if admitted {
				c.done++
			} else {
				c.rejected++
				c.backlog++ // tried again, as an SDK retries a 429
			}
			c.pump()
		})
	}
}

// foreign is a client of the same account without a budget: it sends n
// requests at each of the given times, ignoring every header.
func (s *simulation) foreign(times []time.Time, n int) *client {
	c := &client{s: s}
	for _, t := range times {
		s.at(t, func() {
			for range n {
				c.sent++
				s.send(nil, nil, func(admitted bool) {
					if admitted {
						c.done++
					} else {
						c.rejected++
					}
				})
			}
		})
	}
	return c
}

// fakeClock drives a budget without waiting.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func popEvent(s *simulation) event { return heap.Pop(&s.events).(event) }
