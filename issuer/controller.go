package issuer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	cmutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	issuerlib "github.com/cert-manager/issuer-lib/api/v1alpha1"
	"github.com/cert-manager/issuer-lib/controllers"
	"github.com/cert-manager/issuer-lib/controllers/signer"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/certbridge/certbridge/internal/alisdk"
	"github.com/certbridge/certbridge/internal/metrics"
	"github.com/certbridge/certbridge/internal/secretref"
	api "github.com/certbridge/certbridge/issuer/api/v1alpha1"
)

// Options configure the issuer controllers; they come from process flags.
type Options struct {
	// ClusterResourceNamespace is where the cluster kinds' Secrets live.
	ClusterResourceNamespace string
	// MaxRetryDuration bounds how long transient failures are retried
	// before a request fails.
	MaxRetryDuration time.Duration
	// AllowAmbientCredentials lets the cluster kinds use the controller's
	// own cloud identity (RRSA, the ECS RAM role) when they name no Secret.
	AllowAmbientCredentials bool
	OriginCA                OriginCAOptions
	PCA                     PCAOptions
	// STSEndpoint is Alibaba Cloud STS, for RRSA and role assumption.
	STSEndpoint string
	// Environ reads the environment for ambient credentials; os.Getenv by default.
	Environ func(string) string
	// MaxConcurrentSigns is how many requests each kind's controller signs
	// at once; a CA answering in 100 ms caps one worker at 10 per second.
	MaxConcurrentSigns int
}

// FieldOwner is the name the controllers apply their changes under.
const FieldOwner = "certbridge.io"

// SetupWithManager registers the issuer controllers for the four kinds.
func SetupWithManager(ctx context.Context, mgr ctrl.Manager, o Options) error {
	if o.Environ == nil {
		o.Environ = os.Getenv
	}
	if err := ctrlmetrics.Registry.Register(metrics.Certificates); err != nil && !errors.As(err, &prometheus.AlreadyRegisteredError{}) {
		return err
	}
	recorder := mgr.GetEventRecorder(FieldOwner)
	reader := mgr.GetAPIReader() // Secrets are read with a plain get: no cache, no list or watch
	s := &signers{opts: o, recorder: recorder, log: mgr.GetLogger().WithName("signer"), secrets: secretref.Reader{
		Get: func(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
			var sec corev1.Secret
			err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &sec)
			return &sec, err
		},
		Log:    mgr.GetLogger().WithName("secrets"),
		Warned: &sync.Map{},
		Who:    "the issuer controller's ServiceAccount",
		Scope: func(namespace string) string {
			return fmt.Sprintf("A namespaced issuer reads Secrets from its own namespace (%q here); the cluster kinds from the controller's --cluster-resource-namespace (%q)",
				namespace, o.ClusterResourceNamespace)
		},
		Grant: func(namespace string) string {
			return fmt.Sprintf("Grant it get on secrets in %q (a Role and RoleBinding)", namespace)
		},
	}}
	err := (&controllers.CombinedController{
		IssuerTypes:        []issuerlib.Issuer{&api.CloudflareOriginIssuer{}, &api.AlibabaPCAIssuer{}},
		ClusterIssuerTypes: []issuerlib.Issuer{&api.ClusterCloudflareOriginIssuer{}, &api.ClusterAlibabaPCAIssuer{}},
		FieldOwner:         FieldOwner,
		MaxRetryDuration:   o.MaxRetryDuration,
		Check:              s.check,
		Sign:               s.sign,
		EventRecorder:      recorder,
		// status.ca carries the issuing root: deprecated upstream in favour of
		// trust-manager, but users of these CAs read ca.crt (issue #3).
		SetCAOnCertificateRequest: true,
		ControllerOptions:         controller.Options{MaxConcurrentReconciles: o.MaxConcurrentSigns},
	}).SetupWithManager(ctx, mgr)
	if err != nil {
		return err
	}
	return (&deniedRequests{client: mgr.GetClient()}).setup(mgr)
}

type signers struct {
	opts     Options
	secrets  secretref.Reader
	recorder events.EventRecorder
	log      logr.Logger
	backends sync.Map // credential and spec hash → *OriginCA or *AlibabaPCA
}

