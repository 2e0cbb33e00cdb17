package alibaba

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

// OIDCProvider is an OIDC identity provider registered in RAM. RRSA
// registers a cluster's service-account issuer as one: STS then accepts
// the cluster's ServiceAccount tokens in AssumeRoleWithOIDC for the roles
// whose trust policy names the provider.
type OIDCProvider struct {
	ARN string
	// IssuerURL is what a token's iss must be.
	IssuerURL string
	// ClientIDs are the audiences RAM accepts: a token's aud must hold one.
	ClientIDs []string
	// Keys verify tokens' signatures: the issuer's JWKS, as RAM fetches it.
	Keys []JWK
}

// JWK is one key of an issuer's JWKS.
type JWK struct {
	// Kid selects the key a token names in its header; empty matches any.
	Kid string
	Key crypto.PublicKey
}

// ParseJWKS reads a JSON Web Key Set (RSA and P-256/P-384 EC keys), as a
// kube-apiserver serves it at /openid/v1/jwks.
func ParseJWKS(b []byte) ([]JWK, error) {
	var set struct {
		Keys []struct {
			Kty, Kid, N, E, Crv, X, Y string
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, err
	}
	var out []JWK
	for _, k := range set.Keys {
		switch k.Kty {
		case "RSA":
			n, err1 := base64.RawURLEncoding.DecodeString(k.N)
			e, err2 := base64.RawURLEncoding.DecodeString(k.E)
			if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
				return nil, fmt.Errorf("JWKS: RSA key %q does not decode", k.Kid)
			}
			out = append(out, JWK{Kid: k.Kid, Key: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}})
		case "EC":
			curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384()}[k.Crv]
			x, err1 := base64.RawURLEncoding.DecodeString(k.X)
			y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
			if curve == nil || err1 != nil || err2 != nil {
				return nil, fmt.Errorf("JWKS: EC key %q does not decode", k.Kid)
			}
			out = append(out, JWK{Kid: k.Kid, Key: &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(x), Y: new(big.Int).SetBytes(y)}})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("JWKS: no RSA or EC key")
	}
	return out, nil
}

// AddOIDCProvider registers an OIDC identity provider.
func (s *Server) AddOIDCProvider(p OIDCProvider) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oidcProviders[p.ARN] = &p
}

// OIDCSession is a successful AssumeRoleWithOIDC: which role was assumed
// for which token subject.
type OIDCSession struct {
	Role, Subject string
}

// OIDCSessions returns the successful AssumeRoleWithOIDC calls, oldest
// first.
func (s *Server) OIDCSessions() []OIDCSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.oidcSessions)
}

// OIDCTokens returns every token AssumeRoleWithOIDC was sent, accepted or
// not: values no log line may contain.
func (s *Server) OIDCTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.oidcTokens)
}

// claims are the token claims STS reads.
type claims struct {
	Iss string   `json:"iss"`
	Sub string   `json:"sub"`
	Aud audience `json:"aud"`
	Exp int64    `json:"exp"`
	Nbf int64    `json:"nbf"`
	Iat int64    `json:"iat"`
}

// audience is aud, a string or a list of them.
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = many
	return nil
}

// oidcError is one of STS's answers to a token it does not accept, with
// the codes and texts Alibaba Cloud documents for AssumeRoleWithOIDC.
func oidcError(code, message string) *apiError {
	return &apiError{401, code, message}
}

var errNoProvider = oidcError("AuthenticationFail.NoPermission", "No such OIDC Provider registered.")

