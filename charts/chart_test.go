// Package charts checks the Helm chart in ./certbridge: helm lint, what the
// rendered manifests promise users (object names, RBAC, CRDs, security
// contexts), strict values, and a server-side dry run against a real
// kube-apiserver whose namespaces enforce the restricted Pod Security Standard.
package charts

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/certbridge/certbridge/internal/metrics"
	"github.com/certbridge/certbridge/issuer"
	api "github.com/certbridge/certbridge/issuer/api/v1alpha1"
	"github.com/certbridge/certbridge/solver"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/testutil"
)

const (
	chartDir = "certbridge"
	// helm built from its module (make tools) assumes Kubernetes 1.20 when it
	// asks no cluster, below the chart's kubeVersion: name the tests' version.
	kubeVersion = "v1.36.2"
)

// asset is a binary the Makefile builds and exports (TEST_ASSET_*).
func asset(t *testing.T, env string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		t.Fatalf("%s is not set: run these tests with `make test`, or after `eval \"$(make -s env)\"`", env)
	}
	return p
}

// chartCase is a release of the chart and what its render must contain.
type chartCase struct {
	name      string
	release   string
	namespace string
	set       []string // helm --set
	want      want
}

type want struct {
	fullname         string
	groupName        string
	certManagerSA    string   // namespace/name
	secretNamespaces []string // where the webhook may get Secrets; "" is every namespace
	// issuerSecretNamespaces are where the issuer may get Secrets; "" is
	// every namespace, none without the issuer.
	issuerSecretNamespaces []string
	peers                  bool // webhook.peers.enabled
	// oidcProviderARN is the webhook's --alibaba-oidc-provider-arn; "" for none.
	oidcProviderARN string
	crds            bool
	present, absent []string // kind/namespace/name
}

var (
	defaults = chartCase{
		name: "default values", release: "certbridge", namespace: "certbridge",
		want: want{
			fullname: "certbridge", groupName: "acme.certbridge.io", certManagerSA: "cert-manager/cert-manager",
			secretNamespaces: []string{""}, issuerSecretNamespaces: []string{""}, peers: true, crds: true,
			present: []string{
				"Deployment/certbridge/certbridge-webhook", "ServiceAccount/certbridge/certbridge-webhook",
				"Service/certbridge/certbridge-webhook", "PodDisruptionBudget/certbridge/certbridge-webhook",
				"APIService//v1alpha1.acme.certbridge.io",
				"Issuer/certbridge/certbridge-selfsign", "Certificate/certbridge/certbridge-ca",
				"Issuer/certbridge/certbridge-ca", "Certificate/certbridge/certbridge-webhook-tls",
				"ClusterRoleBinding//certbridge-webhook:auth-delegator",
				"RoleBinding/kube-system/certbridge-webhook:webhook-authentication-reader",
				"ClusterRole//certbridge-webhook:flowcontrol", "ClusterRoleBinding//certbridge-webhook:flowcontrol",
				"ClusterRole//certbridge:domain-solver", "ClusterRoleBinding//certbridge:domain-solver",
				"ClusterRole//certbridge-webhook:secret-reader", "ClusterRoleBinding//certbridge-webhook:secret-reader",
				"Role/certbridge/certbridge-webhook:peers", "RoleBinding/certbridge/certbridge-webhook:peers",
				"Deployment/certbridge/certbridge-issuer", "ServiceAccount/certbridge/certbridge-issuer",
				"Service/certbridge/certbridge-issuer-metrics",
				"ClusterRole//certbridge-issuer", "ClusterRoleBinding//certbridge-issuer",
				"Role/certbridge/certbridge-issuer:leader-election", "RoleBinding/certbridge/certbridge-issuer:leader-election",
				"ClusterRole//certbridge:approver", "ClusterRoleBinding//certbridge:approver",
				"CustomResourceDefinition//cloudflareoriginissuers.certbridge.io",
				"CustomResourceDefinition//clustercloudflareoriginissuers.certbridge.io",
				"CustomResourceDefinition//alibabapcaissuers.certbridge.io",
				"CustomResourceDefinition//clusteralibabapcaissuers.certbridge.io",
				"NetworkPolicy/certbridge/certbridge-webhook-peers",
			},
			absent: []string{"ServiceMonitor/certbridge/certbridge", "PrometheusRule/certbridge/certbridge", "NetworkPolicy/certbridge/certbridge-webhook",
				"Role/certbridge/certbridge-issuer:secret-reader"},
		},
	}
	custom = chartCase{
		name: "non-default values", release: "edge", namespace: "edge-system",
		set: []string{
			"webhook.secretNamespaces={team-a,team-b}", "crds.enabled=false", "issuer.enabled=false",
			"metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true", "networkPolicy.enabled=true", "groupName=acme.example.com",
			"certManager.serviceAccountName=cert-manager-controller",
			"alibaba.oidcProviderARN=acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0123456789",
		},
		want: want{
			fullname: "edge-certbridge", groupName: "acme.example.com", certManagerSA: "cert-manager/cert-manager-controller",
			secretNamespaces: []string{"team-a", "team-b"}, peers: true, oidcProviderARN: "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0123456789",
			present: []string{
				"NetworkPolicy/edge-system/edge-certbridge-webhook-peers",
				"Deployment/edge-system/edge-certbridge-webhook", "Service/edge-system/edge-certbridge-webhook",
				"APIService//v1alpha1.acme.example.com", "Certificate/edge-system/edge-certbridge-webhook-tls",
				"Role/team-a/edge-certbridge-webhook:secret-reader", "RoleBinding/team-a/edge-certbridge-webhook:secret-reader",
				"Role/team-b/edge-certbridge-webhook:secret-reader", "RoleBinding/team-b/edge-certbridge-webhook:secret-reader",
				"ServiceMonitor/edge-system/edge-certbridge", "PrometheusRule/edge-system/edge-certbridge", "NetworkPolicy/edge-system/edge-certbridge-webhook",
			},
			absent: []string{
				"ClusterRole//edge-certbridge-webhook:secret-reader", "Deployment/edge-system/edge-certbridge-issuer",
				"ClusterRole//edge-certbridge-issuer", "ClusterRole//edge-certbridge:approver",
				"NetworkPolicy/edge-system/edge-certbridge-issuer",
			},
		},
	}
	// Least privilege: the issuer reads Secrets only where it is told (and
	// in the cluster resource namespace), never the webhook's CA in the
	// release's namespace; no peers.
	locked = chartCase{
		name: "secret namespaces for both, no peers", release: "locked", namespace: "locked-system",
		set: []string{
			"webhook.secretNamespaces={team-a}", "issuer.secretNamespaces={team-a}", "issuer.clusterResourceNamespace=team-b",
			"webhook.peers.enabled=false", "crds.enabled=false", "groupName=acme.locked.example",
		},
		want: want{
			fullname: "locked-certbridge", groupName: "acme.locked.example", certManagerSA: "cert-manager/cert-manager",
			secretNamespaces: []string{"team-a"}, issuerSecretNamespaces: []string{"team-a", "team-b"},
			present: []string{
				"Role/team-a/locked-certbridge-issuer:secret-reader", "RoleBinding/team-a/locked-certbridge-issuer:secret-reader",
				"Role/team-b/locked-certbridge-issuer:secret-reader", "RoleBinding/team-b/locked-certbridge-issuer:secret-reader",
			},
			absent: []string{
				"NetworkPolicy/locked-system/locked-certbridge-webhook-peers", "Role/locked-system/locked-certbridge-webhook:peers",
				"Role/locked-system/locked-certbridge-issuer:secret-reader",
			},
		},
	}
	cases = []chartCase{defaults, custom, locked}
)

