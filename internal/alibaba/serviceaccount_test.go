package alibaba_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/certbridge/certbridge/internal/alibaba"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
)

func TestMain(m *testing.M) {
	// The SDK's STS calls are hard-wired to https through a clone of
	// http.DefaultTransport: trust the simulator's certificate there.
	sim := alisim.Start()
	http.DefaultTransport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: sim.STSCertPool()}
	sim.Close()
	os.Exit(m.Run())
}

const (
	providerARN = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1"
	roleA       = "acs:ram::1234567890123456:role/tenant-a-dns"
)

// issuedTokens is a kube-apiserver's TokenRequest as far as the exchange
// sees it: tokens of the simulator's OIDC issuer, with a refusal to give.
type issuedTokens struct {
	issuer *alisim.OIDCIssuer
	err    error
	n      atomic.Int64
	mu     sync.Mutex
	issued []string
}

func (i *issuedTokens) RequestToken(_ context.Context, namespace, name, audience string, ttl time.Duration) (alibaba.Token, error) {
	i.n.Add(1)
	if i.err != nil {
		return alibaba.Token{}, i.err
	}
	v := i.issuer.Token("system:serviceaccount:"+namespace+":"+name, []string{audience}, ttl)
	i.mu.Lock()
	i.issued = append(i.issued, v)
	i.mu.Unlock()
	return alibaba.Token{Value: v, Expires: time.Now().Add(ttl)}, nil
}

type saEnv struct {
	sim    *alisim.Server
	tokens *issuedTokens
	opts   alibaba.Options
}

func newSAEnv(t *testing.T) *saEnv {
	t.Helper()
	sim := alisim.Start()
	t.Cleanup(sim.Close)
	sim.AddDomain("tenant-a.example", alisim.FreeEdition)
	issuer := alisim.NewOIDCIssuer("https://kubernetes.default.svc")
	sim.AddOIDCProvider(issuer.Provider(providerARN, alibaba.DefaultAudience))
	sim.AddRole(alisim.Role{ARN: roleA, Policy: alisim.AllowAll, TrustedOIDCProvider: providerARN,
		OIDCSubjects: []string{"system:serviceaccount:tenant-a:dns"}})
	return &saEnv{sim: sim, tokens: &issuedTokens{issuer: issuer}, opts: alibaba.Options{
		DNS: alibaba.Endpoint{Scheme: "HTTP", Host: sim.Endpoint()}, STS: alibaba.Endpoint{Scheme: "HTTPS", Host: sim.STSEndpoint()},
		OIDCProviderARN: providerARN}}
}

func (e *saEnv) credential(namespace, name, role string) alibaba.Credential {
	return alibaba.Credential{RoleARN: role, ServiceAccount: &alibaba.ServiceAccount{Namespace: namespace, Name: name, Tokens: e.tokens}}
}

