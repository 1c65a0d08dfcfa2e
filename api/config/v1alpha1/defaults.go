package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The defaults of the configuration kinds, in one place. The components'
// own packages keep theirs for callers that build options by hand; tests
// of `strata serve` check that the two agree.
const (
	// SystemNamespace holds Strata's own objects, the Leases among them.
	SystemNamespace = "strata-system"
	// HubLeaseName and AppsLeaseName are the Leases of the controller
	// managers' leader elections (the broker's is a PostgreSQL lock).
	HubLeaseName  = "strata-hub"
	AppsLeaseName = "strata-apps"

	DefaultHealthBindAddress  = ":8081"
	DefaultMetricsBindAddress = ":8080"
	DefaultLeaseDuration      = 15 * time.Second
	DefaultRenewDeadline      = 10 * time.Second
	DefaultRetryPeriod        = 2 * time.Second
	// DefaultQPS and DefaultBurst: onboarding 200 app namespaces at once is
	// some 600 writes (finalizer, status, event), and a 1,000-replica app
	// is many pods to judge and write.
	DefaultQPS   float32 = 200
	DefaultBurst int32   = 400

	DefaultBrokerTimeout     = 30 * time.Second
	DefaultProbeInterval     = 30 * time.Second
	DefaultBootstrapTokenTTL = 24 * time.Hour
	// MinBootstrapTokenTTL: a machine may take minutes to join.
	MinBootstrapTokenTTL     = 10 * time.Minute
	DefaultDrainDeadline     = 10 * time.Minute
	DefaultNotReadyThreshold = 2 * time.Minute
	DefaultFaultHoldOff      = time.Minute
	DefaultRemediationResync = 30 * time.Second
	DefaultActiveInterval    = 2 * time.Second

	DefaultClusterRequestTimeout              = 10 * time.Second
	DefaultClusterConnectTimeout              = 30 * time.Second
	DefaultClusterProbeInterval               = 10 * time.Second
	DefaultClusterProbeFailureThreshold int32 = 3

	DefaultWebhookPort    int32 = 9443
	DefaultWebhookCertDir       = "/etc/strata/webhook-certs"

	DefaultBrokerListen                  = "127.0.0.1:7443"
	DefaultBrokerMetricsListen           = "127.0.0.1:9443"
	DefaultMaxPlannedZones         int32 = 1
	DefaultMaxPoolDisruptedPercent int32 = 10
	DefaultSimJoinDuration               = 2 * time.Second
	DefaultSimWipeDuration               = 5 * time.Second
	DefaultSimMaintenanceDuration        = 3 * time.Second
	DefaultBrokerLeaderRetryPeriod       = 2 * time.Second

	AggregatorLeaseName = "strata-aggregator"
	// AggregatorBrokerCaller is the directory of the aggregator's client
	// certificate under broker.clientCertDir.
	AggregatorBrokerCaller                  = "fleet-aggregator"
	DefaultAggregatorFlushInterval          = 200 * time.Millisecond
	DefaultAggregatorRequestTimeout         = 30 * time.Second
	DefaultAggregatorQPS            float32 = 50
	DefaultAggregatorBurst          int32   = 100
	DefaultConsoleListen                    = "127.0.0.1:8090"
	DefaultConsolePollInterval              = 250 * time.Millisecond
)

func durationOr(d **metav1.Duration, def time.Duration) {
	if *d == nil {
		*d = &metav1.Duration{Duration: def}
	}
}

