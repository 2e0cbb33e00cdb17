package solver_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/alibaba"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
)

var (
	envOnce   sync.Once
	sharedEnv *envtest.Environment
	envErr    error
)

func TestMain(m *testing.M) {
	// The Alibaba SDK's STS calls are hard-wired to https through a clone of
	// http.DefaultTransport: trust the simulator's (httptest's) certificate.
	sim := alisim.Start()
	http.DefaultTransport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: sim.STSCertPool()}
	sim.Close()
	code := m.Run()
	if sharedEnv != nil {
		_ = sharedEnv.Stop()
	}
	os.Exit(code)
}

// kubeEnv is one real kube-apiserver and etcd shared by the package's tests.
func kubeEnv(t *testing.T) *envtest.Environment {
	t.Helper()
	envOnce.Do(func() {
		sharedEnv = &envtest.Environment{}
		_, envErr = sharedEnv.Start()
	})
	if envErr != nil {
		t.Fatalf("starting kube-apiserver and etcd (run tests with `make test`): %v", envErr)
	}
	return sharedEnv
}

func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(kubeEnv(t).Config)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

var nsSeq atomic.Int64

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, nsSeq.Add(1))
	_, err := adminClient(t).CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func createSecret(t *testing.T, ns, name string, data map[string]string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	if _, err := adminClient(t).CoreV1().Secrets(ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// countingConfig returns a copy of cfg that counts the requests it sends.
func countingConfig(cfg *rest.Config, n *atomic.Int64) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			n.Add(1)
			return rt.RoundTrip(r)
		})
	})
	return c
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// logBuffer collects everything the solver logs, at every verbosity.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.b.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10})
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) count(substr string) int { return strings.Count(l.String(), substr) }

var alnum = []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")

// randomToken is a fresh 40-character API token, unique to the test, so a leak
// of it anywhere can be searched for.
func randomToken() string { return randomFrom(alnum, 40) }

// randomGlobalKey is a fresh 37-character Global API Key.
func randomGlobalKey() string { return randomFrom([]byte("0123456789abcdef"), 37) }

func randomFrom(alphabet []byte, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// assertNoSecret fails when the secret appears in the error or the logs.
func assertNoSecret(t *testing.T, secret string, err error, logs *logBuffer) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("the error contains the secret value: %v", err)
	}
	if logs != nil && strings.Contains(logs.String(), secret) {
		t.Errorf("the logs contain the secret value:\n%s", logs)
	}
}

// assertMessage fails unless err's text holds every wanted fragment.
func assertMessage(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error holding %q, got none", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

var uidSeq atomic.Int64

// challenge builds the request cert-manager sends for a DNS01 challenge.
func challenge(t *testing.T, ns, fqdn, zone, key string, config any) *whapi.ChallengeRequest {
	t.Helper()
	raw, ok := config.(string)
	if !ok {
		b, err := json.Marshal(config)
		if err != nil {
			t.Fatal(err)
		}
		raw = string(b)
	}
	return &whapi.ChallengeRequest{
		UID:               types.UID(fmt.Sprintf("uid-%d", uidSeq.Add(1))),
		Action:            whapi.ChallengeActionPresent,
		Type:              "dns-01",
		DNSName:           strings.TrimPrefix(strings.TrimSuffix(fqdn, "."), "_acme-challenge."),
		Key:               key,
		ResourceNamespace: ns,
		ResolvedFQDN:      fqdn,
		ResolvedZone:      zone,
		Config:            &apiextensionsv1.JSON{Raw: []byte(raw)},
	}
}

// endpoint parses an endpoint override as the webhook's flags do.
func endpoint(t *testing.T, v string) alibaba.Endpoint {
	t.Helper()
	e, err := alibaba.ParseEndpoint("--endpoint", v)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// acmeKey is a fresh value of the shape ACME puts in TXT records: 43
// base64url characters, case-sensitive.
func acmeKey() string {
	return randomFrom([]byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43)
}

// renewAll presents and cleans up n challenges at once, as a mass renewal
// does, and returns every failure.
func renewAll(n int, present, cleanUp func(key string) error) []error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			key := acmeKey()
			if err := present(key); err != nil {
				errs <- err
				return
			}
			errs <- cleanUp(key)
		})
	}
	wg.Wait()
	close(errs)
	var out []error
	for err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}
