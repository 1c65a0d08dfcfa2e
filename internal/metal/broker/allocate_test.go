package broker

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-dev/strata/internal/metal/inventory"
)

var testSKUs = map[string]inventory.SKU{
	"small": {Name: "small", CPUCores: 32, MemoryGiB: 128, LocalDiskGiB: 1000},
	"large": {Name: "large", CPUCores: 64, MemoryGiB: 256, LocalDiskGiB: 1000},
	"gpu":   {Name: "gpu", CPUCores: 96, MemoryGiB: 1536, GPUs: 8, GPUModel: "nvidia-h100", LocalDiskGiB: 4000},
}

// fleet makes perZone machines of sku in each of zones MZs, on racks that
// cycle every racks machines.
func fleet(prefix, sku string, zones, perZone, racks int) []inventory.MachinePlacement {
	var ms []inventory.MachinePlacement
	for z := 1; z <= zones; z++ {
		for i := range perZone {
			ms = append(ms, inventory.MachinePlacement{
				ID:              fmt.Sprintf("%s-z%02d-%03d", prefix, z, i),
				MaintenanceZone: int32(z),
				Rack:            fmt.Sprintf("r%02d", i%racks),
				SKU:             sku,
			})
		}
	}
	return ms
}

func zoneCounts(ms []inventory.MachinePlacement) map[int32]int {
	c := map[int32]int{}
	for _, m := range ms {
		c[m.MaintenanceZone]++
	}
	return c
}

func uniform(zones, n int) map[int32]int {
	c := map[int32]int{}
	for z := 1; z <= zones; z++ {
		c[int32(z)] = n
	}
	return c
}

func TestPlanGrowBalancesZones(t *testing.T) {
	picked := planGrow(nil, fleet("m", "large", 20, 10, 5), testSKUs, 100)
	if diff := cmp.Diff(uniform(20, 5), zoneCounts(picked)); diff != "" {
		t.Errorf("per-zone counts (-want +got):\n%s", diff)
	}
}

func TestPlanGrowPrefersSmallestAdequateSKU(t *testing.T) {
	candidates := append(fleet("big", "gpu", 4, 2, 2), fleet("mid", "large", 4, 2, 2)...)
	candidates = append(candidates, fleet("low", "small", 4, 1, 1)...)
	picked := planGrow(nil, candidates, testSKUs, 8)
	got := map[string]int{}
	for _, m := range picked {
		got[m.SKU]++
	}
	// Four small ones (one per zone), then the large ones; no GPU machine.
	if diff := cmp.Diff(map[string]int{"small": 4, "large": 4}, got); diff != "" {
		t.Errorf("SKUs picked (-want +got):\n%s", diff)
	}
}

func TestPlanGrowSpreadsRacks(t *testing.T) {
	// One zone, 3 racks with 4 machines each: 6 picks land 2 per rack.
	picked := planGrow(nil, fleet("m", "large", 1, 12, 3), testSKUs, 6)
	racks := map[string]int{}
	for _, m := range picked {
		racks[m.Rack]++
	}
	if diff := cmp.Diff(map[string]int{"r00": 2, "r01": 2, "r02": 2}, racks); diff != "" {
		t.Errorf("per-rack counts (-want +got):\n%s", diff)
	}
}

func TestPlanGrowWithAShortZone(t *testing.T) {
	candidates := fleet("m", "large", 4, 10, 2)
	// Zone 3 has a single candidate left.
	var filtered []inventory.MachinePlacement
	for _, m := range candidates {
		if m.MaintenanceZone != 3 || m.ID == "m-z03-000" {
			filtered = append(filtered, m)
		}
	}
	picked := planGrow(nil, filtered, testSKUs, 13)
	if diff := cmp.Diff(map[int32]int{1: 4, 2: 4, 3: 1, 4: 4}, zoneCounts(picked)); diff != "" {
		t.Errorf("per-zone counts (-want +got):\n%s", diff)
	}
}

