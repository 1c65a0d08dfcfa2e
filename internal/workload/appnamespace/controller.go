// Package appnamespace runs the hub's AppNamespace controller: it places each
// AppNamespace on as many workload clusters as it asks for (one by default),
// whose Pools of its node profile have room for its quota, keeps those
// choices, and makes the namespace there with its labels, the owners'
// RoleBindings and a ResourceQuota; and on the hub, where the apps are
// declared, with the same labels and RoleBindings and a quota of no pods.
// Deleting the AppNamespace deletes the namespaces, as far as the
// guardrails let it.
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
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
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
// nowhere, or on too few clusters, also on every Cluster and Pool change; a
// ready one rarely, to repair drift.
const (
	deletingInterval    = 2 * time.Second
	notEmptyInterval    = 5 * time.Second
	unavailableInterval = 15 * time.Second
	unroutedInterval    = time.Minute
	steadyInterval      = 5 * time.Minute
)

// workers is how many app namespaces are reconciled at once. Each spends
// most of its time waiting on API servers (a handful of round trips one
// after the other), so a burst of new ones is onboarded by many at once.
const workers = 32

// routedReason is the reason of the Normal event that says to which
// cluster an app namespace was routed and why (one per cluster chosen).
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
	// routed remembers where this process placed each app namespace, for
	// as long as the cache may not show it in the status yet.
	routed map[string]routedTo
}

