package broker_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"google.golang.org/grpc/codes"

	"github.com/strata-dev/strata/internal/metal/broker"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

const (
	planned      = brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE
	decommission = brokerv1.DisruptionReason_DISRUPTION_REASON_DECOMMISSION
)

// members lists the machines of pool web in an MZ (0: all).
func (e *env) members(t *testing.T, mz int32) []*brokerv1.Machine {
	t.Helper()
	resp, err := e.client.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{Pool: "web", MaintenanceZone: mz, PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetMachines()
}

func (e *env) disrupt(t *testing.T, machine string, reason brokerv1.DisruptionReason) (*brokerv1.Disruption, error) {
	t.Helper()
	resp, err := e.client.CreateDisruption(t.Context(), &brokerv1.CreateDisruptionRequest{
		Machine: machine, Reason: reason, OnBehalfOf: "maintenance/test", Message: "new node config",
	})
	return resp.GetDisruption(), err
}

// approve and begin take a disruption one step through the protocol.
func (e *env) approve(t *testing.T, id, actor string) {
	t.Helper()
	if _, err := e.client.ApproveDisruption(t.Context(), &brokerv1.ApproveDisruptionRequest{Id: id, OnBehalfOf: actor, Message: "drained"}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) begin(t *testing.T, id, actor string) {
	t.Helper()
	if _, err := e.client.StartDisruption(t.Context(), &brokerv1.StartDisruptionRequest{Id: id, OnBehalfOf: actor}); err != nil {
		t.Fatal(err)
	}
}

func TestDisruptionBudgetPerPool(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		e.pool(t, "web", "general", 100) // 10% of 100: 10 at once
		machines := e.members(t, 0)
		for i := range 10 {
			if _, err := e.disrupt(t, machines[i].GetId(), brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR); err != nil {
				t.Fatalf("disruption %d: %v", i+1, err)
			}
		}
		_, err := e.disrupt(t, machines[10].GetId(), brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR)
		wantCode(t, err, codes.FailedPrecondition, "pool web already has 10 open disruptions and may have at most 10 (10% of capacity 100)")
	})
}

func TestDisruptionBudgetOneZoneAtATime(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		e.pool(t, "web", "general", 100)
		zone1, zone2 := e.members(t, 1), e.members(t, 2)
		if _, err := e.disrupt(t, zone1[0].GetId(), planned); err != nil {
			t.Fatal(err)
		}
		if _, err := e.disrupt(t, zone1[1].GetId(), planned); err != nil {
			t.Errorf("a second machine of the same MZ: %v", err)
		}
		_, err := e.disrupt(t, zone2[0].GetId(), planned)
		wantCode(t, err, codes.FailedPrecondition, "datacenter dc1 already has planned maintenance open in MZ 1")
		_, err = e.disrupt(t, zone1[0].GetId(), brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR)
		wantCode(t, err, codes.FailedPrecondition, "already has open disruption")
	})
}

