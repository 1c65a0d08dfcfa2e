// Package broker is the Compute Broker: the metal layer's declarative gRPC
// API for machines, node profiles, pools and disruptions, over the inventory.
// It keeps every pool at its capacity, balanced across maintenance zones, and
// enforces one disruption budget whatever asks for a disruption.
package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/utils/clock"

	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/metal/provision"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// DefaultResyncInterval is how often every pool is reconciled even when
// nothing asked, so machines that came back to service are picked up.
const DefaultResyncInterval = 30 * time.Second

// Options are the broker's dependencies.
type Options struct {
	Store inventory.Store
	// Budget defaults to DefaultBudget.
	Budget *Budget
	// Clock defaults to the real clock.
	Clock clock.WithTicker
	// ResyncInterval defaults to DefaultResyncInterval.
	ResyncInterval time.Duration
	// Provisioner joins the machines of pools with a join target to their
	// cluster, wipes released ones and performs the operations of
	// disruptions (see provisioning.go and operations.go); when it is also a
	// provision.HealthChecker, its faults make machines unhealthy. Nil means
	// machines are never joined nor wiped (a pool with a join target gets
	// machines that stay clean, and released machines that had joined stay
	// wiping) and disruptions with an operation are refused.
	Provisioner provision.Provisioner
	// LeaderElection lets several replicas share a PostgreSQL inventory;
	// off (the zero value), this broker always leads.
	LeaderElection LeaderElection
	// MachineWatchInterval is how often a WatchMachines stream reads the
	// machines written since its last read; DefaultMachineWatchInterval
	// when zero.
	MachineWatchInterval time.Duration
	Logger               logr.Logger
}

// Broker implements brokerv1.BrokerServiceServer.
type Broker struct {
	brokerv1.UnimplementedBrokerServiceServer

	store  inventory.Store
	budget Budget
	clock  clock.WithTicker
	resync time.Duration
	log    logr.Logger
	hub    *hub
	// provisioner is nil when machines are not joined.
	provisioner provision.Provisioner
	// operations counts the operations performed, by kind and result.
	operations *prometheus.CounterVec
	// kicks wakes the provisioning loop after a change (buffered: one
	// pending kick stands for any number).
	kicks chan struct{}
	// pages issues and checks the page tokens of ListMachines.
	pages pageTokens
	// elect is whether this replica takes part in a leader election
	// (LeaderElection on a PostgreSQL store); retryPeriod its period.
	elect       bool
	retryPeriod time.Duration
	leader      *leadership
	// machinePoll is how often a WatchMachines stream reads the machines
	// written since its last read.
	machinePoll time.Duration
	// writeTurn (capacity 1) serializes the broker's writing
	// transactions: they would otherwise contend for the same available
	// machines and, on PostgreSQL, abort each other's serializable
	// transactions. The writes waiting for their turn queue in queue.
	writeTurn chan struct{}
	queueMu   sync.Mutex
	queue     []*queuedWrite
	// grouped counts the writes that shared a transaction with others.
	grouped atomic.Int64
}

// New validates the options and returns a broker.
func New(o Options) (*Broker, error) {
	if o.Store == nil {
		return nil, errors.New("broker: a store is required")
	}
	budget := DefaultBudget
	if o.Budget != nil {
		budget = *o.Budget
	}
	if err := budget.Validate(); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = DefaultResyncInterval
	}
	if o.LeaderElection.RetryPeriod <= 0 {
		o.LeaderElection.RetryPeriod = DefaultLeaderRetryPeriod
	}
	if o.MachineWatchInterval <= 0 {
		o.MachineWatchInterval = DefaultMachineWatchInterval
	}
	// SQLite is single-replica: its broker always leads.
	elect := o.LeaderElection.Enabled && inventory.Replicated(o.Store)
	// The key is read once, at start: a bound on the wait, as every
	// outbound call has.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pages, err := newPageTokens(ctx, o.Store)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	// Where every machine sits, read once: the store remembers it, and
	// choosing machines then reads only IDs and states (inventory's layout).
	if err := o.Store.InTx(ctx, func(ctx context.Context, tx inventory.Tx) error {
		_, err := tx.ListPlacements(ctx, inventory.MachineFilter{})
		return err
	}); err != nil {
		return nil, fmt.Errorf("broker: reading where the machines sit: %w", err)
	}
	return &Broker{
		store: o.Store, budget: budget, clock: o.Clock, resync: o.ResyncInterval, log: o.Logger, hub: newHub(),
		provisioner: o.Provisioner, kicks: make(chan struct{}, 1), pages: pages, writeTurn: make(chan struct{}, 1),
		elect: elect, retryPeriod: o.LeaderElection.RetryPeriod, leader: newLeadership(elect), machinePoll: o.MachineWatchInterval,
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_broker_operations_total",
			Help: "Operations of disruptions the broker performed, by operation (reboot, reimage, replace) and result (completed, failed).",
		}, []string{"operation", "result"}),
	}, nil
}

