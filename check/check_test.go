package check_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/certbridge/certbridge/check"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// assertReport checks pass/fail, the wanted texts, and that no secret shows
// in either output form.
func assertReport(t *testing.T, r check.Report, wantPass bool, want []string, secrets ...string) {
	t.Helper()
	var text, js bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if r.Passed() != wantPass {
		t.Errorf("Passed() = %v, want %v:\n%s", r.Passed(), wantPass, text.String())
	}
	for _, w := range want {
		if !strings.Contains(text.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, text.String())
		}
	}
	for _, s := range secrets {
		if strings.Contains(text.String(), s) || strings.Contains(js.String(), s) {
			t.Errorf("output holds a credential value")
		}
	}
}

func TestCloudflareCredentials(t *testing.T) {
	s := cfsim.Start()
	t.Cleanup(s.Close)
	s.AddZone("example.com")
	s.AddZone("example.org")
	good := strings.Repeat("g", 40)
	s.AddToken(cfsim.Token{Value: good, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}, Zones: []string{"example.com"}})
	globalKey := "0123456789abcdef0123456789abcdef01234"
	cases := []struct {
		name  string
		vars  map[string]string
		zones []string
		pass  bool
		want  []string
	}{
		{"valid token that sees the zone", map[string]string{"CLOUDFLARE_API_TOKEN": good + "\n"}, []string{"example.com"}, true,
			[]string{"✓ token: active", "✓ zone example.com: visible", "has leading or trailing whitespace"}},
		{"F5 zone outside the token's scope", map[string]string{"CLOUDFLARE_API_TOKEN": good}, []string{"example.org"}, false,
			[]string{"✗ zone example.org: not visible", "Zone → Zone → Read for example.org"}},
		{"F7 revoked token", map[string]string{"CLOUDFLARE_API_TOKEN": strings.Repeat("r", 40)}, nil, false,
			[]string{"✗ token: Cloudflare rejected it", "1000", "create a new API token"}},
		{"F4 Global API Key as a token", map[string]string{"CLOUDFLARE_API_TOKEN": globalKey}, nil, false,
			[]string{"looks like a Global API Key", "CLOUDFLARE_EMAIL"}},
		{"nothing set", map[string]string{}, nil, false, []string{"neither CLOUDFLARE_API_TOKEN nor CLOUDFLARE_API_KEY"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := check.CloudflareCredentials(context.Background(), env(tc.vars), check.CloudflareOptions{BaseURL: s.URL(), Zones: tc.zones})
			assertReport(t, r, tc.pass, tc.want, good, globalKey, strings.Repeat("r", 40))
		})
	}
	t.Run("write test", func(t *testing.T) {
		r := check.CloudflareCredentials(context.Background(), env(map[string]string{"CLOUDFLARE_API_TOKEN": good}),
			check.CloudflareOptions{BaseURL: s.URL(), Zones: []string{"example.com"}, WriteTest: true})
		assertReport(t, r, true, []string{"✓ write test example.com: created and deleted a TXT record"}, good)
		readOnly := strings.Repeat("o", 40)
		s.AddToken(cfsim.Token{Value: readOnly, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSRead}})
		r = check.CloudflareCredentials(context.Background(), env(map[string]string{"CLOUDFLARE_API_TOKEN": readOnly}),
			check.CloudflareOptions{BaseURL: s.URL(), Zones: []string{"example.com"}, WriteTest: true})
		assertReport(t, r, false, []string{"✗ write test example.com", "10000", "grant Zone → DNS → Edit"}, readOnly)
		if left := s.AllRecords(); len(left) != 0 {
			t.Errorf("the write test left records: %+v", left)
		}
	})
}

