package check

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/go-logr/logr"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/certbridge/certbridge/internal/secretref"
	"github.com/certbridge/certbridge/issuer"
	api "github.com/certbridge/certbridge/issuer/api/v1alpha1"
)

// certbridgeIssuer checks one of the certbridge.io kinds: its Secrets, the
// controller's own Check against the CA, the RBAC it needs, and its Ready
// condition.
func (c *checker) certbridgeIssuer(ctx context.Context, name string) {
	gvr := schema.GroupVersionResource{Group: api.GroupVersion.Group, Version: api.GroupVersion.Version, Resource: c.kind.Resource}
	ri := c.o.Dynamic.Resource(gvr)
	var get func() (map[string]any, error)
	if c.kind.Cluster {
		get = func() (map[string]any, error) {
			u, err := ri.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return u.Object, nil
		}
	} else {
		get = func() (map[string]any, error) {
			u, err := ri.Namespace(c.o.Namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return u.Object, nil
		}
	}
	obj, err := get()
	if err != nil {
		c.notFound(ctx, name, err)
		return
	}
	namespace := c.o.Namespace
	deployment := c.certbridgeIssuerDeployment(ctx)
	if c.kind.Cluster {
		ns, why := c.clusterResourceNamespace(deployment, "the certbridge issuer")
		namespace = ns
		c.r.pass("secret namespace", fmt.Sprintf("%q: %s reads Secrets from the certbridge issuer's cluster resource namespace (%s; chart value issuer.clusterResourceNamespace)", ns, article(c.kind.Kind), why))
	} else {
		c.r.pass("secret namespace", fmt.Sprintf("%q: %s reads Secrets from its own namespace", namespace, article(c.kind.Kind)))
	}
	// The controller's messages and decisions, with Secrets read as the
	// user running the check (each Secret once).
	reader := secretref.Reader{
		Get: func(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
			if res, ok := c.secrets[namespace+"/"+name]; ok {
				return res.s, res.err
			}
			return c.o.Kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		},
		Log:   logr.Discard(),
		Who:   "you",
		Scope: func(string) string { return "see the first line" },
		Grant: func(namespace string) string {
			return "run the check with a kubeconfig that may get Secrets in " + namespace
		},
	}
	allowAmbient := true
	if deployment != nil {
		if v, ok := deployment.arg("--allow-ambient-credentials"); ok {
			allowAmbient = v == "true"
		}
	}
	opts := issuer.Options{
		AllowAmbientCredentials: allowAmbient,
		OriginCA:                issuer.OriginCAOptions{BaseURL: c.o.CloudflareAPIURL},
		PCA:                     issuer.PCAOptions{Endpoint: c.o.AlibabaPCAEndpoint},
		STSEndpoint:             c.o.AlibabaSTSEndpoint,
	}
	var (
		secretNames []string
		conditions  []metav1.Condition
	)
	switch c.kind.Kind {
	case "CloudflareOriginIssuer", "ClusterCloudflareOriginIssuer":
		var iss api.CloudflareOriginIssuer
		if err := objectFrom(obj, &iss); err != nil {
			c.r.fail("issuer", "cannot read it: "+err.Error(), "")
			return
		}
		conditions = iss.Status.Conditions
		secretNames = c.origin(ctx, iss.Spec, namespace, reader, opts)
	default:
		var iss api.AlibabaPCAIssuer
		if err := objectFrom(obj, &iss); err != nil {
			c.r.fail("issuer", "cannot read it: "+err.Error(), "")
			return
		}
		conditions = iss.Status.Conditions
		secretNames = c.pca(ctx, iss.Spec, namespace, reader, opts)
	}
	c.approval(ctx, name)
	if len(secretNames) > 0 {
		sa := c.issuerSA(ctx, deployment)
		for _, s := range secretNames {
			c.issuerMayRead(ctx, sa, namespace, s)
		}
	}
	for _, cond := range conditions {
		if cond.Type == "Ready" {
			c.readyCondition(string(cond.Status), cond.Reason, cond.Message, true, "the certbridge issuer",
				"the certbridge issuer's message says what to change; the lines above make the same checks as its controller")
			return
		}
	}
	c.readyCondition("", "", "", false, "the certbridge issuer", "")
}

// origin checks an Origin CA issuer's token and asks Cloudflare as the
// controller's Check does (F19).
func (c *checker) origin(ctx context.Context, spec api.CloudflareOriginIssuerSpec, namespace string, reader secretref.Reader, opts issuer.Options) []string {
	switch {
	case spec.Auth.ServiceKeyRef != nil:
		c.r.fail("spec.auth.serviceKeyRef", issuer.ServiceKeyRefused.Error(),
			fmt.Sprintf("create an API token with Zone → SSL and Certificates → Edit, store it in a Secret in %q and set spec.auth.tokenRef instead of spec.auth.serviceKeyRef", namespace))
		return nil
	case spec.Auth.TokenRef == nil:
		c.r.fail("spec.auth.tokenRef", "not set", "set spec.auth.tokenRef to a Secret key holding an API token with Zone → SSL and Certificates → Edit")
		return nil
	}
	ref := spec.Auth.TokenRef
	if _, ok := c.secretValue(ctx, "spec.auth.tokenRef", namespace, ref.Name, ref.Key, "spec.auth.tokenRef"); !ok {
		return []string{ref.Name}
	}
	const label = "Cloudflare Origin CA"
	token, err := issuer.OriginToken(ctx, reader, spec, namespace)
	if err != nil {
		c.r.fail(label, err.Error(), "")
		return []string{ref.Name}
	}
	if err := issuer.NewOriginCA(opts.OriginCA, token.Value, token.String()).Check(ctx); err != nil {
		c.r.fail(label, err.Error(), "the controller reports the same; the message says what to change")
	} else {
		c.r.pass(label, "Cloudflare accepts the API token from "+token.String()+" (active); issuing also needs Zone → SSL and Certificates → Edit, which only a request proves")
	}
	return []string{ref.Name}
}

// pca checks a Private CA issuer's credentials and CA as the controller's
// Check does (F20).
func (c *checker) pca(ctx context.Context, spec api.AlibabaPCAIssuerSpec, namespace string, reader secretref.Reader, opts issuer.Options) []string {
	a := spec.Auth
	var names []string
	complete := true
	for _, rf := range []struct {
		field string
		sel   *api.SecretKeySelector
	}{{"spec.auth.accessKeyIdSecretRef", a.AccessKeyIDSecretRef}, {"spec.auth.accessKeySecretSecretRef", a.AccessKeySecretSecretRef}, {"spec.auth.securityTokenSecretRef", a.SecurityTokenSecretRef}} {
		if rf.sel == nil {
			continue
		}
		if !slices.Contains(names, rf.sel.Name) {
			names = append(names, rf.sel.Name)
		}
		if _, ok := c.secretValue(ctx, rf.field, namespace, rf.sel.Name, rf.sel.Key, rf.field); !ok {
			complete = false
		}
	}
	if !complete {
		return names
	}
	const label = "Alibaba Cloud Private CA"
	if a.AccessKeyIDSecretRef == nil && a.AccessKeySecretSecretRef == nil && c.kind.Cluster && opts.AllowAmbientCredentials {
		c.r.pass("credential", "ambient: RRSA or the ECS RAM role of the certbridge issuer's pod (not checked from here, nor is CA "+spec.CAIdentifier+")")
		return names
	}
	cred, source, err := issuer.PCACredential(ctx, opts, reader, spec, namespace, c.kind.Cluster)
	if err != nil {
		c.r.fail("credential", err.Error(), "")
		return names
	}
	if a.RoleARN != "" && opts.STSEndpoint == "" {
		opts.STSEndpoint = "sts.aliyuncs.com"
	}
	p, err := issuer.NewAlibabaPCAForSpec(opts, cred, source, spec)
	if err == nil {
		err = p.Check(ctx)
	}
	if err != nil {
		c.r.fail(label, err.Error(), "the controller reports the same; the message says what to change")
		return names
	}
	c.r.pass(label, fmt.Sprintf("CA %s can issue with the credentials from %s: a sub-CA in state ISSUE, not expired, with certificates left", spec.CAIdentifier, source))
	return names
}

// approval checks that cert-manager may approve requests for the issuer:
// its approval webhook asks for the wildcard signer name first, then the
// issuer's own.
func (c *checker) approval(ctx context.Context, name string) {
	wildcard := c.kind.Resource + "." + c.kind.Group + "/*"
	own := c.kind.Resource + "." + c.kind.Group + "/" + name
	if !c.kind.Cluster {
		own = c.kind.Resource + "." + c.kind.Group + "/" + c.o.Namespace + "." + name
	}
	label := "cert-manager may approve " + wildcard
	sa, err := c.certManagerSA(ctx)
	if err != nil {
		c.r.fail(label, err.Error(), "give --cert-manager-service-account as <namespace>/<name>")
		return
	}
	for _, signerName := range []string{wildcard, own} {
		allowed, _, err := c.may(ctx, sa, authorizationv1.ResourceAttributes{Verb: "approve", Group: "cert-manager.io", Resource: "signers", Name: signerName})
		if err != nil {
			c.r.fail(label, "SubjectAccessReview failed: "+err.Error(), "run the check with a kubeconfig that may create subjectaccessreviews")
			return
		}
		if allowed {
			c.r.pass(label, fmt.Sprintf("ServiceAccount %s (%s) may approve signers %s", sa, sa.source, signerName))
			return
		}
	}
	g := &webhookGroup{}
	if served, err := c.certbridgeAPIServices(ctx); err == nil {
		for _, as := range served {
			c.fromAPIService(g, as)
			break
		}
	}
	c.r.fail(label, fmt.Sprintf("%s may not approve signers %s nor %s, so CertificateRequests for this issuer are never approved", c.describeSA(ctx, sa), wildcard, own),
		fmt.Sprintf("if cert-manager runs as %s, tell the chart (its ClusterRole <release>:approver): %s; without the chart, add %s to cert-manager's approveSignerNames",
			sa, g.helm(fmt.Sprintf("--set certManager.serviceAccountName=%s --set certManager.namespace=%s", sa.name, sa.namespace)), wildcard))
}

// issuerSA is the certbridge issuer controller's identity.
func (c *checker) issuerSA(ctx context.Context, d *deploymentInfo) serviceAccount {
	if c.o.IssuerServiceAccount != "" {
		if sa, err := parseServiceAccount(c.o.IssuerServiceAccount, "from --issuer-service-account"); err == nil {
			return sa
		}
	}
	if d != nil {
		return serviceAccount{namespace: d.namespace, name: d.serviceAccount, source: fmt.Sprintf("the serviceAccountName of the certbridge issuer's Deployment %s/%s", d.namespace, d.name)}
	}
	if served, err := c.certbridgeAPIServices(ctx); err == nil {
		for _, as := range served {
			base := strings.TrimSuffix(as.Spec.Service.Name, "-webhook")
			return serviceAccount{namespace: as.Spec.Service.Namespace, name: base + "-issuer",
				source: "the chart's name beside the webhook's Service " + as.Spec.Service.Namespace + "/" + as.Spec.Service.Name + "; pass --issuer-service-account if it differs"}
		}
	}
	return serviceAccount{namespace: c.o.CertManagerNamespace, name: "certbridge-issuer", source: "assumed: no certbridge issuer Deployment found; pass --issuer-service-account"}
}

// issuerMayRead checks that the issuer controller may get a Secret.
func (c *checker) issuerMayRead(ctx context.Context, sa serviceAccount, namespace, name string) {
	label := fmt.Sprintf("issuer may get Secret %s/%s", namespace, name)
	allowed, _, err := c.may(ctx, sa, authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: namespace, Name: name})
	switch {
	case err != nil:
		c.r.fail(label, "SubjectAccessReview failed: "+err.Error(), "run the check with a kubeconfig that may create subjectaccessreviews")
	case allowed:
		c.r.pass(label, fmt.Sprintf("the certbridge issuer's ServiceAccount %s (%s) may get it", sa, sa.source))
	default:
		c.r.fail(label, fmt.Sprintf("the certbridge issuer's %s may not get Secrets in namespace %q (RBAC)", c.describeSA(ctx, sa), namespace),
			fmt.Sprintf("bind a Role granting get on secrets in %q to %s (the chart's ClusterRole <release>-issuer grants it in every namespace)", namespace, sa))
	}
}

// article puts "a" or "an" before a kind: "an AlibabaPCAIssuer".
func article(kind string) string {
	if strings.ContainsRune("AEIOU", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}
