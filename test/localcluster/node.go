package localcluster

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The node's network. Pods live on one Linux bridge whose host side has
// BridgeIP; kube-apiserver, kubelet and the simulators' relays listen there.
// Nothing routes pod traffic beyond the bridge: pods get a route for the
// Service range only (no default route), no masquerade, IP forwarding is
// left as it is, and a guard chain in FORWARD drops whatever would cross
// between the bridge and another interface. The ranges are used by nothing
// else on the machine.
const (
	NodeName    = "certbridge-node"
	BridgeIP    = "10.217.0.1"
	PodCIDR     = "10.217.0.0/24"
	ServiceCIDR = "10.218.0.0/24"
	// kubernetesServiceIP is the first address of ServiceCIDR, which
	// kube-apiserver gives the kubernetes Service.
	kubernetesServiceIP = "10.218.0.1"
	// clusterDNSIP is kube-system/kube-dns's ClusterIP, which kubelet writes
	// into pods' resolv.conf. No DNS server backs it: kube-proxy rejects
	// queries to a Service without endpoints, so a lookup fails at once on
	// the node, as in a cluster whose DNS is down.
	clusterDNSIP = "10.218.0.10"
	bridgeName   = "cbnode0"
	guardChain   = "CERTBRIDGE-NODE"
	// The sandbox image is built here (there is no registry to pull from)
	// under a name of its own, which containerd's sandbox_image names.
	sandboxImage = "localhost/certbridge-e2e/pause:1"
)

// nodeDir holds the node's state (containerd's root and state, kubelet's
// root, pod logs, network namespaces). Its path is fixed so that a run after
// a killed one finds and removes what that one left.
var nodeDir = filepath.Join(os.TempDir(), "certbridge-node")

type node struct {
	dir       string
	lock      *os.File
	kubeProxy string
	socket    string
	runcRoot  string
	// Where pods reach the simulators: relays on BridgeIP.
	cloudflareURL, aliEndpoint string
	relays                     []net.Listener
	calls                      callLog
}

// prepareNode cleans up after an earlier run, then creates the bridge with
// BridgeIP (kube-apiserver binds there), the guard chain and the relays that
// make the simulators reachable from pods.
func (c *Cluster) prepareNode() error {
	for _, b := range []struct{ name, path string }{{"TEST_ASSET_KUBELET", c.opts.Kubelet}, {"TEST_ASSET_KUBE_PROXY", c.opts.KubeProxy},
		{"TEST_ASSET_KUBE_SCHEDULER", c.opts.KubeScheduler}, {"the image archive (make image)", c.opts.ImageArchive}} {
		if b.path == "" {
			return fmt.Errorf("the node needs %s", b.name)
		}
	}
	for _, tool := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the node needs %s (make node-deps installs it from Debian): %w", tool, err)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		return fmt.Errorf("the node needs the CNI plugins in /usr/lib/cni (make node-deps): %w", err)
	}
	lock, err := os.OpenFile(nodeDir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return fmt.Errorf("another run holds the node (%s.lock): %w", nodeDir, err)
	}
	n := &node{dir: nodeDir, lock: lock, kubeProxy: c.opts.KubeProxy,
		socket: filepath.Join(nodeDir, "containerd", "containerd.sock"), runcRoot: filepath.Join(nodeDir, "runc")}
	// What a killed run left goes first; the same steps end this run.
	n.clean(c.opts.Progress)
	c.node = n
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"ip", "link", "add", bridgeName, "type", "bridge"},
		{"ip", "addr", "add", BridgeIP + "/24", "dev", bridgeName},
		{"ip", "link", "set", bridgeName, "up"},
		// The host reaches Services over the bridge too (the aggregator
		// dials the webhook Service's ClusterIP), never the default route.
		{"ip", "route", "add", ServiceCIDR, "dev", bridgeName, "src", BridgeIP},
		{"iptables", "-w", "-N", guardChain},
		{"iptables", "-w", "-A", guardChain, "-i", bridgeName, "!", "-o", bridgeName, "-j", "DROP"},
		{"iptables", "-w", "-A", guardChain, "!", "-i", bridgeName, "-o", bridgeName, "-j", "DROP"},
		{"iptables", "-w", "-I", "FORWARD", "1", "-j", guardChain},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	cf, err := n.relay(strings.TrimPrefix(strings.TrimSuffix(c.Cloudflare.URL(), cfBasePath(c.Cloudflare.URL())), "http://"))
	if err != nil {
		return err
	}
	n.cloudflareURL = "http://" + cf + cfBasePath(c.Cloudflare.URL())
	if n.aliEndpoint, err = n.relay(c.Alibaba.Endpoint()); err != nil {
		return err
	}
	c.step("node network: bridge %s %s, pods %s, Services %s; simulators for pods at %s and %s", bridgeName, BridgeIP, PodCIDR, ServiceCIDR, n.cloudflareURL, n.aliEndpoint)
	return nil
}

