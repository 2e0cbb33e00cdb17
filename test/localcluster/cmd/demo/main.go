// Command demo starts the local environment (test/localcluster), issues
// a wildcard certificate through the cloudflare solver and an Origin CA
// certificate, prints what cert-manager made and the certificates, and stays
// up for exploring with kubectl until interrupted (or exits with --once).
//
//	make demo          # stays up; Ctrl-C stops it
//	make demo ONCE=1   # exits after printing
package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/certbridge/certbridge/test/localcluster"
)

const namespace = "demo"

func main() {
	once := flag.Bool("once", false, "exit after printing the issued certificates")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *once); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, once bool) (err error) {
	dir, err := os.MkdirTemp("", "certbridge-demo-")
	if err != nil {
		return err
	}
	opts, err := localcluster.OptionsFromEnv(dir)
	if err != nil {
		return err
	}
	opts.Progress = os.Stdout
	c, err := localcluster.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("%w (logs in %s)", err, c.LogDir)
	}
	defer c.Close()
	// The directory is kept for a failure's logs, removed after success.
	defer func() {
		if err == nil {
			c.Close()
			os.RemoveAll(dir)
		}
	}()

	if err := c.CreateNamespace(ctx, namespace); err != nil {
		return err
	}
	// waitInsteadOfSelfCheck: 0s skips cert-manager's fixed 60 s wait after
	// its DNS self-check; `make e2e` scenario a keeps the real self-check.
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
	if once {
		return nil
	}
	fmt.Printf("\nThe environment stays up. Explore it with:\n  export KUBECONFIG=%s\n  kubectl get certificates -A\n"+
		"Component logs are in %s. Ctrl-C stops everything.\n", c.AdminKubeconfig, c.LogDir)
	<-ctx.Done()
	return nil
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
