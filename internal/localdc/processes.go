package localdc

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/config"
)

// configDir holds, under the home, the configuration file of each
// component process, written at every start from the configuration kinds'
// defaults and the local values.
const configDir = "config"

// The components that `strata up` runs as processes, each a `strata serve
// <component>`.
const (
	ComponentBroker  = "broker"
	ComponentHub     = "hub"
	ComponentApps    = "apps"
	ComponentWebhook = "webhook"
	// ComponentAggregator and ComponentConsole are the fleet console's:
	// the aggregator fills the fleet store, the console serves it.
	ComponentAggregator = "aggregator"
	ComponentConsole    = "console"
)

// The ServiceAccounts of strata-system that the components run as.
const (
	hubServiceAccount     = "strata-hub"
	appsServiceAccount    = "strata-apps"
	webhookServiceAccount = "strata-webhook"
	// aggregatorServiceAccount is the aggregator's identity on the hub and
	// in every workload cluster (reached through its own kubeconfig Secret).
	aggregatorServiceAccount = "strata-aggregator"
	consoleServiceAccount    = "strata-console"
)

// Leader election of the local processes: a killed leader (kill -9 keeps
// its Lease) is replaced within leaseDuration + retryPeriod, 12 s, where
// the defaults (15 s + 2 s) would take longer than the 15 s the local
// datacenter's failover trial allows.
const (
	localLeaseDuration = 10 * time.Second
	localRenewDeadline = 8 * time.Second
	localRetryPeriod   = 2 * time.Second
)

// ComponentProcess is one of Strata's component processes in the local
// datacenter: which component, of which cluster, and its ports.
type ComponentProcess struct {
	Name      string
	Component string
	Cluster   string
	Ports     ProcessPorts
}

// identity is the ServiceAccount the process reaches its cluster as; a
// broker reaches no cluster's API as a component (its sim provisioner
// plays the kubelets with the clusters' own kubeconfigs).
func (p ComponentProcess) identity() Identity {
	switch p.Component {
	case ComponentBroker:
		return Identity{}
	case ComponentKueue:
		return kueueIdentity(p.Cluster)
	}
	sa := map[string]string{
		ComponentHub: hubServiceAccount, ComponentApps: appsServiceAccount, ComponentWebhook: webhookServiceAccount,
		ComponentAggregator: aggregatorServiceAccount, ComponentConsole: consoleServiceAccount,
	}
	return Identity{Cluster: p.Cluster, ServiceAccount: sa[p.Component]}
}

// ConsoleURL is the address of the datacenter's fleet console, or "" when
// it has none planned.
func (d *Datacenter) ConsoleURL() string {
	p, ok := d.Processes[ComponentConsole]
	if !ok || p.Console == 0 {
		return ""
	}
	return "http://" + loopback(p.Console) + "/"
}

// FleetStorePath is the fleet store of the home's aggregator and console:
// SQLite, which the console reads while the aggregator writes.
func FleetStorePath(home string) string {
	return filepath.Join(home, "fleet.db")
}

// ConfigPath is the process's configuration file under the home.
func (p ComponentProcess) ConfigPath(home string) string {
	return filepath.Join(home, configDir, p.Name+".yaml")
}

