package inventory

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strata-dev/strata/internal/sqldb"
)

// tx is the Tx of a sqlStore. Every query is written once with ? placeholders
// and rebound for the engine.
type tx struct {
	tx     *sql.Tx
	engine sqldb.Engine
	now    func() time.Time
	// retry is set when a statement lost a serialization race, so InTx
	// retries even if fn swallowed the error.
	retry bool
	// layout is the store's; nil reads every placement column.
	layout *layout
	// kept holds machine lists this transaction read, kept up to date by
	// its writes (see keptLists); nil when it holds none.
	kept *keptLists
}

var _ Tx = (*tx)(nil)

// note records a retryable error and returns err.
func (t *tx) note(err error) error {
	if err != nil && isRetryable(err) {
		t.retry = true
	}
	return err
}

// exec runs a statement and returns the number of rows it affected;
// constraint violations come back as ErrAlreadyExists or ErrConflict.
func (t *tx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := t.tx.ExecContext(ctx, t.engine.Rebind(query), args...)
	if err != nil {
		return 0, mapError(t.note(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, t.note(err)
	}
	return n, nil
}

// execOne runs an UPDATE or DELETE of one row by key: ErrNotFound when no
// row matched.
func (t *tx) execOne(ctx context.Context, query string, args ...any) error {
	n, err := t.exec(ctx, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

// queryAll runs a query and scans every row.
func queryAll[T any](ctx context.Context, t *tx, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := t.tx.QueryContext(ctx, t.engine.Rebind(query), args...)
	if err != nil {
		return nil, t.note(err)
	}
	defer func() { _ = rows.Close() }()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, t.note(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, t.note(err)
	}
	return out, nil
}

// queryOne runs a query for one row: ErrNotFound when there is none.
func queryOne[T any](ctx context.Context, t *tx, scan func(scanner) (T, error), query string, args ...any) (T, error) {
	v, err := scan(t.tx.QueryRowContext(ctx, t.engine.Rebind(query), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, ErrNotFound
	}
	return v, t.note(err)
}

// where joins conditions into a WHERE clause ("" when there are none).
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// stamp returns t, or now when t is zero: inserts keep a caller's timestamp.
func (t *tx) stamp(ts time.Time) int64 {
	if ts.IsZero() {
		return nanos(t.now())
	}
	return nanos(ts)
}

// nullable stores "" as NULL, for optional references.
func nullable(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

// Savepoint implements Tx. name is an identifier the caller chooses, never
// user input.
func (t *tx) Savepoint(ctx context.Context, name string) error {
	if _, err := t.exec(ctx, `SAVEPOINT `+name); err != nil {
		return fmt.Errorf("taking savepoint %s: %w", name, err)
	}
	return nil
}

// EndSavepoint implements Tx.
func (t *tx) EndSavepoint(ctx context.Context, name string, keep bool) error {
	if t.retry {
		// The transaction lost a serialization race: on PostgreSQL it
		// is aborted, and nothing of it may count.
		return errors.New("the transaction hit a serialization failure and runs again")
	}
	if !keep {
		t.kept = nil // the kept lists may hold what is undone
		if _, err := t.exec(ctx, `ROLLBACK TO SAVEPOINT `+name); err != nil {
			return fmt.Errorf("undoing the writes since savepoint %s: %w", name, err)
		}
	}
	if _, err := t.exec(ctx, `RELEASE SAVEPOINT `+name); err != nil {
		return fmt.Errorf("releasing savepoint %s: %w", name, err)
	}
	return nil
}

// Datacenter layout.

// SeedDatacenter inserts dc, its racks, the SKUs not yet present and the
// machines. Machines without UpdatedAt get the current time.
func (t *tx) SeedDatacenter(ctx context.Context, dc Datacenter, racks []Rack, skus []SKU, machines []Machine) error {
	t.kept = nil
	if err := t.seed(ctx, dc, racks, skus, machines); err != nil {
		return fmt.Errorf("seeding datacenter %q: %w", dc.Name, err)
	}
	return nil
}

func (t *tx) seed(ctx context.Context, dc Datacenter, racks []Rack, skus []SKU, machines []Machine) error {
	if _, err := t.exec(ctx, `INSERT INTO datacenters (name, region, maintenance_zones) VALUES (?, ?, ?)`,
		dc.Name, dc.Region, dc.MaintenanceZones); err != nil {
		return fmt.Errorf("inserting the datacenter: %w", err)
	}
	for _, r := range racks {
		if r.Datacenter != dc.Name {
			return fmt.Errorf("rack %q is in datacenter %q", r.Name, r.Datacenter)
		}
		if _, err := t.exec(ctx, `INSERT INTO racks (name, datacenter) VALUES (?, ?)`, r.Name, r.Datacenter); err != nil {
			return fmt.Errorf("inserting rack %q: %w", r.Name, err)
		}
	}
	for _, s := range skus {
		if _, err := t.exec(ctx, `INSERT INTO skus (name, arch, cpu_cores, memory_gib, gpus, gpu_model, local_disk_gib)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			s.Name, s.Arch, s.CPUCores, s.MemoryGiB, s.GPUs, s.GPUModel, s.LocalDiskGiB); err != nil {
			return fmt.Errorf("inserting SKU %q: %w", s.Name, err)
		}
	}
	for _, m := range machines {
		if m.Datacenter != dc.Name {
			return fmt.Errorf("machine %q is in datacenter %q", m.ID, m.Datacenter)
		}
		if m.MaintenanceZone < 1 || m.MaintenanceZone > dc.MaintenanceZones {
			return fmt.Errorf("machine %q: maintenance zone %d is outside 1..%d", m.ID, m.MaintenanceZone, dc.MaintenanceZones)
		}
		if m.Provision == "" {
			m.Provision = ProvisionClean
		}
		if _, err := t.exec(ctx, `INSERT INTO machines (`+machineColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.ID, m.Datacenter, m.MaintenanceZone, m.Rack, m.SKU, string(m.State), m.Healthy, m.HealthMessage,
			m.Software.OSImage, m.Software.Kernel, m.Software.NodeConfig, nullable(m.Pool), string(m.Provision),
			t.stamp(m.UpdatedAt)); err != nil {
			return fmt.Errorf("inserting machine %q: %w", m.ID, err)
		}
	}
	return nil
}

// ListDatacenters returns every datacenter by name.
func (t *tx) ListDatacenters(ctx context.Context) ([]Datacenter, error) {
	dcs, err := queryAll(ctx, t, func(s scanner) (Datacenter, error) {
		var dc Datacenter
		err := s.Scan(&dc.Name, &dc.Region, &dc.MaintenanceZones)
		return dc, err
	}, `SELECT name, region, maintenance_zones FROM datacenters ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing datacenters: %w", err)
	}
	return dcs, nil
}

// SharedKey returns the secret named name, storing fresh first if there is
// none.
func (t *tx) SharedKey(ctx context.Context, name string, fresh []byte) ([]byte, error) {
	if _, err := t.exec(ctx, `INSERT INTO broker_keys (name, secret) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
		name, hex.EncodeToString(fresh)); err != nil {
		return nil, fmt.Errorf("storing shared key %q: %w", name, err)
	}
	secret, err := queryOne(ctx, t, func(s scanner) (string, error) {
		var v string
		err := s.Scan(&v)
		return v, err
	}, `SELECT secret FROM broker_keys WHERE name = ?`, name)
	if err != nil {
		return nil, fmt.Errorf("reading shared key %q: %w", name, err)
	}
	key, err := hex.DecodeString(secret)
	if err != nil {
		return nil, fmt.Errorf("shared key %q is not hex: %w", name, err)
	}
	return key, nil
}

// ListRacks returns the racks of a datacenter by name.
func (t *tx) ListRacks(ctx context.Context, datacenter string) ([]Rack, error) {
	racks, err := queryAll(ctx, t, func(s scanner) (Rack, error) {
		var r Rack
		err := s.Scan(&r.Name, &r.Datacenter)
		return r, err
	}, `SELECT name, datacenter FROM racks WHERE datacenter = ? ORDER BY name`, datacenter)
	if err != nil {
		return nil, fmt.Errorf("listing racks of datacenter %q: %w", datacenter, err)
	}
	return racks, nil
}

// ListSKUs returns every SKU by name.
func (t *tx) ListSKUs(ctx context.Context) ([]SKU, error) {
	skus, err := queryAll(ctx, t, func(s scanner) (SKU, error) {
		var k SKU
		err := s.Scan(&k.Name, &k.Arch, &k.CPUCores, &k.MemoryGiB, &k.GPUs, &k.GPUModel, &k.LocalDiskGiB)
		return k, err
	}, `SELECT name, arch, cpu_cores, memory_gib, gpus, gpu_model, local_disk_gib FROM skus ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing SKUs: %w", err)
	}
	return skus, nil
}

// Machines.

const machineColumns = `id, datacenter, maintenance_zone, rack, sku, state, healthy, health_message,
	os_image, kernel, node_config, pool, provision, updated_at`

func scanMachine(s scanner) (Machine, error) {
	var (
		m       Machine
		pool    sql.NullString
		updated int64
	)
	err := s.Scan(&m.ID, &m.Datacenter, &m.MaintenanceZone, &m.Rack, &m.SKU, &m.State, &m.Healthy, &m.HealthMessage,
		&m.Software.OSImage, &m.Software.Kernel, &m.Software.NodeConfig, &pool, &m.Provision, &updated)
	m.Pool, m.UpdatedAt = pool.String, fromNanos(updated)
	return m, err
}

// machineWhere is the WHERE clause of a filter, without paging.
func machineWhere(f MachineFilter) *where {
	w := &where{}
	if f.Datacenter != "" {
		w.add("datacenter = ?", f.Datacenter)
	}
	if f.MaintenanceZone != 0 {
		w.add("maintenance_zone = ?", f.MaintenanceZone)
	}
	if f.State != "" {
		w.add("state = ?", string(f.State))
	}
	if f.SKU != "" {
		w.add("sku = ?", f.SKU)
	}
	if f.Pool != "" {
		w.add("pool = ?", f.Pool)
	}
	if f.Provision != "" {
		w.add("provision = ?", string(f.Provision))
		if f.Provision != ProvisionClean {
			// The condition of the partial index machines_provision, as
			// a literal: SQLite uses a partial index only for a query
			// that repeats its condition.
			w.add("provision <> '" + string(ProvisionClean) + "'")
		}
	}
	if len(f.SKUs) > 0 {
		w.add("sku IN ("+placeholders(len(f.SKUs))+")", anySlice(f.SKUs)...)
	}
	if f.HealthyOnly {
		w.add("healthy = ?", true)
	}
	if f.Free {
		// The condition of the partial index machines_free, as literals
		// (see the provision condition above).
		w.add(freeCondition)
	}
	if f.UnhealthyOnly {
		w.add("healthy = ?", false)
	}
	if !f.UpdatedSince.IsZero() {
		// The machines changed since a recent time are few, but
		// neither planner knows it without statistics (SQLite never
		// has any): as one more term, SQLite read the whole table in ID
		// order, and both went through machines_datacenter_state when
		// a datacenter was given. Guarded, the other conditions leave
		// machines_updated_at the only way in.
		w.guardAll()
		w.add("updated_at >= ?", nanos(f.UpdatedSince))
	}
	return w
}

// freeCondition is the WHERE clause of the partial index machines_free
// (migration 0009), as written there.
const freeCondition = `state = '` + string(MachineAvailable) + `' AND pool IS NULL AND provision = '` + string(ProvisionClean) + `' AND healthy`

// guardAll folds w's conditions into one CASE expression that no index
// covers (see guarded), so a planner finds the rows by the one condition
// added after it.
func (w *where) guardAll() {
	if len(w.conds) > 0 {
		w.conds = []string{`CASE WHEN ` + strings.Join(w.conds, " AND ") + ` THEN 1 ELSE 0 END = 1`}
	}
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anySlice[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// listStatement is the SELECT of columns of the machines that match f,
// ordered by ID, after f.AfterID and at most f.Limit of them (0: all); with
// f.UpdatedSince, in the order of machines_updated_at, (updated_at, id),
// after (f.UpdatedSince, f.AfterID), so that its range holds every page.
func listStatement(columns string, f MachineFilter) (string, []any) {
	w := machineWhere(f)
	order := ` ORDER BY id`
	switch {
	case !f.UpdatedSince.IsZero():
		if f.AfterID != "" {
			w.add("(updated_at > ? OR id > ?)", nanos(f.UpdatedSince), f.AfterID)
		}
		order = ` ORDER BY updated_at, id`
	case f.AfterID != "":
		w.add("id > ?", f.AfterID)
	}
	query := `SELECT ` + columns + ` FROM machines` + w.String() + order
	if f.Limit > 0 {
		query += ` LIMIT ?`
		w.args = append(w.args, f.Limit)
	}
	return query, w.args
}

// GetMachine returns the machine with that ID.
func (t *tx) GetMachine(ctx context.Context, id string) (Machine, error) {
	m, err := queryOne(ctx, t, scanMachine, `SELECT `+machineColumns+` FROM machines WHERE id = ?`, id)
	if err != nil {
		return Machine{}, fmt.Errorf("getting machine %q: %w", id, err)
	}
	return m, nil
}

// ListMachines returns the machines that match f, ordered by ID (by
// UpdatedAt, then ID, with f.UpdatedSince), after f.AfterID and at most
// f.Limit of them (0: all).
func (t *tx) ListMachines(ctx context.Context, f MachineFilter) ([]Machine, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("listing machines: negative limit %d", f.Limit)
	}
	query, args := listStatement(machineColumns, f)
	ms, err := queryAll(ctx, t, scanMachine, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing machines: %w", err)
	}
	return ms, nil
}

// LastMachineUpdate returns the latest UpdatedAt of any machine, the zero
// time when there is none: one step down machines_updated_at.
func (t *tx) LastMachineUpdate(ctx context.Context) (time.Time, error) {
	n, err := queryOne(ctx, t, func(s scanner) (int64, error) {
		var n int64
		err := s.Scan(&n)
		return n, err
	}, lastUpdateStatement)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the machines' last update: %w", err)
	}
	return fromNanos(n), nil
}

const lastUpdateStatement = `SELECT COALESCE(MAX(updated_at), 0) FROM machines`

// ListPlacements returns the placement of the machines that match f,
// ordered by ID (AfterID and Limit apply as in ListMachines). It reads only
// the machines' IDs and states when the store's layout knows where every
// one of them sits (see layout), and the placement columns too otherwise.
func (t *tx) ListPlacements(ctx context.Context, f MachineFilter) ([]MachinePlacement, error) {
	free, pool, keep := listKey(f)
	if keep {
		if ps, ok := t.kept.get(free, pool); ok {
			return ps, nil
		}
	}
	ps, err := t.listPlacements(ctx, f)
	if err == nil && keep {
		if t.kept == nil {
			t.kept = newKeptLists()
		}
		t.kept.put(free, pool, ps)
	}
	return ps, err
}

func (t *tx) listPlacements(ctx context.Context, f MachineFilter) ([]MachinePlacement, error) {
	if t.layout != nil {
		query, args := listStatement("id, state", f)
		ps, err := queryAll(ctx, t, func(s scanner) (MachinePlacement, error) {
			var p MachinePlacement
			err := s.Scan(&p.ID, &p.State)
			return p, err
		}, query, args...)
		if err != nil {
			return nil, fmt.Errorf("listing machine placements: %w", err)
		}
		if t.layout.fill(ps) {
			return ps, nil
		}
	}
	query, args := listStatement("id, maintenance_zone, rack, sku, state", f)
	ps, err := queryAll(ctx, t, func(s scanner) (MachinePlacement, error) {
		var p MachinePlacement
		err := s.Scan(&p.ID, &p.MaintenanceZone, &p.Rack, &p.SKU, &p.State)
		return p, err
	}, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing machine placements: %w", err)
	}
	t.layout.learn(ps)
	return ps, nil
}

// idBatch bounds the IDs of one UPDATE (SQLite allows 32766 parameters).
const idBatch = 500

// batches calls fn with ids a batch at a time, in ID order, and adds up
// what it returns. In order, a batch is one stretch of the table: on SQLite
// each statement first copies every page it will change to its statement
// journal, and batches drawn from all over the table (a pool's plan takes
// machines zone by zone) copied most of the table's pages once per batch.
func batches(ids []string, fn func(batch []string) (int64, error)) (int64, error) {
	if len(ids) > idBatch && !slices.IsSorted(ids) {
		ids = slices.Sorted(slices.Values(ids))
	}
	var total int64
	for start := 0; start < len(ids); start += idBatch {
		n, err := fn(ids[start:min(start+idBatch, len(ids))])
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// guarded is the WHERE clause of a batch UPDATE: the n machines of an ID
// list (n at most idBatch) that also meet the guard conds. The guard is one CASE
// expression, not terms of the WHERE clause: no index covers it, so both
// planners find the rows by the ID list. As terms, pool IS NULL or provision
// = 'clean' looked selective to a planner without statistics (SQLite always,
// PostgreSQL until autovacuum analyzes a freshly seeded table) and it read
// every free machine through that index, once per batch: allocations 2.4x
// slower (docs/benchmarks.md, "Compute Broker").
func guarded(n int, conds ...string) string {
	return `id IN (` + placeholders(n) + `) AND CASE WHEN ` + strings.Join(conds, " AND ") + ` THEN 1 ELSE 0 END = 1`
}

// allocateStatement is the UPDATE of AllocateMachines for n machines; its
// arguments are allocateArgs.
func allocateStatement(n int) string {
	return `UPDATE machines SET state = ?, pool = ?, updated_at = ? WHERE ` +
		guarded(n, "state = ?", "pool IS NULL", "provision = ?", "healthy = ?")
}

func allocateArgs(batch []string, pool string, now int64) []any {
	return append(append([]any{string(MachineAllocated), pool, now}, anySlice(batch)...),
		string(MachineAvailable), string(ProvisionClean), true)
}

// AllocateMachines puts available, clean, healthy machines of no pool into
// pool. The guard is in the statement: a machine that is anything else
// (wiping or unhealthy included) does not move, and the whole transaction
// fails.
func (t *tx) AllocateMachines(ctx context.Context, ids []string, pool string) error {
	if pool == "" {
		return errors.New("allocating machines: no pool given")
	}
	now := nanos(t.now())
	n, err := batches(ids, func(batch []string) (int64, error) {
		return t.exec(ctx, allocateStatement(len(batch)), allocateArgs(batch, pool, now)...)
	})
	if err != nil {
		t.kept = nil // some batches may have moved
		return fmt.Errorf("allocating %d machines to pool %q: %w", len(ids), pool, err)
	}
	if n != int64(len(ids)) {
		t.kept = nil
		return fmt.Errorf("allocating machines to pool %q: only %d of %d are available, clean, healthy and in no pool: %w", pool, n, len(ids), ErrConflict)
	}
	t.kept.allocated(ids, pool)
	return nil
}

// ReleaseMachines takes machines out of their pool; a machine that joined
// (or was joining) a cluster is left wiping.
func (t *tx) ReleaseMachines(ctx context.Context, ids []string) error {
	now := nanos(t.now())
	var freed []freeMachine
	n, err := batches(ids, func(batch []string) (int64, error) {
		args := append([]any{string(MachineAvailable), now, string(ProvisionJoining), string(ProvisionJoined), string(ProvisionWiping)},
			anySlice(batch)...)
		// RETURNING says which machines are free now (those that were
		// clean and are healthy), for the transaction's kept lists.
		rows, err := queryAll(ctx, t, scanFreeMachine, `UPDATE machines SET state = ?, pool = NULL, updated_at = ?,
			provision = CASE WHEN provision IN (?, ?) THEN ? ELSE provision END
			WHERE id IN (`+placeholders(len(batch))+`)
			RETURNING id, maintenance_zone, rack, sku, datacenter, provision, healthy`, args...)
		freed = append(freed, rows...)
		return int64(len(rows)), mapError(err)
	})
	if err != nil {
		t.kept = nil
		return fmt.Errorf("releasing %d machines: %w", len(ids), err)
	}
	if n != int64(len(ids)) {
		t.kept = nil
		return fmt.Errorf("releasing machines: %d of %d exist: %w", n, len(ids), ErrConflict)
	}
	t.kept.released(freed)
	return nil
}

// UpdateProvision moves the machines of u that are still in u.From (and in
// u.Pool when set) to u.To.
func (t *tx) UpdateProvision(ctx context.Context, u ProvisionUpdate) (int, error) {
	t.kept = nil // a wiped machine may be free now
	now := nanos(t.now())
	n, err := batches(u.IDs, func(batch []string) (int64, error) {
		query, args := provisionStatement(u, batch, now)
		return t.exec(ctx, query, args...)
	})
	if err != nil {
		return int(n), fmt.Errorf("moving %d machines from provision state %s to %s: %w", len(u.IDs), u.From, u.To, err)
	}
	return int(n), nil
}

// provisionStatement is the UPDATE of UpdateProvision for one batch of u's
// machines.
func provisionStatement(u ProvisionUpdate, batch []string, now int64) (string, []any) {
	set, args := "provision = ?, updated_at = ?", []any{string(u.To), now}
	if u.NodeConfig != nil {
		set += ", node_config = ?"
		args = append(args, *u.NodeConfig)
	}
	args = append(args, anySlice(batch)...)
	conds := []string{"provision = ?"}
	args = append(args, string(u.From))
	if u.Pool != "" {
		conds = append(conds, "pool = ?")
		args = append(args, u.Pool)
	}
	return `UPDATE machines SET ` + set + ` WHERE ` + guarded(len(batch), conds...), args
}

// UpdateMachine writes m's state, health, software, pool and provision
// state, and sets its UpdatedAt to now.
func (t *tx) UpdateMachine(ctx context.Context, m Machine) error {
	t.kept = nil
	err := t.execOne(ctx, `UPDATE machines SET state = ?, healthy = ?, health_message = ?,
		os_image = ?, kernel = ?, node_config = ?, pool = ?, provision = ?, updated_at = ? WHERE id = ?`,
		string(m.State), m.Healthy, m.HealthMessage, m.Software.OSImage, m.Software.Kernel, m.Software.NodeConfig,
		nullable(m.Pool), string(m.Provision), nanos(t.now()), m.ID)
	if err != nil {
		return fmt.Errorf("updating machine %q: %w", m.ID, err)
	}
	return nil
}

// CountMachines counts the machines that match f by (pool, state,
// provision, maintenance zone, healthy), in that order (unhealthy first).
func (t *tx) CountMachines(ctx context.Context, f MachineFilter) ([]MachineCount, error) {
	w := machineWhere(f)
	counts, err := queryAll(ctx, t, func(s scanner) (MachineCount, error) {
		var c MachineCount
		err := s.Scan(&c.Pool, &c.State, &c.Provision, &c.MaintenanceZone, &c.Healthy, &c.Count)
		return c, err
	}, `SELECT COALESCE(pool, ''), state, provision, maintenance_zone, healthy, COUNT(*) FROM machines`+w.String()+`
		GROUP BY COALESCE(pool, ''), state, provision, maintenance_zone, healthy ORDER BY 1, 2, 3, 4, 5`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("counting machines: %w", err)
	}
	return counts, nil
}

// Node profiles.

const profileColumns = `name, min_cpu_cores, min_memory_gib, min_gpus, gpu_model, min_local_disk_gib,
	node_config, created_at, updated_at`

func scanProfile(s scanner) (NodeProfile, error) {
	var (
		p                NodeProfile
		created, updated int64
	)
	err := s.Scan(&p.Name, &p.MinCPUCores, &p.MinMemoryGiB, &p.MinGPUs, &p.GPUModel, &p.MinLocalDiskGiB,
		&p.NodeConfig, &created, &updated)
	p.CreatedAt, p.UpdatedAt = fromNanos(created), fromNanos(updated)
	return p, err
}

// InsertProfile inserts p; zero CreatedAt and UpdatedAt become now.
func (t *tx) InsertProfile(ctx context.Context, p NodeProfile) error {
	_, err := t.exec(ctx, `INSERT INTO node_profiles (`+profileColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.Name, p.MinCPUCores, p.MinMemoryGiB, p.MinGPUs, p.GPUModel, p.MinLocalDiskGiB, p.NodeConfig,
		t.stamp(p.CreatedAt), t.stamp(p.UpdatedAt))
	if err != nil {
		return fmt.Errorf("inserting node profile %q: %w", p.Name, err)
	}
	return nil
}

// GetProfile returns the node profile with that name.
func (t *tx) GetProfile(ctx context.Context, name string) (NodeProfile, error) {
	p, err := queryOne(ctx, t, scanProfile, `SELECT `+profileColumns+` FROM node_profiles WHERE name = ?`, name)
	if err != nil {
		return NodeProfile{}, fmt.Errorf("getting node profile %q: %w", name, err)
	}
	return p, nil
}

// ListProfiles returns every node profile by name.
func (t *tx) ListProfiles(ctx context.Context) ([]NodeProfile, error) {
	ps, err := queryAll(ctx, t, scanProfile, `SELECT `+profileColumns+` FROM node_profiles ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing node profiles: %w", err)
	}
	return ps, nil
}

// UpdateProfile writes every field of p but CreatedAt, and sets UpdatedAt to
// now.
func (t *tx) UpdateProfile(ctx context.Context, p NodeProfile) error {
	err := t.execOne(ctx, `UPDATE node_profiles SET min_cpu_cores = ?, min_memory_gib = ?, min_gpus = ?, gpu_model = ?,
		min_local_disk_gib = ?, node_config = ?, updated_at = ? WHERE name = ?`,
		p.MinCPUCores, p.MinMemoryGiB, p.MinGPUs, p.GPUModel, p.MinLocalDiskGiB, p.NodeConfig, nanos(t.now()), p.Name)
	if err != nil {
		return fmt.Errorf("updating node profile %q: %w", p.Name, err)
	}
	return nil
}

// DeleteProfile deletes a node profile; ErrConflict while a pool uses it.
func (t *tx) DeleteProfile(ctx context.Context, name string) error {
	if err := t.execOne(ctx, `DELETE FROM node_profiles WHERE name = ?`, name); err != nil {
		return fmt.Errorf("deleting node profile %q: %w", name, err)
	}
	return nil
}

// Pools.

const poolColumns = `name, datacenter, profile, capacity, generation, deleting, created_at, updated_at,
	node_config, join_cluster, join_api_server, join_ca_bundle, join_bootstrap_token, join_node_labels, join_node_taints`

func scanPool(s scanner) (Pool, error) {
	var (
		p                Pool
		created, updated int64
		target           joinColumns
	)
	err := s.Scan(&p.Name, &p.Datacenter, &p.Profile, &p.Capacity, &p.Generation, &p.Deleting, &created, &updated,
		&p.NodeConfig, &target.cluster, &target.apiServer, &target.caBundle, &target.token, &target.labels, &target.taints)
	if err != nil {
		return p, err
	}
	p.CreatedAt, p.UpdatedAt = fromNanos(created), fromNanos(updated)
	p.JoinTarget, err = target.decode()
	if err != nil {
		return p, fmt.Errorf("pool %q: reading its join target: %w", p.Name, err)
	}
	return p, nil
}

// joinColumns is a JoinTarget as stored: all "" for none.
type joinColumns struct {
	cluster, apiServer, caBundle, token, labels, taints string
}

func encodeJoinTarget(jt *JoinTarget) (joinColumns, error) {
	if jt == nil {
		return joinColumns{}, nil
	}
	if jt.Cluster == "" {
		return joinColumns{}, errors.New("a join target needs a cluster")
	}
	c := joinColumns{cluster: jt.Cluster, apiServer: jt.APIServer, caBundle: string(jt.CABundle), token: jt.BootstrapToken}
	if len(jt.NodeLabels) > 0 {
		raw, err := json.Marshal(jt.NodeLabels)
		if err != nil {
			return c, fmt.Errorf("encoding node labels: %w", err)
		}
		c.labels = string(raw)
	}
	if len(jt.NodeTaints) > 0 {
		raw, err := json.Marshal(jt.NodeTaints)
		if err != nil {
			return c, fmt.Errorf("encoding node taints: %w", err)
		}
		c.taints = string(raw)
	}
	return c, nil
}

func (c joinColumns) decode() (*JoinTarget, error) {
	if c.cluster == "" {
		return nil, nil
	}
	jt := &JoinTarget{Cluster: c.cluster, APIServer: c.apiServer, BootstrapToken: c.token}
	if c.caBundle != "" {
		jt.CABundle = []byte(c.caBundle)
	}
	if c.labels != "" {
		if err := json.Unmarshal([]byte(c.labels), &jt.NodeLabels); err != nil {
			return nil, fmt.Errorf("decoding node labels: %w", err)
		}
	}
	if c.taints != "" {
		if err := json.Unmarshal([]byte(c.taints), &jt.NodeTaints); err != nil {
			return nil, fmt.Errorf("decoding node taints: %w", err)
		}
	}
	return jt, nil
}

// InsertPool inserts p; zero CreatedAt and UpdatedAt become now. Its
// datacenter and profile must exist (ErrConflict otherwise).
func (t *tx) InsertPool(ctx context.Context, p Pool) error {
	target, err := encodeJoinTarget(p.JoinTarget)
	if err != nil {
		return fmt.Errorf("inserting pool %q: %w", p.Name, err)
	}
	_, err = t.exec(ctx, `INSERT INTO pools (`+poolColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.Name, p.Datacenter, p.Profile, p.Capacity, p.Generation, p.Deleting, t.stamp(p.CreatedAt), t.stamp(p.UpdatedAt),
		p.NodeConfig, target.cluster, target.apiServer, target.caBundle, target.token, target.labels, target.taints)
	if err != nil {
		return fmt.Errorf("inserting pool %q: %w", p.Name, err)
	}
	return nil
}

// GetPool returns the pool with that name.
func (t *tx) GetPool(ctx context.Context, name string) (Pool, error) {
	p, err := queryOne(ctx, t, scanPool, `SELECT `+poolColumns+` FROM pools WHERE name = ?`, name)
	if err != nil {
		return Pool{}, fmt.Errorf("getting pool %q: %w", name, err)
	}
	return p, nil
}

// ListPools returns every pool by name.
func (t *tx) ListPools(ctx context.Context) ([]Pool, error) {
	ps, err := queryAll(ctx, t, scanPool, `SELECT `+poolColumns+` FROM pools ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing pools: %w", err)
	}
	return ps, nil
}

// UpdatePool writes p's profile, capacity, node config, join target,
// generation and deleting flag as given (the caller bumps Generation), and
// sets UpdatedAt to now. A pool's datacenter does not change.
func (t *tx) UpdatePool(ctx context.Context, p Pool) error {
	target, err := encodeJoinTarget(p.JoinTarget)
	if err != nil {
		return fmt.Errorf("updating pool %q: %w", p.Name, err)
	}
	err = t.execOne(ctx, `UPDATE pools SET profile = ?, capacity = ?, node_config = ?, join_cluster = ?, join_api_server = ?,
		join_ca_bundle = ?, join_bootstrap_token = ?, join_node_labels = ?, join_node_taints = ?, generation = ?, deleting = ?,
		updated_at = ? WHERE name = ?`,
		p.Profile, p.Capacity, p.NodeConfig, target.cluster, target.apiServer, target.caBundle, target.token, target.labels, target.taints,
		p.Generation, p.Deleting, nanos(t.now()), p.Name)
	if err != nil {
		return fmt.Errorf("updating pool %q: %w", p.Name, err)
	}
	return nil
}

// DeletePool deletes a pool; ErrConflict while machines are allocated to it.
func (t *tx) DeletePool(ctx context.Context, name string) error {
	if err := t.execOne(ctx, `DELETE FROM pools WHERE name = ?`, name); err != nil {
		return fmt.Errorf("deleting pool %q: %w", name, err)
	}
	return nil
}

// Disruptions.

const disruptionColumns = `id, machine, pool, datacenter, maintenance_zone, reason, state, actor, message,
	created_at, updated_at, operation, operation_os_image, operation_kernel, operation_node_config, on_behalf_of`

func scanDisruption(s scanner) (Disruption, error) {
	var (
		d                Disruption
		created, updated int64
	)
	op := &d.Operation
	err := s.Scan(&d.ID, &d.Machine, &d.Pool, &d.Datacenter, &d.MaintenanceZone, &d.Reason, &d.State, &d.Actor,
		&d.Message, &created, &updated, &op.Kind, &op.Software.OSImage, &op.Software.Kernel, &op.Software.NodeConfig, &d.OnBehalfOf)
	d.CreatedAt, d.UpdatedAt = fromNanos(created), fromNanos(updated)
	return d, err
}

// InsertDisruption inserts d as given, its operation included (the caller
// copies the machine's pool, datacenter and MZ); zero CreatedAt and
// UpdatedAt become now. Its machine
// must exist (ErrConflict otherwise).
func (t *tx) InsertDisruption(ctx context.Context, d Disruption) error {
	op := d.Operation
	_, err := t.exec(ctx, `INSERT INTO disruptions (`+disruptionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.Machine, d.Pool, d.Datacenter, d.MaintenanceZone, string(d.Reason), string(d.State), d.Actor, d.Message,
		t.stamp(d.CreatedAt), t.stamp(d.UpdatedAt),
		string(op.Kind), op.Software.OSImage, op.Software.Kernel, op.Software.NodeConfig, d.OnBehalfOf)
	if err != nil {
		return fmt.Errorf("inserting disruption %q: %w", d.ID, err)
	}
	return nil
}

// GetDisruption returns the disruption with that ID.
func (t *tx) GetDisruption(ctx context.Context, id string) (Disruption, error) {
	d, err := queryOne(ctx, t, scanDisruption, `SELECT `+disruptionColumns+` FROM disruptions WHERE id = ?`, id)
	if err != nil {
		return Disruption{}, fmt.Errorf("getting disruption %q: %w", id, err)
	}
	return d, nil
}

// ListDisruptions returns the disruptions that match f, oldest first (ties by
// ID).
func (t *tx) ListDisruptions(ctx context.Context, f DisruptionFilter) ([]Disruption, error) {
	w := &where{}
	if f.Machine != "" {
		w.add("machine = ?", f.Machine)
	}
	if f.Pool != "" {
		w.add("pool = ?", f.Pool)
	}
	if f.Datacenter != "" {
		w.add("datacenter = ?", f.Datacenter)
	}
	if len(f.States) > 0 {
		args := make([]any, len(f.States))
		for i, s := range f.States {
			args[i] = string(s)
		}
		w.add("state IN (?"+strings.Repeat(", ?", len(args)-1)+")", args...)
	}
	ds, err := queryAll(ctx, t, scanDisruption, `SELECT `+disruptionColumns+` FROM disruptions`+w.String()+
		` ORDER BY created_at, id`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("listing disruptions: %w", err)
	}
	return ds, nil
}

// UpdateDisruption writes d's state and message and sets UpdatedAt to now;
// the other fields, its operation included, are fixed at creation.
func (t *tx) UpdateDisruption(ctx context.Context, d Disruption) error {
	err := t.execOne(ctx, `UPDATE disruptions SET state = ?, message = ?, updated_at = ? WHERE id = ?`,
		string(d.State), d.Message, nanos(t.now()), d.ID)
	if err != nil {
		return fmt.Errorf("updating disruption %q: %w", d.ID, err)
	}
	return nil
}

// InsertEvent appends e to its disruption's history; a zero At becomes now.
// The disruption must exist (ErrConflict otherwise).
func (t *tx) InsertEvent(ctx context.Context, e DisruptionEvent) error {
	_, err := t.exec(ctx, `INSERT INTO disruption_events (seq, disruption_id, from_state, to_state, actor, message, at, on_behalf_of)
		VALUES ((SELECT COALESCE(MAX(seq), 0) + 1 FROM disruption_events), ?, ?, ?, ?, ?, ?, ?)`,
		e.DisruptionID, string(e.From), string(e.To), e.Actor, e.Message, t.stamp(e.At), e.OnBehalfOf)
	if err != nil {
		return fmt.Errorf("recording an event of disruption %q: %w", e.DisruptionID, err)
	}
	return nil
}

// ListEvents returns the history of a disruption by time, then in the order
// it was recorded.
func (t *tx) ListEvents(ctx context.Context, disruptionID string) ([]DisruptionEvent, error) {
	es, err := queryAll(ctx, t, func(s scanner) (DisruptionEvent, error) {
		var (
			e  DisruptionEvent
			at int64
		)
		err := s.Scan(&e.DisruptionID, &e.From, &e.To, &e.Actor, &e.Message, &at, &e.OnBehalfOf)
		e.At = fromNanos(at)
		return e, err
	}, `SELECT disruption_id, from_state, to_state, actor, message, at, on_behalf_of FROM disruption_events
		WHERE disruption_id = ? ORDER BY at, seq`, disruptionID)
	if err != nil {
		return nil, fmt.Errorf("listing events of disruption %q: %w", disruptionID, err)
	}
	return es, nil
}
