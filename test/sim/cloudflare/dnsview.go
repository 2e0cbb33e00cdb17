package cloudflare

import (
	"strings"

	"github.com/certbridge/certbridge/internal/dnstxt"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
)

var _ dnsserver.Source = (*Server)(nil)

// Zone implements dnsserver.Source: the most specific active zone holding
// name, the one Cloudflare's edge answers name from.
func (s *Server) Zone(name string) (string, bool) {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	z := s.servingZone(name)
	if z == nil {
		return "", false
	}
	return z.Name, true
}

// TXT implements dnsserver.Source: the TXT records stored at name in the
// zone serving it, as Cloudflare's edge serves stored content; a record of
// that name in any other zone (a parent, a pending twin) is not served.
func (s *Server) TXT(name string) [][]string {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	name = canonicalName(name)
	z := s.servingZone(name)
	if z == nil {
		return nil
	}
	var out [][]string
	for _, rec := range s.records[z.ID] {
		if rec.Name == name && rec.Type == "TXT" {
			if parts, ok := dnstxt.Split(rec.Content); ok {
				out = append(out, parts)
			}
		}
	}
	return out
}

// Exists implements dnsserver.Source.
func (s *Server) Exists(name string) bool {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	name = canonicalName(name)
	z := s.servingZone(name)
	if z == nil {
		return false
	}
	for _, rec := range s.records[z.ID] {
		if rec.Name == name || strings.HasSuffix(rec.Name, "."+name) {
			return true
		}
	}
	return false
}

// CNAME implements dnsserver.Source: a CNAME record stored at name in the
// zone serving it (created through the record API like any other record),
// its content as the target.
func (s *Server) CNAME(name string) (string, bool) {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	name = canonicalName(name)
	z := s.servingZone(name)
	if z == nil {
		return "", false
	}
	for _, rec := range s.records[z.ID] {
		if rec.Name == name && rec.Type == "CNAME" {
			return canonicalName(rec.Content), true
		}
	}
	return "", false
}
