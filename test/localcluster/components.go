package localcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	// Istio's CRDs are read from this module's directory (installCRDs); the
	// import keeps it in go.mod, at the version go.sum pins.
	_ "istio.io/api/label"

	"github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
)

func (c *Cluster) startSimulators() error {
	c.CloudflareToken = "e2eCloudflareTokenZoneReadDnsEditSsl0001"
	c.AliAccessKeyID, c.AliAccessKeySecret = "LTAI5tE2EAccessKey000001", "e2eAccessKeySecretOfTheSimulator"
	c.Cloudflare = cfsim.Start()
	c.Cloudflare.AddZone(CloudflareZone)
	c.Cloudflare.AddToken(cfsim.Token{Value: c.CloudflareToken, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit, cfsim.SSLEdit}})
	c.Alibaba = alibaba.Start()
	c.Alibaba.AddDomain(AliDNSDomain, alibaba.FreeEdition)
	c.Alibaba.AddAccessKey(alibaba.AccessKey{ID: c.AliAccessKeyID, Secret: c.AliAccessKeySecret, Policy: alibaba.AllowAll})
	c.Alibaba.AddCA(PCARootCA, alibaba.CAOptions{})
	c.Alibaba.AddCA(PCASubCA, alibaba.CAOptions{Parent: PCARootCA})
	dns, err := dnsserver.Start(dnsserver.Sources{c.Cloudflare, c.Alibaba})
	if err != nil {
		return err
	}
	c.DNS = dns
	c.step("simulators: Cloudflare %s, AliDNS and PCA %s, DNS %s (UDP and TCP)", c.Cloudflare.URL(), c.Alibaba.Endpoint(), dns.Addr)
	return nil
}

// CreateNamespace creates a namespace (an existing one is fine).
func (c *Cluster) CreateNamespace(ctx context.Context, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
		return err
	}
	return nil
}

// installCRDs applies cert-manager's CRDs, Gateway API's standard CRDs and
// Istio's CRDs from their Go modules.
func (c *Cluster) installCRDs(ctx context.Context) error {
	cm, err := c.moduleDir(ctx, "github.com/cert-manager/cert-manager")
	if err != nil {
		return err
	}
	gw, err := c.moduleDir(ctx, "sigs.k8s.io/gateway-api")
	if err != nil {
		return err
	}
	istio, err := c.moduleDir(ctx, "istio.io/api")
	if err != nil {
		return err
	}
	for _, dir := range []string{filepath.Join(cm, "deploy", "crds"), filepath.Join(gw, "config", "crd", "standard"),
		filepath.Join(istio, "kubernetes", "customresourcedefinitions.gen.yaml")} {
		if _, err := c.Kubectl(ctx, nil, "apply", "--server-side", "-f", dir); err != nil {
			return err
		}
	}
	return c.waitCRDs(ctx)
}