type routedTo struct {
	uid        types.UID
	placements []appsv1alpha1.ClusterPlacement
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
		// An app namespace that is gone leaves room for those that want more clusters.
		Watches(&appsv1alpha1.AppNamespace{}, handler.EnqueueRequestsFromMapFunc(r.wantingMore), builder.WithPredicates(deleted)).
		Watches(&fleetv1alpha1.Cluster{}, handler.EnqueueRequestsFromMapFunc(r.forCluster)).
		Watches(&fleetv1alpha1.Pool{}, handler.EnqueueRequestsFromMapFunc(r.forPool)).
		// A batch namespace's queue appears, goes or becomes a parent.
		Watches(&appsv1alpha1.BatchQueue{}, handler.EnqueueRequestsFromMapFunc(r.batch), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
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

// reconcileNamespace makes the namespace on the hub, places the app
// namespace on its clusters (or more of them) and applies the namespace,
// quota and RoleBindings on each. The hub's namespace is written while the
// clusters are looked in, and the clusters it is placed on are written at
// once: an app namespace costs a few round trips one after the other, not
// a dozen.
func (r *Reconciler) reconcileNamespace(ctx context.Context, an *appsv1alpha1.AppNamespace) (outcome, error) {
	// The hub first: the owners may declare their apps there before any
	// cluster fits.
	type written struct {
		terminating bool
		err         error
	}
	hub := make(chan written, 1)
	go func() {
		terminating, err := r.write(ctx, an, r.onHub(desiredHubQuota(an)))
		hub <- written{terminating, err}
	}()
	look, err := r.lookAhead(ctx, an)
	if h := <-hub; h.err != nil || h.terminating {
		if h.err != nil {
			return outcome{}, h.err
		}
		return outcome{reason: appsv1alpha1.DeletingNamespaceReason, message: fmt.Sprintf(
			"namespace %s on the hub is being deleted, though not by Strata; it is made again once it is gone", an.Name)}, nil
	}
	if err != nil {
		return outcome{}, err
	}
	placed, why, err := r.place(ctx, an, look)
	switch {
	case err != nil:
		return outcome{}, err
	case len(placed) == 0:
		return outcome{reason: appsv1alpha1.NoClusterFitsReason, message: why}, nil
	}
	steps := make([]clusterStep, len(placed))
	var wg sync.WaitGroup
	for i, p := range placed {
		wg.Go(func() { steps[i] = r.apply(ctx, an, p.Cluster) })
	}
	wg.Wait()
	want, all := wanted(an)
	short := ""
	if !all && len(placed) < want {
		short = fmt.Sprintf("%d of %d clusters asked: %s", len(placed), want, why)
	}
	return placedOutcome(an, placed, steps, short), nil
}

// lookup is what place learns by looking in the clusters: those that hold
// a namespace made for the app namespace, and those that cannot take it.
type lookup struct {
	clusters []fleetv1alpha1.Cluster
	found    []string
	excluded map[string]string
}

// lookAhead looks in the clusters as place would, when place will need to
// (the app namespace is on fewer clusters than it wants); nil when not.
func (r *Reconciler) lookAhead(ctx context.Context, an *appsv1alpha1.AppNamespace) (*lookup, error) {
	placed := r.known(an)
	if want, all := wanted(an); !all && len(placed) >= want {
		return nil, nil
	}
	clusters := &fleetv1alpha1.ClusterList{}
	if err := r.hub.List(ctx, clusters); err != nil {
		return nil, fmt.Errorf("listing clusters: %w", err)
	}
	found, excluded := r.find(ctx, an.Name, clusters.Items, clusterNames(placed))
	return &lookup{clusters: clusters.Items, found: found, excluded: excluded}, nil
}

// place returns the clusters the app namespace is on, in the order they
// were chosen, each with why: those of its status (a choice is kept),
// those this process chose that the cache does not show yet, those that
// hold a namespace made for it (the status was lost), and, while it is on
// fewer than it wants (or on every one that fits, for placement all), new
// choices. When it is on fewer than it wants, why says why no other
// cluster fits. look is what lookAhead found, if it looked.
func (r *Reconciler) place(ctx context.Context, an *appsv1alpha1.AppNamespace, look *lookup) ([]appsv1alpha1.ClusterPlacement, string, error) {
	placed := r.known(an)
	want, all := wanted(an)
	if !all && len(placed) >= want {
		return placed, "", nil
	}
	if look == nil {
		var err error
		if look, err = r.lookAhead(ctx, an); err != nil {
			return nil, "", err
		}
	}
	found, excluded := look.found, look.excluded
	for _, name := range found {
		log.FromContext(ctx).Info("Found the namespace made for the app namespace", "cluster", name)
		placed = append(placed, appsv1alpha1.ClusterPlacement{Cluster: name,
			Reason: fmt.Sprintf("namespace %s found there, made for this AppNamespace", an.Name)})
	}
	if len(found) > 0 {
		r.remember(an, placed)
	}
	if !all && len(placed) >= want {
		return placed, "", nil
	}
	pools := &fleetv1alpha1.PoolList{}
	if err := r.hub.List(ctx, pools); err != nil {
		return nil, "", fmt.Errorf("listing pools: %w", err)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	others := &appsv1alpha1.AppNamespaceList{}
	// Read only, under the lock: no copy of every app namespace each time.
	if err := r.hub.List(ctx, others, client.UnsafeDisableDeepCopy); err != nil {
		return nil, "", fmt.Errorf("listing app namespaces: %w", err)
	}
	region := ""
	if an.Spec.Placement != nil {
		region = an.Spec.Placement.Region
	}
	d := route(routeInput{
		Profile: an.Spec.NodeProfile, Quota: an.Spec.Quota, Region: region, Chosen: clusterNames(placed), Want: want, All: all,
		Clusters: look.clusters, Pools: pools.Items, Placed: r.placements(others.Items, an), Excluded: excluded,
	})
	for _, p := range d.Chosen {
		log.FromContext(ctx).Info("Routed the app namespace", "to", p.Cluster, "why", p.Reason)
		r.recorder.Eventf(an, nil, corev1.EventTypeNormal, routedReason, "Route", "%s", p.Reason)
	}
	placed = append(placed, d.Chosen...)
	if len(d.Chosen) > 0 {
		r.routed[an.Name] = routedTo{uid: an.UID, placements: placed}
	}
	return placed, d.Message, nil
}

// wanted is on how many clusters an app namespace is to be, and whether on
// every one that fits (then at most as many as its status can list).
func wanted(an *appsv1alpha1.AppNamespace) (int, bool) {
	p := an.Spec.Placement
	switch {
	case p == nil:
		return 1, false
	case p.All:
		return maxPlacements, true
	case p.Clusters != nil:
		return int(*p.Clusters), false
	}
	return 1, false
}

// maxPlacements is how many clusters status.placements can list.
const maxPlacements = 64

// placements are the other app namespaces' clusters, from their status or,
// until the cache has it, from what this process chose: each cluster of
// each counts its quota. r.mu is held.
func (r *Reconciler) placements(all []appsv1alpha1.AppNamespace, self *appsv1alpha1.AppNamespace) []placement {
	placed := make([]placement, 0, len(all))
	for i := range all {
		an := &all[i]
		if an.Name == self.Name || !routed(an) {
			continue
		}
		for _, p := range r.knownLocked(an) {
			placed = append(placed, placement{Cluster: p.Cluster, Profile: an.Spec.NodeProfile, Quota: an.Spec.Quota})
		}
	}
	return placed
}

// statusPlacements are the clusters an app namespace's status says it is
// on: its placements, or its one cluster (a status written before there
// were placements).
func statusPlacements(an *appsv1alpha1.AppNamespace) []appsv1alpha1.ClusterPlacement {
	if len(an.Status.Placements) == 0 && an.Status.Cluster != "" {
		return []appsv1alpha1.ClusterPlacement{{Cluster: an.Status.Cluster}}
	}
	return an.Status.Placements
}

func clusterNames(placed []appsv1alpha1.ClusterPlacement) []string {
	names := make([]string, 0, len(placed))
	for _, p := range placed {
		names = append(names, p.Cluster)
	}
	return names
}

// find looks in every Ready cluster but those of skip for the namespace of
// the app namespace name, in all of them at once. It returns the clusters
// holding one made for it (labelled with its name), and those that cannot
// take it: one holds a namespace of that name made for something else, or
// cannot be asked.
func (r *Reconciler) find(ctx context.Context, name string, clusters []fleetv1alpha1.Cluster, skip []string) ([]string, map[string]string) {
	slices.SortFunc(clusters, func(a, b fleetv1alpha1.Cluster) int { return strings.Compare(a.Name, b.Name) })
	type answer struct{ found, excluded string }
	answers := make([]answer, len(clusters))
	var wg sync.WaitGroup
	for i := range clusters {
		c := &clusters[i]
		if ok, _ := clusterReady(c); !ok || slices.Contains(skip, c.Name) {
			continue
		}
		wg.Go(func() {
			rc, err := r.clusters.Get(ctx, c)
			if err != nil {
				answers[i].excluded = "unreachable: " + err.Error()
				return
			}
			ns := &corev1.Namespace{}
			err = rc.APIReader.Get(ctx, client.ObjectKey{Name: name}, ns)
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				answers[i].excluded = fmt.Sprintf("could not look for namespace %s there: %v", name, err)
			case ns.Labels[appsv1alpha1.AppNamespaceLabel] == name:
				answers[i].found = c.Name
			default:
				answers[i].excluded = fmt.Sprintf("it already has a namespace %s that Strata did not make for this AppNamespace", name)
			}
		})
	}
	wg.Wait()
	var found []string
	excluded := map[string]string{}
	for i, a := range answers {
		switch {
		case a.found != "":
			found = append(found, a.found)
		case a.excluded != "":
			excluded[clusters[i].Name] = a.excluded
		}
	}
	return found, excluded
}

// connect connects to a cluster the namespace is placed on, or says why it
// cannot (the cluster is not registered, not Ready or unreachable).
func (r *Reconciler) connect(ctx context.Context, name string) (*remote.Cluster, string) {
	cluster := &fleetv1alpha1.Cluster{}
	if err := r.hub.Get(ctx, client.ObjectKey{Name: name}, cluster); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Sprintf("cluster %s, where the namespace was placed, is not registered on the hub; the choice stays until it is back", name)
		}
		return nil, fmt.Sprintf("reading cluster %s: %v", name, err)
	}
	if ok, why := clusterReady(cluster); !ok {
		return nil, fmt.Sprintf("cluster %s is %s; the namespace stays there and is retried", name, why)
	}
	rc, err := r.clusters.Get(ctx, cluster)
	if err != nil {
		return nil, err.Error()
	}
	return rc, ""
}

