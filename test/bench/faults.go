package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certbridge/certbridge/internal/dnstxt"
	"github.com/certbridge/certbridge/internal/ratelimit"
	"github.com/certbridge/certbridge/solver"
	"github.com/certbridge/certbridge/test/localcluster"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// Faults across processes: a renewal wave served by several `certbridge
// webhook` processes (make build's binary, started as the chart runs it, in
// the end-to-end environment), one of them killed with SIGKILL and started
// again in the middle of it, while the simulator injects server errors,
// latency, dropped connections, answers lost after the change was made and
// 429s. The driver plays cert-manager and the Service in front of the
// pods: each Present and CleanUp goes, as kube-apiserver's aggregator sends
// it, to a random process among those ready; a call that fails or gets no
// answer is retried with cert-manager's backoff, scaled in time; a CleanUp
// follows each successful Present after a validation delay.
const (
	faultNames     = 150 // names; each has two challenges (the name and its wildcard)
	faultZones     = 10
	faultInFlight  = 60 // cert-manager's default MaxConcurrentChallenges
	faultReplicas  = 3
	faultNamespace = "bench-faults"

	// cert-manager retries a Challenge whose Present or CleanUp failed
	// with a per-challenge backoff from 5 s (cmBackoff) doubling; here
	// capped at 160 s and bounded to retryAttempts calls, at the bench's
	// time scale.
	retryCapWorld = 160 * time.Second
	retryAttempts = 12
	// validationWorld is how long the ACME server takes between a Present
	// and the Challenge's end (and so its CleanUp), at least: 50 to 100 s,
	// as cert-manager's self-check and the ACME validation take; scaled.
	validationWorld = 50 * time.Second
	// endpointLagWorld is how long a killed process stays in the Service
	// before its readiness probe fails; it rejoins once /readyz answers.
	endpointLagWorld = 10 * time.Second
	// faultEvery: one fault is injected for about every faultEvery API
	// calls, the kinds in turn; every fourth of a kind hits the next 4
	// calls, more than the SDK's own retries absorb.
	faultEvery    = 8
	minFaultDelay = 300 * time.Millisecond
	maxFaultDelay = 800 * time.Millisecond
	// killAtPercent: the kill comes once this share of the challenges is
	// presented, with the wave in full flight.
	killAtPercent = 40
	// faultRunLimit bounds one run.
	faultRunLimit = 3 * time.Minute
)

var cleanUpOnce = flag.Bool("faults-cleanup-once", false, "sanity check of the fault run: never retry a failed CleanUp (leftover records expected)")

// faultRun is one run: a solver, with or without the kill and the faults.
type faultRun struct {
	solver string // cloudflare or alidns
	kill   bool
	faults bool
}

// faultKinds are the faults injected, in turn.
var faultKinds = []string{"5xx", "latency", "dropped", "answer lost", "429"}

// faultFigures is what a run measured.
type faultFigures struct {
	run                          faultRun
	applied                      map[string]int
	presentCalls, presentRetries int64
	cleanUpCalls, cleanUpRetries int64
	unanswered, failedAnswers    int64
	authRefused                  int64 // of failedAnswers: 401 or 403 from the webhook's authentication
	cutByKill                    int64
	killed, killedAt             int // which process, at how many challenges presented
	downtime                     time.Duration
	apiCalls, throttled          int
	presented, cleanedUp         int64
	notPresented, notCleanedUp   int64
	notVisible                   int64
	leftovers                    int
	dupSeen, dupEnd              int
	took                         time.Duration
	messages                     []string
}

