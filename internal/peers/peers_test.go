package peers

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/test/testutil"
)

func TestRing_EveryReplicaAgreesOnTheOwner(t *testing.T) {
	members := Static{"10.0.0.1:8444", "10.0.0.2:8444", "10.0.0.3:8444"}
	owned := map[string]int{}
	for z := range 30 {
		key := fmt.Sprintf("cloudflare|zone-%02d.example", z)
		owner := NewRing(members[0], members).Owner(key)
		for _, self := range members[1:] {
			if got := NewRing(self, members).Owner(key); got != owner {
				t.Fatalf("%s: replica %s says %s owns it, replica %s says %s", key, self, got, members[0], owner)
			}
		}
		owned[owner]++
	}
	for _, m := range members {
		if owned[m] < 3 {
			t.Errorf("replica %s owns %d of 30 zones; the ring does not spread them: %v", m, owned[m], owned)
		}
	}
}

func TestRing_AReplicaLeavingMovesOnlyItsZones(t *testing.T) {
	all := Static{"10.0.0.1:8444", "10.0.0.2:8444", "10.0.0.3:8444"}
	left := Static{"10.0.0.1:8444", "10.0.0.3:8444"}
	moved := 0
	for z := range 100 {
		key := fmt.Sprintf("cloudflare|zone-%02d.example", z)
		before, after := NewRing(all[0], all).Owner(key), NewRing(left[0], left).Owner(key)
		if before != "10.0.0.2:8444" && before != after {
			t.Errorf("%s moved from %s to %s though %s is still there", key, before, after, before)
		}
		if before != after {
			moved++
		}
	}
	if moved == 0 {
		t.Error("no zone moved: the leaving replica owned none of 100")
	}
}

func TestRing_SelfIsAlwaysAMember(t *testing.T) {
	r := NewRing("10.0.0.9:8444", Static(nil))
	if got := r.Owner("cloudflare|example.com"); got != "10.0.0.9:8444" {
		t.Errorf("with no endpoints listed yet the owner is %s, want this replica", got)
	}
}

func TestReady_OnlyReadyEndpointsOnThePeerPort(t *testing.T) {
	slices := []*discoveryv1.EndpointSlice{{
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To[int32](8443)}, {Name: ptr.To("peer"), Port: ptr.To[int32](8444)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"10.0.0.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
			{Addresses: []string{"fd00::3"}},
		},
	}, {
		// A slice of the Service without the peer port (an older chart).
		Ports:     []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To[int32](8443)}},
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.4"}}},
	}}
	got := strings.Join(ready(slices, "peer"), ",")
	if want := "10.0.0.1:8444,[fd00::3]:8444"; got != want {
		t.Errorf("members %s, want %s", got, want)
	}
}

// kube is a real kube-apiserver, shared by the package's tests: it issues
// the ServiceAccount tokens and reviews them.
var kube struct {
	once sync.Once
	env  *envtest.Environment
	cfg  *rest.Config
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if kube.env != nil {
		_ = kube.env.Stop()
	}
	os.Exit(code)
}

func kubeConfig(t *testing.T) *rest.Config {
	t.Helper()
	kube.once.Do(func() {
		kube.env = &envtest.Environment{}
		kube.cfg, kube.err = kube.env.Start()
	})
	if kube.err != nil {
		t.Fatalf("starting kube-apiserver and etcd (run tests with `make test`): %v", kube.err)
	}
	return kube.cfg
}

func kubeClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	return kubernetes.NewForConfigOrDie(kubeConfig(t))
}

// The webhook's identity in these tests.
const (
	webhookNamespace = "cert-manager"
	webhookSA        = "certbridge-webhook"
	audience         = "certbridge.io/peers/cert-manager/certbridge-webhook"
)

