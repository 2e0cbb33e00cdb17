package cloudflare

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certbridge/certbridge/test/fuzzseed"
)

// fuzzCSR is an ECDSA request for www.example.com, for Origin CA seeds.
const fuzzCSR = `-----BEGIN CERTIFICATE REQUEST-----
MIHoMIGPAgEAMAAwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATgGyI6SxR1wBwD
rjuexzpuY6K4BVL436j2WEfmlfOfuAgCiGOs6zx5i5Ea/xR7BGuDDM09KmmjHpxq
vbjHZVzMoC0wKwYJKoZIhvcNAQkOMR4wHDAaBgNVHREEEzARgg93d3cuZXhhbXBs
ZS5jb20wCgYIKoZIzj0EAwIDSAAwRQIhALgauttxUv8tbxjII40QjLD2SJVNacel
aXIowVNQoSfMAiBH6HW0AGKv2b3t4oEULjqDXiacaBu1K1i5g8sTe206lQ==
-----END CERTIFICATE REQUEST-----
`

const (
	fuzzToken    = "fuzzTokenWithEveryPermission000000000000" // 40 characters, as tokens are
	fuzzReadOnly = "fuzzTokenThatReadsZonesAndDNS00000000000"
	fuzzKey      = "0123456789abcdef0123456789abcdef01234"
	fuzzEmail    = "ops@example.com"
	fuzzZoneID   = "0123456789abcdef0123456789abcdef"
)

// fuzzRoots are the Origin CA roots every fuzz input's simulator shares:
// generating an RSA root per input would be most of the work.
var fuzzRoots = sync.OnceValue(func() map[string]*caKey {
	var o originCA
	o.init()
	return o.roots
})

// fuzzServer is a fresh simulator without a listener, its handler to be
// called directly: an active and a pending zone with a record, a token
// with every permission, a read-only one and a Global API Key.
func fuzzServer() (*Server, Zone) {
	s := &Server{state: newState(), now: time.Now}
	s.origin.once.Do(func() {
		s.origin.roots = fuzzRoots()
		s.origin.issued = map[string]*originCert{}
		s.origin.svcKeys = map[string]bool{}
		s.origin.serviceKeysRetired = true
	})
	// Fixed IDs, so that seeds can name them.
	z := s.addZone("example.com", ZoneActive, DefaultAccount)
	z.ID = fuzzZoneID
	s.addZone("pending.example.com", ZonePending, DefaultAccount).ID = strings.Repeat("0", 32)
	s.records[z.ID] = append(s.records[z.ID], &Record{ID: strings.Repeat("ab", 16), ZoneID: z.ID, Name: "_acme-challenge.example.com",
		Type: "TXT", Content: `"value"`, TTL: 60, CreatedOn: time.Now(), ModifiedOn: time.Now()})
	s.AddToken(Token{Value: fuzzToken, Permissions: []Permission{ZoneRead, DNSEdit, SSLEdit}})
	s.AddToken(Token{Value: fuzzReadOnly, Permissions: []Permission{ZoneRead, DNSRead}})
	s.AddGlobalKey(fuzzEmail, fuzzKey)
	s.AddServiceKey("v1.0-service-key")
	return s, *z
}

var fuzzMethods = []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPut, http.MethodPatch}

// authenticate sets the credential the fuzzer picks.
func authenticate(r *http.Request, auth byte) {
	switch auth % 8 {
	case 1:
		r.Header.Set("Authorization", "Bearer "+fuzzToken)
	case 2:
		r.Header.Set("Authorization", "Bearer "+fuzzReadOnly)
	case 3:
		r.Header.Set("X-Auth-Email", fuzzEmail)
		r.Header.Set("X-Auth-Key", fuzzKey)
	case 4:
		r.Header.Set("Authorization", "Bearer not-a-token")
	case 5:
		r.Header.Set("X-Auth-User-Service-Key", "v1.0-service-key")
	case 6:
		r.Header.Set("Authorization", "Basic eDp5")
	case 7:
		r.Header.Set("X-Auth-Email", "not an email")
		r.Header.Set("X-Auth-Key", fuzzKey)
	}
}

