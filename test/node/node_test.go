//go:build e2e

// Package node installs certbridge as users do — make image's image, the
// chart with helm install — on a real node (kubelet, containerd, runc, CNI,
// kube-proxy, kube-scheduler, kube-controller-manager) of the local cluster,
// and runs the scenarios a user meets there. Run it with `make e2e-node`.
package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/certbridge/certbridge/internal/peers"
	"github.com/certbridge/certbridge/test/localcluster"
	"github.com/certbridge/certbridge/test/testutil"
)

const (
	ns      = localcluster.Namespace
	release = localcluster.Release
	webhook = release + "-webhook"
	issuer  = release + "-issuer"
	// Zones of the Cloudflare account the waves may use; each wave uses
	// at least waveZones of them.
	candidateZones = 32
	waveZones      = 4
)

func candidateZone(i int) string { return fmt.Sprintf("wave-%02d.example", i+1) }

type env struct {
	c   *localcluster.Cluster
	ctx context.Context
	// image is make image's, as the chart's defaults name it.
	repository, tag string
}

func TestNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the node runs containerd, a bridge and iptables rules: run as root (make e2e-node)")
	}
	began := time.Now()
	e := start(t)
	for i := range candidateZones {
		e.c.Cloudflare.AddZone(candidateZone(i))
	}
	if !t.Run("a_helm_install_pods_ready_restricted_uid_65532_read_only_no_secret_in_logs", e.scenarioA) {
		t.Fatal("certbridge did not install: the other scenarios need it")
	}
	t.Run("b_acme_cloudflare_alidns_origin_ca_private_ca_ready", e.scenarioB)
	t.Run("c_peers_through_endpointslices_wave_of_200", e.scenarioC)
	t.Run("d_webhook_pod_force_deleted_mid_wave", e.scenarioD)
	t.Run("e_helm_upgrade_to_another_image_mid_wave", e.scenarioE)
	t.Run("f_issuer_pod_deleted_while_requests_wait", e.scenarioF)
	t.Run("h_a_pod_of_another_namespace_with_the_webhooks_certificate_is_refused_on_the_peer_port", e.scenarioH)
	t.Run("g_helm_uninstall_leaves_only_the_crds", e.scenarioG)
	t.Logf("node: %s from an empty directory to the last scenario", time.Since(began).Round(time.Second))
}

func start(t *testing.T) *env {
	t.Helper()
	opts, err := localcluster.OptionsFromEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts.Node = true
	opts.ImageArchive = os.Getenv("CERTBRIDGE_IMAGE_ARCHIVE")
	image := os.Getenv("CERTBRIDGE_IMAGE")
	repository, tag, ok := strings.Cut(image, ":")
	if opts.ImageArchive == "" || !ok {
		t.Fatal("CERTBRIDGE_IMAGE_ARCHIVE and CERTBRIDGE_IMAGE (repository:tag) name make image's amd64 archive: run make e2e-node")
	}
	opts.Progress = testWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), 18*time.Minute)
	t.Cleanup(cancel)
	c, err := localcluster.Start(ctx, opts)
	if err != nil {
		dumpLogs(t, opts.Dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		// The run leaves nothing: no bridge, veth, iptables chain, process,
		// mount, cgroup or directory of the node's.
		if left := localcluster.NodeLeftovers(); len(left) > 0 {
			t.Errorf("the node left behind:\n%s", strings.Join(left, "\n"))
		}
	})
	e := &env{c: c, ctx: ctx, repository: repository, tag: tag}
	t.Cleanup(func() {
		if t.Failed() {
			e.dumpState(t)
			dumpLogs(t, opts.Dir)
			e.hold(t, opts.Dir)
		}
	})
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func dumpLogs(t *testing.T, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("--- %s (last %d lines)\n%s", filepath.Base(l), len(lines), strings.Join(lines, "\n"))
	}
}

// dumpState prints what a user would look at: pods, events, containerd's
// containers.
func (e *env) dumpState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, args := range [][]string{{"get", "pods", "-A", "-o", "wide"}, {"get", "events", "-n", ns, "--sort-by=.lastTimestamp"}, {"describe", "pods", "-n", ns}} {
		out, _ := e.c.Kubectl(ctx, nil, args...)
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
	if list, err := e.c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, p := range list.Items {
			out, _ := e.c.Kubectl(ctx, nil, "logs", "-n", ns, p.Name, "--all-containers", "--tail=30")
			t.Logf("kubectl logs %s --tail=30:\n%s", p.Name, out)
		}
	}
	if out, err := e.c.Ctr(ctx, "containers", "list"); err == nil {
		t.Logf("ctr -n k8s.io containers list:\n%s", out)
	}
}

// hold keeps a failed run's node up for CERTBRIDGE_NODE_HOLD (make
// e2e-node NODE_HOLD=10m) so that one can look inside before it is torn down.
func (e *env) hold(t *testing.T, dir string) {
	d, err := time.ParseDuration(os.Getenv("CERTBRIDGE_NODE_HOLD"))
	if err != nil || d <= 0 {
		return
	}
	t.Logf("holding the node for %s: KUBECONFIG=%s; ctr --address %s -n k8s.io …; logs in %s",
		d, e.c.AdminKubeconfig, e.c.NodeSocket(), filepath.Join(dir, "logs"))
	time.Sleep(d)
}

