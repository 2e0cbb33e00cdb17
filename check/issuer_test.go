package check_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmfake "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned/fake"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorfake "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/fake"
	"sigs.k8s.io/yaml"

	"github.com/certbridge/certbridge/check"
)

func TestParseIssuerRef(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, ref, kind, issuer, err string
	}{
		{"lower-case kind", "issuer/letsencrypt", "Issuer", "letsencrypt", ""},
		{"kind as written in YAML", "ClusterIssuer/letsencrypt", "ClusterIssuer", "letsencrypt", ""},
		{"plural with group", "issuers.cert-manager.io/le", "Issuer", "le", ""},
		{"cert-manager short name", "ciss/le", "ClusterIssuer", "le", ""},
		{"certbridge kind in mixed case", "CloudFlareOriginIssuer/origin", "CloudflareOriginIssuer", "origin", ""},
		{"certbridge short name", "capcai/mesh-ca", "ClusterAlibabaPCAIssuer", "mesh-ca", ""},
		{"certbridge plural with group", "alibabapcaissuers.certbridge.io/pca", "AlibabaPCAIssuer", "pca", ""},
		{"wrong group", "issuers.certbridge.io/le", "", "", `unknown issuer kind "issuers.certbridge.io"`},
		{"unknown kind", "certificate/x", "", "", "use one of issuer, clusterissuer"},
		{"no name", "issuer/", "", "", "give the issuer as <kind>/<name>"},
		{"no kind", "letsencrypt", "", "", "give the issuer as <kind>/<name>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kind, name, err := check.ParseIssuerRef(tc.ref)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseIssuerRef(%q) = %v, want an error containing %q", tc.ref, err, tc.err)
				}
				return
			}
			if err != nil || kind.Kind != tc.kind || name != tc.issuer {
				t.Fatalf("ParseIssuerRef(%q) = %s, %q, %v; want %s, %q", tc.ref, kind.Kind, name, err, tc.kind, tc.issuer)
			}
		})
	}
}

// The short names check accepts are the CRDs' own.
func TestIssuerKindsMatchCRDs(t *testing.T) {
	t.Parallel()
	for _, k := range check.IssuerKinds {
		if k.Group != "certbridge.io" {
			continue
		}
		t.Run(k.Kind, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(filepath.Join("..", "charts", "certbridge", "files", "crds", "certbridge.io_"+k.Resource+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.Unmarshal(b, &crd); err != nil {
				t.Fatal(err)
			}
			n := crd.Spec.Names
			if n.Kind != k.Kind || n.Plural != k.Resource || strings.Join(n.ShortNames, ",") != strings.Join(k.ShortNames, ",") ||
				(crd.Spec.Scope == apiextensionsv1.ClusterScoped) != k.Cluster {
				t.Errorf("CRD names %+v scope %s; check.IssuerKinds has %+v", n, crd.Spec.Scope, k)
			}
		})
	}
}

// fakeCluster is an Issuer's world without an API server: the checks that
// need no provider and no real authorizer.
type fakeCluster struct {
	kube     *kubefake.Clientset
	cm       *cmfake.Clientset
	agg      *aggregatorfake.Clientset
	metadata *metadatafake.FakeMetadataClient
	// allowed are the SubjectAccessReviews that pass, as "user verb group/resource ns/name".
	allowed map[string]bool
}

func newFakeCluster(t *testing.T, objs ...runtime.Object) *fakeCluster {
	t.Helper()
	f := &fakeCluster{allowed: map[string]bool{}}
	var kubeObjs, cmObjs, aggObjs []runtime.Object
	var meta []runtime.Object
	for _, o := range objs {
		switch v := o.(type) {
		case *cmapi.Issuer, *cmapi.ClusterIssuer:
			cmObjs = append(cmObjs, o)
		case *apiregistrationv1.APIService:
			aggObjs = append(aggObjs, o)
		case *corev1.Secret:
			kubeObjs = append(kubeObjs, o)
			meta = append(meta, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: v.ObjectMeta})
		default:
			kubeObjs = append(kubeObjs, o)
		}
	}
	f.kube = kubefake.NewClientset(kubeObjs...)
	f.cm = cmfake.NewClientset(cmObjs...)
	f.agg = aggregatorfake.NewClientset(aggObjs...)
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	f.metadata = metadatafake.NewSimpleMetadataClient(scheme, meta...)
	f.kube.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: "acme.certbridge.io/v1alpha1", APIResources: []metav1.APIResource{{Name: "alidns"}, {Name: "cloudflare"}},
	}}
	f.kube.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		ra := sar.Spec.ResourceAttributes
		key := sar.Spec.User + " " + ra.Verb + " " + ra.Group + "/" + ra.Resource + " " + ra.Namespace + "/" + ra.Name
		sar.Status.Allowed = f.allowed[key]
		return true, sar, nil
	})
	return f
}

