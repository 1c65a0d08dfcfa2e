package batchqueue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/conflicts"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// The controller reconciles two keys, never at once (one worker): sync
// writes every Kueue object of the plan on the hub and on every workload
// cluster and deletes those no longer wanted; status reads the hub's
// ClusterQueues (Kueue's own counts) into the BatchQueues' status. Kueue's
// objects are not watched (Kueue may be installed after the hub starts):
// status is read again every StatusInterval.
var (
	syncKey   = reconcile.Request{NamespacedName: types.NamespacedName{Name: "sync"}}
	statusKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "status"}}
)

// Resync intervals: everything is written again now and then to repair
// drift, sooner when a place could not be written.
const (
	resyncInterval = 5 * time.Minute
	retryInterval  = 15 * time.Second
	// DefaultStatusInterval is how often Kueue's counts are read.
	DefaultStatusInterval = 5 * time.Second
)

// pruneOrder are the kinds the controller writes, in the order stale ones
// are deleted: users of an object before it.
var pruneOrder = []string{
	kueue.LocalQueueKind, kueue.ClusterQueueKind, kueue.CohortKind, kueue.ResourceFlavorKind,
	kueue.AdmissionCheckKind, kueue.MultiKueueConfigKind, kueue.MultiKueueClusterKind,
}

// hubOnly are the kinds written only on the hub.
var hubOnly = []string{kueue.AdmissionCheckKind, kueue.MultiKueueConfigKind, kueue.MultiKueueClusterKind}

// Options are the Reconciler's dependencies.
type Options struct {
	// Hub is the hub manager's client (it caches BatchQueues, Pools,
	// Clusters and AppNamespaces); Kueue's objects are written through it.
	Hub client.Client
	// HubReader reads Kueue's objects on the hub, uncached.
	HubReader client.Reader
	// Clusters are the connections to the workload clusters.
	Clusters *remote.Clusters
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// StatusInterval defaults to DefaultStatusInterval.
	StatusInterval time.Duration
}

// Reconciler keeps Kueue's objects in step with the BatchQueues.
type Reconciler struct {
	hub            client.Client
	hubReader      client.Reader
	clusters       *remote.Clusters
	clock          clock.PassiveClock
	statusInterval time.Duration

	mu sync.Mutex
	// last is what the last sync could not write, by place.
	last failures
}

// New validates the options and returns a Reconciler.
func New(o Options) (*Reconciler, error) {
	switch {
	case o.Hub == nil:
		return nil, errors.New("batch queue controller: a hub client is required")
	case o.HubReader == nil:
		return nil, errors.New("batch queue controller: a hub reader is required")
	case o.Clusters == nil:
		return nil, errors.New("batch queue controller: workload cluster connections are required")
	case o.StatusInterval < 0:
		return nil, fmt.Errorf("batch queue controller: the status interval must not be negative, got %s", o.StatusInterval)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.StatusInterval == 0 {
		o.StatusInterval = DefaultStatusInterval
	}
	return &Reconciler{hub: o.Hub, hubReader: o.HubReader, clusters: o.Clusters, clock: o.Clock, statusInterval: o.StatusInterval}, nil
}

// SetupOnHub builds the controller and registers it with the hub's manager,
// sharing the hub's connections to the workload clusters (a hub.Setup).
func SetupOnHub(mgr ctrl.Manager, clusters *remote.Clusters) error {
	r, err := New(Options{Hub: mgr.GetClient(), HubReader: mgr.GetAPIReader(), Clusters: clusters})
	if err != nil {
		return err
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the batch queue controller: %w", err)
	}
	return nil
}

// SetupWithManager registers the controller with the hub's manager, which
// must run the Clusters given in the options.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	both := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{syncKey, statusKey}
	})
	// Status updates of Pools and Clusters (room, probes) change no Kueue
	// object; an AppNamespace's does when its namespace reaches a cluster.
	specOrLife := predicate.GenerationChangedPredicate{}
	namespaces := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		before, ok1 := e.ObjectOld.(*appsv1alpha1.AppNamespace)
		after, ok2 := e.ObjectNew.(*appsv1alpha1.AppNamespace)
		return ok1 && ok2 && after.Spec.Tenant == appsv1alpha1.BatchTenant &&
			(before.Generation != after.Generation || !slices.Equal(before.Status.Clusters, after.Status.Clusters) ||
				before.DeletionTimestamp.IsZero() != after.DeletionTimestamp.IsZero())
	}}
	return ctrl.NewControllerManagedBy(mgr).
		Named("batchqueue").
		Watches(&appsv1alpha1.BatchQueue{}, both, builder.WithPredicates(specOrLife)).
		Watches(&fleetv1alpha1.Pool{}, both, builder.WithPredicates(specOrLife)).
		Watches(&fleetv1alpha1.Cluster{}, both, builder.WithPredicates(specOrLife)).
		Watches(&appsv1alpha1.AppNamespace{}, both, builder.WithPredicates(namespaces)).
		Complete(conflicts.Requeue(r))
}

