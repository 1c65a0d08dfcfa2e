package inventory

import (
	"context"
	"time"
)

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

	// SharedKey returns the secret named name that every broker replica of
	// the inventory shares, storing fresh as that secret if there is none
	// yet (the first replica to ask wins; the others read its secret).
	SharedKey(ctx context.Context, name string, fresh []byte) ([]byte, error)

	// Machines.
	GetMachine(ctx context.Context, id string) (Machine, error)
	ListMachines(ctx context.Context, f MachineFilter) ([]Machine, error)
	// LastMachineUpdate is the latest UpdatedAt of any machine, the zero
	// time when there are none.
	LastMachineUpdate(ctx context.Context) (time.Time, error)
	// UpdateMachine writes every mutable field of m (state, health,
	// software, pool, provision) and sets UpdatedAt.
	UpdateMachine(ctx context.Context, m Machine) error
	// ListPlacements is ListMachines for the placement columns only: cheap
	// enough to read a datacenter's worth when choosing machines.
	ListPlacements(ctx context.Context, f MachineFilter) ([]MachinePlacement, error)
	// AllocateMachines puts the machines in pool, allocated, in one
	// statement per batch. Only available, clean, healthy machines of no
	// pool move; ErrConflict (and nothing written) if one of them is not.
	AllocateMachines(ctx context.Context, ids []string, pool string) error
	// ReleaseMachines takes the machines out of their pool, available; those
	// joining or joined become wiping (ProvisionState.Released).
	// ErrConflict if one of them does not exist.
	ReleaseMachines(ctx context.Context, ids []string) error
	// UpdateProvision moves the machines u names that are still in u.From
	// (and in u.Pool, when set) to u.To, and reports how many moved; the
	// others are left as they are.
	UpdateProvision(ctx context.Context, u ProvisionUpdate) (int, error)
	// CountMachines counts machines by (pool, state, provision, maintenance
	// zone, healthy) for the machines that match the filter (AfterID and
	// Limit are ignored).
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

	// Savepoint marks where the transaction is, under name, so that
	// EndSavepoint can undo what was written since (keep false) or keep
	// it (keep true): several independent changes share one transaction
	// and one commit, and one that fails leaves the others.
	// After a serialization failure the whole transaction must run again,
	// and EndSavepoint returns the error that says so.
	Savepoint(ctx context.Context, name string) error
	EndSavepoint(ctx context.Context, name string, keep bool) error
}

// MachineCount is one group of CountMachines.
type MachineCount struct {
	Pool            string
	State           MachineState
	Provision       ProvisionState
	MaintenanceZone int32
	Healthy         bool
	Count           int
}

// ProvisionUpdate is a guarded change of provision state, for many machines
// at once: the provisioning loop writes its completions in batches, and a
// machine released meanwhile must not be marked joined.
type ProvisionUpdate struct {
	IDs  []string
	From ProvisionState
	// Pool, when set, also requires the machines to be in that pool.
	Pool string
	To   ProvisionState
	// NodeConfig, when not nil, becomes the machines' software node config.
	NodeConfig *string
}
