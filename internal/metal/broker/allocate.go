package broker

import (
	"cmp"
	"container/heap"
	"slices"

	"github.com/strata-dev/strata/internal/metal/inventory"
)

// satisfies says whether a SKU meets a profile's minimum machine.
func satisfies(s inventory.SKU, p inventory.NodeProfile) bool {
	return s.CPUCores >= p.MinCPUCores &&
		s.MemoryGiB >= p.MinMemoryGiB &&
		s.GPUs >= p.MinGPUs &&
		(p.GPUModel == "" || (s.GPUs > 0 && s.GPUModel == p.GPUModel)) &&
		s.LocalDiskGiB >= p.MinLocalDiskGiB
}

// compareSKUSize orders SKUs from the smallest machine to the largest: GPUs
// first (never spend a GPU where none is needed), then cores, memory, disk.
func compareSKUSize(a, b inventory.SKU) int {
	return cmp.Or(
		cmp.Compare(a.GPUs, b.GPUs),
		cmp.Compare(a.CPUCores, b.CPUCores),
		cmp.Compare(a.MemoryGiB, b.MemoryGiB),
		cmp.Compare(a.LocalDiskGiB, b.LocalDiskGiB),
		cmp.Compare(a.Name, b.Name),
	)
}

// spread counts a pool's machines per maintenance zone and per rack.
type spread struct {
	zones map[int32]int
	racks map[string]int
}

func newSpread(machines []inventory.MachinePlacement) spread {
	s := spread{zones: map[int32]int{}, racks: map[string]int{}}
	for _, m := range machines {
		s.zones[m.MaintenanceZone]++
		s.racks[m.Rack]++
	}
	return s
}

// planGrow picks up to n machines among the candidates for a pool that holds
// current: each pick goes to the maintenance zone where the pool has the
// fewest machines (so max minus min per MZ stays <= 1 where the inventory
// allows), and within it to the smallest adequate SKU on the rack where the
// pool has the fewest machines. It returns fewer than n when candidates run out.
func planGrow(current, candidates []inventory.MachinePlacement, skus map[string]inventory.SKU, n int) []inventory.MachinePlacement {
	return plan(current, candidates, skus, n, +1, 0)
}

// planGrowPreferring is planGrow that breaks ties between zones in favour
// of zone prefer (0: none): a replaced machine's spare goes to its MZ when
// that keeps the pool balanced.
func planGrowPreferring(current, candidates []inventory.MachinePlacement, skus map[string]inventory.SKU, n int, prefer int32) []inventory.MachinePlacement {
	return plan(current, candidates, skus, n, +1, prefer)
}

// planShrink picks n machines of a pool to release, among those that may be
// released: the mirror of planGrow, from the zone where the pool has the most
// machines, the largest SKU first, on the rack where the pool has the most.
func planShrink(current, releasable []inventory.MachinePlacement, skus map[string]inventory.SKU, n int) []inventory.MachinePlacement {
	return plan(current, releasable, skus, n, -1, 0)
}

// plan moves up to n machines of choices into (sign +1) or out of (sign -1)
// a pool that holds current, one at a time, keeping its spread even; ties
// between zones go to zone prefer, then to the lowest zone. Each zone keeps
// its choices by SKU, each SKU a heap of racks by the pool's machines on
// them, so a pick costs a zone scan and a heap operation.
func plan(current, choices []inventory.MachinePlacement, skus map[string]inventory.SKU, n, sign int, prefer int32) []inventory.MachinePlacement {
	s := newSpread(current)
	zones := groupChoices(choices, skus, s, sign)
	var picked []inventory.MachinePlacement
	for len(picked) < n && len(zones) > 0 {
		zi := 0 // fewest pool machines (sign +1) or most (sign -1); ties to prefer, then the lowest zone
		for i := 1; i < len(zones); i++ {
			if d := sign * (s.zones[zones[i].zone] - s.zones[zones[zi].zone]); d < 0 || (d == 0 && zones[i].zone == prefer) {
				zi = i
			}
		}
		z := zones[zi]
		m := z.groups[0].pop(s, sign)
		picked = append(picked, m)
		s.zones[m.MaintenanceZone] += sign
		s.racks[m.Rack] += sign
		if z.groups[0].Len() == 0 {
			z.groups = z.groups[1:]
		}
		if len(z.groups) == 0 {
			zones = slices.Delete(zones, zi, zi+1)
		}
	}
	return picked
}

// zoneChoices are the choices of one zone, a rack heap per SKU, in the order
// SKUs are taken: smallest first when growing, largest first when shrinking.
type zoneChoices struct {
	zone   int32
	groups []*rackHeap
}

