package solver

import (
	"context"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/peers"
)

// ServePeers finds, by name, the solver that serves the requests other
// replicas hand to this one (internal/peers.Handler).
func ServePeers(solvers ...*Solver) peers.Solvers {
	byName := map[string]*Solver{}
	for _, s := range solvers {
		byName[s.name] = s
	}
	return func(name string) (peers.ServeFunc, error) {
		s, ok := byName[name]
		if !ok {
			return nil, peers.ErrNoSuchSolver
		}
		if !s.Initialized() {
			// The peer listener may take requests before the server's
			// post-start hooks initialize the solvers: a replica just
			// restarted is sent its zones' requests at once.
			return nil, peers.ErrNotServing
		}
		return func(ctx context.Context, ch *whapi.ChallengeRequest) error { return s.ServeForPeer(ctx, ch) }, nil
	}
}
