package issuer_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/internal/metrics"
	"github.com/certbridge/certbridge/internal/secretref"
	"github.com/certbridge/certbridge/issuer"
	api "github.com/certbridge/certbridge/issuer/api/v1alpha1"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/testutil"
)

// controllerEnv is a kube-apiserver with cert-manager's and certbridge's
// CRDs, the issuer controllers running against it, and both CA simulators.
type controllerEnv struct {
	c   client.Client
	cf  *cfsim.Server
	ali *alisim.Server
	env *envtest.Environment
	cfg *rest.Config
	// opts are the controllers' options.
	opts issuer.Options
}

func certManagerCRDs(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		t.Fatalf("finding cert-manager's module: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
}

func startControllers(t *testing.T) *controllerEnv {
	t.Helper()
	env := &envtest.Environment{CRDDirectoryPaths: []string{crdDir, certManagerCRDs(t)}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver (run with `make test`): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, api.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	e := &controllerEnv{cf: cfsim.Start(), ali: alisim.Start(), env: env, cfg: cfg}
	t.Cleanup(e.cf.Close)
	t.Cleanup(e.ali.Close)
	// The SDK's STS calls are hard-wired to https through a clone of
	// http.DefaultTransport: trust the simulator's certificate there.
	http.DefaultTransport.(*http.Transport).TLSClientConfig = e.ali.STSTLSConfig()
	registerRRSA(t, cfg, e.ali)
	e.cf.AddZone("example.com")
	e.cf.AddToken(cfsim.Token{Value: sslToken, Permissions: []cfsim.Permission{cfsim.SSLEdit}})
	e.ali.AddAccessKey(alisim.AccessKey{ID: pcaKeyID, Secret: pcaKeySecret, Policy: alisim.AllowAll})
	e.ali.AddCA("root-1", alisim.CAOptions{})
	e.ali.AddCA("sub-1", alisim.CAOptions{Parent: "root-1"})

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e.opts = issuer.Options{
		ClusterResourceNamespace: "cert-manager",
		MaxRetryDuration:         30 * time.Second,
		OriginCA:                 issuer.OriginCAOptions{BaseURL: e.cf.URL(), Roots: roots(e.cf)},
		Alibaba: alibaba.Options{PCA: alibaba.Endpoint{Scheme: "HTTP", Host: e.ali.Endpoint()},
			STS: alibaba.Endpoint{Scheme: "HTTPS", Host: e.ali.STSEndpoint()}, OIDCProviderARN: rrsaProvider},
	}
	err = issuer.SetupWithManager(ctx, mgr, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = mgr.Start(ctx) }()
	e.c = mgr.GetClient()
	for _, ns := range []string{"cert-manager", "istio-system"} {
		if err := e.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func readyCondition(conds []metav1.Condition) (metav1.ConditionStatus, string) {
	for _, c := range conds {
		if c.Type == "Ready" {
			return c.Status, c.Reason + ": " + c.Message
		}
	}
	return "", "no Ready condition"
}

// request creates an approved CertificateRequest for issuer ref.
func (e *controllerEnv) request(t *testing.T, ns, name string, csr []byte, d time.Duration, ref cmmeta.IssuerReference) *cmapi.CertificateRequest {
	t.Helper()
	ctx := context.Background()
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       cmapi.CertificateRequestSpec{Request: csr, Duration: &metav1.Duration{Duration: d}, IssuerRef: ref},
	}
	if err := e.c.Create(ctx, cr); err != nil {
		t.Fatal(err)
	}
	cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{
		Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue, Reason: "Test", Message: "approved by the test"})
	if err := e.c.Status().Update(ctx, cr); err != nil {
		t.Fatal(err)
	}
	return cr
}

func (e *controllerEnv) waitRequest(t *testing.T, ns, name string, want cmmeta.ConditionStatus, reason string) *cmapi.CertificateRequest {
	t.Helper()
	var cr cmapi.CertificateRequest
	testutil.Eventually(t, 30*time.Second, "CertificateRequest "+name+" Ready="+string(want), func() (bool, string) {
		if err := e.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &cr); err != nil {
			return false, err.Error()
		}
		for _, c := range cr.Status.Conditions {
			if c.Type == cmapi.CertificateRequestConditionReady {
				return c.Status == want && (reason == "" || c.Reason == reason), fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
			}
		}
		return false, "no Ready condition"
	})
	return &cr
}

func readyMessage(cr *cmapi.CertificateRequest) string {
	for _, c := range cr.Status.Conditions {
		if c.Type == cmapi.CertificateRequestConditionReady {
			return c.Message
		}
	}
	return ""
}

func verifies(t *testing.T, cr *cmapi.CertificateRequest, dnsName string) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(cr.Status.Certificate)
	if block == nil {
		t.Fatal("no certificate in status")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cr.Status.CA) {
		t.Fatal("status.ca is empty")
	}
	inter.AppendCertsFromPEM(rest)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: dnsName, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("the certificate does not verify against status.ca: %v", err)
	}
	return leaf
}

