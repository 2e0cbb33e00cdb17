package cli

import (
	"crypto/x509"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
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
