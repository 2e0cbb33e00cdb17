package check

import (
	"context"
	"fmt"
	"strings"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	gwapi "sigs.k8s.io/gateway-api/apis/v1"
)

// ReferenceGrant is served as v1 since Gateway API v1.5 and as v1beta1
// before; both have the same shape.
var referenceGrantGVRs = []schema.GroupVersionResource{
	{Group: GatewayAPIGroup, Version: "v1", Resource: "referencegrants"},
	{Group: GatewayAPIGroup, Version: "v1beta1", Resource: "referencegrants"},
}

// gatewayAPI checks a gateway.networking.k8s.io Gateway: each HTTPS or TLS
// listener that terminates TLS, its certificateRefs, and cert-manager's
// gateway-shim when the Gateway carries its annotation.
func (g *gatewayChecker) gatewayAPI(ctx context.Context, u *unstructured.Unstructured) {
	var gw gwapi.Gateway
	if !g.objectOf(u, &gw) {
		return
	}
	shim := g.gatewayShim(ctx, &gw)
	ignored := map[string]bool{}
	for _, l := range strings.Split(gw.Annotations[cmapi.CertificateIgnoreTLSListeners], ",") {
		ignored[strings.TrimSpace(l)] = true
	}
	status := map[gwapi.SectionName][]metav1.Condition{}
	for _, ls := range gw.Status.Listeners {
		status[ls.Name] = ls.Conditions
	}
	// terminating counts the listeners with a certificate at the gateway,
	// passthrough those whose backend has it.
	terminating, passthrough := 0, 0
	for i, l := range gw.Spec.Listeners {
		if l.Protocol != gwapi.HTTPSProtocolType && l.Protocol != gwapi.TLSProtocolType {
			continue
		}
		label := "listener " + string(l.Name)
		field := fmt.Sprintf("spec.listeners[%d]", i)
		if l.TLS == nil {
			g.r.fail(label, fmt.Sprintf("protocol %s on port %d without %s.tls: the gateway has no certificate to serve", l.Protocol, l.Port, field),
				fmt.Sprintf("set %s.tls.certificateRefs to the Secret that holds the certificate", field))
			continue
		}
		if l.TLS.Mode != nil && *l.TLS.Mode == gwapi.TLSModePassthrough {
			g.r.pass(label, fmt.Sprintf("%s on port %d with TLS Passthrough: the backend presents its own certificate; nothing to check at the gateway", l.Protocol, l.Port))
			passthrough++
			continue
		}
		terminating++
		listenerShim := shim && !ignored[string(l.Name)]
		var hosts []string
		switch {
		case l.Hostname != nil && *l.Hostname != "":
			hosts = []string{string(*l.Hostname)}
			g.r.pass(label, fmt.Sprintf("%s on port %d for %s, TLS Terminate with %d certificateRef(s)", l.Protocol, l.Port, *l.Hostname, len(l.TLS.CertificateRefs)))
		case listenerShim:
			g.r.fail(label+" hostname", fmt.Sprintf("%s.hostname is not set, so cert-manager's gateway-shim skips this listener (its Event: Skipped a listener block: %s.hostname: Required value) and no Certificate is made for it", field, field),
				fmt.Sprintf("set %s.hostname to the name clients connect to (a listener without one serves every name, and cert-manager cannot know which to request); or list the listener in the annotation %s and make its Certificate yourself", field, cmapi.CertificateIgnoreTLSListeners))
		default:
			g.r.pass(label, fmt.Sprintf("%s on port %d for any host (no hostname), TLS Terminate with %d certificateRef(s)", l.Protocol, l.Port, len(l.TLS.CertificateRefs)))
		}
		for _, cond := range status[l.Name] {
			if cond.Type == string(gwapi.ListenerConditionResolvedRefs) && cond.Status == metav1.ConditionFalse {
				g.r.fail(label+" status", fmt.Sprintf("the gateway controller reports ResolvedRefs False (%s): %s", cond.Reason, cond.Message),
					"the lines about this listener's Secret say what to change")
			}
		}
		if len(l.TLS.CertificateRefs) == 0 {
			g.r.fail(label+" certificateRefs", fmt.Sprintf("%s.tls.certificateRefs is empty: the gateway has no certificate to serve", field),
				fmt.Sprintf("set %s.tls.certificateRefs: [{name: <secret>}]", field))
			continue
		}
		for j, ref := range l.TLS.CertificateRefs {
			g.certificateRef(ctx, &gw, label, fmt.Sprintf("%s.tls.certificateRefs[%d]", field, j), ref, hosts, listenerShim && len(hosts) > 0, len(l.TLS.CertificateRefs) > 1, j)
		}
	}
	if terminating == 0 && passthrough == 0 {
		g.r.fail("listeners", "no listener terminates TLS (protocol HTTPS or TLS, mode Terminate)",
			"add a listener with protocol: HTTPS, a hostname and tls.certificateRefs naming the Secret")
	}
}

