package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/strata-dev/strata/internal/testutil"
)

// The store is tested once per engine with the same suite.

func TestStore(t *testing.T) {
	for _, db := range testutil.Databases(t) {
		t.Run(db.Name, func(t *testing.T) {
			testStore(t, db.NewDSN)
			if db.Name == "PostgreSQL" {
				t.Run("RetryOnSerializationFailure", func(t *testing.T) { testRetry(t, db.NewDSN(t)) })
			}
		})
	}
}

// testRetry interleaves two transactions so that the first loses a
// serialization race, and checks that InTx runs it again on fresh data.
// PostgreSQL only: SQLite serializes transactions, so they cannot interleave.
func testRetry(t *testing.T, dsn string) {
	s, _, machines := seeded(t, dsn)
	id := machines[20].ID
	read := make(chan struct{})
	written := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(written) }) }
	t.Cleanup(release) // never leave the first transaction hanging
	attempts := 0
	done := make(chan error, 1)
	go func() {
		done <- s.InTx(t.Context(), func(ctx context.Context, tx Tx) error {
			attempts++
			m, err := tx.GetMachine(ctx, id)
			if err != nil {
				return err
			}
			if attempts == 1 {
				close(read)
				<-written // the other transaction takes the machine now
			}
			if m.State != MachineAvailable {
				return fmt.Errorf("machine %s is %s: %w", id, m.State, ErrConflict)
			}
			m.State, m.Pool = MachineAllocated, "pool-a"
			return tx.UpdateMachine(ctx, m)
		})
	}()
	select {
	case <-read:
	case err := <-done:
		t.Fatalf("first transaction ended before the race: %v", err)
	}
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		m, err := tx.GetMachine(ctx, id)
		if err != nil {
			return err
		}
		m.State, m.Pool = MachineAllocated, "pool-b"
		return tx.UpdateMachine(ctx, m)
	})
	release()
	if err := <-done; !errors.Is(err, ErrConflict) {
		t.Errorf("first transaction: %v, want ErrConflict on its second attempt", err)
	}
	if attempts != 2 {
		t.Errorf("first transaction ran %d times, want 2", attempts)
	}
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		m, err := tx.GetMachine(ctx, id)
		if err != nil {
			return err
		}
		if m.Pool != "pool-b" {
			t.Errorf("machine %s is in pool %q, want pool-b", id, m.Pool)
		}
		return nil
	})
}

// t0 has nanoseconds to show timestamps round-trip exactly.
var t0 = time.Date(2026, 11, 2, 9, 30, 0, 123456789, time.UTC)

// testClock is a settable clock for the store.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// testStore runs the conformance suite; newDSN names an empty database.
func testStore(t *testing.T, newDSN func(t *testing.T) string) {
	tests := []struct {
		name string
		fn   func(t *testing.T, dsn string)
	}{
		{"MigrationsIdempotent", testMigrationsIdempotent},
		{"SeedIdempotent", testSeedIdempotent},
		{"ListMachines", testListMachines},
		{"CountMachines", testCountMachines},
		{"UpdateMachine", testUpdateMachine},
		{"MachinesUpdatedSince", testMachinesUpdatedSince},
		{"ProfilesAndPools", testProfilesAndPools},
		{"Disruptions", testDisruptions},
		{"NotFound", testNotFound},
		{"AlreadyExists", testAlreadyExists},
		{"References", testReferences},
		{"Rollback", testRollback},
		{"ConcurrentAllocation", testConcurrentAllocation},
		{"AllocateAndRelease", testAllocateAndRelease},
		{"KeptListsFollowWrites", testKeptListsFollowWrites},
		{"UpdateProvision", testUpdateProvision},
		{"PoolWithoutJoinTarget", testPoolWithoutJoinTarget},
		{"UpgradeFrom0001", testUpgradeFrom0001},
		{"UpgradeFrom0002", testUpgradeFrom0002},
		{"UpgradeFrom0005", testUpgradeFrom0005},
		{"QueryPlans", testQueryPlans},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newDSN(t)) })
	}
}

