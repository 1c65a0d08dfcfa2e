package broker_test

import (
	"context"
	"testing"

	"github.com/strata-dev/strata/internal/metal/broker"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// BenchmarkZoneProtocol measures the broker's side of the maintenance
// protocol for one zone of 100 machines of a pool of 1,000, on SQLite in a
// file, called in process: each machine is disrupted, gets its cordon and
// drain steps, is approved, started, completed and gets its uncordon step.
// "calls" takes each step with its own RPC (700 transactions), "batches"
// with CreateDisruptions and UpdateDisruptions as the rollout and the
// cluster manager do (5 transactions). Reported per machine.
//
//	go test -run '^$' -bench ZoneProtocol ./internal/metal/broker/
func BenchmarkZoneProtocol(b *testing.B) {
	for _, mode := range []string{"calls", "batches"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			br := seededBroker(b, 7, 2000)
			if _, err := br.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
				Name: "web", Datacenter: "dc1", NodeProfile: "general", Capacity: 1000,
			}}); err != nil {
				b.Fatal(err)
			}
			list, err := br.ListMachines(ctx, &brokerv1.ListMachinesRequest{Pool: "web", PageSize: 1000})
			if err != nil {
				b.Fatal(err)
			}
			machines := list.GetMachines()[:100]
			run := zoneByCalls
			if mode == "batches" {
				run = zoneByBatches
			}
			for b.Loop() {
				run(b, ctx, br, machines)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*len(machines)), "ms/machine")
		})
	}
}

func zoneByCalls(b *testing.B, ctx context.Context, br *broker.Broker, machines []*brokerv1.Machine) {
	const repair = brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR
	for _, m := range machines {
		d, err := br.CreateDisruption(ctx, &brokerv1.CreateDisruptionRequest{Machine: m.GetId(), Reason: repair, OnBehalfOf: "maintenance/bench"})
		if err != nil {
			b.Fatal(err)
		}
		id := d.GetDisruption().GetId()
		steps := []func() error{
			func() error {
				return second(br.RecordDisruptionStep(ctx, &brokerv1.RecordDisruptionStepRequest{Id: id, Message: "cordoned"}))
			},
			func() error {
				return second(br.RecordDisruptionStep(ctx, &brokerv1.RecordDisruptionStepRequest{Id: id, Message: "drained"}))
			},
			func() error { return second(br.ApproveDisruption(ctx, &brokerv1.ApproveDisruptionRequest{Id: id})) },
			func() error { return second(br.StartDisruption(ctx, &brokerv1.StartDisruptionRequest{Id: id})) },
			func() error { return second(br.CompleteDisruption(ctx, &brokerv1.CompleteDisruptionRequest{Id: id})) },
			func() error {
				return second(br.RecordDisruptionStep(ctx, &brokerv1.RecordDisruptionStepRequest{Id: id, Message: "uncordoned"}))
			},
		}
		for _, step := range steps {
			if err := step(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func second[T any](_ T, err error) error { return err }

func zoneByBatches(b *testing.B, ctx context.Context, br *broker.Broker, machines []*brokerv1.Machine) {
	var reqs []*brokerv1.CreateDisruptionRequest
	for _, m := range machines {
		reqs = append(reqs, &brokerv1.CreateDisruptionRequest{
			Machine: m.GetId(), Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR, OnBehalfOf: "maintenance/bench",
		})
	}
	created, err := br.CreateDisruptions(ctx, &brokerv1.CreateDisruptionsRequest{Disruptions: reqs})
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for _, r := range created.GetResults() {
		if r.GetCode() != 0 {
			b.Fatalf("disruption refused: %s", r.GetMessage())
		}
		ids = append(ids, r.GetDisruption().GetId())
	}
	type step struct {
		action brokerv1.DisruptionAction
		msg    string
	}
	for _, batch := range [][]step{
		{{brokerv1.DisruptionAction_DISRUPTION_ACTION_RECORD_STEP, "cordoned"}, {brokerv1.DisruptionAction_DISRUPTION_ACTION_RECORD_STEP, "drained"},
			{brokerv1.DisruptionAction_DISRUPTION_ACTION_APPROVE, ""}},
		{{brokerv1.DisruptionAction_DISRUPTION_ACTION_START, ""}},
		{{brokerv1.DisruptionAction_DISRUPTION_ACTION_COMPLETE, ""}},
		{{brokerv1.DisruptionAction_DISRUPTION_ACTION_RECORD_STEP, "uncordoned"}},
	} {
		var updates []*brokerv1.DisruptionUpdate
		for _, id := range ids {
			for _, s := range batch {
				updates = append(updates, &brokerv1.DisruptionUpdate{Id: id, Action: s.action, Message: s.msg})
			}
		}
		resp, err := br.UpdateDisruptions(ctx, &brokerv1.UpdateDisruptionsRequest{Updates: updates})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range resp.GetResults() {
			if r.GetCode() != 0 {
				b.Fatalf("step refused: %s", r.GetMessage())
			}
		}
	}
}
