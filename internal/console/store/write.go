package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// maxVariables bounds the bound variables of one statement: SQLite refuses
// more than 32766 (PostgreSQL 65535), and the initial list of a large
// cluster (100,000 pods) must go in as few statements as possible.
const maxVariables = 32000

// Key names one row of the store: a cluster's object by Kind (the Kind
// constants), or one of the broker's by Kind and Name (its id), whatever
// Cluster says.
type Key struct {
	Kind, Cluster, Namespace, Name string
}

// table is the table a kind's rows live in.
func (k Key) table() string { return tableOf(k.Kind) }

func tableOf(kind string) string {
	switch kind {
	case KindNode:
		return "nodes"
	case KindPod:
		return "pods"
	case KindEvent:
		return "events"
	case KindMachine:
		return "machines"
	case KindBrokerPool:
		return "broker_pools"
	case KindDisruption:
		return "disruptions"
	default:
		return "objects"
	}
}

// isBroker says whether a kind is the broker's: its table has no cluster.
func isBroker(kind string) bool {
	return kind == KindMachine || kind == KindBrokerPool || kind == KindDisruption
}

// Batch is the writes of one transaction: at most one change per row (a
// later Put or Delete of a row replaces an earlier one, so a batch holds
// the latest state of what changed while it filled), the ends of relists,
// the clusters forgotten and the sources' states.
type Batch struct {
	rows    map[Key]any // a row type, or nil to delete
	ends    map[sourceKey]int64
	forget  map[string]bool
	sources map[sourceKey]Source
}

type sourceKey struct{ cluster, kind string }

// NewBatch returns an empty batch.
func NewBatch() *Batch {
	return &Batch{rows: map[Key]any{}, ends: map[sourceKey]int64{}, forget: map[string]bool{}, sources: map[sourceKey]Source{}}
}

// Len is the number of changes the batch holds.
func (b *Batch) Len() int { return len(b.rows) + len(b.ends) + len(b.forget) + len(b.sources) }

// Rows is the number of rows the batch writes or deletes.
func (b *Batch) Rows() int { return len(b.rows) }

// PutNode writes a Node.
func (b *Batch) PutNode(n Node) { b.rows[Key{KindNode, n.Cluster, "", n.Name}] = n }

// PutPod writes a Pod.
func (b *Batch) PutPod(p Pod) { b.rows[Key{KindPod, p.Cluster, p.Namespace, p.Name}] = p }

// PutObject writes one of Strata's objects.
func (b *Batch) PutObject(o Object) { b.rows[Key{o.Kind, o.Cluster, o.Namespace, o.Name}] = o }

// PutEvent writes an Event.
func (b *Batch) PutEvent(e Event) { b.rows[Key{KindEvent, e.Cluster, e.Namespace, e.Name}] = e }

// PutMachine writes a broker machine.
func (b *Batch) PutMachine(m Machine) {
	b.rows[Key{Kind: KindMachine, Cluster: BrokerSource, Name: m.ID}] = m
}

// PutBrokerPool writes a broker pool.
func (b *Batch) PutBrokerPool(p BrokerPool) {
	b.rows[Key{Kind: KindBrokerPool, Cluster: BrokerSource, Name: p.Name}] = p
}

// PutDisruption writes a broker disruption.
func (b *Batch) PutDisruption(d Disruption) {
	b.rows[Key{Kind: KindDisruption, Cluster: BrokerSource, Name: d.ID}] = d
}

// Delete deletes a row (a broker row by Kind and Name).
func (b *Batch) Delete(k Key) {
	if isBroker(k.Kind) {
		k.Cluster, k.Namespace = BrokerSource, ""
	}
	b.rows[k] = nil
}

// DropPending drops the batch's row changes and relist end of one source
// (cluster and kind; BrokerSource for the broker's): a relist that begins
// supersedes them, and must not find them written after it began.
func (b *Batch) DropPending(cluster, kind string) {
	for k := range b.rows {
		if k.Kind == kind && k.Cluster == cluster {
			delete(b.rows, k)
		}
	}
	delete(b.ends, sourceKey{cluster, kind})
}

// EndRelist deletes the rows of a source (cluster and kind;
// BrokerSource for the broker's) whose revision is below since: those the
// relist that began at revision since did not write again, so that vanished
// while the source was not watching. since 0 is the batch's own revision:
// for a relist that began in this batch.
func (b *Batch) EndRelist(cluster, kind string, since int64) {
	b.ends[sourceKey{cluster, kind}] = since
}

