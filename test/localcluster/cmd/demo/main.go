// Command demo starts the local environment (test/localcluster), issues
// a wildcard certificate through the cloudflare solver and an Origin CA
// certificate, prints what cert-manager made, the certificates, and what
// a newcomer needs to write their own Issuers against it, then stays up
// for exploring with kubectl until interrupted (or exits with --once).
//
//	make demo          # certbridge in pods on a real node (--node, root); stays up, Ctrl-C stops it
//	make demo ONCE=1   # exits after printing
//	make demo NODE=    # certbridge as local processes behind the chart's objects
package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/certbridge/certbridge/test/localcluster"
)

const namespace = "demo"

func main() {
	once := flag.Bool("once", false, "exit after printing the issued certificates")
	node := flag.Bool("node", false, "run certbridge in pods on a real node (kubelet, containerd), installed with helm install from make image's image")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *once, *node); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, once, node bool) error {
	dir, err := os.MkdirTemp("", "certbridge-demo-")
	if err != nil {
		return err
	}
	opts, err := localcluster.OptionsFromEnv(dir)
	if err != nil {
		return err
	}
	opts.Progress = os.Stdout
	var repository, tag string
	if node {
		opts.Node = true
		opts.ImageArchive = os.Getenv("CERTBRIDGE_IMAGE_ARCHIVE")
		var ok bool
		if repository, tag, ok = strings.Cut(os.Getenv("CERTBRIDGE_IMAGE"), ":"); !ok || opts.ImageArchive == "" {
			return fmt.Errorf("CERTBRIDGE_IMAGE_ARCHIVE and CERTBRIDGE_IMAGE name make image's archive: run make demo")
		}
	}
	c, err := localcluster.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("%w (logs kept in %s)", err, dir)
	}
	// The logs outlive the run: they are what a newcomer reads afterwards.
	defer fmt.Printf("\nStopped. The logs are kept in %s\n", c.LogDir)
	defer c.Close()
	if node {
		args := c.HelmInstallArgs("install", repository, tag)
		fmt.Printf("\n$ helm %s\n", strings.Join(args, " "))
		out, err := c.Helm(ctx, args...)
		if err != nil {
			return err
		}
		fmt.Println(firstLine(string(out), "STATUS:"))
		out, err = c.Kubectl(ctx, nil, "get", "pods", "-n", localcluster.Namespace, "-o", "wide")
		if err != nil {
			return err
		}
		fmt.Printf("\n$ kubectl get pods -n %s -o wide\n%s", localcluster.Namespace, out)
	}

	if err := c.CreateNamespace(ctx, namespace); err != nil {
		return err
	}
	// waitInsteadOfSelfCheck: 0s skips cert-manager's DNS self-check and the
	// 60 s it waits after it; `make e2e` scenario a keeps the real self-check.
	manifest := c.CredentialSecrets(namespace) + "---" + c.ACMEIssuer(namespace, "cloudflare", true) + "---" +
		localcluster.Certificate(namespace, "wildcard-example-com", "Issuer", "cert-manager.io", "acme-cloudflare", "example.com", "*.example.com") + "---" +
		localcluster.OriginIssuer(namespace, "origin") + "---" +
		localcluster.Certificate(namespace, "origin-example-com", "CloudflareOriginIssuer", "certbridge.io", "origin", "origin.example.com")
	fmt.Printf("\napplying to namespace %q: Secrets with the simulated accounts' credentials, an ACME Issuer (Pebble) with the cloudflare solver, a CloudflareOriginIssuer, and two Certificates\n", namespace)
	if err := c.ApplyYAML(ctx, manifest); err != nil {
		return err
	}
	for _, name := range []string{"wildcard-example-com", "origin-example-com"} {
		began := time.Now()
		secret, err := c.WaitCertificateReady(ctx, namespace, name, 3*time.Minute)
		if err != nil {
			return err
		}
		fmt.Printf("\nCertificate %s/%s Ready after %s; the chain in its Secret %q:\n", namespace, name, time.Since(began).Round(time.Millisecond), secret.Name)
		printChain(secret.Data["tls.crt"])
	}
	out, err := c.Kubectl(ctx, nil, "get", "certificates,certificaterequests,orders,challenges", "-n", namespace)
	if err != nil {
		return err
	}
	fmt.Printf("\n$ kubectl get certificates,certificaterequests,orders,challenges -n %s\n%s", namespace, out)
	printEnvironment(c, node)
	if once {
		return nil
	}
	fmt.Printf("\nThe environment stays up; Ctrl-C stops everything.\n")
	<-ctx.Done()
	return nil
}

