package solver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/dnsname"
	"github.com/certbridge/certbridge/internal/dnstxt"
	"github.com/certbridge/certbridge/internal/input"
	"github.com/certbridge/certbridge/internal/ratelimit"
	"github.com/certbridge/certbridge/solver"
	"github.com/certbridge/certbridge/test/fuzzseed"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// fakeSecrets is a kube-apiserver that serves only GET of Secrets, from
// memory, so a fuzz target can drive a whole solver in-process: starting a
// real one per fuzz worker would cost more than the inputs it runs.
type fakeSecrets struct {
	secrets map[string]map[string][]byte // namespace/name → data
	calls   atomic.Int64
}

func (k *fakeSecrets) RoundTrip(r *http.Request) (*http.Response, error) {
	k.calls.Add(1)
	rec := httptest.NewRecorder()
	parts := strings.Split(r.URL.Path, "/") // "", api, v1, namespaces, ns, secrets, name
	if len(parts) != 7 || parts[3] != "namespaces" || parts[5] != "secrets" || r.Method != http.MethodGet {
		rec.WriteHeader(http.StatusMethodNotAllowed)
		return rec.Result(), nil
	}
	ns, name := parts[4], parts[6]
	rec.Header().Set("Content-Type", "application/json")
	data, ok := k.secrets[ns+"/"+name]
	if !ok {
		rec.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(rec).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
			"message": fmt.Sprintf("secrets %q not found", name), "details": map[string]any{"name": name, "kind": "secrets"}})
		return rec.Result(), nil
	}
	_ = json.NewEncoder(rec).Encode(map[string]any{"kind": "Secret", "apiVersion": "v1",
		"metadata": map[string]any{"name": name, "namespace": ns, "resourceVersion": "1"}, "data": data})
	return rec.Result(), nil
}

// refused is validateRequest's rule, restated: what cert-manager can never
// have sent. Such a request must fail before a Secret or an API is touched.
func refused(ch *whapi.ChallengeRequest) bool {
	if ch.ResolvedFQDN == "" || ch.Key == "" || ch.ResourceNamespace == "" {
		return true
	}
	for _, v := range []string{ch.ResolvedFQDN, ch.ResolvedZone, ch.Key} {
		if strings.TrimSpace(v) != v {
			return true
		}
	}
	_, err := dnsname.Normalize(ch.ResolvedFQDN)
	return err != nil || len(ch.Key) > 255 || !utf8.ValidString(ch.Key) || len(validation.IsDNS1123Label(ch.ResourceNamespace)) > 0
}

// maxRefusalLen bounds the answer to a refused request: our own text, the
// name quoted cut by internal/input (at most about 1 KB) and Normalize's
// own bounded reason.
const maxRefusalLen = 2000

