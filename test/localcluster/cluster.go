// Package localcluster runs, on one machine without a cluster or a container
// engine, what certbridge meets in a real one: etcd and kube-apiserver with
// the aggregation layer, cert-manager's own controllers (in-process, from its
// library packages, under its chart's RBAC), Pebble as the ACME server, the
// certbridge chart's objects, `certbridge webhook` reached through the
// aggregated API, `certbridge issuer`, and the Cloudflare and Alibaba Cloud
// simulators with their DNS server. The end-to-end tests and `make demo` use it.
package localcluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
)

// Names the environment is built with.
const (
	GroupName            = "acme.certbridge.io"
	Release              = "certbridge"
	Namespace            = "certbridge"
	CertManagerNamespace = "cert-manager"
	// CertManagerServiceAccount is the ServiceAccount cert-manager's chart
	// creates by default, and the chart's certManager.serviceAccountName.
	CertManagerServiceAccount = "cert-manager"

	CloudflareZone = "example.com"
	AliDNSDomain   = "example.net"
	PCASubCA       = "e2e-sub-ca"
	PCARootCA      = "e2e-root-ca"

	webhookService = Release + "-webhook"
	webhookTLS     = Release + "-webhook-tls"
	kubeVersion    = "1.36.2"
)

// Options name the binaries, all built by the Makefile from pinned modules.
type Options struct {
	Etcd, KubeAPIServer, Kubectl, Helm, Pebble, Certbridge string
	KubeControllerManager                                  string
	// Node runs a real node (node.go): kubelet, containerd, kube-proxy and
	// kube-scheduler, with the chart installed by helm install from the
	// image in ImageArchive instead of certbridge processes on the host.
	Node                              bool
	Kubelet, KubeProxy, KubeScheduler string
	// ImageArchive is make image's docker-archive of linux/amd64.
	ImageArchive string
	// ModuleRoot is the certbridge checkout (for the chart and go list).
	ModuleRoot string
	// Dir holds certificates, kubeconfigs and logs; it must exist.
	Dir string
	// Progress receives one line per step.
	Progress io.Writer
}

// OptionsFromEnv reads the binaries from the variables `make env` exports.
func OptionsFromEnv(dir string) (Options, error) {
	o := Options{
		Etcd: os.Getenv("TEST_ASSET_ETCD"), KubeAPIServer: os.Getenv("TEST_ASSET_KUBE_APISERVER"),
		Kubectl: os.Getenv("TEST_ASSET_KUBECTL"), Helm: os.Getenv("TEST_ASSET_HELM"),
		Pebble: os.Getenv("TEST_ASSET_PEBBLE"), Certbridge: os.Getenv("CERTBRIDGE_BINARY"),
		KubeControllerManager: os.Getenv("TEST_ASSET_KUBE_CONTROLLER_MANAGER"),
		Kubelet:               os.Getenv("TEST_ASSET_KUBELET"), KubeProxy: os.Getenv("TEST_ASSET_KUBE_PROXY"),
		KubeScheduler: os.Getenv("TEST_ASSET_KUBE_SCHEDULER"),
		Dir:           dir, Progress: io.Discard,
	}
	var missing []string
	for name, v := range map[string]string{"TEST_ASSET_ETCD": o.Etcd, "TEST_ASSET_KUBE_APISERVER": o.KubeAPIServer,
		"TEST_ASSET_KUBECTL": o.Kubectl, "TEST_ASSET_HELM": o.Helm, "TEST_ASSET_PEBBLE": o.Pebble, "CERTBRIDGE_BINARY": o.Certbridge,
		"TEST_ASSET_KUBE_CONTROLLER_MANAGER": o.KubeControllerManager} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return o, fmt.Errorf("%s not set: run through make (make e2e, make demo) or eval \"$(make -s env)\" first", strings.Join(missing, ", "))
	}
	root, err := moduleRoot()
	o.ModuleRoot = root
	return o, err
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/certbridge/certbridge\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the certbridge checkout")
		}
		dir = parent
	}
}

// Cluster is a running environment.
type Cluster struct {
	opts   Options
	Dir    string
	LogDir string

	Host            string
	AdminKubeconfig string
	Kube            kubernetes.Interface
	CM              cmclient.Interface
	Dynamic         dynamic.Interface
	admin           *rest.Config
	clusterCA       []byte
	authority       *authority
	node            *node

	Cloudflare *cfsim.Server
	Alibaba    *alibaba.Server
	DNS        *dnsserver.Server
	// Credentials of the simulated accounts; the scan for leaked secrets
	// looks for each of them.
	CloudflareToken, AliAccessKeyID, AliAccessKeySecret string

	// CertManagerVersion is the version of cert-manager's module the
	// controllers run from, as in go.mod.
	CertManagerVersion string

	// PebbleDirectory is the ACME directory URL; PebbleRoots its roots.
	PebbleDirectory  string
	pebbleManagement string

	certManager                      *certManager
	rendered                         []unstructured.Unstructured
	webhookPort, webhookMetricsPort  int
	webhookTLSDir, webhookKubeconfig string
	issuerMetricsPort                int
	stsCA                            string
	webhook                          *process
	issuer                           *process
	processes                        []*process
	tokens                           []string
	closers                          []func()
	closeOnce                        sync.Once
}

func (c *Cluster) step(format string, args ...any) {
	fmt.Fprintf(c.opts.Progress, "localcluster: "+format+"\n", args...)
}

