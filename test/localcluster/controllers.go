package localcluster

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// startControllers runs kube-controller-manager (garbage collector,
// namespace, Deployment, ReplicaSet and EndpointSlice controllers, the
// ServiceAccount and root CA publishers, …) under the identity and RBAC a
// cluster gives it, and on the node kube-scheduler.
func (c *Cluster) startControllers(ctx context.Context) error {
	pki := filepath.Join(c.Dir, "pki")
	kubeconfig, err := c.componentKubeconfig("kube-controller-manager", "system:kube-controller-manager")
	if err != nil {
		return err
	}
	kcm, err := c.start("kube-controller-manager", c.opts.KubeControllerManager, nil,
		"--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false",
		// Each controller under its own ServiceAccount, as kubeadm runs it.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+filepath.Join(pki, "sa.key"),
		"--root-ca-file="+filepath.Join(pki, "ca.crt"),
		"--cluster-signing-cert-file="+filepath.Join(pki, "ca.crt"), "--cluster-signing-key-file="+filepath.Join(pki, "ca.key"),
		"--v=1")
	if err != nil {
		return err
	}
	watch := []*process{kcm}
	if c.opts.Node {
		kubeconfig, err := c.componentKubeconfig("kube-scheduler", "system:kube-scheduler")
		if err != nil {
			return err
		}
		scheduler, err := c.start("kube-scheduler", c.opts.KubeScheduler, nil,
			"--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
			"--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false", "--v=1")
		if err != nil {
			return err
		}
		watch = append(watch, scheduler)
	}
	// The ServiceAccount controller makes every namespace's default
	// ServiceAccount: once kube-system's is there, the controllers run.
	return poll(ctx, 60*time.Second, "kube-controller-manager (kube-system's default ServiceAccount)", func(ctx context.Context) error {
		_, err := c.Kube.CoreV1().ServiceAccounts("kube-system").Get(ctx, "default", metav1.GetOptions{})
		return err
	}, watch...)
}

// createCertbridgeNamespace creates certbridge's namespace at the
// restricted Pod Security level, enforced by kube-apiserver's admission.
func (c *Cluster) createCertbridgeNamespace(ctx context.Context) error {
	labels := map[string]string{}
	for _, mode := range []string{"enforce", "warn", "audit"} {
		labels["pod-security.kubernetes.io/"+mode] = "restricted"
		labels["pod-security.kubernetes.io/"+mode+"-version"] = "latest"
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace, Labels: labels}}
	if _, err := c.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", Namespace, err)
	}
	return nil
}

// tarLayer is an image layer holding one executable file.
func tarLayer(name string, r io.Reader) (v1.Layer, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(body); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer)), nil })
}
