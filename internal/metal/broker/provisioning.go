package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"

	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/metal/provision"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// The provisioning loop drives the provisioner, level-triggered from the
// inventory:
//
//	clean machine in a pool with a join target -> joining (committed) -> Join -> joined
//	wiping machine (released by its pool)      -> Wipe -> clean
//	disruption InProgress with reboot/reimage  -> Maintain -> Completed, or Failed (machine fault)
//
// A machine released while joining has its join cancelled, then is wiped; a
// disruption cancelled while its operation runs has it cancelled. An
// operation found in the inventory without a goroutine behind it (after a
// restart) is started again, since Join, Wipe and Maintain are idempotent. A
// failed attempt is logged, recorded in the machine's health message and
// retried with backoff, except a Maintain that failed with
// provision.ErrMachineFault, which fails its disruption. Completions are
// written together, at most every provisionFlushInterval, so a pool of a
// thousand machines joins in a few transactions rather than a thousand.
//
// With a provisioner that is a provision.HealthChecker, the loop also polls
// its faults, at each resync and whenever it says they changed (see
// applyFaults).
const (
	// provisionResync is how often the loop looks at the inventory when
	// nothing woke it.
	provisionResync = 5 * time.Second
	// provisionFlushInterval is the longest a completion waits to be written.
	provisionFlushInterval = 150 * time.Millisecond
	// flushRetry is the wait before writing completions again after the
	// store failed.
	flushRetry = 2 * time.Second
	// Retries of a failed Join or Wipe back off from min to max.
	minProvisionRetry = time.Second
	maxProvisionRetry = time.Minute
	// provisionMessagePrefix marks the health messages the loop writes, so
	// it clears only its own.
	provisionMessagePrefix = "provisioning: "
	// maxProvisionError bounds the error text kept in a health message.
	maxProvisionError = 400
	// shutdownFlushTimeout bounds writing the last completions at shutdown.
	shutdownFlushTimeout = 5 * time.Second
)

type opKind string

const (
	opJoin     opKind = "join"
	opWipe     opKind = "wipe"
	opMaintain opKind = "maintain"
)

// provisionOp is one Join, Wipe or Maintain of a machine, retried until it
// succeeds, is cancelled or (Maintain) finds a machine fault. Its goroutine
// reads kind, machine, target, operation and cancel only; the other fields
// belong to the loop.
type provisionOp struct {
	kind    opKind
	machine provision.Machine
	target  provision.Target
	// operation and disruption are a Maintain's.
	operation  provision.Operation
	disruption string
	started    time.Time
	cancel     context.CancelFunc

	// finished: the op is done (succeeded or, for Maintain, found a
	// machine fault) and its result waits to be written.
	finished bool
	// failed: an attempt failed, so the machine may carry its message.
	failed bool
}

// opResult is what an op's goroutine reports: each failed attempt, then
// once, when it ends (final): success (err nil), a machine fault (fault) or
// cancellation.
type opResult struct {
	op      *provisionOp
	err     error
	attempt int
	final   bool
	fault   bool
	// at is when the attempt ended.
	at time.Time
}

// provisioning is the loop's state, owned by its goroutine.
type provisioning struct {
	b       *Broker
	log     logr.Logger
	results chan opResult
	// ops are the operations by machine, from start until their result is
	// written or they are cancelled.
	ops map[string]*provisionOp
	// running counts the op goroutines that have not ended.
	running int
	// pending are results not yet written.
	pending []opResult
}

func newProvisioning(b *Broker) *provisioning {
	return &provisioning{
		b: b, log: b.log.WithName("provisioning"), results: make(chan opResult, 256), ops: map[string]*provisionOp{},
	}
}

