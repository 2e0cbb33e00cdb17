//go:build e2e

// Package e2e issues real certificates through cert-manager's own
// controllers, Pebble, the certbridge chart's objects, `certbridge webhook`
// behind the aggregated API and `certbridge issuer`, on a real kube-apiserver
// (see test/localcluster). Run it with `make e2e`.
package e2e

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certbridge/certbridge/test/localcluster"
	"github.com/certbridge/certbridge/test/testutil"
)

func TestEndToEnd(t *testing.T) {
	// Beside TestDemoOnce (its own process); TestCheckIssuer's in-process
	// cluster runs before, as both would take over klog's output.
	t.Parallel()
	began := time.Now()
	e := startEnv(t, 15*time.Minute)

	// The scenarios use separate namespaces and names and run side by side;
	// a and k keep cert-manager's real DNS self-check and its fixed 60 s
	// wait, so they take the longest.
	t.Run("parallel", func(t *testing.T) {
		t.Run("a_cloudflare_apex_and_wildcard_with_self_check", e.scenarioA)
		t.Run("b_alidns_apex_and_wildcard", e.scenarioB)
		t.Run("c_gateway_api_gateway", e.scenarioC)
		t.Run("d_secret_in_another_namespace_then_fixed", e.scenarioD)
		t.Run("f_origin_ca_and_istio_csr_shaped_pca_request", e.scenarioF)
		t.Run("h_config_typo_fixed_in_the_issuer_reaches_ready", e.scenarioH)
		t.Run("i_wrong_secret_key_fixed_in_the_issuer_reaches_ready", e.scenarioI)
		t.Run("j_wrong_group_name_F23_found_and_released_by_check", e.scenarioJ)
		t.Run("k_delegated_acme_challenge_cname_into_alidns_with_self_check", e.scenarioK)
		t.Run("l_istio_gateway_simple_and_mutual_from_private_ca", e.scenarioL)
		t.Run("m_tenant_service_accounts_through_alidns_and_private_ca", e.scenarioM)
		t.Run("n_certificate_deleted_and_applied_again_reaches_ready", e.scenarioN)
	})
	// garbage measures the webhook's memory under its own load only, and
	// sends as cert-manager's default ServiceAccount, which e replaces.
	t.Run("garbage_webhook_answers_4xx_stays_up_and_leaks_nothing", e.scenarioGarbage)
	// e restarts cert-manager under another ServiceAccount, so it runs alone.
	t.Run("e_cert_manager_service_account_not_in_chart_F22", e.scenarioE)
	t.Run("g_no_leftover_records_and_no_secret_in_logs", e.scenarioG)
	t.Run("metrics_endpoint_matches_the_simulators", e.scenarioMetrics)
	t.Logf("end-to-end: %s from an empty directory to the last scenario", time.Since(began).Round(time.Second))
}

// startEnv starts a local cluster for one test; it stops when the test ends,
// and a failed test prints the tail of every component's log.
func startEnv(t *testing.T, timeout time.Duration) *env {
	t.Helper()
	opts, err := localcluster.OptionsFromEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts.Progress = testWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	c, err := localcluster.Start(ctx, opts)
	if err != nil {
		dumpLogs(t, opts.Dir)
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, opts.Dir)
		}
	})
	return &env{c: c, ctx: ctx, binary: opts.Certbridge}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type env struct {
	c      *localcluster.Cluster
	ctx    context.Context
	binary string
}

// setup creates a namespace holding both simulated accounts' credentials.
func (e *env) namespace(t *testing.T, name string, withCredentials bool) {
	t.Helper()
	if err := e.c.CreateNamespace(e.ctx, name); err != nil {
		t.Fatal(err)
	}
	if withCredentials {
		e.credentials(t, name)
	}
}

func (e *env) credentials(t *testing.T, namespace string) {
	t.Helper()
	e.apply(t, e.c.CredentialSecrets(namespace))
}

func (e *env) apply(t *testing.T, manifest string) {
	t.Helper()
	if err := e.c.ApplyYAML(e.ctx, manifest); err != nil {
		t.Fatal(err)
	}
}

func (e *env) acmeIssuer(t *testing.T, namespace, solver string, fast bool) {
	t.Helper()
	e.apply(t, e.c.ACMEIssuer(namespace, solver, fast))
}

func (e *env) certificate(t *testing.T, namespace, name, issuer string, dnsNames ...string) {
	t.Helper()
	e.apply(t, localcluster.Certificate(namespace, name, "Issuer", "cert-manager.io", issuer, dnsNames...))
}

