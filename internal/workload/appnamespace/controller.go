// Package appnamespace runs the hub's AppNamespace controller: it routes each
// AppNamespace to a workload cluster whose Pools of its node profile have
// room for its quota, keeps that choice, and makes the namespace there with
// its labels, the owners' RoleBindings and a ResourceQuota. Deleting the
// AppNamespace deletes the namespace, as far as the guardrails let it.
//
// Nothing of the workload clusters is cached: the namespace and its
// RoleBindings are read from their API servers when needed (a few reads per
// app namespace), and written with server-side apply.
package appnamespace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/conflicts"
)

// Requeue intervals by the Ready reason: a namespace being deleted, or kept
// by the guardrails, is looked at again soon (nothing in the workload
// cluster is watched); an unavailable cluster now and then; one that fits
// nowhere also on every Cluster and Pool change; a ready one rarely, to
// repair drift.
const (
	deletingInterval    = 2 * time.Second
	notEmptyInterval    = 5 * time.Second
	unavailableInterval = 15 * time.Second
	unroutedInterval    = time.Minute
	steadyInterval      = 5 * time.Minute
)

// routedReason is the reason of the Normal event that says where an app
// namespace was routed and why.
const routedReason = "Routed"

// Options are the Reconciler's dependencies.
type Options struct {
	// Hub is the hub manager's client (it caches AppNamespaces, Clusters
	// and Pools).
	Hub client.Client
	// HubReader reads the hub uncached (the RoleBindings of batch
	// namespaces, which are not worth a cache); it defaults to Hub.
	HubReader client.Reader
	// Clusters are the connections to the workload clusters.
	Clusters *remote.Clusters
	Recorder events.EventRecorder
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
}

// Reconciler routes AppNamespaces and keeps their namespaces.
type Reconciler struct {
	hub       client.Client
	hubReader client.Reader
	clusters  *remote.Clusters
	recorder  events.EventRecorder
	clock     clock.PassiveClock

	// mu serializes routing, so that two app namespaces never count the
	// same room, and guards routed.
	mu sync.Mutex
	// routed remembers where this process routed each app namespace, for
	// as long as the cache may not show it in the status yet.
	routed map[string]routedTo
}

type routedTo struct {
	uid     types.UID
	cluster string
}

// New validates the options and returns a Reconciler.
func New(o Options) (*Reconciler, error) {
	switch {
	case o.Hub == nil:
		return nil, errors.New("app namespace controller: a hub client is required")
	case o.Clusters == nil:
		return nil, errors.New("app namespace controller: workload cluster connections are required")
	case o.Recorder == nil:
		return nil, errors.New("app namespace controller: an event recorder is required")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.HubReader == nil {
		o.HubReader = o.Hub
	}
	return &Reconciler{hub: o.Hub, hubReader: o.HubReader, clusters: o.Clusters, recorder: o.Recorder, clock: o.Clock, routed: map[string]routedTo{}}, nil
}

// SetupWithManager registers the controller with the hub's manager, which
// must run the Clusters given in the options and have the apps.strata.dev
// SetupOnHub builds the controller and registers it with the hub's manager,
// sharing the hub's connections to the workload clusters (a hub.Setup).
func SetupOnHub(mgr ctrl.Manager, clusters *remote.Clusters) error {
	r, err := New(Options{Hub: mgr.GetClient(), HubReader: mgr.GetAPIReader(), Clusters: clusters, Recorder: mgr.GetEventRecorder("appnamespace-controller")})
	if err != nil {
		return err
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the app namespace controller: %w", err)
	}
	return nil
}

// types in its scheme.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	deleted := predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&appsv1alpha1.AppNamespace{}).
		// An app namespace that is gone leaves room for those that fit nowhere.
		Watches(&appsv1alpha1.AppNamespace{}, handler.EnqueueRequestsFromMapFunc(r.unroutedOfAnyProfile), builder.WithPredicates(deleted)).
		Watches(&fleetv1alpha1.Cluster{}, handler.EnqueueRequestsFromMapFunc(r.forCluster)).
		Watches(&fleetv1alpha1.Pool{}, handler.EnqueueRequestsFromMapFunc(r.forPool)).
		// A batch namespace's queue appears, goes or becomes a parent.
		Watches(&appsv1alpha1.BatchQueue{}, handler.EnqueueRequestsFromMapFunc(r.batch), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 8}).
		Named("appnamespace").
		Complete(conflicts.Requeue(r))
}

