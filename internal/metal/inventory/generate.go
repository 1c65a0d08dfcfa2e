package inventory

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
)

// GenerateOptions describe a simulated datacenter. Zero fields take their
// defaults (see Default).
type GenerateOptions struct {
	// Seed makes the layout reproducible: the same options give the same
	// datacenter.
	Seed       int64
	Datacenter string
	Region     string
	// Machines is how many machines the datacenter has.
	Machines int
	// MaintenanceZones is how many MZs the machines are striped into.
	MaintenanceZones int32
	// MachinesPerRack is the most machines a rack holds; machines are spread
	// evenly over as few racks as that allows.
	MachinesPerRack int
}

// Generator defaults.
const (
	DefaultDatacenter       = "dc1"
	DefaultRegion           = "local"
	DefaultMachines         = 2000
	DefaultMaintenanceZones = 20
	DefaultMachinesPerRack  = 40
	// MaxMaintenanceZones bounds GenerateOptions.MaintenanceZones.
	MaxMaintenanceZones = 100
	// MaxMachines bounds GenerateOptions.Machines: a region's worth. A
	// larger number is a typo, and laying it out would exhaust memory.
	MaxMachines = 1_000_000
)

// InitialSoftware is what a generated machine runs.
var InitialSoftware = Software{OSImage: "strata-os-2026.11", Kernel: "6.12.40", NodeConfig: ""}

// Default returns o with its zero fields set to their defaults.
func (o GenerateOptions) Default() GenerateOptions {
	if o.Datacenter == "" {
		o.Datacenter = DefaultDatacenter
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.Machines == 0 {
		o.Machines = DefaultMachines
	}
	if o.MaintenanceZones == 0 {
		o.MaintenanceZones = DefaultMaintenanceZones
	}
	if o.MachinesPerRack == 0 {
		o.MachinesPerRack = DefaultMachinesPerRack
	}
	return o
}

// Validate reports what is wrong with o once defaulted.
func (o GenerateOptions) Validate() error {
	o = o.Default()
	var errs []error
	if o.Machines < 1 || o.Machines > MaxMachines {
		errs = append(errs, fmt.Errorf("machines must be between 1 and %d, got %d", MaxMachines, o.Machines))
	}
	if o.MaintenanceZones < 1 || o.MaintenanceZones > MaxMaintenanceZones {
		errs = append(errs, fmt.Errorf("maintenance zones must be between 1 and %d, got %d", MaxMaintenanceZones, o.MaintenanceZones))
	} else if o.Machines >= 1 && int(o.MaintenanceZones) > o.Machines {
		errs = append(errs, fmt.Errorf("maintenance zones (%d) must not outnumber machines (%d)", o.MaintenanceZones, o.Machines))
	}
	if o.MachinesPerRack < 1 {
		errs = append(errs, fmt.Errorf("machines per rack must be at least 1, got %d", o.MachinesPerRack))
	}
	return errors.Join(errs...)
}

// skuMix is the catalog of simulated SKUs and the share of machines of each,
// in percent (they add up to 100).
var skuMix = []struct {
	sku     SKU
	percent int
}{
	{SKU{Name: "general-32", Arch: "amd64", CPUCores: 32, MemoryGiB: 128, LocalDiskGiB: 960}, 25},
	{SKU{Name: "general-64", Arch: "amd64", CPUCores: 64, MemoryGiB: 256, LocalDiskGiB: 1920}, 45},
	{SKU{Name: "highmem-64", Arch: "amd64", CPUCores: 64, MemoryGiB: 1024, LocalDiskGiB: 1920}, 12},
	{SKU{Name: "storage-32", Arch: "amd64", CPUCores: 32, MemoryGiB: 256, LocalDiskGiB: 30000}, 10},
	{SKU{Name: "gpu-h100", Arch: "amd64", CPUCores: 96, MemoryGiB: 1536, GPUs: 8, GPUModel: "nvidia-h100", LocalDiskGiB: 7680}, 8},
}

// Generate lays out a simulated datacenter: racks named dc1-r001, machines
// dc1-r001-u01, every SKU of the catalog, all machines available and healthy.
//
// MZs are a unit of rollout, not a fault domain, so they are striped: the
// machines taken rack by rack cycle through the MZs, which gives every rack
// machines of many MZs and every MZ an equal share (±1); within a rack the
// cycle starts at a slot that depends on the rack. SKUs are dealt in whole
// rows of one machine per MZ, rows shuffled by the seed, so every MZ also
// holds an equal share (±1) of every SKU.
//
// Options are defaulted; invalid ones (see Validate) give an empty
// datacenter, so call Validate first.
func Generate(opts GenerateOptions) (Datacenter, []Rack, []SKU, []Machine) {
	if opts.Validate() != nil {
		return Datacenter{}, nil, nil, nil
	}
	o := opts.Default()
	n, zones := o.Machines, int(o.MaintenanceZones)
	dc := Datacenter{Name: o.Datacenter, Region: o.Region, MaintenanceZones: o.MaintenanceZones}

	skus := make([]SKU, len(skuMix))
	shares := make([]int, len(skuMix))
	for i, m := range skuMix {
		skus[i], shares[i] = m.sku, m.percent
	}
	// skuOf[j] is the SKU of the j-th machine in MZ-striped order: SKUs
	// in catalog order, each a contiguous run, so each run covers every
	// MZ equally (±1).
	skuOf := make([]string, 0, n)
	for i, count := range apportion(n, shares) {
		for range count {
			skuOf = append(skuOf, skus[i].Name)
		}
	}
	// Shuffle whole rows (one machine per MZ) to mix SKUs across racks
	// without moving a SKU to another MZ; a trailing partial row stays.
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0x5354524154412d44)) // "STRATA-D"
	rows := make([]int, n/zones)
	for i := range rows {
		rows[i] = i
	}
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })

	rackCount := (n + o.MachinesPerRack - 1) / o.MachinesPerRack
	rackWidth := max(3, len(strconv.Itoa(rackCount)))
	slotWidth := max(2, len(strconv.Itoa(o.MachinesPerRack)))
	racks := make([]Rack, rackCount)
	machines := make([]Machine, 0, n)
	for r := range racks {
		racks[r] = Rack{Name: fmt.Sprintf("%s-r%0*d", dc.Name, rackWidth, r+1), Datacenter: dc.Name}
		// Spread machines evenly: the first n%rackCount racks hold one more.
		size := n / rackCount
		if r < n%rackCount {
			size++
		}
		start := len(machines)
		for slot := range size {
			// The rack holds positions [start, start+size) of the
			// MZ-striped order; rotating them by the rack number keeps
			// a slot position from meaning the same MZ in every rack.
			i := start + (slot+r)%size
			row, zone := i/zones, i%zones
			j := i
			if row < len(rows) {
				j = rows[row]*zones + zone
			}
			machines = append(machines, Machine{
				ID:              fmt.Sprintf("%s-u%0*d", racks[r].Name, slotWidth, slot+1),
				Datacenter:      dc.Name,
				MaintenanceZone: int32(zone + 1),
				Rack:            racks[r].Name,
				SKU:             skuOf[j],
				State:           MachineAvailable,
				Healthy:         true,
				Software:        InitialSoftware,
				Provision:       ProvisionClean,
			})
		}
	}
	return dc, racks, skus, machines
}

