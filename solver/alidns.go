package solver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/internal/cache"
	"github.com/certbridge/certbridge/internal/dnsname"
	"github.com/certbridge/certbridge/internal/input"
)

// AliDNSConfig is the `alidns` solver's webhook.config.
type AliDNSConfig struct {
	// AccessKeyIDSecretRef and AccessKeySecretSecretRef are a RAM user's
	// AccessKey pair (or STS credentials with SecurityTokenSecretRef).
	AccessKeyIDSecretRef     *SecretKeySelector `json:"accessKeyIdSecretRef,omitempty"`
	AccessKeySecretSecretRef *SecretKeySelector `json:"accessKeySecretSecretRef,omitempty"`
	SecurityTokenSecretRef   *SecretKeySelector `json:"securityTokenSecretRef,omitempty"`
	// RoleARN is a RAM role to assume from the credentials above, or from the
	// ambient ones (RRSA or the ECS RAM role), or that serviceAccountRef's
	// tokens are exchanged for.
	RoleARN string `json:"roleArn,omitempty"`
	// ServiceAccountRef is the identity instead of an AccessKey: a
	// ServiceAccount whose tokens are exchanged for roleArn's credentials.
	ServiceAccountRef *ServiceAccountRef `json:"serviceAccountRef,omitempty"`
	// RegionID selects the service's regional endpoint; empty means the
	// central endpoint alidns.aliyuncs.com.
	RegionID string `json:"regionId,omitempty"`
	// DomainName overrides the lookup of the domain as registered in Alibaba
	// Cloud DNS.
	DomainName string `json:"domainName,omitempty"`
	// TTL of the TXT record; raised to the domain edition's minimum if lower.
	TTL *int `json:"ttl,omitempty"`
}

// ServiceAccountRef names a ServiceAccount in the namespace the challenge's
// Secrets are read from, whose tokens the webhook requests (TokenRequest)
// and exchanges with STS AssumeRoleWithOIDC for roleArn. Like
// SecretKeySelector it has no namespace field, on purpose; and the webhook
// may request its tokens only where a RoleBinding in that namespace lets it.
type ServiceAccountRef struct {
	Name string `json:"name"`
	// Audience of the requested tokens; sts.aliyuncs.com by default, the
	// client ID of the cluster's RRSA OIDC provider.
	Audience string `json:"audience,omitempty"`
}

func (r *ServiceAccountRef) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if r.Name == "" {
		errs = append(errs, field.Required(path.Child("name"), "the name of a ServiceAccount in the issuer's namespace"))
	} else if msgs := validation.IsDNS1123Subdomain(r.Name); len(msgs) > 0 {
		errs = append(errs, invalid(path.Child("name"), r.Name, strings.Join(msgs, "; ")))
	}
	if r.Audience != "" && (len(r.Audience) > 253 || strings.ContainsAny(r.Audience, " \t\r\n")) {
		errs = append(errs, invalid(path.Child("audience"), r.Audience, "an audience such as sts.aliyuncs.com: at most 253 characters, no spaces"))
	}
	return errs
}

// DefaultAliDNSTTL is the free edition's minimum TTL.
const DefaultAliDNSTTL = 600

var roleARNFormat = regexp.MustCompile(`^acs:ram::[0-9]+:role/[A-Za-z0-9._-]+$`)

