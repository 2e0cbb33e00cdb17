package localcluster

import (
	"context"
	"fmt"
	"strings"

	cfdns "github.com/cloudflare/cloudflare-go/v7/dns"
	"github.com/cloudflare/cloudflare-go/v7/option"

	"github.com/certbridge/certbridge/test/sim/alibaba"
)

// DelegationDomain is a domain of the Alibaba Cloud DNS account that
// _acme-challenge names of Cloudflare's zone are delegated into by CNAME
// (DelegateACMEChallenge): a sub-domain of example.net registered as a
// domain of its own, as Alibaba Cloud DNS allows.
const DelegationDomain = "acme-delegation.example.net"

// DelegateACMEChallenge makes _acme-challenge.<name> (in the Cloudflare
// zone) a CNAME to _acme-challenge.<domain> in the Alibaba Cloud DNS
// account, the way a user delegates DNS01 to a zone an ACME client may
// write: the domain is added to the account if it is not there, the CNAME
// is created through the Cloudflare simulator's record API. It returns
// the CNAME's target.
func (c *Cluster) DelegateACMEChallenge(ctx context.Context, name, domain string) (string, error) {
	known := false
	for _, d := range c.Alibaba.AllDomains() {
		known = known || d.Name == domain
	}
	if !known {
		c.Alibaba.AddDomain(domain, alibaba.FreeEdition)
	}
	zoneID := ""
	for _, z := range c.Cloudflare.AllZones() {
		if name == z.Name || strings.HasSuffix(name, "."+z.Name) {
			zoneID = z.ID
		}
	}
	if zoneID == "" {
		return "", fmt.Errorf("no simulated Cloudflare zone holds %s", name)
	}
	owner, target := "_acme-challenge."+name, "_acme-challenge."+domain
	var body cfdns.CNAMERecordParam
	body.Name.Value, body.Name.Present = owner, true
	body.Type.Value, body.Type.Present = cfdns.CNAMERecordTypeCNAME, true
	body.Content.Value, body.Content.Present = target, true
	body.TTL.Value, body.TTL.Present = 1, true
	var p cfdns.RecordNewParams
	p.ZoneID.Value, p.ZoneID.Present = zoneID, true
	p.Body = body
	svc := cfdns.NewRecordService(option.WithBaseURL(c.Cloudflare.URL()), option.WithAPIToken(c.CloudflareToken), option.WithMaxRetries(0))
	if _, err := svc.New(ctx, p); err != nil {
		return "", fmt.Errorf("creating the CNAME %s → %s: %w", owner, target, err)
	}
	c.step("delegated %s by CNAME to %s (Alibaba Cloud DNS domain %s)", owner, target, domain)
	return target, nil
}

// AuthoritativeNameserverFlags are `certbridge check issuer` flags that
// ask the simulated zones' nameservers (ns1 and ns2.<zone>, as the DNS
// server's NS records name them) at the simulators' DNS server, which
// serves every zone on one loopback address; override replaces some.
func (c *Cluster) AuthoritativeNameserverFlags(override map[string]string) []string {
	var zones []string
	for _, z := range c.Cloudflare.AllZones() {
		zones = append(zones, z.Name)
	}
	for _, d := range c.Alibaba.AllDomains() {
		zones = append(zones, d.Name)
	}
	var out []string
	for _, z := range zones {
		for _, ns := range []string{"ns1." + z, "ns2." + z} {
			addr := c.DNS.Addr
			if o, ok := override[ns]; ok {
				addr = o
			}
			out = append(out, "--authoritative-nameserver="+ns+"="+addr)
		}
	}
	return out
}
