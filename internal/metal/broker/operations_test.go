package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/metal/provision"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// Disruptions with an operation, the FAILED state, recorded steps and
// machine health as the API shows them.

const (
	remediation = brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION
	reboot      = brokerv1.OperationKind_OPERATION_KIND_REBOOT
	reimage     = brokerv1.OperationKind_OPERATION_KIND_REIMAGE
	replace     = brokerv1.OperationKind_OPERATION_KIND_REPLACE
	failed      = brokerv1.DisruptionState_DISRUPTION_STATE_FAILED
	completed   = brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED
)

// disruptOp asks for a disruption of machine with an operation.
func (e *env) disruptOp(t *testing.T, machine string, reason brokerv1.DisruptionReason, op *brokerv1.Operation) (*brokerv1.Disruption, error) {
	t.Helper()
	resp, err := e.client.CreateDisruption(t.Context(), &brokerv1.CreateDisruptionRequest{
		Machine: machine, Reason: reason, OnBehalfOf: "remediation/web", Message: "node NotReady", Operation: op,
	})
	return resp.GetDisruption(), err
}

func (e *env) disruption(t *testing.T, id string) *brokerv1.Disruption {
	t.Helper()
	resp, err := e.client.GetDisruption(t.Context(), &brokerv1.GetDisruptionRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetDisruption()
}

// setDisruptionState writes a disruption's state straight to the store.
func (e *env) setDisruptionState(t *testing.T, id string, state inventory.DisruptionState) {
	t.Helper()
	err := e.store.InTx(t.Context(), func(ctx context.Context, tx inventory.Tx) error {
		d, err := tx.GetDisruption(ctx, id)
		if err != nil {
			return err
		}
		d.State = state
		return tx.UpdateDisruption(ctx, d)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// setHealth writes a machine's health straight to the store.
func (e *env) setHealth(t *testing.T, id string, healthy bool, message string) {
	t.Helper()
	err := e.store.InTx(t.Context(), func(ctx context.Context, tx inventory.Tx) error {
		m, err := tx.GetMachine(ctx, id)
		if err != nil {
			return err
		}
		m.Healthy, m.HealthMessage = healthy, message
		return tx.UpdateMachine(ctx, m)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDisruptionOperationIsStoredAndReturned(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e, _ := startProvisioning(t, dsn, newFakeProvisioner())
		e.profile(t, general)
		e.pool(t, "web", "general", 40) // two machines per MZ
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		watch, err := e.client.WatchDisruptions(ctx, &brokerv1.WatchDisruptionsRequest{Pool: "web"})
		if err != nil {
			t.Fatal(err)
		}
		op := &brokerv1.Operation{Kind: reimage, Software: &brokerv1.Software{OsImage: "strata-os-2026.12", NodeConfig: "general-v2"}}
		d, err := e.disruptOp(t, e.members(t, 1)[0].GetId(), planned, op)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := e.disrupt(t, e.members(t, 1)[1].GetId(), planned)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		list, err := e.client.ListDisruptions(t.Context(), &brokerv1.ListDisruptionsRequest{Pool: "web"})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]*brokerv1.Operation{
			"create": d.GetOperation(), "get": e.disruption(t, d.GetId()).GetOperation(),
			"list": list.GetDisruptions()[0].GetOperation(), "watch": ev.GetDisruption().GetOperation(),
		}
		for where, o := range got {
			if diff := cmp.Diff(op, o, protocmp.Transform()); diff != "" {
				t.Errorf("operation from %s (-want +got):\n%s", where, diff)
			}
		}
		if o := list.GetDisruptions()[1].GetOperation(); list.GetDisruptions()[1].GetId() != plain.GetId() || o != nil {
			t.Errorf("a disruption without an operation lists with %v", o)
		}
	})
}

func TestDisruptionOperationValidation(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e, _ := startProvisioning(t, dsn, newFakeProvisioner())
		e.profile(t, general)
		e.pool(t, "web", "general", 20)
		member := e.members(t, 0)[0].GetId()
		spare := ""
		for _, m := range e.allMachines(t) {
			if m.GetPool() == "" {
				spare = m.GetId()
				break
			}
		}
		tests := []struct {
			name     string
			machine  string
			reason   brokerv1.DisruptionReason
			op       *brokerv1.Operation
			code     codes.Code
			contains string
		}{
			{"no kind", member, remediation, &brokerv1.Operation{}, codes.InvalidArgument, "operation.kind is required"},
			{"unknown kind", member, remediation, &brokerv1.Operation{Kind: 99}, codes.InvalidArgument, "operation.kind 99 is not an operation kind"},
			{"with decommission", member, decommission, &brokerv1.Operation{Kind: reboot}, codes.InvalidArgument, "operation is not allowed with reason decommission"},
			{"software for a reboot", member, remediation, &brokerv1.Operation{Kind: reboot, Software: &brokerv1.Software{NodeConfig: "x"}}, codes.InvalidArgument, "operation.software is only for reimage"},
			{"bad node config", member, planned, &brokerv1.Operation{Kind: reimage, Software: &brokerv1.Software{NodeConfig: "not a label!"}}, codes.InvalidArgument, "operation.software.node_config"},
			{"replace outside a pool", spare, remediation, &brokerv1.Operation{Kind: replace}, codes.FailedPrecondition, "operation.kind replace takes a machine out of its pool"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.disruptOp(t, tc.machine, tc.reason, tc.op)
				wantCode(t, err, tc.code, tc.contains)
			})
		}
		if ds := e.disruptions(t, pending); len(ds) != 0 {
			t.Errorf("refused requests left %d disruptions", len(ds))
		}

		// Without a provisioner, nothing would perform the operation.
		bare := start(t, dsn, broker.ServerOptions{})
		_, err := bare.disruptOp(t, member, remediation, &brokerv1.Operation{Kind: reboot})
		wantCode(t, err, codes.FailedPrecondition, "runs without a provisioner")
	})
}

func TestRecordDisruptionStep(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		e.pool(t, "web", "general", 20)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		d, err := e.disrupt(t, e.members(t, 2)[0].GetId(), remediation)
		if err != nil {
			t.Fatal(err)
		}
		watch, err := e.client.WatchDisruptions(ctx, &brokerv1.WatchDisruptionsRequest{Pool: "web"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := watch.Recv(); err != nil { // the listing: d, ADDED
			t.Fatal(err)
		}
		record := func(id, actor, message string) (*brokerv1.Disruption, error) {
			resp, err := e.client.RecordDisruptionStep(t.Context(), &brokerv1.RecordDisruptionStepRequest{Id: id, OnBehalfOf: actor, Message: message})
			return resp.GetDisruption(), err
		}

		_, err = record("", "cluster-manager/workload-1", "x")
		wantCode(t, err, codes.InvalidArgument, "id is required")
		_, err = record("d-nope", "cluster-manager/workload-1", "x")
		wantCode(t, err, codes.NotFound, `disruption "d-nope" does not exist`)

		got, err := record(d.GetId(), "cluster-manager/workload-1", "cordoned node "+d.GetMachine())
		if err != nil {
			t.Fatal(err)
		}
		if got.GetState() != pending {
			t.Errorf("a step moved the disruption to %s", got.GetState())
		}
		ev, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetType() != brokerv1.EventType_EVENT_TYPE_MODIFIED || ev.GetDisruption().GetId() != d.GetId() {
			t.Errorf("watch after a step = %s of %s, want MODIFIED of %s", ev.GetType(), ev.GetDisruption().GetId(), d.GetId())
		}
		if !ev.GetDisruption().GetUpdateTime().AsTime().After(d.GetUpdateTime().AsTime()) &&
			!ev.GetDisruption().GetUpdateTime().AsTime().Equal(d.GetUpdateTime().AsTime()) {
			t.Errorf("update time went back after a step")
		}

		// Final states take steps too: an uncordon follows the end.
		if _, err := e.client.CancelDisruption(t.Context(), &brokerv1.CancelDisruptionRequest{Id: d.GetId(), OnBehalfOf: "remediation/web"}); err != nil {
			t.Fatal(err)
		}
		if _, err := record(d.GetId(), "cluster-manager/workload-1", "uncordoned node "+d.GetMachine()); err != nil {
			t.Errorf("a step after the cancel: %v", err)
		}
		type step struct{ From, To, Actor, Message string }
		var history []step
		for _, h := range e.disruption(t, d.GetId()).GetHistory() {
			history = append(history, step{h.GetFrom().String(), h.GetTo().String(), who(h), h.GetMessage()})
		}
		want := []step{
			{"DISRUPTION_STATE_UNSPECIFIED", "DISRUPTION_STATE_PENDING", "system:anonymous (for maintenance/test)", "new node config"},
			{"DISRUPTION_STATE_PENDING", "DISRUPTION_STATE_PENDING", "system:anonymous (for cluster-manager/workload-1)", "cordoned node " + d.GetMachine()},
			{"DISRUPTION_STATE_PENDING", "DISRUPTION_STATE_CANCELLED", "system:anonymous (for remediation/web)", ""},
			{"DISRUPTION_STATE_CANCELLED", "DISRUPTION_STATE_CANCELLED", "system:anonymous (for cluster-manager/workload-1)", "uncordoned node " + d.GetMachine()},
		}
		if diff := cmp.Diff(want, history); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
	})
}

func TestFailedIsFinal(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e, _ := startProvisioning(t, dsn, newFakeProvisioner())
		e.profile(t, general)
		e.pool(t, "web", "general", 10) // one disruption at a time
		m := e.members(t, 0)[0].GetId()
		d, err := e.disruptOp(t, m, remediation, &brokerv1.Operation{Kind: reboot})
		if err != nil {
			t.Fatal(err)
		}
		e.setDisruptionState(t, d.GetId(), inventory.DisruptionFailed)

		resp, err := e.client.ListDisruptions(t.Context(), &brokerv1.ListDisruptionsRequest{States: []brokerv1.DisruptionState{failed}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetDisruptions()) != 1 || resp.GetDisruptions()[0].GetId() != d.GetId() {
			t.Errorf("failed disruptions = %v, want %s", resp.GetDisruptions(), d.GetId())
		}
		_, err = e.client.CancelDisruption(t.Context(), &brokerv1.CancelDisruptionRequest{Id: d.GetId(), OnBehalfOf: "remediation/web"})
		wantCode(t, err, codes.FailedPrecondition, "is Failed; it cannot become Cancelled")
		// A failed disruption no longer holds the budget nor the machine.
		if _, err := e.disruptOp(t, m, remediation, &brokerv1.Operation{Kind: replace}); err != nil {
			t.Errorf("a disruption after the failure: %v", err)
		}
	})
}