// Reconcile syncs Kueue's objects or the BatchQueues' status, by key.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	w, err := r.read(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	p := desired(w)
	if req == syncKey {
		f := r.sync(ctx, p)
		r.mu.Lock()
		r.last = f
		r.mu.Unlock()
		res := reconcile.Result{RequeueAfter: resyncInterval}
		if f.any() {
			res.RequeueAfter = retryInterval
		}
		// The status is written at once, so that a changed spec's
		// conditions show; a conflict is left to the status key's next
		// round rather than rewriting everything sooner.
		if err := r.writeStatus(ctx, w, p); err != nil && !conflicts.IsOptimistic(err) {
			return reconcile.Result{}, err
		}
		return res, nil
	}
	r.mu.Lock()
	synced := r.last != nil
	r.mu.Unlock()
	if !synced { // ClustersSynced would claim what no sync has done yet
		return reconcile.Result{RequeueAfter: r.statusInterval}, nil
	}
	return reconcile.Result{RequeueAfter: r.statusInterval}, r.writeStatus(ctx, w, p)
}

// read lists the hub's objects the plan is made from (from the cache).
func (r *Reconciler) read(ctx context.Context) (world, error) {
	var (
		w          world
		queues     appsv1alpha1.BatchQueueList
		pools      fleetv1alpha1.PoolList
		clusters   fleetv1alpha1.ClusterList
		namespaces appsv1alpha1.AppNamespaceList
	)
	for what, list := range map[string]client.ObjectList{"batch queues": &queues, "pools": &pools, "clusters": &clusters, "app namespaces": &namespaces} {
		if err := r.hub.List(ctx, list); err != nil {
			return w, fmt.Errorf("listing %s: %w", what, err)
		}
	}
	for i := range queues.Items {
		if queues.Items[i].DeletionTimestamp.IsZero() {
			w.Queues = append(w.Queues, queues.Items[i])
		}
	}
	w.Pools, w.Clusters, w.Namespaces = pools.Items, clusters.Items, namespaces.Items
	return w, nil
}

// failures are what a sync could not write: by place ("" is the hub, else
// a workload cluster's name), by queue ("" for objects of no one queue:
// flavors, organisation Cohorts, MultiKueue's, or the whole place).
type failures map[string]map[string][]string

func (f failures) add(place, queue, msg string) {
	if f[place] == nil {
		f[place] = map[string][]string{}
	}
	f[place][queue] = append(f[place][queue], msg)
}

func (f failures) any() bool { return len(f) > 0 }

// of are the failures in a place that concern a queue.
func (f failures) of(place, queue string) []string {
	return slices.Concat(f[place][""], f[place][queue])
}

// sync writes the plan on the hub and on every workload cluster. A place
// that cannot be reached or written does not hold back the others.
func (r *Reconciler) sync(ctx context.Context, p plan) failures {
	f := failures{}
	r.syncPlace(ctx, f, "", "the hub", r.hub, r.hubReader, p.Hub, pruneOrder)
	clusters := &fleetv1alpha1.ClusterList{}
	if err := r.hub.List(ctx, clusters); err != nil {
		f.add("", "", fmt.Sprintf("listing clusters: %v", err))
		return f
	}
	workerKinds := slices.DeleteFunc(slices.Clone(pruneOrder), func(k string) bool { return slices.Contains(hubOnly, k) })
	for name, objs := range p.Workers {
		i := slices.IndexFunc(clusters.Items, func(c fleetv1alpha1.Cluster) bool { return c.Name == name })
		if i < 0 {
			continue
		}
		rc, err := r.clusters.Get(ctx, &clusters.Items[i])
		if err != nil {
			f.add(name, "", err.Error())
			continue
		}
		r.syncPlace(ctx, f, name, "cluster "+name, rc.Client, rc.APIReader, objs, workerKinds)
	}
	return f
}

