package solver_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/metrics"
	"github.com/certbridge/certbridge/solver"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// One webhook process alone on its Cloudflare user renews 1000 challenges
// over 10 zones, 60 in flight as cert-manager sends them, under the
// documented quota (1200 requests per 5 minutes, unscaled), against a
// simulator that counts each request when it arrives and answers 20–150 ms
// later. Its own requests counted but not yet answered are not another
// client's spending: nothing waits on the budget, nothing is refused, and
// batching keeps it under half a call per challenge.
func TestCloudflare_RenewalWaveAloneNeverWaitsOnTheBudget(t *testing.T) {
	const challenges, inFlight, zones = 1000, 60, 10
	sim := cfsim.Start()
	t.Cleanup(sim.Close)
	for z := range zones {
		sim.AddZone(fmt.Sprintf("zone-%02d.example", z))
	}
	sim.SetRateLimit(cfsim.CloudflareRateLimit)
	e := &cfEnv{t: t, sim: sim, ns: namespace(t, "wave"), logs: &logBuffer{}}
	e.opts = cloudflare.Options{BaseURL: sim.URL()}
	s := solver.NewCloudflare(solver.Options{Log: e.logs.logger(), Timeout: 50 * time.Second}, e.opts)
	if err := s.Initialize(kubeEnv(t).Config, nil); err != nil {
		t.Fatal(err)
	}
	token, cfg := e.token(fullToken())
	sim.ResetCalls()

	var failed atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, inFlight)
	for i := range challenges {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			zone := fmt.Sprintf("zone-%02d.example.", i%zones)
			fqdn := fmt.Sprintf("_acme-challenge.host-%04d.%s", i, zone)
			key := fmt.Sprintf("key-%04d", i)
			ch := challenge(t, e.ns, fqdn, zone, key, cfg)
			if err := s.Present(ch); err != nil {
				failed.Add(1)
				t.Errorf("Present %s: %v", fqdn, err)
				return
			}
			ch.Action = whapi.ChallengeActionCleanUp
			if err := s.CleanUp(ch); err != nil {
				failed.Add(1)
				t.Errorf("CleanUp %s: %v", fqdn, err)
			}
		})
	}
	wg.Wait()

	label := cloudflare.Credential{Token: token}.Label()
	waits := testutil.ToFloat64(metrics.BudgetWaits.WithLabelValues("cloudflare", label))
	calls := sim.TotalCalls()
	perChallenge := float64(calls) / challenges
	t.Logf("%d calls, %.2f per challenge, %d failed, %d leftover, %d answered 429, %.0f waits on the budget",
		calls, perChallenge, failed.Load(), len(sim.AllRecords()), sim.Rejected(), waits)
	if n := len(sim.AllRecords()); n != 0 {
		t.Errorf("%d records left behind", n)
	}
	if sim.Rejected() != 0 {
		t.Errorf("Cloudflare answered 429 %d times", sim.Rejected())
	}
	if waits != 0 {
		t.Errorf("requests waited on the budget %.0f times, with nobody else on the account", waits)
	}
	if perChallenge > 0.5 {
		t.Errorf("%.2f calls per challenge, want at most 0.5", perChallenge)
	}
}
