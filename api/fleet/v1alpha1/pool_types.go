package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of a Pool.
const (
	// PoolReadyCondition is True when the Pool has as many Ready Nodes as its
	// capacity, each with its required DaemonSets, and nothing is draining.
	PoolReadyCondition = "Ready"
	// PoolMachinesAllocatedCondition is True when the Compute Broker holds
	// exactly the Pool's capacity of machines for it.
	PoolMachinesAllocatedCondition = "MachinesAllocated"
	// PoolHostsHealthyCondition is True when no machine of the Pool is
	// unhealthy: every Node Ready and every machine healthy in the broker's
	// view. The remediation controller writes it; see docs/remediation.md.
	PoolHostsHealthyCondition = "HostsHealthy"
	// PoolNodesKnownCondition is True when every Node of the Pool runs on a
	// machine the Compute Broker holds for it, or that it gave up through the
	// disruption protocol (the Node drained for a shrink, a decommission or
	// a replacement). A Node on a machine the broker does not hold for the
	// Pool (a broker restored from an older backup, a machine taken out by
	// hand) is kept, never deleted nor drained by the Pool: False names them.
	PoolNodesKnownCondition = "NodesKnown"
)

// Condition reasons of a Pool.
const (
	// PoolReadyReason: every wanted Node is Ready and schedulable.
	PoolReadyReason = "Ready"
	// ClusterNotFoundReason: spec.cluster names no Cluster on the hub.
	ClusterNotFoundReason = "ClusterNotFound"
	// ClusterNotReadyReason: the Cluster exists but the hub cannot use it.
	ClusterNotReadyReason = "ClusterNotReady"
	// BrokerUnavailableReason: the Compute Broker did not answer.
	BrokerUnavailableReason = "BrokerUnavailable"
	// BrokerRejectedReason: the Compute Broker refused the pool (e.g. an
	// unknown node profile); the message is the broker's.
	BrokerRejectedReason = "BrokerRejected"
	// BrokerPoolConflictReason: a broker pool of that name exists and belongs
	// to another cluster or to no cluster.
	BrokerPoolConflictReason = "BrokerPoolConflict"
	// OverClusterLimitReason: the capacity would take the cluster's Pools
	// past its maxNodes; the broker pool is left as it was.
	OverClusterLimitReason = "OverClusterLimit"
	// InsufficientInventoryReason: the broker has fewer machines than asked.
	InsufficientInventoryReason = "InsufficientInventory"
	// MachinesAllocatedReason: the broker holds the Pool's capacity.
	MachinesAllocatedReason = "MachinesAllocated"
	// JoiningReason: machines are being imaged and joined as Nodes.
	JoiningReason = "Joining"
	// WaitingForDaemonSetsReason: Nodes keep the startup taint until every
	// required DaemonSet has a ready pod on them.
	WaitingForDaemonSetsReason = "WaitingForDaemonSets"
	// NodesNotReadyReason: joined Nodes are not Ready.
	NodesNotReadyReason = "NodesNotReady"
	// DrainingReason: the cluster manager is draining Nodes of the Pool, for
	// a shrink or any other disruption of their machines (maintenance,
	// remediation).
	DrainingReason = "Draining"
	// DeletingReason: the Pool is draining and releasing every machine.
	DeletingReason = "Deleting"

	// MachinesKnownReason: every Node of the Pool runs on a machine the
	// broker holds for it.
	MachinesKnownReason = "MachinesKnown"
	// MachineUnknownReason: some Nodes of the Pool run on machines the broker
	// does not hold for it; they are kept until a person deletes them or the
	// machine is back in the pool. The message names them.
	MachineUnknownReason = "MachineUnknown"

	// HostsHealthyReason: every machine of the Pool is healthy.
	HostsHealthyReason = "Healthy"
	// RemediatingReason: machines are unhealthy; the message names each with
	// its rung of the ladder (reboot, reimage, replace) and where it is.
	RemediatingReason = "Remediating"
	// RemediationHaltedReason: too many machines are unhealthy, or every
	// machine of a maintenance zone is: a fleet event, not broken hosts. No
	// new remediation starts; the message says why.
	RemediationHaltedReason = "RemediationHalted"
)

// PoolFinalizer keeps a Pool until its Nodes are drained and its machines
// are back with the broker.
const PoolFinalizer = "fleet.strata.dev/pool"

