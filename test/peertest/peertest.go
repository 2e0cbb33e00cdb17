// Package peertest starts webhook replicas in one process that hand each
// zone's requests to its owner, as `certbridge webhook --peer-bind-address`
// does: over TLS on loopback, each presenting a token of the webhook's
// ServiceAccount that the others have a real kube-apiserver review. For
// the solver tests and make bench.
package peertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/certbridge/certbridge/internal/peers"
	"github.com/certbridge/certbridge/solver"
	"github.com/certbridge/certbridge/test/testutil"
)

// The replicas' identity, as the chart makes it: the webhook's
// ServiceAccount in its namespace, and the audience of its peer tokens.
const (
	Namespace      = "certbridge-peers"
	ServiceAccount = "certbridge-webhook"
	Audience       = "certbridge.io/peers/certbridge-peers/certbridge-webhook"
)

// DNSNames are the names of the replicas' serving certificate.
var DNSNames = []string{"certbridge-webhook.certbridge-peers.svc"}

// Replica is one replica: its solver and its peer listener.
type Replica struct {
	Solver *solver.Solver
	Addr   string
	// Stop closes the listener, as the replica's end would.
	Stop  context.CancelFunc
	serve peers.Solvers
}

// Options tune Start.
type Options struct {
	// Log receives replica i's peer listener's log lines; none by default.
	Log func(i int) logr.Logger
	// CA issues the replicas' certificates; a new one by default.
	CA *testutil.CA
}

// Start starts n replicas against the kube-apiserver of cfg (a client that
// may create namespaces, ServiceAccounts, their tokens and TokenReviews),
// their certificates from a CA written into dir; newSolver builds replica
// i's solver with the forwarder it is given. stop closes every listener.
func Start(dir string, cfg *rest.Config, n int, newSolver func(i int, f solver.Forwarder) *solver.Solver, opts Options) (replicas []*Replica, stop func(), err error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	admission, err := peers.NewAdmission(client.AuthenticationV1(), Audience, Namespace, ServiceAccount)
	if err != nil {
		return nil, nil, err
	}
	ca := opts.CA
	if ca == nil {
		if ca, err = testutil.NewCA(dir, "webhook"); err != nil {
			return nil, nil, err
		}
	}
	var cancels []context.CancelFunc
	stop = func() {
		for _, c := range cancels {
			c()
		}
	}
	ids := make([]*peers.Identity, n)
	tokens := make([]*peers.TokenFile, n)
	var addrs []string
	for i := range n {
		cert, key, err := ca.Issue(fmt.Sprintf("replica-%d", i), DNSNames...)
		if err != nil {
			stop()
			return nil, nil, err
		}
		if ids[i], err = peers.NewIdentity(cert, key, ca.File); err != nil {
			stop()
			return nil, nil, err
		}
		file := filepath.Join(dir, fmt.Sprintf("replica-%d.token", i))
		token, err := testutil.ServiceAccountToken(ctx, client, Namespace, ServiceAccount, Audience)
		if err == nil {
			err = os.WriteFile(file, []byte(token), 0o600)
		}
		if err != nil {
			stop()
			return nil, nil, err
		}
		if tokens[i], err = peers.NewTokenFile(file); err != nil {
			stop()
			return nil, nil, err
		}
		l, err := peers.Listen("127.0.0.1:0", ids[i])
		if err != nil {
			stop()
			return nil, nil, err
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		r := &Replica{Stop: cancel, Addr: l.Addr().String()}
		replicas = append(replicas, r)
		log := logr.Discard()
		if opts.Log != nil {
			log = opts.Log(i)
		}
		// The solver is built below, once every address is known; requests
		// come only after Start returns.
		l.Serve(ctx, peers.Handler(admission, func(name string) (peers.ServeFunc, error) { return r.serve(name) }, log))
		addrs = append(addrs, r.Addr)
	}
	for i, r := range replicas {
		r.Solver = newSolver(i, peers.NewForwarder(peers.NewRing(r.Addr, peers.Static(addrs)), ids[i], tokens[i]))
		r.serve = solver.ServePeers(r.Solver)
	}
	return replicas, stop, nil
}