func (e *env) waitReady(t *testing.T, namespace, name string, timeout time.Duration) *corev1.Secret {
	t.Helper()
	secret, err := e.c.WaitCertificateReady(e.ctx, namespace, name, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func (e *env) describe(namespace string) string { return e.c.Describe(e.ctx, namespace) }

// waitChallengeReason waits until a Challenge in namespace reports a reason
// containing every want, and returns that reason.
func (e *env) waitChallengeReason(t *testing.T, namespace string, timeout time.Duration, want ...string) string {
	t.Helper()
	var reason string
	testutil.Eventually(t, timeout, fmt.Sprintf("a Challenge in %s reporting %q", namespace, want), func() (bool, string) {
		list, err := e.c.CM.AcmeV1().Challenges(namespace).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range list.Items {
			if containsAll(ch.Status.Reason, want) {
				reason = ch.Status.Reason
				return true, ""
			}
		}
		return false, "\n" + e.describe(namespace)
	})
	return reason
}

func containsAll(s string, want []string) bool {
	for _, w := range want {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// verifyChain checks that the Secret's chain verifies to roots for every
// name, and returns the leaf.
func verifyChain(t *testing.T, secret *corev1.Secret, roots *x509.CertPool, names ...string) *x509.Certificate {
	t.Helper()
	return verifyPEMChain(t, "Secret "+secret.Namespace+"/"+secret.Name, secret.Data["tls.crt"], roots,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageAny}, names...)
}

// verifyPEMChain checks that a PEM chain (leaf first) verifies to roots for
// the usages and every name (none: no name check), and returns the leaf.
func verifyPEMChain(t *testing.T, what string, chain []byte, roots *x509.CertPool, usages []x509.ExtKeyUsage, names ...string) *x509.Certificate {
	t.Helper()
	certs := parsePEM(t, chain)
	if len(certs) == 0 {
		t.Fatalf("%s: no certificate", what)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if len(names) == 0 {
		names = []string{""}
	}
	for _, name := range names {
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name, KeyUsages: usages}); err != nil {
			t.Errorf("%s: the chain does not verify for %q: %v", what, name, err)
		}
	}
	return certs[0]
}

func parsePEM(t *testing.T, data []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return certs
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
}

func summary(leaf *x509.Certificate) string {
	sans := append([]string{}, leaf.DNSNames...)
	for _, u := range leaf.URIs {
		sans = append(sans, u.String())
	}
	return fmt.Sprintf("subject %q, SANs %v, issuer %q, valid until %s", leaf.Subject.String(), sans, leaf.Issuer.String(), leaf.NotAfter.UTC().Format(time.RFC3339))
}

// dumpLogs prints the tail of every component's log after a failure.
func dumpLogs(t *testing.T, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("--- last lines of %s:\n%s", f, strings.Join(lines, "\n"))
	}
}

// make demo's run-once mode prints both issued certificates.
func TestDemoOnce(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// -tags e2e as make demo: the build settings of this test, so nothing is
	// compiled twice.
	cmd := exec.CommandContext(ctx, "go", "run", "-tags", "e2e", "./test/localcluster/cmd/demo", "--once")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo --once: %v\n%s", err, out)
	}
	for _, want := range []string{
		"Certificate demo/wildcard-example-com Ready", "SANs:    example.com, *.example.com", "issuer:  CN=Pebble Intermediate CA",
		"Certificate demo/origin-example-com Ready", "SANs:    origin.example.com", "issuer:  CN=CloudFlare Origin SSL Certificate Authority",
		"certificate.cert-manager.io/wildcard-example-com   True",
		// What a newcomer needs to write their own Issuers against it.
		"kubeconfig:     export KUBECONFIG=/", "kubectl:        /", "(Client Version: v1.36.2)",
		"ACME server:    Pebble, directory https://127.0.0.1:", "Issuers set skipTLSVerify: true",
		"Secret <namespace>/cloudflare-api-token (key api-token)", "Secret <namespace>/alidns-access-key", `e.g. in namespace "demo"`,
		"Cloudflare:     zones example.com (simulated API http://127.0.0.1:", "Alibaba DNS:    domains example.net",
		`Private CA:     sub-CA "e2e-sub-ca" for AlibabaPCAIssuer spec.caIdentifier`,
		"webhook:        certbridge webhook for API group acme.certbridge.io, metrics http://127.0.0.1:", "/logs/certbridge-webhook.log",
		"issuer:         certbridge issuer, metrics http://127.0.0.1:", "/logs/certbridge-issuer.log",
		"The chart's Deployments show 0/2 and 0/1 ready: no kubelet runs here",
		"waitInsteadOfSelfCheck: 0s", "groupName: acme.certbridge.io",
		"Stopped. The logs are kept in /",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("demo --once printed:\n%s", out[strings.Index(string(out), "Certificate demo/"):])
}
