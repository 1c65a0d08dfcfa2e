package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ControllerManager are the settings every controller manager shares: where
// it answers health checks and serves metrics, how it elects its leader and
// how fast it may talk to its API server.
type ControllerManager struct {
	// health is where /healthz and /readyz are served.
	// +optional
	Health HealthConfiguration `json:"health,omitempty"`
	// metrics is where Prometheus /metrics is served.
	// +optional
	Metrics MetricsConfiguration `json:"metrics,omitempty"`
	// leaderElection says whether and how replicas elect the one that works.
	// +optional
	LeaderElection LeaderElection `json:"leaderElection,omitempty"`
	// clientConnection limits the requests to the API server.
	// +optional
	ClientConnection ClientConnection `json:"clientConnection,omitempty"`
}

// HealthConfiguration is where the health endpoints are served.
type HealthConfiguration struct {
	// bindAddress is host:port of /healthz and /readyz ("0" disables them).
	// Defaults to ":8081".
	// +optional
	BindAddress string `json:"bindAddress,omitempty"`
}

// MetricsConfiguration is where the metrics are served.
type MetricsConfiguration struct {
	// bindAddress is host:port of /metrics ("0" disables it). Defaults to
	// ":8080".
	// +optional
	BindAddress string `json:"bindAddress,omitempty"`
}

// LeaderElection says how the replicas of a component elect the one that
// works, through a coordination.k8s.io Lease released on shutdown.
type LeaderElection struct {
	// leaderElect turns leader election on. Defaults to true (false for
	// the broker, whose single SQLite replica needs none).
	// +optional
	LeaderElect *bool `json:"leaderElect,omitempty"`
	// resourceName is the name of the Lease. Defaults to the component's
	// (strata-hub, strata-apps, strata-broker).
	// +optional
	ResourceName string `json:"resourceName,omitempty"`
	// resourceNamespace is the namespace of the Lease. Defaults to
	// strata-system.
	// +optional
	ResourceNamespace string `json:"resourceNamespace,omitempty"`
	// leaseDuration is how long the others wait before taking over a
	// leadership that is not renewed. Defaults to 15s.
	// +optional
	LeaseDuration *metav1.Duration `json:"leaseDuration,omitempty"`
	// renewDeadline is how long the leader keeps trying to renew before it
	// gives up leading. Defaults to 10s; less than leaseDuration.
	// +optional
	RenewDeadline *metav1.Duration `json:"renewDeadline,omitempty"`
	// retryPeriod is how often the candidates try to acquire or renew.
	// Defaults to 2s; less than renewDeadline.
	// +optional
	RetryPeriod *metav1.Duration `json:"retryPeriod,omitempty"`
}

// ClientConnection limits the requests of a component to its API server.
type ClientConnection struct {
	// qps is the sustained requests per second. Defaults to 200.
	// +optional
	QPS *float32 `json:"qps,omitempty"`
	// burst is the requests allowed above qps for a moment. Defaults to 400.
	// +optional
	Burst *int32 `json:"burst,omitempty"`
}

// +kubebuilder:object:root=true

// HubConfiguration configures `strata serve hub`: the hub's controllers
// (clusters, pools, cluster manager, maintenance orchestrator, remediation,
// app namespaces).
type HubConfiguration struct {
	metav1.TypeMeta `json:",inline"`
	// ControllerManager: health, metrics, leader election, client limits.
	ControllerManager `json:",inline"`
	// broker is how the hub's controllers reach the Compute Broker.
	// +required
	Broker BrokerClient `json:"broker"`
	// cluster configures the cluster controller.
	// +optional
	Cluster ClusterController `json:"cluster,omitempty"`
	// pool configures the pool controller.
	// +optional
	Pool PoolController `json:"pool,omitempty"`
	// clusterManager configures the cluster manager.
	// +optional
	ClusterManager ClusterManagerController `json:"clusterManager,omitempty"`
	// remediation configures the remediation controller.
	// +optional
	Remediation RemediationController `json:"remediation,omitempty"`
	// rollout configures the maintenance orchestrator.
	// +optional
	Rollout RolloutController `json:"rollout,omitempty"`
	// workloadClusters configures the hub's connections to the workload
	// clusters: one per cluster, each with its own deadlines and probe, so
	// an unreachable cluster does not slow the others.
	// +optional
	WorkloadClusters WorkloadClusters `json:"workloadClusters,omitempty"`
	// jobs configures the hub's part of the jobs platform.
	// +optional
	Jobs JobsController `json:"jobs,omitempty"`
}

