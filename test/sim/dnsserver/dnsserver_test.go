package dnsserver

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// staticZone serves fixed TXT and CNAME records under one apex.
type staticZone struct {
	apex  string
	txt   map[string][]string
	cname map[string]string
}

func (z staticZone) Zone(name string) (string, bool) {
	return z.apex, name == z.apex || strings.HasSuffix(name, "."+z.apex)
}
func (z staticZone) TXT(name string) [][]string {
	if v, ok := z.txt[name]; ok {
		return [][]string{v}
	}
	return nil
}
func (z staticZone) CNAME(name string) (string, bool) { t, ok := z.cname[name]; return t, ok }
func (z staticZone) Exists(name string) bool {
	for _, m := range []map[string]string{z.cname, keys(z.txt)} {
		for n := range m {
			if n == name || strings.HasSuffix(n, "."+name) {
				return true
			}
		}
	}
	return false
}

func keys(m map[string][]string) map[string]string {
	out := map[string]string{}
	for k := range m {
		out[k] = ""
	}
	return out
}

func TestSourcesPickTheLongestZone(t *testing.T) {
	parent := staticZone{apex: "example.com", txt: map[string][]string{"a.example.com": {"parent"}}}
	child := staticZone{apex: "dev.example.com", txt: map[string][]string{"a.dev.example.com": {"child"}}}
	srv, err := Start(Sources{parent, child})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cases := []struct {
		name  string
		rcode int
		want  string
	}{
		{"a.example.com.", dns.RcodeSuccess, "parent"},
		{"a.dev.example.com.", dns.RcodeSuccess, "child"},
		{"missing.dev.example.com.", dns.RcodeNameError, ""},
		{"example.org.", dns.RcodeRefused, ""},
	}
	for _, proto := range []string{"udp", "tcp"} {
		for _, tc := range cases {
			m := new(dns.Msg)
			m.SetQuestion(tc.name, dns.TypeTXT)
			r, _, err := (&dns.Client{Net: proto, Timeout: 2 * time.Second}).Exchange(m, srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if len(r.Answer) == 1 {
				got = r.Answer[0].(*dns.TXT).Txt[0]
			}
			if r.Rcode != tc.rcode || got != tc.want {
				t.Errorf("%s %s: rcode %d answer %q, want %d %q", proto, tc.name, r.Rcode, got, tc.rcode, tc.want)
			}
		}
	}
}

// A CNAME is answered for every type at its name and followed through the
// zones the server holds, across sources, as Pebble's and a recursive
// resolver's lookups need; a CNAME query gets the CNAME alone.
func TestCNAMEChains(t *testing.T) {
	com := staticZone{apex: "example.com", cname: map[string]string{
		"_acme-challenge.app.example.com":  "_acme-challenge.acme-delegation.example.net",
		"_acme-challenge.gone.example.com": "_acme-challenge.missing.example.net",
		"_acme-challenge.out.example.com":  "_acme-challenge.example.org",
		"loop-a.example.com":               "loop-b.example.com",
		"loop-b.example.com":               "loop-a.example.com",
	}}
	net := staticZone{apex: "example.net", txt: map[string][]string{}}
	delegation := staticZone{apex: "acme-delegation.example.net", txt: map[string][]string{
		"_acme-challenge.acme-delegation.example.net": {"token"}}}
	srv, err := Start(Sources{com, net, delegation})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ask := func(t *testing.T, name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		r, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(m, srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	describe := func(r *dns.Msg) string {
		var parts []string
		for _, rr := range r.Answer {
			switch v := rr.(type) {
			case *dns.CNAME:
				parts = append(parts, v.Hdr.Name+" CNAME "+v.Target)
			case *dns.TXT:
				parts = append(parts, v.Hdr.Name+" TXT "+strings.Join(v.Txt, ""))
			case *dns.SOA:
				parts = append(parts, v.Hdr.Name+" SOA")
			}
		}
		return dns.RcodeToString[r.Rcode] + ": " + strings.Join(parts, "; ")
	}
	cases := []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"_acme-challenge.app.example.com.", dns.TypeTXT,
			"NOERROR: _acme-challenge.app.example.com. CNAME _acme-challenge.acme-delegation.example.net.; _acme-challenge.acme-delegation.example.net. TXT token"},
		{"_acme-challenge.app.example.com.", dns.TypeCNAME,
			"NOERROR: _acme-challenge.app.example.com. CNAME _acme-challenge.acme-delegation.example.net."},
		// cert-manager's zone search asks SOA at the name: a CNAME there
		// sends it one label up.
		{"_acme-challenge.app.example.com.", dns.TypeSOA,
			"NOERROR: _acme-challenge.app.example.com. CNAME _acme-challenge.acme-delegation.example.net."},
		{"app.example.com.", dns.TypeSOA, "NOERROR: "},
		{"_acme-challenge.gone.example.com.", dns.TypeTXT,
			"NXDOMAIN: _acme-challenge.gone.example.com. CNAME _acme-challenge.missing.example.net."},
		{"_acme-challenge.out.example.com.", dns.TypeTXT,
			"NOERROR: _acme-challenge.out.example.com. CNAME _acme-challenge.example.org."},
		{"_acme-challenge.acme-delegation.example.net.", dns.TypeCNAME, "NOERROR: "},
	}
	for _, tc := range cases {
		if got := describe(ask(t, tc.name, tc.qtype)); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.name, dns.TypeToString[tc.qtype], got, tc.want)
		}
	}
	if r := ask(t, "loop-a.example.com.", dns.TypeTXT); len(r.Answer) != maxCNAMEs {
		t.Errorf("a loop is followed %d times, want %d: %s", len(r.Answer), maxCNAMEs, describe(r))
	}
}

// Static serves what it is given and nothing of anyone else's.
func TestStatic(t *testing.T) {
	srv, err := Start(Static{Apexes: []string{"example.com"},
		TXTs:   map[string][]string{"_acme-challenge.www.example.com": {"internal"}},
		CNAMEs: map[string]string{"_acme-challenge.app.example.com": "_acme-challenge.www.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for name, want := range map[string]string{
		"_acme-challenge.app.example.com.": "internal", "_acme-challenge.www.example.com.": "internal", "_acme-challenge.x.example.com.": "",
	} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeTXT)
		r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if n := len(r.Answer); n > 0 {
			if txt, ok := r.Answer[n-1].(*dns.TXT); ok {
				got = txt.Txt[0]
			}
		}
		if got != want || (want == "" && r.Rcode != dns.RcodeNameError) {
			t.Errorf("%s: %q rcode %d, want %q", name, got, r.Rcode, want)
		}
	}
}
