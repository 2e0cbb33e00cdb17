package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

func execGo(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod")
	return cmd
}

// helmTemplate renders a chart with helm itself.
func (c *Cluster) helmTemplate(ctx context.Context, release, namespace, chart string, set ...string) ([]unstructured.Unstructured, error) {
	args := []string{"template", release, chart, "--namespace", namespace, "--kube-version", kubeVersion}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.CommandContext(ctx, c.opts.Helm, args...)
	// helm keeps its cache and config under these; the run's directory keeps
	// the user's untouched.
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(c.Dir, "helm"), "HELM_CONFIG_HOME="+filepath.Join(c.Dir, "helm"), "HELM_DATA_HOME="+filepath.Join(c.Dir, "helm"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return decodeManifests(out)
}

func decodeManifests(manifests []byte) ([]unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	var objs []unstructured.Unstructured
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// Apply server-side-applies objects as the cluster admin.
func (c *Cluster) Apply(ctx context.Context, objs ...unstructured.Unstructured) error {
	var stream bytes.Buffer
	for _, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return err
		}
		stream.WriteString("---\n")
		stream.Write(b)
	}
	_, err := c.Kubectl(ctx, stream.Bytes(), "apply", "--server-side", "--force-conflicts", "--field-manager=certbridge-e2e", "-f", "-")
	return err
}

// ApplyYAML applies a manifest as the cluster admin.
func (c *Cluster) ApplyYAML(ctx context.Context, manifest string) error {
	objs, err := decodeManifests([]byte(manifest))
	if err != nil {
		return err
	}
	return c.Apply(ctx, objs...)
}

// ApplyCertManagerRBAC applies the ServiceAccounts and RBAC of cert-manager's
// own Helm chart (from its Go module), with the controller's ServiceAccount
// named serviceAccount.
func (c *Cluster) ApplyCertManagerRBAC(ctx context.Context, serviceAccount string) error {
	dir, err := c.moduleDir(ctx, "github.com/cert-manager/cert-manager")
	if err != nil {
		return err
	}
	objs, err := c.helmTemplate(ctx, "cert-manager", CertManagerNamespace, filepath.Join(dir, "deploy", "charts", "cert-manager"),
		"crds.enabled=false", "serviceAccount.name="+serviceAccount)
	if err != nil {
		return err
	}
	var rbac []unstructured.Unstructured
	for _, o := range objs {
		if slices.Contains([]string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}, o.GetKind()) {
			rbac = append(rbac, o)
		}
	}
	return c.Apply(ctx, rbac...)
}

// InstallChart renders the certbridge chart with helm and applies every
// object, as `helm install` would, with the cluster's RRSA OIDC provider
// (alibaba.oidcProviderARN). Two changes make it reachable from this
// machine, as docs/development.md describes: the webhook Service becomes an
// ExternalName for localhost, and it and the APIService use the port the
// webhook process listens on.
func (c *Cluster) InstallChart(ctx context.Context, set ...string) error {
	if c.webhookPort == 0 {
		ports, err := freePorts(2)
		if err != nil {
			return err
		}
		c.webhookPort, c.webhookMetricsPort = ports[0], ports[1]
	}
	values := append([]string{"groupName=" + GroupName, "alibaba.oidcProviderARN=" + RRSAOIDCProvider}, set...)
	objs, err := c.helmTemplate(ctx, Release, Namespace, filepath.Join(c.opts.ModuleRoot, "charts", "certbridge"), values...)
	if err != nil {
		return err
	}
	var crds, rest []unstructured.Unstructured
	for _, o := range objs {
		switch {
		case o.GetKind() == "CustomResourceDefinition":
			crds = append(crds, o)
			continue
		case o.GetKind() == "Service" && o.GetName() == webhookService:
			o.Object["spec"] = map[string]any{"type": "ExternalName", "externalName": "localhost",
				"ports": []any{map[string]any{"name": "https", "port": int64(c.webhookPort), "protocol": "TCP"}}}
		case o.GetKind() == "APIService":
			if err := unstructured.SetNestedField(o.Object, int64(c.webhookPort), "spec", "service", "port"); err != nil {
				return err
			}
		}
		rest = append(rest, o)
	}
	c.rendered = objs
	if len(crds) > 0 {
		if err := c.Apply(ctx, crds...); err != nil {
			return err
		}
		if err := c.waitCRDs(ctx); err != nil {
			return err
		}
	}
	return c.Apply(ctx, rest...)
}

// chartArgs returns the container arguments of one of the chart's
// Deployments, with the values of the named flags replaced.
func (c *Cluster) chartArgs(deployment string, replace map[string]string) ([]string, error) {
	for _, o := range c.rendered {
		if o.GetKind() != "Deployment" || o.GetName() != deployment {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		if len(containers) == 0 {
			return nil, fmt.Errorf("deployment %s has no container", deployment)
		}
		raw, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
		var args []string
		seen := map[string]bool{}
		for _, a := range raw {
			name, _, _ := strings.Cut(a, "=")
			if v, ok := replace[name]; ok {
				a = name + "=" + v
				seen[name] = true
			}
			args = append(args, a)
		}
		for name := range replace {
			if !seen[name] {
				return nil, fmt.Errorf("the chart's %s Deployment has no %s argument", deployment, name)
			}
		}
		return args, nil
	}
	return nil, fmt.Errorf("the chart rendered no Deployment %s", deployment)
}
