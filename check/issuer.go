package check

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/certbridge/certbridge/internal/alibaba"
	api "github.com/certbridge/certbridge/issuer/api/v1alpha1"
)

// IssuerKind is one of the kinds `certbridge check issuer` checks.
type IssuerKind struct {
	Kind     string
	Group    string
	Resource string // plural, as in RBAC and signer names
	Cluster  bool
	// ShortNames are the CRD's short names.
	ShortNames []string
}

// IssuerKinds are cert-manager's two issuer kinds (ACME with the certbridge
// webhook solvers) and the four certbridge.io kinds.
var IssuerKinds = []IssuerKind{
	{Kind: "Issuer", Group: "cert-manager.io", Resource: "issuers", ShortNames: []string{"iss"}},
	{Kind: "ClusterIssuer", Group: "cert-manager.io", Resource: "clusterissuers", Cluster: true, ShortNames: []string{"ciss"}},
	{Kind: "CloudflareOriginIssuer", Group: api.GroupVersion.Group, Resource: "cloudflareoriginissuers", ShortNames: []string{"cfoi"}},
	{Kind: "ClusterCloudflareOriginIssuer", Group: api.GroupVersion.Group, Resource: "clustercloudflareoriginissuers", Cluster: true, ShortNames: []string{"ccfoi"}},
	{Kind: "AlibabaPCAIssuer", Group: api.GroupVersion.Group, Resource: "alibabapcaissuers", ShortNames: []string{"apcai"}},
	{Kind: "ClusterAlibabaPCAIssuer", Group: api.GroupVersion.Group, Resource: "clusteralibabapcaissuers", Cluster: true, ShortNames: []string{"capcai"}},
}

// ParseIssuerRef reads "<kind>/<name>" with the kind spelt as kubectl
// accepts it: kind, plural or short name, optionally followed by ".<group>",
// in any case (Issuer, issuers.cert-manager.io, cfoi, …).
func ParseIssuerRef(ref string) (IssuerKind, string, error) {
	kind, name, ok := strings.Cut(ref, "/")
	if !ok || kind == "" || name == "" || strings.Contains(name, "/") {
		return IssuerKind{}, "", fmt.Errorf("%q: give the issuer as <kind>/<name>, e.g. issuer/letsencrypt or clusterissuer/letsencrypt", ref)
	}
	k := strings.ToLower(kind)
	for _, ik := range IssuerKinds {
		spellings := append([]string{strings.ToLower(ik.Kind), ik.Resource}, ik.ShortNames...)
		for _, s := range spellings {
			if k == s || k == s+"."+ik.Group {
				return ik, name, nil
			}
		}
	}
	known := make([]string, 0, len(IssuerKinds))
	for _, ik := range IssuerKinds {
		known = append(known, strings.ToLower(ik.Kind))
	}
	return IssuerKind{}, "", fmt.Errorf("unknown issuer kind %q: use one of %s (or their plural or short names)", kind, strings.Join(known, ", "))
}

