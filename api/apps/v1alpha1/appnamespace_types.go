package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types and reasons of an AppNamespace.
const (
	// AppNamespaceReadyCondition is True when the namespace exists in the
	// chosen workload cluster with its labels, RoleBindings and quota.
	AppNamespaceReadyCondition = "Ready"

	// NamespaceReadyReason: the namespace and its RoleBindings are in place.
	NamespaceReadyReason = "NamespaceReady"
	// NoClusterFitsReason: no Ready workload cluster has a Ready Pool of the
	// node profile with room for the quota; the message says, per cluster, why.
	NoClusterFitsReason = "NoClusterFits"
	// ClusterUnavailableReason: the chosen cluster is gone or unreachable;
	// the choice is kept (sticky) and retried.
	ClusterUnavailableReason = "ClusterUnavailable"
	// NamespaceNotEmptyReason: the AppNamespace is being deleted but its
	// namespace still holds workloads, which the guardrails protect.
	NamespaceNotEmptyReason = "NamespaceNotEmpty"
	// DeletingNamespaceReason: the namespace is being deleted.
	DeletingNamespaceReason = "DeletingNamespace"
	// BatchQueueNotFoundReason: tenant batch, and spec.batchQueue names no
	// BatchQueue: the namespace is made, but its jobs have no queue.
	BatchQueueNotFoundReason = "BatchQueueNotFound"
	// BatchQueueIsParentReason: tenant batch, and spec.batchQueue names a
	// parent queue, which lends its quota to its children and takes no jobs
	// itself: name one of its children.
	BatchQueueIsParentReason = "BatchQueueIsParent"
	// TooFewClustersReason: the namespace is on fewer clusters than
	// spec.placement asks for, because no other cluster fits (the message
	// says, per cluster, why); those it is on are ready. It is retried as
	// clusters and pools change.
	TooFewClustersReason = "TooFewClusters"
)

// TenantKind is the kind of workload an app namespace is for.
// +kubebuilder:validation:Enum=stateless;stateful;batch
type TenantKind string

// Tenant kinds.
const (
	StatelessTenant TenantKind = "stateless"
	StatefulTenant  TenantKind = "stateful"
	BatchTenant     TenantKind = "batch"
)

// OwnerRole is what an owner may do in the namespace; each maps to the
// Kubernetes ClusterRole of the same name (view, edit, admin), which
// Strata's own resources aggregate into.
// +kubebuilder:validation:Enum=view;edit;admin
type OwnerRole string

// Owner roles.
const (
	ViewRole  OwnerRole = "view"
	EditRole  OwnerRole = "edit"
	AdminRole OwnerRole = "admin"
)

// SubjectKind is the kind of an owner: a user or a group.
// +kubebuilder:validation:Enum=User;Group
type SubjectKind string

// Subject kinds.
const (
	UserSubject  SubjectKind = "User"
	GroupSubject SubjectKind = "Group"
)

// Owner is a user or group and its role in the namespace.
type Owner struct {
	// kind of the subject: User or Group.
	// +required
	Kind SubjectKind `json:"kind"`

	// name of the user or group, as the API servers authenticate it.
	// Kubernetes' own identities (system:...) cannot own a namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('system:')",message="system: users and groups (such as system:authenticated) cannot be owners: name a person or a team"
	Name string `json:"name"`

	// role: view, edit or admin.
	// +required
	Role OwnerRole `json:"role"`
}

// AppNamespaceSpec is the namespace an app asks for.
//
// +kubebuilder:validation:XValidation:rule="self.app == oldSelf.app",message="app is immutable"
// +kubebuilder:validation:XValidation:rule="self.tenant == oldSelf.tenant",message="tenant is immutable"
// +kubebuilder:validation:XValidation:rule="self.nodeProfile == oldSelf.nodeProfile",message="nodeProfile is immutable: the namespace stays in the cluster it was routed to; create another AppNamespace for another profile"
// +kubebuilder:validation:XValidation:rule="self.tenant != 'batch' || has(self.batchQueue)",message="batchQueue is required for tenant batch: name the BatchQueue the namespace's jobs are queued in"
// +kubebuilder:validation:XValidation:rule="self.tenant == 'batch' || !has(self.batchQueue)",message="batchQueue is only for tenant batch"
// +kubebuilder:validation:XValidation:rule="self.tenant != 'batch' || !has(self.placement)",message="placement is not for tenant batch: a batch namespace is on every workload cluster of its queue's region"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.placement) || !has(oldSelf.placement.clusters) || (has(self.placement) && ((has(self.placement.all) && self.placement.all) || (has(self.placement.clusters) && self.placement.clusters >= oldSelf.placement.clusters)))",message="placement.clusters may grow but not shrink: the namespace stays on the clusters it is on; cordon a cluster (kubectl strata cluster cordon) to move the apps' replicas off it"
type AppNamespaceSpec struct {
	// app is the application the namespace belongs to; its pods, and the
	// namespace, are labelled with it.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	App string `json:"app"`

	// tenant is the kind of workload: stateless, stateful or batch.
	// +required
	Tenant TenantKind `json:"tenant"`

	// nodeProfile is the node profile the app's pods run on; the namespace
	// goes to a workload cluster with a Ready Pool of that profile. For
	// tenant batch it is informational: the BatchQueue's quotas name the
	// profiles jobs run on.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	NodeProfile string `json:"nodeProfile"`

	// quota is what the namespace's pods may request in all (cpu, memory):
	// it becomes the namespace's ResourceQuota, and routing counts it
	// against the room of the cluster's Pools of the profile. Not for
	// tenant batch, whose quota is its BatchQueue's: a batch namespace has
	// no ResourceQuota.
	// +optional
	// +kubebuilder:default={cpu: "4", memory: "16Gi"}
	// +kubebuilder:validation:MaxProperties=8
	// +kubebuilder:validation:XValidation:rule="self.all(k, !quantity(self[k]).isLessThan(quantity('0')))",message="quota amounts must not be negative"
	Quota corev1.ResourceList `json:"quota,omitempty"`

	// batchQueue is, for tenant batch (required there, refused for the
	// others), the BatchQueue the namespace's jobs are queued in: the
	// namespace gets a LocalQueue of that name, which jobs name with the
	// label kueue.x-k8s.io/queue-name.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	BatchQueue string `json:"batchQueue,omitempty"`

	// placement says on how many workload clusters the namespace is, for
	// tenants stateless and stateful: one when unset. The apps declared on
	// the hub in the namespace are divided over those clusters.
	// +optional
	Placement *Placement `json:"placement,omitempty"`

	// owners get RoleBindings in the namespace, one per owner.
	// +optional
	// +listType=map
	// +listMapKey=kind
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Owners []Owner `json:"owners,omitempty"`
}

