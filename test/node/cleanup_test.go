//go:build e2e

package node

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certbridge/certbridge/test/localcluster"
)

// A run killed with SIGKILL leaves what only the next run can remove: the
// bridge and a pod's veth, iptables chains with the rules that jump to
// them, a process started for the node, mounts and cgroups. The next run
// starts by removing them all.
func TestNodeCleanupRemovesWhatAKilledRunLeft(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("run as root (make e2e-node)")
	}
	if left := localcluster.NodeLeftovers(); len(left) > 0 {
		t.Fatalf("the machine is not clean before the test: %v", left)
	}
	dir := localcluster.NodeDirectory()
	mnt := filepath.Join(dir, "kubelet", "pods", "p", "volumes", "token")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	cgroup := "/sys/fs/cgroup/pids/kubepods/besteffort/podkilled"
	for _, args := range [][]string{
		{"ip", "link", "add", "cbnode0", "type", "bridge"},
		{"ip", "link", "add", "vethkilled0", "type", "veth", "peer", "name", "vethkilled1"},
		{"ip", "link", "set", "vethkilled0", "master", "cbnode0"},
		{"iptables", "-w", "-N", "CERTBRIDGE-NODE"},
		{"iptables", "-w", "-I", "FORWARD", "1", "-j", "CERTBRIDGE-NODE"},
		{"iptables", "-w", "-N", "KUBE-FIREWALL"},
		{"iptables", "-w", "-A", "INPUT", "-j", "KUBE-FIREWALL"},
		{"iptables", "-w", "-t", "nat", "-N", "CNI-HOSTPORT-DNAT"},
		{"iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-j", "CNI-HOSTPORT-DNAT"},
		{"mount", "-t", "tmpfs", "tmpfs", mnt},
		{"mkdir", "-p", cgroup},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// A process of the node's, outliving the run that started it, known by
	// the node's directory in its command line (as a containerd shim names
	// the node's socket).
	sleep := filepath.Join(dir, "sleep")
	if out, err := exec.Command("cp", "/bin/sleep", sleep).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	sleeper := exec.Command(sleep, "300")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = sleeper.Wait(); close(exited) }()
	left := localcluster.NodeLeftovers()
	for _, want := range []string{"link: ", "iptables-save: chain CERTBRIDGE-NODE", "iptables-save: chain KUBE-FIREWALL", "iptables-save: chain CNI-HOSTPORT-DNAT", "process ", "mount " + mnt, "cgroups ", "directory "} {
		if !strings.Contains(strings.Join(left, "\n"), want) {
			t.Errorf("NodeLeftovers does not see %q: %v", want, left)
		}
	}
	if err := localcluster.CleanNode(testWriter{t}, os.Getenv("TEST_ASSET_KUBE_PROXY")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Error("the node's process outlived the cleanup")
		_ = sleeper.Process.Kill()
	}
	if left := localcluster.NodeLeftovers(); len(left) > 0 {
		t.Errorf("after the cleanup, left behind:\n%s", strings.Join(left, "\n"))
	}
	if out, err := exec.Command("iptables", "-w", "-S", "FORWARD").CombinedOutput(); err != nil || strings.Contains(string(out), "CERTBRIDGE-NODE") {
		t.Errorf("FORWARD still jumps to the guard chain: %v: %s", err, out)
	}
}
