package issuer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	issuerlib "github.com/cert-manager/issuer-lib/api/v1alpha1"
	"github.com/cert-manager/issuer-lib/controllers/signer"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/internal/secretref"
	api "github.com/certbridge/certbridge/issuer/api/v1alpha1"
)

// AlibabaPCA signs with a sub-CA of Alibaba Cloud Private CA.
type AlibabaPCA struct {
	client *alibaba.PCAClient
	ca     string
	// source names where the credentials came from, for messages.
	source string
	// cred and opts word a ServiceAccount's failures.
	cred alibaba.Credential
	opts alibaba.Options
	now  func() time.Time

	mu sync.Mutex
	// described is the CA as last described, for its key algorithm.
	described *alibaba.CA
}

// NewAlibabaPCA builds the backend for one CA identifier; o holds the
// operator's endpoints, region the one requests are signed for.
func NewAlibabaPCA(o alibaba.Options, c alibaba.Credential, region, caIdentifier, source string) (*AlibabaPCA, error) {
	client, err := alibaba.NewPCAClient(o, c, region)
	if err != nil {
		return nil, fmt.Errorf("building the client for %s: %w", source, err)
	}
	return &AlibabaPCA{client: client, ca: caIdentifier, source: source, cred: c, opts: o, now: time.Now}, nil
}

// describe asks Private CA about the CA and remembers its algorithm.
func (p *AlibabaPCA) describe(ctx context.Context) (alibaba.CA, error) {
	c, err := p.client.DescribeCA(ctx, p.ca)
	if err != nil {
		return c, p.explain(err)
	}
	p.mu.Lock()
	p.described = &c
	p.mu.Unlock()
	return c, nil
}

// Check requires a sub-CA that is issuing, not expired, with certificates
// left (F20), and returns it as described.
func (p *AlibabaPCA) Check(ctx context.Context) (alibaba.CA, error) {
	c, err := p.describe(ctx)
	if err != nil {
		return c, err
	}
	switch {
	case c.Type != "SUB_ROOT":
		return c, fmt.Errorf("CA %s is a %s CA, and root CAs cannot issue certificates; set caIdentifier to one of its sub-CAs", p.ca, c.Type)
	case c.Status != "ISSUE":
		return c, fmt.Errorf("CA %s is in state %s, not ISSUE; use another sub-CA", p.ca, c.Status)
	case !c.NotAfter.IsZero() && p.now().After(c.NotAfter):
		return c, fmt.Errorf("CA %s expired on %s; use another sub-CA", p.ca, c.NotAfter.UTC().Format(time.RFC3339))
	case c.Remaining <= 0:
		return c, fmt.Errorf("CA %s has no certificates left to issue (%d issued); buy more or use another sub-CA", p.ca, c.Issued)
	}
	return c, nil
}

// keyAlgorithm is the CA's key algorithm, described once.
func (p *AlibabaPCA) keyAlgorithm(ctx context.Context) (string, error) {
	p.mu.Lock()
	d := p.described
	p.mu.Unlock()
	if d != nil {
		return d.Algorithm, nil
	}
	c, err := p.describe(ctx)
	return c.Algorithm, err
}

// keyFamily is the family Private CA names a key's algorithm by.
func keyFamily(pub any) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECC"
	}
	return fmt.Sprintf("%T", pub)
}

func keyName(pub any) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	}
	return fmt.Sprintf("%T", pub)
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
		return signer.PEMBundle{}, signer.PermanentError{Err: errors.New("CA certificates are not issued through this issuer; remove isCA from the request")}
	}
	block, _ := pem.Decode(details.CSR)
	if block == nil {
		return signer.PEMBundle{}, signer.PermanentError{Err: errors.New("the request's CSR is not PEM")}
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return signer.PEMBundle{}, signer.PermanentError{Err: fmt.Errorf("the request's CSR does not parse: %w", err)}
	}
	// Private CA signs keys of its own algorithm family only: refuse a
	// mismatch before spending a call, and for good (a retry cannot fix it).
	algorithm, err := p.keyAlgorithm(ctx)
	if err != nil {
		return signer.PEMBundle{}, err
	}
	if family, _, _ := strings.Cut(algorithm, "_"); algorithm != "" && family != keyFamily(csr.PublicKey) {
		want := "RSA"
		if family == "ECC" {
			want = "ECDSA"
		}
		return signer.PEMBundle{}, signer.PermanentError{Err: fmt.Errorf("the request's key is %s, but CA %s has an %s key and Private CA signs only keys of its own algorithm; "+
			"set privateKey.algorithm: %s in the Certificate (istio-csr: a key of that algorithm), or use a sub-CA whose key algorithm matches", keyName(csr.PublicKey), p.ca, algorithm, want)}
	}
	params, err := pcaRequestParams(p.ca, csr, details, p.now())
	if err != nil {
		return signer.PEMBundle{}, err
	}
	cert, chainPEM, err := p.client.CreateCustomCertificate(ctx, params)
	if err != nil {
		return signer.PEMBundle{}, p.explain(err)
	}
	chain, root := splitChain(chainPEM)
	if cert == "" || root == nil {
		return signer.PEMBundle{}, fmt.Errorf("CreateCustomCertificate returned no certificate or chain; retrying")
	}
	return signer.PEMBundle{ChainPEM: append([]byte(strings.TrimSpace(cert)+"\n"), chain...), CAPEM: root}, nil
}

