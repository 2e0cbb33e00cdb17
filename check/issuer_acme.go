package check

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/solver"
)

// solverNames are the solvers the certbridge webhook serves.
var solverNames = []string{"cloudflare", "alidns"}

// webhookGroup is what was found about an API group a solver names.
type webhookGroup struct {
	served bool
	// sa is the webhook's ServiceAccount; empty name when unknown.
	sa serviceAccount
	// release and namespace of the chart, for helm commands.
	release, namespace string
	// resources the webhook serves under the group.
	resources []string
}

// acme checks every certbridge webhook solver of an ACME issuer.
func (c *checker) acme(ctx context.Context, solvers []cmacme.ACMEChallengeSolver, namespace string) {
	groups := map[string]*webhookGroup{}
	checked := map[string]bool{}
	ours := 0
	var others []string
	for i, s := range solvers {
		prefix := fmt.Sprintf("solvers[%d]", i)
		if s.DNS01 == nil || s.DNS01.Webhook == nil {
			others = append(others, prefix)
			continue
		}
		wh := s.DNS01.Webhook
		g, ok := groups[wh.GroupName]
		if !ok {
			g = c.webhookGroup(ctx, wh.GroupName)
			groups[wh.GroupName] = g
		}
		if !slices.Contains(solverNames, wh.SolverName) {
			if g.served && len(g.resources) > 0 {
				ours++
				c.r.fail(prefix+" solverName", fmt.Sprintf("%q is not a solver of the certbridge webhook serving %s", wh.SolverName, wh.GroupName),
					"set webhook.solverName to one of "+strings.Join(g.resources, ", "))
				continue
			}
			others = append(others, prefix)
			continue
		}
		ours++
		secrets := c.solver(ctx, prefix, s, namespace, g)
		c.apiService(ctx, wh.GroupName, wh.SolverName, g)
		if key := wh.GroupName + "/" + wh.SolverName; g.served && !checked[key] {
			checked[key] = true
			c.challengePayloads(ctx, wh.GroupName, wh.SolverName, g)
		}
		for _, name := range secrets {
			if key := "secret/" + namespace + "/" + name; !checked[key] {
				checked[key] = true
				c.webhookMayRead(ctx, g, namespace, name)
			}
		}
	}
	switch {
	case ours == 0:
		c.r.fail("solvers", fmt.Sprintf("the issuer has no certbridge webhook solver among its %d solver(s)", len(solvers)),
			"add a solver with dns01.webhook: {groupName: <the chart's groupName>, solverName: cloudflare or alidns, config: {…}} (README: Using it from an Issuer)")
	case len(others) > 0:
		c.r.pass("other solvers", strings.Join(others, ", ")+" are not certbridge webhook solvers and are not checked")
	}
}

// secretVar is a solver config's Secret reference and the variable the
// credential checks read its value from.
type secretVar struct {
	field, variable string
	sel             *solver.SecretKeySelector
}

