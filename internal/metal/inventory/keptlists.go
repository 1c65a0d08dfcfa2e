package inventory

import (
	"cmp"
	"slices"
)

// keptLists are machine lists a transaction read and keeps up to date with
// its own writes: the free machines (MachineFilter.Free) of a datacenter by
// SKU, and each pool's machines (MachineFilter.Pool), in ID order. Choosing
// machines for a pool reads every free machine of the smallest adequate
// SKU (25,000 of a 100,000-machine datacenter) and the pool's machines: most
// of a resize's time (docs/benchmarks.md, "Compute Broker"). When several
// writes share a transaction (the broker's group commit), the first reads
// them and the others take them from here. They are exact for the
// transaction: no other transaction's writes are visible to it (SQLite has
// one writer; PostgreSQL runs it serializable), allocating and releasing
// update them, and every other write of machines, or a rollback to a
// savepoint, drops them all. A nil *keptLists holds nothing and ignores
// updates.
type keptLists struct {
	free  map[freeKey][]MachinePlacement
	pools map[string][]MachinePlacement
}

type freeKey struct{ datacenter, sku string }

// listKey says which kept list ListPlacements of f reads, if any: one
// datacenter's free machines of one SKU, or one pool's machines, and nothing
// else.
func listKey(f MachineFilter) (free freeKey, pool string, ok bool) {
	rest := f.MaintenanceZone == 0 && len(f.SKUs) == 0 && f.State == "" && !f.HealthyOnly && !f.UnhealthyOnly &&
		f.Provision == "" && f.UpdatedSince.IsZero() && f.AfterID == "" && f.Limit == 0
	switch {
	case !rest:
		return freeKey{}, "", false
	case f.Free && f.Datacenter != "" && f.SKU != "" && f.Pool == "":
		return freeKey{f.Datacenter, f.SKU}, "", true
	case !f.Free && f.Datacenter == "" && f.SKU == "" && f.Pool != "":
		return freeKey{}, f.Pool, true
	}
	return freeKey{}, "", false
}

// get returns a copy of the kept list, if there is one.
func (l *keptLists) get(free freeKey, pool string) ([]MachinePlacement, bool) {
	if l == nil {
		return nil, false
	}
	ps, ok := l.free[free]
	if pool != "" {
		ps, ok = l.pools[pool]
	}
	return slices.Clone(ps), ok
}

// put keeps a copy of ps.
func (l *keptLists) put(free freeKey, pool string, ps []MachinePlacement) {
	if pool != "" {
		l.pools[pool] = slices.Clone(ps)
	} else {
		l.free[free] = slices.Clone(ps)
	}
}

func newKeptLists() *keptLists {
	return &keptLists{free: map[freeKey][]MachinePlacement{}, pools: map[string][]MachinePlacement{}}
}

// allocated moves machines from the free lists into pool's list, allocated.
// A machine that no free list holds leaves pool's list unknown: it is dropped.
func (l *keptLists) allocated(ids []string, pool string) {
	if l == nil || len(ids) == 0 {
		return
	}
	gone := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		gone[id] = struct{}{}
	}
	var moved []MachinePlacement
	for k, ps := range l.free {
		l.free[k] = slices.DeleteFunc(ps, func(p MachinePlacement) bool {
			if _, ok := gone[p.ID]; ok {
				p.State = MachineAllocated
				moved = append(moved, p)
				return true
			}
			return false
		})
	}
	members, ok := l.pools[pool]
	if !ok {
		return
	}
	if len(moved) != len(ids) {
		delete(l.pools, pool)
		return
	}
	slices.SortFunc(moved, byID)
	l.pools[pool] = mergeByID(members, moved)
}

// freeMachine is a machine as a release left it, to tell whether it is free.
type freeMachine struct {
	MachinePlacement
	datacenter string
	clean      bool
	healthy    bool
}

func scanFreeMachine(s scanner) (freeMachine, error) {
	var (
		m         freeMachine
		provision ProvisionState
	)
	err := s.Scan(&m.ID, &m.MaintenanceZone, &m.Rack, &m.SKU, &m.datacenter, &provision, &m.healthy)
	m.State, m.clean = MachineAvailable, provision == ProvisionClean
	return m, err
}

// released takes machines out of every pool's list and merges those a
// release left free (available, in no pool, clean and healthy) into the
// free lists of their datacenter and SKU.
func (l *keptLists) released(ms []freeMachine) {
	if l == nil || len(ms) == 0 {
		return
	}
	gone := make(map[string]struct{}, len(ms))
	added := map[freeKey][]MachinePlacement{}
	for _, m := range ms {
		gone[m.ID] = struct{}{}
		k := freeKey{m.datacenter, m.SKU}
		if _, kept := l.free[k]; kept && m.clean && m.healthy {
			added[k] = append(added[k], m.MachinePlacement)
		}
	}
	for pool, ps := range l.pools {
		l.pools[pool] = slices.DeleteFunc(ps, func(p MachinePlacement) bool {
			_, ok := gone[p.ID]
			return ok
		})
	}
	for k, ps := range added {
		slices.SortFunc(ps, byID)
		l.free[k] = mergeByID(l.free[k], ps)
	}
}

func byID(a, b MachinePlacement) int { return cmp.Compare(a.ID, b.ID) }

// mergeByID merges two lists in ID order.
func mergeByID(a, b []MachinePlacement) []MachinePlacement {
	out := make([]MachinePlacement, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].ID <= b[0].ID {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}