func openStore(t *testing.T, dsn string, clock *testClock) *sqlStore {
	t.Helper()
	s, err := open(t.Context(), dsn, clock.Now)
	if err != nil {
		t.Fatalf("Open(%q): %v", dsn, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// inTx runs fn in a transaction and fails the test on error.
func inTx(t *testing.T, s Store, fn func(ctx context.Context, tx Tx) error) {
	t.Helper()
	if err := s.InTx(t.Context(), fn); err != nil {
		t.Fatalf("InTx: %v", err)
	}
}

// txErr runs fn in a transaction and returns its error.
func txErr(t *testing.T, s Store, fn func(ctx context.Context, tx Tx) error) error {
	t.Helper()
	return s.InTx(t.Context(), fn)
}

// smallDC is a datacenter small enough for every test.
var smallDC = GenerateOptions{Seed: 1, Datacenter: "dc1", Region: "test", Machines: 60, MaintenanceZones: 4, MachinesPerRack: 16}

// seeded opens a store holding smallDC, a profile "general" and pools
// "pool-a" (machines 0-4) and "pool-b" (machines 5-7, joined to a cluster);
// machine 8 is being wiped; machines 4 and 30 are unhealthy. It returns the
// machines as stored, by ID.
func seeded(t *testing.T, dsn string) (*sqlStore, *testClock, []Machine) {
	t.Helper()
	clock := &testClock{now: t0}
	s := openStore(t, dsn, clock)
	if created, err := Seed(t.Context(), s, smallDC); err != nil || !created {
		t.Fatalf("Seed() = %v, %v; want true, nil", created, err)
	}
	_, _, _, machines := Generate(smallDC)
	for i := range machines {
		machines[i].UpdatedAt = t0
	}
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		if err := tx.InsertProfile(ctx, NodeProfile{Name: "general", MinCPUCores: 32, NodeConfig: "kubelet-1.37"}); err != nil {
			return err
		}
		for _, p := range []string{"pool-a", "pool-b"} {
			if err := tx.InsertPool(ctx, Pool{Name: p, Datacenter: "dc1", Profile: "general", Capacity: 5}); err != nil {
				return err
			}
		}
		for i := range 9 {
			machines[i].State, machines[i].Pool = MachineAllocated, "pool-a"
			switch {
			case i == 8:
				machines[i].State, machines[i].Pool, machines[i].Provision = MachineAvailable, "", ProvisionWiping
			case i >= 5:
				machines[i].Pool, machines[i].Provision = "pool-b", ProvisionJoined
			}
			if err := tx.UpdateMachine(ctx, machines[i]); err != nil {
				return err
			}
		}
		for _, i := range []int{4, 30} {
			machines[i].Healthy, machines[i].HealthMessage = false, "hardware: disk failed"
			if err := tx.UpdateMachine(ctx, machines[i]); err != nil {
				return err
			}
		}
		return nil
	})
	slices.SortFunc(machines, func(a, b Machine) int { return cmp.Compare(a.ID, b.ID) })
	return s, clock, machines
}

func testMigrationsIdempotent(t *testing.T, dsn string) {
	clock := &testClock{now: t0}
	for range 2 {
		s, err := open(t.Context(), dsn, clock.Now)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		var versions []int64
		rows, err := s.db.QueryContext(t.Context(), "SELECT version FROM schema_migrations ORDER BY version")
		if err != nil {
			t.Fatalf("reading schema_migrations: %v", err)
		}
		for rows.Next() {
			var v int64
			if err := rows.Scan(&v); err != nil {
				t.Fatalf("scanning schema_migrations: %v", err)
			}
			versions = append(versions, v)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("reading schema_migrations: %v", err)
		}
		_ = rows.Close()
		ms, err := loadMigrations()
		if err != nil {
			t.Fatal(err)
		}
		var want []int64
		for _, m := range ms {
			want = append(want, m.version)
		}
		if diff := gocmp.Diff(want, versions); diff != "" {
			t.Errorf("applied migrations (-want +got):\n%s", diff)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func testSeedIdempotent(t *testing.T, dsn string) {
	s, _, machines := seeded(t, dsn)

	// A second seed, even with other options, changes nothing.
	other := smallDC
	other.Seed, other.Machines = 99, 10
	if created, err := Seed(t.Context(), s, other); err != nil || created {
		t.Fatalf("second Seed() = %v, %v; want false, nil", created, err)
	}

	dc, racks, skus, _ := Generate(smallDC)
	slices.SortFunc(skus, func(a, b SKU) int { return cmp.Compare(a.Name, b.Name) })
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		dcs, err := tx.ListDatacenters(ctx)
		if err != nil {
			return err
		}
		if diff := gocmp.Diff([]Datacenter{dc}, dcs); diff != "" {
			t.Errorf("datacenters (-want +got):\n%s", diff)
		}
		gotRacks, err := tx.ListRacks(ctx, "dc1")
		if err != nil {
			return err
		}
		if diff := gocmp.Diff(racks, gotRacks); diff != "" {
			t.Errorf("racks (-want +got):\n%s", diff)
		}
		gotSKUs, err := tx.ListSKUs(ctx)
		if err != nil {
			return err
		}
		if diff := gocmp.Diff(skus, gotSKUs); diff != "" {
			t.Errorf("SKUs (-want +got):\n%s", diff)
		}
		got, err := tx.ListMachines(ctx, MachineFilter{})
		if err != nil {
			return err
		}
		if diff := gocmp.Diff(machines, got); diff != "" {
			t.Errorf("machines (-want +got):\n%s", diff)
		}
		return nil
	})
}

// filterMachines is the reference for MachineFilter on machines sorted by ID.
func filterMachines(ms []Machine, f MachineFilter) []Machine {
	var out []Machine
	for _, m := range ms {
		if (f.Datacenter != "" && m.Datacenter != f.Datacenter) ||
			(f.MaintenanceZone != 0 && m.MaintenanceZone != f.MaintenanceZone) ||
			(f.State != "" && m.State != f.State) ||
			(f.SKU != "" && m.SKU != f.SKU) ||
			(f.Pool != "" && m.Pool != f.Pool) ||
			(f.Provision != "" && m.Provision != f.Provision) ||
			(f.HealthyOnly && !m.Healthy) ||
			(f.UnhealthyOnly && m.Healthy) ||
			(!f.UpdatedSince.IsZero() && m.UpdatedAt.Before(f.UpdatedSince)) ||
			(f.AfterID != "" && m.ID <= f.AfterID) {
			continue
		}
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
		out = append(out, m)
	}
	return out
}

func testListMachines(t *testing.T, dsn string) {
	s, _, machines := seeded(t, dsn)
	tests := []struct {
		name      string
		filter    MachineFilter
		wantCount int // guards the reference against matching nothing
	}{
		{name: "all", filter: MachineFilter{}, wantCount: 60},
		{name: "datacenter", filter: MachineFilter{Datacenter: "dc1"}, wantCount: 60},
		{name: "unknown datacenter", filter: MachineFilter{Datacenter: "dc9"}, wantCount: 0},
		{name: "maintenance zone", filter: MachineFilter{MaintenanceZone: 2}, wantCount: 15},
		{name: "state", filter: MachineFilter{State: MachineAllocated}, wantCount: 8},
		{name: "pool", filter: MachineFilter{Pool: "pool-b"}, wantCount: 3},
		{name: "sku", filter: MachineFilter{SKU: "general-64"}, wantCount: 27},
		{name: "provision", filter: MachineFilter{Provision: ProvisionJoined}, wantCount: 3},
		{name: "provision wiping", filter: MachineFilter{Provision: ProvisionWiping, State: MachineAvailable}, wantCount: 1},
		{name: "unhealthy", filter: MachineFilter{UnhealthyOnly: true}, wantCount: 2},
		{name: "unhealthy in a pool", filter: MachineFilter{UnhealthyOnly: true, Pool: "pool-a"}, wantCount: 1},
		{name: "healthy", filter: MachineFilter{HealthyOnly: true}, wantCount: 58},
		{name: "combined", filter: MachineFilter{Datacenter: "dc1", MaintenanceZone: 1, State: MachineAvailable, SKU: "general-64"}, wantCount: -1},
		// Every machine was written at t0 (see testMachinesUpdatedSince
		// for the order and paging of machines written at other times).
		{name: "updated since", filter: MachineFilter{UpdatedSince: t0}, wantCount: 60},
		{name: "updated since, combined", filter: MachineFilter{UpdatedSince: t0, Pool: "pool-a", UnhealthyOnly: true}, wantCount: 1},
		{name: "updated since later", filter: MachineFilter{UpdatedSince: t0.Add(time.Nanosecond)}, wantCount: 0},
		{name: "limit", filter: MachineFilter{Limit: 3}, wantCount: 3},
		{name: "after", filter: MachineFilter{AfterID: machines[50].ID}, wantCount: 9},
		{name: "after and limit", filter: MachineFilter{State: MachineAvailable, AfterID: machines[20].ID, Limit: 4}, wantCount: 4},
		{name: "after the last", filter: MachineFilter{AfterID: machines[59].ID}, wantCount: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := filterMachines(machines, tc.filter)
			if tc.wantCount >= 0 && len(want) != tc.wantCount {
				t.Fatalf("reference found %d machines, want %d: fix the test", len(want), tc.wantCount)
			}
			inTx(t, s, func(ctx context.Context, tx Tx) error {
				got, err := tx.ListMachines(ctx, tc.filter)
				if err != nil {
					return err
				}
				if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("ListMachines(%+v) (-want +got):\n%s", tc.filter, diff)
				}
				return nil
			})
		})
	}

	t.Run("paging", func(t *testing.T) {
		var got []Machine
		after := ""
		for page := 0; ; page++ {
			if page > len(machines) {
				t.Fatal("paging does not end")
			}
			var ms []Machine
			inTx(t, s, func(ctx context.Context, tx Tx) error {
				var err error
				ms, err = tx.ListMachines(ctx, MachineFilter{AfterID: after, Limit: 7})
				return err
			})
			if len(ms) == 0 {
				break
			}
			got = append(got, ms...)
			after = ms[len(ms)-1].ID
		}
		if diff := gocmp.Diff(machines, got); diff != "" {
			t.Errorf("machines paged 7 at a time (-want +got):\n%s", diff)
		}
	})

	t.Run("negative limit", func(t *testing.T) {
		err := txErr(t, s, func(ctx context.Context, tx Tx) error {
			_, err := tx.ListMachines(ctx, MachineFilter{Limit: -1})
			return err
		})
		if err == nil {
			t.Error("ListMachines(Limit: -1) succeeded, want an error")
		}
	})
}

