package alisdk

import "github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"

// Credential says where a client's credentials come from.
type Credential struct {
	// AccessKeyID and AccessKeySecret are a RAM user's AccessKey, or STS
	// credentials with SecurityToken. All empty means ambient credentials.
	AccessKeyID, AccessKeySecret, SecurityToken string
	// Ambient is what the process environment offers; used only when the
	// AccessKey fields are empty, and only if the caller allowed it.
	Ambient Ambient
	// RoleARN is a RAM role assumed from the credentials above.
	RoleARN string
}

// Ambient is RRSA on ACK when RoleARN is set, else the ECS instance's RAM role.
type Ambient struct {
	RoleARN, OIDCProviderARN, OIDCTokenFile string
}

// Provider builds the SDK's credentials provider, with every value given
// explicitly so the SDK never falls back to environment variables, and STS
// reached at stsEndpoint (HTTPS).
func Provider(c Credential, stsEndpoint string) (credentials.CredentialsProvider, error) {
	var base credentials.CredentialsProvider
	var err error
	switch {
	case c.AccessKeyID != "" && c.SecurityToken != "":
		base = credentials.NewStaticSTSCredentialsProvider(c.AccessKeyID, c.AccessKeySecret, c.SecurityToken)
	case c.AccessKeyID != "":
		base = credentials.NewStaticAKCredentialsProvider(c.AccessKeyID, c.AccessKeySecret)
	case c.Ambient.RoleARN != "":
		base, err = credentials.NewOIDCCredentialsProviderBuilder().
			WithRoleArn(c.Ambient.RoleARN).
			WithOIDCProviderARN(c.Ambient.OIDCProviderARN).
			WithOIDCTokenFilePath(c.Ambient.OIDCTokenFile).
			WithRoleSessionName("certbridge").
			WithSTSEndpoint(stsEndpoint).
			Build()
	default:
		base, err = credentials.NewECSRAMRoleCredentialsProviderBuilder().Build()
	}
	if err != nil || c.RoleARN == "" {
		return base, err
	}
	return credentials.NewRAMRoleARNCredentialsProviderBuilder().
		WithCredentialsProvider(base).
		WithRoleArn(c.RoleARN).
		WithRoleSessionName("certbridge").
		WithDurationSeconds(3600).
		WithStsEndpoint(stsEndpoint).
		Build()
}
