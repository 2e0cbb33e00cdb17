package issuer_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/issuer-lib/controllers/signer"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certbridge/certbridge/issuer"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

var (
	rsaKey, _ = rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _  = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
)

func csrFor(t *testing.T, key crypto.Signer, tmpl x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func dnsCSR(t *testing.T, key crypto.Signer, names ...string) []byte {
	return csrFor(t, key, x509.CertificateRequest{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names})
}

const day = 24 * time.Hour

func TestPlanOrigin_F18_ValidityRounding(t *testing.T) {
	cases := []struct {
		requested time.Duration
		want      int
	}{
		{0, 90}, {time.Hour, 7}, {7 * day, 7}, {8 * day, 30}, {45 * day, 90}, {90 * day, 90},
		{365 * day, 365}, {2 * 365 * day, 730}, {3 * 365 * day, 1095}, {20 * 365 * day, 5475},
	}
	csr := dnsCSR(t, rsaKey, "example.com")
	for _, tc := range cases {
		t.Run(tc.requested.String(), func(t *testing.T) {
			o, err := issuer.PlanOrigin(signer.CertificateDetails{CSR: csr, Duration: tc.requested}, "")
			if err != nil {
				t.Fatal(err)
			}
			if o.ValidityDays != tc.want {
				t.Fatalf("validity %d days, want %d", o.ValidityDays, tc.want)
			}
			// The 90-day default (requested 0) is offered as is.
			wantRounded := tc.requested != 0 && tc.requested != time.Duration(tc.want)*day
			if o.Rounded() != wantRounded {
				t.Errorf("Rounded() = %v, want %v", o.Rounded(), wantRounded)
			}
		})
	}
}

func TestPlanOrigin_RequestShape(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	spiffe, _ := url.Parse("spiffe://cluster.local/ns/default/sa/app")
	cases := []struct {
		name        string
		csr         []byte
		requestType string
		isCA        bool
		wantType    string
		wantErr     string
	}{
		{"RSA key defaults to origin-rsa", dnsCSR(t, rsaKey, "example.com"), "", false, issuer.OriginRSA, ""},
		{"ECDSA key defaults to origin-ecc", dnsCSR(t, ecKey, "example.com"), "", false, issuer.OriginECC, ""},
		{"requestType and key disagree", dnsCSR(t, rsaKey, "example.com"), issuer.OriginECC, false, "", "requestType is OriginECC (ECDSA) but the request's key is OriginRSA (RSA)"},
		{"IP, URI and email SANs", csrFor(t, rsaKey, x509.CertificateRequest{DNSNames: []string{"example.com"},
			IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}, URIs: []*url.URL{spiffe}, EmailAddresses: []string{"ops@example.com"}}),
			"", false, "", "remove IP 10.0.0.1, URI spiffe://cluster.local/ns/default/sa/app, email ops@example.com"},
		{"no DNS names", csrFor(t, rsaKey, x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}), "", false, "", "no DNS names"},
		{"Ed25519 key", dnsCSR(t, edKey, "example.com"), "", false, "", "RSA or ECDSA"},
		{"CA certificate", dnsCSR(t, rsaKey, "example.com"), "", true, "", "no CA certificates"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := issuer.PlanOrigin(signer.CertificateDetails{CSR: tc.csr, Duration: 30 * day, IsCA: tc.isCA}, tc.requestType)
			if tc.wantErr == "" {
				if err != nil || o.RequestType != tc.wantType {
					t.Fatalf("got %+v, %v", o, err)
				}
				return
			}
			var permanent signer.PermanentError
			if !errors.As(err, &permanent) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want a permanent error holding %q, got %v", tc.wantErr, err)
			}
		})
	}
}

const sslToken = "simTokenWithSSLAndCertificatesEdit000000"

func originEnv(t *testing.T) (*cfsim.Server, *issuer.OriginCA) {
	t.Helper()
	s := cfsim.Start()
	t.Cleanup(s.Close)
	s.AddZone("example.com")
	s.AddToken(cfsim.Token{Value: sslToken, Permissions: []cfsim.Permission{cfsim.SSLEdit}})
	ca := issuer.NewOriginCA(issuer.OriginCAOptions{BaseURL: s.URL(), Roots: roots(s)}, sslToken, "Secret default/cf-origin key \"token\"")
	return s, ca
}

