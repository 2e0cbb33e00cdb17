package v1alpha1

import (
	issuerlib "github.com/cert-manager/issuer-lib/api/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CloudflareOriginIssuerSpec configures issuance from Cloudflare's Origin CA.
type CloudflareOriginIssuerSpec struct {
	Auth CloudflareOriginAuth `json:"auth"`
	// RequestType is the Origin CA key family; by default the request's own
	// key type. A request whose key differs fails permanently.
	// +kubebuilder:validation:Enum=OriginECC;OriginRSA
	// +optional
	RequestType string `json:"requestType,omitempty"`
}

// CloudflareOriginAuth holds the credential.
type CloudflareOriginAuth struct {
	// TokenRef is an API token with Zone → SSL and Certificates → Edit.
	// +optional
	TokenRef *SecretKeySelector `json:"tokenRef,omitempty"`
	// ServiceKeyRef is refused with an explanation: Origin CA service keys
	// reached end of life on 2026-09-30. It is kept so that old manifests
	// get a clear message instead of a silently dropped field.
	// +optional
	ServiceKeyRef *SecretKeySelector `json:"serviceKeyRef,omitempty"`
}

// CloudflareOriginIssuer issues Cloudflare Origin CA certificates for
// CertificateRequests in its namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cfoi,categories=certbridge
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CloudflareOriginIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CloudflareOriginIssuerSpec `json:"spec"`
	Status issuerlib.IssuerStatus     `json:"status,omitempty"`
}

// CloudflareOriginIssuerList is a list of CloudflareOriginIssuers.
// +kubebuilder:object:root=true
type CloudflareOriginIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CloudflareOriginIssuer `json:"items"`
}

// ClusterCloudflareOriginIssuer is the cluster-scoped CloudflareOriginIssuer;
// its Secret lives in the cluster resource namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ccfoi,categories=certbridge
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterCloudflareOriginIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CloudflareOriginIssuerSpec `json:"spec"`
	Status issuerlib.IssuerStatus     `json:"status,omitempty"`
}

// ClusterCloudflareOriginIssuerList is a list of ClusterCloudflareOriginIssuers.
// +kubebuilder:object:root=true
type ClusterCloudflareOriginIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterCloudflareOriginIssuer `json:"items"`
}

// OriginSpec is the spec both Origin CA kinds share.
func (i *CloudflareOriginIssuer) OriginSpec() CloudflareOriginIssuerSpec { return i.Spec }

// OriginSpec is the spec both Origin CA kinds share.
func (i *ClusterCloudflareOriginIssuer) OriginSpec() CloudflareOriginIssuerSpec { return i.Spec }

// GetConditions implements issuer-lib's Issuer.
func (i *CloudflareOriginIssuer) GetConditions() []metav1.Condition { return i.Status.Conditions }

// GetIssuerTypeIdentifier implements issuer-lib's Issuer.
func (i *CloudflareOriginIssuer) GetIssuerTypeIdentifier() string {
	return "cloudflareoriginissuers.certbridge.io"
}

// GetConditions implements issuer-lib's Issuer.
func (i *ClusterCloudflareOriginIssuer) GetConditions() []metav1.Condition {
	return i.Status.Conditions
}

// GetIssuerTypeIdentifier implements issuer-lib's Issuer.
func (i *ClusterCloudflareOriginIssuer) GetIssuerTypeIdentifier() string {
	return "clustercloudflareoriginissuers.certbridge.io"
}

var (
	_ issuerlib.Issuer = (*CloudflareOriginIssuer)(nil)
	_ issuerlib.Issuer = (*ClusterCloudflareOriginIssuer)(nil)
)

func init() {
	knownTypes = append(knownTypes, &CloudflareOriginIssuer{}, &CloudflareOriginIssuerList{},
		&ClusterCloudflareOriginIssuer{}, &ClusterCloudflareOriginIssuerList{})
}
