// Package cloudflare is a local simulator of the parts of Cloudflare's v4 API
// that certbridge uses: zones, DNS records, token verification and Origin CA's
// wire behaviour, as docs/development.md describes. It is driven only
// through the real cloudflare-go client, so it must answer what the real API
// answers: envelopes, HTTP statuses, error codes, pagination and quoting.
package cloudflare

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
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
	// Accounts limits the token to the zones of these account IDs; empty
	// means every account the user belongs to.
	Accounts []string
	// ExpiresOn is reported by /user/tokens/verify when set.
	ExpiresOn time.Time
}

// Zone statuses, as the API reports them.
const (
	ZoneActive       = "active"
	ZonePending      = "pending"
	ZoneInitializing = "initializing"
	ZoneMoved        = "moved"
)

// Zone is a zone of one of the simulated user's accounts. Several zones
// may share a name (in different accounts, or an active zone and a
// pending re-add); only an active zone is served by the authoritative DNS.
type Zone struct {
	ID        string
	Name      string
	Status    string
	AccountID string
}

// DefaultAccount is the account zones are added to unless told otherwise.
const DefaultAccount = "0123456789abcdef0123456789abcdef"

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
	mu       sync.Mutex
	zones    []*Zone // ordered by name
	records  map[string][]*Record
	tokens   map[string]*Token
	keys     []globalKey
	accounts map[string]string // id → name
}

func newState() *state {
	return &state{records: map[string][]*Record{}, tokens: map[string]*Token{},
		accounts: map[string]string{DefaultAccount: "Simulated account"}}
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

func (s *state) addZone(name, status, account string) *Zone {
	s.mu.Lock()
	defer s.mu.Unlock()
	if account == "" {
		account = DefaultAccount
	}
	if _, ok := s.accounts[account]; !ok {
		s.accounts[account] = "Account " + account[:min(8, len(account))]
	}
	z := &Zone{ID: newID(), Name: canonicalName(name), Status: status, AccountID: account}
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

// servingZone is the zone Cloudflare's edge answers name from: the most
// specific active zone holding it. A zone that is not active is not
// served, so its parent still answers; a record written into the parent
// for a name under an active child zone is never seen.
func (s *state) servingZone(name string) *Zone {
	name = canonicalName(name)
	var best *Zone
	for _, z := range s.zones {
		if z.Status != ZoneActive {
			continue
		}
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
func (p principal) inScope(zone *Zone) bool {
	if p.token == nil {
		return true
	}
	if len(p.token.Accounts) > 0 && !slices.Contains(p.token.Accounts, zone.AccountID) {
		return false
	}
	if len(p.token.Zones) == 0 {
		return true
	}
	for _, z := range p.token.Zones {
		if canonicalName(z) == zone.Name {
			return true
		}
	}
	return false
}

func (p principal) can(perm Permission, zone *Zone) bool {
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
