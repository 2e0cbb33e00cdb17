package alibaba

// IDNCase is one scenario of internationalised (and mixed-case) names that
// the alidns solver, `certbridge check credentials` and `certbridge check
// issuer --propagation` are each tested with, against a simulator holding
// every IDNCase's Domain.
type IDNCase struct {
	Name string
	// Domain is the domain as added to the account, as a user types it.
	Domain string
	// DNSName is the Certificate's name, as written there.
	DNSName string
	// DomainName is the solver's domainName; "" for none.
	DomainName string
	// WantDomain and WantRR are where the record belongs, as DNS carries
	// them (lower case, punycode).
	WantDomain, WantRR string
}

// IDNCases are the scenarios. 例子.中国 is xn--fsqu00a.xn--fiqs8s, 商店 is
// xn--czrs0t.
var IDNCases = []IDNCase{
	{Name: "Chinese domain", Domain: "例子.中国", DNSName: "例子.中国",
		WantDomain: "xn--fsqu00a.xn--fiqs8s", WantRR: "_acme-challenge"},
	{Name: "Chinese domain, wildcard of a Chinese label", Domain: "例子.中国", DNSName: "*.商店.例子.中国",
		WantDomain: "xn--fsqu00a.xn--fiqs8s", WantRR: "_acme-challenge.xn--czrs0t"},
	{Name: "Chinese domain, name written in punycode", Domain: "例子.中国", DNSName: "www.xn--fsqu00a.xn--fiqs8s",
		WantDomain: "xn--fsqu00a.xn--fiqs8s", WantRR: "_acme-challenge.www"},
	{Name: "Chinese label under an ASCII domain", Domain: "example.com", DNSName: "商店.example.com",
		WantDomain: "example.com", WantRR: "_acme-challenge.xn--czrs0t"},
	{Name: "Chinese sub-domain registered as a domain of its own", Domain: "商店.example.net", DNSName: "api.商店.example.net",
		WantDomain: "xn--czrs0t.example.net", WantRR: "_acme-challenge.api"},
	{Name: "mixed case", Domain: "Example.ORG", DNSName: "WWW.Example.Org",
		WantDomain: "example.org", WantRR: "_acme-challenge.www"},
	{Name: "domainName in Unicode", Domain: "例子.中国", DNSName: "app.例子.中国", DomainName: "例子.中国",
		WantDomain: "xn--fsqu00a.xn--fiqs8s", WantRR: "_acme-challenge.app"},
	{Name: "domainName in punycode", Domain: "例子.中国", DNSName: "app.例子.中国", DomainName: "xn--fsqu00a.xn--fiqs8s",
		WantDomain: "xn--fsqu00a.xn--fiqs8s", WantRR: "_acme-challenge.app"},
	{Name: "domainName in mixed-case punycode", Domain: "例子.中国", DNSName: "App.例子.中国", DomainName: "XN--FSQU00A.xn--FIQS8S",
		WantDomain: "xn--fsqu00a.xn--fiqs8s", WantRR: "_acme-challenge.app"},
	{Name: "domainName in mixed case", Domain: "Example.ORG", DNSName: "api.example.org", DomainName: "EXAMPLE.org",
		WantDomain: "example.org", WantRR: "_acme-challenge.api"},
}

// AddIDNDomains adds every IDNCase's domain to the account, and
// example.net, the parent of the sub-domain registered on its own, unless
// the account has them.
func (s *Server) AddIDNDomains() {
	seen := map[string]bool{}
	for _, d := range s.AllDomains() {
		seen[d.Name] = true
	}
	for _, name := range append(idnDomains(), "example.net") {
		if !seen[asciiName(name)] {
			seen[asciiName(name)] = true
			s.AddDomain(name, FreeEdition)
		}
	}
}

func idnDomains() []string {
	var out []string
	for _, c := range IDNCases {
		out = append(out, c.Domain)
	}
	return out
}

// IDNZones are the domains AddIDNDomains adds, as DNS carries them.
func IDNZones() []string {
	seen := map[string]bool{}
	var out []string
	for _, name := range append(idnDomains(), "example.net") {
		if a := asciiName(name); !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
