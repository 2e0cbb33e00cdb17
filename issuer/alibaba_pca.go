package issuer

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"

	"github.com/cert-manager/issuer-lib/controllers/signer"

	"github.com/certbridge/certbridge/internal/alisdk"
)

// PCAOptions are the operator's settings for Alibaba Cloud Private CA.
type PCAOptions struct {
	// Endpoint replaces cas.aliyuncs.com (host[:port], or an http:// or
	// https:// URL), for tests and private endpoints.
	Endpoint string
	// Region the requests are signed for; cn-hangzhou by default.
	Region string
}

// AlibabaPCA signs with a sub-CA of Alibaba Cloud Private CA, through the v1
// SDK's common request (cas 2020-06-30; the v1 SDK has no typed client for it).
type AlibabaPCA struct {
	clients *alisdk.Pool[*sdk.Client]
	host    string
	ca      string
	// source names where the credentials came from, for messages.
	source string
	now    func() time.Time
}

// NewAlibabaPCA builds the backend for one CA identifier.
func NewAlibabaPCA(o PCAOptions, provider credentials.CredentialsProvider, caIdentifier, source string) (*AlibabaPCA, error) {
	if o.Region == "" {
		o.Region = "cn-hangzhou"
	}
	scheme, host := alisdk.Endpoint(o.Endpoint, "cas.aliyuncs.com")
	provider = alisdk.Locked(provider)
	pool, err := alisdk.NewPool(func() (*sdk.Client, error) {
		return sdk.NewClientWithOptions(o.Region, sdk.NewConfig().WithScheme(scheme).WithAutoRetry(false), provider)
	})
	if err != nil {
		return nil, fmt.Errorf("alibaba-pca: building the client: %w", err)
	}
	return &AlibabaPCA{clients: pool, host: host, ca: caIdentifier, source: source, now: time.Now}, nil
}

func (p *AlibabaPCA) call(ctx context.Context, action string, params map[string]string, out any) error {
	req := requests.NewCommonRequest()
	req.Method, req.Product, req.Version, req.ApiName, req.Domain = "POST", "cas", "2020-06-30", action, p.host
	for k, v := range params {
		req.QueryParams[k] = v
	}
	return p.clients.With(ctx, req, func(c *sdk.Client) error {
		res, err := c.ProcessCommonRequest(req)
		if err != nil {
			return err
		}
		return json.Unmarshal(res.GetHttpContentBytes(), out)
	})
}

type caCertificate struct {
	Certificate struct {
		Identifier         string
		CertificateType    string
		Status             string
		AfterDate          int64
		CertIssuedCount    int
		CertRemainingCount int
	}
}

// Check requires a sub-CA that is issuing, not expired, with certificates
// left (F20).
func (p *AlibabaPCA) Check(ctx context.Context) error {
	var out caCertificate
	if err := p.call(ctx, "DescribeCACertificate", map[string]string{"Identifier": p.ca}, &out); err != nil {
		return p.explain(err, "DescribeCACertificate")
	}
	c := out.Certificate
	switch {
	case c.CertificateType != "SUB_ROOT":
		return fmt.Errorf("alibaba-pca: CA %s is a %s CA, and root CAs cannot issue certificates; set caIdentifier to one of its sub-CAs", p.ca, c.CertificateType)
	case c.Status != "ISSUE":
		return fmt.Errorf("alibaba-pca: CA %s is in state %s, not ISSUE; use another sub-CA", p.ca, c.Status)
	case c.AfterDate > 0 && p.now().After(time.UnixMilli(c.AfterDate)):
		return fmt.Errorf("alibaba-pca: CA %s expired on %s; use another sub-CA", p.ca, time.UnixMilli(c.AfterDate).UTC().Format(time.RFC3339))
	case c.CertRemainingCount <= 0:
		return fmt.Errorf("alibaba-pca: CA %s has no certificates left to issue (%d issued); buy more or use another sub-CA", p.ca, c.CertIssuedCount)
	}
	return nil
}

var keyUsageNames = []struct {
	usage x509.KeyUsage
	name  string
}{
	{x509.KeyUsageDigitalSignature, "DigitalSignature"}, {x509.KeyUsageContentCommitment, "NonRepudiation"},
	{x509.KeyUsageKeyEncipherment, "KeyEncipherment"}, {x509.KeyUsageDataEncipherment, "DataEncipherment"},
	{x509.KeyUsageKeyAgreement, "KeyAgreement"},
}

var extKeyUsageNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageServerAuth: "serverAuth", x509.ExtKeyUsageClientAuth: "clientAuth",
	x509.ExtKeyUsageCodeSigning: "codeSigning", x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping: "timeStamping", x509.ExtKeyUsageOCSPSigning: "OCSPSigning",
}