func TestOperationIsNotCompletedByHand(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		fake := newFakeProvisioner()
		fake.holdMaintain = make(chan struct{})
		e, _ := startProvisioning(t, dsn, fake)
		e.profile(t, general)
		e.pool(t, "web", "general", 20)
		d, err := e.disruptOp(t, e.members(t, 0)[0].GetId(), remediation, &brokerv1.Operation{Kind: reboot})
		if err != nil {
			t.Fatal(err)
		}
		e.approve(t, d.GetId(), "cluster-manager/workload-1")
		e.begin(t, d.GetId(), "remediation/web")
		_, err = e.client.CompleteDisruption(t.Context(), &brokerv1.CompleteDisruptionRequest{Id: d.GetId(), OnBehalfOf: "remediation/web"})
		wantCode(t, err, codes.FailedPrecondition, "has operation reboot: the broker completes it")
	})
}

func TestUnhealthyMachines(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		e.pool(t, "web", "general", 20)
		sick := e.members(t, 3)[0].GetId()
		e.setHealth(t, sick, false, "hardware: fan failed")
		spare := ""
		for _, m := range e.allMachines(t) {
			if m.GetPool() == "" {
				spare = m.GetId()
				break
			}
		}
		e.setHealth(t, spare, false, "hardware: disk failed")

		resp, err := e.client.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{UnhealthyOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, m := range resp.GetMachines() {
			got[m.GetId()] = m.GetHealthMessage()
		}
		want := map[string]string{sick: "hardware: fan failed", spare: "hardware: disk failed"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("unhealthy machines (-want +got):\n%s", diff)
		}
		resp, err = e.client.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{UnhealthyOnly: true, Pool: "web"})
		if err != nil || len(resp.GetMachines()) != 1 {
			t.Errorf("unhealthy machines of pool web = %v, %v; want %s", resp.GetMachines(), err, sick)
		}
		if st := e.getPool(t, "web").GetStatus(); st.GetUnhealthy() != 1 || st.GetAllocated() != 20 {
			t.Errorf("pool status = %v, want 1 unhealthy of 20", st)
		}
	})
}