func roots(s *cfsim.Server) map[string][]byte {
	out := map[string][]byte{}
	for _, rt := range []string{issuer.OriginRSA, issuer.OriginECC} {
		out[rt] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.OriginCARoot(rt).Raw})
	}
	return out
}

func TestOriginCA_Sign(t *testing.T) {
	s, ca := originEnv(t)
	for _, key := range []crypto.Signer{rsaKey, ecKey} {
		csr := dnsCSR(t, key, "example.com", "*.example.com")
		order, err := issuer.PlanOrigin(signer.CertificateDetails{CSR: csr, Duration: 100 * day}, "")
		if err != nil {
			t.Fatal(err)
		}
		bundle, err := ca.Sign(context.Background(), csr, order)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(bundle.ChainPEM)
		leaf, _ := x509.ParseCertificate(block.Bytes)
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(bundle.CAPEM) {
			t.Fatal("status.ca holds no certificate")
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "www.example.com"}); err != nil {
			t.Errorf("%s: the certificate must verify against status.ca: %v", order.RequestType, err)
		}
		if days := leaf.NotAfter.Sub(leaf.NotBefore).Hours() / 24; days < 364.9 || days > 365.1 {
			t.Errorf("100 days requested: want 365 days issued, got %.1f", days)
		}
	}
	if n := len(s.OriginCertificates()); n != 2 {
		t.Errorf("want 2 certificates issued, got %d", n)
	}
}