// IssuerOptions are the clients `certbridge check issuer` reads the cluster
// with, and its flags.
type IssuerOptions struct {
	Kube        kubernetes.Interface
	CertManager cmclient.Interface
	// Dynamic reads the certbridge.io issuer kinds.
	Dynamic dynamic.Interface
	// Aggregator reads APIServices.
	Aggregator aggregator.Interface
	// Metadata finds Secrets of a name in other namespaces without
	// reading their data.
	Metadata metadata.Interface

	// Namespace of a namespaced issuer.
	Namespace string
	// ClusterResourceNamespace is where the cluster kinds' Secrets are read
	// from. Empty: the --cluster-resource-namespace argument of cert-manager's
	// (ClusterIssuer) or certbridge issuer's (certbridge.io cluster kinds)
	// Deployment, else "cert-manager".
	ClusterResourceNamespace string
	// CertManagerNamespace is where cert-manager's controller Deployment is
	// looked for; "cert-manager" by default.
	CertManagerNamespace string
	// CertManagerServiceAccount ("namespace/name") is who creates challenge
	// payloads and approves requests. Empty: the serviceAccountName of the
	// Deployment labelled app.kubernetes.io/name=cert-manager,
	// app.kubernetes.io/component=controller in CertManagerNamespace, else
	// cert-manager/cert-manager.
	CertManagerServiceAccount string
	// WebhookServiceAccount ("namespace/name") is who reads the solvers'
	// Secrets. Empty: named like the Service of the APIService (the chart
	// names them alike).
	WebhookServiceAccount string
	// IssuerServiceAccount ("namespace/name") is who reads the certbridge.io
	// issuers' Secrets. Empty: the serviceAccountName of the Deployment
	// labelled app.kubernetes.io/name=certbridge,
	// app.kubernetes.io/component=issuer (any namespace), else the chart's
	// name beside the webhook's Service, else cert-manager/certbridge-issuer.
	IssuerServiceAccount string

	CloudflareAPIURL   string
	AliDNSEndpoint     string
	AlibabaPCAEndpoint string
	AlibabaSTSEndpoint string
	// AlibabaOIDCProviderARN is the cluster's RRSA OIDC provider a
	// serviceAccountRef's tokens are exchanged through. Empty: the
	// --alibaba-oidc-provider-arn of the webhook's (solvers) or the
	// certbridge issuer's (Private CA kinds) Deployment.
	AlibabaOIDCProviderARN string
	// WriteTest makes the solvers' credential checks create and delete a
	// uniquely named TXT record in each zone, and implies Propagation, which
	// then also writes a test record where each name's record goes and
	// watches it show at every nameserver.
	WriteTest bool
	// Propagation resolves each name a solver serves as cert-manager's
	// controller does, and checks that the webhook writes where its
	// self-check and the ACME server look (propagation.go).
	Propagation bool
	// RecursiveNameservers and RecursiveNameserversOnly are cert-manager's
	// --dns01-recursive-nameservers and --dns01-recursive-nameservers-only;
	// nil: read from its controller Deployment (or --config file).
	RecursiveNameservers     []string
	RecursiveNameserversOnly *bool
	// NameserverAddresses asks an authoritative nameserver (by its NS
	// name) at host:port instead of at its name's address, port 53.
	NameserverAddresses map[string]string
	// PropagationTimeout bounds how long the test record may take to show;
	// DefaultPropagationTimeout when 0.
	PropagationTimeout time.Duration
}

// checker holds what one run has learnt about the cluster.
type checker struct {
	o       IssuerOptions
	r       Report
	kind    IssuerKind
	secrets map[string]secretResult
	// deployments found by label, by selector
	deployments map[string]*deploymentInfo
	// dns01 is how cert-manager self-checks, once found.
	dns01 *selfCheck
}

type secretResult struct {
	s   *corev1.Secret
	err error
}

// Issuer checks an issuer as cert-manager, the certbridge webhook and the
// certbridge issuer will use it: where its Secrets are read from, that they
// hold the referenced keys, that the provider accepts the credentials, that
// the API group and RBAC the flow needs are in place, and what the
// controller reports. No finding holds a credential's value.
func Issuer(ctx context.Context, o IssuerOptions, kind IssuerKind, name string) Report {
	if o.CertManagerNamespace == "" {
		o.CertManagerNamespace = "cert-manager"
	}
	c := &checker{o: o, kind: kind, secrets: map[string]secretResult{}, deployments: map[string]*deploymentInfo{}}
	c.r.Target = kind.Kind + " " + name
	if !kind.Cluster {
		c.r.Target = kind.Kind + " " + o.Namespace + "/" + name
	}
	switch kind.Group {
	case "cert-manager.io":
		c.certManagerIssuer(ctx, name)
	default:
		c.certbridgeIssuer(ctx, name)
	}
	return c.r
}

