// Package issuer holds the external issuer's CA backends, one file per CA.
// The controller wiring (issuer-lib, CRDs) builds on them.
package issuer

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/origin_ca_certificates"
	"github.com/cloudflare/cloudflare-go/v6/shared"
	"github.com/cloudflare/cloudflare-go/v6/ssl"
	"github.com/cloudflare/cloudflare-go/v6/user"

	"github.com/cert-manager/issuer-lib/controllers/signer"

	"github.com/certbridge/certbridge/internal/cfapi"
	"github.com/certbridge/certbridge/issuer/roots"
)

// Origin CA request types, as the API names them.
const (
	OriginRSA = "origin-rsa"
	OriginECC = "origin-ecc"
)

// OriginValidityDays are the validities Cloudflare's Origin CA offers.
var OriginValidityDays = []int{7, 30, 90, 365, 730, 1095, 5475}

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
		return OriginOrder{}, signer.PermanentError{Err: errors.New("origin-ca: the request's CSR is not PEM")}
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return OriginOrder{}, signer.PermanentError{Err: fmt.Errorf("origin-ca: the request's CSR does not parse: %w", err)}
	}
	if details.IsCA {
		return OriginOrder{}, signer.PermanentError{Err: errors.New("origin-ca: Cloudflare's Origin CA issues no CA certificates; remove isCA from the request")}
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
		return OriginOrder{}, signer.PermanentError{Err: fmt.Errorf("origin-ca: Cloudflare's Origin CA certifies DNS names only; remove %s from the Certificate", strings.Join(unsupported, ", "))}
	}
	if len(csr.DNSNames) == 0 {
		return OriginOrder{}, signer.PermanentError{Err: errors.New("origin-ca: the request has no DNS names; set dnsNames in the Certificate")}
	}
	var keyType string
	switch csr.PublicKey.(type) {
	case *rsa.PublicKey:
		keyType = OriginRSA
	case *ecdsa.PublicKey:
		keyType = OriginECC
	default:
		return OriginOrder{}, signer.PermanentError{Err: fmt.Errorf("origin-ca: Cloudflare's Origin CA signs RSA or ECDSA keys, not %T; set privateKey.algorithm to RSA or ECDSA", csr.PublicKey)}
	}
	if requestType == "" {
		requestType = keyType
	}
	if requestType != keyType {
		return OriginOrder{}, signer.PermanentError{Err: fmt.Errorf("origin-ca: the issuer's requestType is %s but the request's key is %s; make privateKey.algorithm match, or change spec.requestType",
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
// at the longest offered.
func originValidity(d time.Duration) int {
	days := int(math.Ceil(d.Hours() / 24))
	for _, v := range OriginValidityDays {
		if v >= days {
			return v
		}
	}
	return OriginValidityDays[len(OriginValidityDays)-1]
}

// originCAAPI is the subset of Cloudflare's API the Origin CA backend uses.
type originCAAPI interface {
	verifyToken(ctx context.Context) (status string, expiresOn time.Time, err error)
	create(ctx context.Context, csrPEM string, o OriginOrder) (certPEM string, err error)
}

// OriginCA signs with Cloudflare's Origin CA using an API token with
// Zone → SSL and Certificates → Edit.
type OriginCA struct {
	api originCAAPI
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

// NewOriginCA builds the backend for a token; source names its Secret/key.
func NewOriginCA(o OriginCAOptions, token, source string) *OriginCA {
	if o.BaseURL == "" {
		o.BaseURL = "https://api.cloudflare.com/client/v4/"
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Roots == nil {
		o.Roots = DefaultOriginRoots()
	}
	opts := []option.RequestOption{option.WithBaseURL(o.BaseURL), option.WithHTTPClient(o.HTTPClient),
		option.WithMaxRetries(2), option.WithAPIToken(token)}
	return &OriginCA{
		api:    &sdkOriginCA{certs: origin_ca_certificates.NewOriginCACertificateService(opts...), tokens: user.NewTokenService(opts...)},
		source: source,
		roots:  o.Roots,
	}
}

// Check verifies the token is active and not expired (F19, F21).
func (c *OriginCA) Check(ctx context.Context) error {
	status, expires, err := c.api.verifyToken(ctx)
	if err != nil {
		return c.explain(err, "verifying the API token")
	}
	if status != "active" {
		return fmt.Errorf("origin-ca: Cloudflare reports the API token from %s as %s; create a new token with Zone → SSL and Certificates → Edit and update the Secret", c.source, status)
	}
	if !expires.IsZero() && time.Now().After(expires) {
		return fmt.Errorf("origin-ca: the API token from %s expired on %s; create a new one and update the Secret", c.source, expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// Sign asks the Origin CA for the order and returns the certificate with
// the matching Origin root as CA.
func (c *OriginCA) Sign(ctx context.Context, csrPEM []byte, o OriginOrder) (signer.PEMBundle, error) {
	cert, err := c.api.create(ctx, string(csrPEM), o)
	if err != nil {
		return signer.PEMBundle{}, c.explain(err, "requesting the certificate")
	}
	return signer.PEMBundle{ChainPEM: []byte(cert), CAPEM: c.roots[o.RequestType]}, nil
}

var hostnameInMessage = regexp.MustCompile(`requested hostname (\S+?):`)

// explain classifies a failure by what the controller should do: a plain
// error is retried (F21), an IssuerError makes the issuer not Ready, a
// PermanentError fails the request at once.
func (c *OriginCA) explain(err error, doing string) error {
	e, ok := cfapi.As(err)
	if !ok {
		return fmt.Errorf("origin-ca: %s: cannot reach Cloudflare: %w", doing, err) // transient
	}
	switch {
	case e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Has(1100, 1201, 971):
		return fmt.Errorf("origin-ca: %s: Cloudflare is unavailable or rate-limiting (%s); retrying", doing, e)
	case e.Has(1010):
		host := "a hostname"
		if m := hostnameInMessage.FindStringSubmatch(e.Message(1010)); m != nil {
			host = m[1]
		}
		return signer.PermanentError{Err: fmt.Errorf("origin-ca: %s: %s is not in a zone of this Cloudflare account, or the token cannot reach it (%s); request only hostnames of the account's zones",
			doing, host, e)}
	case e.Has(10000, 1016):
		return signer.IssuerError{Err: fmt.Errorf("origin-ca: %s: the API token from %s lacks the permission Zone → SSL and Certificates → Edit (%s); grant it for the zones of the request",
			doing, c.source, e)}
	case e.Has(9109, 1000, 9106, 6003, 10001):
		return signer.IssuerError{Err: fmt.Errorf("origin-ca: %s: Cloudflare rejected the API token from %s (%s); create a new token with Zone → SSL and Certificates → Edit and update the Secret",
			doing, c.source, e)}
	default:
		return signer.PermanentError{Err: fmt.Errorf("origin-ca: %s: Cloudflare refused the request (%s)", doing, e)}
	}
}

// sdkOriginCA implements originCAAPI with cloudflare-go v6's per-service
// clients, which read no CLOUDFLARE_* environment variables.
type sdkOriginCA struct {
	certs  *origin_ca_certificates.OriginCACertificateService
	tokens *user.TokenService
}

func (s *sdkOriginCA) verifyToken(ctx context.Context) (string, time.Time, error) {
	res, err := s.tokens.Verify(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	return string(res.Status), res.ExpiresOn, nil
}

func (s *sdkOriginCA) create(ctx context.Context, csrPEM string, o OriginOrder) (string, error) {
	var p origin_ca_certificates.OriginCACertificateNewParams
	p.Csr.Value, p.Csr.Present = csrPEM, true
	p.Hostnames.Value, p.Hostnames.Present = o.Hostnames, true
	p.RequestType.Value, p.RequestType.Present = shared.CertificateRequestType(o.RequestType), true
	p.RequestedValidity.Value, p.RequestedValidity.Present = ssl.RequestValidity(o.ValidityDays), true
	res, err := s.certs.New(ctx, p)
	if err != nil {
		return "", err
	}
	return res.Certificate, nil
}
