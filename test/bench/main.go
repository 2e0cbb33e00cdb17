// Command bench measures the solvers against the local simulators and
// cert-manager's in-tree Cloudflare solver against the same simulator: API
// calls per challenge, and a mass renewal under Cloudflare's rate limit scaled
// in time. It prints a table and writes BENCHMARKS.md. It never fails on a
// figure: benchmarks are not tests.
//
//	make bench   (needs the control-plane binaries: it reads Secrets like the webhook)
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	intree "github.com/cert-manager/cert-manager/pkg/issuer/acme/dns/cloudflare"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/metrics"
	"github.com/certbridge/certbridge/internal/ratelimit"
	"github.com/certbridge/certbridge/solver"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

const (
	token    = "benchTokenWithZoneReadAndDnsEdit00000000"
	akID     = "LTAI5tBenchmarkKey000001"
	akSecret = "benchmarkAccessKeySecret000000"
	ns       = "bench"
	fqdn     = "_acme-challenge.example.com."
	zone     = "example.com."
)

// challenger is one way to solve challenges: Present and CleanUp by key.
type challenger struct {
	present, cleanUp func(key string) error
}

var (
	quotaOnly   = flag.Bool("quota-only", false, "run only the quota figures (alone, a renewal that reaches the quota, hostile neighbours, a lone challenge, alidns replicas) and print them (BENCHMARKS.md unchanged)")
	runsFlag    = flag.Int("runs", 3, "how many times each headline row of the quota tables runs (its figures: median (min–max))")
	clusterOnly = flag.Bool("cluster-only", false, "run only the end-to-end environment's figures (webhook memory, issuer throughput, faults across processes) and print them (BENCHMARKS.md unchanged)")
	faultsOnly  = flag.Bool("faults-only", false, "run only the faults across processes, in the end-to-end environment, and print them (BENCHMARKS.md unchanged)")
)

