package broker

import (
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// Enum mappings between the store and the API, in one place each.
var (
	machineStates = map[inventory.MachineState]brokerv1.MachineState{
		inventory.MachineAvailable:      brokerv1.MachineState_MACHINE_STATE_AVAILABLE,
		inventory.MachineAllocated:      brokerv1.MachineState_MACHINE_STATE_ALLOCATED,
		inventory.MachineDisrupted:      brokerv1.MachineState_MACHINE_STATE_DISRUPTED,
		inventory.MachineUnhealthy:      brokerv1.MachineState_MACHINE_STATE_UNHEALTHY,
		inventory.MachineDecommissioned: brokerv1.MachineState_MACHINE_STATE_DECOMMISSIONED,
	}
	disruptionReasons = map[inventory.DisruptionReason]brokerv1.DisruptionReason{
		inventory.ReasonPlannedUpgrade: brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE,
		inventory.ReasonHardwareRepair: brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR,
		inventory.ReasonDecommission:   brokerv1.DisruptionReason_DISRUPTION_REASON_DECOMMISSION,
		inventory.ReasonRemediation:    brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION,
		inventory.ReasonPoolShrink:     brokerv1.DisruptionReason_DISRUPTION_REASON_POOL_SHRINK,
	}
	provisionStates = map[inventory.ProvisionState]brokerv1.ProvisionState{
		inventory.ProvisionClean:   brokerv1.ProvisionState_PROVISION_STATE_CLEAN,
		inventory.ProvisionJoining: brokerv1.ProvisionState_PROVISION_STATE_JOINING,
		inventory.ProvisionJoined:  brokerv1.ProvisionState_PROVISION_STATE_JOINED,
		inventory.ProvisionWiping:  brokerv1.ProvisionState_PROVISION_STATE_WIPING,
	}
	disruptionStates = map[inventory.DisruptionState]brokerv1.DisruptionState{
		inventory.DisruptionPending:    brokerv1.DisruptionState_DISRUPTION_STATE_PENDING,
		inventory.DisruptionApproved:   brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED,
		inventory.DisruptionInProgress: brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS,
		inventory.DisruptionCompleted:  brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED,
		inventory.DisruptionCancelled:  brokerv1.DisruptionState_DISRUPTION_STATE_CANCELLED,
		inventory.DisruptionFailed:     brokerv1.DisruptionState_DISRUPTION_STATE_FAILED,
	}
	operationKinds = map[inventory.OperationKind]brokerv1.OperationKind{
		inventory.OperationReboot:  brokerv1.OperationKind_OPERATION_KIND_REBOOT,
		inventory.OperationReimage: brokerv1.OperationKind_OPERATION_KIND_REIMAGE,
		inventory.OperationReplace: brokerv1.OperationKind_OPERATION_KIND_REPLACE,
	}
)

// reverse finds the store value of an API enum value.
func reverse[K comparable, V comparable](m map[K]V, v V) (K, bool) {
	for k, mv := range m {
		if mv == v {
			return k, true
		}
	}
	var zero K
	return zero, false
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func skuToAPI(s inventory.SKU) *brokerv1.SKU {
	return &brokerv1.SKU{
		Name: s.Name, Arch: s.Arch, CpuCores: s.CPUCores, MemoryGib: s.MemoryGiB,
		Gpus: s.GPUs, GpuModel: s.GPUModel, LocalDiskGib: s.LocalDiskGiB,
	}
}

func softwareToAPI(s inventory.Software) *brokerv1.Software {
	return &brokerv1.Software{OsImage: s.OSImage, Kernel: s.Kernel, NodeConfig: s.NodeConfig}
}

func machineToAPI(m inventory.Machine, skus map[string]inventory.SKU) *brokerv1.Machine {
	return &brokerv1.Machine{
		Id: m.ID, Datacenter: m.Datacenter, MaintenanceZone: m.MaintenanceZone, Rack: m.Rack,
		Sku: skuToAPI(skus[m.SKU]), State: machineStates[m.State], Healthy: m.Healthy,
		HealthMessage: m.HealthMessage, Software: softwareToAPI(m.Software), Pool: m.Pool,
		UpdateTime: ts(m.UpdatedAt), ProvisionState: provisionStates[m.Provision],
	}
}

func profileToAPI(p inventory.NodeProfile) *brokerv1.NodeProfile {
	return &brokerv1.NodeProfile{
		Name: p.Name, MinCpuCores: p.MinCPUCores, MinMemoryGib: p.MinMemoryGiB, MinGpus: p.MinGPUs,
		GpuModel: p.GPUModel, MinLocalDiskGib: p.MinLocalDiskGiB, NodeConfig: p.NodeConfig,
		CreateTime: ts(p.CreatedAt), UpdateTime: ts(p.UpdatedAt),
	}
}

func profileFromAPI(p *brokerv1.NodeProfile) inventory.NodeProfile {
	return inventory.NodeProfile{
		Name: p.GetName(), MinCPUCores: p.GetMinCpuCores(), MinMemoryGiB: p.GetMinMemoryGib(), MinGPUs: p.GetMinGpus(),
		GPUModel: p.GetGpuModel(), MinLocalDiskGiB: p.GetMinLocalDiskGib(), NodeConfig: p.GetNodeConfig(),
	}
}

func poolToAPI(p inventory.Pool, st PoolStatus) *brokerv1.Pool {
	zones := make([]int32, 0, len(st.Zones))
	for z := range st.Zones {
		zones = append(zones, z)
	}
	slices.Sort(zones)
	status := &brokerv1.PoolStatus{
		Allocated: st.Allocated, Disrupted: st.Disrupted, Joined: st.Joined, Releasing: st.Releasing, Unhealthy: st.Unhealthy,
		Conditions: []*brokerv1.Condition{{
			Type: st.Satisfied.Type, Status: st.Satisfied.Status, Reason: st.Satisfied.Reason, Message: st.Satisfied.Message,
		}},
	}
	for _, z := range zones {
		status.Zones = append(status.Zones, &brokerv1.ZoneCount{MaintenanceZone: z, Machines: st.Zones[z]})
	}
	return &brokerv1.Pool{
		Name: p.Name, Datacenter: p.Datacenter, NodeProfile: p.Profile, Capacity: p.Capacity,
		Generation: p.Generation, Deleting: p.Deleting, Status: status,
		CreateTime: ts(p.CreatedAt), UpdateTime: ts(p.UpdatedAt),
		NodeConfig: p.NodeConfig, JoinTarget: joinTargetToAPI(p.JoinTarget),
	}
}

// joinTargetToAPI leaves the bootstrap kubeconfig out: it is write-only.
func joinTargetToAPI(jt *inventory.JoinTarget) *brokerv1.JoinTarget {
	if jt == nil {
		return nil
	}
	// The bootstrap token is write-only; where to join is not secret.
	out := &brokerv1.JoinTarget{
		Cluster: jt.Cluster, ApiServer: jt.APIServer, CaBundle: slices.Clone(jt.CABundle), NodeLabels: maps.Clone(jt.NodeLabels),
	}
	for _, t := range jt.NodeTaints {
		out.NodeTaints = append(out.NodeTaints, &brokerv1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
	}
	return out
}

// joinTargetFromAPI converts a validated join target; nil stays nil.
func joinTargetFromAPI(jt *brokerv1.JoinTarget) *inventory.JoinTarget {
	if jt == nil {
		return nil
	}
	out := &inventory.JoinTarget{
		Cluster: jt.GetCluster(), APIServer: jt.GetApiServer(), CABundle: slices.Clone(jt.GetCaBundle()),
		BootstrapToken: jt.GetBootstrapToken(), NodeLabels: maps.Clone(jt.GetNodeLabels()),
	}
	if len(out.NodeLabels) == 0 {
		out.NodeLabels = nil
	}
	for _, t := range jt.GetNodeTaints() {
		out.NodeTaints = append(out.NodeTaints, inventory.Taint{Key: t.GetKey(), Value: t.GetValue(), Effect: t.GetEffect()})
	}
	return out
}

func disruptionToAPI(d inventory.Disruption, history []inventory.DisruptionEvent) *brokerv1.Disruption {
	out := &brokerv1.Disruption{
		Id: d.ID, Machine: d.Machine, Pool: d.Pool, Datacenter: d.Datacenter, MaintenanceZone: d.MaintenanceZone,
		Reason: disruptionReasons[d.Reason], State: disruptionStates[d.State], Actor: d.Actor, OnBehalfOf: d.OnBehalfOf, Message: d.Message,
		CreateTime: ts(d.CreatedAt), UpdateTime: ts(d.UpdatedAt), Operation: operationToAPI(d.Operation),
	}
	for _, e := range history {
		out.History = append(out.History, &brokerv1.DisruptionTransition{
			From: disruptionStates[e.From], To: disruptionStates[e.To], Actor: e.Actor, OnBehalfOf: e.OnBehalfOf, Message: e.Message,
			Time: ts(e.At),
		})
	}
	return out
}

// operationToAPI is nil for no operation.
func operationToAPI(op inventory.Operation) *brokerv1.Operation {
	if op.Kind == inventory.OperationNone {
		return nil
	}
	out := &brokerv1.Operation{Kind: operationKinds[op.Kind]}
	if op.Software != (inventory.Software{}) {
		out.Software = softwareToAPI(op.Software)
	}
	return out
}
