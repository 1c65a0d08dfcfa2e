// Package dispatch is Strata's MultiKueue dispatcher: a controller on the
// hub that picks the workload cluster of each job the hub's Kueue reserved
// quota for. The hub's Kueue runs with multiKueue.dispatcherName set to
// kueue.DispatcherName, so it sends a workload only to the clusters written
// in its status.nominatedClusterNames; the dispatcher writes one, chosen by
// room per node profile counted on the Nodes that take pods (Ready, not
// cordoned, not in a zone a MaintenanceRollout is maintaining or maintains
// next), spread over the clusters, and says why in an event on the Workload.
// See docs/jobs.md#dispatch.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
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

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/hub"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// ControllerName names the dispatcher in logs, metrics and events.
const ControllerName = "fleet-dispatcher"

// Event reasons on a hub Workload.
const (
	// DispatchedReason: the workload was sent to a cluster; the note says
	// why that one, and what every other cluster answered.
	DispatchedReason = "Dispatched"
	// NoClusterFitsReason: no cluster has room now; the note says why, per
	// cluster. The dispatcher tries again when the fleet changes.
	NoClusterFitsReason = "NoClusterFits"
	// NeverFitsReason: no cluster could ever hold the workload; it is
	// deactivated (see kueue.NeverFitsAnnotation).
	NeverFitsReason = "NeverFits"
)

// DefaultRetryInterval is how soon a workload that fits nowhere is looked
// at again when nothing it watches changed (a cluster that became
// reachable sends no event).
const DefaultRetryInterval = 30 * time.Second

// recentWindow is how long a dispatch counts as recent, for the tie-break.
const recentWindow = 5 * time.Minute

// Options are what the dispatcher is built from.
type Options struct {
	// Hub writes Workloads and reads the fleet's objects (cached).
	Hub client.Client
	// Cache reads Kueue's objects on the hub, unstructured, from the
	// manager's informers.
	Cache    client.Reader
	Clusters *remote.Clusters
	Recorder events.EventRecorder
	// Clock defaults to the real one.
	Clock clock.Clock
	// RetryInterval defaults to DefaultRetryInterval.
	RetryInterval time.Duration
}

// Dispatcher reconciles hub Workloads that wait for a cluster.
type Dispatcher struct {
	hub      client.Client
	cache    client.Reader
	clusters *remote.Clusters
	recorder events.EventRecorder
	clock    clock.Clock
	retry    time.Duration

	mu sync.Mutex
	// waiting are the workloads no cluster fits now, with the last note
	// recorded (an event only when it changes).
	waiting map[types.NamespacedName]string
	// sent are the dispatcher's nominations the cache may not show yet: a
	// burst must not pile onto one cluster because the informer lags.
	sent map[types.UID]nomination
	// recent are the times of the latest dispatches, by cluster.
	recent map[string][]time.Time
}

// nomination is a dispatch not yet seen in the cache.
type nomination struct {
	cluster string
	// resourceVersion is the workload's before the dispatch: while the
	// cache shows it, the cache does not show the dispatch.
	resourceVersion string
	usage           map[string]corev1.ResourceList
}

