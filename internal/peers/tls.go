package peers

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// Identity is the TLS certificate of the replicas' connections: the
// webhook's own serving certificate, which every replica mounts from one
// Secret. A connection is accepted, by client and by server, when the
// other end's certificate chains to the CA file and names the same DNS
// names as this replica's own: a sender sends its token only to a replica
// of this webhook. The certificate is not what admits a request: anyone who
// gets one signed by the webhook's CA has it, and the token does that
// (Admission). The files are read again when they change (cert-manager
// renews the Secret and the kubelet updates the mounted files); replicas
// that disagree while one of them has not seen the renewal yet refuse each
// other, and each serves its requests itself until they agree again.
type Identity struct {
	certFile, keyFile, caFile string

	mu      sync.Mutex
	read    time.Time
	stamp   string
	cert    *tls.Certificate
	names   []string
	roots   *x509.CertPool
	loadErr error
}

// NewIdentity reads the certificate, key and CA files; caFile empty trusts
// the certificate itself (self-signed, or one shared leaf).
func NewIdentity(certFile, keyFile, caFile string) (*Identity, error) {
	id := &Identity{certFile: certFile, keyFile: keyFile, caFile: caFile}
	if _, err := id.current(); err != nil {
		return nil, err
	}
	return id, nil
}

// reloadEvery bounds how often the files are looked at.
const reloadEvery = 10 * time.Second

// current returns the certificate, reading the files again when they
// changed; a failed reread keeps the last good one.
func (id *Identity) current() (*tls.Certificate, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.cert != nil && time.Since(id.read) < reloadEvery {
		return id.cert, nil
	}
	id.read = time.Now()
	stamp := id.fileStamp()
	if id.cert != nil && stamp == id.stamp {
		return id.cert, nil
	}
	cert, names, roots, err := id.load()
	if err != nil {
		if id.cert != nil {
			return id.cert, nil
		}
		return nil, err
	}
	id.cert, id.names, id.roots, id.stamp = cert, names, roots, stamp
	return cert, nil
}

func (id *Identity) fileStamp() string {
	var s string
	for _, f := range []string{id.certFile, id.keyFile, id.caFile} {
		if f == "" {
			continue
		}
		if fi, err := os.Stat(f); err == nil {
			s += fmt.Sprintf("%s:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return s
}

func (id *Identity) load() (*tls.Certificate, []string, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(id.certFile, id.keyFile)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("peer certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, nil, fmt.Errorf("peer certificate %s: %w", id.certFile, err)
	}
	if len(leaf.DNSNames) == 0 {
		return nil, nil, nil, fmt.Errorf("peer certificate %s names no DNS name; replicas recognise each other by the serving certificate's DNS names", id.certFile)
	}
	cert.Leaf = leaf
	roots := x509.NewCertPool()
	if id.caFile == "" {
		roots.AddCert(leaf)
	} else {
		pem, err := os.ReadFile(id.caFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("peer CA: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, nil, nil, fmt.Errorf("peer CA %s holds no PEM certificate", id.caFile)
		}
	}
	names := slices.Clone(leaf.DNSNames)
	slices.Sort(names)
	return &cert, names, roots, nil
}

// verify accepts a peer's certificate chain: it chains to the CA and names
// exactly this replica's DNS names.
func (id *Identity) verify(rawCerts [][]byte, _ [][]*x509.Certificate) error {
	if _, err := id.current(); err != nil {
		return err
	}
	id.mu.Lock()
	names, roots := id.names, id.roots
	id.mu.Unlock()
	if len(rawCerts) == 0 {
		return errors.New("the peer presented no certificate")
	}
	certs := make([]*x509.Certificate, 0, len(rawCerts))
	for _, raw := range rawCerts {
		c, err := x509.ParseCertificate(raw)
		if err != nil {
			return fmt.Errorf("the peer's certificate does not parse: %w", err)
		}
		certs = append(certs, c)
	}
	intermediates := x509.NewCertPool()
	for _, c := range certs[1:] {
		intermediates.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("the peer's certificate is not from this webhook's CA: %w", err)
	}
	theirs := slices.Clone(certs[0].DNSNames)
	slices.Sort(theirs)
	if !slices.Equal(theirs, names) {
		return fmt.Errorf("the peer's certificate names %v, not this webhook's %v", theirs, names)
	}
	return nil
}

// ServerConfig is the peer listener's TLS: a client certificate is required
// and verified by the same rule.
func (id *Identity) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return id.current() },
		// The chain is verified by verify, against the CA as it is now.
		ClientAuth:            tls.RequireAnyClientCert,
		VerifyPeerCertificate: id.verify,
	}
}

// ClientConfig is the TLS of a request to a peer, which is dialled by
// address: its certificate names the Service, not the pod, so verify checks
// it instead of the host name.
func (id *Identity) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		GetClientCertificate:  func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return id.current() },
		InsecureSkipVerify:    true, //nolint:gosec // verify checks the chain and the names
		VerifyPeerCertificate: id.verify,
	}
}