// Results of an operation, for the operations counter.
const (
	operationCompleted = "completed"
	operationFailed    = "failed"
)

// runLoops reconciles every pool each resync interval and, with a
// provisioner, runs the provisioning loop, until ctx is done.
func (b *Broker) runLoops(ctx context.Context) error {
	if b.provisioner != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			newProvisioning(b).run(ctx)
		}()
		defer func() { <-done }()
	}
	t := b.clock.NewTicker(b.resync)
	defer t.Stop()
	for {
		if err := b.ReconcileAll(ctx); err != nil && ctx.Err() == nil {
			b.log.Error(err, "Reconciling pools")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// ReconcileAll reconciles every pool, each in its own transaction.
func (b *Broker) ReconcileAll(ctx context.Context) error {
	var names []string
	if err := b.inTx(ctx, func(ctx context.Context, tx inventory.Tx, _ *[]event) error {
		pools, err := tx.ListPools(ctx)
		for _, p := range pools {
			names = append(names, p.Name)
		}
		return err
	}); err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		errs = append(errs, b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
			return b.reconcileAndNotify(ctx, tx, name, false, events)
		}))
	}
	return errors.Join(errs...)
}

// inTx runs fn in a transaction and publishes the events it collected once
// the transaction has committed.
func (b *Broker) inTx(ctx context.Context, fn func(ctx context.Context, tx inventory.Tx, events *[]event) error) error {
	return b.inTxOn(ctx, b.store.InTx, fn)
}

// inTxOn is inTx with the transaction run by run (the store's InTx, or the
// leader lock's).
func (b *Broker) inTxOn(ctx context.Context, run func(ctx context.Context, fn func(ctx context.Context, tx inventory.Tx) error) error,
	fn func(ctx context.Context, tx inventory.Tx, events *[]event) error) error {
	var events []event
	err := run(ctx, func(ctx context.Context, tx inventory.Tx) error {
		events = events[:0] // a retried transaction starts over
		return fn(ctx, tx, &events)
	})
	if err != nil {
		return apiError(err)
	}
	b.hub.publish(events)
	if len(events) > 0 {
		b.kick()
	}
	return nil
}

// kick wakes the provisioning loop without waiting for it.
func (b *Broker) kick() {
	select {
	case b.kicks <- struct{}{}:
	default:
	}
}

// reconcileAndNotify reconciles a pool and adds its event when it changed,
// or when the caller changed it already.
func (b *Broker) reconcileAndNotify(ctx context.Context, tx inventory.Tx, name string, changed bool, events *[]event) error {
	reconciled, err := reconcilePool(ctx, tx, name, b.clock.Now(), events)
	if errors.Is(err, inventory.ErrNotFound) {
		return nil // deleted meanwhile
	}
	if err != nil || (!changed && !reconciled) {
		return err
	}
	return b.notifyPool(ctx, tx, name, events)
}

// notifyPool adds the event of a pool as it is now: MODIFIED, or DELETED
// when it is gone.
func (b *Broker) notifyPool(ctx context.Context, tx inventory.Tx, name string, events *[]event) error {
	pool, err := tx.GetPool(ctx, name)
	if errors.Is(err, inventory.ErrNotFound) {
		*events = append(*events, poolEvent(brokerv1.EventType_EVENT_TYPE_DELETED, &brokerv1.Pool{Name: name}))
		return nil
	}
	if err != nil {
		return err
	}
	api, err := b.poolAPI(ctx, tx, pool)
	if err != nil {
		return err
	}
	*events = append(*events, poolEvent(brokerv1.EventType_EVENT_TYPE_MODIFIED, api))
	return nil
}

func (b *Broker) poolAPI(ctx context.Context, tx inventory.Tx, p inventory.Pool) (*brokerv1.Pool, error) {
	st, err := poolStatus(ctx, tx, p)
	if err != nil {
		return nil, err
	}
	return poolToAPI(p, st), nil
}

// apiError turns a store error into a gRPC status; status errors pass.
func apiError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, inventory.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, inventory.ErrAlreadyExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, inventory.ErrConflict):
		return status.Error(codes.Aborted, err.Error())
	}
	if ze, ok := errors.AsType[*inventory.ZoneError](err); ok {
		return status.Error(codes.InvalidArgument, ze.Error())
	}
	return status.Error(codes.Internal, fmt.Sprintf("inventory: %v", err))
}

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}