func TestDisruptionProtocolAndHistory(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		ctx := t.Context()
		e.profile(t, general)
		e.pool(t, "web", "general", 20)
		m := e.members(t, 3)[0]
		d, err := e.disrupt(t, m.GetId(), planned)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.StartDisruption(ctx, &brokerv1.StartDisruptionRequest{Id: d.GetId(), OnBehalfOf: "maintenance/test"}); err == nil {
			t.Error("a Pending disruption was started without approval")
		} else {
			wantCode(t, err, codes.FailedPrecondition, "is Pending; it cannot become InProgress (only from Approved)")
		}
		e.approve(t, d.GetId(), "cluster-manager/workload-1")
		e.begin(t, d.GetId(), "maintenance/test")
		got, err := e.client.GetMachine(ctx, &brokerv1.GetMachineRequest{Id: m.GetId()})
		if err != nil || got.GetMachine().GetState() != brokerv1.MachineState_MACHINE_STATE_DISRUPTED {
			t.Errorf("machine during maintenance = %v, %v; want disrupted", got.GetMachine().GetState(), err)
		}
		if _, err := e.client.CompleteDisruption(ctx, &brokerv1.CompleteDisruptionRequest{
			Id: d.GetId(), OnBehalfOf: "maintenance/test", Software: &brokerv1.Software{OsImage: "os-2", Kernel: "6.13", NodeConfig: "kubelet-1.38"},
		}); err != nil {
			t.Fatal(err)
		}
		got, err = e.client.GetMachine(ctx, &brokerv1.GetMachineRequest{Id: m.GetId()})
		if err != nil || got.GetMachine().GetState() != brokerv1.MachineState_MACHINE_STATE_ALLOCATED || got.GetMachine().GetSoftware().GetNodeConfig() != "kubelet-1.38" {
			t.Errorf("machine after maintenance = %v, %v; want allocated on kubelet-1.38", got.GetMachine(), err)
		}
		full, err := e.client.GetDisruption(ctx, &brokerv1.GetDisruptionRequest{Id: d.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		var trail []string
		for _, h := range full.GetDisruption().GetHistory() {
			trail = append(trail, h.GetTo().String()+" by "+who(h))
		}
		want := []string{
			"DISRUPTION_STATE_PENDING by system:anonymous (for maintenance/test)",
			"DISRUPTION_STATE_APPROVED by system:anonymous (for cluster-manager/workload-1)",
			"DISRUPTION_STATE_IN_PROGRESS by system:anonymous (for maintenance/test)",
			"DISRUPTION_STATE_COMPLETED by system:anonymous (for maintenance/test)",
		}
		if len(trail) != len(want) {
			t.Fatalf("history = %v, want %v", trail, want)
		}
		for i := range want {
			if trail[i] != want[i] {
				t.Errorf("history[%d] = %q, want %q", i, trail[i], want[i])
			}
		}
	})
}

