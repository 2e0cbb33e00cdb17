package cloudflare

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Origin CA request types and the validities Cloudflare offers, in days.
const (
	OriginRSA = "origin-rsa"
	OriginECC = "origin-ecc"
)

// OriginValidities are the requested_validity values the API accepts, in days.
var OriginValidities = []int{7, 30, 90, 365, 730, 1095, 5475}

// originCA signs Origin CA certificates with one root per key family, as
// Cloudflare does (its RSA and ECC Origin roots).
type originCA struct {
	once  sync.Once
	roots map[string]*caKey

	mu      sync.Mutex
	issued  map[string]*originCert
	svcKeys map[string]bool
	// serviceKeysRetired answers every Origin CA key with an error: the keys
	// reached end of life on 2026-09-30, as Cloudflare announced.
	serviceKeysRetired bool
}

type caKey struct {
	cert *x509.Certificate
	key  crypto.Signer
}

type originCert struct {
	ID          string
	PEM         string
	Hostnames   []string
	ExpiresOn   time.Time
	RequestType string
	Validity    int
	CSR         string
	ZoneIDs     []string
	RevokedAt   time.Time
}

func (o *originCA) init() {
	o.once.Do(func() {
		o.roots = map[string]*caKey{
			OriginRSA: newRoot("CloudFlare Origin SSL Certificate Authority", func() crypto.Signer {
				k, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					panic(err)
				}
				return k
			}),
			OriginECC: newRoot("CloudFlare Origin SSL ECC Certificate Authority", func() crypto.Signer {
				k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					panic(err)
				}
				return k
			}),
		}
		o.issued = map[string]*originCert{}
		o.svcKeys = map[string]bool{}
		o.serviceKeysRetired = true
	})
}

func newRoot(cn string, gen func() crypto.Signer) *caKey {
	key := gen()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Country: []string{"US"}, Organization: []string{"CloudFlare, Inc."}, OrganizationalUnit: []string{"CloudFlare Origin SSL Certificate Authority"}, CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return &caKey{cert: cert, key: key}
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		panic(err)
	}
	return n
}

// OriginCARoot returns the simulated root that signs requestType
// (OriginRSA or OriginECC) certificates.
func (s *Server) OriginCARoot(requestType string) *x509.Certificate {
	s.origin.init()
	return s.origin.roots[requestType].cert
}

// AddServiceKey makes an Origin CA key ("v1.0-…") known.
func (s *Server) AddServiceKey(key string) {
	s.origin.init()
	s.origin.mu.Lock()
	defer s.origin.mu.Unlock()
	s.origin.svcKeys[key] = true
}

// SetServiceKeysRetired sets whether Origin CA keys are past their end of
// life (the default, since 2026-09-30).
func (s *Server) SetServiceKeysRetired(retired bool) {
	s.origin.init()
	s.origin.mu.Lock()
	defer s.origin.mu.Unlock()
	s.origin.serviceKeysRetired = retired
}

// OriginCertificates returns the certificates issued so far.
func (s *Server) OriginCertificates() []originCert {
	s.origin.init()
	s.origin.mu.Lock()
	defer s.origin.mu.Unlock()
	var out []originCert
	for _, c := range s.origin.issued {
		out = append(out, *c)
	}
	return out
}

// authenticateOriginCA accepts an Origin CA key on /certificates besides the
// usual credentials. Past end of life a key is refused; the code and status
// of that answer are not documented ([INF]: 403, code 10001).
func (s *Server) authenticateOriginCA(w http.ResponseWriter, r *http.Request, routeName string) (principal, bool) {
	key := r.Header.Get("X-Auth-User-Service-Key")
	if key == "" {
		return s.authenticate(w, r, routeName)
	}
	s.origin.init()
	s.origin.mu.Lock()
	known, retired := s.origin.svcKeys[key], s.origin.serviceKeysRetired
	s.origin.mu.Unlock()
	switch {
	case !known:
		writeError(w, http.StatusForbidden, errItem(10001, "Unable to authenticate request"))
		return principal{}, false
	case retired:
		writeError(w, http.StatusForbidden, errItem(10001, "Origin CA key authentication has reached end of life; use an API token with Zone → SSL and Certificates → Edit"))
		return principal{}, false
	}
	return principal{}, true
}

type originRequest struct {
	CSR               string   `json:"csr"`
	Hostnames         []string `json:"hostnames"`
	RequestType       string   `json:"request_type"`
	RequestedValidity *int     `json:"requested_validity"`
}

// originError answers an Origin CA validation failure. Cloudflare documents
// only 1010 and 1016 for this API; the other codes here are [INF].
func originError(w http.ResponseWriter, code int, msg string) {
	writeError(w, http.StatusBadRequest, errItem(code, msg))
}

