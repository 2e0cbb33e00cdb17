package solver_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/dnstxt"
	"github.com/certbridge/certbridge/internal/ratelimit"
	"github.com/certbridge/certbridge/solver"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

const (
	fqdn = "_acme-challenge.example.com."
	zone = "example.com."
)

// cfEnv is a Cloudflare simulator, a namespace in a real kube-apiserver and a
// solver reading Secrets from it, with everything it logs captured.
type cfEnv struct {
	t         *testing.T
	sim       *cfsim.Server
	ns        string
	logs      *logBuffer
	kubeCalls atomic.Int64
	opts      cloudflare.Options
	solver    *solver.Solver
}

func newCFEnv(t *testing.T) *cfEnv {
	t.Helper()
	sim := cfsim.Start()
	t.Cleanup(sim.Close)
	sim.AddZone("example.com")
	e := &cfEnv{t: t, sim: sim, ns: namespace(t, "cf"), logs: &logBuffer{}}
	e.opts = cloudflare.Options{BaseURL: sim.URL(), MaxRetries: 2}
	e.solver = e.newSolver()
	return e
}

// newSolver is another webhook process: a restart, or another replica.
func (e *cfEnv) newSolver() *solver.Solver {
	e.t.Helper()
	s := solver.NewCloudflare(solver.Options{Log: e.logs.logger(), Timeout: 10 * time.Second}, e.opts)
	if err := s.Initialize(countingConfig(kubeEnv(e.t).Config, &e.kubeCalls), nil); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// token registers an API token with the simulator, stores it in a Secret
// cf-token/api-token in the test namespace, and returns it with the config
// that references it.
func (e *cfEnv) token(t cfsim.Token) (string, map[string]any) {
	e.t.Helper()
	if t.Value == "" {
		t.Value = randomToken()
	}
	e.sim.AddToken(t)
	createSecret(e.t, e.ns, "cf-token", map[string]string{"api-token": t.Value})
	return t.Value, map[string]any{"apiTokenSecretRef": map[string]any{"name": "cf-token", "key": "api-token"}}
}

func fullToken() cfsim.Token {
	return cfsim.Token{Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}}
}

func (e *cfEnv) present(config any, key string) error {
	return e.solver.Present(challenge(e.t, e.ns, fqdn, zone, key, config))
}

func (e *cfEnv) cleanUp(config any, key string) error {
	ch := challenge(e.t, e.ns, fqdn, zone, key, config)
	ch.Action = whapi.ChallengeActionCleanUp
	return e.solver.CleanUp(ch)
}

// values returns the TXT values stored at name.
func (e *cfEnv) values(name string) []string {
	var out []string
	for _, r := range e.sim.Records(name) {
		out = append(out, dnstxt.Value(r.Content))
	}
	return out
}

func TestCloudflare_PresentAndCleanUp(t *testing.T) {
	e := newCFEnv(t)
	_, cfg := e.token(fullToken())
	key := acmeKey()
	if err := e.present(cfg, key); err != nil {
		t.Fatal(err)
	}
	recs := e.sim.Records("_acme-challenge.example.com")
	if len(recs) != 1 || recs[0].Type != "TXT" || dnstxt.Value(recs[0].Content) != key || recs[0].TTL != solver.DefaultCloudflareTTL {
		t.Fatalf("want one TXT record holding the key with TTL %d, got %+v", solver.DefaultCloudflareTTL, recs)
	}
	if err := e.cleanUp(cfg, key); err != nil {
		t.Fatal(err)
	}
	if v := e.values("_acme-challenge.example.com"); len(v) != 0 {
		t.Fatalf("record left behind: %v", v)
	}
}

