package check

import (
	"context"
	"fmt"
	"slices"
	"strings"

	issuerlib "github.com/cert-manager/issuer-lib/api/v1alpha1"
	"github.com/go-logr/logr"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/certbridge/certbridge/internal/alibaba"
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
	pcaEndpoint, err := alibaba.ParseEndpoint("--alibaba-pca-endpoint", c.o.AlibabaPCAEndpoint)
	if err != nil {
		c.r.fail("endpoint", err.Error(), "give --alibaba-pca-endpoint as host[:port], or an http:// or https:// URL")
		return
	}
	stsEndpoint, err := alibaba.ParseEndpoint("--alibaba-sts-endpoint", c.o.AlibabaSTSEndpoint)
	if err != nil {
		c.r.fail("endpoint", err.Error(), "give --alibaba-sts-endpoint as host[:port]")
		return
	}
	opts := issuer.Options{
		ClusterResourceNamespace: namespace,
		AllowAmbientCredentials:  allowAmbient,
		OriginCA:                 issuer.OriginCAOptions{BaseURL: c.o.CloudflareAPIURL},
		Alibaba:                  alibaba.Options{PCA: pcaEndpoint, STS: stsEndpoint, OIDCProviderARN: c.oidcProviderARN(ctx, deployment)},
		// A serviceAccountRef's token is requested as you.
		Tokens: alibaba.KubeTokens(c.o.Kube),
	}
	iss, ok := issuer.NewObject(c.kind.Kind)
	if !ok {
		c.r.fail("issuer", "unknown kind "+c.kind.Kind, "")
		return
	}
	if err := objectFrom(obj, iss); err != nil {
		c.r.fail("issuer", "cannot read it: "+err.Error(), "")
		return
	}
	conditions := iss.GetConditions()
	signers := issuer.NewSigners(opts, reader)
	var secretNames []string
	switch spec := any(iss).(type) {
	case interface {
		OriginSpec() api.CloudflareOriginIssuerSpec
	}:
		secretNames = c.origin(ctx, signers, iss, spec.OriginSpec(), namespace)
	case interface {
		PCASpec() api.AlibabaPCAIssuerSpec
	}:
		secretNames = c.pca(ctx, signers, iss, spec.PCASpec(), namespace, allowAmbient, opts.Alibaba.OIDCProviderARN)
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

// origin checks an Origin CA issuer's token, then asks Cloudflare exactly
// as the controller's Check does (F19).
func (c *checker) origin(ctx context.Context, signers *issuer.Signers, iss issuerlib.Issuer, spec api.CloudflareOriginIssuerSpec, namespace string) []string {
	switch {
	case spec.Auth.ServiceKeyRef != nil:
		c.r.fail("spec.auth.serviceKeyRef", "origin-ca: "+issuer.ServiceKeyRefused.Error(),
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
	if _, err := signers.Check(ctx, iss); err != nil {
		c.r.fail(label, err.Error(), "the controller reports the same; the message says what to change")
	} else {
		c.r.pass(label, fmt.Sprintf("Cloudflare accepts the API token from Secret %s/%s key %q (spec.auth.tokenRef) (active); issuing also needs Zone → SSL and Certificates → Edit, which only a request proves",
			namespace, ref.Name, ref.Key))
	}
	return []string{ref.Name}
}

// pca checks a Private CA issuer's credentials, then its CA exactly as the
// controller's Check does (F20), with the CA's key algorithm.
func (c *checker) pca(ctx context.Context, signers *issuer.Signers, iss issuerlib.Issuer, spec api.AlibabaPCAIssuerSpec, namespace string, allowAmbient bool, providerARN string) []string {
	a := spec.Auth
	if ref := a.ServiceAccountRef; ref != nil {
		sa := alibaba.ServiceAccount{Namespace: namespace, Name: ref.Name, Audience: ref.Audience, Tokens: alibaba.KubeTokens(c.o.Kube)}
		may := c.mayRequestTokens(ctx, c.issuerSA(ctx, c.certbridgeIssuerDeployment(ctx)), "the certbridge issuer's", sa)
		if _, ok := serviceAccountSteps(ctx, &c.r, "spec.auth.serviceAccountRef", sa, a.RoleARN, providerARN, c.o.AlibabaSTSEndpoint, "you", may); !ok {
			return nil
		}
	}
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
	if a.AccessKeyIDSecretRef == nil && a.AccessKeySecretSecretRef == nil && a.ServiceAccountRef == nil && c.kind.Cluster && allowAmbient {
		c.r.pass("credential", "ambient: RRSA or the ECS RAM role of the certbridge issuer's pod (not checked from here, nor is CA "+spec.CAIdentifier+")")
		return names
	}
	res, err := signers.Check(ctx, iss)
	if err != nil {
		c.r.fail(label, err.Error(), "the controller reports the same; the message says what to change")
		return names
	}
	source := "ambient credentials"
	switch {
	case a.ServiceAccountRef != nil:
		source = fmt.Sprintf("role %s, assumed with ServiceAccount %s/%s's tokens", a.RoleARN, namespace, a.ServiceAccountRef.Name)
	case a.AccessKeyIDSecretRef != nil:
		source = fmt.Sprintf("Secret %s/%s", namespace, a.AccessKeyIDSecretRef.Name)
	}
	detail := fmt.Sprintf("CA %s can issue with the credentials from %s: a sub-CA in state ISSUE, not expired, with certificates left", spec.CAIdentifier, source)
	if res.CA != nil && res.CA.Algorithm != "" {
		detail += fmt.Sprintf("; its key is %s, so requests must have %s keys (privateKey.algorithm)", res.CA.Algorithm, keyFamilyName(res.CA.Algorithm))
	}
	c.r.pass(label, detail)
	return names
}

// keyFamilyName is the Certificate's privateKey.algorithm for a Private CA
// key algorithm.
func keyFamilyName(algorithm string) string {
	switch {
	case strings.HasPrefix(algorithm, "ECC"):
		return "ECDSA"
	case strings.HasPrefix(algorithm, "RSA"):
		return "RSA"
	}
	return algorithm
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
			fmt.Sprintf("add %q to the chart value %s, or empty that list for every namespace; or bind a Role granting get on secrets in %q to %s",
				namespace, issuer.SecretAccessValue, namespace, sa))
	}
}

// article puts "a" or "an" before a kind: "an AlibabaPCAIssuer".
func article(kind string) string {
	if strings.ContainsRune("AEIOU", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}
