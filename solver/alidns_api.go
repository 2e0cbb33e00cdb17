package solver

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/alidns"
)

// aliDNSAPI is the subset of Alibaba Cloud DNS the solver uses. Moving to
// Alibaba's newer SDK means replacing this file only.
type aliDNSAPI interface {
	// domainInfo says whether domain is in the account, and its edition's
	// lowest TTL.
	domainInfo(ctx context.Context, domain string) (found bool, minTTL int, err error)
	// listTXT returns every TXT record at fqdn (all pages).
	listTXT(ctx context.Context, domain, fqdn string) ([]aliRecord, error)
	addTXT(ctx context.Context, domain, rr, value string, ttl int) (id string, err error)
	deleteRecord(ctx context.Context, id string) error
}

type aliRecord struct {
	id, rr, value string
}

// sdkAliDNS implements aliDNSAPI with alibaba-cloud-sdk-go v1. The SDK's
// client is not safe for concurrent use (each call rewrites its http.Client's
// timeout and dialer), so calls check a client out of a small pool.
type sdkAliDNS struct {
	clients chan *alidns.Client
}

// aliClientsPerCredential bounds concurrent calls per credential; with
// ~100 ms per call it is above AddDomainRecord's quota of 60 per second.
const aliClientsPerCredential = 8

var _ aliDNSAPI = (*sdkAliDNS)(nil)

// defaultAliRegion is the region the SDK signs with when none is configured.
const defaultAliRegion = "cn-hangzhou"

func newAliDNSAPI(o AliDNSOptions, c aliCredential, region string) (*sdkAliDNS, error) {
	provider, err := aliCredentialsProvider(o, c)
	if err != nil {
		return nil, err
	}
	scheme, host := "HTTPS", AliDNSEndpoints[region]
	if o.Endpoint != "" {
		host = o.Endpoint
		if rest, ok := strings.CutPrefix(host, "http://"); ok {
			scheme, host = "HTTP", rest
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "https://"), "/")
	}
	signRegion := region
	if signRegion == "" {
		signRegion = defaultAliRegion
	}
	a := &sdkAliDNS{clients: make(chan *alidns.Client, aliClientsPerCredential)}
	shared := &lockedProvider{p: provider}
	for range aliClientsPerCredential {
		// Never pass a nil provider: the SDK would fall back to its default
		// chain and read credentials from the process environment.
		client, err := alidns.NewClientWithOptions(signRegion, sdk.NewConfig().WithScheme(scheme).WithAutoRetry(false), shared)
		if err != nil {
			return nil, err
		}
		client.Domain = host
		a.clients <- client
	}
	return a, nil
}

// lockedProvider serialises credential refreshes: the SDK's providers
// update their cached session credentials without a lock.
type lockedProvider struct {
	mu sync.Mutex
	p  credentials.CredentialsProvider
}

func (l *lockedProvider) GetCredentials() (*credentials.Credentials, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.p.GetCredentials()
}

func (l *lockedProvider) GetProviderName() string { return l.p.GetProviderName() }

// with runs do with a client of the pool, bounded by ctx.
func (a *sdkAliDNS) with(ctx context.Context, r timeouts, do func(*alidns.Client) error) error {
	var c *alidns.Client
	select {
	case c = <-a.clients:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { a.clients <- c }()
	if err := bound(ctx, r); err != nil {
		return err
	}
	return do(c)
}

// aliCredentialsProvider builds the SDK's provider for a credential, with
// every value given explicitly so the SDK never falls back to environment
// variables; only the ambient kind reads the environment, and only because
// the request allowed it.
func aliCredentialsProvider(o AliDNSOptions, c aliCredential) (credentials.CredentialsProvider, error) {
	var base credentials.CredentialsProvider
	var err error
	switch {
	case c.kind == "AccessKey":
		base = credentials.NewStaticAKCredentialsProvider(c.id.value, c.secret.value)
	case c.kind == "STS":
		base = credentials.NewStaticSTSCredentialsProvider(c.id.value, c.secret.value, c.token.value)
	case c.ambient.rrsa():
		base, err = credentials.NewOIDCCredentialsProviderBuilder().
			WithRoleArn(c.ambient.roleARN).
			WithOIDCProviderARN(c.ambient.oidcProviderARN).
			WithOIDCTokenFilePath(c.ambient.oidcTokenFile).
			WithRoleSessionName("certbridge").
			WithSTSEndpoint(o.STSEndpoint).
			Build()
	default:
		base, err = credentials.NewECSRAMRoleCredentialsProviderBuilder().Build()
	}
	if err != nil || c.roleARN == "" {
		return base, err
	}
	return credentials.NewRAMRoleARNCredentialsProviderBuilder().
		WithCredentialsProvider(base).
		WithRoleArn(c.roleARN).
		WithRoleSessionName("certbridge").
		WithDurationSeconds(3600).
		WithStsEndpoint(o.STSEndpoint).
		Build()
}

// timeouts bounds one SDK call by ctx's deadline: the v1 SDK takes no context.
type timeouts interface {
	SetReadTimeout(time.Duration)
	SetConnectTimeout(time.Duration)
}

func bound(ctx context.Context, r timeouts) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	left := time.Until(deadline)
	if left <= 0 {
		return context.DeadlineExceeded
	}
	r.SetReadTimeout(left)
	r.SetConnectTimeout(min(left, 5*time.Second))
	return nil
}

