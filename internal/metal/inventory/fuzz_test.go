package inventory

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzGenerate: options that validate give exactly the datacenter they
// describe (every machine once, racks no fuller than asked, MZs and each
// SKU striped evenly, the same layout for the same options); options that do
// not validate are refused before anything is laid out.
func FuzzGenerate(f *testing.F) {
	f.Add(int64(7), "dc1", 300, int32(10), 30)
	f.Add(int64(1), "", 0, int32(0), 0)
	f.Add(int64(-3), "x", 5, int32(5), 1)
	f.Add(int64(0), "dc2", 1, int32(2), 40)
	f.Add(int64(9), "dc3", 1<<40, int32(20), 40)
	f.Fuzz(func(t *testing.T, seed int64, datacenter string, machines int, zones int32, perRack int) {
		opts := GenerateOptions{Seed: seed, Datacenter: datacenter, Machines: machines, MaintenanceZones: zones, MachinesPerRack: perRack}
		if err := opts.Validate(); err != nil {
			if dc, racks, skus, ms := Generate(opts); dc.Name != "" || racks != nil || skus != nil || ms != nil {
				t.Fatalf("invalid options (%v) laid out a datacenter", err)
			}
			return
		}
		o := opts.Default()
		if o.Machines > 5000 {
			return // valid, but too big to lay out at every fuzzing step
		}
		dc, racks, skus, ms := Generate(opts)
		if len(ms) != o.Machines || dc.MaintenanceZones != o.MaintenanceZones || dc.Name != o.Datacenter {
			t.Fatalf("%d machines in %d MZs of %q, want %d in %d of %q", len(ms), dc.MaintenanceZones, dc.Name, o.Machines, o.MaintenanceZones, o.Datacenter)
		}
		ids := map[string]bool{}
		perRackCount := map[string]int{}
		perZone := map[int32]int{}
		perZoneSKU := map[string]map[int32]int{}
		for _, m := range ms {
			if ids[m.ID] {
				t.Fatalf("machine %s twice", m.ID)
			}
			ids[m.ID] = true
			perRackCount[m.Rack]++
			if m.MaintenanceZone < 1 || m.MaintenanceZone > o.MaintenanceZones {
				t.Fatalf("machine %s in MZ %d, want 1..%d", m.ID, m.MaintenanceZone, o.MaintenanceZones)
			}
			perZone[m.MaintenanceZone]++
			if perZoneSKU[m.SKU] == nil {
				perZoneSKU[m.SKU] = map[int32]int{}
			}
			perZoneSKU[m.SKU][m.MaintenanceZone]++
		}
		if len(perRackCount) != len(racks) {
			t.Fatalf("machines in %d racks, %d racks laid out", len(perRackCount), len(racks))
		}
		for rack, n := range perRackCount {
			if n > o.MachinesPerRack {
				t.Fatalf("rack %s holds %d machines, at most %d asked", rack, n, o.MachinesPerRack)
			}
		}
		even := func(what string, counts map[int32]int) {
			lo, hi := o.Machines, 0
			for z := int32(1); z <= o.MaintenanceZones; z++ {
				lo, hi = min(lo, counts[z]), max(hi, counts[z])
			}
			if hi-lo > 1 {
				t.Fatalf("%s: MZs hold %d to %d, want within one", what, lo, hi)
			}
		}
		even("machines", perZone)
		for _, s := range skus {
			even("SKU "+s.Name, perZoneSKU[s.Name])
		}
		dc2, racks2, skus2, ms2 := Generate(opts)
		if diff := cmp.Diff([]any{dc, racks, skus, ms}, []any{dc2, racks2, skus2, ms2}); diff != "" {
			t.Fatalf("the same options laid out another datacenter (-first +second):\n%s", diff)
		}
	})
}