func (c chartCase) helm(t *testing.T, verb string, extra ...string) ([]byte, error) {
	t.Helper()
	args := []string{verb}
	if verb == "template" {
		args = append(args, c.release)
	}
	args = append(args, chartDir, "--namespace", c.namespace, "--kube-version", kubeVersion)
	for _, s := range c.set {
		args = append(args, "--set", s)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(asset(t, "TEST_ASSET_HELM"), append(args, extra...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm %s: %w\n%s%s", strings.Join(cmd.Args[1:], " "), err, out, stderr.Bytes())
	}
	return out, nil
}

// manifest is a rendered release.
type manifest []*unstructured.Unstructured

func (c chartCase) render(t *testing.T, extra ...string) manifest {
	t.Helper()
	out, err := c.helm(t, "template", extra...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeAll(out)
	if err != nil {
		t.Fatalf("the %s render is not YAML: %v", c.name, err)
	}
	return m
}

func decodeAll(raw []byte) (manifest, error) {
	var m manifest
	d := k8syaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var obj map[string]any
		if err := d.Decode(&obj); errors.Is(err, io.EOF) {
			return m, nil
		} else if err != nil {
			return nil, err
		}
		if len(obj) > 0 {
			m = append(m, &unstructured.Unstructured{Object: obj})
		}
	}
}

func key(o *unstructured.Unstructured) string {
	return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}

func (m manifest) find(kind, namespace, name string) *unstructured.Unstructured {
	for _, o := range m {
		if key(o) == kind+"/"+namespace+"/"+name {
			return o
		}
	}
	return nil
}

func (m manifest) kind(kind string) manifest {
	var out manifest
	for _, o := range m {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func (m manifest) without(kinds ...string) manifest {
	var out manifest
	for _, o := range m {
		if !slices.Contains(kinds, o.GetKind()) {
			out = append(out, o)
		}
	}
	return out
}

func (m manifest) yaml(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, o := range m {
		raw, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(raw)
	}
	return b.Bytes()
}

// as converts a rendered object to its typed form.
func as[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	var out T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, &out, true); err != nil {
		t.Fatalf("%s does not decode as %T: %v", key(o), out, err)
	}
	return &out
}

func (m manifest) must(t *testing.T, kind, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	o := m.find(kind, namespace, name)
	if o == nil {
		t.Fatalf("the render has no %s %s/%s", kind, namespace, name)
	}
	return o
}

func TestLint(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if out, err := c.helm(t, "lint", "--strict"); err != nil {
				t.Fatalf("helm lint --strict fails: %v\n%s", err, out)
			}
		})
	}
}

