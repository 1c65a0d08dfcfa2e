// Package statelessapp runs the StatelessApp controller of a workload
// cluster. It expands each StatelessApp, with the cluster's AppPlatform
// "default" and the labels of the app's namespace, into a stable and a
// canary Deployment, a Service and a PodDisruptionBudget (Expand), writes
// them with server-side apply, and judges from the Deployments and the pods
// whether the app runs and, when pods fail, why and whose problem it is
// (Status).
//
// The manager it runs in needs a scheme with client-go's types and
// apps.strata.dev/v1alpha1, and should use appcache.Options.
package statelessapp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
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

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/nodeutil"
	"github.com/strata-dev/strata/internal/conflicts"
	"github.com/strata-dev/strata/internal/workload/appstatus"
)

// FieldOwner is the field manager of everything the controller writes.
const FieldOwner = client.FieldOwner("strata-statelessapp")

// passDelay is how long the changes of an app's Deployments and pods are
// gathered before the app is judged again: a rollout's thousands of pod
// changes make a pass (and at most a status write) a second, not one each.
const passDelay = time.Second

// unsettledInterval: an app that is not Ready, rolls out or fails is
// judged again this often even without an event.
const unsettledInterval = 30 * time.Second

// Options are the Reconciler's dependencies.
type Options struct {
	Client   client.Client
	Recorder events.EventRecorder
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// Grace defaults to DefaultGrace.
	Grace Grace
	// Cluster names the workload cluster when one process runs a
	// controller for each of several: controller names (in metrics and
	// logs) must be unique in a process. Empty: the controller is named
	// statelessapp.
	Cluster string
}

// Reconciler expands StatelessApps and judges how they run.
type Reconciler struct {
	client   client.Client
	recorder events.EventRecorder
	clock    clock.PassiveClock
	grace    Grace
	name     string

	mu sync.Mutex
	// applied remembers what was last applied to each object, and the
	// version of the object that resulted: while both still hold, applying
	// again would change nothing and is skipped.
	applied map[appliedKey]appliedRecord
}

type appliedKey struct {
	app        types.NamespacedName
	kind, name string
}

type appliedRecord struct{ hash, version string }

// New validates the options and returns a Reconciler.
func New(o Options) (*Reconciler, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("statelessapp controller: a client is required")
	case o.Recorder == nil:
		return nil, errors.New("statelessapp controller: an event recorder is required")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Grace == (Grace{}) {
		o.Grace = DefaultGrace
	}
	name := "statelessapp"
	if o.Cluster != "" {
		name += "-" + o.Cluster
	}
	return &Reconciler{client: o.Client, recorder: o.Recorder, clock: o.Clock, grace: o.Grace, name: name,
		applied: map[appliedKey]appliedRecord{}}, nil
}

// SetupWithManager registers the controller: it watches StatelessApps, what
// they expand to, their pods, the AppPlatform and the namespaces' labels.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&appsv1alpha1.StatelessApp{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A Deployment's and its pods' changes come in bursts (a rollout of
		// 1,000 pods is thousands of them): they are gathered for a pass.
		Watches(&appsv1.Deployment{}, gathered(passDelay, appOfOwned)).
		Owns(&corev1.Service{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Watches(&corev1.Pod{}, gathered(passDelay, appOfPod)).
		Watches(&appsv1alpha1.AppPlatform{}, handler.EnqueueRequestsFromMapFunc(r.allApps)).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.appsInNamespace),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named(r.name).
		Complete(conflicts.Requeue(r))
}

// Reconcile expands one StatelessApp and writes how it runs.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	app := &appsv1alpha1.StatelessApp{}
	if err := r.client.Get(ctx, req.NamespacedName, app); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !app.DeletionTimestamp.IsZero() {
		// The garbage collector deletes what the app expanded to.
		return reconcile.Result{}, nil
	}
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("statelessApp", klog.KObj(app)))

	obs, err := r.expand(ctx, app)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := r.observePods(ctx, &obs); err != nil {
		return reconcile.Result{}, err
	}
	obs.Now, obs.Grace = r.clock.Now(), r.grace
	status, recheck := Status(obs)
	before := app.Status
	if err := r.writeStatus(ctx, app, status); err != nil {
		return reconcile.Result{}, err
	}
	r.recordEvents(app, before, status)
	return requeue(status, recheck), nil
}

