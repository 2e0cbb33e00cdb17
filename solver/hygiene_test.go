package solver_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/certbridge/certbridge/internal/metrics"
	"github.com/certbridge/certbridge/solver"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/testutil"
)

// hygiene is one scenario of the sweep: the secret values it stored, and
// everything the solver said while it ran.
type hygiene struct {
	t      *testing.T
	values []string
	errs   []error
	logs   []*logBuffer
}

// secret creates a Secret whose every value is a canary.
func (h *hygiene) secret(ns, name string, data map[string]string) {
	h.t.Helper()
	createSecret(h.t, ns, name, data)
	for _, v := range data {
		h.canary(v)
	}
}

// canary records values that must never be shown: Secret data, and
// credentials that reach the solver another way (the environment, a file).
func (h *hygiene) canary(vs ...string) { h.values = append(h.values, vs...) }

// said records what the solver answered.
func (h *hygiene) said(errs ...error) {
	for _, err := range errs {
		if err != nil {
			h.errs = append(h.errs, err)
		}
	}
}

// succeeding are the scenarios whose every call succeeds; in each other
// one some call fails, or the scenario would not be the failure it names.
var succeeding = map[string]bool{
	"F3 value padded with whitespace": true, "F3 newline in the values": true, "F13 STS token in use": true,
	"F13 TTL raised to the edition's minimum": true, "F13 role assumed from the AccessKey": true, "F14 RRSA allowed": true,
	"F15 apex and wildcard values": true, "F16 CleanUp after a restart": true, "F17 server error retried": true, "F17 throttling retried": true,
}

func (h *hygiene) verify(scenario string) {
	h.t.Helper()
	if len(h.values) == 0 {
		h.t.Fatal("the scenario stored no canary")
	}
	if succeeding[scenario] != (len(h.errs) == 0) {
		h.t.Fatalf("the scenario did not run as named: errors %v", h.errs)
	}
	for _, err := range h.errs {
		if v, f, ok := testutil.FindLeak(h.values, err.Error()); ok {
			h.t.Errorf("the error shows %q of the secret %q: %v", f, v, err)
		}
	}
	for _, l := range h.logs {
		if v, f, ok := testutil.FindLeak(h.values, l.String()); ok {
			h.t.Errorf("the logs show %q of the secret %q:\n%s", f, v, l)
		}
	}
}