// Reconcile routes one AppNamespace, if it is not yet, and brings its
// namespace in step.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	an := &appsv1alpha1.AppNamespace{}
	if err := r.hub.Get(ctx, req.NamespacedName, an); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.Name)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	logger := log.FromContext(ctx).WithValues("appNamespace", klog.KObj(an), "cluster", an.Status.Cluster)
	ctx = log.IntoContext(ctx, logger)

	batch := an.Spec.Tenant == appsv1alpha1.BatchTenant
	switch {
	case !an.DeletionTimestamp.IsZero() && batch:
		return r.reconcileBatchDelete(ctx, an)
	case !an.DeletionTimestamp.IsZero():
		return r.reconcileDelete(ctx, an)
	}
	if controllerutil.AddFinalizer(an, Finalizer) {
		if err := r.hub.Update(ctx, an); err != nil {
			return reconcile.Result{}, fmt.Errorf("adding the finalizer of app namespace %s: %w", an.Name, err)
		}
	}
	reconcileNamespace := r.reconcileNamespace
	if batch {
		reconcileNamespace = r.reconcileBatch
	}
	out, err := reconcileNamespace(ctx, an)
	if err != nil {
		return reconcile.Result{}, err
	}
	return r.finish(ctx, an, out)
}

// reconcileNamespace finds the app namespace's cluster (or routes it) and
// applies the namespace, quota and RoleBindings there.
func (r *Reconciler) reconcileNamespace(ctx context.Context, an *appsv1alpha1.AppNamespace) (outcome, error) {
	name, out, err := r.place(ctx, an)
	switch {
	case err != nil:
		return outcome{}, err
	case out != nil:
		return *out, nil
	}
	rc, out := r.connect(ctx, name)
	if out != nil {
		return *out, nil
	}
	return r.apply(ctx, an, name, rc)
}

