package check_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	cmfake "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned/fake"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
	"sigs.k8s.io/yaml"

	"github.com/certbridge/certbridge/check"
)

// pki makes the certificates of the gateway cases: a CA, and leaves it
// signs. Keys are returned as PEM so the cases can assert none is printed.
type pki struct {
	ca    *x509.Certificate
	key   *ecdsa.PrivateKey
	caPEM []byte
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "unit-ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour * 24 * 365)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	return &pki{ca: ca, key: key, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf returns a certificate for names and its key, both PEM.
func (p *pki) leaf(t *testing.T, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
}

// gatewayWorld is a cluster without an API server for the gateway check.
type gatewayWorld struct {
	objs []runtime.Object // typed: Secrets, Pods, ConfigMaps, Deployments, Certificates
	yaml []string         // Gateways and ReferenceGrants
}

func (w gatewayWorld) options(t *testing.T, namespace string) check.GatewayOptions {
	t.Helper()
	var kubeObjs, cmObjs, meta []runtime.Object
	for _, o := range w.objs {
		switch v := o.(type) {
		case *cmapi.Certificate:
			cmObjs = append(cmObjs, o)
		case *corev1.Secret:
			kubeObjs = append(kubeObjs, o)
			meta = append(meta, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}, ObjectMeta: v.ObjectMeta})
		default:
			kubeObjs = append(kubeObjs, o)
		}
	}
	scheme := runtime.NewScheme()
	listKinds := map[schema.GroupVersionResource]string{
		{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}:             "GatewayList",
		{Group: "networking.istio.io", Version: "v1", Resource: "gateways"}:                   "GatewayList",
		{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "referencegrants"}:      "ReferenceGrantList",
		{Group: "gateway.networking.k8s.io", Version: "v1beta1", Resource: "referencegrants"}: "ReferenceGrantList",
	}
	metaScheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(metaScheme); err != nil {
		t.Fatal(err)
	}
	// Created rather than given to the constructor: with these custom list
	// kinds, Get and List did not find objects passed to it.
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, listKinds)
	for _, y := range w.yaml {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(y), &u.Object); err != nil {
			t.Fatal(err)
		}
		gv, _ := schema.ParseGroupVersion(u.GetAPIVersion())
		gvr := gv.WithResource(strings.ToLower(u.GetKind()) + "s")
		if _, err := dyn.Resource(gvr).Namespace(u.GetNamespace()).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return check.GatewayOptions{IssuerOptions: check.IssuerOptions{
		Kube: kubefake.NewClientset(kubeObjs...), CertManager: cmfake.NewClientset(cmObjs...), Dynamic: dyn,
		Metadata: metadatafake.NewSimpleMetadataClient(metaScheme, meta...), Namespace: namespace, CertManagerNamespace: "cert-manager",
	}}
}

func tlsSecret(namespace, name string, typ corev1.SecretType, data map[string][]byte, annotations map[string]string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: annotations}, Type: typ, Data: data}
}

func gatewayPod(namespace, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels}}
}

func certManagerDeployment(args []string, volumes []corev1.Volume, mounts []corev1.VolumeMount) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "cert-manager", Namespace: "cert-manager",
			Labels: map[string]string{"app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller"}},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{ServiceAccountName: "cert-manager", Volumes: volumes,
			Containers: []corev1.Container{{Name: "cert-manager-controller", Image: "quay.io/jetstack/cert-manager-controller:v1.21.2", Args: args, VolumeMounts: mounts}}}}},
	}
}

const gatewayAPIYAML = `
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web, namespace: apps, uid: gw-uid, annotations: {ANNOTATIONS}}
spec:
  gatewayClassName: istio
  listeners: LISTENERS
`

func gatewayAPI(annotations, listeners string) string {
	return strings.NewReplacer("ANNOTATIONS", annotations, "LISTENERS", listeners).Replace(gatewayAPIYAML)
}

func istioYAML(selector, servers string) string {
	return `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: web, namespace: apps}
spec:
  selector: ` + selector + `
  servers: ` + servers
}

