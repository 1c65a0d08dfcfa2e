// Package remediation runs the hub's health monitor: it watches the machines
// of every Pool, from their Nodes' Ready condition and the broker's health
// reports, and takes a machine that stays unhealthy up a ladder of broker
// disruptions (reboot, then reimage, then replace) under the disruption
// budget, unless so much of the pool is unhealthy that the cause is the fleet,
// not the hosts. See docs/remediation.md.
package remediation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/brokerapi"
	"github.com/strata-dev/strata/internal/cluster/brokerwatch"
	"github.com/strata-dev/strata/internal/cluster/condition"
	"github.com/strata-dev/strata/internal/cluster/nodeutil"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/conflicts"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// Defaults of the Options.
const (
	// DefaultNotReadyThreshold is how long a Node stays NotReady or Unknown
	// before its machine is remediated. The node lifecycle controller sets
	// Unknown only after its node-monitor-grace-period (50s by default)
	// without a heartbeat, so a dead host is remediated about 3 minutes after
	// its last heartbeat.
	DefaultNotReadyThreshold = 2 * time.Minute
	// DefaultFaultHoldOff is how long the broker must report a machine
	// unhealthy before it is remediated, and how long a machine is left after
	// a rung before it is judged again: long enough for the broker to see a
	// fault cleared, and for a zone whose machines fail moments apart to be
	// seen whole before any of them is touched.
	DefaultFaultHoldOff = time.Minute
	// DefaultWindow is how far back the broker's record of a machine's
	// remediation counts: a machine that breaks again after it is healthy
	// for longer starts the ladder over with a reboot.
	DefaultWindow = 30 * time.Minute
	// DefaultMaxUnhealthyPercent is the share of a pool that may be
	// unhealthy and still be remediated.
	DefaultMaxUnhealthyPercent = 20
	// DefaultResyncInterval is how often a Pool is looked at without an
	// event: Node changes are not watched (see docs/remediation.md).
	DefaultResyncInterval = 30 * time.Second
)

// FieldOwner is the server-side apply field manager of the HostsHealthy
// condition: the only part of a Pool the controller writes.
const FieldOwner = "remediation-controller"

// Actor is how the controller signs its broker calls for a pool.
func Actor(pool string) string {
	return "remediation/" + pool
}

// Options are the Reconciler's dependencies and settings.
type Options struct {
	Hub      client.Client
	Broker   brokerv1.BrokerServiceClient
	Clusters *remote.Clusters
	Recorder events.EventRecorder
	// Clock defaults to the real clock.
	Clock clock.PassiveClock

	// NotReadyThreshold defaults to DefaultNotReadyThreshold.
	NotReadyThreshold time.Duration
	// FaultHoldOff defaults to DefaultFaultHoldOff.
	FaultHoldOff time.Duration
	// Window defaults to DefaultWindow.
	Window time.Duration
	// MaxUnhealthyPercent, 1 to 100, defaults to DefaultMaxUnhealthyPercent.
	MaxUnhealthyPercent int
	// ResyncInterval defaults to DefaultResyncInterval.
	ResyncInterval time.Duration
}

// Reconciler remediates the unhealthy machines of Pools.
type Reconciler struct {
	hub      client.Client
	broker   brokerv1.BrokerServiceClient
	clusters *remote.Clusters
	recorder events.EventRecorder
	clock    clock.PassiveClock
	policy   policy
	resync   time.Duration

	mu sync.Mutex
	// faultSeen is, per pool and machine, when the broker's report of the
	// machine as unhealthy was first seen. Lost on restart, which only
	// delays a remediation by one hold-off.
	faultSeen map[string]map[string]time.Time
	// halted is, per pool, when its guard last held. Lost on restart, when
	// the hold-offs start over anyway.
	halted map[string]time.Time
}