// solver checks one certbridge solver's config, Secrets and credential, and
// returns the names of the Secrets it references.
func (c *checker) solver(ctx context.Context, prefix string, s cmacme.ACMEChallengeSolver, namespace string, g *webhookGroup) []string {
	wh := s.DNS01.Webhook
	var names []string
	if s.Selector != nil {
		names = append(append(names, s.Selector.DNSNames...), s.Selector.DNSZones...)
	}
	configFix := fmt.Sprintf("fix spec.acme.%s.dns01.webhook.config; the webhook answers every Challenge of this solver with this error", prefix)
	var (
		refs []secretVar
		env  = map[string]string{}
		// credential asks the provider, once every value was read, and
		// returns what writes as the solver does (nil: not from here).
		credential func(env map[string]string, sources map[string]string) zoneWriter
		// identity names a credential that is no Secret reference.
		identity string
	)
	switch wh.SolverName {
	case "cloudflare":
		cfg, err := solver.ParseCloudflareConfig(wh.Config)
		if err != nil {
			c.r.fail(prefix+" config", "cloudflare: "+err.Error(), configFix)
			return nil
		}
		refs = []secretVar{{"apiTokenSecretRef", "CLOUDFLARE_API_TOKEN", cfg.APITokenSecretRef}, {"apiKeySecretRef", "CLOUDFLARE_API_KEY", cfg.APIKeySecretRef}}
		if cfg.Email != "" {
			env["CLOUDFLARE_EMAIL"] = strings.TrimSpace(cfg.Email)
		}
		credential = func(env, sources map[string]string) zoneWriter {
			o := CloudflareOptions{BaseURL: c.o.CloudflareAPIURL, WriteTest: c.o.WriteTest, Sources: sources}
			switch {
			case cfg.ZoneID != "":
				o.ZoneID = cfg.ZoneID
			case cfg.ZoneName != "":
				o.Zones = []string{cfg.ZoneName}
			default:
				o.Names = names
			}
			r, acct := cloudflareCredentials(ctx, mapEnv(env), o)
			c.append(prefix, r)
			if acct == nil {
				return nil
			}
			return cfWriter{acct: acct, zoneName: cfg.ZoneName, zoneID: cfg.ZoneID}
		}
	case "alidns":
		cfg, err := solver.ParseAliDNSConfig(wh.Config)
		if err != nil {
			c.r.fail(prefix+" config", "alidns: "+err.Error(), configFix)
			return nil
		}
		if ref := cfg.ServiceAccountRef; ref != nil {
			identity = "serviceAccountRef " + ref.Name + " for roleArn " + cfg.RoleARN
		}
		refs = []secretVar{{"accessKeyIdSecretRef", "ALIBABA_CLOUD_ACCESS_KEY_ID", cfg.AccessKeyIDSecretRef},
			{"accessKeySecretSecretRef", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", cfg.AccessKeySecretSecretRef},
			{"securityTokenSecretRef", "ALIBABA_CLOUD_SECURITY_TOKEN", cfg.SecurityTokenSecretRef}}
		credential = func(env, sources map[string]string) zoneWriter {
			if ref := cfg.ServiceAccountRef; ref != nil {
				return c.aliServiceAccount(ctx, prefix, namespace, cfg, names, g)
			}
			if cfg.AccessKeyIDSecretRef == nil {
				c.aliAmbient(ctx, prefix, namespace)
				return nil
			}
			if cfg.RoleARN != "" {
				c.r.pass(prefix+" credential", "the AccessKey assumes role "+cfg.RoleARN+"; the role's permissions are not checked from here")
				return nil
			}
			o := AliDNSOptions{Endpoint: c.o.AliDNSEndpoint, RegionID: cfg.RegionID, WriteTest: c.o.WriteTest, Sources: sources}
			if cfg.DomainName != "" {
				o.Domains = []string{cfg.DomainName}
			} else {
				o.Names = names
			}
			r, w := aliDNSCredentials(ctx, mapEnv(env), o)
			c.append(prefix, r)
			if w == nil {
				return nil
			}
			w.domainName = cfg.DomainName
			return w
		}
	}
	summary := "valid " + wh.SolverName + " config"
	var used []string
	for _, rf := range refs {
		if rf.sel != nil {
			used = append(used, rf.field)
		}
	}
	if identity != "" {
		used = append(used, identity)
	}
	if len(used) > 0 {
		summary += " (" + strings.Join(used, ", ") + ")"
	}
	if len(names) > 0 {
		summary += "; selector: " + strings.Join(names, ", ")
	}
	c.r.pass(prefix+" config", summary)
	var secretNames []string
	complete := true
	sources := map[string]string{}
	for _, rf := range refs {
		if rf.sel == nil {
			continue
		}
		if !slices.Contains(secretNames, rf.sel.Name) {
			secretNames = append(secretNames, rf.sel.Name)
		}
		v, ok := c.secretValue(ctx, prefix+" "+rf.field, namespace, rf.sel.Name, rf.sel.Key, rf.field)
		if !ok {
			complete = false // the provider cannot be asked without every value
			continue
		}
		env[rf.variable] = v
		sources[rf.variable] = fmt.Sprintf("Secret %s/%s key %q (%s)", namespace, rf.sel.Name, rf.sel.Key, rf.field)
	}
	var w zoneWriter
	if complete {
		w = credential(env, sources)
	}
	if c.o.Propagation || c.o.WriteTest {
		c.propagation(ctx, prefix, s, names, w)
	}
	return secretNames
}

// aliServiceAccount checks an alidns solver's serviceAccountRef as the
// webhook will use it: that the webhook's ServiceAccount may request the
// ServiceAccount's tokens, a token (requested as you) and its exchange for
// roleArn, each on its own line, then the role's domains as for an
// AccessKey.
func (c *checker) aliServiceAccount(ctx context.Context, prefix, namespace string, cfg solver.AliDNSConfig, names []string, g *webhookGroup) zoneWriter {
	sa := alibaba.ServiceAccount{Namespace: namespace, Name: cfg.ServiceAccountRef.Name, Audience: cfg.ServiceAccountRef.Audience, Tokens: alibaba.KubeTokens(c.o.Kube)}
	var may *processGrant
	if g.sa.name != "" {
		may = c.mayRequestTokens(ctx, g.sa, "the webhook's", sa)
	}
	providerARN := c.oidcProviderARN(ctx, c.webhookDeployment(ctx))
	cred, ok := serviceAccountSteps(ctx, &c.r, prefix, sa, cfg.RoleARN, providerARN, c.o.AlibabaSTSEndpoint, "you", may)
	if !ok {
		return nil
	}
	o := AliDNSOptions{Endpoint: c.o.AliDNSEndpoint, RegionID: cfg.RegionID, WriteTest: c.o.WriteTest}
	if cfg.DomainName != "" {
		o.Domains = []string{cfg.DomainName}
	} else {
		o.Names = names
	}
	r, w := aliDNSWithCredential(ctx, cred, o)
	c.append(prefix, r)
	if w == nil {
		return nil
	}
	w.domainName = cfg.DomainName
	return w
}

// aliAmbient reports a solver without Secret references: it relies on the
// webhook pod's own identity, which cert-manager allows by default only for
// ClusterIssuers (F14).
func (c *checker) aliAmbient(ctx context.Context, prefix, namespace string) {
	if c.kind.Cluster {
		c.r.pass(prefix+" credential", "ambient: RRSA or the ECS RAM role of the webhook's pod (not checked from here)")
		return
	}
	if d := c.certManagerDeployment(ctx); d != nil {
		if v, ok := d.arg("--issuer-ambient-credentials"); ok && v == "true" {
			c.r.pass(prefix+" credential", "ambient: RRSA or the ECS RAM role of the webhook's pod, allowed for Issuers by cert-manager's --issuer-ambient-credentials (not checked from here)")
			return
		}
	}
	c.r.fail(prefix+" credential", "no Secret references, and cert-manager lets only ClusterIssuers use ambient credentials (RRSA, the ECS RAM role) unless it runs with --issuer-ambient-credentials",
		fmt.Sprintf("set accessKeyIdSecretRef and accessKeySecretSecretRef to an AccessKey Secret in %q, or use a ClusterIssuer", namespace))
}

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// append adds another report's findings under prefix.
func (c *checker) append(prefix string, r Report) {
	for _, f := range r.Findings {
		f.Check = prefix + " " + f.Check
		c.r.Findings = append(c.r.Findings, f)
	}
}

// webhookGroup looks up the APIService of group, and if there is none, the
// APIServices whose group serves the certbridge solvers.
func (c *checker) webhookGroup(ctx context.Context, group string) *webhookGroup {
	g := &webhookGroup{}
	as, err := c.o.Aggregator.ApiregistrationV1().APIServices().Get(ctx, "v1alpha1."+group, metav1.GetOptions{})
	if err == nil {
		g.served = true
		c.fromAPIService(g, as)
		if res, err := c.o.Kube.Discovery().ServerResourcesForGroupVersion(group + "/v1alpha1"); err == nil {
			for _, r := range res.APIResources {
				g.resources = append(g.resources, r.Name)
			}
			sort.Strings(g.resources)
		}
	}
	if c.o.WebhookServiceAccount != "" {
		sa, err := parseServiceAccount(c.o.WebhookServiceAccount, "from --webhook-service-account")
		if err == nil {
			g.sa = sa
		}
	}
	return g
}

func (c *checker) fromAPIService(g *webhookGroup, as *apiregistrationv1.APIService) {
	g.release = as.Labels["app.kubernetes.io/instance"]
	if as.Spec.Service != nil {
		g.namespace = as.Spec.Service.Namespace
		if g.sa.name == "" {
			g.sa = serviceAccount{namespace: as.Spec.Service.Namespace, name: as.Spec.Service.Name,
				source: "named like the Service of APIService " + as.Name + ", as the chart names it"}
		}
	}
}

// certbridgeAPIServices are the APIServices whose group serves a certbridge
// solver, by group.
func (c *checker) certbridgeAPIServices(ctx context.Context) (map[string]*apiregistrationv1.APIService, error) {
	list, err := c.o.Aggregator.ApiregistrationV1().APIServices().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string]*apiregistrationv1.APIService{}
	for i := range list.Items {
		as := &list.Items[i]
		if as.Spec.Service == nil || as.Spec.Group == "" {
			continue
		}
		res, err := c.o.Kube.Discovery().ServerResourcesForGroupVersion(as.Spec.Group + "/" + as.Spec.Version)
		if err != nil {
			continue
		}
		for _, r := range res.APIResources {
			if slices.Contains(solverNames, r.Name) {
				out[as.Spec.Group] = as
				break
			}
		}
	}
	return out, nil
}

