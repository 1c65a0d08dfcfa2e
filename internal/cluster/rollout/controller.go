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
	"context"
	"errors"
	"fmt"
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
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/conflicts"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// DefaultActiveInterval: a rollout that is not complete is looked at again
// soon even without a broker event (the health gate is polled).
const DefaultActiveInterval = 2 * time.Second

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
		WithOptions(controller.Options{MaxConcurrentReconciles: 2}).
		Named("maintenancerollout").
		Complete(conflicts.Requeue(r))
}

// rolloutOf maps a disruption to the rollout that asked for it.
func rolloutOf(e *brokerv1.WatchDisruptionsResponse) client.Object {
	name, ok := strings.CutPrefix(e.GetDisruption().GetActor(), fleetv1alpha1.RolloutActorPrefix)
	if !ok || name == "" {
		return nil
	}
	return &fleetv1alpha1.MaintenanceRollout{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// Reconcile moves one rollout forward as far as the world allows.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	ro := &fleetv1alpha1.MaintenanceRollout{}
	if err := r.hub.Get(ctx, req.NamespacedName, ro); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("rollout", klog.KObj(ro)))
	if !ro.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, ro)
	}
	if controllerutil.AddFinalizer(ro, Finalizer) {
		return reconcile.Result{}, r.hub.Update(ctx, ro)
	}
	if meta.IsStatusConditionTrue(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition) {
		// Complete is final, as a Job's is: a later rollout of the same
		// pools moves their machines on, and this one must not pull them
		// back.
		return reconcile.Result{}, nil
	}

	machines, disruptions, err := r.brokerState(ctx, ro.Spec.Pools)
	if err != nil {
		return r.finish(ctx, ro, nil, outcome{block: &blocker{fleetv1alpha1.RolloutBrokerUnavailableReason, err.Error()}})
	}
	p := newPlan(ro, machines, disruptions)
	// Drained machines are started whatever else holds the rollout: waiting
	// would only keep their Nodes empty.
	for _, d := range p.toStart {
		if err := r.start(ctx, ro, d); err != nil {
			return reconcile.Result{}, err
		}
	}
	pools, block := r.pools(ctx, ro)
	if block != nil {
		return r.finish(ctx, ro, nil, outcome{block: block})
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
	// newFailures are failed maintenances the status does not list yet.
	newFailures []fleetv1alpha1.RolloutFailure
	// pause is the reason the rollout paused itself now, "" if it did not.
	pause, pauseMessage string
	// gate says why the health gate before the current zone fails, "" when
	// it passes or is not needed.
	gate string
	// overBudget is the broker's refusal when the budget is spent.
	overBudget string
	// refused is the broker's last other refusal of a disruption.
	refused string
	created int
}

type blocker struct{ reason, message string }

// act starts what is drained, pauses on a new failure, and, unless paused,
// points the Pools at the target, passes the health gate and asks for
// disruptions of the current zone.
func (r *Reconciler) act(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout, pools []*fleetv1alpha1.Pool, p *plan) (outcome, error) {
	var out outcome
	out.newFailures = unseenFailures(ro.Status.Failures, p.failures)
	if len(out.newFailures) > 0 {
		if err := r.describeFailures(ctx, out.newFailures); err != nil {
			return out, err
		}
		f := out.newFailures[0]
		out.pause, out.pauseMessage = fleetv1alpha1.RolloutMachineFailedReason,
			fmt.Sprintf("machine %s failed its maintenance (disruption %s): %s", f.Machine, f.Disruption, f.Message)
		return out, r.pauseItself(ctx, ro, out.pauseMessage)
	}
	if ro.Spec.Paused {
		return out, nil
	}
	if err := r.targetPools(ctx, ro, pools); err != nil {
		return out, err
	}
	if p.current == nil {
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
			if since := ro.Status.HealthGateFailingSince; since != nil && r.clock.Since(since.Time) >= gateTimeout(ro) {
				out.pause, out.pauseMessage = fleetv1alpha1.RolloutHealthGateFailedReason,
					fmt.Sprintf("the health gate before MZ %d did not pass within %s: %s", p.current.zone, gateTimeout(ro), gate)
				return out, r.pauseItself(ctx, ro, out.pauseMessage)
			}
			return out, nil
		}
	}
	return out, r.disrupt(ctx, ro, p.current, &out)
}

