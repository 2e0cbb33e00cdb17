package solver

import (
	"context"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/alidns"

	"github.com/certbridge/certbridge/internal/alisdk"
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

// sdkAliDNS implements aliDNSAPI with alibaba-cloud-sdk-go v1.
type sdkAliDNS struct {
	clients *alisdk.Pool[*alidns.Client]
}

var _ aliDNSAPI = (*sdkAliDNS)(nil)

// defaultAliRegion is the region the SDK signs with when none is configured.
const defaultAliRegion = "cn-hangzhou"

func newAliDNSAPI(o AliDNSOptions, c aliCredential, region string) (*sdkAliDNS, error) {
	provider, err := alisdk.Provider(alisdk.Credential{
		AccessKeyID: c.id.Value, AccessKeySecret: c.secret.Value, SecurityToken: c.token.Value,
		Ambient: alisdk.Ambient{RoleARN: c.ambient.roleARN, OIDCProviderARN: c.ambient.oidcProviderARN, OIDCTokenFile: c.ambient.oidcTokenFile},
		RoleARN: c.roleARN,
	}, o.STSEndpoint)
	if err != nil {
		return nil, err
	}
	provider = alisdk.Locked(provider)
	scheme, host := alisdk.Endpoint(o.Endpoint, AliDNSEndpoints[region])
	signRegion := region
	if signRegion == "" {
		signRegion = defaultAliRegion
	}
	pool, err := alisdk.NewPool(func() (*alidns.Client, error) {
		// Never pass a nil provider: the SDK would fall back to its default
		// chain and read credentials from the process environment.
		client, err := alidns.NewClientWithOptions(signRegion, sdk.NewConfig().WithScheme(scheme).WithAutoRetry(false), provider)
		if err != nil {
			return nil, err
		}
		client.Domain = host
		return client, nil
	})
	if err != nil {
		return nil, err
	}
	return &sdkAliDNS{clients: pool}, nil
}

func (a *sdkAliDNS) domainInfo(ctx context.Context, domain string) (bool, int, error) {
	req := alidns.CreateDescribeDomainInfoRequest()
	req.DomainName = domain
	var res *alidns.DescribeDomainInfoResponse
	err := a.clients.With(ctx, req, func(c *alidns.Client) (err error) {
		res, err = c.DescribeDomainInfo(req)
		return err
	})
	switch alisdk.Code(err) {
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
		err := a.clients.With(ctx, req, func(c *alidns.Client) (err error) {
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
	err := a.clients.With(ctx, req, func(c *alidns.Client) (err error) {
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
	return a.clients.With(ctx, req, func(c *alidns.Client) error {
		_, err := c.DeleteDomainRecord(req)
		return err
	})
}