// apiService reports whether the solver's API group is served and Available
// (F23); it is reported once per group.
func (c *checker) apiService(ctx context.Context, group, solverName string, g *webhookGroup) {
	label := "APIService v1alpha1." + group
	for _, f := range c.r.Findings {
		if f.Check == label {
			return
		}
	}
	as, err := c.o.Aggregator.ApiregistrationV1().APIServices().Get(ctx, "v1alpha1."+group, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		detail := fmt.Sprintf("the Issuer's groupName %q is not served: there is no APIService v1alpha1.%s, so cert-manager's Challenges fail with: %s",
			group, group, c.unservedGroupMessage(ctx, group, solverName))
		served, lerr := c.certbridgeAPIServices(ctx)
		if lerr != nil {
			c.r.fail(label, detail, fmt.Sprintf("set webhook.groupName in the Issuer to the certbridge chart's groupName (or install the chart with groupName=%s)", group))
			return
		}
		groups := make([]string, 0, len(served))
		for grp := range served {
			groups = append(groups, grp)
		}
		sort.Strings(groups)
		switch len(groups) {
		case 0:
			c.r.fail(label, detail+"; no APIService serves the certbridge solvers at all",
				fmt.Sprintf("install the certbridge chart: helm install certbridge ./charts/certbridge -n certbridge --create-namespace --set groupName=%s", group))
		case 1:
			c.fromAPIService(g, served[groups[0]])
			c.r.fail(label, detail+"; the certbridge webhook serves "+groups[0],
				fmt.Sprintf("set webhook.groupName: %s in the Issuer (or install the chart with groupName=%s)", groups[0], group))
		default:
			c.fromAPIService(g, served[groups[0]])
			c.r.fail(label, detail+"; certbridge webhooks serve "+strings.Join(groups, ", "),
				fmt.Sprintf("set webhook.groupName in the Issuer to one of %s (or install the chart with groupName=%s)", strings.Join(groups, ", "), group))
		}
	case err != nil:
		c.r.fail(label, "reading it failed: "+err.Error(), "run the check with a kubeconfig that may get apiservices.apiregistration.k8s.io")
	default:
		var available *apiregistrationv1.APIServiceCondition
		for i := range as.Status.Conditions {
			if as.Status.Conditions[i].Type == apiregistrationv1.Available {
				available = &as.Status.Conditions[i]
			}
		}
		where := "the webhook"
		if as.Spec.Service != nil {
			where = fmt.Sprintf("the webhook behind Service %s/%s", as.Spec.Service.Namespace, as.Spec.Service.Name)
		}
		switch {
		case available == nil || available.Status != apiregistrationv1.ConditionTrue:
			msg := "no Available condition yet"
			if available != nil {
				msg = fmt.Sprintf("%s: %s", available.Reason, available.Message)
			}
			c.r.fail(label, "not Available ("+msg+"); cert-manager's Challenges fail until it is",
				where+" does not answer the API server: check its pods, endpoints and logs (kubectl -n <namespace> get pods,endpoints), and its serving certificate")
		case len(g.resources) == 0:
			c.r.fail(label, "Available, but "+where+" serves no solver under "+group, "check that the APIService points at the certbridge webhook")
		default:
			c.r.pass(label, "Available; "+where+" serves "+strings.Join(g.resources, ", "))
		}
	}
}

