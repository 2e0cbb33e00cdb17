package alibaba

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/certbridge/certbridge/internal/input"
)

// A ServiceAccount of the cluster as an Alibaba Cloud identity, one per
// issuer, without keys: certbridge asks kube-apiserver for a short-lived
// token of the ServiceAccount (TokenRequest) and exchanges it with STS
// AssumeRoleWithOIDC for a RAM role whose trust policy admits
// system:serviceaccount:<namespace>:<name>, through the cluster's RRSA OIDC
// provider. It is what cert-manager's serviceAccountRef does for Route 53.
// Nothing is granted by default: a ServiceAccount's owner opts in by letting
// certbridge's own ServiceAccount create tokens for it (TokenGrant).

// Defaults of a ServiceAccount's role session.
const (
	// DefaultAudience is the audience RRSA's tokens carry, and the client
	// ID the cluster's OIDC provider in RAM accepts.
	DefaultAudience = "sts.aliyuncs.com"
	// TokenTTL is how long a requested token lives: kube-apiserver's
	// shortest.
	TokenTTL = 10 * time.Minute
	// SessionDuration is what STS is asked for: within the maximum of every
	// RAM role (1 to 12 hours).
	SessionDuration = time.Hour
	// RenewBefore is how long before they expire a session's credentials,
	// and a token, stop being used.
	RenewBefore = 5 * time.Minute
)

// The actions of a ServiceAccount's role assumption, as Error.Action.
const (
	ActionTokenRequest       = "TokenRequest"
	ActionAssumeRoleWithOIDC = "AssumeRoleWithOIDC"
)

// ServiceAccount names a Kubernetes ServiceAccount whose tokens are
// exchanged for the credentials of Credential.RoleARN.
type ServiceAccount struct {
	Namespace, Name string
	// Audience of the requested tokens; DefaultAudience when empty.
	Audience string
	// Tokens requests them, as the process's own Kubernetes identity.
	Tokens TokenRequester
}

func (s ServiceAccount) String() string { return s.Namespace + "/" + s.Name }

// Subject is the token's sub, what a role's trust policy must admit.
func (s ServiceAccount) Subject() string {
	return "system:serviceaccount:" + s.Namespace + ":" + s.Name
}

func (s ServiceAccount) audience() string {
	if s.Audience == "" {
		return DefaultAudience
	}
	return s.Audience
}

// TokenRequester asks kube-apiserver for a ServiceAccount's token.
type TokenRequester interface {
	RequestToken(ctx context.Context, namespace, name, audience string, ttl time.Duration) (Token, error)
}

// Token is a ServiceAccount token. Value is a secret: no message, log line
// or cache key holds it.
type Token struct {
	Value   string
	Expires time.Time
}

// KubeTokens requests tokens with client (TokenRequest: create on
// serviceaccounts/token).
func KubeTokens(client kubernetes.Interface) TokenRequester { return kubeTokens{client} }

type kubeTokens struct{ client kubernetes.Interface }

func (k kubeTokens) RequestToken(ctx context.Context, namespace, name, audience string, ttl time.Duration) (Token, error) {
	seconds := int64(ttl / time.Second)
	tr, err := k.client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		return Token{}, err
	}
	return Token{Value: tr.Status.Token, Expires: tr.Status.ExpirationTimestamp.Time}, nil
}

// RequestToken asks for a token of sa, the first step of its role
// assumption. Its errors are *Error with Action ActionTokenRequest:
// TokenForbidden (Error.Requester names who was refused),
// ServiceAccountNotFound, or TokenRequestFailed.
func RequestToken(ctx context.Context, sa ServiceAccount) (Token, error) {
	if sa.Tokens == nil {
		return Token{}, &Error{Action: ActionTokenRequest, Reason: TokenRequestFailed, cause: errors.New("no Kubernetes client to request tokens with")}
	}
	tok, err := sa.Tokens.RequestToken(ctx, sa.Namespace, sa.Name, sa.audience(), TokenTTL)
	if err != nil {
		return Token{}, classifyTokenRequest(err, tok.Value)
	}
	if tok.Expires.IsZero() {
		tok.Expires = time.Now().Add(TokenTTL)
	}
	return tok, nil
}

