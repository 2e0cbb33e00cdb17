package check

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cmacme "github.com/cert-manager/cert-manager/pkg/apis/acme/v1"
	"github.com/cert-manager/cert-manager/pkg/issuer/acme/dns/util"
	"github.com/miekg/dns"

	"github.com/certbridge/certbridge/internal/dnsname"
)

// The propagation check answers cert-manager's most common DNS01 complaint,
// a Challenge stuck at `DNS record for "…" not yet propagated`: the record
// was written, but the self-check asks resolvers that never see it.
//
// It repeats what cert-manager's controller does for each name
// (pkg/issuer/acme/dns, cert-manager v1.21), with cert-manager's own
// functions where they are exported (util.DNS01LookupFQDN,
// util.FindZoneByFqdn, util.DNSQuery):
//
//   - Present: the record's name is _acme-challenge.<name>, or where its
//     CNAME chain ends when the solver sets cnameStrategy: Follow; its zone
//     (the request's resolvedZone) is the first name up the tree whose SOA
//     the recursive nameservers answer. The webhook writes the name into the
//     zone its provider package resolves (internal/cloudflare,
//     internal/alibaba), which ignores resolvedZone.
//   - Check (the self-check): the CNAME chain is always followed. With
//     --dns01-recursive-nameservers-only each recursive nameserver must
//     answer the TXT value; otherwise the zone's NS records are found
//     through them and every authoritative nameserver, on port 53, must.
//     A success is followed by a fixed 60 s sleep. The solver's
//     waitInsteadOfSelfCheck (v1.21) skips both.
//
// The unexported steps (following the chain, finding the nameservers, asking
// each) are rebuilt on util.DNSQuery, so every question is asked exactly as
// cert-manager asks it.

// DefaultPropagationTimeout is how long the test record may take to show at
// every server: the providers' own propagation takes seconds; a record not
// seen by then is not going to be seen by cert-manager either.
const DefaultPropagationTimeout = 10 * time.Second

// dnsQueryTimeout bounds one question to one server (cert-manager's
// util.DNSTimeout is 10 s; a check that waits that long per server is of
// no use).
const dnsQueryTimeout = 3 * time.Second

// Fix texts shared by several findings.
const (
	recursiveFix = "point cert-manager's self-check at resolvers that see the public zone: run its controller with " +
		"--dns01-recursive-nameservers=8.8.8.8:53,1.1.1.1:53 --dns01-recursive-nameservers-only " +
		"(cert-manager's Helm chart: dns01RecursiveNameservers: \"8.8.8.8:53,1.1.1.1:53\", dns01RecursiveNameserversOnly: true); " +
		"or set waitInsteadOfSelfCheck (e.g. 2m) on the solver to skip the self-check (cert-manager v1.21)"
	delegationFix = "repair the delegation: the zone's NS records, at its parent (the registrar or the parent zone) and in the zone itself, " +
		"must list only nameservers that serve the zone the provider writes into; remove nameservers of a previous provider or secondaries that no longer transfer it"
)

// zoneWriter is what the propagation check needs of a solver's provider,
// with the solver's own config and credential.
type zoneWriter interface {
	// resolution names how the solver picks the zone, for findings.
	resolution() string
	// zone is the zone the solver writes a record at fqdn into.
	zone(ctx context.Context, fqdn string) (writtenZone, error)
	// addTXT writes a TXT record holding value at fqdn in z, as the solver
	// does, and returns how to remove exactly that record.
	addTXT(ctx context.Context, z writtenZone, fqdn, value string) (remove func(context.Context) error, err error)
	// failure words a provider error: what happened, the fix, the reason.
	failure(err error, zone string) (detail, fix, reason string)
}

// writtenZone is a provider's zone: its name, and its ID or lowest TTL where
// the provider needs them to write.
type writtenZone struct {
	name, id string
	minTTL   int
}

// selfCheck is how cert-manager's controller runs its DNS01 self-check.
type selfCheck struct {
	// servers are the recursive nameservers (host:port or DoH URLs).
	servers []string
	from    string
	// only is --dns01-recursive-nameservers-only: the TXT record is asked
	// of the recursive nameservers alone.
	only     bool
	onlyFrom string
	// local: cert-manager uses its pod's resolvers, which cannot be asked
	// from here; servers are this machine's.
	local bool
}

