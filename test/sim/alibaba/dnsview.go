package alibaba

import (
	"strings"

	"github.com/certbridge/certbridge/internal/dnstxt"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
)

var _ dnsserver.Source = (*Server)(nil)

// Zone implements dnsserver.Source: the account's domain holding name.
func (s *Server) Zone(name string) (string, bool) {
	name = asciiName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	best := ""
	for _, d := range s.domains {
		if (name == d.Name || strings.HasSuffix(name, "."+d.Name)) && len(d.Name) > len(best) {
			best = d.Name
		}
	}
	return best, best != ""
}

// TXT implements dnsserver.Source: each value as submitted, as one string
// cut into 255-byte pieces, from the records of the most specific domain
// holding name only. Alibaba Cloud DNS answers a sub-domain registered as
// a domain of its own from that domain's records: one written into the
// parent for a name below it is never served.
func (s *Server) TXT(name string) [][]string {
	var out [][]string
	for _, r := range s.served(name) {
		if parts, ok := dnstxt.Split(r.Value); ok && r.Type == "TXT" && r.FQDN() == asciiName(name) {
			out = append(out, parts)
		}
	}
	return out
}

// Exists implements dnsserver.Source: a record at name or below it, in the
// domain serving name.
func (s *Server) Exists(name string) bool {
	name = asciiName(name)
	for _, r := range s.served(name) {
		if f := r.FQDN(); f == name || strings.HasSuffix(f, "."+name) {
			return true
		}
	}
	return false
}

// served returns copies of the records of the domain serving name.
func (s *Server) served(name string) []Record {
	domain, ok := s.Zone(name)
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, r := range s.records[domain] {
		out = append(out, *r)
	}
	return out
}

// CNAME implements dnsserver.Source: a CNAME record (AddDomainRecord with
// Type CNAME) at name in the domain serving it, its value as the target.
func (s *Server) CNAME(name string) (string, bool) {
	for _, r := range s.served(name) {
		if r.Type == "CNAME" && r.FQDN() == asciiName(name) {
			return canonical(r.Value), true
		}
	}
	return "", false
}
