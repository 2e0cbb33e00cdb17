package solver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/peers"
	"github.com/certbridge/certbridge/solver"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/testutil"
)

// peeredReplica is one webhook replica with its peer listener.
type peeredReplica struct {
	solver *solver.Solver
	addr   string
	stop   context.CancelFunc
	logs   *logBuffer
}

// peeredCloudflare starts n cloudflare replicas that hand each zone's
// requests to its owner, as `certbridge webhook --peer-bind-address` does.
func peeredCloudflare(t *testing.T, n int, o cloudflare.Options) []*peeredReplica {
	t.Helper()
	ca, err := testutil.NewCA(t.TempDir(), "webhook")
	if err != nil {
		t.Fatal(err)
	}
	replicas := make([]*peeredReplica, n)
	ids := make([]*peers.Identity, n)
	var addrs []string
	for i := range n {
		cert, key, err := ca.Issue(fmt.Sprintf("replica-%d", i), "certbridge-webhook.cert-manager.svc")
		if err != nil {
			t.Fatal(err)
		}
		if ids[i], err = peers.NewIdentity(cert, key, ca.File); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		r := &peeredReplica{stop: cancel, logs: &logBuffer{}}
		replicas[i] = r
		addr, err := peers.Serve(ctx, "127.0.0.1:0", ids[i], peers.Handler(func(ctx context.Context, name string, ch *whapi.ChallengeRequest) (bool, error) {
			return true, r.solver.ServeForPeer(ctx, ch)
		}))
		if err != nil {
			t.Fatal(err)
		}
		r.addr = addr.String()
		addrs = append(addrs, r.addr)
	}
	for i, r := range replicas {
		f := peers.NewForwarder(peers.NewRing(r.addr, peers.Static(addrs)), ids[i])
		r.solver = solver.NewCloudflare(solver.Options{Log: r.logs.logger(), Peers: f}, o)
		if err := r.solver.Initialize(kubeEnv(t).Config, nil); err != nil {
			t.Fatal(err)
		}
	}
	return replicas
}

// With peers, whichever replica the aggregated API picks, a zone's
// challenges are served by the replica that owns it: its CleanUps delete
// the records it created by their IDs, with no listing, and its changes
// share batch calls.
func TestPeers_AZonesChallengesAreServedByItsOwner(t *testing.T) {
	sim := cfsim.Start()
	t.Cleanup(sim.Close)
	var zones []string
	for z := range 4 {
		zones = append(zones, sim.AddZone(fmt.Sprintf("peers-%d.example", z)).Name)
	}
	token := randomToken()
	sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	ns := namespace(t, "peers")
	createSecret(t, ns, "cf", map[string]string{"api-token": token})
	config := map[string]any{"apiTokenSecretRef": map[string]string{"name": "cf", "key": "api-token"}}
	replicas := peeredCloudflare(t, 3, cloudflare.Options{BaseURL: sim.URL()})

	const n = 60
	errs := make(chan error, n)
	for i := range n {
		go func() {
			zone := zones[i%len(zones)]
			ch := challenge(t, ns, fmt.Sprintf("_acme-challenge.h%d.%s.", i, zone), zone+".", acmeKey(), config)
			if err := replicas[i%3].solver.Present(ch); err != nil {
				errs <- err
				return
			}
			ch.Action = whapi.ChallengeActionCleanUp
			errs <- replicas[(i+1)%3].solver.CleanUp(ch) // another replica, as the aggregated API may pick
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
	sim := cfsim.Start()
	t.Cleanup(sim.Close)
	zone := sim.AddZone("peers-gone.example").Name
	token := randomToken()
	sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	ns := namespace(t, "peers-gone")
	createSecret(t, ns, "cf", map[string]string{"api-token": token})
	config := map[string]any{"apiTokenSecretRef": map[string]string{"name": "cf", "key": "api-token"}}
	replicas := peeredCloudflare(t, 2, cloudflare.Options{BaseURL: sim.URL()})
	// Find the owner: the replica that serves a request for the zone sent
	// to the other one.
	ch := challenge(t, ns, "_acme-challenge.www."+zone+".", zone+".", acmeKey(), config)
	if err := replicas[0].solver.Present(ch); err != nil {
		t.Fatal(err)
	}
	owner, other := replicas[0], replicas[1]
	if replicas[0].logs.count("served by the replica that owns the zone") > 0 {
		owner, other = replicas[1], replicas[0]
	}
	owner.stop()
	time.Sleep(100 * time.Millisecond) // the listener closes
	ch.Action = whapi.ChallengeActionCleanUp
	if err := other.solver.CleanUp(ch); err != nil {
		t.Fatalf("CleanUp with the owner gone: %v", err)
	}
	if left := sim.AllRecords(); len(left) != 0 {
		t.Errorf("%d records left", len(left))
	}
	if other.logs.count("The replica that owns the zone did not answer; serving the request here") != 1 {
		t.Errorf("the replica did not say it served the request itself:\n%s", other.logs)
	}
}
