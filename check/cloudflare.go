package check

import (
	"context"
	"fmt"
	"net/http"
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
	// WriteTest creates and deletes a uniquely named TXT record in each zone.
	WriteTest bool
}

// CloudflareCredentials checks the credential in CLOUDFLARE_API_TOKEN, or
// CLOUDFLARE_API_KEY with CLOUDFLARE_EMAIL: its format, that Cloudflare
// accepts it, and that it can see each zone (F3, F4, F5, F7, F11).
func CloudflareCredentials(ctx context.Context, env func(string) string, o CloudflareOptions) Report {
	r := Report{Target: "Cloudflare credentials from the environment"}
	if o.BaseURL == "" {
		o.BaseURL = "https://api.cloudflare.com/client/v4/"
	}
	opts := []option.RequestOption{option.WithBaseURL(o.BaseURL), option.WithMaxRetries(1),
		option.WithHTTPClient(&http.Client{Timeout: 20 * time.Second})}
	token, isToken := value(&r, env, "CLOUDFLARE_API_TOKEN")
	key, isKey := value(&r, env, "CLOUDFLARE_API_KEY")
	email, _ := value(&r, env, "CLOUDFLARE_EMAIL")
	switch {
	case isToken && cfapi.LooksLikeGlobalAPIKey(token):
		r.fail("CLOUDFLARE_API_TOKEN", "looks like a Global API Key, not an API token",
			"use it as CLOUDFLARE_API_KEY with CLOUDFLARE_EMAIL (apiKeySecretRef + email), or create an API token with Zone → Zone → Read and Zone → DNS → Edit")
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
			r.fail("token", "Cloudflare rejected it ("+describe(err)+")", "create a new API token and update the Secret; check IP restrictions on the token")
			return r
		case verified.Status != "active":
			r.fail("token", "Cloudflare reports it as "+string(verified.Status), "create a new API token and update the Secret")
			return r
		case !verified.ExpiresOn.IsZero() && time.Now().After(verified.ExpiresOn):
			r.fail("token", "expired on "+verified.ExpiresOn.UTC().Format(time.RFC3339), "create a new API token and update the Secret")
			return r
		}
		r.pass("token", "active")
	case isKey && email != "":
		opts = append(opts, option.WithAPIKey(key), option.WithAPIEmail(email))
	case isKey:
		r.fail("CLOUDFLARE_EMAIL", "not set", "a Global API Key is used with its account's email: set CLOUDFLARE_EMAIL")
		return r
	default:
		r.fail("credential", "neither CLOUDFLARE_API_TOKEN nor CLOUDFLARE_API_KEY is set", "export CLOUDFLARE_API_TOKEN=<token> (or CLOUDFLARE_API_KEY and CLOUDFLARE_EMAIL)")
		return r
	}
	svc := zones.NewZoneService(opts...)
	if len(o.Zones) == 0 {
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
		}
		return r
	}
	for _, z := range o.Zones {
		name := strings.ToLower(strings.TrimSuffix(z, "."))
		var p zones.ZoneListParams
		p.Name.Value, p.Name.Present = name, true
		page, err := svc.List(ctx, p)
		switch {
		case err != nil:
			r.fail("zone "+name, "lookup failed ("+describe(err)+")", fixFor(err))
		case len(page.Result) == 0:
			r.fail("zone "+name, "not visible to this credential",
				"grant the token Zone → Zone → Read for "+name+" (or All zones); if the zone is in another account or its name servers are not Cloudflare's, use that account's credential")
		default:
			r.pass("zone "+name, "visible (id "+page.Result[0].ID+", "+string(page.Result[0].Status)+")")
			if o.WriteTest {
				writeTest(ctx, &r, dns.NewRecordService(opts...), page.Result[0].ID, name)
			}
		}
	}
	return r
}

// writeTest creates and deletes a uniquely named TXT record (F6).
func writeTest(ctx context.Context, r *Report, records *dns.RecordService, zoneID, zone string) {
	name := fmt.Sprintf("_certbridge-check-%d.%s", time.Now().UnixNano(), zone)
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
