package cloudflare

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certbridge/certbridge/internal/cache"
	"github.com/certbridge/certbridge/internal/dnsname"
	"github.com/certbridge/certbridge/internal/metrics"
)

// Batching. Record changes for one zone of one credential that are waiting
// at the same time go out as one call of the batch endpoint (deletes, then
// posts; one transaction; at most MaxBatch changes): a mass renewal's
// challenges share calls instead of spending one each from the account's
// quota.
//
// Nothing waits for a batch that nothing else will join: a change for an
// idle zone is sent at once, on its own, as a single call. Changes that
// arrive while a call for the zone is under way queue and go together
// when it returns (group commit). Only while the zone is busy — at least
// two other changes came within the last ActiveFor (and Window), or a
// call was under way, as in a renewal wave, not a lone challenge's
// Present and CleanUp — does a call wait for more
// changes to join it: until the oldest change it carries has waited
// Window, and Window has passed since the zone's previous call returned.
// A wave's changes arrive spread over a few milliseconds, and the callers
// of a call that returned send their next change (CleanUp after Present, a
// new name's Present) a few milliseconds later; without that wait, the
// changes that came while a call was under way would go out on their own
// the moment it returned, and the zone's challenges would split into two
// groups taking turns, each call carrying half of them.
//
// A batch is all or nothing, so one challenge's refused record must not
// fail the others', and a failed batch must not cost a call per change.
// A batch that failed as a whole (a 5xx, a 429 or no answer, which the SDK
// already retried as a batch within the budget; a credential or permission
// refusal, which every call of the zone would get) answers each change with
// that error. A batch refused because of one of its records (an identical
// record, an unknown ID, a bad TTL or value) is bisected: half of the
// changes that may hold the refused one is sent; if it goes through, the
// refused one is in the other half, and if not, the other half waits. Once
// one change is left it is the refused one, and the last refusal is its own
// (the API answers a batch with its first failing change's error, and every
// other change of that batch went through without it): it is answered at
// once and with the meaning a single call gives it (an identical record
// already there is a success for Present, a record already gone is one for
// CleanUp). The changes that waited go out together as one batch. One
// refused change among n costs at most ceil(log2(n)) + 1 calls beyond the
// failed batch; a refused change is remembered for RefusedFor and sent on
// its own if it comes again, so it never fails another batch.
//
// CleanUp's lookups are shared too: a replica that did not create a record
// lists the zone's TXT records below "_acme-challenge." once for all the
// names waiting, instead of once per name.

// BatchOptions tune batching.
type BatchOptions struct {
	// Max is how many changes one call carries; 0 means MaxBatch, 1 turns
	// batching off (every change its own call, at once).
	Max int
	// Window is how long a call for a busy zone waits for more changes;
	// 0 means DefaultBatchWindow, negative no wait.
	Window time.Duration
}

// DefaultBatchWindow is the webhook's Window. A renewal wave's changes for
// one zone reach its replica spread over tens of milliseconds (the request
// through kube-apiserver, the Secret read); in make bench's renewal over 3
// replicas 20 ms joined 3 changes a call, 80 ms 5 to 6.
const DefaultBatchWindow = 80 * time.Millisecond

// MaxBatch is the batch endpoint's size limit on Free zones.
const MaxBatch = 200

// ActiveFor is how recent the changes are that make a zone count as
// busy, so that a call waits Window for others to join; the Window is
// added to it, so that a busy zone whose calls each wait the Window stays
// busy between them.
const ActiveFor = time.Second

// Batcher coalesces one credential's record changes and lookups per zone;
// safe for concurrent use.
type Batcher struct {
	client *Client
	max    int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	lanes map[string]*lane // by zone ID, then "|list" for lookups
	// refused are the changes refused on their own, until when they are
	// kept out of batches.
	refused cache.Map[time.Time]
}

