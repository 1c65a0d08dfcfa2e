package localdc

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/hub"
	"github.com/strata-dev/strata/internal/config"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/strata-dev/strata/internal/metal/broker"
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
	hubCfg, err := r.hubConfiguration()
	if err != nil {
		return err
	}
	conn, err := hub.Dial(hubCfg.Broker)
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
	webhook, err := r.webhookServer()
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return webhook.Start(ctx) })
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

// inProcess is the shared part of a manager's configuration in the local
// datacenter: one process runs every component, so no election, and no
// metrics or health port to collide with another home's.
func inProcess(cm *configv1alpha1.ControllerManager) {
	cm.LeaderElection.LeaderElect = ptr.To(false)
	cm.Metrics.BindAddress = "0"
	cm.Health.BindAddress = "0"
}

// hubConfiguration is the hub's configuration in the local datacenter: the
// defaults, in process, with the remediation thresholds of `strata up`.
func (r *Running) hubConfiguration() (*configv1alpha1.HubConfiguration, error) {
	c := &configv1alpha1.HubConfiguration{Broker: configv1alpha1.BrokerClient{Addresses: []string{loopback(r.Datacenter.BrokerPort)}}}
	inProcess(&c.ControllerManager)
	if r.opts.NotReadyThreshold > 0 {
		c.Remediation.NotReadyThreshold = &metav1.Duration{Duration: r.opts.NotReadyThreshold}
	}
	if r.opts.FaultHoldOff > 0 {
		c.Remediation.FaultHoldOff = &metav1.Duration{Duration: r.opts.FaultHoldOff}
	}
	if err := config.Complete(c); err != nil {
		return nil, fmt.Errorf("the hub's configuration: %w", err)
	}
	return c, nil
}

// hubManager is the controller manager of the hub's controllers, as
// `strata serve hub` builds it.
func (r *Running) hubManager(ctx context.Context, brokerClient brokerv1.BrokerServiceClient) (ctrl.Manager, error) {
	c, err := r.hubConfiguration()
	if err != nil {
		return nil, err
	}
	return hub.NewManager(ctx, hub.Options{
		Config: c, RestConfig: r.hubConfig, Broker: brokerClient, Logger: r.opts.Logger,
		Controllers: []hub.Setup{appnamespace.SetupOnHub},
	})
}

func loopback(port uint32) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
}