// processNames lists the component processes of a datacenter run with
// replicas replicas and brokers broker replicas: broker-1..B, hub-1..N on
// the hub, apps-<cluster>-1..N per workload cluster, and one
// webhook-<cluster> per cluster; with jobs, one kueue-<cluster> per
// cluster. The webhook has no leader and keeps no state, so replicas would
// add nothing a trial could observe: each cluster's API server calls one
// URL, a loopback port that only one process can listen on. Kueue serves
// its webhooks the same way, one process per cluster.
func processNames(dc *Datacenter, replicas, brokers int, jobs bool) []ComponentProcess {
	var out []ComponentProcess
	for i := 1; i <= brokers; i++ {
		out = append(out, ComponentProcess{Name: ComponentBroker + "-" + strconv.Itoa(i), Component: ComponentBroker, Cluster: HubName})
	}
	for i := 1; i <= replicas; i++ {
		out = append(out, ComponentProcess{Name: ComponentHub + "-" + strconv.Itoa(i), Component: ComponentHub, Cluster: HubName})
	}
	for i := 1; i <= replicas; i++ {
		out = append(out, ComponentProcess{Name: ComponentAggregator + "-" + strconv.Itoa(i), Component: ComponentAggregator, Cluster: HubName})
	}
	// One console: it keeps no state, and a second would need a second
	// address for people to open.
	out = append(out, ComponentProcess{Name: ComponentConsole, Component: ComponentConsole, Cluster: HubName})
	for _, c := range dc.WorkloadClusters() {
		for i := 1; i <= replicas; i++ {
			out = append(out, ComponentProcess{Name: ComponentApps + "-" + c.Name + "-" + strconv.Itoa(i), Component: ComponentApps, Cluster: c.Name})
		}
	}
	for _, c := range dc.Clusters {
		out = append(out, ComponentProcess{Name: ComponentWebhook + "-" + c.Name, Component: ComponentWebhook, Cluster: c.Name})
	}
	if jobs {
		for _, c := range dc.Clusters {
			out = append(out, ComponentProcess{Name: kueueProcessName(c.Name), Component: ComponentKueue, Cluster: c.Name})
		}
	}
	return out
}

// replicas is how many of hub and of each apps the datacenter runs.
func (d *Datacenter) replicas() int {
	return max(d.Replicas, 1)
}

// brokerReplicas is how many broker processes the datacenter runs.
func (d *Datacenter) brokerReplicas() int {
	return max(d.BrokerReplicas, 1)
}

// firstBroker is the broker process whose ports are the datacenter's
// BrokerPort and BrokerMetricsPort, pinned at its creation, when the
// broker ran inside `strata up`.
const firstBroker = ComponentBroker + "-1"

// ComponentProcesses are the datacenter's component processes, with their
// ports, as its last start planned them.
func (d *Datacenter) ComponentProcesses() []ComponentProcess {
	procs := processNames(d, d.replicas(), d.brokerReplicas(), d.Jobs)
	for i := range procs {
		procs[i].Ports = d.Processes[procs[i].Name]
		if procs[i].Name == firstBroker {
			procs[i].Ports = ProcessPorts{GRPC: d.BrokerPort, Metrics: d.BrokerMetricsPort}
		}
	}
	return procs
}

// planProcesses records the number of replicas (of hub and apps, and of
// the broker) and whether Kueue runs, gives every process that has none
// its ports, and reports whether the datacenter changed.
func (d *Datacenter) planProcesses(replicas, brokers int, jobs bool) (bool, error) {
	changed := d.replicas() != replicas || d.brokerReplicas() != brokers || d.Jobs != jobs
	d.Replicas, d.BrokerReplicas, d.Jobs = replicas, brokers, jobs
	var missing []ComponentProcess
	need := 0
	for _, p := range processNames(d, replicas, brokers, jobs) {
		if _, ok := d.Processes[p.Name]; ok || p.Name == firstBroker {
			continue
		}
		missing = append(missing, p)
		need += 2
		if servesWebhook(p.Component) || p.Component == ComponentConsole {
			need++
		}
	}
	if len(missing) == 0 {
		return changed, nil
	}
	taken := d.takenPorts()
	var ports []uint32
	// A free port may be one that a stopped cluster's component owns: with
	// len(taken) more than needed, at least need of them are unowned.
	for len(ports) < need {
		got, err := freePorts(need - len(ports) + len(taken))
		if err != nil {
			return false, err
		}
		for _, p := range got {
			if !taken[p] && len(ports) < need {
				taken[p] = true
				ports = append(ports, p)
			}
		}
	}
	if d.Processes == nil {
		d.Processes = map[string]ProcessPorts{}
	}
	for _, p := range missing {
		pp := ProcessPorts{Health: ports[0], Metrics: ports[1]}
		if p.Component == ComponentBroker {
			pp = ProcessPorts{GRPC: ports[0], Metrics: ports[1]}
		}
		ports = ports[2:]
		switch {
		case servesWebhook(p.Component):
			pp.Webhook, ports = ports[0], ports[1:]
		case p.Component == ComponentConsole:
			pp.Console, ports = ports[0], ports[1:]
		}
		d.Processes[p.Name] = pp
	}
	return true, nil
}

