package cloudflare

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/certbridge/certbridge/internal/dnsname"
)

// Zone resolution, the contract the solvers, the issuer and `certbridge
// check` share:
//
//   - A zone given by ID is used as given: no call is made.
//   - A zone given by name must be exactly that name, active, and the only
//     active zone of that name the credential sees.
//   - Otherwise the zone of a name is the most specific zone, among those
//     the credential sees, whose name is the name or one of its parents and
//     that is active. A more specific zone that is not active (pending,
//     initializing, moved) is passed over: Cloudflare does not serve it, so
//     the parent still answers for the name. cert-manager's resolved zone
//     plays no part: it comes from whatever resolver cert-manager asked,
//     and split-horizon or internal DNS make it name a parent of the zone
//     that really holds the name.
//   - When the only zones holding the name are not active, the error names
//     them and their status; when two active zones of the same name are
//     visible (several accounts), the error names both and asks for zoneID.
//
// Strategy and cost. A credential's zones are listed once, 50 per page,
// and names are matched locally: for 200 challenges over 20 zones that is
// one call, where a lookup per candidate name would cost one call for every
// parent tried (cert-manager's in-tree solver walks up the name; 200 calls
// or more here). Concurrent resolutions share one listing. The listing is
// kept for ListTTL; a name it has no active zone for lists again, at most
// once per RefreshAfter, so a zone added or activated since is found. When
// a credential sees more than MaxListedZones zones, listing them all would
// cost more than it saves; such a credential looks names up one by one,
// most specific first, each answer kept for ListTTL (found) or RefreshAfter
// (not found).
const (
	ListTTL        = 10 * time.Minute
	RefreshAfter   = 30 * time.Second
	MaxListedZones = 10 * MaxZonesPerPage
)

// ZoneQuery is what a zone is resolved from.
type ZoneQuery struct {
	// Name is the record's name (normalised: lower case, no trailing dot).
	Name string
	// ZoneName and ZoneID are the user's overrides; ZoneID wins.
	ZoneName, ZoneID string
}

// ZoneProblem is why no zone can be used.
type ZoneProblem int

// The ways resolution fails besides an API error.
const (
	// NoZone: no zone the credential sees holds the name.
	NoZone ZoneProblem = iota + 1
	// NotActive: the only zones holding the name are not active.
	NotActive
	// Ambiguous: several active zones of one name are visible.
	Ambiguous
)

func (p ZoneProblem) String() string {
	switch p {
	case NotActive:
		return "zone_not_active"
	case Ambiguous:
		return "zone_ambiguous"
	}
	return "no_zone"
}

// ZoneError is a resolution that found no zone to write into. Callers
// word it; Tried and Zones say what was seen.
type ZoneError struct {
	Problem ZoneProblem
	// Tried are the zone names looked for, most specific first.
	Tried []string
	// Zones are the inactive or ambiguous zones found.
	Zones []Zone
	// VisibleZones is how many zones the credential sees in all; -1 when
	// not known (names looked up one by one).
	VisibleZones int
}

// PinnedZoneNotVisible says what to change when a zone named outright (the
// solver's zoneName, check's --zone) is not one the credential sees: the
// solver, check and the docs give this one answer. Setting zoneName is no
// fix for a zoneName that names the wrong zone.
func PinnedZoneNotVisible(zone string) string {
	return fmt.Sprintf("%s is not a zone this credential sees: check the name's spelling; the zone must be active in the Cloudflare account the credential belongs to, "+
		"and an API token needs Zone → Zone → Read for %s (or All zones), with Zone → DNS → Edit", zone, zone)
}

func (e *ZoneError) Error() string {
	switch e.Problem {
	case NotActive:
		return fmt.Sprintf("zone %s is %s", e.Zones[0].Name, e.Zones[0].Status)
	case Ambiguous:
		return fmt.Sprintf("%d active zones named %s", len(e.Zones), e.Zones[0].Name)
	}
	return "no zone found for " + dnsname.JoinTried(e.Tried)
}

// Resolver resolves zones for one credential; safe for concurrent use.
type Resolver struct {
	client *Client
	now    func() time.Time
	flight singleflight.Group

	mu sync.Mutex
	// listed is every zone the credential sees, when it sees few enough.
	listed   []Zone
	listedAt time.Time
	// large marks a credential that sees more than MaxListedZones zones.
	large  bool
	byName map[string]namedZones
}

type namedZones struct {
	zones []Zone
	at    time.Time
}

// NewResolver resolves zones with client's credential.
func NewResolver(client *Client) *Resolver {
	return &Resolver{client: client, now: time.Now, byName: map[string]namedZones{}}
}

// Resolve returns the zone to write q.Name's records into (see the
// contract above). Its errors are *ZoneError or *Error.
func (r *Resolver) Resolve(ctx context.Context, q ZoneQuery) (Zone, error) {
	if q.ZoneID != "" {
		return Zone{ID: q.ZoneID, Name: dnsname.Canonical(q.ZoneName), Status: "active"}, nil
	}
	candidates := dnsname.Parents(q.Name)
	if q.ZoneName != "" {
		candidates = []string{dnsname.Canonical(q.ZoneName)}
	}
	z, err := r.resolve(ctx, candidates, false)
	if _, stale := err.(*ZoneError); stale && r.mayRefresh() {
		z, err = r.resolve(ctx, candidates, true)
	}
	return z, err
}

