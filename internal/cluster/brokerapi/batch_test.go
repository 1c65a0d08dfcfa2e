package brokerapi

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// olderBroker predates the batch RPCs: it takes one step per call and
// remembers them.
type olderBroker struct {
	brokerv1.BrokerServiceClient
	calls []string
}

func (b *olderBroker) UpdateDisruptions(context.Context, *brokerv1.UpdateDisruptionsRequest, ...grpc.CallOption) (*brokerv1.UpdateDisruptionsResponse, error) {
	return nil, status.Error(codes.Unimplemented, "unknown method UpdateDisruptions")
}

func (b *olderBroker) RecordDisruptionStep(_ context.Context, r *brokerv1.RecordDisruptionStepRequest, _ ...grpc.CallOption) (*brokerv1.RecordDisruptionStepResponse, error) {
	b.calls = append(b.calls, "record "+r.GetId()+": "+r.GetMessage())
	return &brokerv1.RecordDisruptionStepResponse{Disruption: &brokerv1.Disruption{Id: r.GetId()}}, nil
}

func (b *olderBroker) ApproveDisruption(_ context.Context, r *brokerv1.ApproveDisruptionRequest, _ ...grpc.CallOption) (*brokerv1.ApproveDisruptionResponse, error) {
	b.calls = append(b.calls, "approve "+r.GetId())
	if r.GetId() == "d-2" {
		return nil, status.Error(codes.FailedPrecondition, "disruption d-2 is Cancelled")
	}
	return &brokerv1.ApproveDisruptionResponse{Disruption: &brokerv1.Disruption{Id: r.GetId()}}, nil
}

func TestUpdateDisruptionsFallsBackToOneCallEach(t *testing.T) {
	b := &olderBroker{}
	results, err := UpdateDisruptions(t.Context(), b, []*brokerv1.DisruptionUpdate{
		{Id: "d-1", Action: brokerv1.DisruptionAction_DISRUPTION_ACTION_RECORD_STEP, Message: "cordoned"},
		{Id: "d-1", Action: brokerv1.DisruptionAction_DISRUPTION_ACTION_APPROVE},
		{Id: "d-2", Action: brokerv1.DisruptionAction_DISRUPTION_ACTION_APPROVE},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"record d-1: cordoned", "approve d-1", "approve d-2"}, b.calls); diff != "" {
		t.Errorf("calls, in order (-want +got):\n%s", diff)
	}
	var got []codes.Code
	for _, r := range results {
		got = append(got, status.Code(r.Err))
	}
	if diff := cmp.Diff([]codes.Code{codes.OK, codes.OK, codes.FailedPrecondition}, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}
