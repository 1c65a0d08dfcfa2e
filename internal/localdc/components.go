package localdc

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/provision"
	"github.com/strata-dev/strata/internal/metal/provision/sim"
	simv1 "github.com/strata-dev/strata/proto/strata/sim/v1"
)

// FaultsFile is where the sim provisioner keeps the simulated faults, under
// the home, so a restart keeps them.
const FaultsFile = "sim-faults.json"

// Run runs Strata's components against the datacenter until ctx is done.
// The Compute Broker, with the sim provisioner that plays the machines and
// its sim service (faults), runs in this process; the hub's controllers,
// each workload cluster's app controllers and each cluster's admission
// webhook run as `strata serve` processes, as in production, each as its
// ServiceAccount, supervised (restarted when they exit). The
// ServiceAccounts' tokens are renewed while it runs.
func (r *Running) Run(ctx context.Context) error {
	provisioner, err := r.simProvisioner()
	if err != nil {
		return err
	}
	// strata up's own log (strata.log) is the context's.
	logger := logr.FromContextOrDiscard(ctx)
	b, err := broker.New(broker.Options{Store: r.inventory, Provisioner: provisioner, Logger: logger.WithName("broker")})
	if err != nil {
		return err
	}
	srv, err := broker.NewServer(b, broker.ServerOptions{
		Address:        loopback(r.Datacenter.BrokerPort),
		MetricsAddress: loopback(r.Datacenter.BrokerMetricsPort),
	}, prometheus.NewRegistry())
	if err != nil {
		return fmt.Errorf("starting the broker: %w", err)
	}
	simService, err := sim.NewService(provisioner, r.inventory)
	if err != nil {
		return err
	}
	srv.RegisterService(&simv1.SimService_ServiceDesc, simService)
	sup := newSupervisor(r.opts.Home, logger.WithName("supervisor"))
	var procs []Process
	for _, cp := range r.Datacenter.ComponentProcesses() {
		p, err := r.writeProcessConfig(cp)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(ctx) })
	g.Go(func() error { return b.Run(ctx) })
	g.Go(func() error { return provisioner.Run(ctx) })
	g.Go(func() error {
		renewIdentities(ctx, r.opts.Home, r.identities, r.identityRenewed)
		return nil
	})
	for _, p := range procs {
		g.Go(func() error { return sup.Run(ctx, p) })
	}
	return g.Wait()
}

// simProvisioner is the provisioner of the local datacenter: it knows the
// workload clusters from the start, so the Nodes of machines faulted before a
// restart are found before any machine joins again.
func (r *Running) simProvisioner() (*sim.Provisioner, error) {
	var clusters []provision.Target
	kubeletPorts := map[string]int32{}
	for _, c := range r.Datacenter.WorkloadClusters() {
		kubeletPorts[c.Name] = int32(c.Ports.KwokController) //nolint:gosec // a TCP port
		kubeconfig, err := os.ReadFile(KubeconfigPath(r.opts.Home, c.Name))
		if err != nil {
			return nil, fmt.Errorf("reading the kubeconfig of cluster %s: %w", c.Name, err)
		}
		clusters = append(clusters, provision.Target{Cluster: c.Name, BootstrapKubeconfig: kubeconfig})
	}
	return sim.New(sim.Options{
		JoinDuration: r.opts.JoinDuration, WipeDuration: r.opts.WipeDuration, MaintenanceDuration: r.opts.MaintenanceDuration,
		FaultsFile: filepath.Join(r.opts.Home, FaultsFile), Clusters: clusters, KubeletPorts: kubeletPorts,
	})
}

func loopback(port uint32) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
}
