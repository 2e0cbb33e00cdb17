package v1alpha1

import (
	issuerlib "github.com/cert-manager/issuer-lib/api/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AlibabaPCAIssuerSpec configures issuance from a sub-CA of Alibaba Cloud
// Private CA.
type AlibabaPCAIssuerSpec struct {
	// CAIdentifier is the issuing sub-CA's identifier (root CAs cannot issue).
	// +kubebuilder:validation:MinLength=1
	CAIdentifier string `json:"caIdentifier"`
	// RegionID the requests are signed for; cn-hangzhou by default.
	// +optional
	RegionID string `json:"regionId,omitempty"`
	// Auth names the credentials, as for the alidns solver. Without Secret
	// references, the cluster kinds may use ambient credentials (RRSA, the
	// ECS RAM role) when the controller allows them.
	// +optional
	Auth AlibabaAuth `json:"auth,omitempty"`
}

// AlibabaAuth holds Alibaba Cloud credentials.
type AlibabaAuth struct {
	// +optional
	AccessKeyIDSecretRef *SecretKeySelector `json:"accessKeyIdSecretRef,omitempty"`
	// +optional
	AccessKeySecretSecretRef *SecretKeySelector `json:"accessKeySecretSecretRef,omitempty"`
	// +optional
	SecurityTokenSecretRef *SecretKeySelector `json:"securityTokenSecretRef,omitempty"`
	// RoleARN is a RAM role to assume from the credentials above or the
	// ambient ones.
	// +kubebuilder:validation:Pattern=`^acs:ram::[0-9]+:role/[A-Za-z0-9._-]+$`
	// +optional
	RoleARN string `json:"roleArn,omitempty"`
}

// AlibabaPCAIssuer issues certificates from an Alibaba Cloud Private CA
// sub-CA for CertificateRequests in its namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=apcai,categories=certbridge
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AlibabaPCAIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AlibabaPCAIssuerSpec   `json:"spec"`
	Status issuerlib.IssuerStatus `json:"status,omitempty"`
}

// AlibabaPCAIssuerList is a list of AlibabaPCAIssuers.
// +kubebuilder:object:root=true
type AlibabaPCAIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AlibabaPCAIssuer `json:"items"`
}

// ClusterAlibabaPCAIssuer is the cluster-scoped AlibabaPCAIssuer; its
// Secrets live in the cluster resource namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=capcai,categories=certbridge
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterAlibabaPCAIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AlibabaPCAIssuerSpec   `json:"spec"`
	Status issuerlib.IssuerStatus `json:"status,omitempty"`
}

// ClusterAlibabaPCAIssuerList is a list of ClusterAlibabaPCAIssuers.
// +kubebuilder:object:root=true
type ClusterAlibabaPCAIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterAlibabaPCAIssuer `json:"items"`
}

// GetConditions implements issuer-lib's Issuer.
func (i *AlibabaPCAIssuer) GetConditions() []metav1.Condition { return i.Status.Conditions }

// GetIssuerTypeIdentifier implements issuer-lib's Issuer.
func (i *AlibabaPCAIssuer) GetIssuerTypeIdentifier() string { return "alibabapcaissuers.certbridge.io" }

// GetConditions implements issuer-lib's Issuer.
func (i *ClusterAlibabaPCAIssuer) GetConditions() []metav1.Condition { return i.Status.Conditions }

// GetIssuerTypeIdentifier implements issuer-lib's Issuer.
func (i *ClusterAlibabaPCAIssuer) GetIssuerTypeIdentifier() string {
	return "clusteralibabapcaissuers.certbridge.io"
}

var (
	_ issuerlib.Issuer = (*AlibabaPCAIssuer)(nil)
	_ issuerlib.Issuer = (*ClusterAlibabaPCAIssuer)(nil)
)

func init() {
	knownTypes = append(knownTypes, &AlibabaPCAIssuer{}, &AlibabaPCAIssuerList{},
		&ClusterAlibabaPCAIssuer{}, &ClusterAlibabaPCAIssuerList{})
}
