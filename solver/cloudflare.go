package solver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/cache"
	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/dnsname"
	"github.com/certbridge/certbridge/internal/dnstxt"
	"github.com/certbridge/certbridge/internal/input"
)

// CloudflareConfig is the `cloudflare` solver's webhook.config. Its credential
// fields have the names of cert-manager's in-tree `cloudflare:` stanza, so
// that stanza moves under webhook.config unchanged.
type CloudflareConfig struct {
	// APITokenSecretRef is an API token with Zone → Zone → Read and
	// Zone → DNS → Edit. Preferred.
	APITokenSecretRef *SecretKeySelector `json:"apiTokenSecretRef,omitempty"`
	// APIKeySecretRef is a Global API Key; it needs Email.
	APIKeySecretRef *SecretKeySelector `json:"apiKeySecretRef,omitempty"`
	// Email is the account's email, used with APIKeySecretRef.
	Email string `json:"email,omitempty"`
	// ZoneName overrides the zone lookup, for `_acme-challenge` names
	// CNAME-delegated to another zone and for split-horizon DNS.
	ZoneName string `json:"zoneName,omitempty"`
	// ZoneID skips the zone lookup altogether.
	ZoneID string `json:"zoneID,omitempty"`
	// TTL of the TXT record in seconds; 1 means automatic.
	TTL *int `json:"ttl,omitempty"`
}

// DefaultCloudflareTTL is the lowest TTL Cloudflare allows below Enterprise.
const DefaultCloudflareTTL = 60