// run is the loop, until ctx ends; it then stops every operation and writes
// the completions it has.
func (l *provisioning) run(ctx context.Context) {
	ticker := l.b.clock.NewTicker(provisionResync)
	defer ticker.Stop()
	var flush <-chan time.Time
	var faultsChanged <-chan struct{}
	if hc, ok := l.b.provisioner.(provision.HealthChecker); ok {
		faultsChanged = hc.FaultsChanged()
	}
	l.pollHealth(ctx)
	l.scan(ctx)
	for {
		select {
		case <-ctx.Done():
			l.shutdown()
			return
		case <-l.b.kicks:
			l.scan(ctx)
		case <-faultsChanged:
			l.pollHealth(ctx)
		case <-ticker.C():
			l.pollHealth(ctx)
			l.scan(ctx)
		case r := <-l.results:
			l.receive(r)
			if flush == nil && len(l.pending) > 0 {
				flush = l.b.clock.After(provisionFlushInterval)
			}
		case <-flush:
			flush = nil
			wiped, err := l.flush(ctx)
			switch {
			case err != nil:
				if ctx.Err() == nil {
					l.log.Error(err, "Writing provisioning results; trying again", "results", len(l.pending), "after", flushRetry)
				}
				flush = l.b.clock.After(flushRetry)
				continue
			case wiped > 0:
				// Machines are available again: pools short of
				// capacity take them now rather than at the next resync.
				if err := l.b.ReconcileAll(ctx); err != nil && ctx.Err() == nil {
					l.log.Error(err, "Reconciling pools after machines were wiped")
				}
			}
			l.scan(ctx)
		}
	}
}

// receive takes one result from an op's goroutine.
func (l *provisioning) receive(r opResult) {
	id := r.op.machine.ID
	switch {
	case r.final && (r.err == nil || r.fault):
		l.running--
		r.op.finished = true
		l.pending = append(l.pending, r)
	case r.final: // cancelled: whatever the machine needs now, the next scan starts
		l.running--
		if l.ops[id] == r.op {
			delete(l.ops, id)
		}
		l.b.kick()
	default:
		r.op.failed = true
		l.log.Error(r.err, "Provisioning failed; retrying", "machine", id, "operation", r.op.kind,
			"cluster", r.op.target.Cluster, "attempt", r.attempt)
		l.pending = append(l.pending, r)
	}
}

// scan reads the inventory and starts or cancels operations: it claims the
// clean machines of pools with a join target (joining, committed before
// the join starts), restarts joins and wipes that have no goroutine, cancels
// the joins of machines released meanwhile, starts the operations of
// disruptions InProgress and cancels those of disruptions that no longer
// are.
func (l *provisioning) scan(ctx context.Context) {
	var start, cancel []*provisionOp
	err := l.b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
		start, cancel = nil, nil // a retried transaction starts over
		specs, err := joinSpecs(ctx, tx)
		if err != nil {
			return err
		}
		skus, err := skuIndex(ctx, tx)
		if err != nil {
			return err
		}
		claimed := map[string]bool{}
		for _, name := range slices.Sorted(maps.Keys(specs)) {
			ms, err := claimClean(ctx, tx, specs[name])
			if err != nil {
				return err
			}
			for _, m := range ms {
				start = append(start, specs[name].op(m, skus))
				claimed[m.ID] = true
			}
		}
		joining, err := tx.ListMachines(ctx, inventory.MachineFilter{Provision: inventory.ProvisionJoining})
		if err != nil {
			return err
		}
		for _, m := range joining {
			if l.ops[m.ID] != nil || claimed[m.ID] {
				continue
			}
			spec, ok := specs[m.Pool]
			if !ok {
				// Cannot happen: a released machine is wiping, and a
				// pool keeps its join target.
				l.log.Info("Machine is joining, but its pool joins no cluster; leaving it", "machine", m.ID, "pool", m.Pool)
				continue
			}
			start = append(start, spec.op(m, skus))
		}
		wiping, err := tx.ListMachines(ctx, inventory.MachineFilter{Provision: inventory.ProvisionWiping})
		if err != nil {
			return err
		}
		for _, m := range wiping {
			switch op := l.ops[m.ID]; {
			case op == nil:
				start = append(start, &provisionOp{kind: opWipe, machine: provisionMachine(m, skus, "")})
			case op.kind == opJoin && !op.finished:
				cancel = append(cancel, op)
			}
		}
		busy := map[string]bool{}
		for _, op := range start {
			busy[op.machine.ID] = true
		}
		maintain, stop, err := l.scanOperations(ctx, tx, specs, skus, busy, events)
		start, cancel = append(start, maintain...), append(cancel, stop...)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			l.log.Error(err, "Looking for machines to join or wipe")
		}
		return
	}
	for _, op := range cancel {
		if op.kind == opMaintain {
			l.log.Info("Cancelling an operation: its disruption is no longer in progress", "machine", op.machine.ID,
				"disruption", op.disruption, "operation", op.operation.Kind)
		} else {
			l.log.V(1).Info("Cancelling the join of a released machine", "machine", op.machine.ID)
		}
		op.cancel()
	}
	for _, op := range start {
		l.start(ctx, op)
	}
	if len(start) > 0 {
		l.log.V(1).Info("Started provisioning", "operations", len(start))
	}
}

