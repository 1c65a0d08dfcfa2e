package inventory

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/sqldb"
)

// The statements that run once per batch of an allocation, a release or a
// provisioning step must find their rows the same way whatever the planner
// knows: a guess that an index on the guard is selective read the whole
// fleet once per batch (docs/benchmarks.md, "Compute Broker").

// plan returns the query plan of a statement as the engine explains it. The
// store has no statistics, as right after seeding. On PostgreSQL a sequential
// scan is ruled out: on a test-sized table it would be cheapest whatever the
// indexes, and the test is about which index the planner picks.
func plan(t *testing.T, s *sqlStore, query string, args []any) string {
	t.Helper()
	tx, err := s.db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	explain := "EXPLAIN QUERY PLAN "
	if s.engine == sqldb.Postgres {
		if _, err := tx.ExecContext(t.Context(), "SET LOCAL enable_seqscan = off"); err != nil {
			t.Fatal(err)
		}
		explain = "EXPLAIN "
	}
	rows, err := tx.QueryContext(t.Context(), explain+s.engine.Rebind(query), args...)
	if err != nil {
		t.Fatalf("explaining %s: %v", query, err)
	}
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for rows.Next() {
		// SQLite: id, parent, notused, detail; PostgreSQL: one line of text.
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(any)
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprint(*vals[len(vals)-1].(*any))
		if len(line) > 160 { // the ID list
			line = line[:160] + "..."
		}
		lines = append(lines, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// Index names: the primary key's differs between the engines.
var (
	primaryKey   = regexp.MustCompile(`\b(sqlite_autoindex_machines_1|machines_pkey)\b`)
	machineIndex = regexp.MustCompile(`\bmachines_(pool|provision|datacenter_state|maintenance_zone|updated_at|free)\b`)
)

func testQueryPlans(t *testing.T, dsn string) {
	s, _, _ := seeded(t, dsn)
	ids := make([]string, idBatch)
	for i := range ids {
		ids[i] = fmt.Sprintf("dc1-r%03d-u%02d", i/16+1, i%16+1)
	}
	joined := "kubelet-1.37"
	provision := func(u ProvisionUpdate) (string, []any) { return provisionStatement(u, ids, 1) }
	allocate, allocArgs := allocateStatement(len(ids)), allocateArgs(ids, "pool-a", 1)
	claim, claimArgs := provision(ProvisionUpdate{From: ProvisionClean, Pool: "pool-a", To: ProvisionJoining})
	join, joinArgs := provision(ProvisionUpdate{From: ProvisionJoining, Pool: "pool-a", To: ProvisionJoined, NodeConfig: &joined})
	wiped, wipedArgs := provision(ProvisionUpdate{From: ProvisionWiping, To: ProvisionClean})
	joining, joiningArgs := listStatement(machineColumns, MachineFilter{Provision: ProvisionJoining})
	placements, placementArgs := listStatement("id", MachineFilter{
		Datacenter: "dc1", State: MachineAvailable, Provision: ProvisionClean, HealthyOnly: true, SKU: "general-32",
	})
	// What a pool may take, as the broker reads it (IDs and states), and a
	// pool's machines.
	free, freeArgs := listStatement("id, state", MachineFilter{Datacenter: "dc1", SKU: "general-32", Free: true})
	members, memberArgs := listStatement("id, state", MachineFilter{Pool: "pool-a"})
	// A watcher's poll: a datacenter's machines changed since a recent time
	// (every machine was seeded at t0), its first page and a later one.
	since := t0.Add(-2 * time.Second)
	changed, changedArgs := listStatement(machineColumns, MachineFilter{Datacenter: "dc1", UpdatedSince: since, Limit: 1000})
	changedNext, changedNextArgs := listStatement(machineColumns, MachineFilter{
		Datacenter: "dc1", UpdatedSince: since, AfterID: ids[7], Limit: 1000,
	})
	updatedAt := regexp.MustCompile(`\bmachines_updated_at\b`)

	cases := []struct {
		name  string
		query string
		args  []any
		// want must match the plan, and nothing else of machineIndex may.
		want *regexp.Regexp
	}{
		{"allocate a batch", allocate, allocArgs, primaryKey},
		{"claim a batch for joining", claim, claimArgs, primaryKey},
		{"mark a batch joined", join, joinArgs, primaryKey},
		{"return a wiped batch", wiped, wipedArgs, primaryKey},
		{"read the joining machines", joining, joiningArgs, regexp.MustCompile(`\bmachines_provision\b`)},
		{"read the available machines of a SKU", placements, placementArgs, regexp.MustCompile(`\bmachines_datacenter_state\b`)},
		{"read the machines a pool may take", free, freeArgs, regexp.MustCompile(`\bmachines_free\b`)},
		{"read a pool's machines", members, memberArgs, regexp.MustCompile(`\bmachines_pool\b`)},
		{"read the machines changed since", changed, changedArgs, updatedAt},
		{"read the next page of them", changedNext, changedNextArgs, updatedAt},
		{"read the last update", lastUpdateStatement, nil, updatedAt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := plan(t, s, tc.query, tc.args)
			other := machineIndex.FindAllString(tc.want.ReplaceAllString(got, ""), -1)
			if !tc.want.MatchString(got) || len(other) > 0 {
				t.Errorf("plan uses %v, want only %s:\n%s", other, tc.want, got)
			}
		})
	}
}
