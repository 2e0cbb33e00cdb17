// Package solver implements cert-manager's DNS01 webhook solvers: an adapter
// from cert-manager's webhook.Solver to one DNSProvider per request, and one
// file per DNS provider.
package solver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cert-manager/cert-manager/pkg/acme/webhook"
	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/dnsname"
	"github.com/certbridge/certbridge/internal/input"
	"github.com/certbridge/certbridge/internal/metrics"
)

// DNSProvider is what each DNS provider implements, for one credential and
// config. fqdn is normalised (lower case, no trailing dot, punycode). The
// zone is the provider's to find (internal/cloudflare, internal/alibaba):
// cert-manager's resolved zone is not passed on, since it may name a parent
// of the zone that really serves the name.
type DNSProvider interface {
	// PresentTXT makes value present at fqdn, in the zone serving it.
	// Calling it again with the same value is a no-op. Other values at
	// fqdn are left alone. Safe for concurrent use.
	PresentTXT(ctx context.Context, fqdn, value string) error
	// CleanUpTXT removes the record holding exactly value at fqdn, and nothing
	// else. A record already gone is success. Safe for concurrent use.
	CleanUpTXT(ctx context.Context, fqdn, value string) error
}

// provider builds the DNSProvider for one challenge: it decodes and validates
// the request's config and reads its credentials through secrets.
type provider interface {
	forRequest(ctx context.Context, ch *whapi.ChallengeRequest, secrets secretReader) (DNSProvider, error)
	// checkConfig is forRequest's config error, without reading a Secret.
	checkConfig(cfg *apiextensionsv1.JSON) error
}

// Options are the settings every solver shares.
type Options struct {
	Log logr.Logger
	// Timeout bounds one Present or CleanUp, including rate-limit waits and
	// retries. cert-manager's call reaches us through kube-apiserver, which
	// gives up after 60 s, so the default stays below that.
	Timeout time.Duration
	// Peers, when set, hands each request to the replica that owns its
	// zone (internal/peers), so that one replica batches a zone's changes
	// and knows the IDs of the records it created.
	Peers Forwarder
}

// Forwarder hands a request to the replica that owns it (internal/peers).
type Forwarder interface {
	// Owner is the replica that owns key, or "" when it is this one.
	Owner(key string) string
	// Forward sends ch to owner's solver, to be answered by ctx's deadline;
	// the owner must take it within handoff. served reports whether owner
	// answered, and err is then its outcome.
	Forward(ctx context.Context, owner, solver string, ch *whapi.ChallengeRequest, handoff time.Duration) (served bool, err error)
}

// HandoffShare is the share of a request's timeout that handing it to the
// replica that owns its zone may take at most: connecting, and the owner
// taking it (10 s of the default 50 s). Past it the replica serves the
// request itself with the rest, so a hung owner costs a challenge a fifth
// of its time, not all of it.
const HandoffShare = 5

// DefaultTimeout is Options.Timeout's default.
const DefaultTimeout = 50 * time.Second

// Solver adapts a provider to cert-manager's webhook.Solver.
type Solver struct {
	name     string
	provider provider
	log      logr.Logger
	timeout  time.Duration
	client   atomic.Pointer[kubernetes.Clientset]
	warned   sync.Map
	peers    Forwarder
}

var _ webhook.Solver = (*Solver)(nil)

func newSolver(name string, p provider, o Options) *Solver {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return &Solver{name: name, provider: p, log: o.Log.WithName(name), timeout: o.Timeout, peers: o.Peers}
}

// Name is the solverName an Issuer's webhook block refers to.
func (s *Solver) Name() string { return s.name }

// Initialize keeps a Kubernetes client for reading Secrets. It may be called
// again, also concurrently (cert-manager's conformance suite does): the
// latest configuration wins.
func (s *Solver) Initialize(cfg *rest.Config, _ <-chan struct{}) error {
	cs, err := kubernetes.NewForConfig(kubeClientConfig(cfg))
	if err != nil {
		return fmt.Errorf("%s: building Kubernetes client: %w", s.name, err)
	}
	s.client.Store(cs)
	return nil
}

// Initialized reports whether Initialize has run, so that requests can be
// served.
func (s *Solver) Initialized() bool { return s.client.Load() != nil }

// Client-side rate of the Secret reads when the kubeconfig sets none. Each
// Present and CleanUp reads its Secret (alidns two keys), cert-manager keeps
// up to 60 challenges in flight, and client-go's default of 5 per second
// (burst 10) held calls back in the client for up to 14 s in make bench's
// multi-process fault run; kube-apiserver's priority and fairness protects
// it from a webhook that asks faster.
const (
	kubeQPS   = 50
	kubeBurst = 100
)

