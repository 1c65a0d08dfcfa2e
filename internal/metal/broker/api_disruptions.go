package broker

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// CreateDisruption implements brokerv1.BrokerServiceServer.
func (b *Broker) CreateDisruption(ctx context.Context, req *brokerv1.CreateDisruptionRequest) (*brokerv1.CreateDisruptionResponse, error) {
	if req.GetMachine() == "" {
		return nil, invalid("machine is required")
	}
	reason, ok := reverse(disruptionReasons, req.GetReason())
	if !ok {
		return nil, invalid("reason is required: planned-upgrade, hardware-repair, decommission or remediation")
	}
	if reason == inventory.ReasonPoolShrink {
		return nil, invalid("reason pool-shrink is the broker's own: lower the pool's capacity instead")
	}
	op, err := operationFromAPI(req.GetOperation(), reason)
	if err != nil {
		return nil, err
	}
	if op.Kind != inventory.OperationNone && b.provisioner == nil {
		return nil, status.Errorf(codes.FailedPrecondition,
			"operation %s: this broker runs without a provisioner, so it performs no operations (strata serve broker --provisioner)", op.Kind)
	}
	resp := &brokerv1.CreateDisruptionResponse{}
	return resp, b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
		d, err := createDisruption(ctx, tx, b.budget, disruptionRequest{
			Machine: req.GetMachine(), Reason: reason, By: actorOf(ctx, req.GetOnBehalfOf()), Message: req.GetMessage(), Operation: op,
		}, b.clock.Now())
		if err != nil {
			return err
		}
		resp.Disruption = disruptionToAPI(d, nil)
		*events = append(*events, disruptionEvent(brokerv1.EventType_EVENT_TYPE_ADDED, resp.Disruption))
		return nil
	})
}

// operationFromAPI validates the operation of a new disruption; nil is none.
func operationFromAPI(op *brokerv1.Operation, reason inventory.DisruptionReason) (inventory.Operation, error) {
	if op == nil {
		return inventory.Operation{}, nil
	}
	kind, ok := reverse(operationKinds, op.GetKind())
	switch {
	case op.GetKind() == brokerv1.OperationKind_OPERATION_KIND_UNSPECIFIED:
		return inventory.Operation{}, invalid("operation.kind is required: reboot, reimage or replace (or leave operation out)")
	case !ok:
		return inventory.Operation{}, invalid("operation.kind %d is not an operation kind: reboot, reimage or replace", op.GetKind())
	case reason == inventory.ReasonDecommission:
		return inventory.Operation{}, invalid("operation is not allowed with reason decommission: the machine leaves service for good, and its pool gets a spare when the disruption completes")
	}
	sw := op.GetSoftware()
	out := inventory.Operation{Kind: kind, Software: inventory.Software{
		OSImage: sw.GetOsImage(), Kernel: sw.GetKernel(), NodeConfig: sw.GetNodeConfig(),
	}}
	if kind != inventory.OperationReimage && out.Software != (inventory.Software{}) {
		return inventory.Operation{}, invalid("operation.software is only for reimage: %s keeps what the machine runs", kind)
	}
	if out.Software.NodeConfig != "" {
		if err := validateNodeConfig("operation.software.node_config", out.Software.NodeConfig); err != nil {
			return inventory.Operation{}, err
		}
	}
	return out, nil
}

// GetDisruption implements brokerv1.BrokerServiceServer.
func (b *Broker) GetDisruption(ctx context.Context, req *brokerv1.GetDisruptionRequest) (*brokerv1.GetDisruptionResponse, error) {
	if req.GetId() == "" {
		return nil, invalid("id is required")
	}
	resp := &brokerv1.GetDisruptionResponse{}
	return resp, b.inTx(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		d, err := tx.GetDisruption(ctx, req.GetId())
		if err != nil {
			return notFound(err, "disruption %q does not exist", req.GetId())
		}
		history, err := tx.ListEvents(ctx, d.ID)
		resp.Disruption = disruptionToAPI(d, history)
		return err
	})
}

