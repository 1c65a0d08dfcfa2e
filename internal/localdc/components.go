package localdc

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/strata-dev/strata/internal/cluster/cluster"
	"github.com/strata-dev/strata/internal/cluster/index"
)

// Run runs Strata's components against the datacenter until ctx is done.
func (r *Running) Run(ctx context.Context) error {
	mgr, err := ctrl.NewManager(r.HubConfig, ctrl.Options{
		Scheme: Scheme(),
		Logger: r.opts.Logger,
		// One process in the local datacenter: no election, no metrics port
		// to collide with another home's.
		LeaderElection: false,
		Metrics:        metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			// Only Strata's own Secrets are read.
			&corev1.Secret{}: {Namespaces: map[string]cache.Config{SystemNamespace: {}}},
		}},
	})
	if err != nil {
		return fmt.Errorf("creating the hub's controller manager: %w", err)
	}
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	clusters, err := cluster.New(cluster.Options{Client: mgr.GetClient(), Prober: cluster.NewAPIProber()})
	if err != nil {
		return err
	}
	if err := clusters.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the cluster controller: %w", err)
	}
	return mgr.Start(ctx)
}
