package broker

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// CreateDisruption implements brokerv1.BrokerServiceServer.
func (b *Broker) CreateDisruption(ctx context.Context, req *brokerv1.CreateDisruptionRequest) (*brokerv1.CreateDisruptionResponse, error) {
	r, err := b.validateCreate(req)
	if err != nil {
		return nil, err
	}
	r.By = actorOf(ctx, req.GetOnBehalfOf())
	resp := &brokerv1.CreateDisruptionResponse{}
	return resp, b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
		d, err := createDisruption(ctx, tx, b.budget, r, b.clock.Now())
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
	var out *brokerv1.Disruption
	replaced := false
	err := b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
		pools := poolChanges{}
		var refused error
		var err error
		out, replaced, refused, err = b.applyTransition(ctx, tx, id, to, actorOf(ctx, onBehalfOf), message, softwareOf(software), pools, events)
		if err != nil {
			return err
		}
		if refused != nil {
			return refused
		}
		return b.notifyPools(ctx, tx, pools, events)
	})
	if err == nil && replaced {
		b.operations.WithLabelValues(string(inventory.OperationReplace), operationCompleted).Inc()
	}
	return out, err
}

func softwareOf(software *brokerv1.Software) *inventory.Software {
	if software == nil {
		return nil
	}
	return &inventory.Software{OSImage: software.GetOsImage(), Kernel: software.GetKernel(), NodeConfig: software.GetNodeConfig()}
}

// poolChanges are the pools a transaction's steps touched, by name, to
// be reconciled and published once, at the end.
type poolChanges map[string]poolChange

// poolChange says what happened to a pool: one of its disruptions ended
// (the pool is reconciled), or one of its machines moved (it is published).
type poolChange struct{ ended, moved bool }

func (pc poolChanges) add(pool string, ended, moved bool) {
	if pool == "" || (!ended && !moved) {
		return
	}
	c := pc[pool]
	pc[pool] = poolChange{ended: c.ended || ended, moved: c.moved || moved}
}