// startOperation takes a disruption with op of machine through approval and
// start, as a cluster manager and an actor would.
func (e *env) startOperation(t *testing.T, machine string, op *brokerv1.Operation) *brokerv1.Disruption {
	t.Helper()
	d, err := e.disruptOp(t, machine, remediation, op)
	if err != nil {
		t.Fatal(err)
	}
	e.approve(t, d.GetId(), "cluster-manager/workload-1")
	resp, err := e.client.StartDisruption(t.Context(), &brokerv1.StartDisruptionRequest{Id: d.GetId(), OnBehalfOf: "remediation/web"})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetDisruption()
}

// joinedWeb creates pool web joining workload-1 and waits until every
// machine joined.
func (e *env) joinedWeb(t *testing.T, clock *clocktesting.FakeClock, capacity int32) []*brokerv1.Machine {
	t.Helper()
	e.joinedPool(t, "general", capacity)
	eventually(t, clock, "pool web joined", func() bool { return e.getPool(t, "web").GetStatus().GetJoined() == capacity })
	return e.members(t, 0)
}

// lastStep is the newest step of a disruption's history.
func (e *env) lastStep(t *testing.T, id string) *brokerv1.DisruptionTransition {
	t.Helper()
	h := e.disruption(t, id).GetHistory()
	return h[len(h)-1]
}