var errNoOIDCProvider = errors.New("no RRSA OIDC provider ARN is configured")

var forbiddenUser = regexp.MustCompile(`User "([^"]+)"`)

// classifyTokenRequest words kube-apiserver's refusal of a TokenRequest.
func classifyTokenRequest(err error, secrets ...string) error {
	e := &Error{Action: ActionTokenRequest, Reason: TokenRequestFailed}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		e.Status, e.Code, e.Message = int(s.Code), string(s.Reason), s.Message
	}
	switch {
	case apierrors.IsForbidden(err):
		e.Reason = TokenForbidden
		if m := forbiddenUser.FindStringSubmatch(e.Message); m != nil {
			e.Requester = m[1]
		}
	case apierrors.IsNotFound(err):
		e.Reason = ServiceAccountNotFound
	case e.Code == "":
		e.cause = safe(err, secrets)
	}
	return e
}

// TokenGrant is the manifest, on one line, that lets requester (a
// Kubernetes user, "system:serviceaccount:<ns>:<name>" for a
// ServiceAccount) request tokens of ServiceAccount name in namespace, and
// nothing else: a Role allowing create on serviceaccounts/token for that
// one name, and its RoleBinding. It is JSON, which kubectl apply reads.
func TokenGrant(namespace, name, requester string) string {
	subject := map[string]string{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": requester}
	who := requester
	if rest, ok := strings.CutPrefix(requester, "system:serviceaccount:"); ok {
		if ns, sa, ok := strings.Cut(rest, ":"); ok {
			subject = map[string]string{"kind": "ServiceAccount", "namespace": ns, "name": sa}
			who = sa
		}
	}
	role := "certbridge-token-" + name
	manifest := map[string]any{"apiVersion": "v1", "kind": "List", "items": []any{
		map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
			"metadata": map[string]string{"name": role, "namespace": namespace},
			"rules": []any{map[string]any{"apiGroups": []string{""}, "resources": []string{"serviceaccounts/token"},
				"resourceNames": []string{name}, "verbs": []string{"create"}}}},
		map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
			"metadata": map[string]string{"name": role + "-" + who, "namespace": namespace},
			"roleRef":  map[string]string{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
			"subjects": []any{subject}},
	}}
	b, _ := json.Marshal(manifest)
	return string(b)
}

// AssumeRoleWithOIDC exchanges token for the credentials of role through
// o's OIDC provider at o's STS, the second step of a ServiceAccount's role
// assumption, with the SDK's OIDC credentials provider (as RRSA does). Its
// errors are *Error with Action ActionAssumeRoleWithOIDC.
func AssumeRoleWithOIDC(ctx context.Context, o Options, role, token string) (*credentials.Credentials, error) {
	endpoint := o.STS.Or(STSHost)
	if o.OIDCProviderARN == "" {
		return nil, &Error{Action: ActionAssumeRoleWithOIDC, Reason: OIDCProviderUnset, Endpoint: endpoint, cause: errNoOIDCProvider}
	}
	if err := ctx.Err(); err != nil {
		return nil, classify(ActionAssumeRoleWithOIDC, endpoint, []string{token}, err)
	}
	path, done, err := tokenFile(token)
	if err != nil {
		return nil, classify(ActionAssumeRoleWithOIDC, endpoint, []string{token}, &credentialsError{err: err})
	}
	defer done()
	p, err := credentials.NewOIDCCredentialsProviderBuilder().
		WithRoleArn(role).
		WithOIDCProviderARN(o.OIDCProviderARN).
		WithOIDCTokenFilePath(path).
		WithRoleSessionName(roleSessionName).
		WithDurationSeconds(int(SessionDuration / time.Second)).
		WithSTSEndpoint(endpoint.Host).
		Build()
	if err != nil {
		return nil, classify(ActionAssumeRoleWithOIDC, endpoint, []string{token}, &credentialsError{err: err})
	}
	c, err := p.GetCredentials()
	if err != nil {
		return nil, classify(ActionAssumeRoleWithOIDC, endpoint, []string{token}, err)
	}
	return c, nil
}

