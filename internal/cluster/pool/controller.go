// Package pool runs the hub's Pool controller: it keeps a Compute Broker pool
// in step with each Pool, hands the broker the cluster to join the machines
// to, and looks after the Nodes that appear: their labels and taints, the
// startup taint until required DaemonSets run, and their removal once their
// machine went back to the broker. The cluster manager (package manager)
// drains a Node before its machine goes back, as for every disruption.
package pool

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	"github.com/strata-dev/strata/internal/cluster/index"
	"github.com/strata-dev/strata/internal/cluster/nodeutil"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/conflicts"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// Requeue intervals: a Pool that is converging is looked at again soon even
// without an event (evictions refused by a PodDisruptionBudget are retried);
// a steady one now and then.
const (
	convergingInterval = 2 * time.Second
	blockedInterval    = 15 * time.Second
	steadyInterval     = 5 * time.Minute
)

// actor is how the controller signs its broker calls.
const actor = "pool-controller"

// Options are the Reconciler's dependencies.
type Options struct {
	Hub      client.Client
	Broker   brokerv1.BrokerServiceClient
	Clusters *remote.Clusters
	Recorder events.EventRecorder
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// TokenTTL is how long a Pool's bootstrap token lives; it is rotated
	// after two thirds of it. Defaults to DefaultTokenTTL.
	TokenTTL time.Duration
}

// Reconciler keeps Pools, broker pools and Nodes in step.
type Reconciler struct {
	hub      client.Client
	broker   brokerv1.BrokerServiceClient
	clusters *remote.Clusters
	recorder events.EventRecorder
	clock    clock.PassiveClock
	tokenTTL time.Duration

	mu sync.Mutex
	// credentials is the hash of the join credential last handed to each
	// broker pool.
	credentials map[string][sha256.Size]byte
}

// New validates the options and returns a Reconciler.
func New(o Options) (*Reconciler, error) {
	switch {
	case o.Hub == nil:
		return nil, errors.New("pool controller: a hub client is required")
	case o.Broker == nil:
		return nil, errors.New("pool controller: a broker client is required")
	case o.Clusters == nil:
		return nil, errors.New("pool controller: workload cluster connections are required")
	case o.Recorder == nil:
		return nil, errors.New("pool controller: an event recorder is required")
	case o.TokenTTL < 0:
		return nil, fmt.Errorf("pool controller: the bootstrap token TTL must not be negative, not %s", o.TokenTTL)
	}
	if o.TokenTTL == 0 {
		o.TokenTTL = DefaultTokenTTL
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return &Reconciler{
		hub: o.Hub, broker: o.Broker, clusters: o.Clusters, recorder: o.Recorder, clock: o.Clock, tokenTTL: o.TokenTTL,
		credentials: map[string][sha256.Size]byte{},
	}, nil
}

// SetupWithManager registers the controller and its broker watch. The
// manager must have the indexes of package index and run o.Clusters.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	pools, disruptions := brokerwatch.Pools(r.broker, poolOfBrokerPool), brokerwatch.Disruptions(r.broker, poolOfDisruption)
	for _, w := range []*brokerwatch.Watch{pools, disruptions} {
		if err := mgr.Add(w); err != nil {
			return err
		}
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.Pool{}).
		Watches(&fleetv1alpha1.Cluster{}, handler.EnqueueRequestsFromMapFunc(r.poolsForCluster)).
		WatchesRawSource(source.Channel(r.clusters.NodeEvents(), handler.EnqueueRequestsFromMapFunc(nodeutil.PoolOf))).
		WatchesRawSource(source.Channel(pools.Events(), &handler.EnqueueRequestForObject{})).
		WatchesRawSource(source.Channel(disruptions.Events(), &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named("pool").
		Complete(conflicts.Requeue(r))
}

// Reconcile brings one Pool, its broker pool and its Nodes in step.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pool := &fleetv1alpha1.Pool{}
	if err := r.hub.Get(ctx, req.NamespacedName, pool); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	logger := log.FromContext(ctx).WithValues("pool", klog.KObj(pool), "cluster", pool.Spec.Cluster)
	ctx = log.IntoContext(ctx, logger)

	if !pool.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, pool)
	}
	if controllerutil.AddFinalizer(pool, fleetv1alpha1.PoolFinalizer) {
		// The update's event brings the Pool back.
		return reconcile.Result{}, r.hub.Update(ctx, pool)
	}

	cluster, rc, block := r.connect(ctx, pool)
	if block != nil {
		if cluster != nil {
			// A shrink never waits on the cluster it relieves.
			r.shrinkBrokerPool(ctx, pool, cluster)
		}
		return r.finish(ctx, pool, observed{}, block)
	}
	cred, tokens, block := r.ensureToken(ctx, pool, rc)
	if block != nil {
		r.shrinkBrokerPool(ctx, pool, cluster)
		return r.finish(ctx, pool, observed{}, block)
	}
	bp, block := r.ensureBrokerPool(ctx, pool, cluster, cred)
	if block == nil {
		// The broker has the current token: the older ones may go.
		if err := deleteTokens(ctx, rc, tokens.stale); err != nil {
			return reconcile.Result{}, err
		}
	}
	if bp != nil && bp.GetDeleting() {
		// Deleted outside the hub: its machines still leave only drained
		// (by the cluster manager); the Nodes of those gone are deleted.
		if _, err := r.reconcileNodes(ctx, pool, rc, bp); err != nil {
			return reconcile.Result{}, err
		}
	}
	if block != nil {
		return r.finish(ctx, pool, observed{}, block)
	}
	obs, err := r.reconcileNodes(ctx, pool, rc, bp)
	if err != nil {
		return reconcile.Result{}, err
	}
	res, err := r.finish(ctx, pool, obs, nil)
	return untilRotation(res, tokens.next, r.clock.Now()), err
}

