// Package brokerapi holds the few Compute Broker calls that several hub
// controllers make the same way.
package brokerapi

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// pageSize is the largest page ListMachines returns.
const pageSize = 1000

// IsCode says whether err is a gRPC status with the code.
func IsCode(err error, code codes.Code) bool {
	return err != nil && status.Code(err) == code
}

// PoolMachines lists every machine of a broker pool, a page at a time.
func PoolMachines(ctx context.Context, broker brokerv1.BrokerServiceClient, pool string) ([]*brokerv1.Machine, error) {
	var machines []*brokerv1.Machine
	req := &brokerv1.ListMachinesRequest{Pool: pool, PageSize: pageSize}
	for {
		resp, err := broker.ListMachines(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("listing the machines of broker pool %s: %w", pool, err)
		}
		machines = append(machines, resp.GetMachines()...)
		if resp.GetNextPageToken() == "" {
			return machines, nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// Open says whether a disruption is still under way.
func Open(d *brokerv1.Disruption) bool {
	switch d.GetState() {
	case brokerv1.DisruptionState_DISRUPTION_STATE_PENDING, brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED,
		brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS:
		return true
	}
	return false
}

// Message is the broker's own words in a gRPC error, without the code.
func Message(err error) string {
	return status.Convert(err).Message()
}

// OverBudget says whether the broker refused a disruption because its
// budget is spent: the one refusal that means "ask again later".
func OverBudget(err error) bool {
	return IsCode(err, codes.FailedPrecondition) && strings.HasPrefix(Message(err), "over budget")
}

// OpenDisruptions lists a pool's open disruptions, by machine.
func OpenDisruptions(ctx context.Context, broker brokerv1.BrokerServiceClient, pool string) (map[string]*brokerv1.Disruption, error) {
	resp, err := broker.ListDisruptions(ctx, &brokerv1.ListDisruptionsRequest{Pool: pool, States: []brokerv1.DisruptionState{
		brokerv1.DisruptionState_DISRUPTION_STATE_PENDING,
		brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED,
		brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS,
	}})
	if err != nil {
		return nil, fmt.Errorf("listing the open disruptions of broker pool %s: %w", pool, err)
	}
	open := make(map[string]*brokerv1.Disruption, len(resp.GetDisruptions()))
	for _, d := range resp.GetDisruptions() {
		open[d.GetMachine()] = d
	}
	return open, nil
}
