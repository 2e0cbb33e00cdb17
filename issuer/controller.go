// Package issuer is certbridge's external issuer: the certbridge.io kinds
// (api/v1alpha1), their table (kinds.go) and their CA backends, one file
// each: Cloudflare Origin CA (origin_ca.go) and Alibaba Cloud Private CA
// (alibaba_pca.go), wired into cert-manager's issuer-lib here.
package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	issuerlib "github.com/cert-manager/issuer-lib/api/v1alpha1"
	"github.com/cert-manager/issuer-lib/controllers"
	"github.com/cert-manager/issuer-lib/controllers/signer"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/certbridge/certbridge/internal/alibaba"
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
	// Alibaba holds the Private CA and STS endpoints, the environment
	// ambient credentials are read from, and the cluster's RRSA OIDC
	// provider a serviceAccountRef's tokens are exchanged through.
	Alibaba alibaba.Options
	// Tokens requests the tokens of a serviceAccountRef, as the
	// controller's own ServiceAccount (SetupWithManager sets it).
	Tokens alibaba.TokenRequester
	// MaxConcurrentSigns is how many requests each kind's controller signs
	// at once; a CA answering in 100 ms caps one worker at 10 per second.
	MaxConcurrentSigns int
}

// SecretAccessValue is the chart value that grants the issuer `get` on
// Secrets, named in RBAC errors so the fix is one line of values.yaml.
const SecretAccessValue = "issuer.secretNamespaces"

// FieldOwner is the name the controllers apply their changes under.
const FieldOwner = "certbridge.io"

// caStatusOwner applies status.ca: a manager of its own, so issuer-lib's
// apply of the conditions (as FieldOwner) never removes it.
const caStatusOwner = "certbridge.io/ca-status"

// SetupWithManager registers the issuer controllers for the four kinds.
func SetupWithManager(ctx context.Context, mgr ctrl.Manager, o Options) error {
	if err := ctrlmetrics.Registry.Register(metrics.Certificates); err != nil && !errors.As(err, &prometheus.AlreadyRegisteredError{}) {
		return err
	}
	recorder := mgr.GetEventRecorder(FieldOwner)
	reader := mgr.GetAPIReader() // Secrets are read with a plain get: no cache, no list or watch
	kube, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return err
	}
	o.Tokens = alibaba.KubeTokens(kube)
	s := NewSigners(o, secretref.Reader{
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
			return fmt.Sprintf("Add %q to the chart value %s, or bind a Role granting get on secrets in %q to that ServiceAccount",
				namespace, SecretAccessValue, namespace)
		},
	})
	s.recorder, s.client, s.log = recorder, mgr.GetClient(), mgr.GetLogger().WithName("signer")
	var namespaced, cluster []issuerlib.Issuer
	for _, k := range kinds {
		if k.cluster {
			cluster = append(cluster, k.object)
		} else {
			namespaced = append(namespaced, k.object)
		}
	}
	err = (&controllers.CombinedController{
		IssuerTypes:        namespaced,
		ClusterIssuerTypes: cluster,
		FieldOwner:         FieldOwner,
		MaxRetryDuration:   o.MaxRetryDuration,
		Check:              s.check,
		Sign:               s.sign,
		EventRecorder:      recorder,
		// status.ca carries the issuing root: deprecated upstream in favour of
		// trust-manager, but users of these CAs read ca.crt.
		SetCAOnCertificateRequest: true,
		ControllerOptions:         controller.Options{MaxConcurrentReconciles: o.MaxConcurrentSigns},
	}).SetupWithManager(ctx, mgr)
	if err != nil {
		return err
	}
	return (&deniedRequests{client: mgr.GetClient()}).setup(mgr)
}

// Signers checks issuers and signs requests for every kind of the table,
// caching one backend per credential and spec.
type Signers struct {
	opts     Options
	secrets  secretref.Reader
	recorder events.EventRecorder
	client   client.Client
	log      logr.Logger
	backends sync.Map // credential and spec hash → backend
}

// NewSigners builds the signers the controller uses; `certbridge check`
// builds its own to check an issuer exactly as the controller does.
func NewSigners(o Options, secrets secretref.Reader) *Signers {
	return &Signers{opts: o, secrets: secrets, log: logr.Discard()}
}

// CheckResult is what a check found besides success or failure.
type CheckResult struct {
	// CA is the Private CA sub-CA as described (Private CA kinds only).
	CA *alibaba.CA
}

// Check checks an issuer as the controller does, every message prefixed
// with its backend's name, and says what it found.
func (s *Signers) Check(ctx context.Context, iss issuerlib.Issuer) (CheckResult, error) {
	k, ok := kindOf(iss)
	if !ok {
		return CheckResult{}, signer.PermanentError{Err: fmt.Errorf("unknown issuer type %T", iss)}
	}
	b, err := k.backend(s, ctx, iss, s.secretNamespace(k, iss), k.cluster)
	if err != nil {
		return CheckResult{}, prefixed(k.prefix, checkError(err))
	}
	res, err := b.check(ctx)
	return res, prefixed(k.prefix, checkError(err))
}