// lane is one zone's queue: of changes, or of lookups.
type lane struct {
	queue []*change
	// draining is set while a goroutine sends the lane's calls.
	draining bool
	// hot is set while the zone is busy, as its latest change found it:
	// other changes came shortly before, or a call was under way.
	hot bool
	// calling is set while a call of the lane is under way.
	calling bool
	// returned is when the lane's last call came back.
	returned time.Time
	// recent are the times of the last changes, to tell a zone in a
	// renewal wave from one a lone challenge's Present and CleanUp touch.
	recent []time.Time
}

// busyAfter is how many other changes within ActiveFor make a zone busy.
const busyAfter = 2

// active records a change at now and reports whether the zone is busy:
// busyAfter other changes within the last activeFor.
func (l *lane) active(now time.Time, activeFor time.Duration) bool {
	kept := l.recent[:0]
	for _, t := range l.recent {
		if now.Sub(t) < activeFor {
			kept = append(kept, t)
		}
	}
	busy := len(kept) >= busyAfter
	if len(kept) >= 2*busyAfter {
		kept = kept[1:] // a few are enough to tell
	}
	l.recent = append(kept, now)
	return busy
}

// change is a record change, or a lookup, waiting for its call.
type change struct {
	ctx context.Context
	// One of: a record to create, the ID of one to delete, a name to list.
	post   *TXTRecord
	delete string
	list   string
	// taken is set once the change is in a call; a change whose caller
	// gave up before is dropped.
	taken atomic.Bool
	// queued is when the change arrived.
	queued time.Time
	done   chan struct{}
	rec    Record
	recs   []Record
	err    error
}

// NewBatcher batches client's calls.
func NewBatcher(client *Client, o BatchOptions) *Batcher {
	if o.Max <= 0 || o.Max > MaxBatch {
		o.Max = MaxBatch
	}
	switch {
	case o.Window == 0:
		o.Window = DefaultBatchWindow
	case o.Window < 0:
		o.Window = 0
	}
	return &Batcher{client: client, max: o.Max, window: o.Window, now: time.Now, lanes: map[string]*lane{}}
}

// Create creates a TXT record, alone or in a batch.
func (b *Batcher) Create(ctx context.Context, zoneID string, r TXTRecord) (Record, error) {
	c := &change{ctx: ctx, post: &r}
	if b.max == 1 || b.wasRefused(zoneID, c) {
		return b.client.CreateTXT(ctx, zoneID, r.Name, r.Content, r.TTL, r.Comment)
	}
	c = b.submit(ctx, zoneID, c)
	return c.rec, c.err
}

// Delete deletes a record by ID, alone or in a batch.
func (b *Batcher) Delete(ctx context.Context, zoneID, id string) error {
	c := &change{ctx: ctx, delete: id}
	if b.max == 1 || b.wasRefused(zoneID, c) {
		return b.client.DeleteRecord(ctx, zoneID, id)
	}
	return b.submit(ctx, zoneID, c).err
}

// ListTXT returns the TXT records named exactly name, with one listing for
// every name waiting when names are below "_acme-challenge.".
func (b *Batcher) ListTXT(ctx context.Context, zoneID, name string) ([]Record, error) {
	if b.max == 1 {
		return b.client.ListTXT(ctx, zoneID, name)
	}
	c := b.submit(ctx, zoneID+"|list", &change{ctx: ctx, list: dnsname.Canonical(name)})
	return c.recs, c.err
}

// submit queues a change and waits for its answer, or for ctx.
func (b *Batcher) submit(ctx context.Context, key string, c *change) *change {
	c.done = make(chan struct{})
	b.mu.Lock()
	l, ok := b.lanes[key]
	if !ok {
		l = &lane{}
		b.lanes[key] = l
	}
	c.queued = b.now()
	l.queue = append(l.queue, c)
	l.hot = l.active(c.queued, ActiveFor+b.window) || l.calling
	if !l.draining {
		l.draining = true
		go b.drain(key, l)
	}
	b.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		if c.taken.CompareAndSwap(false, true) {
			c.err = classify(opOf(c), ctx.Err())
			return c
		}
		<-c.done // in a call already: its answer decides
	}
	return c
}