var zoneIDFormat = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Validate reports every problem of the config with its field path.
func (c *CloudflareConfig) Validate() error {
	var errs field.ErrorList
	token, key := field.NewPath("apiTokenSecretRef"), field.NewPath("apiKeySecretRef")
	switch {
	case c.APITokenSecretRef != nil && c.APIKeySecretRef != nil:
		errs = append(errs, field.Forbidden(key, "set either apiTokenSecretRef (an API token, preferred) or apiKeySecretRef with email (a Global API Key), not both"))
	case c.APITokenSecretRef == nil && c.APIKeySecretRef == nil:
		errs = append(errs, field.Required(token, "set apiTokenSecretRef (an API token with Zone → Zone → Read and Zone → DNS → Edit) or apiKeySecretRef with email (a Global API Key)"))
	}
	if c.APITokenSecretRef != nil {
		errs = append(errs, c.APITokenSecretRef.validate(token)...)
	}
	if c.APIKeySecretRef != nil {
		errs = append(errs, c.APIKeySecretRef.validate(key)...)
		if c.Email == "" {
			errs = append(errs, field.Required(field.NewPath("email"), "a Global API Key (apiKeySecretRef) is used together with the email of its Cloudflare account"))
		}
	}
	if c.ZoneName != "" && c.ZoneID != "" {
		errs = append(errs, field.Forbidden(field.NewPath("zoneID"), "set zoneName or zoneID, not both"))
	}
	if c.ZoneID != "" && !zoneIDFormat.MatchString(c.ZoneID) {
		errs = append(errs, invalid(field.NewPath("zoneID"), c.ZoneID, "a Cloudflare zone ID is 32 lower-case hex characters (dashboard: the zone's Overview page, API section)"))
	}
	if c.ZoneName != "" {
		if name, err := dnsname.Normalize(c.ZoneName); err != nil || len(validation.IsDNS1123Subdomain(name)) > 0 {
			errs = append(errs, invalid(field.NewPath("zoneName"), c.ZoneName, "must be a DNS name such as example.com"))
		}
	}
	if c.TTL != nil && *c.TTL != 1 && (*c.TTL < 30 || *c.TTL > 86400) {
		errs = append(errs, field.Invalid(field.NewPath("ttl"), *c.TTL, "must be 1 (automatic) or 60–86400 seconds (30–86400 on Enterprise zones)"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid config: %w", errs.ToAggregate())
}

func (c *CloudflareConfig) ttl() int {
	if c.TTL == nil {
		return DefaultCloudflareTTL
	}
	return *c.TTL
}

// ParseCloudflareConfig decodes and validates a `cloudflare` solver's
// webhook.config exactly as the webhook does, with the same errors (unknown
// fields with "did you mean", invalid fields with their paths).
func ParseCloudflareConfig(raw *apiextensionsv1.JSON) (CloudflareConfig, error) {
	var cfg CloudflareConfig
	if err := decodeStrict(raw, &cfg); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// cloudflareCredential reads the credential a config names from namespace:
// an API token, or a Global API Key with its email.
func cloudflareCredential(ctx context.Context, secrets secretReader, namespace string, cfg CloudflareConfig) (cloudflare.Credential, error) {
	if cfg.APITokenSecretRef != nil {
		v, err := secrets.Read(ctx, namespace, cfg.APITokenSecretRef.Name, cfg.APITokenSecretRef.Key, "apiTokenSecretRef")
		return cloudflare.Credential{Token: v.Value, Source: v.String()}, err
	}
	v, err := secrets.Read(ctx, namespace, cfg.APIKeySecretRef.Name, cfg.APIKeySecretRef.Key, "apiKeySecretRef")
	return cloudflare.Credential{Key: v.Value, Email: strings.TrimSpace(cfg.Email), Source: v.String()}, err
}

// NewCloudflare returns the `cloudflare` solver; o are the operator's
// settings (process flags).
func NewCloudflare(so Options, o cloudflare.Options) *Solver {
	p := &cloudflareProvider{accounts: cloudflare.NewAccounts(o)}
	p.records.Max = maxRecordIDs
	return newSolver("cloudflare", p, so)
}

type cloudflareProvider struct {
	accounts *cloudflare.Accounts
	// records maps credential|zone|name|value to the ID of a record this
	// process created, so CleanUp can skip the lookup.
	records cache.Map[string]
}

// maxRecordIDs bounds the record IDs kept: a CleanUp that never comes (a
// replica died) must not grow the process. A forgotten ID costs one list.
const maxRecordIDs = 16384

func (p *cloudflareProvider) checkConfig(raw *apiextensionsv1.JSON) error {
	_, err := ParseCloudflareConfig(raw)
	return err
}

func (p *cloudflareProvider) forRequest(ctx context.Context, ch *whapi.ChallengeRequest, secrets secretReader) (DNSProvider, error) {
	cfg, err := ParseCloudflareConfig(ch.Config)
	if err != nil {
		return nil, &configError{err}
	}
	cred, err := cloudflareCredential(ctx, secrets, ch.ResourceNamespace, cfg)
	if err != nil {
		return nil, err
	}
	return &cloudflareDNS{provider: p, account: p.accounts.For(cred), cfg: cfg, cred: cred}, nil
}

// cloudflareDNS is the DNSProvider for one request: a credential's account
// with the request's config.
type cloudflareDNS struct {
	provider *cloudflareProvider
	account  *cloudflare.Account
	cfg      CloudflareConfig
	cred     cloudflare.Credential
}

var _ DNSProvider = (*cloudflareDNS)(nil)

func (d *cloudflareDNS) recordKey(zoneID, name, value string) string {
	return d.cred.Hash() + "|" + zoneID + "|" + name + "|" + value
}

// PresentTXT creates the record: one API call once the zone is known.
func (d *cloudflareDNS) PresentTXT(ctx context.Context, fqdn, value string) error {
	z, err := d.zone(ctx, fqdn)
	if err != nil {
		return err
	}
	record := cloudflare.TXTRecord{Name: fqdn, Content: dnstxt.Quote(value), TTL: d.cfg.ttl(), Comment: recordComment}
	rec, err := d.account.Batch.Create(ctx, z.ID, record)
	if d.staleZone(z, err) {
		if z, err = d.zone(ctx, fqdn); err != nil {
			return err
		}
		rec, err = d.account.Batch.Create(ctx, z.ID, record)
	}
	switch {
	case cloudflare.Is(err, cloudflare.Duplicate):
		return nil // the record is there already: Present is idempotent
	case err != nil:
		return d.explain(err, z)
	}
	d.provider.records.Put(d.recordKey(z.ID, fqdn, value), rec.ID)
	return nil
}

// recordComment marks the records certbridge writes.
const recordComment = "cert-manager ACME challenge (certbridge)"

// CleanUpTXT deletes the records at fqdn whose value is exactly value.
func (d *cloudflareDNS) CleanUpTXT(ctx context.Context, fqdn, value string) error {
	z, err := d.zone(ctx, fqdn)
	if err != nil {
		return err
	}
	if id, ok := d.provider.records.Take(d.recordKey(z.ID, fqdn, value)); ok {
		err := d.account.Batch.Delete(ctx, z.ID, id)
		if err == nil || cloudflare.Is(err, cloudflare.RecordNotFound) {
			return nil
		}
		return d.explain(err, z)
	}
	records, err := d.account.Batch.ListTXT(ctx, z.ID, fqdn)
	if d.staleZone(z, err) {
		if z, err = d.zone(ctx, fqdn); err != nil {
			return err
		}
		records, err = d.account.Batch.ListTXT(ctx, z.ID, fqdn)
	}
	if err != nil {
		return d.explain(err, z)
	}
	var errs []error
	for _, r := range records {
		// Content filters are case-insensitive on the server; ACME values are
		// not, so records are matched here, quoted or not.
		if dnstxt.Value(r.Content) != value {
			continue
		}
		if err := d.account.Batch.Delete(ctx, z.ID, r.ID); err != nil && !cloudflare.Is(err, cloudflare.RecordNotFound) {
			errs = append(errs, d.explain(err, z))
		}
	}
	return errors.Join(errs...)
}

// staleZone reports whether err says a resolved zone no longer exists (it
// was deleted and added again), forgetting it so the next resolution asks
// Cloudflare again. A zoneID from the config is never second-guessed.
func (d *cloudflareDNS) staleZone(z cloudflare.Zone, err error) bool {
	if d.cfg.ZoneID != "" || !cloudflare.Is(err, cloudflare.ZoneNotFound) {
		return false
	}
	d.account.Zones.Forget(z.ID)
	return true
}

// zone resolves fqdn's zone by the contract of internal/cloudflare.
func (d *cloudflareDNS) zone(ctx context.Context, fqdn string) (cloudflare.Zone, error) {
	z, err := d.account.Zones.Resolve(ctx, cloudflare.ZoneQuery{Name: fqdn, ZoneName: d.cfg.ZoneName, ZoneID: d.cfg.ZoneID})
	if zerr, ok := err.(*cloudflare.ZoneError); ok {
		return z, d.noZone(ctx, zerr)
	}
	if err != nil {
		return z, d.explain(err, cloudflare.Zone{})
	}
	return z, nil
}

// noZone words a failed resolution (F5, F11): which zones were tried, and
// whether the zone is elsewhere, not active, ambiguous, or unreadable.
func (d *cloudflareDNS) noZone(ctx context.Context, zerr *cloudflare.ZoneError) error {
	list := dnsname.JoinTried(zerr.Tried)
	if d.cfg.ZoneName != "" {
		list += " (from zoneName)"
	}
	switch zerr.Problem {
	case cloudflare.NotActive:
		z := zerr.Zones[0]
		return &noZoneError{cause: zerr, msg: fmt.Sprintf("zone %s (id %s) holds %s but its status is %q, not active: Cloudflare does not serve it, so a record there would never be seen. "+
			"Finish its setup (point the domain's name servers at the ones the zone's Overview page names) or remove it from the account",
			z.Name, z.ID, list, z.Status)}
	case cloudflare.Ambiguous:
		var ids []string
		for _, z := range zerr.Zones {
			ids = append(ids, fmt.Sprintf("%s in account %q", z.ID, z.AccountName))
		}
		return explainf(zerr, "%d active zones named %s are visible to the credential from %s (%s); set zoneID in the config to the one that serves the name",
			len(zerr.Zones), zerr.Zones[0].Name, d.cred.Source, strings.Join(ids, ", "))
	}
	if d.cfg.ZoneName != "" {
		return &noZoneError{cause: zerr, msg: fmt.Sprintf("no zone found for %s: %s (credential from %s)", list, cloudflare.PinnedZoneNotVisible(dnsname.Canonical(d.cfg.ZoneName)), d.cred.Source)}
	}
	detail := d.account.Explain(ctx, zerr, d.cred.IsToken())
	switch {
	case detail.TokenStatus != "":
		return explainf(zerr, "no zone found for %s: Cloudflare reports the API token from %s as %s; create a new token and update the Secret",
			list, d.cred.Source, detail.TokenStatus)
	case d.cred.IsToken() && detail.VisibleZones == 0:
		return &noZoneError{cause: zerr, msg: fmt.Sprintf("no zone found for %s: the API token from %s cannot read any zone. "+
			"Grant it the permission Zone → Zone → Read for the zone (or All zones), together with Zone → DNS → Edit",
			list, d.cred.Source)}
	case d.cred.IsToken():
		return &noZoneError{cause: zerr, msg: fmt.Sprintf("no zone found for %s: none of these zones is in the Cloudflare account the API token from %s belongs to (as an active zone), "+
			"or the token lacks Zone → Zone → Read for it. Check that the domain's name servers are Cloudflare's and the zone is in this account; "+
			"grant the token Zone → Zone → Read (and Zone → DNS → Edit) for the zone; for an _acme-challenge CNAME delegated to another zone, set zoneName or zoneID",
			list, d.cred.Source)}
	}
	return &noZoneError{cause: zerr, msg: fmt.Sprintf("no zone found for %s: none of these zones is in the Cloudflare account of %s (%s) as an active zone. "+
		"Check that the domain's name servers are Cloudflare's and the zone is in this account; for an _acme-challenge CNAME delegated to another zone, set zoneName or zoneID",
		list, input.Quote(d.cred.Email), d.cred.Source)}
}

// explain words an API failure as what to change, naming the credential's
// source but never its value (F4–F7, F17).
func (d *cloudflareDNS) explain(err error, z cloudflare.Zone) error {
	e, ok := cloudflare.As(err)
	if !ok {
		return err
	}
	doing := e.Op.String()
	if z.Name != "" {
		doing += " in zone " + z.Name
	} else if z.ID != "" {
		doing += " in zone with ID " + z.ID
	}
	zoneName := z.Name
	if zoneName == "" {
		zoneName = "with ID " + z.ID
	}
	src, quote := d.cred.Source, e.Quote()
	switch e.Reason {
	case cloudflare.Unreachable:
		if e.TimedOut() {
			return explainf(err, "%s: no answer from Cloudflare within the request's deadline (%s); cert-manager will retry", doing, quote)
		}
		return explainf(err, "%s: cannot reach the Cloudflare API: %s", doing, quote)
	case cloudflare.RateLimited:
		if e.Status == 0 {
			return explainf(err, "%s: %s; cert-manager will retry the challenge later", doing, quote)
		}
		return explainf(err, "%s: Cloudflare's rate limit was hit (%s) and its Retry-After is beyond this request's deadline; cert-manager will retry the challenge later", doing, quote)
	case cloudflare.CredentialMalformed:
		switch {
		case e.Header == "Authorization" && cloudflare.LooksLikeGlobalAPIKey(d.cred.Token):
			return explainf(err, "%s: the value in %s looks like a Global API Key, not an API token (Cloudflare: %s). "+
				"Move it to apiKeySecretRef and set email, or create an API token with Zone → Zone → Read and Zone → DNS → Edit and put that in the Secret", doing, src, quote)
		case e.Header == "X-Auth-Key" && cloudflare.LooksLikeAPIToken(d.cred.Key):
			return explainf(err, "%s: the value in %s looks like an API token, not a Global API Key (Cloudflare: %s). "+
				"Move it to apiTokenSecretRef and remove email", doing, src, quote)
		case e.Header == "X-Auth-Email":
			return explainf(err, "%s: Cloudflare rejected the email %s set in the config as malformed (%s)", doing, input.Quote(d.cred.Email), quote)
		}
		return explainf(err, "%s: Cloudflare rejected the credential from %s as malformed (%s); copy it again into the Secret", doing, src, quote)
	case cloudflare.CredentialRejected:
		return explainf(err, "%s: Cloudflare rejected the credential from %s (%s): it is revoked, expired, restricted to other IP addresses, or mistyped. "+
			"Check it with `certbridge check`, or create a new one and update the Secret", doing, src, quote)
	case cloudflare.InvalidTTL:
		return explainf(err, "%s: Cloudflare refused the TTL %d (%s); set ttl to 1 (automatic) or 60–86400 (30 on Enterprise)", doing, d.cfg.ttl(), quote)
	case cloudflare.ZoneNotFound:
		if d.cfg.ZoneID != "" {
			return explainf(err, "%s: zoneID %s is not a zone this credential can use (%s); check zoneID in the config", doing, d.cfg.ZoneID, quote)
		}
		return explainf(err, "%s: zone %s no longer exists (%s); cert-manager will retry", doing, zoneName, quote)
	case cloudflare.PermissionMissing:
		if e.Op == cloudflare.ListZones {
			return explainf(err, "%s: the credential from %s may not list zones (%s); grant the token Zone → Zone → Read (or All zones)", doing, src, quote)
		}
		return explainf(err, "%s: the credential from %s can see zone %s but cannot edit its DNS records (%s); grant the token %s for zone %s",
			doing, src, zoneName, quote, e.Op.Permission(), zoneName)
	case cloudflare.Transient:
		return explainf(err, "%s: Cloudflare answered with a server error (%s); cert-manager will retry", doing, quote)
	}
	return explainf(err, "%s: Cloudflare refused the request (%s)", doing, quote)
}
