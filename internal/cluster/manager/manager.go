// Package manager runs the hub's cluster manager: one reconcile per workload
// Cluster that obeys the disruption protocol for the cluster's Nodes, for
// every disruption reason. For each Pending broker disruption of a machine
// in the cluster it cordons the machine's Node, drains it through the
// Eviction API (PodDisruptionBudgets hold) and approves the disruption once
// the Node is empty; while the disruption is Approved or InProgress the Node
// stays cordoned; once it is over, the Node is uncordoned if, and only if,
// Strata cordoned it. Every step is recorded in the disruption's history and
// as an Event on the Node.
package manager

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/brokerwatch"
	"github.com/strata-dev/strata/internal/cluster/condition"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/conflicts"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// DefaultDrainDeadline is how long a drain may take before the Cluster says
// so (DrainsOnSchedule False). The drain goes on: nothing is forced.
const DefaultDrainDeadline = 10 * time.Minute

// DefaultWorkers bounds the Nodes one cluster's pass works on at once.
const DefaultWorkers = 32

// ActorPrefix starts the actor the manager signs its broker calls with:
// cluster-manager/<cluster>.
const ActorPrefix = "cluster-manager/"

// Actor is how the manager of a cluster signs its broker calls and records.
func Actor(cluster string) string {
	return ActorPrefix + cluster
}

// fieldOwner owns the DrainsOnSchedule condition in the Cluster's status.
const fieldOwner = client.FieldOwner("cluster-manager")

// Requeue intervals: a cluster with drains under way is looked at again
// when its next drain pass is due; one that waits on the broker or on a
// person, now and then (broker and Node events wake it sooner).
const (
	minInterval      = time.Second
	notReadyInterval = 15 * time.Second
	steadyInterval   = 5 * time.Minute
)

// Options are the Reconciler's dependencies.
type Options struct {
	// Hub reads Clusters and Pools and writes the Cluster's condition.
	Hub client.Client
	// Broker is the Compute Broker the disruptions come from.
	Broker brokerv1.BrokerServiceClient
	// Clusters are the connections to the workload clusters; the manager
	// must run it (it may be shared with the pool controller).
	Clusters *remote.Clusters
	// DrainDeadline defaults to DefaultDrainDeadline.
	DrainDeadline time.Duration
	// Workers defaults to DefaultWorkers.
	Workers int
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
}

// Reconciler obeys the disruption protocol for each workload Cluster.
type Reconciler struct {
	hub      client.Client
	broker   brokerv1.BrokerServiceClient
	clusters *remote.Clusters
	deadline time.Duration
	workers  int
	clock    clock.PassiveClock

	mu     sync.Mutex
	states map[string]*clusterState // by Cluster name
}

// New validates the options and returns a Reconciler.
func New(o Options) (*Reconciler, error) {
	switch {
	case o.Hub == nil:
		return nil, errors.New("cluster manager: a hub client is required")
	case o.Broker == nil:
		return nil, errors.New("cluster manager: a broker client is required")
	case o.Clusters == nil:
		return nil, errors.New("cluster manager: workload cluster connections are required")
	case o.DrainDeadline < 0:
		return nil, fmt.Errorf("cluster manager: the drain deadline must be positive, not %s", o.DrainDeadline)
	case o.Workers < 0:
		return nil, fmt.Errorf("cluster manager: workers must be positive, not %d", o.Workers)
	}
	if o.DrainDeadline == 0 {
		o.DrainDeadline = DefaultDrainDeadline
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return &Reconciler{
		hub: o.Hub, broker: o.Broker, clusters: o.Clusters, deadline: o.DrainDeadline, workers: o.Workers, clock: o.Clock,
		states: map[string]*clusterState{},
	}, nil
}

// SetupWithManager registers the controller and its broker watch. The
// manager must run o.Clusters.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	watch := brokerwatch.Disruptions(r.broker, poolOf)
	if err := mgr.Add(watch); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.Cluster{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, readyChanged()))).
		Watches(&fleetv1alpha1.Pool{}, handler.EnqueueRequestsFromMapFunc(clusterOfPool)).
		WatchesRawSource(source.Channel(r.clusters.NodeEvents(), handler.EnqueueRequestsFromMapFunc(r.clusterOfNode))).
		WatchesRawSource(source.Channel(watch.Events(), handler.EnqueueRequestsFromMapFunc(r.clusterOfPoolName))).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named("cluster-manager").
		Complete(conflicts.Requeue(r))
}

