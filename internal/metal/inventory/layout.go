package inventory

import "sync"

// layout remembers where each machine sits: its maintenance zone, rack and
// SKU. Those never change once a machine is inserted (no statement updates
// them, and machines are never deleted), so what one transaction read stays
// true for every later one, whatever was rolled back or written since, by
// this process or another. ListPlacements then reads only the IDs and
// states of the machines it lists, and takes the rest from here: the
// columns it no longer reads were most of the cost of choosing machines
// for a pool (docs/benchmarks.md, "Compute Broker"). A machine it does not
// know yet (inserted since, by this process or another) makes
// ListPlacements read every column, and learn it.
//
// A datacenter of 100,000 machines takes about 10 MB: rack and SKU names are
// shared, not copied per machine.
type layout struct {
	mu       sync.RWMutex
	machines map[string]place
	// names interns rack and SKU names.
	names map[string]string
}

// place is where a machine sits.
type place struct {
	id   string
	zone int32
	rack string
	sku  string
}

func newLayout() *layout {
	return &layout{machines: map[string]place{}, names: map[string]string{}}
}

// fill fills in the zone, rack and SKU of ps from what the layout knows,
// and reports whether it knew every one (ps is then complete).
func (l *layout) fill(ps []MachinePlacement) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for i := range ps {
		p := &ps[i]
		known, ok := l.machines[p.ID]
		if !ok {
			return false
		}
		// The layout's copy of the ID: the scanned one is garbage at once.
		p.ID, p.MaintenanceZone, p.Rack, p.SKU = known.id, known.zone, known.rack, known.sku
	}
	return true
}

// learn remembers where the machines of ps sit.
func (l *layout) learn(ps []MachinePlacement) {
	if l == nil || len(ps) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range ps {
		if _, ok := l.machines[p.ID]; ok {
			continue
		}
		l.machines[p.ID] = place{id: p.ID, zone: p.MaintenanceZone, rack: l.intern(p.Rack), sku: l.intern(p.SKU)}
	}
}

func (l *layout) intern(s string) string {
	if v, ok := l.names[s]; ok {
		return v
	}
	l.names[s] = s
	return s
}