// joinSpec is how the machines of one pool join.
type joinSpec struct {
	pool       inventory.Pool
	nodeConfig string
	target     provision.Target
}

// joinSpecs returns the pools with a join target by name.
func joinSpecs(ctx context.Context, tx inventory.Tx) (map[string]joinSpec, error) {
	pools, err := tx.ListPools(ctx)
	if err != nil {
		return nil, err
	}
	specs := map[string]joinSpec{}
	profiles := map[string]inventory.NodeProfile{}
	for _, p := range pools {
		if p.JoinTarget == nil {
			continue
		}
		profile, ok := profiles[p.Profile]
		if !ok {
			if profile, err = tx.GetProfile(ctx, p.Profile); err != nil {
				return nil, fmt.Errorf("reading node profile %s of pool %s: %w", p.Profile, p.Name, err)
			}
			profiles[p.Profile] = profile
		}
		specs[p.Name] = joinSpec{pool: p, nodeConfig: cmp.Or(p.NodeConfig, profile.NodeConfig), target: provisionTarget(p.JoinTarget)}
	}
	return specs, nil
}

// claimClean moves the clean machines of a pool that should join to
// joining, and returns them. A machine on its way out (pool-shrink) or under
// maintenance is not joined, and nothing joins a pool being deleted.
func claimClean(ctx context.Context, tx inventory.Tx, spec joinSpec) ([]inventory.Machine, error) {
	if spec.pool.Deleting {
		return nil, nil
	}
	ms, err := tx.ListMachines(ctx, inventory.MachineFilter{
		Pool: spec.pool.Name, State: inventory.MachineAllocated, Provision: inventory.ProvisionClean,
	})
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	open, err := tx.ListDisruptions(ctx, inventory.DisruptionFilter{Pool: spec.pool.Name, States: openStates})
	if err != nil {
		return nil, err
	}
	busy := map[string]bool{}
	for _, d := range open {
		busy[d.Machine] = true
	}
	ms = slices.DeleteFunc(ms, func(m inventory.Machine) bool { return busy[m.ID] })
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	if _, err := tx.UpdateProvision(ctx, inventory.ProvisionUpdate{
		IDs: ids, From: inventory.ProvisionClean, Pool: spec.pool.Name, To: inventory.ProvisionJoining,
	}); err != nil {
		return nil, err
	}
	return ms, nil
}

func (s joinSpec) op(m inventory.Machine, skus map[string]inventory.SKU) *provisionOp {
	return &provisionOp{kind: opJoin, machine: provisionMachine(m, skus, s.nodeConfig), target: s.target}
}

func provisionMachine(m inventory.Machine, skus map[string]inventory.SKU, nodeConfig string) provision.Machine {
	return provision.Machine{
		ID: m.ID, Datacenter: m.Datacenter, MaintenanceZone: m.MaintenanceZone, Rack: m.Rack, SKU: skus[m.SKU],
		OSImage: m.Software.OSImage, Kernel: m.Software.Kernel, NodeConfig: nodeConfig, Pool: m.Pool,
	}
}