// notFound reports a missing issuer with the ones that do exist.
func (c *checker) notFound(ctx context.Context, name string, err error) {
	where := ""
	if !c.kind.Cluster {
		where = fmt.Sprintf(" in namespace %q", c.o.Namespace)
	}
	if !apierrors.IsNotFound(err) {
		c.r.fail("issuer", fmt.Sprintf("reading %s %s%s failed: %v", c.kind.Kind, name, where, err),
			"check the kubeconfig, context and namespace (--kubeconfig, --context, -n), and that the "+c.kind.Resource+"."+c.kind.Group+" CRD is installed")
		return
	}
	fix := "check the name and namespace (-n)"
	gvr := schema.GroupVersionResource{Group: c.kind.Group, Version: "v1", Resource: c.kind.Resource}
	if c.kind.Group == api.GroupVersion.Group {
		gvr.Version = api.GroupVersion.Version
	}
	ns := c.o.Namespace
	if c.kind.Cluster {
		ns = ""
	}
	if list, lerr := c.o.Metadata.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{}); lerr == nil {
		var names []string
		for _, it := range list.Items {
			names = append(names, it.Name)
		}
		sort.Strings(names)
		if len(names) > 0 {
			fix += "; " + c.kind.Kind + "s" + where + ": " + strings.Join(names, ", ")
		} else {
			fix += "; there is no " + c.kind.Kind + where
		}
	}
	c.r.fail("issuer", c.kind.Kind+" "+name+" not found"+where, fix)
}

// clusterResourceNamespace is where a cluster kind's Secrets are read from,
// and why.
func (c *checker) clusterResourceNamespace(d *deploymentInfo, component string) (string, string) {
	if c.o.ClusterResourceNamespace != "" {
		return c.o.ClusterResourceNamespace, "as given by --cluster-resource-namespace"
	}
	if d != nil {
		if v, ok := d.arg("--cluster-resource-namespace"); ok && v != "" {
			return v, fmt.Sprintf("the --cluster-resource-namespace of %s's Deployment %s/%s", component, d.namespace, d.name)
		}
	}
	return "cert-manager", "the default of --cluster-resource-namespace; pass --cluster-resource-namespace if " + component + " runs with another"
}

// secretValue checks one Secret reference (F1, F2, F3) and returns the
// trimmed value when it can be used.
func (c *checker) secretValue(ctx context.Context, label, namespace, name, key, field string) (string, bool) {
	res, seen := c.secrets[namespace+"/"+name]
	if !seen {
		res.s, res.err = c.o.Kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		c.secrets[namespace+"/"+name] = res
	}
	switch {
	case apierrors.IsNotFound(res.err):
		detail := fmt.Sprintf("Secret %q (%s.name) not found in namespace %q", name, field, namespace)
		if elsewhere := c.elsewhere(ctx, name, namespace); len(elsewhere) > 0 {
			detail += fmt.Sprintf("; a Secret named %q exists in %s", name, strings.Join(elsewhere, ", "))
		}
		c.r.fail(label, detail, fmt.Sprintf("create the Secret in %q, the namespace this issuer's Secrets are read from (see the first line), e.g. kubectl -n %s create secret generic %s --from-literal=%s=<value>; "+
			"check that a manifest's metadata.namespace did not send it elsewhere", namespace, namespace, name, key))
		return "", false
	case apierrors.IsForbidden(res.err):
		c.r.fail(label, fmt.Sprintf("you may not get Secret %s/%s, so it cannot be checked", namespace, name),
			"run the check with a kubeconfig (--kubeconfig, --context) that may get Secrets in "+namespace)
		return "", false
	case res.err != nil:
		c.r.fail(label, fmt.Sprintf("reading Secret %s/%s failed: %v", namespace, name, res.err), "retry; check the connection to the cluster")
		return "", false
	}
	raw, ok := res.s.Data[key]
	if !ok {
		keys := make([]string, 0, len(res.s.Data))
		for k := range res.s.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		has := "it has no keys"
		if len(keys) > 0 {
			has = "it has the keys " + strings.Join(keys, ", ")
		}
		c.r.fail(label, fmt.Sprintf("Secret %s/%s has no key %q (%s.key); %s", namespace, name, key, field, has),
			fmt.Sprintf("set %s.key to the key that holds the credential, or add the key %q to the Secret", field, key))
		return "", false
	}
	v := strings.TrimSpace(string(raw))
	switch {
	case v == "":
		c.r.fail(label, fmt.Sprintf("Secret %s/%s key %q (%s.key) is empty", namespace, name, key, field), "put the credential in that key")
		return "", false
	case v != string(raw):
		c.r.fail(label, fmt.Sprintf("Secret %s/%s key %q has leading or trailing whitespace, often the newline of `echo … | base64`; the webhook and the issuer trim it and log a warning", namespace, name, key),
			fmt.Sprintf("recreate the Secret without it: kubectl -n %s create secret generic %s --from-literal=%s=<value> (and its other keys) --dry-run=client -o yaml | kubectl apply -f -", namespace, name, key))
		return v, true
	}
	c.r.pass(label, fmt.Sprintf("Secret %s/%s has the key %q", namespace, name, key))
	return v, true
}

