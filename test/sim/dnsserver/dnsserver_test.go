package dnsserver

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// staticZone serves fixed TXT records under one apex.
type staticZone struct {
	apex string
	txt  map[string][]string
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
func (z staticZone) Exists(name string) bool { _, ok := z.txt[name]; return ok }

func TestSourcesPickTheLongestZone(t *testing.T) {
	parent := staticZone{"example.com", map[string][]string{"a.example.com": {"parent"}}}
	child := staticZone{"dev.example.com", map[string][]string{"a.dev.example.com": {"child"}}}
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