// crossProcessFaults runs each solver once without and once with the kill
// and the faults, and returns the table.
func crossProcessFaults(ctx context.Context, c *localcluster.Cluster) ([]string, error) {
	fmt.Printf("\nFaults across processes: %d challenges (%d names, each also as a wildcard) over %d zones, %d in flight, %d webhook processes\n",
		2*faultNames, faultNames, faultZones, faultInFlight, faultReplicas)
	rows := []string{
		"| solver | run | processes | SIGKILL | faults applied: 5xx / latency / dropped / answer lost / 429 | Present calls (retries) | CleanUp calls (retries) | calls unanswered / failed (of which 401/403) | API calls | 429s | presented (of them seen in the zone at validation) / cleaned up | leftover records | duplicate records (any time / at the end) | wall time |",
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
	}
	fmt.Println(rows[0])
	if err := c.CreateNamespace(ctx, faultNamespace); err != nil {
		return nil, err
	}
	if _, err := c.Kube.CoreV1().Secrets(faultNamespace).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		StringData: map[string]string{"token": token, "id": akID, "secret": akSecret}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	agg, err := c.Aggregator()
	if err != nil {
		return nil, err
	}
	var lost []string
	for _, r := range []faultRun{{"cloudflare", false, false}, {"cloudflare", true, true}, {"alidns", false, false}, {"alidns", true, true}} {
		f, err := runFaults(ctx, c, agg, r)
		if err != nil {
			return nil, err
		}
		line := f.row()
		fmt.Println(line)
		rows = append(rows, line)
		for _, m := range f.messages {
			fmt.Println("    e.g. failed:", m)
		}
		if f.leftovers != 0 || f.dupSeen != 0 || f.notPresented != 0 || f.notCleanedUp != 0 || f.notVisible != 0 {
			lost = append(lost, fmt.Sprintf("%s (%s): %d leftover records, %d duplicates, %d challenges not presented, %d not cleaned up, %d presented but not visible",
				r.solver, r.name(), f.leftovers, f.dupSeen, f.notPresented, f.notCleanedUp, f.notVisible))
		}
	}
	for _, l := range lost {
		fmt.Fprintln(os.Stderr, "bench: FAULT RUN LOST RECORDS OR CHALLENGES:", l)
	}
	return rows, nil
}

func (r faultRun) name() string {
	switch {
	case r.kill && r.faults:
		return "1 process killed and restarted, faults injected"
	case r.kill:
		return "1 process killed and restarted"
	case r.faults:
		return "faults injected"
	}
	return "reference: no kill, no faults"
}

func (f *faultFigures) row() string {
	kills, faults := "0", "none"
	if f.run.kill {
		kills = fmt.Sprintf("process %d at %d/%d presented: %d calls cut, back after %s", f.killed, f.killedAt, 2*faultNames, f.cutByKill, f.downtime.Round(10*time.Millisecond))
	}
	if f.run.faults {
		var parts []string
		for _, k := range faultKinds {
			parts = append(parts, fmt.Sprint(f.applied[k]))
		}
		faults = strings.Join(parts, " / ")
	}
	return fmt.Sprintf("| %s | %s | %d | %s | %s | %d (%d) | %d (%d) | %d / %d (%d) | %d | %d | %d (%d) / %d of %d | %d | %d / %d | %s |",
		f.run.solver, f.run.name(), faultReplicas, kills, faults, f.presentCalls, f.presentRetries, f.cleanUpCalls, f.cleanUpRetries,
		f.unanswered, f.failedAnswers, f.authRefused, f.apiCalls, f.throttled, f.presented, f.presented-f.notVisible, f.cleanedUp, 2*faultNames, f.leftovers, f.dupSeen, f.dupEnd,
		f.took.Round(10*time.Millisecond))
}

// faultSim is the simulator a run's solver talks to, seen through what the
// run needs of it.
// The faults run's time constants, at the bench's time scale.
func faultScale() timeScale        { return timeScale(*scaleFlag) }
func retryBase() time.Duration     { return faultScale().of(cmBackoff) }
func retryCap() time.Duration      { return faultScale().of(retryCapWorld) }
func validationMin() time.Duration { return faultScale().of(validationWorld) }
func endpointLag() time.Duration   { return faultScale().of(endpointLagWorld) }

type faultSim struct {
	records func() map[string]int // "name|value" → how many records hold it
	// inject applies a fault of kind to the next n calls; it reports
	// false when the kind is not applied again (a neighbour spends the
	// Cloudflare user's quota once a run).
	inject   func(kind string, n int) bool
	pending  func() int
	calls    func() int
	rejected func() int
}

func cloudflareFaultSim(sim *cfsim.Server) faultSim {
	statuses := []int{500, 502, 503}
	n5xx := 0
	quotaSpent := false
	return faultSim{
		records: func() map[string]int {
			out := map[string]int{}
			for _, r := range sim.AllRecords() {
				if r.Type == "TXT" {
					out[r.Name+"|"+dnstxt.Value(r.Content)]++
				}
			}
			return out
		},
		inject: func(kind string, n int) bool {
			f := cfsim.Fault{Times: n}
			switch kind {
			case "5xx":
				f.Status, f.Message = statuses[n5xx%len(statuses)], "Internal Server Error"
				n5xx++
			case "latency":
				f.Delay = faultDelay()
			case "dropped":
				f.Drop = true
			case "answer lost":
				f.LoseAnswer = true
			case "429":
				// Another client of the user spends the quota: the next
				// call exceeds it, and Cloudflare blocks the whole user
				// for a window (429, code 971, Retry-After). Once a run:
				// each block costs a whole window.
				if quotaSpent {
					return false
				}
				quotaSpent = true
				sim.SpendQuota()
				return true
			}
			sim.InjectFault(f)
			return true
		},
		pending:  sim.PendingFaults,
		calls:    sim.TotalCalls,
		rejected: sim.Rejected,
	}
}

