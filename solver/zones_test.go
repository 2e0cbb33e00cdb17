package solver_test

import (
	"cmp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	whapi "github.com/cert-manager/cert-manager/pkg/acme/webhook/apis/acme/v1alpha1"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/dnstxt"
	"github.com/certbridge/certbridge/solver"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
	"github.com/certbridge/certbridge/test/testutil"
)

// authoritative asks the simulators' DNS server, as Pebble and cert-manager
// do, for the TXT values at name; rcode tells NXDOMAIN and REFUSED apart.
func authoritative(t *testing.T, src dnsserver.Source, name string) (values []string, rcode int) {
	t.Helper()
	srv, err := dnsserver.Start(src)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	r, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(m, srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			values = append(values, strings.Join(txt.Txt, ""))
		}
	}
	return values, r.Rcode
}

// cfZones is a Cloudflare simulator with zones as given and a solver with
// a token of every permission.
func cfZones(t *testing.T, zones ...cfsim.ZoneSpec) (*cfEnv, map[string]cfsim.Zone, map[string]any) {
	t.Helper()
	sim := cfsim.Start()
	t.Cleanup(sim.Close)
	byKey := map[string]cfsim.Zone{}
	for _, z := range zones {
		byKey[z.Name+"/"+z.Status+"/"+z.Account] = sim.AddZoneSpec(z)
	}
	e := &cfEnv{t: t, sim: sim, ns: namespace(t, "zones"), logs: &logBuffer{}}
	e.opts = cloudflare.Options{BaseURL: sim.URL()}
	e.solver = e.newSolver()
	_, cfg := e.token(fullToken())
	return e, byKey, cfg
}

