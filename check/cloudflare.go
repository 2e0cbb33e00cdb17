package check

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/user"
	"github.com/cloudflare/cloudflare-go/v6/zones"

	"github.com/certbridge/certbridge/internal/cfapi"
)

// CloudflareOptions are where and what to check.
type CloudflareOptions struct {
	BaseURL string
	// Zones the credential must see (the dnsNames' zones).
	Zones []string
	// Names the credential must find a zone for, as the solver does: each
	// name (a leading "*." dropped), then its parent domains down to two
	// labels; the nearest zone the credential sees is the name's zone.
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
// CLOUDFLARE_API_KEY with CLOUDFLARE_EMAIL: its format, that Cloudflare
// accepts it, and that it can see each zone (F3, F4, F5, F6, F7, F11).
func CloudflareCredentials(ctx context.Context, env func(string) string, o CloudflareOptions) Report {
	r := Report{Target: "Cloudflare credentials from the environment"}
	if len(o.Sources) > 0 {
		r.Target = "Cloudflare credential from " + strings.Join(sortedValues(o.Sources), ", ")
	}
	if o.BaseURL == "" {
		o.BaseURL = "https://api.cloudflare.com/client/v4/"
	}
	opts := []option.RequestOption{option.WithBaseURL(o.BaseURL), option.WithMaxRetries(1),
		option.WithHTTPClient(&http.Client{Timeout: 20 * time.Second})}
	token, isToken := value(&r, env, "CLOUDFLARE_API_TOKEN", o.Sources)
	key, isKey := value(&r, env, "CLOUDFLARE_API_KEY", o.Sources)
	email, _ := value(&r, env, "CLOUDFLARE_EMAIL", o.Sources)
	tokenFrom := "it"
	if s, ok := o.Sources["CLOUDFLARE_API_TOKEN"]; ok {
		tokenFrom = "the token from " + s
	}
	switch {
	case isToken && cfapi.LooksLikeGlobalAPIKey(token):
		r.fail(label("CLOUDFLARE_API_TOKEN", o.Sources), "looks like a Global API Key, not an API token",
			"a Global API Key goes in apiKeySecretRef together with email (CLOUDFLARE_API_KEY with CLOUDFLARE_EMAIL), or create an API token with Zone → Zone → Read and Zone → DNS → Edit")
		return r
	case isToken:
		opts = append(opts, option.WithAPIToken(token))
		verified, err := user.NewTokenService(opts...).Verify(ctx)
		switch {
		case err != nil:
			if _, answered := cfapi.As(err); !answered {
				r.fail("token", "could not reach Cloudflare ("+err.Error()+")", "check connectivity to the Cloudflare API and retry")
				return r
			}
			r.fail("token", "Cloudflare rejected "+tokenFrom+" ("+describe(err)+")",
				"the token is revoked, expired, IP-restricted or mistyped: create a new API token and update the Secret; check IP restrictions on the token")
			return r
		case verified.Status != "active":
			r.fail("token", "Cloudflare reports "+tokenFrom+" as "+string(verified.Status), "create a new API token and update the Secret")
			return r
		case !verified.ExpiresOn.IsZero() && time.Now().After(verified.ExpiresOn):
			r.fail("token", tokenFrom+" expired on "+verified.ExpiresOn.UTC().Format(time.RFC3339), "create a new API token and update the Secret")
			return r
		}
		r.pass("token", "active")
	case isKey && email != "":
		opts = append(opts, option.WithAPIKey(key), option.WithAPIEmail(email))
	case isKey:
		r.fail(label("CLOUDFLARE_EMAIL", o.Sources), "not set", "a Global API Key is used with its account's email: set CLOUDFLARE_EMAIL (email in a solver config)")
		return r
	default:
		r.fail("credential", "neither CLOUDFLARE_API_TOKEN nor CLOUDFLARE_API_KEY is set", "export CLOUDFLARE_API_TOKEN=<token> (or CLOUDFLARE_API_KEY and CLOUDFLARE_EMAIL)")
		return r
	}
	svc := zones.NewZoneService(opts...)
	records := dns.NewRecordService(opts...)
	switch {
	case o.ZoneID != "":
		checkZoneID(ctx, &r, records, o.ZoneID, o.WriteTest)
		return r
	case len(o.Zones) == 0 && len(o.Names) == 0:
		var p zones.ZoneListParams
		p.PerPage.Value, p.PerPage.Present = 5, true
		page, err := svc.List(ctx, p)
		switch {
		case err != nil:
			r.fail("zones", "listing zones failed ("+describe(err)+")", fixFor(err))
		case len(page.Result) == 0:
			r.fail("zones", "the credential sees no zone", "grant the token Zone → Zone → Read for your zones (or All zones)")
		default:
			r.pass("zones", fmt.Sprintf("sees zones, e.g. %s", page.Result[0].Name))
			if o.WriteTest {
				writeTest(ctx, &r, records, page.Result[0].ID, page.Result[0].Name)
			}
		}
		return r
	}
	tested := map[string]bool{}
	for _, z := range o.Zones {
		name := strings.ToLower(strings.TrimSuffix(z, "."))
		page, err := zoneByName(ctx, svc, name)
		switch {
		case err != nil:
			r.fail("zone "+name, "lookup failed ("+describe(err)+")", fixFor(err))
		case len(page) == 0:
			r.fail("zone "+name, "not visible to this credential",
				"grant the token Zone → Zone → Read for "+name+" (or All zones); if the zone is in another account or its name servers are not Cloudflare's, use that account's credential")
		default:
			r.pass("zone "+name, "visible (id "+page[0].ID+", "+string(page[0].Status)+")")
			if o.WriteTest && !tested[page[0].ID] {
				tested[page[0].ID] = true
				writeTest(ctx, &r, records, page[0].ID, name)
			}
		}
	}
	for _, n := range distinctNames(o.Names) {
		tried := candidates(n)
		name := tried[0]
		var found *zones.Zone
		var lookupErr error
		for _, c := range tried {
			page, err := zoneByName(ctx, svc, c)
			if err != nil {
				lookupErr = err
				break
			}
			if len(page) > 0 {
				found = &page[0]
				break
			}
		}
		switch {
		case lookupErr != nil:
			r.fail("zone of "+name, "lookup failed ("+describe(lookupErr)+")", fixFor(lookupErr))
		case found == nil:
			r.fail("zone of "+name, "no zone visible to this credential (tried "+strings.Join(tried, ", ")+")",
				"grant the token Zone → Zone → Read for the zone of "+name+" (or All zones); if the zone is in another account or its name servers are not Cloudflare's, use that account's credential, "+
					"or set zoneName / zoneID to the zone an _acme-challenge CNAME points into")
		default:
			r.pass("zone of "+name, found.Name+" (id "+found.ID+", "+string(found.Status)+")")
			if o.WriteTest && !tested[found.ID] {
				tested[found.ID] = true
				writeTest(ctx, &r, records, found.ID, found.Name)
			}
		}
	}
	return r
}

// zoneByName lists the zones named exactly name that the credential sees.
func zoneByName(ctx context.Context, svc *zones.ZoneService, name string) ([]zones.Zone, error) {
	var p zones.ZoneListParams
	p.Name.Value, p.Name.Present = name, true
	page, err := svc.List(ctx, p)
	if err != nil {
		return nil, err
	}
	return page.Result, nil
}

// checkZoneID checks a zone given by ID: the solver reads and writes its
// records without any zone lookup.
func checkZoneID(ctx context.Context, r *Report, records *dns.RecordService, zoneID string, write bool) {
	var p dns.RecordListParams
	p.ZoneID.Value, p.ZoneID.Present = zoneID, true
	p.PerPage.Value, p.PerPage.Present = 1, true
	if _, err := records.List(ctx, p); err != nil {
		fix := fixFor(err)
		if e, ok := cfapi.As(err); ok && e.Has(7003) {
			fix = "no zone has the ID " + zoneID + ": copy the zone ID from the zone's Overview page (API section), or set zoneName instead"
		} else if ok && e.Has(10000) {
			fix = "grant the token Zone → DNS → Edit for that zone"
		}
		r.fail("zone id "+zoneID, "listing its DNS records failed ("+describe(err)+")", fix)
		return
	}
	r.pass("zone id "+zoneID, "its DNS records are readable (no zone lookup needed)")
	if write {
		writeTest(ctx, r, records, zoneID, "")
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
func writeTest(ctx context.Context, r *Report, records *dns.RecordService, zoneID, zone string) {
	name := fmt.Sprintf("_certbridge-check-%d", time.Now().UnixNano())
	if zone == "" {
		zone = "id " + zoneID
	} else {
		name += "." + zone
	}
	var body dns.TXTRecordParam
	body.Name.Value, body.Name.Present = name, true
	body.Type.Value, body.Type.Present = dns.TXTRecordTypeTXT, true
	body.Content.Value, body.Content.Present = `"certbridge write test"`, true
	body.TTL.Value, body.TTL.Present = 60, true
	var p dns.RecordNewParams
	p.ZoneID.Value, p.ZoneID.Present = zoneID, true
	p.Body = body
	created, err := records.New(ctx, p)
	if err != nil {
		fix := fixFor(err)
		if e, ok := cfapi.As(err); ok && e.Has(10000) {
			fix = "the token can see zone " + zone + " but cannot edit its DNS records: grant Zone → DNS → Edit"
		}
		r.fail("write test "+zone, "creating a TXT record failed ("+describe(err)+")", fix)
		return
	}
	var d dns.RecordDeleteParams
	d.ZoneID.Value, d.ZoneID.Present = zoneID, true
	if _, err := records.Delete(ctx, created.ID, d); err != nil {
		r.fail("write test "+zone, "created "+name+" but could not delete it ("+describe(err)+")", "delete that record by hand and check the token's Zone → DNS → Edit")
		return
	}
	r.pass("write test "+zone, "created and deleted a TXT record")
}

func describe(err error) string {
	if e, ok := cfapi.As(err); ok {
		return e.String()
	}
	return err.Error()
}

func fixFor(err error) string {
	e, ok := cfapi.As(err)
	switch {
	case ok && (e.Has(10000) || e.RequiresPermission()):
		return "grant the token Zone → Zone → Read"
	case ok && e.Has(9109, 9103, 1000, 6003):
		return "the credential is revoked, expired, IP-restricted or mistyped: create a new one"
	default:
		return "retry; if it persists, check connectivity to the Cloudflare API"
	}
}
