// Package storetest fills a fleet store with fixture rows by plain SQL, for
// the console's tests (the aggregator writes the store in production).
package storetest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/strata-dev/strata/internal/console/store"
	"github.com/strata-dev/strata/internal/sqldb"
)

// FleetSQL is testdata/fleet.sql: a small fleet whose story the console's
// tests check (see the file's comment).
func FleetSQL(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate storetest's source")
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "testdata", "fleet.sql"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Open opens a store at dsn (a new SQLite file in the test's directory
// when ""), fills it with the statements of fill (FleetSQL, or "" for
// none), and closes it when the test ends.
func Open(t testing.TB, dsn, fill string) (*store.Store, string) {
	t.Helper()
	if dsn == "" {
		dsn = filepath.Join(t.TempDir(), "fleet.db")
	}
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if fill != "" {
		Exec(t, dsn, fill)
	}
	return s, dsn
}

// Exec runs statements on the store at dsn through a connection of its
// own, as the aggregator, another writer, would. Statements end with a
// semicolon at the end of a line; lines starting with -- are comments.
func Exec(t testing.TB, dsn, statements string) {
	t.Helper()
	db, engine, err := sqldb.Open(context.Background(), dsn, "the fleet store fixture")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close() //nolint:errcheck // test connection
	var lines []string
	for line := range strings.SplitSeq(statements, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			lines = append(lines, line)
		}
	}
	for stmt := range strings.SplitSeq(strings.Join(lines, "\n"), ";\n") {
		if strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(stmt), ";")) == "" {
			continue
		}
		if _, err := db.ExecContext(context.Background(), engine.Rebind(strings.TrimSuffix(strings.TrimSpace(stmt), ";"))); err != nil {
			t.Fatalf("running %q: %v", stmt, err)
		}
	}
}