func TestRender(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := c.render(t)
			w := c.want
			webhook := w.fullname + "-webhook"

			t.Run("object names", func(t *testing.T) {
				for _, k := range w.present {
					if !slices.ContainsFunc(m, func(o *unstructured.Unstructured) bool { return key(o) == k }) {
						t.Errorf("missing %s (the e2e test and users depend on this name)", k)
					}
				}
				for _, k := range w.absent {
					if slices.ContainsFunc(m, func(o *unstructured.Unstructured) bool { return key(o) == k }) {
						t.Errorf("%s is rendered, but these values turn it off", k)
					}
				}
			})

			t.Run("APIService", func(t *testing.T) {
				a := m.must(t, "APIService", "", "v1alpha1."+w.groupName)
				spec, _, _ := unstructured.NestedMap(a.Object, "spec")
				svc, _, _ := unstructured.NestedMap(a.Object, "spec", "service")
				if spec["group"] != w.groupName || spec["version"] != "v1alpha1" {
					t.Errorf("APIService serves %v/%v, want %s/v1alpha1", spec["group"], spec["version"], w.groupName)
				}
				if svc["name"] != webhook || svc["namespace"] != c.namespace || fmt.Sprint(svc["port"]) != "443" {
					t.Errorf("APIService points at %v, want Service %s/%s port 443", svc, c.namespace, webhook)
				}
				if got, want := a.GetAnnotations()["cert-manager.io/inject-ca-from"], c.namespace+"/"+webhook+"-tls"; got != want {
					t.Errorf("cainjector annotation %q, want %q", got, want)
				}
			})

			t.Run("cert-manager may create challenge payloads (F22)", func(t *testing.T) {
				b := as[rbacv1.ClusterRoleBinding](t, m.must(t, "ClusterRoleBinding", "", w.fullname+":domain-solver"))
				ns, name, _ := strings.Cut(w.certManagerSA, "/")
				if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Namespace != ns || b.Subjects[0].Name != name {
					t.Errorf("domain-solver is bound to %+v, want ServiceAccount %s (certManager.namespace/serviceAccountName)", b.Subjects, w.certManagerSA)
				}
				r := as[rbacv1.ClusterRole](t, m.must(t, "ClusterRole", "", b.RoleRef.Name))
				if !grants(r.Rules, w.groupName, "cloudflare", "create") || !grants(r.Rules, w.groupName, "alidns", "create") {
					t.Errorf("%s does not grant create on %s: %+v", r.Name, w.groupName, r.Rules)
				}
			})

			t.Run("nothing may list or watch Secrets", func(t *testing.T) {
				for _, o := range append(m.kind("ClusterRole"), m.kind("Role")...) {
					for _, rule := range as[rbacv1.ClusterRole](t, o).Rules {
						for _, verb := range []string{"list", "watch"} {
							if grants([]rbacv1.PolicyRule{rule}, "", "secrets", verb) {
								t.Errorf("%s grants %s on secrets: %+v", key(o), verb, rule)
							}
						}
					}
				}
			})

			t.Run("where the webhook may get Secrets (webhook.secretNamespaces)", func(t *testing.T) {
				got := secretScopes(t, m, c.namespace, webhook)
				if !slices.Equal(got, w.secretNamespaces) {
					t.Errorf("the webhook may get Secrets in %q, want %q (\"\" is every namespace)", got, w.secretNamespaces)
				}
			})

			t.Run("where the issuer may get Secrets (issuer.secretNamespaces)", func(t *testing.T) {
				got := secretScopes(t, m, c.namespace, w.fullname+"-issuer")
				if !slices.Equal(got, w.issuerSecretNamespaces) {
					t.Errorf("the issuer may get Secrets in %q, want %q (\"\" is every namespace)", got, w.issuerSecretNamespaces)
				}
			})

			t.Run("only the webhook's pods reach the peer port", func(t *testing.T) {
				for _, problem := range peerPortProblems(t, m, c.namespace, webhook, w.peers) {
					t.Error(problem)
				}
			})

			t.Run("the replicas' token is for the peers only", func(t *testing.T) {
				d := as[appsv1.Deployment](t, m.must(t, "Deployment", c.namespace, webhook))
				for _, problem := range peerTokenProblems(d, w.peers) {
					t.Error(problem)
				}
			})

			t.Run("CRDs follow crds.enabled and match files/crds", func(t *testing.T) {
				crds := m.kind("CustomResourceDefinition")
				if !w.crds {
					if len(crds) != 0 {
						t.Errorf("crds.enabled=false still renders %d CRDs", len(crds))
					}
					return
				}
				files, _ := filepath.Glob(filepath.Join(chartDir, "files", "crds", "*.yaml"))
				if len(crds) != 4 || len(files) != 4 {
					t.Fatalf("want the 4 generated CRDs, rendered %d from %d files", len(crds), len(files))
				}
				for _, f := range files {
					raw, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					generated, err := decodeAll(raw)
					if err != nil || len(generated) != 1 {
						t.Fatalf("%s: %v", f, err)
					}
					rendered := m.find("CustomResourceDefinition", "", generated[0].GetName())
					if rendered == nil {
						t.Errorf("%s is not rendered", generated[0].GetName())
						continue
					}
					rendered = rendered.DeepCopy()
					ann := rendered.GetAnnotations()
					if ann["helm.sh/resource-policy"] != "keep" {
						t.Errorf("%s lacks helm.sh/resource-policy: keep (crds.keep defaults to true)", rendered.GetName())
					}
					delete(ann, "helm.sh/resource-policy")
					rendered.SetAnnotations(ann)
					if !reflect.DeepEqual(rendered.Object, generated[0].Object) {
						t.Errorf("the rendered %s differs from %s beyond the keep annotation", rendered.GetName(), f)
					}
				}
			})

			t.Run("restricted security context in every pod", func(t *testing.T) {
				for _, o := range m.kind("Deployment") {
					for _, problem := range restrictedProblems(as[appsv1.Deployment](t, o).Spec.Template.Spec) {
						t.Errorf("%s: %s", key(o), problem)
					}
				}
			})

			// serviceAccountRef is opt-in per ServiceAccount: a namespace's
			// own RoleBinding lets the webhook or the issuer request a
			// ServiceAccount's tokens, never the chart.
			t.Run("no token requests granted (serviceAccountRef)", func(t *testing.T) {
				for _, o := range append(m.kind("ClusterRole"), m.kind("Role")...) {
					for _, rule := range as[rbacv1.ClusterRole](t, o).Rules {
						named := rbacv1.PolicyRule{APIGroups: rule.APIGroups, Resources: rule.Resources, Verbs: rule.Verbs}
						if grants([]rbacv1.PolicyRule{named}, "", "serviceaccounts/token", "create") {
							t.Errorf("%s grants create on serviceaccounts/token: %+v", key(o), rule)
						}
					}
				}
			})

			t.Run("the RRSA OIDC provider reaches the webhook (alibaba.oidcProviderARN)", func(t *testing.T) {
				d := as[appsv1.Deployment](t, m.must(t, "Deployment", c.namespace, webhook))
				args := d.Spec.Template.Spec.Containers[0].Args
				has := slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--alibaba-oidc-provider-arn") })
				if w.oidcProviderARN == "" && has || w.oidcProviderARN != "" && !slices.Contains(args, "--alibaba-oidc-provider-arn="+w.oidcProviderARN) {
					t.Errorf("webhook args %q, want --alibaba-oidc-provider-arn=%s (none when empty)", args, w.oidcProviderARN)
				}
			})

			t.Run("webhook serves groupName", func(t *testing.T) {
				d := as[appsv1.Deployment](t, m.must(t, "Deployment", c.namespace, webhook))
				if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--group-name="+w.groupName) {
					t.Errorf("webhook args %q lack --group-name=%s", args, w.groupName)
				}
			})

			t.Run("serving certificate names the Service as the aggregator dials it", func(t *testing.T) {
				cert := m.must(t, "Certificate", c.namespace, webhook+"-tls")
				names, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
				if want := webhook + "." + c.namespace + ".svc"; !slices.Contains(names, want) {
					t.Errorf("dnsNames %q lack %s", names, want)
				}
				if s, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName"); s != webhook+"-tls" {
					t.Errorf("secretName %q, want %s-tls (mounted by the webhook)", s, webhook)
				}
			})
		})
	}
}

