package v1alpha1

// Well-known labels, taints and annotations on the Nodes of workload
// clusters: the contract between the provisioner (whose kubelet registers a
// Node with them), the pool controller and the workload layer.
const (
	// MachineLabel is the broker machine behind a Node (also the Node's name).
	MachineLabel = "fleet.strata.dev/machine"
	// DatacenterLabel is the machine's datacenter.
	DatacenterLabel = "fleet.strata.dev/datacenter"
	// MaintenanceZoneLabel is the machine's maintenance zone, "1".."20".
	MaintenanceZoneLabel = "fleet.strata.dev/maintenance-zone"
	// RackLabel is the machine's rack.
	RackLabel = "fleet.strata.dev/rack"
	// SKULabel is the machine's SKU (also node.kubernetes.io/instance-type).
	SKULabel = "fleet.strata.dev/sku"
	// NodeConfigLabel is the node configuration the machine was imaged with.
	NodeConfigLabel = "fleet.strata.dev/node-config"
	// PoolLabel is the Pool the Node belongs to.
	PoolLabel = "fleet.strata.dev/pool"
	// NodeProfileLabel is the node profile of the Node's Pool.
	NodeProfileLabel = "fleet.strata.dev/node-profile"

	// StartupTaintKey marks a Node whose required DaemonSets are not all
	// ready on it yet (NoSchedule). Required DaemonSets must tolerate it.
	StartupTaintKey = "fleet.strata.dev/startup"

	// CordonedForAnnotation records that Strata cordoned the Node, and for
	// which broker disruption: Strata uncordons only Nodes that carry it. A
	// Node that was already unschedulable when a disruption came (someone's
	// kubectl cordon) never gets it, so Strata never uncordons it.
	CordonedForAnnotation = "fleet.strata.dev/cordoned-for"
	// DrainStartedAnnotation is when the cluster manager began draining the
	// Node for a Pending disruption (RFC 3339): the drain deadline is
	// measured from it, across restarts. Removed once the drain is over.
	DrainStartedAnnotation = "fleet.strata.dev/drain-started"
	// DrainBlockedAnnotation says why the Node's drain cannot finish now:
	// the pods whose eviction a PodDisruptionBudget refused, one per line
	// ("namespace/name: reason"). Absent when nothing blocks the drain.
	DrainBlockedAnnotation = "fleet.strata.dev/drain-blocked"
)
