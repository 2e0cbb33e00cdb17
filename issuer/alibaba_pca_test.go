package issuer_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cert-manager/issuer-lib/controllers/signer"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/issuer"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
)

const (
	pcaKeyID     = "LTAI5tPrivateCAIssuer001"
	pcaKeySecret = "privateCAIssuerSecret000000000"
)

func pcaEnv(t *testing.T) (*alisim.Server, *x509.Certificate) {
	t.Helper()
	s := alisim.Start()
	t.Cleanup(s.Close)
	s.AddAccessKey(alisim.AccessKey{ID: pcaKeyID, Secret: pcaKeySecret, Policy: alisim.AllowAll})
	root := s.AddCA("root-1", alisim.CAOptions{})
	s.AddCA("sub-1", alisim.CAOptions{Parent: "root-1"})
	return s, root
}

func newPCA(t *testing.T, s *alisim.Server, id, secret, ca string) *issuer.AlibabaPCA {
	t.Helper()
	p, err := issuer.NewAlibabaPCA(alibaba.Options{PCA: alibaba.Endpoint{Scheme: "HTTP", Host: s.Endpoint()}},
		alibaba.Credential{AccessKeyID: id, AccessKeySecret: secret}, "", ca, `Secret istio-system/pca-key`)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// An istio-csr-shaped request: no common name, a SPIFFE URI SAN, client and
// server auth, one hour.
func TestAlibabaPCA_IstioCSRRequest(t *testing.T) {
	s, root := pcaEnv(t)
	s.AddCA("sub-ecc", alisim.CAOptions{Parent: "root-1", ECC: true}) // meshes use ECDSA keys
	pca := newPCA(t, s, pcaKeyID, pcaKeySecret, "sub-ecc")
	if _, err := pca.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	spiffe, _ := url.Parse("spiffe://cluster.local/ns/sandbox/sa/sleep")
	csr := csrFor(t, ecKey, x509.CertificateRequest{URIs: []*url.URL{spiffe}})
	bundle, err := pca.Sign(context.Background(), signer.CertificateDetails{
		CSR: csr, Duration: time.Hour,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(bundle.ChainPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle.CAPEM) || !inter.AppendCertsFromPEM(rest) {
		t.Fatal("status.ca or the chain's intermediate is missing")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the certificate must verify against status.ca: %v", err)
	}
	if block, _ := pem.Decode(bundle.CAPEM); block == nil || !bytes.Equal(block.Bytes, root.Raw) {
		t.Error("status.ca must be the chain's root")
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != spiffe.String() || len(leaf.DNSNames) != 0 || leaf.Subject.CommonName != "" {
		t.Errorf("want only the URI SAN and no common name: URIs %v, DNS %v, CN %q", leaf.URIs, leaf.DNSNames, leaf.Subject.CommonName)
	}
	if len(leaf.ExtKeyUsage) != 2 || leaf.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("usages %v %v, want the request's", leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("server auth: %v", err)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("validity %v, want the request's hour", d)
	}
}

func TestAlibabaPCA_F20_CANotUsable(t *testing.T) {
	cases := []struct {
		name string
		ca   alisim.CAOptions
		id   string
		want string
	}{
		{"root CA", alisim.CAOptions{}, "root-2", "root CAs cannot issue"},
		{"revoked", alisim.CAOptions{Parent: "root-1", Revoked: true}, "sub-revoked", "state REVOKE"},
		{"expired", alisim.CAOptions{Parent: "root-1", NotAfter: time.Now().Add(-time.Hour)}, "sub-expired", "expired on"},
		{"no certificates left", alisim.CAOptions{Parent: "root-1", Remaining: -1}, "sub-empty", "no certificates left"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := pcaEnv(t)
			s.AddCA(tc.id, tc.ca)
			_, err := newPCA(t, s, pcaKeyID, pcaKeySecret, tc.id).Check(context.Background())
			if err == nil || !strings.Contains(err.Error(), "CA "+tc.id) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming CA %s and %q, got %v", tc.id, tc.want, err)
			}
		})
	}
}

func TestAlibabaPCA_SignFailures(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(s *alisim.Server) *issuer.AlibabaPCA
		details func(t *testing.T) signer.CertificateDetails
		want    class
		text    string
	}{
		{"isCA is refused", nil, func(t *testing.T) signer.CertificateDetails {
			return signer.CertificateDetails{CSR: dnsCSR(t, rsaKey, "a.example.com"), IsCA: true}
		}, permanent, "remove isCA"},
		{"F21 throttling", func(s *alisim.Server) *issuer.AlibabaPCA {
			s.InjectFault(alisim.Fault{Action: "CreateCustomCertificate", Status: 400, Code: "Throttling.User"})
			return nil
		}, nil, transient, "Throttling.User"},
		{"F21 server error", func(s *alisim.Server) *issuer.AlibabaPCA {
			s.InjectFault(alisim.Fault{Action: "CreateCustomCertificate", Status: 503, Code: "ServiceUnavailable"})
			return nil
		}, nil, transient, "retrying"},
		{"RAM policy without yundun-cert", func(s *alisim.Server) *issuer.AlibabaPCA {
			s.AddAccessKey(alisim.AccessKey{ID: "LTAI5tDNSOnlyKey0000001", Secret: pcaKeySecret, Policy: alisim.Policy{Actions: []string{"alidns:*"}}})
			return newPCA(t, s, "LTAI5tDNSOnlyKey0000001", pcaKeySecret, "sub-1")
		}, nil, issuerBroken, "yundun-cert:CreateCustomCertificate"},
		{"wrong secret", func(s *alisim.Server) *issuer.AlibabaPCA {
			return newPCA(t, s, pcaKeyID, "not-the-secret", "sub-1")
		}, nil, issuerBroken, "Secret istio-system/pca-key"},
		{"F20 revoked after Check", func(s *alisim.Server) *issuer.AlibabaPCA {
			s.AddCA("sub-revoked", alisim.CAOptions{Parent: "root-1", Revoked: true})
			return newPCA(t, s, pcaKeyID, pcaKeySecret, "sub-revoked")
		}, nil, issuerBroken, "CA sub-revoked cannot issue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := pcaEnv(t)
			pca := newPCA(t, s, pcaKeyID, pcaKeySecret, "sub-1")
			if tc.setup != nil {
				if other := tc.setup(s); other != nil {
					pca = other
				}
			}
			details := signer.CertificateDetails{CSR: dnsCSR(t, rsaKey, "a.example.com"), Duration: time.Hour}
			if tc.details != nil {
				details = tc.details(t)
			}
			_, err := pca.Sign(context.Background(), details)
			if err == nil {
				t.Fatal("want an error")
			}
			got := classify(err)
			if got != tc.want || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("%s (want %s), error %v (want %q)", got, tc.want, err, tc.text)
			}
			if strings.Contains(err.Error(), pcaKeySecret) || strings.Contains(err.Error(), pcaKeyID) {
				t.Error("the error holds a credential")
			}
		})
	}
}

