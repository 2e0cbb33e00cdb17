package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/certbridge/certbridge/internal/peers"
	"github.com/certbridge/certbridge/solver"
)

// peerFlags say how the webhook's replicas find and reach each other
// (internal/peers). With no --peer-bind-address every replica serves what
// it is sent.
type peerFlags struct {
	bindAddress string
	address     string
	static      []string
	service     string
	namespace   string
	caFile      string
	// The serving certificate's files (cert-manager's flags), which peers
	// know each other by.
	certFile, keyFile string
}

// peerPortName is the Service port whose EndpointSlice ports peers dial.
const peerPortName = "peer"

func (f *peerFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.bindAddress, "peer-bind-address", "",
		"address of the listener that takes requests from the other replicas (mutual TLS with the serving certificate); empty: replicas do not hand requests to each other")
	fs.StringVar(&f.address, "peer-address", "",
		"this replica's peer address (host:port) as the others dial it (default: $POD_IP with --peer-bind-address's port)")
	fs.StringSliceVar(&f.static, "peers", nil,
		"every replica's peer address (host:port), for runs outside Kubernetes; instead of --peer-service")
	fs.StringVar(&f.service, "peer-service", "",
		"the webhook's Service: its EndpointSlices' ready endpoints, on the port named \"peer\", are the replicas")
	fs.StringVar(&f.namespace, "peer-namespace", os.Getenv("POD_NAMESPACE"),
		"namespace of --peer-service (default: $POD_NAMESPACE)")
	fs.StringVar(&f.caFile, "peer-ca-file", "",
		"CA that issued the replicas' serving certificate (the Secret's ca.crt); empty: the certificate itself")
}

// addServing reads cert-manager's serving certificate flags in the
// pre-parse only; the server's own parse reads them again.
func (f *peerFlags) addServing(fs *pflag.FlagSet) {
	fs.StringVar(&f.certFile, "tls-cert-file", "", "")
	fs.StringVar(&f.keyFile, "tls-private-key-file", "", "")
}

// peering is the replicas' forwarding, once set up.
type peering struct {
	forwarder *peers.Forwarder
	identity  *peers.Identity
	endpoints *peers.Endpoints
	bind      string
}

// setUp validates the flags and builds the forwarder; nil when peering is
// off.
func (f *peerFlags) setUp() (*peering, error) {
	if f.bindAddress == "" {
		if f.service != "" || len(f.static) > 0 {
			return nil, errors.New("--peer-service and --peers need --peer-bind-address")
		}
		return nil, nil
	}
	if f.certFile == "" || f.keyFile == "" {
		return nil, errors.New("--peer-bind-address needs --tls-cert-file and --tls-private-key-file: replicas know each other by the serving certificate")
	}
	if (f.service == "") == (len(f.static) == 0) {
		return nil, errors.New("--peer-bind-address needs either --peer-service (in Kubernetes) or --peers (a fixed list), not both")
	}
	if f.service != "" && f.namespace == "" {
		return nil, errors.New("--peer-service needs --peer-namespace or $POD_NAMESPACE")
	}
	self := f.address
	if self == "" {
		_, port, err := net.SplitHostPort(f.bindAddress)
		if err != nil {
			return nil, fmt.Errorf("--peer-bind-address %q: %w", f.bindAddress, err)
		}
		ip := os.Getenv("POD_IP")
		if ip == "" {
			return nil, errors.New("--peer-address is not set and neither is $POD_IP: a replica must know the address the others dial")
		}
		self = net.JoinHostPort(ip, port)
	}
	for _, a := range append([]string{self}, f.static...) {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("peer address %q is not host:port", a)
		}
	}
	id, err := peers.NewIdentity(f.certFile, f.keyFile, f.caFile)
	if err != nil {
		return nil, err
	}
	p := &peering{identity: id, bind: f.bindAddress}
	var members peers.Members = peers.Static(f.static)
	if f.service != "" {
		p.endpoints = peers.NewEndpoints(f.namespace, f.service, peerPortName)
		members = p.endpoints
	}
	p.forwarder = peers.NewForwarder(peers.NewRing(self, members), id)
	return p, nil
}

// start listens for the other replicas' requests, served by solvers.
func (p *peering) start(ctx context.Context, log logr.Logger, solvers ...*solver.Solver) error {
	addr, err := peers.Serve(ctx, p.bind, p.identity, peers.Handler(solver.ServePeers(solvers...)))
	if err != nil {
		return err
	}
	log.Info("Taking requests from the other replicas", "address", addr.String())
	return nil
}

// watch follows the Service's endpoints, once the Kubernetes client exists.
func (p *peering) watch(ctx context.Context, cfg *rest.Config, log logr.Logger) error {
	if p.endpoints == nil {
		return nil
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("peers: building Kubernetes client: %w", err)
	}
	p.endpoints.Watch(ctx, client, log)
	return nil
}

// forwarderOrNil keeps a nil *peering from becoming a non-nil interface.
func (p *peering) forwarderOrNil() solver.Forwarder {
	if p == nil {
		return nil
	}
	return p.forwarder
}