func (s *signers) check(ctx context.Context, iss issuerlib.Issuer) error {
	switch is := iss.(type) {
	case *api.CloudflareOriginIssuer:
		return s.checkOrigin(ctx, is.Spec, is.Namespace)
	case *api.ClusterCloudflareOriginIssuer:
		return s.checkOrigin(ctx, is.Spec, s.opts.ClusterResourceNamespace)
	case *api.AlibabaPCAIssuer:
		return s.checkPCA(ctx, is.Spec, is.Namespace, false)
	case *api.ClusterAlibabaPCAIssuer:
		return s.checkPCA(ctx, is.Spec, s.opts.ClusterResourceNamespace, true)
	}
	return signer.PermanentError{Err: fmt.Errorf("unknown issuer type %T", iss)}
}

func (s *signers) sign(ctx context.Context, cr signer.CertificateRequestObject, iss issuerlib.Issuer) (bundle signer.PEMBundle, err error) {
	backend := "alibaba-pca"
	switch iss.(type) {
	case *api.CloudflareOriginIssuer, *api.ClusterCloudflareOriginIssuer:
		backend = "cloudflare-origin-ca"
	}
	defer func() { metrics.Certificates.WithLabelValues(backend, metrics.Outcome(err)).Inc() }()
	details, err := cr.GetCertificateDetails()
	if err != nil {
		return signer.PEMBundle{}, signer.PermanentError{Err: err}
	}
	switch is := iss.(type) {
	case *api.CloudflareOriginIssuer:
		return s.signOrigin(ctx, cr, details, is.Spec, is.Namespace)
	case *api.ClusterCloudflareOriginIssuer:
		return s.signOrigin(ctx, cr, details, is.Spec, s.opts.ClusterResourceNamespace)
	case *api.AlibabaPCAIssuer:
		return s.signPCA(ctx, details, is.Spec, is.Namespace, false)
	case *api.ClusterAlibabaPCAIssuer:
		return s.signPCA(ctx, details, is.Spec, s.opts.ClusterResourceNamespace, true)
	}
	return signer.PEMBundle{}, signer.PermanentError{Err: fmt.Errorf("unknown issuer type %T", iss)}
}

// ServiceKeyRefused is the error for spec.auth.serviceKeyRef (F19).
var ServiceKeyRefused = errors.New("origin-ca: spec.auth.serviceKeyRef is an Origin CA service key, and those reached end of life on 2026-09-30. " +
	"Create an API token with Zone → SSL and Certificates → Edit, store it in a Secret and set spec.auth.tokenRef instead")

// OriginToken reads the API token an Origin CA issuer's spec names, from
// namespace (the issuer's, or the cluster resource namespace for the cluster
// kind). Service keys are refused (F19). The controller and `certbridge
// check issuer` both build the backend from it with NewOriginCA.
func OriginToken(ctx context.Context, secrets secretref.Reader, spec api.CloudflareOriginIssuerSpec, namespace string) (secretref.Value, error) {
	if spec.Auth.ServiceKeyRef != nil {
		return secretref.Value{}, signer.PermanentError{Err: ServiceKeyRefused}
	}
	if spec.Auth.TokenRef == nil {
		return secretref.Value{}, signer.PermanentError{Err: errors.New("origin-ca: set spec.auth.tokenRef to a Secret key holding an API token with Zone → SSL and Certificates → Edit")}
	}
	token, err := secrets.Read(ctx, namespace, spec.Auth.TokenRef.Name, spec.Auth.TokenRef.Key, "spec.auth.tokenRef")
	if err != nil {
		return token, fmt.Errorf("origin-ca: %w", err)
	}
	return token, nil
}

// originCA builds (or reuses) the Origin CA backend of a spec.
func (s *signers) originCA(ctx context.Context, spec api.CloudflareOriginIssuerSpec, namespace string) (*OriginCA, error) {
	token, err := OriginToken(ctx, s.secrets, spec, namespace)
	if err != nil {
		return nil, err
	}
	key := hash("origin", token.Value)
	if b, ok := s.backends.Load(key); ok {
		return b.(*OriginCA), nil
	}
	b, _ := s.backends.LoadOrStore(key, NewOriginCA(s.opts.OriginCA, token.Value, token.String()))
	return b.(*OriginCA), nil
}

func (s *signers) checkOrigin(ctx context.Context, spec api.CloudflareOriginIssuerSpec, namespace string) error {
	ca, err := s.originCA(ctx, spec, namespace)
	if err != nil {
		return err
	}
	return ca.Check(ctx)
}

