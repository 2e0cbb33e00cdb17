package cloudflare

import (
	"context"

	"github.com/certbridge/certbridge/internal/cache"
)

// Account is what is kept per credential: its client, with the
// credential's request budget, its zone resolver, and its batcher of
// record changes.
type Account struct {
	Client *Client
	Zones  *Resolver
	Batch  *Batcher
}

// Accounts hands out one Account per credential, keyed by the credential's
// hash, so concurrent challenges of one credential share one budget and
// one zone listing, and no tenant's zones are ever another's.
type Accounts struct {
	opts Options
	m    cache.Map[*Account]
}

// maxAccounts bounds the credentials kept, so that rotating tokens cannot
// grow the process without limit.
const maxAccounts = 1024

// NewAccounts keeps the accounts of credentials used with o.
func NewAccounts(o Options) *Accounts {
	a := &Accounts{opts: o}
	a.m.Max = maxAccounts
	return a
}

// For returns the credential's Account, creating it on first use.
func (a *Accounts) For(c Credential) *Account {
	return a.m.GetOrCreate(c.Hash(), func() *Account {
		client := NewClient(a.opts, c)
		return &Account{Client: client, Zones: NewResolver(client), Batch: NewBatcher(client, a.opts.Batch)}
	})
}

// NoZoneDetail is what tells "the zone is elsewhere" from "the token cannot
// read zones" and "the token is not active", for a ZoneError's message.
type NoZoneDetail struct {
	// TokenStatus is the API token's status when it is not "active"; empty
	// when active, not a token, or not known.
	TokenStatus string
	// VisibleZones is how many zones the credential sees; -1 if not known.
	VisibleZones int
}

// Explain finds out why a credential found no zone (two calls at most,
// made only after a resolution failed).
func (a *Account) Explain(ctx context.Context, zerr *ZoneError, isToken bool) NoZoneDetail {
	d := NoZoneDetail{VisibleZones: zerr.VisibleZones}
	if isToken {
		if s, err := a.Client.VerifyToken(ctx); err == nil && s.Status != "active" {
			d.TokenStatus = s.Status
		}
	}
	if d.VisibleZones < 0 {
		if p, err := a.Client.ListZones(ctx, "", 1); err == nil {
			d.VisibleZones = p.TotalCount
		}
	}
	return d
}