// TestBatchesOfDisruptions: CreateDisruptions and UpdateDisruptions take
// each item as its own RPC would, in order and in one transaction; an item
// the broker refuses is refused alone and leaves no trace.
func TestBatchesOfDisruptions(t *testing.T) {
	const repair = brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		ctx := t.Context()
		e.profile(t, general)
		e.pool(t, "web", "general", 40) // 10% of 40: 4 at once
		zone := e.members(t, 0)
		var reqs []*brokerv1.CreateDisruptionRequest
		for _, m := range zone[:6] {
			reqs = append(reqs, &brokerv1.CreateDisruptionRequest{Machine: m.GetId(), Reason: repair, OnBehalfOf: "maintenance/test", Message: "new node config"})
		}
		reqs = append(reqs, &brokerv1.CreateDisruptionRequest{Machine: "m-nope", Reason: planned})
		created, err := e.client.CreateDisruptions(ctx, &brokerv1.CreateDisruptionsRequest{Disruptions: reqs})
		if err != nil {
			t.Fatal(err)
		}
		var codesGot []codes.Code
		var ids []string
		for _, r := range created.GetResults() {
			codesGot = append(codesGot, codes.Code(r.GetCode())) //nolint:gosec // a gRPC code
			if r.GetDisruption() != nil {
				ids = append(ids, r.GetDisruption().GetId())
			}
		}
		want := []codes.Code{codes.OK, codes.OK, codes.OK, codes.OK, codes.FailedPrecondition, codes.FailedPrecondition, codes.NotFound}
		if diff := cmp.Diff(want, codesGot); diff != "" {
			t.Fatalf("results of CreateDisruptions (-want +got):\n%s", diff)
		}
		if msg := created.GetResults()[4].GetMessage(); !strings.Contains(msg, "over budget: pool web already has 4 open disruptions") {
			t.Errorf("the refusal of the fifth = %q, want the pool's budget", msg)
		}
		_, err = e.client.CreateDisruptions(ctx, &brokerv1.CreateDisruptionsRequest{Disruptions: []*brokerv1.CreateDisruptionRequest{{Machine: zone[5].GetId()}}})
		wantCode(t, err, codes.InvalidArgument, "disruptions[0]: reason is required")

		step := func(id string, action brokerv1.DisruptionAction, msg string) *brokerv1.DisruptionUpdate {
			return &brokerv1.DisruptionUpdate{Id: id, Action: action, OnBehalfOf: "cluster-manager/workload-1", Message: msg}
		}
		const (
			record  = brokerv1.DisruptionAction_DISRUPTION_ACTION_RECORD_STEP
			approve = brokerv1.DisruptionAction_DISRUPTION_ACTION_APPROVE
			begin   = brokerv1.DisruptionAction_DISRUPTION_ACTION_START
		)
		updated, err := e.client.UpdateDisruptions(ctx, &brokerv1.UpdateDisruptionsRequest{Updates: []*brokerv1.DisruptionUpdate{
			step(ids[0], record, "cordoned"), step(ids[0], record, "drained"), step(ids[0], approve, "node is drained"),
			step(ids[1], begin, "too early"), // Pending: refused alone
			step(ids[1], record, "cordoned"),
			step(ids[0], begin, "reimaging"),
			step("d-nope", record, "nothing"),
		}})
		if err != nil {
			t.Fatal(err)
		}
		codesGot = nil
		for _, r := range updated.GetResults() {
			codesGot = append(codesGot, codes.Code(r.GetCode())) //nolint:gosec // a gRPC code
		}
		want = []codes.Code{codes.OK, codes.OK, codes.OK, codes.FailedPrecondition, codes.OK, codes.OK, codes.NotFound}
		if diff := cmp.Diff(want, codesGot); diff != "" {
			t.Fatalf("results of UpdateDisruptions (-want +got):\n%s", diff)
		}
		if got := updated.GetResults()[5].GetDisruption().GetState(); got != brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS {
			t.Errorf("disruption after approve and start in one batch = %v, want InProgress", got)
		}
		history := func(id string) []string {
			full, err := e.client.GetDisruption(ctx, &brokerv1.GetDisruptionRequest{Id: id})
			if err != nil {
				t.Fatal(err)
			}
			var trail []string
			for _, h := range full.GetDisruption().GetHistory() {
				trail = append(trail, h.GetTo().String()+": "+h.GetMessage())
			}
			return trail
		}
		wantTrail := []string{
			"DISRUPTION_STATE_PENDING: new node config",
			"DISRUPTION_STATE_PENDING: cordoned",
			"DISRUPTION_STATE_PENDING: drained",
			"DISRUPTION_STATE_APPROVED: node is drained",
			"DISRUPTION_STATE_IN_PROGRESS: reimaging",
		}
		if diff := cmp.Diff(wantTrail, history(ids[0])); diff != "" {
			t.Errorf("history of the first (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"DISRUPTION_STATE_PENDING: new node config", "DISRUPTION_STATE_PENDING: cordoned"}, history(ids[1])); diff != "" {
			t.Errorf("history of the second, whose start was refused (-want +got):\n%s", diff)
		}
		_, err = e.client.UpdateDisruptions(ctx, &brokerv1.UpdateDisruptionsRequest{Updates: []*brokerv1.DisruptionUpdate{{Id: ids[2]}}})
		wantCode(t, err, codes.InvalidArgument, "updates[0].action is required")
	})
}