// expand writes the app's workload, and returns its Deployments as they
// are now, or why it could not be written.
func (r *Reconciler) expand(ctx context.Context, app *appsv1alpha1.StatelessApp) (Observation, error) {
	obs := Observation{App: app}
	var err error
	if obs.Stable, err = r.deployment(ctx, app, appsv1alpha1.StableTrack); err != nil {
		return blocked(obs, err)
	}
	if obs.Canary, err = r.deployment(ctx, app, appsv1alpha1.CanaryTrack); err != nil {
		return blocked(obs, err)
	}
	ns := &corev1.Namespace{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: app.Namespace}, ns); err != nil {
		return obs, fmt.Errorf("reading namespace %s: %w", app.Namespace, err)
	}
	platform := &appsv1alpha1.AppPlatform{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: appsv1alpha1.PlatformName}, platform); err != nil {
		if !apierrors.IsNotFound(err) {
			return obs, fmt.Errorf("reading the AppPlatform: %w", err)
		}
		obs.Blocked = &Blocker{Reason: appsv1alpha1.PlatformNotFoundReason, Message: fmt.Sprintf(
			"the cluster has no AppPlatform %q to expand the app with (its image repository, infra containers and probes); "+
				"the platform team creates it, `strata up` installs one with defaults", appsv1alpha1.PlatformName)}
		return obs, nil
	}

	w := Expand(app, &platform.Spec, ns)
	var svc corev1.Service
	var pdb policyv1.PodDisruptionBudget
	for _, o := range []struct{ want, live client.Object }{{w.Service, &svc}, {w.PDB, &pdb}} {
		if err := r.client.Get(ctx, client.ObjectKeyFromObject(o.want), o.live); err != nil {
			if !apierrors.IsNotFound(err) {
				return obs, err
			}
			o.live = nil
		}
		if _, err := r.apply(ctx, app, o.want, o.live, &unstructured.Unstructured{}); err != nil {
			return blocked(obs, err)
		}
	}
	stable, err := r.apply(ctx, app, w.Stable, nilIfAbsent(obs.Stable), &appsv1.Deployment{})
	if err != nil {
		return blocked(obs, err)
	}
	obs.Stable = stable.(*appsv1.Deployment)
	switch {
	case w.Canary != nil:
		canary, err := r.apply(ctx, app, w.Canary, nilIfAbsent(obs.Canary), &appsv1.Deployment{})
		if err != nil {
			return blocked(obs, err)
		}
		obs.Canary = canary.(*appsv1.Deployment)
	case obs.Canary != nil && retireCanary(obs.Canary, obs.Stable, &app.Spec):
		if err := r.client.Delete(ctx, obs.Canary, client.Preconditions{UID: &obs.Canary.UID}); client.IgnoreNotFound(err) != nil {
			return blocked(obs, err)
		}
		log.FromContext(ctx).Info("Deleted the canary Deployment", "deployment", klog.KObj(obs.Canary))
		obs.Canary = nil
	}
	return obs, nil
}

// retireCanary says whether a canary Deployment that is no longer wanted
// goes now. One that runs what the stable track now runs (a promoted
// canary) serves until the stable track has rolled out; any other (the
// canary was called off) goes at once.
func retireCanary(canary, stable *appsv1.Deployment, spec *appsv1alpha1.StatelessAppSpec) bool {
	want, _ := Tracks(spec)
	labels := canary.Spec.Template.Labels
	if labels[appsv1alpha1.AppVersionLabel] != want.AppVersion || labels[appsv1alpha1.ConfigVersionLabel] != want.ConfigVersion {
		return true
	}
	return judgeTrack(want, stable).rolledOut()
}

// blocked turns an API server's refusal of the workload into the app's
// status; other errors are retried.
func blocked(obs Observation, err error) (Observation, error) {
	var notOurs *notOursError
	if errors.As(err, &notOurs) || apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) || apierrors.IsRequestEntityTooLargeError(err) {
		obs.Blocked = &Blocker{Reason: appsv1alpha1.ExpansionFailedReason, Message: err.Error()}
		return obs, nil
	}
	return obs, err
}

// deployment reads the Deployment of a track, nil when there is none.
func (r *Reconciler) deployment(ctx context.Context, app *appsv1alpha1.StatelessApp, track string) (*appsv1.Deployment, error) {
	d := &appsv1.Deployment{}
	err := r.client.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: DeploymentName(app.Name, track)}, d)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading the %s Deployment: %w", track, err)
	}
	if !metav1.IsControlledBy(d, app) {
		// e.g. app "web" and another app named "web-canary" in one namespace.
		return nil, &notOursError{kind: "Deployment", name: d.Name, app: app.Name}
	}
	return d, nil
}