func kubeClientConfig(cfg *rest.Config) *rest.Config {
	if cfg.QPS != 0 || cfg.RateLimiter != nil {
		return cfg
	}
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = kubeQPS, kubeBurst
	return c
}

// Present creates the challenge's TXT record.
func (s *Solver) Present(ch *whapi.ChallengeRequest) error {
	return s.run(context.Background(), ch, "Present", DNSProvider.PresentTXT, true)
}

// CleanUp deletes the challenge's TXT record, and only it.
func (s *Solver) CleanUp(ch *whapi.ChallengeRequest) error {
	return s.run(context.Background(), ch, "CleanUp", DNSProvider.CleanUpTXT, true)
}

// ServeForPeer serves a request another replica forwarded because this one
// owns its zone: here, never forwarded again. ctx ends when the replica
// that sent it stops waiting (it was killed, or gave up): the request is
// then dropped rather than finished for nobody. A Present finished after
// its sender died, retrying through throttling and backoff, could land
// after cert-manager had retried it elsewhere, validated and cleaned up,
// and leave its record behind.
func (s *Solver) ServeForPeer(ctx context.Context, ch *whapi.ChallengeRequest) error {
	if ch == nil {
		return fmt.Errorf("%s: empty challenge request", s.name)
	}
	switch ch.Action {
	case whapi.ChallengeActionPresent:
		return s.run(ctx, ch, "Present", DNSProvider.PresentTXT, false)
	case whapi.ChallengeActionCleanUp:
		return s.run(ctx, ch, "CleanUp", DNSProvider.CleanUpTXT, false)
	}
	return fmt.Errorf("%s: malformed challenge request: action %s is neither Present nor CleanUp", s.name, input.Quote(string(ch.Action)))
}

func (s *Solver) run(parent context.Context, ch *whapi.ChallengeRequest, action string, do func(DNSProvider, context.Context, string, string) error, mayForward bool) (err error) {
	start := time.Now()
	log := s.log.WithValues("action", action)
	defer func() {
		// A bad request must never take the server down; the panic value is
		// not printed, since it could hold request data.
		if r := recover(); r != nil {
			log.Error(nil, "Solver panicked", "panicType", fmt.Sprintf("%T", r))
			err = fmt.Errorf("%s: internal error while handling %s; see the webhook's log", s.name, action)
		}
	}()
	fqdn, err := validateRequest(ch)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	log = requestLog(log, ch, fqdn)
	deadline := start.Add(s.timeout)
	if mayForward && s.peers != nil {
		if served, err := s.forward(log, ch, fqdn, deadline); served {
			return err
		}
	}
	client := s.client.Load()
	if client == nil {
		return fmt.Errorf("%s: the solver is not initialized yet; try again", s.name)
	}
	ctx, cancel := context.WithDeadline(parent, deadline)
	defer cancel()
	dp, err := s.provider.forRequest(ctx, ch, newSecretReader(client, log, &s.warned))
	if err == nil {
		err = do(dp, ctx, fqdn, ch.Key)
	}
	if reason, skip := cleanUpSkipReason(err); skip && action == "CleanUp" {
		// See cleanup.go: nothing can have been written for this request.
		log.Info("CleanUp skipped: Present could not have created a record for this request",
			"reason", reason, "detail", err.Error())
		metrics.CleanupsSkipped.WithLabelValues(s.name, reason).Inc()
		err = nil
	}
	if err != nil {
		return s.failed(log, action, err)
	}
	metrics.Challenges.WithLabelValues(s.name, action, metrics.Outcome(nil)).Inc()
	log.V(1).Info("Challenge action done")
	return nil
}