var secretsGVR = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// elsewhere lists the other namespaces holding a Secret called name, with
// metadata only (no Secret data is read); nil when that is forbidden.
func (c *checker) elsewhere(ctx context.Context, name, except string) []string {
	if c.o.Metadata == nil {
		return nil
	}
	list, err := c.o.Metadata.Resource(secretsGVR).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name})
	if err != nil {
		return nil
	}
	var out []string
	for _, it := range list.Items {
		if it.Namespace != except && it.Name == name {
			out = append(out, fmt.Sprintf("%q", it.Namespace))
		}
	}
	sort.Strings(out)
	return out
}

// serviceAccount is "namespace/name" with where it came from.
type serviceAccount struct {
	namespace, name string
	source          string
}

func (s serviceAccount) String() string { return s.namespace + "/" + s.name }

func (s serviceAccount) user() string {
	return "system:serviceaccount:" + s.namespace + ":" + s.name
}

func parseServiceAccount(v, source string) (serviceAccount, error) {
	ns, name, ok := strings.Cut(v, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return serviceAccount{}, fmt.Errorf("%s %q: give a ServiceAccount as <namespace>/<name>", source, v)
	}
	return serviceAccount{namespace: ns, name: name, source: source}, nil
}

// describe names the ServiceAccount, where it came from, and whether it
// exists at all.
func (c *checker) describeSA(ctx context.Context, sa serviceAccount) string {
	s := fmt.Sprintf("ServiceAccount %s (%s)", sa, sa.source)
	if _, err := c.o.Kube.CoreV1().ServiceAccounts(sa.namespace).Get(ctx, sa.name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		s += ", which does not exist,"
	}
	return s
}

// may asks the API server's authorizer whether sa may do what attrs say.
func (c *checker) may(ctx context.Context, sa serviceAccount, attrs authorizationv1.ResourceAttributes) (bool, string, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               sa.user(),
		Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + sa.namespace, "system:authenticated"},
		ResourceAttributes: &attrs,
	}}
	got, err := c.o.Kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, "", err
	}
	return got.Status.Allowed, got.Status.Reason, nil
}

// certManagerSA is cert-manager's controller identity.
func (c *checker) certManagerSA(ctx context.Context) (serviceAccount, error) {
	if c.o.CertManagerServiceAccount != "" {
		return parseServiceAccount(c.o.CertManagerServiceAccount, "from --cert-manager-service-account")
	}
	if d := c.certManagerDeployment(ctx); d != nil {
		return serviceAccount{namespace: d.namespace, name: d.serviceAccount,
			source: fmt.Sprintf("the serviceAccountName of cert-manager's Deployment %s/%s", d.namespace, d.name)}, nil
	}
	return serviceAccount{namespace: c.o.CertManagerNamespace, name: "cert-manager",
		source: fmt.Sprintf("the chart's default; no cert-manager controller Deployment found in namespace %q", c.o.CertManagerNamespace)}, nil
}

