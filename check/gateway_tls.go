package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serverSecret is one Secret a listener or server terminates TLS with.
type serverSecret struct {
	label     string // prefix of the findings: "listener https", "servers[0] https"
	namespace string // where the gateway reads it
	name      string
	field     string // the field that names it, e.g. spec.listeners[0].tls.certificateRefs[0]
	// where is why the Secret is read from namespace, for the fix.
	where string
	// istio: the keys Istio accepts (cert/key before tls.crt/tls.key);
	// otherwise Gateway API's tls.crt/tls.key.
	istio bool
	// mutual: the client CA is needed too (Istio MUTUAL, OPTIONAL_MUTUAL).
	mutual bool
	// caName is Istio's caCertCredentialName, which takes precedence.
	caName string
	// hosts the certificate must cover; none: the listener serves any.
	hosts []string
	// gatewayNamespace is the Gateway's own namespace, named when the
	// Secret is there instead of where it is read.
	gatewayNamespace string
	// gatewayUID is the Gateway API Gateway's uid; shim says gateway-shim
	// is expected to write the Secret.
	gatewayUID string
	shim       bool
}

// getSecret reads a Secret once per run.
func (g *gatewayChecker) getSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	res, seen := g.secrets[namespace+"/"+name]
	if !seen {
		res.s, res.err = g.o.Kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		g.secrets[namespace+"/"+name] = res
	}
	return res.s, res.err
}

// check reports the Secret, its keys and key pair, the chain, the client CA
// for mutual TLS, the hosts, the validity and the Certificate that writes
// it. No value of the Secret is ever part of a finding.
func (g *gatewayChecker) checkSecret(ctx context.Context, s serverSecret) {
	label := s.label + " Secret"
	sec, err := g.getSecret(ctx, s.namespace, s.name)
	switch {
	case apierrors.IsNotFound(err):
		g.secretNotFound(ctx, s)
		return
	case apierrors.IsForbidden(err):
		g.r.fail(label, fmt.Sprintf("you may not get Secret %s/%s, so it cannot be checked", s.namespace, s.name),
			"run the check with a kubeconfig (--kubeconfig, --context) that may get Secrets in "+s.namespace)
		return
	case err != nil:
		g.r.fail(label, fmt.Sprintf("reading Secret %s/%s failed: %v", s.namespace, s.name, err), "retry; check the connection to the cluster")
		return
	}
	certKey, keyKey := corev1.TLSCertKey, corev1.TLSPrivateKeyKey
	if s.istio && len(sec.Data["cert"]) > 0 && len(sec.Data["key"]) > 0 {
		// Istio prefers the generic secret's keys when both are set.
		certKey, keyKey = "cert", "key"
	}
	var missing []string
	for _, k := range []string{certKey, keyKey} {
		if len(sec.Data[k]) == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		want := "tls.crt and tls.key"
		if s.istio {
			want = "tls.crt and tls.key (or cert and key)"
		}
		g.r.fail(label, fmt.Sprintf("Secret %s/%s (type %s) has no %s, or it is empty; %s: the gateway needs %s", s.namespace, s.name, sec.Type, strings.Join(missing, " nor "), keysOf(sec.Data), want),
			fmt.Sprintf("let a cert-manager Certificate with spec.secretName: %s in %q write it, or recreate it: kubectl -n %s create secret tls %s --cert=<chain.pem> --key=<key.pem>", s.name, s.namespace, s.namespace, s.name))
		g.owner(ctx, s.label, s.namespace, s.name, sec.Annotations, s.gatewayUID, s.shim)
		return
	}
	chain, chainErr := parseChain(sec.Data[certKey])
	_, pairErr := tls.X509KeyPair(sec.Data[certKey], sec.Data[keyKey])
	typeNote := ""
	if !s.istio && sec.Type != corev1.SecretTypeTLS {
		typeNote = fmt.Sprintf(" (Gateway API's core support is for type %s; Istio and Envoy Gateway accept %s too)", corev1.SecretTypeTLS, sec.Type)
	}
	switch {
	case chainErr != nil:
		g.r.fail(label, fmt.Sprintf("Secret %s/%s key %q: %v", s.namespace, s.name, certKey, chainErr),
			fmt.Sprintf("put the PEM certificate chain, leaf first, in %q", certKey))
	case pairErr != nil:
		g.r.fail(label, fmt.Sprintf("Secret %s/%s: the private key in %q does not match the certificate in %q, or does not parse", s.namespace, s.name, keyKey, certKey),
			fmt.Sprintf("put the key of the leaf certificate in %q; a Secret written by cert-manager is rewritten when you delete it", keyKey))
	default:
		if order := chainOrder(chain); order != "" {
			g.r.fail(label, fmt.Sprintf("Secret %s/%s key %q: %s", s.namespace, s.name, certKey, order),
				fmt.Sprintf("order the chain in %q leaf first, each certificate followed by the one that signed it", certKey))
		} else {
			g.r.pass(label, fmt.Sprintf("Secret %s/%s, type %s%s: %s and %s; the key matches the certificate; %s", s.namespace, s.name, sec.Type, typeNote, certKey, keyKey, describeChain(chain)))
		}
	}
	if s.mutual {
		g.clientCA(ctx, s, sec)
	}
	if len(chain) > 0 {
		g.hosts(s, chain[0])
		g.validity(s, chain[0], sec.Annotations)
	}
	g.owner(ctx, s.label, s.namespace, s.name, sec.Annotations, s.gatewayUID, s.shim)
}

