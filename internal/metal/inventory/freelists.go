package inventory

import (
	"cmp"
	"slices"
)

// freeLists are the free machines (MachineFilter.Free) a transaction read,
// by datacenter and SKU, in ID order, kept up to date by the transaction's
// own writes. Choosing machines for a pool reads every free machine of the
// smallest adequate SKU, 25,000 of a 100,000-machine datacenter: most of a
// resize's time (docs/benchmarks.md, "Compute Broker"). When several
// writes share a transaction (the broker's group commit), the first reads
// them and the others take them from here. They are exact for the
// transaction: no other transaction's writes are visible to it (SQLite has
// one writer; PostgreSQL runs it serializable), allocating and releasing
// update them, and every other write of machines, or a rollback to a
// savepoint, drops them. A nil freeLists holds nothing and ignores updates.
type freeLists map[freeKey][]MachinePlacement

type freeKey struct{ datacenter, sku string }

// freeListKey says whether ListPlacements of f lists one datacenter's free
// machines of one SKU, and nothing else: the lists kept.
func freeListKey(f MachineFilter) (freeKey, bool) {
	ok := f.Free && f.Datacenter != "" && f.SKU != "" && len(f.SKUs) == 0 && f.MaintenanceZone == 0 &&
		f.State == "" && !f.HealthyOnly && !f.UnhealthyOnly && f.Pool == "" && f.Provision == "" &&
		f.UpdatedSince.IsZero() && f.AfterID == "" && f.Limit == 0
	return freeKey{f.Datacenter, f.SKU}, ok
}

// put keeps a copy of ps, the free machines of key.
func (l *freeLists) put(key freeKey, ps []MachinePlacement) {
	if *l == nil {
		*l = freeLists{}
	}
	(*l)[key] = slices.Clone(ps)
}

// remove drops machines that are no longer free.
func (l freeLists) remove(ids []string) {
	if len(l) == 0 || len(ids) == 0 {
		return
	}
	gone := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		gone[id] = struct{}{}
	}
	for k, ps := range l {
		l[k] = slices.DeleteFunc(ps, func(p MachinePlacement) bool {
			_, ok := gone[p.ID]
			return ok
		})
	}
}

// freeMachine is a machine as a write left it, to tell whether it is free.
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

// add merges the machines that a release left free (available, in no pool)
// into the lists of their datacenter and SKU, in ID order.
func (l freeLists) add(ms []freeMachine) {
	if len(l) == 0 {
		return
	}
	added := map[freeKey][]MachinePlacement{}
	for _, m := range ms {
		k := freeKey{m.datacenter, m.SKU}
		if _, kept := l[k]; kept && m.clean && m.healthy {
			added[k] = append(added[k], m.MachinePlacement)
		}
	}
	byID := func(a, b MachinePlacement) int { return cmp.Compare(a.ID, b.ID) }
	for k, ps := range added {
		slices.SortFunc(ps, byID)
		l[k] = mergeByID(l[k], ps)
	}
}

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
