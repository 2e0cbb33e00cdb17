package solver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/alisdk"
	"github.com/certbridge/certbridge/internal/metrics"
)

// AliDNSConfig is the `alidns` solver's webhook.config.
type AliDNSConfig struct {
	// AccessKeyIDSecretRef and AccessKeySecretSecretRef are a RAM user's
	// AccessKey pair (or STS credentials with SecurityTokenSecretRef).
	AccessKeyIDSecretRef     *SecretKeySelector `json:"accessKeyIdSecretRef,omitempty"`
	AccessKeySecretSecretRef *SecretKeySelector `json:"accessKeySecretSecretRef,omitempty"`
	SecurityTokenSecretRef   *SecretKeySelector `json:"securityTokenSecretRef,omitempty"`
	// RoleARN is a RAM role to assume from the credentials above, or from the
	// ambient ones (RRSA or the ECS RAM role).
	RoleARN string `json:"roleArn,omitempty"`
	// RegionID selects the service's regional endpoint; empty means the
	// central endpoint alidns.aliyuncs.com.
	RegionID string `json:"regionId,omitempty"`
	// DomainName overrides the lookup of the domain as registered in Alibaba
	// Cloud DNS.
	DomainName string `json:"domainName,omitempty"`
	// TTL of the TXT record; raised to the domain edition's minimum if lower.
	TTL *int `json:"ttl,omitempty"`
}

// DefaultAliDNSTTL is the free edition's minimum TTL.
const DefaultAliDNSTTL = 600