// Any ChallengeRequest, through the cloudflare solver against the simulator
// and a Secret served in-process: Present and CleanUp never panic (the
// solver recovers, so a recovered panic's message fails the target); a
// request validateRequest refuses makes no Kubernetes or Cloudflare call
// and says so in bounded words; one it accepts writes the key as the TXT
// value at the normalised name, and CleanUp removes exactly that record.
func FuzzChallengeRequest(f *testing.F) {
	for _, s := range [][4]string{
		{"_acme-challenge.example.com.", "example.com.", "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0", "cf"},
		{"_ACME-Challenge.WWW.Example.Com", "example.com.", "key", "cf"},
		{"_acme-challenge.bücher.example.com.", "example.com.", "key", "cf"},
		{"_acme-challenge.example.com..", "example.com.", "key", "cf"},
		{" _acme-challenge.example.com.", "example.com.", "key", "cf"},
		{"_acme-challenge.example.com.", "example.com. ", "key", "cf"},
		{"_acme-challenge.example.com.", "", "key ", "cf"},
		{"_acme-challenge.example.com.", "example.com.", "", "cf"},
		{"_acme-challenge.example.com.", "example.com.", "key", ""},
		{"_acme-challenge.example.com.", "example.com.", "key", "other"},
		{"_acme-challenge.example.net.", "example.net.", "key", "cf"},
		{"", "", "", ""},
		{".", ".", "k", "cf"},
		{"_acme-challenge.xn--é.example.com", "example.com", "k", "cf"},
		{"_acme-challenge.example.com", "example.com", `a "quoted" \ key`, "cf"},
		{"_acme-challenge.example.com", "example.com", strings.Repeat("k", 300), "cf"},
		{"_acme-challenge.example.com.", "example.com.", "key", "../kube-system"},
		{"_acme-challenge.example.com.", "example.com.", "key", strings.Repeat("n", 64)},
		{"_acme-challenge.example.com.", "example.com.", strings.Repeat("k", 255), "cf"},
		{"_acme-challenge.example.com.", "example.com.", strings.Repeat("k", 256), "cf"},
		{"_acme-challenge." + strings.Repeat("a", 64) + ".example.com.", "example.com.", "key", "cf"},
	} {
		fuzzseed.Add(f, s[0], s[1], s[2], s[3])
	}
	sim := cfsim.Start()
	f.Cleanup(sim.Close)
	sim.AddZone("example.com")
	token := randomToken()
	sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	kube := &fakeSecrets{secrets: map[string]map[string][]byte{"cf/cf-token": {"api-token": []byte(token)}}}
	logs := &logBuffer{}
	// No client-side budget and no retries: the simulator injects no faults,
	// and a budget would make the target wait.
	s := solver.NewCloudflare(solver.Options{Log: logs.logger(), Timeout: 10 * time.Second},
		cloudflare.Options{BaseURL: sim.URL(), MaxRetries: -1, Limit: ratelimit.Limit{Limit: -1}})
	// client-go holds a client to 5 requests a second unless told otherwise.
	if err := s.Initialize(&rest.Config{Host: "http://kube-apiserver.invalid", Transport: kube, QPS: 1e6, Burst: 1e6}, nil); err != nil {
		f.Fatal(err)
	}
	config := &apiextensionsv1.JSON{Raw: []byte(`{"apiTokenSecretRef": {"name": "cf-token", "key": "api-token"}}`)}

	// A worker runs one input at a time, so the counters read around a
	// call are that call's.
	f.Fuzz(func(t *testing.T, fqdn, zone, key, namespace string) {
		ch := &whapi.ChallengeRequest{Action: whapi.ChallengeActionPresent, Type: "dns-01", ResolvedFQDN: fqdn, ResolvedZone: zone,
			Key: key, ResourceNamespace: namespace, DNSName: strings.TrimPrefix(fqdn, "_acme-challenge."), Config: config}
		// A failed input may have left its record; the next one starts clean,
		// or the fuzzer would blame (and minimise) the wrong input.
		for _, r := range sim.AllRecords() {
			deleteRecord(t, sim.URL(), token, r)
		}
		sim.ResetCalls()
		kubeBefore := kube.calls.Load()
		logs.take()
		err := s.Present(ch)
		if strings.Contains(logs.take(), "Solver panicked") {
			t.Fatalf("Present panicked on %+v: %v", ch, err)
		}
		if refused(ch) {
			if err == nil || !strings.Contains(err.Error(), "challenge request") {
				t.Fatalf("a request validateRequest must refuse was not: %v", err)
			}
			if n, k := sim.TotalCalls(), kube.calls.Load()-kubeBefore; n != 0 || k != 0 {
				t.Fatalf("a refused request made %d Cloudflare and %d Kubernetes calls", n, k)
			}
			if len(err.Error()) > maxRefusalLen {
				t.Fatalf("a %d-byte refusal: %v", len(err.Error()), err)
			}
			return
		}
		if err != nil && strings.Contains(err.Error(), "malformed challenge request") {
			t.Fatalf("a well-formed request was refused: %v", err)
		}
		name, _ := dnsname.Normalize(fqdn)
		if err == nil {
			var values []string
			for _, r := range sim.Records(name) {
				values = append(values, dnstxt.Value(r.Content))
			}
			if len(values) != 1 || values[0] != key {
				t.Fatalf("Present of %s at %q (normalised %q) left %q", input.Quote(key), fqdn, name, values)
			}
		}
		ch.Action = whapi.ChallengeActionCleanUp
		cerr := s.CleanUp(ch)
		if strings.Contains(logs.take(), "Solver panicked") {
			t.Fatalf("CleanUp panicked on %+v: %v", ch, cerr)
		}
		if err == nil && cerr != nil {
			t.Fatalf("CleanUp after a successful Present: %v", cerr)
		}
		if left := sim.AllRecords(); len(left) != 0 {
			t.Fatalf("CleanUp left %+v", left)
		}
	})
}

// take returns what was logged since the last take, and forgets it, so a
// fuzz target's logs do not grow with its inputs.
func (l *logBuffer) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	l.b.Reset()
	return s
}

// deleteRecord removes a record through the simulator's API.
func deleteRecord(t *testing.T, baseURL, token string, r cfsim.Record) {
	req, err := http.NewRequest(http.MethodDelete, baseURL+"/zones/"+r.ZoneID+"/dns_records/"+r.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("deleting a left-over record: %s", res.Status)
	}
}
