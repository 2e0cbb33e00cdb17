//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certbridge/certbridge/test/localcluster"
	"github.com/certbridge/certbridge/test/testutil"
)

// h, i: the user makes a mistake, reads the Challenge, fixes the Issuer the
// way the message says — and nothing else. cert-manager replaces the
// Challenge; the webhook's CleanUp of the old one (with the old, broken
// config) succeeds, so the new one is scheduled and the Certificate Ready.
func (e *env) recoverAfterFix(t *testing.T, ns, dnsName, brokenConfig string, reasonWants ...string) {
	t.Helper()
	e.namespace(t, ns, true)
	e.apply(t, e.c.ACMEIssuerWith(ns, "cloudflare", true, localcluster.GroupName, brokenConfig))
	cert := strings.ReplaceAll(dnsName, ".", "-")
	e.certificate(t, ns, cert, "acme-cloudflare", dnsName)
	reason := e.waitChallengeReason(t, ns, 3*time.Minute, reasonWants...)
	t.Logf("%s: the Challenge says: %s", ns, reason)

	fixed := time.Now()
	e.acmeIssuer(t, ns, "cloudflare", true)
	secret := e.waitReady(t, ns, cert, 4*time.Minute)
	leaf := verifyChain(t, secret, e.pebbleRoots(t), dnsName)
	e.waitNoChallenges(t, ns)
	if left := e.c.Cloudflare.Records("_acme-challenge." + dnsName); len(left) != 0 {
		t.Errorf("records left at _acme-challenge.%s: %+v", dnsName, left)
	}
	t.Logf("%s: after fixing the Issuer and touching nothing else, Ready in %s; the old Challenge's CleanUp was skipped, no record left; %s",
		ns, time.Since(fixed).Round(time.Second), summary(leaf))
}

func (e *env) scenarioH(t *testing.T) {
	t.Parallel()
	e.recoverAfterFix(t, "scenario-h", "h.example.com",
		`{apiTokenSecretref: {name: cloudflare-api-token, key: api-token}}`,
		`unknown field "apiTokenSecretref"`, `did you mean "apiTokenSecretRef"?`)
}

func (e *env) scenarioI(t *testing.T) {
	t.Parallel()
	e.recoverAfterFix(t, "scenario-i", "i.example.com",
		`{apiTokenSecretRef: {name: cloudflare-api-token, key: apiToken}}`,
		`has no key "apiToken" (apiTokenSecretRef.key)`, "it has the keys api-token")
}

// j: F23 — the Issuer names an API group the webhook does not serve. The
// Challenge's exact message is a row of docs/troubleshooting.md; after the
// fix the old Challenge cannot be cleaned up (cert-manager reaches no
// webhook for that group), `certbridge check issuer` finds it and prints the
// command that releases it; running that command is the only other step.
func (e *env) scenarioJ(t *testing.T) {
	t.Parallel()
	const ns, wrongGroup = "scenario-j", "acme.example.com"
	e.namespace(t, ns, true)
	e.apply(t, e.c.ACMEIssuerWith(ns, "cloudflare", true, wrongGroup, localcluster.SolverConfig("cloudflare")))
	e.certificate(t, ns, "j-example-com", "acme-cloudflare", "j.example.com")
	reason := e.waitChallengeReason(t, ns, 3*time.Minute, `in API group "`+wrongGroup+`"`)
	t.Logf("j: the Challenge says: %s", reason)
	table, err := os.ReadFile(filepath.Join(e.c.ModuleRoot(), "docs", "troubleshooting.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(table), "| `"+reason+"`") {
		t.Errorf("docs/troubleshooting.md's table has no row for the Challenge's exact message:\n%s", reason)
	}

	k := &checkEnv{env: *e, secrets: e.c.Secrets()}
	k.expect(t, 1, []string{"issuer/acme-cloudflare", "-n", ns},
		`✗ APIService v1alpha1.`+wrongGroup+`: the Issuer's groupName "`+wrongGroup+`" is not served`,
		"cert-manager's Challenges fail with: "+reason,
		"fix: set webhook.groupName: "+localcluster.GroupName+" in the Issuer")

	e.acmeIssuer(t, ns, "cloudflare", true)
	var stuck *cmacme.Challenge
	testutil.Eventually(t, 2*time.Minute, "the wrong-group Challenge stuck in deletion", func() (bool, string) {
		list, err := e.c.CM.AcmeV1().Challenges(ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			ch := &list.Items[i]
			if ch.DeletionTimestamp != nil && ch.Spec.Solver.DNS01.Webhook.GroupName == wrongGroup {
				stuck = ch
				return true, ""
			}
		}
		return false, "\n" + e.describe(ns)
	})
	release := fmt.Sprintf(`kubectl -n %s patch challenge %s --type=merge -p '{"metadata":{"finalizers":null}}'`, ns, stuck.Name)
	k.expect(t, 1, []string{"issuer/acme-cloudflare", "-n", ns},
		fmt.Sprintf("✗ Challenge %s/%s: deleted ", ns, stuck.Name),
		"kept by cert-manager's finalizer, for j.example.com",
		fmt.Sprintf(`the Challenge names API group %q, which no webhook serves`, wrongGroup),
		"release it with "+release)

	released := time.Now()
	if _, err := e.c.Kubectl(e.ctx, nil, "-n", ns, "patch", "challenge", stuck.Name, "--type=merge", "-p", `{"metadata":{"finalizers":null}}`); err != nil {
		t.Fatal(err)
	}
	secret := e.waitReady(t, ns, "j-example-com", 4*time.Minute)
	leaf := verifyChain(t, secret, e.pebbleRoots(t), "j.example.com")
	k.expect(t, 0, []string{"issuer/acme-cloudflare", "-n", ns}, "✓ Challenges: none of the issuer's Challenges is stuck in deletion")
	t.Logf("j: after fixing groupName and running the printed release command, Ready in %s; %s", time.Since(released).Round(time.Second), summary(leaf))
}

// waitNoChallenges waits until no Challenge is left in namespace: every one
// was cleaned up and released by cert-manager.
func (e *env) waitNoChallenges(t *testing.T, namespace string) {
	t.Helper()
	testutil.Eventually(t, time.Minute, "no Challenge left in "+namespace, func() (bool, string) {
		list, err := e.c.CM.AcmeV1().Challenges(namespace).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.Items) == 0, fmt.Sprintf("%d left:\n%s", len(list.Items), e.describe(namespace))
	})
}
