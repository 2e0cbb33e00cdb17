package solver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/cfapi"
	"github.com/certbridge/certbridge/internal/dnstxt"
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
		errs = append(errs, field.Invalid(field.NewPath("zoneID"), c.ZoneID, "a Cloudflare zone ID is 32 lower-case hex characters (dashboard: the zone's Overview page, API section)"))
	}
	if c.ZoneName != "" {
		if msgs := validation.IsDNS1123Subdomain(strings.TrimSuffix(strings.ToLower(c.ZoneName), ".")); len(msgs) > 0 {
			errs = append(errs, field.Invalid(field.NewPath("zoneName"), c.ZoneName, "must be a DNS name such as example.com"))
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

// CloudflareOptions are the operator's settings of the cloudflare solver:
// process flags, never an Issuer's config.
type CloudflareOptions struct {
	// BaseURL of the API; CloudflareProductionURL by default.
	BaseURL string
	// HTTPClient for API calls; a client with sane timeouts by default.
	HTTPClient *http.Client
	// MaxRetries of one API call on 429, 5xx and transport errors (the SDK's
	// default of 10 with 30 s backoff is far beyond a webhook request).
	MaxRetries int
	// RateLimit is the client-side budget per credential: Limit requests per
	// Window. Zero means Cloudflare's 1200 per 5 minutes; a negative Limit
	// disables it.
	RateLimit RateLimit
}

// RateLimit is a number of requests per window.
type RateLimit struct {
	Limit  int
	Window time.Duration
}

// CloudflareProductionURL is the v4 API's base URL.
const CloudflareProductionURL = "https://api.cloudflare.com/client/v4/"

// CloudflareRateLimit is Cloudflare's documented budget per user.
var CloudflareRateLimit = RateLimit{Limit: 1200, Window: 5 * time.Minute}

// DefaultMaxRetries is CloudflareOptions.MaxRetries' default.
const DefaultMaxRetries = 3

// maxCachedAccounts bounds the per-credential state kept, so rotating tokens
// cannot grow the process without limit.
const maxCachedAccounts = 1024

// NewCloudflare returns the `cloudflare` solver.
func NewCloudflare(o Options, cf CloudflareOptions) *Solver {
	if cf.BaseURL == "" {
		cf.BaseURL = CloudflareProductionURL
	}
	if cf.HTTPClient == nil {
		cf.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cf.MaxRetries == 0 {
		cf.MaxRetries = DefaultMaxRetries
	}
	if cf.RateLimit.Limit == 0 {
		cf.RateLimit = CloudflareRateLimit
	}
	return newSolver("cloudflare", &cloudflareProvider{opts: cf}, o)
}

type cloudflareProvider struct {
	opts     CloudflareOptions
	accounts cache[*cloudflareAccount] // by cloudflareCredential.hash
}

// cloudflareCredential is an API token, or a Global API Key with its email.
type cloudflareCredential struct {
	secret credential
	email  string // set for a Global API Key
}

func (c cloudflareCredential) isToken() bool { return c.email == "" }

// hash identifies the credential in caches without keeping it as a key.
func (c cloudflareCredential) hash() string {
	sum := sha256.Sum256([]byte(c.email + "\x00" + c.secret.Value))
	return hex.EncodeToString(sum[:])
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

func (p *cloudflareProvider) forRequest(ctx context.Context, ch *whapi.ChallengeRequest, secrets secretReader) (DNSProvider, error) {
	cfg, err := ParseCloudflareConfig(ch.Config)
	if err != nil {
		return nil, &configError{err}
	}
	var cred cloudflareCredential
	if cfg.APITokenSecretRef != nil {
		cred.secret, err = secrets.read(ctx, ch.ResourceNamespace, *cfg.APITokenSecretRef, "apiTokenSecretRef")
	} else {
		cred.secret, err = secrets.read(ctx, ch.ResourceNamespace, *cfg.APIKeySecretRef, "apiKeySecretRef")
		cred.email = strings.TrimSpace(cfg.Email)
	}
	if err != nil {
		return nil, err
	}
	return &cloudflareDNS{account: p.account(cred), cfg: cfg, cred: cred}, nil
}

// account returns the state kept for a credential: its client, budget and caches.
func (p *cloudflareProvider) account(cred cloudflareCredential) *cloudflareAccount {
	return p.accounts.getOrCreate(cred.hash(), maxCachedAccounts, func() *cloudflareAccount {
		var b *budget
		if p.opts.RateLimit.Limit > 0 {
			b = newBudget(p.opts.RateLimit.Limit, p.opts.RateLimit.Window)
		}
		return &cloudflareAccount{api: newCloudflareAPI(p.opts, cred, b)}
	})
}

// cloudflareAccount is what is kept per credential.
type cloudflareAccount struct {
	api cloudflareAPI
	// zones caches zone lookups: "name:<zone>" for a lookup by name,
	// "fqdn:<fqdn>" for the zone a record name was found in.
	zones cache[cloudflareZone]
	// records maps zoneID|fqdn|value to the ID of a record this process
	// created, so CleanUp can skip the lookup.
	records cache[string]
}

type cloudflareZone struct {
	id, name string
}

func recordKey(zoneID, fqdn, value string) string { return zoneID + "|" + fqdn + "|" + value }

// cloudflareDNS is the DNSProvider for one request: a credential's account
// state with the request's config.
type cloudflareDNS struct {
	account *cloudflareAccount
	cfg     CloudflareConfig
	cred    cloudflareCredential
}

var _ DNSProvider = (*cloudflareDNS)(nil)

func canonical(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// PresentTXT creates the record: one API call once the zone is known.
func (d *cloudflareDNS) PresentTXT(ctx context.Context, zone, fqdn, value string) error {
	z, err := d.zone(ctx, zone, fqdn)
	if err != nil {
		return err
	}
	name := canonical(fqdn)
	id, err := d.account.api.createTXT(ctx, z.id, name, dnstxt.Quote(value), d.cfg.ttl())
	if err != nil && d.staleZone(z, err) {
		if z, err = d.zone(ctx, zone, fqdn); err != nil {
			return err
		}
		id, err = d.account.api.createTXT(ctx, z.id, name, dnstxt.Quote(value), d.cfg.ttl())
	}
	if cfapi.HasCode(err, 81057, 81058) {
		return nil // the record is there already: Present is idempotent
	}
	if err != nil {
		return d.explain(err, "creating TXT record "+name, z)
	}
	d.account.records.put(recordKey(z.id, name, value), id)
	return nil
}

// CleanUpTXT deletes the records at fqdn whose value is exactly value.
func (d *cloudflareDNS) CleanUpTXT(ctx context.Context, zone, fqdn, value string) error {
	z, err := d.zone(ctx, zone, fqdn)
	if err != nil {
		return err
	}
	name := canonical(fqdn)
	if id, ok := d.account.records.take(recordKey(z.id, name, value)); ok {
		err := d.account.api.deleteRecord(ctx, z.id, id)
		if err == nil || isGone(err) {
			return nil
		}
		return d.explain(err, "deleting TXT record "+name, z)
	}
	records, err := d.account.api.listTXT(ctx, z.id, name)
	if err != nil && d.staleZone(z, err) {
		if z, err = d.zone(ctx, zone, fqdn); err != nil {
			return err
		}
		records, err = d.account.api.listTXT(ctx, z.id, name)
	}
	if err != nil {
		return d.explain(err, "listing TXT records at "+name, z)
	}
	var errs []error
	for _, r := range records {
		// Content filters are case-insensitive on the server; ACME values are
		// not, so records are matched here, quoted or not.
		if dnstxt.Value(r.content) != value {
			continue
		}
		if err := d.account.api.deleteRecord(ctx, z.id, r.id); err != nil && !isGone(err) {
			errs = append(errs, d.explain(err, "deleting TXT record "+name, z))
		}
	}
	return errors.Join(errs...)
}

// staleZone reports whether err says a cached zone ID no longer exists (the
// zone was deleted and added again), dropping it so the next lookup is fresh.
func (d *cloudflareDNS) staleZone(z cloudflareZone, err error) bool {
	if d.cfg.ZoneID != "" || !cfapi.HasCode(err, 7003) {
		return false
	}
	d.account.zones.deleteWhere(func(c cloudflareZone) bool { return c.id == z.id })
	return true
}

// zone finds the Cloudflare zone for fqdn: the configured zoneID or zoneName,
// else cert-manager's resolved zone, else the nearest parent of fqdn that the
// credential can see.
func (d *cloudflareDNS) zone(ctx context.Context, resolvedZone, fqdn string) (cloudflareZone, error) {
	if d.cfg.ZoneID != "" {
		return cloudflareZone{id: d.cfg.ZoneID, name: canonical(d.cfg.ZoneName)}, nil
	}
	if d.cfg.ZoneName != "" {
		name := canonical(d.cfg.ZoneName)
		z, found, err := d.lookupZone(ctx, name)
		if err != nil {
			return z, err
		}
		if !found {
			return z, d.noZone(ctx, []string{name}, "zoneName")
		}
		return z, nil
	}
	fqdnKey := "fqdn:" + canonical(fqdn)
	if z, ok := d.account.zones.get(fqdnKey); ok {
		return z, nil
	}
	var tried []string
	for _, candidate := range zoneCandidates(resolvedZone, fqdn) {
		z, found, err := d.lookupZone(ctx, candidate)
		if err != nil {
			return z, err
		}
		tried = append(tried, candidate)
		if found {
			d.account.zones.put(fqdnKey, z)
			return z, nil
		}
	}
	return cloudflareZone{}, d.noZone(ctx, tried, "")
}

// zoneCandidates lists the names to try: the resolved zone first, then each
// parent of fqdn from the nearest, down to two labels.
func zoneCandidates(resolvedZone, fqdn string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && strings.Contains(n, ".") && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	add(canonical(resolvedZone))
	name := canonical(fqdn)
	for {
		_, parent, ok := strings.Cut(name, ".")
		if !ok {
			break
		}
		add(parent)
		name = parent
	}
	return out
}

func (d *cloudflareDNS) lookupZone(ctx context.Context, name string) (cloudflareZone, bool, error) {
	key := "name:" + name
	if z, ok := d.account.zones.get(key); ok {
		return z, true, nil
	}
	id, found, err := d.account.api.zoneByName(ctx, name)
	if err != nil {
		return cloudflareZone{}, false, d.explain(err, "looking up zone "+name, cloudflareZone{name: name})
	}
	if !found {
		return cloudflareZone{}, false, nil
	}
	z := cloudflareZone{id: id, name: name}
	d.account.zones.put(key, z)
	return z, true, nil
}

// noZone explains why no zone was found (F5, F11): for an API token it checks
// whether the token can see any zone at all, to tell a missing Zone → Zone →
// Read permission from a zone that is in another account.
func (d *cloudflareDNS) noZone(ctx context.Context, tried []string, viaField string) error {
	list := strings.Join(tried, ", ")
	if viaField != "" {
		list += " (from " + viaField + ")"
	}
	if d.cred.isToken() {
		if status, err := d.account.api.verifyToken(ctx); err == nil && status != "active" {
			return fmt.Errorf("no zone found for %s: Cloudflare reports the API token from %s as %s; create a new token and update the Secret",
				list, d.cred.secret, status)
		}
		if n, err := d.account.api.countZones(ctx); err == nil && n == 0 {
			return &noZoneError{fmt.Sprintf("no zone found for %s: the API token from %s cannot read any zone. "+
				"Grant it the permission Zone → Zone → Read for the zone (or All zones), together with Zone → DNS → Edit",
				list, d.cred.secret)}
		}
		return &noZoneError{fmt.Sprintf("no zone found for %s: none of these zones is in the Cloudflare account the API token from %s belongs to, "+
			"or the token lacks Zone → Zone → Read for it. Check that the domain's name servers are Cloudflare's and the zone is in this account; "+
			"grant the token Zone → Zone → Read (and Zone → DNS → Edit) for the zone; for an _acme-challenge CNAME delegated to another zone, set zoneName or zoneID",
			list, d.cred.secret)}
	}
	return &noZoneError{fmt.Sprintf("no zone found for %s: none of these zones is in the Cloudflare account of %s (%s). "+
		"Check that the domain's name servers are Cloudflare's and the zone is in this account; for an _acme-challenge CNAME delegated to another zone, set zoneName or zoneID",
		list, d.cred.email, d.cred.secret)}
}

// explain turns an API failure into what to change, naming the credential's
// source but never its value (F4–F7, F17).
func (d *cloudflareDNS) explain(err error, doing string, z cloudflareZone) error {
	var budgetErr *budgetExhaustedError
	if errors.As(err, &budgetErr) {
		return fmt.Errorf("%s: %w; cert-manager will retry the challenge later", doing, budgetErr)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: no answer from Cloudflare within the request's deadline (%w); cert-manager will retry", doing, err)
	}
	e, ok := cfapi.As(err)
	if !ok {
		return fmt.Errorf("%s: cannot reach the Cloudflare API: %w", doing, err)
	}
	src := d.cred.secret.String()
	zoneName := z.name
	if zoneName == "" {
		zoneName = "with ID " + z.id
	}
	switch {
	case e.Has(6003) && e.HasChain(6111):
		if cfapi.LooksLikeGlobalAPIKey(d.cred.secret.Value) {
			return fmt.Errorf("%s: the value in %s looks like a Global API Key, not an API token (Cloudflare: %s). "+
				"Move it to apiKeySecretRef and set email, or create an API token with Zone → Zone → Read and Zone → DNS → Edit and put that in the Secret", doing, src, e)
		}
		return fmt.Errorf("%s: Cloudflare rejected the API token from %s as malformed (%s); copy the token again into the Secret", doing, src, e)
	case e.Has(6003) && e.HasChain(6103):
		if cfapi.LooksLikeAPIToken(d.cred.secret.Value) {
			return fmt.Errorf("%s: the value in %s looks like an API token, not a Global API Key (Cloudflare: %s). "+
				"Move it to apiTokenSecretRef and remove email", doing, src, e)
		}
		return fmt.Errorf("%s: Cloudflare rejected the Global API Key from %s as malformed (%s); copy the key again into the Secret", doing, src, e)
	case e.Has(6003) && e.HasChain(6102):
		return fmt.Errorf("%s: Cloudflare rejected the email %q set in the config as malformed (%s)", doing, d.cred.email, e)
	case e.Has(9109, 1000, 9103, 9106, 1001):
		return fmt.Errorf("%s: Cloudflare rejected the credential from %s (%s): it is revoked, expired, restricted to other IP addresses, or mistyped. "+
			"Check it with `certbridge check`, or create a new one and update the Secret", doing, src, e)
	case e.Status == http.StatusTooManyRequests || e.Has(971):
		return fmt.Errorf("%s: Cloudflare's rate limit was hit (%s) and its Retry-After is beyond this request's deadline; cert-manager will retry the challenge", doing, e)
	case e.Has(9021):
		return fmt.Errorf("%s: Cloudflare refused the TTL %d (%s); set ttl to 1 (automatic) or 60–86400 (30 on Enterprise)", doing, d.cfg.ttl(), e)
	case e.Has(7003, 7000) && d.cfg.ZoneID != "":
		return fmt.Errorf("%s: zoneID %s is not a zone this credential can use (%s); check zoneID in the config", doing, d.cfg.ZoneID, e)
	case e.Has(10000) || e.RequiresPermission():
		if strings.HasPrefix(doing, "looking up zone") {
			return fmt.Errorf("%s: the credential from %s may not list zones (%s); grant the token Zone → Zone → Read for zone %s (or All zones)", doing, src, e, zoneName)
		}
		return fmt.Errorf("%s: the credential from %s can see zone %s but cannot edit its DNS records (%s); grant the token Zone → DNS → Edit for zone %s",
			doing, src, zoneName, e, zoneName)
	case e.Status >= 500:
		return fmt.Errorf("%s: Cloudflare answered with a server error (%s); cert-manager will retry", doing, e)
	default:
		return fmt.Errorf("%s: Cloudflare refused the request (%s)", doing, e)
	}
}

// isGone reports a record that no longer exists (404, code 81044).
func isGone(err error) bool {
	e, ok := cfapi.As(err)
	return ok && (e.Has(81044) || e.Status == http.StatusNotFound)
}