// printEnvironment says what one needs to write one's own Issuers and
// Certificates against the environment.
func printEnvironment(c *localcluster.Cluster, node bool) {
	version := "unknown version"
	if out, err := exec.Command(c.KubectlPath(), "version", "--client").Output(); err == nil {
		version = strings.TrimSpace(strings.Split(string(out), "\n")[0])
	}
	var zones, domains []string
	for _, z := range c.Cloudflare.AllZones() {
		zones = append(zones, z.Name)
	}
	for _, d := range c.Alibaba.AllDomains() {
		domains = append(domains, d.Name)
	}
	fmt.Printf(`
What runs here, to write your own Issuers and Certificates against:
  kubeconfig:     export KUBECONFIG=%[1]s
  kubectl:        %[2]s (%[3]s)
  ACME server:    Pebble, directory %[4]s; its certificate is its own, so Issuers set skipTLSVerify: true
  credentials:    Secret <namespace>/cloudflare-api-token (key api-token) and Secret <namespace>/alidns-access-key
                  (keys access-key-id, access-key-secret), e.g. in namespace %[5]q; copy them into yours:
                  kubectl get secret -n %[5]s cloudflare-api-token alidns-access-key -o yaml | sed 's/namespace: %[5]s/namespace: <yours>/' | kubectl apply -f -
  Cloudflare:     zones %[6]s (simulated API %[7]s)
  Alibaba DNS:    domains %[8]s (simulated API http://%[9]s)
  Private CA:     sub-CA %[10]q for AlibabaPCAIssuer spec.caIdentifier (its root is %[11]q)
  DNS:            the zones' authoritative server on %[12]s (UDP and TCP)
%[14]s

An Issuer of your own (namespace with the two Secrets above):

apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: pebble, namespace: <yours>}
spec:
  acme:
    server: %[4]s
    skipTLSVerify: true
    privateKeySecretRef: {name: pebble-account}
    solvers:
      - dns01:
          # Skips cert-manager's DNS self-check and the 60 s it waits after it; without it a
          # Certificate takes about a minute per name.
          waitInsteadOfSelfCheck: 0s
          webhook:
            groupName: %[13]s
            solverName: cloudflare        # or alidns, with the alidns-access-key Secret
            config: {apiTokenSecretRef: {name: cloudflare-api-token, key: api-token}}
`, c.AdminKubeconfig, c.KubectlPath(), version, c.PebbleDirectory, namespace, strings.Join(zones, ", "), c.Cloudflare.URL(),
		strings.Join(domains, ", "), c.Alibaba.Endpoint(), localcluster.PCASubCA, localcluster.PCARootCA, c.DNS.Addr,
		localcluster.GroupName, components(c, node))
}

// components says where certbridge runs: in pods on the node, or as local
// processes behind the chart's objects.
func components(c *localcluster.Cluster, node bool) string {
	if node {
		return fmt.Sprintf(`  certbridge:     pods on node %[1]s (kubelet, containerd), installed with helm install from make image's image:
                  kubectl get pods -n %[2]s -o wide; kubectl logs -n %[2]s deploy/certbridge-webhook
                  ctr --address %[3]s -n k8s.io tasks list
  webhook:        API group %[4]s, served by the pods behind Service %[2]s/certbridge-webhook
  other logs:     %[5]s (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, containerd,
                  kube-proxy, cert-manager, pebble)`, localcluster.NodeName, localcluster.Namespace, c.NodeSocket(), localcluster.GroupName, c.LogDir)
	}
	return fmt.Sprintf(`  webhook:        certbridge webhook for API group %[1]s, metrics %[2]s, log %[3]s
  issuer:         certbridge issuer, metrics %[4]s, log %[5]s
  other logs:     %[6]s (etcd, kube-apiserver, kube-controller-manager, cert-manager, pebble)

The chart's Deployments show 0/2 and 0/1 ready: no kubelet runs here (make demo, without NODE=, runs one). The
webhook and the issuer run as local processes with the Deployments' own arguments, under the chart's
ServiceAccounts, and the chart's Service points the aggregated API at the webhook process.`,
		localcluster.GroupName, c.WebhookMetricsURL(), c.LogFile("certbridge-webhook"), c.IssuerMetricsURL(), c.LogFile("certbridge-issuer"), c.LogDir)
}

func firstLine(s, prefix string) string {
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

func printChain(chain []byte) {
	for i := 0; ; i++ {
		var block *pem.Block
		block, chain = pem.Decode(chain)
		if block == nil {
			return
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			fmt.Printf("  [%d] unparsable: %v\n", i, err)
			continue
		}
		sans := append([]string{}, cert.DNSNames...)
		fmt.Printf("  [%d] subject: %s\n      SANs:    %s\n      issuer:  %s\n      expires: %s\n",
			i, cert.Subject, strings.Join(sans, ", "), cert.Issuer, cert.NotAfter.UTC().Format(time.RFC3339))
	}
}
