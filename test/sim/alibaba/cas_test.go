package alibaba_test

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
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"

	"github.com/certbridge/certbridge/test/sim/alibaba"
)

// casCall sends a cas 2020-06-30 action the way issue 3 prescribes: the v1
// SDK's common request, HMAC-SHA1 signed.
func casCall(t *testing.T, s *alibaba.Server, id, secret, action string, params map[string]string) (map[string]any, error) {
	t.Helper()
	c, err := sdk.NewClientWithOptions("cn-hangzhou", sdk.NewConfig().WithScheme("HTTP"), credentials.NewStaticAKCredentialsProvider(id, secret))
	if err != nil {
		t.Fatal(err)
	}
	req := requests.NewCommonRequest()
	req.Method, req.Product, req.Version, req.ApiName, req.Domain = "POST", "cas", "2020-06-30", action, s.Endpoint()
	for k, v := range params {
		req.QueryParams[k] = v
	}
	res, err := c.ProcessCommonRequest(req)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(res.GetHttpContentBytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out, nil
}

func csr(t *testing.T, key crypto.Signer) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "istio-csr"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// chainedLeaf parses the certificate under leafField and requires it to
// chain to root through the answer's CertificateChain.
func chainedLeaf(t *testing.T, out map[string]any, leafField string, root *x509.Certificate, opts x509.VerifyOptions) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(out[leafField].(string)))
	if block == nil {
		t.Fatalf("no %s in the answer", leafField)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	opts.Roots, opts.Intermediates = x509.NewCertPool(), x509.NewCertPool()
	opts.Roots.AddCert(root)
	opts.Intermediates.AppendCertsFromPEM([]byte(out["CertificateChain"].(string)))
	if _, err := leaf.Verify(opts); err != nil {
		t.Fatalf("the certificate must chain to the root through the returned chain: %v", err)
	}
	return leaf
}