func (c *Cluster) waitCRDs(ctx context.Context) error {
	_, err := c.Kubectl(ctx, nil, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
	return err
}

func (c *Cluster) moduleDir(ctx context.Context, module string) (string, error) {
	cmd := execGo(ctx, c.opts.ModuleRoot, "list", "-m", "-f", "{{.Dir}}", module)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", module, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// startPebble runs Pebble resolving through the simulators' DNS server.
func (c *Cluster) startPebble(ctx context.Context) error {
	dir := filepath.Join(c.Dir, "pebble")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := newAuthority("certbridge-e2e-pebble-tls")
	if err != nil {
		return err
	}
	serving, err := ca.issue(pkix.Name{CommonName: "localhost"}, []string{"localhost", "127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	if err := serving.write(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err != nil {
		return err
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	port, mgmt := ports[0], ports[1]
	config := map[string]any{"pebble": map[string]any{
		"listenAddress": hostPort(port), "managementListenAddress": hostPort(mgmt),
		"certificate": filepath.Join(dir, "tls.crt"), "privateKey": filepath.Join(dir, "tls.key"),
		"httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false,
		"retryAfter": map[string]int{"authz": 1, "order": 1},
		"profiles":   map[string]any{"default": map[string]any{"description": "e2e", "validityPeriod": 7776000}},
	}}
	b, _ := json.Marshal(config)
	if err := os.WriteFile(filepath.Join(dir, "pebble.json"), b, 0o600); err != nil {
		return err
	}
	p, err := c.start("pebble", c.opts.Pebble, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"},
		"-config", filepath.Join(dir, "pebble.json"), "-dnsserver", c.DNS.Addr)
	if err != nil {
		return err
	}
	c.PebbleDirectory = "https://" + hostPort(port) + "/dir"
	c.pebbleManagement = "https://" + hostPort(mgmt)
	return poll(ctx, 30*time.Second, "Pebble's directory", func(ctx context.Context) error {
		_, err := c.pebbleGet(ctx, c.PebbleDirectory)
		return err
	}, p)
}

func (c *Cluster) pebbleGet(ctx context.Context, url string) ([]byte, error) {
	// Pebble's own TLS certificate is throwaway; what is verified is the
	// chain it issues, against the roots it reports.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback test server
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

// PebbleRoots are the roots of the chains Pebble issues.
func (c *Cluster) PebbleRoots(ctx context.Context) (*x509.CertPool, error) {
	body, err := c.pebbleGet(ctx, c.pebbleManagement+"/roots/0")
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(body) {
		return nil, fmt.Errorf("no root in Pebble's /roots/0")
	}
	return pool, nil
}

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// startWebhook runs `certbridge webhook` with the chart's arguments, its
// serving certificate issued by cert-manager from the chart's PKI, under the
// chart's ServiceAccount, and waits until the aggregator reports the
// APIService Available.
func (c *Cluster) startWebhook(ctx context.Context) error {
	return c.startWebhookBinary(ctx, "certbridge-webhook", c.opts.Certbridge)
}

// ReplaceWebhook stops the webhook and serves its API group with binary
// instead, started as the webhook is (the chart's arguments, certificate and
// ServiceAccount), logging to LogDir/name.log; it returns once a request
// through the aggregated API reaches the new process. make bench measures a
// reference webhook this way, in the same harness.
func (c *Cluster) ReplaceWebhook(ctx context.Context, name, binary string) error {
	c.webhook.stop()
	if err := c.startWebhookBinary(ctx, name, binary); err != nil {
		return err
	}
	// The aggregator may still call the APIService Available from the
	// process before: ask the new one.
	return poll(ctx, 60*time.Second, name+" to answer through the aggregated API", func(ctx context.Context) error {
		return c.Kube.Discovery().RESTClient().Get().AbsPath("/apis", GroupName, "v1alpha1").Do(ctx).Error()
	}, c.webhook)
}

func (c *Cluster) startWebhookBinary(ctx context.Context, name, binary string) error {
	var secret *corev1.Secret
	if err := poll(ctx, 60*time.Second, "cert-manager to issue the webhook's serving certificate (Secret "+webhookTLS+")", func(ctx context.Context) error {
		var err error
		secret, err = c.Kube.CoreV1().Secrets(Namespace).Get(ctx, webhookTLS, metav1.GetOptions{})
		if err == nil && len(secret.Data["tls.crt"]) == 0 {
			err = fmt.Errorf("secret has no tls.crt yet")
		}
		return err
	}); err != nil {
		return err
	}
	c.webhookTLSDir = filepath.Join(c.Dir, "webhook-tls")
	if err := os.MkdirAll(c.webhookTLSDir, 0o700); err != nil {
		return err
	}
	for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if err := os.WriteFile(filepath.Join(c.webhookTLSDir, k), secret.Data[k], 0o600); err != nil {
			return err
		}
	}
	var err error
	if c.webhookKubeconfig, err = c.ServiceAccountKubeconfig(ctx, Namespace, webhookService); err != nil {
		return err
	}
	args, err := c.webhookArgs(c.webhookPort, c.webhookMetricsPort, "", c.Cloudflare.URL(), "http://"+c.Alibaba.Endpoint())
	if err != nil {
		return err
	}
	c.webhook, err = c.start(name, binary, c.TrustSTS(), args...)
	if err != nil {
		return err
	}
	return poll(ctx, 60*time.Second, "APIService v1alpha1."+GroupName+" Available", func(ctx context.Context) error {
		return c.apiServiceAvailable(ctx)
	}, c.webhook)
}

// webhookArgs are the chart's arguments of the webhook container, made to
// run here: the serving certificate and ServiceAccount startWebhook set up,
// ports on loopback, and the simulators to talk to.
func (c *Cluster) webhookArgs(port, metricsPort int, peer, cloudflareURL, alidnsEndpoint string) ([]string, error) {
	if peer == "" {
		peerPort, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		peer = hostPort(peerPort[0])
	}
	args, err := c.chartArgs(webhookService, map[string]string{
		"--secure-port":          fmt.Sprint(port),
		"--tls-cert-file":        filepath.Join(c.webhookTLSDir, "tls.crt"),
		"--tls-private-key-file": filepath.Join(c.webhookTLSDir, "tls.key"),
		"--metrics-bind-address": hostPort(metricsPort),
		"--peer-bind-address":    peer,
		"--peer-ca-file":         filepath.Join(c.webhookTLSDir, "ca.crt"),
		"--peer-token-file":      filepath.Join(c.Dir, "webhook-peer-token"),
	})
	if err != nil {
		return nil, err
	}
	if err := c.writePeerToken(args); err != nil {
		return nil, err
	}
	kubeconfig := c.webhookKubeconfig
	// The pod's address and namespace come from the downward API in the
	// chart. No EndpointSlice controller runs here (and a slice may not hold
	// a loopback address), so the Service has no endpoints and the process
	// serves what it is sent; replicas started with ReplicaOptions.Peers
	// know each other from --peers instead.
	return append(args, "--bind-address=127.0.0.1", "--peer-address="+peer, "--peer-namespace="+Namespace,
		"--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
		"--cloudflare-api-url="+cloudflareURL, "--alidns-endpoint="+alidnsEndpoint, "--alibaba-sts-endpoint="+c.Alibaba.STSEndpoint(), "--v=2"), nil
}

// writePeerToken writes the webhook's peer token where args'
// --peer-token-file reads it, once: a token of its ServiceAccount for the
// chart's --peer-token-audience, as the kubelet projects it in the chart.
func (c *Cluster) writePeerToken(args []string) error {
	var file, audience string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--peer-token-file="); ok {
			file = v
		}
		if v, ok := strings.CutPrefix(a, "--peer-token-audience="); ok {
			audience = v
		}
	}
	if _, err := os.Stat(file); err == nil {
		return nil
	}
	expiry := int64(24 * 3600)
	tr, err := c.Kube.CoreV1().ServiceAccounts(Namespace).CreateToken(context.Background(), webhookService,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("peer token for ServiceAccount %s/%s: %w", Namespace, webhookService, err)
	}
	c.tokens = append(c.tokens, tr.Status.Token)
	return os.WriteFile(file, []byte(tr.Status.Token), 0o600)
}

func (c *Cluster) apiServiceAvailable(ctx context.Context) error {
	u, err := c.Dynamic.Resource(apiServiceGVR).Get(ctx, "v1alpha1."+GroupName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, cond := range conditions {
		m, _ := cond.(map[string]any)
		if m["type"] == "Available" {
			if m["status"] == "True" {
				return nil
			}
			return fmt.Errorf("APIService not Available: %v: %v", m["reason"], m["message"])
		}
	}
	return fmt.Errorf("APIService has no Available condition yet")
}

// startIssuer runs `certbridge issuer` with the chart's arguments under the
// chart's ServiceAccount, against the simulated CAs.
func (c *Cluster) startIssuer(ctx context.Context) error {
	kubeconfig, err := c.ServiceAccountKubeconfig(ctx, Namespace, Release+"-issuer")
	if err != nil {
		return err
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	metrics, probes := ports[0], ports[1]
	c.issuerMetricsPort = metrics
	args, err := c.chartArgs(Release+"-issuer", map[string]string{
		"--metrics-bind-address":      hostPort(metrics),
		"--health-probe-bind-address": hostPort(probes),
	})
	if err != nil {
		return err
	}
	args = append(args, "--cloudflare-api-url="+c.Cloudflare.URL(), "--alibaba-pca-endpoint=http://"+c.Alibaba.Endpoint(),
		"--alibaba-sts-endpoint="+c.Alibaba.STSEndpoint())
	c.issuer, err = c.start("certbridge-issuer", c.opts.Certbridge, append([]string{"KUBECONFIG=" + kubeconfig}, c.TrustSTS()...), args...)
	if err != nil {
		return err
	}
	return poll(ctx, 60*time.Second, "certbridge issuer /readyz", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostPort(probes)+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	}, c.issuer)
}

// APIServiceAvailable is nil once the aggregator reports the webhook's
// APIService Available.
func (c *Cluster) APIServiceAvailable(ctx context.Context) error { return c.apiServiceAvailable(ctx) }
