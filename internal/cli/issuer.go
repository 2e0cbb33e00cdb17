package cli

import (
	"fmt"
	"os"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/certbridge/certbridge/internal/alibaba"
	"github.com/certbridge/certbridge/internal/cloudflare"
	"github.com/certbridge/certbridge/issuer"
	api "github.com/certbridge/certbridge/issuer/api/v1alpha1"
)

func newIssuerCommand() *cobra.Command {
	var (
		o                        issuer.Options
		leaderElect              bool
		leaderElectionNamespace  string
		metricsAddr, probeAddr   string
		eccRootFile              string
		pcaEndpoint, stsEndpoint string
	)
	cmd := &cobra.Command{
		Use:   "issuer",
		Short: "Run the external issuer controllers: Cloudflare Origin CA and Alibaba Cloud Private CA",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(klog.Background())
			var err error
			if o.Alibaba.PCA, err = alibaba.ParseEndpoint("--alibaba-pca-endpoint", pcaEndpoint); err != nil {
				return err
			}
			if o.Alibaba.STS, err = alibaba.ParseEndpoint("--alibaba-sts-endpoint", stsEndpoint); err != nil {
				return err
			}
			if err := alibaba.CheckOIDCProviderARN("--alibaba-oidc-provider-arn", o.Alibaba.OIDCProviderARN); err != nil {
				return err
			}
			o.OriginCA.Roots = issuer.DefaultOriginRoots()
			if eccRootFile != "" {
				pemBytes, err := os.ReadFile(eccRootFile)
				if err != nil {
					return fmt.Errorf("--origin-ca-ecc-root: %w", err)
				}
				o.OriginCA.Roots[issuer.OriginECC] = pemBytes
			}
			scheme := runtime.NewScheme()
			for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, api.AddToScheme} {
				if err := add(scheme); err != nil {
					return err
				}
			}
			mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
				Scheme:                  scheme,
				LeaderElection:          leaderElect,
				LeaderElectionID:        "certbridge-issuer.certbridge.io",
				LeaderElectionNamespace: leaderElectionNamespace,
				// A leader that stops (its pod deleted, a rollout) gives the
				// Lease up, so its successor signs at once instead of after the
				// Lease's 15 s. Safe: the process exits when the manager stops.
				LeaderElectionReleaseOnCancel: true,
				Metrics:                       metricsserver.Options{BindAddress: metricsAddr},
				HealthProbeBindAddress:        probeAddr,
				// issuer-lib v0.11.0 hands its ControllerOptions to the issuer
				// reconcilers only; the request reconcilers take the manager's.
				Controller: config.Controller{MaxConcurrentReconciles: o.MaxConcurrentSigns},
			})
			if err != nil {
				return err
			}
			if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
				return err
			}
			if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
				return err
			}
			if err := issuer.SetupWithManager(cmd.Context(), mgr, o); err != nil {
				return err
			}
			return mgr.Start(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ClusterResourceNamespace, "cluster-resource-namespace", "cert-manager", "namespace of the cluster kinds' Secrets")
	f.DurationVar(&o.MaxRetryDuration, "max-retry-duration", 2*time.Minute, "how long transient CA errors (5xx, Cloudflare 1100/1201, throttling) are retried before a request fails")
	f.BoolVar(&o.AllowAmbientCredentials, "allow-ambient-credentials", true, "let the cluster kinds use the controller's own Alibaba Cloud identity (RRSA, ECS RAM role) when they name no Secret")
	f.StringVar(&o.OriginCA.BaseURL, "cloudflare-api-url", cloudflare.ProductionURL, "Cloudflare API base URL, for operators: an issuer's spec cannot point elsewhere")
	f.StringVar(&eccRootFile, "origin-ca-ecc-root", "", "PEM file replacing the embedded Cloudflare Origin CA ECC root (developers.cloudflare.com/ssl/static/origin_ca_ecc_root.pem), reported as status.ca of ECC certificates, should Cloudflare re-issue it")
	f.StringVar(&pcaEndpoint, "alibaba-pca-endpoint", "", "replaces "+alibaba.PCAHost+" (host[:port] is HTTPS; or an http:// or https:// URL)")
	f.StringVar(&stsEndpoint, "alibaba-sts-endpoint", alibaba.STSHost, "Alibaba Cloud STS endpoint (HTTPS) for RRSA, roleArn and serviceAccountRef")
	f.StringVar(&o.Alibaba.OIDCProviderARN, "alibaba-oidc-provider-arn", "", "the cluster's RRSA OIDC provider in RAM (acs:ram::<account id>:oidc-provider/ack-rrsa-<cluster id>), through which a Private CA issuer's serviceAccountRef tokens are exchanged for its role")
	f.IntVar(&o.MaxConcurrentSigns, "max-concurrent-signs", 8, "requests each issuer kind signs at once (one worker signs at most 10 per second from a CA answering in 100 ms; see BENCHMARKS.md); a CA's throttling answers are retried within --max-retry-duration")
	f.BoolVar(&leaderElect, "leader-elect", true, "elect a leader, so that only one replica signs")
	f.StringVar(&leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's)")
	f.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	f.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
	return cmd
}
