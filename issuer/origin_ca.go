package issuer

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	issuerlib "github.com/cert-manager/issuer-lib/api/v1alpha1"
	"github.com/cert-manager/issuer-lib/controllers/signer"
	corev1 "k8s.io/api/core/v1"

	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/secretref"
	api "github.com/certbridge/certbridge/issuer/api/v1alpha1"
	"github.com/certbridge/certbridge/issuer/roots"
)

// Origin CA request types, as the API names them.
const (
	OriginRSA = cloudflare.OriginRSA
	OriginECC = cloudflare.OriginECC
)

// OriginValidityDays are the validities Cloudflare's Origin CA offers.
var OriginValidityDays = cloudflare.OriginValidityDays

// defaultDuration is cert-manager's default when a request names none.
const defaultDuration = 90 * 24 * time.Hour

// OriginOrder is what the Origin CA is asked for one request.
type OriginOrder struct {
	Hostnames   []string
	RequestType string
	// ValidityDays is the offered validity used; Requested is what the
	// request asked for. They differ when no offered validity matches (F18).
	ValidityDays int
	Requested    time.Duration
}

// Rounded says whether the validity differs from the request's duration.
func (o OriginOrder) Rounded() bool {
	return time.Duration(o.ValidityDays)*24*time.Hour != o.Requested
}

// PlanOrigin turns a request into an Origin CA order. requestType is the
// issuer's spec.requestType (OriginRSA, OriginECC, or empty for the CSR's
// key type). Every error is permanent: only a new request can fix it.
func PlanOrigin(details signer.CertificateDetails, requestType string) (OriginOrder, error) {
	block, _ := pem.Decode(details.CSR)
	if block == nil {
		return OriginOrder{}, signer.PermanentError{Err: errors.New("the request's CSR is not PEM")}
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return OriginOrder{}, signer.PermanentError{Err: fmt.Errorf("the request's CSR does not parse: %w", err)}
	}
	if details.IsCA {
		return OriginOrder{}, signer.PermanentError{Err: errors.New("Cloudflare's Origin CA issues no CA certificates; remove isCA from the request")}
	}
	var unsupported []string
	for _, ip := range csr.IPAddresses {
		unsupported = append(unsupported, "IP "+ip.String())
	}
	for _, u := range csr.URIs {
		unsupported = append(unsupported, "URI "+u.String())
	}
	for _, e := range csr.EmailAddresses {
		unsupported = append(unsupported, "email "+e)
	}
	if len(unsupported) > 0 {
		return OriginOrder{}, signer.PermanentError{Err: fmt.Errorf("Cloudflare's Origin CA certifies DNS names only; remove %s from the Certificate", strings.Join(unsupported, ", "))}
	}
	if len(csr.DNSNames) == 0 {
		return OriginOrder{}, signer.PermanentError{Err: errors.New("the request has no DNS names; set dnsNames in the Certificate")}
	}
	var keyType string
	switch csr.PublicKey.(type) {
	case *rsa.PublicKey:
		keyType = OriginRSA
	case *ecdsa.PublicKey:
		keyType = OriginECC
	default:
		return OriginOrder{}, signer.PermanentError{Err: fmt.Errorf("Cloudflare's Origin CA signs RSA or ECDSA keys, not %T; set privateKey.algorithm to RSA or ECDSA", csr.PublicKey)}
	}
	if requestType == "" {
		requestType = keyType
	}
	if requestType != keyType {
		return OriginOrder{}, signer.PermanentError{Err: fmt.Errorf("the issuer's requestType is %s but the request's key is %s; make privateKey.algorithm match, or change spec.requestType",
			requestName(requestType), requestName(keyType))}
	}
	requested := details.Duration
	if requested <= 0 {
		requested = defaultDuration
	}
	return OriginOrder{Hostnames: csr.DNSNames, RequestType: requestType, ValidityDays: originValidity(requested), Requested: requested}, nil
}

func requestName(t string) string {
	if t == OriginECC {
		return "OriginECC (ECDSA)"
	}
	return "OriginRSA (RSA)"
}

