// Package fleetapp runs the hub's controller of the StatelessApps declared
// on the hub: each is divided over its AppNamespace's clusters (by weight,
// never leaving a cluster that has the app with none unless told), written
// into each as a StatelessApp of the same name, released to them in waves
// gated on their status, and moved off cordoned or unreachable clusters
// without ever deleting from an unreachable one and without taking the app
// below its replicas: a cluster gives replicas back only while the Ready
// replicas of all its clusters exceed the app's.
//
// Nothing of the workload clusters is cached or watched: each step reads
// the clusters' apps from their API servers (one GET per cluster), and
// looks again soon while something moves.
package fleetapp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
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

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/conflicts"
	"github.com/strata-dev/strata/internal/workload/statelessapp"
)

const (
	// FieldOwner is the server-side apply field manager of the apps the
	// hub writes into the workload clusters.
	FieldOwner = "strata-fleetapp"
	// Finalizer keeps a hub app until its clusters' apps are deleted.
	Finalizer = "apps.strata.dev/hub-app"
)

// Options are the Reconciler's dependencies.
type Options struct {
	// Hub is the hub manager's client (it caches StatelessApps, Clusters
	// and AppNamespaces).
	Hub client.Client
	// Clusters are the connections to the workload clusters.
	Clusters *remote.Clusters
	Recorder events.EventRecorder
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
}

// Reconciler divides, releases and moves the hub's StatelessApps.
type Reconciler struct {
	hub      client.Client
	clusters *remote.Clusters
	recorder events.EventRecorder
	clock    clock.PassiveClock

	mu sync.Mutex
	// unreachable is when each cluster was last seen unreachable; started
	// stands for all of them when the process starts, as it cannot know.
	unreachable map[string]time.Time
	started     time.Time
}

// returnSettle is how long a cluster that was unreachable must be back
// before its app's Ready replicas count: long enough for its own app
// controller to report what happened while the hub could not look.
const returnSettle = 10 * time.Second

// New validates the options and returns a Reconciler.
func New(o Options) (*Reconciler, error) {
	switch {
	case o.Hub == nil:
		return nil, errors.New("hub app controller: a hub client is required")
	case o.Clusters == nil:
		return nil, errors.New("hub app controller: workload cluster connections are required")
	case o.Recorder == nil:
		return nil, errors.New("hub app controller: an event recorder is required")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return &Reconciler{hub: o.Hub, clusters: o.Clusters, recorder: o.Recorder, clock: o.Clock,
		unreachable: map[string]time.Time{}, started: o.Clock.Now()}, nil
}

// SetupOnHub builds the controller and registers it with the hub's manager,
// sharing the hub's connections to the workload clusters (a hub.Setup).
func SetupOnHub(mgr ctrl.Manager, clusters *remote.Clusters) error {
	r, err := New(Options{Hub: mgr.GetClient(), Clusters: clusters, Recorder: mgr.GetEventRecorder("fleetapp-controller")})
	if err != nil {
		return err
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the hub app controller: %w", err)
	}
	return nil
}

// SetupWithManager registers the controller; the manager's scheme must
// know the apps.strata.dev and fleet.strata.dev types.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&appsv1alpha1.StatelessApp{}).
		// A cluster cordoned, lost or back moves replicas.
		Watches(&fleetv1alpha1.Cluster{}, handler.EnqueueRequestsFromMapFunc(r.all)).
		// A namespace placed on another cluster gives its apps a share there.
		Watches(&appsv1alpha1.AppNamespace{}, handler.EnqueueRequestsFromMapFunc(r.inNamespace)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 8}).
		Named("fleetapp").
		Complete(conflicts.Requeue(r))
}

// Reconcile takes one step of a hub app.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	app := &appsv1alpha1.StatelessApp{}
	if err := r.hub.Get(ctx, req.NamespacedName, app); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("statelessApp", klog.KObj(app)))
	if !app.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, app)
	}
	if controllerutil.AddFinalizer(app, Finalizer) {
		if err := r.hub.Update(ctx, app); err != nil {
			return reconcile.Result{}, fmt.Errorf("adding the finalizer of StatelessApp %s: %w", klog.KObj(app), err)
		}
	}
	views, err := r.observe(ctx, app)
	if err != nil {
		return reconcile.Result{}, err
	}
	p := step(app, views, r.clock.Now())
	for i := range views {
		c := &views[i]
		w, ok := p.Writes[c.Name]
		if !ok {
			continue
		}
		if err := apply(ctx, app, c, w); err != nil {
			// One cluster's refusal must not hold the others: say so in its
			// status and look again soon.
			log.FromContext(ctx).Error(err, "Writing the cluster's app", "cluster", c.Name)
			setClusterMessage(&p.Status, c.Name, err.Error())
			p.Requeue = busyInterval
		}
	}
	if err := r.finish(ctx, app, p.Status); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: p.Requeue}, nil
}