func TestOperationsArePerformed(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		fake := newFakeProvisioner()
		e, clock := startProvisioning(t, dsn, fake)
		e.profile(t, general)
		ms := e.joinedWeb(t, clock, 20)
		before := map[string]*brokerv1.Machine{}
		for _, m := range ms {
			before[m.GetId()] = m
		}
		reimaged, rebooted := ms[0], ms[1]

		d1 := e.startOperation(t, reimaged.GetId(), &brokerv1.Operation{Kind: reimage, Software: &brokerv1.Software{NodeConfig: "general-v2"}})
		eventually(t, clock, "the reimage completed", func() bool { return e.disruption(t, d1.GetId()).GetState() == completed })
		d2 := e.startOperation(t, rebooted.GetId(), &brokerv1.Operation{Kind: reboot})
		eventually(t, clock, "the reboot completed", func() bool { return e.disruption(t, d2.GetId()).GetState() == completed })

		for _, tc := range []struct {
			machine    *brokerv1.Machine
			disruption string
			op         provision.Operation
			message    string
		}{
			{reimaged, d1.GetId(), provision.Operation{Kind: provision.Reimage, Software: inventory.Software{
				OSImage: reimaged.GetSoftware().GetOsImage(), Kernel: reimaged.GetSoftware().GetKernel(), NodeConfig: "general-v2",
			}}, "reimaged with node config general-v2, os image " + reimaged.GetSoftware().GetOsImage() + " in "},
			{rebooted, d2.GetId(), provision.Operation{Kind: provision.Reboot, Software: inventory.Software{
				OSImage: rebooted.GetSoftware().GetOsImage(), Kernel: rebooted.GetSoftware().GetKernel(), NodeConfig: "kubelet-1.37",
			}}, "rebooted in "},
		} {
			id := tc.machine.GetId()
			fake.read(func() {
				calls := fake.maintains[id]
				if len(calls) != 1 {
					t.Fatalf("machine %s maintained %d times, want once", id, len(calls))
				}
				if diff := cmp.Diff(tc.op, calls[0].op); diff != "" {
					t.Errorf("operation of %s (-want +got):\n%s", id, diff)
				}
				if calls[0].target.Cluster != "workload-1" || calls[0].machine.NodeConfig != "kubelet-1.37" || calls[0].machine.Pool != "web" {
					t.Errorf("Maintain of %s got machine %+v, target cluster %q; want the machine as it runs, pool web's target",
						id, calls[0].machine, calls[0].target.Cluster)
				}
			})
			m := e.machine(t, id)
			if m.GetState() != brokerv1.MachineState_MACHINE_STATE_ALLOCATED || m.GetSoftware().GetNodeConfig() != tc.op.Software.NodeConfig ||
				m.GetSoftware().GetOsImage() != tc.op.Software.OSImage || !m.GetHealthy() {
				t.Errorf("machine %s after its %s = %s on %v, healthy %t", id, tc.op.Kind, m.GetState(), m.GetSoftware(), m.GetHealthy())
			}
			if step := e.lastStep(t, tc.disruption); step.GetActor() != "broker" || !strings.HasPrefix(step.GetMessage(), tc.message) {
				t.Errorf("last step of the %s = %q by %s, want %q<duration> by broker", tc.op.Kind, step.GetMessage(), step.GetActor(), tc.message)
			}
		}
		if p := e.getPool(t, "web"); p.GetStatus().GetDisrupted() != 0 || p.GetStatus().GetJoined() != 20 {
			t.Errorf("pool after maintenance = %v", p.GetStatus())
		}
	})
}