func (c *checker) certManagerDeployment(ctx context.Context) *deploymentInfo {
	return c.deployment(ctx, c.o.CertManagerNamespace, "app.kubernetes.io/name=cert-manager,app.kubernetes.io/component=controller")
}

func (c *checker) certbridgeIssuerDeployment(ctx context.Context) *deploymentInfo {
	return c.deployment(ctx, metav1.NamespaceAll, "app.kubernetes.io/name=certbridge,app.kubernetes.io/component=issuer")
}

func (c *checker) webhookDeployment(ctx context.Context) *deploymentInfo {
	return c.deployment(ctx, metav1.NamespaceAll, "app.kubernetes.io/name=certbridge,app.kubernetes.io/component=webhook")
}

// oidcProviderARN is the RRSA OIDC provider a serviceAccountRef's tokens
// are exchanged through: the flag's, else the --alibaba-oidc-provider-arn of
// d, the process that exchanges them.
func (c *checker) oidcProviderARN(_ context.Context, d *deploymentInfo) string {
	if c.o.AlibabaOIDCProviderARN != "" {
		return c.o.AlibabaOIDCProviderARN
	}
	if d != nil {
		if v, ok := d.arg("--alibaba-oidc-provider-arn"); ok {
			return v
		}
	}
	return ""
}

// mayRequestTokens asks whether sa (whose is "the webhook's" or "the
// certbridge issuer's") may request the tokens of target, as a
// serviceAccountRef needs; nil when the question cannot be asked.
func (c *checker) mayRequestTokens(ctx context.Context, sa serviceAccount, whose string, target alibaba.ServiceAccount) *processGrant {
	allowed, _, err := c.may(ctx, sa, authorizationv1.ResourceAttributes{Verb: "create", Resource: "serviceaccounts", Subresource: "token",
		Namespace: target.Namespace, Name: target.Name})
	if err != nil {
		return nil
	}
	return &processGrant{allowed: allowed, who: fmt.Sprintf("%s ServiceAccount %s", whose, sa), user: sa.user()}
}

// deploymentInfo is what a controller's Deployment says about it.
type deploymentInfo struct {
	namespace, name, serviceAccount string
	args                            []string
}

// arg returns the value of a --flag=value or --flag value argument.
func (d *deploymentInfo) arg(flag string) (string, bool) {
	for i, a := range d.args {
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v, true
		}
		if a == flag {
			if i+1 < len(d.args) && !strings.HasPrefix(d.args[i+1], "-") {
				return d.args[i+1], true
			}
			return "true", true
		}
	}
	return "", false
}

// deployment finds the first Deployment matching selector, with its first
// container's arguments, $(VAR) references expanded as the kubelet does
// for the variables it can know (values and metadata.namespace).
func (c *checker) deployment(ctx context.Context, namespace, selector string) *deploymentInfo {
	key := namespace + "|" + selector
	if d, ok := c.deployments[key]; ok {
		return d
	}
	c.deployments[key] = nil
	list, err := c.o.Kube.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil || len(list.Items) == 0 {
		return nil
	}
	sort.Slice(list.Items, func(i, j int) bool {
		return list.Items[i].Namespace+"/"+list.Items[i].Name < list.Items[j].Namespace+"/"+list.Items[j].Name
	})
	dep := list.Items[0]
	d := &deploymentInfo{namespace: dep.Namespace, name: dep.Name, serviceAccount: dep.Spec.Template.Spec.ServiceAccountName}
	if d.serviceAccount == "" {
		d.serviceAccount = "default"
	}
	if cs := dep.Spec.Template.Spec.Containers; len(cs) > 0 {
		vars := map[string]string{}
		for _, e := range cs[0].Env {
			switch {
			case e.ValueFrom == nil:
				vars[e.Name] = e.Value
			case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
				vars[e.Name] = dep.Namespace
			}
		}
		for _, a := range append(append([]string{}, cs[0].Command...), cs[0].Args...) {
			for name, v := range vars {
				a = strings.ReplaceAll(a, "$("+name+")", v)
			}
			if !strings.Contains(a, "$(") {
				d.args = append(d.args, a)
			}
		}
	}
	c.deployments[key] = d
	return d
}

