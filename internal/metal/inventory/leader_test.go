package inventory

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-dev/strata/internal/testutil"
)

// postgresDSN is a fresh PostgreSQL inventory; tests of leader election
// need one (they skip under -short without PostgreSQL).
func postgresDSN(t *testing.T) string {
	t.Helper()
	for _, db := range testutil.Databases(t) {
		if db.Name == "PostgreSQL" {
			return db.NewDSN(t)
		}
	}
	t.Skip("leader election runs on PostgreSQL only")
	return ""
}

// TestLeadershipFencesWrites: one replica holds the lock; its writes run on
// the lock's connection, so once that connection is cut they are refused
// for good, and another replica takes the lock.
func TestLeadershipFencesWrites(t *testing.T) {
	dsn := postgresDSN(t)
	ctx := t.Context()
	open := func() Store {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b := open(), open()
	if !Replicated(a) {
		t.Fatal("a PostgreSQL store is not Replicated")
	}
	leadA, err := TryLead(ctx, a)
	if err != nil {
		t.Fatalf("the first replica taking the lock: %v", err)
	}
	if _, err := TryLead(ctx, b); !errors.Is(err, ErrLockHeld) {
		t.Fatalf("the second replica taking a held lock: %v, want ErrLockHeld", err)
	}
	if pid, err := LeaderPID(ctx, b); err != nil || pid != leadA.PID() {
		t.Fatalf("LeaderPID = %d, %v; want the lock's backend %d", pid, err, leadA.PID())
	}
	insert := func(l *Leadership, name string) error {
		return l.InTx(ctx, func(ctx context.Context, tx Tx) error {
			return tx.InsertProfile(ctx, NodeProfile{Name: name, MinCPUCores: 1, MinMemoryGiB: 1})
		})
	}
	if err := insert(leadA, "before"); err != nil {
		t.Fatalf("the leader writing: %v", err)
	}

	testutil.TerminateBackend(t, dsn, leadA.PID())
	if err := insert(leadA, "after"); !errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("the deposed leader writing: %v, want ErrLeadershipLost", err)
	}
	if err := leadA.Check(); !errors.Is(err, ErrLeadershipLost) {
		t.Fatalf("the deposed leader's check: %v, want ErrLeadershipLost", err)
	}
	leadB, err := TryLead(ctx, b)
	if err != nil {
		t.Fatalf("the second replica taking the released lock: %v", err)
	}
	defer leadB.Release()
	if err := insert(leadB, "new-leader"); err != nil {
		t.Fatalf("the new leader writing: %v", err)
	}
	var names []string
	if err := b.InTx(ctx, func(ctx context.Context, tx Tx) error {
		ps, err := tx.ListProfiles(ctx)
		for _, p := range ps {
			names = append(names, p.Name)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"before", "new-leader"}, names); diff != "" {
		t.Errorf("profiles (-want +got): the deposed leader wrote after its cut:\n%s", diff)
	}
}

// TestLeadershipRelease: a released lock is free at once, and the
// connection that held it does not go back to the pool still holding it.
func TestLeadershipRelease(t *testing.T) {
	dsn := postgresDSN(t)
	ctx := t.Context()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close() //nolint:errcheck // test store
	for i := range 3 {
		l, err := TryLead(ctx, s)
		if err != nil {
			t.Fatalf("taking the lock, round %d: %v", i, err)
		}
		l.Release()
		if err := l.Check(); !errors.Is(err, ErrLeadershipLost) {
			t.Fatalf("a released lock's check: %v, want ErrLeadershipLost", err)
		}
	}
	if pid, err := LeaderPID(ctx, s); err != nil || pid != 0 {
		t.Fatalf("after release, LeaderPID = %d, %v; want no leader", pid, err)
	}
}

// TestLeadershipNeedsPostgreSQL: SQLite is single-replica.
func TestLeadershipNeedsPostgreSQL(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "inventory.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close() //nolint:errcheck // test store
	if Replicated(s) {
		t.Error("a SQLite store is Replicated")
	}
	if _, err := TryLead(t.Context(), s); err == nil || err.Error() != "leader election needs a PostgreSQL inventory: SQLite is single-replica" {
		t.Errorf("TryLead on SQLite = %v, want the single-replica error", err)
	}
}
