package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types and reasons of a BatchQueue.
const (
	// BatchQueueReadyCondition is True when the queue's Kueue objects are on
	// the hub as its spec asks, and Kueue reports the hub's queue active.
	BatchQueueReadyCondition = "Ready"
	// BatchQueueClustersSyncedCondition is True when the queue's Kueue
	// objects are on every workload cluster of its region; False names the
	// clusters that could not be reached or written (the others are kept in
	// step regardless).
	BatchQueueClustersSyncedCondition = "ClustersSynced"

	// QueueReadyReason: the queue admits jobs with its quotas and parent.
	QueueReadyReason = "QueueReady"
	// ParentNotFoundReason: spec.parent names no BatchQueue. Until it
	// exists, the queue borrows only within its organisation's root.
	ParentNotFoundReason = "ParentNotFound"
	// ParentCycleReason: following spec.parent comes back to this queue.
	// The queues of the cycle borrow only within their organisation's root
	// until the cycle is broken.
	ParentCycleReason = "ParentCycle"
	// ParentInOtherOrganizationReason: spec.parent belongs to another
	// organisation; quota is never borrowed across organisations, so the
	// parent is ignored.
	ParentInOtherOrganizationReason = "ParentInOtherOrganization"
	// ParentInOtherRegionReason: spec.parent is for another region; a
	// regional quota is lent only within its region, so the parent is
	// ignored.
	ParentInOtherRegionReason = "ParentInOtherRegion"
	// NodeProfileUnknownReason: a quota names a node profile that no Pool
	// has; that profile's quota is left out of Kueue until a Pool has it.
	NodeProfileUnknownReason = "NodeProfileUnknown"
	// KueueInactiveReason: the hub's Kueue reports the queue inactive; the
	// message is Kueue's.
	KueueInactiveReason = "KueueInactive"
	// KueueWriteFailedReason: writing the queue's Kueue objects on the hub
	// failed; retried.
	KueueWriteFailedReason = "KueueWriteFailed"

	// ClustersSyncedReason: every workload cluster of the region has the
	// queue's objects.
	ClustersSyncedReason = "AllClustersSynced"
	// ClusterUnreachableReason: some workload clusters could not be written;
	// the message names them.
	ClusterUnreachableReason = "ClusterUnreachable"
	// NoClusterInRegionReason: no workload cluster is registered in the
	// queue's region (or at all): its jobs have nowhere to run.
	NoClusterInRegionReason = "NoClusterInRegion"
)

// GPUResourceName is the resource a BatchQueue's gpus quota counts.
const GPUResourceName = "nvidia.com/gpu"

// BatchQueueLabel names the BatchQueue a Kueue object (ClusterQueue,
// Cohort, LocalQueue) was written for.
const BatchQueueLabel = "apps.strata.dev/batch-queue"

// BatchResources are amounts of the resources a batch quota counts. An
// amount left out is zero in a quota, and unlimited in a borrowing limit.
//
// +kubebuilder:validation:XValidation:rule="!has(self.cpu) || (type(self.cpu) == int ? self.cpu >= 0 : !quantity(self.cpu).isLessThan(quantity('0')))",message="cpu must not be negative"
// +kubebuilder:validation:XValidation:rule="!has(self.memory) || (type(self.memory) == int ? self.memory >= 0 : !quantity(self.memory).isLessThan(quantity('0')))",message="memory must not be negative"
// +kubebuilder:validation:XValidation:rule="!has(self.gpus) || (type(self.gpus) == int ? self.gpus >= 0 : !quantity(self.gpus).isLessThan(quantity('0')))",message="gpus must not be negative"
type BatchResources struct {
	// cpu in cores (e.g. "64", "500m").
	// +optional
	CPU *resource.Quantity `json:"cpu,omitempty"`

	// memory in bytes (e.g. "256Gi").
	// +optional
	Memory *resource.Quantity `json:"memory,omitempty"`

	// gpus is the number of nvidia.com/gpu.
	// +optional
	GPUs *resource.Quantity `json:"gpus,omitempty"`
}

// ProfileQuota is a queue's quota on the Nodes of one node profile.
type ProfileQuota struct {
	// nodeProfile is the node profile (a Pool's spec.nodeProfile) the
	// quota is for; jobs admitted against it run on Nodes of that profile.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	NodeProfile string `json:"nodeProfile"`

	// BatchResources is the nominal quota: what the queue's running jobs
	// may request in all, without borrowing.
	BatchResources `json:",inline"`

	// borrowingLimit is at most how much the queue may borrow beyond its
	// quota from the unused quota of its parent and organisation; left
	// out, as much as is unused.
	// +optional
	BorrowingLimit *BatchResources `json:"borrowingLimit,omitempty"`
}

