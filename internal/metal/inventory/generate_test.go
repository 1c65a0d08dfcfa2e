package inventory

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGenerateDeterministic(t *testing.T) {
	opts := GenerateOptions{Seed: 7, Machines: 300, MaintenanceZones: 10, MachinesPerRack: 30}
	dc1, racks1, skus1, machines1 := Generate(opts)
	dc2, racks2, skus2, machines2 := Generate(opts)
	if diff := cmp.Diff(dc1, dc2); diff != "" {
		t.Errorf("datacenter differs between runs (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(racks1, racks2); diff != "" {
		t.Errorf("racks differ between runs (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(skus1, skus2); diff != "" {
		t.Errorf("SKUs differ between runs (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(machines1, machines2); diff != "" {
		t.Errorf("machines differ between runs (-first +second):\n%s", diff)
	}

	opts.Seed = 8
	_, _, _, other := Generate(opts)
	if cmp.Equal(machines1, other) {
		t.Errorf("seeds 7 and 8 gave the same machines")
	}
}

func TestGenerateDefaults(t *testing.T) {
	dc, racks, skus, machines := Generate(GenerateOptions{})
	if diff := cmp.Diff(Datacenter{Name: "dc1", Region: "local", MaintenanceZones: 20}, dc); diff != "" {
		t.Errorf("datacenter (-want +got):\n%s", diff)
	}
	if got := len(racks); got != 50 {
		t.Errorf("got %d racks, want 50", got)
	}
	if got := len(skus); got != 5 {
		t.Errorf("got %d SKUs, want 5", got)
	}
	if racks[0].Name != "dc1-r001" || machines[0].ID != "dc1-r001-u01" || machines[len(machines)-1].ID != "dc1-r050-u40" {
		t.Errorf("names: first rack %q, first machine %q, last machine %q; want dc1-r001, dc1-r001-u01, dc1-r050-u40",
			racks[0].Name, machines[0].ID, machines[len(machines)-1].ID)
	}
	perSKU := map[string]int{}
	for _, m := range machines {
		perSKU[m.SKU]++
	}
	want := map[string]int{"general-32": 500, "general-64": 900, "highmem-64": 240, "storage-32": 200, "gpu-h100": 160}
	if diff := cmp.Diff(want, perSKU); diff != "" {
		t.Errorf("machines per SKU (-want +got):\n%s", diff)
	}
	wantFirst := Machine{
		ID: "dc1-r001-u01", Datacenter: "dc1", MaintenanceZone: 1, Rack: "dc1-r001", SKU: machines[0].SKU,
		State: MachineAvailable, Healthy: true,
		Software: Software{OSImage: "strata-os-2026.11", Kernel: "6.12.40"}, Provision: ProvisionClean,
	}
	if diff := cmp.Diff(wantFirst, machines[0]); diff != "" {
		t.Errorf("first machine (-want +got):\n%s", diff)
	}
}

// TestGenerateStriping checks the layout properties the broker relies on.
func TestGenerateStriping(t *testing.T) {
	tests := []GenerateOptions{
		{Seed: 1},
		{Seed: 2, Machines: 2001, MaintenanceZones: 20, MachinesPerRack: 40},
		{Seed: 3, Machines: 97, MaintenanceZones: 7, MachinesPerRack: 13},
		{Seed: 4, Machines: 50, MaintenanceZones: 50, MachinesPerRack: 10},
		{Seed: 5, Machines: 1000, MaintenanceZones: 3, MachinesPerRack: 48},
		{Seed: 6, Machines: 5, MaintenanceZones: 1, MachinesPerRack: 1},
		{Seed: 7, Machines: 12000, MaintenanceZones: 100, MachinesPerRack: 48},
	}
	for _, opts := range tests {
		o := opts.Default()
		name := fmt.Sprintf("machines=%d,mzs=%d,perRack=%d", o.Machines, o.MaintenanceZones, o.MachinesPerRack)
		t.Run(name, func(t *testing.T) {
			dc, racks, _, machines := Generate(opts)
			if len(machines) != o.Machines {
				t.Fatalf("got %d machines, want %d", len(machines), o.Machines)
			}
			zones := int(dc.MaintenanceZones)

			ids := map[string]bool{}
			rackZones := map[string]map[int32]bool{}
			rackSize := map[string]int{}
			perZone := map[int32]int{}
			perSKUZone := map[string]map[int32]int{}
			for _, m := range machines {
				if ids[m.ID] {
					t.Errorf("duplicate machine ID %q", m.ID)
				}
				ids[m.ID] = true
				if m.MaintenanceZone < 1 || int(m.MaintenanceZone) > zones {
					t.Errorf("machine %q in MZ %d, outside 1..%d", m.ID, m.MaintenanceZone, zones)
				}
				if rackZones[m.Rack] == nil {
					rackZones[m.Rack] = map[int32]bool{}
				}
				rackZones[m.Rack][m.MaintenanceZone] = true
				rackSize[m.Rack]++
				perZone[m.MaintenanceZone]++
				if perSKUZone[m.SKU] == nil {
					perSKUZone[m.SKU] = map[int32]int{}
				}
				perSKUZone[m.SKU][m.MaintenanceZone]++
			}

			minZonesPerRack := min(zones, o.MachinesPerRack) / 2
			for _, r := range racks {
				if rackSize[r.Name] > o.MachinesPerRack {
					t.Errorf("rack %q holds %d machines, more than %d", r.Name, rackSize[r.Name], o.MachinesPerRack)
				}
				if got := len(rackZones[r.Name]); got < minZonesPerRack {
					t.Errorf("rack %q holds machines of %d MZs, want at least %d", r.Name, got, minZonesPerRack)
				}
			}
			if len(rackSize) != len(racks) {
				t.Errorf("machines are in %d racks, generator returned %d", len(rackSize), len(racks))
			}

			if spread := spreadOver(perZone, zones); spread > 1 {
				t.Errorf("machines per MZ differ by %d, want at most 1: %v", spread, perZone)
			}
			for sku, counts := range perSKUZone {
				total := 0
				for _, c := range counts {
					total += c
				}
				if total < zones {
					continue
				}
				if spread := spreadOver(counts, zones); spread > 1 {
					t.Errorf("machines of SKU %s per MZ differ by %d, want at most 1: %v", sku, spread, counts)
				}
			}
		})
	}
}

// spreadOver is max minus min of counts over MZs 1..zones (missing MZs count 0).
func spreadOver(counts map[int32]int, zones int) int {
	lo, hi := counts[1], counts[1]
	for z := int32(1); z <= int32(zones); z++ {
		lo, hi = min(lo, counts[z]), max(hi, counts[z])
	}
	return hi - lo
}

func TestGenerateOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    GenerateOptions
		wantErr string // substring; "" means valid
	}{
		{name: "defaults", opts: GenerateOptions{}},
		{name: "one machine", opts: GenerateOptions{Machines: 1, MaintenanceZones: 1}},
		{name: "negative machines", opts: GenerateOptions{Machines: -1}, wantErr: "machines must be between 1 and 1000000, got -1"},
		{name: "more machines than a region", opts: GenerateOptions{Machines: 1 << 40}, wantErr: "machines must be between 1 and 1000000, got 1099511627776"},
		{name: "negative MZs", opts: GenerateOptions{MaintenanceZones: -3}, wantErr: "maintenance zones must be between 1 and 100"},
		{name: "too many MZs", opts: GenerateOptions{MaintenanceZones: 101}, wantErr: "maintenance zones must be between 1 and 100"},
		{name: "more MZs than machines", opts: GenerateOptions{Machines: 10}, wantErr: "maintenance zones (20) must not outnumber machines (10)"},
		{name: "negative rack size", opts: GenerateOptions{MachinesPerRack: -40}, wantErr: "machines per rack must be at least 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.wantErr != "" {
				if _, _, _, machines := Generate(tc.opts); machines != nil {
					t.Errorf("Generate(invalid) returned %d machines, want none", len(machines))
				}
			}
		})
	}
}
