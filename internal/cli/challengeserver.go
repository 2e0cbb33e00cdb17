package cli

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"
	"github.com/cert-manager/cert-manager/pkg/acme/webhook/apiserver"
	"github.com/cert-manager/cert-manager/pkg/acme/webhook/registry/challengepayload"

	"github.com/certbridge/certbridge/internal/input"
)

// newChallengeServer is cert-manager's webhook API server
// (apiserver.Config.Complete().New(), v1.21) with two changes:
//
//   - every solver's OpenAPI operation gets its own ID. cert-manager names
//     them after the ChallengePayload kind only, so with two solvers the
//     generic API server refuses to build its OpenAPI spec and exits
//     ("duplicate Operation ID createAcme…ChallengePayload for path
//     …/alidns and …/cloudflare");
//   - each solver's storage is challengeStorage, which answers a
//     ChallengePayload it cannot hand to the solver with 400 Bad Request
//     instead of 500, and answers the others with the solver's outcome
//     only, not the request repeated;
//   - /readyz fails until the request-header CA is loaded (caLoaded).
//
// Everything else is cert-manager's: the group and version, the options
// group, the post-start hook that initializes each solver.
func newChallengeServer(config *apiserver.Config) (*genericapiserver.GenericAPIServer, error) {
	clientConfig := config.GenericConfig.ClientConfig
	if rh := config.GenericConfig.Authentication.RequestHeaderConfig; rh != nil && rh.CAContentProvider != nil {
		config.GenericConfig.AddReadyzChecks(caLoaded("request-header-client-ca", rh.CAContentProvider))
	}
	completed := config.Complete()
	if oc := config.GenericConfig.OpenAPIConfig; oc != nil {
		oc.GetOperationIDAndTags = operationIDPerResource(oc.GetOperationIDAndTags)
	}
	if oc := config.GenericConfig.OpenAPIV3Config; oc != nil {
		oc.GetOperationIDAndTags = operationIDPerResource(oc.GetOperationIDAndTags)
	}
	server, err := completed.GenericConfig.New("challenge-server", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}
	group := completed.ExtraConfig.SolverGroup
	info := genericapiserver.APIGroupInfo{
		PrioritizedVersions:          []schema.GroupVersion{{Group: group, Version: "v1alpha1"}},
		VersionedResourcesStorageMap: map[string]map[string]rest.Storage{"v1alpha1": {}},
		OptionsExternalVersion:       &schema.GroupVersion{Version: "v1"},
		Scheme:                       apiserver.Scheme,
		ParameterCodec:               metav1.ParameterCodec,
		NegotiatedSerializer:         apiserver.Codecs,
	}
	for _, s := range completed.ExtraConfig.Solvers {
		storage := challengeStorage{REST: challengepayload.NewREST(s)}
		if r, ok := s.(refuser); ok {
			storage.refuse = r.Refuse
		}
		info.VersionedResourcesStorageMap["v1alpha1"][s.Name()] = storage
	}
	if err := server.InstallAPIGroup(&info); err != nil {
		return nil, fmt.Errorf("error installing APIGroup for solvers: %w", err)
	}
	for _, s := range completed.ExtraConfig.Solvers {
		server.AddPostStartHookOrDie("solver-"+s.Name()+"-init", func(ctx genericapiserver.PostStartHookContext) error {
			return s.Initialize(clientConfig, ctx.Done())
		})
	}
	return server, nil
}

// challengeStorage is cert-manager's ChallengePayload storage with three
// changes:
//
//   - a payload without a request, or whose action is neither Present nor
//     CleanUp, is refused with 400 Bad Request. cert-manager's storage
//     returns a plain error for both, which the generic API server answers
//     with 500 Internal Server Error and logs as an unhandled error,
//     repeating the action whole (a megabyte of it, if that is what was
//     sent);
//   - a request its solver refuses before doing anything (solver.Refuse: a
//     malformed request, a Present's invalid config) is a 400 Bad Request
//     too, carrying the solver's message, where cert-manager answers every
//     solver error with 201 Created and success false. Both reach the
//     Challenge as the same message;
//   - the answer holds the response alone. cert-manager's storage returns
//     the request too, config included, and the generic API server
//     pretty-prints an answer when asked (?pretty=true, or a curl or browser
//     user agent): a config of 10 000 nested arrays, 20 kB sent, was a
//     200 MB answer, and as much memory in the webhook per request.
//     cert-manager reads only the response; the request is the caller's
//     own, its key included.
type challengeStorage struct {
	*challengepayload.REST
	refuse func(*whapi.ChallengeRequest) error
}

// refuser is a solver that can tell a request it refuses before serving it.
type refuser interface {
	Refuse(*whapi.ChallengeRequest) error
}

var (
	_ rest.Creater                  = challengeStorage{} //nolint:misspell // the interface's name
	_ rest.Scoper                   = challengeStorage{}
	_ rest.GroupVersionKindProvider = challengeStorage{}
	_ rest.SingularNameProvider     = challengeStorage{}
)

func (s challengeStorage) Create(ctx context.Context, obj runtime.Object, validate rest.ValidateObjectFunc, opts *metav1.CreateOptions) (runtime.Object, error) {
	if err := checkPayload(obj); err != nil {
		return nil, err
	}
	if s.refuse != nil {
		if err := s.refuse(obj.(*whapi.ChallengePayload).Request); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	}
	answer, err := s.REST.Create(ctx, obj, validate, opts)
	if err != nil {
		return nil, err
	}
	return &whapi.ChallengePayload{Response: answer.(*whapi.ChallengePayload).Response}, nil
}

// checkPayload refuses, as a Bad Request, what cert-manager's storage would
// answer with a plain error.
func checkPayload(obj runtime.Object) error {
	payload, ok := obj.(*whapi.ChallengePayload)
	if !ok {
		return apierrors.NewBadRequest(fmt.Sprintf("not a ChallengePayload: %T", obj))
	}
	if payload.Request == nil {
		return apierrors.NewBadRequest("the ChallengePayload has no request")
	}
	switch a := payload.Request.Action; a {
	case whapi.ChallengeActionPresent, whapi.ChallengeActionCleanUp:
		return nil
	default:
		return apierrors.NewBadRequest(fmt.Sprintf("request.action %s is not one of %s", input.Quote(string(a)),
			strings.Join([]string{string(whapi.ChallengeActionPresent), string(whapi.ChallengeActionCleanUp)}, ", ")))
	}
}
