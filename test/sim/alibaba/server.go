// Package alibaba simulates the Alibaba Cloud APIs certbridge uses — Alibaba
// Cloud DNS (alidns 2015-01-09), Private CA (cas 2020-06-30) and STS
// (2015-04-01) — as docs/development.md describes. It checks every RPC
// signature exactly, so the real SDK's requests are verified, not waved
// through.
package alibaba

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/idna"

	"github.com/certbridge/certbridge/test/sim/simkit"
)

// Policy is a RAM policy, reduced to what the simulated APIs check: which
// actions ("alidns:AddDomainRecord", "yundun-cert:CreateCustomCertificate",
// "alidns:*", "*"), on which resources (domains, or CA identifiers).
type Policy struct {
	Actions []string
	// Resources limits the policy to these domains or CA identifiers; empty
	// means all.
	Resources []string
}

// AllowAll is a policy allowing every action on every resource.
var AllowAll = Policy{Actions: []string{"*"}}

func (p Policy) allows(product, action, resource string) bool {
	ok := false
	for _, a := range p.Actions {
		if a == "*" || strings.EqualFold(a, product+":*") || strings.EqualFold(a, product+":"+action) {
			ok = true
		}
	}
	if !ok || resource == "" || len(p.Resources) == 0 {
		return ok
	}
	for _, r := range p.Resources {
		if strings.EqualFold(r, resource) {
			return true
		}
	}
	return false
}

// AccessKey is a RAM user's AccessKey pair.
type AccessKey struct {
	ID, Secret string
	Disabled   bool
	Policy     Policy
}

// Role is a RAM role that STS can issue credentials for.
type Role struct {
	ARN    string
	Policy Policy
	// TrustedAccessKeys may call AssumeRole for this role.
	TrustedAccessKeys []string
	// TrustedOIDCProvider is the OIDC provider (its ARN) whose tokens may
	// assume the role with AssumeRoleWithOIDC; OIDCSubjects, when set, is
	// the trust policy's condition on the token's subject (oidc:sub), such
	// as system:serviceaccount:<namespace>:<name> for a ServiceAccount.
	TrustedOIDCProvider string
	OIDCSubjects        []string
}

// Edition is a DNS edition and its lowest TTL.
type Edition struct {
	Code   string
	MinTTL int
}

var (
	FreeEdition              = Edition{"mianfei", 600}
	EnterpriseStandardEditon = Edition{"version_enterprise_basic", 60}
	EnterpriseUltimate       = Edition{"version_enterprise_advanced", 1}
)

// Domain is a domain of the simulated account.
type Domain struct {
	ID string
	// Name is the domain as DNS carries it: lower case, punycode (the
	// API's PunyCode).
	Name string
	// DomainName is the domain as the API shows it (DescribeDomains'
	// DomainName): an internationalised domain in Unicode.
	DomainName string
	Edition    Edition
}

// Record is a stored DNS record. Value is kept exactly as submitted.
type Record struct {
	ID, Domain, RR, Type, Value string
	TTL                         int
	created                     int64
}

// FQDN is the record's full name.
func (r Record) FQDN() string {
	if r.RR == "@" {
		return r.Domain
	}
	return r.RR + "." + r.Domain
}

// Fault is an injected failure for the next matching calls.
type Fault struct {
	// Action selects calls, e.g. "AddDomainRecord"; empty matches every call.
	Action string
	// Times is how many calls the fault hits; 0 means 1.
	Times int
	Delay time.Duration
	// Drop closes the connection without an answer, before the call is
	// handled: nothing changes.
	Drop bool
	// LoseAnswer handles the call (a record it adds or deletes is added or
	// deleted) and then closes the connection without the answer, as when
	// a connection breaks after the API committed: the client cannot tell
	// whether it happened.
	LoseAnswer bool
	Status     int
	Code       string
	// Message defaults to a generic text for Code.
	Message string
}

// quotas is Alibaba Cloud DNS's documented QPS per action.
var quotas = map[string]int{
	"DescribeDomainRecords":          100,
	"DescribeSubDomainRecords":       300,
	"DescribeDomainRecordInfo":       200,
	"AddDomainRecord":                60,
	"UpdateDomainRecord":             60,
	"DeleteDomainRecord":             60,
	"DeleteSubDomainRecords":         20,
	"CreateCustomCertificate":        10, // Private CA: 10 per user for the create calls
	"CreateServerCertificateWithCsr": 10,
}

// MaxClockSkew is how far a request's Timestamp may be from the server's clock.
const MaxClockSkew = 15 * time.Minute