// apply writes the namespace, its quota and its owners' RoleBindings in
// one placed cluster, and removes the RoleBindings of former owners.
func (r *Reconciler) apply(ctx context.Context, an *appsv1alpha1.AppNamespace, cluster string) clusterStep {
	rc, why := r.connect(ctx, cluster)
	if why != "" {
		return clusterStep{cluster: cluster, reason: appsv1alpha1.ClusterUnavailableReason, message: why, unreachable: true}
	}
	terminating, err := r.write(ctx, an, target{name: "cluster " + cluster, client: rc.Client, reader: rc.APIReader, quota: desiredQuota(an)})
	switch {
	case err != nil:
		return clusterStep{cluster: cluster, reason: appsv1alpha1.ClusterUnavailableReason, message: err.Error()}
	case terminating:
		return clusterStep{cluster: cluster, reason: appsv1alpha1.DeletingNamespaceReason, message: fmt.Sprintf(
			"namespace %s in cluster %s is being deleted, though not by Strata; it is made again once it is gone", an.Name, cluster)}
	}
	return clusterStep{cluster: cluster}
}

// target is an API server the controller writes a namespace to: a
// workload cluster's, or the hub's for tenant batch.
type target struct {
	// name says where, in messages: "cluster w1", "the hub".
	name   string
	client client.Client
	reader client.Reader
	// quota is the namespace's ResourceQuota there; nil for none (tenant
	// batch, whose quota is its BatchQueue's).
	quota *corev1ac.ResourceQuotaApplyConfiguration
}

