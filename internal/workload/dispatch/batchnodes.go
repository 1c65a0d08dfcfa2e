package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/hub"
	"github.com/strata-dev/strata/internal/cluster/nodeutil"
	"github.com/strata-dev/strata/internal/cluster/remote"
)

// unreachableRetry is how soon the Nodes of a Pool whose cluster could not
// be reached are looked at again.
const unreachableRetry = 30 * time.Second

// BatchNodes keeps appsv1alpha1.BatchSchedulableLabel on the Nodes of each
// Pool: on every Node, but those in a zone that a MaintenanceRollout is
// maintaining or maintains next (the zones the dispatcher counts out of a
// cluster's room). The jobs platform's ResourceFlavors select the label, so
// Kueue gives every job's pods a node selector for it: the dispatcher picks
// the cluster, and the label keeps the pods off the Nodes about to be
// disrupted inside it. A label, not a taint: only batch pods are kept off,
// and a DaemonSet that a reimaged Node needs before its Pool takes it back
// is never held by it. Labels that go away move no running pod.
type BatchNodes struct {
	hub      client.Client
	clusters *remote.Clusters
}

// SetupBatchNodesOnHub runs BatchNodes in the hub's manager.
func SetupBatchNodesOnHub(mgr ctrl.Manager, clusters *remote.Clusters) error {
	r := &BatchNodes{hub: mgr.GetClient(), clusters: clusters}
	return ctrl.NewControllerManagedBy(mgr).
		For(&fleetv1alpha1.Pool{}).
		Watches(&fleetv1alpha1.MaintenanceRollout{}, handler.EnqueueRequestsFromMapFunc(poolsOfRollout)).
		WatchesRawSource(source.Channel(clusters.NodeEvents(), handler.EnqueueRequestsFromMapFunc(nodeutil.PoolOf))).
		Named("batch-nodes").
		Complete(r)
}

var _ hub.Setup = SetupBatchNodesOnHub

func poolsOfRollout(_ context.Context, obj client.Object) []reconcile.Request {
	ro, ok := obj.(*fleetv1alpha1.MaintenanceRollout)
	if !ok {
		return nil
	}
	out := make([]reconcile.Request, 0, len(ro.Spec.Pools))
	for _, p := range ro.Spec.Pools {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Name: p}})
	}
	return out
}

// Reconcile brings the label of one Pool's Nodes in step with the rollouts.
func (r *BatchNodes) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pool := &fleetv1alpha1.Pool{}
	if err := r.hub.Get(ctx, req.NamespacedName, pool); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	rollouts := &fleetv1alpha1.MaintenanceRolloutList{}
	if err := r.hub.List(ctx, rollouts); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing MaintenanceRollouts: %w", err)
	}
	maintained := maintenance(rollouts.Items)
	fc := &fleetv1alpha1.Cluster{}
	if err := r.hub.Get(ctx, client.ObjectKey{Name: pool.Spec.Cluster}, fc); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	rc, err := r.clusters.Get(ctx, fc)
	if err != nil {
		if errors.Is(err, remote.ErrUnreachable) {
			return reconcile.Result{RequeueAfter: unreachableRetry}, nil
		}
		return reconcile.Result{}, err
	}
	nodes := &corev1.NodeList{}
	if err := rc.Client.List(ctx, nodes, client.MatchingLabels{fleetv1alpha1.PoolLabel: pool.Name}); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing the Nodes of Pool %s in %s: %w", pool.Name, fc.Name, err)
	}
	var errs []error
	for i := range nodes.Items {
		n := &nodes.Items[i]
		_, inMaintenance := maintained[poolZone{pool: pool.Name, zone: n.Labels[fleetv1alpha1.MaintenanceZoneLabel]}]
		want := !inMaintenance
		if has := n.Labels[appsv1alpha1.BatchSchedulableLabel] == "true"; has == want {
			continue
		}
		patch := client.MergeFrom(n.DeepCopy())
		if want {
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			n.Labels[appsv1alpha1.BatchSchedulableLabel] = "true"
		} else {
			delete(n.Labels, appsv1alpha1.BatchSchedulableLabel)
		}
		if err := rc.Client.Patch(ctx, n, patch); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("labelling Node %s of %s: %w", n.Name, fc.Name, err))
			continue
		}
		log.FromContext(ctx).V(1).Info("Batch schedulable", "node", n.Name, "cluster", fc.Name, "schedulable", want)
	}
	return reconcile.Result{}, errors.Join(errs...)
}