// servesWebhook says whether a component's process serves admission
// webhooks, on a port of its own.
func servesWebhook(component string) bool {
	return component == ComponentWebhook || component == ComponentKueue
}

// takenPorts are the ports the datacenter has given to something.
func (d *Datacenter) takenPorts() map[uint32]bool {
	taken := map[uint32]bool{d.BrokerPort: true, d.BrokerMetricsPort: true, d.WebhookPort: true}
	for _, c := range d.Clusters {
		for _, cp := range c.Ports.byComponent() {
			taken[cp.port] = true
		}
	}
	for name, p := range d.Processes {
		for _, cp := range p.byComponent(name) {
			taken[cp.port] = true
		}
	}
	return taken
}

// processConfig is the configuration of a component process: the kind's
// defaults with the local values.
func (r *Running) processConfig(p ComponentProcess) (config.Object, error) {
	var obj config.Object
	switch p.Component {
	case ComponentBroker:
		obj = r.brokerConfig(p)
	case ComponentHub:
		// Each controller calls the broker with a certificate of its own.
		c := &configv1alpha1.HubConfiguration{Broker: configv1alpha1.BrokerClient{
			Addresses: r.Datacenter.BrokerAddresses(), TLSCAFile: PKIPath(r.opts.Home, "ca.crt"), ClientCertDir: PKIPath(r.opts.Home, hubClientCerts),
		}}
		r.localManager(&c.ControllerManager, p)
		if r.opts.NotReadyThreshold > 0 {
			c.Remediation.NotReadyThreshold = &metav1.Duration{Duration: r.opts.NotReadyThreshold}
		}
		if r.opts.FaultHoldOff > 0 {
			c.Remediation.FaultHoldOff = &metav1.Duration{Duration: r.opts.FaultHoldOff}
		}
		c.Jobs.Dispatcher = r.opts.JobsDispatcher
		obj = c
	case ComponentApps:
		c := &configv1alpha1.AppsConfiguration{ClusterName: p.Cluster}
		r.localManager(&c.ControllerManager, p)
		obj = c
	case ComponentWebhook:
		obj = &configv1alpha1.WebhookConfiguration{
			ClusterName: p.Cluster,
			Host:        "127.0.0.1",
			Port:        ptr.To(int32(p.Ports.Webhook)), //nolint:gosec // a TCP port
			CertDir:     filepath.Join(r.opts.Home, webhookDir),
			Health:      configv1alpha1.HealthConfiguration{BindAddress: loopback(p.Ports.Health)},
			Metrics:     configv1alpha1.MetricsConfiguration{BindAddress: loopback(p.Ports.Metrics)},
		}
	case ComponentAggregator:
		c := &configv1alpha1.AggregatorConfiguration{
			Database: configv1alpha1.Database{DSN: FleetStorePath(r.opts.Home)},
			Broker: &configv1alpha1.BrokerClient{
				Addresses: r.Datacenter.BrokerAddresses(), TLSCAFile: PKIPath(r.opts.Home, "ca.crt"), ClientCertDir: PKIPath(r.opts.Home, aggregatorClientCerts),
			},
			// Its own identity in each workload cluster, not the hub's.
			WorkloadClusters: configv1alpha1.AggregatorClusters{KubeconfigSecretSuffix: aggregatorKubeconfigSuffix},
		}
		r.localManager(&c.ControllerManager, p)
		obj = c
	case ComponentConsole:
		obj = &configv1alpha1.ConsoleConfiguration{
			Listen:   loopback(p.Ports.Console),
			Database: configv1alpha1.Database{DSN: FleetStorePath(r.opts.Home)},
			Health:   configv1alpha1.HealthConfiguration{BindAddress: loopback(p.Ports.Health)},
			Metrics:  configv1alpha1.MetricsConfiguration{BindAddress: loopback(p.Ports.Metrics)},
		}
	default:
		return nil, fmt.Errorf("unknown component %q", p.Component)
	}
	if err := config.Complete(obj); err != nil {
		return nil, fmt.Errorf("the configuration of %s: %w", p.Name, err)
	}
	return obj, nil
}

