package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
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
// concurrent challenges, the issuer's CertificateRequest throughput and
// latency with the simulated CA answering at once and after 100 ms, and a
// renewal over several webhook processes with one killed and faults
// injected (faults.go).
func clusterFigures(ctx context.Context) (rss, issuer, faults []string, err error) {
	c, done, err := startCluster(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	defer done()
	if rss, err = webhookRSS(ctx, c, 50); err != nil {
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

// startCluster starts the end-to-end environment in a directory removed
// when done is called.
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
	return c, func() { c.Close(); os.RemoveAll(dir) }, nil
}

func vmRSS(pid int) (int, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.Atoi(f[1])
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// webhookRSS samples the webhook process's resident memory idle, then every
// 50 ms while n Certificates, one challenge each, are issued at once.
func webhookRSS(ctx context.Context, c *localcluster.Cluster, n int) ([]string, error) {
	const ns = "bench-rss"
	pid := c.WebhookPID()
	if err := c.CreateNamespace(ctx, ns); err != nil {
		return nil, err
	}
	manifest := c.CredentialSecrets(ns) + "---" + c.ACMEIssuer(ns, "cloudflare", true)
	for i := range n {
		manifest += "---" + localcluster.Certificate(ns, fmt.Sprintf("host-%d", i), "Issuer", "cert-manager.io", "acme-cloudflare", fmt.Sprintf("host-%d.example.com", i))
	}
	time.Sleep(2 * time.Second)
	idle, err := vmRSS(pid)
	if err != nil {
		return nil, err
	}
	peak := idle
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
	began := time.Now()
	err = c.ApplyYAML(ctx, manifest)
	for i := 0; err == nil && i < n; i++ {
		_, err = c.WaitCertificateReady(ctx, ns, fmt.Sprintf("host-%d", i), 5*time.Minute)
	}
	took := time.Since(began)
	close(stop)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	after, _ := vmRSS(pid)
	fmt.Printf("\nwebhook RSS: idle %.1f MiB, peak %.1f MiB during %d concurrent challenges (all Ready in %s), %.1f MiB after\n",
		float64(idle)/1024, float64(peak)/1024, n, took.Round(10*time.Millisecond), float64(after)/1024)
	return []string{
		"| webhook RSS | MiB |", "| --- | --- |",
		fmt.Sprintf("| idle, APIService Available | %.1f |", float64(idle)/1024),
		fmt.Sprintf("| peak during %d concurrent challenges (%d Certificates Ready in %s) | %.1f |", n, n, took.Round(10*time.Millisecond), float64(peak)/1024),
		fmt.Sprintf("| after | %.1f |", float64(after)/1024),
	}, nil
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
