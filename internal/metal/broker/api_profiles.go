package broker

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// validateName checks that a name is a DNS label, naming the field.
func validateName(field, name string) error {
	if name == "" {
		return invalid("%s is required", field)
	}
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return invalid("%s %q is not a DNS label: %s", field, name, strings.Join(errs, "; "))
	}
	return nil
}

// notFound turns ErrNotFound into a NotFound status with a message.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, inventory.ErrNotFound) {
		return status.Errorf(codes.NotFound, format, args...)
	}
	return err
}

func validateProfile(p *brokerv1.NodeProfile) error {
	if p == nil {
		return invalid("profile is required")
	}
	if err := validateName("profile.name", p.GetName()); err != nil {
		return err
	}
	for field, v := range map[string]int32{
		"profile.min_cpu_cores": p.GetMinCpuCores(), "profile.min_memory_gib": p.GetMinMemoryGib(),
		"profile.min_gpus": p.GetMinGpus(), "profile.min_local_disk_gib": p.GetMinLocalDiskGib(),
	} {
		if v < 0 {
			return invalid("%s must not be negative, not %d", field, v)
		}
	}
	if p.GetGpuModel() != "" && p.GetMinGpus() == 0 {
		return invalid("profile.gpu_model %q needs profile.min_gpus of at least 1", p.GetGpuModel())
	}
	if p.GetNodeConfig() == "" {
		return invalid("profile.node_config is required: the node configuration machines of this profile run")
	}
	return validateNodeConfig("profile.node_config", p.GetNodeConfig())
}

// CreateNodeProfile implements brokerv1.BrokerServiceServer.
func (b *Broker) CreateNodeProfile(ctx context.Context, req *brokerv1.CreateNodeProfileRequest) (*brokerv1.CreateNodeProfileResponse, error) {
	if err := validateProfile(req.GetProfile()); err != nil {
		return nil, err
	}
	p := profileFromAPI(req.GetProfile())
	p.CreatedAt, p.UpdatedAt = b.clock.Now(), b.clock.Now()
	err := b.write(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		err := tx.InsertProfile(ctx, p)
		if errors.Is(err, inventory.ErrAlreadyExists) {
			return status.Errorf(codes.AlreadyExists, "node profile %q already exists", p.Name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &brokerv1.CreateNodeProfileResponse{Profile: profileToAPI(p)}, nil
}

// GetNodeProfile implements brokerv1.BrokerServiceServer.
func (b *Broker) GetNodeProfile(ctx context.Context, req *brokerv1.GetNodeProfileRequest) (*brokerv1.GetNodeProfileResponse, error) {
	if req.GetName() == "" {
		return nil, invalid("name is required")
	}
	resp := &brokerv1.GetNodeProfileResponse{}
	return resp, b.inTx(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		p, err := tx.GetProfile(ctx, req.GetName())
		resp.Profile = profileToAPI(p)
		return notFound(err, "node profile %q does not exist", req.GetName())
	})
}

// ListNodeProfiles implements brokerv1.BrokerServiceServer.
func (b *Broker) ListNodeProfiles(ctx context.Context, _ *brokerv1.ListNodeProfilesRequest) (*brokerv1.ListNodeProfilesResponse, error) {
	resp := &brokerv1.ListNodeProfilesResponse{}
	return resp, b.inTx(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		ps, err := tx.ListProfiles(ctx)
		for _, p := range ps {
			resp.Profiles = append(resp.Profiles, profileToAPI(p))
		}
		return err
	})
}

// UpdateNodeProfile implements brokerv1.BrokerServiceServer. Pools of the
// profile are reconciled: a raised minimum applies to machines allocated from now on.
func (b *Broker) UpdateNodeProfile(ctx context.Context, req *brokerv1.UpdateNodeProfileRequest) (*brokerv1.UpdateNodeProfileResponse, error) {
	if err := validateProfile(req.GetProfile()); err != nil {
		return nil, err
	}
	p := profileFromAPI(req.GetProfile())
	resp := &brokerv1.UpdateNodeProfileResponse{}
	return resp, b.write(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		old, err := tx.GetProfile(ctx, p.Name)
		if err != nil {
			return notFound(err, "node profile %q does not exist", p.Name)
		}
		p.CreatedAt, p.UpdatedAt = old.CreatedAt, b.clock.Now()
		resp.Profile = profileToAPI(p)
		return tx.UpdateProfile(ctx, p)
	})
}

// DeleteNodeProfile implements brokerv1.BrokerServiceServer.
func (b *Broker) DeleteNodeProfile(ctx context.Context, req *brokerv1.DeleteNodeProfileRequest) (*brokerv1.DeleteNodeProfileResponse, error) {
	if req.GetName() == "" {
		return nil, invalid("name is required")
	}
	return &brokerv1.DeleteNodeProfileResponse{}, b.write(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		pools, err := tx.ListPools(ctx)
		if err != nil {
			return err
		}
		var users []string
		for _, p := range pools {
			if p.Profile == req.GetName() {
				users = append(users, p.Name)
			}
		}
		if len(users) > 0 {
			return status.Errorf(codes.FailedPrecondition, "node profile %q is used by pools %s: delete them or move them to another profile first",
				req.GetName(), strings.Join(users, ", "))
		}
		return notFound(tx.DeleteProfile(ctx, req.GetName()), "node profile %q does not exist", req.GetName())
	})
}
