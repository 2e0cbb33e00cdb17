package localcluster

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// startControlPlane runs etcd and a kube-apiserver with the aggregation layer
// configured (front-proxy client certificate and request-header CA), RBAC,
// and service-account tokens.
func (c *Cluster) startControlPlane(ctx context.Context) error {
	dir := filepath.Join(c.Dir, "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	file := func(name string) string { return filepath.Join(dir, name) }

	clusterCA, err := newAuthority("certbridge-e2e-cluster-ca")
	if err != nil {
		return err
	}
	proxyCA, err := newAuthority("certbridge-e2e-front-proxy-ca")
	if err != nil {
		return err
	}
	// On the node, kube-apiserver listens on the bridge's address: pods
	// reach it there through the kubernetes Service, whose endpoint is the
	// advertised address.
	address, serviceRange := "127.0.0.1", "10.96.0.0/16"
	hosts := []string{"127.0.0.1", "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if c.opts.Node {
		address, serviceRange = BridgeIP, ServiceCIDR
		hosts = append(hosts, BridgeIP, kubernetesServiceIP)
	}
	serving, err := clusterCA.issue(pkix.Name{CommonName: "kube-apiserver"}, hosts, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	admin, err := clusterCA.issue(pkix.Name{CommonName: "certbridge-e2e-admin", Organization: []string{"system:masters"}}, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}
	proxyClient, err := proxyCA.issue(pkix.Name{CommonName: "front-proxy-client"}, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}
	for _, w := range []struct {
		l         leaf
		cert, key string
	}{{serving, "apiserver.crt", "apiserver.key"}, {admin, "admin.crt", "admin.key"}, {proxyClient, "front-proxy-client.crt", "front-proxy-client.key"}} {
		if err := w.l.write(file(w.cert), file(w.key)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(file("ca.crt"), clusterCA.pem, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(file("front-proxy-ca.crt"), proxyCA.pem, 0o600); err != nil {
		return err
	}
	if err := writeSigningKey(file("sa.key"), file("sa.pub")); err != nil {
		return err
	}
	c.clusterCA = clusterCA.pem
	c.authority = clusterCA
	kubeletClient, err := clusterCA.issue(pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}}, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}
	if err := kubeletClient.write(file("kubelet-client.crt"), file("kubelet-client.key")); err != nil {
		return err
	}
	if err := os.WriteFile(file("ca.key"), clusterCA.keyPEM(), 0o600); err != nil {
		return err
	}

	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]
	etcdURL := "http://" + hostPort(etcdPort)
	peerURL := "http://" + hostPort(peerPort)
	etcd, err := c.start("etcd", c.opts.Etcd, nil,
		"--name=e2e", "--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=e2e="+peerURL, "--unsafe-no-fsync", "--log-level=warn")
	if err != nil {
		return err
	}

	authorization := "--authorization-mode=RBAC"
	if c.opts.Node {
		// As a cluster runs kubelets: the Node authorizer and NodeRestriction
		// admission keep the node to its own pods' Secrets and objects.
		// PodSecurity admission is on by default.
		authorization = "--authorization-mode=Node,RBAC"
	}
	apiserver, err := c.start("kube-apiserver", c.opts.KubeAPIServer, nil,
		"--etcd-servers="+etcdURL,
		"--bind-address="+address, "--advertise-address="+address, fmt.Sprintf("--secure-port=%d", apiPort),
		"--tls-cert-file="+file("apiserver.crt"), "--tls-private-key-file="+file("apiserver.key"),
		"--client-ca-file="+file("ca.crt"),
		authorization, "--enable-admission-plugins=NodeRestriction",
		"--kubelet-client-certificate="+file("kubelet-client.crt"), "--kubelet-client-key="+file("kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP",
		"--service-cluster-ip-range="+serviceRange,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+file("sa.pub"), "--service-account-signing-key-file="+file("sa.key"),
		"--requestheader-client-ca-file="+file("front-proxy-ca.crt"),
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file="+file("front-proxy-client.crt"), "--proxy-client-key-file="+file("front-proxy-client.key"),
		"--enable-aggregator-routing=false",
	)
	if err != nil {
		return err
	}
	c.Host = "https://" + net.JoinHostPort(address, strconv.Itoa(apiPort))
	c.admin = &rest.Config{Host: c.Host, TLSClientConfig: rest.TLSClientConfig{
		CAData: clusterCA.pem, CertData: admin.certPEM, KeyData: admin.keyPEM}, QPS: 50, Burst: 100}
	if c.Kube, err = kubernetes.NewForConfig(c.admin); err != nil {
		return err
	}
	c.AdminKubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	if err := writeKubeconfig(c.AdminKubeconfig, c.Host, clusterCA.pem, &clientcmdapi.AuthInfo{
		ClientCertificateData: admin.certPEM, ClientKeyData: admin.keyPEM}); err != nil {
		return err
	}
	return poll(ctx, 90*time.Second, "kube-apiserver /readyz", func(ctx context.Context) error {
		body, err := c.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("%w: %s", err, body)
		}
		return nil
	}, etcd, apiserver)
}

func writeKubeconfig(path, host string, caPEM []byte, auth *clientcmdapi.AuthInfo) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: caPEM}
	cfg.AuthInfos["e2e"] = auth
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "e2e"}
	cfg.CurrentContext = "e2e"
	return clientcmd.WriteToFile(*cfg, path)
}

// ServiceAccountKubeconfig creates the ServiceAccount if needed and writes a
// kubeconfig with a token for it: the component then has exactly the RBAC
// the charts grant that ServiceAccount, as in a cluster.
func (c *Cluster) ServiceAccountKubeconfig(ctx context.Context, namespace, name string) (string, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if _, err := c.Kube.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !isAlreadyExists(err) {
		return "", err
	}
	expiry := int64(24 * 3600)
	tr, err := c.Kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for ServiceAccount %s/%s: %w", namespace, name, err)
	}
	path := filepath.Join(c.Dir, fmt.Sprintf("%s.%s.kubeconfig", namespace, name))
	c.tokens = append(c.tokens, tr.Status.Token)
	return path, writeKubeconfig(path, c.Host, c.clusterCA, &clientcmdapi.AuthInfo{Token: tr.Status.Token})
}
