//go:build e2e

package e2e

import (
	"crypto/x509"
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/test/localcluster"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	"github.com/certbridge/certbridge/test/testutil"
)

// tenant is a namespace with its own ServiceAccount and RAM role, trusted
// for that ServiceAccount only and allowed one domain.
type tenant struct {
	ns, sa, role, domain string
}

func (x tenant) subject() string { return "system:serviceaccount:" + x.ns + ":" + x.sa }

func serviceAccountConfig(sa, role string) string {
	return fmt.Sprintf(`{serviceAccountRef: {name: %s}, roleArn: %q}`, sa, role)
}

// m: one Issuer per tenant namespace, each with its own ServiceAccount and
// RAM role, both issuing through alidns with keys nowhere: the webhook
// requests each ServiceAccount's token from kube-apiserver (the tenant's
// RoleBinding lets it) and exchanges it with STS, which verifies it against
// this kube-apiserver's keys and the role's trust policy. Tenant B's Issuer
// naming tenant A's ServiceAccount is refused, and says so. An
// AlibabaPCAIssuer with serviceAccountRef signs.
func (e *env) scenarioM(t *testing.T) {
	t.Parallel()
	const account = "acs:ram::1234567890123456:role/"
	tenants := []tenant{
		{ns: "scenario-m-a", sa: "dns-a", role: account + "m-tenant-a-dns", domain: "m-a.example.net"},
		{ns: "scenario-m-b", sa: "dns-b", role: account + "m-tenant-b-dns", domain: "m-b.example.net"},
	}
	for _, x := range tenants {
		e.namespace(t, x.ns, false) // no Secret anywhere
		e.apply(t, fmt.Sprintf("{apiVersion: v1, kind: ServiceAccount, metadata: {name: %s, namespace: %s}}", x.sa, x.ns))
		e.c.Alibaba.AddDomain(x.domain, alisim.FreeEdition)
		e.c.Alibaba.AddRole(alisim.Role{ARN: x.role, Policy: alisim.Policy{Actions: []string{"alidns:*"}, Resources: []string{x.domain}},
			TrustedOIDCProvider: localcluster.RRSAOIDCProvider, OIDCSubjects: []string{x.subject()}})
		// The tenant opts in, with the manifest certbridge's message gives.
		if err := e.c.GrantServiceAccountTokens(e.ctx, x.ns, x.sa, localcluster.WebhookUser); err != nil {
			t.Fatal(err)
		}
		e.apply(t, e.c.ACMEIssuerWith(x.ns, "alidns", true, localcluster.GroupName, serviceAccountConfig(x.sa, x.role)))
		e.certificate(t, x.ns, "tenant", "acme-alidns", x.domain)
	}
	for _, x := range tenants {
		secret := e.waitReady(t, x.ns, "tenant", 3*time.Minute)
		leaf := verifyChain(t, secret, e.pebbleRoots(t), x.domain)
		t.Logf("m: %s issued through alidns as %s (role %s): %s", x.ns, x.subject(), x.role, summary(leaf))
	}
	sessions := e.c.Alibaba.OIDCSessions()
	for _, x := range tenants {
		if !slices.Contains(sessions, alisim.OIDCSession{Role: x.role, Subject: x.subject()}) {
			t.Errorf("no session of role %s for %s: %+v", x.role, x.subject(), sessions)
		}
	}

	// Tenant B names tenant A's ServiceAccount: serviceAccountRef has no
	// namespace, so the webhook asks for scenario-m-b/dns-a, which no
	// RoleBinding in scenario-m-b lets it.
	a, b := tenants[0], tenants[1]
	e.apply(t, fmt.Sprintf(`
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: borrowed, namespace: %[1]s}
spec:
  acme:
    server: %[2]s
    skipTLSVerify: true
    privateKeySecretRef: {name: acme-account-borrowed}
    solvers:
      - dns01:
          webhook:
            groupName: %[3]s
            solverName: alidns
            config: %[4]s
        waitInsteadOfSelfCheck: 0s
`, b.ns, e.c.PebbleDirectory, localcluster.GroupName, serviceAccountConfig(a.sa, a.role)))
	e.certificate(t, b.ns, "borrowed", "borrowed", "borrowed."+a.domain)
	want := `alidns: serviceAccountRef: the webhook (Kubernetes user "` + localcluster.WebhookUser + `") may not request tokens for ServiceAccount "dns-a" in namespace "scenario-m-b": ` +
		`kube-apiserver refused the TokenRequest (RBAC); serviceAccountRef names a ServiceAccount of the issuer's own namespace (for a cluster issuer, of the cluster resource namespace), ` +
		`and its tokens are requested only where that namespace allows it: to let this issuer act as scenario-m-b/dns-a, apply in namespace "scenario-m-b": ` +
		alibaba.TokenGrant("scenario-m-b", "dns-a", localcluster.WebhookUser)
	reason := e.waitChallengeReason(t, b.ns, 2*time.Minute, "serviceAccountRef")
	if reason != want {
		t.Errorf("the Challenge says:\n%s\nwant exactly:\n%s", reason, want)
	}
	for _, s := range e.c.Alibaba.OIDCSessions() {
		if s.Subject == "system:serviceaccount:"+b.ns+":"+a.sa || (s.Role == a.role && s.Subject != a.subject()) {
			t.Errorf("tenant A's role was assumed for someone else: %+v", s)
		}
	}
	t.Logf("m: tenant B's Issuer naming tenant A's ServiceAccount: the Challenge says: %s", reason)

	// An AlibabaPCAIssuer of tenant A with its own ServiceAccount and role;
	// the issuer controller's ServiceAccount is let in the same way.
	const pcaRole = account + "m-tenant-a-pca"
	e.apply(t, fmt.Sprintf("{apiVersion: v1, kind: ServiceAccount, metadata: {name: pca-a, namespace: %s}}", a.ns))
	e.c.Alibaba.AddRole(alisim.Role{ARN: pcaRole, Policy: alisim.Policy{Actions: []string{"yundun-cert:*"}},
		TrustedOIDCProvider: localcluster.RRSAOIDCProvider, OIDCSubjects: []string{"system:serviceaccount:" + a.ns + ":pca-a"}})
	if err := e.c.GrantServiceAccountTokens(e.ctx, a.ns, "pca-a", localcluster.IssuerUser); err != nil {
		t.Fatal(err)
	}
	e.apply(t, fmt.Sprintf(`
apiVersion: certbridge.io/v1alpha1
kind: AlibabaPCAIssuer
metadata: {name: pca, namespace: %s}
spec:
  caIdentifier: %s
  auth:
    serviceAccountRef: {name: pca-a}
    roleArn: %q
`, a.ns, localcluster.PCASubCA, pcaRole))
	e.apply(t, localcluster.Certificate(a.ns, "mesh", "AlibabaPCAIssuer", "certbridge.io", "pca", "mesh."+a.domain))
	secret := e.waitReady(t, a.ns, "mesh", 2*time.Minute)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(secret.Data["ca.crt"]) {
		t.Fatal("the Secret's ca.crt holds no certificate")
	}
	leaf := verifyChain(t, secret, roots, "mesh."+a.domain)
	if !slices.Contains(e.c.Alibaba.OIDCSessions(), alisim.OIDCSession{Role: pcaRole, Subject: "system:serviceaccount:" + a.ns + ":pca-a"}) {
		t.Errorf("the Private CA issuer did not sign as its ServiceAccount's role: %+v", e.c.Alibaba.OIDCSessions())
	}
	t.Logf("m: AlibabaPCAIssuer with serviceAccountRef signed: %s", summary(leaf))
	testutil.Eventually(t, time.Minute, "tenant A's and B's Challenges cleaned up", func() (bool, string) {
		n := 0
		for _, x := range tenants {
			list, err := e.c.CM.AcmeV1().Challenges(x.ns).List(e.ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range list.Items {
				if ch.Spec.DNSName == x.domain {
					n++
				}
			}
		}
		return n == 0, fmt.Sprintf("%d left", n)
	})
}