func provisionTarget(jt *inventory.JoinTarget) provision.Target {
	t := provision.Target{
		Cluster: jt.Cluster, APIServer: jt.APIServer, CABundle: slices.Clone(jt.CABundle), BootstrapToken: jt.BootstrapToken,
		NodeLabels: maps.Clone(jt.NodeLabels),
	}
	for _, taint := range jt.NodeTaints {
		t.NodeTaints = append(t.NodeTaints, corev1.Taint{Key: taint.Key, Value: taint.Value, Effect: corev1.TaintEffect(taint.Effect)})
	}
	return t
}

// scanOperations finds the disruptions InProgress with an operation: it
// returns the Maintain operations to start (not for a machine busy with
// another operation: it comes next) and those to cancel, and completes a
// replace left InProgress (the transaction that started it completes it, so
// only an interrupted older broker leaves one).
func (l *provisioning) scanOperations(ctx context.Context, tx inventory.Tx, specs map[string]joinSpec, skus map[string]inventory.SKU,
	busy map[string]bool, events *[]event) (start, cancel []*provisionOp, err error) {
	ds, err := tx.ListDisruptions(ctx, inventory.DisruptionFilter{States: []inventory.DisruptionState{inventory.DisruptionInProgress}})
	if err != nil {
		return nil, nil, err
	}
	inProgress := map[string]bool{}
	for _, d := range ds {
		inProgress[d.ID] = true
		switch {
		case d.Operation.Kind == inventory.OperationNone:
			continue
		case d.Operation.Kind == inventory.OperationReplace:
			d, err := completeReplace(ctx, tx, d, l.b.clock.Now(), events)
			if err != nil {
				return nil, nil, err
			}
			if err := l.b.operationEvents(ctx, tx, d, events); err != nil {
				return nil, nil, err
			}
			continue
		case l.ops[d.Machine] != nil || busy[d.Machine]:
			continue
		}
		op, err := maintenanceOp(ctx, tx, d, specs, skus)
		if err != nil {
			return nil, nil, err
		}
		start = append(start, op)
	}
	for _, op := range l.ops {
		if op.kind == opMaintain && !op.finished && !inProgress[op.disruption] {
			cancel = append(cancel, op)
		}
	}
	return start, cancel, nil
}

// start runs op in its own goroutine.
func (l *provisioning) start(ctx context.Context, op *provisionOp) {
	op.started = l.b.clock.Now()
	ctx, op.cancel = context.WithCancel(ctx)
	l.ops[op.machine.ID] = op
	l.running++
	go l.perform(ctx, op)
}

// perform runs op until it succeeds or ctx ends, reporting each failure.
func (l *provisioning) perform(ctx context.Context, op *provisionOp) {
	defer op.cancel()
	delay := minProvisionRetry
	for attempt := 1; ; attempt++ {
		var err error
		switch op.kind {
		case opJoin:
			err = l.b.provisioner.Join(ctx, op.machine, op.target)
		case opWipe:
			err = l.b.provisioner.Wipe(ctx, op.machine)
		case opMaintain:
			err = l.b.provisioner.Maintain(ctx, op.machine, op.operation, op.target)
		}
		switch {
		case err == nil:
			l.results <- opResult{op: op, final: true, at: l.b.clock.Now()}
			return
		case ctx.Err() != nil:
			l.results <- opResult{op: op, err: context.Cause(ctx), final: true}
			return
		case op.kind == opMaintain && errors.Is(err, provision.ErrMachineFault):
			l.results <- opResult{op: op, err: err, attempt: attempt, final: true, fault: true, at: l.b.clock.Now()}
			return
		}
		l.results <- opResult{op: op, err: err, attempt: attempt}
		select {
		case <-ctx.Done():
			l.results <- opResult{op: op, err: context.Cause(ctx), final: true}
			return
		case <-l.b.clock.After(delay):
		}
		delay = min(2*delay, maxProvisionRetry)
	}
}