// onHub is the hub as a target, with the quota given.
func (r *Reconciler) onHub(quota *corev1ac.ResourceQuotaApplyConfiguration) target {
	return target{name: hubPlace, client: r.hub, reader: r.hubReader, quota: quota}
}

// write applies the namespace, its quota and its owners' RoleBindings to one API server, and
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
	// The namespace is there: its quota, its RoleBindings and the look for
	// those of former owners go at once.
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = fmt.Errorf("%s in %s: %w", what, to.name, err)
		}
	}
	if to.quota != nil {
		wg.Go(func() {
			if err := to.client.Apply(ctx, to.quota, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
				fail("applying ResourceQuota "+an.Name+"/"+QuotaName, err)
			}
		})
	}
	for _, rb := range desiredRoleBindings(an) {
		wg.Go(func() {
			if err := to.client.Apply(ctx, rb, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
				fail("applying RoleBinding "+an.Name+"/"+*rb.Name, err)
			}
		})
	}
	existing := &rbacv1.RoleBindingList{}
	wg.Go(func() {
		if err := to.reader.List(ctx, existing, client.InNamespace(an.Name), client.MatchingLabels{appsv1alpha1.AppNamespaceLabel: an.Name}); err != nil {
			fail("listing the RoleBindings of namespace "+an.Name, err)
		}
	})
	wg.Wait()
	if firstErr != nil {
		return false, firstErr
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

// reconcileDelete deletes the app namespace's namespace in each cluster it
// is placed on, then on the hub, and lets the app namespace go once they
// are gone. The guardrails may refuse to delete a namespace that still
// holds workloads (on the hub, the apps declared there): the refusal is the
// status, and the delete is retried. A cluster no longer registered is let
// go; one that is registered but unreachable holds the app namespace.
func (r *Reconciler) reconcileDelete(ctx context.Context, an *appsv1alpha1.AppNamespace) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(an, Finalizer) {
		return reconcile.Result{}, nil
	}
	clusters := &fleetv1alpha1.ClusterList{}
	if err := r.hub.List(ctx, clusters); err != nil {
		return reconcile.Result{}, fmt.Errorf("listing clusters: %w", err)
	}
	placed := r.known(an)
	if len(placed) == 0 {
		found, _ := r.find(ctx, an.Name, clusters.Items, nil)
		for _, name := range found {
			placed = append(placed, appsv1alpha1.ClusterPlacement{Cluster: name,
				Reason: fmt.Sprintf("namespace %s found there, made for this AppNamespace", an.Name)})
		}
	}
	var registered []string
	for _, name := range clusterNames(placed) {
		if slices.ContainsFunc(clusters.Items, func(c fleetv1alpha1.Cluster) bool { return c.Name == name }) {
			registered = append(registered, name)
		} else {
			log.FromContext(ctx).Info("Letting go of a cluster no longer registered", "cluster", name)
		}
	}
	left, worst := r.deleteInClusters(ctx, an.Name, registered)
	// The hub's namespace goes last: the apps are declared there, and it
	// is where their owners see them until the clusters are empty.
	if len(left) == 0 {
		worst = r.deleteNamespace(ctx, an.Name, r.onHub(nil))
	}
	switch {
	case worst.reason == "":
		return r.release(ctx, an, "its namespace is gone from its clusters and the hub")
	case worst.err != nil:
		return reconcile.Result{}, worst.err
	}
	var out []appsv1alpha1.ClusterPlacement
	if len(placed) > 0 {
		out = placed
	}
	log.FromContext(ctx).Info("Deleting the namespace", "left", left)
	return r.finish(ctx, an, outcome{placements: out, reason: worst.reason, message: worst.message, terminating: worst.terminating})
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
	return reconcile.Result{RequeueAfter: requeueAfter(out)}, nil
}

