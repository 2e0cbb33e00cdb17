package alibaba

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Private CA (cas 2020-06-30). Alibaba documents no product-specific
// error codes for it; the codes below marked [INF] are inferred.
const casVersion = "2020-06-30"

// CA kinds and states as DescribeCACertificate reports them.
const (
	RootCA   = "ROOT"
	SubCA    = "SUB_ROOT"
	CAIssue  = "ISSUE"
	CARevoke = "REVOKE"
)

// CAOptions shape a simulated CA.
type CAOptions struct {
	// Parent is the identifier of the CA that signs this one (a sub-CA).
	Parent string
	// ECC makes an ECC_256 CA; RSA_2048 otherwise.
	ECC bool
	// Revoked marks the CA REVOKE.
	Revoked bool
	// NotAfter defaults to ten years from now; a past time makes it expired.
	NotAfter time.Time
	// Remaining is how many certificates it may still issue: 0 means 1000,
	// a negative number means none are left.
	Remaining int
}

type ca struct {
	id, parent string
	kind       string
	status     string
	algorithm  string
	cert       *x509.Certificate
	key        crypto.Signer
	remaining  int
	issued     int
}

// AddCA creates a CA: a root without opts.Parent, else a sub-CA it signs.
func (s *Server) AddCA(id string, opts CAOptions) *x509.Certificate {
	var key crypto.Signer
	algorithm := "RSA_2048"
	if opts.ECC {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		key, algorithm = k, "ECC_256"
	} else {
		k, _ := rsa.GenerateKey(rand.Reader, 2048)
		key = k
	}
	notAfter := opts.NotAfter
	if notAfter.IsZero() {
		notAfter = time.Now().AddDate(10, 0, 0)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{Organization: []string{"Simulated PCA"}, CommonName: id},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cas == nil {
		s.cas = map[string]*ca{}
	}
	parentCert, parentKey, kind := tmpl, key, RootCA
	if opts.Parent != "" {
		p := s.cas[opts.Parent]
		parentCert, parentKey, kind = p.cert, p.key, SubCA
		tmpl.MaxPathLenZero = true
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	c := &ca{id: id, parent: opts.Parent, kind: kind, status: CAIssue, algorithm: algorithm, cert: cert, key: key, remaining: opts.Remaining}
	if opts.Revoked {
		c.status = CARevoke
	}
	if c.remaining == 0 {
		c.remaining = 1000
	}
	s.cas[id] = c
	return cert
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func pemOf(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

var casActions = map[string]func(s *Server, p url.Values) (map[string]any, *apiError){
	"DescribeCACertificate":          (*Server).describeCACertificate,
	"CreateCustomCertificate":        (*Server).createCustomCertificate,
	"CreateServerCertificateWithCsr": (*Server).createServerCertificateWithCsr,
}

func (s *Server) serveCAS(c caller, action string, p url.Values) (map[string]any, *apiError) {
	handle, ok := casActions[action]
	if !ok {
		return nil, &apiError{404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."}
	}
	resource := p.Get("Identifier")
	if p.Has("ParentIdentifier") {
		resource = p.Get("ParentIdentifier")
	}
	if !c.policy.allows("yundun-cert", action, resource) {
		return nil, &apiError{403, "Forbidden.RAM", "User not authorized to operate on the specified resource, or this API doesn't support RAM."}
	}
	return handle(s, p)
}

func (s *Server) describeCACertificate(p url.Values) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cas[p.Get("Identifier")]
	if !ok {
		return nil, &apiError{400, "NotFound.Identifier", "The specified CA identifier does not exist."} // [INF]
	}
	chain := pemOf(c.cert)
	if c.parent != "" {
		chain += pemOf(s.cas[c.parent].cert)
	}
	return map[string]any{"Certificate": map[string]any{
		"Identifier": c.id, "ParentIdentifier": c.parent, "CertificateType": c.kind, "Status": c.status, "State": "normal",
		"X509Certificate": pemOf(c.cert), "CaCertChain": chain, "Algorithm": strings.Split(c.algorithm, "_")[0], "FullAlgorithm": c.algorithm,
		"SubjectDN": "CN=" + c.id + ",O=Simulated PCA", "CommonName": c.id, "SerialNumber": c.cert.SerialNumber.Text(16),
		"BeforeDate": c.cert.NotBefore.UnixMilli(), "AfterDate": c.cert.NotAfter.UnixMilli(),
		"CertIssuedCount": c.issued, "CertRemainingCount": c.remaining, "CertTotalCount": c.issued + c.remaining,
	}}, nil
}

var relativeValidity = regexp.MustCompile(`^(\d+)([ymd])$`)

// validity reads CreateCustomCertificate's Validity: "1y", "3m", "7d", or an
// absolute "$NotAfter" or "$NotBefore/$NotAfter" (yyyy-MM-ddTHH:mm:ssZ).
func validity(v string, now time.Time) (time.Time, time.Time, bool) {
	if m := relativeValidity.FindStringSubmatch(v); m != nil {
		n, _ := strconv.Atoi(m[1])
		after, ok := later(now, n, m[2])
		return now, after, ok
	}
	const layout = "2006-01-02T15:04:05Z"
	before, after, both := strings.Cut(v, "/")
	if !both {
		t, err := time.Parse(layout, v)
		return now, t, err == nil && t.After(now)
	}
	b, err1 := time.Parse(layout, before)
	a, err2 := time.Parse(layout, after)
	return b, a, err1 == nil && err2 == nil && a.After(b)
}

// later is now plus n years ("y"), months ("m") or days ("d"); false for
// no count, or one past 10000 years, where AddDate would wrap around and
// give a date that looks valid.
func later(now time.Time, n int, unit string) (time.Time, bool) {
	const maxYears = 10000
	switch {
	case n <= 0:
		return now, false
	case unit == "y" && n <= maxYears:
		return now.AddDate(n, 0, 0), true
	case unit == "m" && n <= maxYears*12:
		return now.AddDate(0, n, 0), true
	case unit == "d" && n <= maxYears*366:
		return now.AddDate(0, 0, n), true
	}
	return now, false
}

// ia5 reports whether s can be a certificate's dNSName, rfc822Name or URI:
// an IA5String, ASCII only.
func ia5(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

var keyUsages = map[string]x509.KeyUsage{
	"DigitalSignature": x509.KeyUsageDigitalSignature, "NonRepudiation": x509.KeyUsageContentCommitment,
	"KeyEncipherment": x509.KeyUsageKeyEncipherment, "DataEncipherment": x509.KeyUsageDataEncipherment,
	"KeyAgreement": x509.KeyUsageKeyAgreement,
}

var extKeyUsages = map[string]x509.ExtKeyUsage{
	"serverAuth": x509.ExtKeyUsageServerAuth, "clientAuth": x509.ExtKeyUsageClientAuth,
	"codeSigning": x509.ExtKeyUsageCodeSigning, "emailProtection": x509.ExtKeyUsageEmailProtection,
	"timeStamping": x509.ExtKeyUsageTimeStamping, "OCSPSigning": x509.ExtKeyUsageOCSPSigning,
}

func invalid(field, why string) *apiError {
	return &apiError{400, "InvalidParameter", fmt.Sprintf("Specified parameter %s is not valid: %s", field, why)} // [INF]
}

// request reads the CSR and the issuing sub-CA; the caller holds s.mu.
func (s *Server) request(p url.Values) (*x509.CertificateRequest, *ca, *apiError) {
	for _, k := range []string{"ParentIdentifier", "Csr"} {
		if p.Get(k) == "" {
			return nil, nil, &apiError{400, "MissingParameter", fmt.Sprintf("The input parameter %q that is mandatory for processing this request is not supplied.", k)}
		}
	}
	block, _ := pem.Decode([]byte(p.Get("Csr")))
	if block == nil {
		return nil, nil, invalid("Csr", "not a PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		return nil, nil, invalid("Csr", "the request does not parse or its signature is wrong")
	}
	parent, ok := s.cas[p.Get("ParentIdentifier")]
	switch {
	case !ok:
		return nil, nil, &apiError{400, "NotFound.ParentIdentifier", "The specified parent CA does not exist."} // [INF]
	case parent.kind != SubCA:
		return nil, nil, invalid("ParentIdentifier", "only a SUB_ROOT CA can issue end-entity certificates")
	case parent.status != CAIssue:
		return nil, nil, &apiError{400, "CA.Revoked", "The parent CA has been revoked."} // [INF]
	case s.now().After(parent.cert.NotAfter):
		return nil, nil, &apiError{400, "CA.Expired", "The parent CA has expired."} // [INF]
	case parent.remaining <= 0:
		return nil, nil, &apiError{400, "QuotaExceeded.Certificate", "The parent CA has no certificates left to issue."} // [INF]
	}
	if _, isEC := csr.PublicKey.(*ecdsa.PublicKey); isEC != strings.HasPrefix(parent.algorithm, "ECC") {
		return nil, nil, invalid("Csr", "the key algorithm must match the issuing CA's ("+parent.algorithm+")")
	}
	return csr, parent, nil
}

// issue signs tmpl for csr's key with parent; the caller holds s.mu.
func (s *Server) issue(tmpl *x509.Certificate, csr *x509.CertificateRequest, parent *ca) (leaf, chain string, aerr *apiError) {
	if tmpl.NotAfter.After(parent.cert.NotAfter) {
		return "", "", invalid("Validity", "the certificate would outlive its CA")
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.cert, csr.PublicKey, parent.key)
	if err != nil {
		return "", "", &apiError{500, "InternalError", "The request processing has failed due to some unknown error."}
	}
	parent.issued++
	parent.remaining--
	leaf = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return leaf, pemOf(parent.cert) + pemOf(s.cas[parent.parent].cert), nil
}

func (s *Server) createCustomCertificate(p url.Values) (map[string]any, *apiError) {
	if p.Get("Validity") == "" {
		return nil, &apiError{400, "MissingParameter", `The input parameter "Validity" that is mandatory for processing this request is not supplied.`}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	csr, parent, aerr := s.request(p)
	if aerr != nil {
		return nil, aerr
	}
	notBefore, notAfter, ok := validity(p.Get("Validity"), s.now())
	if !ok {
		return nil, invalid("Validity", "use 1y, 3m, 7d, or yyyy-MM-ddTHH:mm:ssZ[/yyyy-MM-ddTHH:mm:ssZ]")
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: csr.Subject, NotBefore: notBefore, NotAfter: notAfter}
	const pt = "ApiPassthrough."
	if cn := p.Get(pt + "Subject.CommonName"); cn != "" {
		if !utf8.ValidString(cn) {
			return nil, invalid("ApiPassthrough.Subject.CommonName", "not UTF-8")
		}
		tmpl.Subject = pkix.Name{CommonName: cn}
	}
	for name, ku := range keyUsages {
		if p.Get(pt+"Extensions.KeyUsage."+name) == "true" {
			tmpl.KeyUsage |= ku
		}
	}
	for i := 1; p.Has(fmt.Sprintf(pt+"Extensions.ExtendedKeyUsages.%d", i)); i++ {
		v := p.Get(fmt.Sprintf(pt+"Extensions.ExtendedKeyUsages.%d", i))
		eku, known := extKeyUsages[v]
		if !known {
			return nil, invalid("ApiPassthrough.Extensions.ExtendedKeyUsages", "unknown usage "+v)
		}
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, eku)
	}
	sans := 0
	for i := 1; p.Has(fmt.Sprintf(pt+"Extensions.SubjectAlternativeNames.%d.Type", i)); i++ {
		typ := p.Get(fmt.Sprintf(pt+"Extensions.SubjectAlternativeNames.%d.Type", i))
		val := p.Get(fmt.Sprintf(pt+"Extensions.SubjectAlternativeNames.%d.Value", i))
		sans++
		if !ia5(val) {
			return nil, invalid("SubjectAlternativeNames", "not ASCII: "+val)
		}
		switch typ {
		case "dNSName":
			tmpl.DNSNames = append(tmpl.DNSNames, val)
		case "iPAddress":
			ip := net.ParseIP(val)
			if ip == nil {
				return nil, invalid("SubjectAlternativeNames", "bad IP address "+val)
			}
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		case "rfc822Name":
			tmpl.EmailAddresses = append(tmpl.EmailAddresses, val)
		case "uniformResourceIdentifier":
			u, err := url.Parse(val)
			if err != nil || !ia5(u.String()) {
				return nil, invalid("SubjectAlternativeNames", "bad URI "+val)
			}
			tmpl.URIs = append(tmpl.URIs, u)
		default:
			return nil, invalid("SubjectAlternativeNames", "unknown type "+typ)
		}
	}
	if sans == 0 { // without passthrough SANs, the CSR's are used
		tmpl.DNSNames, tmpl.IPAddresses, tmpl.EmailAddresses, tmpl.URIs = csr.DNSNames, csr.IPAddresses, csr.EmailAddresses, csr.URIs
	}
	leaf, chain, aerr := s.issue(tmpl, csr, parent)
	if aerr != nil {
		return nil, aerr
	}
	return issued(tmpl, leaf, chain, p.Get("Immediately"), "Certificate"), nil
}

// createServerCertificateWithCsr issues a TLS server certificate: the
// validity in Days, Months or Years (Days wins), or BeforeTime+AfterTime in
// unix seconds; SANs from Domain (comma-separated DNS names or IPs).
func (s *Server) createServerCertificateWithCsr(p url.Values) (map[string]any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	csr, parent, aerr := s.request(p)
	if aerr != nil {
		return nil, aerr
	}
	now := s.now()
	notBefore, notAfter, ok := now, time.Time{}, true
	number := func(k string) int { n, _ := strconv.Atoi(p.Get(k)); return n }
	switch {
	case number("Days") > 0:
		notAfter, ok = later(now, number("Days"), "d")
	case number("Months") > 0:
		notAfter, ok = later(now, number("Months"), "m")
	case number("Years") > 0:
		notAfter, ok = later(now, number("Years"), "y")
	case number("BeforeTime") > 0 && number("AfterTime") > number("BeforeTime"):
		notBefore, notAfter = time.Unix(int64(number("BeforeTime")), 0), time.Unix(int64(number("AfterTime")), 0)
	default:
		ok = false
	}
	if !ok {
		return nil, invalid("Days", "set Days, Months, Years, or BeforeTime and AfterTime")
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: csr.Subject, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, d := range strings.Split(p.Get("Domain"), ",") {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		if !ia5(d) {
			return nil, invalid("Domain", "not ASCII: "+d)
		}
		if ip := net.ParseIP(d); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, d)
		}
	}
	leaf, chain, aerr := s.issue(tmpl, csr, parent)
	if aerr != nil {
		return nil, aerr
	}
	return issued(tmpl, leaf, chain, p.Get("Immediately"), "X509Certificate"), nil
}

// issued is a create call's answer: always the identifier, the certificate
// under leafField with Immediately 1, and its chain too with Immediately 2.
func issued(tmpl *x509.Certificate, leaf, chain, immediately, leafField string) map[string]any {
	body := map[string]any{"Identifier": fmt.Sprintf("%x", tmpl.SerialNumber), "SerialNumber": tmpl.SerialNumber.Text(16)}
	switch immediately {
	case "1":
		body[leafField] = leaf
	case "2":
		body[leafField], body["CertificateChain"] = leaf, chain
	}
	return body
}
