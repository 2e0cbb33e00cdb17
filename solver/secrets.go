package solver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// SecretAccessValue is the chart value that grants the webhook `get` on
// Secrets, named in RBAC errors so the fix is one line of values.yaml.
const SecretAccessValue = "webhook.secretNamespaces"

// credential is a secret value with where it came from. Its String form names
// the source and never the value.
type credential struct {
	value string
	// field is the config field that referenced it, e.g. apiTokenSecretRef.
	field     string
	namespace string
	secret    string
	key       string
}

func (c credential) String() string {
	return fmt.Sprintf("Secret %s/%s key %q (%s)", c.namespace, c.secret, c.key, c.field)
}

// secretReader reads credentials from Secrets in the challenge's namespace.
type secretReader struct {
	client kubernetes.Interface
	log    logr.Logger
	// warned remembers which Secret keys were already reported as padded,
	// so the warning is logged once per key, not on every challenge.
	warned *sync.Map
}

var forbiddenUser = regexp.MustCompile(`User "([^"]+)"`)

// read returns the trimmed value of ref in namespace. Only the namespace the
// challenge came from is ever read: the caller passes ChallengeRequest's
// ResourceNamespace, which cert-manager sets to the Issuer's namespace, or to
// its cluster resource namespace for a ClusterIssuer.
func (r secretReader) read(ctx context.Context, namespace string, ref SecretKeySelector, fieldName string) (credential, error) {
	c := credential{field: fieldName, namespace: namespace, secret: ref.Name, key: ref.Key}
	if namespace == "" {
		return c, errors.New("the challenge names no namespace to read Secrets from")
	}
	s, err := r.client.CoreV1().Secrets(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return c, fmt.Errorf("Secret %q (%s.name) not found in namespace %q. "+
			"The webhook reads Secrets only from the namespace cert-manager names for the challenge: "+
			"an Issuer's own namespace (%q here), or for a ClusterIssuer the cluster resource namespace "+
			"(cert-manager's --cluster-resource-namespace, \"cert-manager\" by default). "+
			"Create the Secret in %q, or check that its manifest's metadata.namespace did not send it elsewhere",
			ref.Name, fieldName, namespace, namespace, namespace)
	case apierrors.IsForbidden(err):
		who := "the webhook's ServiceAccount"
		if m := forbiddenUser.FindStringSubmatch(err.Error()); m != nil {
			who = fmt.Sprintf("the webhook's ServiceAccount %q", m[1])
		}
		return c, fmt.Errorf("%s may not get Secrets in namespace %q (RBAC forbidden), so it cannot read Secret %q (%s.name). "+
			"Add %q to the chart value %s, or bind a Role granting get on secrets in %q to that ServiceAccount",
			who, namespace, ref.Name, fieldName, namespace, SecretAccessValue, namespace)
	case err != nil:
		return c, fmt.Errorf("reading Secret %s/%s (%s.name): %w", namespace, ref.Name, fieldName, err)
	}
	raw, ok := s.Data[ref.Key]
	if !ok {
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		has := "it has no keys"
		if len(keys) > 0 {
			has = "it has the keys " + strings.Join(keys, ", ")
		}
		return c, fmt.Errorf("Secret %s/%s has no key %q (%s.key); %s. Set %s.key to the key that holds the credential",
			namespace, ref.Name, ref.Key, fieldName, has, fieldName)
	}
	value := strings.TrimSpace(string(raw))
	if value != string(raw) {
		if _, seen := r.warned.LoadOrStore(namespace+"/"+ref.Name+"/"+ref.Key+"/"+s.ResourceVersion, true); !seen {
			r.log.Info("Secret value has leading or trailing whitespace; using it trimmed",
				"namespace", namespace, "secret", ref.Name, "key", ref.Key,
				"hint", "a value made with `echo … | base64` ends in a newline; use `echo -n` or `kubectl create secret --from-literal`")
		}
	}
	if value == "" {
		return c, fmt.Errorf("Secret %s/%s key %q (%s.key) is empty", namespace, ref.Name, ref.Key, fieldName)
	}
	c.value = value
	return c, nil
}
