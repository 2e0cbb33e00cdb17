//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certbridge/certbridge/test/localcluster"
)

// TestCheckGateway runs `certbridge check gateway` — the real binary,
// against the real kube-apiserver with Gateway API's and Istio's CRDs,
// cert-manager's controllers (gateway-shim included) and the certbridge
// issuer — on a Gateway API Gateway issued through the ACME cloudflare
// solver and an Istio MUTUAL Gateway served from AlibabaPCAIssuer
// certificates, both all ✓, and once per mistake it detects. The gateway
// pods Istio's selector matches are plain Pods: nothing runs them, their
// labels and namespace are what the check reads. Every run asserts the exit
// code, the ✗ line and its fix, and that no private key is printed.
func TestCheckGateway(t *testing.T) {
	began := time.Now()
	e := startEnv(t, 10*time.Minute)
	c := e.c
	k := &checkEnv{env: *e, secrets: c.Secrets(), command: "gateway"}
	started := time.Now()
	// One CA signs the certificates the tests make themselves, for the
	// mistakes cert-manager would not make (expired, wrong names).
	ca := newTestCA(t)

	t.Run("parallel", func(t *testing.T) {
		t.Run("gateway_api_acme_cloudflare_all_pass", func(t *testing.T) {
			t.Parallel()
			const ns = "gw-api"
			e.namespace(t, ns, true)
			e.acmeIssuer(t, ns, "cloudflare", true)
			e.apply(t, `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bookinfo-gateway
  namespace: gw-api
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
			secret := e.waitReady(t, ns, "bookinfo-tls", 3*time.Minute)
			kk := k.with(string(secret.Data["tls.key"]))
			out := kk.expect(t, 0, []string{"bookinfo-gateway", "-n", ns, "--issuer"},
				"Gateway gw-api/bookinfo-gateway (gateway.networking.k8s.io)",
				"✓ cert-manager gateway-shim: cert-manager's Deployment cert-manager/cert-manager ("+c.CertManagerVersion+") runs with --enable-gateway-api; the annotation cert-manager.io/issuer: acme-cloudflare asks it for a Certificate",
				"✓ listener https: HTTPS on port 443 for bookinfo.example.com, TLS Terminate with 1 certificateRef(s)",
				`✓ listener https secret namespace: "gw-api": spec.listeners[0].tls.certificateRefs[0] names no namespace, so the gateway reads Secret "bookinfo-tls" from the Gateway's own namespace`,
				"✓ listener https Secret: Secret gw-api/bookinfo-tls, type kubernetes.io/tls: tls.crt and tls.key; the key matches the certificate; a chain of 2 certificate(s)",
				"✓ listener https hosts: the certificate covers bookinfo.example.com (SANs: bookinfo.example.com)",
				"✓ listener https validity: valid until ",
				"✓ listener https Certificate: Certificate gw-api/bookinfo-tls (issuer Issuer acme-cloudflare, made by cert-manager's gateway-shim for this Gateway) writes the Secret: Ready True",
				// --issuer: the issuer, as check issuer sees it.
				"✓ Issuer gw-api/acme-cloudflare › solvers[0] token: active",
				"✓ Issuer gw-api/acme-cloudflare › cert-manager may create cloudflare.acme.certbridge.io",
				"✓ Issuer gw-api/acme-cloudflare › Ready: True (ACMEAccountRegistered)")
			if strings.Contains(out, "✗") {
				t.Errorf("a ✗ line in an all-✓ run:\n%s", out)
			}
			// The kind given, and -o json for scripts.
			js := kk.expect(t, 0, []string{"bookinfo-gateway", "-n", ns, "--kind", "gateway.networking.k8s.io", "-o", "json"}, `"passed": true`)
			if !strings.Contains(js, `"target": "Gateway gw-api/bookinfo-gateway (gateway.networking.k8s.io)"`) {
				t.Errorf("-o json lacks the target:\n%s", js)
			}
			// A name that is not there: the Gateways that are.
			k.expect(t, 1, []string{"bokinfo-gateway", "-n", ns},
				`✗ gateway: no Gateway "bokinfo-gateway" in namespace "gw-api" (looked for gateways.gateway.networking.k8s.io and gateways.networking.istio.io)`,
				"fix: check the name and the namespace (-n); Gateways in gw-api: bookinfo-gateway (gateway.networking.k8s.io)")
		})
		t.Run("istio_mutual_alibaba_pca_all_pass", func(t *testing.T) {
			t.Parallel()
			const ns, workload = "gw-istio", "istio-system"
			e.namespace(t, ns, false)
			e.namespace(t, workload, true)
			k.gatewayPod(t, workload, "ingressgateway-mtls-0", "ingressgateway-mtls")
			e.apply(t, `
apiVersion: certbridge.io/v1alpha1
kind: AlibabaPCAIssuer
metadata: {name: pca, namespace: istio-system}
spec:
  caIdentifier: `+localcluster.PCASubCA+`
  auth:
    accessKeyIdSecretRef: {name: alidns-access-key, key: access-key-id}
    accessKeySecretSecretRef: {name: alidns-access-key, key: access-key-secret}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: mtls-gateway-tls, namespace: istio-system}
spec:
  secretName: mtls-gateway-tls
  privateKey: {algorithm: RSA, size: 2048}
  issuerRef: {group: certbridge.io, kind: AlibabaPCAIssuer, name: pca}
  dnsNames: [mtls.example.com]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: mtls-gateway, namespace: gw-istio}
spec:
  selector: {istio: ingressgateway-mtls}
  servers:
    - port: {number: 443, name: https, protocol: HTTPS}
      hosts: [gw-istio/mtls.example.com]
      tls: {mode: MUTUAL, credentialName: mtls-gateway-tls}
`)
			secret := e.waitReady(t, workload, "mtls-gateway-tls", 2*time.Minute)
			kk := k.with(string(secret.Data["tls.key"]))
			out := kk.expect(t, 0, []string{"mtls-gateway", "-n", ns, "--issuer"},
				"Gateway gw-istio/mtls-gateway (networking.istio.io)",
				`✓ gateway workload: spec.selector istio=ingressgateway-mtls matches pods in "istio-system" (pod ingressgateway-mtls-0): Istio reads credentialName Secrets from the namespace of the gateway workload, not from the Gateway's "gw-istio"`,
				"✓ servers[0] https: TLS MUTUAL on port 443 for gw-istio/mtls.example.com with spec.servers[0].tls.credentialName mtls-gateway-tls",
				"✓ servers[0] https Secret: Secret istio-system/mtls-gateway-tls, type kubernetes.io/tls: tls.crt and tls.key; the key matches the certificate",
				`✓ servers[0] https client CA: Secret istio-system/mtls-gateway-tls key "ca.crt": 1 CA certificate(s) verify client certificates`,
				"✓ servers[0] https hosts: the certificate covers mtls.example.com",
				"✓ servers[0] https validity: valid until ",
				"✓ servers[0] https Certificate: Certificate istio-system/mtls-gateway-tls (issuer AlibabaPCAIssuer.certbridge.io pca) writes the Secret: Ready True",
				"✓ AlibabaPCAIssuer istio-system/pca › Alibaba Cloud Private CA: CA "+localcluster.PCASubCA+" can issue",
				"✓ AlibabaPCAIssuer istio-system/pca › cert-manager may approve alibabapcaissuers.certbridge.io/*",
				"✓ AlibabaPCAIssuer istio-system/pca › Ready: True")
			if strings.Contains(out, "✗") {
				t.Errorf("a ✗ line in an all-✓ run:\n%s", out)
			}
		})
		t.Run("istio_secret_in_the_gateway_namespace_workload_in_istio_system", func(t *testing.T) {
			t.Parallel()
			const ns, workload = "gw-istio-ns", "istio-system"
			e.namespace(t, ns, false)
			e.namespace(t, workload, false)
			k.gatewayPod(t, workload, "ingressgateway-ns-0", "ingressgateway-ns")
			key := k.tlsSecret(t, ns, "bookinfo-credential", ca, validity(), "bookinfo.example.com")
			e.apply(t, istioGateway(ns, "bookinfo", "ingressgateway-ns", "SIMPLE", "bookinfo-credential", "bookinfo.example.com"))
			k.with(key).expect(t, 1, []string{"bookinfo", "-n", ns, "--kind", "networking.istio.io"},
				`✓ gateway workload: spec.selector istio=ingressgateway-ns matches pods in "istio-system"`,
				`✗ servers[0] https Secret: Secret "bookinfo-credential" (spec.servers[0].tls.credentialName) not found in namespace "istio-system"; a Secret named "bookinfo-credential" exists in "gw-istio-ns", the Gateway's namespace, but Istio reads credentialName from "istio-system", the namespace of the gateway workload, not from the Gateway's`,
				`fix: create the Certificate in "istio-system" instead (metadata.namespace: istio-system, spec.secretName: bookinfo-credential), so cert-manager writes the Secret there; or run the gateway workload in "gw-istio-ns"`)
		})
		t.Run("gateway_api_cross_namespace_ref_without_reference_grant", func(t *testing.T) {
			t.Parallel()
			const ns, certs = "gw-xns", "gw-xns-certs"
			e.namespace(t, ns, false)
			e.namespace(t, certs, false)
			key := k.tlsSecret(t, certs, "shared-tls", ca, validity(), "shared.example.com")
			e.apply(t, gatewayAPIGateway(ns, "shared", "", `hostname: shared.example.com`, `{name: shared-tls, namespace: gw-xns-certs}`))
			kk := k.with(key)
			out := kk.expect(t, 1, []string{"shared", "-n", ns},
				`✗ listener https secret namespace: spec.listeners[0].tls.certificateRefs[0] names Secret gw-xns-certs/shared-tls, in another namespace than the Gateway's "gw-xns", and no ReferenceGrant in "gw-xns-certs" lets Gateways in "gw-xns" use it: the gateway refuses the reference (listener condition ResolvedRefs False, RefNotPermitted)`,
				`fix: create in "gw-xns-certs": {apiVersion: gateway.networking.k8s.io/v1beta1, kind: ReferenceGrant, metadata: {name: gw-xns-shared-tls, namespace: gw-xns-certs}`)
			// The fix's manifest, applied as printed, is the whole fix.
			_, grant, _ := strings.Cut(out, `fix: create in "gw-xns-certs": `)
			grant, _, _ = strings.Cut(grant, "; or keep")
			e.apply(t, grant)
			kk.expect(t, 0, []string{"shared", "-n", ns},
				`✓ listener https secret namespace: "gw-xns-certs": spec.listeners[0].tls.certificateRefs[0] names it, and ReferenceGrant gw-xns-certs/gw-xns-shared-tls lets Gateways in "gw-xns" use Secret "shared-tls" there`,
				"✓ listener https Secret: Secret gw-xns-certs/shared-tls, type kubernetes.io/tls",
				`✓ listener https Certificate: no cert-manager Certificate in "gw-xns-certs" writes Secret "shared-tls"`)
		})
		t.Run("istio_mutual_without_ca_crt", func(t *testing.T) {
			t.Parallel()
			// The gateway workload may also run in the Gateway's namespace.
			const ns = "gw-mutual"
			e.namespace(t, ns, false)
			k.gatewayPod(t, ns, "ingressgateway-0", "ingressgateway-mutual")
			key := k.tlsSecret(t, ns, "mutual-tls", ca, validity(), "mutual.example.com")
			e.apply(t, istioGateway(ns, "mutual", "ingressgateway-mutual", "MUTUAL", "mutual-tls", "mutual.example.com"))
			kk := k.with(key)
			kk.expect(t, 1, []string{"mutual", "-n", ns},
				"✓ servers[0] https Secret: Secret gw-mutual/mutual-tls, type kubernetes.io/tls: tls.crt and tls.key; the key matches the certificate",
				"✗ servers[0] https client CA: mutual TLS needs the CA that signs client certificates, and the gateway finds none: there is no Secret gw-mutual/mutual-tls-cacert; Secret gw-mutual/mutual-tls has no ca.crt nor cacert (it has the keys tls.crt, tls.key)",
				"fix: an issuer that returns its CA (CA, Vault, AlibabaPCAIssuer, CloudflareOriginIssuer) writes ca.crt into the Secret; ACME issuers do not. Otherwise create it beside the Secret: kubectl -n gw-mutual create secret generic mutual-tls-cacert --from-file=ca.crt=<client-ca.pem>")
			// Istio's other place for the client CA: <credentialName>-cacert.
			if _, err := c.Kube.CoreV1().Secrets(ns).Create(e.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "mutual-tls-cacert", Namespace: ns},
				Data: map[string][]byte{"ca.crt": ca.certPEM}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			kk.expect(t, 0, []string{"mutual", "-n", ns},
				`✓ servers[0] https client CA: Secret gw-mutual/mutual-tls-cacert key "ca.crt": 1 CA certificate(s) verify client certificates: CN=certbridge-e2e-gateway-ca`)
		})
		t.Run("gateway_api_host_not_covered", func(t *testing.T) {
			t.Parallel()
			const ns = "gw-host"
			e.namespace(t, ns, false)
			key := k.tlsSecret(t, ns, "shop-tls", ca, validity(), "www.example.com", "*.shop.example.com")
			e.apply(t, gatewayAPIGateway(ns, "shop", "", `hostname: shop.example.com`, `{name: shop-tls}`))
			k.with(key).expect(t, 1, []string{"shop", "-n", ns},
				"✗ listener https hosts: the certificate in Secret gw-host/shop-tls does not cover shop.example.com: its SANs are www.example.com, *.shop.example.com; a wildcard covers one label only",
				"fix: add shop.example.com to the Certificate's spec.dnsNames (cert-manager reissues at once), or fix the hostname of the listener",
				"✓ listener https validity: valid until ")
		})
		t.Run("istio_expired_certificate", func(t *testing.T) {
			t.Parallel()
			const ns = "gw-expired"
			e.namespace(t, ns, false)
			k.gatewayPod(t, ns, "ingressgateway-0", "ingressgateway-expired")
			now := time.Now()
			key := k.tlsSecret(t, ns, "expired-tls", ca, [2]time.Time{now.Add(-30 * 24 * time.Hour), now.Add(-72 * time.Hour)}, "old.example.com")
			e.apply(t, istioGateway(ns, "old", "ingressgateway-expired", "SIMPLE", "expired-tls", "old.example.com"))
			k.with(key).expect(t, 1, []string{"old", "-n", ns},
				"✓ servers[0] https hosts: the certificate covers old.example.com",
				"✗ servers[0] https validity: the certificate expired ",
				"(3 days ago): clients refuse it",
				"fix: replace the certificate in Secret gw-expired/expired-tls")
		})
		t.Run("cert_manager_without_gateway_api_support", func(t *testing.T) {
			t.Parallel()
			// A cert-manager Deployment as its chart makes it without
			// --enable-gateway-api, in a namespace of its own.
			const ns, cm = "gw-nogwapi", "gw-nogwapi-cm"
			e.namespace(t, ns, false)
			e.namespace(t, cm, false)
			e.apply(t, localcluster.CertManagerDeployment(cm, "cert-manager", c.CertManagerVersion, "--cluster-resource-namespace=$(POD_NAMESPACE)", "--v=2"))
			e.apply(t, gatewayAPIGateway(ns, "web", "acme-cloudflare", `hostname: web.example.com`, `{name: web-tls}`))
			k.expect(t, 1, []string{"web", "-n", ns, "--cert-manager-namespace", cm},
				"✗ cert-manager gateway-shim: cert-manager's Deployment gw-nogwapi-cm/cert-manager ("+c.CertManagerVersion+") runs without --enable-gateway-api (nor gatewayAPI.enabled: true in a --config file), so its gateway-shim does not watch Gateways: the annotation cert-manager.io/issuer: acme-cloudflare asks it for a Certificate (issuer Issuer acme-cloudflare) per HTTPS or TLS listener with a hostname and does nothing",
				"fix: cert-manager v1.15 or later: run the controller with --enable-gateway-api (chart values: config.apiVersion=controller.config.cert-manager.io/v1alpha1, config.kind=ControllerConfiguration, config.enableGatewayAPI=true; or extraArgs={--enable-gateway-api}); before v1.15: --feature-gates=ExperimentalGatewayAPISupport=true")
		})
		t.Run("gateway_api_listener_without_hostname", func(t *testing.T) {
			t.Parallel()
			const ns = "gw-nohost"
			e.namespace(t, ns, false)
			e.apply(t, gatewayAPIGateway(ns, "any", "acme-cloudflare", "", `{name: any-tls}`))
			k.expect(t, 1, []string{"any", "-n", ns},
				"✓ cert-manager gateway-shim: cert-manager's Deployment cert-manager/cert-manager",
				"✗ listener https hostname: spec.listeners[0].hostname is not set, so cert-manager's gateway-shim skips this listener (its Event: Skipped a listener block: spec.listeners[0].hostname: Required value) and no Certificate is made for it",
				"fix: set spec.listeners[0].hostname to the name clients connect to",
				`✗ listener https Secret: Secret "any-tls" (spec.listeners[0].tls.certificateRefs[0].name) not found in namespace "gw-nohost"`)
		})
	})
	t.Logf("check gateway: environment up in %s, checks in %s", started.Sub(began).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
}

// with is k with more values the output must not contain.
func (k *checkEnv) with(secrets ...string) *checkEnv {
	kk := *k
	kk.secrets = append(slices.Clone(k.secrets), secrets...)
	return &kk
}

// gatewayPod creates a Pod labelled istio=<istio> in namespace, as an
// Istio gateway Deployment would; no kubelet runs it.
func (k *checkEnv) gatewayPod(t *testing.T, namespace, name, istio string) {
	t.Helper()
	k.apply(t, `
apiVersion: v1
kind: ServiceAccount
metadata: {name: `+istio+`, namespace: `+namespace+`}
---
apiVersion: v1
kind: Pod
metadata:
  name: `+name+`
  namespace: `+namespace+`
  labels: {istio: `+istio+`, app: `+istio+`}
spec:
  serviceAccountName: `+istio+`
  automountServiceAccountToken: false
  containers:
    - {name: istio-proxy, image: docker.io/istio/proxyv2:1.32.0, args: [proxy, router]}
`)
}

// istioGateway is an Istio Gateway with one TLS server for host.
func istioGateway(namespace, name, selector, mode, credential, host string) string {
	return `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ` + name + `, namespace: ` + namespace + `}
spec:
  selector: {istio: ` + selector + `}
  servers:
    - port: {number: 443, name: https, protocol: HTTPS}
      hosts: [` + host + `]
      tls: {mode: ` + mode + `, credentialName: ` + credential + `}
`
}

// gatewayAPIGateway is a Gateway API Gateway with one HTTPS listener; issuer
// (when set) is its cert-manager.io/issuer annotation.
func gatewayAPIGateway(namespace, name, issuer, hostname, certificateRef string) string {
	annotations := ""
	if issuer != "" {
		annotations = "\n  annotations: {cert-manager.io/issuer: " + issuer + "}"
	}
	if hostname != "" {
		hostname = "\n      " + hostname
	}
	return `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: ` + name + `
  namespace: ` + namespace + annotations + `
spec:
  gatewayClassName: istio
  listeners:
    - name: https` + hostname + `
      port: 443
      protocol: HTTPS
      tls:
        mode: Terminate
        certificateRefs: [` + certificateRef + `]
`
}

// testCA signs the certificates the tests make for the mistakes
// cert-manager would not make.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "certbridge-e2e-gateway-ca"},
		NotBefore: time.Now().Add(-365 * 24 * time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// validity is a current certificate's [notBefore, notAfter].
func validity() [2]time.Time {
	return [2]time.Time{time.Now().Add(-time.Hour), time.Now().Add(90 * 24 * time.Hour)}
}

// tlsSecret stores a certificate for names signed by ca as a
// kubernetes.io/tls Secret without ca.crt, and returns the first line of
// the private key's PEM body, which the output must never contain.
func (k *checkEnv) tlsSecret(t *testing.T, namespace, name string, ca *testCA, valid [2]time.Time, names ...string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: valid[0], NotAfter: valid[1], KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	data := map[string][]byte{"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), "tls.key": keyPEM}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Type: corev1.SecretTypeTLS, Data: data}
	if _, err := k.c.Kube.CoreV1().Secrets(namespace).Create(k.ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The key's base64 body without the PEM armour: a leak of it in any
	// wrapping is caught.
	body := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(string(keyPEM), "-----BEGIN PRIVATE KEY-----"), "-----END PRIVATE KEY-----\n"))
	return strings.SplitN(body, "\n", 2)[0]
}