func TestOperationFailsOnAMachineFault(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		fake := newFakeProvisioner()
		e, clock := startProvisioning(t, dsn, fake)
		e.profile(t, general)
		m := e.joinedWeb(t, clock, 20)[4].GetId()
		fake.maintainErrs[m] = []error{fmt.Errorf("no POST after the power cycle: %w", provision.ErrMachineFault)}

		d := e.startOperation(t, m, &brokerv1.Operation{Kind: reboot})
		eventually(t, clock, "the reboot failed", func() bool { return e.disruption(t, d.GetId()).GetState() == failed })
		got := e.machine(t, m)
		want := "maintenance failed: reboot: no POST after the power cycle: machine fault"
		if got.GetHealthy() || got.GetHealthMessage() != want || got.GetPool() != "web" || got.GetState() != brokerv1.MachineState_MACHINE_STATE_ALLOCATED {
			t.Errorf("machine after a failed reboot = healthy %t %q, %s in pool %q; want unhealthy %q, allocated in web",
				got.GetHealthy(), got.GetHealthMessage(), got.GetState(), got.GetPool(), want)
		}
		if step := e.lastStep(t, d.GetId()); step.GetActor() != "broker" || step.GetTo() != failed {
			t.Errorf("last step = %s by %s, want FAILED by broker", step.GetTo(), step.GetActor())
		}
		fake.read(func() {
			if n := len(fake.maintains[m]); n != 1 {
				t.Errorf("a machine fault was retried: %d calls", n)
			}
		})
		if st := e.getPool(t, "web").GetStatus(); st.GetUnhealthy() != 1 || st.GetAllocated() != 20 {
			t.Errorf("pool after the failure = %v, want 20 machines, 1 unhealthy", st)
		}

		// A successful operation clears the maintenance failure.
		d = e.startOperation(t, m, &brokerv1.Operation{Kind: reimage})
		eventually(t, clock, "the reimage completed", func() bool { return e.disruption(t, d.GetId()).GetState() == completed })
		if got := e.machine(t, m); !got.GetHealthy() || got.GetHealthMessage() != "" {
			t.Errorf("machine after a successful reimage = healthy %t %q, want healthy", got.GetHealthy(), got.GetHealthMessage())
		}
		if st := e.getPool(t, "web").GetStatus(); st.GetUnhealthy() != 0 {
			t.Errorf("pool after the reimage = %v, want none unhealthy", st)
		}
	})
}

func TestOperationRetriesTransientErrors(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		fake := newFakeProvisioner()
		e, clock := startProvisioning(t, dsn, fake)
		e.profile(t, general)
		m := e.joinedWeb(t, clock, 20)[2].GetId()
		bmc := errors.New("BMC 10.1.2.3: connection timed out")
		fake.maintainErrs[m] = []error{bmc, bmc}

		d := e.startOperation(t, m, &brokerv1.Operation{Kind: reboot})
		eventually(t, clock, "the reboot completed", func() bool { return e.disruption(t, d.GetId()).GetState() == completed })
		fake.read(func() {
			if n := len(fake.maintains[m]); n != 3 {
				t.Errorf("Maintain called %d times, want 3 (two transient failures, then success)", n)
			}
		})
		if got := e.machine(t, m); !got.GetHealthy() || got.GetHealthMessage() != "" {
			t.Errorf("machine after the retried reboot = healthy %t %q, want healthy without a message", got.GetHealthy(), got.GetHealthMessage())
		}
	})
}