// problems are the Ready reasons a person should look at, with the action
// that met them.
var problems = map[string]string{
	appsv1alpha1.NoClusterFitsReason:      "Route",
	appsv1alpha1.TooFewClustersReason:     "Route",
	appsv1alpha1.ClusterUnavailableReason: "Reconcile",
	appsv1alpha1.NamespaceNotEmptyReason:  "Delete",
	appsv1alpha1.BatchQueueNotFoundReason: "Reconcile",
	appsv1alpha1.BatchQueueIsParentReason: "Reconcile",
}

func requeueAfter(out outcome) time.Duration {
	if out.terminating {
		// Nothing wakes a deletion when a workload cluster's namespace is
		// gone: look again as often as when that is all there is.
		return deletingInterval
	}
	switch out.reason {
	case appsv1alpha1.NamespaceReadyReason, appsv1alpha1.TooFewClustersReason:
		// A placed cluster that is unreachable is retried as often as
		// when it is the only one: nothing else wakes a Ready namespace
		// when the cluster is back.
		if out.unreachable {
			return unavailableInterval
		}
	}
	switch out.reason {
	case appsv1alpha1.NamespaceReadyReason:
		return steadyInterval
	case appsv1alpha1.NoClusterFitsReason, appsv1alpha1.TooFewClustersReason:
		return unroutedInterval
	case appsv1alpha1.DeletingNamespaceReason:
		return deletingInterval
	case appsv1alpha1.NamespaceNotEmptyReason:
		return notEmptyInterval
	}
	return unavailableInterval
}

// known are the clusters an app namespace is on: those of its status, and
// those this process chose that the cache does not show yet.
func (r *Reconciler) known(an *appsv1alpha1.AppNamespace) []appsv1alpha1.ClusterPlacement {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.knownLocked(an)
}

