package peers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

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

// replica is a peer listener serving requests with a counter.
type replica struct {
	addr   string
	served atomic.Int64
	cancel context.CancelFunc
}

func startReplica(t *testing.T, id *Identity, outcome error) *replica {
	t.Helper()
	r := &replica{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r.cancel = cancel
	addr, err := Serve(ctx, "127.0.0.1:0", id, Handler(func(ctx context.Context, solver string, ch *whapi.ChallengeRequest) (bool, error) {
		if solver != "cloudflare" {
			return false, nil
		}
		r.served.Add(1)
		return true, outcome
	}))
	if err != nil {
		t.Fatal(err)
	}
	r.addr = addr.String()
	return r
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

func TestForward_TheOwnerServesAndItsOutcomeComesBack(t *testing.T) {
	ca := newCA(t, "webhook")
	owner := startReplica(t, identity(t, ca, "a", webhookNames...), errors.New("cloudflare: the owner's message"))
	f := NewForwarder(NewRing("127.0.0.1:1", Static{owner.addr}), identity(t, ca, "b", webhookNames...))
	served, err := f.Forward(context.Background(), owner.addr, "cloudflare", request())
	var remote *RemoteError
	if !served || !errors.As(err, &remote) || remote.Message != "cloudflare: the owner's message" {
		t.Fatalf("served %v, err %v; want the owner's message", served, err)
	}
	if owner.served.Load() != 1 {
		t.Errorf("the owner served %d requests, want 1", owner.served.Load())
	}
	if served, err := f.Forward(context.Background(), owner.addr, "nosuchsolver", request()); served {
		t.Errorf("a request for a solver the owner lacks counts as served (%v)", err)
	}
}

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
			f := NewForwarder(NewRing("127.0.0.1:1", Static{owner.addr}), tc.id)
			if served, err := f.Forward(context.Background(), owner.addr, "cloudflare", request()); served || err == nil {
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

func TestForward_AnOwnerNotServingYetIsNotServed(t *testing.T) {
	ca := newCA(t, "webhook")
	owner := startReplica(t, identity(t, ca, "a", webhookNames...), ErrNotServing)
	f := NewForwarder(NewRing("127.0.0.1:1", Static{owner.addr}), identity(t, ca, "b", webhookNames...))
	if served, err := f.Forward(context.Background(), owner.addr, "cloudflare", request()); served || err == nil {
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
	f := NewForwarder(NewRing("127.0.0.1:1", Static{gone}), identity(t, ca, "b", webhookNames...))
	if served, err := f.Forward(context.Background(), gone, "cloudflare", request()); served || err == nil {
		t.Errorf("served %v, err %v: a replica that is gone answered", served, err)
	}
}

func TestHandler_BadRequestsAreRefused(t *testing.T) {
	ca := newCA(t, "webhook")
	id := identity(t, ca, "a", webhookNames...)
	owner := startReplica(t, id, nil)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: identity(t, ca, "b", webhookNames...).ClientConfig()}}
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
	ended := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr, err := Serve(ctx, "127.0.0.1:0", identity(t, ca, "a", webhookNames...), Handler(func(ctx context.Context, _ string, _ *whapi.ChallengeRequest) (bool, error) {
		select {
		case <-ctx.Done():
			ended <- ctx.Err()
		case <-time.After(10 * time.Second):
			ended <- nil
		}
		return true, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	f := NewForwarder(NewRing("127.0.0.1:1", Static{addr.String()}), identity(t, ca, "b", webhookNames...))
	sendCtx, giveUp := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer giveUp()
	if served, _ := f.Forward(sendCtx, addr.String(), "cloudflare", request()); served {
		t.Fatal("served although the sender gave up")
	}
	if err := <-ended; err == nil {
		t.Error("the owner went on with the request for 10 s after its sender gave up")
	}
}
