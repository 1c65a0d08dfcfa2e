// Package inventory is the metal layer's source of truth: datacenters,
// maintenance zones, racks, SKUs and machines, and the broker's own records
// (node profiles, pools, disruptions and their history), in SQL. SQLite is the
// embedded default and PostgreSQL the production store; both run the same
// schema and queries.
package inventory

import (
	"errors"
	"time"
)

// Errors a store returns; callers map them to gRPC codes.
var (
	// ErrNotFound: the named row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a row with that key exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the row changed under the caller (e.g. a machine that is
	// no longer available); nothing was written.
	ErrConflict = errors.New("conflict")
)

// MachineState is where a machine is in its life.
type MachineState string

// Machine states.
const (
	MachineAvailable      MachineState = "available"
	MachineAllocated      MachineState = "allocated"
	MachineDisrupted      MachineState = "disrupted"
	MachineUnhealthy      MachineState = "unhealthy"
	MachineDecommissioned MachineState = "decommissioned"
)

// MachineStates lists every state, in lifecycle order.
var MachineStates = []MachineState{MachineAvailable, MachineAllocated, MachineDisrupted, MachineUnhealthy, MachineDecommissioned}

// ProvisionState is where a machine is between bare metal and a Kubernetes
// Node joined to its pool's cluster.
type ProvisionState string

// Provision states: clean -> joining -> joined while in a pool with a join
// target; joining or joined -> wiping when the pool releases the machine;
// wiping -> clean once the provisioner erased it.
const (
	// ProvisionClean: wiped, runs no kubelet; the only state a machine is
	// allocated from.
	ProvisionClean ProvisionState = "clean"
	// ProvisionJoining: being imaged with its pool's node config; its
	// kubelet registers the Node at the end.
	ProvisionJoining ProvisionState = "joining"
	// ProvisionJoined: its kubelet registered the Node in the pool's cluster.
	ProvisionJoined ProvisionState = "joined"
	// ProvisionWiping: released by its pool, being wiped before it is
	// available again.
	ProvisionWiping ProvisionState = "wiping"
)

// ProvisionStates lists every provision state, in lifecycle order.
var ProvisionStates = []ProvisionState{ProvisionClean, ProvisionJoining, ProvisionJoined, ProvisionWiping}

// Released is the provision state of a machine its pool let go: one that
// runs, or is starting, a kubelet must be wiped before anyone else gets it.
func (p ProvisionState) Released() ProvisionState {
	if p == ProvisionJoining || p == ProvisionJoined {
		return ProvisionWiping
	}
	return p
}

// Datacenter is one site, striped into maintenance zones.
type Datacenter struct {
	Name   string
	Region string
	// MaintenanceZones is how many MZs the datacenter has (20 by default);
	// MZs are numbered 1..MaintenanceZones.
	MaintenanceZones int32
}

// Rack is a rack of a datacenter.
type Rack struct {
	Name       string
	Datacenter string
}

// SKU is a machine type.
type SKU struct {
	Name         string
	Arch         string
	CPUCores     int32
	MemoryGiB    int32
	GPUs         int32
	GPUModel     string
	LocalDiskGiB int32
}

// Software is what a machine runs.
type Software struct {
	OSImage    string
	Kernel     string
	NodeConfig string
}

// Machine is one physical server.
type Machine struct {
	ID         string
	Datacenter string
	// MaintenanceZone is the machine's MZ, 1..Datacenter.MaintenanceZones.
	MaintenanceZone int32
	Rack            string
	SKU             string
	State           MachineState
	// Healthy is false when the health monitor or the provisioner reported a
	// fault; HealthMessage says which.
	Healthy       bool
	HealthMessage string
	Software      Software
	// Pool is the broker pool the machine is allocated to, "" when none.
	Pool string
	// Provision says whether the machine runs a kubelet joined to its
	// pool's cluster (see ProvisionState).
	Provision ProvisionState
	UpdatedAt time.Time
}

// MachineFilter selects machines; empty fields match everything. Results are
// ordered by ID; AfterID and Limit page through them. With UpdatedSince they
// are ordered by (UpdatedAt, ID) instead, and AfterID continues after
// (UpdatedSince, AfterID) in that order: the next page's filter has the last
// machine's UpdatedAt and ID.
type MachineFilter struct {
	Datacenter      string
	MaintenanceZone int32
	State           MachineState
	SKU             string
	// SKUs, when not empty, keeps machines of one of these SKUs.
	SKUs []string
	// HealthyOnly keeps healthy machines.
	HealthyOnly bool
	// UnhealthyOnly keeps machines that are not healthy.
	UnhealthyOnly bool
	Pool          string
	Provision     ProvisionState
	// Free keeps the machines a pool may take: available, in no pool,
	// clean and healthy; read through the index machines_free.
	Free bool
	// UpdatedSince, when not zero, keeps machines whose UpdatedAt is at or
	// after it (to the nanosecond, as stored), found through the index on
	// updated_at: what changed since a point in time (WatchMachines).
	UpdatedSince time.Time
	AfterID      string
	Limit        int
}

// MachinePlacement is where a machine sits and what it is: what the broker
// needs to choose machines, without the rest of the row.
type MachinePlacement struct {
	ID              string
	MaintenanceZone int32
	Rack            string
	SKU             string
	State           MachineState
}

