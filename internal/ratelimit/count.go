package ratelimit

import "time"

// providerCount follows the provider's own count of one policy (Cloudflare's
// Ratelimit field), which covers every client of the account: other
// replicas, other clusters, other tools. From it, it learns what is left
// and what the account's other clients spend.
//
// Every count is read against this process's own requests around the
// request whose answer carried it. The count holds that request and every
// one of ours answered (with a count) before it was sent; it may hold any
// other sent before its answer came back, in flight or overtaken on the
// way. So what this process sent after the request is taken as not yet
// counted, to be safe, and the others' spending between two counts is at
// least the count's fall minus all this process may have had counted in
// between: what it sent up to the later answer, less what the earlier
// count surely held. That bound never takes this process's own requests,
// counted but not yet answered, for another client's, whatever the
// latency, the concurrency or the order of arrival.
//
// What it admits, in order:
//   - nothing once only the reserve is left, until the reset;
//   - nothing beyond what the others will spend until the reset (at the
//     rate they spend now, or what they spent in the window before and not
//     yet in this one), but one request per rateSpan to see it again;
//   - unless it knows itself alone on the account, requests spread evenly
//     over the time to the reset once less than half the quota is left,
//     and, once the count is old (the window reset, or no answer for a
//     span), one request at a time until a new count is in: clients that
//     see each other late must not overshoot together;
//   - everything else at once.
//
// It knows itself alone once its answers' counts have spanned a whole
// window without showing another client spend: time without answers (held
// back, blocked, idle) proves nothing.
type providerCount struct {
	quota  int
	window time.Duration

	// The newest count: of the request sent last among those answered.
	known     bool
	remaining int
	resetAt   time.Time
	seq       uint64

	// samples of the current window's counts, oldest first, for the
	// others' rate.
	samples []sample
	// othersRate is what the account's other clients spend, in requests
	// per second, at least: measured over the last rateSpan of counts, and
	// kept across the window's reset.
	othersRate float64
	// othersInWindow is what the others spent in the current window, at
	// least: the quota less what is left and all this process may have
	// had counted in it.
	othersInWindow int
	// othersLastWindow is what the others spent, at least, in the window
	// before: what they may spend again in this one, all at once.
	othersLastWindow int
	// quietSince is the time of the first count since the counts last
	// showed another client spending (or the first count of all).
	quietSince time.Time

	lastAdmit time.Time
	// probe is the request sent, once the window has reset, to learn the
	// new window's count.
	probe uint64
}

type sample struct {
	at        time.Time
	remaining int
	// seq is the request's place in the send order; held is how many of
	// this process's requests the count surely holds (the request and
	// those answered with a count before it was sent); sentBy is how many
	// had been sent when its answer came back.
	seq, held, sentBy uint64
}

// Reserve is the share of a quota left unspent for the account's other
// clients and the requests in flight everywhere.
const Reserve = 0.02

// paceBelow is the share of a quota below which a client that does not
// know itself alone spreads requests over the time left.
const paceBelow = 0.5

// rateSpan is how far back the others' rate is measured: a twentieth of
// the policy's window (15 s of Cloudflare's 5 minutes), at least a quarter
// of a second.
func rateSpan(window time.Duration) time.Duration {
	return max(250*time.Millisecond, window/20)
}

// observe applies a count carried by the answer to request seq, which
// came back at now with sentBy requests sent, and whose count surely holds
// held of them; ownSince tells how many of this process's requests were
// sent since a time.
func (c *providerCount) observe(now time.Time, seq, held, sentBy uint64, r Remaining, ownSince func(time.Time) int) {
	x := sample{at: now, remaining: r.Remaining, seq: seq, held: held, sentBy: sentBy}
	resetAt := now.Add(r.Reset)
	switch {
	case !c.known:
		c.quietSince = now
		fallthrough
	case c.newWindow(x, resetAt):
		c.othersLastWindow = 0
		if resetAt.Sub(c.resetAt) < c.window*3/2 {
			c.othersLastWindow = c.othersInWindow // the window just before
		}
		c.samples, c.othersInWindow = append(c.samples[:0], x), 0
	case seq < c.seq || r.Remaining > c.remaining:
		// An older count: of a request sent before the newest count's, or
		// of one that arrived before it although sent after (requests
		// overtake each other on the way). Within a window the count only
		// falls.
		return
	default:
		c.addSample(x)
		c.othersRate = c.rate(x)
	}
	c.known, c.remaining, c.resetAt, c.seq = true, r.Remaining, resetAt, seq
	if c.probe != 0 && seq >= c.probe {
		c.probe = 0
	}
	// This process's requests counted in the window were sent since it
	// began, or shortly before (the reset is known to the second and
	// reads late by an answer's way back).
	began := resetAt.Add(-c.window - 2*time.Second - c.window/100)
	c.othersInWindow = max(c.othersInWindow, c.quota-r.Remaining-ownSince(began))
	if c.othersRate > 0 || c.othersInWindow > c.reserve() {
		c.quietSince = now
	}
}

