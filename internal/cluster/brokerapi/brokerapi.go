// Package brokerapi holds the few Compute Broker calls that several hub
// controllers make the same way.
package brokerapi

import (
	"context"
	"fmt"

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