// originValidity is the nearest offered validity not shorter than d, capped
// at the longest offered. Days are counted in whole nanoseconds: d.Hours()
// is a float64, which rounds 365 days and 1 ns to 365 days.
func originValidity(d time.Duration) int {
	const day = 24 * time.Hour
	days := d / day
	if d%day != 0 {
		days++
	}
	for _, v := range OriginValidityDays {
		if time.Duration(v) >= days {
			return v
		}
	}
	return OriginValidityDays[len(OriginValidityDays)-1]
}

// OriginCA signs with Cloudflare's Origin CA using an API token with
// Zone → SSL and Certificates → Edit.
type OriginCA struct {
	client *cloudflare.Client
	// source names where the token came from, for messages.
	source string
	// roots are the Origin CA roots by request type, for status.ca.
	roots map[string][]byte
}

// OriginCAOptions are the operator's settings: process flags, never a spec.
type OriginCAOptions struct {
	BaseURL    string
	HTTPClient *http.Client
	// Roots replaces the Origin CA roots by request type (tests point them at
	// a simulator; operators may replace a root Cloudflare re-issues).
	Roots map[string][]byte
}

// DefaultOriginRoots are the roots reported as status.ca when none are
// configured: Cloudflare's embedded RSA and ECC roots.
func DefaultOriginRoots() map[string][]byte {
	return map[string][]byte{OriginRSA: roots.OriginRSA, OriginECC: roots.OriginECC}
}

// originMaxRetries bounds the SDK's retries of one signing call; the
// controller retries a failed request itself, with backoff.
const originMaxRetries = 2

// NewOriginCA builds the backend for a token; source names its Secret/key.
func NewOriginCA(o OriginCAOptions, token, source string) *OriginCA {
	if o.Roots == nil {
		o.Roots = DefaultOriginRoots()
	}
	client := cloudflare.NewClient(cloudflare.Options{BaseURL: o.BaseURL, HTTPClient: o.HTTPClient, MaxRetries: originMaxRetries},
		cloudflare.Credential{Token: token, Source: source})
	return &OriginCA{client: client, source: source, roots: o.Roots}
}

// Check verifies the token is active and not expired (F19, F21).
func (c *OriginCA) Check(ctx context.Context) error {
	s, err := c.client.VerifyToken(ctx)
	if err != nil {
		return c.explain(err)
	}
	if s.Status != "active" {
		return fmt.Errorf("Cloudflare reports the API token from %s as %s; create a new token with Zone → SSL and Certificates → Edit and update the Secret", c.source, s.Status)
	}
	if !s.ExpiresOn.IsZero() && time.Now().After(s.ExpiresOn) {
		return fmt.Errorf("the API token from %s expired on %s; create a new one and update the Secret", c.source, s.ExpiresOn.UTC().Format(time.RFC3339))
	}
	return nil
}

// Sign asks the Origin CA for the order and returns the certificate with
// the matching Origin root as CA.
func (c *OriginCA) Sign(ctx context.Context, csrPEM []byte, o OriginOrder) (signer.PEMBundle, error) {
	cert, err := c.client.CreateOriginCertificate(ctx, string(csrPEM), o.Hostnames, o.RequestType, o.ValidityDays)
	if err != nil {
		return signer.PEMBundle{}, c.explain(err)
	}
	return signer.PEMBundle{ChainPEM: []byte(cert), CAPEM: c.roots[o.RequestType]}, nil
}

