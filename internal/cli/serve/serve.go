// Package serve holds `strata serve`: one component of the platform as a
// long-running process, as it runs in production.
package serve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/metal/provision"
	"github.com/strata-dev/strata/internal/metal/provision/sim"
	simv1 "github.com/strata-dev/strata/proto/strata/sim/v1"
)

// NewCommand returns `strata serve`.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "serve", Short: "Run one component of the platform in the foreground (production)"}
	cmd.AddCommand(newBroker(), newHub(), newApps(), newWebhook(), newAggregator(), newConsole())
	var pprofAddress string
	cmd.PersistentFlags().StringVar(&pprofAddress, pprofFlag, "", pprofUsage)
	for _, sub := range cmd.Commands() {
		sub.RunE = withPprof(&pprofAddress, sub.RunE)
	}
	return cmd
}

func newBroker() *cobra.Command {
	var (
		configFile     string
		db, dbFile     string
		seedMachines   int
		budget         = broker.DefaultBudget
		opts           = broker.ServerOptions{Address: broker.DefaultAddress}
		metricsAddress string
		election       = broker.LeaderElection{Enabled: true, RetryPeriod: broker.DefaultLeaderRetryPeriod}
		prov           = provisionerFlags{
			kind: provisionerSim, join: sim.DefaultJoinDuration, wipe: sim.DefaultWipeDuration, maintain: sim.DefaultMaintenanceDuration,
		}
	)
	cmd := &cobra.Command{
		Use:   "broker --db DSN | --config FILE",
		Short: "Serve the Compute Broker's gRPC API over an inventory database",
		Long: `Serve the Compute Broker: strata.broker.v1 over gRPC, with the gRPC health
service, server reflection and Prometheus metrics. It listens on loopback
unless told otherwise; any other address needs --tls-cert, --tls-key and
--tls-client-ca (mutual TLS, the production mode), or --insecure.

With --tls-client-ca, every caller presents a client certificate signed by
that CA: its common name is the caller's name, its organizations its groups,
and the actor of every record it makes. --policy (a BrokerPolicy) says which
roles may call which RPC; without it, group strata:<role> holds each
built-in role (pool-manager, maintenance, remediation, cluster-manager,
viewer, admin). Denials answer PermissionDenied. --token-file is the legacy
alternative: its holder is strata:static-token, and it is refused in
plaintext beyond loopback. Without client CA or token (loopback only, or
--insecure), every caller is system:anonymous and may do everything.

The provisioner joins the machines of pools that have a join target to their
cluster, wipes released ones and performs the operations of disruptions
(reboot, reimage). "sim" (the default) plays the kubelet: it registers each
machine's Node itself after --sim-join-duration, so use it only with clusters
whose Nodes are simulated (kwok). "none" joins nothing, and disruptions with
an operation are refused. With sim, the broker also serves strata.sim.v1
(simulated faults, ` + "`strata sim`" + `); the configuration's provisioner.sim
block can keep the faults in a file (shared by replicas: a replica that
takes over reads it) and name the clusters whose Nodes it plays from the
start, as the local datacenter (` + "`strata up`" + `) does. Only the leader
runs the sim provisioner's fault loop.

Several replicas can serve one PostgreSQL inventory (--leader-elect, on by
default): one leads, holding a PostgreSQL advisory lock on a connection of
its own and writing only on it; the others report NOT_SERVING on the gRPC
health service, answer every broker call with Unavailable, and take over
within --leader-retry-period of the leader's connection closing. Give clients
every replica's address (or a DNS name resolving to all). SQLite is
single-replica: its broker always leads, run only one.

--config reads a BrokerConfiguration (config.strata.dev/v1alpha1) with the
same settings; a flag given on the command line overrides the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile != "" {
				c := &configv1alpha1.BrokerConfiguration{}
				if err := config.Load(configFile, c); err != nil {
					return err
				}
				fromConfig(cmd.Flags(), c, brokerFlagTargets{
					db: &db, dbFile: &dbFile, listen: &opts.Address, metrics: &metricsAddress, cert: &opts.TLSCertFile, key: &opts.TLSKeyFile,
					clientCA: &opts.ClientCAFile, policy: &opts.PolicyFile, token: &opts.TokenFile, insecure: &opts.Insecure, budget: &budget, prov: &prov, election: &election,
				})
			}
			if dbFile != "" {
				if cmd.Flags().Changed("db") {
					return errors.New("--db and --db-file go alone: give one")
				}
				var err error
				if db, err = databaseDSN(configv1alpha1.Database{DSNFile: dbFile}); err != nil {
					return err
				}
			}
			if db == "" {
				return fmt.Errorf("--db is required: postgres://... or a SQLite file path")
			}
			opts.MetricsAddress = metricsAddress
			if election.RetryPeriod <= 0 {
				return fmt.Errorf("--leader-retry-period must be positive, not %s", election.RetryPeriod)
			}
			if err := opts.Validate(); err != nil {
				return err
			}
			provisioner, err := prov.build(cmd.Flags())
			if err != nil {
				return err
			}
			logger := zap.New(zap.WriteTo(cmd.ErrOrStderr()))
			ctx := cmd.Context()
			store, err := inventory.Open(ctx, db)
			if err != nil {
				return err
			}
			defer store.Close() //nolint:errcheck // closed at exit
			if seedMachines > 0 {
				if _, err := inventory.Seed(ctx, store, inventory.GenerateOptions{Seed: 1, Machines: seedMachines}); err != nil {
					return err
				}
			}
			b, err := broker.New(broker.Options{Store: store, Budget: &budget, Provisioner: provisioner, LeaderElection: election, Logger: logger})
			if err != nil {
				return err
			}
			srv, err := broker.NewServer(b, opts, prometheus.NewRegistry())
			if err != nil {
				return err
			}
			logger.Info("Serving the Compute Broker", "address", srv.Addr(), "metrics", srv.MetricsAddr(), "provisioner", prov.kind,
				"leaderElection", election.Enabled && inventory.Replicated(store))
			simProv, _ := provisioner.(*sim.Provisioner)
			if simProv != nil {
				service, err := sim.NewService(simProv, store)
				if err != nil {
					return err
				}
				srv.RegisterService(&simv1.SimService_ServiceDesc, service)
			}
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() error { return srv.Serve(ctx) })
			g.Go(func() error { return b.Run(ctx) })
			if simProv != nil {
				g.Go(func() error { return runSimWhileLeading(ctx, b, simProv) })
			}
			return g.Wait()
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&configFile, "config", "", "a BrokerConfiguration file (config.strata.dev/v1alpha1); flags override it")
	fs.StringVar(&db, "db", "", "inventory database: postgres://... or a SQLite file path")
	fs.StringVar(&dbFile, "db-file", "", "file holding the inventory database's DSN (a mounted Secret)")
	fs.IntVar(&seedMachines, "seed-simulated", 0, "seed a simulated datacenter of this many machines into an empty inventory (for trials)")
	fs.StringVar(&opts.Address, "listen", broker.DefaultAddress, "host:port of the gRPC API")
	fs.StringVar(&metricsAddress, "metrics-listen", "127.0.0.1:9443", "host:port of /metrics; empty disables")
	fs.StringVar(&opts.TLSCertFile, "tls-cert", "", "TLS certificate file")
	fs.StringVar(&opts.TLSKeyFile, "tls-key", "", "TLS key file")
	fs.StringVar(&opts.ClientCAFile, "tls-client-ca", "", "CA of the clients' certificates: mutual TLS, a caller is its certificate's subject")
	fs.StringVar(&opts.PolicyFile, "policy", "", "a BrokerPolicy file: who may call which RPC (default: group strata:<role> holds each built-in role)")
	fs.StringVar(&opts.TokenFile, "token-file", "", "file with a static bearer token (legacy; its holder is strata:static-token)")
	fs.BoolVar(&opts.Insecure, "insecure", false, "allow a non-loopback address without TLS and any authentication")
	fs.BoolVar(&election.Enabled, "leader-elect", election.Enabled,
		"with a PostgreSQL inventory, elect one leader among the replicas (SQLite is single-replica: always the leader)")
	fs.DurationVar(&election.RetryPeriod, "leader-retry-period", election.RetryPeriod,
		"how often a standby tries to take the leadership and the leader checks it still holds it")
	fs.IntVar(&budget.MaxPlannedZones, "max-planned-zones", budget.MaxPlannedZones, "maintenance zones per datacenter in planned maintenance at once")
	fs.IntVar(&budget.MaxPoolDisruptedPercent, "max-pool-disrupted-percent", budget.MaxPoolDisruptedPercent, "share of a pool's capacity disrupted at once")
	fs.StringVar(&prov.kind, "provisioner", prov.kind, "what joins machines to clusters and wipes them: sim or none")
	fs.DurationVar(&prov.join, "sim-join-duration", prov.join, "how long the sim provisioner takes to image a machine and register its Node")
	fs.DurationVar(&prov.wipe, "sim-wipe-duration", prov.wipe, "how long the sim provisioner takes to wipe a released machine")
	fs.DurationVar(&prov.maintain, "sim-maintenance-duration", prov.maintain, "how long the sim provisioner takes to reboot or reimage a machine (0: instant)")
	return cmd
}

// brokerFlagTargets are the variables of the broker's flags.
type brokerFlagTargets struct {
	db, dbFile, listen, metrics, cert, key, token *string
	clientCA, policy                              *string
	insecure                                      *bool
	budget                                        *broker.Budget
	prov                                          *provisionerFlags
	election                                      *broker.LeaderElection
}

// fromConfig sets each flag not given on the command line from the
// configuration (defaulted and validated).
func fromConfig(fs *pflag.FlagSet, c *configv1alpha1.BrokerConfiguration, to brokerFlagTargets) {
	set := func(flag string, apply func()) {
		if !fs.Changed(flag) {
			apply()
		}
	}
	set("db", func() { *to.db = c.Database.DSN })
	set("db-file", func() { *to.dbFile = c.Database.DSNFile })
	set("listen", func() { *to.listen = c.Listen })
	set("metrics-listen", func() {
		*to.metrics = c.MetricsListen
		if c.MetricsListen == "0" {
			*to.metrics = ""
		}
	})
	set("tls-cert", func() { *to.cert = c.TLS.CertFile })
	set("tls-key", func() { *to.key = c.TLS.KeyFile })
	set("tls-client-ca", func() { *to.clientCA = c.TLS.ClientCAFile })
	set("policy", func() { *to.policy = c.PolicyFile })
	set("token-file", func() { *to.token = c.TokenFile })
	set("insecure", func() { *to.insecure = c.Insecure })
	set("max-planned-zones", func() { to.budget.MaxPlannedZones = int(*c.Budget.MaxPlannedZones) })
	set("max-pool-disrupted-percent", func() { to.budget.MaxPoolDisruptedPercent = int(*c.Budget.MaxPoolDisruptedPercent) })
	set("provisioner", func() { to.prov.kind = string(c.Provisioner.Kind) })
	set("leader-elect", func() { to.election.Enabled = *c.LeaderElection.LeaderElect })
	set("leader-retry-period", func() { to.election.RetryPeriod = c.LeaderElection.RetryPeriod.Duration })
	if sim := c.Provisioner.Sim; sim != nil {
		set("sim-join-duration", func() { to.prov.join = sim.JoinDuration.Duration })
		set("sim-wipe-duration", func() { to.prov.wipe = sim.WipeDuration.Duration })
		set("sim-maintenance-duration", func() { to.prov.maintain = sim.MaintenanceDuration.Duration })
		// Only in the file: no flag names them.
		to.prov.faultsFile, to.prov.clusters = sim.FaultsFile, sim.Clusters
	}
}

// Provisioners of `strata serve broker --provisioner`.
const (
	provisionerSim  = "sim"
	provisionerNone = "none"
)

// provisionerFlags are the --provisioner and --sim-* flags, and the sim
// settings only the configuration file has.
type provisionerFlags struct {
	kind                 string
	join, wipe, maintain time.Duration
	faultsFile           string
	clusters             []configv1alpha1.SimCluster
}

// build validates the flags and returns the provisioner they name; nil for
// none.
func (f provisionerFlags) build(fs *pflag.FlagSet) (provision.Provisioner, error) {
	switch f.kind {
	case provisionerNone:
		for _, name := range []string{"sim-join-duration", "sim-wipe-duration", "sim-maintenance-duration"} {
			if fs.Changed(name) {
				return nil, fmt.Errorf("--%s applies to --provisioner sim, not %s", name, f.kind)
			}
		}
		return nil, nil
	case provisionerSim:
		var errs []error
		for name, d := range map[string]time.Duration{"sim-join-duration": f.join, "sim-wipe-duration": f.wipe} {
			if d <= 0 {
				errs = append(errs, fmt.Errorf("--%s must be positive, not %s", name, d))
			}
		}
		if f.maintain < 0 {
			errs = append(errs, fmt.Errorf("--sim-maintenance-duration must not be negative, not %s", f.maintain))
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		o := sim.Options{JoinDuration: f.join, WipeDuration: f.wipe, MaintenanceDuration: f.maintain, FaultsFile: f.faultsFile}
		for _, c := range f.clusters {
			kubeconfig, err := os.ReadFile(c.Kubeconfig)
			if err != nil {
				return nil, fmt.Errorf("reading the kubeconfig of sim cluster %s (provisioner.sim.clusters): %w", c.Name, err)
			}
			o.Clusters = append(o.Clusters, sim.Cluster{Name: c.Name, Kubeconfig: kubeconfig})
			if c.KubeletPort != 0 {
				if o.KubeletPorts == nil {
					o.KubeletPorts = map[string]int32{}
				}
				o.KubeletPorts[c.Name] = c.KubeletPort
			}
		}
		p, err := sim.New(o)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return p, nil
	}
	return nil, fmt.Errorf("--provisioner %q is not one of %s, %s", f.kind, provisionerSim, provisionerNone)
}

// runSimWhileLeading runs the sim provisioner's fault loop (it puts the
// Nodes of faulted machines NotReady, and of healed ones Ready) while this
// replica leads: a standby's faults may be stale, and two loops would
// fight over the Nodes. Each term starts from the faults file, which the
// previous leader kept (the broker reloads it before it leads:
// provision.TermStarter).
func runSimWhileLeading(ctx context.Context, b *broker.Broker, p *sim.Provisioner) error {
	for {
		leading, changed := b.Leading()
		if !leading {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
				continue
			}
		}
		term, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(term) }()
		select {
		case err := <-done:
			cancel()
			return err
		case <-changed:
		case <-ctx.Done():
		}
		cancel()
		if err := <-done; err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}