// notifyPools reconciles the pools whose disruptions ended and publishes
// each pool that changed, once.
func (b *Broker) notifyPools(ctx context.Context, tx inventory.Tx, pools poolChanges, events *[]event) error {
	for _, name := range slices.Sorted(maps.Keys(pools)) {
		var err error
		if c := pools[name]; c.ended {
			err = b.reconcileAndNotify(ctx, tx, name, c.moved, events)
		} else {
			err = b.notifyPool(ctx, tx, name, events)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// applyTransition applies one step of the protocol in tx. refused is why
// the step may not be taken (a gRPC status), found before anything was
// written; err is a failure that must undo the whole transaction. The pools
// to publish are added to pools.
func (b *Broker) applyTransition(ctx context.Context, tx inventory.Tx, id string, to inventory.DisruptionState, by actor, message string,
	sw *inventory.Software, pools poolChanges, events *[]event) (out *brokerv1.Disruption, replaced bool, refused, err error) {
	if to == inventory.DisruptionCompleted {
		if err := refuseOperationCompletion(ctx, tx, id); err != nil {
			return refusal(err)
		}
	}
	now := b.clock.Now()
	d, moved, err := transition(ctx, tx, id, to, by, message, sw, now)
	if err != nil {
		return refusal(err)
	}
	if d.Reason == inventory.ReasonPoolShrink {
		moved = true // the pool's releasing count changes
		if d.State == inventory.DisruptionApproved {
			if d, err = completePoolShrink(ctx, tx, d, now); err != nil {
				return nil, false, nil, err
			}
		}
	}
	if d.Operation.Kind == inventory.OperationReplace && d.State == inventory.DisruptionInProgress {
		if d, err = completeReplace(ctx, tx, d, now, events); err != nil {
			return nil, false, nil, err
		}
		replaced = true
	}
	out = disruptionToAPI(d, nil)
	*events = append(*events, disruptionEvent(brokerv1.EventType_EVENT_TYPE_MODIFIED, out))
	pools.add(d.Pool, !d.State.Open(), moved)
	return out, replaced, nil, nil
}

// refusal sorts an error found before anything was written: a gRPC status
// refuses the step alone, anything else fails the transaction.
func refusal(err error) (*brokerv1.Disruption, bool, error, error) {
	if _, ok := status.FromError(err); ok {
		return nil, false, err, nil
	}
	return nil, false, nil, err
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
		d, refused, err := b.recordStep(ctx, tx, req.GetId(), by, req.GetMessage(), events)
		resp.Disruption = d
		return cmp.Or(err, refused)
	})
}

// recordStep adds a step that changes no state to a disruption's history
// in tx; refused and err as applyTransition's.
func (b *Broker) recordStep(ctx context.Context, tx inventory.Tx, id string, by actor, message string, events *[]event) (out *brokerv1.Disruption, refused, err error) {
	d, err := tx.GetDisruption(ctx, id)
	if err != nil {
		if errors.Is(err, inventory.ErrNotFound) {
			return nil, notFound(err, "disruption %q does not exist", id), nil
		}
		return nil, nil, err
	}
	now := b.clock.Now()
	if err := tx.InsertEvent(ctx, inventory.DisruptionEvent{
		DisruptionID: d.ID, From: d.State, To: d.State, Actor: by.name, OnBehalfOf: by.onBehalfOf, Message: message, At: now,
	}); err != nil {
		return nil, nil, err
	}
	d.UpdatedAt = now
	if err := tx.UpdateDisruption(ctx, d); err != nil {
		return nil, nil, err
	}
	out = disruptionToAPI(d, nil)
	*events = append(*events, disruptionEvent(brokerv1.EventType_EVENT_TYPE_MODIFIED, out))
	return out, nil, nil
}

// maxBatch bounds the items of CreateDisruptions and UpdateDisruptions: one
// transaction holds the broker's writes for all of them.
const maxBatch = 1000

// CreateDisruptions implements brokerv1.BrokerServiceServer: each request
// as CreateDisruption would take it, in one transaction.
func (b *Broker) CreateDisruptions(ctx context.Context, req *brokerv1.CreateDisruptionsRequest) (*brokerv1.CreateDisruptionsResponse, error) {
	items := req.GetDisruptions()
	if len(items) > maxBatch {
		return nil, invalid("disruptions: at most %d at once, not %d", maxBatch, len(items))
	}
	valid := make([]disruptionRequest, len(items))
	for i, item := range items {
		r, err := b.validateCreate(item)
		if err != nil {
			return nil, invalid("disruptions[%d]: %s", i, status.Convert(err).Message())
		}
		r.By = actorOf(ctx, item.GetOnBehalfOf())
		valid[i] = r
	}
	resp := &brokerv1.CreateDisruptionsResponse{}
	return resp, b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
		resp.Results = make([]*brokerv1.DisruptionResult, len(valid))
		now := b.clock.Now()
		open := &openCache{}
		for i, r := range valid {
			d, err := open.create(ctx, tx, b.budget, r, now)
			if err != nil {
				st, ok := status.FromError(err)
				if !ok {
					return err // nothing of this batch is written
				}
				resp.Results[i] = &brokerv1.DisruptionResult{Code: int32(st.Code()), Message: st.Message()} //nolint:gosec // a gRPC code
				continue
			}
			api := disruptionToAPI(d, nil)
			resp.Results[i] = &brokerv1.DisruptionResult{Disruption: api}
			*events = append(*events, disruptionEvent(brokerv1.EventType_EVENT_TYPE_ADDED, api))
		}
		return nil
	})
}

