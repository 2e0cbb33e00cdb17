package dnsserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/dns"
	"github.com/cloudflare/cloudflare-go/v7/option"
	mdns "github.com/miekg/dns"

	alibabaapi "github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
)

// A delegated _acme-challenge: the CNAME lives in Cloudflare's example.com,
// the TXT record in acme-delegation.example.net, a domain of the Alibaba
// Cloud DNS account (a sub-domain of example.net registered as its own).
// One server answers for both simulators and follows the CNAME across
// them; which simulator serves which name does not change.
func TestCNAMEAcrossSimulators(t *testing.T) {
	const token = "simTokenWithZoneReadAndDnsEdit0000000000"
	cf := cfsim.Start()
	defer cf.Close()
	cf.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	z := cf.AddZone("example.com")
	ali := alibaba.Start()
	defer ali.Close()
	ali.AddDomain("example.net", alibaba.FreeEdition)
	ali.AddDomain("acme-delegation.example.net", alibaba.FreeEdition)
	ali.AddAccessKey(alibaba.AccessKey{ID: "LTAI5tDnsServerTest00001", Secret: "dnsServerTestAccessKeySecret0001", Policy: alibaba.AllowAll})
	endpoint, err := alibabaapi.ParseEndpoint("--alidns-endpoint", "http://"+ali.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	client, err := alibabaapi.NewDNSClient(alibabaapi.Options{DNS: endpoint},
		alibabaapi.Credential{AccessKeyID: "LTAI5tDnsServerTest00001", AccessKeySecret: "dnsServerTestAccessKeySecret0001"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.AddTXT(context.Background(), "acme-delegation.example.net", "_acme-challenge", "delegated-token", 600); err != nil {
		t.Fatal(err)
	}

	var cname dns.CNAMERecordParam
	cname.Name.Value, cname.Name.Present = "_acme-challenge.app.example.com", true
	cname.Type.Value, cname.Type.Present = dns.CNAMERecordTypeCNAME, true
	cname.Content.Value, cname.Content.Present = "_acme-challenge.acme-delegation.example.net", true
	cname.TTL.Value, cname.TTL.Present = 1, true
	var p dns.RecordNewParams
	p.ZoneID.Value, p.ZoneID.Present = z.ID, true
	p.Body = cname
	svc := dns.NewRecordService(option.WithBaseURL(cf.URL()), option.WithAPIToken(token), option.WithMaxRetries(0))
	if _, err := svc.New(context.Background(), p); err != nil {
		t.Fatal(err)
	}

	src := dnsserver.Sources{cf, ali}
	for name, want := range map[string]string{
		"_acme-challenge.app.example.com":             "example.com",
		"_acme-challenge.acme-delegation.example.net": "acme-delegation.example.net",
		"_acme-challenge.example.net":                 "example.net",
	} {
		if apex, _ := src.Zone(name); apex != want {
			t.Errorf("zone of %s: %q, want %q", name, apex, want)
		}
	}
	srv, err := dnsserver.Start(src)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, proto := range []string{"udp", "tcp"} {
		m := new(mdns.Msg)
		m.SetQuestion("_acme-challenge.app.example.com.", mdns.TypeTXT)
		r, _, err := (&mdns.Client{Net: proto, Timeout: 2 * time.Second}).Exchange(m, srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Answer) != 2 || r.Answer[0].(*mdns.CNAME).Target != "_acme-challenge.acme-delegation.example.net." ||
			r.Answer[1].(*mdns.TXT).Txt[0] != "delegated-token" {
			t.Errorf("%s: %v", proto, r.Answer)
		}
	}
}
