package check

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// istioGateway is the part of a networking.istio.io Gateway the check
// reads. Istio's Go client would bring a large dependency tree for these
// few fields, which are stable across networking.istio.io/v1 and v1beta1.
type istioGateway struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector map[string]string `json:"selector"`
		Servers  []istioServer     `json:"servers"`
	} `json:"spec"`
}

type istioServer struct {
	Name string `json:"name"`
	Port struct {
		Number   uint32 `json:"number"`
		Name     string `json:"name"`
		Protocol string `json:"protocol"`
	} `json:"port"`
	Hosts []string `json:"hosts"`
	TLS   *struct {
		HTTPSRedirect        bool     `json:"httpsRedirect"`
		Mode                 string   `json:"mode"`
		CredentialName       string   `json:"credentialName"`
		CredentialNames      []string `json:"credentialNames"`
		CACertCredentialName string   `json:"caCertCredentialName"`
		ServerCertificate    string   `json:"serverCertificate"`
	} `json:"tls"`
}

// scopeGatewayToNamespace is istiod's setting that limits a Gateway's
// selector to pods in the Gateway's own namespace.
const scopeGatewayToNamespace = "PILOT_SCOPE_GATEWAY_TO_NAMESPACE"

// istio checks a networking.istio.io Gateway. Istio reads a server's
// credentialName from the namespace of the gateway workload (the pods the
// selector matches), not from the Gateway's namespace; the check finds
// those pods in the cluster.
func (g *gatewayChecker) istio(ctx context.Context, u *unstructured.Unstructured) {
	var gw istioGateway
	if !g.objectOf(u, &gw) {
		return
	}
	namespaces := g.istioWorkload(ctx, &gw)
	// terminating counts the servers with a certificate at the gateway,
	// other those whose certificate is elsewhere (backend, mesh, file).
	terminating, other := 0, 0
	for i, srv := range gw.Spec.Servers {
		if srv.TLS == nil {
			continue
		}
		port := srv.Port.Name
		if port == "" {
			port = fmt.Sprint(srv.Port.Number)
		}
		label := fmt.Sprintf("servers[%d] %s", i, port)
		field := fmt.Sprintf("spec.servers[%d].tls", i)
		// TLSmode's zero value is PASSTHROUGH.
		mode := srv.TLS.Mode
		if mode == "" {
			mode = "PASSTHROUGH"
		}
		switch mode {
		case "PASSTHROUGH", "AUTO_PASSTHROUGH":
			if srv.TLS.HTTPSRedirect {
				continue // an HTTP server redirecting to HTTPS
			}
			g.r.pass(label, fmt.Sprintf("TLS %s on port %d: the backend presents its own certificate; nothing to check at the gateway", mode, srv.Port.Number))
			other++
			continue
		case "ISTIO_MUTUAL":
			g.r.pass(label, fmt.Sprintf("TLS ISTIO_MUTUAL on port %d: Istio's own workload certificates; no Secret", srv.Port.Number))
			other++
			continue
		case "SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL":
		default:
			g.r.fail(label, fmt.Sprintf("%s.mode %q is not a TLS mode Istio knows", field, mode), "use SIMPLE, MUTUAL, OPTIONAL_MUTUAL, PASSTHROUGH, AUTO_PASSTHROUGH or ISTIO_MUTUAL")
			continue
		}
		terminating++
		names := srv.TLS.CredentialNames
		nameField := field + ".credentialNames"
		if len(names) == 0 && srv.TLS.CredentialName != "" {
			names, nameField = []string{srv.TLS.CredentialName}, field+".credentialName"
		}
		if len(names) == 0 {
			if srv.TLS.ServerCertificate != "" {
				g.r.pass(label, fmt.Sprintf("TLS %s with serverCertificate %s: a file in the gateway pod, not a Secret; not checked", mode, srv.TLS.ServerCertificate))
				other++
			} else {
				g.r.fail(label, fmt.Sprintf("TLS %s without %s.credentialName: the gateway has no certificate to serve", mode, field),
					fmt.Sprintf("set %s.credentialName to the name of the Secret the Certificate writes (its spec.secretName)", field))
			}
			continue
		}
		var hosts []string
		anyHost := false
		for _, h := range srv.Hosts {
			// A host may be "<namespace>/<dnsName>"; the namespace selects
			// VirtualServices, the name is what clients connect to.
			if _, name, ok := strings.Cut(h, "/"); ok {
				h = name
			}
			if h == "*" {
				anyHost = true
				continue
			}
			hosts = append(hosts, h)
		}
		if anyHost {
			hosts = nil
		}
		mutual := mode != "SIMPLE"
		g.r.pass(label, fmt.Sprintf("TLS %s on port %d for %s with %s %s", mode, srv.Port.Number, hostsText(srv.Hosts), nameField, strings.Join(names, ", ")))
		for _, ns := range namespaces {
			for j, name := range names {
				l := label
				if len(namespaces) > 1 {
					l += " in " + ns
				}
				if len(names) > 1 {
					l += fmt.Sprintf(" credentialNames[%d]", j)
				}
				s := serverSecret{label: l, namespace: ns, name: name, field: nameField, istio: true, mutual: mutual && j == 0,
					caName: srv.TLS.CACertCredentialName, hosts: hosts, gatewayNamespace: gw.Namespace,
					where: fmt.Sprintf("Istio reads credentialName from %q, the namespace of the gateway workload, not from the Gateway's", ns)}
				g.checkSecret(ctx, s)
			}
		}
	}
	if terminating == 0 && other == 0 {
		g.r.fail("servers", "no server terminates TLS (tls.mode SIMPLE, MUTUAL or OPTIONAL_MUTUAL)",
			"add a server with port protocol HTTPS, hosts, and tls: {mode: SIMPLE, credentialName: <secret>}")
	}
}