func (e *env) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.c.Kubectl(e.ctx, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func (e *env) helm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.c.Helm(e.ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// scenarioA: helm install; every pod Ready; the APIService Available
// through the Service to the pods; no PodSecurity warning or refusal at
// restricted; the processes run as 65532 on a read-only root filesystem;
// no pod's log holds a secret value.
func (e *env) scenarioA(t *testing.T) {
	out := e.helm(t, e.c.HelmInstallArgs("install", e.repository, e.tag)...)
	t.Logf("helm install:\n%s", out)
	for _, bad := range []string{"PodSecurity", "violate", "Warning", "forbidden"} {
		if strings.Contains(out, bad) {
			t.Errorf("helm install printed %q: a user at the restricted level sees it", bad)
		}
	}
	e.waitDeployment(t, webhook, 2)
	e.waitDeployment(t, issuer, 1)
	pods := e.pods(t)
	if len(pods) != 3 {
		t.Fatalf("want 2 webhook pods and 1 issuer pod, got %d: %v", len(pods), podNames(pods))
	}
	for _, p := range pods {
		if p.Spec.NodeName != localcluster.NodeName {
			t.Errorf("pod %s runs on %q, not on the node", p.Name, p.Spec.NodeName)
		}
	}
	// The aggregator reaches the pods through the Service's ClusterIP
	// (kube-proxy's rules): the APIService is Available and answers.
	testutil.Eventually(t, 60*time.Second, "APIService v1alpha1."+localcluster.GroupName+" Available", func() (bool, string) {
		if err := e.c.APIServiceAvailable(e.ctx); err != nil {
			return false, err.Error()
		}
		err := e.c.Kube.Discovery().RESTClient().Get().AbsPath("/apis", localcluster.GroupName, "v1alpha1").Do(e.ctx).Error()
		return err == nil, fmt.Sprint(err)
	})
	// kube-apiserver lists the pods that would violate restricted.
	if out := e.kubectl(t, "label", "--dry-run=server", "--overwrite", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted"); strings.Contains(out, "Warning") || strings.Contains(out, "violate") {
		t.Errorf("pods of %s violate restricted:\n%s", ns, out)
	}
	// A user's first look after an install: no warning event (a refused
	// pod, a failing probe, a crash), no restart. Two kinds clear by
	// themselves within seconds of a fresh install, while cert-manager
	// issues the chart's CA and then the webhook's serving certificate: the
	// CA Issuer waiting for its Secret, the webhook pods' tls volume
	// waiting for theirs (docs/troubleshooting.md says so).
	bootstrap := []string{
		"ErrGetKeyPair: Error getting keypair for CA issuer: secrets \"" + release + "-ca\" not found",
		"ErrInitIssuer: Error initializing issuer: secrets \"" + release + "-ca\" not found",
		"FailedMount: MountVolume.SetUp failed for volume \"tls\" : secret \"" + release + "-webhook-tls\" not found",
	}
	events := e.kubectl(t, "get", "events", "-n", ns, "--field-selector", "type=Warning",
		"-o", `jsonpath={range .items[*]}{.involvedObject.name}: {.reason}: {.message}{"\n"}{end}`)
	for _, ev := range strings.Split(strings.TrimSpace(events), "\n") {
		_, what, _ := strings.Cut(ev, ": ")
		if ev != "" && !slices.Contains(bootstrap, what) {
			t.Errorf("warning event in %s after the install: %s", ns, ev)
		}
	}
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount > 0 {
				t.Errorf("container %s of pod %s restarted %d times", cs.Name, p.Name, cs.RestartCount)
			}
		}
	}
	// What the kernel says of each certbridge process in its container.
	procs := e.certbridgeProcesses(t)
	if len(procs) != 3 {
		t.Fatalf("want 3 certbridge processes in containerd's tasks, got %d", len(procs))
	}
	for _, pid := range procs {
		uid, gid := procIDs(t, pid)
		if uid != "65532 65532 65532 65532" || gid != "65532 65532 65532 65532" {
			t.Errorf("process %d runs as uid %q gid %q, want 65532", pid, uid, gid)
		}
		if opts := rootMountOptions(t, pid); !slices.Contains(strings.Split(opts, ","), "ro") {
			t.Errorf("process %d's root filesystem is mounted %q, want read-only", pid, opts)
		}
		// Nothing routes the pod's traffic off the machine: its routes are
		// its subnet and the Service range, on the bridge.
		if routes := podRoutes(t, pid); !slices.Equal(routes, []string{localcluster.PodCIDR, localcluster.ServiceCIDR}) {
			t.Errorf("process %d's network namespace routes %v, want only %s and %s", pid, routes, localcluster.PodCIDR, localcluster.ServiceCIDR)
		}
	}
	t.Logf("a: %d pods Ready on %s; certbridge processes %v run as 65532 on a read-only root", len(pods), localcluster.NodeName, procs)
	e.assertNoSecretInPodLogs(t)
}

// assertNoSecretInPodLogs reads each pod's log as a user does (kubectl
// logs, through kube-apiserver and kubelet) and looks for the simulated
// accounts' credentials and the pods' own ServiceAccount tokens.
func (e *env) assertNoSecretInPodLogs(t *testing.T) {
	secrets := append(e.c.Secrets(), e.podTokens(t)...)
	for _, p := range e.pods(t) {
		out := e.kubectl(t, "logs", "-n", ns, p.Name, "--all-containers")
		if strings.TrimSpace(out) == "" {
			t.Errorf("kubectl logs %s is empty", p.Name)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(out, s) {
				t.Errorf("kubectl logs %s holds a secret value (%d characters, starting %.4q)", p.Name, len(s), s)
			}
		}
	}
}

// podTokens are the ServiceAccount tokens kubelet projected into the pods.
func (e *env) podTokens(t *testing.T) []string {
	files, _ := filepath.Glob(filepath.Join(e.c.NodeDir(), "kubelet", "pods", "*", "volumes", "kubernetes.io~projected", "*", "token"))
	var tokens []string
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
			tokens = append(tokens, string(b))
		}
	}
	if len(tokens) == 0 {
		t.Error("found no projected ServiceAccount token in kubelet's pod volumes")
	}
	return tokens
}

