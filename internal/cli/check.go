package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	cmclient "github.com/cert-manager/cert-manager/pkg/client/clientset/versioned"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/certbridge/certbridge/check"
	"github.com/certbridge/certbridge/internal/alibaba"
)

func newCheckCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Tell why a credential, an issuer or the certificate of a gateway does not work",
	}
	creds := &cobra.Command{
		Use:   "credentials",
		Short: "Check cloud credentials taken from environment variables; no cluster needed",
	}
	var output string
	report := func(cmd *cobra.Command, r check.Report) error {
		var err error
		switch output {
		case "json":
			err = r.WriteJSON(cmd.OutOrStdout())
		case "", "text":
			err = r.WriteText(cmd.OutOrStdout())
		default:
			return fmt.Errorf("-o %s: use text or json", output)
		}
		if err != nil {
			return err
		}
		if !r.Passed() {
			return errors.New("some checks failed; each ✗ line says what to change")
		}
		return nil
	}
	var cf check.CloudflareOptions
	cloudflare := &cobra.Command{
		Use:   "cloudflare",
		Short: "Check CLOUDFLARE_API_TOKEN (or CLOUDFLARE_API_KEY with CLOUDFLARE_EMAIL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return report(cmd, check.CloudflareCredentials(cmd.Context(), os.Getenv, cf))
		},
	}
	cloudflare.Flags().StringSliceVar(&cf.Zones, "zone", nil, "zones the credential must see (repeatable)")
	cloudflare.Flags().BoolVar(&cf.WriteTest, "write-test", false, "also create and delete a uniquely named TXT record in each zone (without --zone: in the first zone the credential sees)")
	cloudflare.Flags().StringVar(&cf.BaseURL, "cloudflare-api-url", "", "Cloudflare API base URL (default production)")
	var (
		ali                     check.AliDNSOptions
		serviceAccount          string
		audience                string
		kubeconfig, kubeContext string
	)
	alidns := &cobra.Command{
		Use:   "alidns",
		Short: "Check ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (+ ALIBABA_CLOUD_SECURITY_TOKEN), or a ServiceAccount's role (--service-account)",
		Long: `Check an AccessKey from ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (with
ALIBABA_CLOUD_SECURITY_TOKEN for STS credentials) with the alidns solver's client: that Alibaba Cloud
accepts it, and that each --domain is in its account.

With --service-account <namespace>/<name> and --role-arn, it checks a serviceAccountRef instead: a token
of that ServiceAccount requested from the cluster (as you, through the kubeconfig) and its exchange for
the role through --alibaba-oidc-provider-arn, each on its own line, then the role's domains.`,
		Example: `  certbridge check credentials alidns --domain example.com
  certbridge check credentials alidns --service-account tenant-a/dns --role-arn acs:ram::1234567890123456:role/tenant-a-dns \
      --alibaba-oidc-provider-arn acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0123456789 --domain example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if serviceAccount != "" {
				if err := serviceAccountOptions(&ali, serviceAccount, audience, kubeconfig, kubeContext); err != nil {
					return err
				}
			}
			return report(cmd, check.AliDNSCredentials(cmd.Context(), os.Getenv, ali))
		},
	}
	alidns.Flags().StringVar(&serviceAccount, "service-account", "", "check a serviceAccountRef: the ServiceAccount as <namespace>/<name>, whose token is requested as you and exchanged for --role-arn")
	alidns.Flags().StringVar(&ali.RoleARN, "role-arn", "", "with --service-account: the serviceAccountRef's roleArn")
	alidns.Flags().StringVar(&audience, "audience", "", "with --service-account: the serviceAccountRef's audience (default "+alibaba.DefaultAudience+")")
	alidns.Flags().StringVar(&ali.OIDCProviderARN, "alibaba-oidc-provider-arn", "", "with --service-account: the cluster's RRSA OIDC provider, as given to the webhook")
	alidns.Flags().StringVar(&ali.STSEndpoint, "alibaba-sts-endpoint", "", "Alibaba Cloud STS endpoint (default "+alibaba.STSHost+")")
	alidns.Flags().StringVar(&kubeconfig, "kubeconfig", "", "with --service-account: path to the kubeconfig file (default: KUBECONFIG, then ~/.kube/config)")
	alidns.Flags().StringVar(&kubeContext, "context", "", "with --service-account: kubeconfig context to use (default: the current context)")
	alidns.Flags().StringSliceVar(&ali.Domains, "domain", nil, "domains that must be in the account (repeatable)")
	alidns.Flags().BoolVar(&ali.WriteTest, "write-test", false, "also add and delete a uniquely named TXT record in each domain (without --domain: in the first domain of the account)")
	alidns.Flags().StringVar(&ali.Endpoint, "alidns-endpoint", "", "Alibaba Cloud DNS endpoint (default "+alibaba.DNSHost+"; host[:port] is HTTPS)")
	cmd.PersistentFlags().StringVarP(&output, "output", "o", "text", "text or json")
	creds.AddCommand(cloudflare, alidns)
	cmd.AddCommand(creds, newCheckIssuerCommand(report), newCheckGatewayCommand(report))
	return cmd
}

// serviceAccountOptions sets up check credentials alidns for a
// serviceAccountRef: the ServiceAccount, and a client to request its token
// with, from the kubeconfig as kubectl finds it.
func serviceAccountOptions(o *check.AliDNSOptions, ref, audience, kubeconfig, kubeContext string) error {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("--service-account %q: give the ServiceAccount as <namespace>/<name>", ref)
	}
	if o.RoleARN == "" {
		return errors.New("--service-account needs --role-arn: the role its tokens are exchanged for (the serviceAccountRef's roleArn)")
	}
	if err := alibaba.CheckOIDCProviderARN("--alibaba-oidc-provider-arn", o.OIDCProviderARN); err != nil {
		return err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.Timeout = 30 * time.Second
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	o.ServiceAccount = &alibaba.ServiceAccount{Namespace: ns, Name: name, Audience: audience, Tokens: alibaba.KubeTokens(kube)}
	o.Requester = "you"
	return nil
}

func newCheckIssuerCommand(report func(*cobra.Command, check.Report) error) *cobra.Command {
	var (
		o                               check.IssuerOptions
		kubeconfig, kubeContext, nsFlag string
	)
	cmd := &cobra.Command{
		Use:   "issuer <kind>/<name>",
		Short: "Check an Issuer or ClusterIssuer with certbridge solvers, or a certbridge.io issuer, in the cluster",
		Long: `Check an issuer as cert-manager, the certbridge webhook and the certbridge issuer will use it:
where its Secrets are read from and whether they hold the referenced keys, whether the provider
accepts the credentials and they reach the zones of the solver's selector, whether the API group
the Issuer names is served (APIService), whether cert-manager may create challenge payloads or
approve requests and the webhook or issuer may read the Secrets (SubjectAccessReviews), and the
issuer's Ready condition. Every ✗ line has its fix; the exit code is 0 only when all passed.

Kinds: issuer (iss), clusterissuer (ciss), cloudflareoriginissuer (cfoi),
clustercloudflareoriginissuer (ccfoi), alibabapcaissuer (apcai), clusteralibabapcaissuer (capcai);
plural and <kind>.<group> forms work too, in any case.

The cluster is reached as kubectl does (KUBECONFIG, ~/.kube/config, --kubeconfig, --context).
The check reads the referenced Secrets with your credentials and never prints their values.`,
		Example: `  certbridge check issuer issuer/letsencrypt -n default
  certbridge check issuer clusterissuer/letsencrypt --write-test -o json
  certbridge check issuer cfoi/origin -n istio-system`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, name, err := check.ParseIssuerRef(args[0])
			if err != nil {
				return err
			}
			if err := alibaba.CheckOIDCProviderARN("--alibaba-oidc-provider-arn", o.AlibabaOIDCProviderARN); err != nil {
				return err
			}
			if err := connect(&o, kubeconfig, kubeContext, nsFlag); err != nil {
				return err
			}
			return report(cmd, check.Issuer(cmd.Context(), o, kind, name))
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&kubeContext, "context", "", "kubeconfig context to use (default: the current context)")
	f.StringVarP(&nsFlag, "namespace", "n", "", "namespace of a namespaced issuer (default: the context's namespace)")
	issuerFlags(f, &o)
	return cmd
}

// connect fills o's clients from the kubeconfig as kubectl finds it, and
// its namespace from -n or the context.
func connect(o *check.IssuerOptions, kubeconfig, kubeContext, namespace string) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext})
	cfg, err := loader.ClientConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.Timeout = 30 * time.Second
	o.Namespace = namespace
	if o.Namespace == "" {
		if o.Namespace, _, err = loader.Namespace(); err != nil {
			return fmt.Errorf("kubeconfig: %w", err)
		}
	}
	if o.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if o.CertManager, err = cmclient.NewForConfig(cfg); err != nil {
		return err
	}
	if o.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	if o.Aggregator, err = aggregator.NewForConfig(cfg); err != nil {
		return err
	}
	o.Metadata, err = metadata.NewForConfig(cfg)
	return err
}

// issuerFlags are check issuer's flags; check gateway --issuer takes them too.
func issuerFlags(f *pflag.FlagSet, o *check.IssuerOptions) {
	f.StringVar(&o.ClusterResourceNamespace, "cluster-resource-namespace", "",
		"where the cluster kinds' Secrets live (default: the --cluster-resource-namespace of cert-manager's or the certbridge issuer's Deployment, else cert-manager)")
	f.StringVar(&o.CertManagerNamespace, "cert-manager-namespace", "cert-manager", "namespace of cert-manager's controller Deployment")
	f.StringVar(&o.CertManagerServiceAccount, "cert-manager-service-account", "",
		"cert-manager's ServiceAccount as <namespace>/<name> (default: its controller Deployment's, else cert-manager/cert-manager)")
	f.StringVar(&o.WebhookServiceAccount, "webhook-service-account", "",
		"the webhook's ServiceAccount as <namespace>/<name> (default: named like the Service of the Issuer's APIService)")
	f.StringVar(&o.IssuerServiceAccount, "issuer-service-account", "",
		"the certbridge issuer's ServiceAccount as <namespace>/<name> (default: its Deployment's, else <webhook namespace>/<prefix>-issuer, else cert-manager/certbridge-issuer)")
	f.BoolVar(&o.WriteTest, "write-test", false, "also create and delete a uniquely named TXT record in each zone a solver's credential reaches; implies --propagation, "+
		"and writes a test record where each name's record goes, watching it show at every nameserver")
	f.BoolVar(&o.Propagation, "propagation", false, "resolve _acme-challenge.<name> for each name of a solver's selector as cert-manager's controller does: "+
		"the CNAME chain and cnameStrategy, the zone the record must go to and the webhook's, the zone's authoritative nameservers")
	f.StringSliceVar(&o.RecursiveNameservers, "dns01-recursive-nameservers", nil,
		"cert-manager's --dns01-recursive-nameservers (host:port or https:// DoH) (default: its controller Deployment's, else its --config file's, else this machine's resolvers)")
	f.Var(optionalBool{&o.RecursiveNameserversOnly}, "dns01-recursive-nameservers-only",
		"cert-manager's --dns01-recursive-nameservers-only (default: its controller Deployment's, else its --config file's, else false)")
	f.Lookup("dns01-recursive-nameservers-only").NoOptDefVal = "true"
	f.StringToStringVar(&o.NameserverAddresses, "authoritative-nameserver", nil,
		"<NS name>=<host:port>: ask that authoritative nameserver there instead of at its name's address on port 53 (repeatable), e.g. where it is reachable only through a tunnel")
	f.DurationVar(&o.PropagationTimeout, "propagation-timeout", check.DefaultPropagationTimeout,
		"with --write-test, how long the test record may take to show at every nameserver")
	f.StringVar(&o.CloudflareAPIURL, "cloudflare-api-url", "", "Cloudflare API base URL (default production)")
	f.StringVar(&o.AliDNSEndpoint, "alidns-endpoint", "", "Alibaba Cloud DNS endpoint (default: the solver's regionId endpoint)")
	f.StringVar(&o.AlibabaPCAEndpoint, "alibaba-pca-endpoint", "", "Alibaba Cloud Private CA endpoint (default "+alibaba.PCAHost+")")
	f.StringVar(&o.AlibabaSTSEndpoint, "alibaba-sts-endpoint", "", "Alibaba Cloud STS endpoint for roleArn and serviceAccountRef (default "+alibaba.STSHost+")")
	f.StringVar(&o.AlibabaOIDCProviderARN, "alibaba-oidc-provider-arn", "",
		"the cluster's RRSA OIDC provider for serviceAccountRef (default: the --alibaba-oidc-provider-arn of the certbridge webhook's or issuer's Deployment)")
}

func newCheckGatewayCommand(report func(*cobra.Command, check.Report) error) *cobra.Command {
	var (
		o                                        check.GatewayOptions
		kubeconfig, kubeContext, nsFlag, kindArg string
	)
	cmd := &cobra.Command{
		Use:   "gateway <name>",
		Short: "Check that an Istio or Gateway API Gateway can serve its certificates",
		Long: `Check the last step of a certificate's way, the gateway. For each TLS listener of a Gateway API
Gateway, or server of an Istio Gateway, it reports:

- where the gateway reads the Secret, and why: the Gateway's namespace, another one with a
  ReferenceGrant (Gateway API), or the namespace of the pods the selector matches (Istio); when the
  Secret is not there, which namespaces hold a Secret of that name;
- the Secret's keys for the TLS mode (MUTUAL and OPTIONAL_MUTUAL also need the client CA: ca.crt,
  cacert, or a Secret <credentialName>-cacert), that the key matches the certificate and the chain
  parses in order;
