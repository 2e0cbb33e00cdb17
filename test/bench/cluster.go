package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	informers "github.com/cert-manager/cert-manager/pkg/client/informers/externalversions"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/certbridge/certbridge/test/localcluster"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// clusterFigures measures, in the end-to-end environment (cert-manager's
// controllers, the chart's objects, `certbridge webhook` behind the
// aggregated API, `certbridge issuer`), the webhook's RSS idle and during 50
// concurrent challenges beside a reference webhook's, the issuer's
// CertificateRequest throughput and latency with the simulated CA answering
// at once and after 100 ms, and a renewal over several webhook processes
// with one killed and faults injected (faults.go).
func clusterFigures(ctx context.Context) (rss, issuer, faults []string, err error) {
	c, done, err := startCluster(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	defer done()
	// The reference webhook, built as make build builds certbridge.
	reference := filepath.Join(c.Dir, "noopwebhook")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", reference, "./test/bench/cmd/noopwebhook")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, nil, nil, fmt.Errorf("building the reference webhook: %v\n%s", err, out)
	}
	if rss, err = webhookRSS(ctx, c, 50, reference); err != nil {
		return nil, nil, nil, err
	}
	issuer = []string{"| simulated CA latency | requests | requests Ready per second | p50 | p99 |", "| --- | --- | --- | --- | --- |"}
	for _, latency := range []time.Duration{0, 100 * time.Millisecond} {
		line, err := issuerThroughput(ctx, c, 200, latency)
		if err != nil {
			return nil, nil, nil, err
		}
		issuer = append(issuer, line)
	}
	if faults, err = crossProcessFaults(ctx, c); err != nil {
		return nil, nil, nil, err
	}
	return rss, issuer, faults, nil
}

// faultsFigures is crossProcessFaults in an environment of its own.
func faultsFigures(ctx context.Context) ([]string, error) {
	c, done, err := startCluster(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return crossProcessFaults(ctx, c)
}

var keepDir = flag.Bool("keep", false, "keep the end-to-end environment's directory (its logs) and print where it is")

// startCluster starts the end-to-end environment in a directory removed
// when done is called (unless -keep).
func startCluster(ctx context.Context) (c *localcluster.Cluster, done func(), err error) {
	dir, err := os.MkdirTemp("", "certbridge-bench-")
	if err != nil {
		return nil, nil, err
	}
	opts, err := localcluster.OptionsFromEnv(dir)
	if err == nil {
		c, err = localcluster.Start(ctx, opts)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return c, func() {
		c.Close()
		if *keepDir {
			fmt.Println("kept", dir)
			return
		}
		os.RemoveAll(dir)
	}, nil
}

func vmRSS(pid int) (int, error) {
	kb, err := procStatus(pid, "VmRSS:")
	return kb[0], err
}

// procStatus reads fields of /proc/<pid>/status, in kB.
func procStatus(pid int, fields ...string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return make([]int, len(fields)), err
	}
	kb := make([]int, len(fields))
	for i, field := range fields {
		found := false
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
				if kb[i], err = strconv.Atoi(f[1]); err != nil {
					return kb, err
				}
				found = true
			}
		}
		if !found {
			return kb, fmt.Errorf("no %s for pid %d", field, pid)
		}
	}
	return kb, nil
}

