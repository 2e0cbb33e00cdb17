package solver_test

import (
	"context"
	"testing"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/certbridge/certbridge/internal/metrics"
	"github.com/certbridge/certbridge/solver"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// A CleanUp whose request could never have created a record succeeds without
// any DNS call, and is counted by reason; so a Challenge replaced after the
// user fixed the Issuer never blocks the fixed one (README: "Recovering from
// a mistake").
func TestCleanUp_SkipsWhatPresentCouldNotHaveWritten(t *testing.T) {
	tokenRef := func(name, key string) map[string]any {
		return map[string]any{"apiTokenSecretRef": map[string]any{"name": name, "key": key}}
	}
	cases := []struct {
		name   string
		reason string
		// setup stores what the case needs and returns the config.
		setup func(e *cfEnv) any
	}{
		{"config typo", "config_invalid", func(e *cfEnv) any {
			return map[string]any{"apiTokenSecretref": map[string]any{"name": "cf-token", "key": "api-token"}}
		}},
		{"config that is not JSON", "config_invalid", func(e *cfEnv) any { return `{"apiTokenSecretRef": ` }},
		{"both credentials set", "config_invalid", func(e *cfEnv) any {
			return map[string]any{"apiTokenSecretRef": map[string]any{"name": "a", "key": "b"},
				"apiKeySecretRef": map[string]any{"name": "c", "key": "d"}, "email": "x@example.com"}
		}},
		{"Secret missing", "secret_not_found", func(e *cfEnv) any { return tokenRef("no-such-secret", "api-token") }},
		{"key missing", "secret_key_missing", func(e *cfEnv) any {
			createSecret(e.t, e.ns, "cf-wrong-key", map[string]string{"apiToken": randomToken()})
			return tokenRef("cf-wrong-key", "api-token")
		}},
		{"value empty", "secret_value_empty", func(e *cfEnv) any {
			createSecret(e.t, e.ns, "cf-empty", map[string]string{"api-token": " \n"})
			return tokenRef("cf-empty", "api-token")
		}},
		{"no zone of the account holds the name", "zone_not_found", func(e *cfEnv) any {
			_, cfg := e.token(cfsim.Token{Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}, Zones: []string{"example.org"}})
			return cfg
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCFEnv(t)
			cfg := tc.setup(e)
			key := acmeKey()
			if err := e.present(cfg, key); err == nil {
				t.Fatal("Present succeeded; the case must be one Present fails on")
			}
			skipped := metrics.CleanupsSkipped.WithLabelValues("cloudflare", tc.reason)
			before := promtest.ToFloat64(skipped)
			calls := e.sim.TotalCalls()
			if err := e.cleanUp(cfg, key); err != nil {
				t.Fatalf("CleanUp failed; it must succeed so cert-manager can drop the Challenge: %v", err)
			}
			if got := promtest.ToFloat64(skipped) - before; got != 1 {
				t.Errorf("certbridge_cleanups_skipped_total{reason=%q} rose by %v, want 1", tc.reason, got)
			}
			if tc.reason != "zone_not_found" && e.sim.TotalCalls() != calls {
				t.Errorf("CleanUp made %d Cloudflare calls, want none", e.sim.TotalCalls()-calls)
			}
			if e.logs.count("CleanUp skipped") == 0 {
				t.Errorf("the skip is not logged:\n%s", e.logs)
			}
		})
	}

	t.Run("alidns: Secret missing", func(t *testing.T) {
		e := newAliEnv(t)
		cfg := akConfig() // no Secret ali-key exists
		skipped := metrics.CleanupsSkipped.WithLabelValues("alidns", "secret_not_found")
		before := promtest.ToFloat64(skipped)
		if err := e.cleanUp(cfg, acmeKey()); err != nil {
			t.Fatal(err)
		}
		if got := promtest.ToFloat64(skipped) - before; got != 1 {
			t.Errorf("skipped counter rose by %v, want 1", got)
		}
	})
	t.Run("alidns: config typo", func(t *testing.T) {
		e := newAliEnv(t)
		cfg := map[string]any{"accessKeyIDSecretRef": map[string]any{"name": "ali-key", "key": "id"}}
		if err := e.cleanUp(cfg, acmeKey()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("alidns: domain not in the account", func(t *testing.T) {
		e := newAliEnv(t)
		_, _, cfg := e.accessKey(alisim.AllowAll)
		cfg["domainName"] = "example.org"
		if err := e.cleanUp(cfg, acmeKey()); err != nil {
			t.Fatal(err)
		}
	})
}

// A CleanUp that may have a record to remove keeps failing until the cause
// is fixed: cert-manager retries it, and the record is not left behind.
func TestCleanUp_RetriesWhatMayHaveARecord(t *testing.T) {
	t.Run("credential rejected", func(t *testing.T) {
		e := newCFEnv(t)
		createSecret(t, e.ns, "cf-token", map[string]string{"api-token": randomToken()}) // unknown to Cloudflare
		cfg := map[string]any{"apiTokenSecretRef": map[string]any{"name": "cf-token", "key": "api-token"}}
		assertMessage(t, e.cleanUp(cfg, acmeKey()), "Cloudflare rejected the credential")
	})
	t.Run("token may see the zone but not edit it", func(t *testing.T) {
		e := newCFEnv(t)
		_, cfg := e.token(cfsim.Token{Permissions: []cfsim.Permission{cfsim.ZoneRead}})
		assertMessage(t, e.cleanUp(cfg, acmeKey()), "Zone → DNS → Edit")
	})
	t.Run("RBAC forbids reading the Secret", func(t *testing.T) {
		e := newCFEnv(t)
		_, cfg := e.token(fullToken())
		user, err := kubeEnv(t).AddUser(envtest.User{Name: "system:serviceaccount:certbridge:cleanup-forbidden"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := solver.NewCloudflare(solver.Options{Log: e.logs.logger()}, e.opts)
		if err := s.Initialize(user.Config(), nil); err != nil {
			t.Fatal(err)
		}
		ch := challenge(t, e.ns, fqdn, zone, acmeKey(), cfg)
		assertMessage(t, s.CleanUp(ch), "may not get Secrets")
	})
}

// Key renamed after Present: skipped, and the log says why.
func TestCleanUp_SecretChangedAfterPresent(t *testing.T) {
	// The rule's one trade-off: a Secret changed between Present and
	// CleanUp leaves nothing to authenticate with, so the record stays
	// and the log line (with its reason) is what tells the operator.
	e := newCFEnv(t)
	token, cfg := e.token(fullToken())
	key := acmeKey()
	if err := e.present(cfg, key); err != nil {
		t.Fatal(err)
	}
	s, err := adminClient(t).CoreV1().Secrets(e.ns).Get(context.Background(), "cf-token", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Data = map[string][]byte{"token": []byte(token)}
	if _, err := adminClient(t).CoreV1().Secrets(e.ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.cleanUp(cfg, key); err != nil {
		t.Fatal(err)
	}
	if v := e.values("_acme-challenge.example.com"); len(v) != 1 {
		t.Fatalf("want the record still there (nothing could reach it), got %v", v)
	}
	if e.logs.count("secret_key_missing") == 0 {
		t.Errorf("the skipped CleanUp does not say why:\n%s", e.logs)
	}
}