// explain classifies a failure by what the controller should do: a plain
// error is retried (F21), an IssuerError makes the issuer not Ready, a
// PermanentError fails the request at once.
func (c *OriginCA) explain(err error) error {
	e, ok := cloudflare.As(err)
	if !ok {
		return fmt.Errorf("%w", err)
	}
	doing, quote := e.Op.String(), e.Quote()
	switch e.Reason {
	case cloudflare.Unreachable:
		return fmt.Errorf("%s: cannot reach Cloudflare: %s; retrying", doing, quote) // transient
	case cloudflare.Transient, cloudflare.RateLimited:
		return fmt.Errorf("%s: Cloudflare is unavailable or rate-limiting (%s); retrying", doing, quote)
	case cloudflare.HostnameNotInAccount:
		host := e.Hostname
		if host == "" {
			host = "a hostname"
		}
		return signer.PermanentError{Err: fmt.Errorf("%s: %s is not in a zone of this Cloudflare account, or the token cannot reach it (%s); request only hostnames of the account's zones",
			doing, host, quote)}
	case cloudflare.PermissionMissing:
		return signer.IssuerError{Err: fmt.Errorf("%s: the API token from %s lacks the permission %s (%s); grant it for the zones of the request",
			doing, c.source, cloudflare.CreateOriginCertificate.Permission(), quote)}
	case cloudflare.CredentialRejected, cloudflare.CredentialMalformed:
		return signer.IssuerError{Err: fmt.Errorf("%s: Cloudflare rejected the API token from %s (%s); create a new token with Zone → SSL and Certificates → Edit and update the Secret",
			doing, c.source, quote)}
	}
	return signer.PermanentError{Err: fmt.Errorf("%s: Cloudflare refused the request (%s)", doing, quote)}
}

// ServiceKeyRefused is the error for spec.auth.serviceKeyRef (F19).
var ServiceKeyRefused = errors.New("spec.auth.serviceKeyRef is an Origin CA service key, and those reached end of life on 2026-09-30. " +
	"Create an API token with Zone → SSL and Certificates → Edit, store it in a Secret and set spec.auth.tokenRef instead")

// OriginToken reads the API token an Origin CA issuer's spec names, from
// namespace (the issuer's, or the cluster resource namespace for the
// cluster kind). Service keys are refused (F19).
func OriginToken(ctx context.Context, secrets secretref.Reader, spec api.CloudflareOriginIssuerSpec, namespace string) (secretref.Value, error) {
	if spec.Auth.ServiceKeyRef != nil {
		return secretref.Value{}, ServiceKeyRefused
	}
	if spec.Auth.TokenRef == nil {
		return secretref.Value{}, errors.New("set spec.auth.tokenRef to a Secret key holding an API token with Zone → SSL and Certificates → Edit")
	}
	return secrets.Read(ctx, namespace, spec.Auth.TokenRef.Name, spec.Auth.TokenRef.Key, "spec.auth.tokenRef")
}

// originBackend builds (or reuses) an Origin CA issuer's backend.
func (s *Signers) originBackend(ctx context.Context, iss issuerlib.Issuer, namespace string, _ bool) (backend, error) {
	spec := iss.(originIssuer).OriginSpec()
	token, err := OriginToken(ctx, s.secrets, spec, namespace)
	if err != nil {
		return nil, err
	}
	return s.cached("origin|"+cloudflare.Credential{Token: token.Value}.Hash()+"|"+spec.RequestType, func() (backend, error) {
		return &originBackend{ca: NewOriginCA(s.opts.OriginCA, token.Value, token.String()), requestType: spec.RequestType}, nil
	})
}

// originBackend is an Origin CA issuer: the CA with its spec's request type.
type originBackend struct {
	ca          *OriginCA
	requestType string
}

func (b *originBackend) check(ctx context.Context) (CheckResult, error) {
	return CheckResult{}, b.ca.Check(ctx)
}

func (b *originBackend) sign(ctx context.Context, s *Signers, cr signer.CertificateRequestObject, details signer.CertificateDetails) (signer.PEMBundle, error) {
	order, err := PlanOrigin(details, map[string]string{"OriginRSA": OriginRSA, "OriginECC": OriginECC}[b.requestType])
	if err != nil {
		return signer.PEMBundle{}, err
	}
	bundle, err := b.ca.Sign(ctx, details.CSR, order)
	if err == nil && order.Rounded() && s.recorder != nil {
		// F18: the user asked for a duration Cloudflare does not offer.
		s.recorder.Eventf(reference(cr), nil, corev1.EventTypeNormal, "ValidityRounded", "Sign",
			"Cloudflare's Origin CA offers validities of 7, 30, 90, 365, 730, 1095 or 5475 days; the certificate was issued for %d days (requested %s)",
			order.ValidityDays, order.Requested)
	}
	return bundle, err
}