// flush writes the pending results in one transaction: joins (still
// joining and in the same pool) become joined with their node config, wipes
// clean, operations complete or fail their disruptions, failures are
// recorded, and pools whose joined count changed are published. It reports
// how many machines became clean.
func (l *provisioning) flush(ctx context.Context) (int, error) {
	batch := l.pending
	var w written
	err := l.b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
		var err error
		w, err = l.b.writeResults(ctx, tx, batch, events)
		return err
	})
	if err != nil {
		return 0, err
	}
	for k, n := range w.operations {
		l.b.operations.WithLabelValues(k[0], k[1]).Add(float64(n))
	}
	joined, wiped := w.joined, w.wiped
	l.pending = nil
	for _, r := range batch {
		if r.final && l.ops[r.op.machine.ID] == r.op {
			delete(l.ops, r.op.machine.ID)
		}
	}
	if joined+wiped > 0 {
		l.log.Info("Provisioned machines", "joined", joined, "wiped", wiped)
	}
	for _, r := range batch {
		if r.final && r.op.kind == opMaintain {
			if r.fault {
				l.log.Info("Machine did not come back from maintenance; its disruption failed", "machine", r.op.machine.ID,
					"disruption", r.op.disruption, "operation", r.op.operation.Kind, "err", r.err.Error())
			} else {
				l.log.Info("Performed maintenance", "machine", r.op.machine.ID, "disruption", r.op.disruption,
					"operation", r.op.operation.Kind, "nodeConfig", r.op.operation.Software.NodeConfig)
			}
		}
	}
	return wiped, nil
}

// written is what writeResults wrote.
type written struct {
	joined, wiped int
	// operations counts the disruptions completed or failed, by
	// operation kind and result.
	operations map[[2]string]int
}

// joinKey groups joined machines that are written with one statement.
type joinKey struct{ pool, nodeConfig string }

func (b *Broker) writeResults(ctx context.Context, tx inventory.Tx, batch []opResult, events *[]event) (w written, err error) {
	joins := map[joinKey][]string{}
	var wipes, succeededAfterFailure []string
	var maintained []opResult
	failures := map[string]opResult{} // the last failure of each op still running
	for _, r := range batch {
		id := r.op.machine.ID
		switch {
		case r.final && r.op.kind == opJoin:
			k := joinKey{r.op.machine.Pool, r.op.machine.NodeConfig}
			joins[k] = append(joins[k], id)
		case r.final && r.op.kind == opWipe:
			wipes = append(wipes, id)
		case r.final:
			maintained = append(maintained, r)
		case !r.op.finished:
			failures[id] = r
		}
		if r.final && r.op.failed {
			succeededAfterFailure = append(succeededAfterFailure, id)
		}
	}
	joined, wiped := 0, 0
	touched := map[string]bool{}
	for k, ids := range joins {
		n, err := tx.UpdateProvision(ctx, inventory.ProvisionUpdate{
			IDs: ids, From: inventory.ProvisionJoining, Pool: k.pool, To: inventory.ProvisionJoined, NodeConfig: &k.nodeConfig,
		})
		if err != nil {
			return w, err
		}
		joined += n
		if n > 0 {
			touched[k.pool] = true
		}
	}
	if len(wipes) > 0 {
		none := "" // a wiped machine runs no node config
		if wiped, err = tx.UpdateProvision(ctx, inventory.ProvisionUpdate{
			IDs: wipes, From: inventory.ProvisionWiping, To: inventory.ProvisionClean, NodeConfig: &none,
		}); err != nil {
			return w, err
		}
	}
	for _, id := range slices.Sorted(maps.Keys(failures)) {
		if err := setProvisionMessage(ctx, tx, id, provisionMessage(failures[id])); err != nil {
			return w, err
		}
	}
	for _, id := range succeededAfterFailure {
		if err := setProvisionMessage(ctx, tx, id, ""); err != nil {
			return w, err
		}
	}
	now := b.clock.Now()
	for _, r := range maintained {
		write, result := b.completeOperation, operationCompleted
		if r.fault {
			write, result = b.failOperation, operationFailed
		}
		done, err := write(ctx, tx, r, now, events)
		if err != nil {
			return w, fmt.Errorf("recording the %s of machine %s (disruption %s): %w", r.op.operation.Kind, r.op.machine.ID, r.op.disruption, err)
		}
		if done {
			if w.operations == nil {
				w.operations = map[[2]string]int{}
			}
			w.operations[[2]string{string(r.op.operation.Kind), result}]++
		}
	}
	for _, name := range slices.Sorted(maps.Keys(touched)) {
		p, err := tx.GetPool(ctx, name)
		if errors.Is(err, inventory.ErrNotFound) {
			continue
		}
		if err != nil {
			return w, err
		}
		api, err := b.poolAPI(ctx, tx, p)
		if err != nil {
			return w, err
		}
		*events = append(*events, poolEvent(brokerv1.EventType_EVENT_TYPE_MODIFIED, api))
	}
	w.joined, w.wiped = joined, wiped
	return w, nil
}