// NodeProfile is the minimum machine a pool accepts plus the node
// configuration its machines run. Machines above the minimum are
// interchangeable.
type NodeProfile struct {
	Name            string
	MinCPUCores     int32
	MinMemoryGiB    int32
	MinGPUs         int32
	GPUModel        string // "" accepts any model
	MinLocalDiskGiB int32
	NodeConfig      string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Pool is a broker pool: a capacity of machines of a profile in a datacenter.
type Pool struct {
	Name       string
	Datacenter string
	Profile    string
	Capacity   int32
	// NodeConfig is what the pool's machines run; "" means the profile's.
	NodeConfig string
	// JoinTarget, when not nil, is the cluster the pool's machines join as
	// Nodes; such a pool releases a machine only through a pool-shrink
	// disruption.
	JoinTarget *JoinTarget
	// Generation increments on every spec change.
	Generation int64
	// Deleting is set when deletion was requested; the broker releases the
	// pool's machines and then removes the row.
	Deleting  bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// JoinTarget is where a pool's machines join as Kubernetes Nodes.
type JoinTarget struct {
	// Cluster names the workload cluster; never empty.
	Cluster string
	// APIServer (an https:// URL), CABundle (PEM) and BootstrapToken
	// (<token-id>.<token-secret>) are what the machines' kubelets
	// bootstrap with: the token lets them ask for a client certificate of
	// their own, nothing more.
	APIServer      string
	CABundle       []byte
	BootstrapToken string
	// NodeLabels and NodeTaints are set on each Node at registration.
	NodeLabels map[string]string
	NodeTaints []Taint
}

// Taint is a Kubernetes Node taint.
type Taint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"`
}

// DisruptionReason says why a machine is disrupted.
type DisruptionReason string

// Disruption reasons.
const (
	ReasonPlannedUpgrade DisruptionReason = "planned-upgrade"
	ReasonHardwareRepair DisruptionReason = "hardware-repair"
	ReasonDecommission   DisruptionReason = "decommission"
	ReasonRemediation    DisruptionReason = "remediation"
	// ReasonPoolShrink: the broker releases the machine from a pool with a
	// join target once the cluster approves (its Node drained).
	ReasonPoolShrink DisruptionReason = "pool-shrink"
)

// DisruptionState is where a disruption is in the protocol.
type DisruptionState string

// Disruption states: Pending -> Approved -> InProgress -> Completed, or
// Cancelled from any state before Completed, or Failed from InProgress when
// the broker performed the disruption's operation and the machine did not
// come back. Completed, Cancelled and Failed are final.
const (
	DisruptionPending    DisruptionState = "Pending"
	DisruptionApproved   DisruptionState = "Approved"
	DisruptionInProgress DisruptionState = "InProgress"
	DisruptionCompleted  DisruptionState = "Completed"
	DisruptionCancelled  DisruptionState = "Cancelled"
	DisruptionFailed     DisruptionState = "Failed"
)

// OpenDisruptionStates are the states of a disruption that is not over: it
// counts against the budget and holds its machine.
var OpenDisruptionStates = []DisruptionState{DisruptionPending, DisruptionApproved, DisruptionInProgress}

// Open says whether a disruption in state s is not over.
func (s DisruptionState) Open() bool {
	return s == DisruptionPending || s == DisruptionApproved || s == DisruptionInProgress
}

// OperationKind is what the broker does to a machine under a disruption.
type OperationKind string

// Operation kinds; "" is none: the disruption's actor performs it.
const (
	OperationNone OperationKind = ""
	// OperationReboot power-cycles the machine; its software stays.
	OperationReboot OperationKind = "reboot"
	// OperationReimage writes the machine's disk and starts its kubelet
	// again, with the operation's software.
	OperationReimage OperationKind = "reimage"
	// OperationReplace takes the machine out of its pool for repair; the
	// pool gets a spare.
	OperationReplace OperationKind = "replace"
)

// Operation is work the broker performs itself once a disruption is
// started.
type Operation struct {
	Kind OperationKind
	// Software, for a reimage, is what the machine runs afterwards; an
	// empty field keeps what it runs now.
	Software Software
}

// Disruption is a planned or unplanned operation on one machine.
type Disruption struct {
	ID      string
	Machine string
	// Pool and Datacenter/MaintenanceZone are copied from the machine when
	// the disruption is created, for budget queries.
	Pool            string
	Datacenter      string
	MaintenanceZone int32
	Reason          DisruptionReason
	State           DisruptionState
	// Actor is the authenticated identity that asked for it (e.g.
	// "strata-hub/maintenance-orchestrator"); OnBehalfOf the detail it added
	// (e.g. "maintenance/rollout-x").
	Actor      string
	OnBehalfOf string
	Message    string
	// Operation, when its Kind is set, is performed by the broker once the
	// disruption is started; fixed at creation.
	Operation Operation
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DisruptionFilter selects disruptions; empty fields match everything.
type DisruptionFilter struct {
	Machine    string
	Pool       string
	Datacenter string
	// States, when not empty, keeps disruptions in one of these states.
	States []DisruptionState
}

// DisruptionEvent is one transition of a disruption: the audit record. A
// step that changed no state (a cordon, a drain, an uncordon recorded by the
// cluster layer) has From equal to To.
type DisruptionEvent struct {
	DisruptionID string
	From         DisruptionState // "" for creation
	To           DisruptionState
	Actor        string
	OnBehalfOf   string
	Message      string
	At           time.Time
}