// cfScenarios are the cloudflare solver's failure catalogue (F1–F12,
// F15–F17) with every credential a fresh canary: each runs Present and
// CleanUp as cloudflare_test.go's scenario of that name does.
var cfScenarios = []struct {
	name string
	run  func(t *testing.T, h *hygiene, e *cfEnv)
}{
	{"F1 Secret in another namespace", func(t *testing.T, h *hygiene, e *cfEnv) {
		token := randomToken()
		e.sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
		h.secret(namespace(t, "elsewhere"), "cf-token", map[string]string{"api-token": token})
		h.cycle(e, tokenConfig())
	}},
	{"F2 key missing", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.secret(e.ns, "cf-token", map[string]string{"apiToken": randomToken(), "email": "ops-" + randomFrom(alnum, 12) + "@example.com"})
		h.cycle(e, tokenConfig())
	}},
	{"F3 value padded with whitespace", func(t *testing.T, h *hygiene, e *cfEnv) {
		token := randomToken()
		e.sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
		h.secret(e.ns, "cf-token", map[string]string{"api-token": "  " + token + "\n"})
		h.cycle(e, tokenConfig())
	}},
	{"F4 Global API Key in the token field", func(t *testing.T, h *hygiene, e *cfEnv) {
		key := randomGlobalKey()
		e.sim.AddGlobalKey("ops@example.com", key)
		h.secret(e.ns, "cf-token", map[string]string{"api-token": key})
		h.cycle(e, tokenConfig())
	}},
	{"F5 token without Zone Read", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.token(e, cfsim.Token{Permissions: []cfsim.Permission{cfsim.DNSEdit}})
		h.cycle(e, tokenConfig())
	}},
	{"F5 zone list refused 403/10000", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.token(e, fullToken())
		e.sim.InjectFault(cfsim.Fault{Route: "GET /zones", Status: http.StatusForbidden, Code: 10000, Message: "Authentication error", Times: 2})
		h.cycle(e, tokenConfig())
	}},
	{"F6 token without DNS Edit", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.token(e, cfsim.Token{Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSRead}})
		h.cycle(e, tokenConfig())
	}},
	{"F7 revoked token", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.secret(e.ns, "cf-token", map[string]string{"api-token": randomToken()})
		h.cycle(e, tokenConfig())
	}},
	{"F7 expired token", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.token(e, cfsim.Token{Status: cfsim.TokenExpired, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
		h.cycle(e, tokenConfig())
	}},
	{"F7 wrong Global API Key", func(t *testing.T, h *hygiene, e *cfEnv) {
		right := randomGlobalKey()
		e.sim.AddGlobalKey("ops@example.com", right)
		h.canary(right)
		h.secret(e.ns, "cf-key", map[string]string{"key": randomGlobalKey()})
		h.cycle(e, keyConfig())
	}},
	{"F8 token and key both set", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.token(e, fullToken())
		h.secret(e.ns, "cf-key", map[string]string{"key": randomGlobalKey()})
		cfg := keyConfig()
		cfg["apiTokenSecretRef"] = tokenConfig()["apiTokenSecretRef"]
		h.cycle(e, cfg)
	}},
	{"F9 unknown config field", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.token(e, fullToken())
		h.cycle(e, `{"apiTokenSecretref": {"name": "cf-token", "key": "api-token"}}`)
	}},
	{"F10 empty Secret reference", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.token(e, fullToken())
		h.cycle(e, map[string]any{"apiTokenSecretRef": map[string]any{"name": "cf-token", "key": ""}})
	}},
	{"F11 zone not in the account", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.token(e, fullToken())
		ch := challenge(t, e.ns, "_acme-challenge.www.example.net.", "example.net.", acmeKey(), tokenConfig())
		h.said(e.solver.Present(ch), e.solver.CleanUp(ch))
	}},
	{"F11 zone not in the account of a Global API Key", func(t *testing.T, h *hygiene, e *cfEnv) {
		key := randomGlobalKey()
		e.sim.AddGlobalKey("ops@example.com", key)
		h.secret(e.ns, "cf-key", map[string]string{"key": key})
		ch := challenge(t, e.ns, "_acme-challenge.example.net.", "example.net.", acmeKey(), keyConfig())
		h.said(e.solver.Present(ch), e.solver.CleanUp(ch))
	}},
	{"F12 Secret read forbidden", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.token(e, fullToken())
		s := solver.NewCloudflare(solver.Options{Log: e.logs.logger()}, e.opts)
		if err := s.Initialize(forbiddenUser(t), nil); err != nil {
			t.Fatal(err)
		}
		ch := challenge(t, e.ns, fqdn, zone, acmeKey(), tokenConfig())
		h.said(s.Present(ch), s.CleanUp(ch))
	}},
	{"F15 apex and wildcard values", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.token(e, fullToken())
		apex, wildcard := acmeKey(), acmeKey()
		h.said(e.present(tokenConfig(), apex), e.present(tokenConfig(), wildcard), e.cleanUp(tokenConfig(), wildcard), e.cleanUp(tokenConfig(), apex))
	}},
	{"F16 CleanUp after a restart", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.token(e, fullToken())
		key := acmeKey()
		h.said(e.present(tokenConfig(), key), e.present(tokenConfig(), key))
		h.said(e.newSolver().CleanUp(challenge(t, e.ns, fqdn, zone, key, tokenConfig())))
	}},
	{"F17 Retry-After beyond the deadline, then the budget", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.token(e, fullToken())
		e.sim.InjectFault(rateLimited("300"))
		h.cycle(e, tokenConfig())
		h.cycle(e, tokenConfig())
	}},
	{"F17 server error retried", func(t *testing.T, h *hygiene, e *cfEnv) {
		h.token(e, fullToken())
		e.sim.InjectFault(cfsim.Fault{Route: createRoute, Status: 503, Code: 10001, Message: "service unavailable"})
		h.cycle(e, tokenConfig())
	}},
}

func tokenConfig() map[string]any {
	return map[string]any{"apiTokenSecretRef": map[string]any{"name": "cf-token", "key": "api-token"}}
}

