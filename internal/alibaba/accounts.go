package alibaba

import (
	"github.com/certbridge/certbridge/internal/cache"
)

// DNSAccount is what is kept per credential and region: its client, with
// the per-action budgets, and its domain resolver.
type DNSAccount struct {
	Client  *DNSClient
	Domains *DomainResolver
}

// DNSAccounts hands out one DNSAccount per credential and region, keyed by
// their hash, so concurrent challenges share budgets and one listing, and
// no tenant's domains are ever another's.
type DNSAccounts struct {
	opts Options
	m    cache.Map[*DNSAccount]
}

const maxAccounts = 1024

// NewDNSAccounts keeps the accounts of credentials used with o.
func NewDNSAccounts(o Options) *DNSAccounts {
	a := &DNSAccounts{opts: o}
	a.m.Max = maxAccounts
	return a
}

// For returns the account of a credential in region, creating it on first
// use; building its client can fail (a credentials provider refusing its
// settings).
func (a *DNSAccounts) For(c Credential, region string) (*DNSAccount, error) {
	key := c.Hash(region)
	if acct, ok := a.m.Get(key); ok {
		return acct, nil
	}
	client, err := NewDNSClient(a.opts, c, region)
	if err != nil {
		return nil, err
	}
	// Two first uses at once build two clients; one is kept.
	return a.m.GetOrCreate(key, func() *DNSAccount {
		return &DNSAccount{Client: client, Domains: NewDomainResolver(client)}
	}), nil
}