func TestCloudflare_APICallCounts(t *testing.T) {
	e := newCFEnv(t)
	_, cfg := e.token(fullToken())
	k1, k2, k3 := acmeKey(), acmeKey(), acmeKey()
	step := func(name string, max int, do func() error) {
		t.Helper()
		e.sim.ResetCalls()
		if err := do(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := e.sim.TotalCalls(); n > max {
			t.Errorf("%s: %d API calls %v, want at most %d", name, n, e.sim.Calls(), max)
		}
	}
	step("first Present (zone unknown)", 2, func() error { return e.present(cfg, k1) })
	step("Present with the zone cached", 1, func() error { return e.present(cfg, k2) })
	step("CleanUp of a record this process created", 1, func() error { return e.cleanUp(cfg, k1) })

	// Another replica that knows the zone, but did not create the record.
	other := e.newSolver()
	warm := func(s *solver.Solver, key string) error {
		return s.Present(challenge(t, e.ns, fqdn, zone, key, cfg))
	}
	if err := warm(other, k3); err != nil {
		t.Fatal(err)
	}
	step("CleanUp by a replica that did not create the record", 2, func() error {
		ch := challenge(t, e.ns, fqdn, zone, k2, cfg)
		return other.CleanUp(ch)
	})
	if v := e.values("_acme-challenge.example.com"); len(v) != 1 || v[0] != k3 {
		t.Fatalf("want only %s left, got %v", k3, v)
	}
}

func TestCloudflare_F1_SecretInAnotherNamespace(t *testing.T) {
	e := newCFEnv(t)
	other := namespace(t, "istio-system")
	token := randomToken()
	e.sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	createSecret(t, other, "cloudflare-api-token", map[string]string{"api-token": token})
	cfg := map[string]any{"apiTokenSecretRef": map[string]any{"name": "cloudflare-api-token", "key": "api-token"}}

	err := e.present(cfg, acmeKey())
	assertMessage(t, err, `cloudflare: `, `Secret "cloudflare-api-token"`, fmt.Sprintf(`not found in namespace %q`, e.ns),
		"an Issuer's own namespace", "ClusterIssuer", "--cluster-resource-namespace")
	assertNoSecret(t, token, err, e.logs)
	if e.sim.TotalCalls() != 0 {
		t.Errorf("no Cloudflare call expected without a credential, got %v", e.sim.Calls())
	}
}

func TestCloudflare_F2_SecretKeyMissing(t *testing.T) {
	e := newCFEnv(t)
	token := randomToken()
	createSecret(t, e.ns, "cf-token", map[string]string{"apiToken": token, "email": "ops@example.com"})
	err := e.present(map[string]any{"apiTokenSecretRef": map[string]any{"name": "cf-token", "key": "api-token"}}, acmeKey())
	assertMessage(t, err, `has no key "api-token"`, "apiTokenSecretRef.key", "it has the keys apiToken, email")
	assertNoSecret(t, token, err, e.logs)
}

func TestCloudflare_F3_SecretValueWithWhitespace(t *testing.T) {
	e := newCFEnv(t)
	token := randomToken()
	e.sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	createSecret(t, e.ns, "cf-token", map[string]string{"api-token": "  " + token + "\n"})
	cfg := map[string]any{"apiTokenSecretRef": map[string]any{"name": "cf-token", "key": "api-token"}}
	k1, k2 := acmeKey(), acmeKey()
	if err := e.present(cfg, k1); err != nil {
		t.Fatalf("a padded token must work: %v", err)
	}
	if err := e.present(cfg, k2); err != nil {
		t.Fatal(err)
	}
	if n := e.logs.count("leading or trailing whitespace"); n != 1 {
		t.Errorf("want the whitespace warning logged once, got %d times:\n%s", n, e.logs)
	}
	if !strings.Contains(e.logs.String(), `"secret"="cf-token"`) || !strings.Contains(e.logs.String(), `"key"="api-token"`) {
		t.Errorf("the warning should name the Secret and key:\n%s", e.logs)
	}
	assertNoSecret(t, token, nil, e.logs)
}

func TestCloudflare_F4_GlobalAPIKeyInTokenField(t *testing.T) {
	e := newCFEnv(t)
	key := randomGlobalKey()
	e.sim.AddGlobalKey("ops@example.com", key)
	createSecret(t, e.ns, "cf-token", map[string]string{"api-token": key})
	err := e.present(map[string]any{"apiTokenSecretRef": map[string]any{"name": "cf-token", "key": "api-token"}}, acmeKey())
	assertMessage(t, err, "looks like a Global API Key", "apiKeySecretRef", "email", "create an API token",
		fmt.Sprintf("Secret %s/cf-token", e.ns), "6003", "6111")
	assertNoSecret(t, key, err, e.logs)
}

func TestCloudflare_F5_TokenWithoutZoneRead(t *testing.T) {
	cases := []struct {
		name  string
		token cfsim.Token
		fault *cfsim.Fault
		want  []string
	}{
		{
			name:  "token reads no zone at all",
			token: cfsim.Token{Permissions: []cfsim.Permission{cfsim.DNSEdit}},
			want:  []string{"no zone found for example.com", "cannot read any zone", "Zone → Zone → Read"},
		},
		{
			name:  "token scoped to another zone",
			token: cfsim.Token{Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}, Zones: []string{"example.org"}},
			want:  []string{"no zone found for example.com", "lacks Zone → Zone → Read"},
		},
		{
			name:  "zone list answers 403/10000",
			token: cfsim.Token{Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}},
			fault: &cfsim.Fault{Route: "GET /zones", Status: http.StatusForbidden, Code: 10000, Message: "Authentication error"},
			want:  []string{"looking up zones", "may not list zones", "Zone → Zone → Read", "10000"},
		},
		{
			name:  "zone list answers code 0 requires permission",
			token: cfsim.Token{Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}},
			fault: &cfsim.Fault{Route: "GET /zones", Status: http.StatusForbidden, Code: 0,
				Message: "requires permission \"com.cloudflare.api.account.zone.list\" to list zones"},
			want: []string{"may not list zones", "Zone → Zone → Read"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCFEnv(t)
			e.sim.AddZone("example.org")
			token, cfg := e.token(tc.token)
			if tc.fault != nil {
				e.sim.InjectFault(*tc.fault)
			}
			err := e.present(cfg, acmeKey())
			assertMessage(t, err, tc.want...)
			assertNoSecret(t, token, err, e.logs)
		})
	}
}