// readyCondition reports the issuer's Ready condition as its controller set
// it; fix is what to do when it is not True.
func (c *checker) readyCondition(status, reason, message string, found bool, controller, fix string) {
	switch {
	case !found:
		c.r.fail("Ready", "no Ready condition yet: "+controller+" has not processed the issuer",
			"check that "+controller+" is running, then run the check again")
	case status == string(metav1.ConditionTrue):
		c.r.pass("Ready", fmt.Sprintf("True (%s): %s", reason, message))
	default:
		c.r.fail("Ready", fmt.Sprintf("%s (%s): %s", status, reason, message), fix)
	}
}

// objectFrom converts a dynamic client's object to a typed one.
func objectFrom(obj map[string]any, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(obj, into)
}

// acmeReadyFix is the fix for an ACME issuer that is not Ready: cert-manager
// sets the condition from registering the ACME account, not from solvers.
const acmeReadyFix = "cert-manager's message says what failed: for an ACME issuer, registering the account with spec.acme.server " +
	"(its URL, reachability, skipTLSVerify or caBundle, externalAccountBinding) and its key in spec.acme.privateKeySecretRef"

// certManagerIssuer checks an Issuer or ClusterIssuer.
func (c *checker) certManagerIssuer(ctx context.Context, name string) {
	var (
		spec       cmapi.IssuerSpec
		conditions []cmapi.IssuerCondition
		err        error
	)
	if c.kind.Cluster {
		var iss *cmapi.ClusterIssuer
		if iss, err = c.o.CertManager.CertmanagerV1().ClusterIssuers().Get(ctx, name, metav1.GetOptions{}); err == nil {
			spec, conditions = iss.Spec, iss.Status.Conditions
		}
	} else {
		var iss *cmapi.Issuer
		if iss, err = c.o.CertManager.CertmanagerV1().Issuers(c.o.Namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			spec, conditions = iss.Spec, iss.Status.Conditions
		}
	}
	if err != nil {
		c.notFound(ctx, name, err)
		return
	}
	namespace := c.o.Namespace
	if c.kind.Cluster {
		ns, why := c.clusterResourceNamespace(c.certManagerDeployment(ctx), "cert-manager")
		namespace = ns
		c.r.pass("secret namespace", fmt.Sprintf("%q: a ClusterIssuer's solvers read Secrets from cert-manager's cluster resource namespace (%s)", ns, why))
	} else {
		c.r.pass("secret namespace", fmt.Sprintf("%q: an Issuer's solvers read Secrets from the Issuer's own namespace", namespace))
	}
	if spec.ACME == nil {
		c.r.fail("ACME", "not an ACME issuer", "certbridge check issuer checks ACME issuers with certbridge webhook solvers (dns01.webhook with solverName cloudflare or alidns) and the certbridge.io issuer kinds")
	} else {
		c.acme(ctx, spec.ACME.Solvers, namespace)
	}
	found := false
	for _, cond := range conditions {
		if cond.Type == cmapi.IssuerConditionReady {
			c.readyCondition(string(cond.Status), cond.Reason, cond.Message, true, "cert-manager", acmeReadyFix)
			found = true
			break
		}
	}
	if !found {
		c.readyCondition("", "", "", false, "cert-manager", "")
	}
	if spec.ACME != nil {
		c.stuckChallenges(ctx, name)
	}
}