// observe reads what step needs of each of the app's clusters: their state
// on the hub and their app as it is.
func (r *Reconciler) observe(ctx context.Context, app *appsv1alpha1.StatelessApp) ([]clusterView, error) {
	an := &appsv1alpha1.AppNamespace{}
	if err := r.hub.Get(ctx, client.ObjectKey{Name: app.Namespace}, an); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading AppNamespace %s: %w", app.Namespace, err)
	}
	names := an.Status.Clusters
	if len(names) == 0 && an.Status.Cluster != "" {
		names = []string{an.Status.Cluster}
	}
	views := make([]clusterView, 0, len(names))
	for _, name := range names {
		v := r.view(ctx, app, name)
		v.Returning = r.returning(name, v.State == Unreachable)
		if v.Returning {
			v.Why = fmt.Sprintf("back from unreachable: its Ready replicas count once it has been back %s", returnSettle)
		}
		views = append(views, v)
	}
	return views, nil
}

// view is one cluster's state and app. A cluster the hub cannot reach, or
// whose Cluster is not Ready, is Unreachable: nothing is read or written
// there until it is back.
func (r *Reconciler) view(ctx context.Context, app *appsv1alpha1.StatelessApp, name string) clusterView {
	v := clusterView{Name: name, State: Active}
	cluster := &fleetv1alpha1.Cluster{}
	if err := r.hub.Get(ctx, client.ObjectKey{Name: name}, cluster); err != nil {
		v.State, v.Why = Unreachable, "its Cluster is not registered on the hub"
		if !apierrors.IsNotFound(err) {
			v.Why = "reading its Cluster: " + err.Error()
		}
		return v
	}
	if ready := meta.FindStatusCondition(cluster.Status.Conditions, fleetv1alpha1.ClusterReadyCondition); ready == nil || ready.Status != "True" {
		v.State, v.Why = Unreachable, "the Cluster is not Ready"
		if ready != nil {
			v.Why = fmt.Sprintf("the Cluster is not Ready (%s: %s)", ready.Reason, ready.Message)
		}
		return v
	}
	if cluster.Spec.Cordoned {
		v.State, v.Why = Cordoned, "the Cluster is cordoned: its replicas move to the app's other clusters"
	}
	rc, err := r.clusters.Get(ctx, cluster)
	if err != nil {
		v.State, v.Why = Unreachable, err.Error()
		return v
	}
	existing, err := getApp(ctx, rc.Client, app.Namespace, app.Name)
	switch {
	case err != nil:
		v.State, v.Why = Unreachable, fmt.Sprintf("reading its StatelessApp %s: %v", klog.KObj(app), err)
		return v
	case existing != nil && existing.Labels[appsv1alpha1.HubAppLabel] != app.Name:
		v.State, v.Why = Conflict, fmt.Sprintf("it has a StatelessApp %s that the hub did not write (no label %s=%s): it is left alone; delete it, or label it to hand it to the hub",
			klog.KObj(app), appsv1alpha1.HubAppLabel, app.Name)
		return v
	}
	v.App, v.conn = existing, rc.Client
	if existing != nil && existing.Spec.Replicas > 1 {
		v.MaxScaleDownPercent = r.maxScaleDownPercent(ctx, rc.Client)
	}
	return v
}

// returning records a cluster seen unreachable, and says whether one seen
// reachable was unreachable (or the process started) less than
// returnSettle ago.
func (r *Reconciler) returning(name string, unreachable bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	if unreachable {
		r.unreachable[name] = now
		return false
	}
	last, ok := r.unreachable[name]
	if !ok {
		last = r.started
	}
	return now.Sub(last) < returnSettle
}

// getApp reads a cluster's StatelessApp, nil when it has none. The
// connections to the workload clusters know only Kubernetes' own types, so
// it goes through unstructured.
func getApp(ctx context.Context, c client.Reader, namespace, name string) (*appsv1alpha1.StatelessApp, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(appsv1alpha1.GroupVersion.WithKind("StatelessApp"))
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	app := &appsv1alpha1.StatelessApp{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, app); err != nil {
		return nil, fmt.Errorf("decoding StatelessApp %s/%s: %w", namespace, name, err)
	}
	return app, nil
}

// maxScaleDownPercent is the cluster's AppPlatform guardrail: the share of
// an app one change may remove; 0 (the default) when it cannot be read.
func (r *Reconciler) maxScaleDownPercent(ctx context.Context, c client.Reader) int32 {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(appsv1alpha1.GroupVersion.WithKind("AppPlatform"))
	if err := c.Get(ctx, client.ObjectKey{Name: appsv1alpha1.PlatformName}, u); err != nil {
		return 0
	}
	n, _, _ := unstructured.NestedInt64(u.Object, "spec", "guardrails", "maxScaleDownPercent")
	return int32(n)
}

// apply writes the cluster's app: the hub app's spec without its fleet
// section, with the cluster's replicas and version.
func apply(ctx context.Context, app *appsv1alpha1.StatelessApp, c *clusterView, w write) error {
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&appsv1alpha1.StatelessApp{
		TypeMeta: metav1.TypeMeta{APIVersion: appsv1alpha1.GroupVersion.String(), Kind: "StatelessApp"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: app.Namespace, Name: app.Name,
			Labels: map[string]string{appsv1alpha1.HubAppLabel: app.Name},
		},
		Spec: clusterSpec(app, w.Replicas, w.Version),
	})
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: obj}
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	if err := c.conn.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying StatelessApp %s in cluster %s: %w", klog.KObj(app), c.Name, err)
	}
	return nil
}