func token(t *testing.T, namespace, sa, audience string) string {
	t.Helper()
	tok, err := testutil.ServiceAccountToken(context.Background(), kubeClient(t), namespace, sa, audience)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// tokenFile writes the webhook's token for the peers as the kubelet
// projects it.
func tokenFile(t *testing.T) *TokenFile {
	t.Helper()
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token(t, webhookNamespace, webhookSA, audience)), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := NewTokenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func admission(t *testing.T) *Admission {
	t.Helper()
	a, err := NewAdmission(kubeClient(t).AuthenticationV1(), audience, webhookNamespace, webhookSA)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// logs collects a logger's lines.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{})
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// replica is a peer listener serving requests with a counter.
type replica struct {
	addr   string
	served atomic.Int64
	log    logs
}

func startReplica(t *testing.T, id *Identity, outcome error) *replica {
	t.Helper()
	r := &replica{}
	r.addr = serve(t, id, func(name string) (ServeFunc, error) {
		if name != "cloudflare" {
			return nil, ErrNoSuchSolver
		}
		if errors.Is(outcome, ErrNotServing) {
			return nil, outcome
		}
		return func(context.Context, *whapi.ChallengeRequest) error {
			r.served.Add(1)
			return outcome
		}, nil
	}, r.log.logger())
	return r
}

// serve starts a peer listener with the package's admission.
func serve(t *testing.T, id *Identity, solvers Solvers, log logr.Logger) string {
	t.Helper()
	l, err := Listen("127.0.0.1:0", id)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l.Serve(ctx, Handler(admission(t), solvers, log))
	return l.Addr().String()
}

func newCA(t *testing.T, name string) *testutil.CA {
	t.Helper()
	ca, err := testutil.NewCA(t.TempDir(), name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func identity(t *testing.T, ca *testutil.CA, file string, names ...string) *Identity {
	t.Helper()
	cert, key, err := ca.Issue(file, names...)
	if err != nil {
		t.Fatal(err)
	}
	id, err := NewIdentity(cert, key, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var webhookNames = []string{"certbridge-webhook", "certbridge-webhook.cert-manager", "certbridge-webhook.cert-manager.svc"}

func request() *whapi.ChallengeRequest {
	return &whapi.ChallengeRequest{Action: whapi.ChallengeActionPresent, ResolvedFQDN: "_acme-challenge.www.example.com.",
		ResolvedZone: "example.com.", ResourceNamespace: "default", Key: "k"}
}

// forward forwards with a deadline, as the solver does, and the hand-off
// share of it.
func forward(f *Forwarder, owner, solver string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return f.Forward(ctx, owner, solver, request(), 10*time.Second)
}

func TestForward_TheOwnerServesAndItsOutcomeComesBack(t *testing.T) {
	ca := newCA(t, "webhook")
	owner := startReplica(t, identity(t, ca, "a", webhookNames...), errors.New("cloudflare: the owner's message"))
	f := NewForwarder(NewRing("127.0.0.1:1", Static{owner.addr}), identity(t, ca, "b", webhookNames...), tokenFile(t))
	served, err := forward(f, owner.addr, "cloudflare")
	var remote *RemoteError
	if !served || !errors.As(err, &remote) || remote.Message != "cloudflare: the owner's message" {
		t.Fatalf("served %v, err %v; want the owner's message", served, err)
	}
	if owner.served.Load() != 1 {
		t.Errorf("the owner served %d requests, want 1", owner.served.Load())
	}
	if served, err := forward(f, owner.addr, "nosuchsolver"); served {
		t.Errorf("a request for a solver the owner lacks counts as served (%v)", err)
	}
}

// The connection is TLS with the webhook's certificate at both ends: a
// replica sends its token only to a replica of this webhook, and takes
// requests only over such a connection.
func TestForward_OnlyTheWebhooksOwnCertificateIsAPeer(t *testing.T) {
	ca := newCA(t, "webhook")
	other := newCA(t, "other")
	owner := startReplica(t, identity(t, ca, "owner", webhookNames...), nil)
	for _, tc := range []struct {
		name string
		id   *Identity
	}{
		{"the same CA, another name", identity(t, ca, "issuer", "certbridge-issuer.cert-manager.svc")},
		{"the same names, another CA", identity(t, other, "imposter", webhookNames...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewForwarder(NewRing("127.0.0.1:1", Static{owner.addr}), tc.id, tokenFile(t))
			if served, err := forward(f, owner.addr, "cloudflare"); served || err == nil {
				t.Errorf("served %v (%v): a certificate that is not the webhook's was taken for a peer", served, err)
			}
		})
	}
	// Without any client certificate.
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}).
		Post("https://"+owner.addr+path+"cloudflare", "application/json", strings.NewReader(`{}`))
	if err == nil {
		resp.Body.Close()
		t.Errorf("a client without a certificate got %s", resp.Status)
	}
	if owner.served.Load() != 0 {
		t.Errorf("the owner served %d requests from strangers", owner.served.Load())
	}
}

// A certificate from the webhook's CA with its names is no identity: the
// owner serves only a token of the webhook's own ServiceAccount for the
// peers' audience, as kube-apiserver reviews it, and refuses anyone else
// with 401 or 403 and a log line naming the caller, never the token.
func TestHandler_OnlyTheWebhooksServiceAccountIsServed(t *testing.T) {
	ca := newCA(t, "webhook")
	owner := startReplica(t, identity(t, ca, "owner", webhookNames...), nil)
	// A client holding the webhook's own certificate, as anyone who can
	// get one signed by its Issuer, or read its Secret, does.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: identity(t, ca, "stranger", webhookNames...).ClientConfig()}}
	body, _ := json.Marshal(request())
	for _, tc := range []struct {
		name   string
		token  string
		status int
		caller string
	}{
		{"no token", "", http.StatusUnauthorized, Unauthenticated},
		{"not a token", "not-a-token", http.StatusUnauthorized, Unauthenticated},
		{"the webhook's token for kube-apiserver (its automounted one)", token(t, webhookNamespace, webhookSA, ""), http.StatusUnauthorized, Unauthenticated},
		{"the webhook's token for another audience", token(t, webhookNamespace, webhookSA, "vault"), http.StatusUnauthorized, Unauthenticated},
		{"another ServiceAccount's token for the peers", token(t, webhookNamespace, "certbridge-issuer", audience), http.StatusForbidden,
			ServiceAccountUser(webhookNamespace, "certbridge-issuer")},
		{"a ServiceAccount of the webhook's name in another namespace", token(t, "tenant", webhookSA, audience), http.StatusForbidden,
			ServiceAccountUser("tenant", webhookSA)},
		{"the webhook's own token for the peers", token(t, webhookNamespace, webhookSA, audience), http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := owner.served.Load()
			req, _ := http.NewRequest(http.MethodPost, "https://"+owner.addr+path+"cloudflare", bytes.NewReader(body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %s (%s), want %d", resp.Status, answer, tc.status)
			}
			served := owner.served.Load() - before
			if tc.status != http.StatusOK {
				if served != 0 {
					t.Errorf("the request was served")
				}
				if want := `"caller"="` + tc.caller + `"`; !strings.Contains(owner.log.String(), want) {
					t.Errorf("no log line names the caller (%s):\n%s", want, owner.log.String())
				}
			} else if served != 1 {
				t.Errorf("the webhook's own request was served %d times, want 1", served)
			}
			if tc.token != "" {
				if _, form, leaked := testutil.FindLeak([]string{tc.token}, owner.log.String()+string(answer)); leaked {
					t.Errorf("the token is in the log or the answer (as %q)", form)
				}
			}
		})
	}
}

func TestForward_AnOwnerNotServingYetIsNotServed(t *testing.T) {
	ca := newCA(t, "webhook")
	owner := startReplica(t, identity(t, ca, "a", webhookNames...), ErrNotServing)
	f := NewForwarder(NewRing("127.0.0.1:1", Static{owner.addr}), identity(t, ca, "b", webhookNames...), tokenFile(t))
	if served, err := forward(f, owner.addr, "cloudflare"); served || err == nil {
		t.Errorf("served %v, err %v: an owner whose solvers are not initialized counted as serving", served, err)
	}
}

func TestForward_AnOwnerThatIsGoneIsNotServed(t *testing.T) {
	ca := newCA(t, "webhook")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := l.Addr().String()
	l.Close()
	f := NewForwarder(NewRing("127.0.0.1:1", Static{gone}), identity(t, ca, "b", webhookNames...), tokenFile(t))
	if served, err := forward(f, gone, "cloudflare"); served || err == nil {
		t.Errorf("served %v, err %v: a replica that is gone answered", served, err)
	}
}

// An owner that accepts the connection and never takes the request costs
// the sender the hand-off, not its deadline; and an owner that took the
// request and works on it is waited for past the hand-off.
func TestForward_AHungOwnerCostsOnlyTheHandoff(t *testing.T) {
	ca := newCA(t, "webhook")
	const handoff = 300 * time.Millisecond
	tokens := tokenFile(t)
	sender := identity(t, ca, "b", webhookNames...)
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	for _, tc := range []struct {
		name   string
		owner  func(t *testing.T) string
		served bool
	}{
		{"accepts and never shakes hands", func(t *testing.T) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					go func() { <-hung; c.Close() }()
				}
			}()
			return l.Addr().String()
		}, false},
		{"takes the connection and never answers", func(t *testing.T) string {
			l, err := Listen("127.0.0.1:0", identity(t, ca, "hung", webhookNames...))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			l.Serve(ctx, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hung }))
			return l.Addr().String()
		}, false},
		{"takes the request and answers after the hand-off", func(t *testing.T) string {
			return serve(t, identity(t, ca, "slow", webhookNames...), func(string) (ServeFunc, error) {
				return func(context.Context, *whapi.ChallengeRequest) error {
					time.Sleep(3 * handoff)
					return nil
				}, nil
			}, logr.Discard())
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owner := tc.owner(t)
			f := NewForwarder(NewRing("127.0.0.1:1", Static{owner}), sender, tokens)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			served, err := f.Forward(ctx, owner, "cloudflare", request(), handoff)
			if served != tc.served {
				t.Fatalf("served %v (%v), want %v", served, err, tc.served)
			}
			if !served && (err == nil || !strings.Contains(err.Error(), "did not take the request within")) {
				t.Errorf("err %v, want the hand-off's", err)
			}
		})
	}
}

