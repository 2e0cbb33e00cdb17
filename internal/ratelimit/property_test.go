package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

// cloudflareQuota is Cloudflare's documented quota per user.
var cloudflareQuota = Limit{Limit: 1200, Window: 5 * time.Minute}

// aloneRun is a process alone on its account, with a random latency (5 ms
// to up to 500 ms between the provider counting a request and its answer),
// concurrency (1–200 in flight), and stamping of the count (at the
// request's arrival or at its answer).
func aloneRun(seed uint64) (*simulation, *client, string) {
	s := newSimulation(seed, &counterModel{quota: cloudflareQuota.Limit, window: cloudflareQuota.Window}, 5*time.Millisecond, 0)
	maxLatency := 5*time.Millisecond + time.Duration(s.rng.Int64N(int64(495*time.Millisecond)))
	s.latency = func() time.Duration {
		return 5*time.Millisecond + time.Duration(s.rng.Int64N(int64(maxLatency-5*time.Millisecond)+1))
	}
	s.model.stampAtAnswer = s.rng.IntN(2) == 1
	c := s.newClient(cloudflareQuota.Limit, cloudflareQuota.Window, 1+s.rng.IntN(200))
	return s, c, fmt.Sprintf("seed %d: %d in flight, latency up to %s, count stamped at the answer %v", seed, c.concurrency, maxLatency, s.model.stampAtAnswer)
}

// A process that has followed the count for a window without seeing
// another client never holds a request back while its own spending stays
// within the quota (less the reserve), in waves at any time: its own
// requests, counted but not yet answered, are its own, not another
// client's.
func TestBudgetAloneNeverWaits(t *testing.T) {
	reserve := int(float64(cloudflareQuota.Limit) * Reserve)
	for seed := range uint64(200) {
		s, c, name := aloneRun(seed)
		// A trickle through more than a window, as between renewals: its
		// answers span a window.
		trickle := 12
		for i := range trickle {
			c.want(s.now.Add(time.Duration(i)*cloudflareQuota.Window/time.Duration(trickle-2)), 1)
		}
		s.run(s.now.Add(cloudflareQuota.Window * 11 / 10))
		c.waits = 0
		demand := 1 + s.rng.IntN(cloudflareQuota.Limit-reserve-trickle)
		for left := demand; left > 0; {
			n := min(left, 1+s.rng.IntN(demand))
			c.want(s.now.Add(time.Duration(s.rng.Int64N(int64(2*cloudflareQuota.Window)))), n)
			left -= n
		}
		s.run(s.now.Add(time.Hour))
		if c.waits != 0 || c.rejected != 0 || c.done != demand+trickle {
			t.Errorf("%s, %d requests: held back %d times, %d answered 429, %d of %d done", name, demand, c.waits, c.rejected, c.done, demand+trickle)
		}
	}
}

// A process that has just started cannot tell whether others share the
// account: it learns the count with its first request, and from then on
// never holds a request back while what it has sent, and what it may send
// while an answer is on its way, stays below half the quota. The
// 1000-challenge renewal wave of the benchmarks needs fewer than that.
func TestBudgetJustStartedWaitsOnlyForItsFirstAnswer(t *testing.T) {
	reserve := int(float64(cloudflareQuota.Limit) * Reserve)
	for seed := range uint64(200) {
		s, c, name := aloneRun(seed)
		demand := 1 + s.rng.IntN(int(float64(cloudflareQuota.Limit)*(1-paceBelow))-reserve-c.concurrency)
		c.want(s.now, demand)
		first := true
		c.onAnswer = func() {
			if first {
				first, c.waits = false, 0
			}
		}
		s.run(s.now.Add(time.Hour))
		if c.waits != 0 || c.rejected != 0 || c.done != demand {
			t.Errorf("%s, %d requests at once: after the first answer held back %d times, %d answered 429, %d of %d done", name, demand, c.waits, c.rejected, c.done, demand)
		}
	}
}