// pcaRequestParams is CreateCustomCertificate's parameters for a request
// to CA ca at time now: its duration, its common name, its key usages and
// every SAN of the CSR, each once, in ApiPassthrough's numbered form.
func pcaRequestParams(ca string, csr *x509.CertificateRequest, details signer.CertificateDetails, now time.Time) (map[string]string, error) {
	duration := details.Duration
	if duration <= 0 {
		duration = defaultDuration
	}
	const pt = "ApiPassthrough."
	params := map[string]string{
		"ParentIdentifier": ca,
		"Csr":              string(details.CSR),
		"Validity":         now.Add(duration).UTC().Format("2006-01-02T15:04:05Z"),
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
			return nil, signer.PermanentError{Err: fmt.Errorf("extended key usage %d is not one Private CA issues; remove it from the request", eku)}
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
	return params, nil
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
func (p *AlibabaPCA) explain(err error) error {
	if sa := p.cred.ServiceAccount; sa != nil {
		if problem, ok := alibaba.ServiceAccountProblem(err, *sa, p.cred.RoleARN, p.opts, "the issuer controller"); ok {
			msg := fmt.Errorf("serviceAccountRef: %s; %s", problem.Detail, problem.Fix)
			if e, _ := alibaba.As(err); e.Reason == alibaba.Unreachable || e.Reason == alibaba.TokenRequestFailed {
				return msg // transient: retried
			}
			return signer.IssuerError{Err: msg}
		}
	}
	e, ok := alibaba.As(err)
	if !ok {
		return fmt.Errorf("%w", err)
	}
	action, quote := e.Action, e.Quote()
	switch e.Reason {
	case alibaba.Unreachable:
		return fmt.Errorf("%s: cannot reach Private CA: %s; retrying", action, quote)
	case alibaba.Throttled, alibaba.Busy, alibaba.Transient:
		return fmt.Errorf("%s: Private CA is unavailable or throttling (%s); retrying", action, quote)
	case alibaba.CAUnusable, alibaba.CANotFound:
		return signer.IssuerError{Err: fmt.Errorf("%s: CA %s cannot issue (%s); use a sub-CA in state ISSUE with certificates left", action, p.ca, quote)}
	case alibaba.PermissionMissing:
		return signer.IssuerError{Err: fmt.Errorf("%s: the RAM policy of %s does not allow it (%s); grant yundun-cert:DescribeCACertificate and yundun-cert:CreateCustomCertificate", action, p.source, e.Code)}
	case alibaba.AccessKeyUnknown, alibaba.AccessKeyDisabled, alibaba.SecretMismatch, alibaba.TokenRejected, alibaba.ClockSkew, alibaba.CredentialsUnavailable:
		return signer.IssuerError{Err: fmt.Errorf("%s: Alibaba Cloud rejected the credentials from %s (%s)", action, p.source, quote)}
	}
	return signer.PermanentError{Err: fmt.Errorf("%s: Private CA refused the request (%s)", action, quote)}
}

// PCACredential resolves the credentials an Alibaba Cloud PCA issuer's spec
// names: a ServiceAccount of namespace (serviceAccountRef) whose tokens
// are exchanged for roleArn, an AccessKey (or STS credentials) from Secrets
// in namespace, or, for the cluster kinds when o allows them, the ambient
// ones (RRSA, the ECS RAM role).
func PCACredential(ctx context.Context, o Options, secrets secretref.Reader, spec api.AlibabaPCAIssuerSpec, namespace string, cluster bool) (alibaba.Credential, error) {
	c := alibaba.Credential{RoleARN: spec.Auth.RoleARN}
	a := spec.Auth
	switch {
	case a.ServiceAccountRef != nil && (a.AccessKeyIDSecretRef != nil || a.AccessKeySecretSecretRef != nil || a.SecurityTokenSecretRef != nil):
		return c, errors.New("spec.auth.serviceAccountRef is the credential: remove spec.auth.accessKeyIdSecretRef, accessKeySecretSecretRef and securityTokenSecretRef")
	case a.ServiceAccountRef != nil && a.RoleARN == "":
		return c, errors.New("spec.auth.serviceAccountRef needs spec.auth.roleArn: the RAM role whose trust policy admits the ServiceAccount")
	case a.ServiceAccountRef != nil:
		c.ServiceAccount = &alibaba.ServiceAccount{Namespace: namespace, Name: a.ServiceAccountRef.Name, Audience: a.ServiceAccountRef.Audience, Tokens: o.Tokens}
		return c, nil
	case a.AccessKeyIDSecretRef != nil && a.AccessKeySecretSecretRef != nil:
		id, err := secrets.Read(ctx, namespace, a.AccessKeyIDSecretRef.Name, a.AccessKeyIDSecretRef.Key, "spec.auth.accessKeyIdSecretRef")
		if err != nil {
			return c, err
		}
		secret, err := secrets.Read(ctx, namespace, a.AccessKeySecretSecretRef.Name, a.AccessKeySecretSecretRef.Key, "spec.auth.accessKeySecretSecretRef")
		if err != nil {
			return c, err
		}
		c.AccessKeyID, c.IDSource, c.AccessKeySecret, c.SecretSource = id.Value, id.String(), secret.Value, secret.String()
		if a.SecurityTokenSecretRef != nil {
			token, err := secrets.Read(ctx, namespace, a.SecurityTokenSecretRef.Name, a.SecurityTokenSecretRef.Key, "spec.auth.securityTokenSecretRef")
			if err != nil {
				return c, err
			}
			c.SecurityToken, c.TokenSource = token.Value, token.String()
		}
		return c, nil
	case a.AccessKeyIDSecretRef != nil || a.AccessKeySecretSecretRef != nil:
		return c, errors.New("set both spec.auth.accessKeyIdSecretRef and spec.auth.accessKeySecretSecretRef, or neither")
	case !cluster || !o.AllowAmbientCredentials:
		return c, errors.New("no credentials: set spec.auth.accessKeyIdSecretRef and spec.auth.accessKeySecretSecretRef. " +
			"Ambient credentials (RRSA, the ECS RAM role) are used only by the cluster kinds, and only when the controller allows them (--allow-ambient-credentials)")
	}
	var err error
	c.Ambient, err = alibaba.AmbientFromEnv(o.Alibaba.Getenv)
	return c, err
}

// credentialSource names a credential for messages: the Secret of its
// AccessKey id, or where ambient credentials come from.
func credentialSource(c alibaba.Credential) string {
	if c.IDSource != "" {
		return c.IDSource
	}
	return c.Describe()
}

// NewAlibabaPCAForSpec builds the Private CA backend of a spec from
// credentials resolved by PCACredential, with the operator's endpoints.
func NewAlibabaPCAForSpec(o Options, c alibaba.Credential, spec api.AlibabaPCAIssuerSpec) (*AlibabaPCA, error) {
	return NewAlibabaPCA(o.Alibaba, c, spec.RegionID, spec.CAIdentifier, credentialSource(c))
}

// pcaBackend builds (or reuses) a Private CA issuer's backend.
func (s *Signers) pcaBackend(ctx context.Context, iss issuerlib.Issuer, namespace string, cluster bool) (backend, error) {
	spec := iss.(pcaIssuer).PCASpec()
	c, err := PCACredential(ctx, s.opts, s.secrets, spec, namespace, cluster)
	if err != nil {
		return nil, err
	}
	return s.cached("pca|"+c.Hash(spec.CAIdentifier, spec.RegionID), func() (backend, error) {
		p, err := NewAlibabaPCAForSpec(s.opts, c, spec)
		if err != nil {
			return nil, err
		}
		return pcaBackend{p}, nil
	})
}

type pcaBackend struct{ pca *AlibabaPCA }

func (b pcaBackend) check(ctx context.Context) (CheckResult, error) {
	ca, err := b.pca.Check(ctx)
	if err != nil {
		return CheckResult{}, err
	}
	return CheckResult{CA: &ca}, nil
}

func (b pcaBackend) sign(ctx context.Context, _ *Signers, _ signer.CertificateRequestObject, details signer.CertificateDetails) (signer.PEMBundle, error) {
	return b.pca.Sign(ctx, details)
}
