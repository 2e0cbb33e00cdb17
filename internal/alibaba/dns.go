package alibaba

import (
	"context"
	"strconv"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/alidns"

	"github.com/certbridge/certbridge/internal/dnsname"
	"github.com/certbridge/certbridge/internal/metrics"
	"github.com/certbridge/certbridge/internal/ratelimit"
)

// DNSClient makes the Alibaba Cloud DNS calls certbridge needs, for one
// credential and region: each action within its per-second budget, and
// throttling, concurrent writes and server errors retried with backoff
// until the call's deadline. Every error it returns is an *Error.
type DNSClient struct {
	clients  *pool[*alidns.Client]
	endpoint Endpoint
	secrets  []string
	// rates pace each action at a rate that adapts to throttling, so that
	// several replicas of one account hold its documented QPS together.
	rates map[string]*ratelimit.Adaptive
	// prepare renews a ServiceAccount's session before a call; nil for
	// other credentials.
	prepare func(context.Context) error
}

// NewDNSClient builds the client for a credential; region selects the
// regional endpoint ("" is the central one) unless o.DNS replaces it.
func NewDNSClient(o Options, c Credential, region string) (*DNSClient, error) {
	endpoint := o.DNS.Or(DNSRegionalHosts[region])
	provider, prepare, err := c.provider(o)
	if err != nil {
		return nil, classify("credentials", endpoint, c.secrets(), &credentialsError{err: err})
	}
	signRegion := region
	if signRegion == "" {
		signRegion = DefaultRegion
	}
	p, err := newPool(func() (*alidns.Client, error) {
		// Never pass a nil provider: the SDK would fall back to its default
		// chain and read credentials from the process environment.
		client, err := alidns.NewClientWithOptions(signRegion, sdk.NewConfig().WithScheme(endpoint.Scheme).WithAutoRetry(false), provider)
		if err != nil {
			return nil, err
		}
		client.Domain = endpoint.Host
		return client, nil
	})
	if err != nil {
		return nil, classify("client", endpoint, c.secrets(), err)
	}
	return &DNSClient{clients: p, endpoint: endpoint, secrets: c.secrets(), rates: adaptiveRates(o.qps()), prepare: prepare}, nil
}

// Endpoint is where the client's calls go.
func (d *DNSClient) Endpoint() Endpoint { return d.endpoint }

// adaptiveRates paces each action of qps at a rate adapted to throttling,
// from Headroom of its quota.
func adaptiveRates(qps map[string]int) map[string]*ratelimit.Adaptive {
	rates := map[string]*ratelimit.Adaptive{}
	for action, n := range qps {
		gauge := metrics.RateLimit.WithLabelValues("alidns", action)
		rates[action] = ratelimit.NewAdaptive(max(1, int(float64(n)*Headroom)), gauge.Set)
	}
	return rates
}

// Headroom is the share of an action's documented QPS a process paces at.
// Alibaba Cloud counts a request when it arrives, within a sliding second:
// requests sent exactly 1/QPS apart arrive closer together whenever one is
// delayed on the way, and a delay of a few milliseconds puts QPS+1 into
// one second. The margin absorbs up to a tenth of a second of such delay.
const Headroom = 0.9

