package alibaba

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/certbridge/certbridge/test/sim/simkit"
)

const (
	stsVersion = "2015-04-01"
	stsHost    = "sts.aliyuncs.com"
	// maxKeptTokens bounds the OIDC tokens kept for leak scans.
	maxKeptTokens = 10000
)

// serveSTS answers AssumeRole (signed by a RAM user's AccessKey or STS
// credentials) and AssumeRoleWithOIDC (unsigned: the OIDC token is the proof).
func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request) {
	p, err := params(r)
	if err != nil {
		apiError{400, "InvalidParameter", "The request body is malformed."}.write(w, stsHost)
		return
	}
	action := p.Get("Action")
	s.calls.Add(action)
	if f, ok := s.faults.Take(action); ok {
		simkit.Apply(w, f, faultAnswer(f, stsHost), func(w http.ResponseWriter) { s.assumeRole(w, r, p, action) })
		return
	}
	s.assumeRole(w, r, p, action)
}

// assumeRole answers one STS call.
func (s *Server) assumeRole(w http.ResponseWriter, r *http.Request, p url.Values, action string) {
	if p.Get("Version") != stsVersion {
		apiError{400, "InvalidVersion", "Specified parameter Version is not valid."}.write(w, stsHost)
		return
	}
	duration := time.Hour
	if v := p.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 900 || n > 43200 {
			apiError{400, "InvalidParameter.DurationSeconds", "The parameter DurationSeconds is invalid."}.write(w, stsHost)
			return
		}
		duration = time.Duration(n) * time.Second
	}
	var role *Role
	switch action {
	case "AssumeRole":
		c, aerr := s.authenticate(r, p, stsVersion)
		if aerr != nil {
			aerr.write(w, stsHost)
			return
		}
		role = s.role(p.Get("RoleArn"))
		if role == nil || !contains(role.TrustedAccessKeys, c.keyID) && !s.issuedFromTrustedKey(role, c.keyID) {
			apiError{403, "NoPermission", "You are not authorized to do this action. You should be authorized by RAM."}.write(w, stsHost)
			return
		}
	case "AssumeRoleWithOIDC":
		var aerr *apiError
		if role, aerr = s.assumeRoleWithOIDC(p); aerr != nil {
			aerr.write(w, stsHost)
			return
		}
	default:
		apiError{404, "InvalidAction.NotFound", "Specified api is not found, please check your url and method."}.write(w, stsHost)
		return
	}
	s.mu.Lock()
	c := s.newSTSLocked(role.Policy, duration)
	s.mu.Unlock()
	writeOK(w, map[string]any{
		"Credentials": map[string]any{
			"AccessKeyId": c.id, "AccessKeySecret": c.secret, "SecurityToken": c.token,
			"Expiration": c.expires.UTC().Format("2006-01-02T15:04:05Z"),
		},
		"AssumedRoleUser": map[string]any{"Arn": role.ARN + "/" + p.Get("RoleSessionName"), "AssumedRoleId": "3" + randomString(17)},
	})
}

// assumeRoleWithOIDC checks an AssumeRoleWithOIDC call, unsigned: the
// token is the proof. The provider must be registered; the token must be
// signed by one of its keys, name its issuer, not be expired, and be for
// one of its client IDs (audiences); the role must trust the provider, and
// its trust policy admit the token's subject.
func (s *Server) assumeRoleWithOIDC(p url.Values) (*Role, *apiError) {
	for _, k := range []string{"RoleArn", "OIDCProviderArn", "OIDCToken"} {
		if p.Get(k) == "" {
			return nil, &apiError{400, "MissingParameter", `The input parameter "` + k + `" that is mandatory for processing this request is not supplied.`}
		}
	}
	s.mu.Lock()
	provider, now := s.oidcProviders[p.Get("OIDCProviderArn")], s.now()
	if len(s.oidcTokens) < maxKeptTokens {
		s.oidcTokens = append(s.oidcTokens, p.Get("OIDCToken"))
	}
	s.mu.Unlock()
	if provider == nil {
		return nil, errNoProvider
	}
	c, aerr := verifyOIDC(provider, p.Get("OIDCToken"), now)
	if aerr != nil {
		return nil, aerr
	}
	role := s.role(p.Get("RoleArn"))
	switch {
	case role == nil:
		return nil, &apiError{404, "EntityNotExist.Role", "The role not exists: " + p.Get("RoleArn") + "."}
	case role.TrustedOIDCProvider != provider.ARN || (len(role.OIDCSubjects) > 0 && !contains(role.OIDCSubjects, c.Sub)):
		return nil, oidcError("AuthenticationFail.NoPermission", "There is no permission")
	}
	s.mu.Lock()
	s.oidcSessions = append(s.oidcSessions, OIDCSession{Role: role.ARN, Subject: c.Sub})
	s.mu.Unlock()
	return role, nil
}

func (s *Server) role(arn string) *Role {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roles[arn]
}

// issuedFromTrustedKey lets STS credentials chain into a role that trusts "*".
func (s *Server) issuedFromTrustedKey(role *Role, keyID string) bool {
	return contains(role.TrustedAccessKeys, "*") && keyID != ""
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