// notOursError: an object the app's expansion needs already exists and
// belongs to something else; Strata neither adopts nor deletes it.
type notOursError struct{ kind, name, app string }

func (e *notOursError) Error() string {
	return fmt.Sprintf("%s %s exists and is not StatelessApp %s's (another app or a person made it): Strata neither takes it over nor deletes it; rename the app or remove that %s",
		e.kind, e.name, e.app, e.kind)
}

func nilIfAbsent(d *appsv1.Deployment) client.Object {
	if d == nil {
		return nil
	}
	return d
}

// apply writes want with server-side apply, unless the last apply of the
// same content resulted in live as it is now. It returns the object as it
// is after, decoded into out (live itself when skipped).
func (r *Reconciler) apply(ctx context.Context, app *appsv1alpha1.StatelessApp, want, live, out client.Object) (client.Object, error) {
	kind := want.GetObjectKind().GroupVersionKind().Kind
	key := appliedKey{app: client.ObjectKeyFromObject(app), kind: kind, name: want.GetName()}
	body, err := json.Marshal(want)
	if err != nil {
		return nil, fmt.Errorf("encoding %s %s: %w", kind, want.GetName(), err)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	r.mu.Lock()
	last, ok := r.applied[key]
	r.mu.Unlock()
	if ok && live != nil && last == (appliedRecord{hash: hash, version: version(live)}) {
		return live, nil
	}

	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(want)
	if err != nil {
		return nil, fmt.Errorf("converting %s %s: %w", kind, want.GetName(), err)
	}
	delete(u, "status")
	unstructured.RemoveNestedField(u, "metadata", "creationTimestamp")
	obj := &unstructured.Unstructured{Object: u}
	if err := r.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), FieldOwner, client.ForceOwnership); err != nil {
		return nil, fmt.Errorf("applying %s %s: %w", kind, want.GetName(), err)
	}
	if u, ok := out.(*unstructured.Unstructured); ok {
		u.Object = obj.Object
	} else if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, out); err != nil {
		return nil, fmt.Errorf("decoding %s %s: %w", kind, want.GetName(), err)
	}
	r.mu.Lock()
	r.applied[key] = appliedRecord{hash: hash, version: version(obj)}
	r.mu.Unlock()
	if live == nil {
		log.FromContext(ctx).Info("Created", "kind", kind, "name", want.GetName())
	}
	return out, nil
}

// version changes when someone changes the object: its generation, or
// for kinds without one (Services) its resource version.
func version(obj client.Object) string {
	if g := obj.GetGeneration(); g > 0 {
		return "generation " + strconv.FormatInt(g, 10)
	}
	return "resourceVersion " + obj.GetResourceVersion()
}

// forget drops what was remembered of a deleted app's applies.
func (r *Reconciler) forget(app types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.applied {
		if k.app == app {
			delete(r.applied, k)
		}
	}
}

// observePods reads the app's pods and whether their Nodes are Ready.
func (r *Reconciler) observePods(ctx context.Context, obs *Observation) error {
	pods := &corev1.PodList{}
	// Read only: no copy of each of thousands of cached pods at each pass.
	if err := r.client.List(ctx, pods, client.InNamespace(obs.App.Namespace), client.MatchingLabels(Selector(obs.App.Name)), client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing the pods: %w", err)
	}
	obs.Pods = pods.Items
	obs.NodeReady = map[string]bool{}
	missing := map[string]bool{}
	for i := range pods.Items {
		name := pods.Items[i].Spec.NodeName
		if _, known := obs.NodeReady[name]; name == "" || known || missing[name] {
			continue
		}
		node := &corev1.Node{}
		switch err := r.client.Get(ctx, client.ObjectKey{Name: name}, node); {
		case apierrors.IsNotFound(err):
			missing[name] = true
		case err != nil:
			return fmt.Errorf("reading node %s: %w", name, err)
		default:
			obs.NodeReady[name] = nodeutil.Ready(node)
		}
	}
	return nil
}

// writeStatus writes the status when it changed, with server-side apply.
func (r *Reconciler) writeStatus(ctx context.Context, app *appsv1alpha1.StatelessApp, status appsv1alpha1.StatelessAppStatus) error {
	if equality.Semantic.DeepEqual(app.Status, status) {
		return nil
	}
	return appstatus.Apply(ctx, r.client, app, "StatelessApp", &status, FieldOwner)
}

