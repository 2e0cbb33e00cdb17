package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"

	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/ratelimit"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// Neighbours: other clients of the same Cloudflare user, spending the same
// quota while certbridge renews. None of the first three reads Cloudflare's
// headers or backs off after a 429; the last is another cluster's
// certbridge with a token of its own (of the same user).

// neighbour is one kind of other client.
type neighbour struct {
	name string
	// does completes "a neighbour that …" in the headline.
	does string
	// work starts the neighbour's requests with its own token until ctx
	// ends; it returns what to add to its row beside the counts.
	work func(ctx context.Context, cfg *rest.Config, s timeScale, sim *cfsim.Server, l load, token string) (extra func() string)
	// last is what its last run ended with; summary its figures over the
	// runs, for the headline.
	last    neighbourCounts
	summary struct{ rejected, failed, refused stats }
}

// neighbourShare is the share of the quota a header-blind neighbour spends.
const neighbourShare = 0.4

var neighbours = []neighbour{
	{name: fmt.Sprintf("steady: %.0f %% of the quota at an even pace", neighbourShare*100),
		does: fmt.Sprintf("spends %.0f %% of the quota at an even pace, blind to Cloudflare's headers", neighbourShare*100), work: steadyNeighbour},
	{name: fmt.Sprintf("bursts: its %.0f %% of the quota at once at the start of each window", neighbourShare*100),
		does: fmt.Sprintf("spends its %.0f %% of the quota at once at the start of each window", neighbourShare*100), work: burstingNeighbour},
	{name: "plans: 300 calls at once, 10 in parallel, at a random time in each window (a Terraform plan)",
		does: "runs a 300-call plan at a random time in each window", work: planningNeighbour},
	{name: "another cluster's certbridge (3 replicas, peers) renewing the same load with its own token",
		does: "is another cluster's certbridge renewing as much with its own token", work: otherCluster},
}

// start runs n beside a renewal: its stop ends it and reports its counts.
func (n *neighbour) start(cfg *rest.Config, s timeScale, sim *cfsim.Server, l load) (stop func()) {
	token := fmt.Sprintf("benchNeighbourToken%021d", rand.Int64N(1e18))
	sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	ctx, cancel := context.WithCancel(context.Background())
	var extra func() string
	done := make(chan struct{})
	go func() {
		defer close(done)
		extra = n.work(ctx, cfg, s, sim, l, token)
	}()
	return func() {
		cancel()
		<-done
		n.last = neighbourCounts{counted: sim.CountedFor(token), refused: sim.RejectedFor(token)}
		if extra != nil {
			n.last.extra = extra()
		}
	}
}

// neighbourCounts are a neighbour's figures of its last run.
type neighbourCounts struct {
	counted, refused int
	extra            string
}

// blind is a client that reads nothing of Cloudflare's answers: no budget,
// no retries.
func blind(sim *cfsim.Server, token string) *cloudflare.Client {
	return cloudflare.NewClient(cloudflare.Options{BaseURL: sim.URL(), MaxRetries: -1, Limit: ratelimit.Limit{Limit: -1}},
		cloudflare.Credential{Token: token})
}

// spend sends n listings, parallel at a time, or fewer if ctx ends.
func spend(ctx context.Context, c *cloudflare.Client, n, parallel int) {
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for range n {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case sem <- struct{}{}:
		}
		wg.Go(func() {
			defer func() { <-sem }()
			_, _ = c.ListZones(ctx, "", 1)
		})
	}
	wg.Wait()
}

func steadyNeighbour(ctx context.Context, _ *rest.Config, s timeScale, sim *cfsim.Server, _ load, token string) func() string {
	c := blind(sim, token)
	q := s.quota()
	t := time.NewTicker(time.Duration(float64(q.Window) / (neighbourShare * float64(q.Limit))))
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			wg.Go(func() { _, _ = c.ListZones(ctx, "", 1) })
		}
	}
}

func burstingNeighbour(ctx context.Context, _ *rest.Config, s timeScale, sim *cfsim.Server, _ load, token string) func() string {
	c := blind(sim, token)
	q := s.quota()
	for {
		next := time.Now().Add(q.Window)
		spend(ctx, c, int(neighbourShare*float64(q.Limit)), 50)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(next)):
		}
	}
}

func planningNeighbour(ctx context.Context, _ *rest.Config, s timeScale, sim *cfsim.Server, _ load, token string) func() string {
	c := blind(sim, token)
	q := s.quota()
	for {
		start := time.Now()
		at := time.Duration(rand.Int64N(int64(q.Window)))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(at):
		}
		spend(ctx, c, 300, 10)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(start.Add(q.Window))):
		}
	}
}

func otherCluster(ctx context.Context, cfg *rest.Config, s timeScale, sim *cfsim.Server, l load, token string) func() string {
	var zones []string
	for _, z := range sim.AllZones() {
		zones = append(zones, z.Name)
	}
	dep := s.deploy(cfg, sim, peersAll, token)
	defer dep.stop()
	// Its own names, in the same zones.
	other := l
	r := s.renewWithPrefix(other, zones, dep.replicas, "other")
	_ = ctx // its renewal runs to its end: a cluster does not stop because ours did
	return func() string {
		return fmt.Sprintf("%d of %d challenges failed, %d leftover", r.failed, other.challenges, leftoverWithPrefix(sim, "other"))
	}
}

// neighbourTable runs the peers design on load l beside each neighbour,
// runs times, and reports both sides.
func neighbourTable(cfg *rest.Config, s timeScale, l load, runs int) []string {
	q := s.quota()
	bound := s.bound(l)
	fmt.Printf("\nHostile neighbours: the chart's default (3 replicas, batching, peers) renewing %s beside another client of the same Cloudflare user; %d per %s (5 min %s); bound %s\n",
		l, q.Limit, q.Window, s, bound.Round(100*time.Millisecond))
	rows := []string{"| neighbour | runs | certbridge: 429s | failed challenges | leftover records | calls per challenge | wall time ÷ bound | neighbour: requests counted | neighbour: 429s | neighbour: its own work |",
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"}
	fmt.Println(rows[0])
	for i := range neighbours {
		n := &neighbours[i]
		var rejected, failed, leftovers, perChallenge, ratio, counted, refused stats
		var extra []string
		for range runs {
			r := s.renewOnce(cfg, l, peersAll, n)
			rejected = append(rejected, float64(r.rejected))
			failed = append(failed, float64(r.failed))
			leftovers = append(leftovers, float64(r.leftovers))
			perChallenge = append(perChallenge, float64(r.calls)/float64(l.challenges))
			ratio = append(ratio, float64(int(100*r.took.Seconds()/bound.Seconds()))/100)
			counted = append(counted, float64(n.last.counted))
			refused = append(refused, float64(n.last.refused))
			if n.last.extra != "" {
				extra = append(extra, n.last.extra)
			}
		}
		n.summary.rejected, n.summary.failed, n.summary.refused = rejected, failed, refused
		work := "its reads"
		if len(extra) > 0 {
			work = strings.Join(extra, "; ")
		}
		line := fmt.Sprintf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |", n.name, runs, rejected, failed, leftovers, perChallenge, ratio, counted, refused, work)
		fmt.Println(line)
		rows = append(rows, line)
	}
	return rows
}