// New validates the options and returns a Reconciler.
func New(o Options) (*Reconciler, error) {
	switch {
	case o.Hub == nil:
		return nil, errors.New("remediation controller: a hub client is required")
	case o.Broker == nil:
		return nil, errors.New("remediation controller: a broker client is required")
	case o.Clusters == nil:
		return nil, errors.New("remediation controller: workload cluster connections are required")
	case o.Recorder == nil:
		return nil, errors.New("remediation controller: an event recorder is required")
	case o.MaxUnhealthyPercent < 0 || o.MaxUnhealthyPercent > 100:
		return nil, fmt.Errorf("remediation controller: max unhealthy percent must be within 1..100, not %d", o.MaxUnhealthyPercent)
	case o.NotReadyThreshold < 0 || o.FaultHoldOff < 0 || o.Window < 0 || o.ResyncInterval < 0:
		return nil, errors.New("remediation controller: durations must not be negative")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	r := &Reconciler{
		hub: o.Hub, broker: o.Broker, clusters: o.Clusters, recorder: o.Recorder, clock: o.Clock,
		policy: policy{
			notReady:            orDefault(o.NotReadyThreshold, DefaultNotReadyThreshold),
			faultHoldOff:        orDefault(o.FaultHoldOff, DefaultFaultHoldOff),
			window:              orDefault(o.Window, DefaultWindow),
			maxUnhealthyPercent: orDefault(o.MaxUnhealthyPercent, DefaultMaxUnhealthyPercent),
		},
		resync:    orDefault(o.ResyncInterval, DefaultResyncInterval),
		faultSeen: map[string]map[string]time.Time{},
		halted:    map[string]time.Time{},
	}
	if pol := r.policy; pol.window <= pol.notReady || pol.window <= pol.faultHoldOff {
		return nil, fmt.Errorf("remediation controller: the window (%s) must be longer than the thresholds (%s, %s), or a rung is forgotten before the next one is due",
			pol.window, pol.notReady, pol.faultHoldOff)
	}
	return r, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// SetupWithManager registers the controller and its broker watch. The
// manager must run the Clusters given in the Options.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	be := &brokerEvents{}
	pools, disruptions := brokerwatch.Pools(r.broker, be.pool), brokerwatch.Disruptions(r.broker, be.disruption)
	for _, w := range []*brokerwatch.Watch{pools, disruptions} {
		if err := mgr.Add(w); err != nil {
			return err
		}
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.Pool{}).
		WatchesRawSource(source.Channel(pools.Events(), &handler.EnqueueRequestForObject{})).
		WatchesRawSource(source.Channel(disruptions.Events(), &handler.EnqueueRequestForObject{})).
		WatchesRawSource(source.Channel(r.clusters.NodeEvents(), handler.EnqueueRequestsFromMapFunc(nodeutil.PoolOf))).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Named("remediation").
		Complete(conflicts.Requeue(r))
}

// Reconcile judges the machines of one Pool and takes each unhealthy one a
// step up its ladder.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pool := &fleetv1alpha1.Pool{}
	if err := r.hub.Get(ctx, req.NamespacedName, pool); err != nil {
		if apierrors.IsNotFound(err) {
			r.forgetPool(req.Name)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	logger := log.FromContext(ctx).WithValues("pool", klog.KObj(pool), "cluster", pool.Spec.Cluster)
	ctx = log.IntoContext(ctx, logger)
	actor := Actor(pool.Name)
	if !pool.DeletionTimestamp.IsZero() {
		// Its machines go back to the broker; rungs that have not started
		// would hold them (and their Nodes cordoned) for nothing.
		return reconcile.Result{}, r.callOff(ctx, pool.Name, actor)
	}

	nodes, nodesNote := r.poolNodes(ctx, pool)
	resp, err := r.broker.GetPool(ctx, &brokerv1.GetPoolRequest{Name: pool.Name})
	if brokerapi.IsCode(err, codes.NotFound) {
		return reconcile.Result{RequeueAfter: r.resync}, nil // the pool controller creates it
	}
	if err != nil {
		return reconcile.Result{}, fmt.Errorf("reading broker pool %s: %w", pool.Name, err)
	}
	open, err := brokerapi.OpenDisruptions(ctx, r.broker, pool.Name)
	if err != nil {
		return reconcile.Result{}, err
	}
	now := r.clock.Now()
	p := plan{total: int(resp.GetPool().GetStatus().GetAllocated())}
	if quiet(resp.GetPool(), nodes, open, actor) {
		r.forgetFaults(pool.Name)
	} else {
		machines, err := r.observe(ctx, pool.Name, nodes, open, actor, now)
		if err != nil {
			return reconcile.Result{}, err
		}
		p = decide(view{pool: pool.Name, actor: actor, machines: machines, nodesKnown: nodesNote == "",
			lastHalted: r.haltedAt(pool.Name), now: now}, r.policy)
		if p.halted != "" {
			r.markHalted(pool.Name, now)
		}
		if err := r.act(ctx, pool, &p); err != nil {
			return reconcile.Result{}, err
		}
	}
	if err := r.writeCondition(ctx, pool, hostsCondition(p, pool.Generation, r.policy.window, nodesNote)); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: p.next(now, r.resync)}, nil
}

// poolNodes reads the Pool's Nodes from the cache of its cluster's
// connection; when they cannot be read it says why, and remediation goes on
// with the broker's signals alone.
func (r *Reconciler) poolNodes(ctx context.Context, pool *fleetv1alpha1.Pool) ([]corev1.Node, string) {
	cluster := &fleetv1alpha1.Cluster{}
	if err := r.hub.Get(ctx, client.ObjectKey{Name: pool.Spec.Cluster}, cluster); err != nil {
		return nil, fmt.Sprintf("reading cluster %q: %v", pool.Spec.Cluster, err)
	}
	if c := meta.FindStatusCondition(cluster.Status.Conditions, fleetv1alpha1.ClusterReadyCondition); c == nil || c.Status != metav1.ConditionTrue {
		return nil, fmt.Sprintf("cluster %q is not Ready", cluster.Name)
	}
	rc, err := r.clusters.Get(ctx, cluster)
	if err != nil {
		return nil, err.Error()
	}
	nodes := &corev1.NodeList{}
	if err := rc.Client.List(ctx, nodes, client.MatchingLabels{fleetv1alpha1.PoolLabel: pool.Name}); err != nil {
		return nil, fmt.Sprintf("listing the Nodes of pool %s: %v", pool.Name, err)
	}
	return nodes.Items, ""
}

// quiet says, from what is cheap to read, that no machine of a pool needs a
// closer look: the broker counts none unhealthy, no remediation of ours is
// open and every Node that is not Ready is under a disruption.
func quiet(bp *brokerv1.Pool, nodes []corev1.Node, open map[string]*brokerv1.Disruption, actor string) bool {
	if bp.GetStatus().GetUnhealthy() > 0 {
		return false
	}
	for _, d := range open {
		if isRemediation(d) && d.GetOnBehalfOf() == actor {
			return false
		}
	}
	for i := range nodes {
		if c := nodeutil.ReadyCondition(&nodes[i]); c != nil && c.Status != corev1.ConditionTrue && open[nodeutil.Machine(&nodes[i])] == nil {
			return false
		}
	}
	return true
}

// observe gathers what is known of each machine of the pool, and reads the
// broker's record of the machines that are unhealthy or under remediation.
func (r *Reconciler) observe(ctx context.Context, pool string, nodes []corev1.Node, open map[string]*brokerv1.Disruption,
	actor string, now time.Time) ([]machine, error) {
	listed, err := brokerapi.PoolMachines(ctx, r.broker, pool)
	if err != nil {
		return nil, err
	}
	byMachine := make(map[string]*corev1.Node, len(nodes))
	for i := range nodes {
		byMachine[nodeutil.Machine(&nodes[i])] = &nodes[i]
	}
	seen := r.see(pool, listed, now)
	machines := make([]machine, 0, len(listed))
	for _, bm := range listed {
		m := machine{m: bm, node: byMachine[bm.GetId()], open: open[bm.GetId()], faultSeen: seen[bm.GetId()]}
		ours := m.open != nil && isRemediation(m.open) && m.open.GetOnBehalfOf() == actor
		c := nodeutil.ReadyCondition(m.node)
		if ours || m.open == nil && (!bm.GetHealthy() || c != nil && c.Status != corev1.ConditionTrue) {
			ds, err := r.machineDisruptions(ctx, bm.GetId())
			if err != nil {
				return nil, err
			}
			m.record = readRecord(pool, ds, now.Add(-r.policy.window))
		}
		machines = append(machines, m)
	}
	return machines, nil
}

// see remembers when each unhealthy machine of a pool was first reported so
// and forgets the rest; it returns the first sightings.
func (r *Reconciler) see(pool string, machines []*brokerv1.Machine, now time.Time) map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	before := r.faultSeen[pool]
	seen := map[string]time.Time{}
	for _, m := range machines {
		if m.GetHealthy() {
			continue
		}
		if t, ok := before[m.GetId()]; ok {
			seen[m.GetId()] = t
		} else {
			seen[m.GetId()] = now
		}
	}
	r.faultSeen[pool] = seen
	return seen
}