// forward hands the request to the replica that owns its zone, unless that
// is this one. served is false when the request is to be served here: this
// replica owns it, or the owner did not take it within the hand-off's share
// of the request's time (HandoffShare), which the rest is left to.
func (s *Solver) forward(log logr.Logger, ch *whapi.ChallengeRequest, fqdn string, deadline time.Time) (served bool, err error) {
	zone := fqdn
	if z, err := dnsname.Normalize(ch.ResolvedZone); err == nil && z != "" {
		zone = z
	}
	owner := s.peers.Owner(s.name + "|" + zone)
	if owner == "" {
		return false, nil
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	served, err = s.peers.Forward(ctx, owner, s.name, ch, s.timeout/HandoffShare)
	if served {
		metrics.PeerForwards.WithLabelValues(s.name, "answered").Inc()
		log.V(1).Info("Challenge action served by the replica that owns the zone", "peer", owner, "zone", zone)
		return true, err
	}
	metrics.PeerForwards.WithLabelValues(s.name, "unreachable").Inc()
	log.Info("The replica that owns the zone did not answer; serving the request here", "peer", owner, "zone", zone, "error", err.Error())
	return false, nil
}

// requestLog names the request in log: cert-manager leaves its UID empty,
// so the DNS name and the namespace identify the Challenge.
func requestLog(log logr.Logger, ch *whapi.ChallengeRequest, fqdn string) logr.Logger {
	return log.WithValues("namespace", ch.ResourceNamespace, "dnsName", input.Truncate(ch.DNSName), "fqdn", fqdn)
}

// failed counts and logs an action's failure, and returns its error with
// the solver's prefix.
func (s *Solver) failed(log logr.Logger, action string, err error) error {
	metrics.Challenges.WithLabelValues(s.name, action, metrics.Outcome(err)).Inc()
	err = fmt.Errorf("%s: %w", s.name, err)
	log.Error(err, "Challenge action failed")
	return err
}

// Refuse is Present's or CleanUp's error for a request they would refuse
// before reading any Secret or calling the provider, or nil: the request is
// malformed (validateRequest), or it is a Present whose config does not
// decode or validate. The webhook answers such a request with 400 Bad
// Request rather than cert-manager's 201 with success false, so the API
// says the request itself was wrong; cert-manager's client puts either
// message on the Challenge alike. A CleanUp's config is not checked: such a
// CleanUp succeeds (cleanup.go). The config error is logged and counted as
// Present would have.
func (s *Solver) Refuse(ch *whapi.ChallengeRequest) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error(nil, "Solver panicked checking a request", "panicType", fmt.Sprintf("%T", r))
			err = fmt.Errorf("%s: internal error while checking the request; see the webhook's log", s.name)
		}
	}()
	fqdn, err := validateRequest(ch)
	if err != nil {
		err = fmt.Errorf("%s: %w", s.name, err)
		s.log.Error(err, "Challenge request refused")
		return err
	}
	if ch.Action != whapi.ChallengeActionPresent {
		return nil
	}
	if err := s.provider.checkConfig(ch.Config); err != nil {
		return s.failed(requestLog(s.log.WithValues("action", "Present"), ch, fqdn), "Present", err)
	}
	return nil
}

// maxKey is the longest key a TXT record's string holds.
const maxKey = 255

// validateRequest checks what cert-manager sent and returns the record's
// name, normalised once for everything after. Surrounding whitespace is
// refused rather than trimmed: it means something upstream built the name
// wrongly, and the provider would answer with a bare validation error.
func validateRequest(ch *whapi.ChallengeRequest) (string, error) {
	if ch == nil {
		return "", errors.New("empty challenge request")
	}
	var missing []string
	if ch.ResolvedFQDN == "" {
		missing = append(missing, "resolvedFQDN")
	}
	if ch.Key == "" {
		missing = append(missing, "key")
	}
	if ch.ResourceNamespace == "" {
		missing = append(missing, "resourceNamespace")
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("malformed challenge request: %s missing", strings.Join(missing, ", "))
	}
	for field, v := range map[string]string{"resolvedFQDN": ch.ResolvedFQDN, "resolvedZone": ch.ResolvedZone} {
		if strings.TrimSpace(v) != v {
			return "", fmt.Errorf("malformed challenge request: %s %s has surrounding whitespace", field, input.Quote(v))
		}
	}
	// The key is the record's value, a secret until the record is
	// published: no message names it, not even cut.
	if strings.TrimSpace(ch.Key) != ch.Key {
		return "", errors.New("malformed challenge request: the key has surrounding whitespace")
	}
	if len(ch.Key) > maxKey {
		// A TXT record's string holds 255 bytes; cert-manager's keys are
		// 43 (the base64url of a SHA-256 digest). Anything longer would be
		// sent to the provider, and its answer logged, however long.
		return "", fmt.Errorf("malformed challenge request: the key is %d bytes long; a TXT record's string holds %d", len(ch.Key), maxKey)
	}
	if len(validation.IsDNS1123Label(ch.ResourceNamespace)) > 0 {
		// Every namespace's name is a DNS label; anything else names no
		// Secret, and would be repeated whole into messages and the log.
		return "", fmt.Errorf("malformed challenge request: resourceNamespace %s is not a namespace name", input.Quote(ch.ResourceNamespace))
	}
	if !utf8.ValidString(ch.Key) {
		// The key reaches Cloudflare as JSON, which carries no invalid
		// bytes: another value (U+FFFD for each) would be stored, and a
		// CleanUp that lists records would never match it.
		return "", errors.New("malformed challenge request: the key is not UTF-8")
	}
	fqdn, err := dnsname.Normalize(ch.ResolvedFQDN)
	if err != nil {
		return "", fmt.Errorf("malformed challenge request: resolvedFQDN %s: %w", input.Quote(ch.ResolvedFQDN), err)
	}
	return fqdn, nil
}
