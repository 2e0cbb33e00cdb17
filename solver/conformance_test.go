package solver_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	acmetest "github.com/cert-manager/cert-manager/test/acme"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/solver"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
)

// The credentials in testdata/*/secret.yaml.
const (
	conformanceToken    = "sim0conformance0token0for0certbridge0000"
	conformanceAKID     = "LTAI5tConformanceKey0001"
	conformanceAKSecret = "conformanceSecretForTheSimulator"
)

// TestConformance runs cert-manager's DNS01 conformance suite in strict mode
// against each solver, with a real kube-apiserver and etcd (the suite starts
// them), the simulator behind the real SDK, and real DNS queries to the
// simulator's DNS server on loopback.
func TestConformance(t *testing.T) {
	t.Run("cloudflare", func(t *testing.T) {
		sim := cfsim.Start()
		t.Cleanup(sim.Close)
		sim.AddZone("example.com")
		sim.AddToken(cfsim.Token{Value: conformanceToken, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
		dnsSrv, err := dnsserver.Start(sim)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(dnsSrv.Close)

		s := solver.NewCloudflare(solver.Options{Log: testr.New(t)}, cloudflare.Options{BaseURL: sim.URL()})
		runConformance(t, s,
			acmetest.SetResolvedZone("example.com."),
			acmetest.SetResolvedFQDN("cert-manager-dns01-tests.example.com."),
			acmetest.SetDNSServer(dnsSrv.Addr),
			acmetest.SetUseAuthoritative(false),
			acmetest.SetManifestPath("../testdata/cloudflare"),
		)
		if left := sim.Records("cert-manager-dns01-tests.example.com"); len(left) != 0 {
			t.Errorf("records left behind after the suite: %+v", left)
		}
	})

	t.Run("alidns", func(t *testing.T) {
		sim := alisim.Start()
		t.Cleanup(sim.Close)
		sim.AddDomain("example.com", alisim.FreeEdition)
		sim.AddAccessKey(alisim.AccessKey{ID: conformanceAKID, Secret: conformanceAKSecret, Policy: alisim.AllowAll})
		dnsSrv, err := dnsserver.Start(sim)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(dnsSrv.Close)

		s := solver.NewAliDNS(solver.Options{Log: testr.New(t)}, alibaba.Options{DNS: endpoint(t, "http://"+sim.Endpoint())})
		runConformance(t, s,
			acmetest.SetResolvedZone("example.com."),
			acmetest.SetResolvedFQDN("cert-manager-dns01-tests.example.com."),
			acmetest.SetDNSServer(dnsSrv.Addr),
			acmetest.SetUseAuthoritative(false),
			acmetest.SetManifestPath("../testdata/alidns"),
		)
		if left := sim.Records("cert-manager-dns01-tests.example.com"); len(left) != 0 {
			t.Errorf("records left behind after the suite: %+v", left)
		}
	})

	// Live modes: the same suite against the real provider and public DNS,
	// only when asked for explicitly (make conformance-live).
	t.Run("cloudflare-live", func(t *testing.T) {
		token, zone := os.Getenv("CLOUDFLARE_API_TOKEN"), os.Getenv("TEST_ZONE_NAME")
		if os.Getenv("CERTBRIDGE_CONFORMANCE_LIVE") != "1" || token == "" || zone == "" {
			t.Skip("live conformance runs with `make conformance-live` and CLOUDFLARE_API_TOKEN, TEST_ZONE_NAME set")
		}
		dir := t.TempDir()
		secret := map[string]any{
			"apiVersion": "v1", "kind": "Secret",
			"metadata":   map[string]any{"name": "cloudflare-api-token"},
			"stringData": map[string]any{"api-token": token},
		}
		writeJSON(t, filepath.Join(dir, "secret.json"), secret)
		writeJSON(t, filepath.Join(dir, "config.json"), map[string]any{
			"apiTokenSecretRef": map[string]any{"name": "cloudflare-api-token", "key": "api-token"},
		})
		zone = trimDot(zone)
		s := solver.NewCloudflare(solver.Options{Log: testr.New(t)}, cloudflare.Options{})
		runConformance(t, s,
			acmetest.SetResolvedZone(zone+"."),
			acmetest.SetResolvedFQDN("cert-manager-dns01-tests."+zone+"."),
			acmetest.SetDNSServer("1.1.1.1:53"),
			acmetest.SetUseAuthoritative(false),
			acmetest.SetManifestPath(dir),
			acmetest.SetPollInterval(5*time.Second),
			acmetest.SetPropagationLimit(5*time.Minute),
		)
	})
}

func TestConformanceLiveAliDNS(t *testing.T) {
	id, secret, zone := os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"), os.Getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET"), os.Getenv("TEST_ZONE_NAME")
	if os.Getenv("CERTBRIDGE_CONFORMANCE_LIVE") != "1" || id == "" || secret == "" || zone == "" {
		t.Skip("live conformance runs with `make conformance-live` and ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET, TEST_ZONE_NAME set")
	}
	dir := t.TempDir()
	writeJSON(t, filepath.Join(dir, "secret.json"), map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata":   map[string]any{"name": "alidns-access-key"},
		"stringData": map[string]any{"access-key-id": id, "access-key-secret": secret},
	})
	writeJSON(t, filepath.Join(dir, "config.json"), map[string]any{
		"accessKeyIdSecretRef":     map[string]any{"name": "alidns-access-key", "key": "access-key-id"},
		"accessKeySecretSecretRef": map[string]any{"name": "alidns-access-key", "key": "access-key-secret"},
	})
	zone = trimDot(zone)
	s := solver.NewAliDNS(solver.Options{Log: testr.New(t)}, alibaba.Options{})
	runConformance(t, s,
		acmetest.SetResolvedZone(zone+"."),
		acmetest.SetResolvedFQDN("cert-manager-dns01-tests."+zone+"."),
		acmetest.SetDNSServer("223.5.5.5:53"),
		acmetest.SetUseAuthoritative(false),
		acmetest.SetManifestPath(dir),
		acmetest.SetPollInterval(5*time.Second),
		acmetest.SetPropagationLimit(10*time.Minute),
	)
}

// runConformance runs Basic and Extended, each with its own control plane.
func runConformance(t *testing.T, s *solver.Solver, opts ...acmetest.Option) {
	t.Helper()
	opts = append([]acmetest.Option{
		acmetest.SetStrict(true),
		acmetest.SetPollInterval(100 * time.Millisecond),
		acmetest.SetPropagationLimit(30 * time.Second),
	}, opts...)
	f := acmetest.NewFixture(s, opts...)
	f.RunBasic(t)
	f.RunExtended(t)
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func trimDot(s string) string {
	if len(s) > 0 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}
