package broker

import (
	"cmp"
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

func newSpread(machines []inventory.Machine) spread {
	s := spread{zones: map[int32]int{}, racks: map[string]int{}}
	for _, m := range machines {
		s.add(m, 1)
	}
	return s
}

func (s spread) add(m inventory.Machine, n int) {
	s.zones[m.MaintenanceZone] += n
	s.racks[m.Rack] += n
}

// planGrow picks up to n machines among the candidates for a pool that holds
// current: each pick goes to the maintenance zone where the pool has the
// fewest machines (so max minus min per MZ stays <= 1 where the inventory
// allows), and within it to the smallest adequate SKU on the rack where the
// pool has the fewest machines. It returns fewer than n when candidates run out.
func planGrow(current, candidates []inventory.Machine, skus map[string]inventory.SKU, n int) []inventory.Machine {
	return plan(current, candidates, skus, n, +1)
}

// planShrink picks n machines of a pool to release, among those that may be
// released: the mirror of planGrow, from the zone where the pool has the most
// machines, the largest SKU first, on the rack where the pool has the most.
func planShrink(current, releasable []inventory.Machine, skus map[string]inventory.SKU, n int) []inventory.Machine {
	return plan(current, releasable, skus, n, -1)
}

// plan moves up to n machines of choices into (sign +1) or out of (sign -1)
// a pool that holds current, one at a time, keeping its spread even.
func plan(current, choices []inventory.Machine, skus map[string]inventory.SKU, n, sign int) []inventory.Machine {
	byZone := map[int32][]inventory.Machine{}
	for _, m := range choices {
		byZone[m.MaintenanceZone] = append(byZone[m.MaintenanceZone], m)
	}
	s := newSpread(current)
	var picked []inventory.Machine
	for len(picked) < n && len(byZone) > 0 {
		zone := pickZone(byZone, s, sign)
		ms := byZone[zone]
		best := 0
		for i := 1; i < len(ms); i++ {
			if sign*compareChoices(ms[i], ms[best], skus, s) < 0 {
				best = i
			}
		}
		picked = append(picked, ms[best])
		s.add(ms[best], sign)
		if ms = slices.Delete(ms, best, best+1); len(ms) == 0 {
			delete(byZone, zone)
		} else {
			byZone[zone] = ms
		}
	}
	return picked
}

// compareChoices orders the machines of one zone: smallest SKU, then the rack
// with the fewest of the pool's machines, then id.
func compareChoices(a, b inventory.Machine, skus map[string]inventory.SKU, s spread) int {
	return cmp.Or(
		compareSKUSize(skus[a.SKU], skus[b.SKU]),
		cmp.Compare(s.racks[a.Rack], s.racks[b.Rack]),
		cmp.Compare(a.ID, b.ID),
	)
}

// pickZone returns the zone, among those with machines left, where the pool
// has the fewest machines (sign +1) or the most (sign -1); ties go to the
// lowest zone number.
func pickZone(byZone map[int32][]inventory.Machine, s spread, sign int) int32 {
	zones := make([]int32, 0, len(byZone))
	for z := range byZone {
		zones = append(zones, z)
	}
	slices.Sort(zones)
	best := zones[0]
	for _, z := range zones[1:] {
		if sign*(s.zones[z]-s.zones[best]) < 0 {
			best = z
		}
	}
	return best
}
