package main

import (
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
	"github.com/certbridge/certbridge/solver"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// alidns replicas: a renewal through 3 replicas sharing the account's
// documented QPS.
const (
	quotaChallenges = 1000
	quotaInFlight   = renewInFlight
	quotaReplicas   = 3
)

func addZones(sim *cfsim.Server, n int) []string {
	var zones []string
	for z := range n {
		name := fmt.Sprintf("zone-%02d.example", z)
		sim.AddZone(name)
		zones = append(zones, name)
	}
	return zones
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