func TestControllers(t *testing.T) {
	e := startControllers(t)
	ctx := context.Background()
	secret := func(ns, name string, data map[string]string) {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: data}
		if err := e.c.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	issuerReady := func(obj client.Object, want metav1.ConditionStatus, text string) {
		t.Helper()
		testutil.Eventually(t, 30*time.Second, obj.GetName()+" Ready="+string(want), func() (bool, string) {
			if err := e.c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
				return false, err.Error()
			}
			var conds []metav1.Condition
			switch o := obj.(type) {
			case *api.CloudflareOriginIssuer:
				conds = o.Status.Conditions
			case *api.AlibabaPCAIssuer:
				conds = o.Status.Conditions
			}
			status, msg := readyCondition(conds)
			return status == want && strings.Contains(msg, text), string(status) + " " + msg
		})
	}

	t.Run("Origin CA: an issued certificate, and F18's Event for a rounded validity", func(t *testing.T) {
		secret("default", "cf-origin", map[string]string{"token": sslToken})
		iss := &api.CloudflareOriginIssuer{ObjectMeta: metav1.ObjectMeta{Name: "origin", Namespace: "default"},
			Spec: api.CloudflareOriginIssuerSpec{Auth: api.CloudflareOriginAuth{TokenRef: &api.SecretKeySelector{Name: "cf-origin", Key: "token"}}}}
		if err := e.c.Create(ctx, iss); err != nil {
			t.Fatal(err)
		}
		issuerReady(iss, metav1.ConditionTrue, "")
		e.request(t, "default", "origin-1", dnsCSR(t, rsaKey, "example.com", "*.example.com"), 100*day,
			cmmeta.IssuerReference{Name: "origin", Kind: "CloudflareOriginIssuer", Group: "certbridge.io"})
		cr := e.waitRequest(t, "default", "origin-1", cmmeta.ConditionTrue, "")
		leaf := verifies(t, cr, "www.example.com")
		if days := leaf.NotAfter.Sub(leaf.NotBefore).Hours() / 24; days < 364.9 || days > 365.1 {
			t.Errorf("want 365 days for 100 requested, got %.1f", days)
		}
		testutil.Eventually(t, 30*time.Second, "ValidityRounded Event", func() (bool, string) {
			var list corev1.EventList
			if err := e.c.List(ctx, &list, client.InNamespace("default")); err != nil {
				return false, err.Error()
			}
			var seen []string
			for _, ev := range list.Items {
				seen = append(seen, ev.Reason)
				if ev.Reason == "ValidityRounded" && ev.InvolvedObject.Name == "origin-1" && strings.Contains(ev.Message, "issued for 365 days") {
					return true, ""
				}
			}
			return false, strings.Join(seen, ",")
		})
	})

	t.Run("F19 Origin CA service key is refused with a way out", func(t *testing.T) {
		iss := &api.CloudflareOriginIssuer{ObjectMeta: metav1.ObjectMeta{Name: "service-key", Namespace: "default"},
			Spec: api.CloudflareOriginIssuerSpec{Auth: api.CloudflareOriginAuth{ServiceKeyRef: &api.SecretKeySelector{Name: "cf-origin", Key: "token"}}}}
		if err := e.c.Create(ctx, iss); err != nil {
			t.Fatal(err)
		}
		issuerReady(iss, metav1.ConditionFalse, "reached end of life on 2026-09-30")
	})

	t.Run("Alibaba PCA: an istio-csr-shaped request", func(t *testing.T) {
		secret("istio-system", "pca-key", map[string]string{"id": pcaKeyID, "secret": pcaKeySecret})
		iss := &api.AlibabaPCAIssuer{ObjectMeta: metav1.ObjectMeta{Name: "pca", Namespace: "istio-system"},
			Spec: api.AlibabaPCAIssuerSpec{CAIdentifier: "sub-1", Auth: api.AlibabaAuth{
				AccessKeyIDSecretRef:     &api.SecretKeySelector{Name: "pca-key", Key: "id"},
				AccessKeySecretSecretRef: &api.SecretKeySelector{Name: "pca-key", Key: "secret"}}}}
		if err := e.c.Create(ctx, iss); err != nil {
			t.Fatal(err)
		}
		issuerReady(iss, metav1.ConditionTrue, "")
		// The sub-CA's key algorithm, which requests must match, is in the
		// status (and so in kubectl's Key Algorithm column).
		testutil.Eventually(t, 30*time.Second, "status.ca of the PCA issuer", func() (bool, string) {
			var got api.AlibabaPCAIssuer
			if err := e.c.Get(ctx, client.ObjectKeyFromObject(iss), &got); err != nil {
				t.Fatal(err)
			}
			ca := got.Status.CA
			return ca != nil && ca.KeyAlgorithm == "RSA_2048" && ca.State == "ISSUE" && ca.RemainingCertificates > 0 && ca.NotAfter != nil &&
				len(got.Status.Conditions) > 0, fmt.Sprintf("%+v", got.Status)
		})
		e.request(t, "istio-system", "istiod", dnsCSR(t, rsaKey, "istiod.istio-system.svc"), time.Hour,
			cmmeta.IssuerReference{Name: "pca", Kind: "AlibabaPCAIssuer", Group: "certbridge.io"})
		verifies(t, e.waitRequest(t, "istio-system", "istiod", cmmeta.ConditionTrue, ""), "istiod.istio-system.svc")
		// An ECDSA request to the RSA sub-CA fails at once, for good.
		e.request(t, "istio-system", "istiod-ecdsa", dnsCSR(t, ecKey, "istiod.istio-system.svc"), time.Hour,
			cmmeta.IssuerReference{Name: "pca", Kind: "AlibabaPCAIssuer", Group: "certbridge.io"})
		failed := e.waitRequest(t, "istio-system", "istiod-ecdsa", cmmeta.ConditionFalse, cmapi.CertificateRequestReasonFailed)
		if msg := readyMessage(failed); !strings.Contains(msg, "ECDSA P-256") || !strings.Contains(msg, "RSA_2048") {
			t.Errorf("the failed request does not name both algorithms: %s", msg)
		}
	})

	t.Run("F20 a root CA cannot issue", func(t *testing.T) {
		iss := &api.AlibabaPCAIssuer{ObjectMeta: metav1.ObjectMeta{Name: "pca-root", Namespace: "istio-system"},
			Spec: api.AlibabaPCAIssuerSpec{CAIdentifier: "root-1", Auth: api.AlibabaAuth{
				AccessKeyIDSecretRef:     &api.SecretKeySelector{Name: "pca-key", Key: "id"},
				AccessKeySecretSecretRef: &api.SecretKeySelector{Name: "pca-key", Key: "secret"}}}}
		if err := e.c.Create(ctx, iss); err != nil {
			t.Fatal(err)
		}
		issuerReady(iss, metav1.ConditionFalse, "CA root-1 is a ROOT CA")
	})

	t.Run("F19 a hostname outside the account fails the request, naming it", func(t *testing.T) {
		e.request(t, "default", "origin-foreign", dnsCSR(t, rsaKey, "example.com", "shop.example.net"), 90*day,
			cmmeta.IssuerReference{Name: "origin", Kind: "CloudflareOriginIssuer", Group: "certbridge.io"})
		cr := e.waitRequest(t, "default", "origin-foreign", cmmeta.ConditionFalse, cmapi.CertificateRequestReasonFailed)
		if msg := readyMessage(cr); !strings.Contains(msg, "shop.example.net is not in a zone of this Cloudflare account") {
			t.Errorf("message %q", msg)
		}
	})

	t.Run("F19 a token without SSL and Certificates Edit makes the issuer not Ready, naming the permission", func(t *testing.T) {
		weak := strings.Repeat("w", 40)
		e.cf.AddToken(cfsim.Token{Value: weak, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
		secret("default", "cf-weak", map[string]string{"token": weak})
		iss := &api.CloudflareOriginIssuer{ObjectMeta: metav1.ObjectMeta{Name: "weak", Namespace: "default"},
			Spec: api.CloudflareOriginIssuerSpec{Auth: api.CloudflareOriginAuth{TokenRef: &api.SecretKeySelector{Name: "cf-weak", Key: "token"}}}}
		if err := e.c.Create(ctx, iss); err != nil {
			t.Fatal(err)
		}
		issuerReady(iss, metav1.ConditionTrue, "") // the token itself is valid
		e.request(t, "default", "weak-1", dnsCSR(t, rsaKey, "example.com"), 90*day,
			cmmeta.IssuerReference{Name: "weak", Kind: "CloudflareOriginIssuer", Group: "certbridge.io"})
		issuerReady(iss, metav1.ConditionFalse, "lacks the permission Zone → SSL and Certificates → Edit")
		// Stop its retries, which would call the simulator in later subtests.
		_ = e.c.Delete(ctx, &cmapi.CertificateRequest{ObjectMeta: metav1.ObjectMeta{Name: "weak-1", Namespace: "default"}})
		_ = e.c.Delete(ctx, iss)
	})

	t.Run("F21 transient CA errors are retried, not failed", func(t *testing.T) {
		// More failures than one Sign's own retries (3 attempts): only the
		// controller retrying the request gets it signed.
		before := e.cf.Calls()["POST /certificates"]
		e.cf.InjectFault(cfsim.Fault{Route: "POST /certificates", Status: 503, Code: 1100, Message: "Internal Server Error", Times: 3,
			Header: http.Header{"Retry-After": {"0"}}})
		e.request(t, "default", "origin-transient", dnsCSR(t, rsaKey, "example.com"), 30*day,
			cmmeta.IssuerReference{Name: "origin", Kind: "CloudflareOriginIssuer", Group: "certbridge.io"})
		verifies(t, e.waitRequest(t, "default", "origin-transient", cmmeta.ConditionTrue, ""), "example.com")
		if n := e.cf.Calls()["POST /certificates"] - before; n < 4 {
			t.Errorf("want 3 failed attempts and a controller retry, saw %d create calls", n)
		}
	})

	t.Run("a Kubernetes CertificateSigningRequest for a cluster kind", func(t *testing.T) {
		secret("cert-manager", "cf-origin", map[string]string{"token": sslToken})
		iss := &api.ClusterCloudflareOriginIssuer{ObjectMeta: metav1.ObjectMeta{Name: "cluster-origin"},
			Spec: api.CloudflareOriginIssuerSpec{Auth: api.CloudflareOriginAuth{TokenRef: &api.SecretKeySelector{Name: "cf-origin", Key: "token"}}}}
		if err := e.c.Create(ctx, iss); err != nil {
			t.Fatal(err)
		}
		expiry := int32(30 * 24 * 3600)
		csr := &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "k8s-csr"},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request: dnsCSR(t, rsaKey, "api.example.com"), SignerName: "clustercloudflareoriginissuers.certbridge.io/cluster-origin",
				ExpirationSeconds: &expiry,
				Usages:            []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth},
			},
		}
		if err := e.c.Create(ctx, csr); err != nil {
			t.Fatal(err)
		}
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "Test", Message: "approved by the test"})
		if err := e.c.SubResource("approval").Update(ctx, csr); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 30*time.Second, "the CSR is signed", func() (bool, string) {
			if err := e.c.Get(ctx, client.ObjectKeyFromObject(csr), csr); err != nil {
				return false, err.Error()
			}
			return len(csr.Status.Certificate) > 0, fmt.Sprintf("%+v", csr.Status.Conditions)
		})
		block, _ := pem.Decode(csr.Status.Certificate)
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(e.cf.OriginCARoot(issuer.OriginRSA))
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "api.example.com"}); err != nil {
			t.Errorf("the CSR's certificate must chain to the Origin root: %v", err)
		}
	})

	t.Run("a denied request ends with a terminal Ready condition", func(t *testing.T) {
		cr := &cmapi.CertificateRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "denied", Namespace: "default"},
			Spec: cmapi.CertificateRequestSpec{Request: dnsCSR(t, rsaKey, "example.com"),
				IssuerRef: cmmeta.IssuerReference{Name: "origin", Kind: "CloudflareOriginIssuer", Group: "certbridge.io"}},
		}
		if err := e.c.Create(ctx, cr); err != nil {
			t.Fatal(err)
		}
		cr.Status.Conditions = []cmapi.CertificateRequestCondition{{Type: cmapi.CertificateRequestConditionDenied,
			Status: cmmeta.ConditionTrue, Reason: "Policy", Message: "example.com is not allowed"}}
		if err := e.c.Status().Update(ctx, cr); err != nil {
			t.Fatal(err)
		}
		got := e.waitRequest(t, "default", "denied", cmmeta.ConditionFalse, cmapi.CertificateRequestReasonDenied)
		if got.Status.FailureTime == nil || len(got.Status.Certificate) != 0 {
			t.Errorf("a denied request is failed and unsigned: %+v", got.Status)
		}
	})

	// serviceAccountRef: the controller requests a token of the
	// ServiceAccount in the issuer's namespace from kube-apiserver and
	// exchanges it for the role; here it runs as the cluster's admin, who
	// may. The refusal an ordinary controller ServiceAccount meets without a
	// RoleBinding is the next case.
	t.Run("Alibaba PCA with serviceAccountRef signs with the ServiceAccount's role", func(t *testing.T) {
		const role = "acs:ram::1234567890123456:role/istio-pca"
		if err := e.c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "pca-signer", Namespace: "istio-system"}}); err != nil {
			t.Fatal(err)
		}
		e.ali.AddRole(alisim.Role{ARN: role, Policy: alisim.Policy{Actions: []string{"yundun-cert:*"}}, TrustedOIDCProvider: rrsaProvider,
			OIDCSubjects: []string{"system:serviceaccount:istio-system:pca-signer"}})
		iss := &api.AlibabaPCAIssuer{ObjectMeta: metav1.ObjectMeta{Name: "pca-sa", Namespace: "istio-system"},
			Spec: api.AlibabaPCAIssuerSpec{CAIdentifier: "sub-1", Auth: api.AlibabaAuth{RoleARN: role, ServiceAccountRef: &api.ServiceAccountRef{Name: "pca-signer"}}}}
		if err := e.c.Create(ctx, iss); err != nil {
			t.Fatal(err)
		}
		issuerReady(iss, metav1.ConditionTrue, "")
		e.request(t, "istio-system", "istiod-sa", dnsCSR(t, rsaKey, "istiod.istio-system.svc"), time.Hour,
			cmmeta.IssuerReference{Name: "pca-sa", Kind: "AlibabaPCAIssuer", Group: "certbridge.io"})
		verifies(t, e.waitRequest(t, "istio-system", "istiod-sa", cmmeta.ConditionTrue, ""), "istiod.istio-system.svc")
		want := alisim.OIDCSession{Role: role, Subject: "system:serviceaccount:istio-system:pca-signer"}
		if got := e.ali.OIDCSessions(); !slices.Contains(got, want) {
			t.Errorf("want a session %+v, got %+v", want, got)
		}
	})

	t.Run("serviceAccountRef without a RoleBinding: not Ready, with the manifest", func(t *testing.T) {
		const user = "system:serviceaccount:certbridge:certbridge-issuer"
		restricted, err := e.env.AddUser(envtest.User{Name: user}, nil)
		if err != nil {
			t.Fatal(err)
		}
		kube, err := kubernetes.NewForConfig(restricted.Config())
		if err != nil {
			t.Fatal(err)
		}
		opts := e.opts
		opts.Tokens = alibaba.KubeTokens(kube)
		iss := &api.AlibabaPCAIssuer{ObjectMeta: metav1.ObjectMeta{Name: "pca-sa", Namespace: "istio-system"},
			Spec: api.AlibabaPCAIssuerSpec{CAIdentifier: "sub-1", Auth: api.AlibabaAuth{RoleARN: "acs:ram::1234567890123456:role/istio-pca",
				ServiceAccountRef: &api.ServiceAccountRef{Name: "pca-signer"}}}}
		_, err = issuer.NewSigners(opts, secretref.Reader{}).Check(ctx, iss)
		want := `alibaba-pca: serviceAccountRef: the issuer controller (Kubernetes user "` + user + `") may not request tokens for ServiceAccount "pca-signer" in namespace "istio-system": ` +
			`kube-apiserver refused the TokenRequest (RBAC); serviceAccountRef names a ServiceAccount of the issuer's own namespace (for a cluster issuer, of the cluster resource namespace), ` +
			`and its tokens are requested only where that namespace allows it: to let this issuer act as istio-system/pca-signer, apply in namespace "istio-system": ` +
			alibaba.TokenGrant("istio-system", "pca-signer", user)
		if err == nil || err.Error() != want {
			t.Errorf("got  %v\nwant %s", err, want)
		}
	})

	t.Run("serviceAccountRef with an AccessKey or without roleArn is refused by the API server", func(t *testing.T) {
		ref := &api.ServiceAccountRef{Name: "pca-signer"}
		for _, c := range []struct {
			auth api.AlibabaAuth
			want string
		}{
			{api.AlibabaAuth{ServiceAccountRef: ref}, "serviceAccountRef needs roleArn: the RAM role its tokens are exchanged for"},
			{api.AlibabaAuth{ServiceAccountRef: ref, RoleARN: "acs:ram::1:role/r", AccessKeyIDSecretRef: &api.SecretKeySelector{Name: "k", Key: "id"}},
				"serviceAccountRef is the credential: an AccessKey is not used with it"},
			{api.AlibabaAuth{ServiceAccountRef: &api.ServiceAccountRef{Name: "Not_A_Name"}, RoleARN: "acs:ram::1:role/r"}, "spec.auth.serviceAccountRef.name"},
		} {
			err := e.c.Create(ctx, &api.ClusterAlibabaPCAIssuer{ObjectMeta: metav1.ObjectMeta{Name: "pca-refused"},
				Spec: api.AlibabaPCAIssuerSpec{CAIdentifier: "sub-1", Auth: c.auth}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("want the API server to refuse with %q, got %v", c.want, err)
			}
		}
	})

	t.Run("signing is counted by backend and outcome", func(t *testing.T) {
		for _, c := range []struct {
			backend, outcome string
		}{{"cloudflare-origin-ca", "success"}, {"cloudflare-origin-ca", "error"}, {"alibaba-pca", "success"}} {
			if n := promtest.ToFloat64(metrics.Certificates.WithLabelValues(c.backend, c.outcome)); n < 1 {
				t.Errorf("certbridge_certificates_signed_total{backend=%q,outcome=%q} = %v", c.backend, c.outcome, n)
			}
		}
	})
}

const rrsaProvider = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-test"

// registerRRSA registers the test kube-apiserver's service-account issuer
// in the simulator as the cluster's RRSA OIDC provider, as enabling RRSA
// does: its issuer URL from OIDC discovery, its keys from its JWKS.
func registerRRSA(t *testing.T, cfg *rest.Config, sim *alisim.Server) {
	t.Helper()
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc := kube.Discovery().RESTClient()
	raw, err := rc.Get().AbsPath("/.well-known/openid-configuration").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var discovery struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(raw, &discovery); err != nil || discovery.Issuer == "" {
		t.Fatalf("OIDC discovery: %v: %s", err, raw)
	}
	jwks, err := rc.Get().AbsPath("/openid/v1/jwks").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := alisim.ParseJWKS(jwks)
	if err != nil {
		t.Fatal(err)
	}
	sim.AddOIDCProvider(alisim.OIDCProvider{ARN: rrsaProvider, IssuerURL: discovery.Issuer, ClientIDs: []string{alibaba.DefaultAudience}, Keys: keys})
}