// Server is a running simulator: alidns over HTTP and STS over HTTPS.
type Server struct {
	rpc *httptest.Server
	sts *httptest.Server

	mu       sync.Mutex
	keys     map[string]*AccessKey
	stsCreds map[string]*stsCredential
	roles    map[string]*Role
	// oidcProviders are RAM's OIDC identity providers, by ARN.
	oidcProviders map[string]*OIDCProvider
	oidcSessions  []OIDCSession
	oidcTokens    []string
	domains       []*Domain
	foreign       map[string]bool // domains registered in another account
	records       map[string][]*Record
	cas           map[string]*ca
	nextID        int64
	nonces        map[string]time.Time
	calls         simkit.Counter
	faults        simkit.Queue[Fault]
	throttle      bool
	recent        map[string][]time.Time
	throttled     int
	now           func() time.Time
	recordSeq     int64
	latency       simkit.Latency
}

type stsCredential struct {
	id, secret, token string
	expires           time.Time
	policy            Policy
}

// Start runs the simulator on 127.0.0.1. Per-action throttling at the
// documented QPS is on; SetThrottling turns it off.
func Start() *Server {
	s := newServer()
	s.rpc = httptest.NewServer(s.delayed(s.serveRPC))
	s.sts = httptest.NewTLSServer(s.delayed(s.serveSTS))
	return s
}

// newServer is a simulator's state without its listeners.
func newServer() *Server {
	return &Server{
		keys: map[string]*AccessKey{}, stsCreds: map[string]*stsCredential{}, roles: map[string]*Role{}, oidcProviders: map[string]*OIDCProvider{},
		foreign: map[string]bool{}, records: map[string][]*Record{}, nextID: 100000000000,
		nonces: map[string]time.Time{}, throttle: true, recent: map[string][]time.Time{},
		now: time.Now, latency: simkit.DefaultLatency,
	}
}

// delayed answers after the simulator's latency; a call is counted, and
// takes effect, when it arrives.
func (s *Server) delayed(serve http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		latency := s.latency
		s.mu.Unlock()
		latency.Serve(w, r, func(w http.ResponseWriter) { serve(w, r) })
	}
}

// SetLatency sets how long answers take after the call arrived (and was
// counted); simkit.Instant answers at once.
func (s *Server) SetLatency(l simkit.Latency) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = l
}

// Close stops both servers.
func (s *Server) Close() {
	s.rpc.Close()
	s.sts.Close()
}

// Endpoint is the RPC endpoint serving alidns and cas, host:port (plain HTTP).
func (s *Server) Endpoint() string { return s.rpc.Listener.Addr().String() }

// STSEndpoint is the STS endpoint, host:port (HTTPS with a test certificate).
func (s *Server) STSEndpoint() string { return s.sts.Listener.Addr().String() }

// STSCertPool trusts the STS endpoint's certificate.
func (s *Server) STSCertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.sts.Certificate())
	return pool
}

// STSCertificatePEM is the STS endpoint's certificate, for a process to
// trust (SSL_CERT_FILE).
func (s *Server) STSCertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.sts.Certificate().Raw})
}

// STSTLSConfig is a client TLS configuration trusting the STS endpoint.
func (s *Server) STSTLSConfig() *tls.Config { return &tls.Config{RootCAs: s.STSCertPool()} }

// AddAccessKey makes a RAM user's AccessKey known.
func (s *Server) AddAccessKey(k AccessKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.ID] = &k
}

// AddRole makes a RAM role known to STS.
func (s *Server) AddRole(r Role) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[r.ARN] = &r
}

// IssueSTS creates STS credentials directly, as if from an earlier AssumeRole.
func (s *Server) IssueSTS(policy Policy, ttl time.Duration) (id, secret, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.newSTSLocked(policy, ttl)
	return c.id, c.secret, c.token
}

func (s *Server) newSTSLocked(policy Policy, ttl time.Duration) *stsCredential {
	s.recordSeq++
	c := &stsCredential{
		id:      fmt.Sprintf("STS.NT%020d", s.recordSeq),
		secret:  randomString(30),
		token:   "CAIS" + randomString(120),
		expires: s.now().Add(ttl),
		policy:  policy,
	}
	s.stsCreds[c.id] = c
	return c
}

// AddDomain adds a domain of the given edition to the account; name may be
// written in Unicode or in punycode.
func (s *Server) AddDomain(name string, e Edition) Domain {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordSeq++
	ascii := asciiName(name)
	d := &Domain{ID: fmt.Sprintf("%08x-sim-%04d", s.recordSeq, s.recordSeq), Name: ascii, DomainName: unicodeName(ascii), Edition: e}
	s.domains = append(s.domains, d)
	sort.Slice(s.domains, func(i, j int) bool { return s.domains[i].Name < s.domains[j].Name })
	return *d
}

