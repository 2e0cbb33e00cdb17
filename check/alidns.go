package check

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/internal/dnsname"
)

// AliDNSOptions are where and what to check.
type AliDNSOptions struct {
	// Endpoint replaces the regional endpoint (host[:port], or an http://
	// or https:// URL), parsed as the webhook parses --alidns-endpoint.
	Endpoint string
	// RegionID is the solver's regionId (its endpoint unless Endpoint).
	RegionID string
	// Domains must be domains of the account (the solver's domainName).
	Domains []string
	// Names must each fall in a domain of the account, found exactly as
	// the solver finds the domain of their _acme-challenge records
	// (internal/alibaba's domain resolution).
	Names []string
	// WriteTest adds and deletes a uniquely named TXT record in each domain.
	WriteTest bool
	// Sources names where each variable's value came from; findings and the
	// report's target name those instead of the variables.
	Sources map[string]string

	// ServiceAccount, when set, is the identity checked instead of the
	// environment's AccessKey: a token of it (requested through its Tokens,
	// as whoever runs the check) exchanged for RoleARN through the OIDC
	// provider OIDCProviderARN at STSEndpoint. Each step is its own line.
	ServiceAccount  *alibaba.ServiceAccount
	RoleARN         string
	OIDCProviderARN string
	STSEndpoint     string
	// Requester names who requests the token, in findings ("you").
	Requester string
}

// AliDNSCredentials checks the AccessKey in ALIBABA_CLOUD_ACCESS_KEY_ID and
// ALIBABA_CLOUD_ACCESS_KEY_SECRET (with ALIBABA_CLOUD_SECURITY_TOKEN for
// STS) with the webhook's own client, domain resolution and error
// classification: that Alibaba Cloud accepts it, and that each domain is in
// its account (F3, F13).
func AliDNSCredentials(ctx context.Context, env func(string) string, o AliDNSOptions) Report {
	r, _ := aliDNSCredentials(ctx, env, o)
	return r
}

