package broker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// Condition types and reasons of a pool.
const (
	// ConditionSatisfied is True when a pool holds exactly its capacity.
	ConditionSatisfied = "Satisfied"

	ReasonSatisfied             = "Satisfied"
	ReasonInsufficientInventory = "InsufficientInventory"
	ReasonShrinkBlocked         = "ShrinkBlocked"
	// ReasonReleasing: a pool with a join target holds more than its
	// capacity while the extra machines' Nodes are drained.
	ReasonReleasing = "Releasing"
	ReasonDeleting  = "Deleting"
)

// Condition is a Kubernetes-style condition of a broker object.
type Condition struct {
	Type, Status, Reason, Message string
}

// PoolStatus is what a pool holds now, derived from the inventory.
type PoolStatus struct {
	Allocated int32
	Disrupted int32
	// Joined counts the machines whose Node joined the pool's cluster.
	Joined int32
	// Releasing counts the machines under an open pool-shrink disruption.
	Releasing int32
	// Unhealthy counts the machines that are not healthy.
	Unhealthy int32
	// Zones counts the pool's machines per maintenance zone.
	Zones     map[int32]int32
	Satisfied Condition
}

// brokerActor is the actor of the disruption steps the broker takes itself.
var brokerActor = actor{name: "broker"}

// reconcilePool moves machines into or out of a pool until it holds its
// capacity, or releases everything and removes a pool being deleted. A pool
// with a join target does not release machines itself (see
// reconcileJoinedPool). It reports whether anything changed, and adds the
// events of the disruptions it created or cancelled.
func reconcilePool(ctx context.Context, tx inventory.Tx, name string, now time.Time, events *[]event) (bool, error) {
	return reconcilePoolPreferring(ctx, tx, name, 0, now, events)
}

// reconcilePoolPreferring is reconcilePool where machines the pool gets go
// to zone prefer (0: none) when the MZ balance allows.
func reconcilePoolPreferring(ctx context.Context, tx inventory.Tx, name string, prefer int32, now time.Time, events *[]event) (bool, error) {
	pool, err := tx.GetPool(ctx, name)
	if err != nil {
		return false, err
	}
	members, err := tx.ListPlacements(ctx, inventory.MachineFilter{Pool: name})
	if err != nil {
		return false, err
	}
	if pool.Deleting && len(members) == 0 {
		return true, tx.DeletePool(ctx, name)
	}
	skus, err := skuIndex(ctx, tx)
	if err != nil {
		return false, err
	}
	if pool.JoinTarget != nil {
		return reconcileJoinedPool(ctx, tx, pool, members, skus, prefer, now, events)
	}
	want := wanted(pool)
	switch {
	case len(members) < want:
		picked, err := grow(ctx, tx, pool, skus, members, want-len(members), prefer)
		return len(picked) > 0, err
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
	}
	return false, nil
}

// wanted is how many machines a pool should hold: none once it is deleting.
func wanted(pool inventory.Pool) int {
	if pool.Deleting {
		return 0
	}
	return int(pool.Capacity)
}

// grow allocates up to n more machines to a pool that holds members,
// preferring zone prefer (0: none) among the zones the balance allows.
func grow(ctx context.Context, tx inventory.Tx, pool inventory.Pool, skus map[string]inventory.SKU,
	members []inventory.MachinePlacement, n int, prefer int32) ([]inventory.MachinePlacement, error) {
	if n <= 0 {
		return nil, nil
	}
	candidates, err := candidates(ctx, tx, pool, skus, members, len(members)+n)
	if err != nil {
		return nil, err
	}
	picked := planGrowPreferring(members, candidates, skus, n, prefer)
	if err := tx.AllocateMachines(ctx, ids(picked), pool.Name); err != nil {
		return nil, fmt.Errorf("allocating machines to pool %s: %w", pool.Name, err)
	}
	return picked, nil
}

