package broker_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/inventory"
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
)

// disruptOp asks for a disruption of machine with an operation.
func (e *env) disruptOp(t *testing.T, machine string, reason brokerv1.DisruptionReason, op *brokerv1.Operation) (*brokerv1.Disruption, error) {
	t.Helper()
	resp, err := e.client.CreateDisruption(t.Context(), &brokerv1.CreateDisruptionRequest{
		Machine: machine, Reason: reason, Actor: "remediation/web", Message: "node NotReady", Operation: op,
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
			resp, err := e.client.RecordDisruptionStep(t.Context(), &brokerv1.RecordDisruptionStepRequest{Id: id, Actor: actor, Message: message})
			return resp.GetDisruption(), err
		}

		_, err = record("", "cluster-manager/workload-1", "x")
		wantCode(t, err, codes.InvalidArgument, "id is required")
		_, err = record(d.GetId(), "", "x")
		wantCode(t, err, codes.InvalidArgument, "actor is required")
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
		if _, err := e.client.CancelDisruption(t.Context(), &brokerv1.CancelDisruptionRequest{Id: d.GetId(), Actor: "remediation/web"}); err != nil {
			t.Fatal(err)
		}
		if _, err := record(d.GetId(), "cluster-manager/workload-1", "uncordoned node "+d.GetMachine()); err != nil {
			t.Errorf("a step after the cancel: %v", err)
		}
		type step struct{ From, To, Actor, Message string }
		var history []step
		for _, h := range e.disruption(t, d.GetId()).GetHistory() {
			history = append(history, step{h.GetFrom().String(), h.GetTo().String(), h.GetActor(), h.GetMessage()})
		}
		want := []step{
			{"DISRUPTION_STATE_UNSPECIFIED", "DISRUPTION_STATE_PENDING", "maintenance/test", "new node config"},
			{"DISRUPTION_STATE_PENDING", "DISRUPTION_STATE_PENDING", "cluster-manager/workload-1", "cordoned node " + d.GetMachine()},
			{"DISRUPTION_STATE_PENDING", "DISRUPTION_STATE_CANCELLED", "remediation/web", ""},
			{"DISRUPTION_STATE_CANCELLED", "DISRUPTION_STATE_CANCELLED", "cluster-manager/workload-1", "uncordoned node " + d.GetMachine()},
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
		_, err = e.client.CancelDisruption(t.Context(), &brokerv1.CancelDisruptionRequest{Id: d.GetId(), Actor: "remediation/web"})
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
		e, _ := startProvisioning(t, dsn, fake)
		e.profile(t, general)
		e.pool(t, "web", "general", 20)
		d, err := e.disruptOp(t, e.members(t, 0)[0].GetId(), remediation, &brokerv1.Operation{Kind: reboot})
		if err != nil {
			t.Fatal(err)
		}
		e.approve(t, d.GetId(), "cluster-manager/workload-1")
		e.begin(t, d.GetId(), "remediation/web")
		_, err = e.client.CompleteDisruption(t.Context(), &brokerv1.CompleteDisruptionRequest{Id: d.GetId(), Actor: "remediation/web"})
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