func TestHandler_BadRequestsAreRefused(t *testing.T) {
	ca := newCA(t, "webhook")
	owner := startReplica(t, identity(t, ca, "a", webhookNames...), nil)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: identity(t, ca, "b", webhookNames...).ClientConfig()}}
	tok := token(t, webhookNamespace, webhookSA, audience)
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"not JSON", http.MethodPost, path + "cloudflare", "not json", http.StatusBadRequest},
		{"an unknown field", http.MethodPost, path + "cloudflare", `{"resolvedFQDN":"x","bogus":1}`, http.StatusBadRequest},
		{"too big", http.MethodPost, path + "cloudflare", `{"key":"` + strings.Repeat("a", maxBody) + `"}`, http.StatusBadRequest},
		{"another path", http.MethodPost, "/apis/cloudflare", `{}`, http.StatusNotFound},
		{"a GET", http.MethodGet, path + "cloudflare", "", http.StatusNotFound},
		{"no such solver", http.MethodPost, path + "bogus", `{}`, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "https://"+owner.addr+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if owner.served.Load() != 0 {
		t.Errorf("%d bad requests reached the solver", owner.served.Load())
	}
}

// A forwarded request ends when its sender stops waiting (killed, or given
// up): the owner must not finish it for nobody.
func TestHandler_TheSenderGivingUpEndsTheRequest(t *testing.T) {
	ca := newCA(t, "webhook")
	started, ended := make(chan struct{}), make(chan error, 1)
	addr := serve(t, identity(t, ca, "a", webhookNames...), func(string) (ServeFunc, error) {
		return func(ctx context.Context, _ *whapi.ChallengeRequest) error {
			close(started)
			select {
			case <-ctx.Done():
				ended <- ctx.Err()
			case <-time.After(10 * time.Second):
				ended <- nil
			}
			return nil
		}, nil
	}, logr.Discard())
	f := NewForwarder(NewRing("127.0.0.1:1", Static{addr}), identity(t, ca, "b", webhookNames...), tokenFile(t))
	sendCtx, giveUp := context.WithTimeout(context.Background(), 30*time.Second)
	go func() {
		<-started
		giveUp()
	}()
	if served, err := f.Forward(sendCtx, addr, "cloudflare", request(), 10*time.Second); served {
		t.Fatalf("served although the sender gave up (%v)", err)
	}
	if err := <-ended; err == nil {
		t.Error("the owner went on with the request for 10 s after its sender gave up")
	}
}