// New validates the options and builds the dispatcher.
func New(o Options) (*Dispatcher, error) {
	switch {
	case o.Hub == nil:
		return nil, errors.New("the dispatcher needs a hub client")
	case o.Cache == nil:
		return nil, errors.New("the dispatcher needs the hub's cache")
	case o.Clusters == nil:
		return nil, errors.New("the dispatcher needs the workload clusters")
	case o.Recorder == nil:
		return nil, errors.New("the dispatcher needs an event recorder")
	case o.RetryInterval < 0:
		return nil, fmt.Errorf("the dispatcher's retry interval must not be negative, got %s", o.RetryInterval)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	return &Dispatcher{
		hub: o.Hub, cache: o.Cache, clusters: o.Clusters, recorder: o.Recorder, clock: o.Clock, retry: o.RetryInterval,
		waiting: map[types.NamespacedName]string{}, sent: map[types.UID]nomination{}, recent: map[string][]time.Time{},
	}, nil
}

// SetupOnHub is the hub.Setup of the dispatcher for a hub configuration:
// nothing when jobs.dispatcher is one of Kueue's (the hub's Kueue then
// nominates the clusters itself).
func SetupOnHub(jobs configv1alpha1.JobsController) hub.Setup {
	return func(mgr ctrl.Manager, clusters *remote.Clusters) error {
		if jobs.Dispatcher != "" && jobs.Dispatcher != configv1alpha1.StrataDispatcher {
			mgr.GetLogger().Info("Strata's job dispatcher is off: the hub's Kueue dispatches", "dispatcher", jobs.Dispatcher)
			return nil
		}
		// Without Kueue on the hub there is nothing to dispatch, and a
		// watch of an unknown kind would stop the hub from starting.
		if _, err := mgr.GetRESTMapper().RESTMapping(kueue.GVK(kueue.WorkloadKind).GroupKind(), kueue.GroupVersion.Version); err != nil {
			if meta.IsNoMatchError(err) {
				mgr.GetLogger().Info("Strata's job dispatcher is off: Kueue's Workload kind is not served on the hub; restart the hub once Kueue is installed",
					"kind", kueue.GVK(kueue.WorkloadKind).String())
				return nil
			}
			return fmt.Errorf("looking up Kueue's Workload kind on the hub: %w", err)
		}
		d, err := New(Options{
			Hub: mgr.GetClient(), Cache: mgr.GetCache(), Clusters: clusters, Recorder: mgr.GetEventRecorder(ControllerName),
		})
		if err != nil {
			return err
		}
		if err := d.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up the job dispatcher: %w", err)
		}
		return nil
	}
}

// SetupWithManager watches the hub's Workloads, and what changes the room
// of the fleet: Clusters, Pools, MaintenanceRollouts and the Pool Nodes of
// every workload cluster, each of which looks again at the workloads that
// fit nowhere.
func (d *Dispatcher) SetupWithManager(mgr ctrl.Manager) error {
	wl := &unstructured.Unstructured{}
	wl.SetGroupVersionKind(kueue.GVK(kueue.WorkloadKind))
	toWaiting := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request { return d.waitingRequests() })
	// A workload that leaves a cluster (finished, evicted, deleted) leaves
	// room there.
	leaves := predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return occupies(e.ObjectOld) && !occupies(e.ObjectNew)
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	nodeEvents := source.Channel(d.clusters.NodeEvents(), handler.EnqueueRequestsFromMapFunc(
		func(context.Context, client.Object) []reconcile.Request { return d.waitingRequests() }))
	return ctrl.NewControllerManagedBy(mgr).
		Named(ControllerName).
		For(wl).
		Watches(wl, toWaiting, builder.WithPredicates(leaves)).
		Watches(&fleetv1alpha1.Cluster{}, toWaiting).
		Watches(&fleetv1alpha1.Pool{}, toWaiting).
		Watches(&fleetv1alpha1.MaintenanceRollout{}, toWaiting).
		WatchesRawSource(nodeEvents).
		// One decision at a time: each counts the ones before it.
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(d)
}

func occupies(o client.Object) bool {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return false
	}
	wl, err := parseWorkload(u)
	return err == nil && wl.occupies()
}

func (d *Dispatcher) waitingRequests() []reconcile.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]reconcile.Request, 0, len(d.waiting))
	for key := range d.waiting {
		out = append(out, reconcile.Request{NamespacedName: key})
	}
	return out
}

func (d *Dispatcher) setWaiting(key types.NamespacedName, note string) (changed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old, was := d.waiting[key]
	d.waiting[key] = note
	return !was || old != note
}

func (d *Dispatcher) forget(key types.NamespacedName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.waiting, key)
}

