package localdc

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/strata-dev/strata/internal/metal/inventory"
)

// inventoryFile is the broker's SQLite database in the home.
const inventoryFile = "broker.db"

// inventoryFiles are the SQLite database and its write-ahead log.
var inventoryFiles = []string{inventoryFile, inventoryFile + "-wal", inventoryFile + "-shm"}

// inventoryDSN is the broker's database: --db, or SQLite in the home.
func (r *Running) inventoryDSN() string {
	if r.opts.DB != "" {
		return r.opts.DB
	}
	return filepath.Join(r.opts.Home, inventoryFile)
}

// replicatedInventory says whether the inventory is PostgreSQL, which
// several broker replicas can serve; SQLite is single-replica.
func (o *Options) replicatedInventory() bool {
	return strings.HasPrefix(o.DB, "postgres://") || strings.HasPrefix(o.DB, "postgresql://")
}

// seedInventory opens the broker's database, seeds the simulated datacenter
// on first use, and closes it: the broker processes open it themselves.
func (r *Running) seedInventory(ctx context.Context) error {
	store, err := inventory.Open(ctx, r.inventoryDSN())
	if err != nil {
		return fmt.Errorf("opening the inventory: %w", err)
	}
	defer store.Close() //nolint:errcheck // only read and seeded here
	seeded, err := inventory.Seed(ctx, store, inventory.GenerateOptions{
		Seed: r.opts.Seed, Datacenter: localDatacenterName, Machines: r.opts.Machines,
	})
	if err != nil {
		return fmt.Errorf("seeding the simulated datacenter: %w", err)
	}
	if !seeded {
		return nil
	}
	if err := store.InTx(ctx, func(ctx context.Context, tx inventory.Tx) error {
		for _, p := range defaultProfiles {
			if err := tx.InsertProfile(ctx, p); err != nil && !errors.Is(err, inventory.ErrAlreadyExists) {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("creating the default node profiles: %w", err)
	}
	r.opts.Logger.Info("Seeded the simulated datacenter", "datacenter", localDatacenterName, "seed", r.opts.Seed)
	return nil
}

// DefaultProfile is the node profile of the pools `strata up` creates.
const DefaultProfile = "general"

// defaultProfiles are the node profiles of a new local datacenter, one per
// kind of machine its catalog has.
var defaultProfiles = []inventory.NodeProfile{
	{Name: DefaultProfile, MinCPUCores: 32, MinMemoryGiB: 128, NodeConfig: "kubelet-1.37-general"},
	{Name: "highmem", MinCPUCores: 64, MinMemoryGiB: 1024, NodeConfig: "kubelet-1.37-highmem"},
	{Name: "storage", MinCPUCores: 32, MinMemoryGiB: 256, MinLocalDiskGiB: 30000, NodeConfig: "kubelet-1.37-storage"},
	{Name: "gpu-h100", MinCPUCores: 96, MinMemoryGiB: 1536, MinGPUs: 8, GPUModel: "nvidia-h100", NodeConfig: "kubelet-1.37-gpu"},
}
