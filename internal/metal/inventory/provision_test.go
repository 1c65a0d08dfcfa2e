package inventory

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

// The provisioning side of the store: allocation guarded by provision state,
// release into wiping, batched provision moves and the join target.

func testAllocateAndRelease(t *testing.T, dsn string) {
	s, clock, machines := seeded(t, dsn)
	t1 := t0.Add(time.Hour)
	clock.Set(t1)
	get := func(id string) Machine {
		t.Helper()
		var m Machine
		inTx(t, s, func(ctx context.Context, tx Tx) error {
			var err error
			m, err = tx.GetMachine(ctx, id)
			return err
		})
		return m
	}

	t.Run("allocate", func(t *testing.T) {
		inTx(t, s, func(ctx context.Context, tx Tx) error {
			return tx.AllocateMachines(ctx, []string{machines[20].ID, machines[21].ID}, "pool-b")
		})
		for _, m := range []Machine{machines[20], machines[21]} {
			want := m
			want.State, want.Pool, want.UpdatedAt = MachineAllocated, "pool-b", t1
			if diff := gocmp.Diff(want, get(m.ID)); diff != "" {
				t.Errorf("allocated machine (-want +got):\n%s", diff)
			}
		}
	})

	conflicts := map[string]Machine{
		"wiping":          machines[8],
		"in another pool": machines[0],
		"unhealthy":       machines[30],
	}
	for name, taken := range conflicts {
		t.Run("refuses a machine "+name, func(t *testing.T) {
			free := machines[22]
			err := txErr(t, s, func(ctx context.Context, tx Tx) error {
				return tx.AllocateMachines(ctx, []string{free.ID, taken.ID}, "pool-b")
			})
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("AllocateMachines: %v, want ErrConflict", err)
			}
			// Nothing moved, not even the machine that was free.
			if diff := gocmp.Diff(free, get(free.ID)); diff != "" {
				t.Errorf("free machine after the refused allocation (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("release", func(t *testing.T) {
		// A machine of pool-a in each provision state, released together.
		want := map[ProvisionState]ProvisionState{
			ProvisionClean:   ProvisionClean,
			ProvisionJoining: ProvisionWiping,
			ProvisionJoined:  ProvisionWiping,
			ProvisionWiping:  ProvisionWiping,
		}
		var ids []string
		byID := map[string]Machine{}
		inTx(t, s, func(ctx context.Context, tx Tx) error {
			for i, p := range ProvisionStates {
				m := machines[i]
				m.Provision = p
				if err := tx.UpdateMachine(ctx, m); err != nil {
					return err
				}
				ids = append(ids, m.ID)
				byID[m.ID] = m
			}
			return tx.ReleaseMachines(ctx, ids)
		})
		for _, id := range ids {
			m := byID[id]
			expect := m
			expect.State, expect.Pool, expect.Provision, expect.UpdatedAt = MachineAvailable, "", want[m.Provision], t1
			if diff := gocmp.Diff(expect, get(id)); diff != "" {
				t.Errorf("machine released while %s (-want +got):\n%s", m.Provision, diff)
			}
		}
	})

	t.Run("release of an unknown machine", func(t *testing.T) {
		err := txErr(t, s, func(ctx context.Context, tx Tx) error {
			return tx.ReleaseMachines(ctx, []string{machines[30].ID, "nope"})
		})
		if !errors.Is(err, ErrConflict) {
			t.Errorf("ReleaseMachines: %v, want ErrConflict", err)
		}
	})
}

func testUpdateProvision(t *testing.T, dsn string) {
	s, clock, machines := seeded(t, dsn)
	t1 := t0.Add(time.Hour)
	clock.Set(t1)
	config := "kubelet-1.37"
	move := func(u ProvisionUpdate) int {
		t.Helper()
		var n int
		inTx(t, s, func(ctx context.Context, tx Tx) error {
			var err error
			n, err = tx.UpdateProvision(ctx, u)
			return err
		})
		return n
	}
	a0, a1, b5 := machines[0].ID, machines[1].ID, machines[5].ID

	steps := []struct {
		name  string
		u     ProvisionUpdate
		moved int
	}{
		{"nothing is joining yet", ProvisionUpdate{IDs: []string{a0, a1, b5}, From: ProvisionJoining, To: ProvisionJoined}, 0},
		{"claim two of pool-a", ProvisionUpdate{IDs: []string{a0, a1, b5}, From: ProvisionClean, Pool: "pool-a", To: ProvisionJoining}, 2},
		{"a machine of another pool is left alone", ProvisionUpdate{IDs: []string{b5}, From: ProvisionJoined, Pool: "pool-a", To: ProvisionWiping}, 0},
		{"join them, with their node config", ProvisionUpdate{IDs: []string{a0, a1, b5}, From: ProvisionJoining, Pool: "pool-a", To: ProvisionJoined, NodeConfig: &config}, 2},
	}
	for _, st := range steps {
		if got := move(st.u); got != st.moved {
			t.Errorf("%s: moved %d, want %d", st.name, got, st.moved)
		}
	}
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		for i, want := range map[int]Machine{0: machines[0], 1: machines[1], 5: machines[5]} {
			if i < 5 {
				want.Provision, want.Software.NodeConfig, want.UpdatedAt = ProvisionJoined, config, t1
			}
			got, err := tx.GetMachine(ctx, want.ID)
			if err != nil {
				return err
			}
			if diff := gocmp.Diff(want, got); diff != "" {
				t.Errorf("machine %d (-want +got):\n%s", i, diff)
			}
		}
		return nil
	})

	// More IDs than one statement takes, most of them unknown: each batch
	// counts what it moved.
	ids := make([]string, 0, 2*idBatch)
	for i := range 2*idBatch - len(machines) {
		ids = append(ids, fmt.Sprintf("nope-%d", i))
	}
	clean := 0
	for _, m := range machines {
		ids = append(ids, m.ID)
		if m.Provision == ProvisionClean {
			clean++
		}
	}
	clean -= 2 // machines 0 and 1 joined above
	if got := move(ProvisionUpdate{IDs: ids, From: ProvisionClean, To: ProvisionClean}); got != clean {
		t.Errorf("moved %d clean machines in batches, want %d", got, clean)
	}
}

