package solver

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/certbridge/certbridge/internal/secretref"
)

// SecretAccessValue is the chart value that grants the webhook `get` on
// Secrets, named in RBAC errors so the fix is one line of values.yaml.
const SecretAccessValue = "webhook.secretNamespaces"

// credential is a secret value with where it came from.
type credential = secretref.Value

// secretReader reads credentials from Secrets in the challenge's namespace:
// the caller passes ChallengeRequest's ResourceNamespace, which cert-manager
// sets to the Issuer's namespace, or to its cluster resource namespace for a
// ClusterIssuer.
type secretReader struct {
	secretref.Reader
	// kube is the webhook's own client, which also requests the tokens of a
	// solver's serviceAccountRef.
	kube kubernetes.Interface
}

func newSecretReader(client kubernetes.Interface, log logr.Logger, warned *sync.Map) secretReader {
	return secretReader{secretref.Reader{
		Get: func(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
			return client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
		},
		Log:    log,
		Warned: warned,
		Who:    "the webhook's ServiceAccount",
		Scope: func(namespace string) string {
			return fmt.Sprintf("The webhook reads Secrets only from the namespace cert-manager names for the challenge: "+
				"an Issuer's own namespace (%q here), or for a ClusterIssuer the cluster resource namespace "+
				"(cert-manager's --cluster-resource-namespace, \"cert-manager\" by default)", namespace)
		},
		Grant: func(namespace string) string {
			return fmt.Sprintf("Add %q to the chart value %s, or bind a Role granting get on secrets in %q to that ServiceAccount",
				namespace, SecretAccessValue, namespace)
		},
	}, client}
}

func (r secretReader) read(ctx context.Context, namespace string, ref SecretKeySelector, field string) (credential, error) {
	return r.Read(ctx, namespace, ref.Name, ref.Key, field)
}
