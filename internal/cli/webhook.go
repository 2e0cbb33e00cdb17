package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/cert-manager/cert-manager/pkg/acme/webhook"
	webhookserver "github.com/cert-manager/cert-manager/pkg/acme/webhook/cmd/server"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	restful "github.com/emicklei/go-restful/v3"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/internal/metrics"
	"github.com/certbridge/certbridge/internal/ratelimit"
	"github.com/certbridge/certbridge/solver"
)

type webhookFlags struct {
	groupName          string
	batchWindow        time.Duration
	batchMax           int
	cloudflareAPIURL   string
	aliDNSEndpoint     string
	alibabaSTSEndpoint string
	oidcProviderARN    string
	metricsAddress     string
	timeout            time.Duration
	cloudflareQuota    limitFlag
	peers              peerFlags
}

// limitFlag is a ratelimit.Limit flag, written requests/window.
type limitFlag struct{ ratelimit.Limit }

func (f *limitFlag) Set(s string) (err error) { f.Limit, err = ratelimit.ParseLimit(s); return err }
func (f *limitFlag) Type() string             { return "requests/window" }

func (f *webhookFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.groupName, "group-name", os.Getenv("GROUP_NAME"),
		"API group the solvers are served under, which Issuers name as webhook.groupName; required (default: $GROUP_NAME)")
	fs.StringVar(&f.cloudflareAPIURL, "cloudflare-api-url", cloudflare.ProductionURL,
		"Cloudflare API base URL: the only way to point the cloudflare solver elsewhere, for an Issuer's config cannot")
	fs.StringVar(&f.aliDNSEndpoint, "alidns-endpoint", "",
		"Alibaba Cloud DNS endpoint replacing the regional one, for private endpoints: host[:port] is HTTPS, or give an http:// or https:// URL; anything else is refused at start, naming the flag. The only way to point the alidns solver elsewhere, for an Issuer's config cannot (default: the solver's regionId endpoint)")
	fs.StringVar(&f.alibabaSTSEndpoint, "alibaba-sts-endpoint", alibaba.STSHost,
		"Alibaba Cloud STS endpoint (HTTPS) for RRSA, roleArn and serviceAccountRef")
	fs.StringVar(&f.oidcProviderARN, "alibaba-oidc-provider-arn", "",
		"the cluster's RRSA OIDC provider in RAM (acs:ram::<account id>:oidc-provider/ack-rrsa-<cluster id>), through which the alidns solver's serviceAccountRef tokens are exchanged for roles (chart: alibaba.oidcProviderARN); empty: a serviceAccountRef is refused, naming the value")
	fs.StringVar(&f.metricsAddress, "metrics-bind-address", ":9402",
		"address of the Prometheus /metrics endpoint (plain HTTP; empty or 0 disables it)")
	fs.DurationVar(&f.batchWindow, "cloudflare-batch-window", cloudflare.DefaultBatchWindow,
		"while a zone is busy, how long a Cloudflare write waits for others to share its batch call (a write to an idle zone goes out at once)")
	fs.IntVar(&f.batchMax, "cloudflare-batch-max", cloudflare.MaxBatch,
		"record changes one Cloudflare batch call carries at most (200 on Free zones; 1 turns batching off)")
	fs.DurationVar(&f.timeout, "solver-timeout", solver.DefaultTimeout,
		"upper bound of one Present or CleanUp, rate-limit waits and retries included")
	if f.cloudflareQuota.Limit.Limit == 0 {
		f.cloudflareQuota.Limit = cloudflare.DocumentedLimit
	}
	fs.Var(&f.cloudflareQuota, "cloudflare-quota",
		"the Cloudflare user's request quota each credential's budget keeps to, requests/window (a plan with a raised limit); Cloudflare's own count, when its answers carry it, is followed too")
	f.peers.add(fs)
}