func TestPrivateCA(t *testing.T) {
	s := start(t)
	root := s.AddCA("root-1", alibaba.CAOptions{})
	s.AddCA("sub-1", alibaba.CAOptions{Parent: "root-1", Remaining: 5})
	s.AddCA("sub-ecc", alibaba.CAOptions{Parent: "root-1", ECC: true})
	s.AddCA("sub-revoked", alibaba.CAOptions{Parent: "root-1", Revoked: true})
	s.AddCA("sub-expired", alibaba.CAOptions{Parent: "root-1", NotAfter: time.Now().Add(-time.Hour)})
	s.AddCA("sub-empty", alibaba.CAOptions{Parent: "root-1", Remaining: -1})
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	t.Run("DescribeCACertificate", func(t *testing.T) {
		out, err := casCall(t, s, akID, akSecret, "DescribeCACertificate", map[string]string{"Identifier": "sub-1"})
		if err != nil {
			t.Fatal(err)
		}
		c := out["Certificate"].(map[string]any)
		if c["CertificateType"] != "SUB_ROOT" || c["Status"] != "ISSUE" || c["CertRemainingCount"].(float64) != 5 || c["AfterDate"].(float64) < float64(time.Now().UnixMilli()) {
			t.Fatalf("got %v", c)
		}
	})

	t.Run("CreateCustomCertificate with every SAN kind and usages", func(t *testing.T) {
		out, err := casCall(t, s, akID, akSecret, "CreateCustomCertificate", map[string]string{
			"ParentIdentifier": "sub-1", "Csr": csr(t, rsaKey), "Validity": "90d", "Immediately": "2",
			"ApiPassthrough.Subject.CommonName":                         "istio-csr",
			"ApiPassthrough.Extensions.KeyUsage.DigitalSignature":       "true",
			"ApiPassthrough.Extensions.KeyUsage.KeyEncipherment":        "true",
			"ApiPassthrough.Extensions.ExtendedKeyUsages.1":             "serverAuth",
			"ApiPassthrough.Extensions.ExtendedKeyUsages.2":             "clientAuth",
			"ApiPassthrough.Extensions.SubjectAlternativeNames.1.Type":  "dNSName",
			"ApiPassthrough.Extensions.SubjectAlternativeNames.1.Value": "istiod.istio-system.svc",
			"ApiPassthrough.Extensions.SubjectAlternativeNames.2.Type":  "uniformResourceIdentifier",
			"ApiPassthrough.Extensions.SubjectAlternativeNames.2.Value": "spiffe://cluster.local/ns/istio-system/sa/istiod",
			"ApiPassthrough.Extensions.SubjectAlternativeNames.3.Type":  "iPAddress",
			"ApiPassthrough.Extensions.SubjectAlternativeNames.3.Value": "10.0.0.1",
			"ApiPassthrough.Extensions.SubjectAlternativeNames.4.Type":  "rfc822Name",
			"ApiPassthrough.Extensions.SubjectAlternativeNames.4.Value": "mesh@example.com",
		})
		if err != nil {
			t.Fatal(err)
		}
		leaf := chainedLeaf(t, out, "Certificate", root, x509.VerifyOptions{KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if len(leaf.DNSNames) != 1 || len(leaf.URIs) != 1 || len(leaf.IPAddresses) != 1 || len(leaf.EmailAddresses) != 1 {
			t.Errorf("SANs %v %v %v %v", leaf.DNSNames, leaf.URIs, leaf.IPAddresses, leaf.EmailAddresses)
		}
		if leaf.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment || len(leaf.ExtKeyUsage) != 2 {
			t.Errorf("usages %v %v", leaf.KeyUsage, leaf.ExtKeyUsage)
		}
		if days := leaf.NotAfter.Sub(leaf.NotBefore).Hours() / 24; days < 89.9 || days > 90.1 {
			t.Errorf("validity %.1f days", days)
		}
	})

	t.Run("CreateServerCertificateWithCsr", func(t *testing.T) {
		out, err := casCall(t, s, akID, akSecret, "CreateServerCertificateWithCsr", map[string]string{
			"ParentIdentifier": "sub-1", "Csr": csr(t, rsaKey), "Days": "30", "Domain": "gw.example.com,10.0.0.7", "Immediately": "2"})
		if err != nil {
			t.Fatal(err)
		}
		leaf := chainedLeaf(t, out, "X509Certificate", root, x509.VerifyOptions{DNSName: "gw.example.com"})
		if len(leaf.IPAddresses) != 1 || leaf.NotAfter.Sub(leaf.NotBefore) < 29*24*time.Hour {
			t.Errorf("IPs %v, validity %v", leaf.IPAddresses, leaf.NotAfter.Sub(leaf.NotBefore))
		}
	})

	cases := []struct {
		name, parent string
		key          crypto.Signer
		validity     string
		wantCode     string
	}{
		{"a root cannot issue", "root-1", rsaKey, "7d", "InvalidParameter"},
		{"revoked sub-CA", "sub-revoked", rsaKey, "7d", "CA.Revoked"},
		{"expired sub-CA", "sub-expired", rsaKey, "7d", "CA.Expired"},
		{"no certificates left", "sub-empty", rsaKey, "7d", "QuotaExceeded.Certificate"},
		{"key family differs from the CA's", "sub-ecc", rsaKey, "7d", "InvalidParameter"},
		{"outlives its CA", "sub-1", rsaKey, "30y", "InvalidParameter"},
		{"unknown parent", "sub-nowhere", ecKey, "7d", "NotFound.ParentIdentifier"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := casCall(t, s, akID, akSecret, "CreateCustomCertificate", map[string]string{
				"ParentIdentifier": tc.parent, "Csr": csr(t, tc.key), "Validity": tc.validity, "Immediately": "1"})
			if _, code, _ := errCode(t, err); code != tc.wantCode {
				t.Fatalf("got %s, want %s", code, tc.wantCode)
			}
		})
	}

	t.Run("RAM policy without yundun-cert", func(t *testing.T) {
		s.AddAccessKey(alibaba.AccessKey{ID: "LTAI5tDNSOnly", Secret: akSecret, Policy: alibaba.Policy{Actions: []string{"alidns:*"}}})
		_, err := casCall(t, s, "LTAI5tDNSOnly", akSecret, "DescribeCACertificate", map[string]string{"Identifier": "sub-1"})
		if _, code, se := errCode(t, err); code != "Forbidden.RAM" || !strings.Contains(se.Message(), "not authorized") {
			t.Fatalf("got %s", code)
		}
	})
}