// clusterSpec is a cluster's app's spec: the hub app's, without fleet, with
// the cluster's replicas and version.
func clusterSpec(app *appsv1alpha1.StatelessApp, replicas int32, v version) appsv1alpha1.StatelessAppSpec {
	spec := *app.Spec.DeepCopy()
	spec.Fleet = nil
	spec.Replicas, spec.AppVersion, spec.ConfigVersion = replicas, v.app, v.config
	return spec
}

// finish writes the hub app's status when it changed.
func (r *Reconciler) finish(ctx context.Context, app *appsv1alpha1.StatelessApp, status appsv1alpha1.StatelessAppStatus) error {
	before := app.Status.Release
	if equality.Semantic.DeepEqual(status, app.Status) {
		return nil
	}
	app.Status = status
	if err := r.hub.Status().Update(ctx, app); err != nil {
		return fmt.Errorf("writing status of StatelessApp %s: %w", klog.KObj(app), err)
	}
	r.recordRelease(app, before, status.Release)
	return nil
}

// recordRelease emits an event when a release changes phase or wave.
func (r *Reconciler) recordRelease(app *appsv1alpha1.StatelessApp, before, after *appsv1alpha1.ReleaseStatus) {
	if after == nil || (before != nil && before.Phase == after.Phase && before.Wave == after.Wave && before.AppVersion == after.AppVersion) {
		return
	}
	kind := corev1.EventTypeNormal
	if after.Phase == PhasePaused || after.Phase == PhaseBlocked || after.Phase == PhaseWaiting {
		kind = corev1.EventTypeWarning
	}
	reason := releaseReasons[after.Phase]
	if after.Phase == PhaseReleased {
		reason = appsv1alpha1.ReleasedReason
	}
	r.recorder.Eventf(app, nil, kind, reason, "Release", "%s", after.Message)
}

// reconcileDelete deletes the app from every cluster it was written to
// (those of its AppNamespace), then lets the hub app go. An unreachable
// cluster holds the finalizer until it is back: nothing is left behind, and
// nothing is deleted where the hub cannot see.
func (r *Reconciler) reconcileDelete(ctx context.Context, app *appsv1alpha1.StatelessApp) (reconcile.Result, error) {
	if !controllerutil.ContainsFinalizer(app, Finalizer) {
		return reconcile.Result{}, nil
	}
	views, err := r.observe(ctx, app)
	if err != nil {
		return reconcile.Result{}, err
	}
	var waiting []string
	for i := range views {
		c := &views[i]
		switch {
		case c.State == Unreachable:
			waiting = append(waiting, c.Name+" ("+c.Why+")")
		case c.State == Conflict || c.App == nil:
		default:
			if err := deleteApp(ctx, app, c); err != nil {
				waiting = append(waiting, fmt.Sprintf("%s (%v)", c.Name, err))
			}
		}
	}
	if len(waiting) > 0 {
		status := app.Status.DeepCopy()
		setCondition(status, app, appsv1alpha1.StatelessAppReadyCondition, false, appsv1alpha1.NoClustersReason,
			"deleting: the app is left in "+joinAnd(waiting)+" until it can be deleted there", r.clock.Now())
		if err := r.finish(ctx, app, *status); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{RequeueAfter: busyInterval}, nil
	}
	controllerutil.RemoveFinalizer(app, Finalizer)
	if err := r.hub.Update(ctx, app); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	return reconcile.Result{}, nil
}

// deleteApp deletes a cluster's app, annotated first with the explicit
// override the delete-protection guardrail asks for.
func deleteApp(ctx context.Context, app *appsv1alpha1.StatelessApp, c *clusterView) error {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(appsv1alpha1.GroupVersion.WithKind("StatelessApp"))
	u.SetNamespace(app.Namespace)
	u.SetName(app.Name)
	u.SetAnnotations(map[string]string{appsv1alpha1.AllowDeleteAnnotation: "true"})
	if err := c.conn.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner+"-delete")); err != nil {
		return client.IgnoreNotFound(err)
	}
	return client.IgnoreNotFound(c.conn.Delete(ctx, u))
}

func setClusterMessage(status *appsv1alpha1.StatelessAppStatus, cluster, message string) {
	if i := slices.IndexFunc(status.Clusters, func(c appsv1alpha1.ClusterAppStatus) bool { return c.Cluster == cluster }); i >= 0 {
		status.Clusters[i].Message = truncate(message)
	}
}

// all maps anything to every hub app.
func (r *Reconciler) all(ctx context.Context, _ client.Object) []reconcile.Request {
	return statelessapp.Requests(ctx, r.hub)
}

// inNamespace maps an AppNamespace to the hub apps in its namespace.
func (r *Reconciler) inNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	return statelessapp.Requests(ctx, r.hub, client.InNamespace(obj.GetName()))
}

// joinAnd lists items for a sentence: "a", "a and b", "a, b and c".
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