// syncPlace applies the objects to one API server, then deletes the
// objects of the kinds that the controller manages there and no longer
// wants. It stops at the first sign that the place is unreachable.
func (r *Reconciler) syncPlace(ctx context.Context, f failures, place, where string, c client.Client, reader client.Reader, objs []*unstructured.Unstructured, kinds []string) {
	logger := log.FromContext(ctx).WithValues("in", where)
	want := map[string]bool{}
	for _, o := range objs {
		want[key(o)] = true
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			f.add(place, o.GetLabels()[appsv1alpha1.BatchQueueLabel], fmt.Sprintf("applying %s in %s: %v", describe(o), where, err))
			if errors.Is(err, remote.ErrUnreachable) {
				return
			}
		}
	}
	for _, kind := range kinds {
		list := kueue.NewList(kind)
		err := reader.List(ctx, list, client.MatchingLabels{kueue.ManagedByLabel: kueue.ManagedBy})
		if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
			continue // Kueue is not installed there: nothing of it to delete
		}
		if err != nil {
			f.add(place, "", fmt.Sprintf("listing %ss in %s: %v", kind, where, err))
			if errors.Is(err, remote.ErrUnreachable) {
				return
			}
			continue
		}
		for i := range list.Items {
			o := &list.Items[i]
			if want[key(o)] || !managedByUs(o) || !o.GetDeletionTimestamp().IsZero() {
				continue
			}
			if err := c.Delete(ctx, o, client.Preconditions{UID: ptrTo(o.GetUID())}); client.IgnoreNotFound(err) != nil {
				f.add(place, o.GetLabels()[appsv1alpha1.BatchQueueLabel], fmt.Sprintf("deleting %s in %s: %v", describe(o), where, err))
				continue
			}
			logger.Info("Deleted a Kueue object no BatchQueue wants", "kind", kind, "object", klog.KObj(o))
		}
	}
}

// managedByUs says whether the controller wrote the object: Strata's other
// components may label Kueue objects managed-by strata too.
func managedByUs(o *unstructured.Unstructured) bool {
	return slices.ContainsFunc(o.GetManagedFields(), func(m metav1.ManagedFieldsEntry) bool { return m.Manager == FieldOwner })
}

func key(o *unstructured.Unstructured) string {
	return o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
}

func describe(o *unstructured.Unstructured) string {
	if o.GetNamespace() != "" {
		return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
	}
	return o.GetKind() + " " + o.GetName()
}

func ptrTo[T any](v T) *T { return &v }

// writeStatus reads the hub's ClusterQueues and writes every BatchQueue's
// status that changed.
func (r *Reconciler) writeStatus(ctx context.Context, w world, p plan) error {
	if len(w.Queues) == 0 {
		return nil // and Kueue, which may not be installed, is not asked
	}
	cqs := kueue.NewList(kueue.ClusterQueueKind)
	var readErr error
	if err := r.hubReader.List(ctx, cqs, client.MatchingLabels{kueue.ManagedByLabel: kueue.ManagedBy}); err != nil {
		// Kueue's CRDs may not be installed yet: the conditions still say
		// what is wrong with the queues; counts wait.
		readErr = fmt.Errorf("listing the hub's ClusterQueues: %w", err)
	}
	byName := map[string]*clusterQueueStatus{}
	for i := range cqs.Items {
		s, err := parseClusterQueueStatus(&cqs.Items[i])
		if err != nil {
			return err
		}
		byName[cqs.Items[i].GetName()] = s
	}
	r.mu.Lock()
	last := r.last
	r.mu.Unlock()
	now := r.clock.Now()
	var errs []error
	for i := range w.Queues {
		q := &w.Queues[i]
		status := desiredStatus(q, w.Queues, p, byName, last, now)
		if equality.Semantic.DeepEqual(status, q.Status) {
			continue
		}
		q.Status = status
		if err := r.hub.Status().Update(ctx, q); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("writing status of batch queue %s: %w", q.Name, err))
			continue
		}
		if c := meta.FindStatusCondition(status.Conditions, appsv1alpha1.BatchQueueReadyCondition); c != nil {
			log.FromContext(ctx).V(1).Info("Wrote the batch queue's status", "batchQueue", klog.KObj(q), "ready", c.Status, "reason", c.Reason)
		}
	}
	if readErr != nil && !apierrors.IsNotFound(readErr) && !meta.IsNoMatchError(readErr) {
		errs = append(errs, readErr)
	}
	return errors.Join(errs...)
}

// joinSorted joins messages in a stable order.
func joinSorted(msgs []string) string {
	msgs = slices.Clone(msgs)
	slices.Sort(msgs)
	return strings.Join(msgs, "; ")
}
