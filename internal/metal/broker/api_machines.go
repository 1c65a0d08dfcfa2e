package broker

import (
	"context"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// GetMachine implements brokerv1.BrokerServiceServer.
func (b *Broker) GetMachine(ctx context.Context, req *brokerv1.GetMachineRequest) (*brokerv1.GetMachineResponse, error) {
	if req.GetId() == "" {
		return nil, invalid("id is required")
	}
	resp := &brokerv1.GetMachineResponse{}
	return resp, b.inTx(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		m, err := tx.GetMachine(ctx, req.GetId())
		if err != nil {
			return notFound(err, "machine %q does not exist", req.GetId())
		}
		skus, err := skuIndex(ctx, tx)
		resp.Machine = machineToAPI(m, skus)
		return err
	})
}

// ListMachines implements brokerv1.BrokerServiceServer.
func (b *Broker) ListMachines(ctx context.Context, req *brokerv1.ListMachinesRequest) (*brokerv1.ListMachinesResponse, error) {
	size := int(req.GetPageSize())
	switch {
	case size < 0 || size > maxPageSize:
		return nil, invalid("page_size must be within 0..%d, not %d", maxPageSize, size)
	case size == 0:
		size = defaultPageSize
	}
	after, err := b.pages.cursor(req)
	if err != nil {
		return nil, err
	}
	f := inventory.MachineFilter{
		Datacenter: req.GetDatacenter(), MaintenanceZone: req.GetMaintenanceZone(), SKU: req.GetSku(),
		Pool: req.GetPool(), UnhealthyOnly: req.GetUnhealthyOnly(), AfterID: after, Limit: size + 1,
	}
	if req.GetState() != brokerv1.MachineState_MACHINE_STATE_UNSPECIFIED {
		state, ok := reverse(machineStates, req.GetState())
		if !ok {
			return nil, invalid("state %v is not a machine state", req.GetState())
		}
		f.State = state
	}
	resp := &brokerv1.ListMachinesResponse{}
	return resp, b.inTx(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		if f.MaintenanceZone != 0 { // 0 is any zone
			dcs, err := tx.ListDatacenters(ctx)
			if err != nil {
				return err
			}
			if err := inventory.CheckZone(dcs, f.Datacenter, f.MaintenanceZone); err != nil {
				return notFound(err, "datacenter %q does not exist", f.Datacenter)
			}
		}
		ms, err := tx.ListMachines(ctx, f)
		if err != nil {
			return err
		}
		skus, err := skuIndex(ctx, tx)
		if err != nil {
			return err
		}
		if len(ms) > size {
			ms = ms[:size]
			if resp.NextPageToken, err = b.pages.issue(req, ms[size-1].ID); err != nil {
				return err
			}
		}
		resp.Machines = make([]*brokerv1.Machine, 0, len(ms))
		for _, m := range ms {
			resp.Machines = append(resp.Machines, machineToAPI(m, skus))
		}
		return nil
	})
}

// WatchMachines implements brokerv1.BrokerServiceServer: every machine (of
// the datacenter) as ADDED, the synced marker, then every machine written
// since as MODIFIED, found by reading the inventory every machinePoll (see
// machineWatch). The gate ends the stream with the term.
func (b *Broker) WatchMachines(req *brokerv1.WatchMachinesRequest, stream brokerv1.BrokerService_WatchMachinesServer) error {
	ctx := stream.Context()
	if dc := req.GetDatacenter(); dc != "" {
		if err := b.inTx(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
			dcs, err := tx.ListDatacenters(ctx)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(dcs, func(d inventory.Datacenter) bool { return d.Name == dc }) {
				return status.Errorf(codes.NotFound, "datacenter %q does not exist", dc)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	w := &machineWatch{b: b, dc: req.GetDatacenter(), page: machineWatchPage, send: stream.Send, sent: map[string]time.Time{}}
	return w.run(ctx)
}

// ListSKUs implements brokerv1.BrokerServiceServer.
func (b *Broker) ListSKUs(ctx context.Context, _ *brokerv1.ListSKUsRequest) (*brokerv1.ListSKUsResponse, error) {
	resp := &brokerv1.ListSKUsResponse{}
	return resp, b.inTx(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		skus, err := tx.ListSKUs(ctx)
		for _, s := range skus {
			resp.Skus = append(resp.Skus, skuToAPI(s))
		}
		return err
	})
}