// peerPortProblems checks the NetworkPolicies selecting the webhook's pods:
// with peers on, one at least has a rule for the peer port, and no rule
// admits the peer port (by name, or a rule for every port) from anything
// but the webhook's own pods; with peers off no rule is about it.
func peerPortProblems(t *testing.T, m manifest, namespace, webhook string, peers bool) []string {
	t.Helper()
	pod := as[appsv1.Deployment](t, m.must(t, "Deployment", namespace, webhook)).Spec.Template.Labels
	selects := func(sel map[string]string) bool {
		for k, v := range sel {
			if pod[k] != v {
				return false
			}
		}
		return true
	}
	var problems []string
	peerRules := 0
	for _, o := range m.kind("NetworkPolicy") {
		np := as[networkingv1.NetworkPolicy](t, o)
		if np.Namespace != namespace || len(np.Spec.PodSelector.MatchExpressions) > 0 || !selects(np.Spec.PodSelector.MatchLabels) {
			continue
		}
		for i, rule := range np.Spec.Ingress {
			opens := len(rule.Ports) == 0
			for _, p := range rule.Ports {
				opens = opens || (p.Port != nil && p.Port.String() == "peer")
			}
			if !opens {
				continue
			}
			peerRules++
			if len(rule.From) == 0 {
				problems = append(problems, fmt.Sprintf("%s rule %d admits the peer port from anywhere", key(o), i))
			}
			for _, from := range rule.From {
				if from.IPBlock != nil || from.NamespaceSelector != nil || from.PodSelector == nil ||
					len(from.PodSelector.MatchExpressions) > 0 || !selects(from.PodSelector.MatchLabels) {
					problems = append(problems, fmt.Sprintf("%s rule %d admits the peer port from %+v, not only the webhook's pods", key(o), i, from))
				}
			}
		}
	}
	switch {
	case peers && m.find("NetworkPolicy", namespace, webhook+"-peers") == nil:
		problems = append(problems, "no NetworkPolicy "+webhook+"-peers: with peers on, the chart restricts the peer port whatever networkPolicy.enabled says")
	case peers && peerRules == 0:
		problems = append(problems, "no NetworkPolicy rule is about the peer port")
	case !peers && peerRules > 0:
		problems = append(problems, fmt.Sprintf("%d NetworkPolicy rules for a peer port that peers off does not open", peerRules))
	}
	return problems
}

// peerTokenProblems checks the webhook's projected peer token: for an
// audience of the release's own (never kube-apiserver's), mounted where
// --peer-token-file reads it, with the webhook's ServiceAccount admitted.
func peerTokenProblems(d *appsv1.Deployment, peers bool) []string {
	args := map[string]string{}
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--peer") {
			args[k] = v
		}
	}
	var token *corev1.ServiceAccountTokenProjection
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.ServiceAccountToken != nil {
					token = src.ServiceAccountToken
				}
			}
		}
	}
	if !peers {
		if token != nil || len(args) > 0 {
			return []string{fmt.Sprintf("peers off, yet a projected token %+v and peer flags %v", token, args)}
		}
		return nil
	}
	var problems []string
	switch {
	case token == nil:
		return []string{"no projected ServiceAccount token for the peers"}
	case token.Audience == "" || token.Audience != args["--peer-token-audience"]:
		problems = append(problems, fmt.Sprintf("the token's audience %q is not --peer-token-audience %q", token.Audience, args["--peer-token-audience"]))
	case !strings.HasPrefix(token.Audience, "certbridge.io/peers/"+d.Namespace+"/"):
		problems = append(problems, fmt.Sprintf("the token's audience %q is not the release's own", token.Audience))
	}
	if args["--peer-service-account"] != d.Spec.Template.Spec.ServiceAccountName {
		problems = append(problems, fmt.Sprintf("--peer-service-account %q admits another ServiceAccount than the pods' %q", args["--peer-service-account"], d.Spec.Template.Spec.ServiceAccountName))
	}
	mounted := false
	for _, vm := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		mounted = mounted || filepath.Join(vm.MountPath, token.Path) == args["--peer-token-file"]
	}
	if !mounted {
		problems = append(problems, "--peer-token-file "+args["--peer-token-file"]+" is not where the token is mounted")
	}
	return problems
}

// grants reports whether rules allow verb on group/resource.
func grants(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if len(r.ResourceNames) > 0 {
			continue
		}
		if (slices.Contains(r.APIGroups, group) || slices.Contains(r.APIGroups, "*")) &&
			(slices.Contains(r.Resources, resource) || slices.Contains(r.Resources, "*")) &&
			(slices.Contains(r.Verbs, verb) || slices.Contains(r.Verbs, "*")) {
			return true
		}
	}
	return false
}

// secretScopes lists the namespaces where the ServiceAccount may get Secrets
// through the manifest's bindings; "" is every namespace.
func secretScopes(t *testing.T, m manifest, saNamespace, sa string) []string {
	t.Helper()
	rules := map[string][]rbacv1.PolicyRule{}
	for _, o := range m.kind("ClusterRole") {
		rules["ClusterRole//"+o.GetName()] = as[rbacv1.ClusterRole](t, o).Rules
	}
	for _, o := range m.kind("Role") {
		rules["Role/"+o.GetNamespace()+"/"+o.GetName()] = as[rbacv1.Role](t, o).Rules
	}
	var scopes []string
	for _, o := range append(m.kind("ClusterRoleBinding"), m.kind("RoleBinding")...) {
		b := as[rbacv1.RoleBinding](t, o)
		if !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool {
			return s.Kind == "ServiceAccount" && s.Namespace == saNamespace && s.Name == sa
		}) {
			continue
		}
		ref := b.RoleRef.Kind + "//" + b.RoleRef.Name
		if b.RoleRef.Kind == "Role" {
			ref = "Role/" + b.Namespace + "/" + b.RoleRef.Name
		}
		if grants(rules[ref], "", "secrets", "get") {
			scopes = append(scopes, b.Namespace)
		}
	}
	slices.Sort(scopes)
	return scopes
}

// restrictedProblems lists what keeps a pod from the restricted profile the
// chart promises (a superset of what Pod Security enforces).
func restrictedProblems(spec corev1.PodSpec) []string {
	var p []string
	sc := spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		p = append(p, "pod securityContext.runAsNonRoot is not true")
	}
	if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p = append(p, "pod securityContext.seccompProfile is not RuntimeDefault")
	}
	if spec.AutomountServiceAccountToken == nil || !*spec.AutomountServiceAccountToken {
		p = append(p, "automountServiceAccountToken is not true (the binaries talk to the API server)")
	}
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		s := c.SecurityContext
		switch {
		case s == nil:
			p = append(p, fmt.Sprintf("container %s has no securityContext", c.Name))
			continue
		case s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation:
			p = append(p, fmt.Sprintf("container %s: allowPrivilegeEscalation is not false", c.Name))
		}
		if s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem {
			p = append(p, fmt.Sprintf("container %s: readOnlyRootFilesystem is not true", c.Name))
		}
		if s.RunAsNonRoot == nil || !*s.RunAsNonRoot {
			p = append(p, fmt.Sprintf("container %s: runAsNonRoot is not true", c.Name))
		}
		if s.Capabilities == nil || !slices.Equal(s.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(s.Capabilities.Add) > 0 {
			p = append(p, fmt.Sprintf("container %s: capabilities are not drop [ALL]", c.Name))
		}
	}
	return p
}