// apportion splits n into parts proportional to shares by largest
// remainder, so the parts add up to n exactly.
func apportion(n int, shares []int) []int {
	total := 0
	for _, s := range shares {
		total += s
	}
	parts := make([]int, len(shares))
	remainders := make([]int, len(shares))
	left := n
	for i, s := range shares {
		parts[i] = n * s / total
		remainders[i] = n * s % total
		left -= parts[i]
	}
	for ; left > 0; left-- {
		best := 0
		for i := range remainders {
			if remainders[i] > remainders[best] {
				best = i
			}
		}
		parts[best]++
		remainders[best] = -1
	}
	return parts
}

// Seed stores the datacenter Generate(opts) describes, in one transaction,
// unless a datacenter of that name exists already. It reports whether it
// created it; a second call changes nothing.
func Seed(ctx context.Context, store Store, opts GenerateOptions) (created bool, err error) {
	if err := opts.Validate(); err != nil {
		return false, fmt.Errorf("invalid datacenter options: %w", err)
	}
	dc, racks, skus, machines := Generate(opts)
	err = store.InTx(ctx, func(ctx context.Context, tx Tx) error {
		created = false // InTx may run this more than once
		dcs, err := tx.ListDatacenters(ctx)
		if err != nil {
			return err
		}
		for _, existing := range dcs {
			if existing.Name == dc.Name {
				return nil
			}
		}
		if err := tx.SeedDatacenter(ctx, dc, racks, skus, machines); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("creating the simulated datacenter %q: %w", dc.Name, err)
	}
	return created, nil
}