// Reconcile takes one pass over the disruptions of one workload cluster.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	cluster := &fleetv1alpha1.Cluster{}
	if err := r.hub.Get(ctx, req.NamespacedName, cluster); err != nil {
		if client.IgnoreNotFound(err) == nil {
			r.forget(req.Name)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	logger := log.FromContext(ctx).WithValues("cluster", klog.KObj(cluster))
	ctx = log.IntoContext(ctx, logger)
	if !cluster.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil // its Pools give their machines back without a drain
	}
	if c := meta.FindStatusCondition(cluster.Status.Conditions, fleetv1alpha1.ClusterReadyCondition); c == nil || c.Status != metav1.ConditionTrue {
		logger.V(1).Info("Waiting for the cluster to be Ready")
		return reconcile.Result{RequeueAfter: notReadyInterval}, nil
	}
	rc, err := r.clusters.Get(ctx, cluster)
	if err != nil {
		return reconcile.Result{}, err
	}
	state := r.state(cluster.Name)
	pass := &clusterPass{Reconciler: r, cluster: cluster.Name, actor: Actor(cluster.Name), rc: rc, state: state, now: r.clock.Now()}
	w, err := pass.observe(ctx, cluster)
	if err != nil {
		return reconcile.Result{}, err
	}
	pass.takeUnrecorded()
	out := pass.syncNodes(ctx, w)
	cond := drainCondition(cluster.Generation, out.overdue, r.deadline, metav1.NewTime(pass.now))
	if err := r.writeCondition(ctx, cluster, cond); err != nil {
		return reconcile.Result{}, err
	}
	if out.failed > 0 {
		logger.Info("Some Nodes could not be brought in step; trying again soon", "failed", out.failed)
	}
	return reconcile.Result{RequeueAfter: pass.requeueAfter(out)}, nil
}

// writeCondition sets the DrainsOnSchedule condition when it changed, with a
// server-side apply of that condition alone: the Cluster controller's own
// status writes keep it, and it keeps theirs.
func (r *Reconciler) writeCondition(ctx context.Context, cluster *fleetv1alpha1.Cluster, want metav1.Condition) error {
	wrote, err := condition.Apply(ctx, r.hub, "Cluster", cluster.Name, cluster.Status.Conditions, want, fieldOwner)
	if wrote {
		log.FromContext(ctx).Info("Drain deadline condition changed", "status", want.Status, "reason", want.Reason, "message", want.Message)
	}
	return err
}

// clusterOfPool maps a Pool to its Cluster.
func clusterOfPool(_ context.Context, obj client.Object) []reconcile.Request {
	p, ok := obj.(*fleetv1alpha1.Pool)
	if !ok || p.Spec.Cluster == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: p.Spec.Cluster}}}
}

// clusterOfPoolName maps a Pool named by an event (a broker pool of the same
// name) to its Cluster, through the hub's Pool.
func (r *Reconciler) clusterOfPoolName(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.clusterOfPoolNamed(ctx, obj.GetName())
}

// clusterOfNode maps a Node of a workload cluster to its Cluster, through
// its Pool.
func (r *Reconciler) clusterOfNode(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.clusterOfPoolNamed(ctx, obj.GetLabels()[fleetv1alpha1.PoolLabel])
}

func (r *Reconciler) clusterOfPoolNamed(ctx context.Context, name string) []reconcile.Request {
	if name == "" {
		return nil
	}
	p := &fleetv1alpha1.Pool{}
	if err := r.hub.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
		return nil // no Pool: the periodic pass finds what is left
	}
	return clusterOfPool(ctx, p)
}

// readyChanged passes a Cluster update whose Ready condition changed status:
// a cluster that becomes reachable is worked on at once.
func readyChanged() predicate.Predicate {
	status := func(obj client.Object) metav1.ConditionStatus {
		c, ok := obj.(*fleetv1alpha1.Cluster)
		if !ok {
			return ""
		}
		if cond := meta.FindStatusCondition(c.Status.Conditions, fleetv1alpha1.ClusterReadyCondition); cond != nil {
			return cond.Status
		}
		return ""
	}
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return status(e.ObjectOld) != status(e.ObjectNew)
	}}
}

// state returns what the manager remembers of a cluster between passes.
func (r *Reconciler) state(cluster string) *clusterState {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.states[cluster]
	if !ok {
		s = &clusterState{drains: map[string]*drainState{}}
		r.states[cluster] = s
	}
	return s
}

func (r *Reconciler) forget(cluster string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.states, cluster)
}