// unservedGroupMessage is what cert-manager's Challenges say for a group no
// webhook serves. kube-apiserver authorizes before it looks for the
// resource, so cert-manager, whose RBAC names only the chart's group, is
// refused; only an identity allowed every group gets to "not found".
func (c *checker) unservedGroupMessage(ctx context.Context, group, solverName string) string {
	const notFound = `"the server could not find the requested resource"`
	sa, err := c.certManagerSA(ctx)
	if err != nil {
		return notFound
	}
	if allowed, _, err := c.may(ctx, sa, authorizationv1.ResourceAttributes{Verb: "create", Group: group, Resource: solverName}); err == nil && !allowed {
		return forbiddenMessage(sa, group, solverName)
	}
	return notFound
}

// forbiddenMessage is kube-apiserver's answer, as cert-manager copies it
// into a Challenge, when sa may not create solverName payloads in group.
func forbiddenMessage(sa serviceAccount, group, solverName string) string {
	return fmt.Sprintf(`%s.%s is forbidden: User "%s" cannot create resource "%s" in API group "%s" at the cluster scope`,
		solverName, group, sa.user(), solverName, group)
}

func (g *webhookGroup) helm(set string) string {
	release, ns := g.release, g.namespace
	if release == "" {
		release = "<release>"
	}
	if ns == "" {
		ns = "<namespace>"
	}
	return fmt.Sprintf("helm upgrade %s ./charts/certbridge -n %s --reuse-values %s", release, ns, set)
}