// AliDNSEndpoints are the service's known endpoints by regionId.
var AliDNSEndpoints = map[string]string{
	"":               "alidns.aliyuncs.com",
	"cn-hangzhou":    "alidns.cn-hangzhou.aliyuncs.com",
	"ap-southeast-1": "alidns.ap-southeast-1.aliyuncs.com",
	"ap-northeast-1": "alidns.ap-northeast-1.aliyuncs.com",
	"eu-central-1":   "alidns.eu-central-1.aliyuncs.com",
	"us-east-1":      "alidns.us-east-1.aliyuncs.com",
}

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
	for path, ref := range map[*field.Path]*SecretKeySelector{id: c.AccessKeyIDSecretRef, secret: c.AccessKeySecretSecretRef, token: c.SecurityTokenSecretRef} {
		if ref != nil {
			errs = append(errs, ref.validate(path)...)
		}
	}
	if c.RoleARN != "" && !roleARNFormat.MatchString(c.RoleARN) {
		errs = append(errs, field.Invalid(field.NewPath("roleArn"), c.RoleARN, "a RAM role ARN looks like acs:ram::<account id>:role/<role name>"))
	}
	if _, ok := AliDNSEndpoints[c.RegionID]; !ok {
		known := make([]string, 0, len(AliDNSEndpoints))
		for r := range AliDNSEndpoints {
			if r != "" {
				known = append(known, r)
			}
		}
		sort.Strings(known)
		errs = append(errs, field.NotSupported(field.NewPath("regionId"), c.RegionID, append([]string{`"" (the central endpoint)`}, known...)))
	}
	if c.DomainName != "" {
		if msgs := validation.IsDNS1123Subdomain(canonical(c.DomainName)); len(msgs) > 0 {
			errs = append(errs, field.Invalid(field.NewPath("domainName"), c.DomainName, "must be a domain name such as example.com"))
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

// AliDNSOptions are the operator's settings of the alidns solver: process
// flags, never an Issuer's config.
type AliDNSOptions struct {
	// Endpoint replaces the regional endpoint, for tests and private
	// endpoints: host[:port] (HTTPS) or a URL with http:// or https://.
	Endpoint string
	// STSEndpoint is where RRSA and role assumption get credentials
	// (host[:port], always HTTPS); sts.aliyuncs.com by default.
	STSEndpoint string
	// Environ reads the process environment for ambient credentials (RRSA);
	// os.Getenv by default. It is consulted only when a request allows
	// ambient credentials.
	Environ func(string) string
	// Quotas are the client-side budgets per action, in requests per
	// second per credential; nil means AliDNSQuotas.
	Quotas map[string]int
}

// AliDNSQuotas are the documented per-action QPS limits (API-REFERENCE §B.1).
// DescribeDomainInfo has no documented quota; it gets DescribeDomainRecords'.
var AliDNSQuotas = map[string]int{
	"DescribeSubDomainRecords": 300,
	"AddDomainRecord":          60,
	"DeleteDomainRecord":       60,
	"DescribeDomainInfo":       100,
}

// NewAliDNS returns the `alidns` solver.
func NewAliDNS(o Options, opts AliDNSOptions) *Solver {
	if opts.STSEndpoint == "" {
		opts.STSEndpoint = "sts.aliyuncs.com"
	}
	if opts.Environ == nil {
		opts.Environ = os.Getenv
	}
	if opts.Quotas == nil {
		opts.Quotas = AliDNSQuotas
	}
	return newSolver("alidns", &aliDNSProvider{opts: opts}, o)
}

type aliDNSProvider struct {
	opts     AliDNSOptions
	accounts cache[*aliDNSAccount]
}

// aliCredential says where a request's credentials come from.
type aliCredential struct {
	kind    string // "AccessKey", "STS" or "ambient"
	id      credential
	secret  credential
	token   credential
	roleARN string
	ambient ambientCredential
}

// ambientCredential is what the webhook's own environment offers: RRSA on
// ACK when its three variables are set, else the ECS instance's RAM role.
type ambientCredential struct {
	roleARN, oidcProviderARN, oidcTokenFile string
}

func (a ambientCredential) rrsa() bool { return a.roleARN != "" }

func (c aliCredential) hash(region string) string {
	h := sha256.New()
	for _, v := range []string{c.kind, c.id.Value, c.secret.Value, c.token.Value, c.roleARN,
		c.ambient.roleARN, c.ambient.oidcProviderARN, c.ambient.oidcTokenFile, region} {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// maskedID shows an AccessKey id as its first four characters only.
func (c aliCredential) maskedID() string {
	if c.kind == "ambient" {
		return "(ambient credentials)"
	}
	v := c.id.Value
	if len(v) > 4 {
		v = v[:4]
	}
	return v + "****"
}

// describe names the credential's source for messages.
func (c aliCredential) describe() string {
	switch {
	case c.kind == "ambient" && c.ambient.rrsa():
		s := "RRSA (role " + c.ambient.roleARN + ")"
		if c.roleARN != "" {
			s += ", then role " + c.roleARN
		}
		return s
	case c.kind == "ambient":
		s := "the ECS instance's RAM role"
		if c.roleARN != "" {
			s += ", then role " + c.roleARN
		}
		return s
	}
	s := fmt.Sprintf("AccessKey %s from %s", c.maskedID(), c.id)
	if c.roleARN != "" {
		s += ", assuming role " + c.roleARN
	}
	return s
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

func (p *aliDNSProvider) forRequest(ctx context.Context, ch *whapi.ChallengeRequest, secrets secretReader) (DNSProvider, error) {
	cfg, err := ParseAliDNSConfig(ch.Config)
	if err != nil {
		return nil, &configError{err}
	}
	cred, err := p.credential(ctx, ch, cfg, secrets)
	if err != nil {
		return nil, err
	}
	acct, err := p.account(cred, cfg.RegionID)
	if err != nil {
		return nil, err
	}
	return &aliDNS{account: acct, cfg: cfg, cred: cred, log: secrets.Log}, nil
}

func (p *aliDNSProvider) credential(ctx context.Context, ch *whapi.ChallengeRequest, cfg AliDNSConfig, secrets secretReader) (aliCredential, error) {
	var c aliCredential
	c.roleARN = cfg.RoleARN
	if cfg.AccessKeyIDSecretRef == nil {
		if !ch.AllowAmbientCredentials {
			return c, fmt.Errorf("no credentials: set accessKeyIdSecretRef and accessKeySecretSecretRef to a Secret in namespace %q. "+
				"Ambient credentials (RRSA on ACK, or the ECS instance's RAM role) are used only when cert-manager allows them for the issuer: "+
				"by default for ClusterIssuers only (cert-manager's --cluster-issuer-ambient-credentials; --issuer-ambient-credentials turns them on for namespaced Issuers)",
				ch.ResourceNamespace)
		}
		env := p.opts.Environ
		c.kind = "ambient"
		c.ambient = ambientCredential{
			roleARN:         env("ALIBABA_CLOUD_ROLE_ARN"),
			oidcProviderARN: env("ALIBABA_CLOUD_OIDC_PROVIDER_ARN"),
			oidcTokenFile:   env("ALIBABA_CLOUD_OIDC_TOKEN_FILE"),
		}
		if c.ambient.rrsa() && (c.ambient.oidcProviderARN == "" || c.ambient.oidcTokenFile == "") {
			return c, errors.New("ambient credentials: ALIBABA_CLOUD_ROLE_ARN is set but ALIBABA_CLOUD_OIDC_PROVIDER_ARN or ALIBABA_CLOUD_OIDC_TOKEN_FILE is not; enable RRSA for the webhook's ServiceAccount (ack-pod-identity-webhook sets all three)")
		}
		return c, nil
	}
	var err error
	c.kind = "AccessKey"
	if c.id, err = secrets.read(ctx, ch.ResourceNamespace, *cfg.AccessKeyIDSecretRef, "accessKeyIdSecretRef"); err != nil {
		return c, err
	}
	if c.secret, err = secrets.read(ctx, ch.ResourceNamespace, *cfg.AccessKeySecretSecretRef, "accessKeySecretSecretRef"); err != nil {
		return c, err
	}
	if cfg.SecurityTokenSecretRef != nil {
		c.kind = "STS"
		if c.token, err = secrets.read(ctx, ch.ResourceNamespace, *cfg.SecurityTokenSecretRef, "securityTokenSecretRef"); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (p *aliDNSProvider) account(cred aliCredential, region string) (*aliDNSAccount, error) {
	var buildErr error
	acct := p.accounts.getOrCreate(cred.hash(region), maxCachedAccounts, func() *aliDNSAccount {
		api, err := newAliDNSAPI(p.opts, cred, region)
		if err != nil {
			buildErr = err
			return nil
		}
		budgets := map[string]*budget{}
		for action, qps := range p.opts.Quotas {
			budgets[action] = newBudget(qps, time.Second)
		}
		return &aliDNSAccount{api: api, budgets: budgets}
	})
	if acct == nil {
		p.accounts.deleteWhere(func(a *aliDNSAccount) bool { return a == nil })
		return nil, fmt.Errorf("building the Alibaba Cloud client for %s: %w", cred.describe(), buildErr)
	}
	return acct, nil
}

// aliDNSAccount is what is kept per credential.
type aliDNSAccount struct {
	api     aliDNSAPI
	budgets map[string]*budget
	// domains caches lookups: "name:<domain>" and "fqdn:<fqdn>".
	domains cache[aliDomain]
	// records maps domain|fqdn|value to the ID of a record this process created.
	records cache[string]
}

type aliDomain struct {
	name   string
	minTTL int
}

// aliDNS is the DNSProvider for one request.
type aliDNS struct {
	account *aliDNSAccount
	cfg     AliDNSConfig
	cred    aliCredential
	log     logr.Logger
}

var _ DNSProvider = (*aliDNS)(nil)

// call runs one API action: within the action's budget, retrying throttling
// and LastOperationNotFinished with backoff until ctx's deadline.
func (d *aliDNS) call(ctx context.Context, action string, do func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		waitStart := time.Now()
		release, err := d.account.budgets[action].acquire(ctx)
		metrics.RateLimitWait.WithLabelValues("alidns").Add(time.Since(waitStart).Seconds())
		if err != nil {
			return err
		}
		start := time.Now()
		err = do(ctx)
		release()
		metrics.ObserveCall("alidns", action, aliOutcome(err), alisdk.Code(err), time.Since(start))
		if err == nil || !alisdk.Retryable(err) {
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

// aliOutcome is the HTTP status of an answer, or "error" without one.
func aliOutcome(err error) string {
	var se *sdkerrors.ServerError
	switch {
	case err == nil:
		return "200"
	case errors.As(err, &se):
		return strconv.Itoa(se.HttpStatus())
	default:
		return "error"
	}
}

// rr is the record's name relative to the domain ("@" for the apex).
func rr(fqdn, domain string) string {
	name := canonical(fqdn)
	if name == domain {
		return "@"
	}
	return strings.TrimSuffix(name, "."+domain)
}

// PresentTXT adds the record: one AddDomainRecord once the domain is known.
func (d *aliDNS) PresentTXT(ctx context.Context, zone, fqdn, value string) error {
	dom, err := d.domain(ctx, zone, fqdn)
	if err != nil {
		return err
	}
	ttl := d.cfg.ttl()
	if ttl < dom.minTTL {
		d.raisedTTL(dom, ttl)
		ttl = dom.minTTL
	}
	name := rr(fqdn, dom.name)
	var id string
	add := func(ctx context.Context) (err error) {
		id, err = d.account.api.addTXT(ctx, dom.name, name, value, ttl)
		return err
	}
	err = d.call(ctx, "AddDomainRecord", add)
	if alisdk.Code(err) == "QuotaExceeded.TTL" {
		// The edition's minimum was not known (or changed): take it from
		// the answer, remember it and try once more.
		if m, ok := minTTLFrom(err); ok && m > ttl {
			d.raisedTTL(dom, ttl)
			dom.minTTL, ttl = m, m
			d.account.domains.put("name:"+dom.name, dom)
			err = d.call(ctx, "AddDomainRecord", add)
		}
	}
	switch {
	case alisdk.Code(err) == "DomainRecordDuplicate":
		return nil // already there: Present is idempotent
	case err != nil:
		return d.explain(err, "AddDomainRecord", dom.name)
	}
	d.account.records.put(dom.name+"|"+name+"|"+value, id)
	return nil
}

func (d *aliDNS) raisedTTL(dom aliDomain, ttl int) {
	d.log.Info("TTL is below the domain edition's minimum; using the minimum", "domain", dom.name, "ttl", ttl, "minimum", dom.minTTL)
}

var minTTLMessage = regexp.MustCompile(`range of (\d+) to`)

func minTTLFrom(err error) (int, bool) {
	m := minTTLMessage.FindStringSubmatch(alisdk.Message(err))
	if m == nil {
		return 0, false
	}
	n, convErr := strconv.Atoi(m[1])
	return n, convErr == nil
}

// CleanUpTXT deletes the records at fqdn holding exactly value.
func (d *aliDNS) CleanUpTXT(ctx context.Context, zone, fqdn, value string) error {
	dom, err := d.domain(ctx, zone, fqdn)
	if err != nil {
		return err
	}
	name := rr(fqdn, dom.name)
	if id, ok := d.account.records.take(dom.name + "|" + name + "|" + value); ok {
		return d.delete(ctx, id, dom.name)
	}
	var records []aliRecord
	err = d.call(ctx, "DescribeSubDomainRecords", func(ctx context.Context) (err error) {
		records, err = d.account.api.listTXT(ctx, dom.name, canonical(fqdn))
		return err
	})
	if err != nil {
		return d.explain(err, "DescribeSubDomainRecords", dom.name)
	}
	var errs []error
	for _, r := range records {
		if r.value == value && strings.EqualFold(r.rr, name) {
			errs = append(errs, d.delete(ctx, r.id, dom.name))
		}
	}
	return errors.Join(errs...)
}

func (d *aliDNS) delete(ctx context.Context, id, domain string) error {
	err := d.call(ctx, "DeleteDomainRecord", func(ctx context.Context) error { return d.account.api.deleteRecord(ctx, id) })
	if err == nil || alisdk.Code(err) == "DomainRecordNotBelongToUser" {
		return nil // gone already
	}
	return d.explain(err, "DeleteDomainRecord", domain)
}

// domain finds the domain holding fqdn: the configured domainName, else
// cert-manager's resolved zone, else the nearest parent of fqdn in the account.
func (d *aliDNS) domain(ctx context.Context, zone, fqdn string) (aliDomain, error) {
	var candidates []string
	if d.cfg.DomainName != "" {
		candidates = []string{canonical(d.cfg.DomainName)}
	} else {
		if dom, ok := d.account.domains.get("fqdn:" + canonical(fqdn)); ok {
			return dom, nil
		}
		candidates = zoneCandidates(zone, fqdn)
	}
	for _, name := range candidates {
		if dom, ok := d.account.domains.get("name:" + name); ok {
			d.account.domains.put("fqdn:"+canonical(fqdn), dom)
			return dom, nil
		}
		var minTTL int
		var found bool
		err := d.call(ctx, "DescribeDomainInfo", func(ctx context.Context) (err error) {
			found, minTTL, err = d.account.api.domainInfo(ctx, name)
			return err
		})
		if err != nil {
			return aliDomain{}, d.explain(err, "DescribeDomainInfo", name)
		}
		if found {
			dom := aliDomain{name: name, minTTL: minTTL}
			d.account.domains.put("name:"+name, dom)
			d.account.domains.put("fqdn:"+canonical(fqdn), dom)
			return dom, nil
		}
	}
	via := ""
	if d.cfg.DomainName != "" {
		via = " (from domainName)"
	}
	return aliDomain{}, &noZoneError{fmt.Sprintf("no domain found for %s%s: none of these is a domain in the Alibaba Cloud DNS account of %s. "+
		"Add the domain to Alibaba Cloud DNS in that account, or set domainName to the domain as registered there",
		strings.Join(candidates, ", "), via, d.cred.describe())}
}

// explain turns an API failure into what to change (F13), naming where the
// credential came from but never its secret.
func (d *aliDNS) explain(err error, action, domain string) error {
	var budgetErr *budgetExhaustedError
	if errors.As(err, &budgetErr) {
		return fmt.Errorf("%s: %w; cert-manager will retry the challenge later", action, budgetErr)
	}
	c := alisdk.Code(err)
	src := d.cred.describe()
	switch {
	case c == "":
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: no answer from Alibaba Cloud DNS within the request's deadline; cert-manager will retry", action)
		}
		return fmt.Errorf("%s: cannot reach Alibaba Cloud: %s", action, sanitize(err, d.cred))
	case c == "InvalidAccessKeyId.NotFound":
		return fmt.Errorf("%s: Alibaba Cloud does not know the AccessKey id %s from %s (%s): check the id, and that the AccessKey was not deleted",
			action, d.cred.maskedID(), d.cred.id, c)
	case c == "InvalidAccessKeyId.Inactive":
		return fmt.Errorf("%s: the AccessKey %s from %s is disabled (%s): enable it in the RAM console or create a new one", action, d.cred.maskedID(), d.cred.id, c)
	case c == "SignatureDoesNotMatch" || c == "IncompleteSignature":
		return fmt.Errorf("%s: the AccessKey secret from %s does not belong to AccessKey %s (%s): put the AccessKey's own secret in that Secret",
			action, d.cred.secret, d.cred.maskedID(), c)
	case strings.HasPrefix(c, "InvalidSecurityToken"):
		return fmt.Errorf("%s: the STS token from %s was refused (%s: %s): STS tokens expire; issue a new one, or use an AccessKey or a role (roleArn) instead",
			action, d.cred.token, c, alisdk.Message(err))
	case c == "InvalidTimeStamp.Expired":
		return fmt.Errorf("%s: Alibaba Cloud refused the request's timestamp (%s): the webhook's clock is more than 15 minutes off; synchronise the node's clock (NTP)", action, c)
	case c == "Forbidden.RAM" || c == "Forbidden" || c == "NoPermission":
		return fmt.Errorf("%s: the RAM policy of %s does not allow alidns:%s on domain %s (%s): grant the RAM actions alidns:DescribeDomainInfo, alidns:AddDomainRecord, alidns:DescribeSubDomainRecords and alidns:DeleteDomainRecord",
			action, src, action, domain, c)
	case c == "InvalidDomainName.NoExist" || c == "IncorrectDomainUser":
		return fmt.Errorf("%s: domain %s is not in the Alibaba Cloud DNS account of %s (%s): add it there, or set domainName", action, domain, src, c)
	case c == "QuotaExceeded.TTL":
		return fmt.Errorf("%s: Alibaba Cloud refused the TTL for domain %s (%s: %s); set ttl within that range", action, domain, c, alisdk.Message(err))
	case alisdk.Retryable(err):
		return fmt.Errorf("%s: Alibaba Cloud kept refusing the request (%s: %s) until the request's deadline; cert-manager will retry", action, c, alisdk.Message(err))
	case strings.HasPrefix(c, "AuthenticationFail") || strings.Contains(alisdk.Message(err), "refresh session token failed"):
		return fmt.Errorf("%s: getting credentials for %s failed (%s: %s)", action, src, c, alisdk.Message(err))
	default:
		return fmt.Errorf("%s: Alibaba Cloud refused the request for domain %s (%s: %s)", action, domain, c, alisdk.Message(err))
	}
}

// sanitize renders a transport error without any credential in it: the SDK's
// request URL carries the AccessKey id and, for STS, the security token.
func sanitize(err error, c aliCredential) string {
	s := err.Error()
	for _, v := range []string{c.secret.Value, c.token.Value, c.id.Value} {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	if i := strings.Index(s, "?"); i >= 0 {
		if j := strings.IndexAny(s[i:], "\" "); j >= 0 {
			s = s[:i] + s[i+j:]
		} else {
			s = s[:i]
		}
	}
	return s
}
