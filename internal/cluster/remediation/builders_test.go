package remediation

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-dev/strata/internal/testutil"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// t0 is the tests' "now".
var t0 = time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)

const (
	testPool  = "web"
	testActor = "remediation/web"
)

var testPolicy = policy{notReady: 2 * time.Minute, faultHoldOff: time.Minute, window: 30 * time.Minute, maxUnhealthyPercent: 20}

// machineWrapper builds what the controller knows of a machine.
type machineWrapper struct{ machine }

// makeMachine starts a healthy, joined machine of the test pool in an MZ.
func makeMachine(id string, mz int32) *machineWrapper {
	return &machineWrapper{machine{m: &brokerv1.Machine{
		Id: id, MaintenanceZone: mz, Pool: testPool, Healthy: true,
		State:          brokerv1.MachineState_MACHINE_STATE_ALLOCATED,
		ProvisionState: brokerv1.ProvisionState_PROVISION_STATE_JOINED,
		Software:       &brokerv1.Software{OsImage: "os-1", Kernel: "6.1", NodeConfig: "kubelet-1.37-general"},
	}}}
}

// fault marks the machine unhealthy in the broker, first seen at seen.
func (w *machineWrapper) fault(msg string, seen time.Time) *machineWrapper {
	w.m.Healthy, w.m.HealthMessage, w.faultSeen = false, msg, seen
	return w
}

// node gives the machine a Ready Node.
func (w *machineWrapper) node() *machineWrapper {
	w.machine.node = testutil.MakeNode(w.m.GetId(), testPool, "1").Obj()
	return w
}

// notReady gives the machine a Node whose Ready condition became status at since.
func (w *machineWrapper) notReady(status corev1.ConditionStatus, since time.Time) *machineWrapper {
	n := testutil.MakeNode(w.m.GetId(), testPool, "1").Obj()
	n.Status.Conditions[0].Status = status
	n.Status.Conditions[0].LastTransitionTime = metav1.NewTime(since)
	w.machine.node = n
	return w
}

func (w *machineWrapper) joining() *machineWrapper {
	w.m.ProvisionState = brokerv1.ProvisionState_PROVISION_STATE_JOINING
	return w
}

func (w *machineWrapper) open(d *brokerv1.Disruption) *machineWrapper {
	w.machine.open = d
	return w
}

// history reads the machine's record from its disruptions as of t0.
func (w *machineWrapper) history(ds ...*brokerv1.Disruption) *machineWrapper {
	w.record = readRecord(testPool, ds, t0.Add(-testPolicy.window))
	return w
}

func (w *machineWrapper) obj() machine {
	return w.machine
}

// disruptionWrapper builds a broker disruption.
type disruptionWrapper struct{ *brokerv1.Disruption }

// remediation starts a Pending remediation disruption of the controller's,
// created at t0.
func remediation(id, machine string, op brokerv1.OperationKind) *disruptionWrapper {
	return &disruptionWrapper{&brokerv1.Disruption{
		Id: id, Machine: machine, Pool: testPool, Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION,
		State: brokerv1.DisruptionState_DISRUPTION_STATE_PENDING, Actor: "strata-hub/remediation-controller", OnBehalfOf: testActor,
		Operation:  &brokerv1.Operation{Kind: op},
		CreateTime: timestamppb.New(t0), UpdateTime: timestamppb.New(t0),
	}}
}

// planned starts a Pending planned-upgrade disruption, created at t0.
func planned(id, machine string) *disruptionWrapper {
	d := remediation(id, machine, brokerv1.OperationKind_OPERATION_KIND_REIMAGE)
	d.Reason, d.OnBehalfOf = brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE, "maintenance/r1"
	return d
}

func (w *disruptionWrapper) state(s brokerv1.DisruptionState) *disruptionWrapper {
	w.State = s
	return w
}

// ended puts the disruption in a final state at end.
func (w *disruptionWrapper) ended(s brokerv1.DisruptionState, end time.Time) *disruptionWrapper {
	w.State, w.CreateTime, w.UpdateTime = s, timestamppb.New(end.Add(-time.Minute)), timestamppb.New(end)
	return w
}

func (w *disruptionWrapper) actor(a string) *disruptionWrapper {
	w.OnBehalfOf = a
	return w
}

func (w *disruptionWrapper) pool(p string) *disruptionWrapper {
	w.Pool = p
	return w
}

func (w *disruptionWrapper) obj() *brokerv1.Disruption {
	return w.Disruption
}

const (
	reboot  = brokerv1.OperationKind_OPERATION_KIND_REBOOT
	reimage = brokerv1.OperationKind_OPERATION_KIND_REIMAGE
	replace = brokerv1.OperationKind_OPERATION_KIND_REPLACE
	noOp    = brokerv1.OperationKind_OPERATION_KIND_UNSPECIFIED

	pending    = brokerv1.DisruptionState_DISRUPTION_STATE_PENDING
	approved   = brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED
	inProgress = brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS
	completed  = brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED
	failed     = brokerv1.DisruptionState_DISRUPTION_STATE_FAILED
	cancelled  = brokerv1.DisruptionState_DISRUPTION_STATE_CANCELLED
)
