package peers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	tokencache "k8s.io/apiserver/pkg/authentication/token/cache"
	webhooktoken "k8s.io/apiserver/plugin/pkg/authenticator/token/webhook"
	authenticationv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
)

// Peers know each other by who they are, not by the certificate they
// present: a certificate from the webhook's CA with its names is easy to
// come by (its Issuer is a cert-manager Issuer in the release's namespace)
// and says nothing of who holds it. Each replica sends a token of the
// webhook's ServiceAccount, projected by the kubelet for an audience only
// the peers use, and the receiver has kube-apiserver review it
// (TokenReview) and serves only the webhook's own ServiceAccount. The token
// is worth nothing to kube-apiserver or anything else, since its audience
// is the peers'; TLS still carries it, with the certificate checks of
// Identity.

// TokenFile is this replica's token, as the kubelet keeps it in a projected
// volume: read again when the file changes (the kubelet rotates it well
// before it expires).
type TokenFile struct {
	path string

	mu    sync.Mutex
	read  time.Time
	stamp string
	token string
}

// NewTokenFile reads the token at path.
func NewTokenFile(path string) (*TokenFile, error) {
	f := &TokenFile{path: path}
	if _, err := f.Token(); err != nil {
		return nil, err
	}
	return f, nil
}

// Token returns the token, reading the file again when it changed; a failed
// reread keeps the last good token. Its errors never hold the token.
func (f *TokenFile) Token() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.token != "" && time.Since(f.read) < reloadEvery {
		return f.token, nil
	}
	f.read = time.Now()
	fi, err := os.Stat(f.path)
	if err == nil && f.token != "" && stampOf(fi) == f.stamp {
		return f.token, nil
	}
	raw, readErr := os.ReadFile(f.path)
	token := strings.TrimSpace(string(raw))
	switch {
	case readErr == nil && token != "" && err == nil:
		f.token, f.stamp = token, stampOf(fi)
	case f.token != "":
		// Keep the last good one: the kubelet swaps the file atomically,
		// so this is a passing problem.
	case readErr != nil:
		return "", fmt.Errorf("peer token: %w", readErr)
	case err != nil:
		return "", fmt.Errorf("peer token: %w", err)
	default:
		return "", fmt.Errorf("peer token %s is empty", f.path)
	}
	return f.token, nil
}

func stampOf(fi os.FileInfo) string {
	return fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano())
}

// Admission decides who may send requests to the peer listener: a caller
// whose bearer token kube-apiserver authenticates for the peers' audience
// as the webhook's own ServiceAccount.
type Admission struct {
	audience string
	user     string
	tokens   authenticator.Token
}

// Review settings, as the webhook's aggregated API reviews tokens
// (k8s.io/apiserver's delegating authentication defaults): an answer is
// kept for reviewTTL, keyed by a keyed hash of the token, never the token.
const (
	reviewTTL     = 10 * time.Second
	reviewTimeout = 10 * time.Second
)

// NewAdmission admits the ServiceAccount serviceAccount of namespace, with
// tokens for audience, reviewed through client.
func NewAdmission(client authenticationv1client.AuthenticationV1Interface, audience, namespace, serviceAccount string) (*Admission, error) {
	if audience == "" || namespace == "" || serviceAccount == "" {
		return nil, errors.New("peer admission needs an audience, a namespace and a ServiceAccount")
	}
	review, err := webhooktoken.NewFromInterface(client, nil, *webhooktoken.DefaultRetryBackoff(), reviewTimeout,
		webhooktoken.AuthenticatorMetrics{
			RecordRequestTotal:   func(context.Context, string) {},
			RecordRequestLatency: func(context.Context, string, float64) {},
		})
	if err != nil {
		return nil, fmt.Errorf("peer admission: %w", err)
	}
	return &Admission{audience: audience, user: ServiceAccountUser(namespace, serviceAccount),
		tokens: tokencache.New(review, false, reviewTTL, reviewTTL)}, nil
}

// ServiceAccountUser is the name kube-apiserver gives a ServiceAccount.
func ServiceAccountUser(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// User is the one caller admitted.
func (a *Admission) User() string { return a.user }

// Unauthenticated names a caller without a token that passes review.
const Unauthenticated = "unauthenticated"

// refusal is why a request is refused: the status to answer, the caller as
// far as it is known, and why, for the log. None of it holds the token.
type refusal struct {
	status int
	caller string
	reason string
}

// admit returns nil for the admitted caller, or why r is refused.
func (a *Admission) admit(r *http.Request) *refusal {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token = strings.TrimSpace(token); !ok || token == "" {
		return &refusal{http.StatusUnauthorized, Unauthenticated, "no bearer token"}
	}
	ctx := authenticator.WithAudiences(r.Context(), authenticator.Audiences{a.audience})
	resp, ok, err := a.tokens.AuthenticateToken(ctx, token)
	switch {
	case err != nil:
		// kube-apiserver refused the token with a reason, or could not be
		// asked: either way the caller is not known.
		return &refusal{http.StatusUnauthorized, Unauthenticated, "kube-apiserver's TokenReview did not authenticate the token"}
	case !ok:
		return &refusal{http.StatusUnauthorized, Unauthenticated, "the token is not valid for the peers' audience " + a.audience}
	case resp.User.GetName() != a.user:
		return &refusal{http.StatusForbidden, resp.User.GetName(), "only " + a.user + " may send requests to the peer port"}
	}
	return nil
}
