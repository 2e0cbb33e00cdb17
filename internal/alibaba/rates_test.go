package alibaba

import "testing"

// Every documented action is paced below its quota, so that a request
// delayed on the way does not share the provider's second with the next
// QPS of them; an action of a tiny quota still gets one request a second.
func TestActionsArePacedBelowTheirQuota(t *testing.T) {
	rates := adaptiveRates(ActionQPS)
	for action, qps := range ActionQPS {
		got := rates[action].Rate()
		if want := float64(int(float64(qps) * Headroom)); got != want || got >= float64(qps) {
			t.Errorf("%s (documented %d per second) paced at %v, want %v", action, qps, got, want)
		}
	}
	if got := adaptiveRates(map[string]int{"Tiny": 1})["Tiny"].Rate(); got != 1 {
		t.Errorf("an action of 1 per second paced at %v, want 1", got)
	}
}
