package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +kubebuilder:object:root=true

// AggregatorConfiguration configures `strata serve aggregator`: the fleet
// aggregator, which watches the hub, every workload cluster and the Compute
// Broker and keeps what the console shows in the fleet store.
type AggregatorConfiguration struct {
	metav1.TypeMeta `json:",inline"`
	// ControllerManager: health, metrics, leader election (Lease
	// strata-aggregator), client limits towards the hub.
	ControllerManager `json:",inline"`
	// database is the fleet store: a SQLite file (one replica, shared
	// with the console on its host) or PostgreSQL (production).
	// +required
	Database Database `json:"database"`
	// broker is how it reaches the Compute Broker, as an identity with the
	// viewer role: its client certificate is clientCertDir/fleet-aggregator/.
	// Without it, the store has no machines, broker pools or disruptions.
	// +optional
	Broker *BrokerClient `json:"broker,omitempty"`
	// workloadClusters configures its connections to the workload clusters.
	// +optional
	WorkloadClusters AggregatorClusters `json:"workloadClusters,omitempty"`
	// flushInterval is the longest a change waits to be written with
	// others in one transaction. Defaults to 200ms.
	// +optional
	FlushInterval *metav1.Duration `json:"flushInterval,omitempty"`
}

// AggregatorClusters configures the aggregator's connections to the
// workload clusters.
type AggregatorClusters struct {
	// kubeconfigSecretSuffix, when set, has the aggregator reach each
	// workload cluster as its own identity: the kubeconfig of the Secret
	// <name of the Cluster><suffix>, key "kubeconfig", in the namespace of the
	// Cluster's kubeconfig Secret. Empty: the Cluster's kubeconfig Secret
	// (the hub's identity there).
	// +optional
	KubeconfigSecretSuffix string `json:"kubeconfigSecretSuffix,omitempty"`
	// requestTimeout bounds each request other than a watch. Defaults to
	// 30s (a page of 500 pods).
	// +optional
	RequestTimeout *metav1.Duration `json:"requestTimeout,omitempty"`
	// qps and burst limit the client of each workload cluster. Default to
	// 50 and 100: it lists and watches, it does not write.
	// +optional
	QPS *float32 `json:"qps,omitempty"`
	// +optional
	Burst *int32 `json:"burst,omitempty"`
}

// +kubebuilder:object:root=true

// ConsoleConfiguration configures `strata serve console`: the fleet
// console, a web application over the fleet store.
type ConsoleConfiguration struct {
	metav1.TypeMeta `json:",inline"`
	// listen is host:port of the console. Defaults to 127.0.0.1:8090. A
	// non-loopback address needs tls: people sign in with a Kubernetes
	// bearer token, reviewed by the hub, and see what its RBAC lets them.
	// +optional
	Listen string `json:"listen,omitempty"`
	// tls is the console's serving certificate (clientCAFile is not used).
	// +optional
	TLS TLS `json:"tls,omitempty"`
	// database is the fleet store the aggregator writes.
	// +required
	Database Database `json:"database"`
	// health is where /healthz and /readyz are served.
	// +optional
	Health HealthConfiguration `json:"health,omitempty"`
	// metrics is where Prometheus /metrics is served.
	// +optional
	Metrics MetricsConfiguration `json:"metrics,omitempty"`
	// pollInterval is how often the console reads the store's revisions
	// to push changes to browsers. Defaults to 250ms.
	// +optional
	PollInterval *metav1.Duration `json:"pollInterval,omitempty"`
}
