// Package rollout runs the maintenance orchestrator: the hub controller of
// MaintenanceRollouts. It moves the machines of a set of Pools to new node
// software one maintenance zone at a time. For each machine it asks the
// Compute Broker for a planned-upgrade disruption with a reimage operation;
// the cluster manager drains the Node and approves; the rollout starts it;
// the broker's provisioner reimages the machine and completes it; the
// cluster manager uncordons. The broker's budget decides how many machines
// of a zone are disrupted at once, and a health gate runs between zones.
// Everything the rollout decides follows from the broker's record, so a
// restart resumes where it was and never disrupts a machine twice.
package rollout

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/brokerapi"
	"github.com/strata-dev/strata/internal/cluster/brokerwatch"
	"github.com/strata-dev/strata/internal/cluster/nodeutil"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/conflicts"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// DefaultActiveInterval: a rollout that is not complete is looked at again
// soon even without a broker event (the health gate is polled).
const DefaultActiveInterval = 2 * time.Second

// idleInterval: a complete rollout is looked at again now and then, since
// its pools' machines may move on without an event of its own.
const idleInterval = time.Minute

// Finalizer lets a deleted rollout call off the disruptions it asked for
// and that have not started, so no Node stays cordoned for nothing.
const Finalizer = "fleet.strata.dev/maintenance-rollout"

// Actor is how a rollout signs its broker disruptions.
func Actor(rollout string) string {
	return fleetv1alpha1.RolloutActorPrefix + rollout
}

// Options are the Reconciler's dependencies.
type Options struct {
	Hub      client.Client
	Broker   brokerv1.BrokerServiceClient
	Clusters *remote.Clusters
	Recorder events.EventRecorder
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// ActiveInterval defaults to DefaultActiveInterval.
	ActiveInterval time.Duration
}

// Reconciler runs MaintenanceRollouts.
type Reconciler struct {
	hub            client.Client
	broker         brokerv1.BrokerServiceClient
	clusters       *remote.Clusters
	recorder       events.EventRecorder
	clock          clock.PassiveClock
	activeInterval time.Duration
}

// New validates the options and returns a Reconciler.
func New(o Options) (*Reconciler, error) {
	switch {
	case o.Hub == nil:
		return nil, errors.New("rollout controller: a hub client is required")
	case o.Broker == nil:
		return nil, errors.New("rollout controller: a broker client is required")
	case o.Clusters == nil:
		return nil, errors.New("rollout controller: workload cluster connections are required")
	case o.Recorder == nil:
		return nil, errors.New("rollout controller: an event recorder is required")
	case o.ActiveInterval < 0:
		return nil, fmt.Errorf("rollout controller: the active interval must be positive, not %s", o.ActiveInterval)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.ActiveInterval == 0 {
		o.ActiveInterval = DefaultActiveInterval
	}
	return &Reconciler{
		hub: o.Hub, broker: o.Broker, clusters: o.Clusters, recorder: o.Recorder, clock: o.Clock, activeInterval: o.ActiveInterval,
	}, nil
}

// SetupWithManager registers the controller and its broker watch. The
// manager must run o.Clusters.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	watch := brokerwatch.Disruptions(r.broker, rolloutOf)
	if err := mgr.Add(watch); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.MaintenanceRollout{}).
		WatchesRawSource(source.Channel(watch.Events(), &handler.EnqueueRequestForObject{})).
		// A Pool's owner changing its node config starts or holds its rollouts.
		Watches(&fleetv1alpha1.Pool{}, handler.EnqueueRequestsFromMapFunc(r.rolloutsOfPool)).
		// A Node uncordoned or Ready again may let the health gate pass: the
		// next zone starts then, not on the next periodic look.
		WatchesRawSource(source.Channel(r.clusters.NodeEvents(), handler.EnqueueRequestsFromMapFunc(r.activeRolloutsOfNode))).
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Named("maintenancerollout").
		Complete(conflicts.Requeue(r))
}