// A value the chart does not know fails the render, naming it: a typo is
// never silently ignored.
func TestUnknownValuesFail(t *testing.T) {
	for _, tc := range []struct {
		name, set, wantInError string
	}{
		{"top-level typo", "webhok.replicas=3", "'webhok'"},
		{"nested typo", "webhook.secretNamespace=team-a", "'secretNamespace'"},
		{"typo two levels down", "metrics.serviceMonitor.enable=true", "'enable'"},
		{"typo in the PrometheusRule's values", "metrics.prometheusRule.label.team=x", "'label'"},
		{"groupName without a dot", "groupName=acme", "/groupName"},
		{"a tag as image.digest", "image.digest=v1.2.3", "/image/digest"},
		{"a quota without its window", "webhook.cloudflareQuota=1200", "/webhook/cloudflareQuota"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := defaults
			c.set = []string{tc.set}
			_, err := c.helm(t, "template")
			if err == nil {
				t.Fatalf("helm template --set %s succeeded; the schema must refuse it", tc.set)
			}
			if !strings.Contains(err.Error(), tc.wantInError) {
				t.Errorf("the error does not name %s:\n%v", tc.wantInError, err)
			}
		})
	}
}

// A plan whose Cloudflare limit was raised: the webhook's budget keeps to it.
func TestCloudflareQuotaReachesTheWebhook(t *testing.T) {
	c := defaults
	c.set = []string{"webhook.cloudflareQuota=6000/5m"}
	d := as[appsv1.Deployment](t, c.render(t).must(t, "Deployment", c.namespace, c.want.fullname+"-webhook"))
	if args := d.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--cloudflare-quota=6000/5m") {
		t.Errorf("webhook args %q lack --cloudflare-quota=6000/5m", args)
	}
}

// A name prefix that would make a Service name longer than a DNS label fails
// the render with the way out, not the install with an API server error.
func TestLongReleaseNameFails(t *testing.T) {
	c := defaults
	c.release = strings.Repeat("r", 40)
	_, err := c.helm(t, "template")
	if err == nil || !strings.Contains(err.Error(), "fullnameOverride") {
		t.Fatalf("want a 51-character prefix refused, naming fullnameOverride; got %v", err)
	}
}

// kubectl runs the pinned kubectl as the envtest admin.
type kubectl struct {
	bin, kubeconfig, cacheDir string
}

func (k kubectl) run(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(k.bin, append([]string{"--kubeconfig", k.kubeconfig, "--cache-dir", k.cacheDir}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// dryRun applies manifests with a server-side dry run and fails on an error
// or on any warning (Pod Security warns about Deployments it would refuse pods of).
func (k kubectl) dryRun(t *testing.T, manifests []byte) {
	t.Helper()
	out, err := k.run(manifests, "apply", "--dry-run=server", "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server: %v\n%s", err, out)
	}
	if strings.Contains(out, "Warning:") {
		t.Fatalf("kubectl apply --dry-run=server warns:\n%s", out)
	}
}

func certManagerCRDs(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		t.Fatalf("finding cert-manager's module: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")
}

// podOf is the Pod a Deployment would create.
func podOf(d *appsv1.Deployment) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-pod", Namespace: d.Namespace, Labels: d.Spec.Template.Labels},
		Spec:       d.Spec.Template.Spec,
	}
}

