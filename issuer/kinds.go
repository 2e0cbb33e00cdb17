package issuer

import (
	"context"
	"reflect"

	issuerlib "github.com/cert-manager/issuer-lib/api/v1alpha1"
	"github.com/cert-manager/issuer-lib/controllers/signer"

	api "github.com/certbridge/certbridge/issuer/api/v1alpha1"
)

// backend is one issuer's CA, built from its spec and credentials.
type backend interface {
	// check says whether the issuer can sign; an error makes it not Ready.
	check(ctx context.Context) (CheckResult, error)
	// sign signs one request.
	sign(ctx context.Context, s *Signers, cr signer.CertificateRequestObject, details signer.CertificateDetails) (signer.PEMBundle, error)
}

// kind is one issuer kind the controller serves: everything that differs
// between the four kinds is in this table.
type kind struct {
	// object is an empty object of the kind.
	object issuerlib.Issuer
	// cluster kinds read Secrets from the cluster resource namespace.
	cluster bool
	// label names the CA backend in metrics.
	label string
	// prefix starts every message of the backend.
	prefix string
	// backend builds (or reuses) the issuer's backend; namespace is where
	// its Secrets are read.
	backend func(s *Signers, ctx context.Context, iss issuerlib.Issuer, namespace string, cluster bool) (backend, error)
}

const (
	originLabel  = "cloudflare-origin-ca"
	originPrefix = "origin-ca"
	pcaLabel     = "alibaba-pca"
	pcaPrefix    = "alibaba-pca"
)

var kinds = []kind{
	{object: &api.CloudflareOriginIssuer{}, label: originLabel, prefix: originPrefix, backend: (*Signers).originBackend},
	{object: &api.ClusterCloudflareOriginIssuer{}, cluster: true, label: originLabel, prefix: originPrefix, backend: (*Signers).originBackend},
	{object: &api.AlibabaPCAIssuer{}, label: pcaLabel, prefix: pcaPrefix, backend: (*Signers).pcaBackend},
	{object: &api.ClusterAlibabaPCAIssuer{}, cluster: true, label: pcaLabel, prefix: pcaPrefix, backend: (*Signers).pcaBackend},
}

// kindOf finds an issuer's row of the table.
func kindOf(iss issuerlib.Issuer) (kind, bool) {
	for _, k := range kinds {
		if k.object.GetIssuerTypeIdentifier() == iss.GetIssuerTypeIdentifier() {
			return k, true
		}
	}
	return kind{}, false
}

// The kinds of one backend share their spec.
type (
	originIssuer interface {
		OriginSpec() api.CloudflareOriginIssuerSpec
	}
	pcaIssuer interface {
		PCASpec() api.AlibabaPCAIssuerSpec
	}
)

// NewObject returns an empty object of the certbridge.io kind named kind
// (CloudflareOriginIssuer, …), or false.
func NewObject(kindName string) (issuerlib.Issuer, bool) {
	for _, k := range kinds {
		if reflect.TypeOf(k.object).Elem().Name() == kindName {
			return reflect.New(reflect.TypeOf(k.object).Elem()).Interface().(issuerlib.Issuer), true
		}
	}
	return nil, false
}
