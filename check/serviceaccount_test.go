package check_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/certbridge/certbridge/check"
	"github.com/certbridge/certbridge/internal/alibaba"
	api "github.com/certbridge/certbridge/issuer/api/v1alpha1"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
)

func TestMain(m *testing.M) {
	// The SDK's STS calls are hard-wired to https through a clone of
	// http.DefaultTransport: trust the simulator's certificate there.
	sim := alisim.Start()
	http.DefaultTransport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: sim.STSCertPool()}
	sim.Close()
	os.Exit(m.Run())
}

const (
	rrsaProvider = "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1"
	tenantRole   = "acs:ram::1234567890123456:role/tenant-a-dns"
)

// rrsaSim is an Alibaba account with example.com, the cluster's RRSA OIDC
// provider (the simulator's own issuer standing in for kube-apiserver's)
// and a role trusting tenant-a/dns.
func rrsaSim(t *testing.T) (*alisim.Server, *alisim.OIDCIssuer) {
	t.Helper()
	s := alisim.Start()
	t.Cleanup(s.Close)
	s.AddDomain("example.com", alisim.FreeEdition)
	issuer := alisim.NewOIDCIssuer("https://kubernetes.default.svc")
	s.AddOIDCProvider(issuer.Provider(rrsaProvider, alibaba.DefaultAudience))
	s.AddRole(alisim.Role{ARN: tenantRole, Policy: alisim.AllowAll, TrustedOIDCProvider: rrsaProvider,
		OIDCSubjects: []string{"system:serviceaccount:tenant-a:dns"}})
	return s, issuer
}

// tokens answers TokenRequests with the issuer's tokens, or refuses.
type tokens struct {
	issuer *alisim.OIDCIssuer
	err    error
}

func (k tokens) RequestToken(_ context.Context, namespace, name, audience string, ttl time.Duration) (alibaba.Token, error) {
	if k.err != nil {
		return alibaba.Token{}, k.err
	}
	return alibaba.Token{Value: k.issuer.Token("system:serviceaccount:"+namespace+":"+name, []string{audience}, ttl), Expires: time.Now().Add(ttl)}, nil
}

// check credentials alidns --service-account reports the token request and
// the role assumption on their own lines, then the role's domains.
func TestAliDNSCredentials_ServiceAccount(t *testing.T) {
	t.Parallel()
	s, issuer := rrsaSim(t)
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "serviceaccounts"}, "dns",
		errString(`User "jane" cannot create resource "serviceaccounts/token" in API group "" in the namespace "tenant-a"`))
	cases := []struct {
		name      string
		namespace string
		tokenErr  error
		provider  string
		pass      bool
		want      []string
	}{
		{name: "token and role", namespace: "tenant-a", provider: rrsaProvider, pass: true, want: []string{
			`✓ token request: kube-apiserver issued a token of ServiceAccount tenant-a/dns for audience "sts.aliyuncs.com", requested as you`,
			"✓ role assumption: STS issued credentials of role " + tenantRole + " to system:serviceaccount:tenant-a:dns through the OIDC provider " + rrsaProvider,
			"✓ domain example.com: in the account"}},
		{name: "you may not request its tokens", namespace: "tenant-a", tokenErr: forbidden, provider: rrsaProvider, want: []string{
			`✗ token request: you (Kubernetes user "jane") may not request tokens for ServiceAccount "dns" in namespace "tenant-a": kube-apiserver refused the TokenRequest (RBAC)`,
			`"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"jane"}]`}},
		{name: "the role's trust policy admits another ServiceAccount", namespace: "tenant-b", provider: rrsaProvider, want: []string{
			"✓ token request: ",
			"✗ role assumption: role " + tenantRole + " does not admit ServiceAccount tenant-b/dns (AssumeRoleWithOIDC answered AuthenticationFail.NoPermission: There is no permission)",
			`oidc:sub = "system:serviceaccount:tenant-b:dns"`}},
		{name: "no OIDC provider", namespace: "tenant-a", want: []string{
			"✓ token request: ", "✗ role assumption: no RRSA OIDC provider to exchange the token through",
			"set the chart value alibaba.oidcProviderARN"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := check.AliDNSCredentials(context.Background(), env(nil), check.AliDNSOptions{
				Endpoint: "http://" + s.Endpoint(), STSEndpoint: s.STSEndpoint(), Domains: []string{"example.com"},
				ServiceAccount: &alibaba.ServiceAccount{Namespace: tc.namespace, Name: "dns", Tokens: tokens{issuer: issuer, err: tc.tokenErr}},
				RoleARN:        tenantRole, OIDCProviderARN: tc.provider, Requester: "you"})
			assertReport(t, r, tc.pass, tc.want)
		})
	}
}