// Sign issues the request with CreateCustomCertificate: its duration, every
// SAN kind, its key usages; status.ca is the chain's root.
func (p *AlibabaPCA) Sign(ctx context.Context, details signer.CertificateDetails) (signer.PEMBundle, error) {
	if details.IsCA {
		return signer.PEMBundle{}, signer.PermanentError{Err: errors.New("alibaba-pca: CA certificates are not issued through this issuer; remove isCA from the request")}
	}
	block, _ := pem.Decode(details.CSR)
	if block == nil {
		return signer.PEMBundle{}, signer.PermanentError{Err: errors.New("alibaba-pca: the request's CSR is not PEM")}
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return signer.PEMBundle{}, signer.PermanentError{Err: fmt.Errorf("alibaba-pca: the request's CSR does not parse: %w", err)}
	}
	duration := details.Duration
	if duration <= 0 {
		duration = defaultDuration
	}
	const pt = "ApiPassthrough."
	params := map[string]string{
		"ParentIdentifier": p.ca,
		"Csr":              string(details.CSR),
		"Validity":         p.now().Add(duration).UTC().Format("2006-01-02T15:04:05Z"),
		"Immediately":      "2", // the certificate and its chain
	}
	if cn := csr.Subject.CommonName; cn != "" {
		params[pt+"Subject.CommonName"] = cn
	}
	for _, ku := range keyUsageNames {
		if details.KeyUsage&ku.usage != 0 {
			params[pt+"Extensions.KeyUsage."+ku.name] = "true"
		}
	}
	for i, eku := range details.ExtKeyUsage {
		name, ok := extKeyUsageNames[eku]
		if !ok {
			return signer.PEMBundle{}, signer.PermanentError{Err: fmt.Errorf("alibaba-pca: extended key usage %d is not one Private CA issues; remove it from the request", eku)}
		}
		params[fmt.Sprintf(pt+"Extensions.ExtendedKeyUsages.%d", i+1)] = name
	}
	n := 0
	addSAN := func(typ, value string) {
		n++
		params[fmt.Sprintf(pt+"Extensions.SubjectAlternativeNames.%d.Type", n)] = typ
		params[fmt.Sprintf(pt+"Extensions.SubjectAlternativeNames.%d.Value", n)] = value
	}
	for _, d := range csr.DNSNames {
		addSAN("dNSName", d)
	}
	for _, ip := range csr.IPAddresses {
		addSAN("iPAddress", ip.String())
	}
	for _, u := range csr.URIs {
		addSAN("uniformResourceIdentifier", u.String())
	}
	for _, e := range csr.EmailAddresses {
		addSAN("rfc822Name", e)
	}
	var out struct {
		Certificate      string
		CertificateChain string
	}
	if err := p.call(ctx, "CreateCustomCertificate", params, &out); err != nil {
		return signer.PEMBundle{}, p.explain(err, "CreateCustomCertificate")
	}
	chain, root := splitChain(out.CertificateChain)
	if out.Certificate == "" || root == nil {
		return signer.PEMBundle{}, fmt.Errorf("alibaba-pca: CreateCustomCertificate returned no certificate or chain; retrying")
	}
	return signer.PEMBundle{ChainPEM: append([]byte(strings.TrimSpace(out.Certificate)+"\n"), chain...), CAPEM: root}, nil
}

// splitChain separates a returned chain into its intermediates and its
// self-signed root.
func splitChain(chainPEM string) (intermediates, root []byte) {
	rest := []byte(chainPEM)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return intermediates, root
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			continue
		}
		encoded := pem.EncodeToMemory(block)
		if bytes.Equal(cert.RawIssuer, cert.RawSubject) && cert.CheckSignatureFrom(cert) == nil {
			root = encoded
		} else {
			intermediates = append(intermediates, encoded...)
		}
	}
}

// explain classifies a failure for the controller (F20, F21).
func (p *AlibabaPCA) explain(err error, action string) error {
	c := alisdk.Code(err)
	switch {
	case c == "" || alisdk.Retryable(err):
		return fmt.Errorf("alibaba-pca: %s: Private CA is unavailable or throttling (%s %s); retrying", action, c, alisdk.Message(err))
	case c == "CA.Revoked" || c == "CA.Expired" || c == "QuotaExceeded.Certificate" || strings.HasPrefix(c, "NotFound"):
		return signer.IssuerError{Err: fmt.Errorf("alibaba-pca: %s: CA %s cannot issue (%s: %s); use a sub-CA in state ISSUE with certificates left", action, p.ca, c, alisdk.Message(err))}
	case c == "Forbidden.RAM" || c == "Forbidden" || c == "NoPermission":
		return signer.IssuerError{Err: fmt.Errorf("alibaba-pca: %s: the RAM policy of %s does not allow it (%s); grant yundun-cert:DescribeCACertificate and yundun-cert:CreateCustomCertificate", action, p.source, c)}
	case strings.HasPrefix(c, "InvalidAccessKeyId") || c == "SignatureDoesNotMatch" || strings.HasPrefix(c, "InvalidSecurityToken") || c == "InvalidTimeStamp.Expired":
		return signer.IssuerError{Err: fmt.Errorf("alibaba-pca: %s: Alibaba Cloud rejected the credentials from %s (%s)", action, p.source, c)}
	default:
		return signer.PermanentError{Err: fmt.Errorf("alibaba-pca: %s: Private CA refused the request (%s: %s)", action, c, alisdk.Message(err))}
	}
}
