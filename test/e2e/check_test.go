//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	internalalibaba "github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/test/localcluster"
	"github.com/certbridge/certbridge/test/sim/alibaba"
	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
	"github.com/certbridge/certbridge/test/sim/dnsserver"
)

// TestCheckIssuer runs `certbridge check issuer` — the real binary, against
// the real kube-apiserver, aggregator, RBAC and simulators — once per
// failure of the catalogue it detects, and on issuers that work. Every run
// asserts the exit code, the ✗ line and its fix, and that no credential
// value appears on stdout or stderr.
func TestCheckIssuer(t *testing.T) {
	began := time.Now()
	e := startEnv(t, 10*time.Minute)
	c, ctx := e.c, e.ctx
	k := &checkEnv{env: *e, secrets: c.Secrets()}
	started := time.Now()

	// Credentials of the failure cases; the leak check looks for them too.
	var (
		globalKey     = "0123456789abcdef0123456789abcdef01234"
		noZoneRead    = "checkF5TokenDnsEditWithoutZoneRead000001"
		readOnly      = "checkF6TokenZoneReadDnsReadOnly000000001"
		unknownToken  = "checkF7TokenThatCloudflareNeverIssued001"
		noDNSKeyID    = "LTAI5tCheckF13NoDNS00001"
		noDNSKeyValue = "checkF13AccessKeySecretNoAlidns0"
	)
	c.Cloudflare.AddToken(cfsim.Token{Value: noZoneRead, Permissions: []cfsim.Permission{cfsim.DNSEdit}})
	c.Cloudflare.AddToken(cfsim.Token{Value: readOnly, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSRead}})
	c.Alibaba.AddAccessKey(alibaba.AccessKey{ID: noDNSKeyID, Secret: noDNSKeyValue, Policy: alibaba.Policy{Actions: []string{"yundun-cert:*"}}})
	k.secrets = append(k.secrets, globalKey, noZoneRead, readOnly, unknownToken, noDNSKeyValue)

	// For the propagation checks: _acme-challenge.app.example.com delegated
	// by CNAME into the Alibaba account; a split-horizon resolver whose
	// internal copy of the zones has none of their records; a nameserver of
	// a previous provider still serving an old copy of example.com.
	if _, err := c.DelegateACMEChallenge(ctx, "app.example.com", localcluster.DelegationDomain); err != nil {
		t.Fatal(err)
	}
	split, err := dnsserver.Start(dnsserver.Static{Apexes: []string{localcluster.CloudflareZone, localcluster.AliDNSDomain, localcluster.DelegationDomain}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(split.Close)
	stale, err := dnsserver.Start(dnsserver.Static{Apexes: []string{localcluster.CloudflareZone}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stale.Close)
	nameservers := c.AuthoritativeNameserverFlags(nil)

	t.Run("parallel", func(t *testing.T) {
		t.Run("acme_issuer_all_pass", func(t *testing.T) {
			t.Parallel()
			const ns = "check-ok"
			k.namespace(t, ns, true)
			k.apply(t, acmeIssuerYAML(ns, "ok", c.PebbleDirectory, `
    - selector: {dnsNames: [www.example.com]}
      dns01:
        webhook:
          groupName: `+localcluster.GroupName+`
          solverName: cloudflare
          config: {apiTokenSecretRef: {name: cloudflare-api-token, key: api-token}}
    - selector: {dnsZones: [example.net]}
      dns01:
        webhook:
          groupName: `+localcluster.GroupName+`
          solverName: alidns
          config:
            accessKeyIdSecretRef: {name: alidns-access-key, key: access-key-id}
            accessKeySecretSecretRef: {name: alidns-access-key, key: access-key-secret}`))
			k.waitIssuerReady(t, "cert-manager.io", "v1", "issuers", ns, "ok")
			out := k.expect(t, 0, append([]string{"issuer/ok", "-n", ns, "--write-test"}, nameservers...),
				`✓ secret namespace: "check-ok": an Issuer's solvers read Secrets from the Issuer's own namespace`,
				`✓ solvers[0] config: valid cloudflare config (apiTokenSecretRef); selector: www.example.com`,
				`✓ solvers[0] apiTokenSecretRef: Secret check-ok/cloudflare-api-token has the key "api-token"`,
				"✓ solvers[0] token: active",
				"✓ solvers[0] zone of www.example.com: example.com (id ",
				"✓ solvers[0] write test example.com: created and deleted a TXT record",
				"✓ APIService v1alpha1.acme.certbridge.io: Available; the webhook behind Service certbridge/certbridge-webhook serves alidns, cloudflare",
				"✓ cert-manager may create cloudflare.acme.certbridge.io: ServiceAccount cert-manager/cert-manager",
				"✓ webhook may get Secret check-ok/cloudflare-api-token: the webhook's ServiceAccount certbridge/certbridge-webhook",
				"✓ solvers[1] domain of example.net: example.net (edition mianfei, minimum TTL 600)",
				"✓ solvers[1] write test example.net: added and deleted a TXT record",
				"✓ cert-manager may create alidns.acme.certbridge.io",
				"✓ webhook may get Secret check-ok/alidns-access-key",
				"✓ Ready: True (ACMEAccountRegistered)")
			if strings.Contains(out, "✗") {
				t.Errorf("a ✗ line in an all-✓ run:\n%s", out)
			}
			// -o json: the same findings, for scripts.
			js := k.expect(t, 0, []string{"iss/ok", "-n", ns, "-o", "json"})
			var report struct {
				Target   string `json:"target"`
				Passed   bool   `json:"passed"`
				Findings []struct {
					Check string `json:"check"`
					OK    bool   `json:"ok"`
				} `json:"findings"`
			}
			if err := json.Unmarshal([]byte(js), &report); err != nil {
				t.Fatalf("-o json: %v\n%s", err, js)
			}
			if !report.Passed || report.Target != "Issuer check-ok/ok" || len(report.Findings) < 10 {
				t.Errorf("-o json: passed %v, target %q, %d findings:\n%s", report.Passed, report.Target, len(report.Findings), js)
			}
		})
		// serviceAccountRef: the webhook's ServiceAccount may request the
		// tokens where the namespace's RoleBinding lets it; the token
		// (requested as the admin running the check) and the role
		// assumption are lines of their own.
		t.Run("acme_issuer_service_account_ref", func(t *testing.T) {
			t.Parallel()
			const ns, role = "check-sa", "acs:ram::1234567890123456:role/check-sa-dns"
			k.namespace(t, ns, false)
			k.apply(t, "{apiVersion: v1, kind: ServiceAccount, metadata: {name: dns, namespace: "+ns+"}}")
			c.Alibaba.AddRole(alibaba.Role{ARN: role, Policy: alibaba.AllowAll, TrustedOIDCProvider: localcluster.RRSAOIDCProvider,
				OIDCSubjects: []string{"system:serviceaccount:" + ns + ":dns"}})
			solver := func(sa string) string {
				return `
    - dns01:
        webhook:
          groupName: ` + localcluster.GroupName + `
          solverName: alidns
          config: {serviceAccountRef: {name: ` + sa + `}, roleArn: "` + role + `", domainName: example.net}`
			}
			k.apply(t, acmeIssuerYAML(ns, "granted", c.PebbleDirectory, solver("dns")))
			k.apply(t, acmeIssuerYAML(ns, "ungranted", c.PebbleDirectory, solver("other")))
			if err := c.GrantServiceAccountTokens(ctx, ns, "dns", localcluster.WebhookUser); err != nil {
				t.Fatal(err)
			}
			k.expect(t, 0, []string{"issuer/granted", "-n", ns},
				`✓ solvers[0] token request: the webhook's ServiceAccount certbridge/certbridge-webhook may request tokens of ServiceAccount check-sa/dns (a RoleBinding in "check-sa" lets it), and kube-apiserver issued one for audience "sts.aliyuncs.com", requested as you`,
				"✓ solvers[0] role assumption: STS issued credentials of role "+role+" to system:serviceaccount:check-sa:dns through the OIDC provider "+localcluster.RRSAOIDCProvider,
				"✓ solvers[0] domain example.net: in the account")
			k.expect(t, 1, []string{"issuer/ungranted", "-n", ns},
				`✗ solvers[0] token request: the webhook's ServiceAccount certbridge/certbridge-webhook (Kubernetes user "`+localcluster.WebhookUser+`") may not request tokens for ServiceAccount "other" in namespace "check-sa"`,
				"apply in namespace \"check-sa\": "+internalalibaba.TokenGrant(ns, "other", localcluster.WebhookUser))
		})
		// The propagation check (--propagation, implied by --write-test):
		// one run where everything is where cert-manager and the ACME server
		// look, including a CNAME followed into the other provider, then one
		// run per way the record is written where they do not look.
		t.Run("propagation_all_pass_with_delegated_cname", func(t *testing.T) {
			t.Parallel()
			const ns = "check-prop-ok"
			k.namespace(t, ns, true)
			k.apply(t, acmeIssuerYAML(ns, "prop", c.PebbleDirectory, `
    - selector: {dnsNames: [prop.example.com]}
      dns01:
        webhook:
          groupName: `+localcluster.GroupName+`
          solverName: cloudflare
          config: {apiTokenSecretRef: {name: cloudflare-api-token, key: api-token}}
    - selector: {dnsNames: [app.example.com]}
      dns01:
        cnameStrategy: Follow
        webhook:
          groupName: `+localcluster.GroupName+`
          solverName: alidns
          config:
            accessKeyIdSecretRef: {name: alidns-access-key, key: access-key-id}
            accessKeySecretSecretRef: {name: alidns-access-key, key: access-key-secret}
            domainName: `+localcluster.DelegationDomain))
			k.waitIssuerReady(t, "cert-manager.io", "v1", "issuers", ns, "prop")
			dnsAddr := c.DNS.Addr
			out := k.expect(t, 0, append([]string{"issuer/prop", "-n", ns, "--write-test"}, nameservers...),
				"✓ DNS01 self-check: cert-manager asks only "+dnsAddr+" (the --dns01-recursive-nameservers of cert-manager's Deployment cert-manager/cert-manager) for each TXT record, and every one of them must answer it (--dns01-recursive-nameservers-only=true of cert-manager's Deployment cert-manager/cert-manager)",
				"✓ solvers[0] CNAME of prop.example.com: _acme-challenge.prop.example.com is no CNAME ("+dnsAddr+" answered); the webhook is asked to write it as it is",
				"✓ solvers[0] record zone of prop.example.com: the webhook writes _acme-challenge.prop.example.com into example.com (the cloudflare solver's zone resolution), the zone DNS serves it from (its SOA through "+dnsAddr+")",
				"✓ solvers[0] nameservers of prop.example.com: zone example.com (_acme-challenge.prop.example.com's zone; its NS records through "+dnsAddr+"): ns1.example.com (at "+dnsAddr+", from --authoritative-nameserver), ns2.example.com (at "+dnsAddr+", from --authoritative-nameserver) answer for it authoritatively",
				"✓ solvers[0] propagation of prop.example.com: a test TXT record written at _acme-challenge.prop.example.com into example.com, then deleted, was visible at ns1.example.com ",
				"✓ solvers[1] CNAME of app.example.com: _acme-challenge.app.example.com CNAME _acme-challenge.acme-delegation.example.net (through "+dnsAddr+"); cnameStrategy: Follow, so cert-manager asks the webhook to write _acme-challenge.acme-delegation.example.net",
				"✓ solvers[1] record zone of app.example.com: the webhook writes _acme-challenge.acme-delegation.example.net into acme-delegation.example.net (the solver's domainName), the zone DNS serves it from",
				"✓ solvers[1] propagation of app.example.com: a test TXT record written at _acme-challenge.acme-delegation.example.net into acme-delegation.example.net, then deleted, was visible at ns1.acme-delegation.example.net ")
			if strings.Contains(out, "✗") {
				t.Errorf("a ✗ line in an all-✓ run:\n%s", out)
			}
		})
		t.Run("propagation_cname_without_cname_strategy_follow", func(t *testing.T) {
			t.Parallel()
			const ns = "check-prop-cname"
			k.namespace(t, ns, true)
			k.apply(t, cloudflareIssuer(ns, localcluster.GroupName, "api-token", "app.example.com"))
			k.expect(t, 1, append([]string{"issuer/cf", "-n", ns, "--propagation"}, nameservers...),
				"✗ solvers[0] CNAME of app.example.com: _acme-challenge.app.example.com CNAME _acme-challenge.acme-delegation.example.net (through "+c.DNS.Addr+"), but the solver has no cnameStrategy: Follow, so cert-manager asks the webhook to write _acme-challenge.app.example.com itself, beside the CNAME, where no resolver looks",
				`and the Challenge stays at: DNS record for "app.example.com" not yet propagated`,
				"fix: set cnameStrategy: Follow on this solver (spec.acme.solvers[…].dns01.cnameStrategy), on a solver whose credential reaches acme-delegation.example.net, where the chain ends, with its zoneName (alidns: domainName): acme-delegation.example.net and a selector for app.example.com; this solver's credential does not reach that zone")
		})
		t.Run("propagation_split_horizon_resolver", func(t *testing.T) {
			t.Parallel()
			const ns = "check-prop-split"
			k.namespace(t, ns, true)
			k.apply(t, cloudflareIssuer(ns, localcluster.GroupName, "api-token", "split.example.com"))
			// cert-manager's self-check asking the cluster's DNS, which has
			// its own copy of example.com: as if its Deployment named it.
			k.expect(t, 1, append([]string{"issuer/cf", "-n", ns, "--write-test", "--propagation-timeout=3s", "--dns01-recursive-nameservers=" + split.Addr}, nameservers...),
				"✓ DNS01 self-check: cert-manager asks only "+split.Addr+" (given by --dns01-recursive-nameservers)",
				"✗ solvers[0] propagation of split.example.com through "+split.Addr+": the test TXT record written at _acme-challenge.split.example.com into example.com was not visible through "+split.Addr+" within 3s: it answered NXDOMAIN, while every authoritative nameserver serves it: this resolver sees another version of the zone (split-horizon DNS) or holds a stale negative cache",
				"fix: point cert-manager's self-check at resolvers that see the public zone: run its controller with --dns01-recursive-nameservers=8.8.8.8:53,1.1.1.1:53 --dns01-recursive-nameservers-only (cert-manager's Helm chart: dns01RecursiveNameservers: \"8.8.8.8:53,1.1.1.1:53\", dns01RecursiveNameserversOnly: true); or set waitInsteadOfSelfCheck (e.g. 2m) on the solver to skip the self-check (cert-manager v1.21)",
				"✓ solvers[0] propagation of split.example.com: a test TXT record written at _acme-challenge.split.example.com into example.com, then deleted, was visible at ns1.example.com ")
		})
		t.Run("propagation_record_invisible_at_one_nameserver", func(t *testing.T) {
			t.Parallel()
			const ns = "check-prop-stale"
			k.namespace(t, ns, true)
			k.apply(t, cloudflareIssuer(ns, localcluster.GroupName, "api-token", "stale.example.com"))
			flags := c.AuthoritativeNameserverFlags(map[string]string{"ns2.example.com": stale.Addr})
			k.expect(t, 1, append([]string{"issuer/cf", "-n", ns, "--write-test", "--propagation-timeout=3s"}, flags...),
				"✗ solvers[0] propagation of stale.example.com at ns2.example.com: the test TXT record written at _acme-challenge.stale.example.com into example.com was not visible at ns2.example.com (at "+stale.Addr+", from --authoritative-nameserver) within 3s: it answered NXDOMAIN, while other nameservers of the zone serve it: this one serves another copy of the zone, and the ACME server's resolvers may ask it and fail the challenge",
				"fix: repair the delegation: the zone's NS records, at its parent (the registrar or the parent zone) and in the zone itself, must list only nameservers that serve the zone the provider writes into; remove nameservers of a previous provider or secondaries that no longer transfer it",
				"✓ solvers[0] propagation of stale.example.com: a test TXT record written at _acme-challenge.stale.example.com into example.com, then deleted, was visible at ns1.example.com ")
		})
		t.Run("cloudflare_origin_issuer_all_pass", func(t *testing.T) {
			t.Parallel()
			const ns = "check-origin"
			k.namespace(t, ns, true)
			k.apply(t, localcluster.OriginIssuer(ns, "origin"))
			k.waitIssuerReady(t, "certbridge.io", "v1alpha1", "cloudflareoriginissuers", ns, "origin")
			k.expect(t, 0, []string{"cfoi/origin", "-n", ns},
				`✓ secret namespace: "check-origin": a CloudflareOriginIssuer reads Secrets from its own namespace`,
				`✓ spec.auth.tokenRef: Secret check-origin/cloudflare-api-token has the key "api-token"`,
				`✓ Cloudflare Origin CA: Cloudflare accepts the API token from Secret check-origin/cloudflare-api-token key "api-token" (spec.auth.tokenRef) (active)`,
				"✓ cert-manager may approve cloudflareoriginissuers.certbridge.io/*: ServiceAccount cert-manager/cert-manager",
				"✓ issuer may get Secret check-origin/cloudflare-api-token: the certbridge issuer's ServiceAccount certbridge/certbridge-issuer (the serviceAccountName of the certbridge issuer's Deployment certbridge/certbridge-issuer)",
				"✓ Ready: True (Checked)")
		})
		t.Run("alibaba_pca_issuers_all_pass", func(t *testing.T) {
			t.Parallel()
			const ns = "check-pca"
			k.namespace(t, ns, true)
			k.credentials(t, localcluster.CertManagerNamespace)
			k.apply(t, `
apiVersion: certbridge.io/v1alpha1
kind: AlibabaPCAIssuer
metadata: {name: pca, namespace: check-pca}
spec:
  caIdentifier: `+localcluster.PCASubCA+`
  auth:
    accessKeyIdSecretRef: {name: alidns-access-key, key: access-key-id}
    accessKeySecretSecretRef: {name: alidns-access-key, key: access-key-secret}
---
apiVersion: certbridge.io/v1alpha1
kind: ClusterAlibabaPCAIssuer
metadata: {name: check-mesh-ca}
spec:
  caIdentifier: `+localcluster.PCASubCA+`
  auth:
    accessKeyIdSecretRef: {name: alidns-access-key, key: access-key-id}
    accessKeySecretSecretRef: {name: alidns-access-key, key: access-key-secret}
`)
			k.waitIssuerReady(t, "certbridge.io", "v1alpha1", "alibabapcaissuers", ns, "pca")
			k.waitIssuerReady(t, "certbridge.io", "v1alpha1", "clusteralibabapcaissuers", "", "check-mesh-ca")
			k.expect(t, 0, []string{"AlibabaPCAIssuer/pca", "-n", ns},
				`✓ secret namespace: "check-pca": an AlibabaPCAIssuer reads Secrets from its own namespace`,
				`✓ spec.auth.accessKeyIdSecretRef: Secret check-pca/alidns-access-key has the key "access-key-id"`,
				"✓ Alibaba Cloud Private CA: CA "+localcluster.PCASubCA+" can issue with the credentials from Secret check-pca/alidns-access-key",
				"✓ cert-manager may approve alibabapcaissuers.certbridge.io/*",
				"✓ issuer may get Secret check-pca/alidns-access-key",
				"✓ Ready: True")
			k.expect(t, 0, []string{"capcai/check-mesh-ca"},
				`✓ secret namespace: "cert-manager": a ClusterAlibabaPCAIssuer reads Secrets from the certbridge issuer's cluster resource namespace (the --cluster-resource-namespace of the certbridge issuer's Deployment certbridge/certbridge-issuer`,
				"✓ Alibaba Cloud Private CA: CA "+localcluster.PCASubCA+" can issue with the credentials from Secret cert-manager/alidns-access-key",
				"✓ cert-manager may approve clusteralibabapcaissuers.certbridge.io/*")
		})
		t.Run("F19_origin_service_key", func(t *testing.T) {
			t.Parallel()
			const ns = "check-f19"
			k.namespace(t, ns, true)
			k.apply(t, `
apiVersion: certbridge.io/v1alpha1
kind: CloudflareOriginIssuer
metadata: {name: legacy, namespace: check-f19}
spec:
  auth: {serviceKeyRef: {name: cloudflare-api-token, key: api-token}}
`)
			k.expect(t, 1, []string{"cloudflareoriginissuers.certbridge.io/legacy", "-n", ns},
				"✗ spec.auth.serviceKeyRef: origin-ca: spec.auth.serviceKeyRef is an Origin CA service key, and those reached end of life on 2026-09-30",
				`fix: create an API token with Zone → SSL and Certificates → Edit, store it in a Secret in "check-f19" and set spec.auth.tokenRef`)
		})
		t.Run("F1_secret_in_another_namespace", func(t *testing.T) {
			t.Parallel()
			const ns, other = "check-f1", "check-f1-elsewhere"
			k.namespace(t, ns, false)
			k.namespace(t, other, true)
			k.apply(t, cloudflareIssuer(ns, localcluster.GroupName, "api-token", ""))
			k.expect(t, 1, []string{"issuer/cf", "-n", ns},
				`✓ secret namespace: "check-f1": an Issuer's solvers read Secrets from the Issuer's own namespace`,
				`✗ solvers[0] apiTokenSecretRef: Secret "cloudflare-api-token" (apiTokenSecretRef.name) not found in namespace "check-f1"; a Secret named "cloudflare-api-token" exists in `,
				`"check-f1-elsewhere"`,
				`fix: create the Secret in "check-f1", the namespace this issuer's Secrets are read from`)
		})
		t.Run("F2_key_missing", func(t *testing.T) {
			t.Parallel()
			const ns = "check-f2"
			k.namespace(t, ns, false)
			k.secret(t, ns, "cloudflare-api-token", "apiToken", c.CloudflareToken)
			k.apply(t, cloudflareIssuer(ns, localcluster.GroupName, "api-token", ""))
			k.expect(t, 1, []string{"issuer/cf", "-n", ns},
				`✗ solvers[0] apiTokenSecretRef: Secret check-f2/cloudflare-api-token has no key "api-token" (apiTokenSecretRef.key); it has the keys apiToken`,
				"fix: set apiTokenSecretRef.key to the key that holds the credential")
		})
		t.Run("F3_value_with_newline", func(t *testing.T) {
			t.Parallel()
			const ns = "check-f3"
			k.namespace(t, ns, false)
			k.secret(t, ns, "cloudflare-api-token", "api-token", c.CloudflareToken+"\n")
			k.apply(t, cloudflareIssuer(ns, localcluster.GroupName, "api-token", ""))
			k.expect(t, 1, []string{"issuer/cf", "-n", ns},
				`✗ solvers[0] apiTokenSecretRef: Secret check-f3/cloudflare-api-token key "api-token" has leading or trailing whitespace`,
				"fix: recreate the Secret without it: kubectl -n check-f3 create secret generic cloudflare-api-token --from-literal=api-token=<value>",
				"✓ solvers[0] token: active") // the trimmed value is still checked, as the webhook uses it
		})
		t.Run("F4_global_api_key_as_token", func(t *testing.T) {
			t.Parallel()
			const ns = "check-f4"
			k.namespace(t, ns, false)
			k.secret(t, ns, "cloudflare-api-token", "api-token", globalKey)
			k.apply(t, cloudflareIssuer(ns, localcluster.GroupName, "api-token", ""))
			k.expect(t, 1, []string{"issuer/cf", "-n", ns},
				`✗ solvers[0] Secret check-f4/cloudflare-api-token key "api-token" (apiTokenSecretRef): looks like a Global API Key, not an API token`,
				"fix: a Global API Key goes in apiKeySecretRef together with email")
		})
		t.Run("F5_token_without_zone_read", func(t *testing.T) {
			t.Parallel()
			const ns = "check-f5"
			k.namespace(t, ns, false)
			k.secret(t, ns, "cloudflare-api-token", "api-token", noZoneRead)
			k.apply(t, cloudflareIssuer(ns, localcluster.GroupName, "api-token", "www.example.com"))
			k.expect(t, 1, []string{"issuer/cf", "-n", ns},
				"✓ solvers[0] token: active",
				"✗ solvers[0] zone of www.example.com: no zone visible to this credential (tried www.example.com, example.com)",
				"fix: grant the token Zone → Zone → Read for the zone of www.example.com (or All zones)")
		})
		t.Run("F6_token_without_dns_edit_write_test", func(t *testing.T) {
			t.Parallel()
			const ns = "check-f6"
			k.namespace(t, ns, false)
			k.secret(t, ns, "cloudflare-api-token", "api-token", readOnly)
			k.apply(t, cloudflareIssuer(ns, localcluster.GroupName, "api-token", "www.example.com"))
			k.expect(t, 1, []string{"issuer/cf", "-n", ns, "--write-test"},
				"✓ solvers[0] zone of www.example.com: example.com",
				"✗ solvers[0] write test example.com: creating a TXT record failed (HTTP 403, code 10000",
				"fix: the token can see zone example.com but cannot edit its DNS records: grant Zone → DNS → Edit")
		})
		t.Run("F7_token_cloudflare_rejects", func(t *testing.T) {
			t.Parallel()
			const ns = "check-f7"
			k.namespace(t, ns, false)
			k.secret(t, ns, "cloudflare-api-token", "api-token", unknownToken)
			k.apply(t, cloudflareIssuer(ns, localcluster.GroupName, "api-token", ""))
			k.expect(t, 1, []string{"issuer/cf", "-n", ns},
				`✗ solvers[0] token: Cloudflare rejected the token from Secret check-f7/cloudflare-api-token key "api-token" (apiTokenSecretRef) (HTTP `,
				"code 1000",
				"fix: the token is revoked, expired, IP-restricted or mistyped: create a new API token and update the Secret")
		})
		t.Run("F13_access_key_without_alidns_actions", func(t *testing.T) {
			t.Parallel()
			const ns = "check-f13"
			k.namespace(t, ns, false)
			k.apply(t, fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: alidns-access-key, namespace: %s}
stringData: {access-key-id: %s, access-key-secret: %s}
`, ns, noDNSKeyID, noDNSKeyValue))
			k.apply(t, acmeIssuerYAML(ns, "ali", c.PebbleDirectory, `
    - selector: {dnsZones: [example.net]}
      dns01:
        webhook:
          groupName: `+localcluster.GroupName+`
          solverName: alidns
          config:
            accessKeyIdSecretRef: {name: alidns-access-key, key: access-key-id}
            accessKeySecretSecretRef: {name: alidns-access-key, key: access-key-secret}`))
			k.expect(t, 1, []string{"issuer/ali", "-n", ns},
				"✗ solvers[0] domain of example.net: refused (Forbidden.RAM: User not authorized",
				"fix: grant the RAM actions alidns:DescribeDomainInfo, alidns:AddDomainRecord, alidns:DescribeSubDomainRecords and alidns:DeleteDomainRecord")
		})
		t.Run("F22_cert_manager_service_account_not_bound", func(t *testing.T) {
			t.Parallel()
			const ns = "check-f22"
			k.namespace(t, ns, true)
			if _, err := c.Kubectl(ctx, nil, "-n", localcluster.CertManagerNamespace, "create", "serviceaccount", "cert-manager-controller"); err != nil {
				t.Fatal(err)
			}
			k.apply(t, cloudflareIssuer(ns, localcluster.GroupName, "api-token", ""))
			k.expect(t, 1, []string{"issuer/cf", "-n", ns, "--cert-manager-service-account=cert-manager/cert-manager-controller"},
				"✗ cert-manager may create cloudflare.acme.certbridge.io: ServiceAccount cert-manager/cert-manager-controller (from --cert-manager-service-account) may not create cloudflare in API group acme.certbridge.io",
				`User "system:serviceaccount:cert-manager:cert-manager-controller" cannot create resource "cloudflare" in API group "acme.certbridge.io" at the cluster scope`,
				"fix: if cert-manager runs as cert-manager/cert-manager-controller, tell the chart: helm upgrade certbridge ./charts/certbridge -n certbridge --reuse-values --set certManager.serviceAccountName=cert-manager-controller --set certManager.namespace=cert-manager")
		})
		t.Run("F23_group_name_not_served", func(t *testing.T) {
			t.Parallel()
			const ns = "check-f23"
			k.namespace(t, ns, true)
			k.apply(t, cloudflareIssuer(ns, "acme.example.org", "api-token", ""))
			k.expect(t, 1, []string{"issuer/cf", "-n", ns},
				`✗ APIService v1alpha1.acme.example.org: the Issuer's groupName "acme.example.org" is not served: there is no APIService v1alpha1.acme.example.org`,
				`so cert-manager's Challenges fail with: cloudflare.acme.example.org is forbidden: User "system:serviceaccount:cert-manager:cert-manager" cannot create resource "cloudflare" in API group "acme.example.org" at the cluster scope`,
				"the certbridge webhook serves acme.certbridge.io",
				"fix: set webhook.groupName: acme.certbridge.io in the Issuer (or install the chart with groupName=acme.example.org)")
		})
	})

	// F12 changes the chart's RBAC, so it runs alone, last, and restores it.
	t.Run("F12_webhook_may_not_read_secrets", func(t *testing.T) {
		const ns, other = "check-f12", "check-f12-other"
		k.namespace(t, ns, true)
		k.namespace(t, other, false)
		k.apply(t, cloudflareIssuer(ns, localcluster.GroupName, "api-token", ""))
		if err := c.InstallChart(ctx, "webhook.secretNamespaces={"+other+"}"); err != nil {
			t.Fatal(err)
		}
		// Applying the chart's objects does not prune: remove what helm
		// upgrade would, the ClusterRole and binding for every namespace.
		if _, err := c.Kubectl(ctx, nil, "delete", "clusterrolebinding,clusterrole", "certbridge-webhook:secret-reader"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := c.InstallChart(context.WithoutCancel(ctx)); err != nil {
				t.Errorf("restoring the chart: %v", err)
			}
		})
		k.expect(t, 1, []string{"issuer/cf", "-n", ns},
			`✗ webhook may get Secret check-f12/cloudflare-api-token: the webhook's ServiceAccount certbridge/certbridge-webhook (named like the Service of APIService v1alpha1.acme.certbridge.io, as the chart names it) may not get Secrets in namespace "check-f12"`,
			`fix: add "check-f12" to the chart value webhook.secretNamespaces`,
			`or bind a Role granting get on secrets in "check-f12" to certbridge/certbridge-webhook`)
	})
	t.Logf("check issuer: environment up in %s, checks in %s", started.Sub(began).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
}

type checkEnv struct {
	env
	// secrets are every credential value the output must not contain.
	secrets []string
	// command is the check run: "issuer" when empty, or "gateway".
	command string
}

// expect runs `certbridge check issuer args…` (or k.command) against the
// cluster and the simulators, and asserts its exit code, that stdout holds
// every want, and that no credential value nor private key is on stdout or
// stderr. It returns stdout.
func (k *checkEnv) expect(t *testing.T, code int, args []string, want ...string) string {
	t.Helper()
	c := k.c
	command := k.command
	if command == "" {
		command = "issuer"
	}
	full := append([]string{"check", command}, args...)
	full = append(full, "--kubeconfig="+c.AdminKubeconfig, "--cloudflare-api-url="+c.Cloudflare.URL(),
		"--alidns-endpoint=http://"+c.Alibaba.Endpoint(), "--alibaba-pca-endpoint=http://"+c.Alibaba.Endpoint(),
		"--alibaba-sts-endpoint="+c.Alibaba.STSEndpoint())
	ctx, cancel := context.WithTimeout(k.ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.binary, full...)
	cmd.Env = append([]string{"HOME=" + t.TempDir()}, c.TrustSTS()...) // no ambient kubeconfig or cloud credentials
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err := cmd.Run()
	got := 0
	if err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("certbridge %s: %v", strings.Join(args, " "), err)
		}
		got = exit.ExitCode()
	}
	out := stdout.String()
	t.Logf("certbridge check %s %s → exit %d in %s:\n%s%s", command, strings.Join(args, " "), got, time.Since(began).Round(time.Millisecond), out, stderr.String())
	if got != code {
		t.Errorf("exit code %d, want %d", got, code)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("stdout lacks %q", w)
		}
	}
	for _, s := range k.secrets {
		if s != "" && (strings.Contains(out, s) || strings.Contains(stderr.String(), s)) {
			t.Errorf("the output holds a credential value (%d characters)", len(s))
		}
	}
	if strings.Contains(out+stderr.String(), "PRIVATE KEY") {
		t.Errorf("the output holds a PEM private key")
	}
	if code != 0 && !strings.Contains(stderr.String(), "some checks failed") {
		t.Errorf("stderr lacks the failure summary: %q", stderr.String())
	}
	return out
}

