package issuer

import (
	"context"

	cmutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	api "github.com/certbridge/certbridge/issuer/api/v1alpha1"
)

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