// Forget deletes every row and source of a cluster (removed from the hub),
// with the batch's pending changes of it.
func (b *Batch) Forget(cluster string) {
	for k := range b.rows {
		if k.Cluster == cluster {
			delete(b.rows, k)
		}
	}
	for k := range b.ends {
		if k.cluster == cluster {
			delete(b.ends, k)
		}
	}
	for k := range b.sources {
		if k.cluster == cluster {
			delete(b.sources, k)
		}
	}
	b.forget[cluster] = true
}

// SetSource writes a source's state whole.
func (b *Batch) SetSource(src Source) { b.sources[sourceKey{src.Cluster, src.Kind}] = src }

// Apply writes the batch in one transaction and returns the revision it
// got: the store's revision moves by one, every row written carries it, and
// the revision of each kind the batch changed becomes it. Forgotten
// clusters go first, so a cluster forgotten and added again in one batch
// keeps what was written after Forget.
func (s *Store) Apply(ctx context.Context, b *Batch) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("beginning a write of the fleet store: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var rev int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO revisions (kind, rev) VALUES ('', 1)
		ON CONFLICT (kind) DO UPDATE SET rev = revisions.rev + 1 RETURNING rev`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("moving the fleet store's revision: %w", err)
	}
	w := &writer{s: s, tx: tx, rev: rev, changed: map[string]bool{}}
	for _, cluster := range sortedKeys(b.forget) {
		if err := w.forget(ctx, cluster); err != nil {
			return 0, err
		}
	}
	for k, since := range b.ends {
		if err := w.endRelist(ctx, k, since); err != nil {
			return 0, err
		}
	}
	if err := w.rows(ctx, b.rows); err != nil {
		return 0, err
	}
	if err := w.sources(ctx, b.sources); err != nil {
		return 0, err
	}
	if err := w.revisions(ctx); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("committing a write of the fleet store: %w", err)
	}
	return rev, nil
}

// writer is one Apply's transaction.
type writer struct {
	s       *Store
	tx      *sql.Tx
	rev     int64
	changed map[string]bool // kinds changed
}

func (w *writer) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := w.tx.ExecContext(ctx, w.s.engine.Rebind(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// clusterKinds are the kinds whose rows a cluster holds, by table.
var clusterKinds = map[string][]string{
	"nodes":   {KindNode},
	"pods":    {KindPod},
	"events":  {KindEvent},
	"objects": {KindStatelessApp, KindStatefulApp, KindCluster, KindPool, KindMaintenanceRollout, KindAppNamespace},
}

func (w *writer) forget(ctx context.Context, cluster string) error {
	for _, table := range []string{"nodes", "pods", "events", "objects"} {
		n, err := w.exec(ctx, `DELETE FROM `+table+` WHERE cluster = ?`, cluster)
		if err != nil {
			return fmt.Errorf("forgetting the %s of cluster %q: %w", table, cluster, err)
		}
		if n > 0 {
			for _, kind := range clusterKinds[table] {
				w.changed[kind] = true
			}
		}
	}
	if _, err := w.exec(ctx, `DELETE FROM sources WHERE cluster = ?`, cluster); err != nil {
		return fmt.Errorf("forgetting the sources of cluster %q: %w", cluster, err)
	}
	return nil
}

func (w *writer) endRelist(ctx context.Context, k sourceKey, since int64) error {
	table := tableOf(k.kind)
	if since == 0 {
		since = w.rev
	}
	var (
		n   int64
		err error
	)
	switch {
	case isBroker(k.kind):
		n, err = w.exec(ctx, `DELETE FROM `+table+` WHERE rev < ?`, since)
	case table == "objects":
		n, err = w.exec(ctx, `DELETE FROM objects WHERE cluster = ? AND kind = ? AND rev < ?`, k.cluster, k.kind, since)
	default:
		n, err = w.exec(ctx, `DELETE FROM `+table+` WHERE cluster = ? AND rev < ?`, k.cluster, since)
	}
	if err != nil {
		return fmt.Errorf("deleting the %s of cluster %q that a relist did not find: %w", k.kind, k.cluster, err)
	}
	if n > 0 {
		w.changed[k.kind] = true
	}
	return nil
}

// columns of each table's upsert, the key columns first.
type tableSpec struct {
	name string
	key  []string
	cols []string // the other columns, rev last
}

var specs = map[string]tableSpec{
	"nodes": {"nodes", []string{"cluster", "name"}, []string{"machine", "datacenter", "maintenance_zone", "rack", "pool", "profile",
		"ready", "unschedulable", "problems", "kubelet_version", "cpu_milli", "memory_bytes", "created", "rev"}},
	"pods": {"pods", []string{"cluster", "namespace", "name"}, []string{"app", "version", "node", "phase", "ready", "reason",
		"message", "restarts", "created", "rev"}},
	"objects": {"objects", []string{"cluster", "kind", "namespace", "name"}, []string{"data", "rev"}},
	"events": {"events", []string{"cluster", "namespace", "name"}, []string{"object_kind", "object_name", "type", "reason",
		"message", "count", "last_seen", "rev"}},
	"machines": {"machines", []string{"id"}, []string{"datacenter", "maintenance_zone", "rack", "sku", "state", "healthy",
		"health_message", "pool", "provision", "os_image", "kernel", "node_config", "updated", "rev"}},
	"broker_pools": {"broker_pools", []string{"name"}, []string{"datacenter", "profile", "capacity", "data", "rev"}},
	"disruptions": {"disruptions", []string{"id"}, []string{"machine", "pool", "datacenter", "maintenance_zone", "reason",
		"state", "actor", "on_behalf_of", "message", "created", "updated", "history", "rev"}},
}

// deleteWhere is each table's key condition.
var deleteWhere = map[string]string{
	"nodes":        `cluster = ? AND name = ?`,
	"pods":         `cluster = ? AND namespace = ? AND name = ?`,
	"objects":      `cluster = ? AND kind = ? AND namespace = ? AND name = ?`,
	"events":       `cluster = ? AND namespace = ? AND name = ?`,
	"machines":     `id = ?`,
	"broker_pools": `name = ?`,
	"disruptions":  `id = ?`,
}

func deleteArgs(k Key) []any {
	switch k.table() {
	case "nodes":
		return []any{k.Cluster, k.Name}
	case "pods", "events":
		return []any{k.Cluster, k.Namespace, k.Name}
	case "objects":
		return []any{k.Cluster, k.Kind, k.Namespace, k.Name}
	default:
		return []any{k.Name}
	}
}

func (w *writer) rows(ctx context.Context, rows map[Key]any) error {
	upserts := map[string][][]any{}
	deletes := map[string][]Key{}
	for k, row := range rows {
		table := k.table()
		w.changed[k.Kind] = true
		if row == nil {
			deletes[table] = append(deletes[table], k)
			continue
		}
		values, err := rowValues(row)
		if err != nil {
			return err
		}
		upserts[table] = append(upserts[table], append(values, w.rev))
	}
	for _, table := range sortedKeys(deletes) {
		stmt, err := w.tx.PrepareContext(ctx, w.s.engine.Rebind(`DELETE FROM `+table+` WHERE `+deleteWhere[table]))
		if err != nil {
			return fmt.Errorf("preparing the deletes of %s: %w", table, err)
		}
		for _, k := range deletes[table] {
			if _, err := stmt.ExecContext(ctx, deleteArgs(k)...); err != nil {
				_ = stmt.Close()
				return fmt.Errorf("deleting %s %s/%s of cluster %q: %w", k.Kind, k.Namespace, k.Name, k.Cluster, err)
			}
		}
		if err := stmt.Close(); err != nil {
			return fmt.Errorf("closing the deletes of %s: %w", table, err)
		}
	}
	for _, table := range sortedKeys(upserts) {
		if err := w.upsert(ctx, specs[table], upserts[table]); err != nil {
			return err
		}
	}
	return nil
}

// upsert writes rows (values in spec order) many per statement.
func (w *writer) upsert(ctx context.Context, spec tableSpec, rows [][]any) error {
	cols := append(append([]string{}, spec.key...), spec.cols...)
	per := maxVariables / len(cols)
	set := make([]string, len(spec.cols))
	for i, c := range spec.cols {
		set[i] = c + " = excluded." + c
	}
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	for len(rows) > 0 {
		chunk := rows[:min(per, len(rows))]
		rows = rows[len(chunk):]
		var q strings.Builder
		q.WriteString("INSERT INTO " + spec.name + " (" + strings.Join(cols, ", ") + ") VALUES ")
		args := make([]any, 0, len(chunk)*len(cols))
		for i, r := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(tuple)
			args = append(args, r...)
		}
		q.WriteString(" ON CONFLICT (" + strings.Join(spec.key, ", ") + ") DO UPDATE SET " + strings.Join(set, ", "))
		if _, err := w.tx.ExecContext(ctx, w.s.engine.Rebind(q.String()), args...); err != nil {
			return fmt.Errorf("writing %d rows of %s: %w", len(chunk), spec.name, err)
		}
	}
	return nil
}

// rowValues are a row's columns in its table's spec order, without rev.
func rowValues(row any) ([]any, error) {
	switch r := row.(type) {
	case Node:
		return []any{r.Cluster, r.Name, r.Machine, r.Datacenter, r.MaintenanceZone, r.Rack, r.Pool, r.Profile,
			r.Ready, boolInt(r.Unschedulable), r.Problems, r.KubeletVersion, r.CPUMilli, r.MemoryBytes, millis(r.Created)}, nil
	case Pod:
		return []any{r.Cluster, r.Namespace, r.Name, r.App, r.Version, r.Node, r.Phase, boolInt(r.Ready), r.Reason,
			r.Message, r.Restarts, millis(r.Created)}, nil
	case Object:
		return []any{r.Cluster, r.Kind, r.Namespace, r.Name, string(r.Data)}, nil
	case Event:
		return []any{r.Cluster, r.Namespace, r.Name, r.ObjectKind, r.ObjectName, r.Type, r.Reason, r.Message, r.Count,
			millis(r.LastSeen)}, nil
	case Machine:
		return []any{r.ID, r.Datacenter, r.MaintenanceZone, r.Rack, r.SKU, r.State, boolInt(r.Healthy), r.HealthMessage,
			r.Pool, r.Provision, r.OSImage, r.Kernel, r.NodeConfig, millis(r.Updated)}, nil
	case BrokerPool:
		return []any{r.Name, r.Datacenter, r.Profile, r.Capacity, string(r.Data)}, nil
	case Disruption:
		history := r.History
		if history == nil {
			history = []Transition{}
		}
		h, err := json.Marshal(history)
		if err != nil {
			return nil, fmt.Errorf("encoding the history of disruption %s: %w", r.ID, err)
		}
		return []any{r.ID, r.Machine, r.Pool, r.Datacenter, r.MaintenanceZone, r.Reason, r.State, r.Actor, r.OnBehalfOf,
			r.Message, millis(r.Created), millis(r.Updated), string(h)}, nil
	}
	return nil, fmt.Errorf("writing a row of type %T: not a row of the fleet store", row)
}

func (w *writer) sources(ctx context.Context, sources map[sourceKey]Source) error {
	if len(sources) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(sources))
	for _, src := range sources {
		rows = append(rows, []any{src.Cluster, src.Kind, src.ResourceVersion, boolInt(src.Synced), millis(src.LastSeen),
			src.LastError, millis(src.ErrorSince)})
	}
	spec := tableSpec{"sources", []string{"cluster", "kind"}, []string{"resource_version", "synced", "last_seen", "last_error", "error_since"}}
	return w.upsert(ctx, spec, rows)
}

// revisions sets the revision of every kind the batch changed.
func (w *writer) revisions(ctx context.Context) error {
	if len(w.changed) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(w.changed))
	for _, kind := range sortedKeys(w.changed) {
		rows = append(rows, []any{kind, w.rev})
	}
	return w.upsert(ctx, tableSpec{"revisions", []string{"kind"}, []string{"rev"}}, rows)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// DisruptionUpdates returns when each stored disruption was last updated, in
// unix milliseconds: the aggregator fetches a disruption's history again
// only when it changed.
func (s *Store) DisruptionUpdates(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, updated FROM disruptions`)
	if err != nil {
		return nil, fmt.Errorf("listing the fleet store's disruptions: %w", err)
	}
	defer rows.Close() //nolint:errcheck // read-only; Err is checked
	out := map[string]int64{}
	for rows.Next() {
		var (
			id      string
			updated int64
		)
		if err := rows.Scan(&id, &updated); err != nil {
			return nil, fmt.Errorf("reading the fleet store's disruptions: %w", err)
		}
		out[id] = updated
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the fleet store's disruptions: %w", err)
	}
	return out, nil
}