// ListDisruptions implements brokerv1.BrokerServiceServer.
func (b *Broker) ListDisruptions(ctx context.Context, req *brokerv1.ListDisruptionsRequest) (*brokerv1.ListDisruptionsResponse, error) {
	f := inventory.DisruptionFilter{Machine: req.GetMachine(), Pool: req.GetPool(), Datacenter: req.GetDatacenter()}
	for _, s := range req.GetStates() {
		state, ok := reverse(disruptionStates, s)
		if !ok {
			return nil, invalid("states: %v is not a disruption state", s)
		}
		f.States = append(f.States, state)
	}
	resp := &brokerv1.ListDisruptionsResponse{}
	return resp, b.inTx(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		ds, err := tx.ListDisruptions(ctx, f)
		for _, d := range ds {
			resp.Disruptions = append(resp.Disruptions, disruptionToAPI(d, nil))
		}
		return err
	})
}

// WatchDisruptions implements brokerv1.BrokerServiceServer.
func (b *Broker) WatchDisruptions(req *brokerv1.WatchDisruptionsRequest, stream brokerv1.BrokerService_WatchDisruptionsServer) error {
	ctx := stream.Context()
	matches := func(d *brokerv1.Disruption) bool {
		return (req.GetPool() == "" || d.GetPool() == req.GetPool()) &&
			(req.GetDatacenter() == "" || d.GetDatacenter() == req.GetDatacenter())
	}
	events, cancel := b.hub.subscribe()
	defer cancel()
	list, err := b.ListDisruptions(ctx, &brokerv1.ListDisruptionsRequest{Pool: req.GetPool(), Datacenter: req.GetDatacenter()})
	if err != nil {
		return err
	}
	for _, d := range list.GetDisruptions() {
		if err := stream.Send(&brokerv1.WatchDisruptionsResponse{Type: brokerv1.EventType_EVENT_TYPE_ADDED, Disruption: d}); err != nil {
			return err
		}
	}
	return forward(ctx, events, func(e event) error {
		if e.disruption == nil || !matches(e.disruption.GetDisruption()) {
			return nil
		}
		return stream.Send(e.disruption)
	})
}

// transitionRPC validates and applies one step of the protocol, then
// reconciles the machine's pool (a completed decommission is replaced). An
// approved pool-shrink is completed at once: the machine leaves its pool; so
// is a started replace: the machine leaves and the pool takes a spare.
func (b *Broker) transitionRPC(ctx context.Context, id, onBehalfOf, message string, to inventory.DisruptionState, software *brokerv1.Software) (*brokerv1.Disruption, error) {
	if id == "" {
		return nil, invalid("id is required")
	}
	var sw *inventory.Software
	if software != nil {
		sw = &inventory.Software{OSImage: software.GetOsImage(), Kernel: software.GetKernel(), NodeConfig: software.GetNodeConfig()}
	}
	var out *brokerv1.Disruption
	replaced := false
	err := b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
		replaced = false // a retried transaction starts over
		if to == inventory.DisruptionCompleted {
			if err := refuseOperationCompletion(ctx, tx, id); err != nil {
				return err
			}
		}
		now := b.clock.Now()
		d, moved, err := transition(ctx, tx, id, to, actorOf(ctx, onBehalfOf), message, sw, now)
		if err != nil {
			return err
		}
		if d.Reason == inventory.ReasonPoolShrink {
			moved = true // the pool's releasing count changes
			if d.State == inventory.DisruptionApproved {
				if d, err = completePoolShrink(ctx, tx, d, now); err != nil {
					return err
				}
			}
		}
		if d.Operation.Kind == inventory.OperationReplace && d.State == inventory.DisruptionInProgress {
			if d, err = completeReplace(ctx, tx, d, now, events); err != nil {
				return err
			}
			replaced = true
		}
		out = disruptionToAPI(d, nil)
		*events = append(*events, disruptionEvent(brokerv1.EventType_EVENT_TYPE_MODIFIED, out))
		switch {
		case d.Pool == "":
			return nil
		case !d.State.Open():
			return b.reconcileAndNotify(ctx, tx, d.Pool, moved, events)
		case moved:
			return b.notifyPool(ctx, tx, d.Pool, events)
		}
		return nil
	})
	if err == nil && replaced {
		b.operations.WithLabelValues(string(inventory.OperationReplace), operationCompleted).Inc()
	}
	return out, err
}

