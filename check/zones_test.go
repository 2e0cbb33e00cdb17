package check_test

import (
	"context"
	"strings"
	"testing"

	"github.com/certbridge/certbridge/check"
	"github.com/certbridge/certbridge/internal/dnsname"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// A name's zone is the nearest of the name and its parents that the
// credential sees, as the solver finds it.
func TestCloudflareNames(t *testing.T) {
	t.Parallel()
	s := cfsim.Start()
	t.Cleanup(s.Close)
	s.AddZone("example.com")
	s.AddZone("dev.example.com")
	all := strings.Repeat("t", 40)
	s.AddToken(cfsim.Token{Value: all, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	noZoneRead := strings.Repeat("n", 40)
	s.AddToken(cfsim.Token{Value: noZoneRead, Permissions: []cfsim.Permission{cfsim.DNSEdit}})
	cases := []struct {
		name  string
		token string
		names []string
		pass  bool
		want  []string
	}{
		{"name in the apex zone", all, []string{"www.example.com"}, true, []string{"✓ zone of www.example.com: example.com (id "}},
		{"wildcard in a delegated sub-zone", all, []string{"*.api.dev.example.com"}, true, []string{"✓ zone of api.dev.example.com: dev.example.com"}},
		{"zone apex itself", all, []string{"example.com"}, true, []string{"✓ zone of example.com: example.com"}},
		{"F11 zone in no account", all, []string{"www.example.org"}, false,
			[]string{"✗ zone of www.example.org: no zone visible to this credential (tried www.example.org, example.org)", "zoneName / zoneID"}},
		{"F5 token without Zone Read", noZoneRead, []string{"www.example.com"}, false,
			[]string{"tried www.example.com, example.com", "Zone → Zone → Read for the zone of www.example.com"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := check.CloudflareCredentials(context.Background(), env(map[string]string{"CLOUDFLARE_API_TOKEN": tc.token}),
				check.CloudflareOptions{BaseURL: s.URL(), Names: tc.names})
			assertReport(t, r, tc.pass, tc.want, tc.token)
		})
	}
	t.Run("apex and wildcard share one zone line", func(t *testing.T) {
		t.Parallel()
		r := check.CloudflareCredentials(context.Background(), env(map[string]string{"CLOUDFLARE_API_TOKEN": all}),
			check.CloudflareOptions{BaseURL: s.URL(), Names: []string{"example.com", "*.example.com", "Example.com."}})
		if len(r.Findings) != 2 || r.Findings[1].Check != "zone of example.com" {
			t.Errorf("want the token and one zone finding, got %+v", r.Findings)
		}
	})
	t.Run("zoneID needs no lookup", func(t *testing.T) {
		t.Parallel()
		z := s.AddZone("example.net")
		r := check.CloudflareCredentials(context.Background(), env(map[string]string{"CLOUDFLARE_API_TOKEN": noZoneRead}),
			check.CloudflareOptions{BaseURL: s.URL(), ZoneID: z.ID, WriteTest: true})
		assertReport(t, r, true, []string{"✓ zone id " + z.ID + ": its DNS records are readable", "✓ write test id " + z.ID}, noZoneRead)
	})
	t.Run("findings name the Secret", func(t *testing.T) {
		t.Parallel()
		global := "0123456789abcdef0123456789abcdef01234"
		r := check.CloudflareCredentials(context.Background(), env(map[string]string{"CLOUDFLARE_API_TOKEN": global}),
			check.CloudflareOptions{BaseURL: s.URL(), Sources: map[string]string{"CLOUDFLARE_API_TOKEN": `Secret default/cf key "token" (apiTokenSecretRef)`}})
		assertReport(t, r, false, []string{`✗ Secret default/cf key "token" (apiTokenSecretRef): looks like a Global API Key`, "apiKeySecretRef together with email"}, global)
	})
}

func TestAliDNSNames(t *testing.T) {
	t.Parallel()
	s := alisim.Start()
	t.Cleanup(s.Close)
	s.AddDomain("example.net", alisim.FreeEdition)
	s.AddForeignDomain("example.org")
	const id, secret = "LTAI5tNamesWalkKey000001", "namesWalkAccessKeySecret00000000"
	s.AddAccessKey(alisim.AccessKey{ID: id, Secret: secret, Policy: alisim.AllowAll})
	const minimal = "LTAI5tMinimalPolicy00001"
	s.AddAccessKey(alisim.AccessKey{ID: minimal, Secret: secret, Policy: alisim.Policy{Actions: []string{
		"alidns:DescribeDomainInfo", "alidns:AddDomainRecord", "alidns:DescribeSubDomainRecords", "alidns:DeleteDomainRecord"}}})
	const noDNS = "LTAI5tNoDNSActions000001"
	s.AddAccessKey(alisim.AccessKey{ID: noDNS, Secret: secret, Policy: alisim.Policy{Actions: []string{"yundun-cert:*"}}})
	cases := []struct {
		name  string
		id    string
		names []string
		pass  bool
		want  []string
	}{
		{"wildcard under a domain of the account", id, []string{"*.www.example.net"}, true, []string{"✓ domain of www.example.net: example.net (edition mianfei"}},
		{"F13 domain of another account", id, []string{"www.example.org"}, false,
			[]string{"✗ domain of www.example.org: no domain of this account holds it (tried www.example.org, example.org)"}},
		{"F13 policy without alidns", noDNS, []string{"www.example.net"}, false, []string{"✗ domain of www.example.net: refused (Forbidden.RAM: ", "alidns:DescribeDomainInfo"}},
		{"the README's four actions, no selector", minimal, nil, true, []string{"✓ AccessKey LTAI****: accepted (it may not list domains"}},
		{"F13 policy without alidns, no selector", noDNS, nil, false, []string{"neither alidns:DescribeDomains nor alidns:DescribeDomainInfo"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := check.AliDNSCredentials(context.Background(), env(map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": tc.id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret}),
				check.AliDNSOptions{Endpoint: "http://" + s.Endpoint(), Names: tc.names})
			assertReport(t, r, tc.pass, tc.want, secret)
		})
	}
}

// check credentials finds an internationalised domain as the solver does,
// however the names are written, and names it both ways.
func TestAliDNSCredentials_InternationalisedNames(t *testing.T) {
	t.Parallel()
	s := alisim.Start()
	t.Cleanup(s.Close)
	s.AddIDNDomains()
	const id, secret = "LTAI5tInternationalNames", "internationalNamesAccessKeySecret"
	s.AddAccessKey(alisim.AccessKey{ID: id, Secret: secret, Policy: alisim.AllowAll})
	vars := env(map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret})
	for _, tc := range alisim.IDNCases {
		t.Run(tc.Name, func(t *testing.T) {
			o := check.AliDNSOptions{Endpoint: "http://" + s.Endpoint(), WriteTest: true}
			want := []string{"✓ write test " + dnsname.Display(tc.WantDomain) + ": added and deleted a TXT record"}
			if tc.DomainName != "" {
				o.Domains = []string{tc.DomainName}
				want = append(want, "✓ domain "+dnsname.Display(tc.WantDomain)+": in the account (edition mianfei")
			} else {
				o.Names = []string{tc.DNSName}
				name := dnsname.ASCII(strings.TrimPrefix(tc.DNSName, "*."))
				want = append(want, "✓ domain of "+dnsname.Display(name)+": "+dnsname.Display(tc.WantDomain)+" (edition mianfei")
			}
			assertReport(t, check.AliDNSCredentials(context.Background(), vars, o), true, want, secret)
		})
	}
	t.Run("domain not in the account, named both ways", func(t *testing.T) {
		r := check.AliDNSCredentials(context.Background(), vars, check.AliDNSOptions{Endpoint: "http://" + s.Endpoint(),
			Names: []string{"www.测试.中国"}, Domains: []string{"测试.中国"}})
		assertReport(t, r, false, []string{
			"✗ domain 测试.中国 (xn--0zwm56d.xn--fiqs8s): not a domain of this account",
			"✗ domain of www.测试.中国 (www.xn--0zwm56d.xn--fiqs8s): no domain of this account holds it (tried www.测试.中国 (www.xn--0zwm56d.xn--fiqs8s), 测试.中国 (xn--0zwm56d.xn--fiqs8s))",
		}, secret)
	})
	if left := s.AllRecords(); len(left) != 0 {
		t.Errorf("the write tests left records: %+v", left)
	}
}
