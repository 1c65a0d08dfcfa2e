package testutil

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// PostgresDSNEnv names the PostgreSQL server the tests use; `make test`
// starts one with hack/postgres.sh.
const PostgresDSNEnv = "STRATA_TEST_POSTGRES_DSN"

// Database is one engine the inventory runs on; NewDSN returns the DSN of an
// empty database of it, removed when the test ends.
type Database struct {
	Name   string
	NewDSN func(t *testing.T) string
}

// Databases returns SQLite and PostgreSQL, so a suite runs on both engines.
// Without PostgreSQL the test fails (skips with -short).
func Databases(t *testing.T) []Database {
	t.Helper()
	sqlite := Database{Name: "SQLite", NewDSN: func(t *testing.T) string {
		return filepath.Join(t.TempDir(), "inventory.db")
	}}
	dsn := os.Getenv(PostgresDSNEnv)
	if dsn == "" {
		if testing.Short() {
			return []Database{sqlite}
		}
		t.Fatal(PostgresDSNEnv + " is not set: run `make test`, which starts PostgreSQL with hack/postgres.sh, " +
			"or set it to the DSN `hack/postgres.sh start DIR` prints")
	}
	return []Database{sqlite, {Name: "PostgreSQL", NewDSN: func(t *testing.T) string { return postgresSchema(t, dsn) }}}
}

// PostgresDSN returns the DSN of an empty schema of the test's own on the
// tests' PostgreSQL server, dropped when the test ends, or "" when
// PostgresDSNEnv is not set: for tests that run on PostgreSQL when there is
// one (the end-to-end broker failover).
func PostgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(PostgresDSNEnv)
	if dsn == "" {
		return ""
	}
	return postgresSchema(t, dsn)
}

// postgresSchema creates a schema of its own for a test and returns a DSN
// whose search_path points at it.
func postgresSchema(t *testing.T, dsn string) string {
	t.Helper()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("opening %s: %v", dsn, err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	schema := fmt.Sprintf("test_%d_%x", os.Getpid(), rand.Uint64())
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		// A connection of the test's broker that is still closing may hold
		// locks the drop needs: PostgreSQL then aborts one of the two as a
		// deadlock (40P01), and the drop goes through once that one is gone.
		var err error
		for range 5 {
			_, err = admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			if pgErr := (*pgconn.PgError)(nil); !errors.As(err, &pgErr) || pgErr.Code != "40P01" {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parsing %s: %v", PostgresDSNEnv, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// TerminateBackend ends a PostgreSQL backend (a connection's server process)
// and waits until it is gone, as an operator, or a network cut PostgreSQL
// notices, would.
func TerminateBackend(t testing.TB, dsn string, pid int) {
	t.Helper()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close() //nolint:errcheck // test connection
	var ok bool
	if err := admin.QueryRowContext(context.Background(), `SELECT pg_terminate_backend($1, 10000)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminating PostgreSQL backend %d: %v (terminated: %t)", pid, err, ok)
	}
}