// verifyOIDC checks an OIDC token as STS does for provider: its form, its
// signature against the provider's keys, its issuer, expiry and audience.
func verifyOIDC(p *OIDCProvider, token string, now time.Time) (claims, *apiError) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return claims{}, oidcError("AuthenticationFail.OIDCToken.Invalid", "The number of Jwt field should be divided into 3 parts with '.' .")
	}
	var header struct{ Alg, Kid string }
	var c claims
	rawHeader, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	rawClaims, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return claims{}, oidcError("AuthenticationFail.OIDCToken.Invalid", "Cannot decode base64 encoded response(format invalided).")
	}
	if json.Unmarshal(rawHeader, &header) != nil || json.Unmarshal(rawClaims, &c) != nil {
		return claims{}, oidcError("AuthenticationFail.OIDCToken.Invalid", "The Jwt content is invalid that cannot be recognized.")
	}
	if !verifySignature(p.Keys, header.Alg, header.Kid, parts[0]+"."+parts[1], sig) {
		if _, known := hashes[header.Alg]; !known {
			return claims{}, oidcError("AuthenticationFail.OIDCToken.Invalid", fmt.Sprintf("The algorithm %s that be specified in Jwt header is unknown.", header.Alg))
		}
		return claims{}, oidcError("AuthenticationFail.OIDCToken.InvalidSignature", "OIDC token validate failed: invalid signature.")
	}
	switch {
	case c.Iss != p.IssuerURL:
		return c, oidcError("AuthenticationFail.OIDCToken.Invalid", "The issuer of the OIDC token does not match the issuer URL of the OIDC Provider.")
	case c.Exp == 0 || !now.Before(time.Unix(c.Exp, 0)):
		return c, oidcError("AuthenticationFail.OIDCToken.Expired", "This JsonWebToken is expired.")
	case c.Nbf != 0 && now.Before(time.Unix(c.Nbf, 0).Add(-time.Minute)):
		return c, oidcError("AuthenticationFail.OIDCToken.Invalid", "The Jwt is not valid yet.")
	}
	for _, a := range c.Aud {
		if slices.Contains(p.ClientIDs, a) {
			return c, nil
		}
	}
	return c, oidcError("AuthenticationFail.OIDCToken.AudienceNotMatch", "Invalid audience.")
}

var hashes = map[string]crypto.Hash{"RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512, "ES256": crypto.SHA256, "ES384": crypto.SHA384}

func verifySignature(keys []JWK, alg, kid, signed string, sig []byte) bool {
	h, ok := hashes[alg]
	if !ok {
		return false
	}
	var digest []byte
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256([]byte(signed))
		digest = d[:]
	case crypto.SHA384:
		d := sha512.Sum384([]byte(signed))
		digest = d[:]
	default:
		d := sha512.Sum512([]byte(signed))
		digest = d[:]
	}
	for _, k := range keys {
		if k.Kid != "" && kid != "" && k.Kid != kid {
			continue
		}
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if strings.HasPrefix(alg, "RS") && rsa.VerifyPKCS1v15(pub, h, digest, sig) == nil {
				return true
			}
		case *ecdsa.PublicKey:
			size := (pub.Curve.Params().BitSize + 7) / 8
			if strings.HasPrefix(alg, "ES") && len(sig) == 2*size &&
				ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])) {
				return true
			}
		}
	}
	return false
}

// OIDCIssuer signs tokens as a cluster's service-account issuer does, for
// tests without a kube-apiserver.
type OIDCIssuer struct {
	URL string
	key *ecdsa.PrivateKey
	kid string
}

// NewOIDCIssuer is an issuer at url with a fresh P-256 key.
func NewOIDCIssuer(url string) *OIDCIssuer {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return &OIDCIssuer{URL: url, key: key, kid: randomString(16)}
}

// Provider is the issuer registered in RAM under arn, accepting clientIDs.
func (i *OIDCIssuer) Provider(arn string, clientIDs ...string) OIDCProvider {
	return OIDCProvider{ARN: arn, IssuerURL: i.URL, ClientIDs: clientIDs, Keys: []JWK{{Kid: i.kid, Key: &i.key.PublicKey}}}
}

// Token is a token for subject, for audiences, valid for ttl (negative:
// expired).
func (i *OIDCIssuer) Token(subject string, audiences []string, ttl time.Duration) string {
	now := time.Now()
	header, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": i.kid, "typ": "JWT"})
	body, _ := json.Marshal(map[string]any{"iss": i.URL, "sub": subject, "aud": audiences,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix()})
	signed := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(body)
	digest := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, i.key, digest[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}
