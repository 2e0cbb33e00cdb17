package cloudflare_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/origin_ca_certificates"
	"github.com/cloudflare/cloudflare-go/v7/shared"
	"github.com/cloudflare/cloudflare-go/v7/ssl"

	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

func csrPEM(t *testing.T, key crypto.Signer, hosts ...string) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func originParams(csr, requestType string, validity int, hosts ...string) origin_ca_certificates.OriginCACertificateNewParams {
	var p origin_ca_certificates.OriginCACertificateNewParams
	p.Csr.Value, p.Csr.Present = csr, true
	p.Hostnames.Value, p.Hostnames.Present = hosts, true
	p.RequestType.Value, p.RequestType.Present = shared.CertificateRequestType(requestType), true
	p.RequestedValidity.Value, p.RequestedValidity.Present = ssl.RequestValidity(validity), true
	return p
}

func TestOriginCA(t *testing.T) {
	s := start(t)
	s.AddZone("example.com")
	sslToken := strings.Repeat("c", 40)
	s.AddToken(cfsim.Token{Value: sslToken, Permissions: []cfsim.Permission{cfsim.SSLEdit}})
	svc := origin_ca_certificates.NewOriginCACertificateService(withToken(s, sslToken)...)
	ctx := context.Background()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	for _, tc := range []struct {
		name        string
		key         crypto.Signer
		requestType string
	}{
		{"RSA", rsaKey, cfsim.OriginRSA},
		{"ECC", ecKey, cfsim.OriginECC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hosts := []string{"example.com", "*.example.com"}
			res, err := svc.New(ctx, originParams(csrPEM(t, tc.key, hosts...), tc.requestType, 90, hosts...))
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode([]byte(res.Certificate))
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			roots := x509.NewCertPool()
			roots.AddCert(s.OriginCARoot(tc.requestType))
			if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "www.example.com"}); err != nil {
				t.Errorf("the certificate must chain to the %s root: %v", tc.requestType, err)
			}
			if days := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24; days < 89.9 || days > 90.1 {
				t.Errorf("validity %.1f days, want 90", days)
			}
			if res.ID != cert.SerialNumber.String() {
				t.Errorf("id %s is the serial number %s", res.ID, cert.SerialNumber)
			}
			if _, err := time.Parse("2006-01-02 15:04:05 -0700 MST", res.ExpiresOn); err != nil {
				t.Errorf("expires_on %q is not in Go's time.String layout", res.ExpiresOn)
			}
			got, err := svc.Get(ctx, res.ID)
			if err != nil || got.Certificate != res.Certificate {
				t.Errorf("Get: %v", err)
			}
		})
	}

	cases := []struct {
		name       string
		auth       []option.RequestOption
		params     origin_ca_certificates.OriginCACertificateNewParams
		wantStatus int
		wantCode   int64
		wantText   string
	}{
		{"hostname outside the account", withToken(s, sslToken), originParams(csrPEM(t, rsaKey, "example.net"), cfsim.OriginRSA, 7, "example.net"),
			400, 1010, "Failed to validate requested hostname example.net"},
		{"two-level wildcard", withToken(s, sslToken), originParams(csrPEM(t, rsaKey, "a.example.com"), cfsim.OriginRSA, 7, "*.*.example.com"),
			400, 1010, "*.*.example.com"},
		{"validity not offered", withToken(s, sslToken), originParams(csrPEM(t, rsaKey, "example.com"), cfsim.OriginRSA, 60, "example.com"),
			400, 1013, "requested_validity"},
		{"key type does not match request_type", withToken(s, sslToken), originParams(csrPEM(t, rsaKey, "example.com"), cfsim.OriginECC, 7, "example.com"),
			400, 1014, "key type"},
		{"token without SSL and Certificates Edit", withToken(s, token), originParams(csrPEM(t, rsaKey, "example.com"), cfsim.OriginRSA, 7, "example.com"),
			403, 10000, "Authentication error"},
		{"Origin CA key past end of life", opts(s, option.WithUserServiceKey("v1.0-retired-key")), originParams(csrPEM(t, rsaKey, "example.com"), cfsim.OriginRSA, 7, "example.com"),
			403, 10001, "end of life"},
	}
	s.AddServiceKey("v1.0-retired-key")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := origin_ca_certificates.NewOriginCACertificateService(tc.auth...).New(ctx, tc.params)
			status, codes := apiError(t, err)
			if status != tc.wantStatus || len(codes) == 0 || codes[0] != tc.wantCode || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("got %d %v (%v), want %d %d %q", status, codes, err, tc.wantStatus, tc.wantCode, tc.wantText)
			}
		})
	}

	t.Run("revoke", func(t *testing.T) {
		res, err := svc.New(ctx, originParams(csrPEM(t, rsaKey, "example.com"), cfsim.OriginRSA, 7, "example.com"))
		if err != nil {
			t.Fatal(err)
		}
		del, err := svc.Delete(ctx, res.ID)
		if err != nil || del.ID != res.ID {
			t.Fatalf("%+v %v", del, err)
		}
	})
}