// A ServiceAccount's session is kept per (namespace, ServiceAccount, role):
// many calls cost one TokenRequest and one AssumeRoleWithOIDC.
func TestServiceAccountSessionIsCached(t *testing.T) {
	e := newSAEnv(t)
	accounts := alibaba.NewDNSAccounts(e.opts)
	cred := e.credential("tenant-a", "dns", roleA)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			acct, err := accounts.For(cred, "")
			if err == nil {
				_, err = acct.Domains.Resolve(context.Background(), alibaba.DomainQuery{Name: "_acme-challenge.www.tenant-a.example"})
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, calls := e.tokens.n.Load(), e.sim.Calls()["AssumeRoleWithOIDC"]; n != 1 || calls != 1 {
		t.Errorf("%d TokenRequests and %d AssumeRoleWithOIDC for one session, want 1 and 1", n, calls)
	}
	if got := e.sim.OIDCSessions(); len(got) != 1 || got[0] != (alisim.OIDCSession{Role: roleA, Subject: "system:serviceaccount:tenant-a:dns"}) {
		t.Errorf("sessions %+v", got)
	}
	if other := e.credential("tenant-a", "dns-other", roleA); other.Hash() == cred.Hash() {
		t.Errorf("two ServiceAccounts share a cache key")
	}
}

// Each failure is classified once, for the callers to word: a TokenRequest
// refused by RBAC (with who was refused), a ServiceAccount that does not
// exist, no OIDC provider configured, and STS's answers. No error holds a
// token.
func TestServiceAccountFailures(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "serviceaccounts/token"}, "dns",
		errorString(`User "system:serviceaccount:certbridge:certbridge-webhook" cannot create resource "serviceaccounts/token" in API group "" in the namespace "tenant-b"`))
	cases := []struct {
		name      string
		namespace string
		role      string
		tokenErr  error
		noARN     bool
		action    string
		reason    alibaba.Reason
		quote     string
		requester string
	}{
		{name: "TokenRequest forbidden", namespace: "tenant-b", role: roleA, tokenErr: forbidden, action: alibaba.ActionTokenRequest,
			reason: alibaba.TokenForbidden, quote: `Forbidden: serviceaccounts/token "dns" is forbidden: User "system:serviceaccount:certbridge:certbridge-webhook" cannot create`,
			requester: "system:serviceaccount:certbridge:certbridge-webhook"},
		{name: "ServiceAccount not found", namespace: "tenant-a", role: roleA, tokenErr: apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccounts"}, "dns"),
			action: alibaba.ActionTokenRequest, reason: alibaba.ServiceAccountNotFound, quote: `NotFound: serviceaccounts "dns" not found`},
		{name: "no OIDC provider configured", namespace: "tenant-a", role: roleA, noARN: true, action: alibaba.ActionAssumeRoleWithOIDC,
			reason: alibaba.OIDCProviderUnset, quote: "no RRSA OIDC provider ARN is configured"},
		{name: "trust policy does not admit the subject", namespace: "tenant-b", role: roleA, action: alibaba.ActionAssumeRoleWithOIDC,
			reason: alibaba.RoleNotTrusted, quote: "AuthenticationFail.NoPermission: There is no permission"},
		{name: "no such role", namespace: "tenant-a", role: "acs:ram::1234567890123456:role/none", action: alibaba.ActionAssumeRoleWithOIDC,
			reason: alibaba.RoleNotFound, quote: "EntityNotExist.Role"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newSAEnv(t)
			e.tokens.err = tc.tokenErr
			if tc.noARN {
				e.opts.OIDCProviderARN = ""
			}
			acct, err := alibaba.NewDNSAccounts(e.opts).For(e.credential(tc.namespace, "dns", tc.role), "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = acct.Client.ListDomains(context.Background(), 1)
			ae, ok := alibaba.As(err)
			if !ok {
				t.Fatalf("want an *alibaba.Error, got %v", err)
			}
			if ae.Action != tc.action || ae.Reason != tc.reason || !strings.Contains(ae.Quote(), tc.quote) || ae.Requester != tc.requester {
				t.Errorf("got action %s reason %s quote %q requester %q; want %s %s %q %q", ae.Action, ae.Reason, ae.Quote(), ae.Requester,
					tc.action, tc.reason, tc.quote, tc.requester)
			}
			if n := e.sim.TotalDNSCalls(); n != 0 {
				t.Errorf("%d DNS calls without credentials", n)
			}
			for _, tok := range e.tokens.issued {
				if strings.Contains(err.Error(), tok) || strings.Contains(ae.Quote(), tok) {
					t.Errorf("the error holds the token")
				}
			}
		})
	}
	t.Run("token STS refuses is not reused", func(t *testing.T) {
		e := newSAEnv(t)
		other := alisim.NewOIDCIssuer("https://kubernetes.default.svc") // a key RAM does not know
		e.tokens.issuer = other
		acct, err := alibaba.NewDNSAccounts(e.opts).For(e.credential("tenant-a", "dns", roleA), "")
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			_, err = acct.Client.ListDomains(context.Background(), 1)
			if !alibaba.Is(err, alibaba.OIDCTokenRejected) || !strings.Contains(err.Error(), "AuthenticationFail.OIDCToken.InvalidSignature") {
				t.Fatalf("want OIDCTokenRejected, got %v", err)
			}
		}
		if n := e.tokens.n.Load(); n != 2 {
			t.Errorf("a refused token must not be offered again: %d TokenRequests for 2 calls", n)
		}
	})
}

// The fix for a refused TokenRequest is one Role and one RoleBinding, for
// that ServiceAccount's name only, bound to whoever was refused.
func TestTokenGrant(t *testing.T) {
	cases := []struct{ name, requester, want string }{
		{"the webhook's ServiceAccount", "system:serviceaccount:certbridge:certbridge-webhook",
			`{"apiVersion":"v1","items":[{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"certbridge-token-dns","namespace":"tenant-a"},` +
				`"rules":[{"apiGroups":[""],"resourceNames":["dns"],"resources":["serviceaccounts/token"],"verbs":["create"]}]},` +
				`{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"certbridge-token-dns-certbridge-webhook","namespace":"tenant-a"},` +
				`"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"certbridge-token-dns"},` +
				`"subjects":[{"kind":"ServiceAccount","name":"certbridge-webhook","namespace":"certbridge"}]}],"kind":"List"}`},
		{"a user", "jane@example.com", `"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"jane@example.com"}]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := alibaba.TokenGrant("tenant-a", "dns", tc.requester); !strings.Contains(got, tc.want) {
				t.Errorf("TokenGrant = %s\nwant it to hold %s", got, tc.want)
			}
		})
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