func testPoolWithoutJoinTarget(t *testing.T, dsn string) {
	s, _, _ := seeded(t, dsn)
	bare := Pool{Name: "bare", Datacenter: "dc1", Profile: "general", Generation: 1, CreatedAt: t0, UpdatedAt: t0}
	minimal := Pool{Name: "minimal", Datacenter: "dc1", Profile: "general", Generation: 1, CreatedAt: t0, UpdatedAt: t0,
		JoinTarget: &JoinTarget{Cluster: "workload-1"}}
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		for _, p := range []Pool{bare, minimal} {
			if err := tx.InsertPool(ctx, p); err != nil {
				return err
			}
			got, err := tx.GetPool(ctx, p.Name)
			if err != nil {
				return err
			}
			if diff := gocmp.Diff(p, got); diff != "" {
				t.Errorf("pool %s (-want +got):\n%s", p.Name, diff)
			}
		}
		return nil
	})
	err := txErr(t, s, func(ctx context.Context, tx Tx) error {
		return tx.InsertPool(ctx, Pool{Name: "nameless", Datacenter: "dc1", Profile: "general", JoinTarget: &JoinTarget{}})
	})
	if err == nil {
		t.Error("InsertPool with a join target but no cluster succeeded")
	}
}

// testUpgradeFrom0001 writes rows under the first schema and opens the store
// again: the rows read back with the defaults of the later migrations.
func testUpgradeFrom0001(t *testing.T, dsn string) {
	clock := &testClock{now: t0}
	old, err := openVersion(t.Context(), dsn, clock.Now, 1)
	if err != nil {
		t.Fatalf("opening at version 1: %v", err)
	}
	for _, stmt := range []string{
		`INSERT INTO datacenters (name, region, maintenance_zones) VALUES ('dc1', 'test', 20)`,
		`INSERT INTO racks (name, datacenter) VALUES ('dc1-r001', 'dc1')`,
		`INSERT INTO skus (name, arch, cpu_cores, memory_gib, gpus, gpu_model, local_disk_gib) VALUES ('general-32', 'amd64', 32, 128, 0, '', 960)`,
		`INSERT INTO node_profiles (name, min_cpu_cores, min_memory_gib, min_gpus, gpu_model, min_local_disk_gib, node_config, created_at, updated_at)
			VALUES ('general', 32, 128, 0, '', 0, 'kubelet-1.37', 1, 1)`,
		`INSERT INTO pools (name, datacenter, profile, capacity, generation, deleting, created_at, updated_at)
			VALUES ('web', 'dc1', 'general', 1, 1, FALSE, 1, 1)`,
		`INSERT INTO machines (id, datacenter, maintenance_zone, rack, sku, state, healthy, health_message, os_image, kernel, node_config, pool, updated_at)
			VALUES ('dc1-r001-u01', 'dc1', 1, 'dc1-r001', 'general-32', 'allocated', TRUE, '', 'os', '6.12', '', 'web', 1)`,
	} {
		if _, err := old.db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("writing under schema 0001: %v\n%s", err, stmt)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := openStore(t, dsn, clock)
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		p, err := tx.GetPool(ctx, "web")
		if err != nil {
			return err
		}
		if p.NodeConfig != "" || p.JoinTarget != nil {
			t.Errorf("pool from schema 0001 = node config %q, join target %+v; want none", p.NodeConfig, p.JoinTarget)
		}
		m, err := tx.GetMachine(ctx, "dc1-r001-u01")
		if err != nil {
			return err
		}
		if m.Provision != ProvisionClean {
			t.Errorf("machine from schema 0001 is %q, want %q", m.Provision, ProvisionClean)
		}
		return nil
	})
}