func main() {
	flag.Parse()
	if *faultsOnly {
		if _, err := faultsFigures(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "bench: faults across processes:", err)
			os.Exit(1)
		}
		return
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: starting kube-apiserver (run with `make bench`):", err)
		os.Exit(1)
	}
	defer func() { _ = env.Stop() }()
	kube := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	must(kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	must(kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		StringData: map[string]string{"token": token, "id": akID, "secret": akSecret}}, metav1.CreateOptions{}))

	scale := timeScale(*scaleFlag)
	if *quotaOnly {
		// A quick look at the quota figures; BENCHMARKS.md is left alone.
		quotaFigures(cfg, scale, *runsFlag)
		return
	}
	if *clusterOnly {
		rss, issuer, faults, err := clusterFigures(ctx)
		fmt.Println(strings.Join(slices.Concat(rss, issuer, faults), "\n"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: end-to-end environment:", err)
			os.Exit(1)
		}
		return
	}

	var rows []string
	row := func(cells ...any) {
		parts := make([]string, len(cells))
		for i, c := range cells {
			parts[i] = fmt.Sprint(c)
		}
		line := "| " + strings.Join(parts, " | ") + " |"
		rows = append(rows, line)
		fmt.Println(line)
	}

	// API calls per challenge (Present + CleanUp).
	fmt.Println("\nAPI calls per challenge (Present + CleanUp)")
	row("solver", "first challenge (zone unknown)", "warm (zone known)", "after a restart")
	row("---", "---", "---", "---")
	for _, s := range []struct {
		name string
		make func(sim *cfsim.Server, ali *alisim.Server) challenger
		sims func(sim *cfsim.Server, ali *alisim.Server) func() int
	}{
		{"certbridge cloudflare", func(sim *cfsim.Server, _ *alisim.Server) challenger {
			return ours(cfg, cloudflareSolver(sim), cfConfig)
		},
			func(sim *cfsim.Server, _ *alisim.Server) func() int { return sim.TotalCalls }},
		{"cert-manager in-tree cloudflare", func(sim *cfsim.Server, _ *alisim.Server) challenger { return inTree(sim) },
			func(sim *cfsim.Server, _ *alisim.Server) func() int { return sim.TotalCalls }},
		{"certbridge alidns", func(_ *cfsim.Server, ali *alisim.Server) challenger { return ours(cfg, aliSolver(ali), aliConfig) },
			func(_ *cfsim.Server, ali *alisim.Server) func() int { return ali.TotalDNSCalls }},
	} {
		sim, ali := newSims()
		count := s.sims(sim, ali)
		c := s.make(sim, ali)
		first := callsFor(count, c)
		warm := callsFor(count, c)
		restarted := callsFor(count, s.make(sim, ali))
		row(s.name, first, warm, restarted)
		sim.Close()
		ali.Close()
	}

	// Cold cache: 200 challenges at once over 20 zones, each for its own
	// host, on a fresh process: how many zone lookups the first wave costs.
	const spreadN, spreadZones = 200, 20
	fmt.Printf("\nCold zone cache: %d concurrent challenges over %d zones, each for its own host (Present + CleanUp), a fresh process\n", spreadN, spreadZones)
	spread := []string{"| solver | API calls | calls per challenge | zone lookups | lookups per zone | failed challenges | leftover records |", "| --- | --- | --- | --- | --- | --- | --- |"}
	fmt.Println(spread[0])
	for _, s := range []string{"certbridge cloudflare", "cert-manager in-tree cloudflare", "certbridge alidns"} {
		sim, ali := newSims()
		var zones []string
		for z := range spreadZones {
			name := fmt.Sprintf("zone-%02d.example", z)
			zones = append(zones, name)
			sim.AddZone(name)
			ali.AddDomain(name, alisim.FreeEdition)
		}
		var c spreadChallenger
		var calls, lookups func() int
		var leftovers func() int
		switch s {
		case "certbridge cloudflare":
			c = oursAt(cfg, cloudflareSolver(sim), cfConfig)
			calls, lookups = sim.TotalCalls, func() int { return sim.Calls()["GET /zones"] }
			leftovers = func() int { return len(sim.AllRecords()) }
		case "cert-manager in-tree cloudflare":
			c = inTreeAt(sim, token)
			calls, lookups = sim.TotalCalls, func() int { return sim.Calls()["GET /zones"] }
			leftovers = func() int { return len(sim.AllRecords()) }
		default:
			c = oursAt(cfg, aliSolver(ali), aliConfig)
			calls = ali.TotalDNSCalls
			lookups = func() int { return ali.Calls()["DescribeDomains"] + ali.Calls()["DescribeDomainInfo"] }
			leftovers = func() int { return len(ali.AllRecords()) }
		}
		var failed atomic.Int64
		var wg sync.WaitGroup
		for i := range spreadN {
			zone := zones[i%spreadZones]
			fqdn := fmt.Sprintf("_acme-challenge.host-%03d.%s.", i, zone)
			wg.Go(func() {
				k := key()
				if c.present(fqdn, zone+".", k) != nil || c.cleanUp(fqdn, zone+".", k) != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		line := fmt.Sprintf("| %s | %d | %.2f | %d | %.2f | %d | %d |", s, calls(), float64(calls())/spreadN, lookups(),
			float64(lookups())/spreadZones, failed.Load(), leftovers())
		fmt.Println(line)
		spread = append(spread, line)
		sim.Close()
		ali.Close()
	}

	q := quotaFigures(cfg, scale, *runsFlag)

	fmt.Println("\nIn the end-to-end environment (make e2e's): webhook RSS and issuer throughput")
	rss, issuer, faults, err := clusterFigures(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: end-to-end environment:", err)
	}
	writeReport(report{calls: rows, spread: spread, quota: q, rss: rss, issuer: issuer, faults: faults})
}

// createSecret stores a Secret in the bench namespace, or replaces it.
func createSecret(cfg *rest.Config, name string, data map[string]string) {
	kube := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()
	_ = kube.CoreV1().Secrets(ns).Delete(ctx, name, metav1.DeleteOptions{})
	must(kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}, metav1.CreateOptions{}))
}

// budgetWaits is how many requests the budget of token's credential has
// held back so far.
func budgetWaits(token string) float64 {
	return testutil.ToFloat64(metrics.BudgetWaits.WithLabelValues("cloudflare", cloudflare.Credential{Token: token}.Label()))
}

func must[T any](_ T, err error) {
	if err != nil {
		panic(err)
	}
}

func newSims() (*cfsim.Server, *alisim.Server) {
	sim := cfsim.Start()
	sim.AddZone("example.com")
	sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	ali := alisim.Start()
	ali.AddDomain("example.com", alisim.FreeEdition)
	ali.AddAccessKey(alisim.AccessKey{ID: akID, Secret: akSecret, Policy: alisim.AllowAll})
	return sim, ali
}

var (
	cfConfig  = `{"apiTokenSecretRef":{"name":"creds","key":"token"}}`
	aliConfig = `{"accessKeyIdSecretRef":{"name":"creds","key":"id"},"accessKeySecretSecretRef":{"name":"creds","key":"secret"}}`
)

func cloudflareSolver(sim *cfsim.Server) *solver.Solver {
	// As the webhook runs it: batching with its default window.
	return solver.NewCloudflare(solver.Options{Log: logr.Discard()}, cloudflare.Options{BaseURL: sim.URL(), Batch: cloudflare.BatchOptions{Window: cloudflare.DefaultBatchWindow}})
}

func aliSolver(ali *alisim.Server) *solver.Solver {
	return solver.NewAliDNS(solver.Options{Log: logr.Discard(), Timeout: 50 * time.Second},
		alibaba.Options{DNS: alibaba.Endpoint{Scheme: "HTTP", Host: ali.Endpoint()}, Environ: func(string) string { return "" }})
}

var uid atomic.Int64

// ours drives a certbridge solver with the requests cert-manager sends.
func ours(cfg *rest.Config, s *solver.Solver, config string) challenger {
	if err := s.Initialize(cfg, nil); err != nil {
		panic(err)
	}
	req := func(key string, action whapi.ChallengeAction) *whapi.ChallengeRequest {
		return &whapi.ChallengeRequest{UID: types.UID(fmt.Sprint(uid.Add(1))), Action: action, Type: "dns-01", Key: key,
			ResourceNamespace: ns, ResolvedFQDN: fqdn, ResolvedZone: zone, DNSName: "example.com",
			Config: &apiextensionsv1.JSON{Raw: []byte(config)}}
	}
	return challenger{
		present: func(k string) error { return s.Present(req(k, whapi.ChallengeActionPresent)) },
		cleanUp: func(k string) error { return s.CleanUp(req(k, whapi.ChallengeActionCleanUp)) },
	}
}

// spreadChallenger solves challenges for any name.
type spreadChallenger struct {
	present, cleanUp func(fqdn, zone, key string) error
}

// oursAt drives a certbridge solver for any name.
func oursAt(cfg *rest.Config, s *solver.Solver, config string) spreadChallenger {
	if err := s.Initialize(cfg, nil); err != nil {
		panic(err)
	}
	req := func(fqdn, zone, key string, action whapi.ChallengeAction) *whapi.ChallengeRequest {
		return &whapi.ChallengeRequest{UID: types.UID(fmt.Sprint(uid.Add(1))), Action: action, Type: "dns-01", Key: key,
			ResourceNamespace: ns, ResolvedFQDN: fqdn, ResolvedZone: zone, DNSName: strings.TrimPrefix(strings.TrimSuffix(fqdn, "."), "_acme-challenge."),
			Config: &apiextensionsv1.JSON{Raw: []byte(config)}}
	}
	return spreadChallenger{
		present: func(fqdn, zone, k string) error { return s.Present(req(fqdn, zone, k, whapi.ChallengeActionPresent)) },
		cleanUp: func(fqdn, zone, k string) error { return s.CleanUp(req(fqdn, zone, k, whapi.ChallengeActionCleanUp)) },
	}
}

// inTreeAt drives cert-manager's in-tree Cloudflare provider for any name,
// with tok.
func inTreeAt(sim *cfsim.Server, tok string) spreadChallenger {
	target, _ := url.Parse(sim.URL())
	http.DefaultTransport = rewrite{to: target, next: &http.Transport{MaxIdleConnsPerHost: 100}}
	p, err := intree.NewDNSProviderCredentials("", "", tok, nil, "bench")
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	return spreadChallenger{
		present: func(fqdn, zone, k string) error { return p.Present(ctx, strings.TrimSuffix(zone, "."), fqdn, k) },
		cleanUp: func(fqdn, zone, k string) error { return p.CleanUp(ctx, strings.TrimSuffix(zone, "."), fqdn, k) },
	}
}

// inTree drives cert-manager's in-tree Cloudflare provider. Its API URL is a
// constant, so requests to api.cloudflare.com are rewritten to the simulator.
func inTree(sim *cfsim.Server) challenger {
	target, _ := url.Parse(sim.URL())
	http.DefaultTransport = rewrite{to: target, next: &http.Transport{MaxIdleConnsPerHost: 100}}
	p, err := intree.NewDNSProviderCredentials("", "", token, nil, "bench")
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	return challenger{
		present: func(k string) error { return p.Present(ctx, "example.com", fqdn, k) },
		cleanUp: func(k string) error { return p.CleanUp(ctx, "example.com", fqdn, k) },
	}
}

type rewrite struct {
	to   *url.URL
	next http.RoundTripper
}

func (r rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == "api.cloudflare.com" {
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host = r.to.Scheme, r.to.Host
		req.Host = r.to.Host
	}
	return r.next.RoundTrip(req)
}

func key() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func callsFor(count func() int, c challenger) int {
	before := count()
	k := key()
	if err := c.present(k); err != nil {
		panic(err)
	}
	if err := c.cleanUp(k); err != nil {
		panic(err)
	}
	return count() - before
}

// report is every table of BENCHMARKS.md.
type report struct {
	calls, spread, rss, issuer, faults []string
	quota                              quotaReport
}

// Headline markers: make generate copies what is between them in
// BENCHMARKS.md into the README, and make verify fails when they differ.
const (
	headlineBegin = "<!-- BEGIN bench headline: written by make bench, copied by make generate -->"
	headlineEnd   = "<!-- END bench headline -->"
)

func writeReport(r report) {
	goVersion := runtime.Version()
	cpu := runtime.NumCPU()
	mods, _ := exec.Command("go", "list", "-m", "-json", "github.com/cert-manager/cert-manager", "github.com/cloudflare/cloudflare-go/v7", "github.com/aliyun/alibaba-cloud-sdk-go").Output()
	var versions []string
	dec := json.NewDecoder(strings.NewReader(string(mods)))
	for {
		var m struct{ Path, Version string }
		if dec.Decode(&m) != nil {
			break
		}
		versions = append(versions, m.Path+" "+m.Version)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\nMade by `make bench` on %s: %s, %d CPUs, %s/%s. Against the local simulators; cert-manager's in-tree Cloudflare solver runs against the same simulator through a transport that rewrites api.cloudflare.com.\n\nVersions: %s.\n\n",
		time.Now().UTC().Format("2006-01-02"), goVersion, cpu, runtime.GOOS, runtime.GOARCH, strings.Join(versions, ", "))
	b.WriteString("## API calls per challenge (Present + CleanUp)\n\n")
	b.WriteString(strings.Join(r.calls, "\n") + "\n\n")
	b.WriteString("## Cold zone cache\n\n200 challenges at once over 20 zones, each for its own host (`_acme-challenge.host-NNN.zone-NN.example`, cert-manager's resolved zone the parent), Present then CleanUp, in a fresh process. certbridge lists a credential's zones once and matches names locally, sharing one listing among concurrent challenges; a lookup per candidate name costs a call for every parent tried. Zone lookups are `GET /zones` (Cloudflare) or `DescribeDomains` + `DescribeDomainInfo` (alidns).\n\n")
	b.WriteString(strings.Join(r.spread, "\n") + "\n\n")
	q := r.quota
	fmt.Fprintf(&b, "## Headline\n\n%s\n%s\n%s\n\n", headlineBegin, strings.Join(q.headline, "\n"), headlineEnd)
	fmt.Fprintf(&b, "## One process alone on its account\n\nOne `cloudflare` solver with the webhook's defaults, Cloudflare's documented quota unscaled (1200 requests per 5 minutes, blocking the user for 5 minutes once exceeded), nobody else on the account. The simulator counts each request when it arrives and answers it 20–150 ms later. 1000 challenges over 10 zones, %d in flight, each CleanUp right after its Present (the best case for batching). Figures: median (min–max) over the runs. certbridge_rate_limit_waits_total counts the requests its budget held back.\n\n", renewInFlight)
	b.WriteString(strings.Join(q.alone, "\n") + "\n\n")
	fmt.Fprintf(&b, "## A renewal that reaches the quota\n\n%s, as cert-manager's scheduler runs them: each challenge's Present goes to a random replica (the aggregated API spreads requests), its CleanUp follows after the validation, with other names' Presents in between; a failed Present or CleanUp is retried with cert-manager's backoff (%s doubling to %s, as long as it takes) until the run gives up at %d times the bound, when a challenge still failing counts as failed. Time scale %s: Cloudflare's window (%d requests per %s here, and the block of a whole window after an overrun, with its Retry-After), the solver's deadline (%s), cert-manager's backoff and the validation are divided by %g; the simulator's latency (20–150 ms) and the batching window are not. Bound: the renewal's own length, %d challenges at %d in flight each held for its mean validation (%s here), which no design can beat; the same for every row. Replicas are separate solvers in one process: own budgets, caches and batchers, sharing only the simulator; with peers each has a peer listener on loopback (mutual TLS) and hands each request to the replica that owns its zone. Calls are the requests of the design's token that reached the simulator, 429s included. Figures: median (min–max) over the runs.\n\n",
		renewalLoad, cmBackoff, cmBackoffCap, giveUpAfter, q.scale, q.scale.quota().Limit, q.scale.quota().Window, q.scale.of(solver.DefaultTimeout), float64(q.scale), renewalLoad.challenges, renewalLoad.inFlight, q.scale.bound(renewalLoad).Round(100*time.Millisecond))
	b.WriteString(strings.Join(q.renewal, "\n") + "\n\n")
	fmt.Fprintf(&b, "## Hostile neighbours\n\nThe chart's defaults (3 replicas, batching, peers) renewing the same load at the same scale (%s), beside another client of the same Cloudflare user with a token of its own. The first three neighbours never read Cloudflare's headers nor back off after a 429; the last is another cluster's certbridge, renewing as much in the same zones. A 429 blocks every client of the user for a window. The neighbour's counts are the simulator's for its token.\n\n", q.scale)
	b.WriteString(strings.Join(q.neighbours, "\n") + "\n\n")
	b.WriteString("## A lone challenge\n\nOne challenge's Present + CleanUp, 30 times in a row on an idle zone, batching on and off (a change for an idle zone goes out at once), answers 20–150 ms:\n\n")
	b.WriteString(strings.Join(q.lone, "\n") + "\n\n")
	b.WriteString("## Failed batches\n\nWhat a failed Cloudflare batch costs: n changes to one zone sent as one batch through the SDK against the simulator, once with one change Cloudflare refuses (a TTL below the plan's), bisected until it is found, once with a 5xx on every try of the batch, which the SDK retries as a batch and never splits. Answers 20–150 ms.\n\n")
	b.WriteString(strings.Join(q.batches, "\n") + "\n\n")
	fmt.Fprintf(&b, "## alidns replicas\n\n%d challenges, %d in flight, %d replicas pacing themselves with an adaptive rate, under the documented per-account QPS (AddDomainRecord and DeleteDomainRecord 60 per second, counted across every client, unscaled); throttled answers are retried; answers 20–150 ms:\n\n", quotaChallenges, quotaInFlight, quotaReplicas)
	b.WriteString(strings.Join(q.ali, "\n") + "\n\n")
	b.WriteString("## Webhook memory\n\nThe `certbridge webhook` process in the end-to-end environment (`make e2e`'s: a local kube-apiserver, cert-manager's controllers, Pebble, the chart's objects), reached through the aggregated API; VmRSS sampled every 50 ms while 50 Certificates, one DNS01 challenge each through the `cloudflare` solver, are issued at once. The reference is cert-manager's webhook server of the same version serving a solver that does nothing (`test/bench/cmd/noopwebhook`), started in the webhook's place with the same arguments: the memory the webhook library itself takes. It writes no record, so its challenges cannot succeed; its run is every challenge presented, then cleaned up once the Certificates and their ACME objects are deleted.\n\n")
	b.WriteString(strings.Join(r.rss, "\n") + "\n\n")
	b.WriteString("## Issuer throughput\n\n`certbridge issuer` in the same environment: 200 CertificateRequests for a CloudflareOriginIssuer created at once, approved by cert-manager's approver, signed by the simulated Origin CA answering at once or after 100 ms; latency from each request's creation to its Ready condition as an informer sees it; `certbridge issuer` runs with its default `--max-concurrent-signs=8`.\n\n")
	b.WriteString(strings.Join(r.issuer, "\n") + "\n")
	if len(r.faults) > 0 {
		fmt.Fprintf(&b, "\n## Faults across processes\n\nA renewal of %d challenges (%d names, each also as a wildcard, over %d zones), %d in flight, served by %d `certbridge webhook` processes (make build's binary, started with the chart's arguments in the same environment, knowing each other by `--peers` instead of the Service's EndpointSlices, so each hands a request to the process that owns its zone) against a fresh simulator per run, at the bench's time scale %s: Cloudflare's quota %s (the processes' `--cloudflare-quota`), `--solver-timeout=%s`. Each Present and CleanUp goes to a random ready process, over TLS with the front-proxy client certificate as kube-apiserver's aggregator sends it; a failed or unanswered call is retried with cert-manager's backoff (%s doubling to %s, at most %d calls), and a CleanUp follows each Present after a %s–%s validation. In the faulted run the busiest process is killed with SIGKILL once %d %% of the challenges are presented, stays in the Service for %s as a failing readiness probe takes, and rejoins once started again and ready; meanwhile the simulator injects, in turn, about one fault per %d API calls: a 5xx, a %s–%s latency, a dropped connection, an answer lost after the change was made (the connection closes unanswered), and a spent quota (Cloudflare: once a run, another client of the user spends the quota, so the next call gets 429 and the whole user is blocked for a window with its Retry-After, as Cloudflare does; alidns: Throttling.User), every fourth of a kind hitting the next 4 calls. Leftover records are the `_acme-challenge` TXT records in the simulator's store once every challenge ended; duplicates are values held by more than one record, looked at every 20 ms throughout and at the end. The reference runs have neither kill nor faults.\n\n",
			2*faultNames, faultNames, faultZones, faultInFlight, faultReplicas, faultScale(), ratelimit.Limit{Limit: faultScale().quota().Limit, Window: faultScale().quota().Window}, faultScale().of(solver.DefaultTimeout), retryBase(), retryCap(), retryAttempts, validationMin(), 2*validationMin(), killAtPercent, endpointLag(), faultEvery, minFaultDelay, maxFaultDelay)
		b.WriteString(strings.Join(r.faults, "\n") + "\n")
	}
	if err := os.WriteFile("BENCHMARKS.md", []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	fmt.Println("\nwrote BENCHMARKS.md")
}
