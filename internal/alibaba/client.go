package alibaba

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/certbridge/certbridge/internal/input"
)

// Production endpoints and defaults.
const (
	// DNSHost is Alibaba Cloud DNS's central endpoint.
	DNSHost = "alidns.aliyuncs.com"
	// PCAHost is Private CA's endpoint for almost every region.
	PCAHost = "cas.aliyuncs.com"
	// STSHost is STS, for RRSA and role assumption.
	STSHost = "sts.aliyuncs.com"
	// DefaultRegion is the region requests are signed for when none is set.
	DefaultRegion = "cn-hangzhou"
)

// DNSRegionalHosts are Alibaba Cloud DNS's endpoints by regionId ("" is
// the central one, which the docs list; the others are in the generated
// SDKs' endpoint maps and serve the International site).
var DNSRegionalHosts = map[string]string{
	"":               DNSHost,
	"cn-hangzhou":    "alidns.cn-hangzhou.aliyuncs.com",
	"ap-southeast-1": "alidns.ap-southeast-1.aliyuncs.com",
	"ap-northeast-1": "alidns.ap-northeast-1.aliyuncs.com",
	"eu-central-1":   "alidns.eu-central-1.aliyuncs.com",
	"us-east-1":      "alidns.us-east-1.aliyuncs.com",
}

// Regions lists the known regionIds, sorted, for messages.
func Regions() []string {
	var out []string
	for r := range DNSRegionalHosts {
		if r != "" {
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// ActionQPS is the documented quota per second, per account and action.
// DescribeDomainInfo and DescribeDomains have none documented; they get
// DescribeDomainRecords'.
var ActionQPS = map[string]int{
	"DescribeDomains":          100,
	"DescribeDomainInfo":       100,
	"DescribeDomainRecords":    100,
	"DescribeSubDomainRecords": 300,
	"AddDomainRecord":          60,
	"DeleteDomainRecord":       60,
	"DescribeCACertificate":    10,
	"CreateCustomCertificate":  10,
}

// Endpoint is where API calls go. The zero Endpoint means the production
// host of the service.
type Endpoint struct {
	// Scheme is "HTTPS" or "HTTP", as the SDK spells it.
	Scheme string
	Host   string
}

// String is the endpoint as a URL: "https://alidns.aliyuncs.com".
func (e Endpoint) String() string {
	if e.Host == "" {
		return "(default)"
	}
	return strings.ToLower(e.Scheme) + "://" + e.Host
}

// Or is e, or host over HTTPS when e is the zero Endpoint.
func (e Endpoint) Or(host string) Endpoint {
	if e.Host == "" {
		return Endpoint{Scheme: "HTTPS", Host: host}
	}
	return e
}

// ParseEndpoint reads an operator's endpoint override, the one rule for
// the webhook, the issuer and `certbridge check`: "host[:port]" and
// "https://host[:port]" are HTTPS, "http://host[:port]" is HTTP, empty is
// the production host. Anything else (another scheme, a path, a query) is
// an error naming flag. A bare host is HTTPS because the production hosts
// are; pointing one at a plain-HTTP server then fails with the transport's
// own words ("server gave HTTP response to HTTPS client").
func ParseEndpoint(flag, value string) (Endpoint, error) {
	if value == "" {
		return Endpoint{}, nil
	}
	raw := value
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return Endpoint{}, fmt.Errorf("%s %s is not host[:port] or an http:// or https:// URL: %v", flag, input.Quote(value), err)
	case u.Scheme != "http" && u.Scheme != "https":
		return Endpoint{}, fmt.Errorf("%s %s: the scheme must be http or https", flag, input.Quote(value))
	case u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil:
		return Endpoint{}, fmt.Errorf("%s %s must be host[:port] or an http:// or https:// URL without path or query", flag, input.Quote(value))
	}
	return Endpoint{Scheme: strings.ToUpper(u.Scheme), Host: u.Host}, nil
}

// Options are the operator's settings: process flags, never an Issuer's.
type Options struct {
	// DNS replaces the regional Alibaba Cloud DNS endpoint.
	DNS Endpoint
	// PCA replaces cas.aliyuncs.com.
	PCA Endpoint
	// STS replaces sts.aliyuncs.com (always HTTPS: the SDK's credential
	// providers hard-code it).
	STS Endpoint
	// QPS replaces ActionQPS; a missing action is not limited.
	QPS map[string]int
	// Environ reads the process environment for ambient credentials
	// (RRSA); os.Getenv when nil. It is read only where a caller allows
	// ambient credentials.
	Environ func(string) string
	// OIDCProviderARN is the cluster's RRSA OIDC provider in RAM
	// (acs:ram::<account>:oidc-provider/ack-rrsa-<cluster id>), through
	// which ServiceAccount tokens are exchanged for roles.
	OIDCProviderARN string
}

// Getenv reads the environment through o.Environ.
func (o Options) Getenv(name string) string {
	if o.Environ == nil {
		return os.Getenv(name)
	}
	return o.Environ(name)
}

func (o Options) qps() map[string]int {
	if o.QPS == nil {
		return ActionQPS
	}
	return o.QPS
}

// ClientsPerCredential bounds concurrent calls per credential; with
// ~100 ms per call it is above the busiest quota used (60 per second).
const ClientsPerCredential = 8

// pool hands out clients one caller at a time: each SDK call rewrites its
// client's http.Client timeout and dialer.
type pool[C any] struct {
	clients chan C
}

func newPool[C any](build func() (C, error)) (*pool[C], error) {
	p := &pool[C]{clients: make(chan C, ClientsPerCredential)}
	for range ClientsPerCredential {
		c, err := build()
		if err != nil {
			return nil, err
		}
		p.clients <- c
	}
	return p, nil
}

// timeouts is what SDK requests offer to bound a call.
type timeouts interface {
	SetReadTimeout(time.Duration)
	SetConnectTimeout(time.Duration)
}

// with runs do with a client of the pool, bounding req by ctx's deadline:
// the v1 SDK takes no context.
func (p *pool[C]) with(ctx context.Context, req timeouts, do func(C) error) error {
	var c C
	select {
	case c = <-p.clients:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { p.clients <- c }()
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		if left <= 0 {
			return context.DeadlineExceeded
		}
		req.SetReadTimeout(left)
		req.SetConnectTimeout(min(left, 5*time.Second))
	}
	return do(c)
}