// webhookRSS samples the webhook process's resident memory idle, then every
// 50 ms while n Certificates, one challenge each, are issued at once; then
// the same for the reference webhook (cert-manager's webhook server with a
// solver that does nothing, test/bench/cmd/noopwebhook) in its place. The
// reference writes no record, so its challenges cannot succeed: with
// cert-manager's self-check on they stay presented, and its run ends when
// every challenge has been presented and, once the Certificates and their
// ACME objects are deleted, cleaned up — the same Present and CleanUp per
// challenge the webhook serves.
func webhookRSS(ctx context.Context, c *localcluster.Cluster, n int, reference string) ([]string, error) {
	rows := []string{"| webhook | idle MiB | of it anonymous (heap, stacks) / file-backed (the binary's pages) | peak MiB | after MiB | workload |", "| --- | --- | --- | --- | --- | --- |"}
	ours, err := measureRSS(c, func() (string, error) {
		began := time.Now()
		if err := createCertificates(ctx, c, "bench-rss", n, false); err != nil {
			return "", err
		}
		for i := range n {
			if _, err := c.WaitCertificateReady(ctx, "bench-rss", fmt.Sprintf("host-%d", i), 5*time.Minute); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("%d Certificates Ready in %s", n, time.Since(began).Round(10*time.Millisecond)), nil
	})
	if err != nil {
		return nil, err
	}
	rows = append(rows, "| `certbridge webhook` | "+ours)
	if err := c.ReplaceWebhook(ctx, "noop-webhook", reference); err != nil {
		return rows, fmt.Errorf("starting the reference webhook: %w", err)
	}
	ref, err := measureRSS(c, func() (string, error) {
		began := time.Now()
		const ns = "bench-rss-noop"
		if err := createCertificates(ctx, c, ns, n, true); err != nil {
			return "", err
		}
		if err := waitChallenges(ctx, c, ns, n, func(ch []cmacme.Challenge) bool {
			return len(ch) == n && !slices.ContainsFunc(ch, func(ch cmacme.Challenge) bool { return !ch.Status.Presented })
		}); err != nil {
			return "", err
		}
		presented := time.Since(began)
		if err := deleteACME(ctx, c, ns); err != nil {
			return "", err
		}
		if err := waitChallenges(ctx, c, ns, n, func(ch []cmacme.Challenge) bool { return len(ch) == 0 }); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d challenges presented in %s, cleaned up after deletion in %s more", n,
			presented.Round(10*time.Millisecond), (time.Since(began) - presented).Round(10*time.Millisecond)), nil
	})
	if err != nil {
		return rows, err
	}
	rows = append(rows, "| reference: cert-manager's webhook server, no-op solver | "+ref)
	for _, r := range rows[2:] {
		fmt.Println(r)
	}
	return rows, nil
}

// measureRSS samples the webhook's VmRSS idle, every 50 ms while work runs,
// and after; it returns the row's cells from "idle" on.
func measureRSS(c *localcluster.Cluster, work func() (string, error)) (string, error) {
	pid := c.WebhookPID()
	time.Sleep(2 * time.Second)
	parts, err := procStatus(pid, "VmRSS:", "RssAnon:", "RssFile:")
	if err != nil {
		return "", err
	}
	idle, peak := parts[0], parts[0]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if kb, err := vmRSS(pid); err == nil && kb > peak {
					peak = kb
				}
			}
		}
	})
	what, err := work()
	close(stop)
	wg.Wait()
	if err != nil {
		return "", err
	}
	after, _ := vmRSS(pid)
	mib := func(kb int) string { return fmt.Sprintf("%.1f", float64(kb)/1024) }
	return strings.Join([]string{mib(idle), mib(parts[1]) + " / " + mib(parts[2]), mib(peak), mib(after), what}, " | ") + " |", nil
}

// createCertificates creates a namespace with the credentials, an ACME
// Issuer solving with the cloudflare solver, and n Certificates. With
// selfCheck, cert-manager waits for the record to be served before it asks
// Pebble to validate: a challenge whose record never appears stays
// presented instead of failing at once.
func createCertificates(ctx context.Context, c *localcluster.Cluster, ns string, n int, selfCheck bool) error {
	if err := c.CreateNamespace(ctx, ns); err != nil {
		return err
	}
	manifest := c.CredentialSecrets(ns) + "---" + c.ACMEIssuer(ns, "cloudflare", !selfCheck)
	for i := range n {
		manifest += "---" + localcluster.Certificate(ns, fmt.Sprintf("host-%d", i), "Issuer", "cert-manager.io", "acme-cloudflare", fmt.Sprintf("host-%d.example.com", i))
	}
	return c.ApplyYAML(ctx, manifest)
}