// place returns the app namespace's cluster: the one in its status (the
// choice is sticky), the one this process routed it to, the one that holds
// a namespace made for it (the status was lost), or a new choice. When none
// fits it returns the outcome that says why.
func (r *Reconciler) place(ctx context.Context, an *appsv1alpha1.AppNamespace) (string, *outcome, error) {
	if an.Status.Cluster != "" {
		return an.Status.Cluster, nil, nil
	}
	if name := r.recall(an); name != "" {
		return name, nil, nil
	}
	clusters := &fleetv1alpha1.ClusterList{}
	if err := r.hub.List(ctx, clusters); err != nil {
		return "", nil, fmt.Errorf("listing clusters: %w", err)
	}
	found, excluded := r.find(ctx, an.Name, clusters.Items)
	if found != "" {
		log.FromContext(ctx).Info("Found the namespace made for the app namespace", "cluster", found)
		r.remember(an, found)
		return found, nil, nil
	}
	pools := &fleetv1alpha1.PoolList{}
	if err := r.hub.List(ctx, pools); err != nil {
		return "", nil, fmt.Errorf("listing pools: %w", err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	all := &appsv1alpha1.AppNamespaceList{}
	if err := r.hub.List(ctx, all); err != nil {
		return "", nil, fmt.Errorf("listing app namespaces: %w", err)
	}
	d := route(routeInput{
		Profile: an.Spec.NodeProfile, Quota: an.Spec.Quota,
		Clusters: clusters.Items, Pools: pools.Items, Placed: r.placements(all.Items, an), Excluded: excluded,
	})
	if d.Cluster == "" {
		return "", &outcome{reason: appsv1alpha1.NoClusterFitsReason, message: d.Message}, nil
	}
	r.routed[an.Name] = routedTo{uid: an.UID, cluster: d.Cluster}
	log.FromContext(ctx).Info("Routed the app namespace", "to", d.Cluster, "why", d.Message)
	r.recorder.Eventf(an, nil, corev1.EventTypeNormal, routedReason, "Route", "%s", d.Message)
	return d.Cluster, nil, nil
}

// placements are the other app namespaces' clusters, from their status or,
// until the cache has it, from what this process routed. r.mu is held.
func (r *Reconciler) placements(all []appsv1alpha1.AppNamespace, self *appsv1alpha1.AppNamespace) []placement {
	placed := make([]placement, 0, len(all))
	for i := range all {
		an := &all[i]
		if an.Name == self.Name {
			continue
		}
		cluster := an.Status.Cluster
		if t, ok := r.routed[an.Name]; cluster == "" && ok && t.uid == an.UID {
			cluster = t.cluster
		}
		if cluster != "" {
			placed = append(placed, placement{Cluster: cluster, Profile: an.Spec.NodeProfile, Quota: an.Spec.Quota})
		}
	}
	return placed
}

// find looks in every Ready cluster for the namespace of the app namespace
// name. It returns the cluster holding one made for it (labelled with its
// name), and the clusters that cannot take it: one holds a namespace of that
// name made for something else, or cannot be asked.
func (r *Reconciler) find(ctx context.Context, name string, clusters []fleetv1alpha1.Cluster) (string, map[string]string) {
	excluded := map[string]string{}
	slices.SortFunc(clusters, func(a, b fleetv1alpha1.Cluster) int { return strings.Compare(a.Name, b.Name) })
	for i := range clusters {
		c := &clusters[i]
		if ok, _ := clusterReady(c); !ok {
			continue
		}
		rc, err := r.clusters.Get(ctx, c)
		if err != nil {
			excluded[c.Name] = "unreachable: " + err.Error()
			continue
		}
		ns := &corev1.Namespace{}
		err = rc.APIReader.Get(ctx, client.ObjectKey{Name: name}, ns)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			excluded[c.Name] = fmt.Sprintf("could not look for namespace %s there: %v", name, err)
		case ns.Labels[appsv1alpha1.AppNamespaceLabel] == name:
			return c.Name, nil
		default:
			excluded[c.Name] = fmt.Sprintf("it already has a namespace %s that Strata did not make for this AppNamespace", name)
		}
	}
	return "", excluded
}

// connect connects to the app namespace's cluster, or says why it cannot.
func (r *Reconciler) connect(ctx context.Context, name string) (*remote.Cluster, *outcome) {
	unavailable := func(format string, args ...any) *outcome {
		return &outcome{cluster: name, reason: appsv1alpha1.ClusterUnavailableReason, message: fmt.Sprintf(format, args...)}
	}
	cluster := &fleetv1alpha1.Cluster{}
	if err := r.hub.Get(ctx, client.ObjectKey{Name: name}, cluster); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, unavailable("cluster %s, where the namespace was placed, is not registered on the hub; the choice stays until it is back", name)
		}
		return nil, unavailable("reading cluster %s: %v", name, err)
	}
	if ok, why := clusterReady(cluster); !ok {
		return nil, unavailable("cluster %s is %s; the namespace stays there and is retried", name, why)
	}
	rc, err := r.clusters.Get(ctx, cluster)
	if err != nil {
		return nil, unavailable("%v", err)
	}
	return rc, nil
}