// Any request to the simulator — method, path, query, body, credential —
// is answered, without a panic, with Cloudflare's envelope: 200 with
// success true, or a 4xx with success false and at least one error with a
// code and a message. No fault is injected, so a 5xx is a simulator bug.
// The handler is called directly: net/http would recover a panic.
func FuzzServeHTTP(f *testing.F) {
	id := fuzzZoneID
	for _, s := range []struct {
		method      byte
		path, query string
		body        string
		auth        byte
	}{
		{0, "/client/v4/zones", "name=example.com&status=active", "", 1},
		{0, "/client/v4/zones", "page=2&per_page=5", "", 3},
		{0, "/client/v4/zones", "page=1e300", "", 3},
		{0, "/client/v4/zones/" + id + "/dns_records", "page=4611686018427387904&per_page=3", "", 1},
		{0, "/client/v4/zones", "name=contains:exam&account.id=0123456789abcdef0123456789abcdef", "", 2},
		{0, "/client/v4/zones/" + id + "/dns_records", "type=TXT&name.exact=_acme-challenge.example.com&content.contains=val&match=any", "", 2},
		{0, "/client/v4/zones/" + id + "/dns_records", "per_page=5000000&page=1", "", 1},
		{1, "/client/v4/zones/" + id + "/dns_records", "", `{"type":"TXT","name":"_acme-challenge","content":"\"abc\"","ttl":60,"comment":"c"}`, 1},
		{1, "/client/v4/zones/" + id + "/dns_records", "", `{"type":"TXT","name":"_acme-challenge.example.com","content":"\"value\""}`, 3},
		{1, "/client/v4/zones/" + id + "/dns_records", "", `{"type":"TXT","content":"\"x","ttl":5}`, 2},
		{0, "/client/v4/zones/" + id + "/dns_records/" + strings.Repeat("ab", 16), "", "", 1},
		{2, "/client/v4/zones/" + id + "/dns_records/" + strings.Repeat("ab", 16), "", "", 1},
		{2, "/client/v4/zones/" + id + "/dns_records/nope", "", "", 1},
		{0, "/client/v4/user/tokens/verify", "", "", 1},
		{0, "/client/v4/user/tokens/verify", "", "", 3},
		{1, "/client/v4/certificates", "", `{"csr":` + jsonString(fuzzCSR) + `,"hostnames":["www.example.com","*.example.com"],"request_type":"origin-ecc","requested_validity":90}`, 1},
		{1, "/client/v4/certificates", "", `{"csr":` + jsonString(fuzzCSR) + `,"hostnames":["a.pending.example.com"],"request_type":"origin-ecc"}`, 5},
		{1, "/client/v4/certificates", "", `{"csr":` + jsonString(fuzzCSR) + `,"hostnames":["é.example.com"],"request_type":"origin-ecc"}`, 1},
		{1, "/client/v4/certificates", "", `{"csr":"x","hostnames":[],"request_type":"origin-rsa","requested_validity":8}`, 1},
		{0, "/client/v4/certificates", "zone_id=" + id + "&page=1", "", 1},
		{0, "/client/v4/certificates/123", "", "", 1},
		{2, "/client/v4/certificates/123", "", "", 2},
		{3, "/client/v4/zones", "", "", 1},
		{0, "/elsewhere", "", "", 0},
		{0, "/client/v4/zones/", "", "", 6},
		{0, "/client/v4/zones", "", "", 7},
		{0, "/client/v4/zones", "", "", 4},
	} {
		fuzzseed.Add(f, s.method, s.path, s.query, []byte(s.body), s.auth)
	}
	f.Fuzz(func(t *testing.T, method byte, path, query string, body []byte, auth byte) {
		s, _ := fuzzServer()
		r := httptest.NewRequest(http.MethodGet, "/", bytes.NewReader(body))
		r.Method = fuzzMethods[int(method)%len(fuzzMethods)]
		r.URL.Path, r.URL.RawQuery = path, query
		authenticate(r, auth)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		checkEnvelope(t, r, body, w)
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// checkEnvelope asserts an answer's status and envelope.
func checkEnvelope(t *testing.T, r *http.Request, body []byte, w *httptest.ResponseRecorder) {
	t.Helper()
	var env struct {
		Success  *bool            `json:"success"`
		Errors   []apiError       `json:"errors"`
		Messages []any            `json:"messages"`
		Result   *json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Success == nil || env.Errors == nil || env.Messages == nil {
		t.Fatalf("%s %s?%s: %d with no envelope (%v): %q", r.Method, r.URL.Path, r.URL.RawQuery, w.Code, err, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", r.Method, r.URL.Path, ct)
	}
	switch {
	case w.Code == http.StatusOK:
		if !*env.Success || len(env.Errors) != 0 || env.Result == nil {
			t.Fatalf("%s %s?%s: 200 with a failed envelope: %s", r.Method, r.URL.Path, r.URL.RawQuery, w.Body.String())
		}
	case w.Code >= 400 && w.Code < 500:
		if *env.Success || len(env.Errors) == 0 {
			t.Fatalf("%s %s?%s: %d without errors: %s", r.Method, r.URL.Path, r.URL.RawQuery, w.Code, w.Body.String())
		}
		for _, e := range env.Errors {
			if e.Code == 0 || e.Message == "" {
				t.Fatalf("%s %s: an error without a code or message: %s", r.Method, r.URL.Path, w.Body.String())
			}
		}
	default:
		t.Fatalf("%s %s?%s (body %q): status %d with no fault injected: %s", r.Method, r.URL.Path, r.URL.RawQuery, body, w.Code, w.Body.String())
	}
}
