package cloudflare

import (
	"strings"

	"github.com/certbridge/certbridge/internal/dnstxt"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
)

var _ dnsserver.Source = (*Server)(nil)

// Zone implements dnsserver.Source: the active zone holding name.
func (s *Server) Zone(name string) (string, bool) {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	z := s.zoneFor(name)
	if z == nil || z.Status != "active" {
		return "", false
	}
	return z.Name, true
}

// TXT implements dnsserver.Source: the TXT records stored at name, served the
// way Cloudflare's edge serves stored content.
func (s *Server) TXT(name string) [][]string {
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	name = canonicalName(name)
	z := s.zoneFor(name)
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
	z := s.zoneFor(name)
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