// checkError is how Check reports a broken issuer: a plain error, so the
// issuer is retried with backoff and becomes Ready as soon as what it
// names is fixed (a Secret created, a grant added). issuer-lib would mark
// a PermanentError from Check as failed until the spec changes; those are
// for requests that can never be signed, from Sign only.
func checkError(err error) error {
	var permanent signer.PermanentError
	var broken signer.IssuerError
	switch {
	case errors.As(err, &permanent):
		return permanent.Err
	case errors.As(err, &broken):
		return broken.Err
	}
	return err
}

func (s *Signers) check(ctx context.Context, iss issuerlib.Issuer) error {
	res, err := s.Check(ctx, iss)
	if err == nil && res.CA != nil {
		if perr := s.recordCA(ctx, iss, res.CA); perr != nil {
			s.log.Error(perr, "Could not record the sub-CA in the issuer's status", "issuer", iss.GetName())
		}
	}
	return err
}

func (s *Signers) sign(ctx context.Context, cr signer.CertificateRequestObject, iss issuerlib.Issuer) (bundle signer.PEMBundle, err error) {
	k, ok := kindOf(iss)
	if !ok {
		return signer.PEMBundle{}, signer.PermanentError{Err: fmt.Errorf("unknown issuer type %T", iss)}
	}
	defer func() { metrics.Certificates.WithLabelValues(k.label, metrics.Outcome(err)).Inc() }()
	details, err := cr.GetCertificateDetails()
	if err != nil {
		return signer.PEMBundle{}, signer.PermanentError{Err: err}
	}
	b, err := k.backend(s, ctx, iss, s.secretNamespace(k, iss), k.cluster)
	if err != nil {
		// A backend that cannot be built is a broken issuer, not a bad
		// request: the request waits for the issuer to be fixed.
		return signer.PEMBundle{}, prefixed(k.prefix, signer.IssuerError{Err: checkError(err)})
	}
	bundle, err = b.sign(ctx, s, cr, details)
	return bundle, prefixed(k.prefix, err)
}

// secretNamespace is where an issuer's Secrets are read: its own namespace,
// or the cluster resource namespace for the cluster kinds.
func (s *Signers) secretNamespace(k kind, iss issuerlib.Issuer) string {
	if k.cluster {
		return s.opts.ClusterResourceNamespace
	}
	return iss.GetNamespace()
}

// cached returns the backend stored under key, building it on first use.
func (s *Signers) cached(key string, build func() (backend, error)) (backend, error) {
	if b, ok := s.backends.Load(key); ok {
		return b.(backend), nil
	}
	b, err := build()
	if err != nil {
		return nil, err
	}
	stored, _ := s.backends.LoadOrStore(key, b)
	return stored.(backend), nil
}

// prefixed starts err's message with the backend's name, once, keeping
// issuer-lib's error types (what the controller does with the error).
func prefixed(prefix string, err error) error {
	if err == nil {
		return nil
	}
	var permanent signer.PermanentError
	var broken signer.IssuerError
	switch {
	case errors.As(err, &permanent):
		return signer.PermanentError{Err: fmt.Errorf("%s: %w", prefix, permanent.Err)}
	case errors.As(err, &broken):
		return signer.IssuerError{Err: fmt.Errorf("%s: %w", prefix, broken.Err)}
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// recordCA writes what the check found of the sub-CA to status.ca, when it
// changed, so `kubectl get apcai` shows the key algorithm requests must
// match.
func (s *Signers) recordCA(ctx context.Context, iss issuerlib.Issuer, ca *alibaba.CA) error {
	holder, ok := iss.(interface{ CAStatus() *api.PrivateCAStatus })
	if !ok || s.client == nil {
		return nil
	}
	want := &api.PrivateCAStatus{KeyAlgorithm: ca.Algorithm, State: ca.Status, RemainingCertificates: ca.Remaining}
	if !ca.NotAfter.IsZero() {
		t := metav1.NewTime(ca.NotAfter.UTC().Truncate(time.Second))
		want.NotAfter = &t
	}
	if have := holder.CAStatus(); have != nil && have.KeyAlgorithm == want.KeyAlgorithm && have.State == want.State &&
		have.RemainingCertificates == want.RemainingCertificates && equalTime(have.NotAfter, want.NotAfter) {
		return nil
	}
	gvk, err := s.client.GroupVersionKindFor(iss)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{
		"apiVersion": gvk.GroupVersion().String(), "kind": gvk.Kind,
		"metadata": map[string]any{"name": iss.GetName(), "namespace": iss.GetNamespace()},
		"status":   map[string]any{"ca": want},
	})
	if err != nil {
		return err
	}
	return s.client.Status().Patch(ctx, iss, client.RawPatch(types.ApplyPatchType, patch),
		&client.SubResourcePatchOptions{PatchOptions: client.PatchOptions{FieldManager: caStatusOwner, Force: new(true)}})
}

func equalTime(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
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