func TestOperationResumesAfterARestart(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		first := newFakeProvisioner()
		e, clock := startProvisioning(t, dsn, first)
		e.profile(t, general)
		m := e.joinedWeb(t, clock, 20)[7].GetId()
		first.read(func() { first.holdMaintain = make(chan struct{}) })
		d := e.startOperation(t, m, &brokerv1.Operation{Kind: reimage, Software: &brokerv1.Software{NodeConfig: "general-v2"}})
		eventually(t, clock, "the reimage is under way", func() bool {
			n := 0
			first.read(func() { n = len(first.maintains[m]) })
			return n == 1
		})
		e.stop(t)

		second := newFakeProvisioner()
		again, clock := startProvisioning(t, dsn, second)
		eventually(t, clock, "the reimage completed", func() bool { return again.disruption(t, d.GetId()).GetState() == completed })
		second.read(func() {
			if n := len(second.maintains[m]); n != 1 {
				t.Errorf("machine %s maintained %d times after the restart, want once", m, n)
			}
		})
		if got := again.machine(t, m); got.GetSoftware().GetNodeConfig() != "general-v2" {
			t.Errorf("machine after the resumed reimage runs %q, want general-v2", got.GetSoftware().GetNodeConfig())
		}
	})
}

func TestAnOperationUnderWayCannotBeCancelled(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		fake := newFakeProvisioner()
		e, clock := startProvisioning(t, dsn, fake)
		e.profile(t, general)
		m := e.joinedWeb(t, clock, 20)[3].GetId()
		fake.read(func() { fake.holdMaintain = make(chan struct{}) })
		d := e.startOperation(t, m, &brokerv1.Operation{Kind: reboot})
		eventually(t, clock, "the reboot is under way", func() bool {
			n := 0
			fake.read(func() { n = len(fake.maintains[m]) })
			return n == 1
		})
		_, err := e.client.CancelDisruption(t.Context(), &brokerv1.CancelDisruptionRequest{Id: d.GetId(), OnBehalfOf: "remediation/web"})
		wantCode(t, err, codes.FailedPrecondition, "is performing its reboot; it cannot be cancelled now")
		if got := e.disruption(t, d.GetId()).GetState(); got != brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS {
			t.Errorf("disruption after the refused cancel = %s, want in progress", got)
		}
		n := 0
		fake.read(func() { n = fake.cancelled[m] })
		if n != 0 {
			t.Errorf("the reboot was cancelled %d times", n)
		}
	})
}

func TestReplaceKeepsThePoolAtCapacity(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		fake := newFakeProvisioner()
		e, clock := startProvisioning(t, dsn, fake)
		e.profile(t, general)
		e.joinedWeb(t, clock, 40)
		sick, healthy := e.members(t, 7)[0].GetId(), e.members(t, 9)[0].GetId()
		fake.setFault(sick, "disk /dev/nvme0n1 failed")
		eventually(t, clock, "the fault is known", func() bool { return !e.machine(t, sick).GetHealthy() })

		for _, tc := range []struct {
			machine   string
			mz        int32
			wantState brokerv1.MachineState
			wantMsg   string
		}{
			{sick, 7, brokerv1.MachineState_MACHINE_STATE_UNHEALTHY, "replaced: machine left pool web unhealthy (hardware: disk /dev/nvme0n1 failed) and is wiped; spare "},
			{healthy, 9, brokerv1.MachineState_MACHINE_STATE_AVAILABLE, "replaced: machine left pool web and is wiped; spare "},
		} {
			d := e.startOperation(t, tc.machine, &brokerv1.Operation{Kind: replace})
			if d.GetState() != completed {
				t.Errorf("started replace = %s, want COMPLETED at once", d.GetState())
			}
			step := e.lastStep(t, d.GetId())
			if step.GetActor() != "broker" || !strings.HasPrefix(step.GetMessage(), tc.wantMsg) || !strings.HasSuffix(step.GetMessage(), fmt.Sprintf("(MZ %d) takes its place", tc.mz)) {
				t.Errorf("replace step = %q by %s, want %q... a spare in MZ %d by broker", step.GetMessage(), step.GetActor(), tc.wantMsg, tc.mz)
			}
			got := e.machine(t, tc.machine)
			if got.GetPool() != "" || got.GetState() != tc.wantState {
				t.Errorf("replaced machine = %s in pool %q, want %s in none", got.GetState(), got.GetPool(), tc.wantState)
			}
			p := e.getPool(t, "web")
			if p.GetStatus().GetAllocated() != 40 || zones(p)[tc.mz] != 2 {
				t.Errorf("pool after replacing a machine of MZ %d = %v; want 40 machines, 2 in MZ %d", tc.mz, p.GetStatus(), tc.mz)
			}
		}
		eventually(t, clock, "the spares joined and the replaced machines are wiped", func() bool {
			return e.getPool(t, "web").GetStatus().GetJoined() == 40 &&
				e.machine(t, sick).GetProvisionState() == brokerv1.ProvisionState_PROVISION_STATE_CLEAN &&
				e.machine(t, healthy).GetProvisionState() == brokerv1.ProvisionState_PROVISION_STATE_CLEAN
		})
		if st := e.getPool(t, "web").GetStatus(); st.GetUnhealthy() != 0 {
			t.Errorf("pool after the replaces = %v, want none unhealthy", st)
		}

		// Healed, the replaced machine is available again.
		fake.setFault(sick, "")
		eventually(t, clock, "the healed machine is available", func() bool {
			m := e.machine(t, sick)
			return m.GetHealthy() && m.GetState() == brokerv1.MachineState_MACHINE_STATE_AVAILABLE
		})
		checkInvariants(t, e)
	})
}