// The zone is the most specific active zone holding the name, visible to
// the credential (the contract in internal/cloudflare). Each case says where
// the record must land and whether the authoritative DNS then serves it.
func TestCloudflare_ZoneResolutionContract(t *testing.T) {
	const account2 = "fedcba9876543210fedcba9876543210"
	cases := []struct {
		name       string
		zones      []cfsim.ZoneSpec
		fqdn, hint string
		// want is the zone (a key of the zones above) the record lands in;
		// empty: Present fails and nothing is written.
		want    string
		wantErr []string
	}{
		{name: "delegated child zone with a parent hint",
			zones: []cfsim.ZoneSpec{{Name: "example.com"}, {Name: "sub.example.com"}},
			fqdn:  "_acme-challenge.www.sub.example.com.", hint: "example.com.", want: "sub.example.com//"},
		{name: "child zone pending: the active parent serves the name",
			zones: []cfsim.ZoneSpec{{Name: "example.com"}, {Name: "sub.example.com", Status: cfsim.ZonePending}},
			fqdn:  "_acme-challenge.www.sub.example.com.", hint: "sub.example.com.", want: "example.com//"},
		{name: "pending-only zone",
			zones: []cfsim.ZoneSpec{{Name: "example.com", Status: cfsim.ZonePending}},
			fqdn:  "_acme-challenge.example.com.", hint: "example.com.",
			wantErr: []string{"zone example.com (id ", `status is "pending", not active`, "name servers"}},
		{name: "active and pending twin, active added first",
			zones: []cfsim.ZoneSpec{{Name: "example.com"}, {Name: "example.com", Status: cfsim.ZonePending, Account: account2}},
			fqdn:  "_acme-challenge.example.com.", hint: "example.com.", want: "example.com//"},
		{name: "active and pending twin, pending added first",
			zones: []cfsim.ZoneSpec{{Name: "example.com", Status: cfsim.ZonePending, Account: account2}, {Name: "example.com"}},
			fqdn:  "_acme-challenge.example.com.", hint: "example.com.", want: "example.com//"},
		{name: "two active zones of one name",
			zones: []cfsim.ZoneSpec{{Name: "example.com"}, {Name: "example.com", Account: account2}},
			fqdn:  "_acme-challenge.example.com.", hint: "example.com.",
			wantErr: []string{"2 active zones named example.com", "Simulated account", "set zoneID"}},
		{name: "hint that is not a suffix of the name",
			zones: []cfsim.ZoneSpec{{Name: "example.com"}, {Name: "example.org"}},
			fqdn:  "_acme-challenge.www.example.com.", hint: "example.org.", want: "example.com//"},
		{name: "hint naming a zone below the name's own",
			zones: []cfsim.ZoneSpec{{Name: "example.com"}, {Name: "www.example.com"}},
			fqdn:  "_acme-challenge.example.com.", hint: "www.example.com.", want: "example.com//"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, zones, cfg := cfZones(t, tc.zones...)
			key := acmeKey()
			err := e.solver.Present(challenge(t, e.ns, tc.fqdn, tc.hint, key, cfg))
			name := strings.TrimSuffix(tc.fqdn, ".")
			served, rcode := authoritative(t, e.sim, name)
			if tc.want == "" {
				assertMessage(t, err, tc.wantErr...)
				if left := e.sim.AllRecords(); len(left) != 0 {
					t.Errorf("a refused Present wrote records: %+v", left)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			z := zones[tc.want]
			recs := e.sim.RecordsIn(z.ID)
			if len(recs) != 1 || dnstxt.Value(recs[0].Content) != key || len(e.sim.AllRecords()) != 1 {
				t.Fatalf("want the one record in zone %s (%s), got %+v in all %+v", z.Name, z.ID, recs, e.sim.AllRecords())
			}
			if !slices.Contains(served, key) {
				t.Errorf("the authoritative DNS does not serve the record at %s (rcode %s, answers %v)", name, dns.RcodeToString[rcode], served)
			}
			ch := challenge(t, e.ns, tc.fqdn, tc.hint, key, cfg)
			if err := e.solver.CleanUp(ch); err != nil || len(e.sim.AllRecords()) != 0 {
				t.Errorf("CleanUp: %v; left %+v", err, e.sim.AllRecords())
			}
		})
	}
}

// What the simulator serves is not what was written into the wrong zone:
// without this, the cases above would prove nothing.
func TestCloudflare_SimulatorServesOnlyTheServingZone(t *testing.T) {
	sim := cfsim.Start()
	t.Cleanup(sim.Close)
	parent := sim.AddZone("example.com")
	sim.AddZone("sub.example.com")
	token := randomToken()
	sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	client := cloudflare.NewClient(cloudflare.Options{BaseURL: sim.URL()}, cloudflare.Credential{Token: token})
	if _, err := client.CreateTXT(t.Context(), parent.ID, "_acme-challenge.www.sub.example.com", `"in-the-parent"`, 60, ""); err != nil {
		t.Fatal(err)
	}
	if served, rcode := authoritative(t, sim, "_acme-challenge.www.sub.example.com"); len(served) != 0 || rcode != dns.RcodeNameError {
		t.Errorf("a record written into the parent of a delegated child zone is served (rcode %s, %v)", dns.RcodeToString[rcode], served)
	}
}

func TestAliDNS_DomainResolutionContract(t *testing.T) {
	cases := []struct {
		name       string
		domains    []string
		fqdn, hint string
		extra      map[string]any
		want       string
	}{
		{"sub-domain registered as its own domain, parent hint", []string{"example.com", "sub.example.com"},
			"_acme-challenge.www.sub.example.com.", "example.com.", nil, "sub.example.com"},
		{"hint that is not a suffix of the name", []string{"example.com", "example.org"},
			"_acme-challenge.www.example.com.", "example.org.", nil, "example.com"},
		{"domainName override", []string{"example.com", "acme.example.org"},
			"_acme-challenge.www.example.com.", "example.com.", map[string]any{"domainName": "acme.example.org"}, "acme.example.org"},
	}
	for _, tc := range cases {
		for _, listing := range []bool{true, false} {
			name := tc.name + ", listing domains"
			policy := alisim.AllowAll
			if !listing {
				// The README's four actions: no DescribeDomains, so the
				// resolver looks candidates up one by one.
				name = tc.name + ", one by one"
				policy = alisim.Policy{Actions: []string{"alidns:DescribeDomainInfo", "alidns:AddDomainRecord", "alidns:DescribeSubDomainRecords", "alidns:DeleteDomainRecord"}}
			}
			t.Run(name, func(t *testing.T) {
				sim := alisim.Start()
				t.Cleanup(sim.Close)
				for _, d := range tc.domains {
					sim.AddDomain(d, alisim.FreeEdition)
				}
				e := &aliEnv{t: t, sim: sim, ns: namespace(t, "ali-zones"), logs: &logBuffer{}}
				e.opts = alibaba.Options{DNS: endpoint(t, "http://"+sim.Endpoint()), Environ: func(string) string { return "" }}
				e.solver = e.newSolver()
				_, _, cfg := e.accessKey(policy)
				for k, v := range tc.extra {
					cfg[k] = v
				}
				key := acmeKey()
				if err := e.solver.Present(challenge(t, e.ns, tc.fqdn, tc.hint, key, cfg)); err != nil {
					t.Fatal(err)
				}
				recs := sim.AllRecords()
				if len(recs) != 1 || recs[0].Domain != tc.want || recs[0].Value != key {
					t.Fatalf("want the record in domain %s, got %+v", tc.want, recs)
				}
				fqdn := strings.TrimSuffix(tc.fqdn, ".")
				if tc.extra == nil {
					if served, rcode := authoritative(t, sim, fqdn); !slices.Contains(served, key) {
						t.Errorf("the authoritative DNS does not serve the record (rcode %s, %v)", dns.RcodeToString[rcode], served)
					}
				}
			})
		}
	}
}

// Surrounding whitespace reaches no API: it is refused, naming the field.
func TestSolvers_WhitespaceInNamesIsRefused(t *testing.T) {
	cases := []struct {
		name, fqdn, zone, want string
	}{
		{"trailing space in the FQDN", "_acme-challenge.example.com. ", "example.com.", `resolvedFQDN "_acme-challenge.example.com. " has surrounding whitespace`},
		{"newline before the FQDN", "\n_acme-challenge.example.com.", "example.com.", "resolvedFQDN"},
		{"space in the zone", "_acme-challenge.example.com.", " example.com.", `resolvedZone " example.com." has surrounding whitespace`},
	}
	for _, tc := range cases {
		t.Run("cloudflare: "+tc.name, func(t *testing.T) {
			e := newCFEnv(t)
			_, cfg := e.token(fullToken())
			e.sim.ResetCalls()
			err := e.solver.Present(challenge(t, e.ns, tc.fqdn, tc.zone, acmeKey(), cfg))
			assertMessage(t, err, "malformed challenge request", tc.want)
			if n := e.sim.TotalCalls(); n != 0 {
				t.Errorf("%d API calls for a malformed request", n)
			}
		})
		t.Run("alidns: "+tc.name, func(t *testing.T) {
			e := newAliEnv(t)
			_, _, cfg := e.accessKey(alisim.AllowAll)
			e.sim.ResetCalls()
			err := e.solver.Present(challenge(t, e.ns, tc.fqdn, tc.zone, acmeKey(), cfg))
			assertMessage(t, err, "malformed challenge request", tc.want)
			if n := e.sim.TotalDNSCalls(); n != 0 {
				t.Errorf("%d API calls for a malformed request", n)
			}
		})
	}
}

// A name DNS cannot carry, or a resourceNamespace that is no namespace's
// name, reaches no API and is repeated cut, however long: cert-manager never
// sends one, and whole it would fill the answer and the log line.
func TestSolvers_NamesDNSCannotCarryAndNonNamespacesAreRefused(t *testing.T) {
	mib := strings.Repeat("a", 1<<20)
	cases := []struct {
		name, fqdn, namespace, want string
	}{
		{"a label of 64 characters", "_acme-challenge." + strings.Repeat("a", 64) + ".example.com.", "", "label 2 is 64 characters long; DNS allows 63"},
		{"a name of 254 characters", "_acme-challenge." + strings.Repeat("abcdefg.", 28) + "ab.example.com.", "", "the name is 254 characters long; DNS allows 253"},
		{"a label of a megabyte", "_acme-challenge." + mib + ".example.com.", "", "label 2 is 1048576 characters long"},
		{"a namespace with a slash", "", "../kube-system", `resourceNamespace "../kube-system" is not a namespace name`},
		{"a namespace in capitals", "", "Default", `resourceNamespace "Default" is not a namespace name`},
		{"a namespace of a megabyte", "", mib, `resourceNamespace "aaaa`},
	}
	for _, tc := range cases {
		fqdn := cmp.Or(tc.fqdn, "_acme-challenge.example.com.")
		check := func(t *testing.T, err error, calls int) {
			t.Helper()
			assertMessage(t, err, "malformed challenge request", tc.want)
			if err != nil && len(err.Error()) > 1000 {
				t.Errorf("a %d-byte error", len(err.Error()))
			}
			if calls != 0 {
				t.Errorf("%d API calls for a malformed request", calls)
			}
		}
		t.Run("cloudflare: "+tc.name, func(t *testing.T) {
			e := newCFEnv(t)
			_, cfg := e.token(fullToken())
			e.sim.ResetCalls()
			err := e.solver.Present(challenge(t, cmp.Or(tc.namespace, e.ns), fqdn, "example.com.", acmeKey(), cfg))
			check(t, err, e.sim.TotalCalls())
		})
		t.Run("alidns: "+tc.name, func(t *testing.T) {
			e := newAliEnv(t)
			_, _, cfg := e.accessKey(alisim.AllowAll)
			e.sim.ResetCalls()
			err := e.solver.Present(challenge(t, cmp.Or(tc.namespace, e.ns), fqdn, "example.com.", acmeKey(), cfg))
			check(t, err, e.sim.TotalDNSCalls())
		})
	}
}

// A user's string is quoted back cut to 100 characters, however long.
func TestSolvers_HugeFieldNameIsTruncated(t *testing.T) {
	huge := strings.Repeat("x", 5000)
	for _, tc := range []struct {
		solver string
		run    func(t *testing.T, cfg map[string]any) error
	}{
		{"cloudflare", func(t *testing.T, cfg map[string]any) error { e := newCFEnv(t); return e.present(cfg, acmeKey()) }},
		{"alidns", func(t *testing.T, cfg map[string]any) error { e := newAliEnv(t); return e.present(cfg, acmeKey()) }},
	} {
		t.Run(tc.solver, func(t *testing.T) {
			err := tc.run(t, map[string]any{huge: 1, "zoneName": huge + ".example.com"})
			assertMessage(t, err, "unknown field", `"xxxxxxxxxx`, "… (5000 characters)")
			if n := len(err.Error()); n > 1000 {
				t.Errorf("the message is %d characters long", n)
			}
		})
	}
}

// Refuse is exactly the error Present or CleanUp gives a request they refuse
// before any Secret or API call, and nil for every other request, so the
// webhook can answer those with 400 and hand the rest to the solver.
func TestSolvers_RefuseIsTheErrorBeforeAnyCall(t *testing.T) {
	type env struct {
		s     *solver.Solver
		ns    string
		cfg   map[string]any
		calls func() int
	}
	for _, sv := range []struct {
		name string
		env  func(t *testing.T) env
	}{
		{"cloudflare", func(t *testing.T) env {
			e := newCFEnv(t)
			_, cfg := e.token(fullToken())
			return env{e.solver, e.ns, cfg, e.sim.TotalCalls}
		}},
		{"alidns", func(t *testing.T) env {
			e := newAliEnv(t)
			_, _, cfg := e.accessKey(alisim.AllowAll)
			return env{e.solver, e.ns, cfg, e.sim.TotalDNSCalls}
		}},
	} {
		for _, tc := range []struct {
			name   string
			change func(ch *whapi.ChallengeRequest)
			// refused says Refuse returns Present's or CleanUp's error.
			refused bool
		}{
			{"valid", nil, false},
			{"no key", func(ch *whapi.ChallengeRequest) { ch.Key = "" }, true},
			{"a namespace with a slash", func(ch *whapi.ChallengeRequest) { ch.ResourceNamespace = "../kube-system" }, true},
			{"a label of 64 characters", func(ch *whapi.ChallengeRequest) {
				ch.ResolvedFQDN = "_acme-challenge." + strings.Repeat("a", 64) + ".example.com."
			}, true},
			{"config of an unknown field", func(ch *whapi.ChallengeRequest) { ch.Config.Raw = []byte(`{"zoneNmae":"example.com"}`) }, true},
			{"config missing", func(ch *whapi.ChallengeRequest) { ch.Config = nil }, true},
			{"CleanUp, config of an unknown field", func(ch *whapi.ChallengeRequest) {
				ch.Action = whapi.ChallengeActionCleanUp
				ch.Config.Raw = []byte(`{"zoneNmae":"example.com"}`)
			}, false},
			{"CleanUp, no key", func(ch *whapi.ChallengeRequest) { ch.Action, ch.Key = whapi.ChallengeActionCleanUp, "" }, true},
		} {
			t.Run(sv.name+": "+tc.name, func(t *testing.T) {
				e := sv.env(t)
				ch := challenge(t, e.ns, "_acme-challenge.refuse.example.com.", "example.com.", acmeKey(), e.cfg)
				if tc.change != nil {
					tc.change(ch)
				}
				before := e.calls()
				refusal := e.s.Refuse(ch)
				if n := e.calls() - before; n != 0 {
					t.Errorf("Refuse made %d API calls", n)
				}
				if !tc.refused {
					if refusal != nil {
						t.Fatalf("Refuse: %v, want nil", refusal)
					}
					return
				}
				if refusal == nil {
					t.Fatal("Refuse: nil, want the solver's error")
				}
				do := e.s.Present
				if ch.Action == whapi.ChallengeActionCleanUp {
					do = e.s.CleanUp
				}
				if err := do(ch); err == nil || err.Error() != refusal.Error() {
					t.Errorf("Refuse says %q, %s says %v", refusal, ch.Action, err)
				}
			})
		}
	}
}

// A key is refused when cert-manager could not have sent it, and the refusal
// names no part of it: the key is the record's value, secret until the
// record is published. A key over a TXT string's 255 bytes reaches no API.
func TestSolvers_MalformedKeyRefusedUnnamed(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		key        func(k string) string
	}{
		{"leading space", "the key has surrounding whitespace", func(k string) string { return " " + k }},
		{"trailing newline", "the key has surrounding whitespace", func(k string) string { return k + "\n" }},
		{"256 bytes", "the key is 256 bytes long; a TXT record's string holds 255", func(k string) string { return k + strings.Repeat("k", 256-len(k)) }},
		{"a megabyte", "the key is 1048619 bytes long", func(k string) string { return k + strings.Repeat("k", 1<<20) }},
		{"not UTF-8", "the key is not UTF-8", func(k string) string { return k[:20] + "\xff" + k[20:] }},
	} {
		for _, sv := range []string{"cloudflare", "alidns"} {
			t.Run(sv+": "+tc.name, func(t *testing.T) {
				k := acmeKey()
				var err error
				var calls int
				var logs *logBuffer
				if sv == "cloudflare" {
					e := newCFEnv(t)
					_, cfg := e.token(fullToken())
					e.sim.ResetCalls()
					err = e.present(cfg, tc.key(k))
					calls, logs = e.sim.TotalCalls(), e.logs
				} else {
					e := newAliEnv(t)
					_, _, cfg := e.accessKey(alisim.AllowAll)
					e.sim.ResetCalls()
					err = e.present(cfg, tc.key(k))
					calls, logs = e.sim.TotalDNSCalls(), e.logs
				}
				assertMessage(t, err, "malformed challenge request", tc.want)
				if calls != 0 {
					t.Errorf("%d API calls for a malformed key", calls)
				}
				for what, text := range map[string]string{"the refusal": err.Error(), "the log": logs.String()} {
					if v, f, found := testutil.FindLeak([]string{k}, text); found {
						t.Errorf("%s names the key (%q as %q): %.300s", what, v, f, text)
					}
				}
			})
		}
	}
}