func groupChoices(choices []inventory.MachinePlacement, skus map[string]inventory.SKU, s spread, sign int) []*zoneChoices {
	type key struct {
		zone int32
		sku  string
	}
	// One map lookup per rack, not per choice: a pool's choices are a
	// datacenter's worth of machines (docs/benchmarks.md, "Compute
	// Broker"), listed by ID, so a rack's come one after another; a rack
	// holds a few queues, one per zone and SKU, searched in turn. Queues
	// come from one slab and their machines from one array, filled in a
	// second pass: most queues hold one or two machines, and allocating
	// each was most of the time here.
	slab := make([]rackQueue, 0, len(choices))
	counts := make([]int, 0, len(choices))
	of := make([]int, len(choices)) // the queue of each choice
	racks := map[string][]int{}
	var (
		lastRack  string
		rackQs    []int
		rackCount int
	)
	for i, m := range choices {
		if i == 0 || m.Rack != lastRack {
			if i > 0 {
				racks[lastRack] = rackQs
			}
			lastRack, rackQs, rackCount = m.Rack, racks[m.Rack], sign*s.racks[m.Rack]
		}
		qi := -1
		for _, j := range rackQs {
			if slab[j].zone == m.MaintenanceZone && slab[j].sku == m.SKU {
				qi = j
				break
			}
		}
		if qi < 0 {
			qi = len(slab)
			slab = append(slab, rackQueue{rack: m.Rack, zone: m.MaintenanceZone, sku: m.SKU, count: rackCount})
			counts = append(counts, 0)
			rackQs = append(rackQs, qi)
		}
		of[i] = qi
		counts[qi]++
	}
	all := make([]inventory.MachinePlacement, len(choices))
	next := 0
	for qi := range slab {
		slab[qi].machines = all[next : next : next+counts[qi]]
		next += counts[qi]
	}
	for i, m := range choices {
		q := &slab[of[i]]
		q.machines = append(q.machines, m)
	}
	heaps := map[key]*rackHeap{}
	for qi := range slab {
		q := &slab[qi]
		k := key{q.zone, q.sku}
		h := heaps[k]
		if h == nil {
			h = &rackHeap{sku: skus[q.sku]}
			heaps[k] = h
		}
		h.racks = append(h.racks, q)
	}
	// The store lists machines by ID: then each rack's are in order already.
	sorted := slices.IsSortedFunc(choices, func(a, b inventory.MachinePlacement) int { return cmp.Compare(a.ID, b.ID) })
	byZone := map[int32]*zoneChoices{}
	for k, h := range heaps {
		if !sorted {
			for _, q := range h.racks {
				slices.SortFunc(q.machines, func(a, b inventory.MachinePlacement) int { return cmp.Compare(a.ID, b.ID) })
			}
		}
		heap.Init(h)
		z := byZone[k.zone]
		if z == nil {
			z = &zoneChoices{zone: k.zone}
			byZone[k.zone] = z
		}
		z.groups = append(z.groups, h)
	}
	zones := make([]*zoneChoices, 0, len(byZone))
	for _, z := range byZone {
		slices.SortFunc(z.groups, func(a, b *rackHeap) int { return sign * compareSKUSize(a.sku, b.sku) })
		zones = append(zones, z)
	}
	slices.SortFunc(zones, func(a, b *zoneChoices) int { return cmp.Compare(a.zone, b.zone) })
	return zones
}

// rackQueue is one rack's choices of one SKU in one zone; count is the
// pool's machines on the rack times the plan's sign, when last looked at.
type rackQueue struct {
	rack     string
	zone     int32
	sku      string
	count    int
	machines []inventory.MachinePlacement
}

// rackHeap orders a SKU's racks by count, then name. Counts change as other
// zones pick from the same racks, so pop refreshes stale entries lazily.
type rackHeap struct {
	sku   inventory.SKU
	racks []*rackQueue
}

func (h *rackHeap) Len() int { return len(h.racks) }
func (h *rackHeap) Less(i, j int) bool {
	a, b := h.racks[i], h.racks[j]
	return a.count < b.count || (a.count == b.count && a.rack < b.rack)
}
func (h *rackHeap) Swap(i, j int) { h.racks[i], h.racks[j] = h.racks[j], h.racks[i] }
func (h *rackHeap) Push(x any)    { h.racks = append(h.racks, x.(*rackQueue)) }
func (h *rackHeap) Pop() any {
	last := h.racks[len(h.racks)-1]
	h.racks = h.racks[:len(h.racks)-1]
	return last
}

// pop takes the first machine of the best rack, after refreshing the top
// until its count is current.
func (h *rackHeap) pop(s spread, sign int) inventory.MachinePlacement {
	for {
		top := h.racks[0]
		if now := sign * s.racks[top.rack]; now != top.count {
			top.count = now
			heap.Fix(h, 0)
			continue
		}
		m := top.machines[0]
		top.machines = top.machines[1:]
		if len(top.machines) == 0 {
			heap.Pop(h)
		}
		return m
	}
}
