// Package alibaba holds, once, what certbridge's Alibaba Cloud clients need:
// endpoints and their one parsing rule, credentials (AccessKey, STS, RRSA,
// the ECS RAM role, role assumption) and how they are named in messages,
// the DNS and Private CA clients on alibaba-cloud-sdk-go v1 with their
// budgets and retries, the one error classifier, and the domain resolver.
// The solvers, the issuer and `certbridge check` use it and keep only their
// own wording.
package alibaba

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
)

// The variables RRSA (ack-pod-identity-webhook) sets in a pod.
const (
	EnvRoleARN         = "ALIBABA_CLOUD_ROLE_ARN"
	EnvOIDCProviderARN = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN"
	EnvOIDCTokenFile   = "ALIBABA_CLOUD_OIDC_TOKEN_FILE"
)

// roleSessionName names certbridge's sessions in ActionTrail.
const roleSessionName = "certbridge"

// Credential says where a client's credentials come from.
type Credential struct {
	// AccessKeyID and AccessKeySecret are a RAM user's AccessKey, or STS
	// credentials with SecurityToken. All empty means ambient credentials.
	AccessKeyID, AccessKeySecret, SecurityToken string
	// IDSource, SecretSource and TokenSource name where each value came
	// from (a Secret and key) for messages; never the value.
	IDSource, SecretSource, TokenSource string
	// Ambient is what the process environment offers; used only when
	// AccessKeyID is empty, and only where the caller allowed it.
	Ambient Ambient
	// RoleARN is a RAM role assumed from the credentials above, or, with
	// ServiceAccount, the role its tokens are exchanged for.
	RoleARN string
	// ServiceAccount, when set, is the identity instead of the fields
	// above: a Kubernetes ServiceAccount whose tokens are exchanged for
	// RoleARN's credentials (AssumeRoleWithOIDC).
	ServiceAccount *ServiceAccount
}

// Ambient is RRSA on ACK when RoleARN is set, else the ECS instance's RAM role.
type Ambient struct {
	RoleARN, OIDCProviderARN, OIDCTokenFile string
}

// AmbientFromEnv reads RRSA's variables; set partly, they are an error.
func AmbientFromEnv(getenv func(string) string) (Ambient, error) {
	a := Ambient{RoleARN: getenv(EnvRoleARN), OIDCProviderARN: getenv(EnvOIDCProviderARN), OIDCTokenFile: getenv(EnvOIDCTokenFile)}
	if a.RoleARN != "" && (a.OIDCProviderARN == "" || a.OIDCTokenFile == "") {
		return a, fmt.Errorf("ambient credentials: %s is set but %s or %s is not; enable RRSA for the pod's ServiceAccount (ack-pod-identity-webhook sets all three)",
			EnvRoleARN, EnvOIDCProviderARN, EnvOIDCTokenFile)
	}
	return a, nil
}

// IsAmbient reports credentials taken from the environment.
func (c Credential) IsAmbient() bool { return c.AccessKeyID == "" && c.ServiceAccount == nil }

// Kind is "AccessKey", "STS", "ServiceAccount" or "ambient".
func (c Credential) Kind() string {
	switch {
	case c.ServiceAccount != nil:
		return "ServiceAccount"
	case c.IsAmbient():
		return "ambient"
	case c.SecurityToken != "":
		return "STS"
	}
	return "AccessKey"
}

// MaskedID shows an AccessKey id as its first four characters only.
func (c Credential) MaskedID() string {
	switch {
	case c.ServiceAccount != nil:
		return "(ServiceAccount " + c.ServiceAccount.String() + ")"
	case c.IsAmbient():
		return "(ambient credentials)"
	}
	v := c.AccessKeyID
	if len(v) > 4 {
		v = v[:4]
	}
	return v + "****"
}