// newWindow tells a count of a later window: one of a request sent after
// the newest count's that resets a good part of a window later (seconds to
// the reset are rounded, and read late by an answer's way back). A higher
// count alone says nothing: a request sent later may have arrived first.
func (c *providerCount) newWindow(x sample, resetAt time.Time) bool {
	return x.seq > c.seq && resetAt.Sub(c.resetAt) > c.window/2
}

// addSample keeps the samples of the last two rate spans, and at least one
// older than a span when there is one.
func (c *providerCount) addSample(x sample) {
	span := rateSpan(c.window)
	drop := 0
	for drop+1 < len(c.samples) && x.at.Sub(c.samples[drop+1].at) >= span {
		drop++
	}
	c.samples = append(c.samples[drop:], x)
	if len(c.samples) > 64 {
		c.samples = append(c.samples[:1], c.samples[len(c.samples)-63:]...)
	}
}

// rate is the others' spending up to x, over the newest span of at least
// rateSpan; until the window has one, the estimate kept across the reset
// stands: over a shorter span, a few requests' error would read as a
// rate for the whole window.
func (c *providerCount) rate(x sample) float64 {
	span := rateSpan(c.window)
	var from *sample
	for i := range c.samples {
		if x.at.Sub(c.samples[i].at) >= span {
			from = &c.samples[i]
		}
	}
	if from == nil {
		return c.othersRate
	}
	others := float64(from.remaining-x.remaining) - float64(x.sentBy-from.held)
	return max(others, 0) / x.at.Sub(from.at).Seconds()
}

func (c *providerCount) reserve() int { return max(1, int(float64(c.quota)*Reserve)) }

// alone reports whether the counts since the last sign of another client
// span a whole window.
func (c *providerCount) alone(time.Time) bool {
	return c.samples[len(c.samples)-1].at.Sub(c.quietSince) >= c.window
}

// admits says when request number sent+1 may go as far as this count is
// concerned: zero to admit it now, or awaitAnswer to wait for the
// answer of the request that learns the count again.
func (c *providerCount) admits(now time.Time, sent uint64) (next time.Time, awaitAnswer bool) {
	if !c.known {
		return time.Time{}, false
	}
	span := rateSpan(c.window)
	switch {
	case c.stale(now):
		return time.Time{}, c.probe != 0
	case !now.Before(c.resetAt):
		return time.Time{}, false // alone, and the count is of a window past
	}
	left := c.remaining - c.uncounted(now, sent) - c.reserve()
	untilReset := c.resetAt.Sub(now)
	avail := left - c.othersShare(untilReset)
	switch {
	case left <= 0:
		return c.resetAt, false
	case avail <= 0:
		// The estimate is refreshed only by this process's answers, so
		// one request looks again once the newest count is a span old.
		at := c.samples[len(c.samples)-1].at
		if c.lastAdmit.After(at) {
			at = c.lastAdmit
		}
		if at = at.Add(span); now.Before(at) {
			return minTime(at, c.resetAt), false
		}
	case !c.alone(now) && float64(avail) < float64(c.quota)*paceBelow:
		// The gap only shrinks as the others' share until the reset
		// does: look again within a span.
		if at := c.lastAdmit.Add(untilReset / time.Duration(avail)); now.Before(at) {
			return minTime(at, now.Add(span)), false
		}
	}
	return time.Time{}, false
}

// uncounted is how many of this process's requests the newest count may
// not hold. Those sent after its request may all be missing (the provider
// may have counted it on arrival), unless the process is alone: then the
// count fell by its own requests only, and those sent before the answer
// came back are taken as counted. A process alone cannot overshoot by that
// guess: its own window holds it to the quota.
func (c *providerCount) uncounted(now time.Time, sent uint64) int {
	last := c.samples[len(c.samples)-1]
	if c.alone(now) && last.seq == c.seq {
		return int(sent - last.sentBy)
	}
	return int(sent - c.seq)
}

// othersShare is what the others are expected to spend before the reset:
// at the rate they spend now, or what they spent in the window before and
// not yet in this one, whichever is more. A client that spends its share in
// bursts (a plan, a job each window) shows no rate between them, and would
// find nothing left if its share were spent meanwhile.
func (c *providerCount) othersShare(untilReset time.Duration) int {
	return max(int(c.othersRate*untilReset.Seconds()), c.othersLastWindow-c.othersInWindow)
}

// stale reports whether the newest count no longer says what is left, to
// a process that is not alone: the window has reset since, or the count is
// over a span old. One request then learns it again before others follow:
// clients admitting on old counts at once would overshoot together.
func (c *providerCount) stale(now time.Time) bool {
	if c.alone(now) {
		return false
	}
	return !now.Before(c.resetAt) || now.Sub(c.samples[len(c.samples)-1].at) > rateSpan(c.window)
}

// admitted notes request seq sent at now.
func (c *providerCount) admitted(now time.Time, seq uint64) {
	if c.known && c.probe == 0 && c.stale(now) {
		c.probe = seq
	}
	c.lastAdmit = now
}

// answered notes that request seq's answer came back, with or without a
// count: a probe that brought none makes way for the next.
func (c *providerCount) answered(seq uint64) {
	if c.probe == seq {
		c.probe = 0
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
