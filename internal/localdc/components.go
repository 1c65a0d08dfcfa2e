package localdc

import (
	"context"
	"net"
	"strconv"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
)

// FaultsFile is where the sim provisioner keeps the simulated faults, under
// the home, so a restart keeps them and the broker replicas share them.
const FaultsFile = "sim-faults.json"

// Run runs Strata's components against the datacenter until ctx is done,
// each as a `strata serve` process, as in production, supervised (restarted
// when it exits): the Compute Broker's replicas (with the sim provisioner
// that plays the machines, and its sim service), the hub's controllers,
// each workload cluster's app controllers and each cluster's admission
// webhook, these as their ServiceAccounts, whose tokens are renewed while
// it runs.
func (r *Running) Run(ctx context.Context) error {
	// strata up's own log (strata.log) is the context's.
	logger := logr.FromContextOrDiscard(ctx)
	sup := newSupervisor(r.opts.Home, logger.WithName("supervisor"))
	sup.restarts = r.restarts
	var procs []Process
	for _, cp := range r.Datacenter.ComponentProcesses() {
		p, err := r.writeProcessConfig(cp)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		renewIdentities(ctx, r.opts.Home, r.identities, r.identityRenewed)
		return nil
	})

	for _, p := range procs {
		g.Go(func() error { return sup.Run(ctx, p) })
	}
	return g.Wait()
}

func loopback(port uint32) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
}