func (e *env) waitDeployment(t *testing.T, name string, replicas int32) {
	t.Helper()
	testutil.Eventually(t, 3*time.Minute, fmt.Sprintf("Deployment %s: %d replicas updated and available", name, replicas), func() (bool, string) {
		d, err := e.c.Kube.AppsV1().Deployments(ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		s := d.Status
		return s.ObservedGeneration == d.Generation && s.UpdatedReplicas == replicas && s.AvailableReplicas == replicas && s.Replicas == replicas,
			fmt.Sprintf("%d replicas, %d updated, %d available", s.Replicas, s.UpdatedReplicas, s.AvailableReplicas)
	})
}

func (e *env) pods(t *testing.T, selector ...string) []corev1.Pod {
	t.Helper()
	list, err := e.c.Kube.CoreV1().Pods(ns).List(e.ctx, metav1.ListOptions{LabelSelector: strings.Join(selector, ",")})
	if err != nil {
		t.Fatal(err)
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			pods = append(pods, p)
		}
	}
	return pods
}

func webhookSelector() string { return "app.kubernetes.io/component=webhook" }

func podNames(pods []corev1.Pod) []string {
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return names
}

// certbridgeProcesses are the host PIDs of containerd's tasks running
// /certbridge.
func (e *env) certbridgeProcesses(t *testing.T) []int {
	out, err := e.c.Ctr(e.ctx, "tasks", "list")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[2] != "RUNNING" {
			continue
		}
		pid, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.HasPrefix(string(cmdline), "/certbridge\x00") {
			pids = append(pids, pid)
		}
	}
	return pids
}

func procIDs(t *testing.T, pid int) (uid, gid string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Uid:"); ok {
			uid = strings.Join(strings.Fields(v), " ")
		}
		if v, ok := strings.CutPrefix(line, "Gid:"); ok {
			gid = strings.Join(strings.Fields(v), " ")
		}
	}
	return uid, gid
}

// podRoutes are the IPv4 routes of the process's network namespace
// (/proc/<pid>/net/route), as destination/prefix, sorted.
func podRoutes(t *testing.T, pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/route", pid))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		dst, err1 := strconv.ParseUint(f[1], 16, 32)
		mask, err2 := strconv.ParseUint(f[7], 16, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		// Little-endian, as the kernel prints them.
		ip := net.IPv4(byte(dst), byte(dst>>8), byte(dst>>16), byte(dst>>24))
		ones, _ := net.IPv4Mask(byte(mask), byte(mask>>8), byte(mask>>16), byte(mask>>24)).Size()
		routes = append(routes, fmt.Sprintf("%s/%d", ip, ones))
	}
	sort.Strings(routes)
	return routes
}

// rootMountOptions are the mount options of / as the process sees it.
func rootMountOptions(t *testing.T, pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[4] == "/" {
			return f[5]
		}
	}
	t.Fatalf("process %d has no / in its mountinfo", pid)
	return ""
}

// scenarioB: ACME apex + wildcard through each solver, an Origin CA and a
// Private CA certificate through the issuer pod.
func (e *env) scenarioB(t *testing.T) {
	const bns = "node-b"
	e.namespaceWithCredentials(t, bns)
	e.apply(t, e.c.ACMEIssuer(bns, "cloudflare", true))
	e.apply(t, e.c.ACMEIssuer(bns, "alidns", true))
	e.apply(t, localcluster.OriginIssuer(bns, "origin"))
	e.apply(t, `
apiVersion: certbridge.io/v1alpha1
kind: AlibabaPCAIssuer
metadata: {name: pca, namespace: `+bns+`}
spec:
  caIdentifier: `+localcluster.PCASubCA+`
  regionId: cn-hangzhou
  auth:
    accessKeyIdSecretRef: {name: alidns-access-key, key: access-key-id}
    accessKeySecretSecretRef: {name: alidns-access-key, key: access-key-secret}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: pca, namespace: `+bns+`}
spec:
  secretName: pca
  privateKey: {algorithm: RSA, size: 2048}
  issuerRef: {group: certbridge.io, kind: AlibabaPCAIssuer, name: pca}
  dnsNames: [pca.example.net]
`)
	e.apply(t, localcluster.Certificate(bns, "cloudflare", "Issuer", "cert-manager.io", "acme-cloudflare", localcluster.CloudflareZone, "*."+localcluster.CloudflareZone))
	e.apply(t, localcluster.Certificate(bns, "alidns", "Issuer", "cert-manager.io", "acme-alidns", localcluster.AliDNSDomain, "*."+localcluster.AliDNSDomain))
	e.apply(t, localcluster.Certificate(bns, "origin", "CloudflareOriginIssuer", "certbridge.io", "origin", "origin."+localcluster.CloudflareZone))
	for _, name := range []string{"cloudflare", "alidns", "origin", "pca"} {
		if _, err := e.c.WaitCertificateReady(e.ctx, bns, name, 3*time.Minute); err != nil {
			t.Error(err)
		}
	}
	e.assertNoLeftoverRecords(t, "")
}

func (e *env) namespaceWithCredentials(t *testing.T, name string) {
	t.Helper()
	if err := e.c.CreateNamespace(e.ctx, name); err != nil {
		t.Fatal(err)
	}
	e.apply(t, e.c.CredentialSecrets(name))
}

func (e *env) apply(t *testing.T, manifest string) {
	t.Helper()
	if err := e.c.ApplyYAML(e.ctx, manifest); err != nil {
		t.Fatal(err)
	}
}

