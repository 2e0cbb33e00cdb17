package alibaba

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
)

type countingTokens struct {
	issuer *alisim.OIDCIssuer
	n      atomic.Int64
}

func (c *countingTokens) RequestToken(_ context.Context, namespace, name, audience string, ttl time.Duration) (Token, error) {
	c.n.Add(1)
	return Token{Value: c.issuer.Token("system:serviceaccount:"+namespace+":"+name, []string{audience}, ttl), Expires: time.Now().Add(ttl)}, nil
}

// A session's credentials are used until RenewBefore their expiry, then a
// new token is requested and exchanged.
func TestServiceAccountSessionRenewsBeforeExpiry(t *testing.T) {
	sim := alisim.Start()
	t.Cleanup(sim.Close)
	const provider, role = "acs:ram::1:oidc-provider/c", "acs:ram::1:role/r"
	issuer := alisim.NewOIDCIssuer("https://kubernetes.default.svc")
	sim.AddOIDCProvider(issuer.Provider(provider, DefaultAudience))
	sim.AddRole(alisim.Role{ARN: role, Policy: alisim.AllowAll, TrustedOIDCProvider: provider})
	tokens := &countingTokens{issuer: issuer}
	s := newSASession(ServiceAccount{Namespace: "a", Name: "b", Tokens: tokens}, role,
		Options{STS: Endpoint{Scheme: "HTTPS", Host: sim.STSEndpoint()}, OIDCProviderARN: provider})
	start := time.Now()
	clock := start
	s.now = func() time.Time { return clock }
	for _, step := range []struct {
		at        time.Duration
		exchanges int
	}{
		{0, 1},
		{SessionDuration - RenewBefore - time.Second, 1},
		{SessionDuration - RenewBefore + time.Second, 2},
		{SessionDuration + time.Minute, 2},
	} {
		clock = start.Add(step.at)
		if err := s.prepare(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := sim.Calls()["AssumeRoleWithOIDC"]; n != step.exchanges {
			t.Errorf("after %s: %d exchanges, want %d", step.at, n, step.exchanges)
		}
	}
	if n := tokens.n.Load(); n != 2 {
		t.Errorf("%d TokenRequests for 2 exchanges", n)
	}
}