func (a *sdkAliDNS) domainInfo(ctx context.Context, domain string) (bool, int, error) {
	req := alidns.CreateDescribeDomainInfoRequest()
	req.DomainName = domain
	var res *alidns.DescribeDomainInfoResponse
	err := a.with(ctx, req, func(c *alidns.Client) (err error) {
		res, err = c.DescribeDomainInfo(req)
		return err
	})
	switch code(err) {
	case "InvalidDomainName.NoExist", "IncorrectDomainUser":
		return false, 0, nil
	case "":
		if err != nil {
			return false, 0, err
		}
	default:
		return false, 0, err
	}
	return true, int(res.MinTtl), nil
}

// aliPageSize is DescribeSubDomainRecords' largest page.
const aliPageSize = 100

func (a *sdkAliDNS) listTXT(ctx context.Context, domain, fqdn string) ([]aliRecord, error) {
	var out []aliRecord
	for page := 1; ; page++ {
		req := alidns.CreateDescribeSubDomainRecordsRequest()
		req.SubDomain = fqdn
		req.DomainName = domain
		req.Type = "TXT"
		req.PageNumber = requests.NewInteger(page)
		req.PageSize = requests.NewInteger(aliPageSize)
		var res *alidns.DescribeSubDomainRecordsResponse
		err := a.with(ctx, req, func(c *alidns.Client) (err error) {
			res, err = c.DescribeSubDomainRecords(req)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, r := range res.DomainRecords.Record {
			out = append(out, aliRecord{id: r.RecordId, rr: r.RR, value: r.Value})
		}
		if len(res.DomainRecords.Record) < aliPageSize || int64(len(out)) >= res.TotalCount {
			return out, nil
		}
	}
}

func (a *sdkAliDNS) addTXT(ctx context.Context, domain, rr, value string, ttl int) (string, error) {
	req := alidns.CreateAddDomainRecordRequest()
	req.DomainName = domain
	req.RR = rr
	req.Type = "TXT"
	req.Value = value
	req.TTL = requests.NewInteger(ttl)
	var res *alidns.AddDomainRecordResponse
	err := a.with(ctx, req, func(c *alidns.Client) (err error) {
		res, err = c.AddDomainRecord(req)
		return err
	})
	if err != nil {
		return "", err
	}
	return res.RecordId, nil
}

func (a *sdkAliDNS) deleteRecord(ctx context.Context, id string) error {
	req := alidns.CreateDeleteDomainRecordRequest()
	req.RecordId = id
	return a.with(ctx, req, func(c *alidns.Client) error {
		_, err := c.DeleteDomainRecord(req)
		return err
	})
}

// code is an Alibaba Cloud error's code ("" for none or a transport error).
func code(err error) string {
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		return se.ErrorCode()
	}
	return ""
}

func message(err error) string {
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		return se.Message()
	}
	return ""
}

// retryable is throttling, a concurrent write on the domain, or a server error.
func retryable(err error) bool {
	var se *sdkerrors.ServerError
	if !errors.As(err, &se) {
		return false
	}
	switch se.ErrorCode() {
	case "Throttling.User", "Throttling", "Throttling.Api", "LastOperationNotFinished", "ServiceUnavailable", "InternalError":
		return true
	}
	return se.HttpStatus() >= http.StatusInternalServerError
}