func TestAliDNSCredentials(t *testing.T) {
	s := alisim.Start()
	t.Cleanup(s.Close)
	s.AddDomain("example.com", alisim.FreeEdition)
	const id, secret = "LTAI5tCheckCommandKey001", "checkCommandAccessKeySecret000"
	s.AddAccessKey(alisim.AccessKey{ID: id, Secret: secret, Policy: alisim.AllowAll})
	s.AddAccessKey(alisim.AccessKey{ID: "LTAI5tNoDNSRights0000001", Secret: secret, Policy: alisim.Policy{Actions: []string{"yundun-cert:*"}}})
	cases := []struct {
		name    string
		vars    map[string]string
		domains []string
		pass    bool
		want    []string
	}{
		{"valid key and domain", map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret}, []string{"example.com"}, true,
			[]string{"✓ domain example.com: in the account (edition mianfei, minimum TTL 600)"}},
		{"valid key, no domain given", map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret}, nil, true,
			[]string{"✓ AccessKey LTAI****: accepted; the account has 1 domain(s)"}},
		{"F13 wrong secret", map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret + "x"}, []string{"example.com"}, false,
			[]string{"SignatureDoesNotMatch", "does not belong to AccessKey LTAI****"}},
		{"F13 unknown AccessKey", map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5tNowhere", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret}, nil, false,
			[]string{"InvalidAccessKeyId.NotFound"}},
		{"F13 RAM policy without alidns", map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI5tNoDNSRights0000001", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret}, []string{"example.com"}, false,
			[]string{"Forbidden.RAM", "alidns:DescribeDomainInfo"}},
		{"F13 domain not in the account", map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret}, []string{"example.net"}, false,
			[]string{"✗ domain example.net: not a domain of this account", "add it to Alibaba Cloud DNS there"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := check.AliDNSCredentials(context.Background(), env(tc.vars), check.AliDNSOptions{Endpoint: "http://" + s.Endpoint(), Domains: tc.domains})
			assertReport(t, r, tc.pass, tc.want, secret, id)
		})
	}
	t.Run("write test", func(t *testing.T) {
		s.AddAccessKey(alisim.AccessKey{ID: "LTAI5tReadOnlyDNS0000001", Secret: secret, Policy: alisim.Policy{Actions: []string{"alidns:DescribeDomainInfo"}}})
		vars := map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret}
		r := check.AliDNSCredentials(context.Background(), env(vars), check.AliDNSOptions{Endpoint: "http://" + s.Endpoint(), Domains: []string{"example.com"}, WriteTest: true})
		assertReport(t, r, true, []string{"✓ write test example.com: added and deleted a TXT record"}, secret, id)
		vars["ALIBABA_CLOUD_ACCESS_KEY_ID"] = "LTAI5tReadOnlyDNS0000001"
		r = check.AliDNSCredentials(context.Background(), env(vars), check.AliDNSOptions{Endpoint: "http://" + s.Endpoint(), Domains: []string{"example.com"}, WriteTest: true})
		assertReport(t, r, false, []string{"✗ write test example.com", "Forbidden.RAM", "alidns:AddDomainRecord"}, secret)
		if left := s.AllRecords(); len(left) != 0 {
			t.Errorf("the write test left records: %+v", left)
		}
	})
}

// An endpoint without a scheme is HTTPS, as for the webhook; pointed at a
// plain-HTTP server, the finding says so in the transport's own words and
// names the endpoint, where it once said "refused ()".
func TestAliDNSCredentials_EndpointErrorKeepsItsCause(t *testing.T) {
	s := alisim.Start()
	t.Cleanup(s.Close)
	const id, secret = "LTAI5tEndpointCause00001", "endpointCauseAccessKeySecret00"
	s.AddAccessKey(alisim.AccessKey{ID: id, Secret: secret, Policy: alisim.AllowAll})
	vars := map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret}
	r := check.AliDNSCredentials(context.Background(), env(vars), check.AliDNSOptions{Endpoint: s.Endpoint()})
	assertReport(t, r, false, []string{"✗ AccessKey LTAI****: refused (no answer from https://" + s.Endpoint() + ": ",
		"server gave HTTP response to HTTPS client", "check --alidns-endpoint (https://" + s.Endpoint() + ")", "needs http://"}, secret, id)
	r = check.AliDNSCredentials(context.Background(), env(vars), check.AliDNSOptions{Endpoint: "ftp://" + s.Endpoint()})
	assertReport(t, r, false, []string{"✗ endpoint: --alidns-endpoint", "the scheme must be http or https"}, secret)
}
