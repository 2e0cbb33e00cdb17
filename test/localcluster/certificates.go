package localcluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WaitCertificateReady waits for a Certificate's Ready condition and returns
// its Secret; on a timeout the error says what cert-manager's objects say.
func (c *Cluster) WaitCertificateReady(ctx context.Context, namespace, name string, timeout time.Duration) (*corev1.Secret, error) {
	var secret *corev1.Secret
	err := poll(ctx, timeout, fmt.Sprintf("Certificate %s/%s Ready", namespace, name), func(ctx context.Context) error {
		crt, err := c.CM.CertmanagerV1().Certificates(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return err
		}
		if err != nil {
			return err
		}
		for _, cond := range crt.Status.Conditions {
			if cond.Type == cmapi.CertificateConditionReady && cond.Status == cmmeta.ConditionTrue {
				secret, err = c.Kube.CoreV1().Secrets(namespace).Get(ctx, crt.Spec.SecretName, metav1.GetOptions{})
				return err
			}
		}
		return fmt.Errorf("not Ready")
	})
	if err != nil {
		// A fresh context: the caller's may be what ran out.
		describeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return nil, fmt.Errorf("%w\n%s", err, c.Describe(describeCtx, namespace))
	}
	return secret, nil
}

// Describe summarises cert-manager's objects in a namespace: Certificates,
// CertificateRequests, Orders, Challenges and Issuers with their conditions.
func (c *Cluster) Describe(ctx context.Context, namespace string) string {
	var b strings.Builder
	if list, err := c.CM.CertmanagerV1().Certificates(namespace).List(ctx, metav1.ListOptions{}); err == nil {
		for _, o := range list.Items {
			var parts []string
			for _, cond := range o.Status.Conditions {
				parts = append(parts, fmt.Sprintf("%s=%s (%s: %s)", cond.Type, cond.Status, cond.Reason, cond.Message))
			}
			fmt.Fprintf(&b, "Certificate %s: %s\n", o.Name, strings.Join(parts, "; "))
		}
	}
	if list, err := c.CM.CertmanagerV1().CertificateRequests(namespace).List(ctx, metav1.ListOptions{}); err == nil {
		for _, o := range list.Items {
			fmt.Fprintf(&b, "CertificateRequest %s: %v\n", o.Name, o.Status.Conditions)
		}
	}
	if list, err := c.CM.AcmeV1().Orders(namespace).List(ctx, metav1.ListOptions{}); err == nil {
		for _, o := range list.Items {
			fmt.Fprintf(&b, "Order %s: %s %s\n", o.Name, o.Status.State, o.Status.Reason)
		}
	}
	if list, err := c.CM.AcmeV1().Challenges(namespace).List(ctx, metav1.ListOptions{}); err == nil {
		for _, o := range list.Items {
			fmt.Fprintf(&b, "Challenge %s (%s): state %q presented %v reason %q\n", o.Name, o.Spec.DNSName, o.Status.State, o.Status.Presented, o.Status.Reason)
		}
	}
	if list, err := c.CM.CertmanagerV1().Issuers(namespace).List(ctx, metav1.ListOptions{}); err == nil {
		for _, o := range list.Items {
			fmt.Fprintf(&b, "Issuer %s: %v\n", o.Name, o.Status.Conditions)
		}
	}
	return b.String()
}

// CredentialSecrets is a manifest of both simulated accounts' credentials in
// namespace, under the names the README's examples use.
func (c *Cluster) CredentialSecrets(namespace string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: cloudflare-api-token, namespace: %[1]s}
stringData: {api-token: %[2]s}
---
apiVersion: v1
kind: Secret
metadata: {name: alidns-access-key, namespace: %[1]s}
stringData: {access-key-id: %[3]s, access-key-secret: %[4]s}
`, namespace, c.CloudflareToken, c.AliAccessKeyID, c.AliAccessKeySecret)
}

// ACMEIssuer is a manifest of an Issuer of Pebble's with one certbridge
// webhook solver ("cloudflare" or "alidns"). fast skips cert-manager's
// self-check and its fixed 60 s wait (waitInsteadOfSelfCheck: 0s).
func (c *Cluster) ACMEIssuer(namespace, solver string, fast bool) string {
	return c.ACMEIssuerWith(namespace, solver, fast, GroupName, SolverConfig(solver))
}

// SolverConfig is the webhook.config of a solver that works with the
// simulated accounts' credentials (CredentialSecrets).
func SolverConfig(solver string) string {
	if solver == "alidns" {
		return `{accessKeyIdSecretRef: {name: alidns-access-key, key: access-key-id}, accessKeySecretSecretRef: {name: alidns-access-key, key: access-key-secret}}`
	}
	return `{apiTokenSecretRef: {name: cloudflare-api-token, key: api-token}}`
}

// ACMEIssuerWith is ACMEIssuer with the solver's groupName and config given,
// to reproduce a user's mistake (and its fix) exactly.
func (c *Cluster) ACMEIssuerWith(namespace, solver string, fast bool, groupName, config string) string {
	wait := ""
	if fast {
		wait = "\n        waitInsteadOfSelfCheck: 0s"
	}
	return fmt.Sprintf(`
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: acme-%[2]s, namespace: %[1]s}
spec:
  acme:
    server: %[3]s
    skipTLSVerify: true
    privateKeySecretRef: {name: acme-account}
    solvers:
      - dns01:
          webhook:
            groupName: %[4]s
            solverName: %[2]s
            config: %[5]s%[6]s
`, namespace, solver, c.PebbleDirectory, groupName, config, wait)
}

// Certificate is a manifest of a Certificate whose Secret has its name.
func Certificate(namespace, name, issuerKind, issuerGroup, issuer string, dnsNames ...string) string {
	return fmt.Sprintf(`
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  secretName: %[2]s
  issuerRef: {name: %[5]s, kind: %[3]s, group: %[4]s}
  dnsNames: [%[6]s]
`, namespace, name, issuerKind, issuerGroup, issuer, `"`+strings.Join(dnsNames, `", "`)+`"`)
}

// OriginIssuer is a manifest of a CloudflareOriginIssuer using the
// simulated account's token.
func OriginIssuer(namespace, name string) string {
	return fmt.Sprintf(`
apiVersion: certbridge.io/v1alpha1
kind: CloudflareOriginIssuer
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  auth: {tokenRef: {name: cloudflare-api-token, key: api-token}}
`, namespace, name)
}