// knownLocked is known with r.mu held.
func (r *Reconciler) knownLocked(an *appsv1alpha1.AppNamespace) []appsv1alpha1.ClusterPlacement {
	placed := slices.Clone(statusPlacements(an))
	if t, ok := r.routed[an.Name]; ok && t.uid == an.UID {
		for _, p := range t.placements {
			if !slices.ContainsFunc(placed, func(q appsv1alpha1.ClusterPlacement) bool { return q.Cluster == p.Cluster }) {
				placed = append(placed, p)
			}
		}
	}
	return placed
}

func (r *Reconciler) remember(an *appsv1alpha1.AppNamespace, placed []appsv1alpha1.ClusterPlacement) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routed[an.Name] = routedTo{uid: an.UID, placements: placed}
}

func (r *Reconciler) forget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.routed, name)
}

// forCluster maps a Cluster (it appears, becomes Ready, is cordoned or
// uncordoned) to the app namespaces it may concern: those of tenant batch
// (on every cluster), those that want more clusters than they are on
// (placement all always does), and those placed on it that are not Ready.
func (r *Reconciler) forCluster(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.appNamespaces(ctx, func(an *appsv1alpha1.AppNamespace) bool {
		if !an.DeletionTimestamp.IsZero() {
			// A deletion waiting on this cluster (unreachable, or gone now)
			// goes on at once rather than at its next retry.
			return slices.Contains(an.Status.Clusters, obj.GetName()) ||
				slices.Contains(clusterNames(statusPlacements(an)), obj.GetName())
		}
		if !routed(an) || wantsMore(an) {
			return true
		}
		return slices.Contains(clusterNames(statusPlacements(an)), obj.GetName()) &&
			!meta.IsStatusConditionTrue(an.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition)
	})
}

// forPool maps a Pool to the app namespaces of its profile that want more
// clusters.
func (r *Reconciler) forPool(ctx context.Context, obj client.Object) []reconcile.Request {
	pool, ok := obj.(*fleetv1alpha1.Pool)
	if !ok {
		return nil
	}
	return r.appNamespaces(ctx, func(an *appsv1alpha1.AppNamespace) bool {
		return an.DeletionTimestamp.IsZero() && routed(an) && wantsMore(an) && an.Spec.NodeProfile == pool.Spec.NodeProfile
	})
}

// wantingMore maps anything to the app namespaces that want more clusters.
func (r *Reconciler) wantingMore(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.appNamespaces(ctx, func(an *appsv1alpha1.AppNamespace) bool {
		return an.DeletionTimestamp.IsZero() && routed(an) && wantsMore(an)
	})
}

// wantsMore says whether an app namespace's status has it on fewer
// clusters than it wants, or it is on every one that fits (which may be
// one more now).
func wantsMore(an *appsv1alpha1.AppNamespace) bool {
	want, all := wanted(an)
	return all || len(statusPlacements(an)) < want
}

// batch maps anything to the app namespaces of tenant batch.
func (r *Reconciler) batch(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.appNamespaces(ctx, func(an *appsv1alpha1.AppNamespace) bool { return an.DeletionTimestamp.IsZero() && !routed(an) })
}

// routed says whether an app namespace is routed to the clusters it asks
// for (stateless and stateful): batch namespaces are on all of them.
func routed(an *appsv1alpha1.AppNamespace) bool { return an.Spec.Tenant != appsv1alpha1.BatchTenant }

func (r *Reconciler) appNamespaces(ctx context.Context, match func(*appsv1alpha1.AppNamespace) bool) []reconcile.Request {
	list := &appsv1alpha1.AppNamespaceList{}
	if err := r.hub.List(ctx, list); err != nil {
		log.FromContext(ctx).Error(err, "Listing app namespaces")
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if an := &list.Items[i]; match(an) {
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