// Placement is on how many workload clusters an app namespace is.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.all) && self.all && has(self.clusters))",message="set clusters or all, not both"
type Placement struct {
	// clusters is how many workload clusters the namespace is on: the hub
	// chooses them among the Ready, uncordoned clusters (of region, when
	// set) with a Pool of the node profile that has room for the quota,
	// preferring room left (in tenths of the cluster), then datacenters not
	// yet used, then clusters with fewer app namespaces. A choice is kept.
	// 1 when neither clusters nor all is set.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	Clusters *int32 `json:"clusters,omitempty"`

	// all puts the namespace on every cluster that fits (of region, when
	// set), including clusters that fit later.
	// +optional
	All bool `json:"all,omitempty"`

	// region, when set, keeps the namespace on the clusters of that region
	// (the Cluster's spec.region).
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Region string `json:"region,omitempty"`
}

// ClusterPlacement is one cluster an app namespace is on, and why it was
// chosen.
type ClusterPlacement struct {
	// cluster is the workload cluster's name.
	// +required
	// +kubebuilder:validation:MaxLength=253
	Cluster string `json:"cluster"`

	// reason says why it was chosen: its room for the profile, and what
	// else weighed.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason,omitempty"`
}

// AppNamespaceStatus is where the namespace went and whether it is ready.
type AppNamespaceStatus struct {
	// observedGeneration is the generation of the spec that this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// cluster is the workload cluster the namespace was routed to first
	// (placements[0]). Once set it does not change (the choice is sticky).
	// Empty for tenant batch, whose namespace is on the hub and on every
	// workload cluster (clusters).
	// +optional
	Cluster string `json:"cluster,omitempty"`

	// clusters are the workload clusters the namespace is on: for tenant
	// batch every one (besides the hub, where jobs are submitted), sorted;
	// for the others those of placements, in the order they were chosen.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	Clusters []string `json:"clusters,omitempty"`

	// placements are, for tenants stateless and stateful, the clusters
	// chosen and why, in the order they were chosen. A choice is kept.
	// +optional
	// +listType=map
	// +listMapKey=cluster
	// +kubebuilder:validation:MaxItems=64
	Placements []ClusterPlacement `json:"placements,omitempty"`

	// namespace is the namespace's name in that cluster.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// conditions: Ready, and why not.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AppNamespace is an app's namespace, routed by the hub to a workload
// cluster whose Pools match its node profile and have room. Its name is the
// namespace's name.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=strata,shortName=appns
// +kubebuilder:subresource:status
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="the name is the namespace's name: a DNS label (lower-case letters, digits and '-', at most 63 characters)"
// +kubebuilder:validation:XValidation:rule="!self.metadata.name.startsWith('kube-') && !(self.metadata.name in ['default', 'strata-system'])",message="kube-*, default and strata-system are the system's namespaces, not an app's"
// +kubebuilder:printcolumn:name="App",type=string,JSONPath=`.spec.app`
// +kubebuilder:printcolumn:name="Tenant",type=string,JSONPath=`.spec.tenant`
// +kubebuilder:printcolumn:name="Profile",type=string,JSONPath=`.spec.nodeProfile`
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.status.cluster`
// +kubebuilder:printcolumn:name="Clusters",type=string,JSONPath=`.status.clusters`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AppNamespace struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the namespace asked for.
	// +required
	Spec AppNamespaceSpec `json:"spec"`

	// status is where it went.
	// +optional
	Status AppNamespaceStatus `json:"status,omitempty"`
}

// AppNamespaceList is a list of AppNamespaces.
//
// +kubebuilder:object:root=true
type AppNamespaceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AppNamespace `json:"items"`
}
