package solver

import (
	"context"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/peers"
)

// ServePeers serves the requests other replicas hand to this one, by solver
// name (internal/peers.Handler).
func ServePeers(solvers ...*Solver) peers.ServeFunc {
	byName := map[string]*Solver{}
	for _, s := range solvers {
		byName[s.name] = s
	}
	return func(ctx context.Context, name string, ch *whapi.ChallengeRequest) (bool, error) {
		s, ok := byName[name]
		if !ok {
			return false, nil
		}
		if !s.Initialized() {
			// The peer listener starts before the server's post-start
			// hooks initialize the solvers: a replica just restarted is
			// sent its zones' requests at once.
			return true, peers.ErrNotServing
		}
		return true, s.ServeForPeer(ctx, ch)
	}
}