func TestOriginCA_F19_F21_Failures(t *testing.T) {
	cases := []struct {
		name  string
		setup func(s *cfsim.Server) (*issuer.OriginCA, []string)
		hosts []string
		want  class
		text  []string
	}{
		{"F19 hostname outside the account", nil, []string{"example.com", "shop.example.net"}, permanent,
			[]string{"shop.example.net is not in a zone of this Cloudflare account", "1010"}},
		{"F19 token without SSL and Certificates Edit", func(s *cfsim.Server) (*issuer.OriginCA, []string) {
			tok := strings.Repeat("n", 40)
			s.AddToken(cfsim.Token{Value: tok, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
			return issuer.NewOriginCA(issuer.OriginCAOptions{BaseURL: s.URL()}, tok, "Secret default/cf-origin key \"token\""), []string{tok}
		}, []string{"example.com"}, issuerBroken, []string{"lacks the permission Zone → SSL and Certificates → Edit", "Secret default/cf-origin"}},
		{"revoked token", func(s *cfsim.Server) (*issuer.OriginCA, []string) {
			tok := strings.Repeat("r", 40)
			return issuer.NewOriginCA(issuer.OriginCAOptions{BaseURL: s.URL()}, tok, "Secret default/cf-origin key \"token\""), []string{tok}
		}, []string{"example.com"}, issuerBroken, []string{"rejected the API token", "9109"}},
		{"F19 1016 not authorized", func(s *cfsim.Server) (*issuer.OriginCA, []string) {
			s.InjectFault(cfsim.Fault{Route: "POST /certificates", Status: 403, Code: 1016, Message: "User is not authorized to perform this action"})
			return nil, nil
		}, []string{"example.com"}, issuerBroken, []string{"Zone → SSL and Certificates → Edit", "1016"}},
		{"F21 server error", func(s *cfsim.Server) (*issuer.OriginCA, []string) {
			s.InjectFault(cfsim.Fault{Route: "POST /certificates", Status: 503, Code: 1100, Message: "Internal Server Error", Times: 3,
				Header: http.Header{"Retry-After": {"0"}}})
			return nil, nil
		}, []string{"example.com"}, transient, []string{"unavailable or rate-limiting", "1100"}},
		{"F21 code 1201 on a 4xx", func(s *cfsim.Server) (*issuer.OriginCA, []string) {
			s.InjectFault(cfsim.Fault{Route: "POST /certificates", Status: 400, Code: 1201, Message: "Try again later"})
			return nil, nil
		}, []string{"example.com"}, transient, []string{"1201"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, ca := originEnv(t)
			secrets := []string{sslToken}
			if tc.setup != nil {
				if other, extra := tc.setup(s); other != nil {
					ca, secrets = other, extra
				}
			}
			csr := dnsCSR(t, rsaKey, tc.hosts...)
			order, err := issuer.PlanOrigin(signer.CertificateDetails{CSR: csr, Duration: 90 * day}, "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = ca.Sign(context.Background(), csr, order)
			if err == nil {
				t.Fatal("want an error")
			}
			got := classify(err)
			if got != tc.want {
				t.Errorf("%s, want %s: %v", got, tc.want, err)
			}
			for _, w := range tc.text {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			for _, secret := range secrets {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error holds the token")
				}
			}
		})
	}
}

func TestOriginCA_Check(t *testing.T) {
	s, ca := originEnv(t)
	if err := ca.Check(context.Background()); err != nil {
		t.Fatalf("an active token: %v", err)
	}
	expired := strings.Repeat("e", 40)
	s.AddToken(cfsim.Token{Value: expired, Status: cfsim.TokenExpired, Permissions: []cfsim.Permission{cfsim.SSLEdit}})
	err := issuer.NewOriginCA(issuer.OriginCAOptions{BaseURL: s.URL()}, expired, "Secret default/cf-origin key \"token\"").Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "as expired") || strings.Contains(err.Error(), expired) {
		t.Fatalf("an expired token: %v", err)
	}
}

// class is what issuer-lib's controller does with a Sign or Check error.
type class string

const (
	transient    class = "retried (transient)"
	permanent    class = "failed (permanent)"
	issuerBroken class = "issuer not Ready"
)

func classify(err error) class {
	var p signer.PermanentError
	var i signer.IssuerError
	switch {
	case errors.As(err, &p):
		return permanent
	case errors.As(err, &i):
		return issuerBroken
	}
	return transient
}

// The embedded roots are Cloudflare's published files, pinned by fingerprint:
// the expired 2016 ECC root has the same subject, serial and key as the
// current one, so nothing weaker tells them apart.
func TestEmbeddedOriginRoots(t *testing.T) {
	tests := []struct {
		requestType, ou, sha256 string
		key                     x509.PublicKeyAlgorithm
	}{
		{issuer.OriginRSA, "CloudFlare Origin SSL Certificate Authority", "d3c7e85c91707fc0a12abc5d88266747aa4fa8e7b162f633ffb3c9d989947620", x509.RSA},
		{issuer.OriginECC, "CloudFlare Origin SSL ECC Certificate Authority", "aa63697a22764b67b2134ce14cb5690ea336940b93986113f49545917832d80d", x509.ECDSA},
	}
	for _, tt := range tests {
		t.Run(tt.requestType, func(t *testing.T) {
			block, _ := pem.Decode(issuer.DefaultOriginRoots()[tt.requestType])
			if block == nil {
				t.Fatalf("no %s root embedded", tt.requestType)
			}
			if got := fmt.Sprintf("%x", sha256.Sum256(block.Bytes)); got != tt.sha256 {
				t.Errorf("embedded %s root has SHA-256 %s, want Cloudflare's published %s", tt.requestType, got, tt.sha256)
			}
			root, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if !root.IsCA || root.PublicKeyAlgorithm != tt.key || root.Subject.OrganizationalUnit[0] != tt.ou || root.CheckSignatureFrom(root) != nil {
				t.Errorf("not Cloudflare's self-signed Origin %s root: %s", tt.requestType, root.Subject)
			}
			if time.Now().After(root.NotAfter) {
				t.Errorf("the embedded root expired on %s", root.NotAfter)
			}
		})
	}
}

// The duration reaches the plan from both request kinds, through issuer-lib's
// own request objects.
func TestPlanOrigin_FromRequestObjects(t *testing.T) {
	csr := dnsCSR(t, ecKey, "example.com")
	expiry := int32(45 * 24 * 3600)
	objects := map[string]signer.CertificateRequestObject{
		"CertificateRequest": signer.CertificateRequestObjectFromCertificateRequest(&cmapi.CertificateRequest{
			Spec: cmapi.CertificateRequestSpec{Request: csr, Duration: &metav1.Duration{Duration: 45 * day}}}),
		"CertificateSigningRequest": signer.CertificateRequestObjectFromCertificateSigningRequest(&certificatesv1.CertificateSigningRequest{
			Spec: certificatesv1.CertificateSigningRequestSpec{Request: csr, ExpirationSeconds: &expiry}}),
	}
	for name, obj := range objects {
		t.Run(name, func(t *testing.T) {
			details, err := obj.GetCertificateDetails()
			if err != nil {
				t.Fatal(err)
			}
			o, err := issuer.PlanOrigin(details, "")
			if err != nil {
				t.Fatal(err)
			}
			if o.ValidityDays != 90 || o.RequestType != issuer.OriginECC || !o.Rounded() {
				t.Fatalf("45 days requested: got %+v", o)
			}
		})
	}
}