func podYAML(t *testing.T, p *corev1.Pod) []byte {
	t.Helper()
	raw, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// The chart against a real kube-apiserver (with cert-manager's CRDs): a
// server-side dry run into namespaces that enforce the restricted Pod
// Security Standard, what its RBAC allows, and the issuer controllers doing
// their whole job with nothing but the chart's RBAC.
func TestAPIServer(t *testing.T) {
	asset(t, "TEST_ASSET_KUBE_APISERVER")
	asset(t, "TEST_ASSET_ETCD")
	env := &envtest.Environment{CRDDirectoryPaths: []string{certManagerCRDs(t)}, ErrorIfCRDPathMissing: true}
	if _, err := env.Start(); err != nil {
		t.Fatalf("starting kube-apiserver: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	admin, err := env.AddUser(envtest.User{Name: "chart-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := kubectl{bin: asset(t, "TEST_ASSET_KUBECTL"), kubeconfig: filepath.Join(dir, "kubeconfig"), cacheDir: filepath.Join(dir, "cache")}
	if err := os.WriteFile(k.kubeconfig, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, api.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(admin.Config(), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	restricted := map[string]string{}
	for _, mode := range []string{"enforce", "warn", "audit"} {
		restricted["pod-security.kubernetes.io/"+mode] = "restricted"
	}
	for _, ns := range []string{defaults.namespace, custom.namespace, locked.namespace, "team-a", "team-b"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: restricted}}); err != nil {
			t.Fatal(err)
		}
	}
	renders := map[string]manifest{}
	for _, tc := range cases {
		// No cluster has the Prometheus Operator's CRDs here; the rest must apply.
		renders[tc.name] = tc.render(t).without("ServiceMonitor", "PrometheusRule")
	}

	for _, tc := range cases {
		t.Run("dry run: "+tc.name, func(t *testing.T) {
			k.dryRun(t, renders[tc.name].yaml(t))
		})
	}

	// Pod Security only warns about a Deployment; a Pod it refuses.
	for _, tc := range cases {
		for _, o := range renders[tc.name].kind("Deployment") {
			t.Run("pod under restricted Pod Security: "+o.GetName(), func(t *testing.T) {
				k.dryRun(t, podYAML(t, podOf(as[appsv1.Deployment](t, o))))
			})
		}
	}

	t.Run("the same dry run refuses a pod that allows privilege escalation", func(t *testing.T) {
		pod := podOf(as[appsv1.Deployment](t, renders[defaults.name].must(t, "Deployment", defaults.namespace, "certbridge-webhook")))
		pod.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = new(true)
		out, err := k.run(podYAML(t, pod), "apply", "--dry-run=server", "-f", "-")
		if err == nil || !strings.Contains(out, `violates PodSecurity "restricted`) || !strings.Contains(out, "allowPrivilegeEscalation") {
			t.Fatalf("want Pod Security to refuse the pod naming allowPrivilegeEscalation, got %v:\n%s", err, out)
		}
	})

	// Install for real what RBAC checks and the issuer need. The APIService
	// stays out: with no webhook behind it, discovery would fail for its group.
	for _, tc := range cases {
		out, err := k.run(renders[tc.name].without("APIService").yaml(t), "apply", "-f", "-")
		if err != nil {
			t.Fatalf("installing the %s render: %v\n%s", tc.name, err, out)
		}
	}

	t.Run("RBAC", func(t *testing.T) {
		sa := func(ns, name string) (string, []string) {
			return "system:serviceaccount:" + ns + ":" + name, []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
		}
		for _, rc := range []struct {
			name    string
			ns, sa  string
			attr    authorizationv1.ResourceAttributes
			allowed bool
		}{
			{"F22: cert-manager-controller may create challenge payloads in acme.example.com", "cert-manager", "cert-manager-controller",
				authorizationv1.ResourceAttributes{Verb: "create", Group: "acme.example.com", Resource: "cloudflare"}, true},
			{"F22: cert-manager may not, in the release bound to cert-manager-controller", "cert-manager", "cert-manager",
				authorizationv1.ResourceAttributes{Verb: "create", Group: "acme.example.com", Resource: "cloudflare"}, false},
			{"cert-manager may create challenge payloads in acme.certbridge.io", "cert-manager", "cert-manager",
				authorizationv1.ResourceAttributes{Verb: "create", Group: "acme.certbridge.io", Resource: "alidns"}, true},
			{"F12: the webhook may get Secrets in a listed namespace", custom.namespace, "edge-certbridge-webhook",
				authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "team-b"}, true},
			{"F12: the webhook may not get Secrets in an unlisted namespace", custom.namespace, "edge-certbridge-webhook",
				authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "default"}, false},
			{"the webhook may not list Secrets in a listed namespace", custom.namespace, "edge-certbridge-webhook",
				authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets", Namespace: "team-a"}, false},
			{"by default the webhook may get Secrets in any namespace", defaults.namespace, "certbridge-webhook",
				authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "anywhere"}, true},
			{"by default the webhook may not list Secrets", defaults.namespace, "certbridge-webhook",
				authorizationv1.ResourceAttributes{Verb: "list", Resource: "secrets"}, false},
			{"the webhook may read the front proxy's CA", defaults.namespace, "certbridge-webhook",
				authorizationv1.ResourceAttributes{Verb: "get", Resource: "configmaps", Namespace: "kube-system", Name: "extension-apiserver-authentication"}, true},
			{"the webhook may review tokens", defaults.namespace, "certbridge-webhook",
				authorizationv1.ResourceAttributes{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"}, true},
			{"the issuer may get Secrets in a listed namespace", locked.namespace, "locked-certbridge-issuer",
				authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "team-a"}, true},
			{"the issuer may get Secrets in the cluster resource namespace", locked.namespace, "locked-certbridge-issuer",
				authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "team-b"}, true},
			{"the issuer may not get Secrets in an unlisted namespace", locked.namespace, "locked-certbridge-issuer",
				authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "default"}, false},
			{"with issuer.secretNamespaces the issuer may not read the webhook's CA", locked.namespace, "locked-certbridge-issuer",
				authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: locked.namespace, Name: "locked-certbridge-ca"}, false},
			{"with issuer.secretNamespaces the issuer may not read the webhook's serving key", locked.namespace, "locked-certbridge-issuer",
				authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: locked.namespace, Name: "locked-certbridge-webhook-tls"}, false},
			{"by default the issuer may get Secrets in any namespace, the release's included", defaults.namespace, "certbridge-issuer",
				authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: defaults.namespace, Name: "certbridge-ca"}, true},
			{"cert-manager may approve requests for the cluster Origin CA issuers", "cert-manager", "cert-manager",
				authorizationv1.ResourceAttributes{Verb: "approve", Group: "cert-manager.io", Resource: "signers", Name: "clustercloudflareoriginissuers.certbridge.io/*"}, true},
			{"cert-manager may not approve for issuers of other groups", "cert-manager", "cert-manager",
				authorizationv1.ResourceAttributes{Verb: "approve", Group: "cert-manager.io", Resource: "signers", Name: "issuers.example.org/*"}, false},
		} {
			t.Run(rc.name, func(t *testing.T) {
				user, groups := sa(rc.ns, rc.sa)
				review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &rc.attr}}
				if err := c.Create(ctx, review); err != nil {
					t.Fatal(err)
				}
				if review.Status.Allowed != rc.allowed {
					t.Errorf("%s %s %s.%s %q in %q: allowed=%v, want %v (%s)", user, rc.attr.Verb, rc.attr.Resource, rc.attr.Group,
						rc.attr.Name, rc.attr.Namespace, review.Status.Allowed, rc.allowed, review.Status.Reason)
				}
			})
		}
	})

	t.Run("issuer controllers work with only the chart's RBAC", func(t *testing.T) {
		issuerWithChartRBAC(t, env, c)
	})
}

// issuerWithChartRBAC runs the issuer controllers as the issuer's
// ServiceAccount of the default release (installed above) and takes each
// kind of request to the end: a CertificateRequest, a denied one, and a
// Kubernetes CertificateSigningRequest. Any permission the chart misses
// shows as a request that never completes or a "forbidden" in the log.
// klogRecorder receives klog's lines while a test records them. klog's
// logger is set once per process: client-go's goroutines read it until long
// after a manager stops, so replacing or clearing it would race with them.
var klogRecorder struct {
	sync.Mutex
	once   sync.Once
	record func(line string)
}

func recordKlog(t *testing.T, record func(line string)) {
	klogRecorder.once.Do(func() {
		klog.SetLogger(funcr.New(func(prefix, args string) {
			klogRecorder.Lock()
			defer klogRecorder.Unlock()
			if klogRecorder.record != nil {
				klogRecorder.record(prefix + " " + args)
			}
		}, funcr.Options{}))
	})
	klogRecorder.Lock()
	klogRecorder.record = record
	klogRecorder.Unlock()
	t.Cleanup(func() {
		klogRecorder.Lock()
		klogRecorder.record = nil
		klogRecorder.Unlock()
	})
}

