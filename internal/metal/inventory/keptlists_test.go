package inventory

import (
	"context"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// testKeptListsFollowWrites checks that the machine lists a transaction
// keeps (the free machines of a SKU, each pool's machines) stay exact while
// it writes: after allocating, releasing (a clean machine, which is free
// again, and a joined one, which is being wiped), inside a savepoint, after
// undoing it and after keeping one, each kept list equals what the
// database holds (read with a filter that is not kept).
func testKeptListsFollowWrites(t *testing.T, dsn string) {
	s, _, machines := seeded(t, dsn)
	// Machine 0 (pool-a, clean) and machine 5 (pool-b, joined) are released
	// below: the SKU of machine 0 is the free list that changes.
	lists := []MachineFilter{
		{Datacenter: "dc1", SKU: machines[0].SKU, Free: true},
		{Pool: "pool-a"},
		{Pool: "pool-b"},
	}
	kept := lists[0]
	inTx(t, s, func(ctx context.Context, tx Tx) error {
		check := func(step string) {
			t.Helper()
			for _, f := range lists {
				got, err := tx.ListPlacements(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				fresh := f
				fresh.Limit = len(machines) // a filter with a limit is read from the database
				want, err := tx.ListPlacements(ctx, fresh)
				if err != nil {
					t.Fatal(err)
				}
				if diff := gocmp.Diff(want, got); diff != "" {
					t.Errorf("%s: machines of %+v (-database +kept):\n%s", step, f, diff)
				}
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