func TestCloudflare_F6_TokenWithoutDNSEdit(t *testing.T) {
	e := newCFEnv(t)
	token, cfg := e.token(cfsim.Token{Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSRead}})
	err := e.present(cfg, acmeKey())
	assertMessage(t, err, "can see zone example.com but cannot edit its DNS records", "Zone → DNS → Edit",
		fmt.Sprintf("Secret %s/cf-token", e.ns), "10000")
	assertNoSecret(t, token, err, e.logs)
	if n := len(e.sim.AllRecords()); n != 0 {
		t.Errorf("nothing may be created, got %d records", n)
	}
}

func TestCloudflare_F7_CredentialRejected(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(e *cfEnv) (secret string, cfg map[string]any)
		quotes []string
	}{
		{
			name: "revoked or mistyped token",
			setup: func(e *cfEnv) (string, map[string]any) {
				token := randomToken() // well-formed, but unknown to Cloudflare
				createSecret(e.t, e.ns, "cf-token", map[string]string{"api-token": token})
				return token, map[string]any{"apiTokenSecretRef": map[string]any{"name": "cf-token", "key": "api-token"}}
			},
			quotes: []string{"9109", "Invalid access token"},
		},
		{
			name: "expired token",
			setup: func(e *cfEnv) (string, map[string]any) {
				return e.token(cfsim.Token{Status: cfsim.TokenExpired, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
			},
			quotes: []string{"9109", "Invalid access token"},
		},
		{
			name: "wrong Global API Key",
			setup: func(e *cfEnv) (string, map[string]any) {
				e.sim.AddGlobalKey("ops@example.com", randomGlobalKey())
				wrong := randomGlobalKey()
				createSecret(e.t, e.ns, "cf-token", map[string]string{"api-token": wrong})
				return wrong, map[string]any{"apiKeySecretRef": map[string]any{"name": "cf-token", "key": "api-token"}, "email": "ops@example.com"}
			},
			quotes: []string{"9103", "Unknown X-Auth-Key or X-Auth-Email"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCFEnv(t)
			secret, cfg := tc.setup(e)
			err := e.present(cfg, acmeKey())
			want := append([]string{"Cloudflare rejected the credential", fmt.Sprintf(`Secret %s/cf-token key "api-token"`, e.ns)}, tc.quotes...)
			assertMessage(t, err, want...)
			assertNoSecret(t, secret, err, e.logs)
		})
	}
}

func TestCloudflare_F8_CredentialFieldsConflict(t *testing.T) {
	ref := map[string]any{"name": "cf", "key": "k"}
	cases := []struct {
		name   string
		config map[string]any
		want   []string
	}{
		{"both token and key", map[string]any{"apiTokenSecretRef": ref, "apiKeySecretRef": ref, "email": "a@b.c"},
			[]string{"apiKeySecretRef", "not both"}},
		{"neither", map[string]any{"zoneName": "example.com"},
			[]string{"apiTokenSecretRef", "Required value", "apiKeySecretRef"}},
		{"key without email", map[string]any{"apiKeySecretRef": ref},
			[]string{"email", "Required value"}},
		{"zoneName and zoneID", map[string]any{"apiTokenSecretRef": ref, "zoneName": "example.com", "zoneID": strings.Repeat("a", 32)},
			[]string{"zoneID", "not both"}},
		{"ttl out of range", map[string]any{"apiTokenSecretRef": ref, "ttl": 5},
			[]string{"ttl", "60–86400"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCFEnv(t)
			before := e.kubeCalls.Load()
			err := e.present(tc.config, acmeKey())
			assertMessage(t, err, append([]string{"cloudflare: invalid config"}, tc.want...)...)
			if e.kubeCalls.Load() != before || e.sim.TotalCalls() != 0 {
				t.Errorf("a config error must not call Kubernetes (%d calls) or Cloudflare (%v)", e.kubeCalls.Load()-before, e.sim.Calls())
			}
		})
	}
}

func TestCloudflare_F9_UnknownConfigField(t *testing.T) {
	cases := []struct {
		name   string
		config string
		want   []string
	}{
		{"typo in a field name", `{"apiTokenSecretref": {"name": "cf", "key": "k"}}`,
			[]string{`unknown field "apiTokenSecretref"`, `did you mean "apiTokenSecretRef"?`, "valid fields are: apiKeySecretRef, apiTokenSecretRef, email, ttl, zoneID, zoneName"}},
		{"a field of the alidns solver", `{"apiTokenSecretRef": {"name": "cf", "key": "k"}, "accessKeyIdSecretRef": {"name": "a", "key": "b"}}`,
			[]string{`unknown field "accessKeyIdSecretRef"`, "valid fields are"}},
		{"a namespace in a Secret reference", `{"apiTokenSecretRef": {"name": "cf", "key": "k", "namespace": "kube-system"}}`,
			[]string{`unknown field "apiTokenSecretRef.namespace"`, "in apiTokenSecretRef", "valid fields are: key, name"}},
		{"a wrong type", `{"apiTokenSecretRef": {"name": "cf", "key": "k"}, "ttl": "60"}`,
			[]string{"ttl", "whole number"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCFEnv(t)
			before := e.kubeCalls.Load()
			err := e.present(tc.config, acmeKey())
			assertMessage(t, err, tc.want...)
			if e.kubeCalls.Load() != before || e.sim.TotalCalls() != 0 {
				t.Errorf("a config error must change nothing: %d Kubernetes calls, Cloudflare %v", e.kubeCalls.Load()-before, e.sim.Calls())
			}
		})
	}
}

func TestCloudflare_F10_EmptySecretReference(t *testing.T) {
	cases := []struct {
		name   string
		config map[string]any
		want   string
	}{
		{"empty name", map[string]any{"apiTokenSecretRef": map[string]any{"name": "", "key": "api-token"}}, "apiTokenSecretRef.name: Required value"},
		{"empty key", map[string]any{"apiTokenSecretRef": map[string]any{"name": "cf-token", "key": ""}}, "apiTokenSecretRef.key: Required value"},
		{"missing key", map[string]any{"apiKeySecretRef": map[string]any{"name": "cf-key"}, "email": "a@b.c"}, "apiKeySecretRef.key: Required value"},
		{"name that is a path", map[string]any{"apiTokenSecretRef": map[string]any{"name": "../kube-system/x", "key": "k"}}, "apiTokenSecretRef.name: Invalid value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCFEnv(t)
			before := e.kubeCalls.Load()
			err := e.present(tc.config, acmeKey())
			assertMessage(t, err, tc.want)
			if n := e.kubeCalls.Load() - before; n != 0 {
				t.Errorf("no Kubernetes call may be made for an empty reference, got %d", n)
			}
		})
	}
}

