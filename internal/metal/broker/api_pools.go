package broker

import (
	"context"
	"errors"
	"reflect"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// maxPoolCapacity bounds a pool's capacity: a typo, not a datacenter.
const maxPoolCapacity = 100000

func validateCapacity(c int32) error {
	if c < 0 || c > maxPoolCapacity {
		return invalid("capacity must be within 0..%d, not %d", maxPoolCapacity, c)
	}
	return nil
}

// CreatePool implements brokerv1.BrokerServiceServer. The pool is allocated
// in the same transaction: the answer shows what it got.
func (b *Broker) CreatePool(ctx context.Context, req *brokerv1.CreatePoolRequest) (*brokerv1.CreatePoolResponse, error) {
	in := req.GetPool()
	if in == nil {
		return nil, invalid("pool is required")
	}
	if err := validateName("pool.name", in.GetName()); err != nil {
		return nil, err
	}
	if in.GetDatacenter() == "" {
		return nil, invalid("pool.datacenter is required")
	}
	if in.GetNodeProfile() == "" {
		return nil, invalid("pool.node_profile is required")
	}
	if err := validateCapacity(in.GetCapacity()); err != nil {
		return nil, err
	}
	if in.GetNodeConfig() != "" {
		if err := validateNodeConfig("pool.node_config", in.GetNodeConfig()); err != nil {
			return nil, err
		}
	}
	if err := validateJoinTarget("pool.join_target", in.GetJoinTarget()); err != nil {
		return nil, err
	}
	now := b.clock.Now()
	p := inventory.Pool{
		Name: in.GetName(), Datacenter: in.GetDatacenter(), Profile: in.GetNodeProfile(), Capacity: in.GetCapacity(),
		NodeConfig: in.GetNodeConfig(), JoinTarget: joinTargetFromAPI(in.GetJoinTarget()),
		Generation: 1, CreatedAt: now, UpdatedAt: now,
	}
	resp := &brokerv1.CreatePoolResponse{}
	return resp, b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
		if err := checkDatacenter(ctx, tx, p.Datacenter); err != nil {
			return err
		}
		if _, err := tx.GetProfile(ctx, p.Profile); errors.Is(err, inventory.ErrNotFound) {
			return invalid("pool.node_profile %q does not exist: create it first (strata profiles create)", p.Profile)
		} else if err != nil {
			return err
		}
		if err := tx.InsertPool(ctx, p); errors.Is(err, inventory.ErrAlreadyExists) {
			return status.Errorf(codes.AlreadyExists, "pool %q already exists", p.Name)
		} else if err != nil {
			return err
		}
		if _, err := reconcilePool(ctx, tx, p.Name, now, events); err != nil {
			return err
		}
		api, err := b.poolAPI(ctx, tx, p)
		resp.Pool = api
		*events = append(*events, poolEvent(brokerv1.EventType_EVENT_TYPE_ADDED, api))
		return err
	})
}

func checkDatacenter(ctx context.Context, tx inventory.Tx, name string) error {
	dcs, err := tx.ListDatacenters(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, dc := range dcs {
		if dc.Name == name {
			return nil
		}
		names = append(names, dc.Name)
	}
	return invalid("pool.datacenter %q does not exist (datacenters: %s)", name, strings.Join(names, ", "))
}

// GetPool implements brokerv1.BrokerServiceServer.
func (b *Broker) GetPool(ctx context.Context, req *brokerv1.GetPoolRequest) (*brokerv1.GetPoolResponse, error) {
	if req.GetName() == "" {
		return nil, invalid("name is required")
	}
	resp := &brokerv1.GetPoolResponse{}
	return resp, b.inTx(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		p, err := tx.GetPool(ctx, req.GetName())
		if err != nil {
			return notFound(err, "pool %q does not exist", req.GetName())
		}
		resp.Pool, err = b.poolAPI(ctx, tx, p)
		return err
	})
}

// ListPools implements brokerv1.BrokerServiceServer.
func (b *Broker) ListPools(ctx context.Context, _ *brokerv1.ListPoolsRequest) (*brokerv1.ListPoolsResponse, error) {
	resp := &brokerv1.ListPoolsResponse{}
	return resp, b.inTx(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		var err error
		resp.Pools, err = b.listPools(ctx, tx)
		return err
	})
}

func (b *Broker) listPools(ctx context.Context, tx inventory.Tx) ([]*brokerv1.Pool, error) {
	pools, err := tx.ListPools(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*brokerv1.Pool, 0, len(pools))
	for _, p := range pools {
		api, err := b.poolAPI(ctx, tx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, api)
	}
	return out, nil
}