// countMachines is the reference for CountMachines.
func countMachines(ms []Machine, f MachineFilter) []MachineCount {
	counts := map[MachineCount]int{}
	f.AfterID, f.Limit = "", 0
	for _, m := range filterMachines(ms, f) {
		counts[MachineCount{Pool: m.Pool, State: m.State, Provision: m.Provision, MaintenanceZone: m.MaintenanceZone, Healthy: m.Healthy}]++
	}
	var out []MachineCount
	for k, n := range counts {
		k.Count = n
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b MachineCount) int {
		return cmp.Or(cmp.Compare(a.Pool, b.Pool), cmp.Compare(a.State, b.State), cmp.Compare(a.Provision, b.Provision),
			cmp.Compare(a.MaintenanceZone, b.MaintenanceZone), compareBool(a.Healthy, b.Healthy))
	})
	return out
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func testCountMachines(t *testing.T, dsn string) {
	s, _, machines := seeded(t, dsn)
	for _, f := range []MachineFilter{{}, {MaintenanceZone: 3}, {SKU: "general-64", AfterID: "ignored", Limit: 1}, {Pool: "pool-a"},
		{Provision: ProvisionClean}, {UnhealthyOnly: true}} {
		want := countMachines(machines, f)
		inTx(t, s, func(ctx context.Context, tx Tx) error {
			got, err := tx.CountMachines(ctx, f)
			if err != nil {
				return err
			}
			if diff := gocmp.Diff(want, got); diff != "" {
				t.Errorf("CountMachines(%+v) (-want +got):\n%s", f, diff)
			}
			return nil
		})
	}
}

