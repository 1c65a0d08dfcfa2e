package inventory

import (
	"context"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// testFreeListsFollowWrites checks that the free machines a transaction
// lists stay exact while it writes: after allocating, releasing (a clean
// machine, which is free again, and a joined one, which is being wiped),
// inside a savepoint, after undoing it and after keeping one, the kept list
// equals what the database holds (read with a filter that is not kept).
func testFreeListsFollowWrites(t *testing.T, dsn string) {
	s, _, machines := seeded(t, dsn)
	// Machine 0 (pool-a, clean) and machine 5 (pool-b, joined) are released
	// below: the SKU of machine 0 is the list that changes.
	kept := MachineFilter{Datacenter: "dc1", SKU: machines[0].SKU, Free: true}
	fresh := kept
	fresh.Limit = len(machines) // a filter with a limit is read from the database
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		check := func(step string) {
			t.Helper()
			got, err := tx.ListPlacements(ctx, kept)
			if err != nil {
				t.Fatal(err)
			}
			want, err := tx.ListPlacements(ctx, fresh)
			if err != nil {
				t.Fatal(err)
			}
			if diff := gocmp.Diff(want, got); diff != "" {
				t.Errorf("%s: free machines (-database +kept):\n%s", step, diff)
			}
		}
		check("first read")
		free, err := tx.ListPlacements(ctx, kept)
		if err != nil {
			return err
		}
		if len(free) < 3 {
			t.Fatalf("%d free machines of SKU %s, want at least 3", len(free), kept.SKU)
		}
		if err := tx.AllocateMachines(ctx, []string{free[0].ID, free[1].ID}, "pool-a"); err != nil {
			return err
		}
		check("after allocating")
		if err := tx.ReleaseMachines(ctx, []string{machines[0].ID, machines[5].ID, free[0].ID}); err != nil {
			return err
		}
		check("after releasing")
		if err := tx.Savepoint(ctx, "undone"); err != nil {
			return err
		}
		if err := tx.AllocateMachines(ctx, []string{free[2].ID}, "pool-b"); err != nil {
			return err
		}
		check("inside a savepoint")
		if err := tx.EndSavepoint(ctx, "undone", false); err != nil {
			return err
		}
		check("after undoing the savepoint")
		if err := tx.Savepoint(ctx, "kept"); err != nil {
			return err
		}
		if err := tx.ReleaseMachines(ctx, []string{free[1].ID}); err != nil {
			return err
		}
		if err := tx.EndSavepoint(ctx, "kept", true); err != nil {
			return err
		}
		check("after keeping a savepoint")
		if err := tx.AllocateMachines(ctx, []string{machines[5].ID}, "pool-a"); err == nil {
			t.Error("allocating a machine being wiped succeeded")
		}
		check("after a refused allocation")
		return nil
	})
}