// apply writes the namespace, its quota and its owners' RoleBindings, and
// removes the RoleBindings of former owners.
func (r *Reconciler) apply(ctx context.Context, an *appsv1alpha1.AppNamespace, cluster string, rc *remote.Cluster) (outcome, error) {
	terminating, err := r.write(ctx, an, target{name: "cluster " + cluster, client: rc.Client, reader: rc.APIReader})
	switch {
	case err != nil:
		return outcome{cluster: cluster, reason: appsv1alpha1.ClusterUnavailableReason, message: err.Error()}, nil
	case terminating:
		return outcome{cluster: cluster, reason: appsv1alpha1.DeletingNamespaceReason, message: fmt.Sprintf(
			"namespace %s in cluster %s is being deleted, though not by Strata; it is made again once it is gone", an.Name, cluster)}, nil
	}
	return outcome{cluster: cluster, reason: appsv1alpha1.NamespaceReadyReason, message: fmt.Sprintf(
		"namespace %s in cluster %s, %s, quota %s", an.Name, cluster, countOwners(len(an.Spec.Owners)), formatList(an.Spec.Quota))}, nil
}

// target is an API server the controller writes a namespace to: a
// workload cluster's, or the hub's for tenant batch.
type target struct {
	// name says where, in messages: "cluster w1", "the hub".
	name   string
	client client.Client
	reader client.Reader
}

// write applies the namespace, its quota (not for tenant batch, whose quota
// is its BatchQueue's) and its owners' RoleBindings to one API server, and
// removes the RoleBindings of former owners. It says whether the namespace
// is terminating (then nothing else is written); an error names what
// failed where.
func (r *Reconciler) write(ctx context.Context, an *appsv1alpha1.AppNamespace, to target) (bool, error) {
	failed := func(what string, err error) (bool, error) {
		return false, fmt.Errorf("%s in %s: %w", what, to.name, err)
	}
	ns := desiredNamespace(an)
	if err := to.client.Apply(ctx, ns, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return failed("applying namespace "+an.Name, err)
	}
	if ns.Status != nil && ns.Status.Phase != nil && *ns.Status.Phase == corev1.NamespaceTerminating {
		return true, nil
	}
	if an.Spec.Tenant != appsv1alpha1.BatchTenant {
		if err := to.client.Apply(ctx, desiredQuota(an), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			return failed("applying ResourceQuota "+an.Name+"/"+QuotaName, err)
		}
	}
	for _, rb := range desiredRoleBindings(an) {
		if err := to.client.Apply(ctx, rb, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
			return failed("applying RoleBinding "+an.Name+"/"+*rb.Name, err)
		}
	}
	existing := &rbacv1.RoleBindingList{}
	if err := to.reader.List(ctx, existing, client.InNamespace(an.Name), client.MatchingLabels{appsv1alpha1.AppNamespaceLabel: an.Name}); err != nil {
		return failed("listing the RoleBindings of namespace "+an.Name, err)
	}
	for _, name := range staleRoleBindings(an, existing.Items) {
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: an.Name, Name: name}}
		if err := to.client.Delete(ctx, rb); client.IgnoreNotFound(err) != nil {
			return failed("deleting RoleBinding "+an.Name+"/"+name, err)
		}
		log.FromContext(ctx).Info("Deleted the RoleBinding of a former owner", "roleBinding", klog.KObj(rb), "in", to.name)
	}
	return false, nil
}

