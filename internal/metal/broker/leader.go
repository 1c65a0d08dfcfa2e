package broker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/metal/provision"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// DefaultLeaderRetryPeriod is how often a standby tries to take the leader
// lock and the leader checks that it still holds it: the bound on how long
// a dead leader goes unnoticed by a standby, and a live one's lost lock by
// itself (its writes are refused at once regardless).
const DefaultLeaderRetryPeriod = 2 * time.Second

// LeaderElection lets several broker replicas share one PostgreSQL
// inventory: one leads (answers the API, runs the reconcile and provisioning
// loops), the others stand by. The leader holds a PostgreSQL advisory lock
// on a connection of its own and writes on that connection only, so a
// replica that lost its connection cannot write (see inventory.Leadership).
// On SQLite it is ignored: SQLite is single-replica, its broker always leads.
type LeaderElection struct {
	// Enabled turns the election on; off, the broker always leads.
	Enabled bool
	// RetryPeriod defaults to DefaultLeaderRetryPeriod.
	RetryPeriod time.Duration
}

// standbyMessage is what a standby answers every broker call with.
const standbyMessage = "this broker replica is a standby: the leader serves the API (clients follow the gRPC health service to it)"

// term is one leadership of this replica. lead is nil when the broker always
// leads (no election): it writes through the store then.
type term struct {
	lead *inventory.Leadership
	// done is closed when the term ends.
	done chan struct{}
	once sync.Once
}

func (t *term) end() { t.once.Do(func() { close(t.done) }) }

// leadership is the broker's view of its own role.
type leadership struct {
	mu sync.Mutex
	// current is nil while standing by.
	current *term
	// changed is closed (and replaced) whenever current changes.
	changed chan struct{}
	gauge   prometheus.Gauge
	// known: this replica has learnt its role (led, or found the lock
	// held), so it is ready.
	known atomic.Bool
}

func newLeadership(elect bool) *leadership {
	l := &leadership{changed: make(chan struct{}), gauge: prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strata_broker_leader",
		Help: "1 when this broker replica leads (serves the API and runs the loops), 0 when it stands by.",
	})}
	if !elect {
		l.current = &term{done: make(chan struct{})}
		l.gauge.Set(1)
		l.known.Store(true)
	}
	return l
}

func (l *leadership) get() *term {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.current
}

func (l *leadership) set(t *term) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.current = t
	close(l.changed)
	l.changed = make(chan struct{})
	if t != nil {
		l.gauge.Set(1)
	} else {
		l.gauge.Set(0)
	}
}

// Leading says whether this replica leads now, and returns a channel closed
// at the next change.
func (b *Broker) Leading() (bool, <-chan struct{}) {
	b.leader.mu.Lock()
	defer b.leader.mu.Unlock()
	return b.leader.current != nil, b.leader.changed
}

// Run runs the broker's loops until ctx is done: at once when the broker
// always leads; with leader election, whenever this replica leads.
func (b *Broker) Run(ctx context.Context) error {
	if !b.elect {
		return b.runLoops(ctx)
	}
	for {
		lead, err := inventory.TryLead(ctx, b.store)
		switch {
		case err == nil:
			b.leader.known.Store(true)
			b.leadTerm(ctx, lead)
		case errors.Is(err, inventory.ErrLockHeld):
			b.leader.known.Store(true)
		case ctx.Err() == nil:
			b.log.Error(err, "Trying to take the broker's leadership")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-b.clock.After(b.retryPeriod):
		}
	}
}

// leadTerm leads until ctx is done or the lock is lost: the loops run,
// writes go through lead, and every broker stream ends with the term.
func (b *Broker) leadTerm(ctx context.Context, lead *inventory.Leadership) {
	t := &term{lead: lead, done: make(chan struct{})}
	if starter, ok := b.provisioner.(provision.TermStarter); ok {
		if err := starter.StartTerm(); err != nil {
			b.log.Error(err, "Taking over the provisioner's state as this replica leads; keeping what it knew")
		}
	}
	b.leader.set(t)
	b.log.Info("Leading the Compute Broker", "lockBackendPID", lead.PID())
	loopCtx, cancel := context.WithCancel(ctx)
	loops := make(chan struct{})
	go func() {
		defer close(loops)
		if err := b.runLoops(loopCtx); err != nil {
			b.log.Error(err, "Running the broker's loops")
		}
	}()
	tick := b.clock.NewTicker(b.retryPeriod)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-t.done:
			done = true
		case <-tick.C():
			if err := lead.Check(); err != nil {
				b.log.Error(err, "Checking the broker's leader lock")
				done = true
			}
		}
	}
	tick.Stop()
	// Refuse new calls first, then stop the loops, then give the lock up
	// once the writes under way are over.
	b.leader.set(nil)
	t.end()
	cancel()
	<-loops
	lead.Release()
	b.log.Info("Stopped leading the Compute Broker")
}

// write runs fn as a writing transaction of the current term: on the leader
// lock's connection with election, one transaction at a time. Writes that
// queue up meanwhile share the next transaction (see commitGroup). A
// standby, or a leader that just lost its lock, refuses with Unavailable.
func (b *Broker) write(ctx context.Context, fn func(ctx context.Context, tx inventory.Tx, events *[]event) error) error {
	w := &queuedWrite{ctx: ctx, fn: fn, done: make(chan struct{})}
	b.queueMu.Lock()
	b.queue = append(b.queue, w)
	b.queueMu.Unlock()
	select {
	case <-w.done: // a group committed by another caller took it
		return w.err
	case b.writeTurn <- struct{}{}:
	}
	defer func() { <-b.writeTurn }()
	for {
		select {
		case <-w.done:
			return w.err
		default:
		}
		b.commitGroup(ctx, b.takeQueued())
	}
}

// brokerMethod says whether a full gRPC method name is the broker's API.
func brokerMethod(method string) bool {
	return strings.HasPrefix(method, "/"+brokerv1.BrokerService_ServiceDesc.ServiceName+"/")
}

// gateUnary refuses the broker's calls on a standby: its reads could be
// stale against a leader's writes it never published, and its writes are
// fenced anyway.
func (b *Broker) gateUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if brokerMethod(info.FullMethod) && b.leader.get() == nil {
		return nil, status.Error(codes.Unavailable, standbyMessage)
	}
	return h(ctx, req)
}

// gateStream refuses the broker's streams on a standby and ends them when
// the term ends: a watcher must move to the new leader, the only replica
// that publishes changes.
func (b *Broker) gateStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if !brokerMethod(info.FullMethod) {
		return h(srv, ss)
	}
	t := b.leader.get()
	if t == nil {
		return status.Error(codes.Unavailable, standbyMessage)
	}
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	go func() {
		select {
		case <-t.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := h(srv, &termStream{ServerStream: ss, ctx: ctx})
	select {
	case <-t.done:
		return status.Error(codes.Unavailable, "this broker replica stopped leading: watch again, the new leader sends the current state")
	default:
		return err
	}
}

// termStream is a server stream whose context ends with the term.
type termStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *termStream) Context() context.Context { return s.ctx }
