package check

import (
	"context"
	"strings"
	"testing"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	cfdns "github.com/cloudflare/cloudflare-go/v7/dns"
	"github.com/cloudflare/cloudflare-go/v7/option"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/dnsname"
	alisim "github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
)

// propagationEnv is the simulators behind one authoritative DNS server,
// the provider packages' accounts on them, and two other DNS servers:
// a split-horizon resolver and a stale nameserver.
type propagationEnv struct {
	cf     *cfsim.Server
	ali    *alisim.Server
	auth   *dnsserver.Server
	split  *dnsserver.Server
	stale  *dnsserver.Server
	other  *dnsserver.Server
	cfAcct *cloudflare.Account
	aliW   *aliWriter
}

const (
	propToken   = "propagationTestTokenZoneReadDnsEdit00001"
	propAKID    = "LTAI5tPropagationTest001"
	propAKValue = "propagationTestAccessKeySecret01"
)

func startPropagationEnv(t *testing.T) *propagationEnv {
	t.Helper()
	e := &propagationEnv{cf: cfsim.Start(), ali: alisim.Start()}
	t.Cleanup(e.cf.Close)
	t.Cleanup(e.ali.Close)
	e.cf.AddToken(cfsim.Token{Value: propToken, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
	z := e.cf.AddZone("example.com")
	e.ali.AddAccessKey(alisim.AccessKey{ID: propAKID, Secret: propAKValue, Policy: alisim.AllowAll})
	e.ali.AddDomain("example.net", alisim.FreeEdition)
	e.ali.AddDomain("acme-delegation.example.net", alisim.FreeEdition)
	// dev.example.com is delegated away from Cloudflare's example.com to
	// the Alibaba account.
	e.ali.AddDomain("dev.example.com", alisim.FreeEdition)

	// _acme-challenge.app.example.com CNAME _acme-challenge.acme-delegation.example.net,
	// made through the Cloudflare simulator's record API.
	var cname cfdns.CNAMERecordParam
	cname.Name.Value, cname.Name.Present = "_acme-challenge.app.example.com", true
	cname.Type.Value, cname.Type.Present = cfdns.CNAMERecordTypeCNAME, true
	cname.Content.Value, cname.Content.Present = "_acme-challenge.acme-delegation.example.net", true
	cname.TTL.Value, cname.TTL.Present = 1, true
	var p cfdns.RecordNewParams
	p.ZoneID.Value, p.ZoneID.Present = z.ID, true
	p.Body = cname
	if _, err := cfdns.NewRecordService(option.WithBaseURL(e.cf.URL()), option.WithAPIToken(propToken), option.WithMaxRetries(0)).New(context.Background(), p); err != nil {
		t.Fatal(err)
	}

	var err error
	if e.auth, err = dnsserver.Start(dnsserver.Sources{e.cf, e.ali}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.auth.Close)
	// The cluster's internal view of example.com: the zone, none of its
	// records.
	if e.split, err = dnsserver.Start(dnsserver.Static{Apexes: []string{"example.com", "example.net", "acme-delegation.example.net"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.split.Close)
	// A previous provider's copy of example.com, still listed as ns2.
	if e.stale, err = dnsserver.Start(dnsserver.Static{Apexes: []string{"example.com"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stale.Close)
	// A server that does not serve example.com at all.
	if e.other, err = dnsserver.Start(dnsserver.Static{Apexes: []string{"example.org"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.other.Close)

	e.cfAcct = cloudflare.NewAccounts(cloudflare.Options{BaseURL: e.cf.URL(), MaxRetries: 1}).For(cloudflare.Credential{Token: propToken})
	endpoint, err := alibaba.ParseEndpoint("--alidns-endpoint", "http://"+e.ali.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	cred := alibaba.Credential{AccessKeyID: propAKID, AccessKeySecret: propAKValue}
	acct, err := alibaba.NewDNSAccounts(alibaba.Options{DNS: endpoint}).For(cred, "")
	if err != nil {
		t.Fatal(err)
	}
	e.aliW = &aliWriter{acct: acct, cred: cred}
	return e
}

// nameservers asks every simulated zone's ns1 and ns2 at the
// authoritative server, except where override says otherwise.
func (e *propagationEnv) nameservers(override map[string]string) map[string]string {
	m := map[string]string{}
	for _, zone := range []string{"example.com", "example.net", "acme-delegation.example.net", "dev.example.com"} {
		m["ns1."+zone], m["ns2."+zone] = e.auth.Addr, e.auth.Addr
	}
	for k, v := range override {
		m[k] = v
	}
	return m
}

func TestPropagation(t *testing.T) {
	t.Parallel()
	e := startPropagationEnv(t)
	yes, no := true, false
	wait := &metav1.Duration{Duration: 0}
	type solverCase struct {
		name       string
		resolvers  []string
		only       *bool
		nsOverride map[string]string
		writer     func() zoneWriter
		follow     bool
		wait       *metav1.Duration
		names      []string
		writeTest  bool
		want       []string
		// pass: every finding is ✓
		pass bool
	}
	cf := func() zoneWriter { return cfWriter{acct: e.cfAcct} }
	ali := func() zoneWriter { return e.aliW }
	aliPinned := func() zoneWriter {
		w := *e.aliW
		w.domainName = "acme-delegation.example.net"
		return &w
	}
	cases := []solverCase{
		{name: "all pass, recursive nameservers only", resolvers: []string{e.auth.Addr}, only: &yes, writer: cf,
			names: []string{"www.example.com", "*.www.example.com"}, writeTest: true, pass: true,
			want: []string{
				"✓ DNS01 self-check: cert-manager asks only " + e.auth.Addr + " (given by --dns01-recursive-nameservers) for each TXT record, and every one of them must answer it (--dns01-recursive-nameservers-only=true given to the check)",
				"✓ solvers[0] CNAME of www.example.com: _acme-challenge.www.example.com is no CNAME (" + e.auth.Addr + " answered); the webhook is asked to write it as it is",
				"✓ solvers[0] record zone of www.example.com: the webhook writes _acme-challenge.www.example.com into example.com (the cloudflare solver's zone resolution), the zone DNS serves it from",
				"✓ solvers[0] nameservers of www.example.com: zone example.com (_acme-challenge.www.example.com's zone; its NS records through " + e.auth.Addr + "): ns1.example.com (at " + e.auth.Addr + ", from --authoritative-nameserver), ns2.example.com",
				"✓ solvers[0] propagation of www.example.com: a test TXT record written at _acme-challenge.www.example.com into example.com, then deleted, was visible at ns1.example.com",
				", through " + e.auth.Addr + " ",
			}},
		{name: "delegated CNAME followed into the other provider", resolvers: []string{e.auth.Addr}, only: &yes, writer: aliPinned, follow: true,
			names: []string{"app.example.com"}, writeTest: true, pass: true,
			want: []string{
				"✓ solvers[0] CNAME of app.example.com: _acme-challenge.app.example.com CNAME _acme-challenge.acme-delegation.example.net (through " + e.auth.Addr + "); cnameStrategy: Follow, so cert-manager asks the webhook to write _acme-challenge.acme-delegation.example.net",
				"✓ solvers[0] record zone of app.example.com: the webhook writes _acme-challenge.acme-delegation.example.net into acme-delegation.example.net (the solver's domainName), the zone DNS serves it from",
				"✓ solvers[0] nameservers of app.example.com: zone acme-delegation.example.net",
				"✓ solvers[0] propagation of app.example.com: a test TXT record written at _acme-challenge.acme-delegation.example.net into acme-delegation.example.net, then deleted, was visible at ns1.acme-delegation.example.net",
			}},
		{name: "CNAME not followed", resolvers: []string{e.auth.Addr}, only: &yes, writer: cf,
			names: []string{"app.example.com"},
			want: []string{
				"✗ solvers[0] CNAME of app.example.com: _acme-challenge.app.example.com CNAME _acme-challenge.acme-delegation.example.net (through " + e.auth.Addr + "), but the solver has no cnameStrategy: Follow, so cert-manager asks the webhook to write _acme-challenge.app.example.com itself",
				`and the Challenge stays at: DNS record for "app.example.com" not yet propagated`,
				"fix: set cnameStrategy: Follow on this solver (spec.acme.solvers[…].dns01.cnameStrategy), on a solver whose credential reaches acme-delegation.example.net, where the chain ends, with its zoneName (alidns: domainName): acme-delegation.example.net and a selector for app.example.com; this solver's credential does not reach that zone",
			}},
		{name: "CNAME not followed, the solver's credential reaches the target", resolvers: []string{e.auth.Addr}, only: &yes, writer: ali,
			names: []string{"app.example.com"},
			want: []string{
				"fix: set cnameStrategy: Follow on this solver (spec.acme.solvers[…].dns01.cnameStrategy), and pin the zone with the solver's zoneName (alidns: domainName): acme-delegation.example.net, which this solver's credential reaches",
			}},
		{name: "split-horizon resolver, self-check asks only it", resolvers: []string{e.split.Addr}, only: &yes, writer: cf,
			names: []string{"split.example.com"}, writeTest: true,
			want: []string{
				"✗ solvers[0] propagation of split.example.com through " + e.split.Addr + ": the test TXT record written at _acme-challenge.split.example.com into example.com was not visible through " + e.split.Addr + " within 1s: it answered NXDOMAIN, while every authoritative nameserver serves it: this resolver sees another version of the zone (split-horizon DNS) or holds a stale negative cache",
				"fix: point cert-manager's self-check at resolvers that see the public zone: run its controller with --dns01-recursive-nameservers=8.8.8.8:53,1.1.1.1:53 --dns01-recursive-nameservers-only",
				"✓ solvers[0] propagation of split.example.com: a test TXT record written at _acme-challenge.split.example.com into example.com, then deleted, was visible at ns1.example.com",
			}},
		{name: "split-horizon resolver hides the CNAME", resolvers: []string{e.split.Addr}, only: &yes, writer: ali, follow: true,
			names: []string{"app.example.com"},
			want: []string{
				"✓ solvers[0] CNAME of app.example.com: _acme-challenge.app.example.com is no CNAME (" + e.split.Addr + " answered)",
				"✗ solvers[0] CNAME of app.example.com at ns1.example.com: " + e.split.Addr + " says _acme-challenge.app.example.com is no CNAME, but ns1.example.com (at " + e.auth.Addr + ", from --authoritative-nameserver), a nameserver of its zone example.com, says CNAME _acme-challenge.acme-delegation.example.net: the resolvers cert-manager asks see another version of the zone (split-horizon DNS)",
				"fix: point cert-manager's self-check at resolvers that see the public zone",
			}},
		{name: "split-horizon resolver, cert-manager asks the authoritative nameservers", resolvers: []string{e.split.Addr}, only: &no, writer: cf,
			names: []string{"split2.example.com"}, writeTest: true, pass: true,
			want: []string{
				"not yet through " + e.split.Addr + " (NXDOMAIN), which does not matter: cert-manager asks it only for zones and nameservers, and asks those for the record",
			}},
		{name: "split-horizon resolver, waitInsteadOfSelfCheck", resolvers: []string{e.split.Addr}, only: &yes, writer: cf, wait: wait,
			names: []string{"split3.example.com"}, writeTest: true, pass: true,
			want: []string{
				"✓ solvers[0] self-check: waitInsteadOfSelfCheck: 0s: cert-manager does not self-check this solver's records",
				"not through " + e.split.Addr + " (NXDOMAIN), which does not matter: the solver's waitInsteadOfSelfCheck skips cert-manager's self-check",
			}},
		{name: "record invisible at one authoritative nameserver", resolvers: []string{e.auth.Addr}, only: &no, writer: cf,
			nsOverride: map[string]string{"ns2.example.com": e.stale.Addr},
			names:      []string{"stale.example.com"}, writeTest: true,
			want: []string{
				"✓ DNS01 self-check: cert-manager finds each record's zone and authoritative nameservers through " + e.auth.Addr + " (given by --dns01-recursive-nameservers), then asks every authoritative nameserver, on port 53, for the TXT record (--dns01-recursive-nameservers-only=false given to the check)",
				"✗ solvers[0] propagation of stale.example.com at ns2.example.com: the test TXT record written at _acme-challenge.stale.example.com into example.com was not visible at ns2.example.com (at " + e.stale.Addr + ", from --authoritative-nameserver) within 1s: it answered NXDOMAIN, while other nameservers of the zone serve it: this one serves another copy of the zone; cert-manager's self-check asks it and waits (\"not yet propagated\"), and the ACME server's resolvers may ask it and fail the challenge",
				"fix: repair the delegation: the zone's NS records, at its parent (the registrar or the parent zone) and in the zone itself, must list only nameservers that serve the zone the provider writes into",
				"✓ solvers[0] propagation of stale.example.com: a test TXT record written at _acme-challenge.stale.example.com into example.com, then deleted, was visible at ns1.example.com",
			}},
		{name: "nameserver that does not serve the zone", resolvers: []string{e.auth.Addr}, only: &yes, writer: cf,
			nsOverride: map[string]string{"ns2.example.com": e.other.Addr},
			names:      []string{"lame.example.com"},
			want: []string{
				"✗ solvers[0] nameservers of lame.example.com at ns2.example.com: ns2.example.com (at " + e.other.Addr + ", from --authoritative-nameserver), a nameserver of zone example.com (its NS records through " + e.auth.Addr + "), does not serve the zone: the SOA question got REFUSED",
				"fix: repair the delegation",
			}},
		{name: "zone delegated away from the provider's zone", resolvers: []string{e.auth.Addr}, only: &yes, writer: cf,
			names: []string{"api.dev.example.com"},
			want: []string{
				"✗ solvers[0] record zone of api.dev.example.com: the webhook writes _acme-challenge.api.dev.example.com into example.com (the cloudflare solver's zone resolution), but DNS serves it from zone dev.example.com (its SOA through " + e.auth.Addr + "): no resolver will see the record",
				"fix: dev.example.com is delegated away from example.com to other nameservers, so records written into example.com are never served",
			}},
		{name: "credential not usable", resolvers: []string{e.auth.Addr}, only: &yes, writer: func() zoneWriter { return nil },
			names: []string{"www.example.com"}, writeTest: true, pass: true,
			want: []string{
				"✓ solvers[0] record zone of www.example.com: DNS serves _acme-challenge.www.example.com from zone example.com (its SOA through " + e.auth.Addr + "); which zone the webhook writes into is not checked from here",
			}},
		{name: "no selector", resolvers: []string{e.auth.Addr}, only: &yes, writer: cf, pass: true,
			want: []string{"✓ solvers[0] propagation: the solver has no selector, so it may serve any name and none is checked"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &checker{o: IssuerOptions{
				Kube: kubefake.NewClientset(), CertManagerNamespace: "cert-manager",
				RecursiveNameservers: tc.resolvers, RecursiveNameserversOnly: tc.only,
				NameserverAddresses: e.nameservers(tc.nsOverride), WriteTest: tc.writeTest, PropagationTimeout: time.Second,
			}, deployments: map[string]*deploymentInfo{}}
			s := cmacme.ACMEChallengeSolver{DNS01: &cmacme.ACMEChallengeSolverDNS01{}, WaitInsteadOfSelfCheck: tc.wait}
			if tc.follow {
				s.DNS01.CNAMEStrategy = cmacme.FollowStrategy
			}
			c.propagation(context.Background(), "solvers[0]", s, tc.names, tc.writer())
			var b strings.Builder
			_ = c.r.WriteText(&b)
			out := b.String()
			t.Logf("\n%s", out)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("lacks %q", w)
				}
			}
			if tc.pass != c.r.Passed() {
				t.Errorf("passed %v, want %v", c.r.Passed(), tc.pass)
			}
		})
	}
	t.Cleanup(func() {
		// Every test record is gone again (after all the cases ran).
		for _, r := range e.cf.AllRecords() {
			if r.Type == "TXT" {
				t.Errorf("left in Cloudflare: %s %s", r.Name, r.Content)
			}
		}
		for _, r := range e.ali.AllRecords() {
			if r.Type == "TXT" {
				t.Errorf("left in Alibaba Cloud DNS: %s %s", r.FQDN(), r.Value)
			}
		}
	})
}

// cert-manager's self-check settings come from its controller Deployment
// when the flags do not give them.
func TestSelfCheckFromDeployment(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"list and only", []string{"--dns01-recursive-nameservers=8.8.8.8:53,1.1.1.1:53", "--dns01-recursive-nameservers-only", "--v=2"},
			"cert-manager asks only 8.8.8.8:53, 1.1.1.1:53 (the --dns01-recursive-nameservers of cert-manager's Deployment cert-manager/cert-manager) for each TXT record, and every one of them must answer it (--dns01-recursive-nameservers-only=true of cert-manager's Deployment cert-manager/cert-manager)"},
		{"repeated, space-separated, only off", []string{"--dns01-recursive-nameservers", "10.0.0.10:53", "--dns01-recursive-nameservers=https://1.1.1.1/dns-query", "--dns01-recursive-nameservers-only=false"},
			"cert-manager finds each record's zone and authoritative nameservers through 10.0.0.10:53, https://1.1.1.1/dns-query (the --dns01-recursive-nameservers of cert-manager's Deployment cert-manager/cert-manager), then asks every authoritative nameserver, on port 53, for the TXT record (--dns01-recursive-nameservers-only=false of"},
		{"none", []string{"--v=2"},
			"(cert-manager's Deployment cert-manager/cert-manager sets no --dns01-recursive-nameservers-only); cert-manager's Deployment sets no --dns01-recursive-nameservers, so cert-manager uses its pod's resolvers (/etc/resolv.conf: the cluster's DNS), which this check cannot ask from here"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dep := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "cert-manager", Namespace: "cert-manager",
					Labels: map[string]string{"app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller"}},
				Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "cert-manager-controller", Args: tc.args}}}}},
			}
			c := &checker{o: IssuerOptions{Kube: kubefake.NewClientset(dep), CertManagerNamespace: "cert-manager"}, deployments: map[string]*deploymentInfo{}}
			c.selfCheck(context.Background())
			if len(c.r.Findings) != 1 || !strings.Contains(c.r.Findings[0].Detail, tc.want) {
				t.Errorf("got %+v\nwant %q", c.r.Findings, tc.want)
			}
		})
	}
}