func keyConfig() map[string]any {
	return map[string]any{"apiKeySecretRef": map[string]any{"name": "cf-key", "key": "key"}, "email": "ops@example.com"}
}

// token is cfEnv.token with the token recorded as a canary.
func (h *hygiene) token(e *cfEnv, t cfsim.Token) {
	v, _ := e.token(t)
	h.canary(v)
}

// cycle is one challenge's Present and CleanUp.
func (h *hygiene) cycle(e *cfEnv, cfg any) {
	key := acmeKey()
	h.said(e.present(cfg, key), e.cleanUp(cfg, key))
}

// forbiddenUser is a ServiceAccount's client config with no RBAC at all.
func forbiddenUser(t *testing.T) *rest.Config {
	t.Helper()
	user, err := kubeEnv(t).AddUser(envtest.User{Name: "system:serviceaccount:certbridge:hygiene"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return user.Config()
}

// aliScenarios are the alidns solver's catalogue (F1–F3, F9–F17) likewise,
// as alidns_test.go runs them.
var aliScenarios = []struct {
	name string
	run  func(t *testing.T, h *hygiene, e *aliEnv)
}{
	{"F1 Secret in another namespace", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.secret(namespace(t, "elsewhere"), "ali-key", map[string]string{"id": aliID(), "secret": aliSecret()})
		h.aliCycle(e, akConfig(), false)
	}},
	{"F2 key missing", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.secret(e.ns, "ali-key", map[string]string{"AccessKeyId": aliID(), "AccessKeySecret": aliSecret()})
		h.aliCycle(e, akConfig(), false)
	}},
	{"F3 newline in the values", func(t *testing.T, h *hygiene, e *aliEnv) {
		id, secret := aliID(), aliSecret()
		e.sim.AddAccessKey(alisim.AccessKey{ID: id, Secret: secret, Policy: alisim.AllowAll})
		h.secret(e.ns, "ali-key", map[string]string{"id": id + "\n", "secret": secret + "\n"})
		h.aliCycle(e, akConfig(), false)
	}},
	{"F9 unknown config field", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.accessKey(e, alisim.AllowAll)
		cfg := akConfig()
		cfg["apiTokenSecretRef"] = map[string]any{"name": "ali-key", "key": "secret"}
		h.aliCycle(e, cfg, false)
	}},
	{"F10 empty Secret reference", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.accessKey(e, alisim.AllowAll)
		cfg := akConfig()
		cfg["accessKeyIdSecretRef"] = map[string]any{"name": "ali-key", "key": ""}
		h.aliCycle(e, cfg, false)
	}},
	{"F11 zone not in the account", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.accessKey(e, alisim.AllowAll)
		ch := challenge(t, e.ns, "_acme-challenge.www.example.net.", "example.net.", acmeKey(), akConfig())
		h.said(e.solver.Present(ch), e.solver.CleanUp(ch))
	}},
	{"F12 Secret read forbidden", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.accessKey(e, alisim.AllowAll)
		s := solver.NewAliDNS(solver.Options{Log: e.logs.logger()}, e.opts)
		if err := s.Initialize(forbiddenUser(t), nil); err != nil {
			t.Fatal(err)
		}
		ch := e.request(akConfig(), acmeKey(), false)
		h.said(s.Present(ch), s.CleanUp(ch))
	}},
	{"F13 InvalidAccessKeyId.NotFound", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.secret(e.ns, "ali-key", map[string]string{"id": aliID(), "secret": aliSecret()})
		h.aliCycle(e, akConfig(), false)
	}},
	{"F13 SignatureDoesNotMatch", func(t *testing.T, h *hygiene, e *aliEnv) {
		id, right := aliID(), aliSecret()
		e.sim.AddAccessKey(alisim.AccessKey{ID: id, Secret: right, Policy: alisim.AllowAll})
		h.canary(right)
		h.secret(e.ns, "ali-key", map[string]string{"id": id, "secret": aliSecret()})
		h.aliCycle(e, akConfig(), false)
	}},
	{"F13 Forbidden.RAM", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.accessKey(e, alisim.Policy{Actions: []string{"alidns:DescribeDomainInfo"}})
		h.aliCycle(e, akConfig(), false)
	}},
	{"F13 InvalidDomainName.NoExist", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.accessKey(e, alisim.AllowAll)
		cfg := akConfig()
		cfg["domainName"] = "not-here.example"
		h.aliCycle(e, cfg, false)
	}},
	{"F13 IncorrectDomainUser", func(t *testing.T, h *hygiene, e *aliEnv) {
		e.sim.AddForeignDomain("other-account.example")
		h.accessKey(e, alisim.AllowAll)
		cfg := akConfig()
		cfg["domainName"] = "other-account.example"
		h.aliCycle(e, cfg, false)
	}},
	{"F13 clock skew", func(t *testing.T, h *hygiene, e *aliEnv) {
		e.sim.SetClock(func() time.Time { return time.Now().Add(20 * time.Minute) })
		h.accessKey(e, alisim.AllowAll)
		h.aliCycle(e, akConfig(), false)
	}},
	{"F13 STS token expired", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.sts(e, -time.Minute)
		h.aliCycle(e, stsConfig(), false)
	}},
	{"F13 STS token in use", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.sts(e, time.Hour)
		h.aliCycle(e, stsConfig(), false)
	}},
	{"F13 TTL raised to the edition's minimum", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.accessKey(e, alisim.AllowAll)
		cfg := akConfig()
		cfg["ttl"] = 60
		h.aliCycle(e, cfg, false)
	}},
	{"F13 role assumed from the AccessKey", func(t *testing.T, h *hygiene, e *aliEnv) {
		id := h.accessKey(e, alisim.Policy{})
		e.sim.AddRole(alisim.Role{ARN: roleARN, Policy: alisim.AllowAll, TrustedAccessKeys: []string{id}})
		cfg := akConfig()
		cfg["roleArn"] = roleARN
		h.aliCycle(e, cfg, false)
	}},
	{"F14 ambient credentials not allowed", func(t *testing.T, h *hygiene, e *aliEnv) {
		id, secret := aliID(), aliSecret()
		e.sim.AddAccessKey(alisim.AccessKey{ID: id, Secret: secret, Policy: alisim.AllowAll})
		h.canary(id, secret)
		env := map[string]string{"ALIBABA_CLOUD_ACCESS_KEY_ID": id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret}
		e.opts.Environ = func(k string) string { return env[k] }
		e.solver = e.newSolver()
		h.aliCycle(e, map[string]any{"regionId": "cn-hangzhou"}, false)
	}},
	{"F14 RRSA allowed", func(t *testing.T, h *hygiene, e *aliEnv) {
		const provider = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-cluster"
		issuer := alisim.NewOIDCIssuer("https://oidc-ack.example/cluster")
		e.sim.AddOIDCProvider(issuer.Provider(provider, "sts.aliyuncs.com"))
		oidc := issuer.Token("system:serviceaccount:certbridge:certbridge-webhook", []string{"sts.aliyuncs.com"}, time.Hour)
		h.canary(oidc)
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(oidc), 0o600); err != nil {
			t.Fatal(err)
		}
		e.sim.AddRole(alisim.Role{ARN: roleARN, Policy: alisim.AllowAll, TrustedOIDCProvider: provider})
		env := map[string]string{"ALIBABA_CLOUD_ROLE_ARN": roleARN, "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": provider, "ALIBABA_CLOUD_OIDC_TOKEN_FILE": tokenFile}
		e.opts.Environ = func(k string) string { return env[k] }
		e.solver = e.newSolver()
		h.aliCycle(e, map[string]any{}, true)
	}},
	{"F15 apex and wildcard values", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.accessKey(e, alisim.AllowAll)
		apex, wildcard := acmeKey(), acmeKey()
		h.said(e.present(akConfig(), apex), e.present(akConfig(), wildcard), e.cleanUp(akConfig(), wildcard), e.cleanUp(akConfig(), apex))
	}},
	{"F16 CleanUp after a restart", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.accessKey(e, alisim.AllowAll)
		key := acmeKey()
		h.said(e.present(akConfig(), key))
		ch := e.request(akConfig(), key, false)
		h.said(e.newSolver().CleanUp(ch))
	}},
	{"F17 throttling retried", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.accessKey(e, alisim.AllowAll)
		e.sim.InjectFault(alisim.Fault{Action: "AddDomainRecord", Status: 400, Code: "Throttling.User", Times: 2})
		h.aliCycle(e, akConfig(), false)
	}},
	{"F17 throttled past the deadline", func(t *testing.T, h *hygiene, e *aliEnv) {
		h.accessKey(e, alisim.AllowAll)
		e.sim.InjectFault(alisim.Fault{Action: "AddDomainRecord", Status: 400, Code: "Throttling.User", Times: 1000})
		e.solver = solver.NewAliDNS(solver.Options{Log: e.logs.logger(), Timeout: 2 * time.Second}, e.opts)
		if err := e.solver.Initialize(kubeEnv(t).Config, nil); err != nil {
			t.Fatal(err)
		}
		h.aliCycle(e, akConfig(), false)
	}},
	{"endpoint unreachable", func(t *testing.T, h *hygiene, e *aliEnv) {
		e.opts.DNS = endpoint(t, e.sim.Endpoint()) // HTTPS at a plain-HTTP server
		e.solver = e.newSolver()
		h.accessKey(e, alisim.AllowAll)
		h.aliCycle(e, akConfig(), false)
	}},
}