// recordEvents tells of a failure that appears or changes category, of a
// recovery, and of a Ready condition that turns to a problem or to Available.
func (r *Reconciler) recordEvents(app *appsv1alpha1.StatelessApp, before, after appsv1alpha1.StatelessAppStatus) {
	bf, af := before.Failure, after.Failure
	switch {
	case af != nil && (bf == nil || bf.Category != af.Category):
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, af.Reason, "Judge", "%s failure: %s", af.Category, af.Message)
	case af == nil && bf != nil:
		r.recorder.Eventf(app, nil, corev1.EventTypeNormal, "Recovered", "Judge", "No pod is failing any more (was %s: %s)", bf.Category, bf.Reason)
	}
	was := meta.FindStatusCondition(before.Conditions, appsv1alpha1.StatelessAppReadyCondition)
	now := meta.FindStatusCondition(after.Conditions, appsv1alpha1.StatelessAppReadyCondition)
	if now == nil || was != nil && was.Reason == now.Reason {
		return
	}
	switch now.Reason {
	case appsv1alpha1.PlatformNotFoundReason, appsv1alpha1.ExpansionFailedReason, appsv1alpha1.ProgressDeadlineExceededReason:
		r.recorder.Eventf(app, nil, corev1.EventTypeWarning, now.Reason, "Reconcile", "%s", now.Message)
	case appsv1alpha1.AvailableReason:
		r.recorder.Eventf(app, nil, corev1.EventTypeNormal, now.Reason, "Reconcile", "%s", now.Message)
	}
}

// requeue looks at an app again when a pod's grace runs out, and now and
// then while it is not settled.
func requeue(status appsv1alpha1.StatelessAppStatus, recheck time.Duration) reconcile.Result {
	settled := meta.IsStatusConditionTrue(status.Conditions, appsv1alpha1.StatelessAppReadyCondition) &&
		!meta.IsStatusConditionTrue(status.Conditions, appsv1alpha1.StatelessAppProgressingCondition) &&
		!meta.IsStatusConditionTrue(status.Conditions, appsv1alpha1.StatelessAppDegradedCondition)
	switch {
	case recheck > 0:
		// A second more, for the grace to have run out.
		return reconcile.Result{RequeueAfter: min(recheck+time.Second, unsettledInterval)}
	case !settled:
		return reconcile.Result{RequeueAfter: unsettledInterval}
	}
	return reconcile.Result{}
}

// appOfPod maps a pod to its StatelessApp.
func appOfPod(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[appsv1alpha1.StatelessAppLabel]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

// appOfOwned maps an object to the StatelessApp that controls it.
func appOfOwned(_ context.Context, obj client.Object) []reconcile.Request {
	owner := metav1.GetControllerOf(obj)
	if owner == nil || owner.Kind != "StatelessApp" || owner.APIVersion != appsv1alpha1.GroupVersion.String() {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: owner.Name}}}
}

// gathered enqueues the requests that m maps an event's objects to after
// delay: the events of one app within it make one pass (the queue keeps
// one of each request, due at the earliest time asked).
func gathered(delay time.Duration, m handler.MapFunc) handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	enqueue := func(ctx context.Context, q queue, objs ...client.Object) {
		for _, obj := range objs {
			for _, req := range m(ctx, obj) {
				q.AddAfter(req, delay)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q queue) { enqueue(ctx, q, e.Object) },
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) {
			// A changed label may move the object from one app to another.
			enqueue(ctx, q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc:  func(ctx context.Context, e event.DeleteEvent, q queue) { enqueue(ctx, q, e.Object) },
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q queue) { enqueue(ctx, q, e.Object) },
	}
}

// allApps maps the AppPlatform to every StatelessApp.
func (r *Reconciler) allApps(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.listApps(ctx)
}

// appsInNamespace maps a namespace to its StatelessApps.
func (r *Reconciler) appsInNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.listApps(ctx, client.InNamespace(obj.GetName()))
}

func (r *Reconciler) listApps(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	return Requests(ctx, r.client, opts...)
}

// Requests are the reconcile requests of the StatelessApps that c lists
// with opts (none when the list fails, which is logged): the map of a
// watch that concerns many apps, here and on the hub (fleetapp).
func Requests(ctx context.Context, c client.Reader, opts ...client.ListOption) []reconcile.Request {
	apps := &appsv1alpha1.StatelessAppList{}
	if err := c.List(ctx, apps, opts...); err != nil {
		log.FromContext(ctx).Error(err, "Listing StatelessApps")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(apps.Items))
	for i := range apps.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&apps.Items[i])})
	}
	return reqs
}