// haltedAt is when the pool's guard last held, zero when it has not.
func (r *Reconciler) haltedAt(pool string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.halted[pool]
}

func (r *Reconciler) markHalted(pool string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.halted[pool] = now
}

func (r *Reconciler) forgetFaults(pool string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.faultSeen, pool)
}

// forgetPool drops what is remembered of a pool that is gone.
func (r *Reconciler) forgetPool(pool string) {
	r.forgetFaults(pool)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.halted, pool)
}

// act carries the plan out: starts approved rungs, calls off rungs of
// machines healthy again, and asks for new rungs, oldest signal first,
// until the broker's budget says no.
func (r *Reconciler) act(ctx context.Context, pool *fleetv1alpha1.Pool, p *plan) error {
	logger := log.FromContext(ctx)
	actor := Actor(pool.Name)
	for _, i := range p.order() {
		s := &p.steps[i]
		op := opName(s.op)
		switch s.verb {
		case verbStart:
			_, err := r.broker.StartDisruption(ctx, &brokerv1.StartDisruptionRequest{
				Id: s.disruption.GetId(), OnBehalfOf: actor, Message: "its Node is drained: the broker performs the " + op})
			if err != nil && !brokerapi.IsCode(err, codes.FailedPrecondition) { // started meanwhile
				return fmt.Errorf("starting disruption %s of machine %s: %w", s.disruption.GetId(), s.machine, err)
			}
			s.outcome = op + " started"
			logger.Info("Started a remediation", "machine", s.machine, "operation", op, "disruption", s.disruption.GetId())
		case verbCancel:
			_, err := r.broker.CancelDisruption(ctx, &brokerv1.CancelDisruptionRequest{
				Id: s.disruption.GetId(), OnBehalfOf: actor, Message: "machine is healthy again: the " + op + " is not needed"})
			if err != nil && !brokerapi.IsCode(err, codes.FailedPrecondition) {
				return fmt.Errorf("cancelling disruption %s of machine %s: %w", s.disruption.GetId(), s.machine, err)
			}
			logger.Info("Called off a remediation: the machine is healthy again", "machine", s.machine, "operation", op)
		case verbCreate:
			if err := r.create(ctx, pool, p, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// create asks the broker for a machine's next rung.
func (r *Reconciler) create(ctx context.Context, pool *fleetv1alpha1.Pool, p *plan, s *step) error {
	op := opName(s.op)
	if p.budget != "" {
		s.outcome = op + " waits for the disruption budget"
		return nil
	}
	rung := fmt.Sprintf("%s (rung %d of %d)", op, rungOf(s.op), len(ladder))
	resp, err := r.broker.CreateDisruption(ctx, &brokerv1.CreateDisruptionRequest{
		Machine: s.machine, Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION, OnBehalfOf: Actor(pool.Name),
		Message:   rung + ": " + s.health.signal,
		Operation: &brokerv1.Operation{Kind: s.op, Software: s.software},
	})
	switch {
	case err == nil:
		s.disruption = resp.GetDisruption()
		s.outcome = op + " requested"
		log.FromContext(ctx).Info("Asked for a remediation", "machine", s.machine, "operation", op,
			"disruption", s.disruption.GetId(), "signal", s.health.signal)
		r.recorder.Eventf(pool, nil, corev1.EventTypeNormal, "RemediationRequested", "Remediate",
			"machine %s: %s requested: %s", s.machine, rung, s.health.signal)
		return nil
	case brokerapi.OverBudget(err):
		p.budget = brokerapi.Message(err)
		s.outcome = op + " waits for the disruption budget"
		log.FromContext(ctx).V(1).Info("The disruption budget is spent; trying again later", "machine", s.machine, "broker", p.budget)
		return nil
	case brokerapi.IsCode(err, codes.FailedPrecondition) || brokerapi.IsCode(err, codes.NotFound):
		// Disrupted or released meanwhile: the next pass sees it.
		s.outcome = op + " not requested: " + brokerapi.Message(err)
		return nil
	}
	return fmt.Errorf("asking for a %s of machine %s: %w", op, s.machine, err)
}

// writeCondition applies the HostsHealthy condition when it changed, with
// server-side apply under FieldOwner: the Pool controller's conditions and
// counts are left alone. A change to RemediationHalted is also an event.
func (r *Reconciler) writeCondition(ctx context.Context, pool *fleetv1alpha1.Pool, c metav1.Condition) error {
	before := meta.FindStatusCondition(pool.Status.Conditions, c.Type)
	c.LastTransitionTime = metav1.NewTime(r.clock.Now())
	wrote, err := condition.Apply(ctx, r.hub, "Pool", pool.Name, pool.Status.Conditions, c, client.FieldOwner(FieldOwner))
	if err != nil || !wrote {
		return err
	}
	log.FromContext(ctx).V(1).Info("Wrote the pool's host health", "reason", c.Reason, "message", c.Message)
	if c.Reason == fleetv1alpha1.RemediationHaltedReason && (before == nil || before.Reason != c.Reason) {
		log.FromContext(ctx).Info("Halted remediation", "why", c.Message)
		r.recorder.Eventf(pool, nil, corev1.EventTypeWarning, fleetv1alpha1.RemediationHaltedReason, "Remediate", "%s", c.Message)
	}
	return nil
}

// callOff cancels the pool's remediation disruptions that have not started.
func (r *Reconciler) callOff(ctx context.Context, pool, actor string) error {
	open, err := brokerapi.OpenDisruptions(ctx, r.broker, pool)
	if err != nil {
		return err
	}
	for _, d := range open {
		if d.GetOnBehalfOf() != actor || d.GetState() == brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS {
			continue
		}
		_, err := r.broker.CancelDisruption(ctx, &brokerv1.CancelDisruptionRequest{
			Id: d.GetId(), OnBehalfOf: actor, Message: "pool " + pool + " is being deleted",
		})
		if err != nil && !brokerapi.IsCode(err, codes.FailedPrecondition) && !brokerapi.IsCode(err, codes.NotFound) {
			return fmt.Errorf("cancelling remediation %s of machine %s: %w", d.GetId(), d.GetMachine(), err)
		}
		log.FromContext(ctx).Info("Called off a remediation: the pool is being deleted", "machine", d.GetMachine(), "disruption", d.GetId())
	}
	return nil
}
