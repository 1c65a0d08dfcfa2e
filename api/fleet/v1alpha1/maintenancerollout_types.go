package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of a MaintenanceRollout.
const (
	// RolloutProgressingCondition is True while the rollout moves machines to
	// the target software, and False with the reason when it cannot.
	RolloutProgressingCondition = "Progressing"
	// RolloutPausedCondition is True while the rollout disrupts no new
	// machine, with the reason: a person set spec.paused (PausedByUser), or
	// more machines failed their maintenance than spec.toleratedFailures
	// allows (MachineFailedMaintenance). The rollout never writes its spec:
	// it halts through this condition, recomputed from the broker each time.
	RolloutPausedCondition = "Paused"
	// RolloutCompleteCondition is True while every machine of the pools runs
	// the target software, as read from the broker on each pass.
	RolloutCompleteCondition = "Complete"
)

// Condition reasons of a MaintenanceRollout.
const (
	// RolloutMaintainingReason: machines of the current zone are being drained and reimaged.
	RolloutMaintainingReason = "Maintaining"
	// RolloutWaitingForHealthGateReason: the next zone starts once the health gate passes.
	RolloutWaitingForHealthGateReason = "WaitingForHealthGate"
	// RolloutWaitingForBudgetReason: the broker's disruption budget is spent
	// (by this rollout, another one, remediation or a pool shrink).
	RolloutWaitingForBudgetReason = "WaitingForBudget"
	// RolloutWaitingForMachinesReason: machines of the zone are joining or
	// under another actor's disruption.
	RolloutWaitingForMachinesReason = "WaitingForMachines"
	// RolloutPoolNotFoundReason: a pool in spec.pools does not exist on the hub.
	RolloutPoolNotFoundReason = "PoolNotFound"
	// RolloutPoolBusyReason: an older rollout of one of the pools is not done.
	RolloutPoolBusyReason = "PoolBusy"
	// RolloutPoolNodeConfigDiffersReason: a pool's spec.nodeConfig, which
	// its owner states, is not the rollout's: the rollout disrupts nothing
	// until it is.
	RolloutPoolNodeConfigDiffersReason = "PoolNodeConfigDiffers"
	// RolloutSupersededReason: the pools state the node config of a newer
	// rollout: this one disrupts nothing and never pulls machines back.
	RolloutSupersededReason = "Superseded"
	// RolloutBrokerUnavailableReason: the Compute Broker did not answer.
	RolloutBrokerUnavailableReason = "BrokerUnavailable"
	// RolloutPausedReason: spec.paused is true; Paused's reason says why.
	RolloutPausedReason = "Paused"
	// RolloutCompleteReason: every machine runs the target software.
	RolloutCompleteReason = "Complete"
	// RolloutNotCompleteReason: machines are left to maintain.
	RolloutNotCompleteReason = "NotComplete"
	// RolloutNotPausedReason: spec.paused is false.
	RolloutNotPausedReason = "NotPaused"
	// RolloutPausedByUserReason: someone set spec.paused.
	RolloutPausedByUserReason = "PausedByUser"
	// RolloutMachineFailedReason: more machines failed their maintenance (and
	// do not run the target) than spec.toleratedFailures allows.
	RolloutMachineFailedReason = "MachineFailedMaintenance"
	// RolloutHealthGateFailedReason: the health gate before a zone has not
	// passed within spec.healthGateTimeout; the rollout keeps waiting and
	// goes on by itself once it passes.
	RolloutHealthGateFailedReason = "HealthGateFailed"
)

// RolloutActorPrefix starts the actor a rollout signs its broker disruptions
// with: maintenance/<rollout name>.
const RolloutActorPrefix = "maintenance/"

// MaintenanceRolloutSpec is a change of node software for a set of Pools,
// carried out maintenance zone by maintenance zone.
type MaintenanceRolloutSpec struct {
	// pools are the Pools whose machines move to the target software. The
	// rollout disrupts machines only while every one of them states
	// nodeConfig in its spec.nodeConfig (which their owner sets, in Git or
	// with kubectl; the rollout never writes it), so machines that join
	// later run it too and a rollout never pulls machines back from a node
	// config the pools moved on to. It cannot change.
	// +required
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="pools are immutable: create another MaintenanceRollout"
	Pools []string `json:"pools"`

	// nodeConfig is the node software every machine of the pools ends on,
	// usable as a label value (Nodes carry it as fleet.strata.dev/node-config).
	// It cannot change.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="nodeConfig is immutable: create another MaintenanceRollout"
	// +kubebuilder:validation:Pattern=`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`
	NodeConfig string `json:"nodeConfig"`

	// osImage, when set, is the OS image every machine is reimaged with; empty
	// keeps each machine's. It cannot change.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="osImage is immutable: create another MaintenanceRollout"
	OSImage string `json:"osImage,omitempty"`

	// zoneOrder lists maintenance zones in the order they are maintained;
	// zones it leaves out follow in ascending order. Empty: ascending.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=64
	ZoneOrder []int32 `json:"zoneOrder,omitempty"`

	// paused stops the rollout from disrupting more machines; disruptions
	// already open run to their end. Only people write it (strata rollouts
	// pause/resume); the rollout halts on failures through its status.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// toleratedFailures is how many machines of the pools may have failed
	// their maintenance by this rollout (and not run the target) while it
	// goes on; one more halts it (condition Paused, MachineFailedMaintenance)
	// until they heal, leave the pools, or a person raises this number
	// (strata rollouts resume sets it to the current count).
	// +optional
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	ToleratedFailures int32 `json:"toleratedFailures,omitempty"`

	// healthGateTimeout is how long the health gate before a zone (every Node
	// of the pools Ready, no PodDisruptionBudget in their clusters with fewer
	// healthy pods than it requires) may fail before the status says
	// HealthGateFailed (and an event says so); the rollout keeps waiting and
	// goes on by itself once the gate passes.
	// +optional
	// +kubebuilder:default="10m"
	HealthGateTimeout *metav1.Duration `json:"healthGateTimeout,omitempty"`
}