// rolloutOf maps a disruption to the rollout that asked for it, when the
// rollout has something to do about it: one approved (to start), one that
// ended or went. It created its Pending ones and started those in
// progress itself; each look reads every machine and disruption of its
// pools from the broker, so a zone's hundreds of these are skipped (the
// periodic look still comes).
func rolloutOf(e *brokerv1.WatchDisruptionsResponse) client.Object {
	name, ok := strings.CutPrefix(e.GetDisruption().GetOnBehalfOf(), fleetv1alpha1.RolloutActorPrefix)
	if !ok || name == "" {
		return nil
	}
	switch e.GetDisruption().GetState() {
	case brokerv1.DisruptionState_DISRUPTION_STATE_PENDING, brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS:
		if e.GetType() != brokerv1.EventType_EVENT_TYPE_DELETED {
			return nil
		}
	}
	return &fleetv1alpha1.MaintenanceRollout{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// rolloutsOfPool maps a Pool to the rollouts of it.
func (r *Reconciler) rolloutsOfPool(ctx context.Context, pool client.Object) []reconcile.Request {
	return r.rolloutsOf(ctx, pool.GetName(), false)
}

// activeRolloutsOfNode maps a Pool Node to the rollouts of its Pool that
// are not complete, when the Node may be what the health gate waits for:
// Ready and not cordoned for a disruption. The other changes of a zone's
// Nodes (cordon, re-registration, taints), several per machine, cannot
// let the gate pass, and each look reads the pools' machines and
// disruptions from the broker; the periodic look still comes.
func (r *Reconciler) activeRolloutsOfNode(ctx context.Context, obj client.Object) []reconcile.Request {
	node, ok := obj.(*corev1.Node)
	if !ok || !nodeutil.Ready(node) || node.Annotations[fleetv1alpha1.CordonedForAnnotation] != "" {
		return nil
	}
	return r.rolloutsOf(ctx, node.Labels[fleetv1alpha1.PoolLabel], true)
}

// rolloutsOf lists the rollouts of a pool; activeOnly leaves out those
// that are complete.
func (r *Reconciler) rolloutsOf(ctx context.Context, pool string, activeOnly bool) []reconcile.Request {
	if pool == "" {
		return nil
	}
	all := &fleetv1alpha1.MaintenanceRolloutList{}
	if err := r.hub.List(ctx, all); err != nil {
		log.FromContext(ctx).Error(err, "Listing rollouts for a pool", "pool", pool)
		return nil
	}
	var out []reconcile.Request
	for i := range all.Items {
		ro := &all.Items[i]
		if !slices.Contains(ro.Spec.Pools, pool) ||
			(activeOnly && meta.IsStatusConditionTrue(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition)) {
			continue
		}
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: ro.Name}})
	}
	return out
}

// Reconcile moves one rollout forward as far as the world allows. Nothing
// it decides rests on its own earlier status: machines, disruptions and
// failures come from the broker, the target from the Pools' spec, and
// whether to hold from its spec and those failures.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ro := &fleetv1alpha1.MaintenanceRollout{}
	if err := r.hub.Get(ctx, req.NamespacedName, ro); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("rollout", klog.KObj(ro)))
	if !ro.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, ro)
	}
	// The finalizer is patched in, never an Update of the whole object: that
	// would write the spec as this client read it (a healthGateTimeout of
	// "10m" comes back "10m0s"), and only people write spec.
	if patch := client.MergeFrom(ro.DeepCopy()); controllerutil.AddFinalizer(ro, Finalizer) {
		return reconcile.Result{}, r.hub.Patch(ctx, ro, patch)
	}

	machines, disruptions, err := r.brokerState(ctx, ro.Spec.Pools)
	if err != nil {
		return r.finish(ctx, ro, nil, outcome{block: &blocker{reason: fleetv1alpha1.RolloutBrokerUnavailableReason, message: err.Error()}})
	}
	p := newPlan(ro, machines, disruptions)
	if err := r.describeFailures(ctx, p); err != nil {
		return reconcile.Result{}, err
	}
	pools, block := r.pools(ctx, ro, machines)
	if block != nil && block.offTarget {
		// The pools state another node config: what the rollout asked for
		// and has not started is called off, so no Node stays drained for
		// software its Pool no longer wants.
		if err := r.cancelUnstarted(ctx, ro, disruptions, block.message); err != nil {
			return reconcile.Result{}, err
		}
		return r.finish(ctx, ro, p, outcome{block: block})
	}
	// Drained machines are started whatever else holds the rollout: waiting
	// would only keep their Nodes empty.
	if err := r.start(ctx, ro, p.toStart); err != nil {
		return reconcile.Result{}, err
	}
	if block != nil {
		return r.finish(ctx, ro, p, outcome{block: block})
	}
	out, err := r.act(ctx, ro, pools, p)
	if err != nil {
		return reconcile.Result{}, err
	}
	return r.finish(ctx, ro, p, out)
}