// drain sends the lane's changes until it is empty, up to max a call. While
// the zone is busy, each call first waits until its oldest change has
// waited the window, and the window has passed since the previous call
// returned.
func (b *Batcher) drain(key string, l *lane) {
	zoneID, _, _ := strings.Cut(key, "|")
	for {
		b.mu.Lock()
		var from time.Time
		if l.hot && len(l.queue) > 0 {
			from = l.queue[0].queued
			if l.returned.After(from) {
				from = l.returned
			}
		}
		b.mu.Unlock()
		if d := from.Add(b.window).Sub(b.now()); !from.IsZero() && d > 0 {
			time.Sleep(d)
		}
		b.mu.Lock()
		var batch []*change
		for len(l.queue) > 0 && len(batch) < b.max {
			c := l.queue[0]
			l.queue = l.queue[1:]
			if c.taken.CompareAndSwap(false, true) {
				batch = append(batch, c)
			}
		}
		if len(batch) == 0 {
			l.draining = false // kept: its recent changes tell a busy zone from an idle one
			b.mu.Unlock()
			return
		}
		l.calling = true
		b.mu.Unlock()
		if batch[0].list != "" {
			b.lookups(zoneID, batch)
		} else {
			b.changes(zoneID, batch)
		}
		b.mu.Lock()
		l.calling, l.returned = false, b.now()
		b.mu.Unlock()
	}
}

// changes sends record changes: one alone as a single call, several as a
// batch, settling a failed batch's changes as the comment at the top says.
func (b *Batcher) changes(zoneID string, batch []*change) {
	metrics.BatchSize.WithLabelValues("cloudflare").Observe(float64(len(batch)))
	err := b.send(zoneID, batch)
	switch {
	case err == nil:
		answer(batch, nil)
	case len(batch) == 1:
		if refusesRecord(err) {
			b.remember(zoneID, batch[0])
		}
		answer(batch, err)
	case !refusesRecord(err):
		metrics.BatchFailures.WithLabelValues("cloudflare", "failed").Inc()
		answer(batch, err)
	default:
		metrics.BatchFailures.WithLabelValues("cloudflare", "refused").Inc()
		b.bisect(zoneID, batch, err)
	}
}

// bisect settles the changes of a batch refused with err because of one of
// its records. suspects holds every change that can have caused the last
// refusal; waiting, those set aside untried.
func (b *Batcher) bisect(zoneID string, suspects []*change, err error) {
	var waiting []*change
	for len(suspects) > 1 {
		half, other := suspects[:len(suspects)/2], suspects[len(suspects)/2:]
		metrics.BatchRecoveryCalls.WithLabelValues("cloudflare").Inc()
		switch herr := b.send(zoneID, half); {
		case herr == nil:
			answer(half, nil)
			suspects = other
		case refusesRecord(herr):
			waiting = append(waiting, other...)
			suspects, err = half, herr
		default:
			answer(suspects, herr)
			answer(waiting, herr)
			return
		}
	}
	b.remember(zoneID, suspects[0])
	answer(suspects, own(suspects[0], err))
	if len(waiting) > 0 {
		metrics.BatchRecoveryCalls.WithLabelValues("cloudflare").Inc()
		b.changes(zoneID, waiting)
	}
}

