package localcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Helm runs helm against the cluster as its admin, with helm's cache and
// config in the run's directory. Its output is stdout and stderr together,
// where helm prints kube-apiserver's warnings.
func (c *Cluster) Helm(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.opts.Helm, args...)
	cmd.Dir = c.opts.ModuleRoot
	helmDir := filepath.Join(c.Dir, "helm")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.AdminKubeconfig,
		"HELM_CACHE_HOME="+helmDir, "HELM_CONFIG_HOME="+helmDir, "HELM_DATA_HOME="+helmDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, out.Bytes())
	}
	return out.Bytes(), nil
}

// ImageValues are the values that name an image the node has imported:
// make image's, ghcr.io/certbridge/certbridge:<tag>.
func ImageValues(repository, tag string) string {
	return "image.repository=" + repository + ",image.tag=" + tag
}

// SimulatorValues point both components at the simulators, through the
// node's relays on the bridge's address.
func (c *Cluster) SimulatorValues() string {
	cf, ali := c.SimulatorURLsForPods()
	return strings.Join([]string{"webhook.cloudflareAPIURL=" + cf, "webhook.alidnsEndpoint=" + ali,
		"issuer.cloudflareAPIURL=" + cf, "issuer.alibabaPCAEndpoint=" + ali}, ",")
}

// HelmInstallArgs are helm's arguments to install (command "install") or
// upgrade the chart as the README's Install says, with image and the
// simulators' URLs the only values set, waiting until every pod is Ready.
func (c *Cluster) HelmInstallArgs(command, repository, tag string, extra ...string) []string {
	args := []string{command, Release, "./charts/certbridge", "--namespace", Namespace, "--create-namespace",
		"--set", ImageValues(repository, tag), "--set", c.SimulatorValues(), "--wait", "--timeout", "3m"}
	return append(args, extra...)
}
