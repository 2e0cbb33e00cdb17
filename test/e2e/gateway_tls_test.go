//go:build e2e

package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/certbridge/certbridge/test/localcluster"
)

// l: an Istio ingress gateway served from the Private CA. A server
// Certificate for gw.example.com and a client Certificate (client auth)
// come from an AlibabaPCAIssuer; the Istio Gateways of the README, SIMPLE
// and MUTUAL, are applied against Istio's CRDs. No Envoy runs here, so a Go
// crypto/tls server is configured from the Secret as the gateway's
// listener is: SIMPLE serves tls.crt and tls.key; MUTUAL also requires a
// client certificate and verifies it against the Secret's ca.crt. The
// client certificate is accepted, a handshake without one and one with a
// certificate of another CA are refused; in SIMPLE mode a client verifies
// the chain and the host name against ca.crt.
func (e *env) scenarioL(t *testing.T) {
	t.Parallel()
	const ns, host = "scenario-l", "gw.example.com"
	e.namespace(t, ns, true)
	e.apply(t, fmt.Sprintf(`
apiVersion: certbridge.io/v1alpha1
kind: AlibabaPCAIssuer
metadata: {name: pca, namespace: %[1]s}
spec:
  caIdentifier: %[2]s
  auth:
    accessKeyIdSecretRef: {name: alidns-access-key, key: access-key-id}
    accessKeySecretSecretRef: {name: alidns-access-key, key: access-key-secret}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: gw-example-com, namespace: %[1]s}
spec:
  secretName: gw-example-com
  privateKey: {algorithm: RSA, size: 2048}   # the simulated sub-CA's key is RSA
  usages: [server auth, digital signature, key encipherment]
  dnsNames: [%[3]s]
  issuerRef: {group: certbridge.io, kind: AlibabaPCAIssuer, name: pca}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: gw-client, namespace: %[1]s}
spec:
  secretName: gw-client
  commonName: gw-client
  privateKey: {algorithm: RSA, size: 2048}
  usages: [client auth, digital signature, key encipherment]
  uris: [spiffe://cluster.local/ns/%[1]s/sa/gw-client]
  issuerRef: {group: certbridge.io, kind: AlibabaPCAIssuer, name: pca}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw-simple, namespace: %[1]s}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 443, name: https, protocol: HTTPS}
      hosts: [%[3]s]
      tls: {mode: SIMPLE, credentialName: gw-example-com}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw-mutual, namespace: %[1]s}
spec:
  selector: {istio: ingressgateway}
  servers:
    - port: {number: 443, name: https, protocol: HTTPS}
      hosts: [%[3]s]
      tls: {mode: MUTUAL, credentialName: gw-example-com}
`, ns, localcluster.PCASubCA, host))
	server := e.waitReady(t, ns, "gw-example-com", 2*time.Minute)
	client := e.waitReady(t, ns, "gw-client", 2*time.Minute)

	caPool := x509.NewCertPool()
	if !caPool.AppendCertsFromPEM(server.Data["ca.crt"]) {
		t.Fatal("the server Secret has no ca.crt")
	}
	serverPair := keyPair(t, server)
	clientPair := keyPair(t, client)
	leaf := verifyPEMChain(t, "the server certificate", server.Data["tls.crt"], caPool, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, host)
	clientLeaf := verifyPEMChain(t, "the client certificate", client.Data["tls.crt"], caPool, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	// Another CA's client certificate, with client auth: trusted by nothing here.
	foreign := foreignClientCert(t)

	// SIMPLE: the gateway serves tls.crt (leaf and sub-CA) and tls.key.
	simple := startTLSServer(t, &tls.Config{Certificates: []tls.Certificate{serverPair}, MinVersion: tls.VersionTLS12})
	trustCA := &tls.Config{RootCAs: caPool, ServerName: host, MinVersion: tls.VersionTLS12}
	if r := simple.dial(t, trustCA); r.clientErr != nil || r.serverErr != nil {
		t.Errorf("SIMPLE, client trusting ca.crt, for %s: client %v, server %v", host, r.clientErr, r.serverErr)
	}
	wrongHost := trustCA.Clone()
	wrongHost.ServerName = "other.example.com"
	var hostErr x509.HostnameError
	if r := simple.dial(t, wrongHost); !errors.As(r.clientErr, &hostErr) {
		t.Errorf("SIMPLE, client asking for other.example.com: %v, want a host name error", r.clientErr)
	}
	var unknown x509.UnknownAuthorityError
	if r := simple.dial(t, &tls.Config{RootCAs: x509.NewCertPool(), ServerName: host}); !errors.As(r.clientErr, &unknown) {
		t.Errorf("SIMPLE, client trusting no CA: %v, want an unknown authority error", r.clientErr)
	}

	// MUTUAL: as SIMPLE, and client certificates required and verified
	// against ca.crt.
	mutual := startTLSServer(t, &tls.Config{Certificates: []tls.Certificate{serverPair}, MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: caPool})
	withClient := trustCA.Clone()
	withClient.Certificates = []tls.Certificate{clientPair}
	accepted := mutual.dial(t, withClient)
	if accepted.clientErr != nil || accepted.serverErr != nil || accepted.peer != "gw-client" {
		t.Errorf("MUTUAL with the client certificate: client %v, server %v, peer %q", accepted.clientErr, accepted.serverErr, accepted.peer)
	}
	noCert := mutual.dial(t, trustCA)
	if noCert.serverErr == nil || !strings.Contains(noCert.serverErr.Error(), "client didn't provide a certificate") || noCert.clientErr == nil {
		t.Errorf("MUTUAL without a client certificate: client %v, server %v; want both refused", noCert.clientErr, noCert.serverErr)
	}
	// Go's client sends only a certificate of a CA the server names in its
	// request; curl and most clients send what they are given.
	withForeign := trustCA.Clone()
	withForeign.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }
	other := mutual.dial(t, withForeign)
	var untrusted x509.UnknownAuthorityError
	if !errors.As(other.serverErr, &untrusted) || other.clientErr == nil {
		t.Errorf("MUTUAL with another CA's certificate: client %v, server %v; want an unknown authority", other.clientErr, other.serverErr)
	}
	root := parsePEM(t, server.Data["ca.crt"])[0]
	t.Logf("l: from AlibabaPCAIssuer: server %s; client %s, usages %v; both verify to the Secret's ca.crt, the root %s", summary(leaf), summary(clientLeaf), clientLeaf.ExtKeyUsage, root.Subject)
	t.Logf("l: SIMPLE: a client trusting ca.crt verified the chain and %s; other.example.com failed (%v); a client trusting no CA failed (%v)", host, hostErr, unknown)
	t.Logf("l: MUTUAL: the client certificate was accepted (peer %q); without one the gateway refused (%v); another CA's was refused (%v)",
		accepted.peer, noCert.serverErr, other.serverErr)
}

