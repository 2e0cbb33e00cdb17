package alibaba

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certbridge/certbridge/test/fuzzseed"
)

// fuzzCSR is an ECDSA request for www.example.com.
const fuzzCSR = `-----BEGIN CERTIFICATE REQUEST-----
MIHoMIGPAgEAMAAwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATgGyI6SxR1wBwD
rjuexzpuY6K4BVL436j2WEfmlfOfuAgCiGOs6zx5i5Ea/xR7BGuDDM09KmmjHpxq
vbjHZVzMoC0wKwYJKoZIhvcNAQkOMR4wHDAaBgNVHREEEzARgg93d3cuZXhhbXBs
ZS5jb20wCgYIKoZIzj0EAwIDSAAwRQIhALgauttxUv8tbxjII40QjLD2SJVNacel
aXIowVNQoSfMAiBH6HW0AGKv2b3t4oEULjqDXiacaBu1K1i5g8sTe206lQ==
-----END CERTIFICATE REQUEST-----
`

const (
	fuzzKeyID  = "LTAI5tFuzzKey00000000001"
	fuzzSecret = "fuzzSecretOfTheAccessKey000000"
	fuzzRole   = "acs:ram::1234567890123456:role/fuzz"
)

// fuzzCAs are the CAs every input's simulator starts with (an ECC root, an
// ECC and an RSA sub-CA), made once: key generation would be most of an
// input's work. Each simulator gets copies, so issuing counts stay its own.
var fuzzCAs = sync.OnceValue(func() map[string]*ca {
	s := newServer()
	s.AddCA("root", CAOptions{ECC: true})
	s.AddCA("sub-ecc", CAOptions{Parent: "root", ECC: true})
	s.AddCA("sub-rsa", CAOptions{Parent: "root"})
	return s.cas
})

// fuzzServer is a fresh simulator without listeners: an AccessKey with
// every permission, STS credentials, a role, a domain with a record, the
// CAs.
func fuzzServer() (*Server, *stsCredential) {
	s := newServer()
	s.AddAccessKey(AccessKey{ID: fuzzKeyID, Secret: fuzzSecret, Policy: AllowAll})
	s.AddRole(Role{ARN: fuzzRole, Policy: AllowAll, TrustedAccessKeys: []string{fuzzKeyID}})
	s.AddDomain("example.com", FreeEdition)
	s.AddForeignDomain("foreign.example")
	s.nextID++
	s.records["example.com"] = []*Record{{ID: strconv.FormatInt(s.nextID, 10), Domain: "example.com", RR: "_acme-challenge", Type: "TXT", Value: "v", TTL: 600}}
	s.cas = map[string]*ca{}
	for id, c := range fuzzCAs() {
		cp := *c
		s.cas[id] = &cp
	}
	s.mu.Lock()
	sts := s.newSTSLocked(AllowAll, time.Hour)
	s.mu.Unlock()
	return s, sts
}

// sdkStringToSign is the StringToSign as the Alibaba Cloud SDK builds it
// (sdk/auth/rpc_signature_composer.go): the parameters encoded as one form
// string, then its replacements, then escaped whole. The simulator builds
// it its own way, parameter by parameter; the two must agree.
func sdkStringToSign(method string, p map[string]string) string {
	v := url.Values{}
	for k, x := range p {
		v.Set(k, x)
	}
	s := v.Encode()
	s = strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(s)
	return method + "&%2F&" + url.QueryEscape(s)
}

// Fuzz modes, bits of the mode byte.
const (
	modeSign   = 1 << iota // fill the common parameters and sign as the SDK does
	modeForm               // send the parameters as a form body, not a query
	modeTamper             // change a parameter after signing
	modeCAS                // default Version to Private CA's, not alidns'
	modeSTS                // call the STS endpoint
	modeSTSKey             // sign with STS credentials and their token
)

var nonce atomic.Int64