// check issuer --propagation writes and finds an internationalised name's
// record where the alidns solver writes it, and DNS serves it there.
func TestPropagation_InternationalisedNames(t *testing.T) {
	t.Parallel()
	ali := alisim.Start()
	t.Cleanup(ali.Close)
	ali.AddIDNDomains()
	ali.AddAccessKey(alisim.AccessKey{ID: propAKID, Secret: propAKValue, Policy: alisim.AllowAll})
	auth, err := dnsserver.Start(dnsserver.Sources{ali})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auth.Close)
	nameservers := map[string]string{}
	for _, zone := range alisim.IDNZones() {
		nameservers["ns1."+zone], nameservers["ns2."+zone] = auth.Addr, auth.Addr
	}
	endpoint, err := alibaba.ParseEndpoint("--alidns-endpoint", "http://"+ali.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	cred := alibaba.Credential{AccessKeyID: propAKID, AccessKeySecret: propAKValue}
	acct, err := alibaba.NewDNSAccounts(alibaba.Options{DNS: endpoint}).For(cred, "")
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	for _, tc := range alisim.IDNCases {
		t.Run(tc.Name, func(t *testing.T) {
			c := &checker{o: IssuerOptions{
				Kube: kubefake.NewClientset(), CertManagerNamespace: "cert-manager",
				RecursiveNameservers: []string{auth.Addr}, RecursiveNameserversOnly: &yes,
				NameserverAddresses: nameservers, WriteTest: true, PropagationTimeout: time.Second,
			}, deployments: map[string]*deploymentInfo{}}
			s := cmacme.ACMEChallengeSolver{DNS01: &cmacme.ACMEChallengeSolverDNS01{}}
			c.propagation(context.Background(), "solvers[0]", s, []string{tc.DNSName}, &aliWriter{acct: acct, cred: cred, domainName: tc.DomainName})
			var b strings.Builder
			_ = c.r.WriteText(&b)
			out := b.String()
			t.Logf("\n%s", out)
			shown := dnsname.Display(dnsname.ASCII(strings.TrimPrefix(tc.DNSName, "*.")))
			record := tc.WantRR + "." + tc.WantDomain
			for _, w := range []string{
				"✓ solvers[0] record zone of " + shown + ": the webhook writes " + record + " into " + dnsname.Display(tc.WantDomain) + " (",
				"✓ solvers[0] propagation of " + shown + ": a test TXT record written at " + record + " into " + tc.WantDomain + ", then deleted, was visible at ns1." + tc.WantDomain,
			} {
				if !strings.Contains(out, w) {
					t.Errorf("lacks %q", w)
				}
			}
			if !c.r.Passed() {
				t.Errorf("not every finding passed:\n%s", out)
			}
		})
	}
	t.Cleanup(func() {
		for _, r := range ali.AllRecords() {
			t.Errorf("left in Alibaba Cloud DNS: %s %s", r.FQDN(), r.Value)
		}
	})
}
