//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certbridge/certbridge/test/localcluster"
)

// k: a delegated _acme-challenge. _acme-challenge.app.example.com is a
// CNAME, in Cloudflare's example.com, to _acme-challenge in
// acme-delegation.example.net, a domain of the Alibaba Cloud DNS account.
// The Issuer's alidns solver has cnameStrategy: Follow (and domainName),
// so cert-manager asks the webhook to write where the chain ends; its real
// self-check follows the CNAME over UDP, Pebble follows it over TCP. The
// record lives in Alibaba Cloud DNS only, holds the Challenge's key, and is
// deleted there; Cloudflare keeps the CNAME and never gets a TXT record.
func (e *env) scenarioK(t *testing.T) {
	t.Parallel()
	const ns, name = "scenario-k", "app.example.com"
	owner := "_acme-challenge." + name
	target, err := e.c.DelegateACMEChallenge(e.ctx, name, localcluster.DelegationDomain)
	if err != nil {
		t.Fatal(err)
	}
	e.namespace(t, ns, true)
	e.apply(t, fmt.Sprintf(`
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: acme-delegated, namespace: %[1]s}
spec:
  acme:
    server: %[2]s
    skipTLSVerify: true
    privateKeySecretRef: {name: acme-account}
    solvers:
      - selector: {dnsNames: [%[3]s]}
        dns01:
          cnameStrategy: Follow
          webhook:
            groupName: %[4]s
            solverName: alidns
            config:
              accessKeyIdSecretRef: {name: alidns-access-key, key: access-key-id}
              accessKeySecretSecretRef: {name: alidns-access-key, key: access-key-secret}
              domainName: %[5]s
`, ns, e.c.PebbleDirectory, name, localcluster.GroupName, localcluster.DelegationDomain))

	// Watch both providers and the Challenges until the Certificate is
	// Ready: where the record was written, and what it held.
	type sighting struct{ domain, rr, value string }
	var (
		mu         sync.Mutex
		delegated  []sighting
		cloudflare []string
		keys       []string
	)
	watchCtx, stop := context.WithCancel(e.ctx)
	var watching sync.WaitGroup
	watching.Go(func() {
		for watchCtx.Err() == nil {
			list, _ := e.c.CM.AcmeV1().Challenges(ns).List(watchCtx, metav1.ListOptions{})
			mu.Lock()
			if list != nil {
				for _, ch := range list.Items {
					if !slices.Contains(keys, ch.Spec.Key) {
						keys = append(keys, ch.Spec.Key)
					}
				}
			}
			for _, r := range e.c.Alibaba.Records(target) {
				s := sighting{r.Domain, r.RR, r.Value}
				if r.Type == "TXT" && !slices.Contains(delegated, s) {
					delegated = append(delegated, s)
				}
			}
			for _, r := range e.c.Cloudflare.Records(owner) {
				if r.Type == "TXT" && !slices.Contains(cloudflare, r.Content) {
					cloudflare = append(cloudflare, r.Content)
				}
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	})
	e.certificate(t, ns, "app-example-com", "acme-delegated", name)
	began := time.Now()
	secret := e.waitReady(t, ns, "app-example-com", 6*time.Minute)
	ready := time.Since(began)
	leaf := verifyChain(t, secret, e.pebbleRoots(t), name)
	e.waitNoChallenges(t, ns) // CleanUp done
	stop()
	watching.Wait()

	if len(delegated) == 0 {
		t.Fatalf("no TXT record was ever seen at %s in Alibaba Cloud DNS", target)
	}
	for _, s := range delegated {
		if s.domain != localcluster.DelegationDomain || s.rr != "_acme-challenge" || !slices.Contains(keys, s.value) {
			t.Errorf("record in Alibaba Cloud DNS: domain %q RR %q value %q; want domain %s, RR _acme-challenge, a Challenge's key (%d seen)",
				s.domain, s.rr, s.value, localcluster.DelegationDomain, len(keys))
		}
	}
	if len(cloudflare) > 0 {
		t.Errorf("TXT records were written at %s in Cloudflare, beside the CNAME: %q", owner, cloudflare)
	}
	for _, r := range e.c.Alibaba.Records(target) {
		if r.Type == "TXT" {
			t.Errorf("left at %s in Alibaba Cloud DNS after CleanUp: %+v", target, r)
		}
	}
	cname := e.c.Cloudflare.Records(owner)
	if len(cname) != 1 || cname[0].Type != "CNAME" || cname[0].Content != target {
		t.Errorf("Cloudflare's %s after the issuance: %+v, want the CNAME to %s only", owner, cname, target)
	}
	t.Logf("k: Ready after %s with cert-manager's self-check following the CNAME; the record lived in Alibaba Cloud DNS domain %s as %s (RR %q, the Challenge's key), "+
		"never in Cloudflare beside the CNAME %s → %s, and was deleted there by CleanUp; %s",
		ready.Round(time.Second), delegated[0].domain, target, delegated[0].rr, owner, target, summary(leaf))
}
