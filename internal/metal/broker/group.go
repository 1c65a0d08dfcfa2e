package broker

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-dev/strata/internal/metal/inventory"
)

// maxGroup bounds the writes that share one transaction, and so the wait of
// the last of them.
const maxGroup = 32

// queuedWrite is a writing transaction's function waiting for its turn;
// err is its result once done is closed.
type queuedWrite struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx inventory.Tx, events *[]event) error
	done chan struct{}
	err  error
}

// takeQueued takes up to maxGroup writes off the front of the queue.
func (b *Broker) takeQueued() []*queuedWrite {
	b.queueMu.Lock()
	defer b.queueMu.Unlock()
	n := min(len(b.queue), maxGroup)
	group := b.queue[:n:n]
	b.queue = b.queue[n:]
	return group
}

// commitGroup runs the writes of group in one transaction (group commit)
// and closes their done channels. Under 16 clients resizing pools, each
// write used to pay its own BEGIN and commit (its WAL pages on SQLite, a
// round trip and a WAL flush on PostgreSQL), and waited for the others'
// (docs/benchmarks.md, "Compute Broker"). Each write runs under a savepoint
// of its own: one that fails is undone and answers its error, the others
// commit. They run in queue order, each seeing what the earlier ones
// wrote, as they would one transaction after another. The transaction
// fails as a whole, and every write in it, when it cannot commit: above
// all when this replica lost its leader lock (fencing: the group runs on
// the lock's connection like a single write).
func (b *Broker) commitGroup(ctx context.Context, group []*queuedWrite) {
	results := make([]error, len(group))
	events := make([][]event, len(group))
	err := b.runWrite(ctx, group, results, events)
	var published bool
	for i, w := range group {
		switch {
		case err != nil:
			w.err = err
		case results[i] != nil:
			w.err = apiError(results[i])
		default:
			b.hub.publish(events[i])
			published = published || len(events[i]) > 0
		}
		close(w.done)
	}
	if published {
		b.kick()
	}
}

// runWrite runs group's transaction in the current term and fills in each
// write's result and events; its error is the transaction's, as a gRPC
// status.
func (b *Broker) runWrite(ctx context.Context, group []*queuedWrite, results []error, events [][]event) error {
	t := b.leader.get()
	if t == nil {
		return status.Error(codes.Unavailable, standbyMessage)
	}
	run := b.store.InTx
	if t.lead != nil {
		run = t.lead.InTx
	}
	// One write alone needs no savepoint: its error is the transaction's.
	single := len(group) == 1
	if !single {
		// A client that gives up must not end the others' transaction.
		ctx = context.WithoutCancel(ctx)
		b.grouped.Add(int64(len(group)))
	}
	err := run(ctx, func(ctx context.Context, tx inventory.Tx) error {
		for i, w := range group {
			events[i], results[i] = events[i][:0], nil // a retried transaction starts over
			if single {
				results[i] = w.fn(ctx, tx, &events[i])
				return results[i]
			}
			if results[i] = w.ctx.Err(); results[i] != nil {
				continue // given up while queued
			}
			name := fmt.Sprintf("write_%d", i)
			if err := tx.Savepoint(ctx, name); err != nil {
				return err
			}
			results[i] = w.fn(context.WithoutCancel(w.ctx), tx, &events[i])
			if err := tx.EndSavepoint(ctx, name, results[i] == nil); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, inventory.ErrLeadershipLost):
		t.end()
		return status.Error(codes.Unavailable, err.Error())
	default:
		return apiError(err)
	}
}
