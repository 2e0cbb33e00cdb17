package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/certbridge/certbridge/internal/alibaba"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
)

// RRSA: the cluster's service-account issuer registered in the simulated
// RAM as an OIDC provider, as enabling RRSA on an ACK cluster does, so
// that STS accepts the tokens this kube-apiserver signs.
const (
	// RRSAOIDCProvider is the provider's ARN; the chart is installed with it
	// (alibaba.oidcProviderARN).
	RRSAOIDCProvider = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-e2e"
	// WebhookUser and IssuerUser are the chart's ServiceAccounts, as
	// kube-apiserver names them: who requests a serviceAccountRef's tokens.
	WebhookUser = "system:serviceaccount:" + Namespace + ":" + webhookService
	IssuerUser  = "system:serviceaccount:" + Namespace + ":" + Release + "-issuer"
)

// registerRRSA registers kube-apiserver's service-account issuer (its OIDC
// discovery document and JWKS) in the simulator, and writes the STS
// endpoint's certificate for the webhook and the issuer to trust.
func (c *Cluster) registerRRSA(ctx context.Context) error {
	rc := c.Kube.Discovery().RESTClient()
	raw, err := rc.Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("OIDC discovery: %w", err)
	}
	var discovery struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(raw, &discovery); err != nil || discovery.Issuer == "" {
		return fmt.Errorf("OIDC discovery: no issuer in %s", raw)
	}
	jwks, err := rc.Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("JWKS: %w", err)
	}
	keys, err := alisim.ParseJWKS(jwks)
	if err != nil {
		return err
	}
	c.Alibaba.AddOIDCProvider(alisim.OIDCProvider{ARN: RRSAOIDCProvider, IssuerURL: discovery.Issuer,
		ClientIDs: []string{alibaba.DefaultAudience}, Keys: keys})
	c.stsCA = filepath.Join(c.Dir, "sts-ca.pem")
	return os.WriteFile(c.stsCA, c.Alibaba.STSCertificatePEM(), 0o600)
}

// TrustSTS is the environment under which the webhook, the issuer and check trust
// the simulated STS: the SDK's STS calls are HTTPS with the system roots.
func (c *Cluster) TrustSTS() []string {
	if c.stsCA == "" {
		return nil
	}
	return []string{"SSL_CERT_FILE=" + c.stsCA}
}

// GrantServiceAccountTokens applies, with kubectl, the manifest certbridge
// gives when requester may not request the tokens of ServiceAccount name
// in namespace: what a namespace's owner does to opt in.
func (c *Cluster) GrantServiceAccountTokens(ctx context.Context, namespace, name, requester string) error {
	_, err := c.Kubectl(ctx, []byte(alibaba.TokenGrant(namespace, name, requester)), "apply", "-f", "-")
	return err
}
