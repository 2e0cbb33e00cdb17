package cloudflare_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/certbridge/certbridge/internal/cloudflare"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
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
// window, not only the first: a change that arrives just before a call
// returns does not go out alone the moment it returns, but with the one
// that comes right after.
func TestBatcher_EveryCallOfABusyZoneWaitsTheWindow(t *testing.T) {
	sim, c, z := simClient(t)
	b := cloudflare.NewBatcher(c, cloudflare.BatchOptions{Window: time.Second})
	create := func(i int, wg *sync.WaitGroup) {
		wg.Go(func() {
			if _, err := b.Create(context.Background(), z.ID, txt(i)); err != nil {
				t.Error(err)
			}
		})
	}
	var wg sync.WaitGroup
	for i := range 3 { // makes the zone busy
		create(i, &wg)
	}
	wg.Wait()
	before := sim.Calls()
	// The wave's call leaves at 1 s and is answered at 3 s.
	sim.InjectFault(cfsim.Fault{Route: batchRoute, Delay: 2 * time.Second})
	create(10, &wg)
	create(11, &wg)
	time.Sleep(2700 * time.Millisecond)
	create(12, &wg) // queued while the wave's call is under way
	time.Sleep(600 * time.Millisecond)
	create(13, &wg) // after it returned
	wg.Wait()
	after := sim.Calls()
	calls := after[createRoute] + after[batchRoute] - before[createRoute] - before[batchRoute]
	if calls != 2 {
		t.Errorf("4 changes in two pairs took %d calls, want 2 (%v → %v)", calls, before, after)
	}
	if stored := len(sim.AllRecords()); stored != 7 {
		t.Errorf("%d records stored, want 7", stored)
	}
}