// untilRotation brings a requeue forward to when the token is due for
// rotation.
func untilRotation(res reconcile.Result, next, now time.Time) reconcile.Result {
	if wait := max(next.Sub(now), time.Second); res.RequeueAfter == 0 || wait < res.RequeueAfter {
		res.RequeueAfter = wait
	}
	return res
}

// reconcileDelete releases every machine of a Pool (the cluster manager
// drains their Nodes first), then lets it go.
func (r *Reconciler) reconcileDelete(ctx context.Context, pool *fleetv1alpha1.Pool) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(pool, fleetv1alpha1.PoolFinalizer) {
		return reconcile.Result{}, nil
	}
	cluster, rc, block := r.connect(ctx, pool)
	clusterGone := block != nil && block.reason == fleetv1alpha1.ClusterNotFoundReason
	if block != nil && !clusterGone {
		// The Nodes cannot be drained while the cluster is unreachable.
		return r.finish(ctx, pool, observed{}, block)
	}
	if rc != nil {
		// No machine joins a Pool being deleted.
		if err := deletePoolTokens(ctx, rc, pool.Name); err != nil {
			return reconcile.Result{}, err
		}
	}
	resp, err := r.broker.GetPool(ctx, &brokerv1.GetPoolRequest{Name: pool.Name})
	switch {
	case brokerapi.IsCode(err, codes.NotFound):
		return r.release(ctx, pool, rc)
	case err != nil:
		return r.finish(ctx, pool, observed{}, &blocker{fleetv1alpha1.BrokerUnavailableReason, "asking the broker for the pool: " + err.Error()})
	}
	bp := resp.GetPool()
	if bp.GetJoinTarget().GetCluster() != pool.Spec.Cluster || cluster != nil && conflict(pool, cluster, bp) != "" {
		// Not ours to delete.
		return r.release(ctx, pool, nil)
	}
	if !bp.GetDeleting() {
		if _, err := r.broker.DeletePool(ctx, &brokerv1.DeletePoolRequest{Name: pool.Name}); err != nil && !brokerapi.IsCode(err, codes.NotFound) {
			return reconcile.Result{}, fmt.Errorf("deleting broker pool %s: %w", pool.Name, err)
		}
		log.FromContext(ctx).Info("Deleting the broker pool", "machines", bp.GetStatus().GetAllocated())
	}
	if clusterGone {
		// Nothing is left to drain: the machines go back at once.
		return r.approveAll(ctx, pool, "cluster "+pool.Spec.Cluster+" no longer exists: there is no Node to drain")
	}
	obs, err := r.reconcileNodes(ctx, pool, rc, bp)
	if err != nil {
		return reconcile.Result{}, err
	}
	return r.finish(ctx, pool, obs, nil)
}

// release removes the Pool's remaining Nodes, if its cluster is reachable,
// and then its finalizer: the broker pool is gone.
func (r *Reconciler) release(ctx context.Context, pool *fleetv1alpha1.Pool, rc *remote.Cluster) (reconcile.Result, error) {
	if rc != nil {
		nodes, err := poolNodes(ctx, rc, pool.Name)
		if err != nil {
			return reconcile.Result{}, err
		}
		for i := range nodes {
			if err := deleteNode(ctx, rc, &nodes[i]); err != nil {
				return reconcile.Result{}, err
			}
		}
	}
	controllerutil.RemoveFinalizer(pool, fleetv1alpha1.PoolFinalizer)
	if err := r.hub.Update(ctx, pool); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	r.forget(pool.Name)
	log.FromContext(ctx).Info("Released every machine of the pool")
	return reconcile.Result{}, nil
}