// reconcileDelete deletes the app namespace's namespace and lets the app
// namespace go once it is gone. The guardrails may refuse to delete a
// namespace that still holds workloads: the refusal is the status, and the
// delete is retried.
func (r *Reconciler) reconcileDelete(ctx context.Context, an *appsv1alpha1.AppNamespace) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(an, Finalizer) {
		return reconcile.Result{}, nil
	}
	name := an.Status.Cluster
	if name == "" {
		name = r.recall(an)
	}
	if name == "" {
		clusters := &fleetv1alpha1.ClusterList{}
		if err := r.hub.List(ctx, clusters); err != nil {
			return reconcile.Result{}, fmt.Errorf("listing clusters: %w", err)
		}
		if name, _ = r.find(ctx, an.Name, clusters.Items); name == "" {
			return r.release(ctx, an, "it was never placed in a cluster")
		}
	}
	if err := r.hub.Get(ctx, client.ObjectKey{Name: name}, &fleetv1alpha1.Cluster{}); apierrors.IsNotFound(err) {
		return r.release(ctx, an, "its cluster "+name+" is no longer registered")
	}
	rc, out := r.connect(ctx, name)
	if out != nil {
		return r.finish(ctx, an, *out)
	}
	ns := &corev1.Namespace{}
	err := rc.APIReader.Get(ctx, client.ObjectKey{Name: an.Name}, ns)
	switch {
	case apierrors.IsNotFound(err):
		return r.release(ctx, an, "its namespace is gone")
	case err != nil:
		return r.finish(ctx, an, outcome{cluster: name, reason: appsv1alpha1.ClusterUnavailableReason,
			message: fmt.Sprintf("reading namespace %s in cluster %s: %v", an.Name, name, err)})
	case ns.Labels[appsv1alpha1.AppNamespaceLabel] != an.Name:
		return r.release(ctx, an, "namespace "+an.Name+" in cluster "+name+" was not made for it")
	case !ns.DeletionTimestamp.IsZero():
		return r.finish(ctx, an, outcome{cluster: name, reason: appsv1alpha1.DeletingNamespaceReason,
			message: fmt.Sprintf("namespace %s in cluster %s is terminating", an.Name, name)})
	}
	err = rc.Client.Delete(ctx, ns, client.Preconditions{UID: &ns.UID})
	switch {
	case apierrors.IsNotFound(err):
		return r.release(ctx, an, "its namespace is gone")
	case apierrors.IsForbidden(err) || apierrors.IsInvalid(err):
		// The guardrails' word, as the API server gave it.
		return r.finish(ctx, an, outcome{cluster: name, reason: appsv1alpha1.NamespaceNotEmptyReason,
			message: fmt.Sprintf("deleting namespace %s in cluster %s was refused, retrying: %v", an.Name, name, err)})
	case err != nil:
		return reconcile.Result{}, fmt.Errorf("deleting namespace %s in cluster %s: %w", an.Name, name, err)
	}
	log.FromContext(ctx).Info("Deleting the namespace", "cluster", name)
	return r.finish(ctx, an, outcome{cluster: name, reason: appsv1alpha1.DeletingNamespaceReason,
		message: fmt.Sprintf("namespace %s in cluster %s is terminating", an.Name, name)})
}

// release removes the finalizer: nothing is left in a workload cluster.
func (r *Reconciler) release(ctx context.Context, an *appsv1alpha1.AppNamespace, why string) (reconcile.Result, error) {
	controllerutil.RemoveFinalizer(an, Finalizer)
	if err := r.hub.Update(ctx, an); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	r.forget(an.Name)
	log.FromContext(ctx).Info("Released the app namespace", "why", why)
	return reconcile.Result{}, nil
}

// finish writes the status that follows from the outcome, when it changed,
// emits a Warning event when the Ready reason becomes a problem, and says
// when to look again.
func (r *Reconciler) finish(ctx context.Context, an *appsv1alpha1.AppNamespace, out outcome) (reconcile.Result, error) {
	before := meta.FindStatusCondition(an.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition)
	beforeReason := ""
	if before != nil {
		beforeReason = before.Reason
	}
	status := desiredStatus(an, out, metav1.NewTime(r.clock.Now()))
	if !equality.Semantic.DeepEqual(status, an.Status) {
		an.Status = status
		if err := r.hub.Status().Update(ctx, an); err != nil {
			return reconcile.Result{}, fmt.Errorf("writing status of app namespace %s: %w", an.Name, err)
		}
	}
	if action, problem := problems[out.reason]; problem && beforeReason != out.reason {
		r.recorder.Eventf(an, nil, corev1.EventTypeWarning, out.reason, action, "%s", out.message)
	}
	return reconcile.Result{RequeueAfter: requeueAfter(out.reason)}, nil
}

