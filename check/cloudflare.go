package check

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/dnsname"
)

// CloudflareOptions are where and what to check.
type CloudflareOptions struct {
	BaseURL string
	// Zones the credential must see (the solver's zoneName).
	Zones []string
	// Names the credential must find a zone for, exactly as the solver
	// does for their _acme-challenge records (internal/cloudflare's zone
	// resolution): the most specific active zone of the name or a parent.
	Names []string
	// ZoneID is a zone given by its ID (the solver's zoneID): the solver does
	// no lookup, so the credential must only reach the zone's DNS records.
	ZoneID string
	// WriteTest creates and deletes a uniquely named TXT record in each zone.
	WriteTest bool
	// Sources names where each variable's value came from (e.g.
	// CLOUDFLARE_API_TOKEN → `Secret default/cf key "api-token"`): findings
	// and the report's target name those instead of the variables.
	Sources map[string]string
}

// CloudflareCredentials checks the credential in CLOUDFLARE_API_TOKEN, or
// CLOUDFLARE_API_KEY with CLOUDFLARE_EMAIL, with the webhook's own client,
// zone resolution and error classification: its format, that Cloudflare
// accepts it, and that it finds each zone as the solver will (F3, F4, F5,
// F6, F7, F11).
func CloudflareCredentials(ctx context.Context, env func(string) string, o CloudflareOptions) Report {
	r, _ := cloudflareCredentials(ctx, env, o)
	return r
}

// cloudflareCredentials is CloudflareCredentials, with the credential's
// account when Cloudflare accepted it (nil otherwise), for the checks that
// go on to write where the solver writes.
func cloudflareCredentials(ctx context.Context, env func(string) string, o CloudflareOptions) (Report, *cloudflare.Account) {
	r := Report{Target: "Cloudflare credentials from the environment"}
	if len(o.Sources) > 0 {
		r.Target = "Cloudflare credential from " + strings.Join(sortedValues(o.Sources), ", ")
	}
	token, isToken := value(&r, env, "CLOUDFLARE_API_TOKEN", o.Sources)
	key, isKey := value(&r, env, "CLOUDFLARE_API_KEY", o.Sources)
	email, _ := value(&r, env, "CLOUDFLARE_EMAIL", o.Sources)
	var cred cloudflare.Credential
	switch {
	case isToken && cloudflare.LooksLikeGlobalAPIKey(token):
		r.failBecause(cloudflare.CredentialMalformed.String(), label("CLOUDFLARE_API_TOKEN", o.Sources), "looks like a Global API Key, not an API token",
			"a Global API Key goes in apiKeySecretRef together with email (CLOUDFLARE_API_KEY with CLOUDFLARE_EMAIL), or create an API token with Zone → Zone → Read and Zone → DNS → Edit")
		return r, nil
	case isToken:
		cred = cloudflare.Credential{Token: token, Source: o.Sources["CLOUDFLARE_API_TOKEN"]}
	case isKey && email != "":
		cred = cloudflare.Credential{Key: key, Email: email, Source: o.Sources["CLOUDFLARE_API_KEY"]}
	case isKey:
		r.fail(label("CLOUDFLARE_EMAIL", o.Sources), "not set", "a Global API Key is used with its account's email: set CLOUDFLARE_EMAIL (email in a solver config)")
		return r, nil
	default:
		r.fail("credential", "neither CLOUDFLARE_API_TOKEN nor CLOUDFLARE_API_KEY is set", "export CLOUDFLARE_API_TOKEN=<token> (or CLOUDFLARE_API_KEY and CLOUDFLARE_EMAIL)")
		return r, nil
	}
	acct := cloudflare.NewAccounts(cloudflare.Options{BaseURL: o.BaseURL, MaxRetries: 1}).For(cred)
	if cred.IsToken() && !checkToken(ctx, &r, acct.Client, cred.Source) {
		return r, nil
	}
	c := cfCheck{r: &r, acct: acct, write: o.WriteTest, tested: map[string]bool{}}
	switch {
	case o.ZoneID != "":
		c.zoneID(ctx, o.ZoneID)
	case len(o.Zones) == 0 && len(o.Names) == 0:
		c.anyZone(ctx)
	}
	for _, z := range o.Zones {
		c.resolve(ctx, "zone "+dnsname.Canonical(z), cloudflare.ZoneQuery{Name: dnsname.Canonical(z), ZoneName: z}, "")
	}
	for _, n := range distinctNames(o.Names) {
		c.resolve(ctx, "zone of "+n, cloudflare.ZoneQuery{Name: "_acme-challenge." + n}, n)
	}
	return r, acct
}