// challengePayloads checks that cert-manager may create the solver's
// challenge payloads (F22).
func (c *checker) challengePayloads(ctx context.Context, group, solverName string, g *webhookGroup) {
	label := fmt.Sprintf("cert-manager may create %s.%s", solverName, group)
	sa, err := c.certManagerSA(ctx)
	if err != nil {
		c.r.fail(label, err.Error(), "give --cert-manager-service-account as <namespace>/<name>")
		return
	}
	allowed, reason, err := c.may(ctx, sa, authorizationv1.ResourceAttributes{Verb: "create", Group: group, Resource: solverName})
	switch {
	case err != nil:
		c.r.fail(label, "SubjectAccessReview failed: "+err.Error(), "run the check with a kubeconfig that may create subjectaccessreviews")
	case allowed:
		c.r.pass(label, fmt.Sprintf("ServiceAccount %s (%s) may create %s in API group %s", sa, sa.source, solverName, group))
	default:
		detail := fmt.Sprintf(`%s may not create %s in API group %s; cert-manager's Challenges fail with: %s`,
			c.describeSA(ctx, sa), solverName, group, forbiddenMessage(sa, group, solverName))
		if reason != "" {
			detail += " (" + reason + ")"
		}
		c.r.fail(label, detail, fmt.Sprintf("if cert-manager runs as %s, tell the chart: %s (it binds the ClusterRole <release>:domain-solver to that ServiceAccount); "+
			"otherwise pass cert-manager's real ServiceAccount with --cert-manager-service-account",
			sa, g.helm(fmt.Sprintf("--set certManager.serviceAccountName=%s --set certManager.namespace=%s", sa.name, sa.namespace))))
	}
}

// webhookMayRead checks that the webhook may get a Secret (F12).
func (c *checker) webhookMayRead(ctx context.Context, g *webhookGroup, namespace, name string) {
	label := fmt.Sprintf("webhook may get Secret %s/%s", namespace, name)
	if g.sa.name == "" {
		c.r.fail(label, "cannot tell the webhook's ServiceAccount: no APIService names its Service", "pass --webhook-service-account <namespace>/<name>")
		return
	}
	allowed, _, err := c.may(ctx, g.sa, authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: namespace, Name: name})
	switch {
	case err != nil:
		c.r.fail(label, "SubjectAccessReview failed: "+err.Error(), "run the check with a kubeconfig that may create subjectaccessreviews")
	case allowed:
		c.r.pass(label, fmt.Sprintf("the webhook's ServiceAccount %s (%s) may get it", g.sa, g.sa.source))
	default:
		c.r.fail(label, fmt.Sprintf("the webhook's %s may not get Secrets in namespace %q (RBAC), so every Challenge of this solver fails",
			c.describeSA(ctx, g.sa), namespace),
			fmt.Sprintf("add %q to the chart value %s (%s), or empty that list for every namespace; or bind a Role granting get on secrets in %q to %s",
				namespace, solver.SecretAccessValue, g.helm(fmt.Sprintf("--set '%s={…,%s}'", solver.SecretAccessValue, namespace)), namespace, g.sa))
	}
}
