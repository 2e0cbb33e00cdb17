package cloudflare_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/metrics"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// Cloudflare's count is per user: the quota gauge has a series per
// credential, labelled by a short hash of it and never by its value, so
// two users' counts never overwrite each other.
func TestQuotaGaugeIsPerCredential(t *testing.T) {
	sim := cfsim.Start()
	t.Cleanup(sim.Close)
	sim.SetRateLimit(cfsim.CloudflareRateLimit)
	tokens := []string{"quotaGaugeTokenOfTheFirstUser00000000001", "quotaGaugeTokenOfTheSecondUser0000000002"}
	for i, tok := range tokens {
		sim.AddToken(cfsim.Token{Value: tok, Permissions: []cfsim.Permission{cfsim.ZoneRead}})
		c := cloudflare.NewClient(cloudflare.Options{BaseURL: sim.URL()}, cloudflare.Credential{Token: tok})
		for range i + 1 {
			if _, err := c.ListZones(context.Background(), "", 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	series := map[string]float64{}
	for _, m := range gather(t, "certbridge_provider_quota_remaining") {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
			for _, tok := range tokens {
				if strings.Contains(l.GetValue(), tok) {
					t.Errorf("label %s holds a token", l.GetName())
				}
			}
		}
		series[labels["credential"]] = m.GetGauge().GetValue()
	}
	first, second := cloudflare.Credential{Token: tokens[0]}.Label(), cloudflare.Credential{Token: tokens[1]}.Label()
	// The simulator counts every user's calls together: 1 call, then 2 more.
	if series[first] != 1199 || series[second] != 1197 {
		t.Errorf("gauge by credential %v, want %s: 1199 and %s: 1197", series, first, second)
	}
}

func gather(t *testing.T, name string) []*dto.Metric {
	t.Helper()
	r := prometheus.NewRegistry()
	if err := metrics.Register(r); err != nil {
		t.Fatal(err)
	}
	families, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()
		}
	}
	return nil
}