// certificateRef checks one certificateRef of a listener.
func (g *gatewayChecker) certificateRef(ctx context.Context, gw *gwapi.Gateway, label, field string, ref gwapi.SecretObjectReference, hosts []string, shim, several bool, index int) {
	if several {
		label += fmt.Sprintf(" certificateRefs[%d]", index)
	}
	group, kind := "", "Secret"
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	if (group != "" && group != "core") || kind != "Secret" {
		g.r.pass(label, fmt.Sprintf("%s refers to a %s of group %q, not a Secret: not checked", field, kind, group))
		return
	}
	namespace := gw.Namespace
	if ref.Namespace != nil && *ref.Namespace != "" {
		namespace = string(*ref.Namespace)
	}
	s := serverSecret{label: label, namespace: namespace, name: string(ref.Name), field: field + ".name", hosts: hosts,
		gatewayNamespace: gw.Namespace, gatewayUID: string(gw.UID), shim: shim}
	if namespace == gw.Namespace {
		s.where = "the Gateway's own namespace"
		g.r.pass(label+" secret namespace", fmt.Sprintf("%q: %s names no namespace, so the gateway reads Secret %q from the Gateway's own namespace", namespace, field, ref.Name))
	} else {
		s.where = fmt.Sprintf("the namespace %s.namespace names", field)
		if !g.referenceGrant(ctx, gw, label, field, namespace, string(ref.Name), shim) {
			return
		}
		// gateway-shim never issues for a Secret in another namespace.
		s.shim = false
	}
	g.checkSecret(ctx, s)
}

// referenceGrant reports whether a ReferenceGrant in namespace lets the
// Gateway's namespace use Secret name, as Gateway API requires for a
// certificateRef to another namespace.
func (g *gatewayChecker) referenceGrant(ctx context.Context, gw *gwapi.Gateway, label, field, namespace, name string, shim bool) bool {
	label += " secret namespace"
	var (
		items []unstructured.Unstructured
		err   error
	)
	for _, gvr := range referenceGrantGVRs {
		var list *unstructured.UnstructuredList
		list, err = g.o.Dynamic.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{})
		if err == nil {
			items = list.Items
			break
		}
		if !apierrors.IsNotFound(err) {
			break
		}
	}
	if err != nil {
		g.r.fail(label, fmt.Sprintf("%s names Secret %s/%s in another namespace than the Gateway's, and listing ReferenceGrants in %q failed: %v", field, namespace, name, namespace, err),
			"run the check with a kubeconfig that may list referencegrants.gateway.networking.k8s.io in "+namespace)
		return false
	}
	for _, it := range items {
		var rg gwapi.ReferenceGrant
		if objectFrom(it.Object, &rg) != nil {
			continue
		}
		from := false
		for _, f := range rg.Spec.From {
			if string(f.Group) == GatewayAPIGroup && f.Kind == "Gateway" && string(f.Namespace) == gw.Namespace {
				from = true
			}
		}
		for _, t := range rg.Spec.To {
			if from && t.Group == "" && t.Kind == "Secret" && (t.Name == nil || *t.Name == "" || string(*t.Name) == name) {
				g.r.pass(label, fmt.Sprintf("%q: %s names it, and ReferenceGrant %s/%s lets Gateways in %q use Secret %q there", namespace, field, namespace, rg.Name, gw.Namespace, name))
				return true
			}
		}
	}
	shimNote := ""
	if shim {
		shimNote = "; cert-manager's gateway-shim does not issue for a Secret in another namespace either"
	}
	g.r.fail(label, fmt.Sprintf("%s names Secret %s/%s, in another namespace than the Gateway's %q, and no ReferenceGrant in %q lets Gateways in %q use it: the gateway refuses the reference (listener condition ResolvedRefs False, RefNotPermitted)%s",
		field, namespace, name, gw.Namespace, namespace, gw.Namespace, shimNote),
		fmt.Sprintf("create in %q: {apiVersion: gateway.networking.k8s.io/v1beta1, kind: ReferenceGrant, metadata: {name: %s-%s, namespace: %s}, spec: {from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: %s}], to: [{group: \"\", kind: Secret, name: %s}]}}; or keep the Secret in %q and drop %s.namespace",
			namespace, gw.Namespace, name, namespace, gw.Namespace, name, gw.Namespace, field))
	return false
}