- that the certificate covers every host of the listener or server and is valid now;
- the cert-manager Certificate that writes the Secret, its Ready condition and issuer, and for a
  Gateway API Gateway with the cert-manager.io/issuer annotation whether cert-manager's gateway-shim
  acts (Gateway API support enabled in its controller Deployment, listener hostname set).

With --issuer it goes on to check each issuer those Certificates use, as check issuer does. Every ✗
line has its fix; the exit code is 0 only when all passed. The Secrets are read with your
credentials and their values are never printed.`,
		Example: `  certbridge check gateway bookinfo-gateway -n bookinfo
  certbridge check gateway mtls-gateway -n bookinfo --kind networking.istio.io --issuer
  certbridge check gateway bookinfo-gateway -n bookinfo -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind, err := check.ParseGatewayKind(kindArg)
			if err != nil {
				return err
			}
			o.Kind = kind
			if err := connect(&o.IssuerOptions, kubeconfig, kubeContext, nsFlag); err != nil {
				return err
			}
			return report(cmd, check.Gateway(cmd.Context(), o, args[0]))
		},
	}
	f := cmd.Flags()
	f.StringVar(&kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&kubeContext, "context", "", "kubeconfig context to use (default: the current context)")
	f.StringVarP(&nsFlag, "namespace", "n", "", "namespace of the Gateway (default: the context's namespace)")
	f.StringVar(&kindArg, "kind", "", "gateway.networking.k8s.io (Gateway API) or networking.istio.io (Istio) (default: whichever Gateway of that name exists, Gateway API's first)")
	f.BoolVar(&o.ChainIssuer, "issuer", false, "also check the issuer of each Certificate that writes the gateway's Secrets, as check issuer does")
	issuerFlags(f, &o.IssuerOptions)
	return cmd
}

// optionalBool is a bool flag that stays nil unless given, so a default
// read from the cluster applies when it is not.
type optionalBool struct{ p **bool }

func (b optionalBool) String() string {
	if b.p == nil || *b.p == nil {
		return ""
	}
	return strconv.FormatBool(**b.p)
}

func (b optionalBool) Set(v string) error {
	parsed, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	*b.p = &parsed
	return nil
}

func (optionalBool) Type() string { return "bool" }
