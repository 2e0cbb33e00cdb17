package solver_test

import (
	"testing"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
)

// Alibaba Cloud DNS names an internationalised domain in Unicode
// (DomainName, with the ASCII form in PunyCode) and may return a record's
// RR in Unicode: the solver finds the domain and the record as DNS carries
// them, whichever way the Certificate and domainName write them. Each
// record is cleaned up by a replica that did not create it, which lists
// the records to find it.
func TestAliDNS_InternationalisedNames(t *testing.T) {
	for _, tc := range alisim.IDNCases {
		t.Run(tc.Name, func(t *testing.T) {
			e := newAliEnv(t)
			e.sim.AddIDNDomains()
			_, _, cfg := e.accessKey(alisim.AllowAll)
			if tc.DomainName != "" {
				cfg["domainName"] = tc.DomainName
			}
			name := "_acme-challenge." + trimWildcard(tc.DNSName) + "."
			key := acmeKey()
			ch := challenge(t, e.ns, name, "", key, cfg)
			if err := e.solver.Present(ch); err != nil {
				t.Fatal(err)
			}
			want := tc.WantRR + "." + tc.WantDomain
			recs := e.sim.Records(want)
			if len(recs) != 1 || recs[0].Domain != tc.WantDomain || recs[0].RR != tc.WantRR || recs[0].Value != key {
				t.Fatalf("want RR %s in %s holding the key, got %+v (all: %+v)", tc.WantRR, tc.WantDomain, recs, e.sim.AllRecords())
			}
			if values, _ := authoritative(t, e.sim, want); len(values) != 1 || values[0] != key {
				t.Errorf("DNS serves %v at %s", values, want)
			}
			ch.Action = whapi.ChallengeActionCleanUp
			if err := e.newSolver().CleanUp(ch); err != nil {
				t.Fatal(err)
			}
			if left := e.sim.AllRecords(); len(left) != 0 {
				t.Errorf("CleanUp by another replica left %+v", left)
			}
		})
	}
	t.Run("domain not in the account, named both ways", func(t *testing.T) {
		e := newAliEnv(t)
		e.sim.AddIDNDomains()
		_, _, cfg := e.accessKey(alisim.AllowAll)
		err := e.solver.Present(challenge(t, e.ns, "_acme-challenge.www.测试.中国.", "", acmeKey(), cfg))
		assertMessage(t, err, "no domain found for www.测试.中国 (www.xn--0zwm56d.xn--fiqs8s), 测试.中国 (xn--0zwm56d.xn--fiqs8s)")
		cfg["domainName"] = "测试.中国"
		err = e.solver.Present(challenge(t, e.ns, "_acme-challenge.www.测试.中国.", "", acmeKey(), cfg))
		assertMessage(t, err, "no domain found for 测试.中国 (xn--0zwm56d.xn--fiqs8s) (from domainName)")
	})
}

func trimWildcard(name string) string {
	if len(name) > 2 && name[:2] == "*." {
		return name[2:]
	}
	return name
}