func (s *Server) createOriginCert(w http.ResponseWriter, r *http.Request, p principal, _ []string) {
	s.origin.init()
	var req originRequest // unknown fields (legacy SDK junk) are ignored
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		originError(w, 1001, "Invalid request body")
		return
	}
	validity := 5475
	if req.RequestedValidity != nil {
		validity = *req.RequestedValidity
	}
	valid := false
	for _, v := range OriginValidities {
		valid = valid || v == validity
	}
	if !valid {
		originError(w, 1013, fmt.Sprintf("Invalid requested_validity %d: must be one of 7, 30, 90, 365, 730, 1095, 5475", validity))
		return
	}
	root, ok := s.origin.roots[req.RequestType]
	if !ok {
		originError(w, 1012, fmt.Sprintf("Invalid request_type %q", req.RequestType))
		return
	}
	block, _ := pem.Decode([]byte(req.CSR))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		originError(w, 1002, "Invalid or missing CSR")
		return
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		originError(w, 1002, "Invalid or missing CSR")
		return
	}
	if _, isRSA := csr.PublicKey.(*rsa.PublicKey); isRSA != (req.RequestType == OriginRSA) {
		originError(w, 1014, fmt.Sprintf("The CSR's key type does not match request_type %s", req.RequestType))
		return
	}
	if len(req.Hostnames) == 0 {
		originError(w, 1011, "At least one hostname is required")
		return
	}
	var zoneIDs []string
	s.state.mu.Lock()
	for _, h := range req.Hostnames {
		// Single-level wildcards only: "*.example.com", never "a.*.x" or "*.*.x".
		base := strings.TrimPrefix(canonicalName(h), "*.")
		// A hostname is validated against the zone serving it: a pending
		// zone's names fail as if not in the account (1010). One that is no
		// ASCII host name cannot be certified at all; it fails the same
		// way ([INF]: the code for a malformed hostname is not documented).
		z := s.servingZone(base)
		if !isHostname(base) || z == nil || !p.inScope(z) {
			s.state.mu.Unlock()
			originError(w, 1010, "Failed to validate requested hostname "+h+": This zone is either not part of your account, or you do not have access to it. Please contact support if using a multi-user organization.")
			return
		}
		if !p.can(SSLEdit, z) {
			s.state.mu.Unlock()
			writeError(w, http.StatusForbidden, errItem(10000, "Authentication error"))
			return
		}
		zoneIDs = append(zoneIDs, z.ID)
	}
	s.state.mu.Unlock()

	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{Organization: []string{"CloudFlare, Inc."}, OrganizationalUnit: []string{"CloudFlare Origin CA"}, CommonName: "CloudFlare Origin Certificate"},
		DNSNames:     req.Hostnames,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.AddDate(0, 0, validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.cert, csr.PublicKey, root.key)
	if err != nil {
		writeError(w, http.StatusInternalServerError, errItem(1100, "Failed to sign the certificate"))
		return
	}
	c := &originCert{
		ID: tmpl.SerialNumber.String(), PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Hostnames: req.Hostnames, ExpiresOn: tmpl.NotAfter, RequestType: req.RequestType, Validity: validity,
		CSR: req.CSR, ZoneIDs: zoneIDs,
	}
	s.origin.mu.Lock()
	s.origin.issued[c.ID] = c
	s.origin.mu.Unlock()
	writeResult(w, originJSON(c))
}

// isHostname reports whether name is lower-case letters, digits, hyphens,
// underscores and dots: what a certificate's dNSName (an IA5String) can
// hold, less wildcards.
func isHostname(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// originJSON renders a certificate; expires_on uses Go's time.String layout,
// which origin-ca-issuer and the legacy SDK parse first, as the real API
// sends it.
func originJSON(c *originCert) map[string]any {
	out := map[string]any{
		"id": c.ID, "certificate": c.PEM, "hostnames": c.Hostnames,
		"expires_on": c.ExpiresOn.UTC().Format("2006-01-02 15:04:05 -0700 MST"), "request_type": c.RequestType,
		"requested_validity": c.Validity, "csr": c.CSR,
	}
	if !c.RevokedAt.IsZero() {
		out["revoked_at"] = c.RevokedAt.UTC().Format(time.RFC3339)
	}
	return out
}

func (s *Server) originCert(w http.ResponseWriter, id string) *originCert {
	s.origin.init()
	s.origin.mu.Lock()
	defer s.origin.mu.Unlock()
	c, ok := s.origin.issued[id]
	if !ok {
		writeError(w, http.StatusNotFound, errItem(1001, "Certificate not found"))
		return nil
	}
	return c
}

func (s *Server) getOriginCert(w http.ResponseWriter, _ *http.Request, _ principal, args []string) {
	if c := s.originCert(w, args[0]); c != nil {
		writeResult(w, originJSON(c))
	}
}

func (s *Server) revokeOriginCert(w http.ResponseWriter, _ *http.Request, _ principal, args []string) {
	c := s.originCert(w, args[0])
	if c == nil {
		return
	}
	s.origin.mu.Lock()
	c.RevokedAt = time.Now()
	s.origin.mu.Unlock()
	writeResult(w, map[string]any{"id": c.ID, "revoked_at": c.RevokedAt.UTC().Format(time.RFC3339)})
}

func (s *Server) listOriginCerts(w http.ResponseWriter, r *http.Request, _ principal, _ []string) {
	zoneID := r.URL.Query().Get("zone_id")
	if zoneID == "" {
		originError(w, 1001, "zone_id is required")
		return
	}
	s.origin.init()
	s.origin.mu.Lock()
	var out []map[string]any
	for _, c := range s.origin.issued {
		for _, z := range c.ZoneIDs {
			if z == zoneID {
				out = append(out, originJSON(c))
				break
			}
		}
	}
	s.origin.mu.Unlock()
	page, info, ok := paginate(w, r, out, 20, 5, 50)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, envelope{Success: true, Result: page, ResultInfo: info})
}