func (f *fakeCluster) options(namespace string) check.IssuerOptions {
	return check.IssuerOptions{Kube: f.kube, CertManager: f.cm, Aggregator: f.agg, Metadata: f.metadata, Namespace: namespace, CertManagerNamespace: "cert-manager"}
}

func acmeIssuer(namespace, group, solver, config string) *cmapi.Issuer {
	return &cmapi.Issuer{ObjectMeta: metav1.ObjectMeta{Name: "le", Namespace: namespace}, Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{
		ACME: &cmacme.ACMEIssuer{Solvers: []cmacme.ACMEChallengeSolver{{DNS01: &cmacme.ACMEChallengeSolverDNS01{
			Webhook: &cmacme.ACMEIssuerDNS01ProviderWebhook{GroupName: group, SolverName: solver, Config: &apiextensionsv1.JSON{Raw: []byte(config)}},
		}}}},
	}}}
}

func availableAPIService() *apiregistrationv1.APIService {
	return &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1alpha1.acme.certbridge.io", Labels: map[string]string{"app.kubernetes.io/instance": "certbridge"}},
		Spec: apiregistrationv1.APIServiceSpec{Group: "acme.certbridge.io", Version: "v1alpha1",
			Service: &apiregistrationv1.ServiceReference{Namespace: "certbridge", Name: "certbridge-webhook"}},
		Status: apiregistrationv1.APIServiceStatus{Conditions: []apiregistrationv1.APIServiceCondition{{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionTrue}}},
	}
}