func testUpdateMachine(t *testing.T, dsn string) {
	s, clock, machines := seeded(t, dsn)
	t1 := t0.Add(time.Hour)
	clock.Set(t1)

	tests := []struct {
		name   string
		update func(m *Machine)
	}{
		{name: "allocate", update: func(m *Machine) { m.State, m.Pool = MachineAllocated, "pool-b" }},
		{name: "release", update: func(m *Machine) { m.State, m.Pool = MachineAvailable, "" }},
		{name: "unhealthy", update: func(m *Machine) { m.State, m.Healthy, m.HealthMessage = MachineUnhealthy, false, "disk failed" }},
		{name: "software", update: func(m *Machine) {
			m.Software = Software{OSImage: "strata-os-2026.12", Kernel: "6.12.41", NodeConfig: "kubelet-1.37-gpu"}
		}},
		{name: "provision", update: func(m *Machine) { m.Provision = ProvisionJoining }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := machines[i] // machines 0..3 start in pool-a
			tc.update(&want)
			// Fields that are not mutable are ignored by UpdateMachine.
			update := want
			update.Rack, update.SKU, update.MaintenanceZone, update.UpdatedAt = "elsewhere", "other", 99, t0
			want.UpdatedAt = t1
			inTx(t, s, func(ctx context.Context, tx Tx) error { return tx.UpdateMachine(ctx, update) })
			inTx(t, s, func(ctx context.Context, tx Tx) error {
				got, err := tx.GetMachine(ctx, want.ID)
				if err != nil {
					return err
				}
				if diff := gocmp.Diff(want, got); diff != "" {
					t.Errorf("machine after update (-want +got):\n%s", diff)
				}
				return nil
			})
		})
	}
}

// testMachinesUpdatedSince writes machines at later times, out of ID
// order, and reads back what changed since a time, as WatchMachines polls:
// ordered by (UpdatedAt, ID), paged by the last one's UpdatedAt and ID.
func testMachinesUpdatedSince(t *testing.T, dsn string) {
	s, clock, machines := seeded(t, dsn)
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		last, err := tx.LastMachineUpdate(ctx)
		if err != nil || !last.Equal(t0) {
			t.Errorf("LastMachineUpdate() = %v, %v; want %v", last, err, t0)
		}
		return nil
	})
	t1, t2 := t0.Add(time.Second), t0.Add(2*time.Second+time.Nanosecond)
	// One transaction each, as the broker writes: machines 40 and 3 at t1,
	// 10 and 20 (allocated to pool-b) at t2, 40 again at t2.
	writes := []struct {
		at  time.Time
		ids []int
	}{{t1, []int{40, 3}}, {t2, []int{20, 10, 40}}}
	for _, w := range writes {
		clock.Set(w.at)
		inTx(t, s, func(ctx context.Context, tx Tx) error {
			for _, i := range w.ids {
				m := machines[i]
				m.HealthMessage = "checked at " + w.at.String()
				if i == 10 || i == 20 {
					m.State, m.Pool = MachineAllocated, "pool-b"
				}
				if err := tx.UpdateMachine(ctx, m); err != nil {
					return err
				}
				m.UpdatedAt = w.at
				machines[i] = m
			}
			return nil
		})
	}
	byID := func(is ...int) []Machine {
		var out []Machine
		for _, i := range is {
			out = append(out, machines[i])
		}
		return out
	}
	list := func(f MachineFilter) []Machine {
		t.Helper()
		var got []Machine
		inTx(t, s, func(ctx context.Context, tx Tx) error {
			var err error
			got, err = tx.ListMachines(ctx, f)
			return err
		})
		return got
	}
	tests := []struct {
		name   string
		filter MachineFilter
		want   []Machine
	}{
		{name: "since t1, by time then ID", filter: MachineFilter{UpdatedSince: t1}, want: byID(3, 10, 20, 40)},
		{name: "since just after t1", filter: MachineFilter{UpdatedSince: t1.Add(time.Nanosecond)}, want: byID(10, 20, 40)},
		{name: "since t2, to the nanosecond", filter: MachineFilter{UpdatedSince: t2}, want: byID(10, 20, 40)},
		{name: "since after t2", filter: MachineFilter{UpdatedSince: t2.Add(time.Nanosecond)}, want: nil},
		{name: "with a pool", filter: MachineFilter{UpdatedSince: t1, Pool: "pool-b"}, want: byID(10, 20)},
		{name: "with a datacenter", filter: MachineFilter{UpdatedSince: t1, Datacenter: "dc1"}, want: byID(3, 10, 20, 40)},
		{name: "with another datacenter", filter: MachineFilter{UpdatedSince: t1, Datacenter: "dc9"}, want: nil},
		{name: "after a machine of t2", filter: MachineFilter{UpdatedSince: t2, AfterID: machines[10].ID}, want: byID(20, 40)},
		{name: "after a machine of t1", filter: MachineFilter{UpdatedSince: t1, AfterID: machines[3].ID, Limit: 2}, want: byID(10, 20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := gocmp.Diff(tc.want, list(tc.filter), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ListMachines(%+v) (-want +got):\n%s", tc.filter, diff)
			}
		})
	}
	t.Run("paging", func(t *testing.T) {
		var got []Machine
		f := MachineFilter{UpdatedSince: t0.Add(time.Nanosecond), Limit: 1}
		for page := 0; ; page++ {
			if page > len(machines) {
				t.Fatal("paging does not end")
			}
			ms := list(f)
			if len(ms) == 0 {
				break
			}
			got = append(got, ms...)
			f.UpdatedSince, f.AfterID = ms[0].UpdatedAt, ms[0].ID
		}
		if diff := gocmp.Diff(byID(3, 10, 20, 40), got); diff != "" {
			t.Errorf("machines changed since t0, paged one at a time (-want +got):\n%s", diff)
		}
	})
	t.Run("count", func(t *testing.T) {
		var got []MachineCount
		inTx(t, s, func(ctx context.Context, tx Tx) error {
			var err error
			got, err = tx.CountMachines(ctx, MachineFilter{UpdatedSince: t2, Pool: "pool-b"})
			return err
		})
		if diff := gocmp.Diff(countMachines(machines, MachineFilter{UpdatedSince: t2, Pool: "pool-b"}), got); diff != "" {
			t.Errorf("CountMachines since t2 (-want +got):\n%s", diff)
		}
	})
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		last, err := tx.LastMachineUpdate(ctx)
		if err != nil || !last.Equal(t2) {
			t.Errorf("LastMachineUpdate() after the writes = %v, %v; want %v", last, err, t2)
		}
		return nil
	})
}

