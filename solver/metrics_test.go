package solver_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/certbridge/certbridge/internal/metrics"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// scrape reads the metrics endpoint the webhook serves, summing a counter by
// the given labels.
func scrape(t *testing.T, url, name string, by ...string) map[string]float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	fam, ok := families[name]
	if !ok {
		return out
	}
	for _, m := range fam.Metric {
		key := ""
		for _, l := range by {
			key += labelValue(m, l) + "|"
		}
		out[key] += m.GetCounter().GetValue()
	}
	return out
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func delta(after, before map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// After challenges, the API-call counters on the metrics endpoint match the
// simulators' own counts, operation by operation.
func TestMetricsMatchTheSimulators(t *testing.T) {
	registry := prometheus.NewRegistry()
	if err := metrics.Register(registry); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/metrics"
	const calls, challenges = "certbridge_provider_api_calls_total", "certbridge_challenges_total"
	callsBefore := scrape(t, url, calls, "provider", "operation")
	challengesBefore := scrape(t, url, challenges, "solver", "action", "outcome")
	codesBefore := scrape(t, url, calls, "provider", "outcome", "code")

	cf := newCFEnv(t)
	_, cfg := cf.token(fullToken())
	ali := newAliEnv(t)
	_, _, aliCfg := ali.accessKey(alisim.AllowAll)
	for range 2 {
		k1, k2 := acmeKey(), acmeKey()
		if cf.present(cfg, k1) != nil || cf.cleanUp(cfg, k1) != nil || ali.present(aliCfg, k2) != nil || ali.cleanUp(aliCfg, k2) != nil {
			t.Fatal("a challenge failed")
		}
	}
	// One refused call, to see Cloudflare's error code in the labels.
	cf.sim.InjectFault(cfsim.Fault{Route: "POST /zones/{zone_id}/dns_records", Status: 403, Code: 10000, Message: "Authentication error"})
	if cf.present(cfg, acmeKey()) == nil {
		t.Fatal("want the injected 403")
	}

	got := delta(scrape(t, url, calls, "provider", "operation"), callsBefore)
	want := map[string]float64{}
	for op, n := range cf.sim.Calls() {
		want["cloudflare|"+op+"|"] = float64(n)
	}
	for op, n := range ali.sim.Calls() {
		want["alidns|"+op+"|"] = float64(n)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: metrics say %v calls, the simulator counted %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("operations in metrics %v, in the simulators %v", got, want)
	}
	gotChallenges := delta(scrape(t, url, challenges, "solver", "action", "outcome"), challengesBefore)
	for _, k := range []string{"cloudflare|Present|success|", "cloudflare|CleanUp|success|", "alidns|Present|success|", "alidns|CleanUp|success|"} {
		if gotChallenges[k] != 2 {
			t.Errorf("%s = %v, want 2", k, gotChallenges[k])
		}
	}
	if gotChallenges["cloudflare|Present|error|"] != 1 {
		t.Errorf("want one failed Present, got %v", gotChallenges)
	}
	if codes := delta(scrape(t, url, calls, "provider", "outcome", "code"), codesBefore); codes["cloudflare|403|10000|"] != 1 {
		t.Errorf("want the 403 with code 10000 counted once, got %v", codes)
	}
}