// testUpgradeFrom0002 writes a disruption under schema 0002 and opens the
// store again: it reads back with no operation.
func testUpgradeFrom0002(t *testing.T, dsn string) {
	clock := &testClock{now: t0}
	old, err := openVersion(t.Context(), dsn, clock.Now, 2)
	if err != nil {
		t.Fatalf("opening at version 2: %v", err)
	}
	if _, err := Seed(t.Context(), old, smallDC); err != nil {
		t.Fatal(err)
	}
	_, _, _, machines := Generate(smallDC)
	if _, err := old.db.ExecContext(t.Context(), old.engine.Rebind(`INSERT INTO disruptions
		(id, machine, pool, datacenter, maintenance_zone, reason, state, actor, message, created_at, updated_at)
		VALUES ('d-old', ?, '', 'dc1', 1, 'hardware-repair', 'Pending', 'dcops', 'fan', 1, 1)`), machines[0].ID); err != nil {
		t.Fatalf("writing under schema 0002: %v", err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := openStore(t, dsn, clock)
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		d, err := tx.GetDisruption(ctx, "d-old")
		if err != nil {
			return err
		}
		if d.Operation != (Operation{}) || d.State != DisruptionPending {
			t.Errorf("disruption from schema 0002 = %s with operation %+v; want Pending with none", d.State, d.Operation)
		}
		return nil
	})
}

// testUpgradeFrom0005 writes a pool with a bootstrap kubeconfig under schema
// 0005 and opens the store again: the kubeconfig is gone from the row, and
// the pool reads back with a join target that has no credential yet (the
// pool controller hands it a bootstrap token).
func testUpgradeFrom0005(t *testing.T, dsn string) {
	clock := &testClock{now: t0}
	old, err := openVersion(t.Context(), dsn, clock.Now, 5)
	if err != nil {
		t.Fatalf("opening at version 5: %v", err)
	}
	if _, err := Seed(t.Context(), old, smallDC); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`INSERT INTO node_profiles (name, min_cpu_cores, min_memory_gib, min_gpus, gpu_model, min_local_disk_gib, node_config, created_at, updated_at)
			VALUES ('general', 32, 128, 0, '', 0, 'kubelet-1.37', 1, 1)`,
		`INSERT INTO pools (name, datacenter, profile, capacity, generation, deleting, created_at, updated_at, join_cluster, join_kubeconfig)
			VALUES ('web', 'dc1', 'general', 1, 1, FALSE, 1, 1, 'workload-1', 'YXBpVmVyc2lvbjogdjEK')`,
	} {
		if _, err := old.db.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("writing under schema 0005: %v\n%s", err, stmt)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := openStore(t, dsn, clock)
	var kubeconfig string
	if err := s.db.QueryRowContext(t.Context(), `SELECT join_kubeconfig FROM pools WHERE name = 'web'`).Scan(&kubeconfig); err != nil {
		t.Fatal(err)
	}
	if kubeconfig != "" {
		t.Errorf("join_kubeconfig after the upgrade = %q, want it blanked", kubeconfig)
	}
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		p, err := tx.GetPool(ctx, "web")
		if err != nil {
			return err
		}
		if diff := gocmp.Diff(&JoinTarget{Cluster: "workload-1"}, p.JoinTarget); diff != "" {
			t.Errorf("join target from schema 0005 (-want +got):\n%s", diff)
		}
		return nil
	})
}