// BatchQueueSpec is a tenant's queue for jobs and its quotas.
//
// +kubebuilder:validation:XValidation:rule="self.organization == oldSelf.organization",message="organization is immutable: quota is never moved across organisations; create another BatchQueue"
type BatchQueueSpec struct {
	// organization is the tenant organisation the queue belongs to. Queues
	// borrow unused quota only from queues of the same organisation.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Organization string `json:"organization"`

	// region is the region (a Cluster's spec.region) whose workload
	// clusters run the queue's jobs; the quota is that region's. Empty: the
	// whole fleet, every workload cluster whatever its region.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Region string `json:"region,omitempty"`

	// parent is another BatchQueue of the same organisation whose unused
	// quota this queue borrows first (a team's queue names its
	// organisation's). Left out, the queue borrows only from the other
	// queues of its organisation.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Parent string `json:"parent,omitempty"`

	// quotas are the queue's quotas, one per node profile.
	// +required
	// +listType=map
	// +listMapKey=nodeProfile
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Quotas []ProfileQuota `json:"quotas"`
}

// ResourceStatus is a queue's quota of one resource on one node profile,
// and how much of it is used.
type ResourceStatus struct {
	// quota is the queue's own nominal quota (for a parent queue, with its
	// children's).
	// +optional
	Quota resource.Quantity `json:"quota,omitempty"`

	// usage is what the queue's admitted and dispatching jobs hold (for a
	// parent queue, its children's too), borrowed amounts included.
	// +optional
	Usage resource.Quantity `json:"usage,omitempty"`

	// borrowed is the part of usage beyond quota, lent by the other queues
	// of the organisation.
	// +optional
	Borrowed resource.Quantity `json:"borrowed,omitempty"`
}

// ProfileStatus is a queue's quota and usage on one node profile.
type ProfileStatus struct {
	// nodeProfile is the node profile.
	// +required
	NodeProfile string `json:"nodeProfile"`

	// cpu, memory and gpus: quota, usage and borrowed.
	// +optional
	CPU ResourceStatus `json:"cpu,omitempty"`
	// +optional
	Memory ResourceStatus `json:"memory,omitempty"`
	// +optional
	GPUs ResourceStatus `json:"gpus,omitempty"`
}

// BatchQueueStatus is the queue's usage and whether it is ready.
type BatchQueueStatus struct {
	// observedGeneration is the generation of the spec that this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// profiles: per node profile, quota, usage and borrowed.
	// +optional
	// +listType=map
	// +listMapKey=nodeProfile
	// +kubebuilder:validation:MaxItems=16
	Profiles []ProfileStatus `json:"profiles,omitempty"`

	// pendingWorkloads is the number of jobs waiting for quota (for a
	// parent queue, its children's).
	// +optional
	PendingWorkloads int32 `json:"pendingWorkloads"`

	// dispatchingWorkloads is the number of jobs that hold quota and wait
	// to be sent to a workload cluster and admitted there.
	// +optional
	DispatchingWorkloads int32 `json:"dispatchingWorkloads"`

	// admittedWorkloads is the number of jobs admitted on a workload
	// cluster and not finished.
	// +optional
	AdmittedWorkloads int32 `json:"admittedWorkloads"`

	// conditions: Ready and ClustersSynced, and why not.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// BatchQueue is a tenant's queue for jobs, with quotas per node profile in
// a region, and a parent queue of its organisation to borrow unused quota
// from. Strata writes it into Kueue's objects on the hub and on every
// workload cluster; jobs name it with the label kueue.x-k8s.io/queue-name.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=strata,shortName=bq
// +kubebuilder:subresource:status
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="the name is the LocalQueue's name in the team's namespaces: a DNS label (lower-case letters, digits and '-', at most 63 characters)"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.parent) || self.spec.parent != self.metadata.name",message="spec.parent cannot be the queue itself"
// +kubebuilder:printcolumn:name="Organization",type=string,JSONPath=`.spec.organization`
// +kubebuilder:printcolumn:name="Parent",type=string,JSONPath=`.spec.parent`
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.spec.region`,priority=1
// +kubebuilder:printcolumn:name="Admitted",type=integer,JSONPath=`.status.admittedWorkloads`
// +kubebuilder:printcolumn:name="Pending",type=integer,JSONPath=`.status.pendingWorkloads`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BatchQueue struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the queue asked for.
	// +required
	Spec BatchQueueSpec `json:"spec"`

	// status is its usage and readiness.
	// +optional
	Status BatchQueueStatus `json:"status,omitempty"`
}

// BatchQueueList is a list of BatchQueues.
//
// +kubebuilder:object:root=true
type BatchQueueList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BatchQueue `json:"items"`
}