func testProfilesAndPools(t *testing.T, dsn string) {
	s, clock, _ := seeded(t, dsn)
	gpu := NodeProfile{Name: "gpu", MinCPUCores: 64, MinMemoryGiB: 1024, MinGPUs: 8, GPUModel: "nvidia-h100",
		MinLocalDiskGiB: 4000, NodeConfig: "kubelet-1.37-gpu", CreatedAt: t0.Add(-time.Minute), UpdatedAt: t0.Add(-time.Minute)}
	pool := Pool{Name: "train", Datacenter: "dc1", Profile: "gpu", Capacity: 3, Generation: 1, NodeConfig: "kubelet-1.37-gpu-tuned",
		JoinTarget: &JoinTarget{Cluster: "workload-1", APIServer: "https://127.0.0.1:6443",
			CABundle: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), BootstrapToken: "abcdef.0123456789abcdef",
			NodeLabels: map[string]string{"fleet.strata.dev/pool": "train", "team": "ml"},
			NodeTaints: []Taint{{Key: "fleet.strata.dev/startup", Effect: "NoSchedule"}, {Key: "gpu", Value: "true", Effect: "NoExecute"}}}}
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		if err := tx.InsertProfile(ctx, gpu); err != nil {
			return err
		}
		return tx.InsertPool(ctx, pool)
	})
	pool.CreatedAt, pool.UpdatedAt = t0, t0 // zero timestamps become now

	t1 := t0.Add(time.Hour)
	clock.Set(t1)
	gpu.MinGPUs, gpu.NodeConfig = 4, "kubelet-1.38-gpu"
	pool.Capacity, pool.Generation, pool.Deleting = 5, 2, true
	pool.NodeConfig = ""
	pool.JoinTarget = &JoinTarget{Cluster: "workload-2", APIServer: "https://10.0.0.2:6443", BootstrapToken: "ghijkl.0123456789abcdef"}
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		if err := tx.UpdateProfile(ctx, gpu); err != nil {
			return err
		}
		return tx.UpdatePool(ctx, pool)
	})
	gpu.UpdatedAt, pool.UpdatedAt = t1, t1

	inTx(t, s, func(ctx context.Context, tx Tx) error {
		gotProfile, err := tx.GetProfile(ctx, "gpu")
		if err != nil {
			return err
		}
		if diff := gocmp.Diff(gpu, gotProfile); diff != "" {
			t.Errorf("profile (-want +got):\n%s", diff)
		}
		gotPool, err := tx.GetPool(ctx, "train")
		if err != nil {
			return err
		}
		if diff := gocmp.Diff(pool, gotPool); diff != "" {
			t.Errorf("pool (-want +got):\n%s", diff)
		}
		profiles, err := tx.ListProfiles(ctx)
		if err != nil {
			return err
		}
		if diff := gocmp.Diff([]string{"general", "gpu"}, names(profiles, func(p NodeProfile) string { return p.Name })); diff != "" {
			t.Errorf("profiles (-want +got):\n%s", diff)
		}
		pools, err := tx.ListPools(ctx)
		if err != nil {
			return err
		}
		if diff := gocmp.Diff([]string{"pool-a", "pool-b", "train"}, names(pools, func(p Pool) string { return p.Name })); diff != "" {
			t.Errorf("pools (-want +got):\n%s", diff)
		}
		if err := tx.DeletePool(ctx, "train"); err != nil {
			return err
		}
		return tx.DeleteProfile(ctx, "gpu")
	})
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		if _, err := tx.GetPool(ctx, "train"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetPool after delete: %v, want ErrNotFound", err)
		}
		if _, err := tx.GetProfile(ctx, "gpu"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetProfile after delete: %v, want ErrNotFound", err)
		}
		return nil
	})
}

func names[T any](items []T, name func(T) string) []string {
	var out []string
	for _, it := range items {
		out = append(out, name(it))
	}
	return out
}

