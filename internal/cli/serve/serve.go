// Package serve holds `strata serve`: one component of the platform as a
// long-running process, as it runs in production.
package serve

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/inventory"
)

// NewCommand returns `strata serve`.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "serve", Short: "Run one component of the platform in the foreground (production)"}
	cmd.AddCommand(newBroker())
	return cmd
}

func newBroker() *cobra.Command {
	var (
		db             string
		seedMachines   int
		budget         = broker.DefaultBudget
		opts           = broker.ServerOptions{Address: broker.DefaultAddress}
		metricsAddress string
	)
	cmd := &cobra.Command{
		Use:   "broker --db DSN",
		Short: "Serve the Compute Broker's gRPC API over an inventory database",
		Long: `Serve the Compute Broker: strata.broker.v1 over gRPC, with the gRPC health
service, server reflection and Prometheus metrics. It listens on loopback
unless told otherwise; any other address needs --tls-cert, --tls-key and
--token-file, or --insecure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if db == "" {
				return fmt.Errorf("--db is required: postgres://... or a SQLite file path")
			}
			opts.MetricsAddress = metricsAddress
			if err := opts.Validate(); err != nil {
				return err
			}
			logger := zap.New(zap.WriteTo(os.Stderr))
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
			b, err := broker.New(broker.Options{Store: store, Budget: &budget, Logger: logger})
			if err != nil {
				return err
			}
			srv, err := broker.NewServer(b, opts, prometheus.NewRegistry())
			if err != nil {
				return err
			}
			logger.Info("Serving the Compute Broker", "address", srv.Addr(), "metrics", srv.MetricsAddr())
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() error { return srv.Serve(ctx) })
			g.Go(func() error { return b.Run(ctx) })
			return g.Wait()
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&db, "db", "", "inventory database: postgres://... or a SQLite file path")
	fs.IntVar(&seedMachines, "seed-simulated", 0, "seed a simulated datacenter of this many machines into an empty inventory (for trials)")
	fs.StringVar(&opts.Address, "listen", broker.DefaultAddress, "host:port of the gRPC API")
	fs.StringVar(&metricsAddress, "metrics-listen", "127.0.0.1:9443", "host:port of /metrics; empty disables")
	fs.StringVar(&opts.TLSCertFile, "tls-cert", "", "TLS certificate file")
	fs.StringVar(&opts.TLSKeyFile, "tls-key", "", "TLS key file")
	fs.StringVar(&opts.TokenFile, "token-file", "", "file with the bearer token clients must present")
	fs.BoolVar(&opts.Insecure, "insecure", false, "allow a non-loopback address without TLS and token")
	fs.IntVar(&budget.MaxPlannedZones, "max-planned-zones", budget.MaxPlannedZones, "maintenance zones per datacenter in planned maintenance at once")
	fs.IntVar(&budget.MaxPoolDisruptedPercent, "max-pool-disrupted-percent", budget.MaxPoolDisruptedPercent, "share of a pool's capacity disrupted at once")
	return cmd
}
