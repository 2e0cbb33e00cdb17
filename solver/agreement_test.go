package solver_test

import (
	"context"
	"testing"
	"time"

	"github.com/certbridge/certbridge/check"
	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/internal/cloudflare"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// firstFailure is the reason of a report's first ✗.
func firstFailure(t *testing.T, r check.Report) string {
	t.Helper()
	for _, f := range r.Findings {
		if !f.OK {
			return f.Reason
		}
	}
	t.Fatalf("the check passed: %+v", r.Findings)
	return ""
}

// `certbridge check credentials` and the webhook answer each failure of the
// catalogue with the same reason: they resolve zones and classify errors
// with the same code (internal/cloudflare, internal/alibaba).
func TestCheckAgreesWithTheWebhook_Cloudflare(t *testing.T) {
	const account2 = "fedcba9876543210fedcba9876543210"
	cases := []struct {
		name string
		// setup prepares the simulator and returns the credential.
		setup func(sim *cfsim.Server) string
		want  string
	}{
		{"F4 Global API Key in the token field", func(sim *cfsim.Server) string { return randomGlobalKey() }, "credential_malformed"},
		{"F5 token without Zone Read", func(sim *cfsim.Server) string {
			tok := randomToken()
			sim.AddToken(cfsim.Token{Value: tok, Permissions: []cfsim.Permission{cfsim.DNSEdit}})
			return tok
		}, "no_zone"},
		{"F6 token without DNS Edit", func(sim *cfsim.Server) string {
			tok := randomToken()
			sim.AddToken(cfsim.Token{Value: tok, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSRead}})
			return tok
		}, "permission_missing"},
		{"F7 token Cloudflare never issued", func(sim *cfsim.Server) string { return randomToken() }, "credential_rejected"},
		{"F11 zone in no account of the token", func(sim *cfsim.Server) string {
			tok := randomToken()
			sim.AddToken(cfsim.Token{Value: tok, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}, Zones: []string{"example.org"}})
			return tok
		}, "no_zone"},
		{"the only zone is pending", func(sim *cfsim.Server) string {
			sim.SetZoneStatus(sim.AllZones()[0].ID, cfsim.ZonePending)
			tok := randomToken()
			sim.AddToken(cfsim.Token{Value: tok, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
			return tok
		}, "zone_not_active"},
		{"two active zones of one name", func(sim *cfsim.Server) string {
			sim.AddZoneSpec(cfsim.ZoneSpec{Name: "example.com", Account: account2})
			tok := randomToken()
			sim.AddToken(cfsim.Token{Value: tok, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
			return tok
		}, "zone_ambiguous"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCFEnv(t)
			tok := tc.setup(e.sim)
			createSecret(t, e.ns, "cf-token", map[string]string{"api-token": tok})
			cfg := map[string]any{"apiTokenSecretRef": map[string]any{"name": "cf-token", "key": "api-token"}}
			webhook := cloudflare.ReasonOf(e.present(cfg, acmeKey()))
			r := check.CloudflareCredentials(context.Background(), func(k string) string {
				if k == "CLOUDFLARE_API_TOKEN" {
					return tok
				}
				return ""
			}, check.CloudflareOptions{BaseURL: e.sim.URL(), Names: []string{"example.com"}, WriteTest: true})
			if got := firstFailure(t, r); webhook != tc.want || got != tc.want {
				t.Errorf("webhook says %q, check says %q; want both %q", webhook, got, tc.want)
			}
		})
	}
}

func TestCheckAgreesWithTheWebhook_AliDNS(t *testing.T) {
	cases := []struct {
		name  string
		setup func(e *aliEnv) (id, secret string)
		want  string
	}{
		{"F13 unknown AccessKey", func(e *aliEnv) (string, string) { return "LTAI5tNeverIssued0000001", randomFrom(alnum, 30) }, "access_key_unknown"},
		{"F13 wrong secret", func(e *aliEnv) (string, string) {
			id, _, _ := e.accessKey(alisim.AllowAll)
			return id, randomFrom(alnum, 30)
		}, "secret_mismatch"},
		{"F13 policy without alidns", func(e *aliEnv) (string, string) {
			id, secret, _ := e.accessKey(alisim.Policy{Actions: []string{"yundun-cert:*"}})
			return id, secret
		}, "permission_missing"},
		{"F13 clock skew", func(e *aliEnv) (string, string) {
			id, secret, _ := e.accessKey(alisim.AllowAll)
			e.sim.SetClock(func() time.Time { return time.Now().Add(time.Hour) })
			return id, secret
		}, "clock_skew"},
		{"F11 domain in another account", func(e *aliEnv) (string, string) {
			e.sim.AddForeignDomain("example.org")
			id, secret, _ := e.accessKey(alisim.AllowAll)
			return id, secret
		}, "no_domain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newAliEnv(t)
			id, secret := tc.setup(e)
			name := "example.com"
			if tc.want == "no_domain" {
				name = "example.org"
			}
			createSecret(t, e.ns, "ali-agree", map[string]string{"id": id, "secret": secret})
			cfg := map[string]any{
				"accessKeyIdSecretRef":     map[string]any{"name": "ali-agree", "key": "id"},
				"accessKeySecretSecretRef": map[string]any{"name": "ali-agree", "key": "secret"},
			}
			webhook := alibaba.ReasonOf(e.solver.Present(challenge(t, e.ns, "_acme-challenge."+name+".", name+".", acmeKey(), cfg)))
			r := check.AliDNSCredentials(context.Background(), func(k string) string {
				return map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret}[k]
			}, check.AliDNSOptions{Endpoint: "http://" + e.sim.Endpoint(), Names: []string{name}, WriteTest: true})
			if got := firstFailure(t, r); webhook != tc.want || got != tc.want {
				t.Errorf("webhook says %q, check says %q; want both %q", webhook, got, tc.want)
			}
		})
	}
}
