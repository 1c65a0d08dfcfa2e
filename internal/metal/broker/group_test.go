package broker_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// holdingStore holds its next transaction open, once armed, until released;
// its transactions fail every allocation to pool doomed.
type holdingStore struct {
	inventory.Store
	txs      atomic.Int32
	armed    atomic.Bool
	holding  chan struct{}
	released chan struct{}
}

var errDoomed = errors.New("allocation to pool doomed refused by the test")

func (s *holdingStore) InTx(ctx context.Context, fn func(ctx context.Context, tx inventory.Tx) error) error {
	return s.Store.InTx(ctx, func(ctx context.Context, tx inventory.Tx) error {
		s.txs.Add(1)
		if s.armed.CompareAndSwap(true, false) {
			close(s.holding)
			<-s.released
		}
		return fn(ctx, &doomingTx{Tx: tx})
	})
}

type doomingTx struct{ inventory.Tx }

func (t *doomingTx) AllocateMachines(ctx context.Context, ids []string, pool string) error {
	if pool == "doomed" {
		return errDoomed
	}
	return t.Tx.AllocateMachines(ctx, ids, pool)
}

// TestGroupCommit queues writes behind a transaction held open, so that
// they share the next one: each succeeds or fails on its own. The writes
// that fail (CreatePool of doomed: the pool is inserted, then its
// allocation fails; CreatePool of a pool that exists: its INSERT fails)
// leave nothing behind, the writes before and after them in the group
// commit, and the group took one transaction.
func TestGroupCommit(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		var store *holdingStore
		e := startWrapped(t, dsn, broker.ServerOptions{}, broker.Options{}, func(s inventory.Store) inventory.Store {
			store = &holdingStore{Store: s, holding: make(chan struct{}), released: make(chan struct{})}
			return store
		})
		e.profile(t, general)
		ctx := t.Context()
		for _, name := range []string{"a", "b"} {
			if _, err := e.broker.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
				Name: name, Datacenter: "dc1", NodeProfile: "general", Capacity: 5,
			}}); err != nil {
				t.Fatal(err)
			}
		}
		watch, err := e.client.WatchPools(ctx, &brokerv1.WatchPoolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // a and b as they are
			if _, err := watch.Recv(); err != nil {
				t.Fatal(err)
			}
		}

		store.armed.Store(true)
		var wg sync.WaitGroup
		wg.Go(func() {
			if _, err := e.broker.UpdatePool(ctx, &brokerv1.UpdatePoolRequest{Name: "a", Capacity: 6}); err != nil {
				t.Errorf("the held write: %v", err)
			}
		})
		<-store.holding
		before := store.txs.Load()
		errs := make([]error, 4)
		writes := []func() error{
			func() error {
				_, err := e.broker.UpdatePool(ctx, &brokerv1.UpdatePoolRequest{Name: "a", Capacity: 7})
				return err
			},
			func() error {
				_, err := e.broker.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
					Name: "doomed", Datacenter: "dc1", NodeProfile: "general", Capacity: 3,
				}})
				return err
			},
			func() error {
				// A statement that fails: on PostgreSQL the transaction
				// is aborted until the savepoint is rolled back to.
				_, err := e.broker.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
					Name: "a", Datacenter: "dc1", NodeProfile: "general", Capacity: 3,
				}})
				return err
			},
			func() error {
				_, err := e.broker.UpdatePool(ctx, &brokerv1.UpdatePoolRequest{Name: "b", Capacity: 8})
				return err
			},
		}
		for i, w := range writes {
			wg.Go(func() { errs[i] = w() })
			// In this order in the queue: the failing write between two others.
			waitFor(t, "the write to queue", func() bool { return e.broker.QueuedWrites() == i+1 })
		}
		close(store.released)
		wg.Wait()

		if errs[0] != nil || errs[3] != nil {
			t.Errorf("the writes around the failing ones: %v, %v; want both to succeed", errs[0], errs[3])
		}
		if status.Code(errs[1]) != codes.Internal {
			t.Errorf("CreatePool(doomed) = %v, want Internal", errs[1])
		}
		if status.Code(errs[2]) != codes.AlreadyExists {
			t.Errorf("CreatePool(a) = %v, want AlreadyExists", errs[2])
		}
		if got := store.txs.Load() - before; got != 1 {
			t.Errorf("the four queued writes took %d transactions, want 1", got)
		}
		if _, err := e.broker.GetPool(ctx, &brokerv1.GetPoolRequest{Name: "doomed"}); status.Code(err) != codes.NotFound {
			t.Errorf("GetPool(doomed) = %v, want NotFound: the failed write must leave nothing", err)
		}
		for name, want := range map[string]int32{"a": 7, "b": 8} {
			resp, err := e.broker.GetPool(ctx, &brokerv1.GetPoolRequest{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetPool().GetStatus().GetAllocated(); got != want {
				t.Errorf("pool %s holds %d machines, want %d", name, got, want)
			}
		}
		// Watchers see the committed writes, in order, and nothing of doomed.
		var seen []string
		for range 3 {
			ev, err := watch.Recv()
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, ev.GetPool().GetName())
		}
		if want := []string{"a", "a", "b"}; !slices.Equal(seen, want) {
			t.Errorf("pool events %v, want %v", seen, want)
		}
	})
}

// waitFor polls cond until it holds; a bound, not a speed target.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	giveUp := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(giveUp) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
