//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certbridge/certbridge/issuer/roots"
	"github.com/certbridge/certbridge/test/localcluster"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/testutil"
)

// a: ACME + cloudflare solver, apex and wildcard (two TXT values at one
// name), with cert-manager's real propagation self-check over UDP and Pebble
// validating over TCP.
func (e *env) scenarioA(t *testing.T) {
	t.Parallel()
	const ns = "scenario-a"
	e.namespace(t, ns, true)
	e.acmeIssuer(t, ns, "cloudflare", false)
	e.certificate(t, ns, "example-com", "acme-cloudflare", "example.com", "*.example.com")
	began := time.Now()
	secret := e.waitReady(t, ns, "example-com", 6*time.Minute)
	leaf := verifyChain(t, secret, e.pebbleRoots(t), "example.com", "www.example.com")
	t.Logf("a: Ready after %s with the self-check; %s", time.Since(began).Round(time.Second), summary(leaf))
}

// b: the same through the alidns solver (the Alibaba ASM case).
func (e *env) scenarioB(t *testing.T) {
	t.Parallel()
	const ns = "scenario-b"
	e.namespace(t, ns, true)
	e.acmeIssuer(t, ns, "alidns", true)
	e.certificate(t, ns, "example-net", "acme-alidns", "example.net", "*.example.net")
	began := time.Now()
	secret := e.waitReady(t, ns, "example-net", 3*time.Minute)
	leaf := verifyChain(t, secret, e.pebbleRoots(t), "example.net", "api.example.net")
	t.Logf("b: Ready after %s; %s", time.Since(began).Round(time.Second), summary(leaf))
}

// c: a Gateway API Gateway annotated for cert-manager, as an Istio ingress
// gateway is: cert-manager's gateway-shim creates the Certificate.
func (e *env) scenarioC(t *testing.T) {
	t.Parallel()
	const ns = "scenario-c"
	e.namespace(t, ns, true)
	e.acmeIssuer(t, ns, "cloudflare", true)
	e.apply(t, `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
  namespace: scenario-c
  annotations: {cert-manager.io/issuer: acme-cloudflare}
spec:
  gatewayClassName: istio
  listeners:
    - name: https
      hostname: bookinfo.example.com
      port: 443
      protocol: HTTPS
      tls:
        mode: Terminate
        certificateRefs: [{kind: Secret, name: bookinfo-tls}]
`)
	began := time.Now()
	secret := e.waitReady(t, ns, "bookinfo-tls", 3*time.Minute)
	leaf := verifyChain(t, secret, e.pebbleRoots(t), "bookinfo.example.com")
	t.Logf("c: gateway-shim's Certificate bookinfo-tls Ready after %s; %s", time.Since(began).Round(time.Second), summary(leaf))
}

// d: F1 — the token Secret lives in another namespace than the Issuer. The
// Challenge says so; creating it in the right namespace is the whole fix.
func (e *env) scenarioD(t *testing.T) {
	t.Parallel()
	const ns, other = "scenario-d", "scenario-d-elsewhere"
	e.namespace(t, ns, false)
	e.namespace(t, other, true)
	e.acmeIssuer(t, ns, "cloudflare", true)
	e.certificate(t, ns, "d-example-com", "acme-cloudflare", "d.example.com")
	reason := e.waitChallengeReason(t, ns, 3*time.Minute,
		`Secret "cloudflare-api-token"`, `not found in namespace "scenario-d"`, "apiTokenSecretRef.name")
	t.Logf("d: the Challenge says: %s", reason)
	began := time.Now()
	e.credentials(t, ns)
	secret := e.waitReady(t, ns, "d-example-com", 3*time.Minute)
	leaf := verifyChain(t, secret, e.pebbleRoots(t), "d.example.com")
	t.Logf("d: after the Secret was created in %s, Ready in %s with nothing else touched; %s", ns, time.Since(began).Round(time.Second), summary(leaf))
}