func TestCloudflare_F11_ZoneNotInAccount(t *testing.T) {
	t.Run("name servers elsewhere", func(t *testing.T) {
		e := newCFEnv(t)
		token, cfg := e.token(fullToken())
		ch := challenge(t, e.ns, "_acme-challenge.www.example.net.", "example.net.", acmeKey(), cfg)
		err := e.solver.Present(ch)
		assertMessage(t, err, "no zone found for www.example.net, example.net", "none of these zones is in the Cloudflare account", "zoneName")
		assertNoSecret(t, token, err, e.logs)
	})
	t.Run("a name of many labels is summed up, not listed parent by parent", func(t *testing.T) {
		e := newCFEnv(t)
		token, cfg := e.token(fullToken())
		fqdn := "_acme-challenge." + strings.Repeat("a.", 100) + "example.net."
		err := e.solver.Present(challenge(t, e.ns, fqdn, "example.net.", acmeKey(), cfg))
		assertMessage(t, err, "no zone found for "+strings.Repeat("a.", 100)+"example.net, "+strings.Repeat("a.", 99)+"example.net, …, example.net (101 names)")
		if len(err.Error()) > 2000 {
			t.Errorf("a %d-byte error for a name of 102 labels", len(err.Error()))
		}
		assertNoSecret(t, token, err, e.logs)
	})
	t.Run("CNAME-delegated to a zone on another provider", func(t *testing.T) {
		e := newCFEnv(t)
		token, cfg := e.token(fullToken())
		cfg["zoneName"] = "acme-delegation.example.net"
		err := e.present(cfg, acmeKey())
		assertMessage(t, err, "no zone found for acme-delegation.example.net (from zoneName)", "none of these zones is in the Cloudflare account")
		assertNoSecret(t, token, err, e.logs)
	})
	t.Run("Global API Key", func(t *testing.T) {
		e := newCFEnv(t)
		key := randomGlobalKey()
		e.sim.AddGlobalKey("ops@example.com", key)
		createSecret(t, e.ns, "cf-key", map[string]string{"key": key})
		cfg := map[string]any{"apiKeySecretRef": map[string]any{"name": "cf-key", "key": "key"}, "email": "ops@example.com"}
		err := e.solver.Present(challenge(t, e.ns, "_acme-challenge.example.net.", "example.net.", acmeKey(), cfg))
		assertMessage(t, err, "no zone found for example.net", "ops@example.com")
		assertNoSecret(t, key, err, e.logs)
	})
}

