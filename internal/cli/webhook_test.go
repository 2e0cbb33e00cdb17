package cli

import (
	"crypto/x509"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cert-manager/cert-manager/pkg/acme/webhook"
	"github.com/cert-manager/cert-manager/pkg/acme/webhook/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/rest"

	"github.com/certbridge/certbridge/test/testutil"
)

// pendingCA is a CA provider before its informer synced: no bundle yet.
type pendingCA struct{ loaded bool }

func (p *pendingCA) Name() string {
	return "client-ca::kube-system::extension-apiserver-authentication::requestheader-client-ca-file"
}
func (p *pendingCA) AddListener(dynamiccertificates.Listener) {}
func (p *pendingCA) CurrentCABundleContent() []byte {
	if p.loaded {
		return []byte("bundle")
	}
	return nil
}
func (p *pendingCA) VerifyOptions() (x509.VerifyOptions, bool) {
	return x509.VerifyOptions{Roots: x509.NewCertPool()}, p.loaded
}

// The webhook must not report ready while it would answer the aggregator's
// requests as anonymous: the readiness check follows the request-header CA.
func TestReadyOnlyOnceRequestHeaderCALoaded(t *testing.T) {
	ca := &pendingCA{}
	check := caLoaded("request-header-client-ca", ca)
	if check.Name() != "request-header-client-ca" {
		t.Errorf("check named %q", check.Name())
	}
	req := httptest.NewRequest("GET", "/readyz", nil)
	err := check.Check(req)
	if err == nil || !strings.Contains(err.Error(), "requestheader-client-ca-file not loaded") {
		t.Fatalf("before the CA is loaded: %v, want not loaded", err)
	}
	ca.loaded = true
	if err := check.Check(req); err != nil {
		t.Fatalf("once loaded: %v", err)
	}
}

// The server `certbridge webhook` runs has the check: /readyz/<name> fails
// while the request-header CA is pending and passes once it is loaded.
func TestChallengeServerReadyzFollowsRequestHeaderCA(t *testing.T) {
	ca := &pendingCA{}
	cfg := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	cfg.LoopbackClientConfig = &rest.Config{}
	cfg.ExternalAddress = "127.0.0.1:6443"
	cfg.Authentication.RequestHeaderConfig = &authenticatorfactory.RequestHeaderConfig{CAContentProvider: ca}
	server, err := newChallengeServer(&apiserver.Config{GenericConfig: cfg, ExtraConfig: apiserver.ExtraConfig{
		SolverGroup: "acme.example.com", Solvers: []webhook.Solver{fakeSolver{"cloudflare"}, fakeSolver{"alidns"}}}})
	if err != nil {
		t.Fatal(err)
	}
	server.PrepareRun() // installs /readyz
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		server.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz/request-header-client-ca", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(); code != 500 || !strings.Contains(body, "not loaded yet") {
		t.Errorf("CA pending: %d %q, want 500 saying not loaded yet", code, body)
	}
	ca.loaded = true
	if code, body := get(); code != 200 {
		t.Errorf("CA loaded: %d %q, want 200", code, body)
	}
}

func TestPeerFlags_RefusedWithTheFlagToSet(t *testing.T) {
	dir := t.TempDir()
	ca, err := testutil.NewCA(dir, "webhook")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("webhook", "certbridge-webhook.cert-manager.svc")
	if err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("a-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	// ok is a complete set of flags, which each case breaks.
	ok := peerFlags{bindAddress: "127.0.0.1:0", address: "10.0.0.1:8444", static: []string{"10.0.0.2:8444"}, namespace: "n",
		certFile: cert, keyFile: key, caFile: ca.File, tokenFile: token, audience: "peers", serviceAccount: "w"}
	for _, tc := range []struct {
		name   string
		change func(f *peerFlags)
		want   string
	}{
		{"a Service without a listener", func(f *peerFlags) { *f = peerFlags{service: "certbridge-webhook"} }, "need --peer-bind-address"},
		{"no serving certificate", func(f *peerFlags) { f.certFile = "" }, "needs --tls-cert-file"},
		{"neither Service nor list", func(f *peerFlags) { f.static = nil }, "either --peer-service"},
		{"both Service and list", func(f *peerFlags) { f.service = "w" }, "not both"},
		{"no namespace", func(f *peerFlags) { f.namespace = "" }, "--peer-namespace"},
		{"no audience", func(f *peerFlags) { f.audience = "" }, "--peer-token-audience"},
		{"no ServiceAccount", func(f *peerFlags) { f.serviceAccount = "" }, "--peer-service-account"},
		{"no address of its own", func(f *peerFlags) { f.address = "" }, "$POD_IP"},
		{"a peer that is not host:port", func(f *peerFlags) { f.static = []string{"10.0.0.2"} }, `"10.0.0.2" is not host:port`},
		{"a certificate that does not load", func(f *peerFlags) { f.certFile = "/nonexistent/tls.crt" }, "peer certificate"},
		{"no token file", func(f *peerFlags) { f.tokenFile = filepath.Join(dir, "none") }, "peer token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("POD_IP", "")
			f := ok
			tc.change(&f)
			p, err := f.setUp()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, %v; want an error containing %q", p, err, tc.want)
			}
		})
	}
	if p, err := (&peerFlags{}).setUp(); p != nil || err != nil {
		t.Errorf("without --peer-bind-address: %v, %v; want peering off", p, err)
	}
	p, err := ok.setUp()
	if err != nil {
		t.Fatalf("the complete flags: %v", err)
	}
	// Not ready until the listener serves, which it does once the server
	// can review the peers' tokens.
	if err := p.ready().Check(httptest.NewRequest("GET", "/readyz", nil)); err == nil {
		t.Error("ready before the peer listener serves")
	}
}
