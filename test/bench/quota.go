package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/ratelimit"
	"github.com/certbridge/certbridge/solver"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// The shared quota: one Cloudflare user's 1200 requests / 5 minutes
// (scaled ×50: 1200 per 6 s, blocking for a whole window once exceeded)
// spent by 3 webhook replicas and by a foreign client (Terraform,
// external-dns, the dashboard) that takes 40 % of it at the same time.
// Replicas are separate solvers in this process: each has its own budget,
// caches and batcher, and they share nothing but the simulator, as pods
// share nothing but Cloudflare.
const (
	quotaChallenges = 1000
	quotaZones      = 10
	quotaInFlight   = 60 // cert-manager's default MaxConcurrentChallenges
	quotaReplicas   = 3
	foreignShare    = 0.4
	foreignToken    = "benchForeignClientTokenZoneRead000000001"
)

var quotaLimit = cfsim.RateLimit{Limit: 1200, Window: 6 * time.Second}

// quotaDesigns are the designs compared: the one before (each replica
// keeps its own 1200 / 5 min, one call per change), following Cloudflare's
// count alone, and with batching too.
var quotaDesigns = []struct {
	name   string
	opts   cloudflare.Options
	peered bool
}{
	{"following Cloudflare's count, no batching", cloudflare.Options{Batch: cloudflare.BatchOptions{Max: 1}}, false},
	{"following Cloudflare's count, batching", cloudflare.Options{Batch: cloudflare.BatchOptions{Window: cloudflare.DefaultBatchWindow}}, false},
	{"following Cloudflare's count, batching, each zone served by one replica (peers)", cloudflare.Options{Batch: cloudflare.BatchOptions{Window: cloudflare.DefaultBatchWindow}}, true},
}