// selfCheck finds cert-manager's --dns01-recursive-nameservers and
// --dns01-recursive-nameservers-only: the check's flags, else the arguments
// of its controller Deployment, else its --config file, else cert-manager's
// defaults. Flags win over the config file, as in cert-manager.
func (c *checker) selfCheck(ctx context.Context) *selfCheck {
	if c.dns01 != nil {
		return c.dns01
	}
	sc := &selfCheck{}
	d, cd := c.certManagerController(ctx)
	cfg := cd.config(ctx, c)
	where := ""
	if d != nil {
		where = fmt.Sprintf("cert-manager's Deployment %s/%s", d.namespace, d.name)
	}
	switch {
	case len(c.o.RecursiveNameservers) > 0:
		sc.servers, sc.from = c.o.RecursiveNameservers, "given by --dns01-recursive-nameservers"
	case d != nil && len(d.values("--dns01-recursive-nameservers")) > 0:
		sc.servers, sc.from = d.values("--dns01-recursive-nameservers"), "the --dns01-recursive-nameservers of "+where
	case cfg != nil && len(cfg.ACMEDNS01Config.RecursiveNameservers) > 0:
		sc.servers, sc.from = cfg.ACMEDNS01Config.RecursiveNameservers, "acmeDNS01Config.recursiveNameservers of its --config file ("+cfg.source+")"
	default:
		sc.servers, sc.local = util.RecursiveNameservers, true
		sc.from = "this machine's resolvers"
	}
	switch {
	case c.o.RecursiveNameserversOnly != nil:
		sc.only = *c.o.RecursiveNameserversOnly
		sc.onlyFrom = "--dns01-recursive-nameservers-only=" + strconv.FormatBool(sc.only) + " given to the check"
	case d != nil && hasArg(d, "--dns01-recursive-nameservers-only"):
		v, _ := d.arg("--dns01-recursive-nameservers-only")
		sc.only, _ = strconv.ParseBool(v)
		sc.onlyFrom = "--dns01-recursive-nameservers-only=" + v + " of " + where
	case cfg != nil && cfg.ACMEDNS01Config.RecursiveNameserversOnly != nil:
		sc.only, sc.onlyFrom = *cfg.ACMEDNS01Config.RecursiveNameserversOnly, "acmeDNS01Config.recursiveNameserversOnly of its --config file ("+cfg.source+")"
	default:
		sc.onlyFrom = "cert-manager's default, without --dns01-recursive-nameservers-only"
		if where != "" {
			sc.onlyFrom = where + " sets no --dns01-recursive-nameservers-only"
		}
	}
	detail := ""
	if sc.only {
		detail = fmt.Sprintf("cert-manager asks only %s (%s) for each TXT record, and every one of them must answer it (%s)",
			strings.Join(sc.servers, ", "), sc.from, sc.onlyFrom)
	} else {
		detail = fmt.Sprintf("cert-manager finds each record's zone and authoritative nameservers through %s (%s), then asks every authoritative nameserver, on port 53, for the TXT record (%s)",
			strings.Join(sc.servers, ", "), sc.from, sc.onlyFrom)
	}
	if sc.local {
		who := "cert-manager's Deployment sets"
		if d == nil {
			who = fmt.Sprintf("no cert-manager controller Deployment was found in %q, so nothing says it sets", c.o.CertManagerNamespace)
		}
		detail += fmt.Sprintf("; %s no --dns01-recursive-nameservers, so cert-manager uses its pod's resolvers (/etc/resolv.conf: the cluster's DNS), which this check cannot ask from here, and asks this machine's (%s) instead: "+
			"where the cluster's DNS answers differently (split-horizon), pass --dns01-recursive-nameservers=<the cluster DNS service's address>:53 from a machine that reaches it",
			who, strings.Join(sc.servers, ", "))
	}
	c.r.pass("DNS01 self-check", detail)
	c.dns01 = sc
	return sc
}

func hasArg(d *deploymentInfo, flag string) bool {
	_, ok := d.arg(flag)
	return ok
}