// outcome is what acting on the plan found, for the status.
type outcome struct {
	block *blocker
	// gate says why the health gate before the current zone fails, "" when
	// it passes or is not needed.
	gate string
	// overBudget is the broker's refusal when the budget is spent.
	overBudget string
	// refused is the broker's last other refusal of a disruption.
	refused string
	created int
}

// blocker is why the rollout cannot go on; offTarget: because a pool
// states another node config, so it must not even finish what it started.
type blocker struct {
	reason, message string
	offTarget       bool
}

// act, unless a person paused the rollout or too many machines failed,
// passes the health gate and asks for disruptions of the current zone.
func (r *Reconciler) act(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout, pools []*fleetv1alpha1.Pool, p *plan) (outcome, error) {
	var out outcome
	if ro.Spec.Paused || p.halted(ro.Spec.ToleratedFailures) || p.current == nil {
		return out, nil
	}
	if !p.current.started && p.current.counts[inProgress] == 0 {
		gate, err := r.healthGate(ctx, pools, p)
		if err != nil {
			return out, err
		}
		if gate != "" {
			out.gate = gate
			if ro.Status.HealthGateFailingSince == nil {
				r.recorder.Eventf(ro, nil, corev1.EventTypeNormal, fleetv1alpha1.RolloutWaitingForHealthGateReason, "HealthGate",
					"MZ %d waits for its health gate: %s", p.current.zone, gate)
			}
			return out, nil
		}
	}
	return out, r.disrupt(ctx, ro, p.current, &out)
}

// disrupt asks the broker for a planned upgrade of each candidate of the
// zone, all in one batch: the broker's budget admits those it can, in
// order, and refuses the rest.
func (r *Reconciler) disrupt(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout, z *zonePlan, out *outcome) error {
	if len(z.candidates) == 0 {
		return nil
	}
	op := &brokerv1.Operation{
		Kind:     brokerv1.OperationKind_OPERATION_KIND_REIMAGE,
		Software: &brokerv1.Software{NodeConfig: ro.Spec.NodeConfig, OsImage: ro.Spec.OSImage},
	}
	reqs := make([]*brokerv1.CreateDisruptionRequest, len(z.candidates))
	for i, m := range z.candidates {
		reqs[i] = &brokerv1.CreateDisruptionRequest{
			Machine: m.GetId(), Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE,
			OnBehalfOf: Actor(ro.Name), Message: disruptionMessage(ro, m), Operation: op,
		}
	}
	results, err := brokerapi.CreateDisruptions(ctx, r.broker, reqs)
	for i, res := range results {
		m := z.candidates[i]
		switch {
		case res.Err == nil:
			out.created++
			z.counts[candidate]--
			z.counts[inProgress]++
		case brokerapi.OverBudget(res.Err):
			if out.overBudget == "" {
				out.overBudget = brokerapi.Message(res.Err)
			}
		default:
			// Another actor got there first, or the machine changed (the
			// next pass sees it); or the broker cannot do it at all, which
			// the status shows when nothing goes forward.
			out.refused = fmt.Sprintf("the broker refused to disrupt machine %s: %s", m.GetId(), brokerapi.Message(res.Err))
			log.FromContext(ctx).V(1).Info("Broker refused a disruption", "machine", m.GetId(), "reason", brokerapi.Message(res.Err))
		}
	}
	if out.created > 0 {
		log.FromContext(ctx).Info("Asked for disruptions", "zone", z.zone, "machines", out.created)
	}
	if err != nil {
		return fmt.Errorf("asking the broker to disrupt %d machines of MZ %d: %w", len(reqs), z.zone, err)
	}
	return nil
}

