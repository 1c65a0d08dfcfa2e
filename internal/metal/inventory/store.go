package inventory

import "context"

// Store is the inventory database.
type Store interface {
	// InTx runs fn in one serializable transaction and commits it when fn
	// returns nil. Transactions that lose a serialization race are retried,
	// so fn must have no effects outside tx.
	InTx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	Close() error
}

// Tx is what can be read and written inside a transaction. Get methods return
// ErrNotFound; Insert methods ErrAlreadyExists; Update and Delete methods
// ErrNotFound when the row is gone.
type Tx interface {
	// Datacenter layout. SeedDatacenter inserts a datacenter with its racks,
	// SKUs (those not yet present) and machines.
	SeedDatacenter(ctx context.Context, dc Datacenter, racks []Rack, skus []SKU, machines []Machine) error
	ListDatacenters(ctx context.Context) ([]Datacenter, error)
	ListRacks(ctx context.Context, datacenter string) ([]Rack, error)
	ListSKUs(ctx context.Context) ([]SKU, error)

	// Machines.
	GetMachine(ctx context.Context, id string) (Machine, error)
	ListMachines(ctx context.Context, f MachineFilter) ([]Machine, error)
	// UpdateMachine writes every mutable field of m (state, health,
	// software, pool) and sets UpdatedAt.
	UpdateMachine(ctx context.Context, m Machine) error
	// ListPlacements is ListMachines for the placement columns only: cheap
	// enough to read a datacenter's worth when choosing machines.
	ListPlacements(ctx context.Context, f MachineFilter) ([]MachinePlacement, error)
	// AssignMachines sets the pool ("" for none) and state of the machines in
	// one statement per batch; ErrConflict if one of them does not exist.
	AssignMachines(ctx context.Context, ids []string, pool string, state MachineState) error
	// CountMachines counts machines by (pool, state, maintenance zone) for
	// the machines that match the filter (AfterID and Limit are ignored).
	CountMachines(ctx context.Context, f MachineFilter) ([]MachineCount, error)

	// Node profiles.
	InsertProfile(ctx context.Context, p NodeProfile) error
	GetProfile(ctx context.Context, name string) (NodeProfile, error)
	ListProfiles(ctx context.Context) ([]NodeProfile, error)
	UpdateProfile(ctx context.Context, p NodeProfile) error
	DeleteProfile(ctx context.Context, name string) error

	// Pools.
	InsertPool(ctx context.Context, p Pool) error
	GetPool(ctx context.Context, name string) (Pool, error)
	ListPools(ctx context.Context) ([]Pool, error)
	UpdatePool(ctx context.Context, p Pool) error
	DeletePool(ctx context.Context, name string) error

	// Disruptions and their audit trail.
	InsertDisruption(ctx context.Context, d Disruption) error
	GetDisruption(ctx context.Context, id string) (Disruption, error)
	ListDisruptions(ctx context.Context, f DisruptionFilter) ([]Disruption, error)
	UpdateDisruption(ctx context.Context, d Disruption) error
	InsertEvent(ctx context.Context, e DisruptionEvent) error
	ListEvents(ctx context.Context, disruptionID string) ([]DisruptionEvent, error)
}

// MachineCount is one group of CountMachines.
type MachineCount struct {
	Pool            string
	State           MachineState
	MaintenanceZone int32
	Count           int
}
