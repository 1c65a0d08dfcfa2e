package localdc

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/strata-dev/strata/internal/cluster/cluster"
	"github.com/strata-dev/strata/internal/cluster/index"
	"github.com/strata-dev/strata/internal/cluster/manager"
	"github.com/strata-dev/strata/internal/cluster/pool"
	"github.com/strata-dev/strata/internal/cluster/remediation"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/cluster/rollout"
	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/broker/brokerclient"
	"github.com/strata-dev/strata/internal/metal/provision"
	"github.com/strata-dev/strata/internal/metal/provision/sim"
	"github.com/strata-dev/strata/internal/workload/appnamespace"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
	simv1 "github.com/strata-dev/strata/proto/strata/sim/v1"
)

// FaultsFile is where the sim provisioner keeps the simulated faults, under
// the home, so a restart keeps them.
const FaultsFile = "sim-faults.json"

// Run runs Strata's components against the datacenter until ctx is done:
// the Compute Broker with the sim provisioner and its sim service (faults),
// the hub's controllers, each workload cluster's app controllers, and the
// guardrails' admission webhook.
func (r *Running) Run(ctx context.Context) error {
	provisioner, err := r.simProvisioner()
	if err != nil {
		return err
	}
	b, err := broker.New(broker.Options{Store: r.inventory, Provisioner: provisioner, Logger: r.opts.Logger.WithName("broker")})
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
	conn, err := brokerclient.Dial(brokerclient.Options{Addresses: []string{loopback(r.Datacenter.BrokerPort)}, WaitForReady: true})
	if err != nil {
		return fmt.Errorf("connecting to the broker: %w", err)
	}
	defer func() { _ = conn.Close() }()
	mgr, err := r.hubManager(ctx, brokerv1.NewBrokerServiceClient(conn))
	if err != nil {
		return err
	}
	appManagers, err := r.appManagers()
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return r.serveWebhook(ctx) })
	for _, m := range appManagers {
		g.Go(func() error { return m.Start(ctx) })
	}
	g.Go(func() error { return srv.Serve(ctx) })
	g.Go(func() error { return b.Run(ctx) })
	g.Go(func() error { return provisioner.Run(ctx) })
	g.Go(func() error { return mgr.Start(ctx) })
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

// hubManager is the controller manager of the hub's controllers.
func (r *Running) hubManager(ctx context.Context, brokerClient brokerv1.BrokerServiceClient) (ctrl.Manager, error) {
	// Every hub controller shares this client: onboarding 200 app
	// namespaces at once is some 600 writes (finalizer, status, event).
	cfg := rest.CopyConfig(r.hubConfig)
	cfg.QPS, cfg.Burst = 200, 400
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
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
		return nil, fmt.Errorf("creating the hub's controller manager: %w", err)
	}
	if err := index.Setup(ctx, mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	clusters, err := cluster.New(cluster.Options{Client: mgr.GetClient(), Prober: cluster.NewAPIProber()})
	if err != nil {
		return nil, err
	}
	if err := clusters.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the cluster controller: %w", err)
	}
	workloads := remote.New(mgr.GetClient())
	if err := mgr.Add(workloads); err != nil {
		return nil, err
	}
	pools, err := pool.New(pool.Options{
		Hub: mgr.GetClient(), Broker: brokerClient, Clusters: workloads, Recorder: mgr.GetEventRecorder("pool-controller"),
	})
	if err != nil {
		return nil, err
	}
	if err := pools.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the pool controller: %w", err)
	}
	clusterManager, err := manager.New(manager.Options{Hub: mgr.GetClient(), Broker: brokerClient, Clusters: workloads})
	if err != nil {
		return nil, err
	}
	if err := clusterManager.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the cluster manager: %w", err)
	}
	rollouts, err := rollout.New(rollout.Options{
		Hub: mgr.GetClient(), Broker: brokerClient, Clusters: workloads, Recorder: mgr.GetEventRecorder("maintenance-orchestrator"),
	})
	if err != nil {
		return nil, err
	}
	if err := rollouts.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the maintenance orchestrator: %w", err)
	}
	appNamespaces, err := appnamespace.New(appnamespace.Options{
		Hub: mgr.GetClient(), Clusters: workloads, Recorder: mgr.GetEventRecorder("appnamespace-controller"),
	})
	if err != nil {
		return nil, err
	}
	if err := appNamespaces.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the app namespace controller: %w", err)
	}
	remediator, err := remediation.New(remediation.Options{
		Hub: mgr.GetClient(), Broker: brokerClient, Clusters: workloads, Recorder: mgr.GetEventRecorder("remediation-controller"),
		NotReadyThreshold: r.opts.NotReadyThreshold, FaultHoldOff: r.opts.FaultHoldOff,
	})
	if err != nil {
		return nil, err
	}
	if err := remediator.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("setting up the remediation controller: %w", err)
	}
	return mgr, nil
}

func loopback(port uint32) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
}
