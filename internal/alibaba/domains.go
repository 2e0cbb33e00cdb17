package alibaba

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/certbridge/certbridge/internal/dnsname"
)

// Domain resolution, the contract the alidns solver and `certbridge check`
// share:
//
//   - A domain given by name (domainName) must be exactly that domain of
//     the account.
//   - Otherwise the domain of a name is the most specific domain of the
//     account whose name is the name or one of its parents. Alibaba Cloud
//     DNS registers a sub-domain (sub.example.com) as a domain of its own,
//     answered by its own records: a record for a name below it written
//     into the parent is never served. cert-manager's resolved zone plays
//     no part.
//
// Strategy and cost. The account's domains are listed once
// (DescribeDomains, 100 a page) and names matched locally: one call for
// 200 challenges over 20 domains, where a DescribeDomainInfo per candidate
// costs a call for every parent tried. Concurrent resolutions share the
// listing, kept for ListTTL; a name without a domain lists again at most
// once per RefreshAfter. A RAM policy that does not allow
// alidns:DescribeDomains (it is not among the actions the solver needs)
// makes the resolver look candidates up one by one with
// DescribeDomainInfo, most specific first, each answer kept for ListTTL
// (found) or RefreshAfter (not found).
const (
	ListTTL      = 10 * time.Minute
	RefreshAfter = 30 * time.Second
	// MaxListedDomains bounds the listing; an account with more domains
	// is looked up name by name.
	MaxListedDomains = 10 * MaxDomainsPerPage
)

// DomainQuery is what a domain is resolved from. Either name may be
// written in Unicode or in punycode, in any case: both are compared as DNS
// carries them.
type DomainQuery struct {
	// Name is the record's name.
	Name string
	// DomainName is the user's override.
	DomainName string
}

// NoDomainError says that no domain of the account holds the name.
type NoDomainError struct {
	// Tried are the domain names looked for, most specific first, as DNS
	// carries them.
	Tried []string
}

func (e *NoDomainError) Error() string { return "no domain found for " + dnsname.JoinTried(e.Tried) }

// DomainResolver resolves domains for one credential; safe for concurrent use.
type DomainResolver struct {
	client *DNSClient
	now    func() time.Time
	flight singleflight.Group

	mu       sync.Mutex
	listed   []Domain
	listedAt time.Time
	// byName replaces the listing for a credential that may not list
	// (or has too many domains).
	byName    map[string]lookedUp
	noListing bool
}

type lookedUp struct {
	domain Domain
	found  bool
	at     time.Time
}

// NewDomainResolver resolves domains with client's credential.
func NewDomainResolver(client *DNSClient) *DomainResolver {
	return &DomainResolver{client: client, now: time.Now, byName: map[string]lookedUp{}}
}

// Resolve returns the domain to write q.Name's records into; its errors
// are *NoDomainError or *Error.
func (r *DomainResolver) Resolve(ctx context.Context, q DomainQuery) (Domain, error) {
	candidates := dnsname.Parents(dnsname.ASCII(q.Name))
	if q.DomainName != "" {
		candidates = []string{dnsname.ASCII(q.DomainName)}
	}
	d, err := r.resolve(ctx, candidates, false)
	if _, missing := err.(*NoDomainError); missing && r.mayRefresh() {
		d, err = r.resolve(ctx, candidates, true)
	}
	return d, err
}

func (r *DomainResolver) resolve(ctx context.Context, candidates []string, fresh bool) (Domain, error) {
	for _, name := range candidates {
		d, found, err := r.domainNamed(ctx, name, fresh)
		if err != nil {
			return Domain{}, err
		}
		if found {
			return d, nil
		}
	}
	return Domain{}, &NoDomainError{Tried: candidates}
}

func (r *DomainResolver) mayRefresh() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.noListing && r.now().Sub(r.listedAt) >= RefreshAfter
}

// Learn records what a write taught about a domain (its edition's minimum
// TTL), so later writes use it at once.
func (r *DomainResolver) Learn(d Domain) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.listed {
		if r.listed[i].Name == d.Name {
			r.listed[i] = d
		}
	}
	if l, ok := r.byName[d.Name]; ok && l.found {
		l.domain = d
		r.byName[d.Name] = l
	}
}

func (r *DomainResolver) domainNamed(ctx context.Context, name string, fresh bool) (Domain, bool, error) {
	r.mu.Lock()
	now := r.now()
	if age := now.Sub(r.listedAt); !r.noListing && !r.listedAt.IsZero() && age < ListTTL && (!fresh || age < RefreshAfter) {
		defer r.mu.Unlock()
		return find(r.listed, name)
	}
	if l, ok := r.byName[name]; r.noListing && ok && now.Sub(l.at) < lookedUpTTL(l) {
		r.mu.Unlock()
		return l.domain, l.found, nil
	}
	noListing := r.noListing
	r.mu.Unlock()
	if !noListing {
		all, err := r.listAll(ctx)
		switch {
		case err == nil:
			d, found, _ := find(all, name)
			return d, found, nil
		case Is(err, PermissionMissing) || err == errTooManyDomains:
			r.mu.Lock()
			r.noListing = true
			r.mu.Unlock()
		default:
			return Domain{}, false, err
		}
	}
	return r.lookup(ctx, name)
}

func lookedUpTTL(l lookedUp) time.Duration {
	if l.found {
		return ListTTL
	}
	return RefreshAfter
}

func find(ds []Domain, name string) (Domain, bool, error) {
	for _, d := range ds {
		if d.Name == name {
			return d, true, nil
		}
	}
	return Domain{}, false, nil
}

var errTooManyDomains = fmt.Errorf("more than %d domains", MaxListedDomains)

func (r *DomainResolver) listAll(ctx context.Context) ([]Domain, error) {
	v, err, _ := r.flight.Do("\x00all", func() (any, error) {
		var all []Domain
		for page := 1; ; page++ {
			p, err := r.client.ListDomains(ctx, page)
			if err != nil {
				return nil, err
			}
			if p.TotalCount > MaxListedDomains {
				return nil, errTooManyDomains
			}
			all = append(all, p.Domains...)
			if len(all) >= p.TotalCount || len(p.Domains) == 0 {
				break
			}
		}
		r.mu.Lock()
		// What writes taught about editions survives a new listing.
		for i, d := range all {
			if old, ok, _ := find(r.listed, d.Name); ok && old.MinTTL > d.MinTTL && old.Edition == d.Edition {
				all[i].MinTTL = old.MinTTL
			}
		}
		r.listed, r.listedAt = all, r.now()
		r.mu.Unlock()
		return all, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]Domain), nil
}

// maxLookedUpNames bounds the names kept when looking up one by one.
const maxLookedUpNames = 4096

func (r *DomainResolver) lookup(ctx context.Context, name string) (Domain, bool, error) {
	type result struct {
		d     Domain
		found bool
	}
	v, err, _ := r.flight.Do(name, func() (any, error) {
		d, err := r.client.DomainInfo(ctx, name)
		found := err == nil
		if Is(err, DomainNotFound) {
			err = nil
		}
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		if len(r.byName) >= maxLookedUpNames {
			clear(r.byName)
		}
		r.byName[name] = lookedUp{domain: d, found: found, at: r.now()}
		r.mu.Unlock()
		return result{d, found}, nil
	})
	if err != nil {
		return Domain{}, false, err
	}
	res := v.(result)
	return res.d, res.found, nil
}

func canonical(name string) string { return dnsname.Canonical(name) }