func TestCloudflare_F12_SecretReadForbidden(t *testing.T) {
	e := newCFEnv(t)
	_, cfg := e.token(fullToken())
	const sa = "system:serviceaccount:certbridge:certbridge-webhook"
	user, err := kubeEnv(t).AddUser(envtest.User{Name: sa}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := solver.NewCloudflare(solver.Options{Log: e.logs.logger()}, e.opts)
	if err := s.Initialize(user.Config(), nil); err != nil {
		t.Fatal(err)
	}
	err = s.Present(challenge(t, e.ns, fqdn, zone, acmeKey(), cfg))
	assertMessage(t, err, sa, fmt.Sprintf("may not get Secrets in namespace %q", e.ns), solver.SecretAccessValue, "Role")

	// The fix the message names works: a Role granting get, bound to the account.
	ctx := context.Background()
	admin := adminClient(t)
	if _, err := admin.RbacV1().Roles(e.ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "certbridge-secrets"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().RoleBindings(e.ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "certbridge-secrets"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "certbridge-secrets"},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: sa}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = s.Present(challenge(t, e.ns, fqdn, zone, acmeKey(), cfg))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("after granting get on Secrets: %v", err)
	}
}

func TestCloudflare_F15_ApexAndWildcardValuesCoexist(t *testing.T) {
	e := newCFEnv(t)
	_, cfg := e.token(fullToken())
	apex, wildcard := acmeKey(), acmeKey()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, k := range []string{apex, wildcard} {
		wg.Go(func() { errs[i] = e.present(cfg, k) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("concurrent Presents at one name: %v, %v", errs[0], errs[1])
	}
	if v := e.values("_acme-challenge.example.com"); len(v) != 2 {
		t.Fatalf("want both values, got %v", v)
	}
	if err := e.cleanUp(cfg, wildcard); err != nil {
		t.Fatal(err)
	}
	if v := e.values("_acme-challenge.example.com"); len(v) != 1 || v[0] != apex {
		t.Fatalf("CleanUp of one value must keep the other: got %v", v)
	}
}

func TestCloudflare_F15_CleanUpMatchesCaseAndQuoting(t *testing.T) {
	e := newCFEnv(t)
	_, cfg := e.token(fullToken())
	// Records another client made: the same letters in another case (the
	// API's content filter would match it), and an unquoted copy of our value.
	key := "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde"
	other := e.newSolver()
	if err := other.Present(challenge(t, e.ns, fqdn, zone, strings.ToLower(key), cfg)); err != nil {
		t.Fatal(err)
	}
	if err := e.present(cfg, key); err != nil {
		t.Fatal(err)
	}
	if err := e.newSolver().CleanUp(challenge(t, e.ns, fqdn, zone, key, cfg)); err != nil {
		t.Fatal(err)
	}
	if v := e.values("_acme-challenge.example.com"); len(v) != 1 || v[0] != strings.ToLower(key) {
		t.Fatalf("only the exact value may be removed; left %v", v)
	}
}

func TestCloudflare_F16_IdempotentAcrossRestartsAndReplicas(t *testing.T) {
	cases := []struct {
		name    string
		cleanUp func(e *cfEnv) []*solver.Solver
	}{
		{"same process", func(e *cfEnv) []*solver.Solver { return []*solver.Solver{e.solver, e.solver} }},
		{"restarted between Present and CleanUp", func(e *cfEnv) []*solver.Solver { s := e.newSolver(); return []*solver.Solver{s, s} }},
		{"another replica serves CleanUp", func(e *cfEnv) []*solver.Solver { return []*solver.Solver{e.newSolver(), e.solver} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCFEnv(t)
			_, cfg := e.token(fullToken())
			key := acmeKey()
			for range 2 {
				if err := e.present(cfg, key); err != nil {
					t.Fatalf("Present: %v", err)
				}
			}
			if v := e.values("_acme-challenge.example.com"); len(v) != 1 {
				t.Fatalf("Present twice must leave one record, got %v", v)
			}
			for _, s := range tc.cleanUp(e) {
				ch := challenge(t, e.ns, fqdn, zone, key, cfg)
				ch.Action = whapi.ChallengeActionCleanUp
				if err := s.CleanUp(ch); err != nil {
					t.Fatalf("CleanUp: %v", err)
				}
			}
			if v := e.values("_acme-challenge.example.com"); len(v) != 0 {
				t.Fatalf("record left behind: %v", v)
			}
		})
	}
}

func TestCloudflare_F17_RateLimited(t *testing.T) {
	t.Run("many challenges stay within the provider's budget", func(t *testing.T) {
		e := newCFEnv(t)
		limit := cfsim.RateLimit{Limit: 20, Window: 2 * time.Second}
		e.sim.SetRateLimit(limit)
		e.opts.Limit = ratelimit.Limit{Limit: limit.Limit, Window: limit.Window}
		e.solver = e.newSolver()
		_, cfg := e.token(fullToken())
		// 30 challenges are 60 calls: three windows' worth.
		for _, err := range renewAll(30, func(k string) error { return e.present(cfg, k) }, func(k string) error { return e.cleanUp(cfg, k) }) {
			t.Error(err)
		}
		if left := e.sim.AllRecords(); len(left) != 0 {
			t.Errorf("%d records left behind", len(left))
		}
		if n := e.sim.Rejected(); n != 0 {
			t.Errorf("the client-side budget should keep every call under Cloudflare's limit; %d got 429", n)
		}
	})
	t.Run("429 waits for Retry-After", func(t *testing.T) {
		e := newCFEnv(t)
		_, cfg := e.token(fullToken())
		e.sim.InjectFault(rateLimited("1"))
		start := time.Now()
		if err := e.present(cfg, acmeKey()); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < time.Second {
			t.Errorf("the retry must wait for Retry-After (1s); it came after %v", waited)
		}
		if n := e.sim.Calls()[createRoute]; n != 2 {
			t.Errorf("want the create retried once, got %d calls", n)
		}
	})
	t.Run("Retry-After beyond the deadline fails at once", func(t *testing.T) {
		e := newCFEnv(t)
		token, cfg := e.token(fullToken())
		e.sim.InjectFault(rateLimited("300"))
		err := e.present(cfg, acmeKey())
		assertMessage(t, err, "rate limit", "971", "Retry-After", "cert-manager will retry")
		assertNoSecret(t, token, err, e.logs)
		if n := e.sim.Calls()[createRoute]; n != 1 {
			t.Errorf("a Retry-After past the deadline must not be waited out and retried; %d creates", n)
		}
		// The budget now holds further calls with this credential back too.
		err = e.present(cfg, acmeKey())
		assertMessage(t, err, "budget", "used up")
	})
}

const createRoute = "POST /zones/{zone_id}/dns_records"

// rateLimited is Cloudflare's 429 answer with a Retry-After in seconds.
func rateLimited(retryAfter string) cfsim.Fault {
	return cfsim.Fault{Route: createRoute, Status: http.StatusTooManyRequests, Code: 971,
		Message: "Please wait and consider throttling your request speed", Header: http.Header{"Retry-After": {retryAfter}}}
}

func TestCloudflare_ServerErrorsAreRetried(t *testing.T) {
	cases := []struct {
		name  string
		fault cfsim.Fault
	}{
		{"503", cfsim.Fault{Route: createRoute, Status: 503, Code: 10001, Message: "service unavailable"}},
		{"dropped connection", cfsim.Fault{Route: createRoute, Drop: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCFEnv(t)
			_, cfg := e.token(fullToken())
			e.sim.InjectFault(tc.fault)
			if err := e.present(cfg, acmeKey()); err != nil {
				t.Fatal(err)
			}
			if v := e.values("_acme-challenge.example.com"); len(v) != 1 {
				t.Fatalf("want one record after the retry, got %v", v)
			}
		})
	}
}

func TestCloudflare_ZoneResolution(t *testing.T) {
	cases := []struct {
		name         string
		zones        []string
		fqdn, zone   string
		extra        map[string]any
		wantZoneName string
	}{
		{"resolved zone", []string{"example.com"}, "_acme-challenge.www.example.com.", "example.com.", nil, "example.com"},
		{"cert-manager guessed a parent not in the account", []string{"dev.example.com"}, "_acme-challenge.app.dev.example.com.", "example.com.", nil, "dev.example.com"},
		{"resolved zone is not a Cloudflare zone", []string{"example.com"}, "_acme-challenge.www.example.com.", "www.example.com.", nil, "example.com"},
		{"zoneName override for a delegated name", []string{"example.com", "acme.example.org"}, "_acme-challenge.www.example.com.", "example.com.",
			map[string]any{"zoneName": "acme.example.org"}, "acme.example.org"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sim := cfsim.Start()
			t.Cleanup(sim.Close)
			ids := map[string]string{}
			for _, z := range tc.zones {
				ids[z] = sim.AddZone(z).ID
			}
			e := &cfEnv{t: t, sim: sim, ns: namespace(t, "zones"), logs: &logBuffer{}}
			e.opts = cloudflare.Options{BaseURL: sim.URL()}
			e.solver = e.newSolver()
			_, cfg := e.token(fullToken())
			for k, v := range tc.extra {
				cfg[k] = v
			}
			if err := e.solver.Present(challenge(t, e.ns, tc.fqdn, tc.zone, acmeKey(), cfg)); err != nil {
				t.Fatal(err)
			}
			recs := sim.AllRecords()
			if len(recs) != 1 || recs[0].ZoneID != ids[tc.wantZoneName] {
				t.Fatalf("want the record in zone %s, got %+v", tc.wantZoneName, recs)
			}
		})
	}
	t.Run("zoneID override makes no lookup", func(t *testing.T) {
		e := newCFEnv(t)
		_, cfg := e.token(fullToken())
		z := e.sim.AddZone("delegated.example.org")
		cfg["zoneID"] = z.ID
		if err := e.present(cfg, acmeKey()); err != nil {
			t.Fatal(err)
		}
		if calls := e.sim.Calls(); calls["GET /zones"] != 0 || calls[createRoute] != 1 {
			t.Fatalf("want a single create, got %v", calls)
		}
	})
}

// A zone deleted and added again gets a new ID: the cached one is dropped
// and looked up afresh, without failing the challenge.
func TestCloudflare_ZoneRecreated(t *testing.T) {
	e := newCFEnv(t)
	_, cfg := e.token(fullToken())
	if err := e.present(cfg, acmeKey()); err != nil {
		t.Fatal(err)
	}
	old := e.sim.AllRecords()[0].ZoneID
	e.sim.DeleteZone(old)
	fresh := e.sim.AddZone("example.com")
	key := acmeKey()
	if err := e.present(cfg, key); err != nil {
		t.Fatalf("Present after the zone was re-created: %v", err)
	}
	if recs := e.sim.AllRecords(); len(recs) != 1 || recs[0].ZoneID != fresh.ID {
		t.Fatalf("want the record in the new zone %s, got %+v", fresh.ID, recs)
	}
	if err := e.cleanUp(cfg, key); err != nil {
		t.Fatal(err)
	}
}

func TestCloudflare_MalformedRequestsDoNotPanic(t *testing.T) {
	e := newCFEnv(t)
	_, cfg := e.token(fullToken())
	cases := []struct {
		name string
		ch   *whapi.ChallengeRequest
		want string
	}{
		{"nil request", nil, "empty challenge request"},
		{"no namespace", func() *whapi.ChallengeRequest { c := challenge(t, "", fqdn, zone, acmeKey(), cfg); return c }(), "resourceNamespace missing"},
		{"no key", challenge(t, e.ns, fqdn, zone, "", cfg), "key missing"},
		{"no config", func() *whapi.ChallengeRequest {
			c := challenge(t, e.ns, fqdn, zone, acmeKey(), cfg)
			c.Config = nil
			return c
		}(), "config is empty"},
		{"config not JSON", challenge(t, e.ns, fqdn, zone, acmeKey(), "{not json"), "config is not valid JSON"},
		{"config an array", challenge(t, e.ns, fqdn, zone, acmeKey(), "[1,2]"), "config"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := e.solver.Present(tc.ch)
			assertMessage(t, err, tc.want)
		})
	}
}