// disrupt asks the broker for a planned upgrade of each candidate of the
// zone until the budget is spent.
func (r *Reconciler) disrupt(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout, z *zonePlan, out *outcome) error {
	op := &brokerv1.Operation{
		Kind:     brokerv1.OperationKind_OPERATION_KIND_REIMAGE,
		Software: &brokerv1.Software{NodeConfig: ro.Spec.NodeConfig, OsImage: ro.Spec.OSImage},
	}
	for _, m := range z.candidates {
		_, err := r.broker.CreateDisruption(ctx, &brokerv1.CreateDisruptionRequest{
			Machine: m.GetId(), Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE,
			Actor: Actor(ro.Name), Message: disruptionMessage(ro, m), Operation: op,
		})
		switch {
		case err == nil:
			out.created++
			z.counts[candidate]--
			z.counts[inProgress]++
		case brokerapi.OverBudget(err):
			out.overBudget = brokerapi.Message(err)
			return nil
		case brokerapi.IsCode(err, codes.FailedPrecondition), brokerapi.IsCode(err, codes.InvalidArgument):
			// Another actor got there first, or the machine changed (the
			// next pass sees it); or the broker cannot do it at all, which
			// the status shows when nothing goes forward.
			out.refused = fmt.Sprintf("the broker refused to disrupt machine %s: %s", m.GetId(), brokerapi.Message(err))
			log.FromContext(ctx).V(1).Info("Broker refused a disruption", "machine", m.GetId(), "reason", brokerapi.Message(err))
		default:
			return fmt.Errorf("asking the broker to disrupt machine %s: %w", m.GetId(), err)
		}
	}
	if out.created > 0 {
		log.FromContext(ctx).Info("Asked for disruptions", "zone", z.zone, "machines", out.created)
	}
	return nil
}

// start tells the broker to perform a drained machine's maintenance.
func (r *Reconciler) start(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout, d *brokerv1.Disruption) error {
	_, err := r.broker.StartDisruption(ctx, &brokerv1.StartDisruptionRequest{
		Id: d.GetId(), Actor: Actor(ro.Name), Message: "node drained; reimaging with node config " + ro.Spec.NodeConfig,
	})
	if err != nil && !brokerapi.IsCode(err, codes.FailedPrecondition) {
		return fmt.Errorf("starting disruption %s of machine %s: %w", d.GetId(), d.GetMachine(), err)
	}
	return nil
}

// pauseItself sets spec.paused; the status says why.
func (r *Reconciler) pauseItself(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout, why string) error {
	if ro.Spec.Paused {
		return nil
	}
	patch := client.MergeFrom(ro.DeepCopy())
	ro.Spec.Paused = true
	if err := r.hub.Patch(ctx, ro, patch); err != nil {
		return fmt.Errorf("pausing rollout %s: %w", ro.Name, err)
	}
	log.FromContext(ctx).Info("Paused the rollout", "why", why)
	r.recorder.Eventf(ro, nil, corev1.EventTypeWarning, "Paused", "Pause", "%s", why)
	return nil
}

// describeFailures fills in why each failed maintenance failed, from its
// disruption's history.
func (r *Reconciler) describeFailures(ctx context.Context, failures []fleetv1alpha1.RolloutFailure) error {
	for i := range failures {
		resp, err := r.broker.GetDisruption(ctx, &brokerv1.GetDisruptionRequest{Id: failures[i].Disruption})
		if err != nil {
			return fmt.Errorf("reading disruption %s: %w", failures[i].Disruption, err)
		}
		failures[i].Message = failureMessage(resp.GetDisruption())
	}
	return nil
}

// unseenFailures are the failures that the status does not list. When the
// status is full, those older than its oldest were seen and dropped.
func unseenFailures(seen []fleetv1alpha1.RolloutFailure, all []fleetv1alpha1.RolloutFailure) []fleetv1alpha1.RolloutFailure {
	known := map[string]bool{}
	for _, f := range seen {
		known[f.Disruption] = true
	}
	var out []fleetv1alpha1.RolloutFailure
	for _, f := range all {
		dropped := len(seen) >= maxFailures && f.Time != nil && seen[0].Time != nil && !f.Time.After(seen[0].Time.Time)
		if !known[f.Disruption] && !dropped {
			out = append(out, f)
		}
	}
	return out
}

