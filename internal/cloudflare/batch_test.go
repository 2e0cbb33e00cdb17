package cloudflare_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/certbridge/certbridge/internal/cloudflare"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/testutil"
)

const (
	createRoute = "POST /zones/{zone_id}/dns_records"
	batchRoute  = "POST /zones/{zone_id}/dns_records/batch"
	listRoute   = "GET /zones/{zone_id}/dns_records"
)

// A change for an idle zone goes out at once, alone: it is not held for a
// window that nothing else would join (the window here is an hour).
func TestBatcher_LoneChangeIsNotHeld(t *testing.T) {
	sim, c, z := simClient(t)
	b := cloudflare.NewBatcher(c, cloudflare.BatchOptions{Window: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Create(ctx, z.ID, txt(1)); err != nil {
		t.Fatalf("a lone change was held: %v", err)
	}
	if calls := sim.Calls(); calls[createRoute] != 1 || calls[batchRoute] != 0 {
		t.Errorf("want one single create, got %v", calls)
	}
}

// slowFirst holds the first call of route long enough that every change
// submitted meanwhile queues behind it.
func slowFirst(sim *cfsim.Server, route string) {
	sim.InjectFault(cfsim.Fault{Route: route, Delay: 2 * time.Second})
}

// Changes waiting at the same time share one call.
func TestBatcher_ConcurrentChangesShareCalls(t *testing.T) {
	sim, c, z := simClient(t)
	b := cloudflare.NewBatcher(c, cloudflare.BatchOptions{})
	slowFirst(sim, createRoute)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	ids := make([]string, n)
	for i := range n {
		wg.Go(func() {
			rec, err := b.Create(context.Background(), z.ID, txt(i))
			ids[i] = rec.ID
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	calls := sim.Calls()
	if got := calls[createRoute] + calls[batchRoute]; got > 3 {
		t.Errorf("%d changes took %d calls %v, want a few", n, got, calls)
	}
	if stored := len(sim.AllRecords()); stored != n {
		t.Errorf("%d records stored, want %d", stored, n)
	}
	// Every change knows its own record, so CleanUp can delete it by ID.
	for i, id := range ids {
		if id == "" {
			t.Fatalf("change %d got no record ID", i)
		}
	}
	for i := range n {
		wg.Go(func() {
			if err := b.Delete(context.Background(), z.ID, ids[i]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if left := sim.AllRecords(); len(left) != 0 {
		t.Errorf("%d records left after deleting each by its ID", len(left))
	}
}

// A batch is all or nothing: one refused record must not fail the others.
// The batch falls back to single calls, and each change gets its own answer.
func TestBatcher_OneBadRecordLandsEveryGoodOne(t *testing.T) {
	sim, c, z := simClient(t)
	b := cloudflare.NewBatcher(c, cloudflare.BatchOptions{})
	if _, err := c.CreateTXT(context.Background(), z.ID, txt(0).Name, txt(0).Content, 60, ""); err != nil {
		t.Fatal(err)
	}
	slowFirst(sim, createRoute)
	bad := txt(99)
	bad.TTL = 5 // below what any plan allows
	changes := []cloudflare.TXTRecord{txt(100), txt(0), bad}
	for i := 1; i <= 20; i++ {
		changes = append(changes, txt(i))
	}
	var wg sync.WaitGroup
	results := make([]error, len(changes))
	for i, ch := range changes {
		wg.Go(func() {
			_, results[i] = b.Create(context.Background(), z.ID, ch)
		})
		if i == 0 {
			time.Sleep(50 * time.Millisecond) // the slow first call is under way
		}
	}
	wg.Wait()
	for i, err := range results {
		switch name := changes[i].Name; {
		case name == txt(0).Name && !cloudflare.Is(err, cloudflare.Duplicate):
			t.Errorf("the duplicate: %v, want its single-call meaning (Duplicate)", err)
		case name == bad.Name && !cloudflare.Is(err, cloudflare.InvalidTTL):
			t.Errorf("the bad TTL: %v, want InvalidTTL", err)
		case name != txt(0).Name && name != bad.Name && err != nil:
			t.Errorf("%s failed with the batch: %v", name, err)
		}
	}
	if sim.Batches() == 0 {
		t.Error("no batch was tried: the test proves nothing")
	}
	if stored := len(sim.AllRecords()); stored != 22 {
		t.Errorf("%d records stored, want the 21 good ones and the one from before", stored)
	}
}

// CleanUps that did not create their records share one listing.
func TestBatcher_LookupsShareOneListing(t *testing.T) {
	sim, c, z := simClient(t)
	for i := range 30 {
		if _, err := c.CreateTXT(context.Background(), z.ID, txt(i).Name, txt(i).Content, 60, ""); err != nil {
			t.Fatal(err)
		}
	}
	b := cloudflare.NewBatcher(c, cloudflare.BatchOptions{})
	sim.ResetCalls()
	slowFirst(sim, listRoute)
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			recs, err := b.ListTXT(context.Background(), z.ID, txt(i).Name)
			if err != nil || len(recs) != 1 || recs[0].Content != txt(i).Content {
				t.Errorf("listing %s: %+v, %v", txt(i).Name, recs, err)
			}
		})
		if i == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	wg.Wait()
	if n := sim.Calls()[listRoute]; n > 3 {
		t.Errorf("30 lookups took %d listings", n)
	}
}

// A caller that gives up while its change waits is answered at once, and
// its change is never sent.
func TestBatcher_GivingUpWhileQueued(t *testing.T) {
	sim, c, z := simClient(t)
	b := cloudflare.NewBatcher(c, cloudflare.BatchOptions{})
	slowFirst(sim, createRoute)
	go func() { _, _ = b.Create(context.Background(), z.ID, txt(1)) }()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.Create(ctx, z.ID, txt(2))
	if e, ok := cloudflare.As(err); !ok || !e.TimedOut() {
		t.Fatalf("want the caller's own cancellation, got %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(sim.AllRecords()) < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	for _, r := range sim.AllRecords() {
		if r.Name == txt(2).Name {
			t.Errorf("the abandoned change was sent: %s", fmt.Sprint(r))
		}
	}
}

// In a busy zone, every call waits until its oldest change has waited the
// window and the window has passed since the zone's previous call
// returned, not only the first: a change that arrives just before a call
// returns does not go out alone the moment it returns, but with the one
// that comes right after (as a CleanUp follows its Present).
//
// The scenario depends on timing (a 2 s window, a call held 2 s by the
// simulator, changes sent 0.5 s before and after it returns); on a machine
// too loaded to keep it, an attempt whose timing did not hold is run again,
// at most 3 times.
func TestBatcher_EveryCallOfABusyZoneWaitsTheWindow(t *testing.T) {
	const window, held, margin = 2 * time.Second, 2 * time.Second, 500 * time.Millisecond
	var why []string
	for attempt := range 3 {
		calls, timing := everyCallWaitsScenario(t, window, held, margin)
		if timing != "" {
			why = append(why, fmt.Sprintf("attempt %d: %s", attempt+1, timing))
			continue
		}
		if calls != 2 {
			t.Fatalf("4 changes in two pairs took %d calls, want 2", calls)
		}
		return
	}
	t.Fatalf("the scenario's timing never held: %v", why)
}

// everyCallWaitsScenario returns the calls the scenario's 4 changes took,
// or why its timing did not hold.
func everyCallWaitsScenario(t *testing.T, window, held, margin time.Duration) (int, string) {
	sim, c, z := simClient(t)
	b := cloudflare.NewBatcher(c, cloudflare.BatchOptions{Window: window})
	create := func(i int, wg *sync.WaitGroup, done *time.Time) {
		wg.Go(func() {
			if _, err := b.Create(context.Background(), z.ID, txt(i)); err != nil {
				t.Error(err)
			}
			if done != nil {
				*done = time.Now()
			}
		})
	}
	var warm sync.WaitGroup
	for i := range 3 { // makes the zone busy
		create(i, &warm, nil)
	}
	warm.Wait()
	before := sim.Calls()
	sim.InjectFault(cfsim.Fault{Route: batchRoute, Delay: held})
	// The wave's call leaves after the window and is answered after held.
	start := time.Now()
	var wave, pair sync.WaitGroup
	var waveDone, thirdSent time.Time
	create(10, &wave, &waveDone)
	create(11, &wave, nil)
	time.Sleep(window + held - margin)
	thirdSent = time.Now()
	create(12, &pair, nil) // queued while the wave's call is under way
	wave.Wait()
	time.Sleep(time.Until(waveDone.Add(margin)))
	create(13, &pair, nil) // after it returned, within the third's window (margin < window - margin)
	pair.Wait()
	switch {
	case waveDone.Sub(start) < window+held-margin/2:
		return 0, fmt.Sprintf("the wave's call returned after %s, not held", waveDone.Sub(start).Round(time.Millisecond))
	case !thirdSent.Before(waveDone):
		return 0, "the third change was sent after the wave's call returned"
	case time.Since(waveDone) > window+margin:
		return 0, fmt.Sprintf("the pair came back %s after the wave's call, the machine is slower than the margins", time.Since(waveDone).Round(time.Millisecond))
	}
	after := sim.Calls()
	if stored := len(sim.AllRecords()); stored != 7 {
		t.Errorf("%d records stored, want 7", stored)
	}
	return after[createRoute] + after[batchRoute] - before[createRoute] - before[batchRoute], ""
}

// A zone that turns busy while the call of a change made on it when idle
// is under way waits the window after that call returns: the changes that
// queued meanwhile go out together with the one its caller sends next,
// not on their own the moment it returns.
func TestBatcher_AZoneThatTurnsBusyWaitsTheWindow(t *testing.T) {
	sim, c, z := simClient(t)
	b := cloudflare.NewBatcher(c, cloudflare.BatchOptions{Window: time.Second})
	sim.InjectFault(cfsim.Fault{Route: createRoute, Delay: time.Second})
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := b.Create(context.Background(), z.ID, txt(1)); err != nil { // idle: at once, alone
			t.Error(err)
		}
		if _, err := b.Create(context.Background(), z.ID, txt(4)); err != nil { // its caller's next change
			t.Error(err)
		}
	})
	time.Sleep(200 * time.Millisecond)
	for i := 2; i <= 3; i++ { // queued while the first call is under way
		wg.Go(func() {
			if _, err := b.Create(context.Background(), z.ID, txt(i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if calls := sim.Calls(); calls[createRoute] != 1 || calls[batchRoute] != 1 {
		t.Errorf("want the first change alone and the other 3 in one batch, got %v", calls)
	}
}

// queued submits changes while the zone's first call, a lone change held by
// the simulator, is under way, so that they queue and go out as one batch
// when it returns; it returns each change's result. The lone change is
// txt(lone).
func queued(t *testing.T, sim *cfsim.Server, b *cloudflare.Batcher, zoneID string, lone int, changes []cloudflare.TXTRecord) []error {
	t.Helper()
	slowFirst(sim, createRoute)
	creates := sim.Calls()[createRoute]
	loneErr := make(chan error, 1)
	go func() {
		_, err := b.Create(context.Background(), zoneID, txt(lone))
		loneErr <- err
	}()
	testutil.Eventually(t, 10*time.Second, "the lone change's call under way", func() (bool, string) {
		return sim.Calls()[createRoute] == creates+1, fmt.Sprint(sim.Calls())
	})
	results := make([]error, len(changes))
	var wg sync.WaitGroup
	for i, ch := range changes {
		wg.Go(func() { _, results[i] = b.Create(context.Background(), zoneID, ch) })
	}
	if err := <-loneErr; err != nil {
		t.Fatalf("the lone change: %v", err)
	}
	wg.Wait()
	return results
}

// writeCalls counts the record-writing calls since before.
func writeCalls(sim *cfsim.Server, before map[string]int) int {
	after := sim.Calls()
	n := 0
	for _, r := range []string{createRoute, batchRoute, "DELETE /zones/{zone_id}/dns_records/{id}"} {
		n += after[r] - before[r]
	}
	return n
}

// One refused change among 100 in a batch costs a bounded number of calls
// (bisection: at most ceil(log2 100) + 1 beyond the refused batch), the 99
// others land, and the refused one gets its own reason, wherever it is in
// the batch. Sent again, the refused change goes alone and fails no batch.
func TestBatcher_OneRefusedChangeCostsLogNCalls(t *testing.T) {
	const n = 100
	bound := 1 + int(math.Log2(n)) + 2
	for _, tc := range []struct {
		name string
		at   int
		// refuse makes the change at index at refused, and says its reason.
		refuse func(sim *cfsim.Server, c *cloudflare.Client, z cfsim.Zone, r *cloudflare.TXTRecord) cloudflare.Reason
	}{
		{"a TTL below the plan's first", 0, badTTL},
		{"a TTL below the plan's in the middle", 57, badTTL},
		{"a TTL below the plan's last", n - 1, badTTL},
		{"an identical record already there", 31, func(sim *cfsim.Server, c *cloudflare.Client, z cfsim.Zone, r *cloudflare.TXTRecord) cloudflare.Reason {
			if _, err := c.CreateTXT(context.Background(), z.ID, r.Name, r.Content, r.TTL, ""); err != nil {
				t.Fatal(err)
			}
			return cloudflare.Duplicate
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim, c, z := simClient(t)
			b := cloudflare.NewBatcher(c, cloudflare.BatchOptions{})
			var changes []cloudflare.TXTRecord
			for i := range n {
				changes = append(changes, txt(i))
			}
			reason := tc.refuse(sim, c, z, &changes[tc.at])
			stored := len(sim.AllRecords())
			before := sim.Calls()
			before[createRoute]++ // the lone change's
			results := queued(t, sim, b, z.ID, 1000, changes)
			for i, err := range results {
				if i == tc.at {
					if !cloudflare.Is(err, reason) {
						t.Errorf("the refused change: %v, want %s", err, reason)
					}
					continue
				}
				if err != nil {
					t.Errorf("change %d failed with the refused one: %v", i, err)
				}
			}
			if got := len(sim.AllRecords()) - stored; got != n {
				t.Errorf("%d records stored, want the 99 good ones and the lone change's", got)
			}
			calls := writeCalls(sim, before)
			if calls > bound {
				t.Errorf("one refused change among %d took %d calls, want at most 1 + log2(%d) + 2 = %d", n, calls, n, bound)
			}
			t.Logf("one refused change among %d: %d calls", n, calls)
			if sim.Batches() < 2 {
				t.Errorf("%d batches: the changes did not share a call, the test proves nothing", sim.Batches())
			}
			// The refused change again, in a wave with others: it goes
			// alone, and the wave's batch is not refused for it.
			before = sim.Calls()
			batches := sim.Batches()
			again := []cloudflare.TXTRecord{changes[tc.at]}
			for i := range 20 {
				again = append(again, txt(200+i))
			}
			before[createRoute]++
			results = queued(t, sim, b, z.ID, 1001, again)
			if !cloudflare.Is(results[0], reason) {
				t.Errorf("the refused change again: %v, want %s", results[0], reason)
			}
			for i, err := range results[1:] {
				if err != nil {
					t.Errorf("change %d of the second wave: %v", i, err)
				}
			}
			if got, calls := sim.Batches()-batches, writeCalls(sim, before); got != 1 || calls != 2 {
				t.Errorf("the second wave took %d calls, %d of them batches; want the refused change alone and one batch for the rest (%v)", calls, got, sim.Calls())
			}
		})
	}
}

func badTTL(_ *cfsim.Server, _ *cloudflare.Client, _ cfsim.Zone, r *cloudflare.TXTRecord) cloudflare.Reason {
	r.TTL = 5 // below what any plan allows
	return cloudflare.InvalidTTL
}

// A batch that fails as a whole, for a reason every change shares, is
// retried as a batch (by the SDK, within the budget) and never split into
// a call per change.
func TestBatcher_AFailedBatchIsNeverSplit(t *testing.T) {
	const n, retries = 100, 2
	for _, tc := range []struct {
		name  string
		fault cfsim.Fault
		want  cloudflare.Reason
	}{
		{"a 5xx", cfsim.Fault{Status: http.StatusServiceUnavailable, Code: 1100, Message: "Service unavailable",
			Header: http.Header{"Retry-After-Ms": {"1"}}}, cloudflare.Transient},
		{"a 429", cfsim.Fault{Status: http.StatusTooManyRequests, Code: 971, Message: "Please wait and consider throttling your request speed",
			Header: http.Header{"Retry-After": {"0"}}}, cloudflare.RateLimited},
		{"no answer", cfsim.Fault{Drop: true}, cloudflare.Unreachable},
		{"the credential's permission", cfsim.Fault{Status: http.StatusForbidden, Code: 10000, Message: "Authentication error"}, cloudflare.PermissionMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim, _, z := simClient(t)
			c := cloudflare.NewClient(cloudflare.Options{BaseURL: sim.URL(), MaxRetries: retries}, cloudflare.Credential{Token: simToken})
			b := cloudflare.NewBatcher(c, cloudflare.BatchOptions{})
			f := tc.fault
			f.Route, f.Times = batchRoute, 1000
			sim.InjectFault(f)
			var changes []cloudflare.TXTRecord
			for i := range n {
				changes = append(changes, txt(i))
			}
			before := sim.Calls()
			before[createRoute]++ // the lone change's
			results := queued(t, sim, b, z.ID, 1000, changes)
			for i, err := range results {
				if !cloudflare.Is(err, tc.want) {
					t.Errorf("change %d: %v, want %s", i, err, tc.want)
				}
			}
			calls := writeCalls(sim, before)
			if calls > 1+retries {
				t.Errorf("a batch of %d failing with %s took %d calls, want at most 1 + %d retries (%v)", n, tc.name, calls, retries, sim.Calls())
			}
			if calls == 0 {
				t.Error("no batch was sent: the test proves nothing")
			}
			t.Logf("a batch of %d failing with %s: %d calls", n, tc.name, calls)
			if len(sim.AllRecords()) != 1 {
				t.Errorf("%d records stored, want the lone change's", len(sim.AllRecords()))
			}
		})
	}
}