func testDisruptions(t *testing.T, dsn string) {
	s, clock, machines := seeded(t, dsn)
	m0, m1 := machines[0], machines[9]
	disruption := func(id string, m Machine, created time.Time, state DisruptionState) Disruption {
		return Disruption{ID: id, Machine: m.ID, Pool: m.Pool, Datacenter: m.Datacenter, MaintenanceZone: m.MaintenanceZone,
			Reason: ReasonPlannedUpgrade, State: state, Actor: "maintenance/rollout-x", Message: "upgrade kubelet",
			CreatedAt: created, UpdatedAt: created}
	}
	// Inserted out of order; d-b and d-c tie on CreatedAt. d-c reimages, d-f
	// reboots and failed.
	dA := disruption("d-a", m0, t0.Add(2*time.Second), DisruptionPending)
	dC := disruption("d-c", m1, t0.Add(time.Second), DisruptionInProgress)
	dC.Operation = Operation{Kind: OperationReimage, Software: Software{OSImage: "strata-os-2026.12", NodeConfig: "general-v2"}}
	dB := disruption("d-b", m0, t0.Add(time.Second), DisruptionCompleted)
	dF := disruption("d-f", m1, t0.Add(3*time.Second), DisruptionFailed)
	dF.Operation = Operation{Kind: OperationReboot}
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		for _, d := range []Disruption{dA, dC, dB, dF} {
			if err := tx.InsertDisruption(ctx, d); err != nil {
				return err
			}
		}
		return nil
	})

	tests := []struct {
		name   string
		filter DisruptionFilter
		want   []Disruption
	}{
		{name: "all", filter: DisruptionFilter{}, want: []Disruption{dB, dC, dA, dF}},
		{name: "machine", filter: DisruptionFilter{Machine: m0.ID}, want: []Disruption{dB, dA}},
		{name: "pool", filter: DisruptionFilter{Pool: "pool-a"}, want: []Disruption{dB, dA}},
		{name: "no pool match", filter: DisruptionFilter{Pool: "pool-b"}},
		{name: "datacenter", filter: DisruptionFilter{Datacenter: "dc1"}, want: []Disruption{dB, dC, dA, dF}},
		{name: "open states", filter: DisruptionFilter{States: OpenDisruptionStates}, want: []Disruption{dC, dA}},
		{name: "one state", filter: DisruptionFilter{States: []DisruptionState{DisruptionCompleted}}, want: []Disruption{dB}},
		{name: "failed", filter: DisruptionFilter{States: []DisruptionState{DisruptionFailed}}, want: []Disruption{dF}},
		{name: "machine and state", filter: DisruptionFilter{Machine: m1.ID, States: []DisruptionState{DisruptionPending}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inTx(t, s, func(ctx context.Context, tx Tx) error {
				got, err := tx.ListDisruptions(ctx, tc.filter)
				if err != nil {
					return err
				}
				if diff := gocmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("ListDisruptions(%+v) (-want +got):\n%s", tc.filter, diff)
				}
				return nil
			})
		})
	}

	t.Run("update", func(t *testing.T) {
		t1 := t0.Add(time.Hour)
		clock.Set(t1)
		for _, d := range []Disruption{dA, dC} {
			update := d
			update.State, update.Message, update.Actor, update.Pool = DisruptionFailed, "did not come back", "ignored", "ignored"
			update.Operation = Operation{Kind: OperationReplace} // fixed at creation
			want := d
			want.State, want.Message, want.UpdatedAt = DisruptionFailed, "did not come back", t1
			inTx(t, s, func(ctx context.Context, tx Tx) error { return tx.UpdateDisruption(ctx, update) })
			inTx(t, s, func(ctx context.Context, tx Tx) error {
				got, err := tx.GetDisruption(ctx, d.ID)
				if err != nil {
					return err
				}
				if diff := gocmp.Diff(want, got); diff != "" {
					t.Errorf("disruption %s after update (-want +got):\n%s", d.ID, diff)
				}
				return nil
			})
		}
	})

	t.Run("events", func(t *testing.T) {
		clock.Set(t0.Add(time.Minute))
		created := DisruptionEvent{DisruptionID: "d-a", To: DisruptionPending, Actor: "maintenance/rollout-x", Message: "created", At: t0}
		approved := DisruptionEvent{DisruptionID: "d-a", From: DisruptionPending, To: DisruptionApproved, Actor: "cluster-manager/c1", At: t0}
		started := DisruptionEvent{DisruptionID: "d-a", From: DisruptionApproved, To: DisruptionInProgress, Actor: "maintenance/rollout-x"}
		early := DisruptionEvent{DisruptionID: "d-a", From: DisruptionPending, To: DisruptionCancelled, Actor: "x", At: t0.Add(-time.Second)}
		other := DisruptionEvent{DisruptionID: "d-b", To: DisruptionPending, Actor: "y", At: t0}
		// A step that changes no state, after the disruption ended.
		step := DisruptionEvent{DisruptionID: "d-a", From: DisruptionFailed, To: DisruptionFailed, Actor: "cluster-manager/c1",
			Message: "uncordoned node " + m0.ID, At: t0.Add(time.Minute)}
		inTx(t, s, func(ctx context.Context, tx Tx) error {
			for _, e := range []DisruptionEvent{created, approved, started, early, other, step} {
				if err := tx.InsertEvent(ctx, e); err != nil {
					return err
				}
			}
			return nil
		})
		started.At = t0.Add(time.Minute) // zero At becomes now
		want := []DisruptionEvent{early, created, approved, started, step}
		inTx(t, s, func(ctx context.Context, tx Tx) error {
			got, err := tx.ListEvents(ctx, "d-a")
			if err != nil {
				return err
			}
			if diff := gocmp.Diff(want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			return nil
		})
	})
}

