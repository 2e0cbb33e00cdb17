// Package secretref reads credentials from Secrets for the solvers and the
// issuer, with the messages users need when that fails (docs/failures.md:
// F1, F2, F3, F12): which Secret, which namespace and why that one, which keys exist,
// who lacks RBAC and how to grant it. A value never appears in a message or
// a log line.
package secretref

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Value is a secret value with where it came from. Its String form names the
// source and never the value.
type Value struct {
	Value string
	// Field is the config field that referenced it, e.g. apiTokenSecretRef.
	Field     string
	Namespace string
	Secret    string
	Key       string
}

func (v Value) String() string {
	return fmt.Sprintf("Secret %s/%s key %q (%s)", v.Namespace, v.Secret, v.Key, v.Field)
}

// Reader reads Secret keys. Its callers pass only the namespace their
// resource allows: they never let a config field choose it.
type Reader struct {
	// Get fetches one Secret (a plain get: no list or watch on Secrets).
	Get func(ctx context.Context, namespace, name string) (*corev1.Secret, error)
	Log logr.Logger
	// Warned remembers which Secret keys were reported as padded, so the
	// warning is logged once per key and version, not on every use.
	Warned *sync.Map
	// Scope explains, for a missing Secret, which namespace Secrets are
	// read from and why.
	Scope func(namespace string) string
	// Grant says how to let the reader get Secrets in namespace.
	Grant func(namespace string) string
	// Who names the reader in RBAC messages, e.g. "the webhook's ServiceAccount".
	Who string
}

var forbiddenUser = regexp.MustCompile(`User "([^"]+)"`)

// Problem is what kept a credential from being read.
type Problem int

const (
	// SecretNotFound: no Secret of that name in the namespace.
	SecretNotFound Problem = iota + 1
	// KeyMissing: the Secret has no such key.
	KeyMissing
	// ValueEmpty: the key holds nothing but whitespace.
	ValueEmpty
	// ReadForbidden: RBAC does not let the reader get the Secret.
	ReadForbidden
)

// Error is a credential that could not be read, with the message for the
// user. Callers decide on Problem, never on the text.
type Error struct {
	Problem Problem
	msg     string
	err     error
}

func (e *Error) Error() string { return e.msg }

func (e *Error) Unwrap() error { return e.err }

func newError(p Problem, err error, format string, args ...any) *Error {
	return &Error{Problem: p, msg: fmt.Sprintf(format, args...), err: err}
}

// Read returns the trimmed value of name/key in namespace; field names the
// reference in the user's config.
func (r Reader) Read(ctx context.Context, namespace, name, key, field string) (Value, error) {
	v := Value{Field: field, Namespace: namespace, Secret: name, Key: key}
	if namespace == "" {
		return v, errors.New("no namespace to read Secrets from")
	}
	s, err := r.Get(ctx, namespace, name)
	switch {
	case apierrors.IsNotFound(err):
		return v, newError(SecretNotFound, err, "Secret %q (%s.name) not found in namespace %q. %s. "+
			"Create the Secret in %q, or check that its manifest's metadata.namespace did not send it elsewhere",
			name, field, namespace, r.Scope(namespace), namespace)
	case apierrors.IsForbidden(err):
		who := r.Who
		if m := forbiddenUser.FindStringSubmatch(err.Error()); m != nil {
			who = fmt.Sprintf("%s %q", r.Who, m[1])
		}
		return v, newError(ReadForbidden, err, "%s may not get Secrets in namespace %q (RBAC forbidden), so it cannot read Secret %q (%s.name). %s",
			who, namespace, name, field, r.Grant(namespace))
	case err != nil:
		return v, fmt.Errorf("reading Secret %s/%s (%s.name): %w", namespace, name, field, err)
	}
	raw, ok := s.Data[key]
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
		return v, newError(KeyMissing, nil, "Secret %s/%s has no key %q (%s.key); %s. Set %s.key to the key that holds the credential",
			namespace, name, key, field, has, field)
	}
	value := strings.TrimSpace(string(raw))
	if value != string(raw) && r.Warned != nil {
		if _, seen := r.Warned.LoadOrStore(namespace+"/"+name+"/"+key+"/"+s.ResourceVersion, true); !seen {
			r.Log.Info("Secret value has leading or trailing whitespace; using it trimmed",
				"namespace", namespace, "secret", name, "key", key,
				"hint", "a value made with `echo … | base64` ends in a newline; use `echo -n` or `kubectl create secret --from-literal`")
		}
	}
	if value == "" {
		return v, newError(ValueEmpty, nil, "Secret %s/%s key %q (%s.key) is empty", namespace, name, key, field)
	}
	v.Value = value
	return v, nil
}
