package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The console's reads. Each has a deadline (a stuck database must not hold
// a page forever) and a LIMIT (a fleet may be large; a page shows a bounded
// amount and says when it was cut).

const (
	// queryTimeout bounds every read of the console.
	queryTimeout = 5 * time.Second
	// MaxPods is the most pods one list returns.
	MaxPods = 10000
	// MaxSearchQuery is the longest search, in characters.
	MaxSearchQuery = 200
	// maxMachines bounds a datacenter's map; maxObjects a kind's list;
	// maxNodes a cluster's Node list; maxEvents an object's events;
	// maxDisruptions a machine's history; searchLimit the hits per kind.
	maxMachines    = 50000
	maxObjects     = 5000
	maxNodes       = 20000
	maxEvents      = 200
	maxDisruptions = 500
	searchLimit    = 25
)

// ErrNotFound is returned for a missing object.
var ErrNotFound = errors.New("not found")

// InvalidQueryError is a search or filter the store refuses, with why: the
// console shows it as a bad request, not a failure.
type InvalidQueryError struct{ Reason string }

func (e *InvalidQueryError) Error() string { return "invalid query: " + e.Reason }

// ActiveDisruptionStates are the states of a disruption that is not over.
var ActiveDisruptionStates = []string{DisruptionPending, DisruptionApproved, DisruptionInProgress}

// activeIn is the SQL list of ActiveDisruptionStates (constants, no input).
const activeIn = `('pending', 'approved', 'in-progress')`

// query runs a read with the console's deadline; the caller calls done
// once it has read the rows.
func (s *Store) query(ctx context.Context, what, q string, args ...any) (*sql.Rows, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	rows, err := s.db.QueryContext(ctx, s.engine.Rebind(q), args...)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	return rows, cancel, nil
}