// secretNotFound says where the Secret is instead, and what writes it.
func (g *gatewayChecker) secretNotFound(ctx context.Context, s serverSecret) {
	label := s.label + " Secret"
	detail := fmt.Sprintf("Secret %q (%s) not found in namespace %q", s.name, s.field, s.namespace)
	elsewhere := g.elsewhere(ctx, s.name, s.namespace)
	inGatewayNS := false
	for _, ns := range elsewhere {
		if ns == fmt.Sprintf("%q", s.gatewayNamespace) && s.gatewayNamespace != s.namespace {
			inGatewayNS = true
		}
	}
	if len(elsewhere) > 0 {
		detail += fmt.Sprintf("; a Secret named %q exists in %s", s.name, strings.Join(elsewhere, ", "))
	}
	var fix string
	switch {
	case inGatewayNS:
		detail += fmt.Sprintf(", the Gateway's namespace, but %s", s.where)
		fix = fmt.Sprintf("create the Certificate in %q instead (metadata.namespace: %s, spec.secretName: %s), so cert-manager writes the Secret there; or run the gateway workload in %q",
			s.namespace, s.namespace, s.name, s.gatewayNamespace)
	case s.shim:
		fix = "cert-manager's gateway-shim writes it through a Certificate of the same name: see the lines about gateway-shim and the Certificate"
	default:
		fix = fmt.Sprintf("create it in %q (%s): a cert-manager Certificate with metadata.namespace: %s and spec.secretName: %s writes it", s.namespace, s.where, s.namespace, s.name)
	}
	g.r.fail(label, detail, fix)
	// What is to write the Secret, if anything: a Certificate's conditions
	// say why it has not.
	if s.shim || g.certificateFor(ctx, s.namespace, s.name, "") != nil {
		g.owner(ctx, s.label, s.namespace, s.name, nil, s.gatewayUID, s.shim)
	}
}