// gatewayShim reports whether cert-manager's gateway-shim acts on the
// Gateway: it has the cert-manager.io/issuer or cluster-issuer annotation,
// and cert-manager runs with its Gateway API support enabled. It returns
// whether the annotation is there.
func (g *gatewayChecker) gatewayShim(ctx context.Context, gw *gwapi.Gateway) bool {
	ann := gw.Annotations
	name, kind, group := ann[cmapi.IngressIssuerNameAnnotationKey], cmapi.IssuerKind, "cert-manager.io"
	annotation := cmapi.IngressIssuerNameAnnotationKey
	if v, ok := ann[cmapi.IngressClusterIssuerNameAnnotationKey]; ok {
		name, kind, annotation = v, cmapi.ClusterIssuerKind, cmapi.IngressClusterIssuerNameAnnotationKey
	}
	if v := ann[cmapi.IssuerKindAnnotationKey]; v != "" {
		kind = v
	}
	if v := ann[cmapi.IssuerGroupAnnotationKey]; v != "" {
		group = v
	}
	if name == "" {
		return false
	}
	const label = "cert-manager gateway-shim"
	g.useIssuer(gw.Namespace, cmmeta.IssuerReference{Name: name, Kind: kind, Group: group}, "the Gateway's annotation "+annotation)
	what := fmt.Sprintf("the annotation %s: %s asks it for a Certificate (issuer %s %s) per HTTPS or TLS listener with a hostname", annotation, name, kind, name)
	d, dep := g.certManagerController(ctx)
	if d == nil {
		for _, crt := range g.certificatesIn(ctx, gw.Namespace) {
			if ownedBy(crt.OwnerReferences, string(gw.UID)) {
				g.r.pass(label, fmt.Sprintf("%s; no cert-manager controller Deployment in %q to read its flags from, but Certificate %s/%s is owned by this Gateway: gateway-shim acts on it",
					what, g.o.CertManagerNamespace, crt.Namespace, crt.Name))
				return true
			}
		}
		g.r.fail(label, fmt.Sprintf("%s, but there is no Deployment labelled app.kubernetes.io/name=cert-manager,app.kubernetes.io/component=controller in %q to tell whether cert-manager's Gateway API support is enabled, and no Certificate is owned by this Gateway", what, g.o.CertManagerNamespace),
			"pass --cert-manager-namespace with the namespace cert-manager's controller runs in")
		return true
	}
	on, why := gatewayAPIEnabled(d.args, dep.image, dep.config(ctx, g.checker))
	where := fmt.Sprintf("cert-manager's Deployment %s/%s %s", d.namespace, d.name, why)
	if on {
		g.r.pass(label, where+"; "+what)
		return true
	}
	g.r.fail(label, where+", so its gateway-shim does not watch Gateways: "+what+" and does nothing",
		"cert-manager v1.15 or later: run the controller with --enable-gateway-api (chart values: config.apiVersion=controller.config.cert-manager.io/v1alpha1, config.kind=ControllerConfiguration, config.enableGatewayAPI=true; or extraArgs={--enable-gateway-api}); "+
			"before v1.15: --feature-gates=ExperimentalGatewayAPISupport=true. cert-manager looks for the Gateway API CRDs when it starts: install them first, or restart it after")
	return true
}