// waitChallenges polls the namespace's Challenges until done says so, for
// at most 5 minutes.
func waitChallenges(ctx context.Context, c *localcluster.Cluster, ns string, n int, done func([]cmacme.Challenge) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		list, err := c.CM.AcmeV1().Challenges(ns).List(ctx, metav1.ListOptions{})
		if err == nil && done(list.Items) {
			return nil
		}
		select {
		case <-ctx.Done():
			got := 0
			if list != nil {
				got = len(list.Items)
			}
			return fmt.Errorf("%d challenges in %s, waiting for %d: %w", got, ns, n, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// deleteACME deletes the namespace's Certificates, CertificateRequests,
// Orders and Challenges, in that order: the local cluster has no garbage
// collector, and an owner left behind would create its children again.
// Deleting a Challenge makes cert-manager call CleanUp before it goes.
func deleteACME(ctx context.Context, c *localcluster.Cluster, ns string) error {
	all := metav1.ListOptions{}
	del := metav1.DeleteOptions{}
	if err := c.CM.CertmanagerV1().Certificates(ns).DeleteCollection(ctx, del, all); err != nil {
		return err
	}
	if err := c.CM.CertmanagerV1().CertificateRequests(ns).DeleteCollection(ctx, del, all); err != nil {
		return err
	}
	if err := c.CM.AcmeV1().Orders(ns).DeleteCollection(ctx, del, all); err != nil {
		return err
	}
	return c.CM.AcmeV1().Challenges(ns).DeleteCollection(ctx, del, all)
}

// issuerThroughput creates n CertificateRequests for a CloudflareOriginIssuer
// at once (cert-manager's approver approves them) and times each from its
// creation to its Ready condition, as a watch sees it.
func issuerThroughput(ctx context.Context, c *localcluster.Cluster, n int, latency time.Duration) (string, error) {
	ns := fmt.Sprintf("bench-issuer-%dms", latency.Milliseconds())
	if err := c.CreateNamespace(ctx, ns); err != nil {
		return "", err
	}
	if err := c.ApplyYAML(ctx, c.CredentialSecrets(ns)+"---"+localcluster.OriginIssuer(ns, "origin")); err != nil {
		return "", err
	}
	if latency > 0 {
		c.Cloudflare.InjectFault(cfsim.Fault{Route: "POST /certificates", Delay: latency, Times: n})
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"origin.example.com"}}, key)
	if err != nil {
		return "", err
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	created := make(map[string]time.Time, n)
	var mu sync.Mutex
	began := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			cr := &cmapi.CertificateRequest{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("origin-%d", i), Namespace: ns},
				Spec: cmapi.CertificateRequestSpec{Request: csr, Duration: &metav1.Duration{Duration: 90 * 24 * time.Hour},
					IssuerRef: cmmeta.IssuerReference{Group: "certbridge.io", Kind: "CloudflareOriginIssuer", Name: "origin"}},
			}
			mu.Lock()
			created[cr.Name] = time.Now()
			mu.Unlock()
			if _, err := c.CM.CertmanagerV1().CertificateRequests(ns).Create(ctx, cr, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return "", err
	}
	var latencies []time.Duration
	ready := map[string]bool{}
	done := make(chan struct{})
	observe := func(obj any) {
		cr, ok := obj.(*cmapi.CertificateRequest)
		if !ok || !apiutil.CertificateRequestHasCondition(cr, cmapi.CertificateRequestCondition{
			Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue}) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		start, known := created[cr.Name]
		if !known || ready[cr.Name] {
			return
		}
		ready[cr.Name] = true
		latencies = append(latencies, time.Since(start))
		if len(ready) == n {
			close(done)
		}
	}
	informer := informers.NewSharedInformerFactoryWithOptions(c.CM, 0, informers.WithNamespace(ns)).Certmanager().V1().CertificateRequests().Informer()
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: observe, UpdateFunc: func(_, obj any) { observe(obj) }}); err != nil {
		return "", err
	}
	stopInformer := make(chan struct{})
	defer close(stopInformer)
	go informer.Run(stopInformer)
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		return "", fmt.Errorf("%d of %d CertificateRequests Ready after 5 minutes", len(ready), n)
	}
	took := time.Since(began)
	slices.Sort(latencies)
	p := func(q float64) time.Duration {
		return latencies[int(q*float64(len(latencies)-1))].Round(time.Millisecond)
	}
	line := fmt.Sprintf("| %s | %d | %.1f | %s | %s |", latency, n, float64(n)/took.Seconds(), p(0.50), p(0.99))
	fmt.Printf("issuer, CA latency %s: %d CertificateRequests Ready in %s (%.1f/s), p50 %s, p99 %s\n", latency, n, took.Round(10*time.Millisecond), float64(n)/took.Seconds(), p(0.50), p(0.99))
	return line, nil
}