// The cluster-side findings: where Secrets are read from and why, which
// ServiceAccounts the RBAC checks ask about and where they were found.
func TestIssuerClusterFindings(t *testing.T) {
	t.Parallel()
	const token = "fakeClusterTokenValue0000000000000000000"
	config := `{"apiTokenSecretRef": {"name": "cf", "key": "api-token"}}`
	certManager := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "cert-manager", Namespace: "cert-manager",
			Labels: map[string]string{"app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller"}},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			ServiceAccountName: "cert-manager-controller",
			Containers: []corev1.Container{{Name: "controller", Args: []string{"--v=2", "--cluster-resource-namespace=$(POD_NAMESPACE)"},
				Env: []corev1.EnvVar{{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}}},
		}}},
	}
	secret := func(ns string, data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cf", Namespace: ns}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	cases := []struct {
		name    string
		objs    []runtime.Object
		allowed []string
		opts    func(*check.IssuerOptions)
		want    []string
	}{
		{
			name: "F1 Secret in another namespace",
			objs: []runtime.Object{acmeIssuer("default", "acme.certbridge.io", "cloudflare", config), availableAPIService(), secret("istio-system", map[string]string{"api-token": token})},
			want: []string{`✓ secret namespace: "default": an Issuer's solvers read Secrets from the Issuer's own namespace`,
				`✗ solvers[0] apiTokenSecretRef: Secret "cf" (apiTokenSecretRef.name) not found in namespace "default"; a Secret named "cf" exists in "istio-system"`},
		},
		{
			name: "F2 key missing",
			objs: []runtime.Object{acmeIssuer("default", "acme.certbridge.io", "cloudflare", config), availableAPIService(), secret("default", map[string]string{"apiToken": token, "email": "x"})},
			want: []string{`✗ solvers[0] apiTokenSecretRef: Secret default/cf has no key "api-token" (apiTokenSecretRef.key); it has the keys apiToken, email`},
		},
		{
			name: "F9 typo in the config, as the webhook says it",
			objs: []runtime.Object{acmeIssuer("default", "acme.certbridge.io", "cloudflare", `{"apiTokenSecretref": {"name": "cf", "key": "api-token"}}`), availableAPIService()},
			want: []string{`✗ solvers[0] config: cloudflare: unknown field "apiTokenSecretref" (did you mean "apiTokenSecretRef"?)`},
		},
		{
			name:    "F22 cert-manager's ServiceAccount from its Deployment",
			objs:    []runtime.Object{acmeIssuer("default", "acme.certbridge.io", "cloudflare", config), availableAPIService(), certManager},
			allowed: []string{"system:serviceaccount:certbridge:certbridge-webhook get /secrets default/cf"},
			want: []string{"✗ cert-manager may create cloudflare.acme.certbridge.io: ServiceAccount cert-manager/cert-manager-controller (the serviceAccountName of cert-manager's Deployment cert-manager/cert-manager)",
				"--set certManager.serviceAccountName=cert-manager-controller --set certManager.namespace=cert-manager",
				"✓ webhook may get Secret default/cf: the webhook's ServiceAccount certbridge/certbridge-webhook"},
		},
		{
			name: "F12 and the flags that name the ServiceAccounts",
			objs: []runtime.Object{acmeIssuer("default", "acme.certbridge.io", "cloudflare", config), availableAPIService(), certManager},
			opts: func(o *check.IssuerOptions) {
				o.CertManagerServiceAccount = "cert-manager/cm"
				o.WebhookServiceAccount = "certbridge/other"
			},
			allowed: []string{"system:serviceaccount:cert-manager:cm create acme.certbridge.io/cloudflare /"},
			want: []string{"✓ cert-manager may create cloudflare.acme.certbridge.io: ServiceAccount cert-manager/cm (from --cert-manager-service-account)",
				`✗ webhook may get Secret default/cf: the webhook's ServiceAccount certbridge/other (from --webhook-service-account), which does not exist, may not get Secrets in namespace "default"`,
				`add "default" to the chart value webhook.secretNamespaces (helm upgrade certbridge ./charts/certbridge -n certbridge --reuse-values`},
		},
		{
			name: "F23 groupName not served",
			objs: []runtime.Object{acmeIssuer("default", "acme.example.org", "cloudflare", config), availableAPIService()},
			want: []string{`✗ APIService v1alpha1.acme.example.org: the Issuer's groupName "acme.example.org" is not served`,
				`cert-manager's Challenges fail with: cloudflare.acme.example.org is forbidden: User "system:serviceaccount:cert-manager:cert-manager" cannot create resource "cloudflare" in API group "acme.example.org" at the cluster scope`,
				"the certbridge webhook serves acme.certbridge.io",
				"set webhook.groupName: acme.certbridge.io in the Issuer (or install the chart with groupName=acme.example.org)"},
		},
		{
			// RBAC refuses before the aggregator looks for the group; only an
			// identity allowed every group gets as far as "not found".
			name:    "F23 groupName not served, cert-manager may create anything",
			objs:    []runtime.Object{acmeIssuer("default", "acme.example.org", "cloudflare", config), availableAPIService()},
			allowed: []string{"system:serviceaccount:cert-manager:cert-manager create acme.example.org/cloudflare /"},
			want: []string{`✗ APIService v1alpha1.acme.example.org: the Issuer's groupName "acme.example.org" is not served`,
				`cert-manager's Challenges fail with: "the server could not find the requested resource"`},
		},
		{
			name: "ClusterIssuer reads the cluster resource namespace from cert-manager's Deployment",
			objs: []runtime.Object{&cmapi.ClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "le"}, Spec: acmeIssuer("", "acme.certbridge.io", "cloudflare", config).Spec},
				availableAPIService(), certManager},
			opts: func(o *check.IssuerOptions) { o.Namespace = "" },
			want: []string{`✓ secret namespace: "cert-manager": a ClusterIssuer's solvers read Secrets from cert-manager's cluster resource namespace (the --cluster-resource-namespace of cert-manager's Deployment cert-manager/cert-manager)`,
				`not found in namespace "cert-manager"`},
		},
		{
			name: "not found lists the issuers there",
			objs: []runtime.Object{},
			want: []string{`✗ issuer: Issuer nope not found in namespace "default"`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeCluster(t, tc.objs...)
			for _, a := range tc.allowed {
				f.allowed[a] = true
			}
			o := f.options("default")
			if tc.opts != nil {
				tc.opts(&o)
			}
			kind, name, _ := check.ParseIssuerRef("issuer/le")
			if strings.HasPrefix(tc.name, "ClusterIssuer") {
				kind, name, _ = check.ParseIssuerRef("clusterissuer/le")
			}
			if strings.HasPrefix(tc.name, "not found") {
				name = "nope"
			}
			r := check.Issuer(context.Background(), o, kind, name)
			assertReport(t, r, false, tc.want, token)
		})
	}
}
