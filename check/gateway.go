package check

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The API groups of the two Gateway kinds `certbridge check gateway` checks.
const (
	GatewayAPIGroup = "gateway.networking.k8s.io"
	IstioGroup      = "networking.istio.io"
)

var (
	gatewayAPIGVR   = schema.GroupVersionResource{Group: GatewayAPIGroup, Version: "v1", Resource: "gateways"}
	istioGatewayGVR = schema.GroupVersionResource{Group: IstioGroup, Version: "v1", Resource: "gateways"}
)

// GatewayOptions are the clients and flags of `certbridge check gateway`.
// The embedded IssuerOptions hold the clients, the namespace of the Gateway
// and, for ChainIssuer, everything `check issuer` needs.
type GatewayOptions struct {
	IssuerOptions
	// Kind is GatewayAPIGroup or IstioGroup; empty: whichever Gateway of
	// that name exists (Gateway API's first).
	Kind string
	// ChainIssuer also checks, as `check issuer` does, the issuer of every
	// Certificate that writes one of the gateway's Secrets.
	ChainIssuer bool
	// Now is the time certificates are checked at; zero: time.Now().
	Now time.Time
}

// ParseGatewayKind accepts the --kind values: the API group of either
// Gateway kind, optionally as gateways.<group>.
func ParseGatewayKind(s string) (string, error) {
	k := strings.ToLower(strings.TrimSpace(s))
	if k == "" {
		return "", nil
	}
	for _, group := range []string{GatewayAPIGroup, IstioGroup} {
		if k == group || k == "gateways."+group || k == "gateway."+group {
			return group, nil
		}
	}
	return "", fmt.Errorf("--kind %s: use %s (Gateway API) or %s (Istio)", s, GatewayAPIGroup, IstioGroup)
}

// gatewayChecker is one run of the gateway check; it shares the issuer
// check's caches (Secrets, Deployments) and Report.
type gatewayChecker struct {
	*checker
	opts GatewayOptions
	now  time.Time
	// certificates by namespace, listed once
	certificates map[string][]cmapi.Certificate
	// issuers the gateway's Certificates use, in the order met
	issuers []issuerUse
}

// issuerUse is an issuer a Certificate (or gateway-shim's annotation) names.
type issuerUse struct {
	namespace string
	ref       cmmeta.IssuerReference
	by        string
}

// Gateway checks the last step of a certificate's way: for each TLS
// listener (Gateway API) or server (Istio) of the Gateway, where the
// gateway reads the Secret and why, that it holds a certificate and key of
// the right shape for the TLS mode, that the certificate covers the
// listener's hosts and is valid, and which cert-manager Certificate writes
// it and whether cert-manager will act. No finding holds a Secret's value.
func Gateway(ctx context.Context, o GatewayOptions, name string) Report {
	if o.CertManagerNamespace == "" {
		o.CertManagerNamespace = "cert-manager"
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	g := &gatewayChecker{
		checker:      &checker{o: o.IssuerOptions, secrets: map[string]secretResult{}, deployments: map[string]*deploymentInfo{}},
		opts:         o,
		now:          now,
		certificates: map[string][]cmapi.Certificate{},
	}
	ns := o.Namespace
	g.r.Target = "Gateway " + ns + "/" + name
	kinds := []string{GatewayAPIGroup, IstioGroup}
	if o.Kind != "" {
		kinds = []string{o.Kind}
	}
	var errs []string
	for _, kind := range kinds {
		gvr := gatewayAPIGVR
		if kind == IstioGroup {
			gvr = istioGatewayGVR
		}
		u, err := o.Dynamic.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Sprintf("reading gateways.%s %s/%s failed: %v", kind, ns, name, err))
			}
			continue
		}
		g.r.Target += " (" + kind + ")"
		if kind == IstioGroup {
			g.istio(ctx, u)
		} else {
			g.gatewayAPI(ctx, u)
		}
		g.chainIssuers(ctx)
		return g.r
	}
	if len(errs) > 0 {
		g.r.fail("gateway", strings.Join(errs, "; "),
			"check the kubeconfig, context and namespace (--kubeconfig, --context, -n), and that the Gateway CRDs are installed")
		return g.r
	}
	g.gatewayNotFound(ctx, name, kinds)
	return g.r
}