// aliDNSCredentials is AliDNSCredentials, with a writer for the
// credential's account when its client could be built (nil otherwise).
func aliDNSCredentials(ctx context.Context, env func(string) string, o AliDNSOptions) (Report, *aliWriter) {
	r := Report{Target: "Alibaba Cloud DNS credentials from the environment"}
	switch {
	case o.ServiceAccount != nil:
		r.Target = fmt.Sprintf("Alibaba Cloud DNS credential of role %s, assumed with ServiceAccount %s's tokens", o.RoleARN, o.ServiceAccount)
	case len(o.Sources) > 0:
		r.Target = "Alibaba Cloud DNS credential from " + strings.Join(sortedValues(o.Sources), ", ")
	}
	endpoint, err := alibaba.ParseEndpoint("--alidns-endpoint", o.Endpoint)
	if err != nil {
		r.fail("endpoint", err.Error(), "give --alidns-endpoint as host[:port], or an http:// or https:// URL")
		return r, nil
	}
	var cred alibaba.Credential
	if o.ServiceAccount != nil {
		var ok bool
		if cred, ok = serviceAccountSteps(ctx, &r, "", *o.ServiceAccount, o.RoleARN, o.OIDCProviderARN, o.STSEndpoint, o.Requester, nil); !ok {
			return r, nil
		}
	} else {
		id, hasID := value(&r, env, "ALIBABA_CLOUD_ACCESS_KEY_ID", o.Sources)
		secret, hasSecret := value(&r, env, "ALIBABA_CLOUD_ACCESS_KEY_SECRET", o.Sources)
		token, _ := value(&r, env, "ALIBABA_CLOUD_SECURITY_TOKEN", o.Sources)
		if !hasID || !hasSecret {
			r.fail("credential", "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET must both be set",
				"export both (and ALIBABA_CLOUD_SECURITY_TOKEN for STS credentials)")
			return r, nil
		}
		cred = alibaba.Credential{AccessKeyID: id, AccessKeySecret: secret, SecurityToken: token,
			IDSource: o.Sources["ALIBABA_CLOUD_ACCESS_KEY_ID"], SecretSource: o.Sources["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]}
	}
	return r, aliDomains(ctx, &r, cred, endpoint, o)
}

// aliDNSWithCredential checks what cred reaches, as aliDNSCredentials does
// for an AccessKey: for the role a serviceAccountRef's token was
// exchanged for.
func aliDNSWithCredential(ctx context.Context, cred alibaba.Credential, o AliDNSOptions) (Report, *aliWriter) {
	r := Report{Target: "Alibaba Cloud DNS credential of " + cred.IDSource}
	endpoint, err := alibaba.ParseEndpoint("--alidns-endpoint", o.Endpoint)
	if err != nil {
		r.fail("endpoint", err.Error(), "give --alidns-endpoint as host[:port], or an http:// or https:// URL")
		return r, nil
	}
	return r, aliDomains(ctx, &r, cred, endpoint, o)
}

// aliDomains checks cred's account and each domain o names, with the
// webhook's client and domain resolution, and returns a writer for the
// account when its client could be built.
func aliDomains(ctx context.Context, r *Report, cred alibaba.Credential, endpoint alibaba.Endpoint, o AliDNSOptions) *aliWriter {
	acct, err := alibaba.NewDNSAccounts(alibaba.Options{DNS: endpoint}).For(cred, o.RegionID)
	if err != nil {
		r.fail("credential", aliQuote(err), "check the values")
		return nil
	}
	c := aliCheck{r: r, acct: acct, cred: cred, write: o.WriteTest, tested: map[string]bool{}}
	w := &aliWriter{acct: acct, cred: cred}
	if len(o.Domains) == 0 && len(o.Names) == 0 {
		c.anyDomain(ctx)
		return w
	}
	for _, d := range o.Domains {
		name := dnsname.ASCII(d)
		c.resolve(ctx, "domain "+dnsname.Display(name), alibaba.DomainQuery{Name: name, DomainName: name}, name)
	}
	for _, n := range distinctNames(o.Names) {
		c.resolve(ctx, "domain of "+dnsname.Display(n), alibaba.DomainQuery{Name: "_acme-challenge." + n}, n)
	}
	return w
}

// aliCheck is one credential's domain checks.
type aliCheck struct {
	r      *Report
	acct   *alibaba.DNSAccount
	cred   alibaba.Credential
	write  bool
	tested map[string]bool
}

// anyDomain checks the credential without a domain to look for: listing
// domains, or, when the policy allows only the solver's actions, a lookup.
func (c *aliCheck) anyDomain(ctx context.Context) {
	label := "AccessKey " + c.cred.MaskedID()
	if c.cred.IDSource != "" && strings.HasPrefix(c.cred.AccessKeyID, "STS.") {
		label = c.cred.IDSource
	}
	p, err := c.acct.Client.ListDomains(ctx, 1)
	switch {
	case alibaba.Is(err, alibaba.PermissionMissing):
		// The signature was accepted; listing domains is not among the
		// actions the solver needs, DescribeDomainInfo is.
		_, err := c.acct.Client.DomainInfo(ctx, "certbridge-check.invalid")
		if alibaba.Is(err, alibaba.PermissionMissing) {
			c.r.failBecause(alibaba.ReasonOf(err), label, "accepted, but the RAM policy allows neither alidns:DescribeDomains nor alidns:DescribeDomainInfo ("+aliQuote(err)+")",
				aliFix(err, "", c.cred)+"; if the policy is limited to some domains, name them to check those")
			return
		}
		c.r.pass(label, "accepted (it may not list domains, which the solver does not need)")
	case err != nil:
		c.r.failBecause(alibaba.ReasonOf(err), label, "refused ("+aliQuote(err)+")", aliFix(err, "", c.cred))
	default:
		c.r.pass(label, fmt.Sprintf("accepted; the account has %d domain(s)", p.TotalCount))
		if c.write && len(p.Domains) > 0 {
			name := p.Domains[0].Name
			c.resolve(ctx, "domain "+dnsname.Display(name), alibaba.DomainQuery{Name: name, DomainName: name}, name)
		}
	}
}

// resolve checks that a query finds the domain the solver will write into.
func (c *aliCheck) resolve(ctx context.Context, label string, q alibaba.DomainQuery, name string) {
	d, err := c.acct.Domains.Resolve(ctx, q)
	var nd *alibaba.NoDomainError
	switch {
	case err == nil:
		detail := fmt.Sprintf("%s (edition %s, minimum TTL %d)", dnsname.Display(d.Name), d.Edition, d.MinTTL)
		if q.DomainName != "" {
			detail = fmt.Sprintf("in the account (edition %s, minimum TTL %d)", d.Edition, d.MinTTL)
		}
		c.r.pass(label, detail)
		if c.write && !c.tested[d.Name] {
			c.tested[d.Name] = true
			c.writeTest(ctx, d)
		}
	case asNoDomain(err, &nd) && q.DomainName != "":
		c.r.failBecause(alibaba.ReasonOf(err), label, "not a domain of this account", aliFix(&alibaba.Error{Reason: alibaba.DomainNotFound}, dnsname.Display(name), c.cred))
	case asNoDomain(err, &nd):
		c.r.failBecause(alibaba.ReasonOf(err), label, "no domain of this account holds it (tried "+dnsname.JoinTried(nd.Tried)+")",
			"add the domain to Alibaba Cloud DNS in this account, use the AccessKey of the account that has it (or roleArn), or set domainName for a CNAME-delegated _acme-challenge")
	default:
		c.r.failBecause(alibaba.ReasonOf(err), label, "refused ("+aliQuote(err)+")", aliFix(err, dnsname.Display(name), c.cred))
	}
}

func asNoDomain(err error, target **alibaba.NoDomainError) bool {
	nd, ok := err.(*alibaba.NoDomainError)
	*target = nd
	return ok
}

// writeTest adds and deletes a uniquely named TXT record.
func (c *aliCheck) writeTest(ctx context.Context, d alibaba.Domain) {
	rr := fmt.Sprintf("_certbridge-check-%d", time.Now().UnixNano())
	id, err := c.acct.Client.AddTXT(ctx, d.Name, rr, "certbridge write test", max(d.MinTTL, 600))
	if e, ok := alibaba.As(err); ok && e.Reason == alibaba.InvalidTTL && e.MinTTL > 0 {
		id, err = c.acct.Client.AddTXT(ctx, d.Name, rr, "certbridge write test", e.MinTTL)
	}
	shown := dnsname.Display(d.Name)
	if err != nil {
		c.r.failBecause(alibaba.ReasonOf(err), "write test "+shown, "AddDomainRecord refused ("+aliQuote(err)+")", aliFix(err, shown, c.cred))
		return
	}
	if err := c.acct.Client.DeleteRecord(ctx, id); err != nil {
		c.r.fail("write test "+shown, "added record "+rr+" but DeleteDomainRecord was refused ("+aliQuote(err)+")", aliFix(err, shown, c.cred))
		return
	}
	c.r.pass("write test "+shown, "added and deleted a TXT record")
}

// aliQuote is what Alibaba Cloud said, or why no answer came (the
// endpoint and the transport's words).
func aliQuote(err error) string {
	if e, ok := alibaba.As(err); ok {
		return e.Quote()
	}
	return err.Error()
}

// aliFix is the fix for a classified Alibaba Cloud error (F13).
func aliFix(err error, domain string, cred alibaba.Credential) string {
	e, ok := alibaba.As(err)
	if !ok {
		return "retry; if it persists, check connectivity to Alibaba Cloud DNS"
	}
	masked := cred.MaskedID()
	switch e.Reason {
	case alibaba.AccessKeyUnknown:
		return "Alibaba Cloud does not know AccessKey " + masked + ": check the id, and that the AccessKey was not deleted"
	case alibaba.AccessKeyDisabled:
		return "AccessKey " + masked + " is disabled: enable it or create a new one"
	case alibaba.SecretMismatch:
		return "the secret does not belong to AccessKey " + masked + ": use the AccessKey's own secret"
	case alibaba.PermissionMissing:
		return "grant the RAM actions alidns:DescribeDomainInfo, alidns:AddDomainRecord, alidns:DescribeSubDomainRecords and alidns:DeleteDomainRecord"
	case alibaba.DomainNotFound:
		return domain + " is not a domain of this account: add it to Alibaba Cloud DNS there, or use that account's AccessKey"
	case alibaba.ClockSkew:
		return "this machine's clock is more than 15 minutes off: synchronise it (NTP)"
	case alibaba.TokenRejected:
		return "the STS token expired or does not match: issue new STS credentials"
	case alibaba.Unreachable:
		return "check --alidns-endpoint (" + e.Endpoint.String() + ") and connectivity to it: a plain-HTTP endpoint needs http://"
	}
	return "retry; if it persists, check connectivity to Alibaba Cloud DNS"
}

// aliWriter writes where the alidns solver writes: the domain
// internal/alibaba resolves for a record's name with the solver's
// domainName, for the propagation check.
type aliWriter struct {
	acct       *alibaba.DNSAccount
	cred       alibaba.Credential
	domainName string
}

var _ zoneWriter = (*aliWriter)(nil)

func (w *aliWriter) resolution() string {
	if w.domainName != "" {
		return "the solver's domainName"
	}
	return "the alidns solver's domain resolution"
}

func (w *aliWriter) zone(ctx context.Context, fqdn string) (writtenZone, error) {
	d, err := w.acct.Domains.Resolve(ctx, alibaba.DomainQuery{Name: fqdn, DomainName: w.domainName})
	if err != nil {
		return writtenZone{}, err
	}
	return writtenZone{name: d.Name, minTTL: d.MinTTL}, nil
}

func (w *aliWriter) addTXT(ctx context.Context, z writtenZone, fqdn, value string) (func(context.Context) error, error) {
	rr := dnsname.Relative(fqdn, z.name)
	id, err := w.acct.Client.AddTXT(ctx, z.name, rr, value, max(z.minTTL, 600))
	if e, ok := alibaba.As(err); ok && e.Reason == alibaba.InvalidTTL && e.MinTTL > 0 {
		id, err = w.acct.Client.AddTXT(ctx, z.name, rr, value, e.MinTTL)
	}
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return w.acct.Client.DeleteRecord(ctx, id) }, nil
}

func (w *aliWriter) failure(err error, domain string) (string, string, string) {
	var nd *alibaba.NoDomainError
	if asNoDomain(err, &nd) {
		return "no domain to write into: " + nd.Error(), "see the domain line of this solver above; set domainName to the domain the record belongs in", alibaba.ReasonOf(err)
	}
	return aliQuote(err), aliFix(err, dnsname.Display(domain), w.cred), alibaba.ReasonOf(err)
}

// serviceAccountSteps checks a ServiceAccount's role assumption in its two
// steps, each on its own line: "token request", a token of sa requested as
// requester (the user running the check); "role assumption", STS
// exchanging it for role through the OIDC provider. may, when not nil, is
// whether the process that requests sa's tokens in the cluster (the
// webhook, the issuer) may do so, and who it is: the token request line
// fails, with the manifest that grants it, when it may not. It returns the
// STS credentials of the role when the token and the exchange worked,
// so that the checks of what the role may do go on.
func serviceAccountSteps(ctx context.Context, r *Report, prefix string, sa alibaba.ServiceAccount, role, providerARN, stsEndpoint, requester string,
	may *processGrant) (alibaba.Credential, bool) {
	label := func(s string) string { return strings.TrimSpace(prefix + " " + s) }
	sts, err := alibaba.ParseEndpoint("--alibaba-sts-endpoint", stsEndpoint)
	if err != nil {
		r.fail(label("role assumption"), err.Error(), "give --alibaba-sts-endpoint as host[:port]")
		return alibaba.Credential{}, false
	}
	opts := alibaba.Options{STS: sts, OIDCProviderARN: providerARN}
	tok, err := alibaba.RequestToken(ctx, sa)
	switch {
	case may != nil && !may.allowed:
		p, _ := alibaba.ServiceAccountProblem(&alibaba.Error{Action: alibaba.ActionTokenRequest, Reason: alibaba.TokenForbidden, Requester: may.user},
			sa, role, opts, may.who)
		r.failBecause(alibaba.TokenForbidden.String(), label("token request"), p.Detail+", so every request of this issuer fails", p.Fix)
	case err != nil:
		p, _ := alibaba.ServiceAccountProblem(err, sa, role, opts, requester)
		r.failBecause(alibaba.ReasonOf(err), label("token request"), p.Detail, p.Fix)
	case may != nil:
		r.pass(label("token request"), fmt.Sprintf("%s may request tokens of ServiceAccount %s (a RoleBinding in %q lets it), and kube-apiserver issued one for audience %q, requested as %s",
			may.who, sa, sa.Namespace, audienceOf(sa), requester))
	default:
		r.pass(label("token request"), fmt.Sprintf("kube-apiserver issued a token of ServiceAccount %s for audience %q, requested as %s", sa, audienceOf(sa), requester))
	}
	if err != nil {
		return alibaba.Credential{}, false
	}
	if providerARN == "" {
		r.failBecause(alibaba.OIDCProviderUnset.String(), label("role assumption"),
			"no RRSA OIDC provider to exchange the token through: the process that uses this serviceAccountRef has no --alibaba-oidc-provider-arn, and none was given to the check",
			fmt.Sprintf("enable RRSA for the ACK cluster and set the chart value %s to its OIDC provider's ARN, acs:ram::<account id>:oidc-provider/ack-rrsa-<cluster id>; or pass --alibaba-oidc-provider-arn to the check",
				alibaba.OIDCProviderValue))
		return alibaba.Credential{}, false
	}
	creds, err := alibaba.AssumeRoleWithOIDC(ctx, opts, role, tok.Value)
	if err != nil {
		p, _ := alibaba.ServiceAccountProblem(err, sa, role, opts, requester)
		r.failBecause(alibaba.ReasonOf(err), label("role assumption"), p.Detail, p.Fix)
		return alibaba.Credential{}, false
	}
	r.pass(label("role assumption"), fmt.Sprintf("STS issued credentials of role %s to %s through the OIDC provider %s", role, sa.Subject(), providerARN))
	return alibaba.Credential{AccessKeyID: creds.AccessKeyId, AccessKeySecret: creds.AccessKeySecret, SecurityToken: creds.SecurityToken,
		IDSource: "role " + role}, true
}

// processGrant is whether the process that requests a ServiceAccount's
// tokens in the cluster may, and who it is.
type processGrant struct {
	allowed bool
	// who names it ("the webhook's ServiceAccount certbridge/certbridge-webhook"),
	// user is its Kubernetes user name.
	who, user string
}

func audienceOf(sa alibaba.ServiceAccount) string {
	if sa.Audience == "" {
		return alibaba.DefaultAudience
	}
	return sa.Audience
}
