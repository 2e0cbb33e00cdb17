package solver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/solver"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	"github.com/certbridge/certbridge/test/testutil"
)

const (
	rrsaProvider = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-test"
	webhookUser  = "system:serviceaccount:certbridge:certbridge-webhook"
)

// registerRRSA registers the test kube-apiserver's service-account issuer
// in the simulator as the cluster's RRSA OIDC provider, as enabling RRSA
// does: its issuer URL from OIDC discovery, its keys from its JWKS.
func registerRRSA(t *testing.T, sim *alisim.Server) {
	t.Helper()
	ctx := context.Background()
	rc := adminClient(t).Discovery().RESTClient()
	raw, err := rc.Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var discovery struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(raw, &discovery); err != nil || discovery.Issuer == "" {
		t.Fatalf("OIDC discovery: %v: %s", err, raw)
	}
	jwks, err := rc.Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := alisim.ParseJWKS(jwks)
	if err != nil {
		t.Fatal(err)
	}
	sim.AddOIDCProvider(alisim.OIDCProvider{ARN: rrsaProvider, IssuerURL: discovery.Issuer, ClientIDs: []string{alibaba.DefaultAudience}, Keys: keys})
}

// saEnv is an alidns solver running as the chart's webhook ServiceAccount
// would, whose tokens kube-apiserver issues are recorded to search for.
type saEnv struct {
	*aliEnv
	tokens *tokenLog
}

var jwt = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

type tokenLog struct {
	mu     sync.Mutex
	issued []string
}

func (l *tokenLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.issued...)
}

// wrap records the tokens of the TokenRequests cfg's client makes.
func (l *tokenLog) wrap(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(r)
			if err != nil || !strings.HasSuffix(r.URL.Path, "/token") || resp.StatusCode/100 != 2 {
				return resp, err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return nil, err
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			// The answer is protobuf or JSON; either holds the JWT as is.
			l.mu.Lock()
			l.issued = append(l.issued, jwt.FindAllString(string(body), -1)...)
			l.mu.Unlock()
			return resp, nil
		})
	})
	return c
}

func newSAEnv(t *testing.T) *saEnv {
	t.Helper()
	e := &saEnv{aliEnv: newAliEnv(t), tokens: &tokenLog{}}
	registerRRSA(t, e.sim)
	e.opts.OIDCProviderARN = rrsaProvider
	e.solver = e.webhook()
	return e
}

// webhook is a solver whose Kubernetes identity is the webhook's
// ServiceAccount, with no RBAC but what the test grants.
func (e *saEnv) webhook() *solver.Solver {
	e.t.Helper()
	user, err := kubeEnv(e.t).AddUser(envtest.User{Name: webhookUser}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	s := solver.NewAliDNS(solver.Options{Log: e.logs.logger(), Timeout: 10 * time.Second}, e.opts)
	if err := s.Initialize(e.tokens.wrap(user.Config()), nil); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *saEnv) serviceAccount(name string) {
	e.t.Helper()
	_, err := adminClient(e.t).CoreV1().ServiceAccounts(e.ns).Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
}

// grant applies the manifest a TokenForbidden message gives, object by
// object, as kubectl apply would.
func (e *saEnv) grant(manifest string) {
	e.t.Helper()
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal([]byte(manifest), &list); err != nil || len(list.Items) != 2 {
		e.t.Fatalf("the manifest is not a List of two objects: %v\n%s", err, manifest)
	}
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	if err := json.Unmarshal(list.Items[0], &role); err != nil {
		e.t.Fatal(err)
	}
	if err := json.Unmarshal(list.Items[1], &binding); err != nil {
		e.t.Fatal(err)
	}
	rbac := adminClient(e.t).RbacV1()
	if _, err := rbac.Roles(role.Namespace).Create(context.Background(), &role, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := rbac.RoleBindings(binding.Namespace).Create(context.Background(), &binding, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	// kube-apiserver's authorizer sees a new binding a moment later.
	testutil.Eventually(e.t, 10*time.Second, "the RoleBinding in effect", func() (bool, string) {
		sar, err := adminClient(e.t).AuthorizationV1().SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: webhookUser, ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: role.Namespace, Name: role.Rules[0].ResourceNames[0]}}},
			metav1.CreateOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
		return sar.Status.Allowed, sar.Status.Reason
	})
}

func (e *saEnv) role(arn string, subjects ...string) {
	e.sim.AddRole(alisim.Role{ARN: arn, Policy: alisim.Policy{Actions: []string{"alidns:*"}, Resources: []string{"example.com"}},
		TrustedOIDCProvider: rrsaProvider, OIDCSubjects: subjects})
}

