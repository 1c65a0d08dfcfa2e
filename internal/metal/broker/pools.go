package broker

import (
	"context"
	"fmt"
	"slices"

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
func reconcilePool(ctx context.Context, tx inventory.Tx, name string) (bool, error) {
	pool, err := tx.GetPool(ctx, name)
	if err != nil {
		return false, err
	}
	members, err := tx.ListPlacements(ctx, inventory.MachineFilter{Pool: name})
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
		candidates, err := candidates(ctx, tx, pool, skus, members, want)
		if err != nil {
			return false, err
		}
		picked := planGrow(members, candidates, skus, want-len(members))
		if err := tx.AllocateMachines(ctx, ids(picked), name); err != nil {
			return false, fmt.Errorf("allocating machines to pool %s: %w", name, err)
		}
		return len(picked) > 0, nil
	case len(members) > want:
		// A machine under maintenance stays with its pool until it is back.
		releasable := slices.DeleteFunc(slices.Clone(members), func(m inventory.MachinePlacement) bool {
			return m.State != inventory.MachineAllocated
		})
		released := planShrink(members, releasable, skus, len(members)-want)
		if err := tx.ReleaseMachines(ctx, ids(released)); err != nil {
			return false, fmt.Errorf("releasing machines of pool %s: %w", name, err)
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

// candidates are the machines a pool may take: available, clean (a machine
// being wiped is not available yet), healthy, of a SKU that satisfies its
// profile, in its datacenter, and under no disruption.
// SKUs are read smallest first, and reading stops once every zone has enough
// to reach its share of want: a large inventory is not read whole.
func candidates(ctx context.Context, tx inventory.Tx, pool inventory.Pool, skus map[string]inventory.SKU,
	members []inventory.MachinePlacement, want int) ([]inventory.MachinePlacement, error) {
	profile, err := tx.GetProfile(ctx, pool.Profile)
	if err != nil {
		return nil, fmt.Errorf("pool %s: profile %s: %w", pool.Name, pool.Profile, err)
	}
	var fit []inventory.SKU
	for _, sku := range skus {
		if satisfies(sku, profile) {
			fit = append(fit, sku)
		}
	}
	slices.SortFunc(fit, compareSKUSize)
	zones, err := zoneCount(ctx, tx, pool.Datacenter)
	if err != nil {
		return nil, err
	}
	share := (want + zones - 1) / zones
	disrupted, err := openDisruptionMachines(ctx, tx, pool.Datacenter)
	if err != nil {
		return nil, err
	}
	have := newSpread(members).zones
	var out []inventory.MachinePlacement
	for _, sku := range fit {
		ms, err := tx.ListPlacements(ctx, inventory.MachineFilter{
			Datacenter: pool.Datacenter, State: inventory.MachineAvailable, Provision: inventory.ProvisionClean,
			HealthyOnly: true, SKU: sku.Name,
		})
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if !disrupted[m.ID] {
				out = append(out, m)
				have[m.MaintenanceZone]++
			}
		}
		if enough(have, zones, share) {
			break
		}
	}
	return out, nil
}

// enough says whether each of zones (numbered from 1) has share machines.
func enough(have map[int32]int, zones, share int) bool {
	for z := 1; z <= zones; z++ {
		if have[int32(z)] < share {
			return false
		}
	}
	return true
}

func zoneCount(ctx context.Context, tx inventory.Tx, datacenter string) (int, error) {
	dcs, err := tx.ListDatacenters(ctx)
	if err != nil {
		return 0, err
	}
	for _, dc := range dcs {
		if dc.Name == datacenter {
			return max(1, int(dc.MaintenanceZones)), nil
		}
	}
	return 0, fmt.Errorf("datacenter %s: %w", datacenter, inventory.ErrNotFound)
}

func ids(ms []inventory.MachinePlacement) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// poolStatus derives a pool's status from its machines.
func poolStatus(ctx context.Context, tx inventory.Tx, pool inventory.Pool) (PoolStatus, error) {
	counts, err := tx.CountMachines(ctx, inventory.MachineFilter{Pool: pool.Name})
	if err != nil {
		return PoolStatus{}, err
	}
	st := PoolStatus{Zones: map[int32]int32{}}
	for _, c := range counts {
		st.Allocated += int32(c.Count)
		st.Zones[c.MaintenanceZone] += int32(c.Count)
		if c.State != inventory.MachineAllocated {
			st.Disrupted += int32(c.Count)
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