// Several processes with their own budgets, each wanting far more than the
// quota, and a foreign client of the same account spending steadily
// without a budget, never exceed the quota together: no 429 to anyone.
// And the processes still spend what the foreign client leaves, more than
// half of the quota in every window they are busy.
func TestBudgetsNeverExceedTheQuotaTogether(t *testing.T) {
	for seed := range uint64(60) {
		s := newSimulation(seed, &counterModel{quota: cloudflareQuota.Limit, window: cloudflareQuota.Window}, 5*time.Millisecond, 0)
		maxLatency := 5*time.Millisecond + time.Duration(s.rng.Int64N(int64(495*time.Millisecond)))
		s.latency = func() time.Duration {
			return 5*time.Millisecond + time.Duration(s.rng.Int64N(int64(maxLatency-5*time.Millisecond)+1))
		}
		s.model.stampAtAnswer = s.rng.IntN(2) == 1
		// The foreign client spends up to 30 % of the quota, a request
		// every so often, from a window before the processes' renewal.
		share := 0.05 + 0.25*s.rng.Float64()
		every := time.Duration(float64(cloudflareQuota.Window) / (share * float64(cloudflareQuota.Limit)))
		var times []time.Time
		for at := s.now; at.Before(s.now.Add(4 * cloudflareQuota.Window)); at = at.Add(every) {
			times = append(times, at)
		}
		foreign := s.foreign(times, 1)
		start := s.now.Add(cloudflareQuota.Window)
		processes := 2 + s.rng.IntN(3)
		var clients []*client
		for range processes {
			c := s.newClient(cloudflareQuota.Limit, cloudflareQuota.Window, 1+s.rng.IntN(200))
			c.want(start.Add(time.Duration(s.rng.Int64N(int64(time.Minute)))), 5000)
			clients = append(clients, c)
		}
		s.run(start.Add(3 * cloudflareQuota.Window))
		name := fmt.Sprintf("seed %d: %d processes, foreign share %.0f %%, latency up to %s, stamped at the answer %v",
			seed, processes, share*100, maxLatency, s.model.stampAtAnswer)
		if s.model.rejected != 0 {
			var own []int
			for _, c := range clients {
				own = append(own, c.rejected)
			}
			t.Errorf("%s: %d requests answered 429 (processes %v, foreign %d)", name, s.model.rejected, own, foreign.rejected)
		}
		for end, n := range s.model.perWindow {
			if end.After(start.Add(cloudflareQuota.Window)) && end.Before(start.Add(3*cloudflareQuota.Window)) && n < cloudflareQuota.Limit/2 {
				t.Errorf("%s: only %d requests counted in the window ending %s", name, n, end.Sub(start))
			}
		}
	}
}

// A neighbour that spends its share in one burst each window, at a random
// moment within it (a job, a plan), blind to Cloudflare's headers, shows no
// rate between its bursts: a process renewing beside it leaves it what it
// spent in the window before, and neither gets a 429 once the process has
// seen a window of it (and any block a 429 in that first window brought
// has ended).
func TestBudgetLeavesABurstingNeighbourItsShare(t *testing.T) {
	for seed := range uint64(40) {
		s := newSimulation(seed, &counterModel{quota: cloudflareQuota.Limit, window: cloudflareQuota.Window}, 20*time.Millisecond, 150*time.Millisecond)
		share := 100 + s.rng.IntN(400)
		neighbour := &client{s: s}
		var burst func()
		burst = func() {
			for range share {
				neighbour.sent++
				s.send(nil, nil, func(admitted bool) {
					if !admitted {
						neighbour.rejected++
					}
				})
			}
			// The next burst: at a random moment of the next window.
			end := s.model.windowEnd
			if !end.After(s.now) {
				end = s.now.Add(cloudflareQuota.Window) // the burst opens the window
			}
			s.at(end.Add(time.Duration((0.1+0.8*s.rng.Float64())*float64(cloudflareQuota.Window))), burst)
		}
		s.at(s.now.Add(time.Duration(s.rng.Int64N(int64(cloudflareQuota.Window)))), burst)
		c := s.newClient(cloudflareQuota.Limit, cloudflareQuota.Window, 1+s.rng.IntN(60))
		start := s.now.Add(time.Duration(s.rng.Int64N(int64(cloudflareQuota.Window))))
		c.want(start, 100000)
		s.run(start.Add(cloudflareQuota.Window))
		if s.model.blockedTil.After(s.now) {
			s.run(s.model.blockedTil.Add(time.Second))
		}
		before := s.model.rejected
		s.run(s.now.Add(4 * cloudflareQuota.Window))
		if n := s.model.rejected - before; n != 0 {
			t.Errorf("seed %d: a neighbour bursting %d once a window: %d requests answered 429 after the process's first window (process %d, neighbour %d in all)",
				seed, share, n, c.rejected, neighbour.rejected)
		}
	}
}
