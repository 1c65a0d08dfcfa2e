// Package sqldb opens the SQL databases Strata's components keep their state
// in: SQLite (embedded, pure Go, the default) or PostgreSQL (production),
// with the same queries on both.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// Engine is the SQL database behind a DSN. Queries are the same on both;
// only connection setup, placeholders and error codes differ.
type Engine int

// The engines.
const (
	SQLite Engine = iota
	Postgres
)

// sqliteBusyWait is how long a SQLite statement waits for another process's
// lock before it fails.
const sqliteBusyWait = 30 * time.Second

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens and pings the database named by dsn; what names it in errors
// ("the inventory database"). A dsn that starts with postgres:// or
// postgresql:// is a PostgreSQL connection string; anything else is a
// SQLite file, as a plain path or sqlite://path, created when missing (its
// directory must exist). A SQLite database has a single connection, so a
// transaction must not wait on another of the same *sql.DB.
func Open(ctx context.Context, dsn, what string) (*sql.DB, Engine, error) {
	var (
		db     *sql.DB
		engine Engine
	)
	if IsPostgres(dsn) {
		var err error
		if db, err = sql.Open("pgx", dsn); err != nil {
			return nil, 0, fmt.Errorf("opening %s on PostgreSQL: %w", what, err)
		}
		engine = Postgres
	} else {
		path := strings.TrimPrefix(dsn, "sqlite://")
		if path == "" {
			return nil, 0, fmt.Errorf("opening %s on SQLite: empty database path", what)
		}
		if strings.Contains(path, "?") {
			return nil, 0, fmt.Errorf("opening %s on SQLite %q: parameters are not accepted in the path", what, path)
		}
		// WAL lets readers in other processes run beside the writer;
		// _txlock=immediate takes the write lock at BEGIN so a transaction
		// never fails upgrading a read lock; busy_timeout covers other
		// processes holding the lock. The page cache holds up to 64 MiB
		// (SQLite's default is 2 MiB): a broker's inventory of 100,000
		// machines and its indexes fit, where with the default nearly
		// every page an allocation's UPDATEs touched was read from the
		// file again (docs/benchmarks.md, "Compute Broker"). Temporary
		// files are kept in memory: every UPDATE of many rows keeps a
		// statement journal, and in a file each of its pages was a write.
		params := url.Values{
			"_pragma":       {"cache_size(-65536)", "temp_store(MEMORY)"},
			"_journal_mode": {"WAL"},
			"_synchronous":  {"NORMAL"},
			"_foreign_keys": {"on"},
			"_busy_timeout": {strconv.FormatInt(sqliteBusyWait.Milliseconds(), 10)},
			"_txlock":       {"immediate"},
		}
		var err error
		if db, err = sql.Open("sqlite", path+"?"+params.Encode()); err != nil {
			return nil, 0, fmt.Errorf("opening %s on SQLite %q: %w", what, path, err)
		}
		// SQLite has one writer at a time and every access is a
		// transaction: one connection serializes them in this process
		// without SQLITE_BUSY.
		db.SetMaxOpenConns(1)
		db.SetConnMaxIdleTime(0)
		db.SetConnMaxLifetime(0)
		engine = SQLite
	}
	if err := db.PingContext(ctx); err != nil {
		return nil, 0, errors.Join(fmt.Errorf("connecting to %s: %w", what, err), db.Close())
	}
	return db, engine, nil
}

// Rebind turns the ? placeholders of a query into PostgreSQL's $1, $2, ...
// Queries hold no ? inside string literals.
func (e Engine) Rebind(query string) string {
	if e != Postgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