// PoolSpec is the capacity of machines of one node profile that a workload
// cluster gets as Nodes: the seeds' KubernetesPool.
// +kubebuilder:validation:XValidation:rule="!has(self.nodeTaints) || self.nodeTaints.all(t, t.key != 'fleet.strata.dev/startup')",message="nodeTaints must not use fleet.strata.dev/startup: the pool controller manages that taint"
type PoolSpec struct {
	// cluster is the Cluster whose Nodes the Pool's machines become. It cannot
	// change: to move capacity, create a Pool in the other cluster.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="cluster is immutable: create a Pool in the other cluster and delete this one"
	Cluster string `json:"cluster"`

	// capacity is the number of machines, and so Nodes, wanted. Changing it
	// grows the Pool or drains and releases Nodes evenly across maintenance
	// zones.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	Capacity int32 `json:"capacity"`

	// nodeProfile is the broker node profile: the minimum machine and the
	// node configuration. It cannot change.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="nodeProfile is immutable: create a Pool with the other profile"
	NodeProfile string `json:"nodeProfile"`

	// nodeConfig is the node software the machines run, usable as a label
	// value (Nodes carry it as fleet.strata.dev/node-config); empty means the
	// node profile's. The Pool's owner states it; machines that join run it,
	// and a MaintenanceRollout of the same nodeConfig moves the machines
	// already there (no controller writes it).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`
	NodeConfig string `json:"nodeConfig,omitempty"`

	// nodeLabels are set on every Node of the Pool.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('fleet.strata.dev/'))",message="nodeLabels must not use the fleet.strata.dev/ prefix: Strata sets those labels itself"
	NodeLabels map[string]string `json:"nodeLabels,omitempty"`

	// nodeTaints are set on every Node of the Pool.
	// +optional
	// +listType=map
	// +listMapKey=key
	// +listMapKey=effect
	// +kubebuilder:validation:MaxItems=16
	NodeTaints []NodeTaint `json:"nodeTaints,omitempty"`

	// requiredDaemonSets must each have a ready pod on a new Node before the
	// Node loses its startup taint (fleet.strata.dev/startup:NoSchedule) and
	// takes workloads. They must tolerate that taint.
	// +optional
	// +listType=map
	// +listMapKey=namespace
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	RequiredDaemonSets []DaemonSetReference `json:"requiredDaemonSets,omitempty"`
}

// NodeTaint is a taint set on a Pool's Nodes.
type NodeTaint struct {
	// key of the taint.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	Key string `json:"key"`

	// value of the taint.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Value string `json:"value,omitempty"`

	// effect of the taint.
	// +required
	// +kubebuilder:validation:Enum=NoSchedule;PreferNoSchedule;NoExecute
	Effect corev1.TaintEffect `json:"effect"`
}

// DaemonSetReference names a DaemonSet of the workload cluster.
type DaemonSetReference struct {
	// namespace of the DaemonSet.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`

	// name of the DaemonSet.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// PoolStatus is what the Pool holds now.
type PoolStatus struct {
	// observedGeneration is the generation of the spec that this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready and MachinesAllocated (the pool controller's) and
	// HostsHealthy (the remediation controller's), each with the reason it is
	// not True.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// desired is the capacity this status was computed for.
	// +optional
	Desired int32 `json:"desired"`

	// allocated counts the machines the broker holds for the Pool.
	// +optional
	Allocated int32 `json:"allocated"`

	// nodes counts the Pool's Nodes in the cluster.
	// +optional
	Nodes int32 `json:"nodes"`

	// ready counts the Nodes that are Ready, schedulable and past the startup taint.
	// +optional
	Ready int32 `json:"ready"`

	// draining counts the Nodes the cluster manager is draining: before
	// their machines go back, or before maintenance or remediation.
	// +optional
	Draining int32 `json:"draining"`

	// zones are the counts per maintenance zone, in zone order.
	// +optional
	// +listType=map
	// +listMapKey=maintenanceZone
	// +kubebuilder:validation:MaxItems=64
	Zones []ZoneStatus `json:"zones,omitempty"`
}

// ZoneStatus is a Pool's share of one maintenance zone.
type ZoneStatus struct {
	// maintenanceZone is the zone's number.
	// +required
	MaintenanceZone int32 `json:"maintenanceZone"`

	// allocated counts the Pool's machines in the zone.
	// +optional
	Allocated int32 `json:"allocated"`

	// ready counts the Pool's ready Nodes in the zone.
	// +optional
	Ready int32 `json:"ready"`
}

// Pool is a capacity of machines of one node profile that join a workload
// cluster as Nodes. The pool controller keeps a Compute Broker pool in step
// and drains Nodes before their machines go back.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=strata
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.capacity,statuspath=.status.ready
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster`
// +kubebuilder:printcolumn:name="Profile",type=string,JSONPath=`.spec.nodeProfile`
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.spec.capacity`
// +kubebuilder:printcolumn:name="Allocated",type=integer,JSONPath=`.status.allocated`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.status.conditions[?(@.type=="HostsHealthy")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Pool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec PoolSpec `json:"spec"`
	// +optional
	Status PoolStatus `json:"status,omitempty"`
}

// PoolList is a list of Pools.
// +kubebuilder:object:root=true
type PoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Pool `json:"items"`
}
