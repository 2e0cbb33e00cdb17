package issuer

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cert-manager/issuer-lib/controllers/signer"

	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/test/fuzzseed"
)

// csrSeeds are the CSRs in testdata/csr: RSA and ECDSA keys, DNS names
// (with a duplicate), IP, URI and email SANs, an Ed25519 key. They are
// files because a CSR made at run time would differ on every run.
func csrSeeds(f *testing.F) [][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "csr", "*.pem"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no CSRs in testdata/csr: %v", err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// csrInput is the fuzzer's CSR bytes as PlanOrigin and Sign receive them:
// PEM as given, anything else wrapped as PEM, so that mutations of a
// CSR's DER reach the parser rather than failing at the PEM framing.
func csrInput(b []byte) []byte {
	if bytes.HasPrefix(b, []byte("-----BEGIN")) {
		return b
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: b})
}

// der is a seed's DER, so that the fuzzer mutates the request itself.
func der(f *testing.F, pemBytes []byte) []byte {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		f.Fatal("a seed CSR is not PEM")
	}
	return block.Bytes
}

// An Origin CA order from any CSR bytes, duration and spec.requestType:
// never a panic; a refusal is permanent (a retry cannot change the
// request); an order has the CSR's DNS names and key type, and its
// validity is one Cloudflare offers, not shorter than asked unless the
// request asks for more than the longest (5475 days), and the shortest
// offered that fits.
func FuzzPlanOrigin(f *testing.F) {
	day := int64(24 * time.Hour)
	for _, csr := range csrSeeds(f) {
		for _, d := range []int64{0, -1, int64(time.Hour), 7 * day, 30*day + 1, 365 * day, 365*day + 1, 1095 * day, 5475 * day, 5476 * day} {
			fuzzseed.Add(f, der(f, csr), d, false, "")
		}
		fuzzseed.Add(f, csr, 90*day, false, OriginECC)
		fuzzseed.Add(f, der(f, csr), 90*day, true, OriginRSA)
	}
	fuzzseed.Add(f, []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), int64(0), false, "")
	fuzzseed.Add(f, []byte{}, int64(0), false, "origin-dsa")
	f.Fuzz(func(t *testing.T, csr []byte, duration int64, isCA bool, requestType string) {
		details := signer.CertificateDetails{CSR: csrInput(csr), Duration: time.Duration(duration), IsCA: isCA}
		o, err := PlanOrigin(details, requestType)
		if err != nil {
			var permanent signer.PermanentError
			if !errors.As(err, &permanent) {
				t.Fatalf("a refusal that is not permanent: %v", err)
			}
			return
		}
		parsed, perr := parseCSR(details.CSR)
		if perr != nil {
			t.Fatalf("PlanOrigin accepted a CSR that does not parse: %v", perr)
		}
		if isCA || len(o.Hostnames) == 0 || !slices.Equal(o.Hostnames, parsed.DNSNames) {
			t.Fatalf("order %+v for a request with DNS names %q (isCA %v)", o, parsed.DNSNames, isCA)
		}
		if o.RequestType != OriginRSA && o.RequestType != OriginECC || requestType != "" && o.RequestType != requestType {
			t.Fatalf("request type %q for spec.requestType %q", o.RequestType, requestType)
		}
		asked := time.Duration(duration)
		if asked <= 0 {
			asked = defaultDuration
		}
		if o.Requested != asked {
			t.Fatalf("Requested %v, want %v", o.Requested, asked)
		}
		offered := cloudflare.OriginValidityDays
		if !slices.Contains(offered, o.ValidityDays) {
			t.Fatalf("validity %d days is not one of %v", o.ValidityDays, offered)
		}
		longest := offered[len(offered)-1]
		got := time.Duration(o.ValidityDays) * 24 * time.Hour
		if got < asked && o.ValidityDays != longest {
			t.Fatalf("asked for %v (%d ns), planned %d days: shorter", asked, asked, o.ValidityDays)
		}
		for _, v := range offered {
			if v < o.ValidityDays && time.Duration(v)*24*time.Hour >= asked {
				t.Fatalf("asked for %v, planned %d days where %d fit", asked, o.ValidityDays, v)
			}
		}
		if o.Rounded() != (got != asked) {
			t.Fatalf("Rounded() = %v for %d days asked %v", o.Rounded(), o.ValidityDays, asked)
		}
	})
}

func parseCSR(pemBytes []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	return x509.ParseCertificateRequest(block.Bytes)
}

// san is one SubjectAlternativeNames entry of CreateCustomCertificate.
type san struct{ typ, value string }

// csrSANs lists a CSR's SANs as pcaRequestParams must pass them on.
func csrSANs(csr *x509.CertificateRequest) []san {
	var out []san
	for _, d := range csr.DNSNames {
		out = append(out, san{"dNSName", d})
	}
	for _, ip := range csr.IPAddresses {
		out = append(out, san{"iPAddress", ip.String()})
	}
	for _, u := range csr.URIs {
		out = append(out, san{"uniformResourceIdentifier", u.String()})
	}
	for _, e := range csr.EmailAddresses {
		out = append(out, san{"rfc822Name", e})
	}
	return out
}

