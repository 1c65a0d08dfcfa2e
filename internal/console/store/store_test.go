package store

import (
	"context"
	"testing"

	"github.com/strata-dev/strata/internal/testutil"
)

func TestOpenMakesTablesAndKeepsThemAcrossOpens(t *testing.T) {
	for _, db := range testutil.Databases(t) {
		t.Run(db.Name, func(t *testing.T) { testOpen(t, db.NewDSN(t)) })
	}
}

func testOpen(t *testing.T, dsn string) {
	ctx := context.Background()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO revisions (kind, rev) VALUES ('', 7)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Same version: the rows stay.
	s, err = Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	var rev int64
	if err := s.db.QueryRowContext(ctx, `SELECT rev FROM revisions WHERE kind = ''`).Scan(&rev); err != nil || rev != 7 {
		t.Fatalf("revision after reopening = %d, %v; want 7", rev, err)
	}
	// Another version: the tables are made anew, empty.
	if _, err := s.db.ExecContext(ctx, `UPDATE console_meta SET value = 'old' WHERE key = 'schema'`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close() //nolint:errcheck // test
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM revisions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("revisions after a schema change = %d rows, %v; want 0", n, err)
	}
}