// checkToken reports the API token's status; false stops the check.
func checkToken(ctx context.Context, r *Report, client *cloudflare.Client, source string) bool {
	from := "it"
	if source != "" {
		from = "the token from " + source
	}
	s, err := client.VerifyToken(ctx)
	switch {
	case cloudflare.Is(err, cloudflare.Unreachable, cloudflare.Transient, cloudflare.RateLimited):
		r.failBecause(cloudflare.ReasonOf(err), "token", "could not reach Cloudflare ("+quote(err)+")", "check connectivity to the Cloudflare API and retry")
		return false
	case err != nil:
		r.failBecause(cloudflare.ReasonOf(err), "token", "Cloudflare rejected "+from+" ("+quote(err)+")",
			"the token is revoked, expired, IP-restricted or mistyped: create a new API token and update the Secret; check IP restrictions on the token")
		return false
	case s.Status != "active":
		r.fail("token", "Cloudflare reports "+from+" as "+s.Status, "create a new API token and update the Secret")
		return false
	case !s.ExpiresOn.IsZero() && time.Now().After(s.ExpiresOn):
		r.fail("token", from+" expired on "+s.ExpiresOn.UTC().Format(time.RFC3339), "create a new API token and update the Secret")
		return false
	}
	r.pass("token", "active")
	return true
}

// cfCheck is one credential's zone checks.
type cfCheck struct {
	r      *Report
	acct   *cloudflare.Account
	write  bool
	tested map[string]bool
}

// anyZone checks that the credential sees some zone (no selector: the
// solver may serve any).
func (c *cfCheck) anyZone(ctx context.Context) {
	p, err := c.acct.Client.ListZones(ctx, "", 1)
	switch {
	case err != nil:
		c.r.failBecause(cloudflare.ReasonOf(err), "zones", "listing zones failed ("+quote(err)+")", cfFix(err, ""))
	case len(p.Zones) == 0:
		c.r.fail("zones", "the credential sees no zone", "grant the token Zone → Zone → Read for your zones (or All zones)")
	default:
		z := p.Zones[0]
		for _, cand := range p.Zones {
			if cand.Active() {
				z = cand
				break
			}
		}
		c.r.pass("zones", fmt.Sprintf("sees zones, e.g. %s", z.Name))
		if c.write && z.Active() {
			c.writeTest(ctx, z.ID, z.Name)
		}
	}
}

// resolve checks that a query finds the zone the solver will write into.
func (c *cfCheck) resolve(ctx context.Context, label string, q cloudflare.ZoneQuery, name string) {
	z, err := c.acct.Zones.Resolve(ctx, q)
	var zerr *cloudflare.ZoneError
	switch {
	case err == nil && q.ZoneName != "":
		c.r.pass(label, fmt.Sprintf("visible (id %s, %s)", z.ID, z.Status))
	case err == nil:
		c.r.pass(label, fmt.Sprintf("%s (id %s, %s)", z.Name, z.ID, z.Status))
	}
	switch {
	case err == nil:
		if c.write && !c.tested[z.ID] {
			c.tested[z.ID] = true
			c.writeTest(ctx, z.ID, z.Name)
		}
		return
	case !asZoneError(err, &zerr):
		c.r.failBecause(cloudflare.ReasonOf(err), label, "lookup failed ("+quote(err)+")", cfFix(err, ""))
		return
	}
	switch zerr.Problem {
	case cloudflare.NotActive:
		inactive := zerr.Zones[0]
		c.r.failBecause(zerr.Problem.String(), label, fmt.Sprintf("zone %s (id %s) is %s, not active: Cloudflare does not serve it, so the webhook will not write into it",
			inactive.Name, inactive.ID, inactive.Status),
			"finish the zone's setup (point the domain's name servers at the ones its Overview page names) or remove it from the account")
	case cloudflare.Ambiguous:
		var ids []string
		for _, z := range zerr.Zones {
			ids = append(ids, fmt.Sprintf("%s in account %q", z.ID, z.AccountName))
		}
		c.r.failBecause(zerr.Problem.String(), label, fmt.Sprintf("%d active zones named %s are visible (%s)", len(zerr.Zones), zerr.Zones[0].Name, strings.Join(ids, ", ")),
			"set zoneID in the solver's config to the zone that serves the name")
	default:
		if q.ZoneName != "" {
			c.r.failBecause(zerr.Problem.String(), label, "not visible to this credential", cloudflare.PinnedZoneNotVisible(dnsname.Canonical(q.ZoneName)))
			return
		}
		c.r.failBecause(zerr.Problem.String(), label, "no zone visible to this credential (tried "+dnsname.JoinTried(zerr.Tried)+")",
			"grant the token Zone → Zone → Read for the zone of "+name+" (or All zones); if the zone is in another account or its name servers are not Cloudflare's, use that account's credential, "+
				"or set zoneName / zoneID to the zone an _acme-challenge CNAME points into")
	}
}

func asZoneError(err error, target **cloudflare.ZoneError) bool {
	zerr, ok := err.(*cloudflare.ZoneError)
	*target = zerr
	return ok
}