// connect finds the Pool's Cluster and connects to it.
func (r *Reconciler) connect(ctx context.Context, pool *fleetv1alpha1.Pool) (*fleetv1alpha1.Cluster, *remote.Cluster, *blocker) {
	cluster := &fleetv1alpha1.Cluster{}
	if err := r.hub.Get(ctx, client.ObjectKey{Name: pool.Spec.Cluster}, cluster); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, &blocker{fleetv1alpha1.ClusterNotFoundReason,
				fmt.Sprintf("cluster %q is not registered on the hub (kubectl get clusters lists those that are)", pool.Spec.Cluster)}
		}
		return nil, nil, &blocker{fleetv1alpha1.ClusterNotReadyReason, fmt.Sprintf("reading cluster %q: %v", pool.Spec.Cluster, err)}
	}
	if c := meta.FindStatusCondition(cluster.Status.Conditions, fleetv1alpha1.ClusterReadyCondition); c == nil || c.Status != metav1.ConditionTrue {
		why := "it has not been probed yet"
		if c != nil {
			why = c.Reason + ": " + c.Message
		}
		return cluster, nil, &blocker{fleetv1alpha1.ClusterNotReadyReason, fmt.Sprintf("cluster %q is not Ready (%s)", cluster.Name, why)}
	}
	rc, err := r.clusters.Get(ctx, cluster)
	if err != nil {
		return cluster, nil, &blocker{fleetv1alpha1.ClusterNotReadyReason, err.Error()}
	}
	return cluster, rc, nil
}

// finish writes the status that follows from what was observed, emits an
// event when the Pool's Ready reason changes to a problem, and says when to
// look again.
func (r *Reconciler) finish(ctx context.Context, pool *fleetv1alpha1.Pool, obs observed, block *blocker) (reconcile.Result, error) {
	before := meta.FindStatusCondition(pool.Status.Conditions, fleetv1alpha1.PoolReadyCondition)
	knownBefore := meta.FindStatusCondition(pool.Status.Conditions, fleetv1alpha1.PoolNodesKnownCondition)
	status := desiredStatus(pool, obs, block, metav1.NewTime(r.clock.Now()))
	after := meta.FindStatusCondition(status.Conditions, fleetv1alpha1.PoolReadyCondition)
	if known := meta.FindStatusCondition(status.Conditions, fleetv1alpha1.PoolNodesKnownCondition); known != nil &&
		known.Status == metav1.ConditionFalse && (knownBefore == nil || knownBefore.Message != known.Message) {
		log.FromContext(ctx).Info("Keeping Nodes whose machines the broker does not hold for the Pool", "nodes", len(obs.held))
		r.recorder.Eventf(pool, nil, corev1.EventTypeWarning, known.Reason, "Reconcile", "%s", known.Message)
	}
	if !equality.Semantic.DeepEqual(status, pool.Status) {
		pool.Status = status
		// An update, not a merge patch: a patch would leave out zero counts.
		if err := r.hub.Status().Update(ctx, pool); err != nil {
			return reconcile.Result{}, fmt.Errorf("writing status of pool %s: %w", pool.Name, err)
		}
	}
	if (before == nil || before.Reason != after.Reason) && problem(after.Reason) {
		r.recorder.Eventf(pool, nil, corev1.EventTypeWarning, after.Reason, "Reconcile", "%s", after.Message)
	}
	switch after.Reason {
	case fleetv1alpha1.PoolReadyReason:
		return reconcile.Result{RequeueAfter: steadyInterval}, nil
	case fleetv1alpha1.DrainingReason, fleetv1alpha1.DeletingReason, fleetv1alpha1.JoiningReason, fleetv1alpha1.WaitingForDaemonSetsReason:
		// Refused evictions and starting pods are retried soon; broker and
		// Node events wake the controller for the rest.
		return reconcile.Result{RequeueAfter: convergingInterval}, nil
	}
	return reconcile.Result{RequeueAfter: blockedInterval}, nil
}

// problem says whether a Ready reason is something a person should look at.
func problem(reason string) bool {
	switch reason {
	case fleetv1alpha1.ClusterNotFoundReason, fleetv1alpha1.ClusterNotReadyReason, fleetv1alpha1.BrokerUnavailableReason,
		fleetv1alpha1.BrokerRejectedReason, fleetv1alpha1.BrokerPoolConflictReason, fleetv1alpha1.InsufficientInventoryReason,
		fleetv1alpha1.OverClusterLimitReason:
		return true
	}
	return false
}

// poolsForCluster maps a Cluster to its Pools.
func (r *Reconciler) poolsForCluster(ctx context.Context, obj client.Object) []reconcile.Request {
	pools := &fleetv1alpha1.PoolList{}
	if err := r.hub.List(ctx, pools, client.MatchingFields{index.PoolCluster: obj.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "Listing the pools of a cluster", "cluster", obj.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(pools.Items))
	for i := range pools.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pools.Items[i])})
	}
	return reqs
}
