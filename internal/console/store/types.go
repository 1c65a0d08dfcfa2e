package store

import "time"

// The rows of the store, as the aggregator writes them and the console
// reads them. Times are stored as unix milliseconds.

// Source is one watched stream and how fresh its copy is.
type Source struct {
	Cluster, Kind   string
	ResourceVersion string
	// Synced: listed in full at least once.
	Synced bool
	// LastSeen is when the last list, event or bookmark arrived.
	LastSeen time.Time
	// LastError is the stream's failure ("" while it works), since
	// ErrorSince.
	LastError  string
	ErrorSince time.Time
}

// Node is a cluster's Node.
type Node struct {
	Cluster, Name         string
	Machine, Datacenter   string
	MaintenanceZone       int32
	Rack, Pool, Profile   string
	Ready                 string // True, False, Unknown or ""
	Unschedulable         bool
	Problems              string // conditions not as they should be, in words
	KubeletVersion        string
	CPUMilli, MemoryBytes int64
	Created               time.Time
}

// Pod is a cluster's Pod, trimmed to what the console shows.
type Pod struct {
	Cluster, Namespace, Name string
	App, Version             string
	Node, Phase              string
	Ready                    bool
	Reason, Message          string // why it is not ready
	Restarts                 int32
	Created                  time.Time
}

// Object is one of Strata's objects in a cluster (the Kind constants),
// as JSON without managedFields.
type Object struct {
	Cluster, Kind, Namespace, Name string
	Data                           []byte
}

// Event is a Kubernetes Event of one of Strata's objects or of a Node.
type Event struct {
	Cluster, Namespace, Name string
	ObjectKind, ObjectName   string
	Type, Reason, Message    string
	Count                    int32
	LastSeen                 time.Time
}

// Machine states, as stored.
const (
	MachineAvailable      = "available"
	MachineAllocated      = "allocated"
	MachineDisrupted      = "disrupted"
	MachineUnhealthy      = "unhealthy"
	MachineDecommissioned = "decommissioned"
)

// Machine is one of the broker's machines.
type Machine struct {
	ID, Datacenter  string
	MaintenanceZone int32
	Rack, SKU       string
	State           string // the Machine* constants
	Healthy         bool
	HealthMessage   string
	Pool            string
	Provision       string // clean, joining, joined, wiping
	OSImage, Kernel string
	NodeConfig      string
	Updated         time.Time
}

// BrokerPool is one of the broker's pools; Data is its protobuf JSON.
type BrokerPool struct {
	Name, Datacenter, Profile string
	Capacity                  int32
	Data                      []byte
}

// Disruption states and reasons, as stored: the broker's enums in lower
// case with dashes, without their prefix.
const (
	DisruptionPending    = "pending"
	DisruptionApproved   = "approved"
	DisruptionInProgress = "in-progress"
	DisruptionCompleted  = "completed"
	DisruptionCancelled  = "cancelled"
	DisruptionFailed     = "failed"

	ReasonPlannedUpgrade = "planned-upgrade"
	ReasonHardwareRepair = "hardware-repair"
	ReasonDecommission   = "decommission"
	ReasonRemediation    = "remediation"
	ReasonPoolShrink     = "pool-shrink"
)

// Disruption is one of the broker's disruptions with its history.
type Disruption struct {
	ID, Machine, Pool, Datacenter string
	MaintenanceZone               int32
	Reason, State                 string
	Actor, OnBehalfOf, Message    string
	Created, Updated              time.Time
	History                       []Transition
}

// Transition is one step of a disruption (the broker's audit record).
type Transition struct {
	From       string    `json:"from"`
	To         string    `json:"to"`
	Actor      string    `json:"actor"`
	OnBehalfOf string    `json:"onBehalfOf,omitempty"`
	Message    string    `json:"message,omitempty"`
	Time       time.Time `json:"time"`
}

// millis and fromMillis store times as unix milliseconds; the zero time is
// 0 both ways.
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
