package solver_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/solver"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
)

const roleARN = "acs:ram::1234567890123456:role/certbridge-dns"

// aliEnv is an Alibaba Cloud simulator, a namespace in a real kube-apiserver
// and an alidns solver reading Secrets from it.
type aliEnv struct {
	t         *testing.T
	sim       *alisim.Server
	ns        string
	logs      *logBuffer
	kubeCalls atomic.Int64
	opts      alibaba.Options
	solver    *solver.Solver
}

func newAliEnv(t *testing.T) *aliEnv {
	t.Helper()
	sim := alisim.Start()
	t.Cleanup(sim.Close)
	sim.AddDomain("example.com", alisim.FreeEdition)
	e := &aliEnv{t: t, sim: sim, ns: namespace(t, "ali"), logs: &logBuffer{}}
	e.opts = alibaba.Options{DNS: endpoint(t, "http://"+sim.Endpoint()), STS: endpoint(t, sim.STSEndpoint()),
		Environ: func(string) string { return "" }}
	e.solver = e.newSolver()
	return e
}

func (e *aliEnv) newSolver() *solver.Solver {
	e.t.Helper()
	s := solver.NewAliDNS(solver.Options{Log: e.logs.logger(), Timeout: 10 * time.Second}, e.opts)
	if err := s.Initialize(countingConfig(kubeEnv(e.t).Config, &e.kubeCalls), nil); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// accessKey registers a RAM user's AccessKey, stores it in Secret ali-key and
// returns its id, secret and the config referencing them.
func (e *aliEnv) accessKey(policy alisim.Policy) (id, secret string, cfg map[string]any) {
	e.t.Helper()
	id, secret = "LTAI5t"+randomFrom(alnum, 18), randomFrom(alnum, 30)
	e.sim.AddAccessKey(alisim.AccessKey{ID: id, Secret: secret, Policy: policy})
	createSecret(e.t, e.ns, "ali-key", map[string]string{"id": id, "secret": secret})
	return id, secret, akConfig()
}

func akConfig() map[string]any {
	return map[string]any{
		"accessKeyIdSecretRef":     map[string]any{"name": "ali-key", "key": "id"},
		"accessKeySecretSecretRef": map[string]any{"name": "ali-key", "key": "secret"},
	}
}

func (e *aliEnv) request(cfg any, key string, ambient bool) *whapi.ChallengeRequest {
	ch := challenge(e.t, e.ns, fqdn, zone, key, cfg)
	ch.AllowAmbientCredentials = ambient
	return ch
}

func (e *aliEnv) present(cfg any, key string) error {
	return e.solver.Present(e.request(cfg, key, false))
}

func (e *aliEnv) cleanUp(cfg any, key string) error {
	ch := e.request(cfg, key, false)
	ch.Action = whapi.ChallengeActionCleanUp
	return e.solver.CleanUp(ch)
}

func (e *aliEnv) values() []string {
	var out []string
	for _, r := range e.sim.Records("_acme-challenge.example.com") {
		out = append(out, r.Value)
	}
	return out
}

// assertNoAliSecrets checks that neither the AccessKey secret nor the full
// AccessKey id (only its first four characters may show) leaked.
func assertNoAliSecrets(t *testing.T, id, secret string, err error, logs *logBuffer) {
	t.Helper()
	assertNoSecret(t, secret, err, logs)
	assertNoSecret(t, id, err, logs)
}

func TestAliDNS_PresentAndCleanUp(t *testing.T) {
	e := newAliEnv(t)
	_, _, cfg := e.accessKey(alisim.AllowAll)
	key := acmeKey()
	if err := e.present(cfg, key); err != nil {
		t.Fatal(err)
	}
	recs := e.sim.Records("_acme-challenge.example.com")
	if len(recs) != 1 || recs[0].RR != "_acme-challenge" || recs[0].Type != "TXT" || recs[0].Value != key || recs[0].TTL != 600 {
		t.Fatalf("want one TXT record _acme-challenge holding the key with TTL 600, got %+v", recs)
	}
	if err := e.cleanUp(cfg, key); err != nil {
		t.Fatal(err)
	}
	if v := e.values(); len(v) != 0 {
		t.Fatalf("left behind: %v", v)
	}
}

func TestAliDNS_APICallCounts(t *testing.T) {
	e := newAliEnv(t)
	_, _, cfg := e.accessKey(alisim.AllowAll)
	k1, k2, k3 := acmeKey(), acmeKey(), acmeKey()
	step := func(name string, max int, do func() error) {
		t.Helper()
		e.sim.ResetCalls()
		if err := do(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if n := e.sim.TotalDNSCalls(); n > max {
			t.Errorf("%s: %d API calls %v, want at most %d", name, n, e.sim.Calls(), max)
		}
	}
	step("first Present (domain unknown)", 2, func() error { return e.present(cfg, k1) })
	step("Present with the domain cached", 1, func() error { return e.present(cfg, k2) })
	step("CleanUp of a record this process created", 1, func() error { return e.cleanUp(cfg, k1) })
	other := e.newSolver()
	if err := other.Present(e.request(cfg, k3, false)); err != nil {
		t.Fatal(err)
	}
	step("CleanUp by a replica that did not create the record", 2, func() error {
		ch := e.request(cfg, k2, false)
		ch.Action = whapi.ChallengeActionCleanUp
		return other.CleanUp(ch)
	})
	if v := e.values(); len(v) != 1 || v[0] != k3 {
		t.Fatalf("want only %s left, got %v", k3, v)
	}
}

func TestAliDNS_CredentialKinds(t *testing.T) {
	t.Run("STS token", func(t *testing.T) {
		e := newAliEnv(t)
		id, secret, token := e.sim.IssueSTS(alisim.AllowAll, time.Hour)
		createSecret(t, e.ns, "ali-sts", map[string]string{"id": id, "secret": secret, "token": token})
		cfg := map[string]any{
			"accessKeyIdSecretRef":     map[string]any{"name": "ali-sts", "key": "id"},
			"accessKeySecretSecretRef": map[string]any{"name": "ali-sts", "key": "secret"},
			"securityTokenSecretRef":   map[string]any{"name": "ali-sts", "key": "token"},
		}
		if err := e.present(cfg, acmeKey()); err != nil {
			t.Fatal(err)
		}
		assertNoSecret(t, token, nil, e.logs)
	})
	t.Run("role assumed from an AccessKey", func(t *testing.T) {
		e := newAliEnv(t)
		id, _, cfg := e.accessKey(alisim.Policy{}) // the user itself may do nothing in alidns
		e.sim.AddRole(alisim.Role{ARN: roleARN, Policy: alisim.AllowAll, TrustedAccessKeys: []string{id}})
		cfg["roleArn"] = roleARN
		for range 2 {
			if err := e.present(cfg, acmeKey()); err != nil {
				t.Fatal(err)
			}
		}
		if n := e.sim.Calls()["AssumeRole"]; n != 1 {
			t.Errorf("the role's credentials are reused until they expire: %d AssumeRole calls", n)
		}
	})
	t.Run("RRSA", func(t *testing.T) {
		e := newAliEnv(t)
		const provider = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-cluster"
		issuer := alisim.NewOIDCIssuer("https://oidc-ack.example/cluster")
		e.sim.AddOIDCProvider(issuer.Provider(provider, "sts.aliyuncs.com"))
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(issuer.Token("system:serviceaccount:certbridge:certbridge-webhook", []string{"sts.aliyuncs.com"}, time.Hour)), 0o600); err != nil {
			t.Fatal(err)
		}
		e.sim.AddRole(alisim.Role{ARN: roleARN, Policy: alisim.AllowAll, TrustedOIDCProvider: provider})
		env := map[string]string{"ALIBABA_CLOUD_ROLE_ARN": roleARN, "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": provider, "ALIBABA_CLOUD_OIDC_TOKEN_FILE": tokenFile}
		e.opts.Environ = func(k string) string { return env[k] }
		e.solver = e.newSolver()
		if err := e.solver.Present(e.request(map[string]any{}, acmeKey(), true)); err != nil {
			t.Fatal(err)
		}
		if n := e.sim.Calls()["AssumeRoleWithOIDC"]; n != 1 {
			t.Errorf("want one AssumeRoleWithOIDC, got %d", n)
		}
		t.Run("then a role assumed from it", func(t *testing.T) {
			const second = "acs:ram::1234567890123456:role/dns-in-other-account"
			e.sim.AddRole(alisim.Role{ARN: second, Policy: alisim.AllowAll, TrustedAccessKeys: []string{"*"}})
			if err := e.solver.Present(e.request(map[string]any{"roleArn": second}, acmeKey(), true)); err != nil {
				t.Fatal(err)
			}
			if n := e.sim.Calls()["AssumeRole"]; n != 1 {
				t.Errorf("want one AssumeRole from the RRSA credentials, got %d", n)
			}
		})
	})
}

// The process environment never authenticates a request that does not allow
// ambient credentials, even with Alibaba's variables set.
func TestAliDNS_F14_AmbientCredentialsNotAllowed(t *testing.T) {
	e := newAliEnv(t)
	id, secret := "LTAI5tFromTheEnvironment", "secretFromTheEnvironment"
	e.sim.AddAccessKey(alisim.AccessKey{ID: id, Secret: secret, Policy: alisim.AllowAll})
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", id)
	t.Setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
	e.opts.Environ = os.Getenv
	e.solver = e.newSolver()
	err := e.present(map[string]any{"regionId": "cn-hangzhou"}, acmeKey())
	assertMessage(t, err, "alidns: no credentials", "accessKeyIdSecretRef", fmt.Sprintf("namespace %q", e.ns),
		"only when cert-manager allows them", "ClusterIssuers", "--issuer-ambient-credentials")
	if n := e.sim.TotalDNSCalls(); n != 0 {
		t.Errorf("no call may be made, got %v", e.sim.Calls())
	}
}

func TestAliDNS_F13_ProviderErrors(t *testing.T) {
	cases := []struct {
		name  string
		setup func(e *aliEnv) (id, secret string, cfg map[string]any)
		want  []string
	}{
		{
			name: "InvalidAccessKeyId.NotFound",
			setup: func(e *aliEnv) (string, string, map[string]any) {
				id, secret := "LTAI5tNotKnownAnywhere01", randomFrom(alnum, 30)
				createSecret(e.t, e.ns, "ali-key", map[string]string{"id": id, "secret": secret})
				return id, secret, akConfig()
			},
			want: []string{"does not know the AccessKey id LTAI****", `key "id" (accessKeyIdSecretRef)`, "InvalidAccessKeyId.NotFound"},
		},
		{
			name: "SignatureDoesNotMatch (wrong secret)",
			setup: func(e *aliEnv) (string, string, map[string]any) {
				id, _, cfg := e.accessKey(alisim.AllowAll)
				wrong := randomFrom(alnum, 30)
				createSecret(e.t, e.ns, "ali-wrong", map[string]string{"secret": wrong})
				cfg["accessKeySecretSecretRef"] = map[string]any{"name": "ali-wrong", "key": "secret"}
				return id, wrong, cfg
			},
			want: []string{"the AccessKey secret from Secret", "ali-wrong", "does not belong to AccessKey LTAI****", "SignatureDoesNotMatch"},
		},
		{
			name: "Forbidden.RAM",
			setup: func(e *aliEnv) (string, string, map[string]any) {
				return e.accessKey(alisim.Policy{Actions: []string{"alidns:DescribeDomainInfo"}})
			},
			want: []string{"does not allow alidns:AddDomainRecord on domain example.com", "Forbidden.RAM",
				"alidns:DescribeDomainInfo, alidns:AddDomainRecord, alidns:DescribeSubDomainRecords and alidns:DeleteDomainRecord"},
		},
		{
			name: "InvalidDomainName.NoExist",
			setup: func(e *aliEnv) (string, string, map[string]any) {
				id, secret, cfg := e.accessKey(alisim.AllowAll)
				cfg["domainName"] = "not-here.example"
				return id, secret, cfg
			},
			want: []string{"no domain found for not-here.example (from domainName)", "Alibaba Cloud DNS account of AccessKey LTAI****"},
		},
		{
			name: "IncorrectDomainUser",
			setup: func(e *aliEnv) (string, string, map[string]any) {
				e.sim.AddForeignDomain("other-account.example")
				id, secret, cfg := e.accessKey(alisim.AllowAll)
				cfg["domainName"] = "other-account.example"
				return id, secret, cfg
			},
			want: []string{"no domain found for other-account.example", "set domainName"},
		},
		{
			name: "InvalidTimeStamp.Expired (clock skew)",
			setup: func(e *aliEnv) (string, string, map[string]any) {
				e.sim.SetClock(func() time.Time { return time.Now().Add(20 * time.Minute) })
				return e.accessKey(alisim.AllowAll)
			},
			want: []string{"clock is more than 15 minutes off", "NTP", "InvalidTimeStamp.Expired"},
		},
		{
			name: "InvalidSecurityToken.Expired",
			setup: func(e *aliEnv) (string, string, map[string]any) {
				id, secret, token := e.sim.IssueSTS(alisim.AllowAll, -time.Minute)
				createSecret(e.t, e.ns, "ali-sts", map[string]string{"id": id, "secret": secret, "token": token})
				return token, secret, map[string]any{
					"accessKeyIdSecretRef":     map[string]any{"name": "ali-sts", "key": "id"},
					"accessKeySecretSecretRef": map[string]any{"name": "ali-sts", "key": "secret"},
					"securityTokenSecretRef":   map[string]any{"name": "ali-sts", "key": "token"},
				}
			},
			want: []string{"the STS token from Secret", "InvalidSecurityToken.Expired", "issue a new one"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newAliEnv(t)
			id, secret, cfg := tc.setup(e)
			err := e.present(cfg, acmeKey())
			assertMessage(t, err, append([]string{"alidns: "}, tc.want...)...)
			assertNoAliSecrets(t, id, secret, err, e.logs)
		})
	}
}

func TestAliDNS_F13_TTLBelowEditionMinimumIsRaised(t *testing.T) {
	ttlOf := func(e *aliEnv, key string) int {
		for _, r := range e.sim.Records("_acme-challenge.example.com") {
			if r.Value == key {
				return r.TTL
			}
		}
		return -1
	}
	t.Run("minimum known from DescribeDomainInfo", func(t *testing.T) {
		e := newAliEnv(t)
		_, _, cfg := e.accessKey(alisim.AllowAll)
		cfg["ttl"] = 60
		key := acmeKey()
		if err := e.present(cfg, key); err != nil {
			t.Fatalf("a TTL below the minimum must still work: %v", err)
		}
		if ttl := ttlOf(e, key); ttl != 600 {
			t.Errorf("TTL %d, want the free edition's minimum 600", ttl)
		}
		if e.sim.Calls()["AddDomainRecord"] != 1 {
			t.Errorf("the known minimum saves a refused call: %v", e.sim.Calls())
		}
		if !strings.Contains(e.logs.String(), "TTL is below the domain edition's minimum") {
			t.Errorf("the raise must be logged:\n%s", e.logs)
		}
	})
	t.Run("edition downgraded after the lookup was cached", func(t *testing.T) {
		e := newAliEnv(t)
		e.sim.SetEdition("example.com", alisim.EnterpriseStandardEditon)
		_, _, cfg := e.accessKey(alisim.AllowAll)
		cfg["ttl"] = 60
		if k := acmeKey(); e.present(cfg, k) != nil || ttlOf(e, k) != 60 {
			t.Fatalf("Enterprise Standard allows TTL 60")
		}
		e.sim.SetEdition("example.com", alisim.FreeEdition)
		key := acmeKey()
		if err := e.present(cfg, key); err != nil {
			t.Fatalf("QuotaExceeded.TTL must raise the TTL and retry: %v", err)
		}
		if ttl := ttlOf(e, key); ttl != 600 {
			t.Errorf("TTL %d, want 600 from the refusal's message", ttl)
		}
	})
}

func TestAliDNS_SharedFailures(t *testing.T) {
	t.Run("F1 Secret in another namespace", func(t *testing.T) {
		e := newAliEnv(t)
		createSecret(t, namespace(t, "istio-system"), "ali-key", map[string]string{"id": "LTAI5tX", "secret": "s3cr3tValue"})
		err := e.present(akConfig(), acmeKey())
		assertMessage(t, err, `Secret "ali-key" (accessKeyIdSecretRef.name) not found in namespace`, "ClusterIssuer")
	})
	t.Run("F2 key missing", func(t *testing.T) {
		e := newAliEnv(t)
		createSecret(t, e.ns, "ali-key", map[string]string{"AccessKeyId": "LTAI5tX", "AccessKeySecret": "s3cr3tValue"})
		err := e.present(akConfig(), acmeKey())
		assertMessage(t, err, `has no key "id" (accessKeyIdSecretRef.key)`, "AccessKeyId, AccessKeySecret")
		assertNoSecret(t, "s3cr3tValue", err, e.logs)
	})
	t.Run("F3 newline in the values", func(t *testing.T) {
		e := newAliEnv(t)
		id, secret := "LTAI5t"+randomFrom(alnum, 18), randomFrom(alnum, 30)
		e.sim.AddAccessKey(alisim.AccessKey{ID: id, Secret: secret, Policy: alisim.AllowAll})
		createSecret(t, e.ns, "ali-key", map[string]string{"id": id + "\n", "secret": secret + "\n"})
		if err := e.present(akConfig(), acmeKey()); err != nil {
			t.Fatalf("padded values must work (not InvalidAccessKeyId): %v", err)
		}
		if n := e.logs.count("leading or trailing whitespace"); n != 2 {
			t.Errorf("want one warning per padded key, got %d", n)
		}
		assertNoAliSecrets(t, id, secret, nil, e.logs)
	})
	t.Run("F9 unknown field", func(t *testing.T) {
		e := newAliEnv(t)
		cfg := akConfig()
		cfg["apiTokenSecretRef"] = map[string]any{"name": "x", "key": "y"}
		err := e.present(cfg, acmeKey())
		assertMessage(t, err, `unknown field "apiTokenSecretRef"`, "valid fields are: accessKeyIdSecretRef, accessKeySecretSecretRef, domainName, regionId, roleArn, securityTokenSecretRef, serviceAccountRef, ttl")
	})
	t.Run("F10 empty references and config errors", func(t *testing.T) {
		cases := []struct {
			name string
			cfg  map[string]any
			want string
		}{
			{"empty key", map[string]any{"accessKeyIdSecretRef": map[string]any{"name": "a", "key": ""}, "accessKeySecretSecretRef": map[string]any{"name": "a", "key": "s"}},
				"accessKeyIdSecretRef.key: Required value"},
			{"id without secret", map[string]any{"accessKeyIdSecretRef": map[string]any{"name": "a", "key": "i"}},
				"accessKeySecretSecretRef: Required value"},
			{"token alone", map[string]any{"securityTokenSecretRef": map[string]any{"name": "a", "key": "t"}},
				"securityTokenSecretRef: Forbidden"},
			{"unknown region", map[string]any{"regionId": "mars-1"}, `regionId: Unsupported value: "mars-1"`},
			{"malformed role", map[string]any{"roleArn": "certbridge"}, "roleArn: Invalid value"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				e := newAliEnv(t)
				before := e.kubeCalls.Load()
				err := e.present(tc.cfg, acmeKey())
				assertMessage(t, err, "alidns: invalid config", tc.want)
				if e.kubeCalls.Load() != before || e.sim.TotalDNSCalls() != 0 {
					t.Errorf("a config error must change nothing")
				}
			})
		}
	})
	t.Run("F11 zone not in the account", func(t *testing.T) {
		e := newAliEnv(t)
		id, secret, cfg := e.accessKey(alisim.AllowAll)
		err := e.solver.Present(challenge(t, e.ns, "_acme-challenge.www.example.net.", "example.net.", acmeKey(), cfg))
		assertMessage(t, err, "no domain found for www.example.net, example.net", "Alibaba Cloud DNS account of AccessKey LTAI****")
		assertNoAliSecrets(t, id, secret, err, e.logs)
	})
	t.Run("F12 Secret read forbidden", func(t *testing.T) {
		e := newAliEnv(t)
		_, _, cfg := e.accessKey(alisim.AllowAll)
		const sa = "system:serviceaccount:certbridge:certbridge-webhook"
		user, err := kubeEnv(t).AddUser(envtest.User{Name: sa}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := solver.NewAliDNS(solver.Options{Log: e.logs.logger()}, e.opts)
		if err := s.Initialize(user.Config(), nil); err != nil {
			t.Fatal(err)
		}
		err = s.Present(e.request(cfg, acmeKey(), false))
		assertMessage(t, err, sa, fmt.Sprintf("may not get Secrets in namespace %q", e.ns), solver.SecretAccessValue)
	})
}

func TestAliDNS_Resolution(t *testing.T) {
	e := newAliEnv(t)
	_, _, cfg := e.accessKey(alisim.AllowAll)
	e.sim.AddDomain("dev.example.org", alisim.EnterpriseStandardEditon)
	// cert-manager guessed a parent that is not a domain of the account.
	ch := challenge(t, e.ns, "_acme-challenge.app.dev.example.org.", "example.org.", acmeKey(), cfg)
	if err := e.solver.Present(ch); err != nil {
		t.Fatal(err)
	}
	recs := e.sim.Records("_acme-challenge.app.dev.example.org")
	if len(recs) != 1 || recs[0].Domain != "dev.example.org" || recs[0].RR != "_acme-challenge.app" {
		t.Fatalf("want RR _acme-challenge.app in dev.example.org, got %+v", recs)
	}
}

func TestAliDNS_F15_ApexAndWildcardValuesCoexist(t *testing.T) {
	e := newAliEnv(t)
	_, _, cfg := e.accessKey(alisim.AllowAll)
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
	if err := e.cleanUp(cfg, wildcard); err != nil {
		t.Fatal(err)
	}
	if v := e.values(); len(v) != 1 || v[0] != apex {
		t.Fatalf("CleanUp of one value must keep the other, got %v", v)
	}
}

func TestAliDNS_F16_IdempotentAcrossRestartsAndReplicas(t *testing.T) {
	e := newAliEnv(t)
	_, _, cfg := e.accessKey(alisim.AllowAll)
	key := acmeKey()
	for range 2 {
		if err := e.present(cfg, key); err != nil {
			t.Fatalf("Present: %v", err)
		}
	}
	if v := e.values(); len(v) != 1 {
		t.Fatalf("Present twice must leave one record, got %v", v)
	}
	restarted := e.newSolver()
	for _, s := range []*solver.Solver{restarted, e.solver, restarted} {
		ch := e.request(cfg, key, false)
		ch.Action = whapi.ChallengeActionCleanUp
		if err := s.CleanUp(ch); err != nil {
			t.Fatalf("CleanUp: %v", err)
		}
	}
	if v := e.values(); len(v) != 0 {
		t.Fatalf("left behind: %v", v)
	}
}

func TestAliDNS_F17_ThrottlingIsRetried(t *testing.T) {
	for _, code := range []string{"Throttling.User", "Throttling", "LastOperationNotFinished"} {
		t.Run(code, func(t *testing.T) {
			e := newAliEnv(t)
			_, _, cfg := e.accessKey(alisim.AllowAll)
			e.sim.InjectFault(alisim.Fault{Action: "AddDomainRecord", Status: 400, Code: code, Times: 2})
			if err := e.present(cfg, acmeKey()); err != nil {
				t.Fatalf("%s must be retried: %v", code, err)
			}
			if n := e.sim.Calls()["AddDomainRecord"]; n != 3 {
				t.Errorf("want 3 attempts, got %d", n)
			}
		})
	}
	t.Run("a burst stays within the documented QPS", func(t *testing.T) {
		e := newAliEnv(t)
		_, _, cfg := e.accessKey(alisim.AllowAll)
		// AddDomainRecord allows 60 per second.
		for _, err := range renewAll(90, func(k string) error { return e.present(cfg, k) }, func(k string) error { return e.cleanUp(cfg, k) }) {
			t.Error(err)
		}
		if left := e.sim.AllRecords(); len(left) != 0 {
			t.Errorf("%d records left behind", len(left))
		}
		if n := e.sim.Throttled(); n != 0 {
			t.Errorf("the client-side budget should keep every call under the quota; %d were throttled", n)
		}
	})
}

// A transport failure keeps its cause and the endpoint, without the
// request URL (it carries the AccessKey id and signature).
func TestAliDNS_EndpointErrorKeepsItsCause(t *testing.T) {
	e := newAliEnv(t)
	e.opts.DNS = endpoint(t, e.sim.Endpoint()) // no scheme: HTTPS, at a plain-HTTP server
	e.solver = e.newSolver()
	id, secret, cfg := e.accessKey(alisim.AllowAll)
	err := e.present(cfg, acmeKey())
	assertMessage(t, err, "cannot reach Alibaba Cloud DNS: no answer from https://"+e.sim.Endpoint(), "server gave HTTP response to HTTPS client")
	assertNoAliSecrets(t, id, secret, err, e.logs)
	if strings.Contains(err.Error(), "Signature") || strings.Contains(err.Error(), "?") {
		t.Errorf("the error shows the request URL: %v", err)
	}
}
