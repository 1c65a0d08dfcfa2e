package localdc

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/strata-dev/strata/internal/metal/inventory"
)

// inventoryFile is the broker's SQLite database in the home.
const inventoryFile = "broker.db"

// inventoryFiles are the SQLite database and its write-ahead log.
var inventoryFiles = []string{inventoryFile, inventoryFile + "-wal", inventoryFile + "-shm"}

// openInventory opens the broker's database and seeds the simulated
// datacenter on first use.
func (r *Running) openInventory(ctx context.Context) error {
	dsn := r.opts.DB
	if dsn == "" {
		dsn = filepath.Join(r.opts.Home, inventoryFile)
	}
	store, err := inventory.Open(ctx, dsn)
	if err != nil {
		return fmt.Errorf("opening the inventory: %w", err)
	}
	r.inventory = store
	seeded, err := inventory.Seed(ctx, store, inventory.GenerateOptions{
		Seed: r.opts.Seed, Datacenter: localDatacenterName, Machines: r.opts.Machines,
	})
	if err != nil {
		return fmt.Errorf("seeding the simulated datacenter: %w", err)
	}
	if seeded {
		r.opts.Logger.Info("Seeded the simulated datacenter", "datacenter", localDatacenterName, "seed", r.opts.Seed)
	}
	return nil
}

func (r *Running) closeInventory() {
	if r.inventory != nil {
		_ = r.inventory.Close()
		r.inventory = nil
	}
}
