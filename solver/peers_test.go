package solver_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/peers"
	"github.com/certbridge/certbridge/solver"
	"github.com/certbridge/certbridge/test/peertest"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// peeredReplica is one webhook replica (test/peertest) and its log.
type peeredReplica struct {
	*peertest.Replica
	logs *logBuffer
}

// peeredCloudflare starts n cloudflare replicas that hand each zone's
// requests to its owner, as `certbridge webhook --peer-bind-address` does.
func peeredCloudflare(t *testing.T, n int, o cloudflare.Options) []*peeredReplica {
	t.Helper()
	logs := make([]*logBuffer, n)
	started, stop, err := peertest.Start(t.TempDir(), n, func(i int, f solver.Forwarder) *solver.Solver {
		logs[i] = &logBuffer{}
		return solver.NewCloudflare(solver.Options{Log: logs[i].logger(), Peers: f}, o)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	var replicas []*peeredReplica
	for i, r := range started {
		if err := r.Solver.Initialize(kubeEnv(t).Config, nil); err != nil {
			t.Fatal(err)
		}
		replicas = append(replicas, &peeredReplica{Replica: r, logs: logs[i]})
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
	replicas := peeredCloudflare(t, 3, cloudflare.Options{BaseURL: sim.URL()})

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
	replicas := peeredCloudflare(t, 2, cloudflare.Options{BaseURL: sim.URL()})
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
	serve := solver.ServePeers(s)
	ch := &whapi.ChallengeRequest{Action: whapi.ChallengeActionPresent}
	if found, err := serve(context.Background(), "cloudflare", ch); !found || !errors.Is(err, peers.ErrNotServing) {
		t.Errorf("before Initialize: found %v, err %v; want ErrNotServing", found, err)
	}
	if found, _ := serve(context.Background(), "alidns", ch); found {
		t.Error("a solver this replica does not have was found")
	}
}