// collect reads every row with scan and closes them.
func collect[T any](s *Store, ctx context.Context, what string, scan func(*sql.Rows) (T, error), q string, args ...any) ([]T, error) {
	rows, cancel, err := s.query(ctx, what, q, args...)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer rows.Close() //nolint:errcheck // read-only; Err is checked
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// one is collect for a single row: ErrNotFound when there is none.
func one[T any](s *Store, ctx context.Context, what string, scan func(*sql.Rows) (T, error), q string, args ...any) (T, error) {
	all, err := collect(s, ctx, what, scan, q, args...)
	if err != nil {
		var zero T
		return zero, err
	}
	if len(all) == 0 {
		var zero T
		return zero, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return all[0], nil
}

const machineColumns = `id, datacenter, maintenance_zone, rack, sku, state, healthy, health_message, pool, provision, os_image, kernel, node_config, updated`

func scanMachine(rows *sql.Rows) (Machine, error) {
	var (
		m       Machine
		healthy int
		updated int64
	)
	err := rows.Scan(&m.ID, &m.Datacenter, &m.MaintenanceZone, &m.Rack, &m.SKU, &m.State, &healthy, &m.HealthMessage,
		&m.Pool, &m.Provision, &m.OSImage, &m.Kernel, &m.NodeConfig, &updated)
	m.Healthy, m.Updated = healthy != 0, fromMillis(updated)
	return m, err
}

const nodeColumns = `cluster, name, machine, datacenter, maintenance_zone, rack, pool, profile, ready, unschedulable, problems, kubelet_version, cpu_milli, memory_bytes, created`

func scanNode(rows *sql.Rows) (Node, error) {
	var (
		n             Node
		unschedulable int
		created       int64
	)
	err := rows.Scan(&n.Cluster, &n.Name, &n.Machine, &n.Datacenter, &n.MaintenanceZone, &n.Rack, &n.Pool, &n.Profile,
		&n.Ready, &unschedulable, &n.Problems, &n.KubeletVersion, &n.CPUMilli, &n.MemoryBytes, &created)
	n.Unschedulable, n.Created = unschedulable != 0, fromMillis(created)
	return n, err
}

const podColumns = `cluster, namespace, name, app, version, node, phase, ready, reason, message, restarts, created`

func scanPod(rows *sql.Rows) (Pod, error) {
	var (
		p       Pod
		ready   int
		created int64
	)
	err := rows.Scan(&p.Cluster, &p.Namespace, &p.Name, &p.App, &p.Version, &p.Node, &p.Phase, &ready, &p.Reason, &p.Message, &p.Restarts, &created)
	p.Ready, p.Created = ready != 0, fromMillis(created)
	return p, err
}

const disruptionColumns = `id, machine, pool, datacenter, maintenance_zone, reason, state, actor, on_behalf_of, message, created, updated, history`

func scanDisruption(rows *sql.Rows) (Disruption, error) {
	var (
		d                Disruption
		created, updated int64
		history          string
	)
	if err := rows.Scan(&d.ID, &d.Machine, &d.Pool, &d.Datacenter, &d.MaintenanceZone, &d.Reason, &d.State, &d.Actor,
		&d.OnBehalfOf, &d.Message, &created, &updated, &history); err != nil {
		return d, err
	}
	d.Created, d.Updated = fromMillis(created), fromMillis(updated)
	if history != "" {
		if err := json.Unmarshal([]byte(history), &d.History); err != nil {
			return d, fmt.Errorf("decoding the history of disruption %q: %w", d.ID, err)
		}
	}
	return d, nil
}

func scanObject(rows *sql.Rows) (Object, error) {
	var (
		o    Object
		data string
	)
	err := rows.Scan(&o.Cluster, &o.Kind, &o.Namespace, &o.Name, &data)
	o.Data = []byte(data)
	return o, err
}

func scanEvent(rows *sql.Rows) (Event, error) {
	var (
		e        Event
		lastSeen int64
	)
	err := rows.Scan(&e.Cluster, &e.Namespace, &e.Name, &e.ObjectKind, &e.ObjectName, &e.Type, &e.Reason, &e.Message, &e.Count, &lastSeen)
	e.LastSeen = fromMillis(lastSeen)
	return e, err
}

// Datacenters lists the datacenters that have machines.
func (s *Store) Datacenters(ctx context.Context) ([]string, error) {
	return collect(s, ctx, "listing datacenters", func(r *sql.Rows) (string, error) {
		var dc string
		return dc, r.Scan(&dc)
	}, `SELECT DISTINCT datacenter FROM machines ORDER BY datacenter LIMIT 1000`)
}

// MapMachine is a machine on the fleet map with the active disruption it
// is under, if any.
type MapMachine struct {
	Machine
	// Disruption is the reason of its active disruption ("" when none).
	Disruption string
}

// MapRack is one rack's machines.
type MapRack struct {
	Name     string
	Machines []MapMachine
}

// MapZone is one maintenance zone's racks.
type MapZone struct {
	Zone  int32
	Racks []MapRack
	// PlannedMaintenance: a planned-upgrade disruption is active in the zone.
	PlannedMaintenance bool
}

// DatacenterMap is a datacenter's machines by zone and rack.
type DatacenterMap struct {
	Datacenter string
	Zones      []MapZone
	Machines   int
	// Truncated: the datacenter has more machines than a map shows.
	Truncated bool
}

// Map reads a datacenter's machines grouped by maintenance zone and rack,
// with their active disruptions.
func (s *Store) Map(ctx context.Context, datacenter string) (DatacenterMap, error) {
	what := fmt.Sprintf("reading the map of datacenter %q", datacenter)
	machines, err := collect(s, ctx, what, scanMachine, `SELECT `+machineColumns+` FROM machines WHERE datacenter = ?
		ORDER BY maintenance_zone, rack, id LIMIT ?`, datacenter, maxMachines+1)
	if err != nil {
		return DatacenterMap{}, err
	}
	active, err := collect(s, ctx, what, scanDisruption, `SELECT `+disruptionColumns+` FROM disruptions
		WHERE datacenter = ? AND state IN `+activeIn+` ORDER BY created LIMIT ?`, datacenter, maxMachines)
	if err != nil {
		return DatacenterMap{}, err
	}
	m := DatacenterMap{Datacenter: datacenter}
	if len(machines) > maxMachines {
		machines, m.Truncated = machines[:maxMachines], true
	}
	m.Machines = len(machines)
	disrupted := map[string]string{}
	planned := map[int32]bool{}
	for _, d := range active {
		disrupted[d.Machine] = d.Reason
		if d.Reason == ReasonPlannedUpgrade {
			planned[d.MaintenanceZone] = true
		}
	}
	for _, mc := range machines {
		if len(m.Zones) == 0 || m.Zones[len(m.Zones)-1].Zone != mc.MaintenanceZone {
			m.Zones = append(m.Zones, MapZone{Zone: mc.MaintenanceZone, PlannedMaintenance: planned[mc.MaintenanceZone]})
		}
		z := &m.Zones[len(m.Zones)-1]
		if len(z.Racks) == 0 || z.Racks[len(z.Racks)-1].Name != mc.Rack {
			z.Racks = append(z.Racks, MapRack{Name: mc.Rack})
		}
		r := &z.Racks[len(z.Racks)-1]
		r.Machines = append(r.Machines, MapMachine{Machine: mc, Disruption: disrupted[mc.ID]})
	}
	return m, nil
}

// MachineDetail is a machine with its Nodes and its disruptions, newest
// first.
type MachineDetail struct {
	Machine     Machine
	Nodes       []Node
	Disruptions []Disruption
}

// Machine reads a machine, the Nodes it backs and its disruptions.
func (s *Store) Machine(ctx context.Context, id string) (MachineDetail, error) {
	what := fmt.Sprintf("reading machine %q", id)
	m, err := one(s, ctx, what, scanMachine, `SELECT `+machineColumns+` FROM machines WHERE id = ?`, id)
	if err != nil {
		return MachineDetail{}, err
	}
	d := MachineDetail{Machine: m}
	if d.Nodes, err = collect(s, ctx, what, scanNode, `SELECT `+nodeColumns+` FROM nodes WHERE machine = ? ORDER BY cluster, name LIMIT 100`, id); err != nil {
		return MachineDetail{}, err
	}
	if d.Disruptions, err = collect(s, ctx, what, scanDisruption, `SELECT `+disruptionColumns+` FROM disruptions
		WHERE machine = ? ORDER BY created DESC, id LIMIT ?`, id, maxDisruptions); err != nil {
		return MachineDetail{}, err
	}
	return d, nil
}

// DisruptionFilter selects the active disruptions touching a machine or a
// maintenance zone (either may be empty).
type DisruptionFilter struct {
	Machine    string
	Datacenter string
	Zone       int32
}

// ActiveDisruptions lists the disruptions that are not over (pending,
// approved, in progress) of the filter's machine or of its zone, oldest
// first.
func (s *Store) ActiveDisruptions(ctx context.Context, f DisruptionFilter) ([]Disruption, error) {
	what := "listing active disruptions"
	var (
		conds []string
		args  []any
	)
	if f.Machine != "" {
		conds, args = append(conds, "machine = ?"), append(args, f.Machine)
	}
	if f.Datacenter != "" {
		conds, args = append(conds, "(datacenter = ? AND maintenance_zone = ?)"), append(args, f.Datacenter, f.Zone)
	}
	if len(conds) == 0 {
		return nil, &InvalidQueryError{Reason: "a machine or a zone is needed"}
	}
	args = append(args, maxDisruptions)
	return collect(s, ctx, what, scanDisruption, `SELECT `+disruptionColumns+` FROM disruptions
		WHERE state IN `+activeIn+` AND (`+strings.Join(conds, " OR ")+`) ORDER BY created, id LIMIT ?`, args...)
}

// Objects lists the objects of a kind in a cluster ("" for every
// cluster) and namespace ("" for every namespace), by cluster, namespace
// and name.
func (s *Store) Objects(ctx context.Context, cluster string, kinds []string, namespace string) ([]Object, error) {
	what := fmt.Sprintf("listing %s objects", strings.Join(kinds, ", "))
	if len(kinds) == 0 {
		return nil, &InvalidQueryError{Reason: "no kind"}
	}
	q := `SELECT cluster, kind, namespace, name, data FROM objects WHERE kind IN (?` + strings.Repeat(", ?", len(kinds)-1) + `)`
	var args []any
	for _, k := range kinds {
		args = append(args, k)
	}
	if cluster != "" {
		q, args = q+` AND cluster = ?`, append(args, cluster)
	}
	if namespace != "" {
		q, args = q+` AND namespace = ?`, append(args, namespace)
	}
	return collect(s, ctx, what, scanObject, q+` ORDER BY cluster, namespace, name, kind LIMIT ?`, append(args, maxObjects)...)
}

// Object reads one object; kinds lists the kinds it may be of (the first
// found wins, in the order given).
func (s *Store) Object(ctx context.Context, cluster string, kinds []string, namespace, name string) (Object, error) {
	for _, kind := range kinds {
		o, err := one(s, ctx, fmt.Sprintf("reading %s %s/%s in cluster %q", kind, namespace, name, cluster), scanObject,
			`SELECT cluster, kind, namespace, name, data FROM objects WHERE cluster = ? AND kind = ? AND namespace = ? AND name = ?`,
			cluster, kind, namespace, name)
		if !errors.Is(err, ErrNotFound) {
			return o, err
		}
	}
	return Object{}, fmt.Errorf("reading %s/%s in cluster %q: %w", namespace, name, cluster, ErrNotFound)
}

// NodeCount counts a cluster's Nodes of one pool and profile. The counts
// do not overlap: Draining are unschedulable (cordoned) Nodes, Ready the
// other Ready ones, NotReady the rest.
type NodeCount struct {
	Cluster, Pool, Profile    string
	Ready, NotReady, Draining int
}

// NodeCounts counts the Nodes of a cluster ("" for all) by pool and
// profile.
func (s *Store) NodeCounts(ctx context.Context, cluster string) ([]NodeCount, error) {
	q := `SELECT cluster, pool, profile,
			SUM(CASE WHEN unschedulable = 0 AND ready = 'True' THEN 1 ELSE 0 END),
			SUM(CASE WHEN unschedulable = 0 AND ready <> 'True' THEN 1 ELSE 0 END),
			SUM(CASE WHEN unschedulable <> 0 THEN 1 ELSE 0 END)
		FROM nodes`
	var args []any
	if cluster != "" {
		q, args = q+` WHERE cluster = ?`, append(args, cluster)
	}
	return collect(s, ctx, "counting Nodes", func(r *sql.Rows) (NodeCount, error) {
		var c NodeCount
		return c, r.Scan(&c.Cluster, &c.Pool, &c.Profile, &c.Ready, &c.NotReady, &c.Draining)
	}, q+` GROUP BY cluster, pool, profile ORDER BY cluster, pool, profile LIMIT 10000`, args...)
}

// Nodes lists a cluster's Nodes by name.
func (s *Store) Nodes(ctx context.Context, cluster string) ([]Node, error) {
	return collect(s, ctx, fmt.Sprintf("listing the Nodes of cluster %q", cluster), scanNode,
		`SELECT `+nodeColumns+` FROM nodes WHERE cluster = ? ORDER BY name LIMIT ?`, cluster, maxNodes)
}

// Node reads a cluster's Node.
func (s *Store) Node(ctx context.Context, cluster, name string) (Node, error) {
	return one(s, ctx, fmt.Sprintf("reading Node %q of cluster %q", name, cluster), scanNode,
		`SELECT `+nodeColumns+` FROM nodes WHERE cluster = ? AND name = ?`, cluster, name)
}

// BrokerPools lists the broker's pools by name.
func (s *Store) BrokerPools(ctx context.Context) ([]BrokerPool, error) {
	return collect(s, ctx, "listing the broker's pools", func(r *sql.Rows) (BrokerPool, error) {
		var (
			p    BrokerPool
			data string
		)
		err := r.Scan(&p.Name, &p.Datacenter, &p.Profile, &p.Capacity, &data)
		p.Data = []byte(data)
		return p, err
	}, `SELECT name, datacenter, profile, capacity, data FROM broker_pools ORDER BY name LIMIT ?`, maxObjects)
}

// PoolMachines counts the machines of each broker pool by state.
func (s *Store) PoolMachines(ctx context.Context) (map[string]map[string]int, error) {
	type row struct {
		pool, state string
		n           int
	}
	rows, err := collect(s, ctx, "counting the pools' machines", func(r *sql.Rows) (row, error) {
		var x row
		return x, r.Scan(&x.pool, &x.state, &x.n)
	}, `SELECT pool, state, COUNT(*) FROM machines WHERE pool <> '' GROUP BY pool, state LIMIT 100000`)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]int{}
	for _, r := range rows {
		if out[r.pool] == nil {
			out[r.pool] = map[string]int{}
		}
		out[r.pool][r.state] = r.n
	}
	return out, nil
}

// PodFilter selects pods; empty fields match every pod.
type PodFilter struct {
	Cluster, Namespace, App, Node, Phase string
	// Ready, when set, keeps the pods whose readiness it names.
	Ready *bool
	// NamePrefix keeps the pods whose name starts with it (case-sensitive:
	// pod names are lower case).
	NamePrefix string
	// Limit is how many pods at most (MaxPods when 0 or above).
	Limit int
}

// Pods lists the pods the filter selects, by cluster, namespace and name,
// and whether more matched than the limit.
func (s *Store) Pods(ctx context.Context, f PodFilter) ([]Pod, bool, error) {
	var (
		conds []string
		args  []any
	)
	for _, c := range []struct{ col, v string }{
		{"cluster", f.Cluster}, {"namespace", f.Namespace}, {"app", f.App}, {"node", f.Node}, {"phase", f.Phase},
	} {
		if c.v != "" {
			conds, args = append(conds, c.col+" = ?"), append(args, c.v)
		}
	}
	if f.Ready != nil {
		conds, args = append(conds, "ready = ?"), append(args, boolInt(*f.Ready))
	}
	if f.NamePrefix != "" {
		if utf8.RuneCountInString(f.NamePrefix) > MaxSearchQuery {
			return nil, false, &InvalidQueryError{Reason: fmt.Sprintf("the name prefix is longer than %d characters", MaxSearchQuery)}
		}
		conds, args = append(conds, `name LIKE ? ESCAPE '\'`), append(args, escapeLike(f.NamePrefix)+"%")
	}
	limit := f.Limit
	if limit <= 0 || limit > MaxPods {
		limit = MaxPods
	}
	q := `SELECT ` + podColumns + ` FROM pods`
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, " AND ")
	}
	pods, err := collect(s, ctx, "listing pods", scanPod, q+` ORDER BY cluster, namespace, name LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, false, err
	}
	if len(pods) > limit {
		return pods[:limit], true, nil
	}
	return pods, false, nil
}

// Pod reads one pod.
func (s *Store) Pod(ctx context.Context, cluster, namespace, name string) (Pod, error) {
	return one(s, ctx, fmt.Sprintf("reading pod %s/%s of cluster %q", namespace, name, cluster), scanPod,
		`SELECT `+podColumns+` FROM pods WHERE cluster = ? AND namespace = ? AND name = ?`, cluster, namespace, name)
}

// Events lists the events of an object, the latest first.
func (s *Store) Events(ctx context.Context, cluster, kind, namespace, name string) ([]Event, error) {
	return collect(s, ctx, fmt.Sprintf("listing the events of %s %s/%s", kind, namespace, name), scanEvent,
		`SELECT cluster, namespace, name, object_kind, object_name, type, reason, message, count, last_seen FROM events
		WHERE object_kind = ? AND namespace = ? AND object_name = ? AND cluster = ? ORDER BY last_seen DESC, name LIMIT ?`,
		kind, namespace, name, cluster, maxEvents)
}

// Hit is a search result.
type Hit struct {
	// Kind is App, Cluster, Node, Machine or Pod.
	Kind string
	// Cluster, Namespace and Name name it (a machine: Name is its id;
	// an app: ObjectKind is StatelessApp or StatefulApp).
	Cluster, Namespace, Name, ObjectKind string
	// Detail says a word about it (a Node's pool, a pod's phase).
	Detail string
}

// Hit kinds.
const (
	HitApp     = "App"
	HitCluster = "Cluster"
	HitNode    = "Node"
	HitMachine = "Machine"
	HitPod     = "Pod"
)

// Search finds apps, clusters, Nodes, machines and pods whose name holds
// q (case-insensitive), up to searchLimit of each kind, names that start
// with q first.
func (s *Store) Search(ctx context.Context, q string) ([]Hit, error) {
	q = strings.TrimSpace(q)
	switch {
	case q == "":
		return nil, &InvalidQueryError{Reason: "the search is empty"}
	case utf8.RuneCountInString(q) > MaxSearchQuery:
		return nil, &InvalidQueryError{Reason: fmt.Sprintf("the search is longer than %d characters", MaxSearchQuery)}
	case !utf8.ValidString(q):
		return nil, &InvalidQueryError{Reason: "the search is not valid UTF-8"}
	}
	lower := strings.ToLower(q)
	contains, prefix := "%"+escapeLike(lower)+"%", escapeLike(lower)+"%"
	searches := []struct {
		kind, col, q string
		args         []any
	}{
		{HitCluster, "name", `SELECT '', '', name, kind, '' FROM objects WHERE cluster = ? AND kind = ?`, []any{HubCluster, KindCluster}},
		{HitApp, "name", `SELECT cluster, namespace, name, kind, '' FROM objects WHERE kind IN (?, ?)`, []any{KindStatelessApp, KindStatefulApp}},
		{HitNode, "name", `SELECT cluster, '', name, '', pool FROM nodes WHERE 1 = 1`, nil},
		{HitMachine, "id", `SELECT '', '', id, '', state FROM machines WHERE 1 = 1`, nil},
		{HitPod, "name", `SELECT cluster, namespace, name, '', phase FROM pods WHERE 1 = 1`, nil},
	}
	var hits []Hit
	for _, sr := range searches {
		// Names that start with q sort first, then by name.
		like := `LOWER(` + sr.col + `) LIKE ? ESCAPE '\'`
		args := append(slices.Clone(sr.args), contains, prefix, searchLimit)
		found, err := collect(s, ctx, "searching "+sr.kind+"s", func(r *sql.Rows) (Hit, error) {
			h := Hit{Kind: sr.kind}
			return h, r.Scan(&h.Cluster, &h.Namespace, &h.Name, &h.ObjectKind, &h.Detail)
		}, sr.q+` AND `+like+` ORDER BY CASE WHEN `+like+` THEN 0 ELSE 1 END, `+sr.col+`, 1, 2 LIMIT ?`, args...)
		if err != nil {
			return nil, err
		}
		hits = append(hits, found...)
	}
	return hits, nil
}

// escapeLike escapes LIKE's wildcards (and its escape character) so q
// matches itself.
func escapeLike(q string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q)
}