// The branches of the gateway check the end-to-end test does not take:
// Istio's key names and CA places, PILOT_SCOPE_GATEWAY_TO_NAMESPACE, key and
// chain mistakes, ReferenceGrants for another name, a deleted Certificate,
// cert-manager's config file, and a cluster without cert-manager's Deployment.
func TestGatewayFindings(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	cert, key := p.leaf(t, "web.example.com")
	otherCert, otherKey := p.leaf(t, "web.example.com")
	ingress := map[string]string{"istio": "ingressgateway"}
	pod := gatewayPod("istio-system", "istio-ingressgateway-1", ingress)
	tlsData := map[string][]byte{"tls.crt": cert, "tls.key": key}
	simple := `[{port: {number: 443, name: https, protocol: HTTPS}, hosts: [apps/web.example.com], tls: {mode: SIMPLE, credentialName: web-tls}}]`
	https := `[{name: https, hostname: web.example.com, port: 443, protocol: HTTPS, tls: {mode: Terminate, certificateRefs: [{name: web-tls}]}}]`
	owned := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Name: "web-tls", Namespace: "apps",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "gateway.networking.k8s.io/v1", Kind: "Gateway", Name: "web", UID: types.UID("gw-uid")}}},
		Spec: cmapi.CertificateSpec{SecretName: "web-tls", IssuerRef: cmmeta.IssuerReference{Name: "le", Kind: "Issuer"}}}
	cases := []struct {
		name     string
		world    gatewayWorld
		kind     string
		wantPass bool
		want     []string
	}{
		{
			name: "Istio OPTIONAL_MUTUAL with a generic Secret: cert, key and cacert",
			world: gatewayWorld{objs: []runtime.Object{pod, tlsSecret("istio-system", "web-tls", corev1.SecretTypeOpaque,
				map[string][]byte{"cert": cert, "key": key, "cacert": p.caPEM, "tls.crt": otherCert}, nil)},
				yaml: []string{istioYAML(`{istio: ingressgateway}`, `[{port: {number: 443, name: https, protocol: HTTPS}, hosts: ["*"], tls: {mode: OPTIONAL_MUTUAL, credentialName: web-tls}}]`)}},
			wantPass: true,
			want: []string{"Gateway apps/web (networking.istio.io)",
				"✓ servers[0] https Secret: Secret istio-system/web-tls, type Opaque: cert and key; the key matches the certificate",
				`✓ servers[0] https client CA: Secret istio-system/web-tls key "cacert": 1 CA certificate(s) verify client certificates: CN=unit-ca`,
				"✓ servers[0] https hosts: the listener names no host, so it serves any; the certificate covers web.example.com"},
		},
		{
			name: "Istio caCertCredentialName from a ConfigMap wins over ca.crt",
			world: gatewayWorld{objs: []runtime.Object{pod, tlsSecret("istio-system", "web-tls", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": cert, "tls.key": key, "ca.crt": []byte("not PEM")}, nil),
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "client-ca", Namespace: "istio-system"}, Data: map[string]string{"ca.crt": string(p.caPEM)}}},
				yaml: []string{istioYAML(`{istio: ingressgateway}`, `[{port: {number: 443, name: https, protocol: HTTPS}, hosts: [web.example.com], tls: {mode: MUTUAL, credentialName: web-tls, caCertCredentialName: client-ca}}]`)}},
			wantPass: true,
			want:     []string{`✓ servers[0] https client CA: ConfigMap istio-system/client-ca (caCertCredentialName) key "ca.crt": 1 CA certificate(s)`},
		},
		{
			name: "a key of another certificate",
			world: gatewayWorld{objs: []runtime.Object{pod, tlsSecret("istio-system", "web-tls", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": cert, "tls.key": otherKey}, nil)},
				yaml: []string{istioYAML(`{istio: ingressgateway}`, simple)}},
			want: []string{`✗ servers[0] https Secret: Secret istio-system/web-tls: the private key in "tls.key" does not match the certificate in "tls.crt", or does not parse`},
		},
		{
			name: "a chain with the CA first",
			world: gatewayWorld{objs: []runtime.Object{pod, tlsSecret("istio-system", "web-tls", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": append(append([]byte{}, p.caPEM...), cert...), "tls.key": key}, nil)},
				yaml: []string{istioYAML(`{istio: ingressgateway}`, simple)}},
			want: []string{"✗ servers[0] https Secret:", "does not match the certificate"},
		},
		{
			name: "a chain out of order after the leaf",
			world: gatewayWorld{objs: []runtime.Object{pod, tlsSecret("istio-system", "web-tls", corev1.SecretTypeTLS, map[string][]byte{"tls.crt": append(append([]byte{}, cert...), otherCert...), "tls.key": key}, nil)},
				yaml: []string{istioYAML(`{istio: ingressgateway}`, simple)}},
			want: []string{`✗ servers[0] https Secret: Secret istio-system/web-tls key "tls.crt": certificate 1 (CN=web.example.com) is not signed by certificate 2 (CN=web.example.com) after it: the chain is out of order`},
		},
		{
			name:  "no pod has the selector's labels",
			world: gatewayWorld{objs: []runtime.Object{gatewayPod("istio-system", "other", map[string]string{"istio": "egressgateway"})}, yaml: []string{istioYAML(`{istio: ingressgateway}`, simple)}},
			want: []string{"✗ gateway workload: no running pod in any namespace has the labels istio=ingressgateway (spec.selector)",
				"fix: set spec.selector to the labels of the gateway pods (kubectl get pods -A -l istio=ingressgateway finds none"},
		},
		{
			name: "istiod scopes Gateways to their namespace",
			world: gatewayWorld{objs: []runtime.Object{pod, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: "istio-system", Labels: map[string]string{"app": "istiod"}},
				Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "discovery",
					Env: []corev1.EnvVar{{Name: "PILOT_SCOPE_GATEWAY_TO_NAMESPACE", Value: "true"}}}}}}}}},
				yaml: []string{istioYAML(`{istio: ingressgateway}`, simple)}},
			want: []string{`✗ gateway workload: no running pod in the Gateway's namespace "apps" only (istiod's Deployment istio-system/istiod sets PILOT_SCOPE_GATEWAY_TO_NAMESPACE=true) has the labels istio=ingressgateway`},
		},
		{
			name:  "an empty selector",
			world: gatewayWorld{objs: []runtime.Object{pod}, yaml: []string{istioYAML(`{}`, simple)}},
			want:  []string{"✗ gateway workload: spec.selector is empty"},
		},
		{
			name: "a ReferenceGrant for another Secret",
			world: gatewayWorld{objs: []runtime.Object{tlsSecret("certs", "web-tls", corev1.SecretTypeTLS, tlsData, nil)},
				yaml: []string{gatewayAPI("", `[{name: https, hostname: web.example.com, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: web-tls, namespace: certs}]}}]`), `
apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata: {name: other, namespace: certs}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: apps}]
  to: [{group: "", kind: Secret, name: other-tls}]
`}},
			kind: check.GatewayAPIGroup,
			want: []string{`✗ listener https secret namespace: spec.listeners[0].tls.certificateRefs[0] names Secret certs/web-tls, in another namespace than the Gateway's "apps", and no ReferenceGrant in "certs" lets Gateways in "apps" use it`},
		},
		{
			name: "a Secret whose Certificate was deleted",
			world: gatewayWorld{objs: []runtime.Object{tlsSecret("apps", "web-tls", corev1.SecretTypeTLS, tlsData,
				map[string]string{"cert-manager.io/certificate-name": "web-tls", "cert-manager.io/issuer-name": "le", "cert-manager.io/issuer-kind": "ClusterIssuer"})},
				yaml: []string{gatewayAPI("", https)}},
			want: []string{`✗ listener https Certificate: Secret apps/web-tls names Certificate "web-tls" (annotation cert-manager.io/certificate-name), which does not exist in "apps" (it was issued by ClusterIssuer le): nothing renews this Secret`,
				"✓ listener https Secret: Secret apps/web-tls, type kubernetes.io/tls"},
		},
		{
			name: "cert-manager's config file turns Gateway API support on; a listener status and a Passthrough listener",
			world: gatewayWorld{objs: []runtime.Object{tlsSecret("apps", "web-tls", corev1.SecretTypeOpaque, tlsData, nil), owned,
				certManagerDeployment([]string{"--config=/var/cert-manager/config/config.yaml"},
					[]corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cert-manager"}}}}},
					[]corev1.VolumeMount{{Name: "config", MountPath: "/var/cert-manager/config"}}),
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cert-manager", Namespace: "cert-manager"}, Data: map[string]string{"config.yaml": "apiVersion: controller.config.cert-manager.io/v1alpha1\nkind: ControllerConfiguration\ngatewayAPI:\n  enabled: true\n"}}},
				yaml: []string{gatewayAPI("cert-manager.io/issuer: le", `[{name: https, hostname: web.example.com, port: 443, protocol: HTTPS, tls: {mode: Terminate, certificateRefs: [{name: web-tls}]}},
    {name: db, hostname: db.example.com, port: 5432, protocol: TLS, tls: {mode: Passthrough}}]
status:
  listeners: [{name: https, attachedRoutes: 0, supportedKinds: [], conditions: [{type: ResolvedRefs, status: "False", reason: InvalidCertificateRef, message: "bad cert", lastTransitionTime: "2026-01-01T00:00:00Z"}]}]`)}},
			want: []string{`✓ cert-manager gateway-shim: cert-manager's Deployment cert-manager/cert-manager (v1.21.2) reads gatewayAPI.enabled: true from its --config file (ConfigMap cert-manager/cert-manager key "config.yaml")`,
				"✓ listener https Secret: Secret apps/web-tls, type Opaque (Gateway API's core support is for type kubernetes.io/tls; Istio and Envoy Gateway accept Opaque too)",
				"✗ listener https status: the gateway controller reports ResolvedRefs False (InvalidCertificateRef): bad cert",
				"✓ listener db: TLS on port 5432 with TLS Passthrough",
				"✗ listener https Certificate: Certificate apps/web-tls (issuer Issuer le, made by cert-manager's gateway-shim for this Gateway): no Ready condition yet"},
		},
		{
			name:     "no cert-manager Deployment, but a Certificate owned by the Gateway",
			world:    gatewayWorld{objs: []runtime.Object{owned}, yaml: []string{gatewayAPI("cert-manager.io/issuer: le", https)}},
			wantPass: false,
			want: []string{`✓ cert-manager gateway-shim: the annotation cert-manager.io/issuer: le asks it for a Certificate (issuer Issuer le) per HTTPS or TLS listener with a hostname; no cert-manager controller Deployment in "cert-manager" to read its flags from, but Certificate apps/web-tls is owned by this Gateway`,
				`✗ listener https Secret: Secret "web-tls" (spec.listeners[0].tls.certificateRefs[0].name) not found in namespace "apps"`},
		},
		{
			name:  "no cert-manager Deployment and nothing owned by the Gateway",
			world: gatewayWorld{yaml: []string{gatewayAPI("cert-manager.io/cluster-issuer: le", https)}},
			want: []string{`✗ cert-manager gateway-shim: the annotation cert-manager.io/cluster-issuer: le asks it for a Certificate (issuer ClusterIssuer le) per HTTPS or TLS listener with a hostname, but there is no Deployment labelled app.kubernetes.io/name=cert-manager,app.kubernetes.io/component=controller in "cert-manager"`,
				"fix: pass --cert-manager-namespace with the namespace cert-manager's controller runs in",
				`✗ listener https Certificate: no cert-manager Certificate in "apps" has spec.secretName "web-tls": cert-manager's gateway-shim has not made one for this listener`},
		},
		{
			name: "both kinds of Gateway: Gateway API's is checked unless --kind says otherwise",
			world: gatewayWorld{objs: []runtime.Object{pod, tlsSecret("apps", "web-tls", corev1.SecretTypeTLS, tlsData, nil)},
				yaml: []string{gatewayAPI("", https), istioYAML(`{istio: ingressgateway}`, simple)}},
			wantPass: true,
			want:     []string{"Gateway apps/web (gateway.networking.k8s.io)", "✓ listener https hosts: the certificate covers web.example.com"},
		},
		{
			name:  "only a plain HTTP listener",
			world: gatewayWorld{yaml: []string{gatewayAPI("", `[{name: http, port: 80, protocol: HTTP}]`)}},
			want:  []string{"✗ listeners: no listener terminates TLS (protocol HTTPS or TLS, mode Terminate)"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := tc.world.options(t, "apps")
			o.Kind = tc.kind
			r := check.Gateway(context.Background(), o, "web")
			assertReport(t, r, tc.wantPass, tc.want, string(key), string(otherKey), "PRIVATE KEY")
		})
	}
}