func stringOr(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func (c *ControllerManager) defaults(lease string) {
	stringOr(&c.Health.BindAddress, DefaultHealthBindAddress)
	stringOr(&c.Metrics.BindAddress, DefaultMetricsBindAddress)
	c.LeaderElection.defaults(lease, true)
	c.ClientConnection.defaults()
}

func (l *LeaderElection) defaults(lease string, elect bool) {
	if l.LeaderElect == nil {
		l.LeaderElect = ptr.To(elect)
	}
	stringOr(&l.ResourceName, lease)
	stringOr(&l.ResourceNamespace, SystemNamespace)
	durationOr(&l.LeaseDuration, DefaultLeaseDuration)
	durationOr(&l.RenewDeadline, DefaultRenewDeadline)
	durationOr(&l.RetryPeriod, DefaultRetryPeriod)
}

func (c *ClientConnection) defaults() {
	if c.QPS == nil {
		c.QPS = ptr.To(DefaultQPS)
	}
	if c.Burst == nil {
		c.Burst = ptr.To(DefaultBurst)
	}
}
func typeMeta(t *metav1.TypeMeta, kind string) {
	if t.APIVersion == "" {
		t.APIVersion = GroupVersion.String()
	}
	if t.Kind == "" {
		t.Kind = kind
	}
}

// Default sets every field left empty to its default.
func (c *HubConfiguration) Default() {
	typeMeta(&c.TypeMeta, "HubConfiguration")
	c.defaults(HubLeaseName)
	durationOr(&c.Broker.Timeout, DefaultBrokerTimeout)
	durationOr(&c.Cluster.ProbeInterval, DefaultProbeInterval)
	durationOr(&c.Pool.BootstrapTokenTTL, DefaultBootstrapTokenTTL)
	durationOr(&c.ClusterManager.DrainDeadline, DefaultDrainDeadline)
	durationOr(&c.Remediation.NotReadyThreshold, DefaultNotReadyThreshold)
	durationOr(&c.Remediation.FaultHoldOff, DefaultFaultHoldOff)
	durationOr(&c.Remediation.ResyncInterval, DefaultRemediationResync)
	durationOr(&c.Rollout.ActiveInterval, DefaultActiveInterval)
	if c.Jobs.Dispatcher == "" {
		c.Jobs.Dispatcher = StrataDispatcher
	}
	w := &c.WorkloadClusters
	durationOr(&w.RequestTimeout, DefaultClusterRequestTimeout)
	durationOr(&w.ConnectTimeout, DefaultClusterConnectTimeout)
	durationOr(&w.ProbeInterval, DefaultClusterProbeInterval)
	if w.ProbeFailureThreshold == nil {
		w.ProbeFailureThreshold = ptr.To(DefaultClusterProbeFailureThreshold)
	}
	if w.QPS == nil {
		w.QPS = ptr.To(DefaultQPS)
	}
	if w.Burst == nil {
		w.Burst = ptr.To(DefaultBurst)
	}
}

// Default sets every field left empty to its default.
func (c *AppsConfiguration) Default() {
	typeMeta(&c.TypeMeta, "AppsConfiguration")
	c.defaults(AppsLeaseName)
}

// Default sets every field left empty to its default.
func (c *WebhookConfiguration) Default() {
	typeMeta(&c.TypeMeta, "WebhookConfiguration")
	if c.Port == nil {
		c.Port = ptr.To(DefaultWebhookPort)
	}
	stringOr(&c.CertDir, DefaultWebhookCertDir)
	stringOr(&c.Health.BindAddress, DefaultHealthBindAddress)
	stringOr(&c.Metrics.BindAddress, DefaultMetricsBindAddress)
	c.ClientConnection.defaults()
}

// Default sets every field left empty to its default.
func (c *BrokerConfiguration) Default() {
	typeMeta(&c.TypeMeta, "BrokerConfiguration")
	stringOr(&c.Listen, DefaultBrokerListen)
	stringOr(&c.MetricsListen, DefaultBrokerMetricsListen)
	if c.Budget.MaxPlannedZones == nil {
		c.Budget.MaxPlannedZones = ptr.To(DefaultMaxPlannedZones)
	}
	if c.Budget.MaxPoolDisruptedPercent == nil {
		c.Budget.MaxPoolDisruptedPercent = ptr.To(DefaultMaxPoolDisruptedPercent)
	}
	if c.Provisioner.Kind == "" {
		c.Provisioner.Kind = ProvisionerSim
	}
	if c.Provisioner.Kind == ProvisionerSim {
		if c.Provisioner.Sim == nil {
			c.Provisioner.Sim = &SimProvisioner{}
		}
		durationOr(&c.Provisioner.Sim.JoinDuration, DefaultSimJoinDuration)
		durationOr(&c.Provisioner.Sim.WipeDuration, DefaultSimWipeDuration)
		durationOr(&c.Provisioner.Sim.MaintenanceDuration, DefaultSimMaintenanceDuration)
	}
	if c.LeaderElection.LeaderElect == nil {
		c.LeaderElection.LeaderElect = ptr.To(true)
	}
	durationOr(&c.LeaderElection.RetryPeriod, DefaultBrokerLeaderRetryPeriod)
}

// The Compute Broker's built-in roles (their RPCs are the broker's:
// docs/broker.md lists them).
const (
	// RolePoolManager: the hub's pool controller: node profiles, pools and
	// their join targets, approving the shrinks of pools whose cluster is gone.
	RolePoolManager = "pool-manager"
	// RoleMaintenance: the maintenance orchestrator: disruptions of reason
	// planned-upgrade, started and cancelled.
	RoleMaintenance = "maintenance"
	// RoleRemediation: the remediation controller: disruptions of reason
	// remediation, started and cancelled.
	RoleRemediation = "remediation"
	// RoleClusterManager: the cluster manager: approves and completes
	// disruptions once their Node is drained, and records its steps.
	RoleClusterManager = "cluster-manager"
	// RoleViewer reads everything and changes nothing.
	RoleViewer = "viewer"
	// RoleAdmin may call every RPC.
	RoleAdmin = "admin"

	// RoleGroupPrefix: by default, group strata:<role> holds the built-in
	// role <role> (a certificate's organization).
	RoleGroupPrefix = "strata:"
	// StaticTokenUser is the identity of the holder of the broker's static
	// bearer token (tokenFile), the legacy mode.
	StaticTokenUser = "strata:static-token"
)

// BuiltinBrokerRoles are the built-in roles' names.
var BuiltinBrokerRoles = []string{RolePoolManager, RoleMaintenance, RoleRemediation, RoleClusterManager, RoleViewer, RoleAdmin}

// Default gives a policy without bindings the built-in ones: group
// strata:<role> for each built-in role, and the static token's holder admin
// (what the token could do before there were roles).
func (p *BrokerPolicy) Default() {
	typeMeta(&p.TypeMeta, "BrokerPolicy")
	if p.Bindings != nil {
		return
	}
	for _, r := range BuiltinBrokerRoles {
		p.Bindings = append(p.Bindings, BrokerRoleBinding{Role: r, Groups: []string{RoleGroupPrefix + r}})
	}
	p.Bindings = append(p.Bindings, BrokerRoleBinding{Role: RoleAdmin, Users: []string{StaticTokenUser}})
}

// Default sets every field left empty to its default.
func (c *AggregatorConfiguration) Default() {
	typeMeta(&c.TypeMeta, "AggregatorConfiguration")
	c.defaults(AggregatorLeaseName)
	if c.Broker != nil {
		durationOr(&c.Broker.Timeout, DefaultBrokerTimeout)
	}
	durationOr(&c.FlushInterval, DefaultAggregatorFlushInterval)
	w := &c.WorkloadClusters
	durationOr(&w.RequestTimeout, DefaultAggregatorRequestTimeout)
	if w.QPS == nil {
		w.QPS = ptr.To(DefaultAggregatorQPS)
	}
	if w.Burst == nil {
		w.Burst = ptr.To(DefaultAggregatorBurst)
	}
}

// Default sets every field left empty to its default.
func (c *ConsoleConfiguration) Default() {
	typeMeta(&c.TypeMeta, "ConsoleConfiguration")
	stringOr(&c.Listen, DefaultConsoleListen)
	stringOr(&c.Health.BindAddress, DefaultHealthBindAddress)
	stringOr(&c.Metrics.BindAddress, DefaultMetricsBindAddress)
	durationOr(&c.PollInterval, DefaultConsolePollInterval)
}