func saConfig(name, role string) map[string]any {
	return map[string]any{"serviceAccountRef": map[string]any{"name": name}, "roleArn": role}
}

func (e *saEnv) assertNoToken(err error) {
	e.t.Helper()
	for _, tok := range e.tokens.all() {
		assertNoSecret(e.t, tok, err, e.logs)
	}
}

// serviceAccountRef: the webhook requests a token of the ServiceAccount
// the Issuer names, in the challenge's namespace, from the real
// kube-apiserver, and exchanges it for the role. It may only where the
// namespace's owner let it; the message of a refusal holds the manifest
// that lets it, and applying that manifest is the whole fix.
func TestAliDNS_ServiceAccountRef(t *testing.T) {
	e := newSAEnv(t)
	e.serviceAccount("dns")
	e.role(roleARN, "system:serviceaccount:"+e.ns+":dns")
	cfg := saConfig("dns", roleARN)
	key := acmeKey()

	err := e.present(cfg, key)
	grant := alibaba.TokenGrant(e.ns, "dns", webhookUser)
	assertMessage(t, err, `alidns: serviceAccountRef: the webhook (Kubernetes user "`+webhookUser+`") may not request tokens for ServiceAccount "dns" in namespace "`+e.ns+`": kube-apiserver refused the TokenRequest (RBAC); `+
		"serviceAccountRef names a ServiceAccount of the issuer's own namespace (for a cluster issuer, of the cluster resource namespace), and its tokens are requested only where that namespace allows it: "+
		"to let this issuer act as "+e.ns+"/dns, apply in namespace \""+e.ns+"\": "+grant)
	if n := e.sim.Calls()["AssumeRoleWithOIDC"] + e.sim.TotalDNSCalls(); n != 0 {
		t.Errorf("a refused TokenRequest must reach no Alibaba Cloud API: %v", e.sim.Calls())
	}

	e.grant(grant)
	if err := e.present(cfg, key); err != nil {
		t.Fatalf("after the manifest was applied: %v", err)
	}
	if v := e.values(); len(v) != 1 || v[0] != key {
		t.Fatalf("want the key at _acme-challenge.example.com, got %v", v)
	}
	if got := e.sim.OIDCSessions(); len(got) != 1 || got[0] != (alisim.OIDCSession{Role: roleARN, Subject: "system:serviceaccount:" + e.ns + ":dns"}) {
		t.Errorf("want one session of %s for the ServiceAccount, got %+v", roleARN, got)
	}
	if err := e.cleanUp(cfg, key); err != nil {
		t.Fatal(err)
	}
	if v := e.values(); len(v) != 0 {
		t.Fatalf("left behind: %v", v)
	}
	if n := e.sim.Calls()["AssumeRoleWithOIDC"]; n != 1 {
		t.Errorf("Present and CleanUp share the session: %d AssumeRoleWithOIDC", n)
	}
	if len(e.tokens.all()) != 1 {
		t.Errorf("want one token requested, got %d", len(e.tokens.all()))
	}
	e.assertNoToken(err)
}