// check issuer asks whether the webhook's (or the certbridge issuer's)
// ServiceAccount may request the tokens, and exchanges a token requested
// as the user running the check, each on its own line.
func TestIssuer_ServiceAccountRef(t *testing.T) {
	t.Parallel()
	s, issuer := rrsaSim(t)
	s.AddCA("root-1", alisim.CAOptions{})
	s.AddCA("sub-1", alisim.CAOptions{Parent: "root-1"})
	const webhook = "system:serviceaccount:certbridge:certbridge-webhook"
	const issuerSA = "system:serviceaccount:certbridge:certbridge-issuer"
	webhookDeployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "certbridge-webhook", Namespace: "certbridge",
			Labels: map[string]string{"app.kubernetes.io/name": "certbridge", "app.kubernetes.io/component": "webhook"}},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{ServiceAccountName: "certbridge-webhook",
			Containers: []corev1.Container{{Name: "webhook", Args: []string{"webhook", "--alibaba-oidc-provider-arn=" + rrsaProvider}}}}}},
	}
	issuerDeployment := webhookDeployment.DeepCopy()
	issuerDeployment.Name, issuerDeployment.Spec.Template.Spec.ServiceAccountName = "certbridge-issuer", "certbridge-issuer"
	issuerDeployment.Labels = map[string]string{"app.kubernetes.io/name": "certbridge", "app.kubernetes.io/component": "issuer"}
	config := `{"serviceAccountRef": {"name": "dns"}, "roleArn": "` + tenantRole + `", "domainName": "example.com"}`
	pca := &api.AlibabaPCAIssuer{TypeMeta: metav1.TypeMeta{APIVersion: "certbridge.io/v1alpha1", Kind: "AlibabaPCAIssuer"},
		ObjectMeta: metav1.ObjectMeta{Name: "pca", Namespace: "tenant-a"},
		Spec:       api.AlibabaPCAIssuerSpec{CAIdentifier: "sub-1", Auth: api.AlibabaAuth{RoleARN: tenantRole, ServiceAccountRef: &api.ServiceAccountRef{Name: "dns"}}}}
	cases := []struct {
		name      string
		kind      string
		namespace string
		objs      []runtime.Object
		allowed   []string
		want      []string
	}{
		{name: "alidns solver, the webhook may", kind: "issuer/le", namespace: "tenant-a",
			objs:    []runtime.Object{acmeIssuer("tenant-a", "acme.certbridge.io", "alidns", config), availableAPIService(), webhookDeployment},
			allowed: []string{webhook + " create /serviceaccounts tenant-a/dns"},
			want: []string{
				"✓ solvers[0] config: valid alidns config (serviceAccountRef dns for roleArn " + tenantRole + ")",
				`✓ solvers[0] token request: the webhook's ServiceAccount certbridge/certbridge-webhook may request tokens of ServiceAccount tenant-a/dns (a RoleBinding in "tenant-a" lets it), and kube-apiserver issued one for audience "sts.aliyuncs.com", requested as you`,
				"✓ solvers[0] role assumption: STS issued credentials of role " + tenantRole + " to system:serviceaccount:tenant-a:dns",
				"✓ solvers[0] domain example.com: in the account"}},
		{name: "alidns solver naming another tenant's ServiceAccount", kind: "issuer/le", namespace: "tenant-b",
			objs: []runtime.Object{acmeIssuer("tenant-b", "acme.certbridge.io", "alidns", config), availableAPIService(), webhookDeployment},
			want: []string{
				`✗ solvers[0] token request: the webhook's ServiceAccount certbridge/certbridge-webhook (Kubernetes user "` + webhook + `") may not request tokens for ServiceAccount "dns" in namespace "tenant-b": kube-apiserver refused the TokenRequest (RBAC), so every request of this issuer fails`,
				`apply in namespace "tenant-b": ` + alibaba.TokenGrant("tenant-b", "dns", webhook),
				"✗ solvers[0] role assumption: role " + tenantRole + " does not admit ServiceAccount tenant-b/dns"}},
		{name: "AlibabaPCAIssuer, the issuer may not", kind: "apcai/pca", namespace: "tenant-a",
			objs: []runtime.Object{issuerDeployment},
			want: []string{
				`✗ spec.auth.serviceAccountRef token request: the certbridge issuer's ServiceAccount certbridge/certbridge-issuer (Kubernetes user "` + issuerSA + `") may not request tokens`,
				alibaba.TokenGrant("tenant-a", "dns", issuerSA),
				"✓ spec.auth.serviceAccountRef role assumption: STS issued credentials of role " + tenantRole,
				"✓ Alibaba Cloud Private CA: CA sub-1 can issue with the credentials from role " + tenantRole + ", assumed with ServiceAccount tenant-a/dns's tokens"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeCluster(t, tc.objs...)
			for _, a := range tc.allowed {
				f.allowed[a] = true
			}
			f.kube.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "token" {
					return false, nil, nil
				}
				create := a.(k8stesting.CreateActionImpl)
				tr := create.GetObject().(*authenticationv1.TokenRequest)
				tok, _ := tokens{issuer: issuer}.RequestToken(context.Background(), create.GetNamespace(), create.Name, tr.Spec.Audiences[0], time.Duration(*tr.Spec.ExpirationSeconds)*time.Second)
				tr.Status.Token, tr.Status.ExpirationTimestamp = tok.Value, metav1.NewTime(tok.Expires)
				return true, tr, nil
			})
			o := f.options(tc.namespace)
			o.AliDNSEndpoint, o.AlibabaPCAEndpoint, o.AlibabaSTSEndpoint = "http://"+s.Endpoint(), "http://"+s.Endpoint(), s.STSEndpoint()
			o.Dynamic = dynamicWith(t, pca)
			kind, name, err := check.ParseIssuerRef(tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			r := check.Issuer(context.Background(), o, kind, name)
			assertReport(t, r, false, tc.want)
			var b strings.Builder
			_ = r.WriteText(&b)
			t.Logf("\n%s", b.String())
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// dynamicWith is a dynamic client holding obj, as check issuer reads the
// certbridge.io kinds.
func dynamicWith(t *testing.T, obj runtime.Object) *dynamicfake.FakeDynamicClient {
	t.Helper()
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: raw}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{{Group: "certbridge.io", Version: "v1alpha1", Resource: "alibabapcaissuers"}: "AlibabaPCAIssuerList"})
	gvr := schema.GroupVersionResource{Group: "certbridge.io", Version: "v1alpha1", Resource: "alibabapcaissuers"}
	if _, err := dyn.Resource(gvr).Namespace(u.GetNamespace()).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return dyn
}
