package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/input"
)

// path is where a replica takes requests from its peers, followed by the
// solver's name.
const path = "/certbridge.peer/v1/"

// maxBody bounds a forwarded request. cert-manager's are a few kilobytes; a
// bigger one is served where it arrived.
const maxBody = 1 << 20

// answer is a peer's reply: the solver's error message, empty on success.
type answer struct {
	Error string `json:"error"`
}

// Forwarder hands requests to the replicas that own them.
type Forwarder struct {
	ring   *Ring
	client *http.Client
}

// dialTimeout is how long a replica tries to reach a peer before serving
// the request itself: peers are in one cluster, and a pod that is gone does
// not answer at all.
const dialTimeout = 2 * time.Second

// NewForwarder forwards over TLS with id to the owners ring names.
func NewForwarder(ring *Ring, id *Identity) *Forwarder {
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     id.ClientConfig(),
		TLSHandshakeTimeout: dialTimeout,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Forwarder{ring: ring, client: &http.Client{Transport: transport}}
}

// Owner returns the replica that owns key, or "" when it is this one.
func (f *Forwarder) Owner(key string) string {
	if o := f.ring.Owner(key); o != f.ring.Self() {
		return o
	}
	return ""
}

// RemoteError is the owner's error message for a request it served.
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return e.Message }

// Forward hands ch to owner for solver. served reports whether the owner
// answered; err is then its outcome (a *RemoteError), and otherwise why it
// could not be reached.
func (f *Forwarder) Forward(ctx context.Context, owner, solver string, ch *whapi.ChallengeRequest) (served bool, err error) {
	body, err := json.Marshal(ch)
	if err != nil {
		return false, err
	}
	if len(body) > maxBody {
		return false, fmt.Errorf("the request is %d bytes, more than a peer takes", len(body))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+owner+path+solver, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, fmt.Errorf("peer answered %s: %s", resp.Status, input.Quote(strings.TrimSpace(string(msg))))
	}
	var a answer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&a); err != nil {
		return false, fmt.Errorf("peer's answer does not decode: %w", err)
	}
	if a.Error != "" {
		return true, &RemoteError{Message: a.Error}
	}
	return true, nil
}

// ErrNotServing is a ServeFunc's error for a replica that cannot serve
// requests yet (its solvers are not initialized): the peer is answered 503
// and serves the request itself.
var ErrNotServing = errors.New("this replica does not serve requests yet")

// ServeFunc serves a request a peer forwarded, as the solver named solver;
// found is false when no solver has that name.
// ctx ends when the peer stops waiting for the answer.
type ServeFunc func(ctx context.Context, solver string, ch *whapi.ChallengeRequest) (found bool, err error)

// Handler answers peers' requests with serve.
func Handler(serve ServeFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		solver, ok := strings.CutPrefix(r.URL.Path, path)
		if !ok || r.Method != http.MethodPost {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		var ch whapi.ChallengeRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ch); err != nil {
			http.Error(w, "the request does not decode as a challenge request", http.StatusBadRequest)
			return
		}
		found, err := serve(r.Context(), solver, &ch)
		if !found {
			http.Error(w, "no solver named "+input.Quote(solver), http.StatusNotFound)
			return
		}
		if errors.Is(err, ErrNotServing) {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		var a answer
		if err != nil {
			a.Error = err.Error()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(a)
	})
}

// Serve takes peers' requests on address with id's TLS until ctx ends.
func Serve(ctx context.Context, address string, id *Identity, h http.Handler) (net.Addr, error) {
	l, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("peer listener: %w", err)
	}
	srv := &http.Server{Handler: h, TLSConfig: id.ServerConfig(), ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes: 16 << 10, IdleTimeout: 2 * time.Minute}
	go func() { _ = srv.ServeTLS(l, "", "") }() // returns when ctx closes it
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return l.Addr(), nil
}