// call runs one action at its adaptive rate, retrying what Retryable says
// with backoff until ctx's deadline.
func (d *DNSClient) call(ctx context.Context, action string, req timeouts, do func(*alidns.Client) error) error {
	if d.prepare != nil {
		if err := d.prepare(ctx); err != nil {
			return err
		}
	}
	rate := d.rates[action]
	for attempt := 0; ; attempt++ {
		waitStart := time.Now()
		err := rate.Acquire(ctx)
		metrics.RateLimitWait.WithLabelValues("alidns").Add(time.Since(waitStart).Seconds())
		if err != nil {
			return classify(action, d.endpoint, d.secrets, err)
		}
		start := time.Now()
		err = d.clients.with(ctx, req, do)
		err = classify(action, d.endpoint, d.secrets, err)
		observe("alidns", action, err, time.Since(start))
		e, failed := As(err)
		switch {
		case failed && e.Reason == Throttled:
			rate.Throttled()
		case !failed:
			rate.Accepted()
		}
		if !failed || !e.Retryable() {
			return err
		}
		wait := min(100*time.Millisecond<<attempt, 2*time.Second)
		if deadline, ok := ctx.Deadline(); ok && time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// observe records one call's metrics: the HTTP status (or "error") and
// Alibaba Cloud's code.
func observe(provider, action string, err error, took time.Duration) {
	outcome, code := "200", ""
	if e, ok := As(err); ok {
		outcome, code = "error", e.Code
		if e.Status != 0 {
			outcome = strconv.Itoa(e.Status)
		}
	}
	metrics.ObserveCall(provider, action, outcome, code, took)
}

// Domain is a domain of the account as Alibaba Cloud DNS describes it.
type Domain struct {
	// Name is the domain as DNS carries it (lower case, punycode), the
	// form every name is compared in; dnsname.Display words it for people.
	Name string
	// Edition is the DNS edition's code ("mianfei" for the free one).
	Edition string
	// MinTTL is the edition's lowest TTL; 0 when not known.
	MinTTL int
}

// EditionMinTTL are the documented lowest TTLs by edition code; an unknown
// edition's minimum is learnt from the API's refusal of a lower TTL.
var EditionMinTTL = map[string]int{
	"mianfei":                     600,
	"version_personal":            600,
	"version_enterprise_basic":    60,
	"version_enterprise_advanced": 1,
}

// DomainInfo describes one domain of the account (DomainNotFound if not).
func (d *DNSClient) DomainInfo(ctx context.Context, name string) (Domain, error) {
	req := alidns.CreateDescribeDomainInfoRequest()
	req.DomainName = name
	var res *alidns.DescribeDomainInfoResponse
	err := d.call(ctx, "DescribeDomainInfo", req, func(c *alidns.Client) (err error) {
		res, err = c.DescribeDomainInfo(req)
		return err
	})
	if err != nil {
		return Domain{}, err
	}
	return Domain{Name: name, Edition: res.VersionCode, MinTTL: int(res.MinTtl)}, nil
}

// DomainPage is one page of the account's domains.
type DomainPage struct {
	Domains    []Domain
	TotalCount int
}

// MaxDomainsPerPage is DescribeDomains' largest page.
const MaxDomainsPerPage = 100

// ListDomains lists one page of the account's domains.
func (d *DNSClient) ListDomains(ctx context.Context, page int) (DomainPage, error) {
	req := alidns.CreateDescribeDomainsRequest()
	req.PageNumber = requests.NewInteger(page)
	req.PageSize = requests.NewInteger(MaxDomainsPerPage)
	var res *alidns.DescribeDomainsResponse
	err := d.call(ctx, "DescribeDomains", req, func(c *alidns.Client) (err error) {
		res, err = c.DescribeDomains(req)
		return err
	})
	if err != nil {
		return DomainPage{}, err
	}
	out := DomainPage{TotalCount: int(res.TotalCount)}
	for _, dom := range res.Domains.Domain {
		out.Domains = append(out.Domains, Domain{Name: domainASCII(dom.PunyCode, dom.DomainName), Edition: dom.VersionCode, MinTTL: EditionMinTTL[dom.VersionCode]})
	}
	return out, nil
}

// domainASCII is a listed domain's name as DNS carries it. Alibaba Cloud
// DNS shows an internationalised domain in Unicode (DomainName) and gives
// the ASCII form beside it (PunyCode); without PunyCode, DomainName is
// converted.
func domainASCII(punyCode, domainName string) string {
	if punyCode != "" {
		return canonical(punyCode)
	}
	return dnsname.ASCII(domainName)
}

// Record is a DNS record as stored: Value exactly as submitted, RR as DNS
// carries it (lower case, punycode; the API may return it in Unicode).
type Record struct {
	ID, RR, Value string
}

// recordsPerPage is DescribeSubDomainRecords' largest page.
const recordsPerPage = 100

// ListTXT returns every TXT record at fqdn in domain (all pages).
func (d *DNSClient) ListTXT(ctx context.Context, domain, fqdn string) ([]Record, error) {
	var out []Record
	for page := 1; ; page++ {
		req := alidns.CreateDescribeSubDomainRecordsRequest()
		req.SubDomain = fqdn
		req.DomainName = domain
		req.Type = "TXT"
		req.PageNumber = requests.NewInteger(page)
		req.PageSize = requests.NewInteger(recordsPerPage)
		var res *alidns.DescribeSubDomainRecordsResponse
		err := d.call(ctx, "DescribeSubDomainRecords", req, func(c *alidns.Client) (err error) {
			res, err = c.DescribeSubDomainRecords(req)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, r := range res.DomainRecords.Record {
			out = append(out, Record{ID: r.RecordId, RR: dnsname.ASCII(r.RR), Value: r.Value})
		}
		if len(res.DomainRecords.Record) < recordsPerPage || int64(len(out)) >= res.TotalCount {
			return out, nil
		}
	}
}

// AddTXT adds a TXT record rr (relative to domain, "@" for the apex) and
// returns its ID.
func (d *DNSClient) AddTXT(ctx context.Context, domain, rr, value string, ttl int) (string, error) {
	req := alidns.CreateAddDomainRecordRequest()
	req.DomainName = domain
	req.RR = rr
	req.Type = "TXT"
	req.Value = value
	req.TTL = requests.NewInteger(ttl)
	var res *alidns.AddDomainRecordResponse
	err := d.call(ctx, "AddDomainRecord", req, func(c *alidns.Client) (err error) {
		res, err = c.AddDomainRecord(req)
		return err
	})
	if err != nil {
		return "", err
	}
	return res.RecordId, nil
}

// DeleteRecord deletes a record by ID.
func (d *DNSClient) DeleteRecord(ctx context.Context, id string) error {
	req := alidns.CreateDeleteDomainRecordRequest()
	req.RecordId = id
	return d.call(ctx, "DeleteDomainRecord", req, func(c *alidns.Client) error {
		_, err := c.DeleteDomainRecord(req)
		return err
	})
}
