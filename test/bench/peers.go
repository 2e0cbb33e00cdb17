package main

import (
	"context"
	"os"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/peers"
	"github.com/certbridge/certbridge/solver"
	"github.com/certbridge/certbridge/test/testutil"
)

// peered builds n replicas that hand each zone's requests to the replica
// that owns it, over mutual TLS on loopback, as `certbridge webhook
// --peer-bind-address` does: newSolver makes one replica's solver with the
// forwarder it is given. stop closes the listeners.
func peered(n int, newSolver func(solver.Forwarder) *solver.Solver) (replicas []*solver.Solver, stop func()) {
	dir, err := os.MkdirTemp("", "certbridge-bench-peers-")
	if err != nil {
		panic(err)
	}
	ca, err := testutil.NewCA(dir, "webhook")
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var ids []*peers.Identity
	var addrs []string
	var serve []*solver.Solver
	for i := range n {
		cert, key, err := ca.Issue("replica-"+string(rune('a'+i)), "certbridge-webhook.cert-manager.svc")
		if err != nil {
			panic(err)
		}
		id, err := peers.NewIdentity(cert, key, ca.File)
		if err != nil {
			panic(err)
		}
		ids = append(ids, id)
		addr, err := peers.Serve(ctx, "127.0.0.1:0", id, peers.Handler(func(ctx context.Context, name string, ch *whapi.ChallengeRequest) (bool, error) {
			s := serve[i]
			if s.Name() != name {
				return false, nil
			}
			return true, s.ServeForPeer(ctx, ch)
		}))
		if err != nil {
			panic(err)
		}
		addrs = append(addrs, addr.String())
	}
	for i := range n {
		s := newSolver(peers.NewForwarder(peers.NewRing(addrs[i], peers.Static(addrs)), ids[i]))
		serve = append(serve, s)
	}
	return serve, func() { cancel(); _ = os.RemoveAll(dir) }
}
