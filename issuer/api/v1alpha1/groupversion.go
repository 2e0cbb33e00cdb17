// Package v1alpha1 is the certbridge.io/v1alpha1 API: the external issuer
// kinds for Cloudflare Origin CA and Alibaba Cloud Private CA.
// +kubebuilder:object:generate=true
// +groupName=certbridge.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

// GroupVersion is the API's group and version.
var GroupVersion = schema.GroupVersion{Group: "certbridge.io", Version: "v1alpha1"}

var (
	// SchemeBuilder registers the kinds.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}
	// AddToScheme adds the kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// SecretKeySelector names a key of a Secret in the namespace the issuer's
// Secrets are read from: an Issuer's own, or the cluster resource namespace
// for the cluster kinds. There is deliberately no namespace field.
type SecretKeySelector struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +kubebuilder:validation:MinLength=1
	Key string `json:"key"`
}
