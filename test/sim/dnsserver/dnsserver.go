// Package dnsserver is an authoritative DNS server on loopback that serves the
// zones of a simulator (SOA, NS, TXT and CNAME), over UDP and TCP on one port,
// so that propagation checks — cert-manager's and Pebble's — query real DNS.
package dnsserver

import (
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Source is what the server answers from: a simulator's zones and records.
// Names are lower case without a trailing dot.
type Source interface {
	// Zone returns the apex of the zone holding name, if one is served.
	Zone(name string) (apex string, ok bool)
	// TXT returns the TXT records at name, each as its character-strings.
	TXT(name string) [][]string
	// CNAME returns the target of the CNAME record at name, if there is
	// one. A name with a CNAME has no other data (RFC 1034 §3.6.2): the
	// server answers every type at it with the CNAME.
	CNAME(name string) (target string, ok bool)
	// Exists reports whether any record is at name or below it.
	Exists(name string) bool
}

// TTL of every answer: short, so tests never wait on a cache.
const TTL = 1

// Server is a running DNS server.
type Server struct {
	Addr string // host:port, the same for UDP and TCP

	udp, tcp *dns.Server
	src      Source
	once     sync.Once
}

// Start serves src on 127.0.0.1 on a free port (the same for UDP and TCP).
func Start(src Source) (*Server, error) {
	return StartOn("127.0.0.1:0", src)
}

// StartOn serves src on addr; port 0 picks a port free for both protocols.
func StartOn(addr string, src Source) (*Server, error) {
	s := &Server{src: src}
	var lastErr error
	for range 20 { // a port free for TCP may be taken for UDP; try another
		tl, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("dnsserver: listen tcp %s: %w", addr, err)
		}
		pc, err := net.ListenPacket("udp", tl.Addr().String())
		if err != nil {
			_ = tl.Close()
			lastErr = err
			continue
		}
		s.Addr = tl.Addr().String()
		s.tcp = &dns.Server{Listener: tl, Handler: s}
		s.udp = &dns.Server{PacketConn: pc, Handler: s}
		start := func(srv *dns.Server) error {
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			errc := make(chan error, 1)
			go func() { errc <- srv.ActivateAndServe() }()
			select {
			case <-started:
				return nil
			case err := <-errc:
				return err
			}
		}
		if err := start(s.udp); err != nil {
			return nil, fmt.Errorf("dnsserver: serve udp: %w", err)
		}
		if err := start(s.tcp); err != nil {
			_ = s.udp.Shutdown()
			return nil, fmt.Errorf("dnsserver: serve tcp: %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("dnsserver: no port free for both udp and tcp: %w", lastErr)
}

// Close stops both listeners.
func (s *Server) Close() {
	s.once.Do(func() {
		_ = s.udp.Shutdown()
		_ = s.tcp.Shutdown()
	})
}

// maxCNAMEs bounds a chain the server follows within its own zones, so a
// loop ends; resolvers give up sooner (cert-manager detects loops itself).
const maxCNAMEs = 8

// ServeDNS answers one query authoritatively. At a name holding a CNAME,
// any type but CNAME is answered with the CNAME and, as an authoritative
// server does for the zones it also serves, the chain is followed within
// them: a TXT query for _acme-challenge.app.example.com CNAME
// _acme-challenge.acme-delegation.example.net gets both the CNAME and the
// target's TXT records, which is what Pebble's resolver and a recursive
// resolver expect. The rcode is the last name's (RFC 6604).
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.Compress = true
	defer func() {
		// Over UDP, an answer larger than the client takes (512 bytes, or
		// its EDNS0 size) is cut and flagged TC, so the client asks again
		// over TCP, as from any real server.
		if _, udp := w.LocalAddr().(*net.UDPAddr); udp {
			size := dns.MinMsgSize
			if opt := req.IsEdns0(); opt != nil {
				size = int(opt.UDPSize())
			}
			m.Truncate(size)
		}
		_ = w.WriteMsg(m)
	}()
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		m.Rcode = dns.RcodeNotImplemented
		return
	}
	q := req.Question[0]
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	owner := q.Name // the first answer keeps the question's spelling
	apex, ok := s.src.Zone(name)
	if !ok {
		m.Authoritative = false
		m.Rcode = dns.RcodeRefused
		return
	}
	for range maxCNAMEs {
		target, isAlias := s.src.CNAME(name)
		if !isAlias || name == apex {
			break
		}
		target = strings.ToLower(strings.TrimSuffix(target, "."))
		m.Answer = append(m.Answer, &dns.CNAME{
			Hdr:    dns.RR_Header{Name: owner, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: TTL},
			Target: dns.Fqdn(target),
		})
		if q.Qtype == dns.TypeCNAME {
			return
		}
		targetApex, served := s.src.Zone(target)
		if !served {
			return // the resolver goes on from here, elsewhere
		}
		name, apex, owner = target, targetApex, dns.Fqdn(target)
	}
	aliases := len(m.Answer)
	soa := &dns.SOA{
		Hdr:     dns.RR_Header{Name: dns.Fqdn(apex), Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: TTL},
		Ns:      dns.Fqdn("ns1." + apex),
		Mbox:    dns.Fqdn("hostmaster." + apex),
		Serial:  1,
		Refresh: 3600, Retry: 600, Expire: 86400, Minttl: TTL,
	}
	switch {
	case q.Qtype == dns.TypeSOA && name == apex:
		m.Answer = append(m.Answer, soa)
	case q.Qtype == dns.TypeNS && name == apex:
		for _, ns := range []string{"ns1.", "ns2."} {
			m.Answer = append(m.Answer, &dns.NS{
				Hdr: dns.RR_Header{Name: dns.Fqdn(apex), Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: TTL},
				Ns:  dns.Fqdn(ns + apex),
			})
		}
	case q.Qtype == dns.TypeTXT:
		for _, txt := range s.src.TXT(name) {
			m.Answer = append(m.Answer, &dns.TXT{
				Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: TTL},
				Txt: txt,
			})
		}
	}
	if len(m.Answer) == aliases {
		m.Ns = append(m.Ns, soa)
		if name != apex && !s.src.Exists(name) {
			m.Rcode = dns.RcodeNameError
		}
	}
}

