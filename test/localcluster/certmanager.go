package localcluster

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	"github.com/cert-manager/cert-manager/pkg/controller/cainjector"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	// The controllers cert-manager's controller binary registers, and the
	// issuer types they need: ACME for the webhook solvers, self-signed and
	// CA for the chart's own PKI.
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmechallenges"
	_ "github.com/cert-manager/cert-manager/pkg/controller/acmeorders"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificate-shim/gateways"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/acme"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/acme"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// certManagerControllers are the controllers run in-process, by the names
// cert-manager registers them under.
var certManagerControllers = []string{
	"issuers", "clusterissuers",
	"certificates-trigger", "certificates-issuing", "certificates-key-manager", "certificates-request-manager",
	"certificates-readiness", "certificates-revision-manager",
	"certificaterequests-approver", "certificaterequests-issuer-acme", "certificaterequests-issuer-selfsigned",
	"certificaterequests-issuer-ca",
	"orders", "challenges", "gateway-shim",
}

type certManager struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func (m *certManager) stop() {
	m.cancel()
	m.done.Wait()
}

var (
	klogOnce sync.Once
	klogMu   sync.Mutex
	// klogPath is the file in-process klog output goes to: the log
	// directory of the cluster started last.
	klogPath string
)

// logToFile sends in-process klog output (cert-manager's controllers,
// cainjector) to the run's log directory, where the secret scan reads it.
// klog is process-wide: a cluster started after another in the same process
// (two tests) takes the output over, so each scan reads its own cluster's log.
func (c *Cluster) logToFile() error {
	klogOnce.Do(func() {
		fs := flag.NewFlagSet("klog", flag.ContinueOnError)
		klog.InitFlags(fs)
		_ = fs.Set("logtostderr", "false")
		_ = fs.Set("alsologtostderr", "false")
		_ = fs.Set("stderrthreshold", "FATAL")
		_ = fs.Set("v", "2")
		ctrl.SetLogger(klog.Background())
	})
	path := filepath.Join(c.LogDir, "cert-manager.log")
	klogMu.Lock()
	defer klogMu.Unlock()
	if klogPath == path {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	klog.SetOutput(f)
	klogPath = path
	return nil
}

// StartCertManager runs cert-manager's controllers in this process as
// ServiceAccount cert-manager/<serviceAccount>, with only the RBAC its chart
// grants; a running instance is stopped first.
func (c *Cluster) StartCertManager(ctx context.Context, serviceAccount string) error {
	if err := c.logToFile(); err != nil {
		return err
	}
	if c.certManager != nil {
		c.certManager.stop()
		c.certManager = nil
	}
	kubeconfig, err := c.ServiceAccountKubeconfig(ctx, CertManagerNamespace, serviceAccount)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(logf.NewContext(context.WithoutCancel(ctx), klog.Background().WithName("cert-manager")))
	m := &certManager{cancel: cancel}
	factory, err := controllerpkg.NewContextFactory(runCtx, controllerpkg.ContextOptions{
		Kubeconfig:    kubeconfig,
		IssuerOptions: controllerpkg.IssuerOptions{ClusterResourceNamespace: CertManagerNamespace},
		ACMEOptions: controllerpkg.ACMEOptions{
			DNS01Nameservers:        []string{c.DNS.Addr},
			DNS01CheckAuthoritative: false,
			DNS01CheckRetryPeriod:   time.Second,
		},
		SchedulerOptions: controllerpkg.SchedulerOptions{MaxConcurrentChallenges: 60},
		CertificateOptions: controllerpkg.CertificateOptions{
			CertificateRequestMinimumBackoffDuration: time.Second,
			CertificateRequestMaximumBackoffDuration: 30 * time.Second,
		},
		ConfigOptions: controllerpkg.ConfigOptions{EnableGatewayAPI: true},
	})
	if err != nil {
		cancel()
		return fmt.Errorf("cert-manager: %w", err)
	}
	var run []controllerpkg.Interface
	for _, name := range certManagerControllers {
		constructor, ok := controllerpkg.Known()[name]
		if !ok {
			cancel()
			return fmt.Errorf("cert-manager has no controller %q registered", name)
		}
		iface, err := constructor(factory)
		if err != nil {
			cancel()
			return fmt.Errorf("cert-manager controller %s: %w", name, err)
		}
		run = append(run, iface)
	}
	for _, iface := range run {
		m.done.Add(1)
		go func() {
			defer m.done.Done()
			_ = iface.Run(5, runCtx)
		}()
	}
	// Informers start once every controller has registered its own.
	shared, err := factory.Build()
	if err != nil {
		cancel()
		return err
	}
	shared.SharedInformerFactory.Start(runCtx.Done())
	shared.KubeSharedInformerFactory.Start(runCtx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(runCtx.Done())
	if shared.GatewaySolverEnabled {
		shared.GWShared.Start(runCtx.Done())
	}
	c.certManager = m
	if err := c.describeCertManager(ctx, serviceAccount); err != nil {
		return err
	}
	c.step("cert-manager controllers running in-process as system:serviceaccount:%s:%s", CertManagerNamespace, serviceAccount)
	return nil
}

// describeCertManager applies the Deployment cert-manager's chart would
// make for the controllers this process runs: its labels, ServiceAccount and
// the flags of the options above. Nothing runs it (there is no
// kube-controller-manager); it is what tools that read a cluster, such as
// certbridge check, find there. Its replicas are 0: kube-controller-manager
// makes no pod of it, which a node would try to pull.
func (c *Cluster) describeCertManager(ctx context.Context, serviceAccount string) error {
	out, err := execGo(ctx, c.opts.ModuleRoot, "list", "-m", "-f", "{{.Version}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		return fmt.Errorf("go list -m github.com/cert-manager/cert-manager: %w", err)
	}
	c.CertManagerVersion = strings.TrimSpace(string(out))
	return c.ApplyYAML(ctx, CertManagerDeployment(CertManagerNamespace, serviceAccount, c.CertManagerVersion,
		"--cluster-resource-namespace=$(POD_NAMESPACE)", "--enable-gateway-api", "--max-concurrent-challenges=60",
		// DNS01CheckAuthoritative: false above is this flag.
		"--dns01-recursive-nameservers="+c.DNS.Addr, "--dns01-recursive-nameservers-only"))
}

// CertManagerDeployment is a manifest of cert-manager's controller
// Deployment as its chart names and labels it, running version with args.
func CertManagerDeployment(namespace, serviceAccount, version string, args ...string) string {
	quoted := make([]string, 0, len(args))
	for _, a := range args {
		quoted = append(quoted, fmt.Sprintf("%q", a))
	}
	return fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cert-manager
  namespace: %[1]s
  labels: {app: cert-manager, app.kubernetes.io/name: cert-manager, app.kubernetes.io/instance: cert-manager, app.kubernetes.io/component: controller}
spec:
  replicas: 0
  selector:
    matchLabels: {app.kubernetes.io/name: cert-manager, app.kubernetes.io/instance: cert-manager, app.kubernetes.io/component: controller}
  template:
    metadata:
      labels: {app: cert-manager, app.kubernetes.io/name: cert-manager, app.kubernetes.io/instance: cert-manager, app.kubernetes.io/component: controller}
    spec:
      serviceAccountName: %[2]s
      containers:
        - name: cert-manager-controller
          image: quay.io/jetstack/cert-manager-controller:%[3]s
          args: [%[4]s]
          env:
            - name: POD_NAMESPACE
              valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
`, namespace, serviceAccount, version, strings.Join(quoted, ", "))
}

// startCAInjector runs cert-manager's cainjector in-process for APIServices,
// so the APIService's caBundle comes from the chart's CA as in a cluster.
func (c *Cluster) startCAInjector(ctx context.Context) error {
	kubeconfig, err := c.ServiceAccountKubeconfig(ctx, CertManagerNamespace, "cert-manager-cainjector")
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	// cainjector's field manager is the user agent's product name.
	cfg.UserAgent = "cert-manager-cainjector/in-process"
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, apiregistrationv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	// Controller names are unique per process unless told otherwise; a
	// second cluster in the same process (two tests) registers them again.
	skip := true
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Controller: config.Controller{SkipNameValidation: &skip}})
	if err != nil {
		return err
	}
	if err := cainjector.RegisterAllInjectors(ctx, mgr, cainjector.SetupOptions{
		EnableCertificatesDataSource: true,
		EnabledReconcilersFor:        map[string]bool{"apiservice": true},
	}); err != nil {
		return fmt.Errorf("cainjector: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(runCtx); err != nil {
			klog.Background().Error(err, "cainjector stopped")
		}
	}()
	c.closers = append(c.closers, func() { cancel(); <-done })
	return nil
}
