package inventory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/strata-dev/strata/internal/sqldb"
)

// Transaction retries: enough for a burst of contending writers, small enough
// that a caller is not held for long.
const (
	maxTxAttempts = 10
	minRetryDelay = 2 * time.Millisecond
	maxRetryDelay = 200 * time.Millisecond
)

// sqlStore is the Store on SQLite or PostgreSQL through database/sql. On
// SQLite it has a single connection, so fn of InTx must not call InTx again:
// it would wait for itself.
type sqlStore struct {
	db     *sql.DB
	engine sqldb.Engine
	txOpts *sql.TxOptions
	now    func() time.Time
	// layout remembers where the machines read so far sit.
	layout *layout
}

var _ Store = (*sqlStore)(nil)

// Open opens the inventory database named by dsn and brings its schema up to
// date. A dsn that starts with postgres:// or postgresql:// is a PostgreSQL
// connection string; anything else is a SQLite file, as a plain path or
// sqlite://path. The SQLite file is created when missing; its directory must
// exist.
func Open(ctx context.Context, dsn string) (Store, error) {
	return open(ctx, dsn, time.Now)
}

// open is Open with the clock injected, for tests.
func open(ctx context.Context, dsn string, now func() time.Time) (*sqlStore, error) {
	return openVersion(ctx, dsn, now, math.MaxInt64)
}

// openVersion is open with the migrations up to version only, so tests can
// start from an older schema.
func openVersion(ctx context.Context, dsn string, now func() time.Time, version int64) (*sqlStore, error) {
	s := &sqlStore{now: func() time.Time { return now().UTC() }, layout: newLayout()}
	db, engine, err := sqldb.Open(ctx, dsn, "the inventory database")
	if err != nil {
		return nil, err
	}
	s.db, s.engine = db, engine
	if engine == sqldb.Postgres {
		s.txOpts = &sql.TxOptions{Isolation: sql.LevelSerializable}
	}
	if err := s.migrate(ctx, version); err != nil {
		_ = s.db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *sqlStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing the inventory database: %w", err)
	}
	return nil
}

// InTx runs fn in a transaction: SERIALIZABLE on PostgreSQL, an immediate
// (write-locked) transaction on SQLite. A transaction that lost a
// serialization race, deadlocked or found the database busy is retried up to
// maxTxAttempts times with a short, jittered, growing delay.
func (s *sqlStore) InTx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	return s.inTx(ctx, s.db.BeginTx, fn)
}

// beginFunc begins a transaction: on the pool, or on one connection (a
// Leadership's).
type beginFunc func(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)

// inTx is InTx with transactions begun by begin.
func (s *sqlStore) inTx(ctx context.Context, begin beginFunc, fn func(ctx context.Context, tx Tx) error) error {
	delay := minRetryDelay
	for attempt := 1; ; attempt++ {
		retry, err := s.runTx(ctx, begin, fn)
		if err == nil {
			return nil
		}
		if !retry {
			return err
		}
		if attempt == maxTxAttempts {
			return fmt.Errorf("transaction failed %d times on contention: %w", attempt, err)
		}
		// Full jitter: contending transactions spread out instead of
		// colliding again in step.
		timer := time.NewTimer(rand.N(delay) + time.Millisecond)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("waiting to retry a transaction: %w", context.Cause(ctx))
		case <-timer.C:
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// runTx runs fn in one transaction and reports whether a failure is worth
// retrying.
func (s *sqlStore) runTx(ctx context.Context, begin beginFunc, fn func(ctx context.Context, tx Tx) error) (retry bool, err error) {
	sqlTx, err := begin(ctx, s.txOpts)
	if err != nil {
		return isRetryable(err), fmt.Errorf("beginning a transaction: %w", err)
	}
	// Rolls back when fn fails or panics; a no-op after Commit.
	defer func() { _ = sqlTx.Rollback() }()
	t := &tx{tx: sqlTx, engine: s.engine, now: s.now, layout: s.layout}
	if err := fn(ctx, t); err != nil {
		return t.retry || isRetryable(err), err
	}
	if t.retry {
		// fn swallowed a serialization failure: the transaction is
		// aborted on PostgreSQL and must not count as done.
		return true, errors.New("transaction hit a serialization failure that was not returned")
	}
	if err := sqlTx.Commit(); err != nil {
		return isRetryable(err), fmt.Errorf("committing a transaction: %w", err)
	}
	return false, nil
}

// PostgreSQL SQLSTATEs and SQLite result codes the store reacts to.
const (
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
	pgUniqueViolation      = "23505"
	pgForeignKeyViolation  = "23503"
)

// isRetryable reports whether err means the transaction lost a race and
// may succeed when run again.
func isRetryable(err error) bool {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code == pgSerializationFailure || pgErr.Code == pgDeadlockDetected
	}
	if sqErr, ok := errors.AsType[*sqlite.Error](err); ok {
		primary := sqErr.Code() & 0xff
		return primary == sqlite3.SQLITE_BUSY || primary == sqlite3.SQLITE_LOCKED
	}
	return false
}

func isUniqueViolation(err error) bool {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code == pgUniqueViolation
	}
	if sqErr, ok := errors.AsType[*sqlite.Error](err); ok {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func isForeignKeyViolation(err error) bool {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code == pgForeignKeyViolation
	}
	if sqErr, ok := errors.AsType[*sqlite.Error](err); ok {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// errForeignKey is what a write that breaks a reference returns.
var errForeignKey = fmt.Errorf("%w: a row it references does not exist, or rows still reference it", ErrConflict)

// mapError turns constraint violations into the package's errors; other
// errors pass through.
func mapError(err error) error {
	switch {
	case isUniqueViolation(err):
		return ErrAlreadyExists
	case isForeignKeyViolation(err):
		return errForeignKey
	default:
		return err
	}
}

// nanos and fromNanos store times as unix nanoseconds; the zero time is 0
// both ways (time.Time{}.UnixNano() is undefined).
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