// MaintenanceRolloutStatus is how far the rollout is.
type MaintenanceRolloutStatus struct {
	// observedGeneration is the generation of the spec that this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Progressing, Paused and Complete.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// currentZone is the maintenance zone being maintained, 0 when none.
	// +optional
	CurrentZone int32 `json:"currentZone,omitempty"`

	// machines counts the machines of the pools.
	// +optional
	Machines int32 `json:"machines"`

	// updated counts the machines that run the target software.
	// +optional
	Updated int32 `json:"updated"`

	// inProgress counts the machines under an open disruption of the rollout.
	// +optional
	InProgress int32 `json:"inProgress"`

	// failed counts the machines whose maintenance failed and that do not
	// run the target software.
	// +optional
	Failed int32 `json:"failed"`

	// skipped counts the machines left on their software because they are
	// unhealthy: remediation owns them.
	// +optional
	Skipped int32 `json:"skipped"`

	// zones is the progress per maintenance zone, in the rollout's order.
	// +optional
	// +listType=map
	// +listMapKey=maintenanceZone
	// +kubebuilder:validation:MaxItems=64
	Zones []RolloutZoneStatus `json:"zones,omitempty"`

	// failures are the machines of the pools whose latest maintenance by the
	// rollout failed and that do not run the target, as the broker shows them
	// now (recomputed on every pass), oldest first; the latest 64 are listed.
	// +optional
	// +listType=map
	// +listMapKey=disruption
	// +kubebuilder:validation:MaxItems=64
	Failures []RolloutFailure `json:"failures,omitempty"`

	// healthGateFailingSince is when the health gate before the next zone
	// started failing; unset while it passes.
	// +optional
	HealthGateFailingSince *metav1.Time `json:"healthGateFailingSince,omitempty"`

	// startTime is when the rollout disrupted its first machine.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when every machine first ran the target software: a
	// record, kept when a later change moves them on.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
}

// RolloutZonePhase is where a zone is in the rollout.
// +kubebuilder:validation:Enum=Pending;InProgress;Complete
type RolloutZonePhase string

// Zone phases.
const (
	RolloutZonePending    RolloutZonePhase = "Pending"
	RolloutZoneInProgress RolloutZonePhase = "InProgress"
	RolloutZoneComplete   RolloutZonePhase = "Complete"
)

// RolloutZoneStatus is the rollout's progress in one maintenance zone.
type RolloutZoneStatus struct {
	// maintenanceZone is the zone's number.
	// +required
	MaintenanceZone int32 `json:"maintenanceZone"`

	// phase is Pending, InProgress or Complete.
	// +required
	Phase RolloutZonePhase `json:"phase"`

	// machines counts the pools' machines in the zone.
	// +optional
	Machines int32 `json:"machines"`

	// updated counts those that run the target software.
	// +optional
	Updated int32 `json:"updated"`

	// inProgress counts those under an open disruption of the rollout.
	// +optional
	InProgress int32 `json:"inProgress"`

	// failed counts those whose maintenance failed.
	// +optional
	Failed int32 `json:"failed"`

	// skipped counts those left alone because they are unhealthy.
	// +optional
	Skipped int32 `json:"skipped"`
}

// RolloutFailure is a machine whose maintenance failed.
type RolloutFailure struct {
	// disruption is the broker disruption that failed.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Disruption string `json:"disruption"`

	// machine is the machine it disrupted.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Machine string `json:"machine"`

	// message is why it failed, as the broker recorded it.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// time is when it failed.
	// +optional
	Time *metav1.Time `json:"time,omitempty"`
}

// MaintenanceRollout moves the machines of a set of Pools to new node
// software, one maintenance zone at a time, as many machines at once as the
// broker's disruption budget allows, with a health gate between zones.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=strata,shortName=mro
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Node Config",type=string,JSONPath=`.spec.nodeConfig`
// +kubebuilder:printcolumn:name="Zone",type=integer,JSONPath=`.status.currentZone`
// +kubebuilder:printcolumn:name="Machines",type=integer,JSONPath=`.status.machines`
// +kubebuilder:printcolumn:name="Updated",type=integer,JSONPath=`.status.updated`
// +kubebuilder:printcolumn:name="Paused",type=string,JSONPath=`.status.conditions[?(@.type=="Paused")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Progressing")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MaintenanceRollout struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec MaintenanceRolloutSpec `json:"spec"`
	// +optional
	Status MaintenanceRolloutStatus `json:"status,omitempty"`
}

// MaintenanceRolloutList is a list of MaintenanceRollouts.
// +kubebuilder:object:root=true
type MaintenanceRolloutList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MaintenanceRollout `json:"items"`
}