func cfBasePath(url string) string {
	if i := strings.Index(strings.TrimPrefix(url, "http://"), "/"); i >= 0 {
		return strings.TrimPrefix(url, "http://")[i:]
	}
	return ""
}

// relay serves on BridgeIP what the simulator at target (on loopback)
// serves, as a reverse proxy that notes which pod sent each call.
func (n *node) relay(target string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(BridgeIP, "0"))
	if err != nil {
		return "", err
	}
	n.relays = append(n.relays, l)
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		n.calls.note(host, r.Method, r.URL.Path)
		proxy.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), nil
}

// Call is one request a pod sent a simulator through its relay.
type Call struct{ From, Method, Path string }

type callLog struct {
	mu    sync.Mutex
	calls []Call
}

func (l *callLog) note(from, method, path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, Call{From: from, Method: method, Path: path})
}

// SimulatorCalls are the calls pods sent the simulators so far: which pod
// (its IP) sent what.
func (c *Cluster) SimulatorCalls() []Call {
	c.node.calls.mu.Lock()
	defer c.node.calls.mu.Unlock()
	return slices.Clone(c.node.calls.calls)
}

// SimulatorURLsForPods are the chart values that point certbridge's pods at
// the simulators (through the relays on the bridge).
func (c *Cluster) SimulatorURLsForPods() (cloudflareURL, aliEndpoint string) {
	return c.node.cloudflareURL, "http://" + c.node.aliEndpoint
}

// startNode runs containerd, imports the sandbox image and certbridge's
// image, and runs kubelet and kube-proxy; it returns once the node is Ready.
func (c *Cluster) startNode(ctx context.Context) error {
	n := c.node
	if err := n.writeConfigs(); err != nil {
		return err
	}
	// containerd pulls nothing here: every image is imported. A pull that
	// happens all the same meets a proxy that refuses at once, so no request
	// (nor a DNS lookup of a registry) leaves the machine.
	noPull := []string{"HTTP_PROXY=http://127.0.0.1:9", "HTTPS_PROXY=http://127.0.0.1:9", "NO_PROXY=", "http_proxy=", "https_proxy=", "no_proxy="}
	containerd, err := c.start("containerd", "containerd", noPull, "--config="+filepath.Join(n.dir, "containerd.toml"), "--log-level=info")
	if err != nil {
		return err
	}
	if err := poll(ctx, 30*time.Second, "containerd", func(ctx context.Context) error {
		_, err := n.ctr(ctx, "version")
		return err
	}, containerd); err != nil {
		return err
	}
	pause, err := c.buildSandboxImage(ctx)
	if err != nil {
		return err
	}
	for _, archive := range []string{pause, c.opts.ImageArchive} {
		if err := c.ImportImage(ctx, archive); err != nil {
			return err
		}
	}
	if err := c.ApplyYAML(ctx, `
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: `+clusterDNSIP+`
  selector: {k8s-app: kube-dns}
  ports:
    - {name: dns, port: 53, protocol: UDP}
    - {name: dns-tcp, port: 53, protocol: TCP}
`); err != nil {
		return err
	}
	kubelet, err := c.startKubelet(ctx)
	if err != nil {
		return err
	}
	proxy, err := c.startKubeProxy(ctx)
	if err != nil {
		return err
	}
	return poll(ctx, 90*time.Second, "node "+NodeName+" Ready", func(ctx context.Context) error {
		nd, err := c.Kube.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range nd.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				if cond.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("Ready=%s: %s", cond.Status, cond.Message)
			}
		}
		return errors.New("no Ready condition yet")
	}, containerd, kubelet, proxy)
}

