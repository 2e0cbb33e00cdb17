package secretref

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/certbridge/certbridge/test/fuzzseed"
)

// whitespace is what a padded value is padded with: what `echo` and editors
// add, and the Unicode spaces strings.TrimSpace also strips.
var whitespace = []string{" ", "\t", "\n", "\r\n", "\v", "\f", "\u0085", "\u00a0"}

// pad turns fuzz bytes into a run of whitespace.
func pad(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		s.WriteString(whitespace[int(c)%len(whitespace)])
	}
	return s.String()
}

// read reads name/key from a Secret holding data, with everything logged
// captured; missing makes the Secret absent.
func read(data map[string][]byte, name, key string, missing bool) (Value, error, string) {
	var logs strings.Builder
	var mu sync.Mutex
	r := Reader{
		Get: func(_ context.Context, namespace, n string) (*corev1.Secret, error) {
			if missing || n != name {
				return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, n)
			}
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: namespace, ResourceVersion: "1"}, Data: data}, nil
		},
		Log: funcr.New(func(prefix, args string) {
			mu.Lock()
			defer mu.Unlock()
			logs.WriteString(prefix + " " + args + "\n")
		}, funcr.Options{Verbosity: 10}),
		Warned: &sync.Map{},
		Scope:  func(ns string) string { return "scope of " + ns },
		Grant:  func(ns string) string { return "grant in " + ns },
		Who:    "the fuzzer",
	}
	v, err := r.Read(context.Background(), "ns", name, key, "tokenRef")
	return v, err, logs.String()
}

// A Secret's value is read trimmed however it is padded, is never empty
// without an error, and never shows in an error or a log line: reading a
// different value of the same shape (padded or not, empty or not) gives the
// very same error and logs.
func FuzzRead(f *testing.F) {
	fuzzseed.Add(f, []byte{}, "token-value", []byte{2}, "api-token", "api-token", false)
	fuzzseed.Add(f, []byte{0, 0}, "token-value", []byte{2, 3}, "api-token", "api-token", false)
	fuzzseed.Add(f, []byte{}, "", []byte{}, "api-token", "api-token", false)
	fuzzseed.Add(f, []byte{6, 7}, " ", []byte{1}, "api-token", "api-token", false)
	fuzzseed.Add(f, []byte{}, "token-value", []byte{}, "api-token", "apiToken", false)
	fuzzseed.Add(f, []byte{}, "token-value", []byte{}, "api-token", "api-token", true)
	fuzzseed.Add(f, []byte{}, "a\x00b\xff", []byte{5}, "k", "k", false)
	f.Fuzz(func(t *testing.T, lead []byte, core string, trail []byte, key, lookup string, missing bool) {
		raw := pad(lead) + core + pad(trail)
		v, err, logs := read(map[string][]byte{key: []byte(raw)}, "cf-token", lookup, missing)
		want := strings.TrimSpace(raw)
		if err == nil {
			if v.Value == "" || v.Value != want {
				t.Fatalf("%q read as %q, want %q", raw, v.Value, want)
			}
		} else if v.Value != "" {
			t.Fatalf("an error (%v) came with the value %q", err, v.Value)
		}
		if err == nil && lookup == key && !missing && want == "" {
			t.Fatal("a blank value was read without an error")
		}

		// The same read of another value of the same shape.
		other := "x"
		if want == "" {
			other = ""
		}
		if raw != want {
			other = " " + other
		}
		_, err2, logs2 := read(map[string][]byte{key: []byte(other)}, "cf-token", lookup, missing)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("the error depends on the value:\n%v\n%v", err, err2)
		}
		if logs != logs2 {
			t.Fatalf("the logs depend on the value:\n%s\n%s", logs, logs2)
		}
	})
}