// refuseOperationCompletion refuses to complete, by hand, a disruption whose
// operation the broker performs.
func refuseOperationCompletion(ctx context.Context, tx inventory.Tx, id string) error {
	d, err := tx.GetDisruption(ctx, id)
	if err != nil {
		return notFound(err, "disruption %q does not exist", id)
	}
	if d.Operation.Kind != inventory.OperationNone {
		return status.Errorf(codes.FailedPrecondition,
			"disruption %s has operation %s: the broker completes it (or fails it) once the operation is performed", id, d.Operation.Kind)
	}
	return nil
}

// ApproveDisruption implements brokerv1.BrokerServiceServer. A pool-shrink
// disruption comes back Completed: its machine has left the pool.
func (b *Broker) ApproveDisruption(ctx context.Context, req *brokerv1.ApproveDisruptionRequest) (*brokerv1.ApproveDisruptionResponse, error) {
	d, err := b.transitionRPC(ctx, req.GetId(), req.GetOnBehalfOf(), req.GetMessage(), inventory.DisruptionApproved, nil)
	return &brokerv1.ApproveDisruptionResponse{Disruption: d}, err
}

// StartDisruption implements brokerv1.BrokerServiceServer. A disruption with
// a reboot or reimage is then performed by the broker; one with a replace
// comes back Completed: its machine has left the pool for a spare.
func (b *Broker) StartDisruption(ctx context.Context, req *brokerv1.StartDisruptionRequest) (*brokerv1.StartDisruptionResponse, error) {
	d, err := b.transitionRPC(ctx, req.GetId(), req.GetOnBehalfOf(), req.GetMessage(), inventory.DisruptionInProgress, nil)
	return &brokerv1.StartDisruptionResponse{Disruption: d}, err
}

// CompleteDisruption implements brokerv1.BrokerServiceServer. A disruption
// with an operation is completed by the broker, not by this call.
func (b *Broker) CompleteDisruption(ctx context.Context, req *brokerv1.CompleteDisruptionRequest) (*brokerv1.CompleteDisruptionResponse, error) {
	d, err := b.transitionRPC(ctx, req.GetId(), req.GetOnBehalfOf(), req.GetMessage(), inventory.DisruptionCompleted, req.GetSoftware())
	return &brokerv1.CompleteDisruptionResponse{Disruption: d}, err
}

// CancelDisruption implements brokerv1.BrokerServiceServer.
func (b *Broker) CancelDisruption(ctx context.Context, req *brokerv1.CancelDisruptionRequest) (*brokerv1.CancelDisruptionResponse, error) {
	d, err := b.transitionRPC(ctx, req.GetId(), req.GetOnBehalfOf(), req.GetMessage(), inventory.DisruptionCancelled, nil)
	return &brokerv1.CancelDisruptionResponse{Disruption: d}, err
}

// RecordDisruptionStep implements brokerv1.BrokerServiceServer: a step in the
// history that changes no state (from equals to), in any state, final ones
// included. Watchers get the disruption, MODIFIED.
func (b *Broker) RecordDisruptionStep(ctx context.Context, req *brokerv1.RecordDisruptionStepRequest) (*brokerv1.RecordDisruptionStepResponse, error) {
	if req.GetId() == "" {
		return nil, invalid("id is required")
	}
	by := actorOf(ctx, req.GetOnBehalfOf())
	resp := &brokerv1.RecordDisruptionStepResponse{}
	return resp, b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
		d, err := tx.GetDisruption(ctx, req.GetId())
		if err != nil {
			return notFound(err, "disruption %q does not exist", req.GetId())
		}
		now := b.clock.Now()
		if err := tx.InsertEvent(ctx, inventory.DisruptionEvent{
			DisruptionID: d.ID, From: d.State, To: d.State, Actor: by.name, OnBehalfOf: by.onBehalfOf, Message: req.GetMessage(), At: now,
		}); err != nil {
			return err
		}
		d.UpdatedAt = now
		if err := tx.UpdateDisruption(ctx, d); err != nil {
			return err
		}
		resp.Disruption = disruptionToAPI(d, nil)
		*events = append(*events, disruptionEvent(brokerv1.EventType_EVENT_TYPE_MODIFIED, resp.Disruption))
		return nil
	})
}
