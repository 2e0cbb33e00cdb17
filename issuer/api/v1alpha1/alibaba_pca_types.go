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

// AlibabaAuth holds Alibaba Cloud credentials: an AccessKey (or STS
// credentials) from Secrets, or a ServiceAccount's identity
// (serviceAccountRef with roleArn), or, for the cluster kinds, the
// controller's own.
// +kubebuilder:validation:XValidation:rule="!has(self.serviceAccountRef) || has(self.roleArn)",message="serviceAccountRef needs roleArn: the RAM role its tokens are exchanged for"
// +kubebuilder:validation:XValidation:rule="!has(self.serviceAccountRef) || !(has(self.accessKeyIdSecretRef) || has(self.accessKeySecretSecretRef) || has(self.securityTokenSecretRef))",message="serviceAccountRef is the credential: an AccessKey is not used with it"
type AlibabaAuth struct {
	// +optional
	AccessKeyIDSecretRef *SecretKeySelector `json:"accessKeyIdSecretRef,omitempty"`
	// +optional
	AccessKeySecretSecretRef *SecretKeySelector `json:"accessKeySecretSecretRef,omitempty"`
	// +optional
	SecurityTokenSecretRef *SecretKeySelector `json:"securityTokenSecretRef,omitempty"`
	// RoleARN is a RAM role to assume from the credentials above or the
	// ambient ones, or that serviceAccountRef's tokens are exchanged for.
	// +kubebuilder:validation:Pattern=`^acs:ram::[0-9]+:role/[A-Za-z0-9._-]+$`
	// +optional
	RoleARN string `json:"roleArn,omitempty"`
	// ServiceAccountRef names a ServiceAccount whose tokens the controller
	// requests and exchanges (STS AssumeRoleWithOIDC, through the cluster's
	// RRSA OIDC provider) for roleArn's credentials: in the issuer's own
	// namespace, or for the cluster kind in the cluster resource namespace.
	// The controller may request them only where a RoleBinding in that
	// namespace lets it create serviceaccounts/token for that name.
	// +optional
	ServiceAccountRef *ServiceAccountRef `json:"serviceAccountRef,omitempty"`
}

// ServiceAccountRef names a ServiceAccount of the namespace the issuer's
// credentials are read from; there is no namespace field, on purpose.
type ServiceAccountRef struct {
	// Name of the ServiceAccount.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
	// Audience of the requested tokens; sts.aliyuncs.com by default, the
	// client ID of the cluster's RRSA OIDC provider.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^\S*$`
	// +optional
	Audience string `json:"audience,omitempty"`
}

// AlibabaPCAIssuerStatus is issuer-lib's status with what the controller
// last found of the issuing sub-CA.
type AlibabaPCAIssuerStatus struct {
	issuerlib.IssuerStatus `json:",inline"`
	// CA is the issuing sub-CA as Private CA last described it.
	// +optional
	CA *PrivateCAStatus `json:"ca,omitempty"`
}

// PrivateCAStatus describes the issuing sub-CA.
type PrivateCAStatus struct {
	// KeyAlgorithm is the sub-CA's key algorithm (RSA_2048, ECC_256, …).
	// Private CA signs only requests whose key is of the same algorithm
	// family: an ECDSA request to an RSA sub-CA fails.
	// +optional
	KeyAlgorithm string `json:"keyAlgorithm,omitempty"`
	// State is ISSUE or REVOKE.
	// +optional
	State string `json:"state,omitempty"`
	// RemainingCertificates is how many more certificates it may issue.
	// +optional
	RemainingCertificates int `json:"remainingCertificates,omitempty"`
	// NotAfter is when the sub-CA expires.
	// +optional
	NotAfter *metav1.Time `json:"notAfter,omitempty"`
}

// AlibabaPCAIssuer issues certificates from an Alibaba Cloud Private CA
// sub-CA for CertificateRequests in its namespace.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=apcai,categories=certbridge
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Key Algorithm",type=string,JSONPath=`.status.ca.keyAlgorithm`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AlibabaPCAIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AlibabaPCAIssuerSpec   `json:"spec"`
	Status AlibabaPCAIssuerStatus `json:"status,omitempty"`
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
// +kubebuilder:printcolumn:name="Key Algorithm",type=string,JSONPath=`.status.ca.keyAlgorithm`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterAlibabaPCAIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AlibabaPCAIssuerSpec   `json:"spec"`
	Status AlibabaPCAIssuerStatus `json:"status,omitempty"`
}

// ClusterAlibabaPCAIssuerList is a list of ClusterAlibabaPCAIssuers.
// +kubebuilder:object:root=true
type ClusterAlibabaPCAIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterAlibabaPCAIssuer `json:"items"`
}

// PCASpec is the spec both Private CA kinds share.
func (i *AlibabaPCAIssuer) PCASpec() AlibabaPCAIssuerSpec { return i.Spec }

// PCASpec is the spec both Private CA kinds share.
func (i *ClusterAlibabaPCAIssuer) PCASpec() AlibabaPCAIssuerSpec { return i.Spec }

// CAStatus is what the controller last found of the sub-CA.
func (i *AlibabaPCAIssuer) CAStatus() *PrivateCAStatus { return i.Status.CA }

// CAStatus is what the controller last found of the sub-CA.
func (i *ClusterAlibabaPCAIssuer) CAStatus() *PrivateCAStatus { return i.Status.CA }

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