// start tells the broker to perform the drained machines' maintenance, all
// in one batch. A disruption that moved on meanwhile is left alone.
func (r *Reconciler) start(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout, ds []*brokerv1.Disruption) error {
	if len(ds) == 0 {
		return nil
	}
	updates := make([]*brokerv1.DisruptionUpdate, len(ds))
	for i, d := range ds {
		updates[i] = &brokerv1.DisruptionUpdate{
			Id: d.GetId(), Action: brokerv1.DisruptionAction_DISRUPTION_ACTION_START, OnBehalfOf: Actor(ro.Name),
			Message: "node drained; reimaging with node config " + ro.Spec.NodeConfig,
		}
	}
	results, err := brokerapi.UpdateDisruptions(ctx, r.broker, updates)
	if err != nil {
		return fmt.Errorf("starting %d disruptions: %w", len(ds), err)
	}
	for i, res := range results {
		if res.Err != nil && !brokerapi.IsCode(res.Err, codes.FailedPrecondition) {
			return fmt.Errorf("starting disruption %s of machine %s: %w", ds[i].GetId(), ds[i].GetMachine(), res.Err)
		}
	}
	return nil
}

// describeFailures fills in why each failed maintenance the status lists
// failed, from its disruption's history, as the broker has it now.
func (r *Reconciler) describeFailures(ctx context.Context, p *plan) error {
	failures := p.failures[max(0, len(p.failures)-maxFailures):]
	for i := range failures {
		resp, err := r.broker.GetDisruption(ctx, &brokerv1.GetDisruptionRequest{Id: failures[i].Disruption})
		if err != nil {
			return fmt.Errorf("reading disruption %s: %w", failures[i].Disruption, err)
		}
		failures[i].Message = failureMessage(resp.GetDisruption())
	}
	return nil
}

// pools reads the rollout's Pools, and blocks it when one is missing, when
// one states another node config than the rollout's, or when an older
// rollout of one of them still has machines of the shared pools to move.
func (r *Reconciler) pools(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout, machines []*brokerv1.Machine) ([]*fleetv1alpha1.Pool, *blocker) {
	var pools []*fleetv1alpha1.Pool
	for _, name := range ro.Spec.Pools {
		pool := &fleetv1alpha1.Pool{}
		if err := r.hub.Get(ctx, client.ObjectKey{Name: name}, pool); err != nil {
			if client.IgnoreNotFound(err) == nil {
				return nil, &blocker{reason: fleetv1alpha1.RolloutPoolNotFoundReason,
					message: fmt.Sprintf("pool %q does not exist on the hub (kubectl get pools lists those that do)", name)}
			}
			return nil, &blocker{reason: fleetv1alpha1.RolloutPoolNotFoundReason, message: fmt.Sprintf("reading pool %q: %v", name, err)}
		}
		pools = append(pools, pool)
	}
	all := &fleetv1alpha1.MaintenanceRolloutList{}
	if err := r.hub.List(ctx, all); err != nil {
		return nil, &blocker{reason: fleetv1alpha1.RolloutPoolBusyReason, message: "listing rollouts: " + err.Error()}
	}
	if b := hold(ro, pools, all.Items, machines); b != nil {
		return nil, b
	}
	return pools, nil
}

// hold is why the rollout may not disrupt machines of its pools, nil when
// it may: a pool states another node config, or an older rollout of a
// shared pool that the pools still state has machines left to move there.
func hold(ro *fleetv1alpha1.MaintenanceRollout, pools []*fleetv1alpha1.Pool, rollouts []fleetv1alpha1.MaintenanceRollout, machines []*brokerv1.Machine) *blocker {
	if b := offTarget(ro, pools, rollouts); b != nil {
		return b
	}
	states := map[string]string{}
	for _, pool := range pools {
		states[pool.Name] = pool.Spec.NodeConfig
	}
	for i := range rollouts {
		if other := &rollouts[i]; olderAndOverlapping(other, ro) && active(other, states) && !doneOn(other, ro, machines) {
			return &blocker{reason: fleetv1alpha1.RolloutPoolBusyReason,
				message: fmt.Sprintf("rollout %s of the same pools started first and has machines left to move to node config %s; this one waits (delete one of them to choose)",
					other.Name, other.Spec.NodeConfig)}
		}
	}
	return nil
}