func TestDecommissionIsReplaced(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		ctx := t.Context()
		e.profile(t, general)
		e.pool(t, "web", "general", 20)
		m := e.members(t, 5)[0]
		d, err := e.disrupt(t, m.GetId(), decommission)
		if err != nil {
			t.Fatal(err)
		}
		e.approve(t, d.GetId(), "cm")
		e.begin(t, d.GetId(), "dcops")
		if _, err := e.client.CompleteDisruption(ctx, &brokerv1.CompleteDisruptionRequest{Id: d.GetId(), OnBehalfOf: "dcops"}); err != nil {
			t.Fatal(err)
		}
		pool, err := e.client.GetPool(ctx, &brokerv1.GetPoolRequest{Name: "web"})
		if err != nil {
			t.Fatal(err)
		}
		if pool.GetPool().GetStatus().GetAllocated() != 20 || zones(pool.GetPool())[5] != 1 {
			t.Errorf("pool after decommission = %v; want 20 machines, one in MZ 5", pool.GetPool().GetStatus())
		}
		got, err := e.client.GetMachine(ctx, &brokerv1.GetMachineRequest{Id: m.GetId()})
		if err != nil || got.GetMachine().GetState() != brokerv1.MachineState_MACHINE_STATE_DECOMMISSIONED || got.GetMachine().GetPool() != "" {
			t.Errorf("decommissioned machine = %v, %v", got.GetMachine(), err)
		}
		if _, err := e.client.ApproveDisruption(ctx, &brokerv1.ApproveDisruptionRequest{Id: d.GetId(), OnBehalfOf: "cm"}); err == nil {
			t.Error("a completed disruption was approved again")
		}
	})
}

func TestWatchDisruptionsAndCancel(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		e.pool(t, "web", "general", 20)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		// A disruption that exists before the watch: its ADDED event says the
		// watch has listed, and so subscribed to, what follows.
		if _, err := e.disrupt(t, e.members(t, 8)[0].GetId(), brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION); err != nil {
			t.Fatal(err)
		}
		stream, err := e.client.WatchDisruptions(ctx, &brokerv1.WatchDisruptionsRequest{Pool: "web"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		d, err := e.disrupt(t, e.members(t, 9)[0].GetId(), brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.CancelDisruption(ctx, &brokerv1.CancelDisruptionRequest{Id: d.GetId(), OnBehalfOf: "remediation", Message: "healed"}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for range 2 {
			ev, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.GetType().String()+" "+ev.GetDisruption().GetState().String())
		}
		want := []string{"EVENT_TYPE_ADDED DISRUPTION_STATE_PENDING", "EVENT_TYPE_MODIFIED DISRUPTION_STATE_CANCELLED"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("watched events (-want +got):\n%s", diff)
		}
		// A cancelled disruption frees the budget and the machine.
		if _, err := e.disrupt(t, d.GetMachine(), brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION); err != nil {
			t.Errorf("a new disruption after the cancel: %v", err)
		}
	})
}

func TestUpdateAndDeleteNodeProfile(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		ctx := t.Context()
		e.profile(t, general)
		e.pool(t, "web", "general", 20)
		raised := &brokerv1.NodeProfile{Name: "general", MinCpuCores: 64, MinMemoryGib: 256, NodeConfig: "kubelet-1.38"}
		resp, err := e.client.UpdateNodeProfile(ctx, &brokerv1.UpdateNodeProfileRequest{Profile: raised})
		if err != nil || resp.GetProfile().GetMinCpuCores() != 64 {
			t.Fatalf("update = %v, %v", resp, err)
		}
		_, err = e.client.DeleteNodeProfile(ctx, &brokerv1.DeleteNodeProfileRequest{Name: "general"})
		wantCode(t, err, codes.FailedPrecondition, `node profile "general" is used by pools web`)
		if _, err := e.client.DeletePool(ctx, &brokerv1.DeletePoolRequest{Name: "web"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.DeleteNodeProfile(ctx, &brokerv1.DeleteNodeProfileRequest{Name: "general"}); err != nil {
			t.Errorf("deleting an unused profile: %v", err)
		}
		_, err = e.client.UpdateNodeProfile(ctx, &brokerv1.UpdateNodeProfileRequest{Profile: raised})
		wantCode(t, err, codes.NotFound, `node profile "general" does not exist`)
	})
}