// secret creates a Secret with one key holding value as given (whitespace kept).
func (k *checkEnv) secret(t *testing.T, namespace, name, key, value string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": name, "namespace": namespace}, "stringData": map[string]string{key: value}})
	k.apply(t, string(b))
}

// waitIssuerReady waits for an issuer's Ready condition to be True.
func (k *checkEnv) waitIssuerReady(t *testing.T, group, version, resource, namespace, name string) {
	t.Helper()
	ri := k.c.Dynamic.Resource(schema.GroupVersionResource{Group: group, Version: version, Resource: resource})
	deadline := time.Now().Add(time.Minute)
	for {
		var (
			u   *unstructured.Unstructured
			err error
		)
		if namespace == "" {
			u, err = ri.Get(k.ctx, name, metav1.GetOptions{})
		} else {
			u, err = ri.Namespace(namespace).Get(k.ctx, name, metav1.GetOptions{})
		}
		var conditions []any
		if err == nil {
			conditions, _, _ = unstructured.NestedSlice(u.Object, "status", "conditions")
		}
		for _, cond := range conditions {
			if m, _ := cond.(map[string]any); m["type"] == "Ready" && m["status"] == "True" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s/%s not Ready within a minute (err %v): %v", resource, namespace, name, err, conditions)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// acmeIssuerYAML is an ACME Issuer of Pebble's with the given solvers.
func acmeIssuerYAML(namespace, name, server, solvers string) string {
	return fmt.Sprintf(`
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: %s, namespace: %s}
spec:
  acme:
    server: %s
    skipTLSVerify: true
    privateKeySecretRef: {name: acme-account-%s}
    solvers:%s
`, name, namespace, server, name, solvers)
}

// cloudflareIssuer is an Issuer "cf" whose cloudflare solver reads
// cloudflare-api-token/<key>, in groupName, for dnsName (any when empty).
// Its ACME server is never reached: these checks do not need it.
func cloudflareIssuer(namespace, groupName, key, dnsName string) string {
	selector := ""
	if dnsName != "" {
		selector = "\n    - selector: {dnsNames: [" + dnsName + "]}\n      dns01:"
	} else {
		selector = "\n    - dns01:"
	}
	return acmeIssuerYAML(namespace, "cf", "https://127.0.0.1:9/directory", selector+`
        webhook:
          groupName: `+groupName+`
          solverName: cloudflare
          config: {apiTokenSecretRef: {name: cloudflare-api-token, key: `+key+`}}`)
}