// zoneID checks a zone given by ID: the solver reads and writes its
// records without any zone lookup.
func (c *cfCheck) zoneID(ctx context.Context, zoneID string) {
	label := "zone id " + zoneID
	if _, err := c.acct.Client.ListTXT(ctx, zoneID, "_certbridge-check."+zoneID+".invalid"); err != nil {
		fix := cfFix(err, "")
		switch {
		case cloudflare.Is(err, cloudflare.ZoneNotFound):
			fix = "no zone has the ID " + zoneID + ": copy the zone ID from the zone's Overview page (API section), or set zoneName instead"
		case cloudflare.Is(err, cloudflare.PermissionMissing):
			fix = "grant the token Zone → DNS → Edit for that zone"
		}
		c.r.failBecause(cloudflare.ReasonOf(err), label, "listing its DNS records failed ("+quote(err)+")", fix)
		return
	}
	c.r.pass(label, "its DNS records are readable (no zone lookup needed)")
	if c.write {
		c.writeTest(ctx, zoneID, "")
	}
}

func sortedValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// writeTest creates and deletes a uniquely named TXT record (F6).
// An empty zone writes a relative name, which Cloudflare completes with the
// zone's name; the findings then name the zone as "id <zoneID>".
func (c *cfCheck) writeTest(ctx context.Context, zoneID, zone string) {
	name := fmt.Sprintf("_certbridge-check-%d", time.Now().UnixNano())
	if zone == "" {
		zone = "id " + zoneID
	} else {
		name += "." + zone
	}
	rec, err := c.acct.Client.CreateTXT(ctx, zoneID, name, `"certbridge write test"`, 60, "")
	if err != nil {
		c.r.failBecause(cloudflare.ReasonOf(err), "write test "+zone, "creating a TXT record failed ("+quote(err)+")", cfFix(err, zone))
		return
	}
	if err := c.acct.Client.DeleteRecord(ctx, zoneID, rec.ID); err != nil {
		c.r.failBecause(cloudflare.ReasonOf(err), "write test "+zone, "created "+name+" but could not delete it ("+quote(err)+")", "delete that record by hand and check the token's Zone → DNS → Edit")
		return
	}
	c.r.pass("write test "+zone, "created and deleted a TXT record")
}

// quote is what the provider said, or why no answer came.
func quote(err error) string {
	if e, ok := cloudflare.As(err); ok {
		return e.Quote()
	}
	return err.Error()
}

// cfFix is the fix for a classified Cloudflare error; zone names the zone
// a write went to.
func cfFix(err error, zone string) string {
	e, ok := cloudflare.As(err)
	if !ok {
		return "retry; if it persists, check connectivity to the Cloudflare API"
	}
	switch e.Reason {
	case cloudflare.PermissionMissing:
		if zone != "" && e.Op != cloudflare.ListZones {
			return "the token can see zone " + zone + " but cannot edit its DNS records: grant " + e.Op.Permission()
		}
		return "grant the token " + e.Op.Permission()
	case cloudflare.CredentialRejected, cloudflare.CredentialMalformed:
		return "the credential is revoked, expired, IP-restricted or mistyped: create a new one"
	case cloudflare.ZoneNotFound:
		return "the zone no longer exists: check the zone in the dashboard"
	}
	return "retry; if it persists, check connectivity to the Cloudflare API"
}

// cfWriter writes where the cloudflare solver writes: the zone
// internal/cloudflare resolves for a record's name with the solver's
// zoneName or zoneID, for the propagation check.
type cfWriter struct {
	acct             *cloudflare.Account
	zoneName, zoneID string
}

var _ zoneWriter = cfWriter{}

func (w cfWriter) resolution() string {
	switch {
	case w.zoneID != "":
		return "the solver's zoneID"
	case w.zoneName != "":
		return "the solver's zoneName"
	}
	return "the cloudflare solver's zone resolution"
}

func (w cfWriter) zone(ctx context.Context, fqdn string) (writtenZone, error) {
	z, err := w.acct.Zones.Resolve(ctx, cloudflare.ZoneQuery{Name: dnsname.Canonical(fqdn), ZoneName: w.zoneName, ZoneID: w.zoneID})
	if err != nil {
		return writtenZone{}, err
	}
	return writtenZone{name: z.Name, id: z.ID}, nil
}

func (w cfWriter) addTXT(ctx context.Context, z writtenZone, fqdn, value string) (func(context.Context) error, error) {
	rec, err := w.acct.Client.CreateTXT(ctx, z.id, dnsname.Canonical(fqdn), `"`+value+`"`, 60, "certbridge check --propagation")
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return w.acct.Client.DeleteRecord(ctx, z.id, rec.ID) }, nil
}

func (w cfWriter) failure(err error, zone string) (string, string, string) {
	var zerr *cloudflare.ZoneError
	if asZoneError(err, &zerr) {
		return "no zone to write into: " + zerr.Error(), "see the zone line of this solver above; set zoneName or zoneID to the zone the record belongs in", zerr.Problem.String()
	}
	return quote(err), cfFix(err, zone), cloudflare.ReasonOf(err)
}