// problems are the Ready reasons a person should look at, with the action
// that met them.
var problems = map[string]string{
	appsv1alpha1.NoClusterFitsReason:      "Route",
	appsv1alpha1.ClusterUnavailableReason: "Reconcile",
	appsv1alpha1.NamespaceNotEmptyReason:  "Delete",
	appsv1alpha1.BatchQueueNotFoundReason: "Reconcile",
	appsv1alpha1.BatchQueueIsParentReason: "Reconcile",
}

func requeueAfter(reason string) time.Duration {
	switch reason {
	case appsv1alpha1.NamespaceReadyReason:
		return steadyInterval
	case appsv1alpha1.NoClusterFitsReason:
		return unroutedInterval
	case appsv1alpha1.DeletingNamespaceReason:
		return deletingInterval
	case appsv1alpha1.NamespaceNotEmptyReason:
		return notEmptyInterval
	}
	return unavailableInterval
}

func (r *Reconciler) recall(an *appsv1alpha1.AppNamespace) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.routed[an.Name]; ok && t.uid == an.UID {
		return t.cluster
	}
	return ""
}

func (r *Reconciler) remember(an *appsv1alpha1.AppNamespace, cluster string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routed[an.Name] = routedTo{uid: an.UID, cluster: cluster}
}

func (r *Reconciler) forget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.routed, name)
}

// forCluster maps a Cluster to the app namespaces it may concern: those
// of tenant batch (on every cluster), those not routed yet, and those
// routed to it that are not Ready.
func (r *Reconciler) forCluster(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.appNamespaces(ctx, func(an *appsv1alpha1.AppNamespace) bool {
		if an.Spec.Tenant == appsv1alpha1.BatchTenant || an.Status.Cluster == "" {
			return true
		}
		return an.Status.Cluster == obj.GetName() && !meta.IsStatusConditionTrue(an.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition)
	})
}

// forPool maps a Pool to the app namespaces of its profile not routed yet.
func (r *Reconciler) forPool(ctx context.Context, obj client.Object) []reconcile.Request {
	pool, ok := obj.(*fleetv1alpha1.Pool)
	if !ok {
		return nil
	}
	return r.appNamespaces(ctx, func(an *appsv1alpha1.AppNamespace) bool {
		return routed(an) && an.Status.Cluster == "" && an.Spec.NodeProfile == pool.Spec.NodeProfile
	})
}

// unroutedOfAnyProfile maps anything to the app namespaces not routed yet.
func (r *Reconciler) unroutedOfAnyProfile(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.appNamespaces(ctx, func(an *appsv1alpha1.AppNamespace) bool { return routed(an) && an.Status.Cluster == "" })
}

// batch maps anything to the app namespaces of tenant batch.
func (r *Reconciler) batch(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.appNamespaces(ctx, func(an *appsv1alpha1.AppNamespace) bool { return !routed(an) })
}

// routed says whether an app namespace is routed to one cluster (stateless
// and stateful): batch namespaces are on all of them.
func routed(an *appsv1alpha1.AppNamespace) bool { return an.Spec.Tenant != appsv1alpha1.BatchTenant }

func (r *Reconciler) appNamespaces(ctx context.Context, match func(*appsv1alpha1.AppNamespace) bool) []reconcile.Request {
	list := &appsv1alpha1.AppNamespaceList{}
	if err := r.hub.List(ctx, list); err != nil {
		log.FromContext(ctx).Error(err, "Listing app namespaces")
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if an := &list.Items[i]; an.DeletionTimestamp.IsZero() && match(an) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(an)})
		}
	}
	return reqs
}

func countOwners(n int) string {
	if n == 1 {
		return "1 owner RoleBinding"
	}
	return fmt.Sprintf("%d owner RoleBindings", n)
}