// Sources serves several simulators from one server: each name is answered
// by the source holding the longest matching zone.
type Sources []Source

// Zone implements Source.
func (ss Sources) Zone(name string) (string, bool) {
	_, apex, ok := ss.owner(name)
	return apex, ok
}

// TXT implements Source.
func (ss Sources) TXT(name string) [][]string {
	if s, _, ok := ss.owner(name); ok {
		return s.TXT(name)
	}
	return nil
}

// CNAME implements Source.
func (ss Sources) CNAME(name string) (string, bool) {
	if s, _, ok := ss.owner(name); ok {
		return s.CNAME(name)
	}
	return "", false
}

// Exists implements Source.
func (ss Sources) Exists(name string) bool {
	s, _, ok := ss.owner(name)
	return ok && s.Exists(name)
}

func (ss Sources) owner(name string) (Source, string, bool) {
	var best Source
	apex := ""
	for _, s := range ss {
		if a, ok := s.Zone(name); ok && len(a) > len(apex) {
			best, apex = s, a
		}
	}
	return best, apex, best != nil
}

// Static is a fixed copy of some zones, other than a simulator's: what a
// split-horizon resolver answers from its internal view, or what a
// nameserver a zone no longer uses still serves. It holds the zones named
// by Apexes, with the TXT and CNAME records given (names lower case, no
// trailing dot).
type Static struct {
	Apexes []string
	TXTs   map[string][]string
	CNAMEs map[string]string
}

var _ Source = Static{}

// Zone implements Source.
func (s Static) Zone(name string) (string, bool) {
	best := ""
	for _, a := range s.Apexes {
		if (name == a || strings.HasSuffix(name, "."+a)) && len(a) > len(best) {
			best = a
		}
	}
	return best, best != ""
}

// TXT implements Source: each value as one string.
func (s Static) TXT(name string) [][]string {
	var out [][]string
	for _, v := range s.TXTs[name] {
		out = append(out, []string{v})
	}
	return out
}

// CNAME implements Source.
func (s Static) CNAME(name string) (string, bool) {
	t, ok := s.CNAMEs[name]
	return t, ok
}

// Exists implements Source.
func (s Static) Exists(name string) bool {
	below := func(n string) bool { return n == name || strings.HasSuffix(n, "."+name) }
	for n := range s.TXTs {
		if below(n) {
			return true
		}
	}
	for n := range s.CNAMEs {
		if below(n) {
			return true
		}
	}
	return false
}