// gatewayNotFound names the Gateways that do exist in the namespace.
func (g *gatewayChecker) gatewayNotFound(ctx context.Context, name string, kinds []string) {
	var have []string
	for _, kind := range kinds {
		gvr := gatewayAPIGVR
		if kind == IstioGroup {
			gvr = istioGatewayGVR
		}
		list, err := g.o.Metadata.Resource(gvr).Namespace(g.o.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, it := range list.Items {
			have = append(have, it.Name+" ("+kind+")")
		}
	}
	sort.Strings(have)
	fix := "check the name and the namespace (-n)"
	if len(have) > 0 {
		fix += "; Gateways in " + g.o.Namespace + ": " + strings.Join(have, ", ")
	} else {
		fix += fmt.Sprintf("; there is no Gateway in namespace %q", g.o.Namespace)
	}
	g.r.fail("gateway", fmt.Sprintf("no Gateway %q in namespace %q (looked for gateways.%s)", name, g.o.Namespace, strings.Join(kinds, " and gateways.")), fix)
}

// certificatesIn lists a namespace's Certificates once.
func (g *gatewayChecker) certificatesIn(ctx context.Context, namespace string) []cmapi.Certificate {
	if list, ok := g.certificates[namespace]; ok {
		return list
	}
	var items []cmapi.Certificate
	if list, err := g.o.CertManager.CertmanagerV1().Certificates(namespace).List(ctx, metav1.ListOptions{}); err == nil {
		items = list.Items
	}
	g.certificates[namespace] = items
	return items
}

// certificateFor is the Certificate certName in namespace, or without a
// name the one whose spec.secretName is secret.
func (g *gatewayChecker) certificateFor(ctx context.Context, namespace, secret, certName string) *cmapi.Certificate {
	list := g.certificatesIn(ctx, namespace)
	for i := range list {
		if (certName != "" && list[i].Name == certName) || (certName == "" && list[i].Spec.SecretName == secret) {
			return &list[i]
		}
	}
	return nil
}

// ownedBy reports whether obj has an ownerReference to the object uid.
func ownedBy(refs []metav1.OwnerReference, uid string) bool {
	for _, r := range refs {
		if string(r.UID) == uid {
			return true
		}
	}
	return false
}

// owner reports which cert-manager Certificate writes the Secret
// namespace/name, its Ready condition and issuer. gatewayUID is the Gateway
// API Gateway's uid (empty for Istio), to tell whether gateway-shim made the
// Certificate; shim says gateway-shim is expected to make one.
func (g *gatewayChecker) owner(ctx context.Context, label, namespace, name string, annotations map[string]string, gatewayUID string, shim bool) {
	label += " Certificate"
	certName := annotations[cmapi.CertificateNameKey]
	crt := g.certificateFor(ctx, namespace, name, certName)
	switch {
	case crt == nil && certName != "":
		issued := ""
		if iss := annotations[cmapi.IssuerNameAnnotationKey]; iss != "" {
			issued = fmt.Sprintf(" (it was issued by %s %s)", annotations[cmapi.IssuerKindAnnotationKey], iss)
		}
		g.r.fail(label, fmt.Sprintf("Secret %s/%s names Certificate %q (annotation %s), which does not exist in %q%s: nothing renews this Secret", namespace, name, certName, cmapi.CertificateNameKey, namespace, issued),
			fmt.Sprintf("recreate Certificate %s/%s with spec.secretName: %s (for a Gateway with the %s annotation, gateway-shim recreates it)", namespace, certName, name, cmapi.IngressIssuerNameAnnotationKey))
		return
	case crt == nil && shim:
		g.r.fail(label, fmt.Sprintf("no cert-manager Certificate in %q has spec.secretName %q: cert-manager's gateway-shim has not made one for this listener", namespace, name),
			fmt.Sprintf("the gateway-shim and hostname lines say why; cert-manager records what it skipped as Events on the Gateway: kubectl -n %s get events --field-selector involvedObject.kind=Gateway", g.o.Namespace))
		return
	case crt == nil:
		g.r.pass(label, fmt.Sprintf("no cert-manager Certificate in %q writes Secret %q (it has no %s annotation): it was made by hand or another tool, and nothing here renews it", namespace, name, cmapi.CertificateNameKey))
		return
	}
	ref := crt.Spec.IssuerRef
	kind := ref.Kind
	if kind == "" {
		kind = cmapi.IssuerKind
	}
	issuerDesc := kind + " " + ref.Name
	if ref.Group != "" && ref.Group != "cert-manager.io" {
		issuerDesc = kind + "." + ref.Group + " " + ref.Name
	}
	g.useIssuer(namespace, ref, "Certificate "+namespace+"/"+crt.Name)
	made := ""
	if gatewayUID != "" && ownedBy(crt.OwnerReferences, gatewayUID) {
		made = ", made by cert-manager's gateway-shim for this Gateway"
	}
	var ready *cmapi.CertificateCondition
	for i := range crt.Status.Conditions {
		if crt.Status.Conditions[i].Type == cmapi.CertificateConditionReady {
			ready = &crt.Status.Conditions[i]
		}
	}
	what := fmt.Sprintf("Certificate %s/%s (issuer %s%s)", namespace, crt.Name, issuerDesc, made)
	fix := fmt.Sprintf("kubectl -n %s describe certificate %s shows why; certbridge check issuer %s/%s -n %s (or this check with --issuer) checks its issuer",
		namespace, crt.Name, strings.ToLower(kind), ref.Name, namespace)
	switch {
	case ready == nil:
		g.r.fail(label, what+": no Ready condition yet: cert-manager has not processed it", "check that cert-manager is running; "+fix)
	case ready.Status != cmmeta.ConditionTrue:
		g.r.fail(label, fmt.Sprintf("%s: Ready %s (%s): %s", what, ready.Status, ready.Reason, ready.Message), fix)
	default:
		renewal := ""
		if crt.Status.RenewalTime != nil {
			renewal = "; renewal due " + crt.Status.RenewalTime.UTC().Format(time.RFC3339)
		}
		g.r.pass(label, fmt.Sprintf("%s writes the Secret: Ready True (%s): %s%s", what, ready.Reason, ready.Message, renewal))
	}
}

// useIssuer records an issuer for --issuer, once each.
func (g *gatewayChecker) useIssuer(namespace string, ref cmmeta.IssuerReference, by string) {
	if ref.Kind == "" {
		ref.Kind = cmapi.IssuerKind
	}
	if ref.Group == "" {
		ref.Group = "cert-manager.io"
	}
	for _, u := range g.issuers {
		// The cluster kinds are the same issuer from every namespace.
		if u.ref == ref && (u.namespace == namespace || strings.HasPrefix(ref.Kind, "Cluster")) {
			return
		}
	}
	g.issuers = append(g.issuers, issuerUse{namespace: namespace, ref: ref, by: by})
}

// chainIssuers runs `check issuer` in-process for each issuer met, with its
// findings under the issuer's name.
func (g *gatewayChecker) chainIssuers(ctx context.Context) {
	if !g.opts.ChainIssuer {
		return
	}
	if len(g.issuers) == 0 {
		g.r.fail("--issuer", "no cert-manager Certificate writes the gateway's Secrets and the Gateway names no issuer (annotation "+cmapi.IngressIssuerNameAnnotationKey+"), so there is no issuer to check",
			"run certbridge check issuer <kind>/<name> for the issuer that signs these certificates, or leave out --issuer")
		return
	}
	for _, u := range g.issuers {
		var kind *IssuerKind
		for i, k := range IssuerKinds {
			if k.Kind == u.ref.Kind && k.Group == u.ref.Group {
				kind = &IssuerKinds[i]
			}
		}
		if kind == nil {
			g.r.pass("--issuer "+u.ref.Kind+"."+u.ref.Group+" "+u.ref.Name, "named by "+u.by+": not a kind certbridge check issuer checks, so not checked")
			continue
		}
		o := g.o
		o.Namespace = u.namespace
		sub := Issuer(ctx, o, *kind, u.ref.Name)
		for _, f := range sub.Findings {
			f.Check = sub.Target + " › " + f.Check
			g.r.Findings = append(g.r.Findings, f)
		}
	}
}

// objectOf decodes a dynamic client's object; a failure is a finding.
func (g *gatewayChecker) objectOf(u *unstructured.Unstructured, into any) bool {
	if err := objectFrom(u.Object, into); err != nil {
		g.r.fail("gateway", "cannot read it: "+err.Error(), "")
		return false
	}
	return true
}
