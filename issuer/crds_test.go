package issuer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/certbridge/certbridge/issuer/api/v1alpha1"
)

// crdDir holds the CRDs controller-gen generates (make generate); the chart
// installs them from there.
const crdDir = "../charts/certbridge/files/crds"

// The generated CRDs, installed into a real kube-apiserver, enforce the
// schema: users get the API server's validation, not a silent drop.
func TestCRDs(t *testing.T) {
	env := &envtest.Environment{CRDDirectoryPaths: []string{crdDir}, ErrorIfCRDPathMissing: true}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver (run with `make test`): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ref := &v1alpha1.SecretKeySelector{Name: "cf-origin", Key: "token"}
	cases := []struct {
		name    string
		obj     client.Object
		wantErr string
	}{
		{"valid Origin issuer", &v1alpha1.CloudflareOriginIssuer{ObjectMeta: metav1.ObjectMeta{Name: "ok", Namespace: "default"},
			Spec: v1alpha1.CloudflareOriginIssuerSpec{Auth: v1alpha1.CloudflareOriginAuth{TokenRef: ref}, RequestType: "OriginECC"}}, ""},
		{"unknown requestType", &v1alpha1.CloudflareOriginIssuer{ObjectMeta: metav1.ObjectMeta{Name: "bad-type", Namespace: "default"},
			Spec: v1alpha1.CloudflareOriginIssuerSpec{Auth: v1alpha1.CloudflareOriginAuth{TokenRef: ref}, RequestType: "OriginDSA"}}, `spec.requestType: Unsupported value: "OriginDSA"`},
		{"empty Secret key", &v1alpha1.ClusterCloudflareOriginIssuer{ObjectMeta: metav1.ObjectMeta{Name: "bad-ref"},
			Spec: v1alpha1.CloudflareOriginIssuerSpec{Auth: v1alpha1.CloudflareOriginAuth{TokenRef: &v1alpha1.SecretKeySelector{Name: "x"}}}}, "spec.auth.tokenRef.key"},
		{"valid PCA issuer", &v1alpha1.ClusterAlibabaPCAIssuer{ObjectMeta: metav1.ObjectMeta{Name: "ok"},
			Spec: v1alpha1.AlibabaPCAIssuerSpec{CAIdentifier: "sub-1", Auth: v1alpha1.AlibabaAuth{RoleARN: "acs:ram::123:role/pca"}}}, ""},
		{"PCA issuer without a CA", &v1alpha1.AlibabaPCAIssuer{ObjectMeta: metav1.ObjectMeta{Name: "no-ca", Namespace: "default"}}, "spec.caIdentifier"},
		{"malformed role ARN", &v1alpha1.AlibabaPCAIssuer{ObjectMeta: metav1.ObjectMeta{Name: "bad-role", Namespace: "default"},
			Spec: v1alpha1.AlibabaPCAIssuerSpec{CAIdentifier: "sub-1", Auth: v1alpha1.AlibabaAuth{RoleARN: "pca-role"}}}, "spec.auth.roleArn"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Create(context.Background(), tc.obj)
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("want the API server to refuse with %q, got %v", tc.wantErr, err)
			}
		})
	}
}

// kubectl shows Ready, Reason and Age, and each kind has a short name.
func TestCRDPrinterColumnsAndShortNames(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if len(files) != 4 {
		t.Fatalf("want 4 CRDs, got %v", files)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Spec struct {
				Names    struct{ ShortNames []string }
				Versions []struct {
					AdditionalPrinterColumns []struct{ Name string }
				}
			}
		}
		if err := yaml.Unmarshal(raw, &crd); err != nil {
			t.Fatal(err)
		}
		var cols []string
		for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
			cols = append(cols, c.Name)
		}
		want := "Ready,Reason,Age"
		if strings.Contains(f, "alibabapca") {
			// Requests must match the sub-CA's key algorithm: show it.
			want = "Ready,Reason,Key Algorithm,Age"
		}
		if strings.Join(cols, ",") != want || len(crd.Spec.Names.ShortNames) != 1 {
			t.Errorf("%s: columns %v, short names %v", f, cols, crd.Spec.Names.ShortNames)
		}
	}
}
