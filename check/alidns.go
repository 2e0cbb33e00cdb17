package check

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/alidns"

	"github.com/certbridge/certbridge/internal/alisdk"
)

// AliDNSOptions are where and what to check.
type AliDNSOptions struct {
	// Endpoint replaces alidns.aliyuncs.com (host[:port], or a URL).
	Endpoint string
	// Domains must be domains of the account (the dnsNames' domains).
	Domains []string
	// Names must each fall in a domain of the account, found as the solver
	// does: the name (a leading "*." dropped), then its parents down to two
	// labels; the nearest domain of the account is the name's domain.
	Names []string
	// WriteTest adds and deletes a uniquely named TXT record in each domain.
	WriteTest bool
	// Sources names where each variable's value came from; findings and the
	// report's target name those instead of the variables.
	Sources map[string]string
}

// AliDNSCredentials checks the AccessKey in ALIBABA_CLOUD_ACCESS_KEY_ID and
// ALIBABA_CLOUD_ACCESS_KEY_SECRET (with ALIBABA_CLOUD_SECURITY_TOKEN for STS)
// with signed read calls: that Alibaba Cloud accepts it, and that each domain
// is in its account (F3, F13).
func AliDNSCredentials(ctx context.Context, env func(string) string, o AliDNSOptions) Report {
	r := Report{Target: "Alibaba Cloud DNS credentials from the environment"}
	if len(o.Sources) > 0 {
		r.Target = "Alibaba Cloud DNS credential from " + strings.Join(sortedValues(o.Sources), ", ")
	}
	id, hasID := value(&r, env, "ALIBABA_CLOUD_ACCESS_KEY_ID", o.Sources)
	secret, hasSecret := value(&r, env, "ALIBABA_CLOUD_ACCESS_KEY_SECRET", o.Sources)
	token, _ := value(&r, env, "ALIBABA_CLOUD_SECURITY_TOKEN", o.Sources)
	if !hasID || !hasSecret {
		r.fail("credential", "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET must both be set",
			"export both (and ALIBABA_CLOUD_SECURITY_TOKEN for STS credentials)")
		return r
	}
	masked := id
	if len(masked) > 4 {
		masked = masked[:4]
	}
	masked += "****"
	provider, err := alisdk.Provider(alisdk.Credential{AccessKeyID: id, AccessKeySecret: secret, SecurityToken: token}, "")
	if err != nil {
		r.fail("credential", err.Error(), "check the values")
		return r
	}
	scheme, host := alisdk.Endpoint(o.Endpoint, "alidns.aliyuncs.com")
	client, err := alidns.NewClientWithOptions("cn-hangzhou", sdk.NewConfig().WithScheme(scheme).WithAutoRetry(false).WithTimeout(20*time.Second), provider)
	if err != nil {
		r.fail("client", err.Error(), "")
		return r
	}
	client.Domain = host
	if len(o.Domains) == 0 && len(o.Names) == 0 {
		req := alidns.CreateDescribeDomainsRequest()
		req.PageSize = requests.NewInteger(1)
		res, err := client.DescribeDomains(req)
		switch {
		case alisdk.Code(err) == "Forbidden.RAM":
			// The signature was accepted; listing domains is not among the
			// actions the solver needs, DescribeDomainInfo is.
			info := alidns.CreateDescribeDomainInfoRequest()
			info.DomainName = "certbridge-check.invalid"
			_, err := client.DescribeDomainInfo(info)
			if c := alisdk.Code(err); c == "Forbidden.RAM" {
				r.fail("AccessKey "+masked, "accepted, but the RAM policy allows neither alidns:DescribeDomains nor alidns:DescribeDomainInfo (Forbidden.RAM)",
					aliFix(err, "", masked)+"; if the policy is limited to some domains, name them to check those")
				return r
			}
			r.pass("AccessKey "+masked, "accepted (it may not list domains, which the solver does not need)")
		case err != nil:
			r.fail("AccessKey "+masked, "refused ("+alisdk.Code(err)+")", aliFix(err, "", masked))
		default:
			r.pass("AccessKey "+masked, fmt.Sprintf("accepted; the account has %d domain(s)", res.TotalCount))
			if domains := res.Domains.Domain; o.WriteTest && len(domains) > 0 {
				if info, err := domainInfo(client, domains[0].DomainName); err != nil {
					r.fail("domain "+domains[0].DomainName, "refused ("+alisdk.Code(err)+")", aliFix(err, domains[0].DomainName, masked))
				} else {
					aliWriteTest(&r, client, domains[0].DomainName, int(info.MinTtl), masked)
				}
			}
		}
		return r
	}
	tested := map[string]bool{}
	for _, d := range o.Domains {
		name := strings.ToLower(strings.TrimSuffix(d, "."))
		res, err := domainInfo(client, name)
		if err != nil {
			r.fail("domain "+name, "refused ("+alisdk.Code(err)+")", aliFix(err, name, masked))
			continue
		}
		r.pass("domain "+name, fmt.Sprintf("in the account (edition %s, minimum TTL %d)", res.VersionCode, res.MinTtl))
		if o.WriteTest && !tested[name] {
			tested[name] = true
			aliWriteTest(&r, client, name, int(res.MinTtl), masked)
		}
	}
	for _, n := range distinctNames(o.Names) {
		tried := candidates(n)
		name := tried[0]
		var found string
		var res *alidns.DescribeDomainInfoResponse
		var lookupErr error
		for _, c := range tried {
			res, err = domainInfo(client, c)
			if code := alisdk.Code(err); code == "InvalidDomainName.NoExist" || code == "IncorrectDomainUser" {
				continue
			}
			if err != nil {
				lookupErr = err
			} else {
				found = c
			}
			break
		}
		switch {
		case lookupErr != nil:
			r.fail("domain of "+name, "refused ("+alisdk.Code(lookupErr)+")", aliFix(lookupErr, name, masked))
		case found == "":
			r.fail("domain of "+name, "no domain of this account holds it (tried "+strings.Join(tried, ", ")+")",
				"add the domain to Alibaba Cloud DNS in this account, use the AccessKey of the account that has it (or roleArn), or set domainName for a CNAME-delegated _acme-challenge")
		default:
			r.pass("domain of "+name, fmt.Sprintf("%s (edition %s, minimum TTL %d)", found, res.VersionCode, res.MinTtl))
			if o.WriteTest && !tested[found] {
				tested[found] = true
				aliWriteTest(&r, client, found, int(res.MinTtl), masked)
			}
		}
	}
	return r
}