// Reconcile dispatches one workload, if it waits for a cluster.
func (d *Dispatcher) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	u := kueue.New(kueue.WorkloadKind, req.Namespace, req.Name)
	if err := d.cache.Get(ctx, req.NamespacedName, u); err != nil {
		if apierrors.IsNotFound(err) {
			d.forget(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	wl, err := parseWorkload(u)
	if err != nil {
		return reconcile.Result{}, err
	}
	logger := log.FromContext(ctx).WithValues("workload", klog.KObj(u))
	ctx = log.IntoContext(ctx, logger)

	mk, err := d.multiKueueCheck(ctx, wl)
	if err != nil {
		return reconcile.Result{}, err
	}
	if !d.needsCluster(wl, mk) {
		d.forget(req.NamespacedName)
		return reconcile.Result{}, nil
	}
	started := d.clock.Now()
	want, err := d.demand(ctx, wl)
	if err != nil {
		// The flavor is not a node profile, or the admission is odd:
		// nothing to count it against until it changes.
		d.wait(ctx, u, req.NamespacedName, err.Error())
		decisions.WithLabelValues(NoClusterFitsReason).Inc()
		return reconcile.Result{RequeueAfter: d.retry}, nil
	}
	inputs, err := d.world(ctx, mk.clusters, want, u)
	if err != nil {
		return reconcile.Result{}, err
	}
	dec := decide(want, inputs)
	decisionSeconds.Observe(d.clock.Since(started).Seconds())
	switch {
	case dec.Cluster != "":
		return reconcile.Result{}, d.nominate(ctx, u, wl, want, dec)
	case dec.NeverFits:
		return reconcile.Result{}, d.neverFits(ctx, u, dec)
	}
	d.wait(ctx, u, req.NamespacedName, dec.Message)
	decisions.WithLabelValues(NoClusterFitsReason).Inc()
	return reconcile.Result{RequeueAfter: d.retry}, nil
}

// needsCluster says whether the workload waits for the dispatcher: quota
// reserved on the hub, active, not finished, its MultiKueue check Pending,
// and no cluster assigned or nominated (Kueue clears both when it evicts
// the workload, which then comes back here).
func (d *Dispatcher) needsCluster(wl *workload, mk *multiKueue) bool {
	return mk != nil && wl.DeletionTimestamp.IsZero() && wl.active() && wl.quotaReserved() && !wl.finished() &&
		wl.checkState(mk.check) == checkStatePending &&
		wl.Status.ClusterName == nil && len(wl.Status.NominatedClusterNames) == 0
}

// wait records that no cluster fits now, with an event when why changed.
func (d *Dispatcher) wait(ctx context.Context, u *unstructured.Unstructured, key types.NamespacedName, note string) {
	if d.setWaiting(key, note) {
		log.FromContext(ctx).Info("No workload cluster fits the workload now", "why", note)
		d.recorder.Eventf(u, nil, corev1.EventTypeNormal, NoClusterFitsReason, "Dispatch", "%s", truncate(note))
	}
}

// nominate writes the chosen cluster in status.nominatedClusterNames, as
// Kueue's own dispatchers do: a server-side apply of the admission status
// as Kueue's admission field manager (see kueue.AdmissionFieldManager),
// with the resourceVersion read, so a stale read fails with a conflict
// instead of writing an old admission back.
func (d *Dispatcher) nominate(ctx context.Context, u *unstructured.Unstructured, wl *workload, want []podSet, dec decision) error {
	apply := admissionApply(u, dec.Cluster)
	if err := d.hub.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(apply),
		client.FieldOwner(kueue.AdmissionFieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("nominating cluster %s for workload %s/%s: %w", dec.Cluster, u.GetNamespace(), u.GetName(), err)
	}
	now := d.clock.Now()
	d.mu.Lock()
	usage := map[string]corev1.ResourceList{}
	for _, ps := range want {
		addUsage(usage, ps.Profile, ps.PerPod, ps.Count)
	}
	d.sent[u.GetUID()] = nomination{cluster: dec.Cluster, resourceVersion: u.GetResourceVersion(), usage: usage}
	d.recent[dec.Cluster] = append(d.recent[dec.Cluster], now)
	delete(d.waiting, types.NamespacedName{Namespace: u.GetNamespace(), Name: u.GetName()})
	d.mu.Unlock()

	decisions.WithLabelValues(DispatchedReason).Inc()
	if at := wl.quotaReservedAt(); !at.IsZero() {
		latency.Observe(now.Sub(at).Seconds())
	}
	log.FromContext(ctx).Info("Dispatched the workload", "cluster", dec.Cluster, "why", dec.Message)
	d.recorder.Eventf(u, nil, corev1.EventTypeNormal, DispatchedReason, "Dispatch", "%s", truncate(dec.Message))
	return nil
}

// neverFits marks a workload no cluster could ever hold and deactivates it:
// left active, it would hold its queue's quota, which other jobs could use,
// for ever. The annotation says why (kubectl strata jobs shows it); a person
// who adds room sets spec.active back to true, or resubmits the job.
func (d *Dispatcher) neverFits(ctx context.Context, u *unstructured.Unstructured, dec decision) error {
	note := truncate(dec.Message)
	patch := kueue.New(kueue.WorkloadKind, u.GetNamespace(), u.GetName())
	patch.SetAnnotations(map[string]string{kueue.NeverFitsAnnotation: note})
	if err := unstructured.SetNestedField(patch.Object, false, "spec", "active"); err != nil {
		return err
	}
	raw, err := patch.MarshalJSON()
	if err != nil {
		return err
	}
	if err := d.hub.Patch(ctx, u, client.RawPatch(types.MergePatchType, raw)); err != nil {
		return fmt.Errorf("deactivating workload %s/%s, which no cluster can ever hold: %w", u.GetNamespace(), u.GetName(), err)
	}
	d.forget(types.NamespacedName{Namespace: u.GetNamespace(), Name: u.GetName()})
	decisions.WithLabelValues(NeverFitsReason).Inc()
	log.FromContext(ctx).Info("Deactivated a workload no cluster can ever hold", "why", dec.Message)
	d.recorder.Eventf(u, nil, corev1.EventTypeWarning, NeverFitsReason, "Deactivate", "%s", note)
	return nil
}

// admissionApply is the apply configuration of Kueue's admission status
// (Kueue's workload.PrepareWorkloadPatch in v0.17: what its admission field
// manager owns), as the workload holds it, with the nominated cluster: the
// fields left out would be removed.
func admissionApply(u *unstructured.Unstructured, cluster string) *unstructured.Unstructured {
	status, _, _ := unstructured.NestedMap(u.Object, "status")
	out := map[string]any{}
	for _, f := range []string{"admission", "accumulatedPastExecutionTimeSeconds", "clusterName", "unhealthyNodes", "preemptionGates", "admissionChecks"} {
		if v, ok := status[f]; ok {
			out[f] = v
		}
	}
	if rq, ok := status["requeueState"].(map[string]any); ok && (rq["count"] != nil || rq["requeueAt"] != nil) {
		out["requeueState"] = rq
	}
	if status["admission"] != nil {
		out["resourceRequests"] = []any{}
	} else if rr, ok := status["resourceRequests"]; ok {
		out["resourceRequests"] = rr
	}
	var conditions []any
	all, _ := status["conditions"].([]any)
	for _, c := range all {
		if m, ok := c.(map[string]any); ok && slices.Contains(admissionConditions, fmt.Sprint(m["type"])) {
			conditions = append(conditions, m)
		}
	}
	if conditions != nil {
		out["conditions"] = conditions
	}
	if ss, ok := status["schedulingStats"].(map[string]any); ok {
		if ev, ok := ss["evictions"]; ok {
			out["schedulingStats"] = map[string]any{"evictions": ev}
		}
	}
	out["nominatedClusterNames"] = []any{cluster}

	apply := kueue.New(kueue.WorkloadKind, u.GetNamespace(), u.GetName())
	apply.SetUID(u.GetUID())
	apply.SetResourceVersion(u.GetResourceVersion())
	apply.Object["status"] = out
	return apply
}

// admissionConditions are the conditions Kueue's admission field manager
// writes (admissionManagedConditions in Kueue's pkg/workload).
var admissionConditions = []string{
	"QuotaReserved", "BlockedOnPreemptionGates", "Evicted", "Admitted", "Preempted", "Requeued", "DeactivationTarget", "Finished",
}

// truncate keeps a note within what an event holds (1 kB).
func truncate(s string) string {
	const limit = 1000
	if len(s) <= limit {
		return s
	}
	return s[:limit-3] + "..."
}

// recentDispatches counts the dispatches to a cluster in the last
// recentWindow, dropping older ones.
func (d *Dispatcher) recentDispatches(cluster string, now time.Time) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	times := d.recent[cluster]
	i := 0
	for i < len(times) && now.Sub(times[i]) > recentWindow {
		i++
	}
	d.recent[cluster] = times[i:]
	return len(times) - i
}
