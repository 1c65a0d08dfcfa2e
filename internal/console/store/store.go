// Package store is the fleet aggregator's SQL store: what every cluster and
// the Compute Broker hold that the console shows, trimmed, in SQLite
// (embedded, the default) or PostgreSQL (production). The aggregator is its
// only writer (write.go); the console reads it (query.go). The schema is
// schema.sql; the store is derived data, rebuilt by relisting when the
// schema changes.
package store

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/strata-dev/strata/internal/sqldb"
)

// HubCluster is the name the hub's objects are stored under.
const HubCluster = "hub"

// The kinds of the sources and objects tables (Kubernetes kinds; the
// broker's have the Broker prefix).
const (
	KindNode               = "Node"
	KindPod                = "Pod"
	KindEvent              = "Event"
	KindStatelessApp       = "StatelessApp"
	KindStatefulApp        = "StatefulApp"
	KindCluster            = "Cluster"
	KindPool               = "Pool"
	KindMaintenanceRollout = "MaintenanceRollout"
	KindAppNamespace       = "AppNamespace"
	KindMachine            = "BrokerMachine"
	KindBrokerPool         = "BrokerPool"
	KindDisruption         = "BrokerDisruption"
)

// BrokerSource is the cluster name of the broker's sources.
const BrokerSource = "broker"

// schemaVersion names schema.sql's shape. Change it with schema.sql: a
// store of another version is dropped and made again at Open.
const schemaVersion = "2"

//go:embed schema.sql
var schema string

// tables are schema.sql's tables, dropped when the version changes.
var tables = []string{"sources", "revisions", "nodes", "pods", "objects", "events", "machines", "broker_pools", "disruptions"}

// Store is the aggregated store.
type Store struct {
	db     *sql.DB
	engine sqldb.Engine
}

// Open opens the store named by dsn (postgres://... or a SQLite file path)
// and makes its tables, dropping those of another schema version first.
func Open(ctx context.Context, dsn string) (*Store, error) {
	db, engine, err := sqldb.Open(ctx, dsn, "the fleet store")
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, engine: engine}
	if err := s.ensureSchema(ctx); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing the fleet store: %w", err)
	}
	return nil
}

// ensureSchema makes the tables of schemaVersion in one transaction.
func (s *Store) ensureSchema(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("making the fleet store's tables: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS console_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("making the fleet store's tables: %w", err)
	}
	var version string
	err = tx.QueryRowContext(ctx, s.engine.Rebind(`SELECT value FROM console_meta WHERE key = ?`), "schema").Scan(&version)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("reading the fleet store's schema version: %w", err)
	}
	if version != schemaVersion {
		for _, t := range tables {
			if _, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+t); err != nil {
				return fmt.Errorf("dropping table %s of schema version %q: %w", t, version, err)
			}
		}
	}
	for stmt := range strings.SplitSeq(stripComments(schema), ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("making the fleet store's tables: %w", err)
		}
	}
	if version != schemaVersion {
		if _, err := tx.ExecContext(ctx, s.engine.Rebind(`DELETE FROM console_meta WHERE key = ?`), "schema"); err != nil {
			return fmt.Errorf("writing the fleet store's schema version: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.engine.Rebind(`INSERT INTO console_meta (key, value) VALUES (?, ?)`), "schema", schemaVersion); err != nil {
			return fmt.Errorf("writing the fleet store's schema version: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("making the fleet store's tables: %w", err)
	}
	return nil
}

// stripComments drops the -- comments of the schema (which may hold
// semicolons) and its blank lines.
func stripComments(schema string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(schema, "\n") {
		if code, _, _ := strings.Cut(line, "--"); strings.TrimSpace(code) != "" {
			b.WriteString(code + "\n")
		}
	}
	return b.String()
}

// Sources lists every watched stream with how fresh its copy is, by
// cluster and kind.
func (s *Store) Sources(ctx context.Context) ([]Source, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT cluster, kind, resource_version, synced, last_seen, last_error, error_since
		FROM sources ORDER BY cluster, kind`)
	if err != nil {
		return nil, fmt.Errorf("listing the fleet store's sources: %w", err)
	}
	defer rows.Close() //nolint:errcheck // read-only; Err is checked
	var out []Source
	for rows.Next() {
		var (
			src                  Source
			synced               int
			lastSeen, errorSince int64
		)
		if err := rows.Scan(&src.Cluster, &src.Kind, &src.ResourceVersion, &synced, &lastSeen, &src.LastError, &errorSince); err != nil {
			return nil, fmt.Errorf("reading the fleet store's sources: %w", err)
		}
		src.Synced, src.LastSeen, src.ErrorSince = synced != 0, fromMillis(lastSeen), fromMillis(errorSince)
		out = append(out, src)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the fleet store's sources: %w", err)
	}
	return out, nil
}

// Revisions returns the store's revision (key "") and each kind's last
// change: a kind whose revision moved has changed.
func (s *Store) Revisions(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, rev FROM revisions`)
	if err != nil {
		return nil, fmt.Errorf("reading the fleet store's revisions: %w", err)
	}
	defer rows.Close() //nolint:errcheck // read-only; Err is checked
	out := map[string]int64{}
	for rows.Next() {
		var (
			kind string
			rev  int64
		)
		if err := rows.Scan(&kind, &rev); err != nil {
			return nil, fmt.Errorf("reading the fleet store's revisions: %w", err)
		}
		out[kind] = rev
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the fleet store's revisions: %w", err)
	}
	return out, nil
}