// JobsDispatcher is who picks the workload cluster of each job the hub's
// Kueue reserved quota for.
type JobsDispatcher string

// Dispatchers.
const (
	// StrataDispatcher: Strata's dispatcher (internal/workload/dispatch)
	// filters and scores the clusters by room, readiness and maintenance.
	StrataDispatcher JobsDispatcher = "Strata"
	// KueueAllAtOnceDispatcher: Kueue's default, every cluster at once;
	// the first to admit keeps the job.
	KueueAllAtOnceDispatcher JobsDispatcher = "KueueAllAtOnce"
	// KueueIncrementalDispatcher: Kueue's, three more clusters in
	// alphabetical order every five minutes.
	KueueIncrementalDispatcher JobsDispatcher = "KueueIncremental"
)

// JobsController configures the hub's part of the jobs platform.
type JobsController struct {
	// dispatcher picks the workload cluster of each job: Strata (the
	// default) or one of Kueue's own (KueueAllAtOnce, KueueIncremental),
	// to compare them. The hub Kueue's multiKueue.dispatcherName must
	// name the same one; Strata's dispatcher runs only when it is Strata.
	// +optional
	Dispatcher JobsDispatcher `json:"dispatcher,omitempty"`
}

// WorkloadClusters configures the connections to the workload clusters.
type WorkloadClusters struct {
	// requestTimeout bounds each request to a workload cluster's API
	// server. Defaults to 10s.
	// +optional
	RequestTimeout *metav1.Duration `json:"requestTimeout,omitempty"`
	// connectTimeout bounds a connection: reaching the API server and the
	// first list of its Pool Nodes. Defaults to 30s.
	// +optional
	ConnectTimeout *metav1.Duration `json:"connectTimeout,omitempty"`
	// probeInterval is how often a connected cluster's API server is asked
	// for its version. Defaults to 10s.
	// +optional
	ProbeInterval *metav1.Duration `json:"probeInterval,omitempty"`
	// probeFailureThreshold is how many probes in a row must fail before
	// the cluster is disconnected. Defaults to 3.
	// +optional
	ProbeFailureThreshold *int32 `json:"probeFailureThreshold,omitempty"`
	// qps and burst limit the client of each workload cluster. Default to
	// 200 and 400.
	// +optional
	QPS *float32 `json:"qps,omitempty"`
	// +optional
	Burst *int32 `json:"burst,omitempty"`
}

// BrokerLeaderElection configures the election among broker replicas: an
// advisory lock in the inventory's PostgreSQL database, so no lease
// duration (the lock goes with the leader's connection). SQLite is
// single-replica and ignores it.
type BrokerLeaderElection struct {
	// leaderElect turns the election on. Defaults to true.
	// +optional
	LeaderElect *bool `json:"leaderElect,omitempty"`
	// retryPeriod is how often a standby tries to take the lock and the
	// leader checks it still holds it. Defaults to 2s.
	// +optional
	RetryPeriod *metav1.Duration `json:"retryPeriod,omitempty"`
}

