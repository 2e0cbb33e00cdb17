package localcluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WebhookReplica is one more `certbridge webhook` process beside the one
// behind the APIService, as a Deployment with several replicas runs them:
// started like that one (the chart's arguments, its serving certificate, its
// ServiceAccount), on loopback ports of its own, against the simulators it
// is given. Requests reach it as kube-apiserver's aggregator sends them to a
// pod (Aggregator), so a caller can spread challenges over several
// processes, kill one and start it again.
type WebhookReplica struct {
	c    *Cluster
	name string
	args []string
	url  string
	p    *process
}

// ReplicaOptions point a replica at its simulators and add flags.
type ReplicaOptions struct {
	// CloudflareAPIURL and AliDNSEndpoint (http://host:port) default to
	// the cluster's simulators.
	CloudflareAPIURL, AliDNSEndpoint string
	// Args are further flags of `certbridge webhook`.
	Args []string
	// PeerAddress is the replica's peer listener (from PeerAddresses), and
	// Peers every replica's: the replicas then hand each zone's requests to
	// its owner among them (--peers, in place of the chart's
	// --peer-service).
	PeerAddress string
	Peers       []string
}

// PeerAddresses are n free loopback addresses for replicas' peer listeners.
func PeerAddresses(n int) ([]string, error) {
	ports, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, p := range ports {
		addrs = append(addrs, hostPort(p))
	}
	return addrs, nil
}

// StartWebhookReplica starts a replica named name (its log is
// LogFile(name)) and waits until it is ready.
func (c *Cluster) StartWebhookReplica(ctx context.Context, name string, o ReplicaOptions) (*WebhookReplica, error) {
	if o.CloudflareAPIURL == "" {
		o.CloudflareAPIURL = c.Cloudflare.URL()
	}
	if o.AliDNSEndpoint == "" {
		o.AliDNSEndpoint = "http://" + c.Alibaba.Endpoint()
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	args, err := c.webhookArgs(ports[0], ports[1], o.PeerAddress, o.CloudflareAPIURL, o.AliDNSEndpoint)
	if err != nil {
		return nil, err
	}
	if len(o.Peers) > 0 {
		args = slices.DeleteFunc(args, func(a string) bool { return strings.HasPrefix(a, "--peer-service=") })
		args = append(args, "--peers="+strings.Join(o.Peers, ","))
	}
	r := &WebhookReplica{c: c, name: name, args: append(args, o.Args...), url: "https://" + hostPort(ports[0])}
	return r, r.Start(ctx)
}

// URL is where the replica serves: https://127.0.0.1:<port>.
func (r *WebhookReplica) URL() string { return r.url }

// PID is the running process's id.
func (r *WebhookReplica) PID() int { return r.p.cmd.Process.Pid }

// Start starts the process (again, after Kill or Stop, with the same
// arguments and ports) and waits until its /readyz answers 200, as a
// readiness probe does.
func (r *WebhookReplica) Start(ctx context.Context) error {
	if r.p != nil && r.p.exited() == nil {
		return fmt.Errorf("%s is running", r.name)
	}
	p, err := r.c.start(r.name, r.c.opts.Certbridge, nil, r.args...)
	if err != nil {
		return err
	}
	r.p = p
	client, err := r.c.webhookTLSClient()
	if err != nil {
		return err
	}
	return poll(ctx, 60*time.Second, r.name+" /readyz", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/readyz", nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	}, p)
}

// Kill ends the process with SIGKILL, as the kernel's OOM killer or a
// node's loss does: no shutdown, whatever it holds in memory is lost. It
// returns once the process is gone.
func (r *WebhookReplica) Kill() {
	_ = r.p.cmd.Process.Signal(syscall.SIGKILL)
	<-r.p.done
}

// Stop ends the process with SIGTERM (SIGKILL after a grace period).
func (r *WebhookReplica) Stop() { r.p.stop() }

// Aggregator sends requests to webhook processes as kube-apiserver's
// aggregation layer proxies them to a pod: over TLS verified against the
// webhook's CA for the Service's name, authenticated with the front-proxy
// client certificate, the caller named in X-Remote-User and X-Remote-Group,
// which the webhook trusts through the request-header CA and authorizes
// with a SubjectAccessReview.
type Aggregator struct {
	client *http.Client
	user   string
	groups []string
}

// Aggregator is a client for webhook processes that presents requests as
// coming from cert-manager's controller (its chart's ServiceAccount).
func (c *Cluster) Aggregator() (*Aggregator, error) {
	pki := filepath.Join(c.Dir, "pki")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "front-proxy-client.crt"), filepath.Join(pki, "front-proxy-client.key"))
	if err != nil {
		return nil, err
	}
	client, err := c.webhookTLSClient()
	if err != nil {
		return nil, err
	}
	tr := client.Transport.(*http.Transport)
	tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	tr.MaxIdleConnsPerHost = 100
	return &Aggregator{client: client, user: "system:serviceaccount:" + CertManagerNamespace + ":" + CertManagerServiceAccount,
		groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + CertManagerNamespace, "system:authenticated"}}, nil
}

// webhookTLSClient trusts the webhook's serving certificate for the
// Service's name, as the aggregator does (with the APIService's caBundle).
func (c *Cluster) webhookTLSClient() (*http.Client, error) {
	ca, err := os.ReadFile(filepath.Join(c.webhookTLSDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("no CA certificate in the webhook's serving Secret")
	}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: webhookService + "." + Namespace + ".svc", MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}}, nil
}

// NoAnswerError is a call that got no answer: the connection was refused
// or broke, or the deadline passed.
type NoAnswerError struct{ Err error }

func (e *NoAnswerError) Error() string { return "no answer: " + e.Err.Error() }
func (e *NoAnswerError) Unwrap() error { return e.Err }

// Challenge posts req (its Action says Present or CleanUp) to the solver at
// the webhook process at baseURL, at the path cert-manager's client uses
// (/apis/<group>/v1alpha1/<solver>), and returns nil when the webhook
// answers success. A failure the webhook answers is an error with its
// message, as cert-manager reads it; no answer is a *NoAnswerError.
func (a *Aggregator) Challenge(ctx context.Context, baseURL, solver string, req *whapi.ChallengeRequest) error {
	body, err := json.Marshal(&whapi.ChallengePayload{TypeMeta: metav1.TypeMeta{APIVersion: whapi.SchemeGroupVersion.String(), Kind: "ChallengePayload"}, Request: req})
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/apis/"+GroupName+"/v1alpha1/"+solver, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("X-Remote-User", a.user)
	for _, g := range a.groups {
		hreq.Header.Add("X-Remote-Group", g)
	}
	resp, err := a.client.Do(hreq)
	if err != nil {
		return &NoAnswerError{err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &NoAnswerError{err}
	}
	var out whapi.ChallengePayload
	if err := json.Unmarshal(b, &out); err != nil || out.Response == nil {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	if out.Response.Success && resp.StatusCode/100 == 2 {
		return nil
	}
	if out.Response.Result != nil && out.Response.Result.Message != "" {
		return errors.New(out.Response.Result.Message)
	}
	return fmt.Errorf("%s: not successful, no message", resp.Status)
}