// saSession is a ServiceAccount's role session for one client: its token
// and the STS credentials it was exchanged for, each used until
// RenewBefore its expiry. Clients refresh it with the call's context before
// each call (prepare); the SDK's signer then reads the credentials.
type saSession struct {
	sa   ServiceAccount
	role string
	opts Options
	now  func() time.Time

	mu      sync.Mutex
	token   Token
	creds   *credentials.Credentials
	expires time.Time
}

func newSASession(sa ServiceAccount, role string, o Options) *saSession {
	return &saSession{sa: sa, role: role, opts: o, now: time.Now}
}

// prepare makes sure the session holds credentials for at least
// RenewBefore; its errors are *Error.
func (s *saSession) prepare(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.creds != nil && now.Add(RenewBefore).Before(s.expires) {
		return nil
	}
	if s.opts.OIDCProviderARN == "" {
		return &Error{Action: ActionAssumeRoleWithOIDC, Reason: OIDCProviderUnset, Endpoint: s.opts.STS.Or(STSHost), cause: errNoOIDCProvider}
	}
	// A token lives 10 minutes: reused only for a retried exchange.
	if s.token.Value == "" || !now.Add(time.Minute).Before(s.token.Expires) {
		tok, err := RequestToken(ctx, s.sa)
		if err != nil {
			return err
		}
		s.token = tok
	}
	creds, err := AssumeRoleWithOIDC(ctx, s.opts, s.role, s.token.Value)
	if err != nil {
		if Is(err, OIDCTokenRejected) {
			s.token = Token{}
		}
		return err
	}
	s.creds, s.expires = creds, now.Add(SessionDuration)
	return nil
}

// GetCredentials serves the SDK's signer. The clients prepare the session
// with the call's context first; this bound is for the SDK alone.
func (s *saSession) GetCredentials() (*credentials.Credentials, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *s.creds
	return &c, nil
}

func (s *saSession) GetProviderName() string { return "certbridge_service_account" }

// OIDCProviderValue is the chart value holding the cluster's RRSA OIDC
// provider ARN (the webhook's and the issuer's --alibaba-oidc-provider-arn).
const OIDCProviderValue = "alibaba.oidcProviderARN"

// Problem is a failed role assumption worded for people: what failed and
// what to change.
type Problem struct {
	Detail, Fix string
}