func (s *signers) signOrigin(ctx context.Context, cr signer.CertificateRequestObject, details signer.CertificateDetails, spec api.CloudflareOriginIssuerSpec, namespace string) (signer.PEMBundle, error) {
	requestType := map[string]string{"OriginRSA": OriginRSA, "OriginECC": OriginECC}[spec.RequestType]
	order, err := PlanOrigin(details, requestType)
	if err != nil {
		return signer.PEMBundle{}, err
	}
	ca, err := s.originCA(ctx, spec, namespace)
	if err != nil {
		return signer.PEMBundle{}, signer.IssuerError{Err: err}
	}
	bundle, err := ca.Sign(ctx, details.CSR, order)
	if err == nil && order.Rounded() {
		// F18: the user asked for a duration Cloudflare does not offer.
		s.recorder.Eventf(reference(cr), nil, corev1.EventTypeNormal, "ValidityRounded", "Sign",
			"Cloudflare's Origin CA offers validities of 7, 30, 90, 365, 730, 1095 or 5475 days; the certificate was issued for %d days (requested %s)",
			order.ValidityDays, order.Requested)
	}
	return bundle, err
}

// PCACredential resolves the credentials an Alibaba Cloud PCA issuer's spec
// names: an AccessKey (or STS credentials) from Secrets in namespace, or, for
// the cluster kinds when o allows them, the ambient ones (RRSA, the ECS RAM
// role). source names where they came from, for messages.
func PCACredential(ctx context.Context, o Options, secrets secretref.Reader, spec api.AlibabaPCAIssuerSpec, namespace string, cluster bool) (c alisdk.Credential, source string, err error) {
	source = "ambient credentials"
	a := spec.Auth
	switch {
	case a.AccessKeyIDSecretRef != nil && a.AccessKeySecretSecretRef != nil:
		id, err := secrets.Read(ctx, namespace, a.AccessKeyIDSecretRef.Name, a.AccessKeyIDSecretRef.Key, "spec.auth.accessKeyIdSecretRef")
		if err != nil {
			return c, source, fmt.Errorf("alibaba-pca: %w", err)
		}
		secret, err := secrets.Read(ctx, namespace, a.AccessKeySecretSecretRef.Name, a.AccessKeySecretSecretRef.Key, "spec.auth.accessKeySecretSecretRef")
		if err != nil {
			return c, source, fmt.Errorf("alibaba-pca: %w", err)
		}
		c.AccessKeyID, c.AccessKeySecret, source = id.Value, secret.Value, id.String()
		if a.SecurityTokenSecretRef != nil {
			token, err := secrets.Read(ctx, namespace, a.SecurityTokenSecretRef.Name, a.SecurityTokenSecretRef.Key, "spec.auth.securityTokenSecretRef")
			if err != nil {
				return c, source, fmt.Errorf("alibaba-pca: %w", err)
			}
			c.SecurityToken = token.Value
		}
	case a.AccessKeyIDSecretRef != nil || a.AccessKeySecretSecretRef != nil:
		return c, source, signer.PermanentError{Err: errors.New("alibaba-pca: set both spec.auth.accessKeyIdSecretRef and spec.auth.accessKeySecretSecretRef, or neither")}
	case !cluster || !o.AllowAmbientCredentials:
		return c, source, signer.PermanentError{Err: errors.New("alibaba-pca: no credentials: set spec.auth.accessKeyIdSecretRef and spec.auth.accessKeySecretSecretRef. " +
			"Ambient credentials (RRSA, the ECS RAM role) are used only by the cluster kinds, and only when the controller allows them (--allow-ambient-credentials)")}
	default:
		env := o.Environ
		if env == nil {
			env = os.Getenv
		}
		c.Ambient = alisdk.Ambient{RoleARN: env("ALIBABA_CLOUD_ROLE_ARN"), OIDCProviderARN: env("ALIBABA_CLOUD_OIDC_PROVIDER_ARN"), OIDCTokenFile: env("ALIBABA_CLOUD_OIDC_TOKEN_FILE")}
	}
	c.RoleARN = a.RoleARN
	return c, source, nil
}

