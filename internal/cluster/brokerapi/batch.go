package brokerapi

import (
	"context"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// MaxBatch is the most items one CreateDisruptions or UpdateDisruptions
// takes; longer lists are sent in chunks of it.
const MaxBatch = 1000

// Result is what became of one item of a batch: the disruption after the
// step, or the broker's refusal of that item alone (a gRPC status error).
type Result struct {
	Disruption *brokerv1.Disruption
	Err        error
}

// CreateDisruptions asks for the disruptions in as few transactions as the
// broker allows: CreateDisruptions in chunks, or one CreateDisruption each
// from a broker that predates it. err is a failure of the whole call; the
// results then cover the items sent before it.
func CreateDisruptions(ctx context.Context, broker brokerv1.BrokerServiceClient, reqs []*brokerv1.CreateDisruptionRequest) ([]Result, error) {
	return batched(reqs, func(chunk []*brokerv1.CreateDisruptionRequest) ([]*brokerv1.DisruptionResult, error) {
		resp, err := broker.CreateDisruptions(ctx, &brokerv1.CreateDisruptionsRequest{Disruptions: chunk})
		return resp.GetResults(), err
	}, func(r *brokerv1.CreateDisruptionRequest) (*brokerv1.Disruption, error) {
		one, err := broker.CreateDisruption(ctx, r)
		return one.GetDisruption(), err
	})
}

// UpdateDisruptions takes the steps in as few transactions as the broker
// allows, as CreateDisruptions does.
func UpdateDisruptions(ctx context.Context, broker brokerv1.BrokerServiceClient, updates []*brokerv1.DisruptionUpdate) ([]Result, error) {
	return batched(updates, func(chunk []*brokerv1.DisruptionUpdate) ([]*brokerv1.DisruptionResult, error) {
		resp, err := broker.UpdateDisruptions(ctx, &brokerv1.UpdateDisruptionsRequest{Updates: chunk})
		return resp.GetResults(), err
	}, func(u *brokerv1.DisruptionUpdate) (*brokerv1.Disruption, error) {
		return updateOne(ctx, broker, u)
	})
}

// batched sends items in chunks of MaxBatch with batch, or each with one
// when the broker does not know the batch RPC.
func batched[T any](items []T, batch func([]T) ([]*brokerv1.DisruptionResult, error), one func(T) (*brokerv1.Disruption, error)) ([]Result, error) {
	out := make([]Result, 0, len(items))
	for chunk := range slices.Chunk(items, MaxBatch) {
		rs, err := batch(chunk)
		if IsCode(err, codes.Unimplemented) {
			for _, item := range chunk {
				d, err := one(item)
				if err != nil && !isRefusal(err) {
					return out, err
				}
				out = append(out, Result{Disruption: d, Err: err})
			}
			continue
		}
		if err != nil {
			return out, err
		}
		out = append(out, results(rs)...)
	}
	return out, nil
}

// updateOne takes one step with its own RPC.
func updateOne(ctx context.Context, broker brokerv1.BrokerServiceClient, u *brokerv1.DisruptionUpdate) (*brokerv1.Disruption, error) {
	id, by, msg := u.GetId(), u.GetOnBehalfOf(), u.GetMessage()
	switch u.GetAction() {
	case brokerv1.DisruptionAction_DISRUPTION_ACTION_APPROVE:
		r, err := broker.ApproveDisruption(ctx, &brokerv1.ApproveDisruptionRequest{Id: id, OnBehalfOf: by, Message: msg})
		return r.GetDisruption(), err
	case brokerv1.DisruptionAction_DISRUPTION_ACTION_START:
		r, err := broker.StartDisruption(ctx, &brokerv1.StartDisruptionRequest{Id: id, OnBehalfOf: by, Message: msg})
		return r.GetDisruption(), err
	case brokerv1.DisruptionAction_DISRUPTION_ACTION_COMPLETE:
		r, err := broker.CompleteDisruption(ctx, &brokerv1.CompleteDisruptionRequest{Id: id, OnBehalfOf: by, Message: msg, Software: u.GetSoftware()})
		return r.GetDisruption(), err
	case brokerv1.DisruptionAction_DISRUPTION_ACTION_CANCEL:
		r, err := broker.CancelDisruption(ctx, &brokerv1.CancelDisruptionRequest{Id: id, OnBehalfOf: by, Message: msg})
		return r.GetDisruption(), err
	case brokerv1.DisruptionAction_DISRUPTION_ACTION_RECORD_STEP:
		r, err := broker.RecordDisruptionStep(ctx, &brokerv1.RecordDisruptionStepRequest{Id: id, OnBehalfOf: by, Message: msg})
		return r.GetDisruption(), err
	}
	return nil, status.Errorf(codes.InvalidArgument, "action %s is not a step of the protocol", u.GetAction())
}

// isRefusal says whether the broker refused one item for a reason of its
// own, as a batch reports it beside the others, rather than failing.
func isRefusal(err error) bool {
	switch status.Code(err) {
	case codes.FailedPrecondition, codes.NotFound, codes.InvalidArgument, codes.PermissionDenied:
		return true
	}
	return false
}

func results(rs []*brokerv1.DisruptionResult) []Result {
	out := make([]Result, len(rs))
	for i, r := range rs {
		out[i].Disruption = r.GetDisruption()
		if c := codes.Code(r.GetCode()); c != codes.OK { //nolint:gosec // a gRPC code
			out[i].Err = status.Error(c, r.GetMessage())
		}
	}
	return out
}