// pools reads the rollout's Pools, and blocks it when one is missing or an
// older rollout of one of them is not complete.
func (r *Reconciler) pools(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout) ([]*fleetv1alpha1.Pool, *blocker) {
	var pools []*fleetv1alpha1.Pool
	for _, name := range ro.Spec.Pools {
		pool := &fleetv1alpha1.Pool{}
		if err := r.hub.Get(ctx, client.ObjectKey{Name: name}, pool); err != nil {
			if client.IgnoreNotFound(err) == nil {
				return nil, &blocker{fleetv1alpha1.RolloutPoolNotFoundReason,
					fmt.Sprintf("pool %q does not exist on the hub (kubectl get pools lists those that do)", name)}
			}
			return nil, &blocker{fleetv1alpha1.RolloutPoolNotFoundReason, fmt.Sprintf("reading pool %q: %v", name, err)}
		}
		pools = append(pools, pool)
	}
	all := &fleetv1alpha1.MaintenanceRolloutList{}
	if err := r.hub.List(ctx, all); err != nil {
		return nil, &blocker{fleetv1alpha1.RolloutPoolBusyReason, "listing rollouts: " + err.Error()}
	}
	for i := range all.Items {
		if other := &all.Items[i]; olderAndOverlapping(other, ro) && !meta.IsStatusConditionTrue(other.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition) {
			return nil, &blocker{fleetv1alpha1.RolloutPoolBusyReason,
				fmt.Sprintf("rollout %s of the same pools started first and is not complete; this one waits (delete one of them to choose)", other.Name)}
		}
	}
	return pools, nil
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

// targetPools sets each Pool's node config to the rollout's, so machines
// that join from now on run it.
func (r *Reconciler) targetPools(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout, pools []*fleetv1alpha1.Pool) error {
	for _, pool := range pools {
		if pool.Spec.NodeConfig == ro.Spec.NodeConfig {
			continue
		}
		patch := client.MergeFrom(pool.DeepCopy())
		old := pool.Spec.NodeConfig
		pool.Spec.NodeConfig = ro.Spec.NodeConfig
		if err := r.hub.Patch(ctx, pool, patch); err != nil {
			return fmt.Errorf("setting the node config of pool %s: %w", pool.Name, err)
		}
		log.FromContext(ctx).Info("Set the pool's node config", "pool", klog.KObj(pool), "from", old, "to", ro.Spec.NodeConfig)
	}
	return nil
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
	for _, d := range disruptions {
		if d.GetActor() != Actor(ro.Name) || (d.GetState() != brokerv1.DisruptionState_DISRUPTION_STATE_PENDING &&
			d.GetState() != brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED) {
			continue
		}
		_, err := r.broker.CancelDisruption(ctx, &brokerv1.CancelDisruptionRequest{
			Id: d.GetId(), Actor: Actor(ro.Name), Message: "rollout " + ro.Name + " was deleted",
		})
		if err != nil && !brokerapi.IsCode(err, codes.FailedPrecondition) && !brokerapi.IsCode(err, codes.NotFound) {
			return reconcile.Result{}, fmt.Errorf("cancelling disruption %s: %w", d.GetId(), err)
		}
	}
	controllerutil.RemoveFinalizer(ro, Finalizer)
	return reconcile.Result{}, client.IgnoreNotFound(r.hub.Update(ctx, ro))
}

// finish writes the status that follows from the plan and the outcome and
// says when to look again.
func (r *Reconciler) finish(ctx context.Context, ro *fleetv1alpha1.MaintenanceRollout, p *plan, out outcome) (reconcile.Result, error) {
	status := desiredStatus(ro, p, out, metav1.NewTime(r.clock.Now()))
	if !equality.Semantic.DeepEqual(status, ro.Status) {
		completedNow := status.CompletionTime != nil && ro.Status.CompletionTime == nil
		ro.Status = status
		if err := r.hub.Status().Update(ctx, ro); err != nil {
			return reconcile.Result{}, fmt.Errorf("writing status of rollout %s: %w", ro.Name, err)
		}
		if completedNow {
			log.FromContext(ctx).Info("Rollout complete", "machines", status.Machines, "took", status.CompletionTime.Sub(status.StartTime.Time))
			r.recorder.Eventf(ro, nil, corev1.EventTypeNormal, "Complete", "Rollout", "%d machines run node config %s", status.Updated, ro.Spec.NodeConfig)
		}
	}
	if meta.IsStatusConditionTrue(status.Conditions, fleetv1alpha1.RolloutCompleteCondition) {
		return reconcile.Result{}, nil
	}
	return reconcile.Result{RequeueAfter: r.activeInterval}, nil
}

// gateTimeout is the rollout's health gate timeout.
func gateTimeout(ro *fleetv1alpha1.MaintenanceRollout) time.Duration {
	if ro.Spec.HealthGateTimeout == nil {
		return 10 * time.Minute
	}
	return ro.Spec.HealthGateTimeout.Duration
}
