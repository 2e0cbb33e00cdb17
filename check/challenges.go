package check

import (
	"context"
	"fmt"
	"strings"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// stuckChallenges reports the issuer's Challenges that were deleted but are
// kept by cert-manager's finalizer because their CleanUp keeps failing.
// cert-manager schedules no other Challenge for the same DNS name while one
// is there, so a stuck Challenge keeps a fixed Issuer from reaching Ready.
func (c *checker) stuckChallenges(ctx context.Context, issuer string) {
	namespace := c.o.Namespace
	if c.kind.Cluster {
		namespace = metav1.NamespaceAll
	}
	list, err := c.o.CertManager.AcmeV1().Challenges(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		c.r.fail("Challenges", "listing them failed: "+err.Error(), "run the check with a kubeconfig that may list challenges.acme.cert-manager.io")
		return
	}
	stuck := 0
	for i := range list.Items {
		ch := &list.Items[i]
		if ch.DeletionTimestamp == nil || len(ch.Finalizers) == 0 || !c.issuedBy(ch, issuer) {
			continue
		}
		stuck++
		label := fmt.Sprintf("Challenge %s/%s", ch.Namespace, ch.Name)
		age := time.Since(ch.DeletionTimestamp.Time).Round(time.Second)
		reason := ch.Status.Reason
		if reason == "" {
			reason = "no reason recorded yet"
		}
		detail := fmt.Sprintf("deleted %s ago but kept by cert-manager's finalizer, for %s: %s; cert-manager schedules no other Challenge for %s until it is gone",
			age, ch.Spec.DNSName, reason, ch.Spec.DNSName)
		release := fmt.Sprintf(`kubectl -n %s patch challenge %s --type=merge -p '{"metadata":{"finalizers":null}}'`, ch.Namespace, ch.Name)
		group := ""
		if ch.Spec.Solver.DNS01 != nil && ch.Spec.Solver.DNS01.Webhook != nil {
			group = ch.Spec.Solver.DNS01.Webhook.GroupName
		}
		var fix string
		if group != "" && !c.webhookGroup(ctx, group).served {
			fix = fmt.Sprintf("the Challenge names API group %q, which no webhook serves, so cert-manager can never clean it up: release it with %s "+
				"(no record was written under a group no webhook serves)", group, release)
		} else {
			fix = "fix what its reason says; the webhook's CleanUp succeeds at cert-manager's next retry (backoff up to a few minutes). " +
				"To drop it without cleaning up, run " + release + " and delete its TXT record _acme-challenge." + strings.TrimPrefix(ch.Spec.DNSName, "*.") + " by hand"
		}
		c.r.fail(label, detail, fix)
	}
	if stuck == 0 {
		c.r.pass("Challenges", "none of the issuer's Challenges is stuck in deletion")
	}
}

// issuedBy reports whether a Challenge belongs to the checked issuer.
func (c *checker) issuedBy(ch *cmacme.Challenge, issuer string) bool {
	ref := ch.Spec.IssuerRef
	if ref.Name != issuer || (ref.Group != "" && ref.Group != "cert-manager.io") {
		return false
	}
	if c.kind.Cluster {
		return ref.Kind == "ClusterIssuer"
	}
	return ref.Kind == "" || ref.Kind == "Issuer"
}
