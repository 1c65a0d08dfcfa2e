package serve

import (
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/hub"
	"github.com/strata-dev/strata/internal/component"
	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/console/aggregator"
	"github.com/strata-dev/strata/internal/console/store"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// AggregatorComponent names the fleet aggregator in logs and metrics.
const AggregatorComponent = "aggregator"

// databaseDSN is the database's DSN: the configuration's, or read from
// its file (a mounted Secret). Every component with a database reads it so.
func databaseDSN(db configv1alpha1.Database) (string, error) {
	if db.DSNFile == "" {
		return db.DSN, nil
	}
	raw, err := os.ReadFile(db.DSNFile)
	if err != nil {
		return "", fmt.Errorf("reading the database DSN (database.dsnFile, --db-file): %w", err)
	}
	if s := strings.TrimSpace(string(raw)); s != "" {
		return s, nil
	}
	return "", fmt.Errorf("the database DSN file %s (database.dsnFile, --db-file) is empty", db.DSNFile)
}

func newAggregator() *cobra.Command {
	var f managerFlags
	cmd := &cobra.Command{
		Use:   "aggregator --config FILE",
		Short: "Run the fleet aggregator: every cluster's and the broker's objects into the fleet store",
		Long: `Run the fleet aggregator, configured by an AggregatorConfiguration
(config.strata.dev/v1alpha1): it watches the hub (Clusters, Pools,
MaintenanceRollouts, AppNamespaces, StatelessApps, Events of Strata's
objects), every workload cluster the hub knows (Nodes, Pods, StatelessApps,
StatefulApps, Events) and the Compute Broker (machines, pools, disruptions),
and keeps what the console shows in the fleet store (database: SQLite or
PostgreSQL), each change within a second.

Replicas elect a leader through a Lease (strata-system/strata-aggregator by
default); only the leader watches and writes. /healthz and /readyz (ready:
leadership known and, on the leader, every source listed once) are served
on health.bindAddress (:8081), /metrics on metrics.bindAddress (:8080).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := &configv1alpha1.AggregatorConfiguration{}
			if err := config.Load(f.config, c); err != nil {
				return err
			}
			restCfg, err := f.restConfig()
			if err != nil {
				return err
			}
			dsn, err := databaseDSN(c.Database)
			if err != nil {
				return err
			}
			log := logger(cmd)
			ctx := cmd.Context()
			var broker brokerv1.BrokerServiceClient
			if c.Broker != nil {
				conn, err := hub.DialAs(*c.Broker, configv1alpha1.AggregatorBrokerCaller)
				if err != nil {
					return err
				}
				defer conn.Close() //nolint:errcheck // closed at exit
				broker = brokerv1.NewBrokerServiceClient(conn)
			}
			st, err := store.Open(ctx, dsn)
			if err != nil {
				return err
			}
			defer st.Close() //nolint:errcheck // closed at exit
			restCfg = component.RestConfig(restCfg, c.ClientConnection)
			mgr, err := ctrl.NewManager(restCfg, component.ManagerOptions(c.ControllerManager, nil, cache.Options{}, log))
			if err != nil {
				return fmt.Errorf("creating the aggregator's manager: %w", err)
			}
			if err := component.AddChecks(mgr, AggregatorComponent, c.ControllerManager); err != nil {
				return err
			}
			agg, err := aggregator.New(aggregator.Options{
				HubConfig: restCfg, Broker: broker, Store: st, Logger: log,
				FlushInterval: c.FlushInterval.Duration, RequestTimeout: c.WorkloadClusters.RequestTimeout.Duration,
				QPS: *c.WorkloadClusters.QPS, Burst: int(*c.WorkloadClusters.Burst),
				KubeconfigSecretSuffix: c.WorkloadClusters.KubeconfigSecretSuffix,
			})
			if err != nil {
				return err
			}
			if err := mgr.Add(agg); err != nil {
				return err
			}
			// The leader is ready once its sources are synced; a standby
			// as AddChecks says.
			synced := agg.ReadyCheck()
			if err := mgr.AddReadyzCheck("sources-synced", func(req *http.Request) error {
				if !leading(mgr) {
					return nil
				}
				return synced(req)
			}); err != nil {
				return fmt.Errorf("adding the readiness check: %w", err)
			}
			log.Info(managerStarting, append(startingValues(c.ControllerManager), "component", AggregatorComponent)...)
			return mgr.Start(ctx)
		},
	}
	f.addTo(cmd, "kubeconfig of the hub")
	return cmd
}

// leading says whether the manager's leader-election runnables run.
func leading(mgr manager.Manager) bool {
	select {
	case <-mgr.Elected():
		return true
	default:
		return false
	}
}
