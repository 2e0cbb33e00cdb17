package alibaba

import (
	"strings"

	"github.com/certbridge/certbridge/internal/dnstxt"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
)

var _ dnsserver.Source = (*Server)(nil)

// Zone implements dnsserver.Source: the account's domain holding name.
func (s *Server) Zone(name string) (string, bool) {
	name = canonical(name)
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

// TXT implements dnsserver.Source: each value as submitted, as one string cut
// into 255-byte pieces.
func (s *Server) TXT(name string) [][]string {
	var out [][]string
	for _, r := range s.Records(name) {
		if parts, ok := dnstxt.Split(r.Value); ok && r.Type == "TXT" {
			out = append(out, parts)
		}
	}
	return out
}

// Exists implements dnsserver.Source.
func (s *Server) Exists(name string) bool {
	name = canonical(name)
	for _, r := range s.AllRecords() {
		if f := r.FQDN(); f == name || strings.HasSuffix(f, "."+name) {
			return true
		}
	}
	return false
}