// UpdatePool implements brokerv1.BrokerServiceServer: it sets the capacity,
// and the node config and join target when given, and moves machines in or
// out in the same transaction. Any change bumps the generation.
func (b *Broker) UpdatePool(ctx context.Context, req *brokerv1.UpdatePoolRequest) (*brokerv1.UpdatePoolResponse, error) {
	if req.GetName() == "" {
		return nil, invalid("name is required")
	}
	if err := validateCapacity(req.GetCapacity()); err != nil {
		return nil, err
	}
	if req.GetNodeConfig() != "" {
		if err := validateNodeConfig("node_config", req.GetNodeConfig()); err != nil {
			return nil, err
		}
	}
	if err := validateJoinTarget("join_target", req.GetJoinTarget()); err != nil {
		return nil, err
	}
	resp := &brokerv1.UpdatePoolResponse{}
	return resp, b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
		p, err := tx.GetPool(ctx, req.GetName())
		if err != nil {
			return notFound(err, "pool %q does not exist", req.GetName())
		}
		if p.Deleting {
			return status.Errorf(codes.FailedPrecondition, "pool %q is being deleted", p.Name)
		}
		old := p
		p.Capacity = req.GetCapacity()
		if req.NodeConfig != nil {
			p.NodeConfig = req.GetNodeConfig()
		}
		if req.GetJoinTarget() != nil {
			// Machines that joined keep their Nodes; the new target
			// applies to the machines that join from now on.
			p.JoinTarget = joinTargetFromAPI(req.GetJoinTarget())
		}
		changed := !reflect.DeepEqual(old, p)
		if changed {
			p.UpdatedAt = b.clock.Now()
			p.Generation++
			if err := tx.UpdatePool(ctx, p); err != nil {
				return err
			}
			if _, err := reconcilePool(ctx, tx, p.Name, p.UpdatedAt, events); err != nil {
				return err
			}
		}
		if resp.Pool, err = b.poolAPI(ctx, tx, p); err != nil {
			return err
		}
		if changed {
			*events = append(*events, poolEvent(brokerv1.EventType_EVENT_TYPE_MODIFIED, resp.Pool))
		}
		return nil
	})
}

// DeletePool implements brokerv1.BrokerServiceServer. Machines under
// maintenance stay with the pool until their disruption ends; the pool is
// removed once the last one is released.
func (b *Broker) DeletePool(ctx context.Context, req *brokerv1.DeletePoolRequest) (*brokerv1.DeletePoolResponse, error) {
	if req.GetName() == "" {
		return nil, invalid("name is required")
	}
	return &brokerv1.DeletePoolResponse{}, b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
		p, err := tx.GetPool(ctx, req.GetName())
		if err != nil {
			return notFound(err, "pool %q does not exist", req.GetName())
		}
		marked := !p.Deleting
		if marked {
			p.Deleting, p.UpdatedAt = true, b.clock.Now()
			if err := tx.UpdatePool(ctx, p); err != nil {
				return err
			}
		}
		return b.reconcileAndNotify(ctx, tx, p.Name, marked, events)
	})
}

// WatchPools implements brokerv1.BrokerServiceServer.
func (b *Broker) WatchPools(_ *brokerv1.WatchPoolsRequest, stream brokerv1.BrokerService_WatchPoolsServer) error {
	ctx := stream.Context()
	events, cancel := b.hub.subscribe() // before the list, so no change falls between
	defer cancel()
	var pools []*brokerv1.Pool
	if err := b.inTx(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		var err error
		pools, err = b.listPools(ctx, tx)
		return err
	}); err != nil {
		return err
	}
	for _, p := range pools {
		if err := stream.Send(&brokerv1.WatchPoolsResponse{Type: brokerv1.EventType_EVENT_TYPE_ADDED, Pool: p}); err != nil {
			return err
		}
	}
	return forward(ctx, events, func(e event) error {
		if e.pool == nil {
			return nil
		}
		return stream.Send(e.pool)
	})
}

// forward sends hub events to a stream until the client leaves or falls behind.
func forward(ctx context.Context, events <-chan event, send func(event) error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-events:
			if !ok {
				return status.Error(codes.Unavailable, "the watch fell behind; watch again to get the current state")
			}
			if err := send(e); err != nil {
				return err
			}
		}
	}
}