// clientCA finds the CA that verifies client certificates the way Istio
// does: caCertCredentialName first, then the Secret <name>-cacert, then the
// keys cacert and ca.crt of the credential's own Secret.
func (g *gatewayChecker) clientCA(ctx context.Context, s serverSecret, sec *corev1.Secret) {
	label := s.label + " client CA"
	type source struct {
		what string
		data map[string][]byte
	}
	var sources []source
	var notes []string
	if s.caName != "" {
		if ca, err := g.getSecret(ctx, s.namespace, s.caName); err == nil {
			sources = append(sources, source{fmt.Sprintf("Secret %s/%s (caCertCredentialName)", s.namespace, s.caName), ca.Data})
		} else if cm, err := g.o.Kube.CoreV1().ConfigMaps(s.namespace).Get(ctx, s.caName, metav1.GetOptions{}); err == nil {
			data := map[string][]byte{}
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
			sources = append(sources, source{fmt.Sprintf("ConfigMap %s/%s (caCertCredentialName)", s.namespace, s.caName), data})
		} else {
			notes = append(notes, fmt.Sprintf("caCertCredentialName %q is neither a Secret nor a ConfigMap in %q", s.caName, s.namespace))
		}
	}
	if len(sources) == 0 {
		caSecret := s.name + "-cacert"
		if ca, err := g.getSecret(ctx, s.namespace, caSecret); err == nil {
			sources = append(sources, source{"Secret " + s.namespace + "/" + caSecret, ca.Data})
		} else {
			notes = append(notes, fmt.Sprintf("there is no Secret %s/%s", s.namespace, caSecret))
		}
		sources = append(sources, source{"Secret " + s.namespace + "/" + s.name, sec.Data})
	}
	for _, src := range sources {
		for _, key := range []string{"cacert", corev1.ServiceAccountRootCAKey} {
			if len(src.data[key]) == 0 {
				continue
			}
			certs, err := parseChain(src.data[key])
			if err != nil {
				g.r.fail(label, fmt.Sprintf("%s key %q: %v", src.what, key, err), fmt.Sprintf("put the PEM certificates of the CAs that sign client certificates in %q", key))
				return
			}
			names := make([]string, 0, len(certs))
			for _, c := range certs {
				names = append(names, subjectOf(c))
			}
			g.r.pass(label, fmt.Sprintf("%s key %q: %d CA certificate(s) verify client certificates: %s", src.what, key, len(certs), strings.Join(names, "; ")))
			return
		}
		if src.what == "Secret "+s.namespace+"/"+s.name {
			notes = append(notes, fmt.Sprintf("Secret %s/%s has no ca.crt nor cacert (%s)", s.namespace, s.name, keysOf(src.data)))
		} else {
			notes = append(notes, src.what+" has no ca.crt nor cacert")
		}
	}
	g.r.fail(label, "mutual TLS needs the CA that signs client certificates, and the gateway finds none: "+strings.Join(notes, "; "),
		fmt.Sprintf("an issuer that returns its CA (CA, Vault, AlibabaPCAIssuer, CloudflareOriginIssuer) writes ca.crt into the Secret; ACME issuers do not. Otherwise create it beside the Secret: kubectl -n %s create secret generic %s-cacert --from-file=ca.crt=<client-ca.pem>",
			s.namespace, s.name))
}

// hosts checks that the leaf covers every host of the listener or server.
func (g *gatewayChecker) hosts(s serverSecret, leaf *x509.Certificate) {
	label := s.label + " hosts"
	sans := sanList(leaf)
	if len(s.hosts) == 0 {
		g.r.pass(label, fmt.Sprintf("the listener names no host, so it serves any; the certificate covers %s", sans))
		return
	}
	var covered, missed []string
	for _, h := range s.hosts {
		if covers(leaf, h) {
			covered = append(covered, h)
		} else {
			missed = append(missed, h)
		}
	}
	if len(missed) == 0 {
		g.r.pass(label, fmt.Sprintf("the certificate covers %s (SANs: %s)", strings.Join(covered, ", "), sans))
		return
	}
	detail := fmt.Sprintf("the certificate in Secret %s/%s does not cover %s: its SANs are %s", s.namespace, s.name, strings.Join(missed, ", "), sans)
	if cn := leaf.Subject.CommonName; cn != "" && len(leaf.DNSNames) == 0 {
		detail += fmt.Sprintf(" (clients ignore the common name %q)", cn)
	}
	detail += "; a wildcard covers one label only: *.example.com covers a.example.com, not example.com nor a.b.example.com"
	g.r.fail(label, detail, fmt.Sprintf("add %s to the Certificate's spec.dnsNames (cert-manager reissues at once), or fix the hostname of the listener", strings.Join(missed, ", ")))
}