func (r *Resolver) resolve(ctx context.Context, candidates []string, fresh bool) (Zone, error) {
	var inactive []Zone
	for _, name := range candidates {
		zs, err := r.zonesNamed(ctx, name, fresh)
		if err != nil {
			return Zone{}, err
		}
		var active []Zone
		for _, z := range zs {
			if z.Active() {
				active = append(active, z)
			} else {
				inactive = append(inactive, z)
			}
		}
		switch {
		case len(active) == 1:
			return active[0], nil
		case len(active) > 1:
			return Zone{}, &ZoneError{Problem: Ambiguous, Tried: candidates, Zones: active, VisibleZones: r.visible()}
		}
	}
	if len(inactive) > 0 {
		return Zone{}, &ZoneError{Problem: NotActive, Tried: candidates, Zones: inactive, VisibleZones: r.visible()}
	}
	return Zone{}, &ZoneError{Problem: NoZone, Tried: candidates, VisibleZones: r.visible()}
}

// visible is how many zones the credential sees, -1 when not known.
func (r *Resolver) visible() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.large || r.listedAt.IsZero() {
		return -1
	}
	return len(r.listed)
}

// mayRefresh reports whether what was seen is old enough to ask again
// after a name found no zone.
func (r *Resolver) mayRefresh() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.large && r.now().Sub(r.listedAt) >= RefreshAfter
}

// Forget drops what is known of the zone with id: a write said it is gone.
func (r *Resolver) Forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, z := range r.listed {
		if z.ID == id {
			r.listedAt = time.Time{}
		}
	}
	for name, nz := range r.byName {
		for _, z := range nz.zones {
			if z.ID == id {
				delete(r.byName, name)
			}
		}
	}
}

// zonesNamed returns the visible zones named name, every status.
func (r *Resolver) zonesNamed(ctx context.Context, name string, fresh bool) ([]Zone, error) {
	r.mu.Lock()
	now := r.now()
	if age := now.Sub(r.listedAt); !r.large && !r.listedAt.IsZero() && age < ListTTL && (!fresh || age < RefreshAfter) {
		defer r.mu.Unlock()
		return named(r.listed, name), nil
	}
	if nz, ok := r.byName[name]; r.large && ok && now.Sub(nz.at) < nameTTL(nz) {
		r.mu.Unlock()
		return nz.zones, nil
	}
	large := r.large
	r.mu.Unlock()
	if !large {
		all, err := r.listAll(ctx)
		if err == nil {
			return named(all, name), nil
		}
		if err != errTooMany {
			return nil, err
		}
	}
	return r.lookup(ctx, name)
}

func nameTTL(nz namedZones) time.Duration {
	if len(nz.zones) == 0 {
		return RefreshAfter
	}
	return ListTTL
}

func named(zs []Zone, name string) []Zone {
	var out []Zone
	for _, z := range zs {
		if z.Name == name {
			out = append(out, z)
		}
	}
	return out
}

var errTooMany = fmt.Errorf("more than %d zones", MaxListedZones)

// maxLookedUpNames bounds the names kept for a credential that sees too
// many zones to list.
const maxLookedUpNames = 4096

// listAll lists every zone the credential sees, once for all concurrent
// callers.
func (r *Resolver) listAll(ctx context.Context) ([]Zone, error) {
	v, err, _ := r.flight.Do("\x00all", func() (any, error) {
		var all []Zone
		for page := 1; ; page++ {
			p, err := r.client.ListZones(ctx, "", page)
			if err != nil {
				return nil, err
			}
			if p.TotalCount > MaxListedZones {
				r.mu.Lock()
				r.large = true
				r.mu.Unlock()
				return nil, errTooMany
			}
			all = append(all, p.Zones...)
			if page >= p.TotalPages || len(p.Zones) == 0 {
				break
			}
		}
		sort.SliceStable(all, func(i, j int) bool { return all[i].Name < all[j].Name })
		r.mu.Lock()
		r.listed, r.listedAt = all, r.now()
		r.mu.Unlock()
		return all, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]Zone), nil
}

// lookup asks for the zones named name, once for all concurrent callers.
func (r *Resolver) lookup(ctx context.Context, name string) ([]Zone, error) {
	v, err, _ := r.flight.Do(name, func() (any, error) {
		var out []Zone
		for page := 1; ; page++ {
			p, err := r.client.ListZones(ctx, name, page)
			if err != nil {
				return nil, err
			}
			out = append(out, named(p.Zones, name)...)
			if page >= p.TotalPages || len(p.Zones) == 0 {
				break
			}
		}
		r.mu.Lock()
		if len(r.byName) >= maxLookedUpNames {
			clear(r.byName) // only a cache: start over rather than grow
		}
		r.byName[name] = namedZones{zones: out, at: r.now()}
		r.mu.Unlock()
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]Zone), nil
}