// Start brings everything up; Close tears it down.
func Start(ctx context.Context, o Options) (c *Cluster, err error) {
	c = &Cluster{opts: o, Dir: o.Dir, LogDir: filepath.Join(o.Dir, "logs")}
	if c.opts.Progress == nil {
		c.opts.Progress = io.Discard
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := os.MkdirAll(c.LogDir, 0o700); err != nil {
		return nil, err
	}
	began := time.Now()
	if err := c.startSimulators(); err != nil {
		return c, err
	}
	if c.opts.Node {
		if err := c.prepareNode(); err != nil {
			return c, err
		}
	}
	if err := c.startControlPlane(ctx); err != nil {
		return c, err
	}
	if err := c.startControllers(ctx); err != nil {
		return c, err
	}
	c.step("control plane ready at %s (%s)", c.Host, time.Since(began).Round(time.Millisecond))
	if err := c.registerRRSA(ctx); err != nil {
		return c, err
	}
	if c.CM, err = cmclient.NewForConfig(c.admin); err != nil {
		return c, err
	}
	if c.Dynamic, err = dynamic.NewForConfig(c.admin); err != nil {
		return c, err
	}
	if err := c.installCRDs(ctx); err != nil {
		return c, err
	}
	if err := c.CreateNamespace(ctx, CertManagerNamespace); err != nil {
		return c, err
	}
	if err := c.createCertbridgeNamespace(ctx); err != nil {
		return c, err
	}
	if err := c.ApplyCertManagerRBAC(ctx, CertManagerServiceAccount); err != nil {
		return c, err
	}
	if !c.opts.Node {
		if err := c.InstallChart(ctx); err != nil {
			return c, err
		}
	}
	c.step("CRDs, cert-manager's RBAC and the certbridge chart applied (%s)", time.Since(began).Round(time.Millisecond))
	if err := c.StartCertManager(ctx, CertManagerServiceAccount); err != nil {
		return c, err
	}
	if err := c.startCAInjector(ctx); err != nil {
		return c, err
	}
	if err := c.startPebble(ctx); err != nil {
		return c, err
	}
	if c.opts.Node {
		if err := c.startNode(ctx); err != nil {
			return c, err
		}
		c.step("node %s Ready, images imported (%s)", NodeName, time.Since(began).Round(time.Millisecond))
		return c, nil
	}
	if err := c.startWebhook(ctx); err != nil {
		return c, err
	}
	c.step("webhook serving %s through the aggregated API (%s)", GroupName, time.Since(began).Round(time.Millisecond))
	if err := c.startIssuer(ctx); err != nil {
		return c, err
	}
	c.step("environment ready (%s)", time.Since(began).Round(time.Millisecond))
	return c, nil
}

// WebhookMetricsURL is the webhook's Prometheus endpoint (the chart's
// metrics port, here on loopback).
func (c *Cluster) WebhookMetricsURL() string {
	return "http://" + hostPort(c.webhookMetricsPort) + "/metrics"
}

// IssuerMetricsURL is the issuer's Prometheus endpoint.
func (c *Cluster) IssuerMetricsURL() string {
	return "http://" + hostPort(c.issuerMetricsPort) + "/metrics"
}

// KubectlPath is the kubectl the environment was built with.
func (c *Cluster) KubectlPath() string { return c.opts.Kubectl }

// LogFile is the log of a component: etcd, kube-apiserver, pebble,
// certbridge-webhook, certbridge-issuer, cert-manager.
func (c *Cluster) LogFile(component string) string { return filepath.Join(c.LogDir, component+".log") }

// ModuleRoot is the certbridge checkout the environment was built from.
func (c *Cluster) ModuleRoot() string { return c.opts.ModuleRoot }

// WebhookPID is the process id of `certbridge webhook`.
func (c *Cluster) WebhookPID() int { return c.webhook.cmd.Process.Pid }

// WebhookExited says how `certbridge webhook` ended, or nil while it runs.
func (c *Cluster) WebhookExited() error { return c.webhook.exited() }

// WebhookReady checks what a kubelet and the aggregator check: the
// webhook's /readyz answers 200, and the APIService is Available.
func (c *Cluster) WebhookReady(ctx context.Context) error {
	if err := c.webhook.exited(); err != nil {
		return err
	}
	// The serving certificate is checked by the aggregator (caBundle); this
	// probe, like a kubelet's, does not.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback probe
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+hostPort(c.webhookPort)+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook /readyz: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook /readyz: %s: %s", resp.Status, body)
	}
	return c.apiServiceAvailable(ctx)
}

// Close stops every component, newest first; later calls do nothing.
func (c *Cluster) Close() { c.closeOnce.Do(c.close) }

func (c *Cluster) close() {
	if c.certManager != nil {
		c.certManager.stop()
	}
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
	for i := len(c.processes) - 1; i >= 0; i-- {
		c.processes[i].stop()
	}
	if c.DNS != nil {
		c.DNS.Close()
	}
	if c.Cloudflare != nil {
		c.Cloudflare.Close()
	}
	if c.Alibaba != nil {
		c.Alibaba.Close()
	}
	if c.node != nil {
		c.node.teardown(c.opts.Progress)
	}
}

// Kubectl runs kubectl as the cluster admin.
func (c *Cluster) Kubectl(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, c.opts.Kubectl, append([]string{"--kubeconfig=" + c.AdminKubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }

// Secrets are the credential values no log line may contain: the simulated
// accounts' credentials, every ServiceAccount token handed out, and every
// token exchanged with the simulated STS.
func (c *Cluster) Secrets() []string {
	return append(append([]string{c.CloudflareToken, c.AliAccessKeySecret}, c.tokens...), c.Alibaba.OIDCTokens()...)
}

// LogFiles are the captured logs of every component.
func (c *Cluster) LogFiles() ([]string, error) {
	return filepath.Glob(filepath.Join(c.LogDir, "*.log"))
}