func keyPair(t *testing.T, s *corev1.Secret) tls.Certificate {
	t.Helper()
	pair, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"])
	if err != nil {
		t.Fatalf("Secret %s/%s: %v", s.Namespace, s.Name, err)
	}
	return pair
}

// foreignClientCert is a client certificate of a CA of its own.
func foreignClientCert(t *testing.T) tls.Certificate {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another-ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "gw-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	pair, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// tlsServer accepts one handshake per dial and reports its outcome.
type tlsServer struct {
	ln      net.Listener
	results chan handshake
}

type handshake struct {
	clientErr, serverErr error
	// peer is the client certificate's common name.
	peer string
}

func startTLSServer(t *testing.T, cfg *tls.Config) *tlsServer {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsServer{ln: ln, results: make(chan handshake, 1)}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			tc := conn.(*tls.Conn)
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			h := handshake{serverErr: tc.Handshake()}
			if h.serverErr == nil {
				if peers := tc.ConnectionState().PeerCertificates; len(peers) > 0 {
					h.peer = peers[0].Subject.CommonName
				}
				_, _ = tc.Write([]byte("hello\n"))
			}
			_ = tc.Close()
			s.results <- h
		}
	}()
	return s
}

// dial makes one connection with cfg and reads the server's greeting: with
// TLS 1.3 a refused client certificate shows only after the client's
// handshake, on the first read.
func (s *tlsServer) dial(t *testing.T, cfg *tls.Config) handshake {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.ln.Addr().String(), cfg)
	var clientErr error
	if err != nil {
		clientErr = err
	} else {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		line, rerr := bufio.NewReader(conn).ReadString('\n')
		if rerr != nil {
			clientErr = rerr
		} else if line != "hello\n" {
			clientErr = fmt.Errorf("read %q", line)
		}
		_ = conn.Close()
	}
	select {
	case h := <-s.results:
		h.clientErr = clientErr
		return h
	case <-time.After(15 * time.Second):
		t.Fatal("the TLS server reported no handshake")
		return handshake{}
	}
}
