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
	"sync"
	"time"

	"github.com/go-logr/logr"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/input"
)

// path is where a replica takes requests from its peers, followed by the
// solver's name.
const path = "/certbridge.peer/v1/"

// maxBody bounds a forwarded request. cert-manager's are a few kilobytes; a
// bigger one is served where it arrived.
const maxBody = 1 << 20

// timeoutHeader carries how long the sender waits for the owner's answer,
// so that the owner ends its work in time for the answer to arrive.
const timeoutHeader = "Certbridge-Timeout"

// answerMargin is the part of the sender's deadline left for the owner's
// answer to come back.
const answerMargin = time.Second

// answer is a peer's reply: the solver's error message, empty on success.
type answer struct {
	Error string `json:"error"`
}

// Forwarder hands requests to the replicas that own them.
type Forwarder struct {
	ring   *Ring
	token  *TokenFile
	client *http.Client
}

// dialTimeout is how long a replica tries to reach a peer before serving
// the request itself: peers are in one cluster, and a pod that is gone does
// not answer at all.
const dialTimeout = 2 * time.Second

// NewForwarder forwards over TLS with id to the owners ring names,
// presenting token.
func NewForwarder(ring *Ring, id *Identity, token *TokenFile) *Forwarder {
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     id.ClientConfig(),
		TLSHandshakeTimeout: dialTimeout,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Forwarder{ring: ring, token: token, client: &http.Client{Transport: transport}}
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

// Forward hands ch to owner for solver, until ctx's deadline. The hand-off
// (connecting, and the owner taking the request) must be done within
// handoff, or the request is not served: a slow or hung owner costs the
// sender no more than that. served reports whether the owner answered; err
// is then its outcome (a *RemoteError), and otherwise why it did not.
func (f *Forwarder) Forward(ctx context.Context, owner, solver string, ch *whapi.ChallengeRequest, handoff time.Duration) (served bool, err error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return false, errors.New("a forwarded request needs a deadline")
	}
	wait := time.Until(deadline) - answerMargin
	if wait <= 0 {
		return false, errors.New("no time left to hand the request over")
	}
	token, err := f.token.Token()
	if err != nil {
		return false, err
	}
	body, err := json.Marshal(ch)
	if err != nil {
		return false, err
	}
	if len(body) > maxBody {
		return false, fmt.Errorf("the request is %d bytes, more than a peer takes", len(body))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+owner+path+solver, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(timeoutHeader, wait.String())
	// Past the hand-off the request is abandoned, and the owner, seeing
	// its sender gone, drops it.
	handedOff := time.AfterFunc(handoff, cancel)
	resp, err := f.client.Do(req)
	if !handedOff.Stop() {
		if err == nil {
			resp.Body.Close()
		}
		return false, fmt.Errorf("the owner did not take the request within %s", handoff)
	}
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
	if err := ctx.Err(); err != nil {
		// The answer raced the sender giving up: the owner dropped the
		// request, whatever it says.
		return false, fmt.Errorf("gave up waiting for the owner: %w", err)
	}
	if a.Error != "" {
		return true, &RemoteError{Message: a.Error}
	}
	return true, nil
}

// ServeFunc serves a request a peer forwarded. ctx ends when the peer
// stops waiting for the answer.
type ServeFunc func(ctx context.Context, ch *whapi.ChallengeRequest) error

// Solvers finds the solver named name: ErrNoSuchSolver when this replica
// has none of that name, ErrNotServing when it cannot serve yet.
type Solvers func(name string) (ServeFunc, error)

var (
	// ErrNoSuchSolver is Solvers' error for a name no solver has: the peer
	// is answered 404.
	ErrNoSuchSolver = errors.New("no such solver")
	// ErrNotServing is Solvers' error for a replica that cannot serve
	// requests yet (its solvers are not initialized): the peer is answered
	// 503 and serves the request itself.
	ErrNotServing = errors.New("this replica does not serve requests yet")
)

// Handler answers the requests of the peers admission admits with solvers,
// and logs the others. The owner takes a request (answers 200) before
// serving it, and sends its outcome when done: the sender knows at once
// that the request is in hand, and waits for the outcome as long as its
// deadline allows.
func Handler(admission *Admission, solvers Solvers, log logr.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if no := admission.admit(r); no != nil {
			log.Info("Peer request refused", "caller", no.caller, "status", no.status, "reason", no.reason,
				"remoteAddress", r.RemoteAddr, "path", input.Truncate(r.URL.Path))
			http.Error(w, http.StatusText(no.status)+": "+no.reason, no.status)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, path)
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
		serve, err := solvers(name)
		switch {
		case errors.Is(err, ErrNoSuchSolver):
			http.Error(w, "no solver named "+input.Quote(name), http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		ctx := r.Context()
		if d, err := time.ParseDuration(r.Header.Get(timeoutHeader)); err == nil && d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		var a answer
		if err := serve(ctx, &ch); err != nil {
			a.Error = err.Error()
		}
		_ = json.NewEncoder(w).Encode(a)
	})
}

// Listener is the peer listener.
type Listener struct {
	l  net.Listener
	id *Identity

	mu      sync.Mutex
	serving bool
	err     error
}

// Listen binds the peer listener on address, serving with id's TLS.
// Nothing is served until Serve.
func Listen(address string, id *Identity) (*Listener, error) {
	l, err := net.Listen("tcp", address)
	if err != nil {
		return nil, fmt.Errorf("peer listener: %w", err)
	}
	return &Listener{l: l, id: id}, nil
}

// Addr is where the listener listens.
func (l *Listener) Addr() net.Addr { return l.l.Addr() }

// Serve takes peers' requests with h until ctx ends.
func (l *Listener) Serve(ctx context.Context, h http.Handler) {
	srv := &http.Server{Handler: h, TLSConfig: l.id.ServerConfig(), ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes: 16 << 10, IdleTimeout: 2 * time.Minute}
	l.mu.Lock()
	l.serving = true
	l.mu.Unlock()
	go func() {
		err := srv.ServeTLS(l.l, "", "") // returns when ctx closes it
		l.mu.Lock()
		l.serving, l.err = false, err
		l.mu.Unlock()
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
}

// Ready is nil while the listener serves, and otherwise says why not: a
// replica whose peers cannot hand it requests is not ready.
func (l *Listener) Ready() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.serving:
		return nil
	case l.err != nil:
		return fmt.Errorf("the peer listener stopped: %w", l.err)
	}
	return errors.New("the peer listener does not serve yet")
}
