//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certbridge/certbridge/test/localcluster"
	"github.com/certbridge/certbridge/test/testutil"
)

// n: a Certificate deleted and applied again reaches Ready.
// kube-controller-manager's garbage collector deletes the old
// CertificateRequest and Order with their owner; left in place, cert-manager
// finds the new Certificate's request "already exists" and the Order "not
// owned by this CertificateRequest", and the Certificate waits for good.
func (e *env) scenarioN(t *testing.T) {
	t.Parallel()
	const ns = "scenario-n"
	e.namespace(t, ns, true)
	e.acmeIssuer(t, ns, "cloudflare", true)
	crt := localcluster.Certificate(ns, "again", "Issuer", "cert-manager.io", "acme-cloudflare", "again."+localcluster.CloudflareZone)
	e.apply(t, crt)
	e.waitReady(t, ns, "again", 2*time.Minute)
	if err := e.c.CM.CertmanagerV1().Certificates(ns).Delete(e.ctx, "again", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, time.Minute, "the garbage collector to delete the old CertificateRequest and Order", func() (bool, string) {
		crs, err := e.c.CM.CertmanagerV1().CertificateRequests(ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		orders, err := e.c.CM.AcmeV1().Orders(ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(crs.Items) == 0 && len(orders.Items) == 0, fmt.Sprintf("%d CertificateRequests, %d Orders", len(crs.Items), len(orders.Items))
	})
	e.apply(t, crt)
	e.waitReady(t, ns, "again", 2*time.Minute)
}
