package serve

import (
	"fmt"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/hub"
	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/workload/appnamespace"
	"github.com/strata-dev/strata/internal/workload/apps"
	"github.com/strata-dev/strata/internal/workload/batchqueue"
	"github.com/strata-dev/strata/internal/workload/dispatch"
	"github.com/strata-dev/strata/internal/workload/fleetapp"
	"github.com/strata-dev/strata/internal/workload/guardrails"
)

// managerFlags are the flags of the commands that run a controller manager.
type managerFlags struct {
	config, kubeconfig string
}

func (f *managerFlags) addTo(cmd *cobra.Command, kubeconfigUse string) {
	fs := cmd.Flags()
	fs.StringVar(&f.config, "config", "", "the component's configuration file (config.strata.dev/v1alpha1); without it, the defaults")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", kubeconfigUse+"; empty: the in-cluster config of the Pod's ServiceAccount")
}

// restConfig is the kubeconfig's, or the Pod's in-cluster config.
func (f *managerFlags) restConfig() (*rest.Config, error) {
	if f.kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig and not in a cluster: %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading --kubeconfig %s: %w", f.kubeconfig, err)
	}
	return cfg, nil
}

// logger is the command's logger: JSON lines on its stderr. It is
// controller-runtime's too (the process runs one component).
func logger(cmd *cobra.Command) logr.Logger {
	log := zap.New(zap.WriteTo(cmd.ErrOrStderr()))
	ctrl.SetLogger(log)
	return log
}

// managerStarting is logged when a manager starts, with where it answers.
const managerStarting = "Starting the controller manager"

func startingValues(cm configv1alpha1.ControllerManager) []any {
	return []any{
		"health", cm.Health.BindAddress, "metrics", cm.Metrics.BindAddress,
		"leaderElection", *cm.LeaderElection.LeaderElect, "lease", cm.LeaderElection.ResourceNamespace + "/" + cm.LeaderElection.ResourceName,
	}
}

func newHub() *cobra.Command {
	var f managerFlags
	cmd := &cobra.Command{
		Use:   "hub --config FILE",
		Short: "Run the hub's controllers: clusters, pools, cluster manager, maintenance orchestrator, remediation, app namespaces, apps declared on the hub",
		Long: `Run the hub's controllers in one controller manager, configured by a
HubConfiguration (config.strata.dev/v1alpha1): they reconcile Clusters,
Pools, MaintenanceRollouts, AppNamespaces and the StatelessApps declared on
the hub, and reach machines through the Compute Broker (broker.addresses).

Replicas elect a leader through a Lease (strata-system/strata-hub by
default), released at shutdown. /healthz and /readyz are served on
health.bindAddress (:8081), /metrics on metrics.bindAddress (:8080).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := &configv1alpha1.HubConfiguration{}
			if err := config.Load(f.config, c); err != nil {
				return err
			}
			restCfg, err := f.restConfig()
			if err != nil {
				return err
			}
			log := logger(cmd)
			brokers, closeBrokers, err := hub.DialControllers(c.Broker)
			if err != nil {
				return err
			}
			defer closeBrokers()
			ctx := cmd.Context()
			mgr, err := hub.NewManager(ctx, hub.Options{
				Config: c, RestConfig: restCfg, Brokers: brokers, Logger: log,
				Controllers: []hub.Setup{appnamespace.SetupOnHub, fleetapp.SetupOnHub, batchqueue.SetupOnHub, dispatch.SetupOnHub(c.Jobs), dispatch.SetupBatchNodesOnHub},
			})
			if err != nil {
				return err
			}
			log.Info(managerStarting, append(startingValues(c.ControllerManager), "component", hub.Component)...)
			return mgr.Start(ctx)
		},
	}
	f.addTo(cmd, "kubeconfig of the hub")
	return cmd
}

func newApps() *cobra.Command {
	var f managerFlags
	cmd := &cobra.Command{
		Use:   "apps --config FILE --kubeconfig KUBECONFIG",
		Short: "Run the app controllers (StatelessApp, StatefulApp) of one workload cluster",
		Long: `Run the StatelessApp and StatefulApp controllers of one workload cluster,
configured by an AppsConfiguration (config.strata.dev/v1alpha1) that names
the cluster (clusterName). In the cluster, it runs as the ServiceAccount
strata-system/strata-apps, which the guardrails trust to scale what a
StatelessApp expands into.

Replicas elect a leader through a Lease (strata-system/strata-apps by
default), released at shutdown. /healthz and /readyz are served on
health.bindAddress (:8081), /metrics on metrics.bindAddress (:8080).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := &configv1alpha1.AppsConfiguration{}
			if err := config.Load(f.config, c); err != nil {
				return err
			}
			restCfg, err := f.restConfig()
			if err != nil {
				return err
			}
			log := logger(cmd).WithValues("cluster", c.ClusterName)
			mgr, err := apps.NewManager(apps.Options{Config: c, RestConfig: restCfg, Logger: log})
			if err != nil {
				return err
			}
			log.Info(managerStarting, append(startingValues(c.ControllerManager), "component", apps.Component)...)
			return mgr.Start(cmd.Context())
		},
	}
	f.addTo(cmd, "kubeconfig of the workload cluster")
	return cmd
}

func newWebhook() *cobra.Command {
	var f managerFlags
	cmd := &cobra.Command{
		Use:   "webhook --config FILE",
		Short: "Serve the guardrails' admission webhook of one cluster over HTTPS",
		Long: `Serve the guardrails' admission webhook of one cluster (namespace and CRD
deletes, pod evictions, scaling of what a StatelessApp expands into),
configured by a WebhookConfiguration (config.strata.dev/v1alpha1).

It serves HTTPS on port (9443) with tls.crt and tls.key from certDir
(/etc/strata/webhook-certs), reloaded when they change. When the
configuration names validatingWebhookConfigurations, it sets their
caBundle to certDir/ca.crt, at start and whenever either changes (checked
every 30s). Every replica serves; there is no leader. /healthz and /readyz
(ready once the HTTPS server answers) are served on health.bindAddress
(:8081), /metrics on metrics.bindAddress (:8080).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := &configv1alpha1.WebhookConfiguration{}
			if err := config.Load(f.config, c); err != nil {
				return err
			}
			restCfg, err := f.restConfig()
			if err != nil {
				return err
			}
			log := logger(cmd).WithValues("cluster", c.ClusterName)
			mgr, err := guardrails.NewServer(guardrails.ServerOptions{
				Config: c, RestConfig: restCfg, Logger: log,
				Guarded: []guardrails.Guarded{{Cluster: c.ClusterName, RestConfig: restCfg}},
			})
			if err != nil {
				return err
			}
			log.Info("Serving the admission webhook", "port", *c.Port, "certDir", c.CertDir,
				"health", c.Health.BindAddress, "metrics", c.Metrics.BindAddress)
			return mgr.Start(cmd.Context())
		},
	}
	f.addTo(cmd, "kubeconfig of the cluster")
	return cmd
}