// NewAlibabaPCAForSpec builds the Private CA backend of a spec from
// credentials resolved by PCACredential, with the operator's endpoints.
func NewAlibabaPCAForSpec(o Options, c alisdk.Credential, source string, spec api.AlibabaPCAIssuerSpec) (*AlibabaPCA, error) {
	provider, err := alisdk.Provider(c, o.STSEndpoint)
	if err != nil {
		return nil, fmt.Errorf("alibaba-pca: credentials from %s: %w", source, err)
	}
	pca := o.PCA
	if spec.RegionID != "" {
		pca.Region = spec.RegionID
	}
	return NewAlibabaPCA(pca, provider, spec.CAIdentifier, source)
}

// pca builds (or reuses) the Private CA backend of a spec.
func (s *signers) pca(ctx context.Context, spec api.AlibabaPCAIssuerSpec, namespace string, cluster bool) (*AlibabaPCA, error) {
	c, source, err := PCACredential(ctx, s.opts, s.secrets, spec, namespace, cluster)
	if err != nil {
		return nil, err
	}
	key := hash("pca", c.AccessKeyID, c.AccessKeySecret, c.SecurityToken, c.RoleARN, c.Ambient.RoleARN, spec.CAIdentifier, spec.RegionID)
	if b, ok := s.backends.Load(key); ok {
		return b.(*AlibabaPCA), nil
	}
	p, err := NewAlibabaPCAForSpec(s.opts, c, source, spec)
	if err != nil {
		return nil, err
	}
	b, _ := s.backends.LoadOrStore(key, p)
	return b.(*AlibabaPCA), nil
}

func (s *signers) checkPCA(ctx context.Context, spec api.AlibabaPCAIssuerSpec, namespace string, cluster bool) error {
	p, err := s.pca(ctx, spec, namespace, cluster)
	if err != nil {
		return err
	}
	return p.Check(ctx)
}

func (s *signers) signPCA(ctx context.Context, details signer.CertificateDetails, spec api.AlibabaPCAIssuerSpec, namespace string, cluster bool) (signer.PEMBundle, error) {
	p, err := s.pca(ctx, spec, namespace, cluster)
	if err != nil {
		return signer.PEMBundle{}, signer.IssuerError{Err: err}
	}
	return p.Sign(ctx, details)
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// reference is the object an Event about a request is recorded on: a
// CertificateRequest, or a Kubernetes CertificateSigningRequest (cluster-scoped).
func reference(cr signer.CertificateRequestObject) client.Object {
	meta := metav1.ObjectMeta{Name: cr.GetName(), Namespace: cr.GetNamespace(), UID: cr.GetUID(), ResourceVersion: cr.GetResourceVersion()}
	if cr.GetNamespace() == "" {
		return &certificatesv1.CertificateSigningRequest{ObjectMeta: meta}
	}
	return &cmapi.CertificateRequest{ObjectMeta: meta}
}

// deniedRequests gives a Denied CertificateRequest for one of our issuers a
// terminal Ready condition: issuer-lib leaves it without one (issuer-lib #507),
// and cert-manager would wait for it forever.
type deniedRequests struct {
	client client.Client
}

func (d *deniedRequests) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("denied-certificaterequests").
		For(&cmapi.CertificateRequest{}, builderPredicate()).
		Complete(d)
}

func builderPredicate() builder.ForOption {
	return builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
		cr, ok := o.(*cmapi.CertificateRequest)
		return ok && cr.Spec.IssuerRef.Group == api.GroupVersion.Group
	}))
}

func (d *deniedRequests) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var cr cmapi.CertificateRequest
	if err := d.client.Get(ctx, req.NamespacedName, &cr); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cmutil.CertificateRequestIsDenied(&cr) || cmutil.CertificateRequestHasCondition(&cr, cmapi.CertificateRequestCondition{
		Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionFalse, Reason: cmapi.CertificateRequestReasonDenied}) {
		return ctrl.Result{}, nil
	}
	message := "The CertificateRequest was denied by an approval controller"
	for _, c := range cr.Status.Conditions {
		if c.Type == cmapi.CertificateRequestConditionDenied && c.Message != "" {
			message = "Denied: " + c.Message
		}
	}
	cmutil.SetCertificateRequestCondition(&cr, cmapi.CertificateRequestConditionReady, cmmeta.ConditionFalse, cmapi.CertificateRequestReasonDenied, message)
	if cr.Status.FailureTime == nil {
		now := metav1.Now()
		cr.Status.FailureTime = &now
	}
	return ctrl.Result{}, d.client.Status().Update(ctx, &cr)
}
