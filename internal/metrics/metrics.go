// Package metrics defines certbridge's Prometheus metrics: provider API calls,
// their latency and rate-limit waits, challenges and signed certificates.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	// APICalls counts provider API calls (every attempt, retries included).
	// outcome is the HTTP status or "error"; code is the provider's error
	// code when it gave one.
	APICalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "certbridge", Name: "provider_api_calls_total",
		Help: "Provider API calls by provider, operation, outcome (HTTP status or error) and provider error code.",
	}, []string{"provider", "operation", "outcome", "code"})

	// APILatency is the duration of provider API calls.
	APILatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "certbridge", Name: "provider_api_call_duration_seconds",
		Help:    "Duration of provider API calls.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
	}, []string{"provider", "operation"})

	// RateLimitWait is the time spent waiting for a client-side budget or a
	// provider's Retry-After.
	RateLimitWait = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "certbridge", Name: "rate_limit_wait_seconds_total",
		Help: "Seconds spent waiting for rate limits, by provider.",
	}, []string{"provider"})

	// BudgetWaits counts the requests a credential's budget held back.
	BudgetWaits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "certbridge", Name: "rate_limit_waits_total",
		Help: "Requests that waited for the client-side budget of a credential, by provider and credential (a hash).",
	}, []string{"provider", "credential"})

	// QuotaRemaining is what the provider last said is left of the
	// account's quota (Cloudflare's Ratelimit field), by policy and
	// credential (a hash, never the value): several credentials' counts
	// must not overwrite each other.
	QuotaRemaining = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "certbridge", Name: "provider_quota_remaining",
		Help: "Requests left of the account's quota as the provider last counted them (all its clients together), by provider, policy and credential (a hash).",
	}, []string{"provider", "policy", "credential"})

	// RateLimit is the adaptive request rate per second a provider's
	// action is held to (Alibaba Cloud DNS).
	RateLimit = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "certbridge", Name: "provider_rate_limit_per_second",
		Help: "The request rate per second certbridge holds itself to, adapted to the provider's throttling, by provider and action.",
	}, []string{"provider", "action"})

	// BatchSize is the number of record changes per Cloudflare batch call.
	BatchSize = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "certbridge", Name: "provider_batch_size",
		Help:    "Record changes sent in one call (1: a single call), by provider.",
		Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200},
	}, []string{"provider"})

	// BatchFailures counts Cloudflare batch calls that failed: refused
	// because of one of their records (the batch is bisected), or failed as
	// a whole (each change is answered with the error).
	BatchFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "certbridge", Name: "provider_batch_failures_total",
		Help: "Batch calls that failed, by provider and kind (refused: one of their records was refused and the batch was bisected; failed: the whole batch failed and each change got its error).",
	}, []string{"provider", "kind"})

	// BatchRecoveryCalls counts the calls made to settle the changes of
	// refused batches, beyond the refused call itself.
	BatchRecoveryCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "certbridge", Name: "provider_batch_recovery_calls_total",
		Help: "Calls made to settle the changes of batches refused because of one of their records, beyond the refused call, by provider (the SDK's retries of a call are not counted).",
	}, []string{"provider"})

	// PeerForwards counts requests handed to the replica that owns their
	// zone (internal/peers).
	PeerForwards = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "certbridge", Name: "peer_forwards_total",
		Help: "Challenge actions handed to the replica that owns their zone, by solver and outcome (answered: the owner served it, whatever its result; unreachable: served here instead).",
	}, []string{"solver", "outcome"})

	// Challenges counts Present and CleanUp calls by outcome.
	Challenges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "certbridge", Name: "challenges_total",
		Help: "DNS01 challenge actions by solver, action (Present, CleanUp) and outcome (success, error).",
	}, []string{"solver", "action", "outcome"})

	// CleanupsSkipped counts CleanUps answered with success without touching
	// DNS, because their request could never have created a record.
	CleanupsSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "certbridge", Name: "cleanups_skipped_total",
		Help: "CleanUps that succeeded without a DNS call because Present could not have written a record, by solver and reason (config_invalid, secret_not_found, secret_key_missing, secret_value_empty, zone_not_found).",
	}, []string{"solver", "reason"})

	// Certificates counts certificates signed by the issuer.
	Certificates = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "certbridge", Name: "certificates_signed_total",
		Help: "Signing attempts by CA backend and outcome (success, error).",
	}, []string{"backend", "outcome"})
)

// Register adds the solver metrics to r.
func Register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{APICalls, APILatency, RateLimitWait, BudgetWaits, QuotaRemaining, RateLimit, BatchSize, BatchFailures, BatchRecoveryCalls, PeerForwards, Challenges, CleanupsSkipped} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// ObserveCall records one provider API call.
func ObserveCall(provider, operation, outcome, code string, took time.Duration) {
	APICalls.WithLabelValues(provider, operation, outcome, code).Inc()
	APILatency.WithLabelValues(provider, operation).Observe(took.Seconds())
}

// Outcome is "success" or "error".
func Outcome(err error) string {
	if err != nil {
		return "error"
	}
	return "success"
}