// offTarget blocks the rollout when one of its pools states another node
// config: the pool's owner has not asked for this one (yet), or has moved
// on to a newer rollout's, which this one must not pull machines back from.
func offTarget(ro *fleetv1alpha1.MaintenanceRollout, pools []*fleetv1alpha1.Pool, rollouts []fleetv1alpha1.MaintenanceRollout) *blocker {
	for _, pool := range pools {
		if pool.Spec.NodeConfig == ro.Spec.NodeConfig {
			continue
		}
		for i := range rollouts {
			if other := &rollouts[i]; other.Name != ro.Name && other.Spec.NodeConfig == pool.Spec.NodeConfig &&
				slices.Contains(other.Spec.Pools, pool.Name) && ro.CreationTimestamp.Before(&other.CreationTimestamp) {
				return &blocker{reason: fleetv1alpha1.RolloutSupersededReason, offTarget: true,
					message: fmt.Sprintf("superseded: pool %s states node config %s, that of the newer rollout %s; this rollout (node config %s) disrupts nothing and can be deleted",
						pool.Name, pool.Spec.NodeConfig, other.Name, ro.Spec.NodeConfig)}
			}
		}
		return &blocker{reason: fleetv1alpha1.RolloutPoolNodeConfigDiffersReason, offTarget: true,
			message: fmt.Sprintf("pool %s states node config %s, not the rollout's %s, so no machine is disrupted: set the pool's node config "+
				"in Git, or kubectl patch pool %s --type merge -p '{\"spec\":{\"nodeConfig\":\"%s\"}}'",
				pool.Name, cmp.Or(pool.Spec.NodeConfig, `"" (the node profile's)`), ro.Spec.NodeConfig, pool.Name, ro.Spec.NodeConfig)}
	}
	return nil
}

// active says whether every pool of other that states is known states
// other's node config: otherwise other disrupts nothing and blocks no one.
func active(other *fleetv1alpha1.MaintenanceRollout, states map[string]string) bool {
	for _, p := range other.Spec.Pools {
		if nc, ok := states[p]; ok && nc != other.Spec.NodeConfig {
			return false
		}
	}
	return true
}

// doneOn says whether every machine of the pools other shares with ro runs
// other's target, as the broker shows them now.
func doneOn(other, ro *fleetv1alpha1.MaintenanceRollout, machines []*brokerv1.Machine) bool {
	for _, m := range machines {
		if slices.Contains(other.Spec.Pools, m.GetPool()) && slices.Contains(ro.Spec.Pools, m.GetPool()) && !onTarget(&other.Spec, m) {
			return false
		}
	}
	return true
}

// olderAndOverlapping says whether other shares a pool with ro and was
// created before it.
func olderAndOverlapping(other, ro *fleetv1alpha1.MaintenanceRollout) bool {
	if other.Name == ro.Name || !other.DeletionTimestamp.IsZero() {
		return false
	}
	if !other.CreationTimestamp.Before(&ro.CreationTimestamp) &&
		(!other.CreationTimestamp.Equal(&ro.CreationTimestamp) || other.Name > ro.Name) {
		return false
	}
	for _, p := range other.Spec.Pools {
		for _, q := range ro.Spec.Pools {
			if p == q {
				return true
			}
		}
	}
	return false
}

// brokerState reads the disruptions and machines of the pools. Disruptions
// come first: a disruption that completes between the two reads is then
// seen open beside its machine's new software, which is harmless, rather
// than completed beside the old software, which would disrupt the machine
// a second time.
func (r *Reconciler) brokerState(ctx context.Context, pools []string) ([]*brokerv1.Machine, []*brokerv1.Disruption, error) {
	var machines []*brokerv1.Machine
	var disruptions []*brokerv1.Disruption
	for _, pool := range pools {
		resp, err := r.broker.ListDisruptions(ctx, &brokerv1.ListDisruptionsRequest{Pool: pool})
		if err != nil {
			return nil, nil, fmt.Errorf("listing the disruptions of broker pool %s: %w", pool, err)
		}
		disruptions = append(disruptions, resp.GetDisruptions()...)
	}
	for _, pool := range pools {
		ms, err := brokerapi.PoolMachines(ctx, r.broker, pool)
		if err != nil {
			return nil, nil, err
		}
		machines = append(machines, ms...)
	}
	return machines, disruptions, nil
}

// reconcileDelete calls off the rollout's disruptions that have not
// started (their Nodes are uncordoned by the cluster manager), leaves those
// in progress to the broker, and lets the rollout go.
func (r *Reconciler) reconcileDelete(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(ro, Finalizer) {
		return reconcile.Result{}, nil
	}
	_, disruptions, err := r.brokerState(ctx, ro.Spec.Pools)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := r.cancelUnstarted(ctx, ro, disruptions, "rollout "+ro.Name+" was deleted"); err != nil {
		return reconcile.Result{}, err
	}
	patch := client.MergeFrom(ro.DeepCopy())
	controllerutil.RemoveFinalizer(ro, Finalizer)
	return reconcile.Result{}, client.IgnoreNotFound(r.hub.Patch(ctx, ro, patch))
}