// values returns every value a repeatable list flag was given in the
// Deployment's arguments (--flag=a,b --flag c), as pflag collects them.
func (d *deploymentInfo) values(flag string) []string {
	var out []string
	for i, a := range d.args {
		v, ok := strings.CutPrefix(a, flag+"=")
		if !ok && a == flag && i+1 < len(d.args) && !strings.HasPrefix(d.args[i+1], "-") {
			v, ok = d.args[i+1], true
		}
		if !ok {
			continue
		}
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// nameserver is an authoritative nameserver of a zone and where it is asked.
type nameserver struct {
	host, addr string
	// mapped: the address comes from --authoritative-nameserver.
	mapped bool
}

func (n nameserver) String() string {
	if n.mapped {
		return n.host + " (at " + n.addr + ", from --authoritative-nameserver)"
	}
	return n.host
}

// answer is one server's answer to one question.
type answer struct {
	rcode int
	aa    bool
	txt   []string
	cname string // the target of a CNAME owned by the question's name
	hasNS []string
	err   error
}

func (a answer) String() string {
	switch {
	case a.err != nil:
		return "no answer (" + a.err.Error() + ")"
	case a.rcode != dns.RcodeSuccess:
		return dns.RcodeToString[a.rcode]
	case len(a.txt) > 0:
		return "NOERROR with other TXT values only (" + strings.Join(quoteAll(a.txt), ", ") + ")"
	}
	return "NOERROR without the record"
}

func quoteAll(v []string) []string {
	out := make([]string, len(v))
	for i, s := range v {
		out[i] = strconv.Quote(s)
	}
	return out
}

// ask puts one question to one server, as cert-manager does (util.DNSQuery
// with recursion desired, UDP then TCP; a https:// server is DNS over HTTPS).
func ask(ctx context.Context, fqdn string, qtype uint16, server string) answer {
	ctx, cancel := context.WithTimeout(ctx, dnsQueryTimeout)
	defer cancel()
	m, err := util.DNSQuery(ctx, fqdn, qtype, []string{server}, true)
	if err != nil {
		return answer{err: err}
	}
	a := answer{rcode: m.Rcode, aa: m.Authoritative}
	for _, rr := range m.Answer {
		switch v := rr.(type) {
		case *dns.TXT:
			a.txt = append(a.txt, strings.Join(v.Txt, ""))
		case *dns.CNAME:
			if strings.EqualFold(v.Hdr.Name, fqdn) {
				a.cname = strings.ToLower(v.Target)
			}
		case *dns.NS:
			a.hasNS = append(a.hasNS, strings.ToLower(v.Ns))
		}
	}
	return a
}

// askAny asks servers in turn until one answers, as util.DNSQuery does
// with a list (cert-manager's discovery steps).
func askAny(ctx context.Context, fqdn string, qtype uint16, servers []string) (answer, string) {
	var last answer
	for _, s := range servers {
		if last = ask(ctx, fqdn, qtype, s); last.err == nil {
			return last, s
		}
	}
	return last, strings.Join(servers, ", ")
}

// chainOf follows the CNAMEs from fqdn as cert-manager's followCNAMEs does
// (a CNAME question per name, through servers), and returns the names met.
func chainOf(ctx context.Context, fqdn string, servers []string) ([]string, string, error) {
	chain := []string{fqdn}
	for {
		a, by := askAny(ctx, chain[len(chain)-1], dns.TypeCNAME, servers)
		if a.err != nil {
			return chain, by, a.err
		}
		if a.rcode != dns.RcodeSuccess || a.cname == "" {
			return chain, by, nil
		}
		if slices.Contains(chain, a.cname) {
			return append(chain, a.cname), by, fmt.Errorf("the CNAME chain loops back to %s", a.cname)
		}
		chain = append(chain, a.cname)
	}
}

// nameservers finds zone's authoritative nameservers as cert-manager's
// lookupNameservers does: its NS records through the recursive servers,
// each asked on port 53 (or where --authoritative-nameserver says).
func (c *checker) nameservers(ctx context.Context, zone string, servers []string) ([]nameserver, string, error) {
	a, by := askAny(ctx, zone, dns.TypeNS, servers)
	if a.err != nil {
		return nil, by, a.err
	}
	if len(a.hasNS) == 0 {
		return nil, by, fmt.Errorf("no NS records for %s (%s)", zone, a)
	}
	var out []nameserver
	for _, h := range a.hasNS {
		host := strings.TrimSuffix(h, ".")
		if addr, ok := c.o.NameserverAddresses[host]; ok {
			out = append(out, nameserver{host: host, addr: addr, mapped: true})
			continue
		}
		out = append(out, nameserver{host: host, addr: net.JoinHostPort(h, "53")})
	}
	slices.SortFunc(out, func(x, y nameserver) int { return strings.Compare(x.host, y.host) })
	return out, by, nil
}

// propagation checks, for each name the solver serves, that the record the
// webhook writes is where cert-manager's self-check and the ACME server look,
// and with the write test that it shows there. w is nil when the solver's
// credential could not be used; the provider's side is then not checked.
func (c *checker) propagation(ctx context.Context, prefix string, s cmacme.ACMEChallengeSolver, names []string, w zoneWriter) {
	sc := c.selfCheck(ctx)
	follow := s.DNS01.CNAMEStrategy == cmacme.FollowStrategy
	wait := s.WaitInsteadOfSelfCheck
	if wait != nil {
		c.r.pass(prefix+" self-check", fmt.Sprintf("waitInsteadOfSelfCheck: %s: cert-manager does not self-check this solver's records; it waits %s after Present and asks the ACME server, whose resolvers ask the authoritative nameservers",
			wait.Duration, wait.Duration))
	}
	if len(names) == 0 {
		c.r.pass(prefix+" propagation", "the solver has no selector, so it may serve any name and none is checked: give it dnsNames or dnsZones, or check with a solver that has them")
		return
	}
	for _, n := range distinctNames(names) {
		c.propagationOf(ctx, prefix, n, follow, wait != nil, sc, w)
	}
}

// propagationOf checks one name (without "*.").
func (c *checker) propagationOf(ctx context.Context, prefix, name string, follow, noSelfCheck bool, sc *selfCheck, w zoneWriter) {
	orig := "_acme-challenge." + name + "."
	via := strings.Join(sc.servers, ", ")

	// The CNAME chain, and the names cert-manager derives from it.
	label := prefix + " CNAME of " + dnsname.Display(name)
	chain, by, err := chainOf(ctx, orig, sc.servers)
	if err != nil {
		c.r.fail(label, fmt.Sprintf("following the CNAMEs of %s through %s failed: %v", unfqdn(orig), by, err),
			"make the resolvers reachable from cert-manager (and from here), or repair the CNAME chain")
		return
	}
	self, err := util.DNS01LookupFQDN(ctx, name, true, sc.servers...)
	if err != nil {
		c.r.fail(label, "cert-manager's own lookup fails: "+err.Error(), "repair the CNAME chain of "+unfqdn(orig))
		return
	}
	present := orig
	if follow {
		present = self
	}
	selfZone, selfZoneErr := util.FindZoneByFqdn(ctx, self, sc.servers)
	switch {
	case len(chain) == 1:
		c.r.pass(label, fmt.Sprintf("%s is no CNAME (%s answered); the webhook is asked to write it as it is", unfqdn(orig), by))
	case follow:
		c.r.pass(label, fmt.Sprintf("%s (through %s); cnameStrategy: Follow, so cert-manager asks the webhook to write %s", arrows(chain), by, unfqdn(present)))
	default:
		fix := "set cnameStrategy: Follow on this solver (spec.acme.solvers[…].dns01.cnameStrategy)"
		if w != nil && selfZoneErr == nil {
			if z, err := w.zone(ctx, self); err == nil && dnsname.Canonical(z.name) == dnsname.Canonical(selfZone) {
				fix += fmt.Sprintf(", and pin the zone with the solver's zoneName (alidns: domainName): %s, which this solver's credential reaches", unfqdn(selfZone))
			} else {
				fix += fmt.Sprintf(", on a solver whose credential reaches %s, where the chain ends, with its zoneName (alidns: domainName): %s and a selector for %s; this solver's credential does not reach that zone",
					unfqdn(selfZone), unfqdn(selfZone), name)
			}
		}
		c.r.fail(label, fmt.Sprintf("%s (through %s), but the solver has no cnameStrategy: Follow, so cert-manager asks the webhook to write %s itself, beside the CNAME, where no resolver looks (most providers refuse a TXT record beside a CNAME); "+
			"the self-check and the ACME server follow the CNAME to %s, and the Challenge stays at: DNS record for %q not yet propagated",
			arrows(chain), by, unfqdn(orig), unfqdn(self), name), fix)
	}

	// The zone cert-manager finds and the webhook's; moot when the record
	// goes beside an unfollowed CNAME.
	label = prefix + " record zone of " + dnsname.Display(name)
	var wz writtenZone
	writable := false
	presentZone, err := util.FindZoneByFqdn(ctx, present, sc.servers)
	switch {
	case present != self:
	case err != nil:
		c.r.fail(label, fmt.Sprintf("cert-manager finds no zone for %s through %s (%v): Present fails before the webhook is called", unfqdn(present), via, err),
			"the resolvers must answer the SOA of the zone holding "+unfqdn(present)+": "+recursiveFix)
		return
	case w == nil:
		c.r.pass(label, fmt.Sprintf("DNS serves %s from zone %s (its SOA through %s); which zone the webhook writes into is not checked from here (the credential was not usable from here)",
			unfqdn(present), unfqdn(presentZone), via))
	default:
		switch wz, err = w.zone(ctx, present); {
		case err != nil:
			detail, fix, reason := w.failure(err, "")
			c.r.failBecause(reason, label, fmt.Sprintf("DNS serves %s from zone %s, but %s finds no zone to write it into: %s", unfqdn(present), unfqdn(presentZone), w.resolution(), detail), fix)
		case wz.name == "":
			writable = true
			c.r.pass(label, fmt.Sprintf("DNS serves %s from zone %s (its SOA through %s); the webhook writes into the zone of %s, whose name is not looked up", unfqdn(present), unfqdn(presentZone), via, w.resolution()))
		case dnsname.Canonical(wz.name) == dnsname.Canonical(presentZone):
			writable = true
			c.r.pass(label, fmt.Sprintf("the webhook writes %s into %s (%s), the zone DNS serves it from (its SOA through %s)", unfqdn(present), dnsname.Display(wz.name), w.resolution(), via))
		default:
			c.r.fail(label, fmt.Sprintf("the webhook writes %s into %s (%s), but DNS serves it from zone %s (its SOA through %s): no resolver will see the record",
				unfqdn(present), wz.name, w.resolution(), unfqdn(presentZone), via), zoneMismatchFix(wz.name, presentZone))
		}
	}

	// The self-check zone's authoritative nameservers, each asked whether
	// it serves the zone.
	if selfZoneErr != nil {
		c.r.fail(prefix+" nameservers of "+dnsname.Display(name), fmt.Sprintf("cert-manager finds no zone for %s through %s (%v)", unfqdn(self), via, selfZoneErr),
			"the resolvers must answer the SOA of the zone holding "+unfqdn(self)+": "+recursiveFix)
		return
	}
	label = prefix + " nameservers of " + dnsname.Display(name)
	servers, by, err := c.nameservers(ctx, selfZone, sc.servers)
	if err != nil {
		fix := "the zone " + unfqdn(selfZone) + " must have NS records that the resolvers answer: " + delegationFix
		if !sc.only && !noSelfCheck {
			fix += "; until then cert-manager's self-check fails with \"Could not determine authoritative nameservers\""
		}
		c.r.fail(label, fmt.Sprintf("the NS records of %s through %s: %v", unfqdn(selfZone), by, err), fix)
		return
	}
	var serving []string
	for _, ns := range servers {
		a := ask(ctx, selfZone, dns.TypeSOA, ns.addr)
		if a.err == nil && a.rcode == dns.RcodeSuccess && a.aa {
			serving = append(serving, ns.String())
			continue
		}
		what := a.String()
		if a.err == nil && a.rcode == dns.RcodeSuccess {
			what = "an answer that is not authoritative"
		}
		fix := delegationFix
		if a.err != nil && !ns.mapped {
			fix = "if " + ns.host + " is reachable from cert-manager but not from here, pass --authoritative-nameserver " + ns.host + "=<address>:53 to ask it where it is reachable; otherwise " + delegationFix
		}
		c.r.fail(fmt.Sprintf("%s at %s", label, ns.host), fmt.Sprintf("%s, a nameserver of zone %s (its NS records through %s), does not serve the zone: the SOA question got %s",
			ns, unfqdn(selfZone), by, what), fix)
	}
	if len(serving) > 0 {
		c.r.pass(label, fmt.Sprintf("zone %s (%s's zone; its NS records through %s): %s answer for it authoritatively",
			unfqdn(selfZone), unfqdn(self), by, strings.Join(serving, ", ")))
	}
	// A resolver whose view of the first name differs from its zone's own
	// nameservers sees another version of the zone: split-horizon DNS.
	c.compareCNAME(ctx, prefix, name, orig, chain, sc)

	if !c.o.WriteTest || w == nil || !writable || present != self {
		return
	}
	c.writeAndWatch(ctx, prefix, name, self, wz, w, servers, sc, noSelfCheck)
}

// compareCNAME asks the nameservers of the zone of _acme-challenge.<name>
// whether it is a CNAME, and reports a resolver that says otherwise.
func (c *checker) compareCNAME(ctx context.Context, prefix, name, orig string, chain []string, sc *selfCheck) {
	zone, err := util.FindZoneByFqdn(ctx, orig, sc.servers)
	if err != nil {
		return // reported with the record's zone
	}
	servers, _, err := c.nameservers(ctx, zone, sc.servers)
	if err != nil {
		return
	}
	resolverSays := ""
	if len(chain) > 1 {
		resolverSays = chain[1]
	}
	for _, ns := range servers {
		a := ask(ctx, orig, dns.TypeCNAME, ns.addr)
		if a.err != nil || (a.rcode != dns.RcodeSuccess && a.rcode != dns.RcodeNameError) || a.cname == resolverSays {
			continue
		}
		says := func(target string) string {
			if target == "" {
				return "no CNAME"
			}
			return "CNAME " + unfqdn(target)
		}
		c.r.fail(prefix+" CNAME of "+dnsname.Display(name)+" at "+ns.host, fmt.Sprintf("%s says %s is %s, but %s, a nameserver of its zone %s, says %s: the resolvers cert-manager asks see another version of the zone (split-horizon DNS) or a stale cache, and cert-manager follows their answer",
			strings.Join(sc.servers, ", "), unfqdn(orig), says(resolverSays), ns, unfqdn(zone), says(a.cname)), recursiveFix)
		return
	}
}

// visibility is what one server showed of the test record.
type visibility struct {
	server    string
	auth      bool
	ns        nameserver
	after     time.Duration
	seen      bool
	last      answer
	lastAsked time.Time
}

// writeAndWatch writes a uniquely valued TXT record where the webhook would
// write fqdn's, asks every authoritative nameserver and every recursive
// nameserver cert-manager asks for it until each answers it or the bound
// passes, then removes it.
func (c *checker) writeAndWatch(ctx context.Context, prefix, name, fqdn string, z writtenZone, w zoneWriter, servers []nameserver, sc *selfCheck, noSelfCheck bool) {
	label := prefix + " propagation of " + dnsname.Display(name)
	value := fmt.Sprintf("certbridge-propagation-check-%d", time.Now().UnixNano())
	remove, err := w.addTXT(ctx, z, fqdn, value)
	if err != nil {
		detail, fix, reason := w.failure(err, z.name)
		c.r.failBecause(reason, label, "writing a test TXT record at "+unfqdn(fqdn)+" failed ("+detail+")", fix)
		return
	}
	began := time.Now()
	bound := c.o.PropagationTimeout
	if bound <= 0 {
		bound = DefaultPropagationTimeout
	}
	var vis []*visibility
	for _, ns := range servers {
		vis = append(vis, &visibility{server: ns.addr, auth: true, ns: ns})
	}
	for _, s := range sc.servers {
		vis = append(vis, &visibility{server: s})
	}
	var wg sync.WaitGroup
	for _, v := range vis {
		wg.Go(func() {
			for {
				v.last = ask(ctx, fqdn, dns.TypeTXT, v.server)
				if slices.Contains(v.last.txt, value) {
					v.seen, v.after = true, time.Since(began)
					return
				}
				if time.Since(began) >= bound || ctx.Err() != nil {
					return
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := remove(rmCtx); err != nil {
		detail, fix, reason := w.failure(err, z.name)
		c.r.failBecause(reason, label+" clean-up", fmt.Sprintf("the test TXT record %q at %s could not be deleted (%s)", value, unfqdn(fqdn), detail),
			"delete that record by hand; "+fix)
	}

	var seen []string
	authSeen := 0
	for _, v := range vis {
		if v.seen && v.auth {
			authSeen++
		}
	}
	for _, v := range vis {
		where := "through " + v.server
		if v.auth {
			where = "at " + v.ns.String()
		}
		if v.seen {
			short := "through " + v.server
			if v.auth {
				short = "at " + v.ns.host
			}
			seen = append(seen, short+" "+after(v.after))
			continue
		}
		detail := fmt.Sprintf("the test TXT record written at %s into %s was not visible %s within %s: it answered %s", unfqdn(fqdn), z.name, where, bound, v.last)
		switch {
		case v.auth && authSeen > 0:
			detail += ", while other nameservers of the zone serve it: this one serves another copy of the zone"
			if !sc.only && !noSelfCheck {
				detail += "; cert-manager's self-check asks it and waits (\"not yet propagated\")"
			}
			detail += ", and the ACME server's resolvers may ask it and fail the challenge"
			c.r.fail(label+" at "+v.ns.host, detail, delegationFix)
		case v.auth:
			detail += "; no nameserver of the zone serves what the webhook wrote into " + z.name
			c.r.fail(label+" at "+v.ns.host, detail, "the zone the webhook writes into must be the one these nameservers serve: set the solver's zoneName (alidns: domainName) to it, or "+delegationFix)
		case noSelfCheck:
			seen = append(seen, fmt.Sprintf("not through %s (%s), which does not matter: the solver's waitInsteadOfSelfCheck skips cert-manager's self-check", v.server, v.last))
		case !sc.only:
			seen = append(seen, fmt.Sprintf("not yet through %s (%s), which does not matter: cert-manager asks it only for zones and nameservers, and asks those for the record", v.server, v.last))
		case authSeen < len(servers):
			// The nameserver lines say why: a resolver cannot see what the
			// zone's nameservers do not serve.
			c.r.fail(label+" through "+v.server, detail+"; cert-manager's self-check asks only it and waits at \"not yet propagated\"", "fix what the nameserver lines above say first")
		default:
			detail += ", while every authoritative nameserver serves it: this resolver sees another version of the zone (split-horizon DNS) or holds a stale negative cache, " +
				"and cert-manager's self-check, which asks only it, waits at \"not yet propagated\""
			c.r.fail(label+" through "+v.server, detail, recursiveFix)
		}
	}
	if len(seen) > 0 {
		c.r.pass(label, fmt.Sprintf("a test TXT record written at %s into %s, then deleted, was visible %s", unfqdn(fqdn), z.name, strings.Join(seen, ", ")))
	}
}

// zoneMismatchFix is what to do when the webhook writes into zone written
// but DNS serves the name from served.
func zoneMismatchFix(written, served string) string {
	written, served = dnsname.Canonical(written), dnsname.Canonical(served)
	switch {
	case dnsname.IsSubdomain(served, written):
		return fmt.Sprintf("%s is delegated away from %s to other nameservers, so records written into %s are never served: write into %s where it is hosted "+
			"(a solver whose credential reaches it, with zoneName/domainName: %s), or remove the delegation (the NS records of %s in %s)", served, written, written, served, served, served, written)
	case dnsname.IsSubdomain(written, served):
		return fmt.Sprintf("%s is not delegated from %s, so resolvers answer from %s: %s (add NS records for %s in %s naming the nameservers the provider gives %s), or set zoneName/domainName: %s if the provider hosts it",
			written, served, served, delegationFix, written, served, written, served)
	}
	return fmt.Sprintf("set the solver's zoneName (alidns: domainName) to %s, the zone DNS serves the name from", served)
}

func unfqdn(name string) string { return strings.TrimSuffix(name, ".") }

func arrows(chain []string) string {
	out := make([]string, len(chain))
	for i, n := range chain {
		out[i] = unfqdn(n)
	}
	return strings.Join(out, " CNAME ")
}

func after(d time.Duration) string {
	if d < time.Millisecond {
		return "at once"
	}
	return "after " + d.Round(time.Millisecond).String()
}