// Describe names the credential's source for messages.
func (c Credential) Describe() string {
	var s string
	switch {
	case c.ServiceAccount != nil:
		return "role " + c.RoleARN + " assumed with ServiceAccount " + c.ServiceAccount.String() + "'s tokens"
	case c.IsAmbient() && c.Ambient.RoleARN != "":
		s = "RRSA (role " + c.Ambient.RoleARN + ")"
	case c.IsAmbient():
		s = "the ECS instance's RAM role"
	default:
		s = "AccessKey " + c.MaskedID()
		if c.IDSource != "" {
			s += " from " + c.IDSource
		}
	}
	if c.RoleARN != "" {
		s += ", assuming role " + c.RoleARN
	}
	return s
}

// Hash identifies the credential (and extra, such as a region) in caches
// without keeping any value as a key: a ServiceAccount's by its
// namespace, name, audience and role.
func (c Credential) Hash(extra ...string) string {
	h := sha256.New()
	var sa []string
	if c.ServiceAccount != nil {
		sa = []string{"serviceaccount", c.ServiceAccount.Namespace, c.ServiceAccount.Name, c.ServiceAccount.audience()}
	}
	for _, v := range append(append([]string{c.AccessKeyID, c.AccessKeySecret, c.SecurityToken, c.RoleARN,
		c.Ambient.RoleARN, c.Ambient.OIDCProviderARN, c.Ambient.OIDCTokenFile}, sa...), extra...) {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// secrets are the values no message may hold. (A ServiceAccount's token
// and session are its session's, and never reach a client's messages.)
func (c Credential) secrets() []string {
	return []string{c.AccessKeySecret, c.SecurityToken, c.AccessKeyID}
}

// provider builds the SDK's credentials provider, with every value given
// explicitly so the SDK never falls back to environment variables, and STS
// reached at o.STS (always HTTPS: the SDK's providers hard-code it).
// prepare, when not nil, is to run with the call's context before each
// call: it requests a ServiceAccount's token and exchanges it, when its
// session needs new credentials.
func (c Credential) provider(o Options) (p credentials.CredentialsProvider, prepare func(context.Context) error, err error) {
	sts := o.STS.Or(STSHost)
	if c.ServiceAccount != nil {
		s := newSASession(*c.ServiceAccount, c.RoleARN, o)
		return s, s.prepare, nil
	}
	var base credentials.CredentialsProvider
	switch {
	case c.AccessKeyID != "" && c.SecurityToken != "":
		base = credentials.NewStaticSTSCredentialsProvider(c.AccessKeyID, c.AccessKeySecret, c.SecurityToken)
	case c.AccessKeyID != "":
		base = credentials.NewStaticAKCredentialsProvider(c.AccessKeyID, c.AccessKeySecret)
	case c.Ambient.RoleARN != "":
		base, err = credentials.NewOIDCCredentialsProviderBuilder().
			WithRoleArn(c.Ambient.RoleARN).
			WithOIDCProviderARN(c.Ambient.OIDCProviderARN).
			WithOIDCTokenFilePath(c.Ambient.OIDCTokenFile).
			WithRoleSessionName(roleSessionName).
			WithSTSEndpoint(sts.Host).
			Build()
	default:
		base, err = credentials.NewECSRAMRoleCredentialsProviderBuilder().Build()
	}
	if err != nil {
		return nil, nil, err
	}
	if c.RoleARN != "" {
		base, err = credentials.NewRAMRoleARNCredentialsProviderBuilder().
			WithCredentialsProvider(base).
			WithRoleArn(c.RoleARN).
			WithRoleSessionName(roleSessionName).
			WithDurationSeconds(3600).
			WithStsEndpoint(sts.Host).
			Build()
		if err != nil {
			return nil, nil, err
		}
	}
	return &lockedProvider{p: base}, nil, nil
}

// lockedProvider serialises credential refreshes: the SDK's providers
// update their cached session credentials without a lock.
type lockedProvider struct {
	mu sync.Mutex
	p  credentials.CredentialsProvider
}

func (l *lockedProvider) GetCredentials() (*credentials.Credentials, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, err := l.p.GetCredentials()
	if err != nil {
		return nil, &credentialsError{err: err}
	}
	return c, nil
}

func (l *lockedProvider) GetProviderName() string { return l.p.GetProviderName() }

// credentialsError is a failure to obtain credentials (STS, RRSA, the
// instance metadata service) before any API call was made.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

var errNoCredentials = errors.New("no credentials")