// split cuts a fuzz string into a list; "\n" separates.
func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// The request Private CA is sent, from any CSR: every SAN of the CSR is
// passed once, in order, numbered from 1 without gaps (IPs in a form
// Private CA parses back to the same address); the common name, the
// validity (now plus the duration, 90 days when none) and each key usage
// and extended key usage are passed, and nothing else. The CSR is either
// parsed from the fuzzer's DER or built from its fields directly, which
// reaches SANs no encoder would write.
func FuzzPCARequestParams(f *testing.F) {
	day := int64(24 * time.Hour)
	for _, csr := range csrSeeds(f) {
		fuzzseed.Add(f, der(f, csr), "", "", []byte{}, "", "", uint16(x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment), []byte{1, 2}, int64(time.Hour))
	}
	fuzzseed.Add(f, []byte{}, "cn", "example.com\n*.example.com\nexample.com", []byte{10, 0, 0, 1}, "spiffe://cluster.local/ns/a/sa/b", "ops@example.com", uint16(0x1ff), []byte{}, 90*day)
	fuzzseed.Add(f, []byte{}, "", "", []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 7}, "", "", uint16(0), []byte{0, 3, 42}, int64(-1))
	fuzzseed.Add(f, []byte{}, "", "", []byte{}, "http://[::1]:80/a b\nmailto:x@y", "", uint16(x509.KeyUsageCertSign), []byte{1, 1}, int64(1))
	now := time.Date(2026, 12, 1, 12, 0, 0, 500_000_000, time.UTC)
	f.Fuzz(func(t *testing.T, raw []byte, cn, dns string, ips []byte, uris, emails string, keyUsage uint16, ekus []byte, duration int64) {
		var csr *x509.CertificateRequest
		if len(raw) > 0 {
			var err error
			if csr, err = x509.ParseCertificateRequest(raw); err != nil {
				return
			}
		} else {
			csr = &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: split(dns), EmailAddresses: split(emails)}
			for len(ips) >= 4 {
				n := 4
				if len(ips) >= 16 && ips[0]&1 == 1 {
					n = 16
				}
				csr.IPAddresses, ips = append(csr.IPAddresses, net.IP(ips[:n])), ips[n:]
			}
			for _, u := range split(uris) {
				if parsed, err := url.Parse(u); err == nil {
					csr.URIs = append(csr.URIs, parsed)
				}
			}
		}
		details := signer.CertificateDetails{CSR: []byte("the CSR's PEM"), Duration: time.Duration(duration), KeyUsage: x509.KeyUsage(keyUsage)}
		for _, e := range ekus {
			details.ExtKeyUsage = append(details.ExtKeyUsage, x509.ExtKeyUsage(e%16))
		}
		params, err := pcaRequestParams("sub-1", csr, details, now)
		if err != nil {
			var permanent signer.PermanentError
			if !errors.As(err, &permanent) {
				t.Fatalf("a refusal that is not permanent: %v", err)
			}
			for _, e := range details.ExtKeyUsage {
				if _, ok := extKeyUsageNames[e]; !ok {
					return // an extended key usage Private CA does not issue
				}
			}
			t.Fatalf("refused with only known extended key usages: %v", err)
		}
		const pt = "ApiPassthrough."
		seen := map[string]bool{}
		get := func(k string) (string, bool) {
			v, ok := params[k]
			seen[k] = ok
			return v, ok
		}
		// SANs: exactly the CSR's, each once, numbered 1..n.
		want := csrSANs(csr)
		var got []san
		for i := 1; ; i++ {
			typ, ok := get(fmt.Sprintf(pt+"Extensions.SubjectAlternativeNames.%d.Type", i))
			value, vok := get(fmt.Sprintf(pt+"Extensions.SubjectAlternativeNames.%d.Value", i))
			if !ok {
				if vok {
					t.Fatalf("SAN %d has a value and no type", i)
				}
				break
			}
			got = append(got, san{typ, value})
		}
		if !slices.Equal(got, want) {
			t.Fatalf("SANs passed %q, the CSR's are %q", got, want)
		}
		for _, s := range got {
			if s.typ != "iPAddress" || len(raw) == 0 {
				continue // only a parsed CSR's IPs are well formed
			}
			if ip := net.ParseIP(s.value); ip == nil || ip.String() != s.value {
				t.Fatalf("IP SAN %q does not parse back", s.value)
			}
		}
		// The fixed parameters, the common name and the validity.
		if v, _ := get("ParentIdentifier"); v != "sub-1" {
			t.Fatalf("ParentIdentifier %q", v)
		}
		if v, _ := get("Csr"); v != string(details.CSR) {
			t.Fatalf("Csr %q", v)
		}
		if v, _ := get("Immediately"); v != "2" {
			t.Fatalf("Immediately %q", v)
		}
		if v, ok := get(pt + "Subject.CommonName"); ok != (csr.Subject.CommonName != "") || v != csr.Subject.CommonName {
			t.Fatalf("common name %q (%v), the CSR's is %q", v, ok, csr.Subject.CommonName)
		}
		asked := time.Duration(duration)
		if asked <= 0 {
			asked = defaultDuration
		}
		v, _ := get("Validity")
		validity, err := time.Parse("2006-01-02T15:04:05Z", v)
		if err != nil || !validity.Equal(now.Add(asked).Truncate(time.Second)) {
			t.Fatalf("Validity %q (%v) for %v from %v", v, err, asked, now)
		}
		// Usages: each named one that is set, and each extended one in order.
		for _, ku := range keyUsageNames {
			v, ok := get(pt + "Extensions.KeyUsage." + ku.name)
			if set := details.KeyUsage&ku.usage != 0; ok != set || set && v != "true" {
				t.Fatalf("key usage %s passed as %q (%v) for usages %b", ku.name, v, ok, details.KeyUsage)
			}
		}
		for i, e := range details.ExtKeyUsage {
			if v, _ := get(fmt.Sprintf(pt+"Extensions.ExtendedKeyUsages.%d", i+1)); v != extKeyUsageNames[e] {
				t.Fatalf("extended key usage %d passed as %q, want %q", i+1, v, extKeyUsageNames[e])
			}
		}
		for k := range params {
			if !seen[k] {
				t.Fatalf("unexpected parameter %s=%q", k, params[k])
			}
		}
	})
}