// ServiceAccountProblem words err, a failure of sa's role assumption for
// role with o's OIDC provider, for the webhook, the issuer and check
// alike; who names the process whose Kubernetes identity requests tokens
// ("the webhook"). ok is false for any other error.
func ServiceAccountProblem(err error, sa ServiceAccount, role string, o Options, who string) (p Problem, ok bool) {
	e, isErr := As(err)
	if !isErr || (e.Action != ActionTokenRequest && e.Action != ActionAssumeRoleWithOIDC) {
		return Problem{}, false
	}
	quote := e.Quote()
	trust := fmt.Sprintf("trust policy lets the OIDC provider %s assume it (sts:AssumeRole) under the conditions oidc:aud = %q and oidc:sub = %q",
		o.OIDCProviderARN, sa.audience(), sa.Subject())
	switch e.Reason {
	case TokenForbidden:
		requester := e.Requester
		if requester == "" {
			requester = "system:serviceaccount:<namespace>:<name of " + who + "'s ServiceAccount>"
		}
		return Problem{
			Detail: fmt.Sprintf("%s (Kubernetes user %q) may not request tokens for ServiceAccount %q in namespace %q: kube-apiserver refused the TokenRequest (RBAC)",
				who, requester, sa.Name, sa.Namespace),
			Fix: fmt.Sprintf("serviceAccountRef names a ServiceAccount of the issuer's own namespace (for a cluster issuer, of the cluster resource namespace), "+
				"and its tokens are requested only where that namespace allows it: to let this issuer act as %s, apply in namespace %q: %s",
				sa, sa.Namespace, TokenGrant(sa.Namespace, sa.Name, requester)),
		}, true
	case ServiceAccountNotFound:
		return Problem{
			Detail: fmt.Sprintf("there is no ServiceAccount %q in namespace %q (%s)", sa.Name, sa.Namespace, quote),
			Fix: fmt.Sprintf("serviceAccountRef names a ServiceAccount of the issuer's own namespace (for a cluster issuer, of the cluster resource namespace): create %s, or set serviceAccountRef.name to a ServiceAccount of %q",
				sa, sa.Namespace),
		}, true
	case TokenRequestFailed:
		return Problem{
			Detail: fmt.Sprintf("requesting a token for ServiceAccount %s failed (%s)", sa, quote),
			Fix:    "retry; if it persists, check " + who + "'s connection to kube-apiserver",
		}, true
	case OIDCProviderUnset:
		return Problem{
			Detail: who + " was not given the cluster's RRSA OIDC provider, through which ServiceAccount tokens are exchanged for roles",
			Fix: fmt.Sprintf("enable RRSA for the ACK cluster and set the chart value %s (--alibaba-oidc-provider-arn) to its OIDC provider's ARN, acs:ram::<account id>:oidc-provider/ack-rrsa-<cluster id>",
				OIDCProviderValue),
		}, true
	case OIDCProviderUnknown:
		return Problem{
			Detail: fmt.Sprintf("STS knows no OIDC provider %s (%s)", o.OIDCProviderARN, quote),
			Fix:    fmt.Sprintf("set the chart value %s to the ARN of the cluster's RRSA OIDC provider, in the account of role %s", OIDCProviderValue, role),
		}, true
	case OIDCTokenRejected:
		return Problem{
			Detail: fmt.Sprintf("STS refused the token of ServiceAccount %s (%s)", sa, quote),
			Fix: fmt.Sprintf("the OIDC provider %s must be this cluster's RRSA provider (its issuer URL and keys) and accept the audience %q (serviceAccountRef.audience)",
				o.OIDCProviderARN, sa.audience()),
		}, true
	case RoleNotTrusted:
		return Problem{
			Detail: fmt.Sprintf("role %s does not admit ServiceAccount %s (%s answered %s)", role, sa, e.Action, quote),
			Fix:    fmt.Sprintf("if %s may act as role %s, edit the role so that its %s; otherwise set roleArn to the role made for it", sa, role, trust),
		}, true
	case RoleNotFound:
		return Problem{
			Detail: fmt.Sprintf("there is no RAM role %s (%s)", role, quote),
			Fix:    "set roleArn to an existing role whose " + trust,
		}, true
	case Unreachable:
		return Problem{
			Detail: "cannot reach STS: " + quote,
			Fix:    "check --alibaba-sts-endpoint (" + e.Endpoint.String() + ") and connectivity to it; the STS endpoint is always HTTPS",
		}, true
	}
	return Problem{Detail: fmt.Sprintf("%s refused (%s)", e.Action, quote), Fix: "retry; if it persists, check the role " + role}, true
}

var oidcProviderARNFormat = regexp.MustCompile(`^acs:ram::[0-9]+:oidc-provider/[A-Za-z0-9._-]+$`)

// CheckOIDCProviderARN is the one rule for the --alibaba-oidc-provider-arn
// flags: empty, or an OIDC provider's ARN.
func CheckOIDCProviderARN(flag, value string) error {
	if value != "" && !oidcProviderARNFormat.MatchString(value) {
		return fmt.Errorf("%s %s is not an OIDC provider's ARN: acs:ram::<account id>:oidc-provider/<name>, for RRSA ack-rrsa-<cluster id>", flag, input.Quote(value))
	}
	return nil
}