// e: F22 — cert-manager runs as a ServiceAccount the chart was not told
// about: the exact RBAC error reaches the Challenge; the chart value fixes it.
func (e *env) scenarioE(t *testing.T) {
	const ns, sa = "scenario-e", "cert-manager-controller"
	if err := e.c.ApplyCertManagerRBAC(e.ctx, sa); err != nil {
		t.Fatal(err)
	}
	if err := e.c.StartCertManager(e.ctx, sa); err != nil {
		t.Fatal(err)
	}
	e.namespace(t, ns, true)
	e.acmeIssuer(t, ns, "cloudflare", true)
	e.certificate(t, ns, "e-example-com", "acme-cloudflare", "e.example.com")
	reason := e.waitChallengeReason(t, ns, 3*time.Minute,
		`User "system:serviceaccount:cert-manager:cert-manager-controller" cannot create resource "cloudflare" in API group "`+localcluster.GroupName+`"`)
	t.Logf("e: the Challenge says: %s", reason)
	began := time.Now()
	if err := e.c.InstallChart(e.ctx, "certManager.serviceAccountName="+sa); err != nil {
		t.Fatal(err)
	}
	secret := e.waitReady(t, ns, "e-example-com", 3*time.Minute)
	leaf := verifyChain(t, secret, e.pebbleRoots(t), "e.example.com")
	t.Logf("e: after the chart was applied with certManager.serviceAccountName=%s, Ready in %s; %s", sa, time.Since(began).Round(time.Second), summary(leaf))
}

// f: a CloudflareOriginIssuer Certificate, and an istio-csr-shaped request
// to an AlibabaPCAIssuer; cert-manager approves both (the chart lets it).
func (e *env) scenarioF(t *testing.T) {
	t.Parallel()
	const ns = "scenario-f"
	e.namespace(t, ns, true)
	// cert-manager's approval check asks for "<kind>.<group>/*" first, which
	// is what its chart and ours grant.
	for _, signer := range []string{"cloudflareoriginissuers.certbridge.io/*", "alibabapcaissuers.certbridge.io/*"} {
		e.assertCertManagerMay(t, "approve", "cert-manager.io", "signers", signer)
	}
	e.apply(t, `
apiVersion: certbridge.io/v1alpha1
kind: CloudflareOriginIssuer
metadata: {name: origin, namespace: scenario-f}
spec:
  auth: {tokenRef: {name: cloudflare-api-token, key: api-token}}
---
apiVersion: certbridge.io/v1alpha1
kind: AlibabaPCAIssuer
metadata: {name: pca, namespace: scenario-f}
spec:
  caIdentifier: `+localcluster.PCASubCA+`
  regionId: cn-hangzhou
  auth:
    accessKeyIdSecretRef: {name: alidns-access-key, key: access-key-id}
    accessKeySecretSecretRef: {name: alidns-access-key, key: access-key-secret}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: origin-example-com, namespace: scenario-f}
spec:
  secretName: origin-example-com
  duration: 2160h
  issuerRef: {group: certbridge.io, kind: CloudflareOriginIssuer, name: origin}
  dnsNames: [origin.example.com]
`)
	secret := e.waitReady(t, ns, "origin-example-com", 2*time.Minute)
	simRoot := x509.NewCertPool()
	simRoot.AddCert(e.c.Cloudflare.OriginCARoot(cfsim.OriginRSA))
	leaf := verifyChain(t, secret, simRoot, "origin.example.com")
	if !bytes.Equal(bytes.TrimSpace(secret.Data["ca.crt"]), bytes.TrimSpace(roots.OriginRSA)) {
		t.Errorf("ca.crt of an RSA Origin certificate should be Cloudflare's Origin RSA root")
	}
	if days := leaf.NotAfter.Sub(leaf.NotBefore).Hours() / 24; days < 89 || days > 91 {
		t.Errorf("90 days requested, Cloudflare offers 90: got %.1f days", days)
	}
	t.Logf("f: CloudflareOriginIssuer: %s; ca.crt is Cloudflare's Origin RSA root", summary(leaf))

	// What istio-csr sends: no common name, a SPIFFE URI SAN, client and
	// server auth, one hour.
	// Istio's workload keys are RSA 2048 by default, which is also what the
	// simulated sub-CA issues for (PCA requires the CA's key algorithm).
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	spiffe, _ := url.Parse("spiffe://cluster.local/ns/sandbox/sa/sleep")
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{spiffe}}, key)
	if err != nil {
		t.Fatal(err)
	}
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-csr-sleep", Namespace: ns},
		Spec: cmapi.CertificateRequestSpec{
			Request:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}),
			Duration:  &metav1.Duration{Duration: time.Hour},
			Usages:    []cmapi.KeyUsage{cmapi.UsageClientAuth, cmapi.UsageServerAuth},
			IssuerRef: cmmeta.IssuerReference{Group: "certbridge.io", Kind: "AlibabaPCAIssuer", Name: "pca"},
		},
	}
	if _, err := e.c.CM.CertmanagerV1().CertificateRequests(ns).Create(e.ctx, cr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got *cmapi.CertificateRequest
	testutil.Eventually(t, 2*time.Minute, "CertificateRequest "+cr.Name+" issued", func() (bool, string) {
		var err error
		if got, err = e.c.CM.CertmanagerV1().CertificateRequests(ns).Get(e.ctx, cr.Name, metav1.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		if apiutil.CertificateRequestHasCondition(got, cmapi.CertificateRequestCondition{
			Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionFalse, Reason: cmapi.CertificateRequestReasonFailed}) {
			t.Fatalf("CertificateRequest %s failed: %v", cr.Name, got.Status.Conditions)
		}
		return len(got.Status.Certificate) > 0, fmt.Sprint(got.Status.Conditions)
	})
	pcaRoots := x509.NewCertPool()
	if !pcaRoots.AppendCertsFromPEM(got.Status.CA) {
		t.Fatal("status.ca is empty")
	}
	leaf = verifyPEMChain(t, "the PCA certificate (against status.ca)", got.Status.Certificate, pcaRoots,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth})
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != spiffe.String() {
		t.Errorf("URI SANs %v, want %s", leaf.URIs, spiffe)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("validity %s, want 1h", d)
	}
	t.Logf("f: AlibabaPCAIssuer, istio-csr-shaped request approved by cert-manager and signed: %s, usages %v", summary(leaf), leaf.ExtKeyUsage)
}

