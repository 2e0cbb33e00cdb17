package main

import (
	"os"

	"k8s.io/client-go/rest"

	"github.com/certbridge/certbridge/solver"
	"github.com/certbridge/certbridge/test/peertest"
)

// peered builds n replicas that hand each zone's requests to the replica
// that owns it (test/peertest), their tokens reviewed by the kube-apiserver
// of cfg: newSolver makes one replica's solver with
// the forwarder it is given. stop closes the listeners.
func peered(cfg *rest.Config, n int, newSolver func(solver.Forwarder) *solver.Solver) (replicas []*solver.Solver, stop func()) {
	dir, err := os.MkdirTemp("", "certbridge-bench-peers-")
	if err != nil {
		panic(err)
	}
	rs, stopPeers, err := peertest.Start(dir, cfg, n, func(_ int, f solver.Forwarder) *solver.Solver { return newSolver(f) }, peertest.Options{})
	if err != nil {
		panic(err)
	}
	for _, r := range rs {
		replicas = append(replicas, r.Solver)
	}
	return replicas, func() { stopPeers(); _ = os.RemoveAll(dir) }
}