func hostsText(hosts []string) string {
	if len(hosts) == 0 {
		return "no host"
	}
	return strings.Join(hosts, ", ")
}

// istioWorkload finds the namespaces of the pods the Gateway's selector
// matches: where Istio reads its Secrets.
func (g *gatewayChecker) istioWorkload(ctx context.Context, gw *istioGateway) []string {
	const label = "gateway workload"
	if len(gw.Spec.Selector) == 0 {
		g.r.fail(label, "spec.selector is empty, so the check cannot tell which gateway pods serve this Gateway, nor the namespace Istio reads its Secrets from",
			"set spec.selector to the labels of the gateway pods, e.g. {istio: ingressgateway}")
		return nil
	}
	sel := labels.SelectorFromSet(gw.Spec.Selector).String()
	scope, scopeWhy := metav1.NamespaceAll, "in any namespace"
	if d := g.istiod(ctx); d != "" {
		scope, scopeWhy = gw.Namespace, fmt.Sprintf("in the Gateway's namespace %q only (%s sets %s=true)", gw.Namespace, d, scopeGatewayToNamespace)
	}
	pods, err := g.o.Kube.CoreV1().Pods(scope).List(ctx, metav1.ListOptions{LabelSelector: sel})
	switch {
	case apierrors.IsForbidden(err):
		g.r.fail(label, fmt.Sprintf("you may not list pods %s, so the namespace of the gateway workload, where Istio reads Secrets, cannot be found", scopeWhy),
			"run the check with a kubeconfig that may list pods in every namespace")
		return nil
	case err != nil:
		g.r.fail(label, "listing pods failed: "+err.Error(), "retry; check the connection to the cluster")
		return nil
	}
	byNS := map[string][]string{}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		byNS[p.Namespace] = append(byNS[p.Namespace], p.Name)
	}
	if len(byNS) == 0 {
		g.r.fail(label, fmt.Sprintf("no running pod %s has the labels %s (spec.selector): no gateway serves this Gateway, and the namespace Istio reads its Secrets from is unknown", scopeWhy, sel),
			fmt.Sprintf("set spec.selector to the labels of the gateway pods (kubectl get pods -A -l %s finds none; kubectl get pods -A --show-labels lists the labels)", sel))
		return nil
	}
	namespaces := make([]string, 0, len(byNS))
	var parts []string
	for ns := range byNS {
		namespaces = append(namespaces, ns)
	}
	sort.Strings(namespaces)
	for _, ns := range namespaces {
		names := byNS[ns]
		sort.Strings(names)
		more := ""
		if len(names) > 2 {
			names, more = names[:2], fmt.Sprintf(" and %d more", len(byNS[ns])-2)
		}
		parts = append(parts, fmt.Sprintf("%q (pod %s%s)", ns, strings.Join(names, ", "), more))
	}
	why := fmt.Sprintf("not from the Gateway's %q", gw.Namespace)
	if len(namespaces) == 1 && namespaces[0] == gw.Namespace {
		why = "here the Gateway's own namespace too"
	}
	g.r.pass(label, fmt.Sprintf("spec.selector %s matches pods in %s: Istio reads credentialName Secrets from the namespace of the gateway workload, %s",
		sel, strings.Join(parts, ", "), why))
	return namespaces
}

// istiod returns "Deployment <ns>/<name>" when istiod runs with
// PILOT_SCOPE_GATEWAY_TO_NAMESPACE=true, else "".
func (g *gatewayChecker) istiod(ctx context.Context) string {
	list, err := g.o.Kube.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
	if err != nil {
		return ""
	}
	for _, d := range list.Items {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == scopeGatewayToNamespace && strings.EqualFold(e.Value, "true") {
					return "istiod's Deployment " + d.Namespace + "/" + d.Name
				}
			}
		}
	}
	return ""
}