func testNotFound(t *testing.T, dsn string) {
	s, _, _ := seeded(t, dsn)
	tests := []struct {
		name string
		op   func(ctx context.Context, tx Tx) error
	}{
		{"GetMachine", func(ctx context.Context, tx Tx) error { _, err := tx.GetMachine(ctx, "nope"); return err }},
		{"UpdateMachine", func(ctx context.Context, tx Tx) error {
			return tx.UpdateMachine(ctx, Machine{ID: "nope", State: MachineAvailable})
		}},
		{"GetProfile", func(ctx context.Context, tx Tx) error { _, err := tx.GetProfile(ctx, "nope"); return err }},
		{"UpdateProfile", func(ctx context.Context, tx Tx) error { return tx.UpdateProfile(ctx, NodeProfile{Name: "nope"}) }},
		{"DeleteProfile", func(ctx context.Context, tx Tx) error { return tx.DeleteProfile(ctx, "nope") }},
		{"GetPool", func(ctx context.Context, tx Tx) error { _, err := tx.GetPool(ctx, "nope"); return err }},
		{"UpdatePool", func(ctx context.Context, tx Tx) error {
			return tx.UpdatePool(ctx, Pool{Name: "nope", Profile: "general"})
		}},
		{"DeletePool", func(ctx context.Context, tx Tx) error { return tx.DeletePool(ctx, "nope") }},
		{"GetDisruption", func(ctx context.Context, tx Tx) error { _, err := tx.GetDisruption(ctx, "nope"); return err }},
		{"UpdateDisruption", func(ctx context.Context, tx Tx) error {
			return tx.UpdateDisruption(ctx, Disruption{ID: "nope", State: DisruptionApproved})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := txErr(t, s, tc.op); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: %v, want ErrNotFound", tc.name, err)
			}
		})
	}
}

func testAlreadyExists(t *testing.T, dsn string) {
	s, _, machines := seeded(t, dsn)
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		return tx.InsertDisruption(ctx, Disruption{ID: "d1", Machine: machines[0].ID, State: DisruptionPending})
	})
	dc, racks, skus, ms := Generate(smallDC)
	tests := []struct {
		name string
		op   func(ctx context.Context, tx Tx) error
	}{
		{"InsertProfile", func(ctx context.Context, tx Tx) error {
			return tx.InsertProfile(ctx, NodeProfile{Name: "general"})
		}},
		{"InsertPool", func(ctx context.Context, tx Tx) error {
			return tx.InsertPool(ctx, Pool{Name: "pool-a", Datacenter: "dc1", Profile: "general"})
		}},
		{"InsertDisruption", func(ctx context.Context, tx Tx) error {
			return tx.InsertDisruption(ctx, Disruption{ID: "d1", Machine: machines[1].ID, State: DisruptionPending})
		}},
		{"SeedDatacenter", func(ctx context.Context, tx Tx) error { return tx.SeedDatacenter(ctx, dc, racks, skus, ms) }},
		{"SeedDatacenter machines", func(ctx context.Context, tx Tx) error {
			// A new datacenter whose machine IDs collide with dc1's.
			dc2 := Datacenter{Name: "dc2", Region: "test", MaintenanceZones: 4}
			m := ms[0]
			m.Datacenter = "dc2"
			return tx.SeedDatacenter(ctx, dc2, nil, nil, []Machine{m})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := txErr(t, s, tc.op); !errors.Is(err, ErrAlreadyExists) {
				t.Errorf("%s: %v, want ErrAlreadyExists", tc.name, err)
			}
		})
	}
	// The failed seed of dc2 left nothing behind.
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		dcs, err := tx.ListDatacenters(ctx)
		if err != nil {
			return err
		}
		if diff := gocmp.Diff([]string{"dc1"}, names(dcs, func(d Datacenter) string { return d.Name })); diff != "" {
			t.Errorf("datacenters (-want +got):\n%s", diff)
		}
		return nil
	})
}

func testReferences(t *testing.T, dsn string) {
	s, _, machines := seeded(t, dsn)
	tests := []struct {
		name string
		op   func(ctx context.Context, tx Tx) error
	}{
		{"delete a pool that has machines", func(ctx context.Context, tx Tx) error { return tx.DeletePool(ctx, "pool-a") }},
		{"delete a profile in use", func(ctx context.Context, tx Tx) error { return tx.DeleteProfile(ctx, "general") }},
		{"pool of an unknown profile", func(ctx context.Context, tx Tx) error {
			return tx.InsertPool(ctx, Pool{Name: "p", Datacenter: "dc1", Profile: "nope"})
		}},
		{"pool in an unknown datacenter", func(ctx context.Context, tx Tx) error {
			return tx.InsertPool(ctx, Pool{Name: "p", Datacenter: "dc9", Profile: "general"})
		}},
		{"machine in an unknown pool", func(ctx context.Context, tx Tx) error {
			m := machines[20]
			m.State, m.Pool = MachineAllocated, "nope"
			return tx.UpdateMachine(ctx, m)
		}},
		{"disruption of an unknown machine", func(ctx context.Context, tx Tx) error {
			return tx.InsertDisruption(ctx, Disruption{ID: "d", Machine: "nope", State: DisruptionPending})
		}},
		{"event of an unknown disruption", func(ctx context.Context, tx Tx) error {
			return tx.InsertEvent(ctx, DisruptionEvent{DisruptionID: "nope", To: DisruptionPending})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := txErr(t, s, tc.op); !errors.Is(err, ErrConflict) {
				t.Errorf("%v, want ErrConflict", err)
			}
		})
	}
}