// send makes one call for changes: a single call for one, a batch for
// more. On success each change holds its record.
func (b *Batcher) send(zoneID string, changes []*change) error {
	if len(changes) == 1 {
		c := changes[0]
		var err error
		if c.post != nil {
			c.rec, err = b.client.CreateTXT(c.ctx, zoneID, c.post.Name, c.post.Content, c.post.TTL, c.post.Comment)
		} else {
			err = b.client.DeleteRecord(c.ctx, zoneID, c.delete)
		}
		return err
	}
	var deletes []string
	var posts []TXTRecord
	for _, c := range changes {
		if c.post != nil {
			posts = append(posts, *c.post)
		} else {
			deletes = append(deletes, c.delete)
		}
	}
	ctx, cancel := sharedContext(changes)
	defer cancel()
	created, err := b.client.Batch(ctx, zoneID, deletes, posts)
	if err != nil {
		return err
	}
	if len(created) != len(posts) {
		return &Error{Op: BatchRecords, Reason: Transient,
			cause: fmt.Errorf("the answer holds %d created records for the %d sent", len(created), len(posts))}
	}
	i := 0
	for _, c := range changes {
		if c.post != nil {
			c.rec = created[i]
			i++
		}
	}
	return nil
}

// answer ends each change's wait with err.
func answer(changes []*change, err error) {
	for _, c := range changes {
		c.err = err
		close(c.done)
	}
}

// own is a batch's refusal as a single call of c, the change that caused
// it, would have been classified: "record not found" for a delete
// answered 404.
func own(c *change, err error) error {
	if e, ok := As(err); ok && e.Op == BatchRecords && e.cause != nil {
		return classify(opOf(c), e.cause)
	}
	return err
}

// refusesRecord reports a batch refused because of one of its records,
// not as a whole.
func refusesRecord(err error) bool {
	return Is(err, Duplicate, RecordNotFound, InvalidTTL, InvalidRequest)
}

// RefusedFor is how long a change refused on its own is remembered and
// kept out of batches. cert-manager retries a failed challenge with the
// same record within minutes to hours.
const RefusedFor = time.Hour

// refusedKey names a change: its zone, and the record it creates or the ID
// it deletes.
func refusedKey(zoneID string, c *change) string {
	if c.post != nil {
		return fmt.Sprintf("%s|post|%s|%s|%d|%s", zoneID, dnsname.Canonical(c.post.Name), c.post.Content, c.post.TTL, c.post.Comment)
	}
	return zoneID + "|delete|" + c.delete
}

func (b *Batcher) remember(zoneID string, c *change) {
	b.refused.Put(refusedKey(zoneID, c), b.now().Add(RefusedFor))
}

// wasRefused reports whether the change was refused on its own lately.
func (b *Batcher) wasRefused(zoneID string, c *change) bool {
	until, ok := b.refused.Get(refusedKey(zoneID, c))
	return ok && b.now().Before(until)
}

// challengePrefix is what cert-manager's DNS01 record names start with.
const challengePrefix = "_acme-challenge."

// lookups answers name listings: several names below "_acme-challenge."
// with one listing of the zone's challenge records, others one by one.
func (b *Batcher) lookups(zoneID string, batch []*change) {
	var shared []*change
	var wg sync.WaitGroup
	for _, c := range batch {
		if len(batch) > 1 && strings.HasPrefix(c.list, challengePrefix) {
			shared = append(shared, c)
			continue
		}
		wg.Go(func() {
			c.recs, c.err = b.client.ListTXT(c.ctx, zoneID, c.list)
			close(c.done)
		})
	}
	if len(shared) > 0 {
		ctx, cancel := sharedContext(shared)
		all, err := b.client.ListTXTBelow(ctx, zoneID, challengePrefix)
		cancel()
		for _, c := range shared {
			c.err = err
			for _, r := range all {
				if dnsname.Canonical(r.Name) == c.list {
					c.recs = append(c.recs, r)
				}
			}
			close(c.done)
		}
	}
	wg.Wait()
}

// sharedContext is the context of a call made for several callers: it
// lasts as long as the latest of their deadlines, and no caller giving up
// cancels it for the others.
func sharedContext(batch []*change) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.WithoutCancel(c.ctx))
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(batch[0].ctx), latest)
}

func opOf(c *change) Operation {
	switch {
	case c.post != nil:
		return CreateRecord
	case c.list != "":
		return ListRecords
	}
	return DeleteRecord
}