// localManager sets what a controller manager process has of its own in
// the local datacenter: loopback ports, and leader election on, so that
// replicas work, with the local lease timing.
func (r *Running) localManager(cm *configv1alpha1.ControllerManager, p ComponentProcess) {
	cm.Health.BindAddress = loopback(p.Ports.Health)
	cm.Metrics.BindAddress = loopback(p.Ports.Metrics)
	cm.LeaderElection.LeaderElect = ptr.To(true)
	cm.LeaderElection.LeaseDuration = &metav1.Duration{Duration: localLeaseDuration}
	cm.LeaderElection.RenewDeadline = &metav1.Duration{Duration: localRenewDeadline}
	cm.LeaderElection.RetryPeriod = &metav1.Duration{Duration: localRetryPeriod}
}

// writeProcessConfig writes the process's configuration file and returns
// the process that `strata serve` runs with it, as its ServiceAccount.
func (r *Running) writeProcessConfig(p ComponentProcess) (Process, error) {
	if p.Component == ComponentKueue {
		return r.writeKueueConfig(p)
	}
	obj, err := r.processConfig(p)
	if err != nil {
		return Process{}, err
	}
	raw, err := yaml.Marshal(obj)
	if err != nil {
		return Process{}, err
	}
	path := p.ConfigPath(r.opts.Home)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return Process{}, err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return Process{}, fmt.Errorf("writing the configuration of %s: %w", p.Name, err)
	}
	args := []string{"serve", p.Component, "--config", path}
	if p.Component != ComponentBroker {
		args = append(args, "--kubeconfig", IdentityKubeconfigPath(r.opts.Home, p.identity()))
	}
	return Process{Name: p.Name, Path: r.opts.Executable, Args: args}, nil
}

// brokerConfig is the configuration of a broker process: the inventory,
// its loopback ports, and the sim provisioner with the faults file of the
// home (shared by the replicas) and the workload clusters.
func (r *Running) brokerConfig(p ComponentProcess) *configv1alpha1.BrokerConfiguration {
	s := &configv1alpha1.SimProvisioner{
		// 0 is instant here, where the kind's default is not.
		MaintenanceDuration: &metav1.Duration{Duration: r.opts.MaintenanceDuration},
		FaultsFile:          filepath.Join(r.opts.Home, FaultsFile),
	}
	if r.opts.JoinDuration > 0 {
		s.JoinDuration = &metav1.Duration{Duration: r.opts.JoinDuration}
	}
	if r.opts.WipeDuration > 0 {
		s.WipeDuration = &metav1.Duration{Duration: r.opts.WipeDuration}
	}
	for _, c := range r.Datacenter.WorkloadClusters() {
		s.Clusters = append(s.Clusters, configv1alpha1.SimCluster{
			Name: c.Name, Kubeconfig: KubeconfigPath(r.opts.Home, c.Name),
			KubeletPort: int32(c.Ports.KwokController), //nolint:gosec // a TCP port
		})
	}
	return &configv1alpha1.BrokerConfiguration{
		Database:      configv1alpha1.Database{DSN: r.inventoryDSN()},
		Listen:        loopback(p.Ports.GRPC),
		MetricsListen: loopback(p.Ports.Metrics),
		// Mutual TLS, as in production; the replicas share one certificate.
		TLS: configv1alpha1.TLS{
			CertFile: PKIPath(r.opts.Home, brokerServingCert, "tls.crt"), KeyFile: PKIPath(r.opts.Home, brokerServingCert, "tls.key"),
			ClientCAFile: PKIPath(r.opts.Home, "ca.crt"),
		},
		Provisioner: configv1alpha1.Provisioner{Kind: configv1alpha1.ProvisionerSim, Sim: s},
	}
}

// identities are the ServiceAccounts the processes run as, the one the
// hub's controllers use on each workload cluster and, with jobs, the one
// the hub's Kueue uses there.
func (d *Datacenter) identities() []Identity {
	var ids []Identity
	for _, p := range d.ComponentProcesses() {
		if id := p.identity(); id != (Identity{}) && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for _, c := range d.WorkloadClusters() {
		ids = append(ids, Identity{Cluster: c.Name, ServiceAccount: hubServiceAccount}, Identity{Cluster: c.Name, ServiceAccount: aggregatorServiceAccount})
		if d.Jobs {
			ids = append(ids, multiKueueIdentity(c.Name))
		}
	}
	return ids
}
