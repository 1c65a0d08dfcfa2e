package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types and reasons of a Cluster.
const (
	// ClusterReadyCondition is True when the hub can reach the workload
	// cluster's API server and it reports itself ready.
	ClusterReadyCondition = "Ready"

	// ClusterReachableReason: the API server answered and is ready.
	ClusterReachableReason = "Reachable"
	// KubeconfigSecretNotFoundReason: the referenced Secret or its key is missing.
	KubeconfigSecretNotFoundReason = "KubeconfigSecretNotFound"
	// KubeconfigInvalidReason: the Secret holds no usable kubeconfig.
	KubeconfigInvalidReason = "KubeconfigInvalid"
	// APIServerUnreachableReason: the API server did not answer.
	APIServerUnreachableReason = "APIServerUnreachable"
	// APIServerNotReadyReason: the API server answered but is not ready.
	APIServerNotReadyReason = "APIServerNotReady"

	// ClusterDrainsOnScheduleCondition is True when every drain the cluster
	// manager runs for a broker disruption is within its deadline; False
	// names the Nodes, disruptions and blocking pods of those that are not.
	// Only the cluster manager writes it.
	ClusterDrainsOnScheduleCondition = "DrainsOnSchedule"

	// DrainsWithinDeadlineReason: no drain has run past its deadline.
	DrainsWithinDeadlineReason = "DrainsWithinDeadline"
	// DrainDeadlineExceededReason: a drain has run past its deadline; its
	// disruption stays Pending and nothing is forced.
	DrainDeadlineExceededReason = "DrainDeadlineExceeded"
)

// DefaultKubeconfigKey is the Secret key read when kubeconfigSecretRef.key is empty.
const DefaultKubeconfigKey = "kubeconfig"

// ClusterSpec describes a workload cluster registered to the hub.
type ClusterSpec struct {
	// kubeconfigSecretRef names the Secret that holds a kubeconfig with which
	// the hub reaches the workload cluster's API server.
	// +required
	KubeconfigSecretRef SecretKeyReference `json:"kubeconfigSecretRef"`

	// datacenter is the datacenter whose machines become this cluster's Nodes.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Datacenter string `json:"datacenter"`

	// region groups datacenters for placement: a BatchQueue of a region
	// has its quota, and runs its jobs, on the clusters of that region.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Region string `json:"region,omitempty"`

	// cordoned takes the cluster out of placement: no app namespace is
	// placed on it any more, and the apps declared on the hub move their
	// replicas to their other clusters (up there and Ready first, then down
	// here). Nothing is deleted: the namespaces stay, and uncordoning gives
	// the apps their share back. kubectl strata cluster cordon sets it.
	// +optional
	Cordoned bool `json:"cordoned,omitempty"`

	// maxNodes is how many Nodes the cluster may have: its Pools' capacities
	// together never grow past it (a Pool that would is refused, its broker
	// pool left as it was). 5,000 by default, the Node count Kubernetes
	// publishes as its threshold for one cluster; raise it only for a
	// control plane tuned and measured for more.
	// +optional
	// +kubebuilder:default=5000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	MaxNodes int32 `json:"maxNodes,omitempty"`
}

// DefaultMaxNodes is a Cluster's maxNodes when it sets none.
const DefaultMaxNodes = 5000

// NodeLimit is the most Nodes the cluster may have.
func (c *Cluster) NodeLimit() int32 {
	if c.Spec.MaxNodes > 0 {
		return c.Spec.MaxNodes
	}
	return DefaultMaxNodes
}

// SecretKeyReference points at one key of a Secret on the hub.
type SecretKeyReference struct {
	// namespace of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`

	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// key in the Secret's data; "kubeconfig" when empty.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key,omitempty"`
}

// ClusterStatus is what the hub last observed of a workload cluster.
type ClusterStatus struct {
	// observedGeneration is the generation of the spec that this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready says whether the hub can use the cluster, and why
	// not; DrainsOnSchedule whether the drains of its Nodes for broker
	// disruptions finish within their deadline, and which do not.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// kubernetesVersion is the version the cluster's API server reports.
	// +optional
	KubernetesVersion string `json:"kubernetesVersion,omitempty"`

	// nodes is the number of Nodes in the cluster.
	// +optional
	Nodes int32 `json:"nodes"`

	// readyNodes is the number of Nodes whose Ready condition is True.
	// +optional
	ReadyNodes int32 `json:"readyNodes"`

	// profiles counts the Nodes of each node profile (label
	// fleet.strata.dev/node-profile), by profile name.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Profiles []ProfileNodes `json:"profiles,omitempty"`

	// allocatable is the sum of the Ready Nodes' allocatable resources.
	// +optional
	Allocatable corev1.ResourceList `json:"allocatable,omitempty"`
}

// ProfileNodes counts a cluster's Nodes of one node profile.
type ProfileNodes struct {
	// name of the node profile; "" counts Nodes without one.
	// +required
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// nodes counts the profile's Nodes.
	// +optional
	Nodes int32 `json:"nodes"`

	// readyNodes counts those whose Ready condition is True.
	// +optional
	ReadyNodes int32 `json:"readyNodes"`

	// allocatable sums the allocatable resources of the profile's Ready
	// Nodes: the room app namespaces of the profile are routed against.
	// +optional
	Allocatable corev1.ResourceList `json:"allocatable,omitempty"`
}

// Cluster is a workload cluster registered to the hub.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=strata
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Datacenter",type=string,JSONPath=`.spec.datacenter`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Cordoned",type=boolean,JSONPath=`.spec.cordoned`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.kubernetesVersion`
// +kubebuilder:printcolumn:name="Nodes",type=integer,JSONPath=`.status.nodes`
// +kubebuilder:printcolumn:name="Max Nodes",type=integer,JSONPath=`.spec.maxNodes`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Cluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired registration.
	// +required
	Spec ClusterSpec `json:"spec"`

	// status is what the hub observed.
	// +optional
	Status ClusterStatus `json:"status,omitempty"`
}

// ClusterList is a list of Clusters.
//
// +kubebuilder:object:root=true
type ClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Cluster `json:"items"`
}