func aliFaultSim(ali *alisim.Server) faultSim {
	return faultSim{
		records: func() map[string]int {
			out := map[string]int{}
			for _, r := range ali.AllRecords() {
				if r.Type == "TXT" {
					out[r.FQDN()+"|"+r.Value]++
				}
			}
			return out
		},
		inject: func(kind string, n int) bool {
			f := alisim.Fault{Times: n}
			switch kind {
			case "5xx":
				f.Status, f.Code = 503, "ServiceUnavailable"
			case "latency":
				f.Delay = faultDelay()
			case "dropped":
				f.Drop = true
			case "answer lost":
				f.LoseAnswer = true
			case "429":
				// Alibaba Cloud's answer to a spent quota: Throttling.User
				// with HTTP 400.
				f.Status, f.Code = 400, "Throttling.User"
			}
			ali.InjectFault(f)
			return true
		},
		pending:  ali.PendingFaults,
		calls:    ali.TotalDNSCalls,
		rejected: ali.Throttled,
	}
}

func faultDelay() time.Duration {
	return minFaultDelay + time.Duration(mrand.Int64N(int64(maxFaultDelay-minFaultDelay)))
}

// service is the Service in front of the processes: calls go to a random
// ready one.
type service struct {
	mu       sync.Mutex
	replicas []*localcluster.WebhookReplica
	ready    []bool
	inFlight []int
	// down marks a killed process until it is ready again.
	down []bool
}

func (s *service) pick() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ready []int
	for i, ok := range s.ready {
		if ok {
			ready = append(ready, i)
		}
	}
	if len(ready) == 0 {
		return 0, false
	}
	i := ready[mrand.IntN(len(ready))]
	s.inFlight[i]++
	return i, true
}

func (s *service) done(i int) (wasDown bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight[i]--
	return s.down[i]
}

// busiest is the process with the most calls in flight, and how many.
func (s *service) busiest() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	best := 0
	for i, n := range s.inFlight {
		if n > s.inFlight[best] {
			best = i
		}
	}
	return best, s.inFlight[best]
}

func (s *service) set(i int, ready, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ready[i], s.down[i] = ready, down
}

// challenge is one DNS01 challenge.
type challenge struct {
	fqdn, zone, dnsName, key string
}

// acmeKey is a DNS01 value: base64url of a SHA-256 digest, mixed case.
func acmeKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// driver is cert-manager for one run.
type driver struct {
	agg     *localcluster.Aggregator
	svc     *service
	solver  string
	config  string
	sim     faultSim
	figures *faultFigures
	present atomic.Int64 // challenges presented so far
	mu      sync.Mutex
	seen    map[string]bool
}

