package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"

	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/ratelimit"
	"github.com/certbridge/certbridge/solver"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// One time scale. Every time constant that meets Cloudflare's quota is
// divided by the same factor: the window (and the block after an overrun,
// a whole window, as Cloudflare does, with the Retry-After that says so),
// the solver's deadline, cert-manager's retry backoff and the validation
// between a Present and its CleanUp. The simulator's latency (20–150 ms)
// and the batching window are not: at ×20 a 100 ms answer weighs as 2 s
// would in the world, which makes the runs harsher, not kinder.
var scaleFlag = flag.Float64("scale", 20, "divide every time constant that meets Cloudflare's quota by this factor (1: as in the world, a 5-minute window)")

// timeScale divides durations of the world into the bench's.
type timeScale float64

func (s timeScale) of(d time.Duration) time.Duration { return time.Duration(float64(d) / float64(s)) }

func (s timeScale) String() string { return fmt.Sprintf("×%g", float64(s)) }

// The world's constants.
const (
	// cert-manager retries a Challenge whose Present or CleanUp failed
	// with its ACME controllers' per-item backoff: from 5 s, doubling, at
	// most 30 minutes (pkg/controller's DefaultACMERateLimiter), for as
	// long as it takes; here, until the run gives up.
	cmBackoff    = 5 * time.Second
	cmBackoffCap = 30 * time.Minute
	// renewInFlight is cert-manager's default MaxConcurrentChallenges.
	renewInFlight = 60
)

// quota is Cloudflare's documented quota at scale s: for the simulator,
// which blocks the user for a window once it is exceeded, and for the
// budgets.
func (s timeScale) quota() cfsim.RateLimit {
	return cfsim.RateLimit{Limit: cloudflare.DocumentedLimit.Limit, Window: s.of(cloudflare.DocumentedLimit.Window)}
}

// load is a renewal as cert-manager runs it: challenges over zones, at
// most inFlight at a time. A challenge's Present goes to a random replica
// (the aggregated API spreads requests); cert-manager then waits for the
// validation, between validation[0] and validation[1] in the world, while
// other names' Presents go on; then its CleanUp goes to a random replica.
// A failed call is retried with cert-manager's backoff.
type load struct {
	challenges, zones, inFlight int
	validation                  [2]time.Duration
}

func (l load) String() string {
	return fmt.Sprintf("%d challenges over %d zones, %d in flight, a CleanUp %s–%s after its Present", l.challenges, l.zones, l.inFlight, l.validation[0], l.validation[1])
}

// bound is the renewal's own length at scale s: the time cert-manager's
// pacing alone takes, with an API that answers at once and no quota. No
// design can finish sooner; every row of a table shares it.
func (s timeScale) bound(l load) time.Duration {
	mean := (l.validation[0] + l.validation[1]) / 2
	return s.of(time.Duration(float64(l.challenges) / float64(l.inFlight) * float64(mean)))
}

// renewal is what a run of a load ended with.
type renewal struct {
	failed  int // challenges whose Present or CleanUp never succeeded
	retries int // calls of Present or CleanUp beyond the first
	// unstarted are the challenges not started within giveUpAfter times
	// the bound: the run stops there, what is in flight finishes.
	unstarted int
	took      time.Duration
}

// giveUpAfter bounds a run: a design that needs longer than this many
// times the renewal's own length is reported as not finishing; a challenge
// whose next retry would come after that counts as failed.
const giveUpAfter = 30

// renew runs l at scale s against replicas, each challenge on the
// replicas as the aggregated API spreads them.
func (s timeScale) renew(l load, zones []string, replicas []spreadChallenger) renewal {
	return s.renewWithPrefix(l, zones, replicas, "host")
}