// BrokerClient is how a component reaches the Compute Broker.
type BrokerClient struct {
	// addresses are the broker's gRPC endpoints (host:port, or a gRPC
	// target such as dns:///strata-broker.strata-system.svc:9090).
	// +required
	Addresses []string `json:"addresses"`
	// tlsCAFile is the CA certificate of a broker that serves TLS; empty:
	// plaintext (loopback only when a token or certificate is sent).
	// +optional
	TLSCAFile string `json:"tlsCAFile,omitempty"`
	// clientCertDir holds a client certificate per hub controller that
	// calls the broker, each in a directory of its name with tls.crt and
	// tls.key (a cert-manager Secret mounted there): pool-controller,
	// cluster-manager, maintenance-orchestrator, remediation-controller.
	// Each controller is then its own identity at the broker, holding only
	// its role. Reloaded when they change. Needs tlsCAFile.
	// +optional
	ClientCertDir string `json:"clientCertDir,omitempty"`
	// tokenFile holds a static bearer token, the legacy alternative to
	// client certificates (docs/broker.md); refused to a non-loopback
	// broker without tlsCAFile.
	// +optional
	TokenFile string `json:"tokenFile,omitempty"`
	// timeout bounds each call that has no deadline of its own. Defaults
	// to 30s.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// ClusterController configures the cluster controller.
type ClusterController struct {
	// probeInterval is how often a workload cluster is probed when nothing
	// changes. Defaults to 30s.
	// +optional
	ProbeInterval *metav1.Duration `json:"probeInterval,omitempty"`
}

// PoolController configures the pool controller.
type PoolController struct {
	// bootstrapTokenTTL is how long the bootstrap token a Pool's machines
	// join its cluster with lives; it is replaced after two thirds of it.
	// At least 10m. Defaults to 24h.
	// +optional
	BootstrapTokenTTL *metav1.Duration `json:"bootstrapTokenTTL,omitempty"`
}

// ClusterManagerController configures the cluster manager.
type ClusterManagerController struct {
	// drainDeadline is how long a drain may take before the Cluster says
	// it is stuck. Defaults to 10m.
	// +optional
	DrainDeadline *metav1.Duration `json:"drainDeadline,omitempty"`
}

// RemediationController configures the remediation controller.
type RemediationController struct {
	// notReadyThreshold is how long a Node must be NotReady or Unknown
	// before remediation acts. Defaults to 2m.
	// +optional
	NotReadyThreshold *metav1.Duration `json:"notReadyThreshold,omitempty"`
	// faultHoldOff is how long the broker must report a machine faulty
	// before remediation acts. Defaults to 1m.
	// +optional
	FaultHoldOff *metav1.Duration `json:"faultHoldOff,omitempty"`
	// resyncInterval is how often a pool is looked at when nothing
	// changes. Defaults to 30s.
	// +optional
	ResyncInterval *metav1.Duration `json:"resyncInterval,omitempty"`
}

// RolloutController configures the maintenance orchestrator.
type RolloutController struct {
	// activeInterval is how soon a rollout that is not complete is looked
	// at again. Defaults to 2s.
	// +optional
	ActiveInterval *metav1.Duration `json:"activeInterval,omitempty"`
}

// +kubebuilder:object:root=true

// AppsConfiguration configures `strata serve apps`: the StatelessApp and
// StatefulApp controllers of one workload cluster.
type AppsConfiguration struct {
	metav1.TypeMeta `json:",inline"`
	// ControllerManager: health, metrics, leader election, client limits.
	ControllerManager `json:",inline"`
	// clusterName is the name of the workload cluster, as registered on
	// the hub; it appears in the controllers' events and messages.
	// +required
	ClusterName string `json:"clusterName"`
}

// +kubebuilder:object:root=true

// WebhookConfiguration configures `strata serve webhook`: the guardrails'
// admission webhook of one cluster. Every replica serves; there is no
// leader.
type WebhookConfiguration struct {
	metav1.TypeMeta `json:",inline"`
	// clusterName is the name of the cluster, for the webhook's messages.
	// +required
	ClusterName string `json:"clusterName"`
	// port is the HTTPS port of the webhook. Defaults to 9443.
	// +optional
	Port *int32 `json:"port,omitempty"`
	// host is the address the webhook listens on; empty: every address.
	// +optional
	Host string `json:"host,omitempty"`
	// certDir holds tls.crt and tls.key (and ca.crt to inject), reloaded
	// when they change. Defaults to /etc/strata/webhook-certs.
	// +optional
	CertDir string `json:"certDir,omitempty"`
	// validatingWebhookConfigurations are the names of the
	// ValidatingWebhookConfigurations whose caBundle is set from
	// certDir/ca.crt.
	// +optional
	ValidatingWebhookConfigurations []string `json:"validatingWebhookConfigurations,omitempty"`
	// health is where /healthz and /readyz are served.
	// +optional
	Health HealthConfiguration `json:"health,omitempty"`
	// metrics is where Prometheus /metrics is served.
	// +optional
	Metrics MetricsConfiguration `json:"metrics,omitempty"`
	// clientConnection limits the requests to the API server.
	// +optional
	ClientConnection ClientConnection `json:"clientConnection,omitempty"`
}

// +kubebuilder:object:root=true

// BrokerConfiguration configures `strata serve broker`: the Compute Broker.
type BrokerConfiguration struct {
	metav1.TypeMeta `json:",inline"`
	// database is the inventory database.
	// +required
	Database Database `json:"database"`
	// listen is host:port of the gRPC API. Defaults to 127.0.0.1:7443.
	// +optional
	Listen string `json:"listen,omitempty"`
	// metricsListen is host:port of /metrics; "0" disables it. Defaults
	// to 127.0.0.1:9443.
	// +optional
	MetricsListen string `json:"metricsListen,omitempty"`
	// tls is the broker's serving certificate and the CA of its clients'
	// certificates; empty: plaintext, loopback only.
	// +optional
	TLS TLS `json:"tls,omitempty"`
	// policyFile is a BrokerPolicy: who may call which RPC. Empty: the
	// built-in policy, where group strata:<role> holds role <role>
	// (docs/broker.md).
	// +optional
	PolicyFile string `json:"policyFile,omitempty"`
	// tokenFile holds a static bearer token, the legacy alternative to
	// client certificates: its holder is the identity strata:static-token.
	// Needs tls unless listen is a loopback address.
	// +optional
	TokenFile string `json:"tokenFile,omitempty"`
	// insecure allows a non-loopback listen address without TLS and any
	// authentication: every caller is system:anonymous and may do
	// everything. Never with tokenFile.
	// +optional
	Insecure bool `json:"insecure,omitempty"`
	// budget limits the disruptions the broker approves at once.
	// +optional
	Budget Budget `json:"budget,omitempty"`
	// provisioner joins machines to clusters, wipes them and performs
	// operations.
	// +optional
	Provisioner Provisioner `json:"provisioner,omitempty"`
	// leaderElection: when several replicas share a PostgreSQL inventory,
	// one leads, holding a PostgreSQL advisory lock (docs/broker.md).
	// +optional
	LeaderElection BrokerLeaderElection `json:"leaderElection,omitempty"`
}

// Database is the inventory database: a DSN, or a file holding one (a
// mounted Secret).
type Database struct {
	// dsn is postgres://... or a SQLite file path. One of dsn, dsnFile.
	// +optional
	DSN string `json:"dsn,omitempty"`
	// dsnFile is a file holding the DSN. One of dsn, dsnFile.
	// +optional
	DSNFile string `json:"dsnFile,omitempty"`
}

// TLS is a serving certificate, and the CA of the clients' certificates.
type TLS struct {
	// certFile is the certificate, PEM; reloaded when it changes.
	// +optional
	CertFile string `json:"certFile,omitempty"`
	// keyFile is its key, PEM.
	// +optional
	KeyFile string `json:"keyFile,omitempty"`
	// clientCAFile is the CA of the clients' certificates, PEM: mutual
	// TLS, the production mode. A caller's identity is its certificate's
	// subject: the common name its name, the organizations its groups.
	// Needs certFile.
	// +optional
	ClientCAFile string `json:"clientCAFile,omitempty"`
}

// +kubebuilder:object:root=true

// BrokerPolicy says who may call which RPC of the Compute Broker: roles,
// each a list of RPCs, and bindings of identities and groups to roles. The
// built-in roles (pool-manager, maintenance, remediation, cluster-manager,
// viewer, admin; docs/broker.md) are always there.
type BrokerPolicy struct {
	metav1.TypeMeta `json:",inline"`
	// roles are roles of this policy's own, beside the built-in ones.
	// +optional
	// +listType=map
	// +listMapKey=name
	Roles []BrokerRole `json:"roles,omitempty"`
	// bindings give roles to identities and groups. Defaults, when left
	// out, to group strata:<role> for each built-in role, and the static
	// token's holder (strata:static-token) to admin.
	// +optional
	Bindings []BrokerRoleBinding `json:"bindings,omitempty"`
}

// BrokerRole is a set of RPCs.
type BrokerRole struct {
	// name names the role; not a built-in role's name.
	// +required
	Name string `json:"name"`
	// rpcs are the RPCs the role may call: a method of
	// strata.broker.v1.BrokerService by its name (CreatePool), another
	// service's as package.Service/Method, or "*" for every RPC.
	// +required
	RPCs []string `json:"rpcs"`
	// disruptionReasons, when not empty, are the only reasons of the
	// disruptions the role may create (CreateDisruption): planned-upgrade,
	// hardware-repair, decommission, remediation.
	// +optional
	DisruptionReasons []string `json:"disruptionReasons,omitempty"`
}

// BrokerRoleBinding gives a role to identities and groups.
type BrokerRoleBinding struct {
	// role is a built-in role or one of roles.
	// +required
	Role string `json:"role"`
	// users are identities by name (a certificate's common name).
	// +optional
	Users []string `json:"users,omitempty"`
	// groups are groups (a certificate's organizations).
	// +optional
	Groups []string `json:"groups,omitempty"`
}

// Budget limits the disruptions the broker approves at once.
type Budget struct {
	// maxPlannedZones is the maintenance zones per datacenter in planned
	// maintenance at once. Defaults to the broker's.
	// +optional
	MaxPlannedZones *int32 `json:"maxPlannedZones,omitempty"`
	// maxPoolDisruptedPercent is the share of a pool's capacity disrupted
	// at once, 1 to 100. Defaults to the broker's.
	// +optional
	MaxPoolDisruptedPercent *int32 `json:"maxPoolDisruptedPercent,omitempty"`
}

// ProvisionerKind names a provisioner.
// +enum
type ProvisionerKind string

const (
	// ProvisionerSim plays the kubelet: it registers each machine's Node
	// itself. Only for clusters whose Nodes are simulated (kwok).
	ProvisionerSim ProvisionerKind = "sim"
	// ProvisionerNone joins nothing; disruptions with an operation are
	// refused.
	ProvisionerNone ProvisionerKind = "none"
)

// Provisioner says what joins machines to clusters and wipes them.
type Provisioner struct {
	// kind is sim or none. Defaults to sim.
	// +optional
	Kind ProvisionerKind `json:"kind,omitempty"`
	// sim configures the sim provisioner; only with kind sim.
	// +optional
	Sim *SimProvisioner `json:"sim,omitempty"`
}

// SimProvisioner configures the sim provisioner.
type SimProvisioner struct {
	// joinDuration is how long it takes to image a machine and register
	// its Node; positive.
	// +optional
	JoinDuration *metav1.Duration `json:"joinDuration,omitempty"`
	// wipeDuration is how long it takes to wipe a released machine;
	// positive.
	// +optional
	WipeDuration *metav1.Duration `json:"wipeDuration,omitempty"`
	// maintenanceDuration is how long it takes to reboot or reimage a
	// machine; 0 is instant.
	// +optional
	MaintenanceDuration *metav1.Duration `json:"maintenanceDuration,omitempty"`
	// faultsFile keeps the simulated faults (`strata sim fail`) across
	// restarts, and shares them between replicas: a JSON file whose
	// directory must exist. Empty: the faults last as long as the process.
	// +optional
	FaultsFile string `json:"faultsFile,omitempty"`
	// clusters are the clusters where machines' Nodes may live, known from
	// the start, so that the Nodes of machines faulted before a restart are
	// found before any machine joins again. Names are unique.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Clusters []SimCluster `json:"clusters,omitempty"`
}

// SimCluster is a cluster the sim provisioner knows from its start.
type SimCluster struct {
	// name is the cluster's, as the hub registers it.
	// +required
	Name string `json:"name"`
	// kubeconfig is the path of a kubeconfig file of the cluster, read at
	// start.
	// +required
	Kubeconfig string `json:"kubeconfig"`
	// kubeletPort is the loopback port where kwok serves the kubelet API
	// of the cluster's Nodes (pod logs); 0: none.
	// +optional
	KubeletPort int32 `json:"kubeletPort,omitempty"`
}