// assertCertManagerMay asks the API server's authorizer whether cert-manager's
// ServiceAccount may do verb on a resource: cert-manager's own admission
// webhook (not run here) makes the same check before an approval.
func (e *env) assertCertManagerMay(t *testing.T, verb, group, resource, name string) {
	t.Helper()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               "system:serviceaccount:" + localcluster.CertManagerNamespace + ":" + localcluster.CertManagerServiceAccount,
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + localcluster.CertManagerNamespace, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Name: name},
	}}
	got, err := e.c.Kube.AuthorizationV1().SubjectAccessReviews().Create(e.ctx, sar, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Status.Allowed {
		t.Errorf("cert-manager may not %s %s.%s %q: %s", verb, resource, group, name, got.Status.Reason)
	}
}

// g: every challenge cleaned up in both simulators, and no credential or
// token in any component's log.
func (e *env) scenarioG(t *testing.T) {
	var leftovers []string
	deadline := time.Now().Add(time.Minute)
	for {
		leftovers = leftovers[:0]
		for _, r := range e.c.Cloudflare.AllRecords() {
			if r.Type == "TXT" {
				leftovers = append(leftovers, "cloudflare "+r.Name)
			}
		}
		for _, r := range e.c.Alibaba.AllRecords() {
			if r.Type == "TXT" {
				leftovers = append(leftovers, "alidns "+r.FQDN())
			}
		}
		if len(leftovers) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(leftovers) > 0 {
		t.Errorf("TXT records left behind: %v", leftovers)
	}
	files, err := e.c.LogFiles()
	if err != nil {
		t.Fatal(err)
	}
	lines, leaks := 0, 0
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for n := 1; sc.Scan(); n++ {
			lines++
			for _, secret := range e.c.Secrets() {
				if secret != "" && strings.Contains(sc.Text(), secret) {
					leaks++
					t.Errorf("%s:%d contains a secret value", f, n)
				}
			}
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("g: %d TXT records left in the simulators; %d of %d log lines from %d components contain a secret value (%d values checked)",
		len(leftovers), leaks, lines, len(files), len(e.c.Secrets()))
}

func (e *env) pebbleRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	pool, err := e.c.PebbleRoots(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// The webhook process's metrics listener, scraped over HTTP like the chart's
// ServiceMonitor does, counts exactly the DNS API calls the simulators saw
// (the issuer's Origin CA calls reach the same Cloudflare simulator, so
// those routes are left out).
// metrics: the webhook's real metrics listener counts the API calls the
// simulators saw. Other clients (check issuer's runs) reach the simulators
// too, so the counts are compared over a window in which only the webhook
// works: one more certificate through each solver, nothing else running.
func (e *env) scenarioMetrics(t *testing.T) {
	const ns = "scenario-metrics"
	e.namespace(t, ns, true)
	e.acmeIssuer(t, ns, "cloudflare", true)
	e.acmeIssuer(t, ns, "alidns", true)
	webhookBefore, cfBefore, aliBefore := e.scrapeCalls(t), e.cloudflareDNSCalls(), e.c.Alibaba.TotalDNSCalls()
	e.certificate(t, ns, "m-example-com", "acme-cloudflare", "m.example.com")
	e.certificate(t, ns, "m-example-net", "acme-alidns", "m.example.net")
	e.waitReady(t, ns, "m-example-com", 2*time.Minute)
	e.waitReady(t, ns, "m-example-net", 2*time.Minute)
	e.waitNoChallenges(t, ns) // CleanUps done too
	after := e.scrapeCalls(t)
	cf, ali := e.cloudflareDNSCalls()-cfBefore, e.c.Alibaba.TotalDNSCalls()-aliBefore
	for _, tt := range []struct {
		provider  string
		simulator int
	}{{"cloudflare", cf}, {"alidns", ali}} {
		if got := after[tt.provider] - webhookBefore[tt.provider]; got != tt.simulator || got == 0 {
			t.Errorf("certbridge_provider_api_calls_total{provider=%q} rose by %d, the simulator counted %d", tt.provider, got, tt.simulator)
		}
	}
	if after["Present"] == 0 {
		t.Errorf("certbridge_challenges_total{action=\"Present\"} is 0 after the scenarios")
	}
	t.Logf("metrics: %s — for one certificate each: cloudflare API calls %d (simulator %d), alidns %d (simulator %d); challenges presented in all %d",
		e.c.WebhookMetricsURL(), after["cloudflare"]-webhookBefore["cloudflare"], cf, after["alidns"]-webhookBefore["alidns"], ali, after["Present"])
}

// scrapeCalls reads the webhook's metrics: API calls by provider, and
// Presents.
func (e *env) scrapeCalls(t *testing.T) map[string]int {
	t.Helper()
	resp, err := http.Get(e.c.WebhookMetricsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	sum := func(family, label, value string) int {
		total := 0.0
		for _, m := range families[family].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					total += m.GetCounter().GetValue()
				}
			}
		}
		return int(total)
	}
	return map[string]int{
		"cloudflare": sum("certbridge_provider_api_calls_total", "provider", "cloudflare"),
		"alidns":     sum("certbridge_provider_api_calls_total", "provider", "alidns"),
		"Present":    sum("certbridge_challenges_total", "action", "Present"),
	}
}

// cloudflareDNSCalls counts the simulator's zone and record calls (Origin
// CA calls come from the issuer, not the webhook).
func (e *env) cloudflareDNSCalls() int {
	n := 0
	for route, c := range e.c.Cloudflare.Calls() {
		if strings.Contains(route, " /zones") {
			n += c
		}
	}
	return n
}
