package solver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/certbridge/certbridge/internal/cloudflare"
)

// Every Present and CleanUp reads its Secret, and cert-manager keeps up to
// 60 challenges in flight: a wave of Secret reads must not queue behind
// client-go's default client-side limit (5 per second, burst 10).
func TestSecretReadsNotThrottledClientSide(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"creds","namespace":"ns"},"data":{"token":"dA=="}}`))
	}))
	defer srv.Close()
	s := NewCloudflare(Options{Log: logr.Discard()}, cloudflare.Options{BaseURL: srv.URL})
	if err := s.Initialize(&rest.Config{Host: srv.URL}, nil); err != nil {
		t.Fatal(err)
	}
	client := s.client.Load()
	const reads = 60
	began := time.Now()
	var wg sync.WaitGroup
	for range reads {
		wg.Go(func() {
			if _, err := client.CoreV1().Secrets("ns").Get(context.Background(), "creds", metav1.GetOptions{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("%d concurrent Secret reads took %s: throttled in the client", reads, took.Round(time.Millisecond))
	}
}

// A rate the kubeconfig sets is the operator's: kept.
func TestExplicitClientRateKept(t *testing.T) {
	cfg := kubeClientConfig(&rest.Config{QPS: 3, Burst: 4})
	if cfg.QPS != 3 || cfg.Burst != 4 {
		t.Errorf("QPS %v burst %d, want 3 and 4", cfg.QPS, cfg.Burst)
	}
}