// Each way a ServiceAccount's role assumption fails ends in one message
// that says what to change; none holds a token.
func TestAliDNS_ServiceAccountRefFailures(t *testing.T) {
	const other = "acs:ram::1234567890123456:role/someone-else"
	cases := []struct {
		name  string
		setup func(e *saEnv) map[string]any
		want  []string
	}{
		{
			name: "the role's trust policy admits another ServiceAccount",
			setup: func(e *saEnv) map[string]any {
				e.serviceAccount("dns")
				e.grant(alibaba.TokenGrant(e.ns, "dns", webhookUser))
				e.role(other, "system:serviceaccount:"+e.ns+":someone-else")
				return saConfig("dns", other)
			},
			want: []string{"alidns: serviceAccountRef: role " + other + " does not admit ServiceAccount ", "/dns (AssumeRoleWithOIDC answered AuthenticationFail.NoPermission: There is no permission)",
				"edit the role so that its trust policy lets the OIDC provider " + rrsaProvider + " assume it (sts:AssumeRole) under the conditions oidc:aud = \"sts.aliyuncs.com\" and oidc:sub = \"system:serviceaccount:"},
		},
		{
			name: "the ServiceAccount does not exist",
			setup: func(e *saEnv) map[string]any {
				e.grant(alibaba.TokenGrant(e.ns, "dns", webhookUser))
				e.role(roleARN)
				return saConfig("dns", roleARN)
			},
			want: []string{`alidns: serviceAccountRef: there is no ServiceAccount "dns" in namespace "`, "create ", "/dns, or set serviceAccountRef.name"},
		},
		{
			name: "no OIDC provider given to the webhook",
			setup: func(e *saEnv) map[string]any {
				e.opts.OIDCProviderARN = ""
				e.solver = e.webhook()
				e.serviceAccount("dns")
				e.grant(alibaba.TokenGrant(e.ns, "dns", webhookUser))
				return saConfig("dns", roleARN)
			},
			want: []string{"alidns: serviceAccountRef: the webhook was not given the cluster's RRSA OIDC provider",
				"set the chart value alibaba.oidcProviderARN (--alibaba-oidc-provider-arn)"},
		},
		{
			name: "an audience the OIDC provider does not accept",
			setup: func(e *saEnv) map[string]any {
				e.serviceAccount("dns")
				e.grant(alibaba.TokenGrant(e.ns, "dns", webhookUser))
				e.role(roleARN, "system:serviceaccount:"+e.ns+":dns")
				cfg := saConfig("dns", roleARN)
				cfg["serviceAccountRef"].(map[string]any)["audience"] = "https://kubernetes.default.svc"
				return cfg
			},
			want: []string{"STS refused the token of ServiceAccount ", "AuthenticationFail.OIDCToken.AudienceNotMatch: Invalid audience.",
				`accept the audience "https://kubernetes.default.svc" (serviceAccountRef.audience)`},
		},
		{
			name: "no such role",
			setup: func(e *saEnv) map[string]any {
				e.serviceAccount("dns")
				e.grant(alibaba.TokenGrant(e.ns, "dns", webhookUser))
				return saConfig("dns", roleARN)
			},
			want: []string{"there is no RAM role " + roleARN + " (EntityNotExist.Role", "set roleArn to an existing role"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newSAEnv(t)
			err := e.present(tc.setup(e), acmeKey())
			assertMessage(t, err, tc.want...)
			e.assertNoToken(err)
			if n := e.sim.TotalDNSCalls(); n != 0 {
				t.Errorf("no DNS call without the role's credentials: %v", e.sim.Calls())
			}
		})
	}
	t.Run("CleanUp for a ServiceAccount that does not exist is skipped", func(t *testing.T) {
		e := newSAEnv(t)
		e.grant(alibaba.TokenGrant(e.ns, "gone", webhookUser))
		ch := e.request(saConfig("gone", roleARN), acmeKey(), false)
		ch.Action = whapi.ChallengeActionCleanUp
		if err := e.solver.CleanUp(ch); err != nil {
			t.Fatalf("nothing can have been written for it: %v", err)
		}
	})
}

func TestAliDNS_ServiceAccountRefConfig(t *testing.T) {
	cases := []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"without roleArn", map[string]any{"serviceAccountRef": map[string]any{"name": "dns"}}, "roleArn: Required value: serviceAccountRef's tokens are exchanged for a RAM role"},
		{"with an AccessKey", map[string]any{"serviceAccountRef": map[string]any{"name": "dns"}, "roleArn": roleARN,
			"accessKeyIdSecretRef": map[string]any{"name": "a", "key": "i"}, "accessKeySecretSecretRef": map[string]any{"name": "a", "key": "s"}},
			"accessKeyIdSecretRef: Forbidden: serviceAccountRef is the credential: an AccessKey is not used with it"},
		{"empty name", map[string]any{"serviceAccountRef": map[string]any{"name": ""}, "roleArn": roleARN}, "serviceAccountRef.name: Required value"},
		{"not a name", map[string]any{"serviceAccountRef": map[string]any{"name": "Tenant_A"}, "roleArn": roleARN}, `serviceAccountRef.name: Invalid value: "Tenant_A"`},
		{"a namespace of its choosing", map[string]any{"serviceAccountRef": map[string]any{"name": "dns", "namespace": "tenant-a"}, "roleArn": roleARN},
			`unknown field "serviceAccountRef.namespace" in serviceAccountRef; valid fields are: audience, name`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := solver.ParseAliDNSConfig(jsonConfig(t, tc.cfg))
			assertMessage(t, err, tc.want)
		})
	}
}

func jsonConfig(t *testing.T, cfg map[string]any) *apiextensionsv1.JSON {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &apiextensionsv1.JSON{Raw: b}
}
