// Package peertest starts webhook replicas in one process that hand each
// zone's requests to its owner, as `certbridge webhook --peer-bind-address`
// does, over mutual TLS on loopback: for the solver tests and make bench.
package peertest

import (
	"context"
	"fmt"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/peers"
	"github.com/certbridge/certbridge/solver"
	"github.com/certbridge/certbridge/test/testutil"
)

// Replica is one replica: its solver and its peer listener.
type Replica struct {
	Solver *solver.Solver
	Addr   string
	// Stop closes the listener, as the replica's end would.
	Stop  context.CancelFunc
	serve peers.ServeFunc
}

// Start starts n replicas, their certificates from a CA written into dir;
// newSolver builds replica i's solver with the forwarder it is given. stop
// closes every listener.
func Start(dir string, n int, newSolver func(i int, f solver.Forwarder) *solver.Solver) (replicas []*Replica, stop func(), err error) {
	ca, err := testutil.NewCA(dir, "webhook")
	if err != nil {
		return nil, nil, err
	}
	var cancels []context.CancelFunc
	stop = func() {
		for _, c := range cancels {
			c()
		}
	}
	ids := make([]*peers.Identity, n)
	var addrs []string
	for i := range n {
		cert, key, err := ca.Issue(fmt.Sprintf("replica-%d", i), "certbridge-webhook.cert-manager.svc")
		if err != nil {
			stop()
			return nil, nil, err
		}
		if ids[i], err = peers.NewIdentity(cert, key, ca.File); err != nil {
			stop()
			return nil, nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		r := &Replica{Stop: cancel}
		replicas = append(replicas, r)
		// The solver is built below, once every address is known; requests
		// come only after Start returns.
		addr, err := peers.Serve(ctx, "127.0.0.1:0", ids[i], peers.Handler(func(ctx context.Context, name string, ch *whapi.ChallengeRequest) (bool, error) {
			return r.serve(ctx, name, ch)
		}))
		if err != nil {
			stop()
			return nil, nil, err
		}
		r.Addr = addr.String()
		addrs = append(addrs, r.Addr)
	}
	for i, r := range replicas {
		r.Solver = newSolver(i, peers.NewForwarder(peers.NewRing(r.Addr, peers.Static(addrs)), ids[i]))
		r.serve = solver.ServePeers(r.Solver)
	}
	return replicas, stop, nil
}