// The process environment never authenticates a call: cloudflare-go's root
// client would add CLOUDFLARE_API_TOKEN's Authorization header to a request
// that authenticates with a Global API Key, and that header alone would pass.
func TestCloudflare_IgnoresCloudflareEnvironment(t *testing.T) {
	e := newCFEnv(t)
	envToken := randomToken()
	e.sim.AddToken(cfsim.Token{Value: envToken, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	t.Setenv("CLOUDFLARE_API_TOKEN", envToken)
	t.Setenv("CLOUDFLARE_EMAIL", "ops@example.com")
	e.sim.AddGlobalKey("ops@example.com", randomGlobalKey())
	createSecret(t, e.ns, "cf-key", map[string]string{"key": randomGlobalKey()}) // not the account's key
	err := e.present(map[string]any{"apiKeySecretRef": map[string]any{"name": "cf-key", "key": "key"}, "email": "ops@example.com"}, acmeKey())
	assertMessage(t, err, "Cloudflare rejected the credential", "9103")
}

// A refused request is an error in the webhook's log, not an information:
// an operator filtering for errors sees what cert-manager was told.
func TestCloudflare_RefusalsAreLoggedAsErrors(t *testing.T) {
	e := newCFEnv(t)
	_, cfg := e.token(fullToken())
	cfg["apiTokenSecretref"] = cfg["apiTokenSecretRef"] // a typo, F9
	if err := e.solver.Refuse(challenge(t, e.ns, fqdn, zone, "k", cfg)); err == nil {
		t.Fatal("a config with an unknown field was not refused")
	}
	var line string
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, `"msg"="Challenge action failed"`) {
			line = l
		}
	}
	switch {
	case line == "":
		t.Fatalf("the refusal is not in the log:\n%s", e.logs.String())
	case strings.Contains(line, `"level"=`) || !strings.Contains(line, `"error"=`):
		t.Errorf("the refusal is logged as information, not as an error: %s", line)
	}
}