// Any RPC request — parameters as a query or a form, signed as the SDK
// signs or not, then possibly altered — to the alidns/Private CA endpoint
// or STS is answered without a panic: 200 with a RequestId, or a 4xx with
// Alibaba's error body (RequestId, HostId, Code, Message); never a 5xx, as
// no fault is injected. A request signed with the right secret is never
// refused for its signature; one changed after signing always is. The
// handlers are called directly: net/http would recover a panic.
func FuzzServeRPC(f *testing.F) {
	csr := url.QueryEscape(fuzzCSR)
	const pt = "ApiPassthrough.Extensions."
	for _, s := range []struct {
		params string
		mode   byte
	}{
		{"Action=DescribeDomains&PageNumber=1&PageSize=20", modeSign},
		{"Action=DescribeDomains&KeyWord=exam&SearchMode=LIKE&PageNumber=2&PageSize=1", modeSign | modeForm},
		{"Action=DescribeDomainInfo&DomainName=example.com", modeSign},
		{"Action=DescribeDomainInfo&DomainName=foreign.example", modeSign | modeSTSKey},
		{"Action=DescribeDomainRecords&DomainName=example.com&KeyWord=acme&SearchMode=EXACT&Type=TXT&PageSize=500", modeSign},
		{"Action=DescribeDomainRecords&DomainName=example.com&RRKeyWord=_acme&ValueKeyWord=v&TypeKeyWord=TXT", modeSign | modeForm},
		{"Action=DescribeSubDomainRecords&SubDomain=_acme-challenge.example.com&Type=TXT&PageNumber=3", modeSign},
		{"Action=DescribeSubDomainRecords&SubDomain=example.com&DomainName=example.com", modeSign},
		{"Action=AddDomainRecord&DomainName=example.com&RR=_acme-challenge&Type=TXT&Value=abc&TTL=600", modeSign | modeForm},
		{"Action=AddDomainRecord&DomainName=example.com&RR=_acme-challenge&Type=TXT&Value=v&TTL=60", modeSign},
		{"Action=DeleteDomainRecord&RecordId=100000000001", modeSign},
		{"Action=DeleteSubDomainRecords&DomainName=example.com&RR=_acme-challenge&Type=TXT", modeSign},
		{"Action=AddDomainRecord&DomainName=example.com&RR=x&Type=TXT&Value=abc", modeSign | modeTamper},
		{"Action=DescribeCACertificate&Identifier=sub-ecc", modeSign | modeCAS},
		{"Action=CreateCustomCertificate&ParentIdentifier=sub-ecc&Validity=1y&Immediately=2&Csr=" + csr +
			"&ApiPassthrough.Subject.CommonName=www.example.com&" + pt + "KeyUsage.DigitalSignature=true&" + pt + "ExtendedKeyUsages.1=serverAuth&" +
			pt + "SubjectAlternativeNames.1.Type=dNSName&" + pt + "SubjectAlternativeNames.1.Value=www.example.com&" +
			pt + "SubjectAlternativeNames.2.Type=iPAddress&" + pt + "SubjectAlternativeNames.2.Value=10.0.0.1&" +
			pt + "SubjectAlternativeNames.3.Type=uniformResourceIdentifier&" + pt + "SubjectAlternativeNames.3.Value=spiffe://cluster.local/ns/a/sa/b&" +
			pt + "SubjectAlternativeNames.4.Type=rfc822Name&" + pt + "SubjectAlternativeNames.4.Value=ops@example.com", modeSign | modeCAS | modeForm},
		{"Action=CreateCustomCertificate&ParentIdentifier=sub-ecc&Validity=2026-01-01T00:00:00Z/2027-01-01T00:00:00Z&Immediately=1&Csr=" + csr, modeSign | modeCAS},
		{"Action=CreateCustomCertificate&ParentIdentifier=sub-rsa&Validity=7d&Csr=" + csr, modeSign | modeCAS},
		{"Action=CreateServerCertificateWithCsr&CaIdentifier=sub-ecc&ParentIdentifier=sub-ecc&Days=30&Domain=www.example.com,10.0.0.1&Csr=" + csr, modeSign | modeCAS | modeForm},
		{"Action=CreateServerCertificateWithCsr&ParentIdentifier=sub-ecc&BeforeTime=1700000000&AfterTime=1800000000&Csr=" + csr, modeSign | modeCAS},
		{"Action=AssumeRole&RoleArn=" + fuzzRole + "&RoleSessionName=fuzz&DurationSeconds=3600&Version=2015-04-01", modeSign | modeSTS},
		{"Action=AssumeRoleWithOIDC&RoleArn=" + fuzzRole + "&OIDCProviderArn=x&OIDCToken=y&Version=2015-04-01", modeSTS | modeForm},
		{"Action=DescribeDomains&Version=2015-01-09&AccessKeyId=" + fuzzKeyID + "&Signature=x&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=1&Timestamp=2026-01-01T00:00:00Z", 0},
		{"Action=DescribeDomains&Version=2015-01-09", modeForm},
		// From reading the handlers (a minute of fuzzing reached none of
		// them): page numbers whose offset overflows, SANs and names a
		// certificate cannot hold, counts AddDate wraps around.
		{"Action=DescribeDomains&PageNumber=9223372036854775807", modeSign},
		{"Action=DescribeDomainRecords&DomainName=example.com&PageNumber=4611686018427387905&PageSize=2", modeSign},
		{"Action=CreateCustomCertificate&ParentIdentifier=sub-ecc&Validity=1y&Csr=" + csr + "&" + pt + "SubjectAlternativeNames.1.Type=dNSName&" + pt + "SubjectAlternativeNames.1.Value=%C3%A9", modeSign | modeCAS},
		{"Action=CreateCustomCertificate&ParentIdentifier=sub-ecc&Validity=1y&Csr=" + csr + "&ApiPassthrough.Subject.CommonName=%FF", modeSign | modeCAS},
		{"Action=CreateCustomCertificate&ParentIdentifier=sub-ecc&Validity=106751991167300d&Csr=" + csr, modeSign | modeCAS},
		{"Action=CreateServerCertificateWithCsr&ParentIdentifier=sub-ecc&Days=30&Domain=%C3%A9&Csr=" + csr, modeSign | modeCAS},
		{"%zz=1;a=b", modeForm},
		{"", 0},
	} {
		fuzzseed.Add(f, s.params, s.mode)
	}
	f.Fuzz(func(t *testing.T, raw string, mode byte) {
		s, sts := fuzzServer()
		p, perr := url.ParseQuery(raw)
		encoded := raw
		signed := mode&modeSign != 0 && perr == nil
		if signed {
			// As the SDK sends it: one value per parameter, the common
			// parameters set, signed.
			m := map[string]string{}
			for k, v := range p {
				m[k] = v[0]
			}
			if _, ok := m["Action"]; !ok {
				m["Action"] = "DescribeDomains" // every SDK call has one
			}
			if m["Version"] == "" {
				m["Version"] = alidnsVersion
				if mode&modeCAS != 0 {
					m["Version"] = casVersion
				}
			}
			m["AccessKeyId"], m["SignatureMethod"], m["SignatureVersion"] = fuzzKeyID, "HMAC-SHA1", "1.0"
			m["Timestamp"] = time.Now().UTC().Format("2006-01-02T15:04:05Z")
			m["SignatureNonce"] = strconv.FormatInt(nonce.Add(1), 10)
			secret := fuzzSecret
			if mode&modeSTSKey != 0 {
				m["AccessKeyId"], m["SecurityToken"], secret = sts.id, sts.token, sts.secret
			}
			delete(m, "Signature")
			m["Signature"] = sign(sdkStringToSign(http.MethodPost, m), secret)
			if mode&modeTamper != 0 {
				keys := make([]string, 0, len(m))
				for k := range m {
					if k != "Signature" && k != "AccessKeyId" {
						keys = append(keys, k)
					}
				}
				sort.Strings(keys)
				k := keys[len(raw)%len(keys)]
				m[k] += "x"
			}
			v := url.Values{}
			for k, x := range m {
				v.Set(k, x)
			}
			encoded = v.Encode()
		}
		r := httptest.NewRequest(http.MethodPost, "/", nil)
		if mode&modeForm != 0 {
			r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(encoded))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r.URL.RawQuery = encoded
		}
		w := httptest.NewRecorder()
		if mode&modeSTS != 0 {
			s.serveSTS(w, r)
		} else {
			s.serveRPC(w, r)
		}
		code := checkAnswer(t, raw, mode, w)
		authFailed := code == "SignatureDoesNotMatch" || strings.HasPrefix(code, "InvalidAccessKeyId") || strings.HasPrefix(code, "InvalidSecurityToken") ||
			code == "MissingParameter" && strings.Contains(w.Body.String(), "Signature") || strings.HasPrefix(code, "InvalidTimeStamp") || code == "SignatureNonceUsed"
		switch {
		case !signed || mode&modeSTS != 0:
			// STS checks Version and DurationSeconds before the signature,
			// and AssumeRoleWithOIDC is not signed at all.
		case mode&modeTamper != 0 && code != "SignatureDoesNotMatch":
			t.Fatalf("a request changed after signing was answered %d %s: %s", w.Code, code, w.Body.String())
		case mode&modeTamper == 0 && authFailed:
			t.Fatalf("a request signed as the SDK signs it was refused: %d %s", w.Code, w.Body.String())
		}
	})
}

// checkAnswer asserts an answer's status and body, and returns its Code.
func checkAnswer(t *testing.T, raw string, mode byte, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%q (mode %b): %d with a body that is not JSON: %q", raw, mode, w.Code, w.Body.String())
	}
	if id, _ := body["RequestId"].(string); id == "" {
		t.Fatalf("%q (mode %b): no RequestId: %s", raw, mode, w.Body.String())
	}
	switch {
	case w.Code == http.StatusOK:
		if _, ok := body["Code"]; ok {
			t.Fatalf("%q (mode %b): 200 with an error code: %s", raw, mode, w.Body.String())
		}
		return ""
	case w.Code >= 400 && w.Code < 500:
		for _, k := range []string{"HostId", "Code", "Message"} {
			if v, _ := body[k].(string); v == "" {
				t.Fatalf("%q (mode %b): %d without %s: %s", raw, mode, w.Code, k, w.Body.String())
			}
		}
		code, _ := body["Code"].(string)
		return code
	}
	t.Fatalf("%q (mode %b): status %d with no fault injected: %s", raw, mode, w.Code, w.Body.String())
	return ""
}