// Validate reports every problem of the config with its field path.
func (c *AliDNSConfig) Validate() error {
	var errs field.ErrorList
	id, secret, token := field.NewPath("accessKeyIdSecretRef"), field.NewPath("accessKeySecretSecretRef"), field.NewPath("securityTokenSecretRef")
	switch {
	case c.AccessKeyIDSecretRef != nil && c.AccessKeySecretSecretRef == nil:
		errs = append(errs, field.Required(secret, "an AccessKey id needs its secret"))
	case c.AccessKeyIDSecretRef == nil && c.AccessKeySecretSecretRef != nil:
		errs = append(errs, field.Required(id, "an AccessKey secret needs its id"))
	}
	if c.SecurityTokenSecretRef != nil && (c.AccessKeyIDSecretRef == nil || c.AccessKeySecretSecretRef == nil) {
		errs = append(errs, field.Forbidden(token, "an STS token is used with the STS AccessKey id and secret (accessKeyIdSecretRef, accessKeySecretSecretRef)"))
	}
	for _, ref := range []struct {
		path *field.Path
		sel  *SecretKeySelector
	}{{id, c.AccessKeyIDSecretRef}, {secret, c.AccessKeySecretSecretRef}, {token, c.SecurityTokenSecretRef}} {
		if ref.sel != nil {
			errs = append(errs, ref.sel.validate(ref.path)...)
		}
	}
	if c.ServiceAccountRef != nil {
		sa := field.NewPath("serviceAccountRef")
		errs = append(errs, c.ServiceAccountRef.validate(sa)...)
		for _, ref := range []struct {
			path *field.Path
			sel  *SecretKeySelector
		}{{id, c.AccessKeyIDSecretRef}, {secret, c.AccessKeySecretSecretRef}, {token, c.SecurityTokenSecretRef}} {
			if ref.sel != nil {
				errs = append(errs, field.Forbidden(ref.path, "serviceAccountRef is the credential: an AccessKey is not used with it"))
			}
		}
		if c.RoleARN == "" {
			errs = append(errs, field.Required(field.NewPath("roleArn"), "serviceAccountRef's tokens are exchanged for a RAM role: the role whose trust policy admits the ServiceAccount"))
		}
	}
	if c.RoleARN != "" && !roleARNFormat.MatchString(c.RoleARN) {
		errs = append(errs, invalid(field.NewPath("roleArn"), c.RoleARN, "a RAM role ARN looks like acs:ram::<account id>:role/<role name>"))
	}
	if _, ok := alibaba.DNSRegionalHosts[c.RegionID]; !ok {
		errs = append(errs, field.NotSupported(field.NewPath("regionId"), input.Truncate(c.RegionID), append([]string{`"" (the central endpoint)`}, alibaba.Regions()...)))
	}
	if c.DomainName != "" {
		if name, err := dnsname.Normalize(c.DomainName); err != nil || len(validation.IsDNS1123Subdomain(name)) > 0 {
			errs = append(errs, invalid(field.NewPath("domainName"), c.DomainName, "must be a domain name such as example.com"))
		}
	}
	if c.TTL != nil && (*c.TTL < 1 || *c.TTL > 86400) {
		errs = append(errs, field.Invalid(field.NewPath("ttl"), *c.TTL, "must be 1–86400 seconds (600 is the free edition's minimum)"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid config: %w", errs.ToAggregate())
}

func (c *AliDNSConfig) ttl() int {
	if c.TTL == nil {
		return DefaultAliDNSTTL
	}
	return *c.TTL
}

// ParseAliDNSConfig decodes and validates an `alidns` solver's
// webhook.config exactly as the webhook does, with the same errors.
func ParseAliDNSConfig(raw *apiextensionsv1.JSON) (AliDNSConfig, error) {
	var cfg AliDNSConfig
	if err := decodeStrict(raw, &cfg); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// NewAliDNS returns the `alidns` solver; o are the operator's settings
// (process flags).
func NewAliDNS(so Options, o alibaba.Options) *Solver {
	p := &aliDNSProvider{opts: o, accounts: alibaba.NewDNSAccounts(o)}
	p.records.Max = maxRecordIDs
	return newSolver("alidns", p, so)
}

type aliDNSProvider struct {
	opts     alibaba.Options
	accounts *alibaba.DNSAccounts
	// records maps credential|domain|rr|value to the ID of a record this
	// process created.
	records cache.Map[string]
}

func (p *aliDNSProvider) checkConfig(raw *apiextensionsv1.JSON) error {
	_, err := ParseAliDNSConfig(raw)
	return err
}

func (p *aliDNSProvider) forRequest(ctx context.Context, ch *whapi.ChallengeRequest, secrets secretReader) (DNSProvider, error) {
	cfg, err := ParseAliDNSConfig(ch.Config)
	if err != nil {
		return nil, &configError{err}
	}
	cred, err := p.credential(ctx, ch, cfg, secrets)
	if err != nil {
		return nil, err
	}
	acct, err := p.accounts.For(cred, cfg.RegionID)
	if err != nil {
		return nil, fmt.Errorf("building the Alibaba Cloud client for %s: %w", cred.Describe(), err)
	}
	return &aliDNS{provider: p, account: acct, cfg: cfg, cred: cred, log: secrets.Log}, nil
}

// credential reads the AccessKey (or STS credentials) the config names, or,
// when it names none and cert-manager allows it, the ambient ones (F14).
func (p *aliDNSProvider) credential(ctx context.Context, ch *whapi.ChallengeRequest, cfg AliDNSConfig, secrets secretReader) (alibaba.Credential, error) {
	c := alibaba.Credential{RoleARN: cfg.RoleARN}
	if ref := cfg.ServiceAccountRef; ref != nil {
		// Not ambient: the issuer names the identity, in its own namespace.
		c.ServiceAccount = &alibaba.ServiceAccount{Namespace: ch.ResourceNamespace, Name: ref.Name, Audience: ref.Audience,
			Tokens: alibaba.KubeTokens(secrets.kube)}
		return c, nil
	}
	if cfg.AccessKeyIDSecretRef == nil {
		if !ch.AllowAmbientCredentials {
			return c, fmt.Errorf("no credentials: set accessKeyIdSecretRef and accessKeySecretSecretRef to a Secret in namespace %q. "+
				"Ambient credentials (RRSA on ACK, or the ECS instance's RAM role) are used only when cert-manager allows them for the issuer: "+
				"by default for ClusterIssuers only (cert-manager's --cluster-issuer-ambient-credentials; --issuer-ambient-credentials turns them on for namespaced Issuers)",
				ch.ResourceNamespace)
		}
		var err error
		c.Ambient, err = alibaba.AmbientFromEnv(p.opts.Getenv)
		return c, err
	}
	id, err := secrets.read(ctx, ch.ResourceNamespace, *cfg.AccessKeyIDSecretRef, "accessKeyIdSecretRef")
	if err != nil {
		return c, err
	}
	secret, err := secrets.read(ctx, ch.ResourceNamespace, *cfg.AccessKeySecretSecretRef, "accessKeySecretSecretRef")
	if err != nil {
		return c, err
	}
	c.AccessKeyID, c.IDSource, c.AccessKeySecret, c.SecretSource = id.Value, id.String(), secret.Value, secret.String()
	if cfg.SecurityTokenSecretRef != nil {
		token, err := secrets.read(ctx, ch.ResourceNamespace, *cfg.SecurityTokenSecretRef, "securityTokenSecretRef")
		if err != nil {
			return c, err
		}
		c.SecurityToken, c.TokenSource = token.Value, token.String()
	}
	return c, nil
}

// aliDNS is the DNSProvider for one request.
type aliDNS struct {
	provider *aliDNSProvider
	account  *alibaba.DNSAccount
	cfg      AliDNSConfig
	cred     alibaba.Credential
	log      logr.Logger
}

var _ DNSProvider = (*aliDNS)(nil)

func (d *aliDNS) recordKey(domain, rr, value string) string {
	return d.cred.Hash(d.cfg.RegionID) + "|" + domain + "|" + rr + "|" + value
}

// PresentTXT adds the record: one AddDomainRecord once the domain is known.
func (d *aliDNS) PresentTXT(ctx context.Context, fqdn, value string) error {
	dom, err := d.domain(ctx, fqdn)
	if err != nil {
		return err
	}
	ttl := d.cfg.ttl()
	if ttl < dom.MinTTL {
		d.raisedTTL(dom, ttl)
		ttl = dom.MinTTL
	}
	rr := dnsname.Relative(fqdn, dom.Name)
	id, err := d.account.Client.AddTXT(ctx, dom.Name, rr, value, ttl)
	if e, ok := alibaba.As(err); ok && e.Reason == alibaba.InvalidTTL && e.MinTTL > ttl {
		// The edition's minimum was not known (or changed): take it from
		// the answer, remember it and try once more.
		d.raisedTTL(alibaba.Domain{Name: dom.Name, MinTTL: e.MinTTL}, ttl)
		dom.MinTTL, ttl = e.MinTTL, e.MinTTL
		d.account.Domains.Learn(dom)
		id, err = d.account.Client.AddTXT(ctx, dom.Name, rr, value, ttl)
	}
	switch {
	case alibaba.Is(err, alibaba.Duplicate):
		return nil // already there: Present is idempotent
	case err != nil:
		return d.explain(err, dnsname.Display(dom.Name))
	}
	d.provider.records.Put(d.recordKey(dom.Name, rr, value), id)
	return nil
}

func (d *aliDNS) raisedTTL(dom alibaba.Domain, ttl int) {
	d.log.Info("TTL is below the domain edition's minimum; using the minimum", "domain", dom.Name, "ttl", ttl, "minimum", dom.MinTTL)
}

// CleanUpTXT deletes the records at fqdn holding exactly value.
func (d *aliDNS) CleanUpTXT(ctx context.Context, fqdn, value string) error {
	dom, err := d.domain(ctx, fqdn)
	if err != nil {
		return err
	}
	rr := dnsname.Relative(fqdn, dom.Name)
	if id, ok := d.provider.records.Take(d.recordKey(dom.Name, rr, value)); ok {
		return d.delete(ctx, id, dom.Name)
	}
	records, err := d.account.Client.ListTXT(ctx, dom.Name, fqdn)
	if err != nil {
		return d.explain(err, dnsname.Display(dom.Name))
	}
	var errs []error
	for _, r := range records {
		if r.Value == value && strings.EqualFold(r.RR, rr) {
			errs = append(errs, d.delete(ctx, r.ID, dom.Name))
		}
	}
	return errors.Join(errs...)
}

func (d *aliDNS) delete(ctx context.Context, id, domain string) error {
	err := d.account.Client.DeleteRecord(ctx, id)
	if err == nil || alibaba.Is(err, alibaba.RecordNotFound) {
		return nil // gone already
	}
	return d.explain(err, dnsname.Display(domain))
}

// domain resolves fqdn's domain by the contract of internal/alibaba.
func (d *aliDNS) domain(ctx context.Context, fqdn string) (alibaba.Domain, error) {
	dom, err := d.account.Domains.Resolve(ctx, alibaba.DomainQuery{Name: fqdn, DomainName: d.cfg.DomainName})
	var nd *alibaba.NoDomainError
	switch {
	case errors.As(err, &nd):
		via := ""
		if d.cfg.DomainName != "" {
			via = " (from domainName)"
		}
		return dom, &noZoneError{cause: nd, msg: fmt.Sprintf("no domain found for %s%s: none of these is a domain in the Alibaba Cloud DNS account of %s. "+
			"Add the domain to Alibaba Cloud DNS in that account, or set domainName to the domain as registered there",
			dnsname.JoinTried(nd.Tried), via, d.cred.Describe())}
	case err != nil:
		return dom, d.explain(err, dnsname.JoinTried(dnsname.Parents(fqdn)))
	}
	return dom, nil
}

// explain words an API failure as what to change (F13), naming where the
// credential came from but never its secret.
func (d *aliDNS) explain(err error, domain string) error {
	if sa := d.cred.ServiceAccount; sa != nil {
		if p, ok := alibaba.ServiceAccountProblem(err, *sa, d.cred.RoleARN, d.provider.opts, "the webhook"); ok {
			return explainf(err, "serviceAccountRef: %s; %s", p.Detail, p.Fix)
		}
	}
	e, ok := alibaba.As(err)
	if !ok {
		return err
	}
	action, src, quote := e.Action, d.cred.Describe(), e.Quote()
	switch e.Reason {
	case alibaba.Unreachable:
		if e.TimedOut() {
			return explainf(err, "%s: no answer from Alibaba Cloud DNS at %s within the request's deadline; cert-manager will retry", action, e.Endpoint)
		}
		return explainf(err, "%s: cannot reach Alibaba Cloud DNS: %s", action, quote)
	case alibaba.Throttled, alibaba.Busy, alibaba.Transient:
		return explainf(err, "%s: Alibaba Cloud kept refusing the request (%s) until the request's deadline; cert-manager will retry", action, quote)
	case alibaba.AccessKeyUnknown:
		return explainf(err, "%s: Alibaba Cloud does not know the AccessKey id %s from %s (%s): check the id, and that the AccessKey was not deleted",
			action, d.cred.MaskedID(), d.cred.IDSource, e.Code)
	case alibaba.AccessKeyDisabled:
		return explainf(err, "%s: the AccessKey %s from %s is disabled (%s): enable it in the RAM console or create a new one", action, d.cred.MaskedID(), d.cred.IDSource, e.Code)
	case alibaba.SecretMismatch:
		return explainf(err, "%s: the AccessKey secret from %s does not belong to AccessKey %s (%s): put the AccessKey's own secret in that Secret",
			action, d.cred.SecretSource, d.cred.MaskedID(), e.Code)
	case alibaba.TokenRejected:
		return explainf(err, "%s: the STS token from %s was refused (%s): STS tokens expire; issue a new one, or use an AccessKey or a role (roleArn) instead",
			action, d.cred.TokenSource, quote)
	case alibaba.ClockSkew:
		return explainf(err, "%s: Alibaba Cloud refused the request's timestamp (%s): the webhook's clock is more than 15 minutes off; synchronise the node's clock (NTP)", action, e.Code)
	case alibaba.PermissionMissing:
		return explainf(err, "%s: the RAM policy of %s does not allow alidns:%s on domain %s (%s): grant the RAM actions alidns:DescribeDomainInfo, alidns:AddDomainRecord, alidns:DescribeSubDomainRecords and alidns:DeleteDomainRecord",
			action, src, action, domain, e.Code)
	case alibaba.DomainNotFound:
		return &noZoneError{cause: err, msg: fmt.Sprintf("%s: domain %s is not in the Alibaba Cloud DNS account of %s (%s): add it there, or set domainName", action, domain, src, e.Code)}
	case alibaba.InvalidTTL:
		return explainf(err, "%s: Alibaba Cloud refused the TTL for domain %s (%s); set ttl within that range", action, domain, quote)
	case alibaba.CredentialsUnavailable:
		return explainf(err, "%s: getting credentials for %s failed (%s)", action, src, quote)
	}
	return explainf(err, "%s: Alibaba Cloud refused the request for domain %s (%s)", action, domain, quote)
}