func testRollback(t *testing.T, dsn string) {
	s, _, machines := seeded(t, dsn)
	boom := errors.New("boom")
	err := txErr(t, s, func(ctx context.Context, tx Tx) error {
		if err := tx.InsertProfile(ctx, NodeProfile{Name: "tmp"}); err != nil {
			return err
		}
		m := machines[30]
		m.State = MachineDecommissioned
		if err := tx.UpdateMachine(ctx, m); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx: %v, want %v", err, boom)
	}
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		if _, err := tx.GetProfile(ctx, "tmp"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetProfile after rollback: %v, want ErrNotFound", err)
		}
		got, err := tx.GetMachine(ctx, machines[30].ID)
		if err != nil {
			return err
		}
		if diff := gocmp.Diff(machines[30], got); diff != "" {
			t.Errorf("machine after rollback (-want +got):\n%s", diff)
		}
		return nil
	})
}

// testConcurrentAllocation has workers race to allocate the same available
// machines, each to its own pool, the way the broker does: read, check,
// write, in one transaction. Every transaction must succeed and no machine
// may be handed to two workers.
func testConcurrentAllocation(t *testing.T, dsn string) {
	const workers = 8
	s, _, machines := seeded(t, dsn)
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		for w := range workers {
			if err := tx.InsertPool(ctx, Pool{Name: fmt.Sprintf("p%d", w), Datacenter: "dc1", Profile: "general"}); err != nil {
				return err
			}
		}
		return nil
	})
	available := filterMachines(machines, MachineFilter{State: MachineAvailable})

	got := make([][]string, workers) // machines each worker was told it got
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			pool := fmt.Sprintf("p%d", w)
			for {
				var allocated string
				err := s.InTx(t.Context(), func(ctx context.Context, tx Tx) error {
					allocated = "" // fn may run more than once
					ms, err := tx.ListMachines(ctx, MachineFilter{State: MachineAvailable, Limit: 1})
					if err != nil || len(ms) == 0 {
						return err
					}
					m, err := tx.GetMachine(ctx, ms[0].ID)
					if err != nil {
						return err
					}
					if m.State != MachineAvailable {
						return fmt.Errorf("machine %s: %w", m.ID, ErrConflict)
					}
					m.State, m.Pool = MachineAllocated, pool
					if err := tx.UpdateMachine(ctx, m); err != nil {
						return err
					}
					allocated = m.ID
					return nil
				})
				if err != nil {
					errs[w] = err
					return
				}
				if allocated == "" {
					return
				}
				got[w] = append(got[w], allocated)
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Errorf("worker %d: %v", w, err)
		}
	}

	// Every available machine went to exactly one worker, and the store
	// agrees with what each worker was told.
	owner := map[string]string{}
	for w, ids := range got {
		for _, id := range ids {
			if prev, ok := owner[id]; ok {
				t.Errorf("machine %s allocated to both %s and p%d", id, prev, w)
			}
			owner[id] = fmt.Sprintf("p%d", w)
		}
	}
	want := map[string]string{}
	for _, m := range available {
		want[m.ID] = owner[m.ID]
	}
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		ms, err := tx.ListMachines(ctx, MachineFilter{})
		if err != nil {
			return err
		}
		stored := map[string]string{}
		for _, m := range ms {
			if _, ok := want[m.ID]; ok {
				if m.State != MachineAllocated {
					t.Errorf("machine %s is %s, want allocated", m.ID, m.State)
				}
				stored[m.ID] = m.Pool
			}
		}
		if diff := gocmp.Diff(want, stored); diff != "" {
			t.Errorf("pool of each machine, as workers saw it (-want) and as stored (+got):\n%s", diff)
		}
		return nil
	})
	if len(owner) != len(available) {
		t.Errorf("workers allocated %d machines, want all %d available ones", len(owner), len(available))
	}
}

func TestOpenSQLite(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		dsn     string
		wantErr bool
	}{
		{name: "path", dsn: filepath.Join(dir, "a.db")},
		{name: "sqlite URL", dsn: "sqlite://" + filepath.Join(dir, "b.db")},
		{name: "empty", dsn: "", wantErr: true},
		{name: "empty URL", dsn: "sqlite://", wantErr: true},
		{name: "parameters", dsn: filepath.Join(dir, "c.db") + "?_txlock=deferred", wantErr: true},
		{name: "missing directory", dsn: filepath.Join(dir, "nope", "d.db"), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.dsn)
			if tc.wantErr {
				if err == nil {
					_ = s.Close()
					t.Fatalf("Open(%q) succeeded, want an error", tc.dsn)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tc.dsn, err)
			}
			defer func() { _ = s.Close() }()
			// The settings every connection must have.
			db := s.(*sqlStore).db
			var journal string
			var foreignKeys, busyTimeout int
			for _, q := range []struct {
				pragma string
				dest   any
			}{{"journal_mode", &journal}, {"foreign_keys", &foreignKeys}, {"busy_timeout", &busyTimeout}} {
				if err := db.QueryRowContext(t.Context(), "PRAGMA "+q.pragma).Scan(q.dest); err != nil {
					t.Fatalf("PRAGMA %s: %v", q.pragma, err)
				}
			}
			got := fmt.Sprintf("journal_mode=%s foreign_keys=%d busy_timeout=%d", journal, foreignKeys, busyTimeout)
			if want := "journal_mode=wal foreign_keys=1 busy_timeout=30000"; got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}