// validity checks that the leaf is valid now and says for how long.
func (g *gatewayChecker) validity(s serverSecret, leaf *x509.Certificate, annotations map[string]string) {
	label := s.label + " validity"
	renew := fmt.Sprintf("replace the certificate in Secret %s/%s", s.namespace, s.name)
	if annotations["cert-manager.io/certificate-name"] != "" {
		renew = fmt.Sprintf("cert-manager should have renewed it: see the Certificate line; kubectl -n %s describe certificate %s", s.namespace, annotations["cert-manager.io/certificate-name"])
	}
	switch {
	case g.now.After(leaf.NotAfter):
		g.r.fail(label, fmt.Sprintf("the certificate expired %s (%s ago): clients refuse it", leaf.NotAfter.UTC().Format(time.RFC3339), days(g.now.Sub(leaf.NotAfter))), renew)
	case g.now.Before(leaf.NotBefore):
		g.r.fail(label, fmt.Sprintf("the certificate is not valid before %s (in %s): clients refuse it until then; is a clock wrong?", leaf.NotBefore.UTC().Format(time.RFC3339), days(leaf.NotBefore.Sub(g.now))), renew)
	default:
		g.r.pass(label, fmt.Sprintf("valid until %s, %s left", leaf.NotAfter.UTC().Format(time.RFC3339), days(leaf.NotAfter.Sub(g.now))))
	}
}

// days renders a duration for a certificate's lifetime.
func days(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(math.Floor(d.Hours()/24)))
	case d >= time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	default:
		return d.Round(time.Second).String()
	}
}

// covers reports whether a TLS client accepts leaf for host: a DNS SAN
// equal to host, or a wildcard SAN "*.<parent>" for a host one label below
// parent. A wildcard host (a listener's *.example.com) needs that same
// wildcard SAN. The common name is not used, as clients do not use it.
func covers(leaf *x509.Certificate, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, san := range leaf.DNSNames {
		san = strings.ToLower(strings.TrimSuffix(san, "."))
		if san == host {
			return true
		}
		if parent, ok := strings.CutPrefix(san, "*."); ok && !strings.HasPrefix(host, "*.") {
			label, rest, found := strings.Cut(host, ".")
			if found && label != "" && rest == parent {
				return true
			}
		}
	}
	for _, ip := range leaf.IPAddresses {
		if ip.String() == host {
			return true
		}
	}
	return false
}

// parseChain parses every PEM block of data as a certificate.
func parseChain(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("holds a PEM block of type %q where only certificates belong", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d of the chain does not parse: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("holds no PEM certificate")
	}
	return certs, nil
}

// chainOrder says what is wrong with the order of a chain, or "".
func chainOrder(chain []*x509.Certificate) string {
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return fmt.Sprintf("certificate %d (%s) is not signed by certificate %d (%s) after it: the chain is out of order or holds a stranger", i+1, subjectOf(chain[i]), i+2, subjectOf(chain[i+1]))
		}
	}
	return ""
}

func describeChain(chain []*x509.Certificate) string {
	parts := make([]string, 0, len(chain))
	for _, c := range chain {
		parts = append(parts, subjectOf(c))
	}
	s := fmt.Sprintf("a chain of %d certificate(s): %s", len(chain), strings.Join(parts, " ← "))
	if last := chain[len(chain)-1]; last.Issuer.String() != last.Subject.String() {
		s += fmt.Sprintf("; the last is signed by %s", last.Issuer.String())
	}
	return s
}

// subjectOf names a certificate by its common name, else its first SAN.
func subjectOf(c *x509.Certificate) string {
	switch {
	case c.Subject.CommonName != "":
		return "CN=" + c.Subject.CommonName
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	}
	return c.Subject.String()
}

func sanList(c *x509.Certificate) string {
	var sans []string
	sans = append(sans, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		sans = append(sans, ip.String())
	}
	if len(sans) == 0 {
		return "none"
	}
	return strings.Join(sans, ", ")
}

// keysOf lists a Secret's keys, never its values.
func keysOf(data map[string][]byte) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return "it has no keys"
	}
	return "it has the keys " + strings.Join(keys, ", ")
}