// validateCreate checks a CreateDisruptionRequest before any transaction.
func (b *Broker) validateCreate(req *brokerv1.CreateDisruptionRequest) (disruptionRequest, error) {
	if req.GetMachine() == "" {
		return disruptionRequest{}, invalid("machine is required")
	}
	reason, ok := reverse(disruptionReasons, req.GetReason())
	if !ok {
		return disruptionRequest{}, invalid("reason is required: planned-upgrade, hardware-repair, decommission or remediation")
	}
	if reason == inventory.ReasonPoolShrink {
		return disruptionRequest{}, invalid("reason pool-shrink is the broker's own: lower the pool's capacity instead")
	}
	op, err := operationFromAPI(req.GetOperation(), reason)
	if err != nil {
		return disruptionRequest{}, err
	}
	if op.Kind != inventory.OperationNone && b.provisioner == nil {
		return disruptionRequest{}, status.Errorf(codes.FailedPrecondition,
			"operation %s: this broker runs without a provisioner, so it performs no operations (strata serve broker --provisioner)", op.Kind)
	}
	return disruptionRequest{Machine: req.GetMachine(), Reason: reason, Message: req.GetMessage(), Operation: op}, nil
}

// actionStates are the states UpdateDisruptions' actions lead to; a
// recorded step has none.
var actionStates = map[brokerv1.DisruptionAction]inventory.DisruptionState{
	brokerv1.DisruptionAction_DISRUPTION_ACTION_APPROVE:  inventory.DisruptionApproved,
	brokerv1.DisruptionAction_DISRUPTION_ACTION_START:    inventory.DisruptionInProgress,
	brokerv1.DisruptionAction_DISRUPTION_ACTION_COMPLETE: inventory.DisruptionCompleted,
	brokerv1.DisruptionAction_DISRUPTION_ACTION_CANCEL:   inventory.DisruptionCancelled,
}

// UpdateDisruptions implements brokerv1.BrokerServiceServer: each update as
// its own RPC would take it, in one transaction; the pools they change are
// reconciled and published once, at the end.
func (b *Broker) UpdateDisruptions(ctx context.Context, req *brokerv1.UpdateDisruptionsRequest) (*brokerv1.UpdateDisruptionsResponse, error) {
	updates := req.GetUpdates()
	if len(updates) > maxBatch {
		return nil, invalid("updates: at most %d at once, not %d", maxBatch, len(updates))
	}
	for i, u := range updates {
		_, known := actionStates[u.GetAction()]
		switch {
		case u.GetId() == "":
			return nil, invalid("updates[%d].id is required", i)
		case !known && u.GetAction() != brokerv1.DisruptionAction_DISRUPTION_ACTION_RECORD_STEP:
			return nil, invalid("updates[%d].action is required: approve, start, complete, cancel or record-step", i)
		case u.GetSoftware() != nil && u.GetAction() != brokerv1.DisruptionAction_DISRUPTION_ACTION_COMPLETE:
			return nil, invalid("updates[%d].software is only for complete", i)
		}
	}
	resp := &brokerv1.UpdateDisruptionsResponse{}
	replaced := 0
	err := b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
		resp.Results, replaced = make([]*brokerv1.DisruptionResult, len(updates)), 0
		pools := poolChanges{}
		for i, u := range updates {
			by := actorOf(ctx, u.GetOnBehalfOf())
			var (
				d            *brokerv1.Disruption
				refused, err error
				rep          bool
			)
			if to, ok := actionStates[u.GetAction()]; ok {
				d, rep, refused, err = b.applyTransition(ctx, tx, u.GetId(), to, by, u.GetMessage(), softwareOf(u.GetSoftware()), pools, events)
			} else {
				d, refused, err = b.recordStep(ctx, tx, u.GetId(), by, u.GetMessage(), events)
			}
			if err != nil {
				return err // nothing of this batch is written
			}
			resp.Results[i] = resultOf(d, refused)
			if rep {
				replaced++
			}
		}
		return b.notifyPools(ctx, tx, pools, events)
	})
	if err == nil && replaced > 0 {
		b.operations.WithLabelValues(string(inventory.OperationReplace), operationCompleted).Add(float64(replaced))
	}
	return resp, err
}

// resultOf is the result of one item of a batch.
func resultOf(d *brokerv1.Disruption, refused error) *brokerv1.DisruptionResult {
	if refused != nil {
		st := status.Convert(refused)
		return &brokerv1.DisruptionResult{Code: int32(st.Code()), Message: st.Message()} //nolint:gosec // a gRPC code
	}
	return &brokerv1.DisruptionResult{Disruption: d}
}