// newWebhookCommand mounts cert-manager's webhook server command. The group
// name must be known before that command is built, so certbridge's own flags
// are read first and the whole command line is then handed to it.
func newWebhookCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "webhook",
		Short:              "Serve cert-manager's DNS01 webhook API with the cloudflare and alidns solvers",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			var f webhookFlags
			pre := pflag.NewFlagSet("webhook", pflag.ContinueOnError)
			pre.ParseErrorsAllowlist.UnknownFlags = true
			pre.SetOutput(cmd.ErrOrStderr())
			help := pre.BoolP("help", "h", false, "")
			f.add(pre)
			f.peers.addServing(pre)
			if err := pre.Parse(args); err != nil {
				return err
			}
			if f.groupName == "" && !*help {
				return errors.New("no API group name: set --group-name or GROUP_NAME to the groupName your Issuers use in their webhook solver (for example acme.example.com)")
			}
			log := klog.Background().WithName("certbridge")
			if f.metricsAddress != "" && f.metricsAddress != "0" {
				if err := serveMetrics(cmd.Context(), f.metricsAddress); err != nil {
					return err
				}
			}
			dnsEndpoint, err := alibaba.ParseEndpoint("--alidns-endpoint", f.aliDNSEndpoint)
			if err != nil {
				return err
			}
			stsEndpoint, err := alibaba.ParseEndpoint("--alibaba-sts-endpoint", f.alibabaSTSEndpoint)
			if err != nil {
				return err
			}
			if err := alibaba.CheckOIDCProviderARN("--alibaba-oidc-provider-arn", f.oidcProviderARN); err != nil {
				return err
			}
			peering, err := f.peers.setUp()
			if err != nil {
				return err
			}
			opts := solver.Options{Log: log, Timeout: f.timeout, Peers: peering.forwarderOrNil()}
			solvers := []*solver.Solver{
				solver.NewCloudflare(opts, cloudflare.Options{BaseURL: f.cloudflareAPIURL, Limit: f.cloudflareQuota.Limit,
					Batch: cloudflare.BatchOptions{Window: f.batchWindow, Max: f.batchMax}}),
				solver.NewAliDNS(opts, alibaba.Options{DNS: dnsEndpoint, STS: stsEndpoint, OIDCProviderARN: f.oidcProviderARN}),
			}
			var onStart func(context.Context, *rest.Config) error
			var checks []healthz.HealthChecker
			if peering != nil && !*help {
				onStart = func(ctx context.Context, cfg *rest.Config) error {
					return peering.start(ctx, cfg, log.WithName("peers"), solvers...)
				}
				checks = append(checks, peering.ready())
			}
			server := newSolverServerCommand(f.groupName, onStart, checks, solvers[0], solvers[1])
			server.Short = cmd.Short
			f.add(server.Flags())
			server.SetArgs(args)
			server.SetOut(cmd.OutOrStdout())
			server.SetErr(cmd.ErrOrStderr())
			server.SilenceUsage = true
			return server.ExecuteContext(cmd.Context())
		},
	}
}

// newSolverServerCommand is cert-manager's webhook server command
// (server.NewCommandStartWebhookServer) serving newChallengeServer, with
// onStart run once the server's client configuration exists, and more
// readiness checks.
func newSolverServerCommand(groupName string, onStart func(context.Context, *rest.Config) error, ready []healthz.HealthChecker, solvers ...webhook.Solver) *cobra.Command {
	o := webhookserver.NewWebhookServerOptions(groupName, solvers...)
	cmd := &cobra.Command{
		Use:  "webhook",
		Long: "Serve cert-manager's DNS01 webhook API. Issuers reference it with solvers[].dns01.webhook {groupName: <--group-name>, solverName: cloudflare or alidns, config: {...}}.",
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.Validate(args); err != nil {
				return err
			}
			config, err := o.Config()
			if err != nil {
				return err
			}
			config.GenericConfig.AddReadyzChecks(ready...)
			server, err := newChallengeServer(config)
			if err != nil {
				return err
			}
			if onStart != nil {
				cfg := config.GenericConfig.ClientConfig
				server.AddPostStartHookOrDie("certbridge-peers", func(ctx genericapiserver.PostStartHookContext) error {
					return onStart(ctx, cfg)
				})
			}
			return server.PrepareRun().RunWithContext(c.Context())
		},
	}
	logf.AddFlags(o.Logging, cmd.Flags())
	o.RecommendedOptions.AddFlags(cmd.Flags())
	return cmd
}

// caLoaded is a readiness check that fails until provider holds a CA. The
// CA that verifies kube-apiserver's front-proxy certificate comes from the
// extension-apiserver-authentication ConfigMap through an informer that
// syncs only after the server listens, and the generic API server's /readyz
// does not wait for it: until it syncs, every request the aggregator
// forwards is anonymous (403) or fails to verify (401), so a pod reported
// ready would refuse cert-manager's Presents and CleanUps.
func caLoaded(name string, provider dynamiccertificates.CAContentProvider) healthz.HealthChecker {
	return healthz.NamedCheck(name, func(*http.Request) error {
		if _, ok := provider.VerifyOptions(); !ok {
			return fmt.Errorf("%s not loaded yet", provider.Name())
		}
		return nil
	})
}

// operationIDPerResource suffixes an operation ID with the resource (the
// solver name) its route serves.
func operationIDPerResource(next func(*restful.Route) (string, []string, error)) func(*restful.Route) (string, []string, error) {
	return func(r *restful.Route) (string, []string, error) {
		id, tags, err := next(r)
		if err != nil {
			return id, tags, err
		}
		resource := r.Path[strings.LastIndex(r.Path, "/")+1:]
		if resource == "" || strings.HasPrefix(resource, "{") {
			return id, tags, nil
		}
		return id + strings.ToUpper(resource[:1]) + resource[1:], tags, nil
	}
}

// serveMetrics serves the solver metrics, with Go and process collectors, on
// address until ctx ends.
func serveMetrics(ctx context.Context, address string) error {
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := metrics.Register(registry); err != nil {
		return err
	}
	l, err := net.Listen("tcp", address)
	if err != nil {
		return fmt.Errorf("--metrics-bind-address: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return nil
}