// provisionMessage is the health message of a failed attempt.
func provisionMessage(r opResult) string {
	text := r.err.Error()
	if len(text) > maxProvisionError {
		text = text[:maxProvisionError] + "..."
	}
	switch r.op.kind {
	case opJoin:
		return fmt.Sprintf("%sjoining cluster %s failed, retrying: %s", provisionMessagePrefix, r.op.target.Cluster, text)
	case opMaintain:
		return fmt.Sprintf("%s%s failed, retrying: %s", provisionMessagePrefix, r.op.operation.Kind, text)
	}
	return fmt.Sprintf("%swiping failed, retrying: %s", provisionMessagePrefix, text)
}

// setProvisionMessage sets (or, with "", clears) the provisioning message
// of a machine. Another health message, e.g. the health monitor's, is left
// as it is: the failure is in the log either way.
func setProvisionMessage(ctx context.Context, tx inventory.Tx, id, msg string) error {
	m, err := tx.GetMachine(ctx, id)
	if err != nil {
		return err
	}
	if m.HealthMessage == msg || (m.HealthMessage != "" && !strings.HasPrefix(m.HealthMessage, provisionMessagePrefix)) {
		return nil
	}
	m.HealthMessage = msg
	return tx.UpdateMachine(ctx, m)
}

// shutdown stops every operation, waits for their goroutines and writes
// the completions that arrived: what is not written is done again after a
// restart.
func (l *provisioning) shutdown() {
	for _, op := range l.ops {
		op.cancel()
	}
	for l.running > 0 {
		l.receive(<-l.results)
	}
	if len(l.pending) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownFlushTimeout)
	defer cancel()
	if _, err := l.flush(ctx); err != nil {
		l.log.Error(err, "Writing the last provisioning results; they are done again at the next start", "results", len(l.pending))
	}
}

// pollHealth reads the provisioner's faults, when it reports any, and
// writes them (see applyFaults). Machines that became available again are
// offered to the pools short of capacity at once.
func (l *provisioning) pollHealth(ctx context.Context) {
	hc, ok := l.b.provisioner.(provision.HealthChecker)
	if !ok {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, faultsTimeout)
	faults, err := hc.Faults(pctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			l.log.Error(err, "Reading machine faults from the provisioner")
		}
		return
	}
	available := 0
	err = l.b.write(ctx, func(ctx context.Context, tx inventory.Tx, events *[]event) error {
		var err error
		available, err = l.b.applyFaults(ctx, tx, faults, events)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			l.log.Error(err, "Writing machine faults")
		}
		return
	}
	if available > 0 {
		l.log.Info("Machines are healthy again and available", "machines", available)
		if err := l.b.ReconcileAll(ctx); err != nil && ctx.Err() == nil {
			l.log.Error(err, "Reconciling pools after machines became healthy")
		}
	}
}