// sharedQuota runs the mass renewal once per design and returns the table.
func sharedQuota(cfg *rest.Config) []string {
	fmt.Printf("\nShared quota: %d challenges over %d zones, %d in flight, %d webhook replicas, a foreign client spending %.0f %% of the quota; Cloudflare %d per %s (1200 per 5 min ×50)\n",
		quotaChallenges, quotaZones, quotaInFlight, quotaReplicas, foreignShare*100, quotaLimit.Limit, quotaLimit.Window)
	rows := []string{"| design | 429s to the replicas | failed challenges | leftover records | replica API calls | calls per challenge | wall time | bound | ratio |",
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- |"}
	fmt.Println(rows[0])
	type run struct {
		name   string
		opts   cloudflare.Options
		peered bool
		zones  int
	}
	var runs []run
	for _, d := range quotaDesigns {
		runs = append(runs, run{d.name, d.opts, d.peered, quotaZones})
	}
	// Batching can only join changes that wait for the same zone at the same
	// time: 60 in flight over 10 zones and 3 replicas is 2 per (zone,
	// replica), unless each zone is served by one replica. For contrast, the
	// same renewal with all names in one zone, without peers.
	var last run
	for _, r := range runs {
		if r.opts.Batch.Max != 1 && !r.peered {
			last = r // batching, spread at random
		}
	}
	last.name, last.zones = last.name+", all in 1 zone", 1
	runs = append(runs, last)
	for _, d := range runs {
		sim := cfsim.Start()
		zones := addZones(sim, d.zones)
		sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
		sim.AddToken(cfsim.Token{Value: foreignToken, Permissions: []cfsim.Permission{cfsim.ZoneRead}})
		sim.SetRateLimit(quotaLimit)
		o := d.opts
		o.BaseURL, o.Limit = sim.URL(), ratelimit.Limit{Limit: quotaLimit.Limit, Window: quotaLimit.Window}
		newSolver := func(f solver.Forwarder) *solver.Solver {
			return solver.NewCloudflare(solver.Options{Log: logr.Discard(), Timeout: 50 * time.Second, Peers: f}, o)
		}
		var solvers []*solver.Solver
		stopPeers := func() {}
		if d.peered {
			solvers, stopPeers = peered(quotaReplicas, newSolver)
		} else {
			for range quotaReplicas {
				solvers = append(solvers, newSolver(nil))
			}
		}
		var replicas []spreadChallenger
		for _, s := range solvers {
			replicas = append(replicas, oursAt(cfg, s, cfConfig))
		}
		stop := foreignClient(sim)
		start := time.Now()
		failed := renewSpread(quotaChallenges, quotaInFlight, zones, replicas)
		took := time.Since(start)
		stop()
		stopPeers()
		ours := sim.TotalCalls() - int(foreignCallCount.Swap(0))
		// The bound: the calls this design needs, at the rate the foreign
		// client leaves to the replicas.
		rate := (1 - foreignShare) * float64(quotaLimit.Limit) / quotaLimit.Window.Seconds()
		bound := time.Duration(float64(ours) / rate * float64(time.Second))
		line := fmt.Sprintf("| %s | %d | %d | %d | %d | %.2f | %s | %s | %.2f |", d.name, sim.RejectedFor(token), failed, len(sim.AllRecords()),
			ours, float64(ours)/quotaChallenges, took.Round(10*time.Millisecond), bound.Round(10*time.Millisecond), took.Seconds()/bound.Seconds())
		fmt.Println(line)
		rows = append(rows, line)
		sim.Close()
	}
	return rows
}

func addZones(sim *cfsim.Server, n int) []string {
	var zones []string
	for z := range n {
		name := fmt.Sprintf("zone-%02d.example", z)
		sim.AddZone(name)
		zones = append(zones, name)
	}
	return zones
}

// foreignCallCount counts the foreign client's calls, to tell them from
// the replicas' in the simulator's count.
var foreignCallCount atomic.Int64

// foreignClient spends foreignShare of the quota with its own token, at an
// even pace and without looking at what is left, until stopped.
func foreignClient(sim *cfsim.Server) (stop func()) {
	c := cloudflare.NewClient(cloudflare.Options{BaseURL: sim.URL(), MaxRetries: -1, Limit: ratelimit.Limit{Limit: -1}},
		cloudflare.Credential{Token: foreignToken})
	every := time.Duration(float64(quotaLimit.Window) / (foreignShare * float64(quotaLimit.Limit)))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				foreignCallCount.Add(1)
				go func() { _, _ = c.ListZones(ctx, "", 1) }()
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// renewSpread presents and cleans up n challenges over zones, inFlight at a
// time, each action on a random replica (the aggregated API spreads them),
// and returns how many failed.
func renewSpread(n, inFlight int, zones []string, replicas []spreadChallenger) int {
	var failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, inFlight)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			zone := zones[i%len(zones)]
			fqdn := fmt.Sprintf("_acme-challenge.host-%04d.%s.", i, zone)
			k := key()
			if replicas[rand.IntN(len(replicas))].present(fqdn, zone+".", k) != nil {
				failed.Add(1)
				return
			}
			if replicas[rand.IntN(len(replicas))].cleanUp(fqdn, zone+".", k) != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	return int(failed.Load())
}

// loneLatency is one challenge's Present + CleanUp on an idle simulator,
// batching on and off: batching must not hold a change nothing joins.
func loneLatency(cfg *rest.Config) []string {
	fmt.Println("\nA lone challenge (Present + CleanUp, 30 times in a row on an idle zone): latency with batching on and off")
	rows := []string{"| batching | p50 | p90 |", "| --- | --- | --- |"}
	fmt.Println(rows[0])
	for _, on := range []bool{false, true} {
		sim := cfsim.Start()
		zones := addZones(sim, 1)
		sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
		o := cloudflare.Options{BaseURL: sim.URL(), Batch: cloudflare.BatchOptions{Max: 1}}
		name := "off"
		if on {
			o.Batch = cloudflare.BatchOptions{Window: cloudflare.DefaultBatchWindow}
			name = fmt.Sprintf("on (%s window while a zone is busy)", cloudflare.DefaultBatchWindow)
		}
		c := oursAt(cfg, solver.NewCloudflare(solver.Options{Log: logr.Discard()}, o), cfConfig)
		var took []time.Duration
		for i := range 31 {
			fqdn := fmt.Sprintf("_acme-challenge.lone-%d.%s.", i, zones[0])
			k := key()
			start := time.Now()
			if c.present(fqdn, zones[0]+".", k) != nil || c.cleanUp(fqdn, zones[0]+".", k) != nil {
				panic("a lone challenge failed")
			}
			if i > 0 { // the first one lists the zones
				took = append(took, time.Since(start))
			}
			time.Sleep(ActiveGap) // idle again, as between single renewals
		}
		slices.Sort(took)
		line := fmt.Sprintf("| %s | %s | %s |", name, took[len(took)/2].Round(100*time.Microsecond), took[len(took)*9/10].Round(100*time.Microsecond))
		fmt.Println(line)
		rows = append(rows, line)
		sim.Close()
	}
	return rows
}

// ActiveGap lets a zone go idle between lone challenges.
const ActiveGap = cloudflare.ActiveFor + cloudflare.DefaultBatchWindow + 100*time.Millisecond

// aliReplicas runs a mass renewal through 3 alidns replicas under the
// documented QPS, shared by all of them.
func aliReplicas(cfg *rest.Config) []string {
	fmt.Printf("\nalidns: %d challenges, %d in flight, %d replicas, the documented QPS per account shared by all\n", quotaChallenges, quotaInFlight, quotaReplicas)
	rows := []string{"| replicas | throttled answers | failed challenges | leftover records | API calls | wall time |", "| --- | --- | --- | --- | --- | --- |"}
	fmt.Println(rows[0])
	ali := alisim.Start()
	ali.AddDomain("example.com", alisim.FreeEdition)
	ali.AddAccessKey(alisim.AccessKey{ID: akID, Secret: akSecret, Policy: alisim.AllowAll})
	var replicas []spreadChallenger
	for range quotaReplicas {
		s := solver.NewAliDNS(solver.Options{Log: logr.Discard(), Timeout: 50 * time.Second},
			alibaba.Options{DNS: alibaba.Endpoint{Scheme: "HTTP", Host: ali.Endpoint()}, Environ: func(string) string { return "" }})
		replicas = append(replicas, oursAt(cfg, s, aliConfig))
	}
	start := time.Now()
	failed := renewSpread(quotaChallenges, quotaInFlight, []string{"example.com"}, replicas)
	line := fmt.Sprintf("| %d | %d | %d | %d | %d | %s |", quotaReplicas, ali.Throttled(), failed, len(ali.AllRecords()), ali.TotalDNSCalls(), time.Since(start).Round(10*time.Millisecond))
	fmt.Println(line)
	rows = append(rows, line)
	ali.Close()
	return rows
}
