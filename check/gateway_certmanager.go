package check

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// gatewayAPIGate is cert-manager's feature gate for its Gateway API
// support: off by default and sufficient before v1.15; on by default from
// v1.15, where --enable-gateway-api (or gatewayAPI.enabled in the config
// file) turns the support on.
const gatewayAPIGate = "ExperimentalGatewayAPISupport"

// controllerDeployment is what the gateway check reads of cert-manager's
// controller Deployment beyond its arguments: the image (its version) and
// the --config file's ConfigMap.
type controllerDeployment struct {
	image string
	// configMap and key hold the --config file, when it is mounted from one.
	configNamespace, configMap, configKey string
}

// controllerConfig is the part of cert-manager's ControllerConfiguration
// the gateway check reads; source names the ConfigMap and key.
type controllerConfig struct {
	source           string
	EnableGatewayAPI *bool `json:"enableGatewayAPI"`
	GatewayAPI       struct {
		Enabled *bool `json:"enabled"`
	} `json:"gatewayAPI"`
	FeatureGates map[string]bool `json:"featureGates"`
	// ACMEDNS01Config holds the self-check's resolvers (check issuer's
	// propagation check).
	ACMEDNS01Config struct {
		RecursiveNameservers     []string `json:"recursiveNameservers"`
		RecursiveNameserversOnly *bool    `json:"recursiveNameserversOnly"`
	} `json:"acmeDNS01Config"`
}

// certManagerController finds cert-manager's controller Deployment as
// check issuer does, with its image and --config file.
func (g *checker) certManagerController(ctx context.Context) (*deploymentInfo, *controllerDeployment) {
	d := g.certManagerDeployment(ctx)
	if d == nil {
		return nil, nil
	}
	cd := &controllerDeployment{}
	dep, err := g.o.Kube.AppsV1().Deployments(d.namespace).Get(ctx, d.name, metav1.GetOptions{})
	if err != nil || len(dep.Spec.Template.Spec.Containers) == 0 {
		return d, cd
	}
	container := dep.Spec.Template.Spec.Containers[0]
	cd.image = container.Image
	file, ok := d.arg("--config")
	if !ok || file == "" {
		return d, cd
	}
	// The chart mounts ConfigMap <release> at /var/cert-manager/config and
	// passes --config=/var/cert-manager/config/config.yaml.
	for _, m := range container.VolumeMounts {
		rel, found := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !found {
			continue
		}
		for _, v := range dep.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			key := rel
			for _, it := range v.ConfigMap.Items {
				if it.Path == rel {
					key = it.Key
				}
			}
			cd.configNamespace, cd.configMap, cd.configKey = d.namespace, v.ConfigMap.Name, key
		}
	}
	return d, cd
}

// config reads the controller's --config file, if it is in a ConfigMap.
func (cd *controllerDeployment) config(ctx context.Context, g *checker) *controllerConfig {
	if cd == nil || cd.configMap == "" {
		return nil
	}
	cm, err := g.o.Kube.CoreV1().ConfigMaps(cd.configNamespace).Get(ctx, cd.configMap, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	var c controllerConfig
	if yaml.Unmarshal([]byte(cm.Data[cd.configKey]), &c) != nil {
		return nil
	}
	c.source = fmt.Sprintf("ConfigMap %s/%s key %q", cd.configNamespace, cd.configMap, cd.configKey)
	return &c
}

var imageVersion = regexp.MustCompile(`:v?(\d+)\.(\d+)(\.\d+)?`)

// gatewayAPIEnabled decides from cert-manager's controller arguments, image
// and config file whether its gateway-shim runs, and says why. Flags win
// over the config file, as in cert-manager.
func gatewayAPIEnabled(args []string, image string, cfg *controllerConfig) (bool, string) {
	d := &deploymentInfo{args: args}
	gate, gateSet := false, false
	gateFrom := ""
	if cfg != nil {
		if v, ok := cfg.FeatureGates[gatewayAPIGate]; ok {
			gate, gateSet, gateFrom = v, true, cfg.source
		}
	}
	if v, ok := d.arg("--feature-gates"); ok {
		for _, kv := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(kv), "=")
			if k == gatewayAPIGate {
				b, err := strconv.ParseBool(val)
				gate, gateSet, gateFrom = err == nil && b, true, "--feature-gates"
			}
		}
	}
	version := ""
	if m := imageVersion.FindStringSubmatch(image); m != nil {
		version = "v" + m[1] + "." + m[2] + m[3]
		major, _ := strconv.Atoi(m[1])
		minor, _ := strconv.Atoi(m[2])
		if major < 1 || (major == 1 && minor < 15) {
			if gate {
				return true, fmt.Sprintf("(%s, before v1.15) enables the feature gate %s (%s)", version, gatewayAPIGate, gateFrom)
			}
			return false, fmt.Sprintf("(%s, before v1.15) runs without the feature gate %s=true, which is off by default there", version, gatewayAPIGate)
		}
	}
	if version != "" {
		version = "(" + version + ") "
	}
	if gateSet && !gate {
		return false, fmt.Sprintf("%sturns the feature gate %s off (%s)", version, gatewayAPIGate, gateFrom)
	}
	if v, ok := d.arg("--enable-gateway-api"); ok {
		if b, err := strconv.ParseBool(v); err == nil && !b {
			return false, version + "runs with --enable-gateway-api=false"
		}
		return true, version + "runs with --enable-gateway-api"
	}
	if cfg != nil {
		enabled := cfg.GatewayAPI.Enabled
		field := "gatewayAPI.enabled"
		if enabled == nil {
			enabled, field = cfg.EnableGatewayAPI, "enableGatewayAPI"
		}
		if enabled != nil && *enabled {
			return true, fmt.Sprintf("%sreads %s: true from its --config file (%s)", version, field, cfg.source)
		}
		if enabled != nil {
			return false, fmt.Sprintf("%sreads %s: false from its --config file (%s)", version, field, cfg.source)
		}
	}
	return false, version + "runs without --enable-gateway-api (nor gatewayAPI.enabled: true in a --config file)"
}
