// Package cloudflare is a local simulator of the parts of Cloudflare's v4 API
// that certbridge uses: zones, DNS records, token verification and Origin CA's
// wire behaviour, as recorded in shared/API-REFERENCE.md §A. It is driven only
// through the real cloudflare-go client, so it must answer what the real API
// answers: envelopes, HTTP statuses, error codes, pagination and quoting.
package cloudflare

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"strings"
	"sync"
	"time"
)

// Permission is one permission of an API token.
type Permission string

const (
	// ZoneRead is Zone → Zone → Read.
	ZoneRead Permission = "zone:read"
	// DNSRead is Zone → DNS → Read.
	DNSRead Permission = "dns:read"
	// DNSEdit is Zone → DNS → Edit (implies DNSRead).
	DNSEdit Permission = "dns:edit"
	// SSLEdit is Zone → SSL and Certificates → Edit.
	SSLEdit Permission = "ssl:edit"
)

// TokenStatus is what /user/tokens/verify reports.
type TokenStatus string

const (
	TokenActive   TokenStatus = "active"
	TokenDisabled TokenStatus = "disabled"
	TokenExpired  TokenStatus = "expired"
)

// Token is a user API token known to the simulator.
type Token struct {
	Value       string
	Status      TokenStatus
	Permissions []Permission
	// Zones limits the token to these zone names; empty means all zones.
	Zones []string
	// ExpiresOn is reported by /user/tokens/verify when set.
	ExpiresOn time.Time
}

// Zone is a zone of the simulated account.
type Zone struct {
	ID     string
	Name   string
	Status string
}

// Record is a stored DNS record. Content is kept verbatim, as Cloudflare does.
type Record struct {
	ID         string
	ZoneID     string
	Name       string
	Type       string
	Content    string
	TTL        int
	Comment    string
	CreatedOn  time.Time
	ModifiedOn time.Time
}

type globalKey struct {
	email string
	key   string
}

// state is the simulated account. Every field is guarded by mu.
type state struct {
	mu      sync.Mutex
	zones   []*Zone // ordered by name
	records map[string][]*Record
	tokens  map[string]*Token
	keys    []globalKey
}

func newState() *state {
	return &state{records: map[string][]*Record{}, tokens: map[string]*Token{}}
}

func newID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// canonicalName lower-cases a DNS name and drops a trailing dot, the form the
// API stores and compares names in.
func canonicalName(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

func (s *state) addZone(name, status string) *Zone {
	s.mu.Lock()
	defer s.mu.Unlock()
	z := &Zone{ID: newID(), Name: canonicalName(name), Status: status}
	s.zones = append(s.zones, z)
	sort.Slice(s.zones, func(i, j int) bool { return s.zones[i].Name < s.zones[j].Name })
	return z
}

func (s *state) zoneByID(id string) *Zone {
	for _, z := range s.zones {
		if z.ID == id {
			return z
		}
	}
	return nil
}

// zoneFor returns the zone holding name: the one with the longest matching apex.
func (s *state) zoneFor(name string) *Zone {
	name = canonicalName(name)
	var best *Zone
	for _, z := range s.zones {
		if name == z.Name || strings.HasSuffix(name, "."+z.Name) {
			if best == nil || len(z.Name) > len(best.Name) {
				best = z
			}
		}
	}
	return best
}

// principal is who a request authenticated as.
type principal struct {
	token *Token // nil for a Global API key, which may do everything
}

// inScope reports whether the credential reaches zone at all.
func (p principal) inScope(zone string) bool {
	if p.token == nil || len(p.token.Zones) == 0 {
		return true
	}
	for _, z := range p.token.Zones {
		if canonicalName(z) == zone {
			return true
		}
	}
	return false
}

func (p principal) can(perm Permission, zone string) bool {
	if p.token == nil {
		return true
	}
	if !p.inScope(zone) {
		return false
	}
	for _, have := range p.token.Permissions {
		if have == perm || (perm == DNSRead && have == DNSEdit) {
			return true
		}
	}
	return false
}