// renewWithPrefix is renew for names that start with prefix.
func (s timeScale) renewWithPrefix(l load, zones []string, replicas []spreadChallenger, prefix string) renewal {
	var failed, retries atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, l.inFlight)
	start := time.Now()
	giveUp := start.Add(giveUpAfter * s.bound(l))
	unstarted := 0
	for i := range l.challenges {
		sem <- struct{}{}
		if time.Now().After(giveUp) {
			unstarted = l.challenges - i
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			zone := zones[i%len(zones)]
			fqdn := fmt.Sprintf("_acme-challenge.%s-%05d.%s.", prefix, i, zone)
			k := key()
			try := func(action func(fqdn, zone, key string) error) bool {
				wait := s.of(cmBackoff)
				for attempt := 0; ; attempt++ {
					if attempt > 0 {
						if time.Now().Add(wait).After(giveUp) {
							return false
						}
						retries.Add(1)
						time.Sleep(wait)
						wait = min(2*wait, s.of(cmBackoffCap))
					}
					if action(fqdn, zone+".", k) == nil {
						return true
					}
				}
			}
			if !try(func(f, z, k string) error { return replicas[rand.IntN(len(replicas))].present(f, z, k) }) {
				failed.Add(1)
				return
			}
			v := l.validation[0] + time.Duration(rand.Int64N(int64(l.validation[1]-l.validation[0])+1))
			time.Sleep(s.of(v))
			if !try(func(f, z, k string) error { return replicas[rand.IntN(len(replicas))].cleanUp(f, z, k) }) {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	return renewal{failed: int(failed.Load()), retries: int(retries.Load()), unstarted: unstarted, took: time.Since(start)}
}

// design is how the webhook serves the renewal.
type design struct {
	name     string
	replicas int
	batch    cloudflare.BatchOptions
	peered   bool
	inTree   bool // cert-manager's in-tree solver, in cert-manager's one process
}

var (
	noBatching = design{name: "certbridge, 3 replicas, no batching", replicas: 3, batch: cloudflare.BatchOptions{Max: 1}}
	batching   = design{name: "certbridge, 3 replicas, batching", replicas: 3}
	peersAll   = design{name: "certbridge, 3 replicas, batching, each zone served by one replica (peers; the chart's default)", replicas: 3, peered: true}
	inTreeCM   = design{name: "cert-manager's in-tree Cloudflare solver (one controller process)", replicas: 1, inTree: true}
)

// deployment is a design's replicas against a simulator, with the token
// they share.
type deployment struct {
	replicas []spreadChallenger
	stop     func()
}

// deploy starts d's replicas at scale s with token, the simulator's quota
// their budgets' limit.
func (s timeScale) deploy(cfg *rest.Config, sim *cfsim.Server, d design, token string) deployment {
	if d.inTree {
		return deployment{replicas: []spreadChallenger{inTreeAt(sim, token)}, stop: func() {}}
	}
	q := s.quota()
	o := cloudflare.Options{BaseURL: sim.URL(), Limit: ratelimit.Limit{Limit: q.Limit, Window: q.Window}, Batch: d.batch}
	newSolver := func(f solver.Forwarder) *solver.Solver {
		return solver.NewCloudflare(solver.Options{Log: logr.Discard(), Timeout: s.of(solver.DefaultTimeout), Peers: f}, o)
	}
	var solvers []*solver.Solver
	stop := func() {}
	if d.peered {
		solvers, stop = peered(cfg, d.replicas, newSolver)
	} else {
		for range d.replicas {
			solvers = append(solvers, newSolver(nil))
		}
	}
	config := fmt.Sprintf(`{"apiTokenSecretRef":{"name":%q,"key":"token"}}`, secretFor(cfg, token))
	var replicas []spreadChallenger
	for _, sv := range solvers {
		replicas = append(replicas, oursAt(cfg, sv, config))
	}
	return deployment{replicas: replicas, stop: stop}
}

// secretFor stores token in a Secret of the bench namespace and names it.
func secretFor(cfg *rest.Config, token string) string {
	name := "token-" + strings.ToLower(token[:12])
	createSecret(cfg, name, map[string]string{"token": token})
	return name
}

// run is one renewal of a design: what the table reports of it.
type run struct {
	renewal
	calls, rejected, leftovers int
}

// stats are a figure over several runs.
type stats []float64

func (v stats) String() string {
	s := slices.Clone(v)
	slices.Sort(s)
	f := func(x float64) string {
		if x == float64(int64(x)) {
			return fmt.Sprint(int64(x))
		}
		return fmt.Sprintf("%.2f", x)
	}
	if len(s) == 1 || s[0] == s[len(s)-1] {
		return f(s[0])
	}
	return fmt.Sprintf("%s (%s–%s)", f(s[len(s)/2]), f(s[0]), f(s[len(s)-1]))
}

// durations formats times over runs the same way, in seconds.
func durations(v []time.Duration) string {
	var s stats
	for _, d := range v {
		s = append(s, float64(d.Round(100*time.Millisecond))/float64(time.Second))
	}
	return s.String() + " s"
}

// designSummary is a design's figures over its runs, for the headline.
type designSummary struct {
	perChallenge, rejected, failed, ratio stats
	// gaveUp counts the runs stopped at giveUpAfter times the bound.
	gaveUp int
}

// renewalTable runs each design on the same load at scale s, runs times
// each (the in-tree solver and the design without batching once), and
// returns the table and each design's figures.
func renewalTable(cfg *rest.Config, s timeScale, l load, runs int) ([]string, map[design]designSummary) {
	summaries := map[design]designSummary{}
	q := s.quota()
	bound := s.bound(l)
	fmt.Printf("\nA renewal that reaches the quota: %s; Cloudflare %d per %s (5 min %s); bound %s\n", l, q.Limit, q.Window, s, bound.Round(100*time.Millisecond))
	rows := []string{"| design | runs | calls per challenge | 429s | failed challenges (after cert-manager's retries) | retries | leftover records | wall time | wall time ÷ bound |",
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- |"}
	fmt.Println(rows[0])
	for _, d := range []design{noBatching, batching, peersAll, inTreeCM} {
		n := runs
		if d.inTree || d == noBatching {
			n = 1 // the references: long, and not what the claims rest on
		}
		var perChallenge, rejected, failed, retries, leftovers, ratio stats
		var took []time.Duration
		gaveUp := 0
		for range n {
			r := s.renewOnce(cfg, l, d, nil)
			perChallenge = append(perChallenge, float64(r.calls)/float64(l.challenges))
			rejected = append(rejected, float64(r.rejected))
			failed = append(failed, float64(r.failed+r.unstarted))
			retries = append(retries, float64(r.retries))
			if r.unstarted > 0 {
				gaveUp++
			}
			leftovers = append(leftovers, float64(r.leftovers))
			took = append(took, r.took)
			ratio = append(ratio, float64(int(100*r.took.Seconds()/bound.Seconds()))/100)
		}
		name := d.name
		if gaveUp > 0 {
			name += fmt.Sprintf(" (stopped at %d× the bound in %d of %d runs: the challenges not started count as failed)", giveUpAfter, gaveUp, n)
		}
		line := fmt.Sprintf("| %s | %d | %s | %s | %s | %s | %s | %s | %s |", name, n, perChallenge, rejected, failed, retries, leftovers, durations(took), ratio)
		fmt.Println(line)
		rows = append(rows, line)
		summaries[d] = designSummary{perChallenge: perChallenge, rejected: rejected, failed: failed, ratio: ratio, gaveUp: gaveUp}
	}
	return rows, summaries
}

// renewOnce runs l once with design d on a fresh simulator at scale s,
// beside neighbour when it is not nil.
func (s timeScale) renewOnce(cfg *rest.Config, l load, d design, n *neighbour) run {
	sim := cfsim.Start()
	defer sim.Close()
	zones := addZones(sim, l.zones)
	sim.SetRateLimit(s.quota())
	token := fmt.Sprintf("benchRenewalToken%023d", rand.Int64N(1e18))
	sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	dep := s.deploy(cfg, sim, d, token)
	defer dep.stop()
	stopNeighbour := func() {}
	if n != nil {
		stopNeighbour = n.start(cfg, s, sim, l)
	}
	r := s.renew(l, zones, dep.replicas)
	stopNeighbour()
	return run{renewal: r, calls: sim.CountedFor(token) + sim.RejectedFor(token), rejected: sim.RejectedFor(token), leftovers: leftoverWithPrefix(sim, "host")}
}

// leftoverWithPrefix counts the challenge records for names starting with
// prefix left in the zones: a neighbour's records are its own.
func leftoverWithPrefix(sim *cfsim.Server, prefix string) int {
	n := 0
	for _, r := range sim.AllRecords() {
		if strings.HasPrefix(r.Name, "_acme-challenge."+prefix+"-") {
			n++
		}
	}
	return n
}

// aloneSummary is the alone table's figures, for the headline.
type aloneSummary struct {
	perChallenge, waited, rejected, failed, leftovers stats
}

// aloneTable is the renewal of one process alone on its account, unscaled:
// the documented quota, nobody else, 1000 challenges over 10 zones, each
// CleanUp right after its Present. It must never wait on its budget.
func aloneTable(cfg *rest.Config, runs int) ([]string, aloneSummary) {
	const challenges, zones = 1000, 10
	fmt.Printf("\nOne process alone on its account, unscaled (1200 per 5 min): %d challenges over %d zones, %d in flight, each CleanUp right after its Present\n", challenges, zones, renewInFlight)
	rows := []string{"| solver | runs | calls per challenge | requests that waited on the budget | 429s | failed challenges | leftover records | wall time |",
		"| --- | --- | --- | --- | --- | --- | --- | --- |"}
	fmt.Println(rows[0])
	var perChallenge, waited, rejected, failed, leftovers stats
	var took []time.Duration
	for range runs {
		sim := cfsim.Start()
		zs := addZones(sim, zones)
		sim.SetRateLimit(cfsim.CloudflareRateLimit)
		token := fmt.Sprintf("benchAloneToken%025d", rand.Int64N(1e18))
		sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
		sv := solver.NewCloudflare(solver.Options{Log: logr.Discard()}, cloudflare.Options{BaseURL: sim.URL()})
		c := oursAt(cfg, sv, fmt.Sprintf(`{"apiTokenSecretRef":{"name":%q,"key":"token"}}`, secretFor(cfg, token)))
		before := budgetWaits(token)
		start := time.Now()
		f := renewSpread(challenges, renewInFlight, zs, []spreadChallenger{c})
		took = append(took, time.Since(start))
		perChallenge = append(perChallenge, float64(sim.TotalCalls())/challenges)
		waited = append(waited, budgetWaits(token)-before)
		rejected = append(rejected, float64(sim.Rejected()))
		failed = append(failed, float64(f))
		leftovers = append(leftovers, float64(len(sim.AllRecords())))
		sim.Close()
	}
	line := fmt.Sprintf("| certbridge cloudflare, default settings | %d | %s | %s | %s | %s | %s | %s |", runs, perChallenge, waited, rejected, failed, leftovers, durations(took))
	fmt.Println(line)
	return append(rows, line), aloneSummary{perChallenge, waited, rejected, failed, leftovers}
}

// renewalLoad is the renewal the scaled tables share: enough challenges
// that even the best design needs more than one window of the quota.
var renewalLoad = load{challenges: 2000, zones: 20, inFlight: renewInFlight, validation: [2]time.Duration{2 * time.Second, 8 * time.Second}}

// quotaReport is every quota figure.
type quotaReport struct {
	scale                                          timeScale
	runs                                           int
	alone, renewal, neighbours, lone, ali, batches []string
	headline                                       []string
}

// quotaFigures runs the quota tables.
func quotaFigures(cfg *rest.Config, s timeScale, runs int) quotaReport {
	r := quotaReport{scale: s, runs: runs}
	var alone aloneSummary
	r.alone, alone = aloneTable(cfg, runs)
	var designs map[design]designSummary
	r.renewal, designs = renewalTable(cfg, s, renewalLoad, runs)
	r.neighbours = neighbourTable(cfg, s, renewalLoad, runs)
	r.lone = loneLatency(cfg)
	r.batches = failedBatches()
	r.ali = aliReplicas(cfg)
	r.headline = headline(s, runs, alone, designs)
	fmt.Println("\n" + strings.Join(r.headline, "\n"))
	return r
}

// notDone words a design's failed challenges: those cert-manager's retries
// never got through, or, when the run was stopped, those not done by then.
func notDone(d designSummary) string {
	if d.gaveUp > 0 {
		return fmt.Sprintf("%s challenges not done when the run stopped at %d× the renewal's length (cert-manager still retrying)", d.failed, giveUpAfter)
	}
	return d.failed.String() + " challenges failed after cert-manager's retries"
}

// headline is what the README quotes: the figures the claims rest on,
// written from the runs themselves.
func headline(s timeScale, runs int, alone aloneSummary, designs map[design]designSummary) []string {
	p, b, nb, it := designs[peersAll], designs[batching], designs[noBatching], designs[inTreeCM]
	lines := []string{
		fmt.Sprintf("- **One webhook alone on its Cloudflare user** (documented quota, 1000 challenges over 10 zones, 60 in flight, answers 20–150 ms, %d runs): %s calls per challenge, %s requests waited on the budget, %s × 429, %s failed challenges.",
			runs, alone.perChallenge, alone.waited, alone.rejected, alone.failed),
		fmt.Sprintf("- **A renewal that reaches the quota** (%s; time %s, %d runs): with the chart's defaults (3 replicas, batching, peers) %s calls per challenge, %s × 429, %s failed, %s × the renewal's own length; batching without peers %s calls per challenge; without batching %s, %s × the renewal's length; cert-manager's in-tree solver %s calls per challenge, %s × 429, %s.",
			renewalLoad, s, runs, p.perChallenge, p.rejected, p.failed, p.ratio, b.perChallenge, nb.perChallenge, nb.ratio, it.perChallenge, it.rejected, notDone(it)),
	}
	for _, n := range neighbours {
		lines = append(lines, fmt.Sprintf("- **Beside a neighbour that %s**: certbridge %s × 429, %s failed; the neighbour %s × 429.",
			n.does, n.summary.rejected, n.summary.failed, n.summary.refused))
	}
	return lines
}