func TestHealthFromTheProvisioner(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		fake := newFakeProvisioner()
		e, clock := startProvisioning(t, dsn, fake)
		e.profile(t, general)
		member := e.joinedWeb(t, clock, 20)[5].GetId()
		var spare, failedOp string
		for _, m := range e.allMachines(t) {
			if m.GetPool() == "" {
				if spare == "" {
					spare = m.GetId()
				} else {
					failedOp = m.GetId()
					break
				}
			}
		}
		e.setHealth(t, failedOp, false, "maintenance failed: reboot: no POST")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		watch, err := e.client.WatchPools(ctx, &brokerv1.WatchPoolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := watch.Recv(); err != nil { // pool web, ADDED
			t.Fatal(err)
		}

		fake.setFault(member, "PSU 2 failed")
		fake.setFault(spare, "memory: uncorrectable ECC errors")
		eventually(t, clock, "both faults are known", func() bool {
			return !e.machine(t, member).GetHealthy() && !e.machine(t, spare).GetHealthy()
		})
		for id, want := range map[string]string{member: "hardware: PSU 2 failed", spare: "hardware: memory: uncorrectable ECC errors"} {
			if got := e.machine(t, id).GetHealthMessage(); got != want {
				t.Errorf("machine %s says %q, want %q", id, got, want)
			}
		}
		if got := e.machine(t, spare).GetState(); got != brokerv1.MachineState_MACHINE_STATE_UNHEALTHY {
			t.Errorf("faulty spare is %s, want unhealthy", got)
		}
		for {
			ev, err := watch.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetPool().GetStatus().GetUnhealthy() == 1 {
				break
			}
		}

		fake.setFault(member, "")
		fake.setFault(spare, "")
		eventually(t, clock, "both faults are cleared", func() bool {
			return e.machine(t, member).GetHealthy() && e.machine(t, spare).GetHealthy()
		})
		if got := e.machine(t, spare); got.GetState() != brokerv1.MachineState_MACHINE_STATE_AVAILABLE || got.GetHealthMessage() != "" {
			t.Errorf("healed spare = %s %q, want available", got.GetState(), got.GetHealthMessage())
		}
		if got := e.machine(t, failedOp); got.GetHealthy() || got.GetHealthMessage() != "maintenance failed: reboot: no POST" {
			t.Errorf("a maintenance failure was cleared by the fault report: healthy %t %q", got.GetHealthy(), got.GetHealthMessage())
		}
		for {
			ev, err := watch.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetPool().GetStatus().GetUnhealthy() == 0 {
				break
			}
		}
	})
}

func TestUnhealthyMachinesAreNotAllocated(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		healthy := map[string]bool{}
		err := e.store.InTx(t.Context(), func(ctx context.Context, tx inventory.Tx) error {
			ms, err := tx.ListMachines(ctx, inventory.MachineFilter{})
			if err != nil {
				return err
			}
			for i, m := range ms {
				if i%40 == 0 { // ten healthy machines, in ten MZs or fewer
					healthy[m.ID] = true
					continue
				}
				m.Healthy, m.HealthMessage = false, "hardware: test"
				if err := tx.UpdateMachine(ctx, m); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		e.pool(t, "web", "general", 100)
		for _, m := range e.members(t, 0) {
			if !healthy[m.GetId()] {
				t.Errorf("pool web got unhealthy machine %s", m.GetId())
			}
		}
	})
}