func TestPlanGrowCountsCurrentMachines(t *testing.T) {
	current := fleet("cur", "large", 2, 3, 1) // zones 1 and 2 hold 3 each
	picked := planGrow(current, fleet("m", "large", 4, 5, 1), testSKUs, 6)
	if diff := cmp.Diff(map[int32]int{3: 3, 4: 3}, zoneCounts(picked)); diff != "" {
		t.Errorf("per-zone counts (-want +got):\n%s", diff)
	}
}

func TestPlanGrowStopsWhenCandidatesRunOut(t *testing.T) {
	if got := planGrow(nil, fleet("m", "large", 2, 2, 1), testSKUs, 10); len(got) != 4 {
		t.Errorf("picked %d machines, want all 4 candidates", len(got))
	}
}

func TestPlanGrowPreferring(t *testing.T) {
	// The pool holds one machine in each of zones 1-4; the spare of a
	// machine that left zone 3 goes back to zone 3 when zones tie, and to
	// the emptiest zone otherwise.
	current := fleet("cur", "large", 4, 1, 1)
	tests := []struct {
		name    string
		current []inventory.MachinePlacement
		prefer  int32
		want    map[int32]int
	}{
		{"no preference: lowest zone", current, 0, map[int32]int{1: 1}},
		{"preferred zone among ties", current, 3, map[int32]int{3: 1}},
		{"balance first", current[1:], 3, map[int32]int{1: 1}}, // zone 1 is empty
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			picked := planGrowPreferring(tc.current, fleet("m", "large", 4, 2, 1), testSKUs, 1, tc.prefer)
			if diff := cmp.Diff(tc.want, zoneCounts(picked)); diff != "" {
				t.Errorf("per-zone picks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanShrinkReleasesEvenly(t *testing.T) {
	current := fleet("m", "large", 20, 5, 5)
	released := planShrink(current, current, testSKUs, 40)
	if diff := cmp.Diff(uniform(20, 2), zoneCounts(released)); diff != "" {
		t.Errorf("released per zone (-want +got):\n%s", diff)
	}
}

func TestPlanShrinkFromTheFullestZone(t *testing.T) {
	current := append(fleet("a", "large", 2, 2, 1), fleet("b", "large", 1, 3, 1)...) // zone 1: 5, zone 2: 2
	released := planShrink(current, current, testSKUs, 3)
	if diff := cmp.Diff(map[int32]int{1: 3}, zoneCounts(released)); diff != "" {
		t.Errorf("released per zone (-want +got):\n%s", diff)
	}
}

func TestSatisfies(t *testing.T) {
	cases := map[string]struct {
		sku     string
		profile inventory.NodeProfile
		want    bool
	}{
		"above the minimum":     {"large", inventory.NodeProfile{MinCPUCores: 32, MinMemoryGiB: 128}, true},
		"too few cores":         {"small", inventory.NodeProfile{MinCPUCores: 48}, false},
		"too little memory":     {"large", inventory.NodeProfile{MinMemoryGiB: 512}, false},
		"needs GPUs":            {"large", inventory.NodeProfile{MinGPUs: 1}, false},
		"GPU model matches":     {"gpu", inventory.NodeProfile{MinGPUs: 8, GPUModel: "nvidia-h100"}, true},
		"GPU model differs":     {"gpu", inventory.NodeProfile{MinGPUs: 1, GPUModel: "nvidia-a100"}, false},
		"GPU model without GPU": {"large", inventory.NodeProfile{GPUModel: "nvidia-h100"}, false},
		"too little disk":       {"large", inventory.NodeProfile{MinLocalDiskGiB: 2000}, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := satisfies(testSKUs[tc.sku], tc.profile); got != tc.want {
				t.Errorf("satisfies(%s) = %v, want %v", tc.sku, got, tc.want)
			}
		})
	}
}
