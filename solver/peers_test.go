package solver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/peers"
	"github.com/certbridge/certbridge/solver"
	"github.com/certbridge/certbridge/test/peertest"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/testutil"
)

// peeredReplica is one webhook replica (test/peertest) and its log.
type peeredReplica struct {
	*peertest.Replica
	logs *logBuffer
	// kubeCalls counts the solver's requests to kube-apiserver (Secret
	// reads).
	kubeCalls *atomic.Int64
}

// peeredCloudflare starts n cloudflare replicas that hand each zone's
// requests to its owner, as `certbridge webhook --peer-bind-address` does,
// their certificates from ca (nil: a CA of their own).
func peeredCloudflare(t *testing.T, n int, o cloudflare.Options, ca *testutil.CA) []*peeredReplica {
	t.Helper()
	logs := make([]*logBuffer, n)
	for i := range logs {
		logs[i] = &logBuffer{}
	}
	started, stop, err := peertest.Start(t.TempDir(), kubeEnv(t).Config, n, func(i int, f solver.Forwarder) *solver.Solver {
		return solver.NewCloudflare(solver.Options{Log: logs[i].logger(), Peers: f}, o)
	}, peertest.Options{CA: ca, Log: func(i int) logr.Logger { return logs[i].logger() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	var replicas []*peeredReplica
	for i, r := range started {
		calls := &atomic.Int64{}
		if err := r.Solver.Initialize(countingConfig(kubeEnv(t).Config, calls), nil); err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, &peeredReplica{Replica: r, logs: logs[i], kubeCalls: calls})
	}
	return replicas
}

// peersFixture is a simulator with zones, a token for them in a Secret of a
// fresh namespace, and the config naming it.
func peersFixture(t *testing.T, prefix string, zones ...string) (*cfsim.Server, string, map[string]any) {
	t.Helper()
	sim := cfsim.Start()
	t.Cleanup(sim.Close)
	for _, z := range zones {
		sim.AddZone(z)
	}
	token := randomToken()
	sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	ns := namespace(t, prefix)
	createSecret(t, ns, "cf", map[string]string{"api-token": token})
	return sim, ns, map[string]any{"apiTokenSecretRef": map[string]string{"name": "cf", "key": "api-token"}}
}

// With peers, whichever replica the aggregated API picks, a zone's
// challenges are served by the replica that owns it: its CleanUps delete
// the records it created by their IDs, with no listing, and its changes
// share batch calls.
func TestPeers_AZonesChallengesAreServedByItsOwner(t *testing.T) {
	var zones []string
	for z := range 4 {
		zones = append(zones, fmt.Sprintf("peers-%d.example", z))
	}
	sim, ns, config := peersFixture(t, "peers", zones...)
	replicas := peeredCloudflare(t, 3, cloudflare.Options{BaseURL: sim.URL()}, nil)

	const n = 60
	errs := make(chan error, n)
	for i := range n {
		go func() {
			zone := zones[i%len(zones)]
			ch := challenge(t, ns, fmt.Sprintf("_acme-challenge.h%d.%s.", i, zone), zone+".", acmeKey(), config)
			if err := replicas[i%3].Solver.Present(ch); err != nil {
				errs <- err
				return
			}
			ch.Action = whapi.ChallengeActionCleanUp
			errs <- replicas[(i+1)%3].Solver.CleanUp(ch) // another replica, as the aggregated API may pick
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if left := sim.AllRecords(); len(left) != 0 {
		t.Errorf("%d records left", len(left))
	}
	calls := sim.Calls()
	if lists := calls["GET /zones/{zone_id}/dns_records"]; lists != 0 {
		t.Errorf("%d listings of records: CleanUps did not reach the replica that created the records (%v)", lists, calls)
	}
	if got := calls["POST /zones/{zone_id}/dns_records"] + calls["DELETE /zones/{zone_id}/dns_records/{id}"] + calls["POST /zones/{zone_id}/dns_records/batch"]; got >= 2*n {
		t.Errorf("%d changes took %d calls: none shared a batch (%v)", 2*n, got, calls)
	}
	forwarded := 0
	for _, r := range replicas {
		forwarded += r.logs.count("Challenge action served by the replica that owns the zone")
	}
	if forwarded == 0 {
		t.Error("no request was handed to its zone's owner: the test proves nothing")
	}
}

// A replica whose zone's owner does not answer serves the request itself.
func TestPeers_AnOwnerThatIsGoneIsServedAround(t *testing.T) {
	const zone = "peers-gone.example"
	sim, ns, config := peersFixture(t, "peers-gone", zone)
	replicas := peeredCloudflare(t, 2, cloudflare.Options{BaseURL: sim.URL()}, nil)
	// Find the owner: the replica that serves a request for the zone sent
	// to the other one.
	ch := challenge(t, ns, "_acme-challenge.www."+zone+".", zone+".", acmeKey(), config)
	if err := replicas[0].Solver.Present(ch); err != nil {
		t.Fatal(err)
	}
	owner, other := replicas[0], replicas[1]
	if replicas[0].logs.count("served by the replica that owns the zone") > 0 {
		owner, other = replicas[1], replicas[0]
	}
	owner.Stop()
	time.Sleep(100 * time.Millisecond) // the listener closes
	ch.Action = whapi.ChallengeActionCleanUp
	if err := other.Solver.CleanUp(ch); err != nil {
		t.Fatalf("CleanUp with the owner gone: %v", err)
	}
	if left := sim.AllRecords(); len(left) != 0 {
		t.Errorf("%d records left", len(left))
	}
	if other.logs.count("The replica that owns the zone did not answer; serving the request here") != 1 {
		t.Errorf("the replica did not say it served the request itself:\n%s", other.logs)
	}
}

// A replica answers its peers only once its solvers can serve, and only for
// the solvers it has.
func TestServePeers_NotInitializedAndUnknownSolver(t *testing.T) {
	s := solver.NewCloudflare(solver.Options{}, cloudflare.Options{})
	solvers := solver.ServePeers(s)
	if _, err := solvers("cloudflare"); !errors.Is(err, peers.ErrNotServing) {
		t.Errorf("before Initialize: %v; want ErrNotServing", err)
	}
	if _, err := solvers("alidns"); !errors.Is(err, peers.ErrNoSuchSolver) {
		t.Errorf("a solver this replica does not have: %v; want ErrNoSuchSolver", err)
	}
}

// The peer port is no side door: a client holding a certificate from the
// webhook's CA with the webhook's names (anyone who can get one signed by
// the chart's Issuer, or read its Secrets, has one) but not the webhook's
// ServiceAccount is refused (401 or 403, the caller named in the log),
// and its request, naming a tenant's namespace, reads no Secret and makes
// no provider call. The same request from a real replica is served.
func TestPeers_AStrangerWithTheWebhooksCertificateGetsNothing(t *testing.T) {
	const zone = "peers-stranger.example"
	sim, ns, config := peersFixture(t, "peers-stranger", zone)
	ca, err := testutil.NewCA(t.TempDir(), "webhook")
	if err != nil {
		t.Fatal(err)
	}
	owner := peeredCloudflare(t, 1, cloudflare.Options{BaseURL: sim.URL()}, ca)[0]
	cert, key, err := ca.Issue("stranger", peertest.DNSNames...)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peers.NewIdentity(cert, key, ca.File)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: id.ClientConfig()}}
	body, err := json.Marshal(challenge(t, ns, "_acme-challenge.www."+zone+".", zone+".", acmeKey(), config))
	if err != nil {
		t.Fatal(err)
	}
	token := func(namespace, sa, audience string) string {
		tok, err := testutil.ServiceAccountToken(context.Background(), adminClient(t), namespace, sa, audience)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tc := range []struct {
		name   string
		token  string
		status int
		caller string
	}{
		{"no token", "", http.StatusUnauthorized, peers.Unauthenticated},
		{"the webhook's token for kube-apiserver", token(peertest.Namespace, peertest.ServiceAccount, ""), http.StatusUnauthorized, peers.Unauthenticated},
		{"cert-manager's token for the peers", token("cert-manager", "cert-manager", peertest.Audience), http.StatusForbidden,
			peers.ServiceAccountUser("cert-manager", "cert-manager")},
		{"a tenant's token for the peers", token(ns, "default", peertest.Audience), http.StatusForbidden, peers.ServiceAccountUser(ns, "default")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kubeCalls, apiCalls := owner.kubeCalls.Load(), sim.TotalCalls()
			req, err := http.NewRequest(http.MethodPost, "https://"+owner.Addr+"/certbridge.peer/v1/cloudflare", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
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
				t.Errorf("answered %s (%s), want %d", resp.Status, answer, tc.status)
			}
			if n := owner.kubeCalls.Load() - kubeCalls; n != 0 {
				t.Errorf("%d requests to kube-apiserver (Secret reads) for a stranger", n)
			}
			if n := sim.TotalCalls() - apiCalls; n != 0 {
				t.Errorf("%d Cloudflare calls for a stranger", n)
			}
			if want := `"caller"="` + tc.caller + `"`; owner.logs.count("Peer request refused") == 0 || !strings.Contains(owner.logs.String(), want) {
				t.Errorf("no log line refusing %s:\n%s", want, owner.logs)
			}
			if tc.token != "" {
				if _, form, leaked := testutil.FindLeak([]string{tc.token}, owner.logs.String()+string(answer)); leaked {
					t.Errorf("the token is in the log or the answer (as %q)", form)
				}
			}
		})
	}
	if n := len(sim.AllRecords()); n != 0 {
		t.Fatalf("%d records written for strangers", n)
	}
}

// An owner that accepts connections and never takes the request costs a
// challenge the hand-off's share of its time: the replica that received
// it serves it with the rest, and it succeeds.
func TestPeers_AHungOwnerIsServedAround(t *testing.T) {
	const timeout = 5 * time.Second // the hand-off: a fifth, 1 s
	ca, err := testutil.NewCA(t.TempDir(), "webhook")
	if err != nil {
		t.Fatal(err)
	}
	issue := func(name string) *peers.Identity {
		cert, key, err := ca.Issue(name, peertest.DNSNames...)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peers.NewIdentity(cert, key, ca.File)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	tok, err := testutil.ServiceAccountToken(context.Background(), adminClient(t), peertest.Namespace, peertest.ServiceAccount, peertest.Audience)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := peers.NewTokenFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	for _, tc := range []struct {
		name  string
		owner func(t *testing.T) string
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
		}},
		{"takes the connection and never answers", func(t *testing.T) string {
			l, err := peers.Listen("127.0.0.1:0", issue("hung"))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			l.Serve(ctx, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hung }))
			return l.Addr().String()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owner := tc.owner(t)
			ring := peers.NewRing("127.0.0.1:1", peers.Static{owner})
			zone := ""
			for i := 0; zone == ""; i++ {
				if z := fmt.Sprintf("peers-hung-%d.example", i); ring.Owner("cloudflare|"+z) == owner {
					zone = z
				}
			}
			sim, ns, config := peersFixture(t, "peers-hung", zone)
			logs := &logBuffer{}
			s := solver.NewCloudflare(solver.Options{Log: logs.logger(), Timeout: timeout,
				Peers: peers.NewForwarder(ring, issue("receiver"), tokens)}, cloudflare.Options{BaseURL: sim.URL()})
			if err := s.Initialize(kubeEnv(t).Config, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.Present(challenge(t, ns, "_acme-challenge.www."+zone+".", zone+".", acmeKey(), config)); err != nil {
				t.Fatalf("Present with the zone's owner hung: %v\n%s", err, logs)
			}
			if n := len(sim.AllRecords()); n != 1 {
				t.Errorf("%d records, want the challenge's", n)
			}
			if logs.count("The replica that owns the zone did not answer; serving the request here") != 1 {
				t.Errorf("the replica did not say it served the request itself:\n%s", logs)
			}
		})
	}
}