// Private CA signs only keys of its own algorithm family: an ECDSA request
// to an RSA sub-CA fails at once and for good, naming both algorithms,
// without asking the CA to sign.
func TestAlibabaPCA_KeyAlgorithmMismatch(t *testing.T) {
	s, _ := pcaEnv(t) // sub-1 has an RSA 2048 key
	pca := newPCA(t, s, pcaKeyID, pcaKeySecret, "sub-1")
	ca, err := pca.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ca.Algorithm != "RSA_2048" {
		t.Fatalf("Check describes the sub-CA's key as %q, want RSA_2048", ca.Algorithm)
	}
	s.ResetCalls()
	_, err = pca.Sign(context.Background(), signer.CertificateDetails{CSR: dnsCSR(t, ecKey, "a.example.com"), Duration: time.Hour})
	if got := classify(err); got != permanent {
		t.Fatalf("%s, want permanent: %v", got, err)
	}
	for _, want := range []string{"ECDSA P-256", "CA sub-1 has an RSA_2048 key", "privateKey.algorithm: RSA"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if calls := s.Calls(); calls["CreateCustomCertificate"] != 0 {
		t.Errorf("the CA was asked to sign a request it must refuse: %v", calls)
	}

	// A fresh backend (a restart) learns the algorithm with one call first.
	s.ResetCalls()
	_, err = newPCA(t, s, pcaKeyID, pcaKeySecret, "sub-1").Sign(context.Background(), signer.CertificateDetails{CSR: dnsCSR(t, ecKey, "a.example.com")})
	if classify(err) != permanent {
		t.Fatalf("after a restart: %v", err)
	}
	if calls := s.Calls(); calls["DescribeCACertificate"] != 1 || calls["CreateCustomCertificate"] != 0 {
		t.Errorf("want one DescribeCACertificate and no signing call, got %v", calls)
	}
}

// An unreachable Private CA is named with the transport's own words, and
// retried (not a terminal failure).
func TestAlibabaPCA_UnreachableKeepsItsCause(t *testing.T) {
	s, _ := pcaEnv(t)
	p, err := issuer.NewAlibabaPCA(alibaba.Options{PCA: alibaba.Endpoint{Scheme: "HTTPS", Host: s.Endpoint()}},
		alibaba.Credential{AccessKeyID: pcaKeyID, AccessKeySecret: pcaKeySecret}, "", "sub-1", "Secret istio-system/pca-key")
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Check(context.Background())
	if err == nil || classify(err) != transient {
		t.Fatalf("want a transient error, got %v", err)
	}
	for _, want := range []string{"cannot reach Private CA: no answer from https://" + s.Endpoint(), "server gave HTTP response to HTTPS client", "retrying"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), pcaKeyID) {
		t.Error("the error holds the AccessKey id")
	}
}