// cancelUnstarted calls off the rollout's disruptions that have not
// started; the cluster manager uncordons their Nodes.
func (r *Reconciler) cancelUnstarted(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout, disruptions []*brokerv1.Disruption, why string) error {
	for _, d := range disruptions {
		if d.GetOnBehalfOf() != Actor(ro.Name) || (d.GetState() != brokerv1.DisruptionState_DISRUPTION_STATE_PENDING &&
			d.GetState() != brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED) {
			continue
		}
		_, err := r.broker.CancelDisruption(ctx, &brokerv1.CancelDisruptionRequest{Id: d.GetId(), OnBehalfOf: Actor(ro.Name), Message: why})
		if err != nil && !brokerapi.IsCode(err, codes.FailedPrecondition) && !brokerapi.IsCode(err, codes.NotFound) {
			return fmt.Errorf("cancelling disruption %s: %w", d.GetId(), err)
		}
		log.FromContext(ctx).Info("Called off a disruption", "disruption", d.GetId(), "machine", d.GetMachine(), "why", why)
	}
	return nil
}

// finish writes the status that follows from the plan and the outcome,
// tells by events what began on this pass, and says when to look again.
func (r *Reconciler) finish(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout, p *plan, out outcome) (reconcile.Result, error) {
	status := desiredStatus(ro, p, out, metav1.NewTime(r.clock.Now()))
	if !equality.Semantic.DeepEqual(status, ro.Status) {
		before := ro.Status
		ro.Status = status
		if err := r.hub.Status().Update(ctx, ro); err != nil {
			return reconcile.Result{}, fmt.Errorf("writing status of rollout %s: %w", ro.Name, err)
		}
		r.announce(ctx, ro, &before)
	}
	if meta.IsStatusConditionTrue(status.Conditions, fleetv1alpha1.RolloutCompleteCondition) {
		// Still looked at now and then: a later change of the pools shows
		// in this rollout's counts.
		return reconcile.Result{RequeueAfter: idleInterval}, nil
	}
	return reconcile.Result{RequeueAfter: r.activeInterval}, nil
}

// announce records events for what the status says that it did not
// before: the events are news for people, not evidence for the rollout.
func (r *Reconciler) announce(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout, before *fleetv1alpha1.MaintenanceRolloutStatus) {
	s := &ro.Status
	if s.CompletionTime != nil && before.CompletionTime == nil {
		took := time.Duration(0)
		if s.StartTime != nil {
			took = s.CompletionTime.Sub(s.StartTime.Time)
		}
		log.FromContext(ctx).Info("Rollout complete", "machines", s.Machines, "took", took)
		r.recorder.Eventf(ro, nil, corev1.EventTypeNormal, "Complete", "Rollout", "%d machines run node config %s", s.Updated, ro.Spec.NodeConfig)
	}
	for _, c := range []struct{ typ, reason string }{
		{fleetv1alpha1.RolloutPausedCondition, fleetv1alpha1.RolloutMachineFailedReason},
		{fleetv1alpha1.RolloutProgressingCondition, fleetv1alpha1.RolloutHealthGateFailedReason},
		{fleetv1alpha1.RolloutProgressingCondition, fleetv1alpha1.RolloutPoolNodeConfigDiffersReason},
	} {
		now := meta.FindStatusCondition(s.Conditions, c.typ)
		was := meta.FindStatusCondition(before.Conditions, c.typ)
		if now != nil && now.Reason == c.reason && (was == nil || was.Reason != c.reason) {
			log.FromContext(ctx).Info("Rollout holds", "reason", c.reason, "message", now.Message)
			r.recorder.Eventf(ro, nil, corev1.EventTypeWarning, c.reason, "Hold", "%s", now.Message)
		}
	}
}

// gateTimeout is the rollout's health gate timeout.
func gateTimeout(ro *fleetv1alpha1.MaintenanceRollout) time.Duration {
	if ro.Spec.HealthGateTimeout == nil {
		return 10 * time.Minute
	}
	return ro.Spec.HealthGateTimeout.Duration
}