// Readiness follows the listener: not ready until it serves, nor once it
// stopped.
func TestListener_ReadyWhileServing(t *testing.T) {
	ca := newCA(t, "webhook")
	l, err := Listen("127.0.0.1:0", identity(t, ca, "a", webhookNames...))
	if err != nil {
		t.Fatal(err)
	}
	if l.Ready() == nil {
		t.Error("ready before serving")
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.Serve(ctx, http.NotFoundHandler())
	if err := l.Ready(); err != nil {
		t.Errorf("not ready while serving: %v", err)
	}
	cancel()
	testutil.Eventually(t, 10*time.Second, "not ready once stopped", func() (bool, string) {
		err := l.Ready()
		return err != nil, fmt.Sprint(err)
	})
}

// The token is read again when the kubelet replaces it.
func TestTokenFile_FollowsTheFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := NewTokenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if tok, _ := f.Token(); tok != "first" {
		t.Fatalf("token %q, want first", tok)
	}
	if err := os.WriteFile(file, []byte("second, longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.read = time.Time{} // as after reloadEvery
	f.mu.Unlock()
	if tok, _ := f.Token(); tok != "second, longer" {
		t.Errorf("token %q after the file changed, want the new one", tok)
	}
	if _, err := NewTokenFile(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("a missing token file was accepted")
	}
}