// assertNoLeftoverRecords waits up to a minute for the zones (all when
// suffix is empty) to hold no TXT record.
func (e *env) assertNoLeftoverRecords(t *testing.T, suffix string) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(time.Minute); ; {
		left = left[:0]
		for _, r := range e.c.Cloudflare.AllRecords() {
			if r.Type == "TXT" && strings.HasSuffix(r.Name, suffix) {
				left = append(left, "cloudflare "+r.Name)
			}
		}
		for _, r := range e.c.Alibaba.AllRecords() {
			if r.Type == "TXT" && strings.HasSuffix(r.FQDN(), suffix) {
				left = append(left, "alidns "+r.FQDN())
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("%d leftover TXT records: %v", len(left), left)
	}
}

// scenarioC: three webhook replicas find each other in the Service's
// EndpointSlices (written by kube-controller-manager); a wave of 200
// challenges over 4 zones; each zone's record changes come from one pod.
func (e *env) scenarioC(t *testing.T) {
	out := e.helm(t, "upgrade", release, "./charts/certbridge", "--namespace", ns, "--reuse-values", "--set", "webhook.replicas=3", "--wait", "--timeout", "3m")
	t.Logf("helm upgrade --set webhook.replicas=3:\n%s", lastLines(out, 3))
	e.waitDeployment(t, webhook, 3)
	members := e.waitPeers(t, 3)
	// Each replica has read the others from the EndpointSlices, as its log
	// says.
	for _, p := range e.pods(t, webhookSelector()) {
		logs := e.kubectl(t, "logs", "-n", ns, p.Name)
		if !strings.Contains(logs, `"Peer replicas changed"`) || !containsAll(logs, members...) {
			t.Errorf("pod %s's log does not list its peers %v in a \"Peer replicas changed\" line", p.Name, members)
		}
	}
	// Zones that the three replicas own between them, as they compute it
	// (internal/peers' ring over the EndpointSlices' addresses), so that
	// whichever replica kube-apiserver sends the wave to hands some zones
	// to the others.
	ring := peers.NewRing(members[0], peers.Static(members))
	zones, owners := pickZones(ring, len(members), 0)
	before := e.scrapeAll(t)
	w := e.wave(t, "node-c", zones, 100, nil)
	after := e.scrapeAll(t)
	w.report(t)
	var forwarded float64
	for ip, m := range after {
		fwd := m.sum("certbridge_peer_forwards_total", "") - before[ip].sum("certbridge_peer_forwards_total", "")
		answered := m.sum("certbridge_peer_forwards_total", `outcome="answered"`) - before[ip].sum("certbridge_peer_forwards_total", `outcome="answered"`)
		batches := m.sum("certbridge_provider_batch_size_count", `provider="cloudflare"`) - before[ip].sum("certbridge_provider_batch_size_count", `provider="cloudflare"`)
		changes := m.sum("certbridge_provider_batch_size_sum", `provider="cloudflare"`) - before[ip].sum("certbridge_provider_batch_size_sum", `provider="cloudflare"`)
		t.Logf("c: pod %s: %.0f peer forwards (%.0f answered by the owner), %.0f Cloudflare change calls carrying %.0f changes", ip, fwd, answered, batches, changes)
		forwarded += answered
	}
	if forwarded == 0 {
		t.Error("no request was handed to a peer: the replicas do not know each other")
	}
	for _, zone := range zones {
		want := []string{strings.Split(owners[zone], ":")[0]}
		if got := w.writers[zone]; !slices.Equal(got, want) {
			t.Errorf("zone %s's records were changed by %v, want its owner %v alone", zone, got, want)
		}
	}
}

// pickZones picks at least waveZones of the candidate zones from the
// first-th on such that each of n replicas owns one or more of them.
func pickZones(ring *peers.Ring, n, first int) (zones []string, owners map[string]string) {
	owners = map[string]string{}
	covered := map[string]bool{}
	for i := first; i < candidateZones; i++ {
		zone := candidateZone(i)
		owner := ring.Owner("cloudflare|" + zone)
		if !covered[owner] || len(zones) < waveZones {
			zones, owners[zone], covered[owner] = append(zones, zone), owner, true
		}
		if len(covered) == n && len(zones) >= waveZones {
			break
		}
	}
	return zones, owners
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// waitPeers waits for the webhook Service's EndpointSlices to list n ready
// endpoints with the peer port, and returns them as host:port.
func (e *env) waitPeers(t *testing.T, n int) []string {
	t.Helper()
	var members []string
	testutil.Eventually(t, 2*time.Minute, fmt.Sprintf("%d ready peer endpoints in %s's EndpointSlices", n, webhook), func() (bool, string) {
		list, err := e.c.Kube.DiscoveryV1().EndpointSlices(ns).List(e.ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + webhook})
		if err != nil {
			return false, err.Error()
		}
		members = members[:0]
		for _, s := range list.Items {
			for _, p := range s.Ports {
				if p.Name == nil || *p.Name != "peer" || p.Port == nil {
					continue
				}
				for _, ep := range s.Endpoints {
					if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
						for _, a := range ep.Addresses {
							members = append(members, net.JoinHostPort(a, strconv.Itoa(int(*p.Port))))
						}
					}
				}
			}
		}
		sort.Strings(members)
		return len(members) == n, fmt.Sprint(members)
	})
	return members
}

// metrics are one pod's Prometheus samples, by series (name{labels}).
type metrics map[string]float64

func (m metrics) sum(name, labelMatch string) float64 {
	var total float64
	for series, v := range m {
		if (series == name || strings.HasPrefix(series, name+"{")) && strings.Contains(series, labelMatch) {
			total += v
		}
	}
	return total
}

// scrapeAll scrapes each running webhook pod's metrics port at its pod IP,
// as Prometheus would.
func (e *env) scrapeAll(t *testing.T) map[string]metrics {
	t.Helper()
	all := map[string]metrics{}
	for _, p := range e.pods(t, webhookSelector()) {
		if p.Status.PodIP == "" {
			continue
		}
		m, err := scrape(e.ctx, "http://"+p.Status.PodIP+":9402/metrics")
		if err != nil {
			t.Errorf("scraping pod %s: %v", p.Name, err)
			continue
		}
		all[p.Status.PodIP] = m
	}
	return all
}

