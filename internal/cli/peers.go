package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/certbridge/certbridge/internal/peers"
	"github.com/certbridge/certbridge/solver"
)

// peerFlags say how the webhook's replicas find and reach each other
// (internal/peers). With no --peer-bind-address every replica serves what
// it is sent.
type peerFlags struct {
	bindAddress    string
	address        string
	static         []string
	service        string
	namespace      string
	caFile         string
	tokenFile      string
	audience       string
	serviceAccount string
	// The serving certificate's files (cert-manager's flags), which the
	// peers' TLS uses.
	certFile, keyFile string
}

// peerPortName is the Service port whose EndpointSlice ports peers dial.
const peerPortName = "peer"

// DefaultPeerTokenFile is where the chart mounts the projected token.
const DefaultPeerTokenFile = "/var/run/secrets/certbridge.io/peer/token"

func (f *peerFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.bindAddress, "peer-bind-address", "",
		"address of the listener that takes requests from the other replicas (the chart: :8444); empty: replicas do not hand requests to each other. Needs --tls-cert-file and --tls-private-key-file (the peers' TLS uses the serving certificate), --peer-token-audience and --peer-service-account")
	fs.StringVar(&f.address, "peer-address", "",
		"this replica's peer address (host:port) as the others dial it (default: $POD_IP with --peer-bind-address's port)")
	fs.StringSliceVar(&f.static, "peers", nil,
		"every replica's peer address (host:port), for runs outside Kubernetes; instead of --peer-service")
	fs.StringVar(&f.service, "peer-service", "",
		"the webhook's Service: its EndpointSlices' ready endpoints, on the port named \"peer\", are the replicas (the chart sets it)")
	fs.StringVar(&f.namespace, "peer-namespace", os.Getenv("POD_NAMESPACE"),
		"namespace of --peer-service and of --peer-service-account (default: $POD_NAMESPACE)")
	fs.StringVar(&f.caFile, "peer-ca-file", "",
		"CA that issued the replicas' serving certificate (the chart: the Secret's ca.crt); empty: the certificate itself")
	fs.StringVar(&f.tokenFile, "peer-token-file", DefaultPeerTokenFile,
		"the token this replica presents to its peers: a projected ServiceAccount token for --peer-token-audience (the chart mounts one), read again when it changes")
	fs.StringVar(&f.audience, "peer-token-audience", "",
		"the audience of the peers' tokens (the chart: certbridge.io/peers/<namespace>/<fullname>-webhook); a token for any other audience, kube-apiserver's included, is refused (401)")
	fs.StringVar(&f.serviceAccount, "peer-service-account", "",
		"the webhook's ServiceAccount, in --peer-namespace: the only identity the peer listener serves; any other is refused (403)")
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
	listener  *peers.Listener
	endpoints *peers.Endpoints
	flags     peerFlags
}

// setUp validates the flags, binds the listener and builds the forwarder;
// nil when peering is off.
func (f *peerFlags) setUp() (*peering, error) {
	if f.bindAddress == "" {
		if f.service != "" || len(f.static) > 0 {
			return nil, errors.New("--peer-service and --peers need --peer-bind-address")
		}
		return nil, nil
	}
	if f.certFile == "" || f.keyFile == "" {
		return nil, errors.New("--peer-bind-address needs --tls-cert-file and --tls-private-key-file: the replicas' connections use the serving certificate")
	}
	if (f.service == "") == (len(f.static) == 0) {
		return nil, errors.New("--peer-bind-address needs either --peer-service (in Kubernetes) or --peers (a fixed list), not both")
	}
	if f.namespace == "" {
		return nil, errors.New("--peer-bind-address needs --peer-namespace or $POD_NAMESPACE: the namespace of the webhook's Service and ServiceAccount")
	}
	if f.audience == "" || f.serviceAccount == "" {
		return nil, errors.New("--peer-bind-address needs --peer-token-audience and --peer-service-account: replicas admit each other by a token of the webhook's ServiceAccount for that audience")
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
	token, err := peers.NewTokenFile(f.tokenFile)
	if err != nil {
		return nil, err
	}
	listener, err := peers.Listen(f.bindAddress, id)
	if err != nil {
		return nil, err
	}
	p := &peering{listener: listener, flags: *f}
	var members peers.Members = peers.Static(f.static)
	if f.service != "" {
		p.endpoints = peers.NewEndpoints(f.namespace, f.service, peerPortName)
		members = p.endpoints
	}
	p.forwarder = peers.NewForwarder(peers.NewRing(self, members), id, token)
	return p, nil
}

// start serves the other replicas' requests with solvers, once the
// Kubernetes client exists to review their tokens, and follows the
// Service's endpoints.
func (p *peering) start(ctx context.Context, cfg *rest.Config, log logr.Logger, solvers ...*solver.Solver) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("peers: building Kubernetes client: %w", err)
	}
	admission, err := peers.NewAdmission(client.AuthenticationV1(), p.flags.audience, p.flags.namespace, p.flags.serviceAccount)
	if err != nil {
		return err
	}
	p.listener.Serve(ctx, peers.Handler(admission, solver.ServePeers(solvers...), log))
	log.Info("Taking requests from the other replicas", "address", p.listener.Addr().String(), "admitting", admission.User())
	if p.endpoints != nil {
		p.endpoints.Watch(ctx, client, log)
	}
	return nil
}

// ready is the readiness check of the peer listener: a replica its peers
// cannot hand requests to must not be one of the Service's endpoints.
func (p *peering) ready() healthz.HealthChecker {
	return healthz.NamedCheck("peer-listener", func(*http.Request) error { return p.listener.Ready() })
}

// forwarderOrNil keeps a nil *peering from becoming a non-nil interface.
func (p *peering) forwarderOrNil() solver.Forwarder {
	if p == nil {
		return nil
	}
	return p.forwarder
}
