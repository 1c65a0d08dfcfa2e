package inventory

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-dev/strata/internal/sqldb"
)

// migrationFiles are the schema's migrations, NNNN_name.sql, applied in
// order. Each must be valid on SQLite and PostgreSQL. Never edit one that was
// released: add the next.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int64
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations in version order.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("listing migrations: %w", err)
	}
	var ms []migration
	for _, name := range names {
		base := strings.TrimSuffix(path.Base(name), ".sql")
		prefix, _, _ := strings.Cut(base, "_")
		version, err := strconv.ParseInt(prefix, 10, 64)
		if err != nil || version < 1 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version number, as in 0001_init.sql", name)
		}
		text, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: version, name: base, sql: string(text)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// migrate applies the migrations up to version not yet recorded in
// schema_migrations, each in its own transaction with its record, so a
// failed migration leaves no trace and a second run does nothing.
func (s *sqlStore) migrate(ctx context.Context, version int64) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	const createTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at BIGINT NOT NULL
	)`
	if err := s.migrationTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, createTable)
		return err
	}); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	for _, m := range ms {
		if m.version > version {
			break
		}
		err := s.migrationTx(ctx, func(tx *sql.Tx) error {
			var applied int
			err := tx.QueryRowContext(ctx, s.engine.Rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.version).Scan(&applied)
			if err != nil || applied > 0 {
				return err
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, s.engine.Rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, nanos(s.now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("applying migration %s: %w", m.name, err)
		}
	}
	return nil
}

// migrationTx runs fn in a transaction that excludes other processes
// migrating the same database: SQLite's immediate transactions already do;
// on PostgreSQL a transaction-scoped advisory lock does.
func (s *sqlStore) migrationTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if s.engine == sqldb.Postgres {
		// An arbitrary constant naming "strata inventory migrations".
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7305183940151)`); err != nil {
			return err
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