func issuerWithChartRBAC(t *testing.T, env *envtest.Environment, admin client.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ns := defaults.namespace
	sa, err := env.AddUser(envtest.User{Name: "system:serviceaccount:" + ns + ":certbridge-issuer",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var forbidden []string
	log := funcr.New(func(prefix, args string) {
		if strings.Contains(args, "forbidden") {
			mu.Lock()
			forbidden = append(forbidden, prefix+" "+args)
			mu.Unlock()
		}
	}, funcr.Options{})
	// client-go (leader election, the Event broadcasters) logs through klog.
	recordKlog(t, func(line string) {
		if strings.Contains(line, "forbidden") {
			mu.Lock()
			forbidden = append(forbidden, line)
			mu.Unlock()
		}
	})

	cf := cfsim.Start()
	t.Cleanup(cf.Close)
	cf.AddZone("example.com")
	const token = "simTokenWithSSLAndCertificatesEdit000000"
	cf.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.SSLEdit}})
	roots := map[string][]byte{}
	for _, rt := range []string{issuer.OriginRSA, issuer.OriginECC} {
		roots[rt] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cf.OriginCARoot(rt).Raw})
	}

	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cert-manager"}}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cf-origin", Namespace: "cert-manager"},
		StringData: map[string]string{"token": token}}); err != nil {
		t.Fatal(err)
	}

	// As `certbridge issuer` runs with the chart's arguments.
	mgr, err := ctrl.NewManager(sa.Config(), ctrl.Options{
		Scheme:                  admin.Scheme(),
		Logger:                  log,
		LeaderElection:          true,
		LeaderElectionID:        "certbridge-issuer.certbridge.io",
		LeaderElectionNamespace: ns,
		Metrics:                 metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = issuer.SetupWithManager(ctx, mgr, issuer.Options{
		ClusterResourceNamespace: "cert-manager",
		MaxRetryDuration:         30 * time.Second,
		OriginCA:                 issuer.OriginCAOptions{BaseURL: cf.URL(), Roots: roots},
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = mgr.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})

	testutil.Eventually(t, 30*time.Second, "the issuer holds its leader election Lease in "+ns, func() (bool, string) {
		var l coordinationv1.Lease
		err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "certbridge-issuer.certbridge.io"}, &l)
		return err == nil && l.Spec.HolderIdentity != nil, fmt.Sprint(err)
	})

	iss := &api.ClusterCloudflareOriginIssuer{ObjectMeta: metav1.ObjectMeta{Name: "origin"},
		Spec: api.CloudflareOriginIssuerSpec{Auth: api.CloudflareOriginAuth{TokenRef: &api.SecretKeySelector{Name: "cf-origin", Key: "token"}}}}
	testutil.Eventually(t, 30*time.Second, "the chart's CRDs are served", func() (bool, string) {
		err := admin.Create(ctx, iss)
		return err == nil, fmt.Sprint(err)
	})
	testutil.Eventually(t, 30*time.Second, "ClusterCloudflareOriginIssuer Ready", func() (bool, string) {
		if err := admin.Get(ctx, client.ObjectKeyFromObject(iss), iss); err != nil {
			return false, err.Error()
		}
		for _, c := range iss.Status.Conditions {
			if c.Type == "Ready" {
				return c.Status == metav1.ConditionTrue, c.Reason + ": " + c.Message
			}
		}
		return false, "no Ready condition"
	})

	ref := cmmeta.IssuerReference{Group: "certbridge.io", Kind: "ClusterCloudflareOriginIssuer", Name: "origin"}
	request := func(name string, cond cmapi.CertificateRequestConditionType) {
		cr := &cmapi.CertificateRequest{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: cmapi.CertificateRequestSpec{Request: csrPEM(t), IssuerRef: ref}}
		if err := admin.Create(ctx, cr); err != nil {
			t.Fatal(err)
		}
		cr.Status.Conditions = []cmapi.CertificateRequestCondition{{Type: cond, Status: cmmeta.ConditionTrue, Reason: "Test", Message: "by the test"}}
		if err := admin.Status().Update(ctx, cr); err != nil {
			t.Fatal(err)
		}
	}
	waitRequest := func(name string, want cmmeta.ConditionStatus, reason string) {
		testutil.Eventually(t, 30*time.Second, "CertificateRequest "+name+" Ready="+string(want)+" "+reason, func() (bool, string) {
			var cr cmapi.CertificateRequest
			if err := admin.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &cr); err != nil {
				return false, err.Error()
			}
			for _, c := range cr.Status.Conditions {
				if c.Type == cmapi.CertificateRequestConditionReady {
					return c.Status == want && c.Reason == reason, fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
				}
			}
			return false, "no Ready condition"
		})
	}
	request("signed", cmapi.CertificateRequestConditionApproved)
	waitRequest("signed", cmmeta.ConditionTrue, cmapi.CertificateRequestReasonIssued)
	request("denied", cmapi.CertificateRequestConditionDenied)
	waitRequest("denied", cmmeta.ConditionFalse, cmapi.CertificateRequestReasonDenied)

	csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "chart-rbac"},
		Spec: certificatesv1.CertificateSigningRequestSpec{Request: csrPEM(t), SignerName: "clustercloudflareoriginissuers.certbridge.io/origin",
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}}}
	if err := admin.Create(ctx, csr); err != nil {
		t.Fatal(err)
	}
	csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved,
		Status: corev1.ConditionTrue, Reason: "Test", Message: "by the test"}}
	if err := admin.SubResource("approval").Update(ctx, csr); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the CertificateSigningRequest is signed (needs sign on its signer)", func() (bool, string) {
		if err := admin.Get(ctx, client.ObjectKeyFromObject(csr), csr); err != nil {
			return false, err.Error()
		}
		return len(csr.Status.Certificate) > 0, fmt.Sprintf("%+v", csr.Status.Conditions)
	})

	testutil.Eventually(t, 30*time.Second, "an Issued Event on the CertificateRequest", func() (bool, string) {
		var list corev1.EventList
		if err := admin.List(ctx, &list, client.InNamespace("default")); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, ev := range list.Items {
			seen = append(seen, ev.Reason+" "+ev.InvolvedObject.Name)
			if ev.Reason == "Issued" && ev.InvolvedObject.Name == "signed" {
				return true, ""
			}
		}
		return false, strings.Join(seen, ", ")
	})
	mu.Lock()
	defer mu.Unlock()
	if len(forbidden) > 0 {
		t.Errorf("the controllers were refused with the chart's RBAC:\n%s", strings.Join(forbidden, "\n"))
	}
}

func csrPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "www.example.com"}, DNSNames: []string{"www.example.com"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// valuePaths lists the dotted paths of a values tree's leaves; an empty map
// or a list is a leaf.
func valuePaths(prefix string, node any) []string {
	m, ok := node.(map[string]any)
	if !ok || len(m) == 0 {
		return []string{prefix}
	}
	var out []string
	for k, v := range m {
		out = append(out, valuePaths(strings.TrimPrefix(prefix+"."+k, "."), v)...)
	}
	slices.Sort(out)
	return out
}

// schemaPaths lists the dotted paths of a JSON schema's leaf properties.
func schemaPaths(prefix string, schema map[string]any) []string {
	props, ok := schema["properties"].(map[string]any)
	if !ok {
		return []string{prefix}
	}
	var out []string
	for k, v := range props {
		out = append(out, schemaPaths(strings.TrimPrefix(prefix+"."+k, "."), v.(map[string]any))...)
	}
	slices.Sort(out)
	return out
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := yaml.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}

// Every value is in values.yaml, in the schema and in the table of
// docs/configuration.md, and the value the solver's RBAC error names (F12)
// exists.
func TestValuesDocumented(t *testing.T) {
	values := valuePaths("", readYAML(t, filepath.Join(chartDir, "values.yaml")))
	schema := schemaPaths("", readYAML(t, filepath.Join(chartDir, "values.schema.json")))
	// A Kubernetes-typed value (resources, affinity) has properties in the
	// schema below its leaf in values.yaml.
	covered := map[string]bool{}
	for _, p := range schema {
		i := slices.IndexFunc(values, func(v string) bool { return p == v || strings.HasPrefix(p, v+".") })
		if i < 0 {
			t.Errorf("the schema has %s, which values.yaml does not define", p)
			continue
		}
		covered[values[i]] = true
	}
	for _, v := range values {
		if !covered[v] {
			t.Errorf("values.yaml has %s, which the schema does not describe", v)
		}
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, found := strings.Cut(string(doc), "\n## Chart values\n")
	if !found {
		t.Fatal("docs/configuration.md has no section \"## Chart values\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var documented []string
	for _, line := range strings.Split(section, "\n") {
		if v, ok := strings.CutPrefix(line, "| `"); ok {
			documented = append(documented, v[:strings.Index(v, "`")])
		}
	}
	slices.Sort(documented)
	if !slices.Equal(values, documented) {
		t.Errorf("the chart values table of docs/configuration.md does not list exactly the values:\nvalues.yaml: %q\ndocs:        %q", values, documented)
	}
	for _, v := range []string{solver.SecretAccessValue, issuer.SecretAccessValue} {
		if !slices.Contains(values, v) {
			t.Errorf("values.yaml has no %s, which RBAC errors tell users to set", v)
		}
	}
}

// metricNames are the series certbridge's processes expose: the webhook
// registers metrics.Register's collectors, the issuer metrics.Certificates.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	d := &describer{names: map[string]bool{}}
	if err := metrics.Register(d); err != nil {
		t.Fatal(err)
	}
	d.MustRegister(metrics.Certificates)
	return d.names
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// describer is a prometheus.Registerer that keeps the names of what is
// registered with it.
type describer struct{ names map[string]bool }

func (d *describer) Register(c prometheus.Collector) error {
	descs := make(chan *prometheus.Desc)
	go func() { c.Describe(descs); close(descs) }()
	for desc := range descs {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
	return nil
}

func (d *describer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = d.Register(c)
	}
}

func (d *describer) Unregister(prometheus.Collector) bool { return false }

var seriesName = regexp.MustCompile(`\bcertbridge_[a-z_]+\b`)

// The PrometheusRule (metrics.prometheusRule.enabled): its rules pass
// promtool's check and the unit tests of every alert in
// testdata/alerts_test.yaml, name only metrics certbridge exposes, and follow
// the release's names; without the ServiceMonitor whose series they select,
// the render fails saying so.
func TestPrometheusRule(t *testing.T) {
	promtool := asset(t, "TEST_ASSET_PROMTOOL")
	c := defaults
	c.set = []string{"metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true"}
	rule := c.render(t).must(t, "PrometheusRule", c.namespace, "certbridge")
	groups, _, err := unstructured.NestedSlice(rule.Object, "spec", "groups")
	if err != nil || len(groups) == 0 {
		t.Fatalf("the PrometheusRule has no spec.groups: %v", err)
	}
	names := metricNames(t)
	var alerts []string
	for _, g := range groups {
		rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rules {
			r := r.(map[string]any)
			alerts = append(alerts, fmt.Sprint(r["alert"]))
			expr := fmt.Sprint(r["expr"])
			for _, name := range seriesName.FindAllString(expr, -1) {
				if !names[name] {
					t.Errorf("alert %s uses %s, which certbridge does not expose (internal/metrics)", r["alert"], name)
				}
			}
			for _, job := range []string{`job="certbridge-webhook"`, `job="certbridge-issuer-metrics"`} {
				if strings.Contains(expr, job) && !strings.Contains(expr, job+`, namespace="certbridge"`) {
					t.Errorf("alert %s selects %s in any namespace: %s", r["alert"], job, expr)
				}
			}
		}
	}
	want := []string{"CertbridgeChallengesFailing", "CertbridgeCloudflareQuotaLow", "CertbridgeCloudflareRateLimited",
		"CertbridgeIssuerSigningFailing", "CertbridgeWebhookReplicaDown", "CertbridgeWebhookDown", "CertbridgeIssuerDown"}
	if !slices.Equal(alerts, want) {
		t.Errorf("alerts %q, want %q (docs/operations.md describes each)", alerts, want)
	}

	dir := t.TempDir()
	raw, err := yaml.Marshal(map[string]any{"groups": groups})
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join("testdata", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"rules.yaml": raw, "alerts_test.yaml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s\nrules:\n%s", strings.Join(args, " "), err, out, raw)
		}
	}

	t.Run("without the issuer, no issuer alerts", func(t *testing.T) {
		c := c
		c.set = append(slices.Clone(c.set), "issuer.enabled=false")
		raw, _ := yaml.Marshal(c.render(t).must(t, "PrometheusRule", c.namespace, "certbridge").Object)
		for _, alert := range []string{"CertbridgeIssuerSigningFailing", "CertbridgeIssuerDown", "issuer-metrics"} {
			if strings.Contains(string(raw), alert) {
				t.Errorf("issuer.enabled=false still renders %s", alert)
			}
		}
	})
	t.Run("without the ServiceMonitor the render fails, saying why", func(t *testing.T) {
		c := defaults
		c.set = []string{"metrics.prometheusRule.enabled=true"}
		_, err := c.helm(t, "template")
		if err == nil || !strings.Contains(err.Error(), "metrics.prometheusRule.enabled needs metrics.serviceMonitor.enabled") {
			t.Fatalf("want the render refused naming metrics.serviceMonitor.enabled, got %v", err)
		}
	})
	t.Run("labels", func(t *testing.T) {
		c := c
		c.set = append(slices.Clone(c.set), "metrics.prometheusRule.labels.release=prometheus")
		if got := c.render(t).must(t, "PrometheusRule", c.namespace, "certbridge").GetLabels()["release"]; got != "prometheus" {
			t.Errorf("metrics.prometheusRule.labels: label release is %q, want prometheus", got)
		}
	})
}
