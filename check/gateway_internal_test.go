package check

import (
	"crypto/x509"
	"net"
	"strings"
	"testing"
)

// covers follows what TLS clients accept: a wildcard stands for exactly one
// left-most label, and the common name counts for nothing.
func TestCovers(t *testing.T) {
	t.Parallel()
	leaf := &x509.Certificate{DNSNames: []string{"example.com", "*.example.com", "API.Example.NET"}, IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}}
	leaf.Subject.CommonName = "cn-only.example.org"
	cases := []struct {
		host string
		want bool
	}{
		{"example.com", true},
		{"www.example.com", true},
		{"a.b.example.com", false},
		{"*.example.com", true},
		{"*.a.example.com", false},
		{"api.example.net", true},
		{"example.net", false},
		{"www.example.com.", true},
		{"cn-only.example.org", false},
		{"192.0.2.1", true},
		{".example.com", false},
	}
	for _, tc := range cases {
		if got := covers(leaf, tc.host); got != tc.want {
			t.Errorf("covers(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

// cert-manager's gateway-shim runs when --enable-gateway-api (or the config
// file's gatewayAPI.enabled) is set from v1.15 on, unless the feature gate
// is turned off; before v1.15 the feature gate alone decides.
func TestGatewayAPIEnabled(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	cfg := func(enabled *bool, deprecated *bool, gates map[string]bool) *controllerConfig {
		c := &controllerConfig{source: "ConfigMap cert-manager/cert-manager key \"config.yaml\"", EnableGatewayAPI: deprecated, FeatureGates: gates}
		c.GatewayAPI.Enabled = enabled
		return c
	}
	const current, old = "quay.io/jetstack/cert-manager-controller:v1.21.2", "quay.io/jetstack/cert-manager-controller:v1.14.4"
	cases := []struct {
		name  string
		args  []string
		image string
		cfg   *controllerConfig
		want  bool
		why   string
	}{
		{"flag", []string{"--v=2", "--enable-gateway-api"}, current, nil, true, "(v1.21.2) runs with --enable-gateway-api"},
		{"flag with value", []string{"--enable-gateway-api=true"}, current, nil, true, "runs with --enable-gateway-api"},
		{"flag false", []string{"--enable-gateway-api=false"}, current, nil, false, "--enable-gateway-api=false"},
		{"no flag", []string{"--v=2"}, current, nil, false, "runs without --enable-gateway-api"},
		{"gate alone is not enough since v1.15", []string{"--feature-gates=ExperimentalGatewayAPISupport=true"}, current, nil, false, "runs without --enable-gateway-api"},
		{"gate turned off", []string{"--enable-gateway-api", "--feature-gates=AdditionalCertificateOutputFormats=true,ExperimentalGatewayAPISupport=false"}, current, nil, false, "turns the feature gate ExperimentalGatewayAPISupport off (--feature-gates)"},
		{"config file", []string{"--config=/var/cert-manager/config/config.yaml"}, current, cfg(&yes, nil, nil), true, "reads gatewayAPI.enabled: true from its --config file (ConfigMap cert-manager/cert-manager"},
		{"deprecated config field", nil, current, cfg(nil, &yes, nil), true, "reads enableGatewayAPI: true"},
		{"config says false", nil, current, cfg(&no, nil, nil), false, "reads gatewayAPI.enabled: false"},
		{"flag wins over config", []string{"--enable-gateway-api=false"}, current, cfg(&yes, nil, nil), false, "--enable-gateway-api=false"},
		{"config gate off", []string{"--enable-gateway-api"}, current, cfg(nil, nil, map[string]bool{"ExperimentalGatewayAPISupport": false}), false, "off (ConfigMap"},
		{"old version with gate", []string{"--feature-gates=ExperimentalGatewayAPISupport=true"}, old, nil, true, "(v1.14.4, before v1.15) enables the feature gate"},
		{"old version without gate", []string{"--enable-gateway-api"}, old, nil, false, "(v1.14.4, before v1.15) runs without the feature gate"},
		{"unknown version", []string{"--enable-gateway-api"}, "registry.example/cm@sha256:abc", nil, true, "runs with --enable-gateway-api"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, why := gatewayAPIEnabled(tc.args, tc.image, tc.cfg)
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("gatewayAPIEnabled(%q, %q) = %v, %q; want %v and %q", tc.args, tc.image, got, why, tc.want, tc.why)
			}
		})
	}
}

func TestParseGatewayKind(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "", "gateway.networking.k8s.io": GatewayAPIGroup, "gateways.gateway.networking.k8s.io": GatewayAPIGroup,
		"networking.istio.io": IstioGroup, "Gateway.networking.istio.io": IstioGroup, "gateways.networking.istio.io": IstioGroup,
	} {
		if got, err := ParseGatewayKind(in); err != nil || got != want {
			t.Errorf("ParseGatewayKind(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseGatewayKind("istio"); err == nil || !strings.Contains(err.Error(), "use gateway.networking.k8s.io (Gateway API) or networking.istio.io (Istio)") {
		t.Errorf("ParseGatewayKind(istio) = %v", err)
	}
}