// AllDomains returns copies of the account's domains, ordered by name.
func (s *Server) AllDomains() []Domain {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Domain
	for _, d := range s.domains {
		out = append(out, *d)
	}
	return out
}

// SetEdition changes a domain's edition (an upgrade or a lapsed subscription).
func (s *Server) SetEdition(name string, e Edition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.domains {
		if d.Name == asciiName(name) {
			d.Edition = e
		}
	}
}

// AddForeignDomain registers a domain in another account (IncorrectDomainUser).
func (s *Server) AddForeignDomain(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.foreign[asciiName(name)] = true
}

// SetThrottling turns the per-action QPS limits on or off.
func (s *Server) SetThrottling(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = on
}

// InjectFault queues a fault; faults apply in the order injected.
func (s *Server) InjectFault(f Fault) { s.faults.Add(f, f.Times) }

// Matches implements simkit.Injected.
func (f Fault) Matches(action string) bool { return f.Action == "" || f.Action == action }

// Disruption implements simkit.Injected.
func (f Fault) Disruption() (time.Duration, bool, bool) { return f.Delay, f.Drop, f.LoseAnswer }

// PendingFaults is how many uses the injected faults have left.
func (s *Server) PendingFaults() int { return s.faults.Pending() }

// Calls returns how many requests reached each action (STS actions included).
func (s *Server) Calls() map[string]int { return s.calls.Snapshot() }

// TotalDNSCalls sums the calls to alidns actions.
func (s *Server) TotalDNSCalls() int {
	n := 0
	for k, v := range s.Calls() {
		if _, dns := dnsActions[k]; dns {
			n += v
		}
	}
	return n
}

// ResetCalls zeroes the counters.
func (s *Server) ResetCalls() { s.calls.Reset() }

// Throttled counts the calls refused with Throttling.User.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

// Records returns copies of the records at fqdn.
func (s *Server) Records(fqdn string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	fqdn = asciiName(fqdn)
	var out []Record
	for _, rs := range s.records {
		for _, r := range rs {
			if r.FQDN() == fqdn {
				out = append(out, *r)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].created < out[j].created })
	return out
}

// AllRecords returns copies of every record.
func (s *Server) AllRecords() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, rs := range s.records {
		for _, r := range rs {
			out = append(out, *r)
		}
	}
	return out
}

func canonical(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

// asciiName is name as DNS carries it, the form the simulator keys domains
// and records by: lower case, without a trailing dot, each Unicode label
// in punycode. A label IDNA refuses is kept as it is, and then matches
// nothing, as with the real API.
func asciiName(name string) string {
	labels := strings.Split(canonical(name), ".")
	for i, l := range labels {
		if a, err := idna.ToASCII(l); err == nil && a != l {
			labels[i] = strings.ToLower(a)
		}
	}
	return strings.Join(labels, ".")
}

// unicodeName is name as Alibaba Cloud DNS shows names it returns: each
// punycode label in Unicode (DescribeDomains' DomainName beside its
// PunyCode, a record's DomainName and RR).
func unicodeName(name string) string {
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if !strings.HasPrefix(l, "xn--") {
			continue
		}
		if u, err := idna.ToUnicode(l); err == nil {
			labels[i] = u
		}
	}
	return strings.Join(labels, ".")
}

// apiError is the RPC error body: RequestId, HostId, Code, Message, Recommend.
type apiError struct {
	status  int
	code    string
	message string
}

func (e apiError) write(w http.ResponseWriter, host string) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"RequestId": requestID(), "HostId": host, "Code": e.code, "Message": e.message,
		"Recommend": "https://api.aliyun.com/troubleshoot?q=" + e.code + "&product=Alidns",
	})
}

func writeOK(w http.ResponseWriter, body map[string]any) {
	body["RequestId"] = requestID()
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_ = json.NewEncoder(w).Encode(body)
}

// params merges the query string and a form body, as the signature does.
func params(r *http.Request) (url.Values, error) {
	out := url.Values{}
	for k, v := range r.URL.Query() {
		out[k] = v
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		form, err := url.ParseQuery(string(b))
		if err != nil {
			return nil, err
		}
		for k, v := range form {
			out[k] = append(out[k], v...)
		}
	}
	return out, nil
}

// percentEncode is the RFC 3986 encoding signature v1 applies to every
// name and value (space as %20, * as %2A, ~ kept).
func percentEncode(s string) string {
	e := url.QueryEscape(s)
	e = strings.ReplaceAll(e, "+", "%20")
	e = strings.ReplaceAll(e, "*", "%2A")
	return strings.ReplaceAll(e, "%7E", "~")
}

