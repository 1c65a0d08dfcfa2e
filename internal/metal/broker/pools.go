package broker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/strata-dev/strata/internal/metal/inventory"
)

// Condition types and reasons of a pool.
const (
	// ConditionSatisfied is True when a pool holds exactly its capacity.
	ConditionSatisfied = "Satisfied"

	ReasonSatisfied             = "Satisfied"
	ReasonInsufficientInventory = "InsufficientInventory"
	ReasonShrinkBlocked         = "ShrinkBlocked"
	ReasonDeleting              = "Deleting"
)

// Condition is a Kubernetes-style condition of a broker object.
type Condition struct {
	Type, Status, Reason, Message string
}

// PoolStatus is what a pool holds now, derived from the inventory.
type PoolStatus struct {
	Allocated int32
	Disrupted int32
	// Zones counts the pool's machines per maintenance zone.
	Zones     map[int32]int32
	Satisfied Condition
}

// reconcilePool moves machines into or out of a pool until it holds its
// capacity, or releases everything and removes a pool being deleted. It
// reports whether anything changed.
func reconcilePool(ctx context.Context, tx inventory.Tx, name string, now time.Time) (bool, error) {
	pool, err := tx.GetPool(ctx, name)
	if err != nil {
		return false, err
	}
	members, err := tx.ListMachines(ctx, inventory.MachineFilter{Pool: name})
	if err != nil {
		return false, err
	}
	skus, err := skuIndex(ctx, tx)
	if err != nil {
		return false, err
	}
	want := int(pool.Capacity)
	if pool.Deleting {
		want = 0
	}
	switch {
	case len(members) < want:
		profile, err := tx.GetProfile(ctx, pool.Profile)
		if err != nil {
			return false, fmt.Errorf("pool %s: profile %s: %w", name, pool.Profile, err)
		}
		available, err := tx.ListMachines(ctx, inventory.MachineFilter{Datacenter: pool.Datacenter, State: inventory.MachineAvailable})
		if err != nil {
			return false, err
		}
		disrupted, err := openDisruptionMachines(ctx, tx, pool.Datacenter)
		if err != nil {
			return false, err
		}
		candidates := slices.DeleteFunc(available, func(m inventory.Machine) bool {
			return !m.Healthy || disrupted[m.ID] || !satisfies(skus[m.SKU], profile)
		})
		picked := planGrow(members, candidates, skus, want-len(members))
		for _, m := range picked {
			m.State, m.Pool, m.UpdatedAt = inventory.MachineAllocated, name, now
			if err := tx.UpdateMachine(ctx, m); err != nil {
				return false, fmt.Errorf("allocating machine %s to pool %s: %w", m.ID, name, err)
			}
		}
		return len(picked) > 0, nil
	case len(members) > want:
		// A machine under maintenance stays with its pool until it is back.
		releasable := slices.DeleteFunc(slices.Clone(members), func(m inventory.Machine) bool {
			return m.State != inventory.MachineAllocated
		})
		released := planShrink(members, releasable, skus, len(members)-want)
		for _, m := range released {
			m.State, m.Pool, m.UpdatedAt = inventory.MachineAvailable, "", now
			if err := tx.UpdateMachine(ctx, m); err != nil {
				return false, fmt.Errorf("releasing machine %s from pool %s: %w", m.ID, name, err)
			}
		}
		if pool.Deleting && len(released) == len(members) {
			return true, tx.DeletePool(ctx, name)
		}
		return len(released) > 0, nil
	case pool.Deleting:
		return true, tx.DeletePool(ctx, name)
	}
	return false, nil
}

// poolStatus derives a pool's status from its machines.
func poolStatus(ctx context.Context, tx inventory.Tx, pool inventory.Pool) (PoolStatus, error) {
	members, err := tx.ListMachines(ctx, inventory.MachineFilter{Pool: pool.Name})
	if err != nil {
		return PoolStatus{}, err
	}
	st := PoolStatus{Allocated: int32(len(members)), Zones: map[int32]int32{}}
	for _, m := range members {
		st.Zones[m.MaintenanceZone]++
		if m.State != inventory.MachineAllocated {
			st.Disrupted++
		}
	}
	st.Satisfied = satisfiedCondition(pool, st)
	return st, nil
}

func satisfiedCondition(pool inventory.Pool, st PoolStatus) Condition {
	c := Condition{Type: ConditionSatisfied, Status: "False"}
	switch {
	case pool.Deleting:
		c.Reason = ReasonDeleting
		c.Message = fmt.Sprintf("releasing %d machines before the pool is removed", st.Allocated)
	case st.Allocated < pool.Capacity:
		c.Reason = ReasonInsufficientInventory
		c.Message = fmt.Sprintf("%d of %d machines allocated: no more available, healthy machines in %s satisfy node profile %s",
			st.Allocated, pool.Capacity, pool.Datacenter, pool.Profile)
	case st.Allocated > pool.Capacity:
		c.Reason = ReasonShrinkBlocked
		c.Message = fmt.Sprintf("%d of %d machines allocated: the extra machines are under maintenance and are released when it ends",
			st.Allocated, pool.Capacity)
	default:
		c.Status, c.Reason = "True", ReasonSatisfied
		c.Message = fmt.Sprintf("%d machines allocated", st.Allocated)
	}
	return c
}

func skuIndex(ctx context.Context, tx inventory.Tx) (map[string]inventory.SKU, error) {
	skus, err := tx.ListSKUs(ctx)
	if err != nil {
		return nil, err
	}
	idx := make(map[string]inventory.SKU, len(skus))
	for _, s := range skus {
		idx[s.Name] = s
	}
	return idx, nil
}