func scrape(ctx context.Context, url string) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	m := metrics{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 8<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// waveResult is what a wave did.
type waveResult struct {
	name                    string
	zones                   int
	certificates, notReady  int
	challenges              int
	calls, writes           int
	writers                 map[string][]string
	writesByImage           map[string]int
	warnings                map[string]int
	took                    time.Duration
	leftover                []string
	failedCertificateEvents []string
}

func (w waveResult) report(t *testing.T) {
	for what, n := range w.warnings {
		t.Logf("%s: %d× warning event %s", w.name, n, what)
	}
	t.Logf("%s: %d Certificates (%d challenges over %d zones) in %s: %d not Ready, %d leftover records; %d Cloudflare API calls from the pods (%.2f per challenge), %d of them changing records",
		w.name, w.certificates, w.challenges, w.zones, w.took.Round(time.Second), w.notReady, len(w.leftover), w.calls, float64(w.calls)/float64(w.challenges), w.writes)
}

// wave issues Certificates, each for a host and its wildcard (two
// challenges each) over zones, through an ACME Issuer with the
// cloudflare solver; midway, once 40 % of the Certificates are Ready,
// it calls during. It fails the test on a Certificate not Ready or a
// leftover record.
func (e *env) wave(t *testing.T, wns string, zones []string, certificates int, during func()) waveResult {
	t.Helper()
	e.namespaceWithCredentials(t, wns)
	e.apply(t, e.c.ACMEIssuer(wns, "cloudflare", true))
	callsBefore := len(e.c.SimulatorCalls())
	began := time.Now()
	var manifest strings.Builder
	for i := range certificates {
		host := fmt.Sprintf("%s-%03d.%s", wns, i, zones[i%len(zones)])
		manifest.WriteString(localcluster.Certificate(wns, fmt.Sprintf("c%03d", i), "Issuer", "cert-manager.io", "acme-cloudflare", host, "*."+host))
		manifest.WriteString("\n---\n")
	}
	e.apply(t, manifest.String())
	ready, total, triggered := 0, certificates, during == nil
	imageOf := map[string]string{}
	for deadline := time.Now().Add(6 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		for _, p := range e.pods(t, webhookSelector()) {
			if p.Status.PodIP != "" {
				imageOf[p.Status.PodIP] = p.Spec.Containers[0].Image
			}
		}
		list, err := e.c.CM.CertmanagerV1().Certificates(wns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ready, total = 0, len(list.Items)
		for _, crt := range list.Items {
			if isReady(crt) {
				ready++
			}
		}
		if !triggered && ready >= certificates*4/10 {
			triggered = true
			t.Logf("%s: %d of %d Certificates Ready after %s", wns, ready, certificates, time.Since(began).Round(time.Second))
			during()
			continue
		}
		if ready == total {
			break
		}
	}
	w := waveResult{name: wns, zones: len(zones), certificates: total, notReady: total - ready, challenges: 2 * total, took: time.Since(began),
		writers: map[string][]string{}, writesByImage: map[string]int{}}
	if w.notReady > 0 {
		t.Errorf("%s: %d of %d Certificates not Ready after %s\n%s", wns, w.notReady, total, w.took.Round(time.Second), firstLines(e.c.Describe(e.ctx, wns), 30))
	}
	zoneNames := map[string]string{}
	for _, z := range e.c.Cloudflare.AllZones() {
		zoneNames[z.ID] = z.Name
	}
	for _, call := range e.c.SimulatorCalls()[callsBefore:] {
		if !strings.Contains(call.Path, "/client/v4/") {
			continue
		}
		w.calls++
		rest, ok := strings.CutPrefix(call.Path[strings.Index(call.Path, "/client/v4/"):], "/client/v4/zones/")
		zoneID, tail, _ := strings.Cut(rest, "/")
		if !ok || call.Method == http.MethodGet || !strings.HasPrefix(tail, "dns_records") {
			continue
		}
		w.writes++
		w.writesByImage[imageOf[call.From]]++
		zone := zoneNames[zoneID]
		if !slices.Contains(w.writers[zone], call.From) {
			w.writers[zone] = append(w.writers[zone], call.From)
			sort.Strings(w.writers[zone])
		}
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		w.leftover = w.leftover[:0]
		for _, r := range e.c.Cloudflare.AllRecords() {
			if r.Type == "TXT" && strings.Contains(r.Name, wns+"-") {
				w.leftover = append(w.leftover, r.Name)
			}
		}
		if len(w.leftover) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(w.leftover) > 0 {
		t.Errorf("%s: %d leftover TXT records, e.g. %v", wns, len(w.leftover), w.leftover[:min(5, len(w.leftover))])
	}
	// What cert-manager met on the way: failed Present or CleanUp calls
	// it retried (a user sees them as the Challenges' warning events).
	events, err := e.c.Kube.CoreV1().Events(wns).List(e.ctx, metav1.ListOptions{FieldSelector: "type=Warning"})
	if err != nil {
		t.Fatal(err)
	}
	w.warnings = map[string]int{}
	for _, ev := range events.Items {
		w.warnings[ev.Reason+": "+firstLines(ev.Message, 1)] += int(max(ev.Count, 1))
	}
	return w
}

func isReady(crt cmapi.Certificate) bool {
	for _, c := range crt.Status.Conditions {
		if c.Type == cmapi.CertificateConditionReady && c.Status == cmmeta.ConditionTrue {
			return true
		}
	}
	return false
}

// someZones are the first waveZones candidate zones.
func (e *env) someZones() []string {
	var zones []string
	for i := range waveZones {
		zones = append(zones, candidateZone(i))
	}
	return zones
}

// scenarioD: a webhook pod force-deleted mid-wave (its process killed, its
// endpoint gone) → every Certificate Ready, no leftover record.
func (e *env) scenarioD(t *testing.T) {
	w := e.wave(t, "node-d", e.someZones(), 60, func() {
		// The pod that changed the most records so far: the owner of
		// zones, with their batches in flight.
		writes := map[string]int{}
		for _, call := range e.c.SimulatorCalls() {
			if call.Method != http.MethodGet {
				writes[call.From]++
			}
		}
		var victim string
		most := -1
		for _, p := range e.pods(t, webhookSelector()) {
			if writes[p.Status.PodIP] > most {
				victim, most = p.Name, writes[p.Status.PodIP]
			}
		}
		out := e.kubectl(t, "delete", "pod", "-n", ns, victim, "--grace-period=0", "--force")
		t.Logf("d: force-deleted %s (%d record changes so far): %s", victim, most, lastLines(out, 1))
	})
	w.report(t)
	e.waitDeployment(t, webhook, 3)
}

// scenarioE: helm upgrade to a second image (another tag, another build
// version) mid-wave: the Deployment rolls, old and new replicas overlap and
// hand each other requests → every Certificate Ready, no leftover record.
func (e *env) scenarioE(t *testing.T) {
	next := e.tag + "-next"
	archive := e.buildImage(t, next)
	if err := e.c.ImportImage(e.ctx, archive); err != nil {
		t.Fatal(err)
	}
	oldImage, newImage := e.repository+":"+e.tag, e.repository+":"+next
	const ens = "node-e"
	upgraded := false
	w := e.wave(t, ens, e.someZones(), 60, func() {
		// helm upgrade; the rollout is held once it made its first new
		// replica, so that both versions serve side by side for as long as
		// it takes to show they hand each other requests, then resumed.
		e.helm(t, "upgrade", release, "./charts/certbridge", "--namespace", ns, "--reuse-values", "--set", "image.tag="+next)
		upgraded = true
		e.kubectl(t, "rollout", "pause", "deployment/"+webhook, "-n", ns)
		defer e.kubectl(t, "rollout", "resume", "deployment/"+webhook, "-n", ns)
		var ready map[string]string
		testutil.Eventually(t, 2*time.Minute, "old and new webhook replicas Ready side by side", func() (bool, string) {
			ready = map[string]string{}
			for _, p := range e.pods(t, webhookSelector()) {
				if podReady(p) {
					ready[p.Status.PodIP] = p.Spec.Containers[0].Image
				}
			}
			return slices.Contains(slices.Collect(maps.Values(ready)), newImage) && slices.Contains(slices.Collect(maps.Values(ready)), oldImage), fmt.Sprint(ready)
		})
		members := e.waitPeers(t, len(ready))
		// Zones the wave does not use: their changes during the hold come
		// from these Certificates alone, each routed over the four replicas.
		zones, owners := pickZones(peers.NewRing(members[0], peers.Static(members)), len(members), waveZones)
		t.Logf("e: replicas side by side %v; zones %v owned by %v", ready, zones, owners)
		calls := len(e.c.SimulatorCalls())
		var manifest strings.Builder
		for i, zone := range zones {
			for j := range 3 {
				host := fmt.Sprintf("%s-mixed-%d-%d.%s", ens, i, j, zone)
				manifest.WriteString(localcluster.Certificate(ens, fmt.Sprintf("mixed-%d-%d", i, j), "Issuer", "cert-manager.io", "acme-cloudflare", host, "*."+host))
				manifest.WriteString("\n---\n")
			}
		}
		e.apply(t, manifest.String())
		for i := range zones {
			for j := range 3 {
				if _, err := e.c.WaitCertificateReady(e.ctx, ens, fmt.Sprintf("mixed-%d-%d", i, j), 2*time.Minute); err != nil {
					t.Error(err)
				}
			}
		}
		// Each zone's records were changed by its owner, whichever version
		// it runs: the replica kube-apiserver sent the requests to handed
		// the other version's zones over.
		byImage := map[string]int{}
		for _, call := range e.c.SimulatorCalls()[calls:] {
			if call.Method == http.MethodGet || !strings.Contains(call.Path, "/dns_records") {
				continue
			}
			zone := zoneOfPath(e, call.Path)
			if _, mixed := owners[zone]; !mixed {
				continue
			}
			byImage[ready[call.From]]++
			if owner := strings.Split(owners[zone], ":")[0]; call.From != owner {
				t.Errorf("zone %s changed by %s (%s), not by its owner %s (%s)", zone, call.From, ready[call.From], owner, ready[owner])
			}
		}
		if byImage[oldImage] == 0 || byImage[newImage] == 0 {
			t.Errorf("record changes by image while both ran: %v; want both versions", byImage)
		}
		t.Logf("e: while both versions ran, record changes by image: %v", byImage)
	})
	w.report(t)
	if !upgraded {
		t.Fatal("the wave ended before the upgrade started")
	}
	e.waitDeployment(t, webhook, 3)
	for _, p := range e.pods(t, webhookSelector()) {
		if img := p.Spec.Containers[0].Image; img != newImage {
			t.Errorf("pod %s runs %s after the upgrade", p.Name, img)
		}
	}
}

// zoneOfPath is the name of the zone a Cloudflare API path is about.
func zoneOfPath(e *env, path string) string {
	rest, ok := strings.CutPrefix(path[strings.Index(path, "/client/v4/"):], "/client/v4/zones/")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	for _, z := range e.c.Cloudflare.AllZones() {
		if z.ID == id {
			return z.Name
		}
	}
	return ""
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return p.DeletionTimestamp == nil
		}
	}
	return false
}

// buildImage builds a linux/amd64 image as make image does (make build's
// flags, hack/image), stamped with version tag and tagged so, and returns
// its docker-archive.
func (e *env) buildImage(t *testing.T, tag string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := runIn(e.ctx, e.c.ModuleRoot(), "make", "--no-print-directory", "image-amd64", "IMAGE_DIR="+dir, "IMAGE_TAG="+tag, "VERSION="+tag)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return filepath.Join(dir, "certbridge-linux-amd64.tar")
}

// scenarioF: the issuer pod deleted while CertificateRequests wait → the
// new pod (the new leader) signs them; none fails.
func (e *env) scenarioF(t *testing.T) {
	const fns = "node-f"
	e.namespaceWithCredentials(t, fns)
	e.apply(t, localcluster.OriginIssuer(fns, "origin"))
	old := e.pods(t, "app.kubernetes.io/component=issuer")
	if len(old) != 1 {
		t.Fatalf("want one issuer pod, got %v", podNames(old))
	}
	// The Lease, as the leader renews it, until another pod holds it.
	const lease = "certbridge-issuer.certbridge.io"
	leases := make(chan *coordinationv1.Lease, 1)
	go func() {
		defer close(leases)
		var lastOld *coordinationv1.Lease
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			l, err := e.c.Kube.CoordinationV1().Leases(ns).Get(e.ctx, lease, metav1.GetOptions{})
			if err != nil || l.Spec.HolderIdentity == nil {
				continue
			}
			switch holder := *l.Spec.HolderIdentity; {
			case strings.HasPrefix(holder, old[0].Name+"_"):
				lastOld = l
			case holder != "" && lastOld != nil:
				leases <- lastOld
				leases <- l
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	e.kubectl(t, "delete", "pod", "-n", ns, old[0].Name, "--wait=false")
	var manifest strings.Builder
	for i := range 10 {
		manifest.WriteString(localcluster.Certificate(fns, fmt.Sprintf("origin-%d", i), "CloudflareOriginIssuer", "certbridge.io", "origin", fmt.Sprintf("f%d.%s", i, localcluster.CloudflareZone)))
		manifest.WriteString("\n---\n")
	}
	e.apply(t, manifest.String())
	for i := range 10 {
		if _, err := e.c.WaitCertificateReady(e.ctx, fns, fmt.Sprintf("origin-%d", i), 3*time.Minute); err != nil {
			t.Error(err)
		}
	}
	e.waitDeployment(t, issuer, 1)
	now := e.pods(t, "app.kubernetes.io/component=issuer")
	if len(now) != 1 || now[0].Name == old[0].Name {
		t.Errorf("want a new issuer pod in place of %s, got %v", old[0].Name, podNames(now))
	}
	// The deleted leader gave its Lease up: its successor took it before
	// the Lease would have expired (without that, not before its last
	// renewal plus the Lease's duration).
	last, next := <-leases, <-leases
	if last == nil || next == nil {
		t.Fatal("did not see the Lease pass from the deleted pod to another")
	}
	duration := time.Duration(*last.Spec.LeaseDurationSeconds) * time.Second
	if gap := next.Spec.AcquireTime.Sub(last.Spec.RenewTime.Time); gap >= duration {
		t.Errorf("the new issuer pod acquired the Lease %s after the deleted one's last renewal, not before the Lease's %s ran out: the deleted leader did not give it up", gap.Round(10*time.Millisecond), duration)
	} else {
		t.Logf("f: %s took the Lease %s after %s's last renewal (Lease duration %s)", *next.Spec.HolderIdentity, gap.Round(10*time.Millisecond), *last.Spec.HolderIdentity, duration)
	}
	failed := e.kubectl(t, "get", "certificaterequests", "-n", fns, "-o", `jsonpath={range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].reason}{"\n"}{end}`)
	if strings.Contains(failed, "Failed") || strings.Contains(failed, "Denied") {
		t.Errorf("CertificateRequests failed:\n%s", failed)
	}
}

// scenarioG: helm uninstall removes every certbridge pod, Service,
// APIService and RBAC object, and keeps the CRDs (crds.keep).
func (e *env) scenarioG(t *testing.T) {
	t.Logf("helm uninstall:\n%s", e.helm(t, "uninstall", release, "--namespace", ns, "--wait", "--timeout", "2m"))
	selector := "app.kubernetes.io/instance=" + release
	testutil.Eventually(t, 2*time.Minute, "no certbridge object left", func() (bool, string) {
		var left []string
		for _, kind := range []string{"pods", "services", "deployments", "replicasets", "serviceaccounts", "roles", "rolebindings", "poddisruptionbudgets", "endpointslices"} {
			out, err := e.c.Kubectl(e.ctx, nil, "get", kind, "-A", "-l", selector, "-o", "name")
			if err != nil {
				return false, err.Error()
			}
			left = append(left, strings.Fields(string(out))...)
		}
		// The pods themselves, whatever their labels.
		out, err := e.c.Kubectl(e.ctx, nil, "get", "pods", "-n", ns, "-o", "name")
		if err != nil {
			return false, err.Error()
		}
		left = append(left, strings.Fields(string(out))...)
		for _, kind := range []string{"clusterroles", "clusterrolebindings", "apiservices"} {
			out, err := e.c.Kubectl(e.ctx, nil, "get", kind, "-l", selector, "-o", "name")
			if err != nil {
				return false, err.Error()
			}
			left = append(left, strings.Fields(string(out))...)
		}
		slices.Sort(left)
		left = slices.Compact(left)
		return len(left) == 0, fmt.Sprint(left)
	})
	if _, err := e.c.Dynamic.Resource(apiServices).Get(e.ctx, "v1alpha1."+localcluster.GroupName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("APIService v1alpha1.%s after uninstall: %v", localcluster.GroupName, err)
	}
	for _, crd := range []string{"cloudflareoriginissuers", "clustercloudflareoriginissuers", "alibabapcaissuers", "clusteralibabapcaissuers"} {
		if _, err := e.c.Kubectl(e.ctx, nil, "get", "crd", crd+".certbridge.io"); err != nil {
			t.Errorf("CRD %s.certbridge.io is gone after uninstall; the docs say it is kept: %v", crd, err)
		}
	}
	// The issuers in the CRDs survive too.
	if _, err := e.c.Kubectl(e.ctx, nil, "get", "cloudflareoriginissuer", "-n", "node-f", "origin"); err != nil {
		t.Errorf("CloudflareOriginIssuer node-f/origin is gone after uninstall: %v", err)
	}
}

// scenarioH: an intruder with the foothold the peer port once trusted — a
// certificate from the chart's CA naming the webhook (anyone who may create
// a Certificate in the release's namespace gets one) — calls the peer port
// from a pod of another namespace, without a token and with its own
// ServiceAccount's token for the peers' audience (which is no secret). It is
// refused both times (401, 403), the webhook logs the refusal naming the
// caller, and no provider call is made.
func (e *env) scenarioH(t *testing.T) {
	const intruders = "node-h-intruders"
	if err := e.c.CreateNamespace(e.ctx, intruders); err != nil {
		t.Fatal(err)
	}
	e.namespaceWithCredentials(t, "node-h-tenant")
	// The foothold: a certificate of the chart's CA with the webhook's names.
	e.apply(t, fmt.Sprintf(`
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: intruder, namespace: %[1]s}
spec:
  secretName: intruder-tls
  issuerRef: {name: %[2]s-ca}
  dnsNames: [%[3]s, %[3]s.%[1]s, %[3]s.%[1]s.svc]
`, ns, release, webhook))
	var tlsData map[string][]byte
	testutil.Eventually(t, time.Minute, "the intruder's certificate issued", func() (bool, string) {
		sec, err := e.c.Kube.CoreV1().Secrets(ns).Get(e.ctx, "intruder-tls", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		tlsData = sec.Data
		return len(sec.Data["tls.crt"]) > 0 && len(sec.Data["ca.crt"]) > 0, "no tls.crt or ca.crt yet"
	})
	if _, err := e.c.Kube.CoreV1().Secrets(intruders).Create(e.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "stolen-tls"}, Data: tlsData}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The peers' audience is the webhook's flag; the owner is any replica.
	dep, err := e.c.Kube.AppsV1().Deployments(ns).Get(e.ctx, webhook, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var audience string
	for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--peer-token-audience="); ok {
			audience = v
		}
	}
	if audience == "" {
		t.Fatalf("the webhook runs without --peer-token-audience: %q", dep.Spec.Template.Spec.Containers[0].Args)
	}
	target := e.pods(t, webhookSelector())[0]
	archive, err := e.c.BuildProgramImage(e.ctx, "./test/node/cmd/peerprobe", "localhost/certbridge-e2e/peerprobe:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.c.ImportImage(e.ctx, archive); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"uid":"intruder","action":"Present","type":"dns-01","dnsName":"h.%[1]s","key":"intruders-key","resourceNamespace":"node-h-tenant",`+
		`"resolvedFQDN":"_acme-challenge.h.%[1]s.","resolvedZone":"%[1]s.","config":{"apiTokenSecretRef":{"name":"cloudflare-api-token","key":"api-token"}}}`, candidateZone(0))
	before := e.c.Cloudflare.TotalCalls()
	e.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: peerprobe, namespace: %[1]s}
spec:
  restartPolicy: Never
  securityContext: {runAsNonRoot: true, runAsUser: 65535, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: probe
      image: localhost/certbridge-e2e/peerprobe:1
      imagePullPolicy: Never
      args: ["-url", "https://%[2]s:8444/certbridge.peer/v1/cloudflare", "-server-name", "%[3]s.%[4]s.svc", "-body", %[5]q]
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
      volumeMounts:
        - {name: tls, mountPath: /tls, readOnly: true}
        - {name: token, mountPath: /token, readOnly: true}
  volumes:
    - name: tls
      secret: {secretName: stolen-tls}
    - name: token
      projected:
        sources:
          - serviceAccountToken: {path: token, audience: %[6]q, expirationSeconds: 3600}
`, intruders, target.Status.PodIP, webhook, ns, body, audience))
	testutil.Eventually(t, 2*time.Minute, "the intruder's pod done", func() (bool, string) {
		p, err := e.c.Kube.CoreV1().Pods(intruders).Get(e.ctx, "peerprobe", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed, string(p.Status.Phase)
	})
	out := e.kubectl(t, "logs", "-n", intruders, "peerprobe")
	t.Logf("h: the intruder's pod printed:\n%s", out)
	for _, want := range []string{"no token: 401", "own token: 403"} {
		if !strings.Contains(out, want) {
			t.Errorf("the intruder's pod did not get %q", want)
		}
	}
	logs := e.kubectl(t, "logs", "-n", ns, target.Name)
	caller := "system:serviceaccount:" + intruders + ":default"
	if !strings.Contains(logs, `"Peer request refused"`) || !strings.Contains(logs, caller) || !strings.Contains(logs, `"unauthenticated"`) {
		t.Errorf("pod %s's log does not name the refused callers (%s and unauthenticated) in a \"Peer request refused\" line:\n%s", target.Name, caller, lastLines(logs, 20))
	}
	if after := e.c.Cloudflare.TotalCalls(); after != before {
		t.Errorf("the refused requests made %d Cloudflare calls", after-before)
	}
	if n := len(e.c.Cloudflare.Records("_acme-challenge.h." + candidateZone(0))); n != 0 {
		t.Errorf("the intruder's record was written (%d records)", n)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

var apiServices = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// runIn runs a command in dir and returns its output.
func runIn(ctx context.Context, dir string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	return cmd.CombinedOutput()
}