func aliID() string     { return "LTAI5t" + randomFrom(alnum, 18) }
func aliSecret() string { return randomFrom(alnum, 30) }

// accessKey is aliEnv.accessKey with the id and secret recorded as canaries.
func (h *hygiene) accessKey(e *aliEnv, p alisim.Policy) string {
	id, secret, _ := e.accessKey(p)
	h.canary(id, secret)
	return id
}

// sts stores STS credentials valid for ttl in Secret ali-sts.
func (h *hygiene) sts(e *aliEnv, ttl time.Duration) {
	id, secret, token := e.sim.IssueSTS(alisim.AllowAll, ttl)
	h.secret(e.ns, "ali-sts", map[string]string{"id": id, "secret": secret, "token": token})
}

func stsConfig() map[string]any {
	return map[string]any{
		"accessKeyIdSecretRef":     map[string]any{"name": "ali-sts", "key": "id"},
		"accessKeySecretSecretRef": map[string]any{"name": "ali-sts", "key": "secret"},
		"securityTokenSecretRef":   map[string]any{"name": "ali-sts", "key": "token"},
	}
}

func (h *hygiene) aliCycle(e *aliEnv, cfg any, ambient bool) {
	key := acmeKey()
	ch := e.request(cfg, key, ambient)
	h.said(e.solver.Present(ch))
	ch = e.request(cfg, key, ambient)
	ch.Action = "CleanUp"
	h.said(e.solver.CleanUp(ch))
}

