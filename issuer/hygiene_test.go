package issuer_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/cert-manager/issuer-lib/controllers/signer"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/issuer"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/testutil"
)

// canary is a fresh random value of n characters from alphabet.
func canary(alphabet string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// The issuer's side of the secret-hygiene sweep: the Origin CA and Private
// CA scenarios of F18–F21 and the rejected credentials, with canary
// credentials, Check and Sign each.
// No error shows a credential in any of testutil.LeakForms. The controller
// turns these errors into the CertificateRequest's conditions and Events
// as they are, and F18's ValidityRounded Event is built from the order's
// days alone, so the errors are what there is to look at.
func TestSecretHygiene(t *testing.T) {
	origin := []struct {
		name  string
		setup func(s *cfsim.Server, token string) (hosts []string)
		// tokenPerms are the canary token's permissions; nil registers
		// no token (a revoked one).
		tokenPerms []cfsim.Permission
		status     cfsim.TokenStatus
	}{
		{"F18 validity rounded", func(*cfsim.Server, string) []string { return []string{"example.com"} }, []cfsim.Permission{cfsim.SSLEdit}, ""},
		{"F19 hostname outside the account", func(*cfsim.Server, string) []string { return []string{"example.com", "shop.example.net"} }, []cfsim.Permission{cfsim.SSLEdit}, ""},
		{"F19 token without SSL and Certificates Edit", func(*cfsim.Server, string) []string { return []string{"example.com"} }, []cfsim.Permission{cfsim.ZoneRead}, ""},
		{"F19 1016 not authorized", func(s *cfsim.Server, _ string) []string {
			s.InjectFault(cfsim.Fault{Route: "POST /certificates", Status: 403, Code: 1016, Message: "User is not authorized to perform this action"})
			return []string{"example.com"}
		}, []cfsim.Permission{cfsim.SSLEdit}, ""},
		{"expired token", func(*cfsim.Server, string) []string { return []string{"example.com"} }, []cfsim.Permission{cfsim.SSLEdit}, cfsim.TokenExpired},
		{"revoked token", func(*cfsim.Server, string) []string { return []string{"example.com"} }, nil, ""},
		{"F21 server error", func(s *cfsim.Server, _ string) []string {
			s.InjectFault(cfsim.Fault{Route: "POST /certificates", Status: 503, Code: 1100, Message: "Internal Server Error", Times: 3, Header: http.Header{"Retry-After": {"0"}}})
			return []string{"example.com"}
		}, []cfsim.Permission{cfsim.SSLEdit}, ""},
	}
	for _, tc := range origin {
		t.Run("Origin CA "+tc.name, func(t *testing.T) {
			s := cfsim.Start()
			t.Cleanup(s.Close)
			s.AddZone("example.com")
			token := canary(alnum, 40)
			if tc.tokenPerms != nil {
				s.AddToken(cfsim.Token{Value: token, Permissions: tc.tokenPerms, Status: tc.status})
			}
			ca := issuer.NewOriginCA(issuer.OriginCAOptions{BaseURL: s.URL(), Roots: roots(s)}, token, `Secret default/cf-origin key "token"`)
			csr := dnsCSR(t, ecKey, tc.setup(s, token)...)
			errs := []error{ca.Check(context.Background())}
			order, err := issuer.PlanOrigin(signer.CertificateDetails{CSR: csr, Duration: 100 * day}, "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = ca.Sign(context.Background(), csr, order)
			errs = append(errs, err)
			checkErrors(t, []string{token}, errs, tc.name != "F18 validity rounded")
		})
	}

	pca := []struct {
		name  string
		setup func(s *alisim.Server, id, secret string) (useID, useSecret, ca string)
	}{
		{"F20 root CA", func(s *alisim.Server, id, secret string) (string, string, string) { return id, secret, "root-1" }},
		{"F20 revoked sub-CA", func(s *alisim.Server, id, secret string) (string, string, string) {
			s.AddCA("sub-revoked", alisim.CAOptions{Parent: "root-1", Revoked: true})
			return id, secret, "sub-revoked"
		}},
		{"F20 no certificates left", func(s *alisim.Server, id, secret string) (string, string, string) {
			s.AddCA("sub-empty", alisim.CAOptions{Parent: "root-1", Remaining: -1})
			return id, secret, "sub-empty"
		}},
		{"F20 unknown CA", func(s *alisim.Server, id, secret string) (string, string, string) { return id, secret, "sub-nowhere" }},
		{"F21 throttling", func(s *alisim.Server, id, secret string) (string, string, string) {
			s.InjectFault(alisim.Fault{Action: "CreateCustomCertificate", Status: 400, Code: "Throttling.User"})
			return id, secret, "sub-1"
		}},
		{"F21 server error", func(s *alisim.Server, id, secret string) (string, string, string) {
			s.InjectFault(alisim.Fault{Action: "CreateCustomCertificate", Status: 503, Code: "ServiceUnavailable"})
			return id, secret, "sub-1"
		}},
		{"wrong secret", func(s *alisim.Server, id, _ string) (string, string, string) {
			return id, canary(alnum, 30), "sub-1"
		}},
		{"unknown AccessKey", func(s *alisim.Server, _, secret string) (string, string, string) {
			return "LTAI5t" + canary(alnum, 18), secret, "sub-1"
		}},
		{"RAM policy without yundun-cert", func(s *alisim.Server, _, secret string) (string, string, string) {
			id := "LTAI5t" + canary(alnum, 18)
			s.AddAccessKey(alisim.AccessKey{ID: id, Secret: secret, Policy: alisim.Policy{Actions: []string{"alidns:*"}}})
			return id, secret, "sub-1"
		}},
	}
	for _, tc := range pca {
		t.Run("Private CA "+tc.name, func(t *testing.T) {
			s := alisim.Start()
			t.Cleanup(s.Close)
			s.AddCA("root-1", alisim.CAOptions{})
			s.AddCA("sub-1", alisim.CAOptions{Parent: "root-1"})
			id, secret := "LTAI5t"+canary(alnum, 18), canary(alnum, 30)
			s.AddAccessKey(alisim.AccessKey{ID: id, Secret: secret, Policy: alisim.AllowAll})
			useID, useSecret, caID := tc.setup(s, id, secret)
			p, err := issuer.NewAlibabaPCA(alibaba.Options{PCA: alibaba.Endpoint{Scheme: "HTTP", Host: s.Endpoint()}},
				alibaba.Credential{AccessKeyID: useID, AccessKeySecret: useSecret, IDSource: `Secret istio-system/pca-key key "id"`}, "", caID, `Secret istio-system/pca-key key "id"`)
			if err != nil {
				t.Fatal(err)
			}
			_, checkErr := p.Check(context.Background())
			_, signErr := p.Sign(context.Background(), signer.CertificateDetails{CSR: dnsCSR(t, rsaKey, "a.example.com"), Duration: time.Hour})
			checkErrors(t, []string{id, secret, useID, useSecret}, []error{checkErr, signErr}, true)
		})
	}
}

// checkErrors fails when an error shows a credential; failing says some
// call must have failed, for the scenario to be the failure it names.
func checkErrors(t *testing.T, secrets []string, errs []error, failing bool) {
	t.Helper()
	failed := false
	for _, err := range errs {
		if err == nil {
			continue
		}
		failed = true
		if v, f, ok := testutil.FindLeak(secrets, err.Error()); ok {
			t.Errorf("the error shows %q of the secret %q: %v", f, v, err)
		}
	}
	if failed != failing {
		t.Fatalf("the scenario did not run as named: errors %v", errs)
	}
}