func runFaults(ctx context.Context, c *localcluster.Cluster, agg *localcluster.Aggregator, r faultRun) (*faultFigures, error) {
	cf := cfsim.Start()
	defer cf.Close()
	cf.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	cf.SetRateLimit(faultScale().quota())
	ali := alisim.Start()
	defer ali.Close()
	ali.AddAccessKey(alisim.AccessKey{ID: akID, Secret: akSecret, Policy: alisim.AllowAll})
	var zones []string
	for z := range faultZones {
		name := fmt.Sprintf("zone-%02d.example", z)
		zones = append(zones, name)
		cf.AddZone(name)
		ali.AddDomain(name, alisim.FreeEdition)
	}
	sim, config := cloudflareFaultSim(cf), cfConfig
	if r.solver == "alidns" {
		sim, config = aliFaultSim(ali), aliConfig
	}

	// The processes, started at once as a Deployment's pods are.
	svc := &service{replicas: make([]*localcluster.WebhookReplica, faultReplicas), ready: make([]bool, faultReplicas),
		inFlight: make([]int, faultReplicas), down: make([]bool, faultReplicas)}
	errs := make([]error, faultReplicas)
	// The processes know each other (--peers) and hand each zone's
	// requests to the one that owns it, as the chart's replicas do.
	peers, err := localcluster.PeerAddresses(faultReplicas)
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	for i := range faultReplicas {
		wg.Go(func() {
			svc.replicas[i], errs[i] = c.StartWebhookReplica(ctx, fmt.Sprintf("bench-webhook-%s-%d", r.solver, i),
				localcluster.ReplicaOptions{CloudflareAPIURL: cf.URL(), AliDNSEndpoint: "http://" + ali.Endpoint(),
					PeerAddress: peers[i], Peers: peers, Args: []string{
						"--cloudflare-quota=" + ratelimit.Limit{Limit: faultScale().quota().Limit, Window: faultScale().quota().Window}.String(),
						"--solver-timeout=" + faultScale().of(solver.DefaultTimeout).String()}})
			svc.ready[i] = errs[i] == nil
		})
	}
	wg.Wait()
	defer func() {
		// What the processes' logs say of handing requests to each other.
		var forwarded, around int
		for i := range svc.replicas {
			log, _ := os.ReadFile(c.LogFile(fmt.Sprintf("bench-webhook-%s-%d", r.solver, i)))
			forwarded += strings.Count(string(log), "Challenge action served by the replica that owns the zone")
			around += strings.Count(string(log), "The replica that owns the zone did not answer")
		}
		fmt.Printf("    requests handed to the process owning their zone: %d; served where they arrived because the owner did not answer: %d\n", forwarded, around)
		for _, p := range svc.replicas {
			if p != nil {
				p.Stop()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	f := &faultFigures{run: r, applied: map[string]int{}}
	d := &driver{agg: agg, svc: svc, solver: r.solver, config: config, sim: sim, figures: f, seen: map[string]bool{}}
	runCtx, cancel := context.WithTimeout(ctx, faultRunLimit)
	defer cancel()
	stop := make(chan struct{})
	var bg sync.WaitGroup

	// Duplicates: the records are looked at every 20 ms throughout.
	dups := map[string]bool{}
	var dupMu sync.Mutex
	scan := func() int {
		n := 0
		for k, count := range sim.records() {
			if count > 1 {
				n++
				dupMu.Lock()
				dups[k] = true
				dupMu.Unlock()
			}
		}
		return n
	}
	bg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				scan()
			}
		}
	})

	// Faults: the next kind once the last is spent and faultEvery calls
	// went by.
	var lastKind string
	var lastTimes int
	if r.faults {
		bg.Go(func() {
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			mark, n := 0, 0
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				if sim.pending() > 0 || sim.calls()-mark < faultEvery {
					continue
				}
				kind := faultKinds[n%len(faultKinds)]
				times := 1
				if (n/len(faultKinds))%4 == 3 && kind != "latency" {
					times = 4
				}
				if !sim.inject(kind, times) {
					n++
					continue
				}
				f.applied[kind] += times
				lastKind, lastTimes = kind, times
				mark = sim.calls()
				n++
			}
		})
	}

	// The kill: the busiest process, once killAtPercent of the challenges
	// are presented; out of the Service after endpointLag, then started again
	// and back once ready.
	killed := make(chan struct{})
	var killErr error
	if r.kill {
		bg.Go(func() {
			defer close(killed)
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for d.present.Load() < 2*faultNames*killAtPercent/100 {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
				}
			}
			i, inFlight := svc.busiest()
			at := int(d.present.Load())
			began := time.Now()
			svc.set(i, true, true)
			svc.replicas[i].Kill()
			time.Sleep(endpointLag())
			svc.set(i, false, true)
			killErr = svc.replicas[i].Start(runCtx)
			svc.set(i, killErr == nil, false)
			f.downtime = time.Since(began)
			f.killed, f.killedAt = i, at
			fmt.Printf("    process %d killed at %d of %d challenges presented (%d calls in flight on it); ready again after %s\n",
				i, at, 2*faultNames, inFlight, f.downtime.Round(10*time.Millisecond))
		})
	} else {
		close(killed)
	}

	// The renewal: each name's challenge, then its wildcard's once the
	// first is valid, while the first is cleaned up.
	start := time.Now()
	sem := make(chan struct{}, faultInFlight)
	var pairs sync.WaitGroup
	for n := range faultNames {
		zone := zones[n%faultZones]
		host := fmt.Sprintf("host-%03d.%s", n, zone)
		pairs.Go(func() {
			var cleanUps sync.WaitGroup
			for range 2 {
				ch := challenge{fqdn: "_acme-challenge." + host + ".", zone: zone + ".", dnsName: host, key: acmeKey()}
				sem <- struct{}{}
				ok := d.solve(runCtx, ch, whapi.ChallengeActionPresent)
				if ok {
					d.present.Add(1)
					d.validate(runCtx, ch)
				} else {
					atomic.AddInt64(&f.notPresented, 1)
				}
				<-sem
				if ok {
					cleanUps.Go(func() {
						if d.solve(runCtx, ch, whapi.ChallengeActionCleanUp) {
							atomic.AddInt64(&f.cleanedUp, 1)
						} else {
							atomic.AddInt64(&f.notCleanedUp, 1)
						}
					})
				}
			}
			cleanUps.Wait()
		})
	}
	pairs.Wait()
	f.took = time.Since(start)
	f.presented = d.present.Load()
	<-killed
	close(stop)
	bg.Wait()
	if killErr != nil {
		return nil, fmt.Errorf("restarting the killed process: %w", killErr)
	}
	if lastKind != "" {
		// The last fault injected may have found no call left.
		f.applied[lastKind] -= min(sim.pending(), lastTimes)
	}
	// A change a killed process sent may still be on its way (an injected
	// latency): the records are counted once it has landed.
	time.Sleep(maxFaultDelay + 200*time.Millisecond)
	f.dupEnd = scan()
	f.dupSeen = len(dups)
	for k := range sim.records() {
		if strings.HasPrefix(k, "_acme-challenge.") {
			f.leftovers++
		}
	}
	f.apiCalls = sim.calls()
	f.throttled = sim.rejected()
	if r.faults {
		f.throttled += f.applied["429"]
	}
	return f, nil
}