// stringToSign builds signature v1's StringToSign from every parameter but
// Signature: METHOD&%2F&percentEncode(the sorted, encoded name=value pairs).
func stringToSign(method string, p url.Values) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, percentEncode(k)+"="+percentEncode(p.Get(k)))
	}
	return method + "&" + percentEncode("/") + "&" + percentEncode(strings.Join(parts, "&"))
}

func sign(sts, secret string) string {
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(sts))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// caller is who signed a request and what it may do.
type caller struct {
	keyID  string
	policy Policy
}

// authenticate checks an RPC request's common parameters and signature. The
// signature is checked right after the AccessKey lookup, so a change to any
// signed parameter is a SignatureDoesNotMatch.
func (s *Server) authenticate(r *http.Request, p url.Values, version string) (caller, *apiError) {
	for _, k := range []string{"Action", "Version", "AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"} {
		if !p.Has(k) {
			return caller{}, &apiError{400, "MissingParameter", fmt.Sprintf("The input parameter %q that is mandatory for processing this request is not supplied.", k)}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	id := p.Get("AccessKeyId")
	var secret string
	var c caller
	sc, isSTS := s.stsCreds[id]
	if isSTS {
		secret, c = sc.secret, caller{keyID: id, policy: sc.policy}
	} else if k, ok := s.keys[id]; ok {
		if k.Disabled {
			return caller{}, &apiError{400, "InvalidAccessKeyId.Inactive", "Specified access key is disabled."}
		}
		secret, c = k.Secret, caller{keyID: id, policy: k.Policy}
	} else {
		return caller{}, &apiError{404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."}
	}
	sts := stringToSign(r.Method, p)
	if p.Get("SignatureMethod") != "HMAC-SHA1" || !hmac.Equal([]byte(sign(sts, secret)), []byte(p.Get("Signature"))) {
		return caller{}, &apiError{400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:" + sts}
	}
	if isSTS {
		switch {
		case p.Get("SecurityToken") == "":
			return caller{}, &apiError{400, "InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed."}
		case p.Get("SecurityToken") != sc.token:
			return caller{}, &apiError{400, "InvalidSecurityToken.MismatchWithAccessKey", "Specified SecurityToken mismatch with the AccessKey."}
		case now.After(sc.expires):
			return caller{}, &apiError{400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."}
		}
	}
	if p.Get("Version") != version {
		return caller{}, &apiError{400, "InvalidVersion", "Specified parameter Version is not valid."}
	}
	if p.Get("SignatureVersion") != "1.0" {
		return caller{}, &apiError{400, "InvalidParameter", "Specified parameter SignatureVersion is not valid."}
	}
	ts, err := time.Parse("2006-01-02T15:04:05Z", p.Get("Timestamp"))
	if err != nil {
		return caller{}, &apiError{400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."}
	}
	if d := now.Sub(ts); d > MaxClockSkew || d < -MaxClockSkew {
		return caller{}, &apiError{400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."}
	}
	for n, t := range s.nonces {
		if now.Sub(t) > MaxClockSkew {
			delete(s.nonces, n)
		}
	}
	nonce := p.Get("SignatureNonce")
	if _, used := s.nonces[nonce]; used {
		return caller{}, &apiError{400, "SignatureNonceUsed", "Specified signature nonce was used already."}
	}
	s.nonces[nonce] = now
	return c, nil
}

// SetClock replaces the simulator's clock (for clock-skew scenarios).
func (s *Server) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// faultAnswer writes an injected fault's error answer; false for a fault
// without one.
func faultAnswer(f Fault, host string) func(http.ResponseWriter) bool {
	return func(w http.ResponseWriter) bool {
		if f.Status == 0 {
			return false // latency only
		}
		msg := f.Message
		if msg == "" {
			msg = faultMessages[f.Code]
		}
		apiError{f.Status, f.Code, msg}.write(w, host)
		return true
	}
}

var faultMessages = map[string]string{
	"Throttling.User":          "Request was denied due to user flow control.",
	"Throttling":               "Request was denied due to request throttling.",
	"LastOperationNotFinished": "You can't finish this operation because the last operation has not been finished.",
	"InternalError":            "The request processing has failed due to some unknown error.",
	"ServiceUnavailable":       "The request has failed due to a temporary failure of the server.",
}

// admit applies the per-action QPS quota (per account, sliding second).
func (s *Server) admit(action string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := quotas[action]
	if !s.throttle || !ok {
		return true
	}
	now := s.now()
	kept := s.recent[action][:0]
	for _, t := range s.recent[action] {
		if now.Sub(t) < time.Second {
			kept = append(kept, t)
		}
	}
	s.recent[action] = kept
	if len(kept) >= q {
		s.throttled++
		return false
	}
	s.recent[action] = append(kept, now)
	return true
}