// reconcileJoinedPool reconciles a pool whose machines join a cluster. Its
// machines are Nodes that run workloads, so the pool never drops one: to
// shrink, it asks with a Pending pool-shrink disruption per machine, chosen
// evenly across MZs among those under no other disruption, and the cluster
// layer approves once the Node is drained (see completePoolShrink). It keeps
//
//	members - capacity == open pool-shrink disruptions
//
// as far as the machines allow. To grow, it first cancels pending shrinks,
// whose machines are still in the pool and likely still joined, then
// allocates.
func reconcileJoinedPool(ctx context.Context, tx inventory.Tx, pool inventory.Pool, members []inventory.MachinePlacement,
	skus map[string]inventory.SKU, prefer int32, now time.Time, events *[]event) (bool, error) {
	open, err := tx.ListDisruptions(ctx, inventory.DisruptionFilter{Datacenter: pool.Datacenter, States: openStates})
	if err != nil {
		return false, err
	}
	busy := make(map[string]bool, len(open))
	shrinks := map[string]inventory.Disruption{}
	for _, d := range open {
		busy[d.Machine] = true
		if d.Reason == inventory.ReasonPoolShrink && d.Pool == pool.Name {
			shrinks[d.Machine] = d
		}
	}
	var staying, leaving []inventory.MachinePlacement
	for _, m := range members {
		if _, ok := shrinks[m.ID]; ok {
			leaving = append(leaving, m)
		} else {
			staying = append(staying, m)
		}
	}
	want := wanted(pool)
	switch need := want - len(staying); {
	case need > 0:
		pending := slices.DeleteFunc(leaving, func(m inventory.MachinePlacement) bool {
			return shrinks[m.ID].State != inventory.DisruptionPending
		})
		kept := planGrowPreferring(staying, pending, skus, need, prefer)
		msg := fmt.Sprintf("pool %s grows back to %d machines: the machine stays", pool.Name, want)
		for _, m := range kept {
			d, _, err := transition(ctx, tx, shrinks[m.ID].ID, inventory.DisruptionCancelled, brokerActor, msg, nil, now)
			if err != nil {
				return false, fmt.Errorf("cancelling the shrink of machine %s: %w", m.ID, err)
			}
			*events = append(*events, disruptionEvent(brokerv1.EventType_EVENT_TYPE_MODIFIED, disruptionToAPI(d, nil)))
		}
		picked, err := grow(ctx, tx, pool, skus, append(staying, kept...), need-len(kept), prefer)
		return len(kept)+len(picked) > 0, err
	case need < 0:
		releasable := slices.DeleteFunc(slices.Clone(staying), func(m inventory.MachinePlacement) bool {
			return m.State != inventory.MachineAllocated || busy[m.ID]
		})
		picked := planShrink(staying, releasable, skus, -need)
		msg := fmt.Sprintf("pool %s shrinks from %d to %d machines", pool.Name, len(staying), want)
		if pool.Deleting {
			msg = fmt.Sprintf("pool %s is being deleted", pool.Name)
		}
		for _, m := range picked {
			d, err := recordDisruption(ctx, tx, inventory.Disruption{
				Machine: m.ID, Pool: pool.Name, Datacenter: pool.Datacenter, MaintenanceZone: m.MaintenanceZone,
				Reason: inventory.ReasonPoolShrink, Actor: brokerActor.name, Message: msg,
			}, now)
			if err != nil {
				return false, fmt.Errorf("asking to release machine %s of pool %s: %w", m.ID, pool.Name, err)
			}
			*events = append(*events, disruptionEvent(brokerv1.EventType_EVENT_TYPE_ADDED, disruptionToAPI(d, nil)))
		}
		return len(picked) > 0, nil
	}
	return false, nil
}

// candidates are the machines a pool may take: available, in no pool, clean
// (a machine being wiped is not available yet), healthy, of a SKU that satisfies its
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
		ms, err := tx.ListPlacements(ctx, inventory.MachineFilter{Datacenter: pool.Datacenter, SKU: sku.Name, Free: true})
		if err != nil {
			return nil, err
		}
		out = slices.Grow(out, len(ms))
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

// poolStatus derives a pool's status from its machines and disruptions.
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
		if c.Provision == inventory.ProvisionJoined {
			st.Joined += int32(c.Count)
		}
		if !c.Healthy {
			st.Unhealthy += int32(c.Count)
		}
	}
	if pool.JoinTarget != nil {
		open, err := tx.ListDisruptions(ctx, inventory.DisruptionFilter{Pool: pool.Name, States: openStates})
		if err != nil {
			return PoolStatus{}, err
		}
		for _, d := range open {
			if d.Reason == inventory.ReasonPoolShrink {
				st.Releasing++
			}
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
		if st.Releasing > 0 {
			c.Message += fmt.Sprintf("; %d wait for their Nodes to be drained", st.Releasing)
		}
	case st.Allocated < pool.Capacity:
		c.Reason = ReasonInsufficientInventory
		c.Message = fmt.Sprintf("%d of %d machines allocated: no more available, healthy machines in %s satisfy node profile %s",
			st.Allocated, pool.Capacity, pool.Datacenter, pool.Profile)
	case st.Allocated > pool.Capacity && st.Allocated-st.Releasing <= pool.Capacity:
		c.Reason = ReasonReleasing
		c.Message = fmt.Sprintf("%d of %d machines allocated: %d are released once their Nodes are drained (pool-shrink disruptions)",
			st.Allocated, pool.Capacity, st.Releasing)
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
