package inventory

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/strata-dev/strata/internal/sqldb"
)

// leaderLockClass is the first key of the broker's leader lock (an arbitrary
// constant naming "strata broker leader"); the second is the hash of the
// schema, so inventories in different schemas of one database (tests) do not
// contend. Two-key advisory locks never collide with the one-key lock of
// migrations.
const leaderLockClass = 7305

// ErrLockHeld is TryLead's answer when another replica leads.
var ErrLockHeld = errors.New("another broker replica holds the leader lock")

// ErrLeadershipLost is what writes of a Leadership return once its
// connection, and so its lock, is gone.
var ErrLeadershipLost = errors.New("this broker replica lost its leadership: its lock connection to the database is gone")

// Replicated says whether several broker replicas can share the store:
// PostgreSQL yes, SQLite no (one process owns the file; it always leads).
func Replicated(s Store) bool {
	ss, ok := s.(*sqlStore)
	return ok && ss.engine == sqldb.Postgres
}

// Leadership is the broker's leader lock: a PostgreSQL session-level advisory
// lock held on a connection of its own. The leader's writes run on that same
// connection, so the lock fences them: when the connection dies (the process
// was killed, the network cut, the backend terminated), PostgreSQL releases
// the lock and the writes of the old leader fail with it; a replica that no
// longer holds the lock has no connection left to write on. A replica that
// takes the lock again gets a new Leadership.
type Leadership struct {
	store *sqlStore
	// mu serializes the uses of conn: one transaction or check at a time.
	mu   sync.Mutex
	conn *sql.Conn
	pid  int
	lost bool
}

// TryLead takes the leader lock when it is free and returns ErrLockHeld
// when another replica holds it. It is for PostgreSQL stores only.
func TryLead(ctx context.Context, s Store) (*Leadership, error) {
	ss, ok := s.(*sqlStore)
	if !ok || ss.engine != sqldb.Postgres {
		return nil, errors.New("leader election needs a PostgreSQL inventory: SQLite is single-replica")
	}
	conn, err := ss.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connecting for the leader lock: %w", err)
	}
	l := &Leadership{store: ss, conn: conn}
	var got bool
	err = conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, hashtext(current_schema())), pg_backend_pid()`, leaderLockClass).Scan(&got, &l.pid)
	if err != nil {
		l.discard() // it may hold the lock
		return nil, fmt.Errorf("taking the leader lock: %w", err)
	}
	if !got {
		// It holds no lock: back to the pool, so a standby does not open
		// a connection at every try.
		_ = conn.Close()
		return nil, ErrLockHeld
	}
	return l, nil
}

// PID is the PostgreSQL backend that holds the lock (pg_locks.pid).
func (l *Leadership) PID() int { return l.pid }

// InTx is Store.InTx on the lock's connection: it commits only while the
// lock is held. Once the connection is gone it returns ErrLeadershipLost.
func (l *Leadership) InTx(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost {
		return ErrLeadershipLost
	}
	err := l.store.inTx(ctx, l.conn.BeginTx, fn)
	if err != nil && ctx.Err() == nil && l.checkLocked() != nil {
		return fmt.Errorf("%w (%w)", ErrLeadershipLost, err)
	}
	return err
}

// Check says whether the lock is still held: nil, or ErrLeadershipLost.
func (l *Leadership) Check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost {
		return ErrLeadershipLost
	}
	return l.checkLocked()
}

// checkLocked pings the connection; a connection that fails is lost for
// good (database/sql never swaps the connection under a sql.Conn).
func (l *Leadership) checkLocked() error {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	var one int
	if err := l.conn.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		l.lost = true
		return fmt.Errorf("%w: %w", ErrLeadershipLost, err)
	}
	return nil
}

// checkTimeout bounds a check: a database that does not answer in time is
// as good as lost, the standby will take over once PostgreSQL notices.
const checkTimeout = 5 * time.Second

// Release gives the lock up, so a standby takes over at its next try: it
// unlocks (the backend of a closed connection may take a moment to exit and
// free its locks), then closes the connection.
func (l *Leadership) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lost {
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		defer cancel()
		_, _ = l.conn.ExecContext(ctx, `SELECT pg_advisory_unlock_all()`) // closing releases it anyway
	}
	l.lost = true
	l.discard()
}

// discard closes the connection instead of returning it to the pool, where
// it would keep the session's lock.
func (l *Leadership) discard() {
	_ = l.conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = l.conn.Close()
}

// LeaderPID is the PostgreSQL backend that holds the leader lock of the
// store's inventory, 0 when no replica leads: the session an operator (or a
// test) terminates to depose the leader.
func LeaderPID(ctx context.Context, s Store) (int, error) {
	ss, ok := s.(*sqlStore)
	if !ok || ss.engine != sqldb.Postgres {
		return 0, errors.New("leader election needs a PostgreSQL inventory: SQLite is single-replica")
	}
	var pid int
	err := ss.db.QueryRowContext(ctx, `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = $1
		AND objid = (hashtext(current_schema())::bigint & 4294967295)::text::oid AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		leaderLockClass).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("finding the leader lock's backend: %w", err)
	}
	return pid, nil
}
