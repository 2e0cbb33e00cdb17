// Package v1alpha1 is the certbridge.io/v1alpha1 API: the external issuer
// kinds for Cloudflare Origin CA and Alibaba Cloud Private CA.
// +kubebuilder:object:generate=true
// +groupName=certbridge.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API's group and version.
var GroupVersion = schema.GroupVersion{Group: "certbridge.io", Version: "v1alpha1"}

var (
	// SchemeBuilder registers the kinds.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
	// knownTypes are the kinds, registered by each kind's file.
	knownTypes []runtime.Object
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, knownTypes...)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// SecretKeySelector names a key of a Secret in the namespace the issuer's
// Secrets are read from: an Issuer's own, or the cluster resource namespace
// for the cluster kinds. There is deliberately no namespace field.
type SecretKeySelector struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
}