// Every scenario of the failure catalogue the solver tests cover, with
// canary credentials: no error, log line (at every verbosity) or metric
// label shows a credential in any of testutil.LeakForms (the value, its
// base64, the first 8 characters of either).
func TestSecretHygiene(t *testing.T) {
	registry := prometheus.NewRegistry()
	if err := metrics.Register(registry); err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, sc := range cfScenarios {
		t.Run("cloudflare "+sc.name, func(t *testing.T) {
			h := &hygiene{t: t}
			e := newCFEnv(t)
			h.logs = append(h.logs, e.logs)
			sc.run(t, h, e)
			h.verify(sc.name)
			all = append(all, h.values...)
		})
	}
	for _, sc := range aliScenarios {
		t.Run("alidns "+sc.name, func(t *testing.T) {
			h := &hygiene{t: t}
			e := newAliEnv(t)
			h.logs = append(h.logs, e.logs)
			sc.run(t, h, e)
			h.verify(sc.name)
			all = append(all, h.values...)
		})
	}
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := 0
	for _, fam := range families {
		for _, m := range fam.Metric {
			for _, l := range m.Label {
				labels++
				if v, f, ok := testutil.FindLeak(all, l.GetValue()); ok {
					t.Errorf("metric %s label %s=%q shows %q of the secret %q", fam.GetName(), l.GetName(), l.GetValue(), f, v)
				}
			}
		}
	}
	if labels == 0 {
		t.Error("no metric label was gathered: the sweep looked at nothing")
	}
	t.Logf("%d canaries, %d metric labels", len(all), labels)
}