// solve calls Present or CleanUp until it succeeds, as cert-manager does,
// within retryAttempts calls; it reports success.
func (d *driver) solve(ctx context.Context, ch challenge, action whapi.ChallengeAction) bool {
	calls, retries := &d.figures.presentCalls, &d.figures.presentRetries
	if action == whapi.ChallengeActionCleanUp {
		calls, retries = &d.figures.cleanUpCalls, &d.figures.cleanUpRetries
	}
	wait := retryBase()
	for attempt := range retryAttempts {
		if attempt > 0 {
			if action == whapi.ChallengeActionCleanUp && *cleanUpOnce {
				return false
			}
			atomic.AddInt64(retries, 1)
			select {
			case <-ctx.Done():
				return false
			case <-time.After(wait):
			}
			wait = min(2*wait, retryCap())
		}
		atomic.AddInt64(calls, 1)
		if d.call(ctx, ch, action) {
			return true
		}
	}
	return false
}

// call makes one call through the Service and reports success.
func (d *driver) call(ctx context.Context, ch challenge, action whapi.ChallengeAction) bool {
	i, ok := d.svc.pick()
	if !ok {
		// No ready endpoint: the aggregator answers 503.
		atomic.AddInt64(&d.figures.unanswered, 1)
		return false
	}
	req := &whapi.ChallengeRequest{Action: action, Type: "dns-01", DNSName: ch.dnsName, Key: ch.key,
		ResourceNamespace: faultNamespace, ResolvedFQDN: ch.fqdn, ResolvedZone: ch.zone,
		Config: &apiextensionsv1.JSON{Raw: []byte(d.config)}}
	callCtx, cancel := context.WithTimeout(ctx, time.Minute)
	err := d.agg.Challenge(callCtx, d.svc.replicas[i].URL(), d.solver, req)
	cancel()
	wasDown := d.svc.done(i)
	var noAnswer *localcluster.NoAnswerError
	switch {
	case err == nil:
		return true
	case errors.As(err, &noAnswer):
		atomic.AddInt64(&d.figures.unanswered, 1)
		if wasDown {
			atomic.AddInt64(&d.figures.cutByKill, 1)
		}
	default:
		atomic.AddInt64(&d.figures.failedAnswers, 1)
		if m := err.Error(); strings.HasPrefix(m, "401 ") || strings.HasPrefix(m, "403 ") {
			atomic.AddInt64(&d.figures.authRefused, 1)
		}
		d.note(err.Error())
	}
	return false
}

// note keeps a few distinct failure messages for the report.
func (d *driver) note(msg string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	short := msg
	if len(short) > 200 {
		short = short[:200] + "…"
	}
	if len(d.figures.messages) < 4 && !d.seen[short] {
		d.seen[short] = true
		d.figures.messages = append(d.figures.messages, short)
		sort.Strings(d.figures.messages)
	}
}

// validate waits as the ACME server's validation takes, and checks that
// the record is there to be seen.
func (d *driver) validate(ctx context.Context, ch challenge) {
	select {
	case <-ctx.Done():
	case <-time.After(validationMin() + time.Duration(mrand.Int64N(int64(validationMin())))):
	}
	name := strings.TrimSuffix(ch.fqdn, ".")
	if d.sim.records()[name+"|"+ch.key] == 0 {
		atomic.AddInt64(&d.figures.notVisible, 1)
	}
}