func domainInfo(client *alidns.Client, name string) (*alidns.DescribeDomainInfoResponse, error) {
	req := alidns.CreateDescribeDomainInfoRequest()
	req.DomainName = name
	return client.DescribeDomainInfo(req)
}

// aliWriteTest adds and deletes a uniquely named TXT record.
func aliWriteTest(r *Report, client *alidns.Client, domain string, ttl int, masked string) {
	add := alidns.CreateAddDomainRecordRequest()
	add.DomainName, add.Type, add.Value = domain, "TXT", "certbridge write test"
	add.RR = fmt.Sprintf("_certbridge-check-%d", time.Now().UnixNano())
	add.TTL = requests.NewInteger(max(ttl, 1))
	res, err := client.AddDomainRecord(add)
	if err != nil {
		r.fail("write test "+domain, "AddDomainRecord refused ("+alisdk.Code(err)+")", aliFix(err, domain, masked))
		return
	}
	del := alidns.CreateDeleteDomainRecordRequest()
	del.RecordId = res.RecordId
	if _, err := client.DeleteDomainRecord(del); err != nil {
		r.fail("write test "+domain, "added record "+add.RR+" but DeleteDomainRecord was refused ("+alisdk.Code(err)+")", aliFix(err, domain, masked))
		return
	}
	r.pass("write test "+domain, "added and deleted a TXT record")
}

// aliFix is the fix for an Alibaba Cloud error code (F13).
func aliFix(err error, domain, masked string) string {
	switch c := alisdk.Code(err); {
	case c == "InvalidAccessKeyId.NotFound":
		return "Alibaba Cloud does not know AccessKey " + masked + ": check the id, and that the AccessKey was not deleted"
	case c == "InvalidAccessKeyId.Inactive":
		return "AccessKey " + masked + " is disabled: enable it or create a new one"
	case c == "SignatureDoesNotMatch":
		return "the secret does not belong to AccessKey " + masked + ": use the AccessKey's own secret"
	case c == "Forbidden.RAM":
		return "grant the RAM actions alidns:DescribeDomainInfo, alidns:AddDomainRecord, alidns:DescribeSubDomainRecords and alidns:DeleteDomainRecord"
	case c == "InvalidDomainName.NoExist" || c == "IncorrectDomainUser":
		return domain + " is not a domain of this account: add it to Alibaba Cloud DNS there, or use that account's AccessKey"
	case c == "InvalidTimeStamp.Expired":
		return "this machine's clock is more than 15 minutes off: synchronise it (NTP)"
	case strings.HasPrefix(c, "InvalidSecurityToken"):
		return "the STS token expired or does not match: issue new STS credentials"
	default:
		return "retry; if it persists, check connectivity to Alibaba Cloud DNS"
	}
}