// ImportImage imports a docker-archive or OCI tarball into containerd's
// k8s.io namespace, the one its CRI plugin (and so kubelet) uses.
func (c *Cluster) ImportImage(ctx context.Context, archive string) error {
	out, err := c.node.ctr(ctx, "images", "import", "--platform=linux/amd64", archive)
	if err != nil {
		return err
	}
	c.step("imported %s: %s", filepath.Base(archive), strings.TrimSpace(string(out)))
	return nil
}

// Ctr runs ctr against the node's containerd in the k8s.io namespace.
func (c *Cluster) Ctr(ctx context.Context, args ...string) ([]byte, error) {
	return c.node.ctr(ctx, args...)
}

func (n *node) ctr(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address=" + n.socket, "--namespace=k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// NodeDir is where the node keeps its state: containerd's root and state,
// kubelet's root, pod logs (pod-logs/).
func (c *Cluster) NodeDir() string { return c.node.dir }

// NodeSocket is containerd's socket, for ctr --address.
func (c *Cluster) NodeSocket() string { return c.node.socket }

func (n *node) writeConfigs() error {
	for _, d := range []string{"containerd", "cni", "cni-ipam", "kubelet", "pod-logs", "runc"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o700); err != nil {
			return err
		}
	}
	// cgroup v1 and the cgroupfs driver (no systemd here); no
	// CAP_SYS_RESOURCE, so the sandbox's oom_score_adj is clamped to what
	// the process may set.
	containerdConfig := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %[3]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[4]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[6]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[7]q
`, filepath.Join(n.dir, "containerd", "root"), filepath.Join(n.dir, "containerd", "state"), n.socket,
		filepath.Join(n.dir, "containerd", "opt"), sandboxImage, n.runcRoot, filepath.Join(n.dir, "cni"))
	if err := os.WriteFile(filepath.Join(n.dir, "containerd.toml"), []byte(containerdConfig), 0o600); err != nil {
		return err
	}
	// The bridge exists already with BridgeIP, so the plugin is no gateway
	// (it would turn IP forwarding on); pods route the Service range to the
	// bridge and nothing else. containerd sets up loopback itself.
	conflist := map[string]any{"cniVersion": "0.4.0", "name": "certbridge-node", "plugins": []any{
		map[string]any{"type": "bridge", "bridge": bridgeName, "isGateway": false, "isDefaultGateway": false, "ipMasq": false, "hairpinMode": true,
			"ipam": map[string]any{"type": "host-local", "dataDir": filepath.Join(n.dir, "cni-ipam"),
				"ranges": []any{[]any{map[string]any{"subnet": PodCIDR, "gateway": BridgeIP}}},
				"routes": []any{map[string]any{"dst": ServiceCIDR, "gw": BridgeIP}}}},
		map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}},
	}}
	b, _ := json.MarshalIndent(conflist, "", "  ")
	if err := os.WriteFile(filepath.Join(n.dir, "cni", "10-certbridge-node.conflist"), b, 0o600); err != nil {
		return err
	}
	// Host-network pods (none here) would resolve through the pod's own
	// loopback: nothing.
	return os.WriteFile(filepath.Join(n.dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o600)
}

// buildSandboxImage builds the pause program (cmd/pause) and lays it in a
// docker-archive named sandboxImage.
func (c *Cluster) buildSandboxImage(ctx context.Context) (string, error) {
	return c.BuildProgramImage(ctx, "./test/localcluster/cmd/pause", sandboxImage)
}

// BuildProgramImage builds the program of package pkg (a path from the
// module's root) for the node and lays it, as /<its name>, the image's
// entrypoint, run as 65535, in a docker-archive named ref, for
// ImportImage.
func (c *Cluster) BuildProgramImage(ctx context.Context, pkg, ref string) (string, error) {
	prog := filepath.Base(pkg)
	bin := filepath.Join(c.Dir, prog)
	build := execGo(ctx, c.opts.ModuleRoot, "build", "-trimpath", "-o", bin, pkg)
	build.Env = append(build.Env, "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %w: %s", pkg, err, out)
	}
	f, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer f.Close()
	layer, err := tarLayer(prog, f)
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "", err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint = []string{"/" + prog}
	cfg.Config.User = "65535:65535"
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return "", err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", err
	}
	archive := filepath.Join(c.Dir, prog+".tar")
	return archive, tarball.WriteToFile(archive, tag, img)
}

func (c *Cluster) startKubelet(ctx context.Context) (*process, error) {
	n := c.node
	dir := filepath.Join(c.Dir, "pki")
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	client, err := c.authority.issue(pkix.Name{CommonName: "system:node:" + NodeName, Organization: []string{"system:nodes"}}, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	serving, err := c.authority.issue(pkix.Name{CommonName: NodeName}, []string{BridgeIP, NodeName}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	if err := serving.write(filepath.Join(dir, "kubelet.crt"), filepath.Join(dir, "kubelet.key")); err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(c.Dir, "kubelet.kubeconfig")
	if err := writeKubeconfig(kubeconfig, c.Host, c.clusterCA, &clientcmdapi.AuthInfo{ClientCertificateData: client.certPEM, ClientKeyData: client.keyPEM}); err != nil {
		return nil, err
	}
	config := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
		// This host is cgroup v1, without systemd.
		"failCgroupV1": false, "cgroupDriver": "cgroupfs",
		"containerRuntimeEndpoint": "unix://" + n.socket,
		"address":                  BridgeIP, "port": ports[0], "readOnlyPort": 0, "healthzPort": 0,
		"tlsCertFile": filepath.Join(dir, "kubelet.crt"), "tlsPrivateKeyFile": filepath.Join(dir, "kubelet.key"),
		"authentication": map[string]any{"anonymous": map[string]any{"enabled": false}, "webhook": map[string]any{"enabled": true},
			"x509": map[string]any{"clientCAFile": filepath.Join(dir, "ca.crt")}},
		"authorization": map[string]any{"mode": "Webhook"},
		"clusterDomain": "cluster.local", "clusterDNS": []string{clusterDNSIP}, "resolvConf": filepath.Join(n.dir, "resolv.conf"),
		"podLogsDir": filepath.Join(n.dir, "pod-logs"),
		"failSwapOn": false, "maxPods": 30, "serializeImagePulls": false,
		// A busy disk must not evict the test's pods, nor image garbage
		// collection remove the imported images.
		"evictionHard":                map[string]string{"memory.available": "1Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%", "imagefs.available": "1%"},
		"imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
		"rotateCertificates": false, "serverTLSBootstrap": false,
		"nodeStatusUpdateFrequency": "2s", "syncFrequency": "10s",
	}
	b, _ := json.Marshal(config)
	configFile := filepath.Join(n.dir, "kubelet.json")
	if err := os.WriteFile(configFile, b, 0o600); err != nil {
		return nil, err
	}
	return c.start("kubelet", c.opts.Kubelet, nil, "--config="+configFile, "--kubeconfig="+kubeconfig,
		"--root-dir="+filepath.Join(n.dir, "kubelet"), "--hostname-override="+NodeName, "--node-ip="+BridgeIP, "--v=2")
}

func (c *Cluster) startKubeProxy(ctx context.Context) (*process, error) {
	kubeconfig, err := c.componentKubeconfig("kube-proxy", "system:kube-proxy")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	config := map[string]any{
		"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
		"clientConnection": map[string]any{"kubeconfig": kubeconfig},
		"mode":             "iptables", "clusterCIDR": PodCIDR, "hostnameOverride": NodeName,
		"healthzBindAddress": hostPort(ports[0]), "metricsBindAddress": hostPort(ports[1]),
		// NodePorts only on the bridge, never on localhost (that would
		// need route_localnet) nor another interface.
		"nodePortAddresses": []string{BridgeIP + "/32"},
		"iptables":          map[string]any{"localhostNodePorts": false, "masqueradeAll": false},
		// Leave the host's conntrack settings as they are.
		"conntrack": map[string]any{"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
	}
	b, _ := json.Marshal(config)
	configFile := filepath.Join(c.node.dir, "kube-proxy.json")
	if err := os.WriteFile(configFile, b, 0o600); err != nil {
		return nil, err
	}
	p, err := c.start("kube-proxy", c.opts.KubeProxy, nil, "--config="+configFile, "--v=2")
	if err != nil {
		return nil, err
	}
	return p, poll(ctx, 60*time.Second, "kube-proxy /healthz", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+hostPort(ports[0])+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/healthz: %s", resp.Status)
		}
		return nil
	}, p)
}

// componentKubeconfig writes a kubeconfig with a client certificate for
// user (the identity kube-apiserver's bootstrap RBAC grants the component).
func (c *Cluster) componentKubeconfig(component, user string, groups ...string) (string, error) {
	client, err := c.authority.issue(pkix.Name{CommonName: user, Organization: groups}, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.Dir, component+".kubeconfig")
	return path, writeKubeconfig(path, c.Host, c.clusterCA, &clientcmdapi.AuthInfo{ClientCertificateData: client.certPEM, ClientKeyData: client.keyPEM})
}

// teardown removes everything the node made: containers, processes,
// mounts, network namespaces, the bridge and its veths, iptables rules,
// cgroups, its directory; then it releases the lock.
func (n *node) teardown(w io.Writer) {
	for _, l := range n.relays {
		l.Close()
	}
	n.clean(w)
	if n.lock != nil {
		n.lock.Close()
	}
}

// clean is teardown's work, also run at the start of a run for what a
// killed one left. Every step is bounded and goes on after a failure,
// which it reports.
func (n *node) clean(w io.Writer) {
	report := func(format string, args ...any) { fmt.Fprintf(w, "localcluster: node cleanup: "+format+"\n", args...) }
	run := func(args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	}
	// Containers, by runc's state (its root is the node's).
	for _, ns := range dirEntries(n.runcRoot) {
		root := filepath.Join(n.runcRoot, ns)
		for _, id := range dirEntries(root) {
			if out, err := run("runc", "--root", root, "delete", "--force", id); err != nil {
				report("runc delete %s: %v: %s", id, err, out)
			}
		}
	}
	// Processes started for the node, by the directory in their command
	// line: containerd, its shims, kubelet, kube-proxy.
	for _, pid := range processesMentioning(n.dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitGone(processesMentioning(n.dir), 10*time.Second)
	// Mounts under the directory (container root filesystems, volumes,
	// network namespaces), deepest first.
	for _, m := range mountsUnder(n.dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			report("unmount %s: %v", m, err)
		}
	}
	if out, err := run("ip", "-o", "link", "show", "master", bridgeName); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(line); len(f) > 1 {
				veth, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
				_, _ = run("ip", "link", "del", veth)
			}
		}
	}
	if _, err := run("ip", "link", "show", bridgeName); err == nil {
		if out, err := run("ip", "link", "del", bridgeName); err != nil {
			report("ip link del %s: %v: %s", bridgeName, err, out)
		}
	}
	// kube-proxy removes its own chains; then the portmap plugin's and the
	// guard chain.
	if n.kubeProxy != "" {
		if out, err := run(n.kubeProxy, "--cleanup"); err != nil {
			report("kube-proxy --cleanup: %v: %s", err, lastLines(out, 5))
		}
	}
	removeChains(run, report)
	removeCgroups(report)
	if err := os.RemoveAll(n.dir); err != nil {
		report("%v", err)
	}
}

func dirEntries(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

func processesMentioning(s string) []int {
	self := os.Getpid()
	var pids []int
	for _, e := range dirEntries("/proc") {
		pid, err := strconv.Atoi(e)
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e, "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitGone(pids []int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mounts = append(mounts, f[4])
		}
	}
	slices.SortFunc(mounts, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return slices.Compact(mounts)
}

// removeChains deletes, from iptables and ip6tables, the chains the node's
// components made with the rules that jump to them: the guard chain, the
// CNI portmap plugin's (CNI-*), and kubelet's and whatever kube-proxy
// --cleanup left (KUBE-*; no other Kubernetes runs on the machine).
func removeChains(run func(...string) ([]byte, error), report func(string, ...any)) {
	ours := func(chain string) bool {
		return chain == guardChain || strings.HasPrefix(chain, "CNI-") || strings.HasPrefix(chain, "KUBE-")
	}
	for _, iptables := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle"} {
			out, err := run(iptables, "-w", "-t", table, "-S")
			if err != nil {
				continue
			}
			var chains []string
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "-N" && ours(f[1]) {
					chains = append(chains, f[1])
				}
			}
			for _, line := range strings.Split(string(out), "\n") {
				f := strings.Fields(line)
				if len(f) > 3 && f[0] == "-A" && !ours(f[1]) && slices.Contains(chains, f[len(f)-1]) && f[len(f)-2] == "-j" {
					args := append([]string{iptables, "-w", "-t", table, "-D"}, f[1:]...)
					if out, err := run(args...); err != nil {
						report("%s: %v: %s", strings.Join(args, " "), err, out)
					}
				}
			}
			for _, chain := range chains {
				_, _ = run(iptables, "-w", "-t", table, "-F", chain)
			}
			for _, chain := range chains {
				if out, err := run(iptables, "-w", "-t", table, "-X", chain); err != nil {
					report("%s -t %s -X %s: %v: %s", iptables, table, chain, err, out)
				}
			}
		}
	}
}

// removeCgroups removes the pods' cgroups kubelet made (cgroupfs driver,
// cgroup v1: /kubepods in each hierarchy), deepest first.
func removeCgroups(report func(string, ...any)) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := syscall.Rmdir(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				report("rmdir %s: %v", dirs[i], err)
			}
		}
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// NodeLeftovers lists what a node run left on the machine: the bridge or
// its veths, iptables chains, processes, mounts, cgroups, its directory.
// After Close it is empty.
func NodeLeftovers() []string {
	var left []string
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, " "+bridgeName+":") || strings.Contains(line, "master "+bridgeName) {
				left = append(left, "link: "+strings.TrimSpace(line))
			}
		}
	}
	for _, iptables := range []string{"iptables-save", "ip6tables-save"} {
		if out, err := exec.Command(iptables).Output(); err == nil {
			for _, line := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(line, ":") && (strings.HasPrefix(line, ":"+guardChain) || strings.HasPrefix(line, ":CNI-") || strings.HasPrefix(line, ":KUBE-")) {
					left = append(left, iptables+": chain "+strings.Fields(line[1:])[0])
				}
			}
		}
	}
	for _, pid := range processesMentioning(nodeDir) {
		left = append(left, fmt.Sprintf("process %d", pid))
	}
	for _, m := range mountsUnder(nodeDir) {
		left = append(left, "mount "+m)
	}
	if roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods"); len(roots) > 0 {
		left = append(left, "cgroups "+strings.Join(roots, " "))
	}
	if _, err := os.Stat(nodeDir); err == nil {
		left = append(left, "directory "+nodeDir)
	}
	return left
}

// CleanNode removes what a node run left (NodeLeftovers), as every node run
// does first; kubeProxy, when set, removes kube-proxy's rules as it would.
func CleanNode(w io.Writer, kubeProxy string) error {
	lock, err := os.OpenFile(nodeDir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("another run holds the node (%s.lock): %w", nodeDir, err)
	}
	(&node{dir: nodeDir, kubeProxy: kubeProxy, runcRoot: filepath.Join(nodeDir, "runc")}).clean(w)
	return nil
}

// NodeDirectory is where node runs keep their state.
func NodeDirectory() string { return nodeDir }
