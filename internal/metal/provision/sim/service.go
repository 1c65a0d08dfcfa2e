package sim

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/strata-dev/strata/internal/metal/inventory"
	simv1 "github.com/strata-dev/strata/proto/strata/sim/v1"
)

// Service implements simv1.SimServiceServer over a provisioner; the
// inventory resolves zones and checks machine IDs.
type Service struct {
	simv1.UnimplementedSimServiceServer
	p     *Provisioner
	store inventory.Store
}

// NewService returns the sim service of p over the inventory store.
func NewService(p *Provisioner, store inventory.Store) (*Service, error) {
	if p == nil || store == nil {
		return nil, errors.New("sim service: a provisioner and a store are required")
	}
	return &Service{p: p, store: store}, nil
}

var fixes = map[simv1.FaultFix]Fix{
	simv1.FaultFix_FAULT_FIX_REBOOT:  FixReboot,
	simv1.FaultFix_FAULT_FIX_REIMAGE: FixReimage,
	simv1.FaultFix_FAULT_FIX_NEVER:   FixNever,
}

func fixFromAPI(f simv1.FaultFix) (Fix, error) {
	fix, ok := fixes[f]
	if !ok {
		return "", status.Errorf(codes.InvalidArgument, "fixed_by is required: reboot, reimage or never, not %s", f)
	}
	return fix, nil
}

func faultToAPI(f Fault) *simv1.Fault {
	out := &simv1.Fault{Machine: f.Machine, Since: timestamppb.New(f.Since), Message: f.Message()}
	for k, v := range fixes {
		if v == f.FixedBy {
			out.FixedBy = k
		}
	}
	return out
}

func faultsToAPI(fs []Fault) []*simv1.Fault {
	out := make([]*simv1.Fault, len(fs))
	for i, f := range fs {
		out[i] = faultToAPI(f)
	}
	return out
}

// FailMachines implements simv1.SimServiceServer.
func (s *Service) FailMachines(ctx context.Context, req *simv1.FailMachinesRequest) (*simv1.FailMachinesResponse, error) {
	if len(req.GetMachines()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "machines is required: the ids of the machines to fault")
	}
	fix, err := fixFromAPI(req.GetFixedBy())
	if err != nil {
		return nil, err
	}
	if err := s.checkMachines(ctx, req.GetMachines()); err != nil {
		return nil, err
	}
	faults, err := s.p.Fail(ctx, req.GetMachines(), fix)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &simv1.FailMachinesResponse{Faults: faultsToAPI(faults)}, nil
}

// FailZone implements simv1.SimServiceServer.
func (s *Service) FailZone(ctx context.Context, req *simv1.FailZoneRequest) (*simv1.FailZoneResponse, error) {
	fix, err := fixFromAPI(req.GetFixedBy())
	if err != nil {
		return nil, err
	}
	ids, err := s.zone(ctx, req.GetDatacenter(), req.GetMaintenanceZone())
	if err != nil {
		return nil, err
	}
	faults, err := s.p.Fail(ctx, ids, fix)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &simv1.FailZoneResponse{Faults: faultsToAPI(faults)}, nil
}

// Heal implements simv1.SimServiceServer.
func (s *Service) Heal(ctx context.Context, req *simv1.HealRequest) (*simv1.HealResponse, error) {
	byZone := req.GetDatacenter() != "" || req.GetMaintenanceZone() != 0
	given := 0
	for _, set := range []bool{len(req.GetMachines()) > 0, byZone, req.GetAll()} {
		if set {
			given++
		}
	}
	if given != 1 {
		return nil, status.Error(codes.InvalidArgument, "give exactly one of machines, a zone (datacenter and maintenance_zone) or all")
	}
	var ids []string
	switch {
	case req.GetAll():
		for _, f := range s.p.ListFaults() {
			ids = append(ids, f.Machine)
		}
	case byZone:
		var err error
		if ids, err = s.zone(ctx, req.GetDatacenter(), req.GetMaintenanceZone()); err != nil {
			return nil, err
		}
	default:
		if err := s.checkMachines(ctx, req.GetMachines()); err != nil {
			return nil, err
		}
		ids = req.GetMachines()
	}
	healed, err := s.p.Heal(ctx, ids)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &simv1.HealResponse{Healed: healed}, nil
}

// ListFaults implements simv1.SimServiceServer.
func (s *Service) ListFaults(context.Context, *simv1.ListFaultsRequest) (*simv1.ListFaultsResponse, error) {
	return &simv1.ListFaultsResponse{Faults: faultsToAPI(s.p.ListFaults())}, nil
}

// checkMachines answers NotFound for the first id that names no machine.
func (s *Service) checkMachines(ctx context.Context, ids []string) error {
	return s.store.InTx(ctx, func(ctx context.Context, tx inventory.Tx) error {
		for _, id := range ids {
			if id == "" {
				return status.Error(codes.InvalidArgument, "machines: an empty id")
			}
			if _, err := tx.GetMachine(ctx, id); errors.Is(err, inventory.ErrNotFound) {
				return status.Errorf(codes.NotFound, "machine %q does not exist", id)
			} else if err != nil {
				return status.Error(codes.Internal, err.Error())
			}
		}
		return nil
	})
}

// zone lists the machines of a datacenter's maintenance zone.
func (s *Service) zone(ctx context.Context, datacenter string, mz int32) ([]string, error) {
	if datacenter == "" {
		return nil, status.Error(codes.InvalidArgument, "datacenter is required")
	}
	var ids []string
	err := s.store.InTx(ctx, func(ctx context.Context, tx inventory.Tx) error {
		ids = nil
		dcs, err := tx.ListDatacenters(ctx)
		if err != nil {
			return status.Error(codes.Internal, err.Error())
		}
		switch err := inventory.CheckZone(dcs, datacenter, mz); {
		case errors.Is(err, inventory.ErrNotFound):
			return status.Errorf(codes.NotFound, "datacenter %q does not exist", datacenter)
		case err != nil:
			return status.Error(codes.InvalidArgument, err.Error())
		}
		ms, err := tx.ListPlacements(ctx, inventory.MachineFilter{Datacenter: datacenter, MaintenanceZone: mz})
		if err != nil {
			return status.Error(codes.Internal, fmt.Sprintf("listing the machines of %s MZ %d: %v", datacenter, mz, err))
		}
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		return nil
	})
	return ids, err
}
