// Package statefulapp runs the StatefulApp controller of a workload
// cluster. A StatefulApp's pods hold different shards of a data system, so
// Strata makes them itself (pods <name>-<i>, each with its PVC
// data-<name>-<i> on local storage, no StatefulSet) and stops none of them
// without the approval of the app's own shard manager, asked through the
// shard-manager protocol (strata.shardmanager.v1): RESTART for an update,
// EVICT when the pod's Node is cordoned or someone asks, MOVE when its
// data's Node is gone, REMOVE for a scale-down.
//
// Each pass reads the app, its pods, PVCs, volumes and Nodes afresh,
// decides with the pure MakePlan what each pod needs next, does it, and
// writes the status (Status). The operation pending on a pod is recorded on
// its PVC, so a restarted controller asks again for the same operation by
// the same id.
//
// The manager it runs in needs a scheme with client-go's types and
// apps.strata.dev/v1alpha1, and should use appcache.Options.
package statefulapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/conflicts"
	"github.com/strata-dev/strata/internal/workload/appstatus"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// FieldOwner is the field manager of everything the controller writes.
const FieldOwner = client.FieldOwner("strata-statefulapp")

// Event reasons.
const (
	OperationRequestedEvent  = "OperationRequested"
	OperationApprovedEvent   = "OperationApproved"
	OperationDeniedEvent     = "OperationDenied"
	OperationCompletedEvent  = "OperationCompleted"
	OperationCancelledEvent  = "OperationCancelled"
	ShardManagerUnreachEvent = "ShardManagerUnreachable"
)

// Timing.
const (
	// unsettledInterval: an app that is not Ready or has operations is
	// looked at again this often even without an event.
	unsettledInterval = 30 * time.Second
	// conflictRetry: a write that lost to a newer version of the object
	// (the cache lagged behind) is retried this soon.
	conflictRetry = time.Second
	// The waits before asking again: after no answer, after a DENIED (the
	// shard manager's hint when longer), after a RETRY_AFTER without one.
	unreachableBackoff, unreachableBackoffMax = 2 * time.Second, time.Minute
	deniedBackoff, deniedBackoffMax           = 5 * time.Second, 5 * time.Minute
	defaultRetryAfter                         = 5 * time.Second
	// minRetryAfter is the least wait a RETRY_AFTER buys: a shard manager
	// that knows when it will be ready (its leaders handed over, its
	// replicas caught up) says so, in less than a second if it is.
	minRetryAfter = 200 * time.Millisecond
)

// Options are the Reconciler's dependencies.
type Options struct {
	Client client.Client
	// APIReader reads what must be current rather than cached: the record
	// of an operation just before Strata acts on its approval, and the CA
	// Secret an app names (which must not come from a cache: the manager
	// caches only Secrets' metadata). Defaults to Client.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// ShardManagers defaults to NewConnections(), closed when the manager
	// stops.
	ShardManagers ShardManagers
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// Cluster names the workload cluster when one process runs a
	// controller for each of several: controller names must be unique in
	// a process. Empty: the controller is named statefulapp.
	Cluster string
}

// Reconciler runs StatefulApps.
type Reconciler struct {
	client   client.Client
	reader   client.Reader
	recorder events.EventRecorder
	sms      ShardManagers
	clock    clock.PassiveClock
	name     string
	// owned is the ShardManagers the Reconciler made, closed with the manager.
	owned *Connections

	mu sync.Mutex
	// retries: when to ask the shard manager again about an operation, by
	// id. Lost on restart, which only makes Strata ask sooner.
	retries map[string]retry
	// cas: the CA each app's shard manager is verified with, as last read
	// from its Secret (by the Secret's resourceVersion).
	cas map[types.NamespacedName]caEntry
	// targets: the key of the target each app was last dialled with.
	targets map[types.NamespacedName]string
	// heard: the operations whose approval this process received. An
	// approval recorded on a PVC by an earlier process (strata restarted)
	// is asked for again, same id and deadline, before anything is
	// stopped: the shard manager may have restarted too and forgotten it.
	heard map[string]bool
}

type retry struct {
	next time.Time
	// failures counts the answers of the same kind in a row.
	failures int
	outcome  string
}

// New validates the options and returns a Reconciler.
func New(o Options) (*Reconciler, error) {
	switch {
	case o.Client == nil:
		return nil, errors.New("statefulapp controller: a client is required")
	case o.Recorder == nil:
		return nil, errors.New("statefulapp controller: an event recorder is required")
	}
	r := &Reconciler{client: o.Client, reader: o.APIReader, recorder: o.Recorder, sms: o.ShardManagers, clock: o.Clock,
		name: "statefulapp", retries: map[string]retry{}, heard: map[string]bool{}, cas: map[types.NamespacedName]caEntry{},
		targets: map[types.NamespacedName]string{}}
	if r.reader == nil {
		r.reader = o.Client
	}
	if r.clock == nil {
		r.clock = clock.RealClock{}
	}
	if r.sms == nil {
		r.owned = NewConnections()
		r.sms = r.owned
	}
	if o.Cluster != "" {
		r.name += "-" + o.Cluster
	}
	return r, nil
}

// SetupWithManager registers the controller: it watches StatefulApps, their
// pods and PVCs, the Nodes (cordons, Nodes that go), the volumes, the
// AppPlatform, the namespaces' labels and the metadata of Secrets (a CA
// Secret that changes is read again and the shard manager re-dialled).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.owned != nil {
		if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
			<-ctx.Done()
			return r.owned.Close()
		})); err != nil {
			return err
		}
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&appsv1alpha1.StatefulApp{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.Pod{}).
		Owns(&corev1.PersistentVolumeClaim{}).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.allApps), builder.WithPredicates(nodeChanged())).
		Watches(&corev1.PersistentVolume{}, handler.EnqueueRequestsFromMapFunc(r.appOfVolume)).
		Watches(&appsv1alpha1.AppPlatform{}, handler.EnqueueRequestsFromMapFunc(r.allApps)).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.appsInNamespace),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.appsOfSecret),
			builder.WithPredicates(predicate.ResourceVersionChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named(r.name).
		Complete(conflicts.Requeue(r))
}

// Reconcile runs one pass over one StatefulApp.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	app := &appsv1alpha1.StatefulApp{}
	if err := r.client.Get(ctx, req.NamespacedName, app); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.Namespace + "/" + req.Name + "/")
			r.forgetApp(req.NamespacedName)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !app.DeletionTimestamp.IsZero() {
		// The garbage collector deletes the pods and PVCs.
		return reconcile.Result{}, nil
	}
	ctx = log.IntoContext(ctx, log.FromContext(ctx).WithValues("statefulApp", klog.KObj(app)))

	w, err := r.observe(ctx, app)
	if err != nil {
		return reconcile.Result{}, err
	}
	plan := MakePlan(w)
	target, transport, err := r.target(ctx, app)
	var terr *TargetError
	if err != nil && !errors.As(err, &terr) {
		return reconcile.Result{}, err
	}
	if r.retarget(req.NamespacedName, target) {
		// A rotated CA, another endpoint: ask at once rather than after
		// the backoff the old target earned.
		r.forgetRetries(req.Namespace + "/" + req.Name + "/")
	}
	p := &pass{app: app, now: w.Now, target: target, reach: Reachability{Endpoint: target.Endpoint, Transport: transport, CA: caOf(target)}}
	if terr != nil {
		// Nothing is dialled, in plaintext least of all: every operation
		// waits, as when the shard manager does not answer.
		p.unreachable, p.reach.Err, p.reach.Reason = true, terr, terr.Reason
	}
	execErr := r.execute(ctx, plan, p)

	status := Status(app, plan, p.reach, r.clock.Now())
	before := app.Status
	if err := r.writeStatus(ctx, app, status); err != nil {
		return reconcile.Result{}, errors.Join(execErr, err)
	}
	r.recordEvents(app, before, status)
	if execErr != nil {
		return reconcile.Result{}, execErr
	}
	return p.result(plan, status), nil
}

// observe reads the app's world.
func (r *Reconciler) observe(ctx context.Context, app *appsv1alpha1.StatefulApp) (World, error) {
	w := World{App: app, Namespace: &corev1.Namespace{}, Volumes: map[string]*corev1.PersistentVolume{},
		Nodes: map[string]*corev1.Node{}, Now: r.clock.Now()}
	if err := r.client.Get(ctx, client.ObjectKey{Name: app.Namespace}, w.Namespace); err != nil {
		return w, fmt.Errorf("reading namespace %s: %w", app.Namespace, err)
	}
	platform := &appsv1alpha1.AppPlatform{}
	switch err := r.client.Get(ctx, client.ObjectKey{Name: appsv1alpha1.PlatformName}, platform); {
	case err == nil:
		w.Platform = &platform.Spec
	case !apierrors.IsNotFound(err):
		return w, fmt.Errorf("reading the AppPlatform: %w", err)
	}
	pods := &corev1.PodList{}
	if err := r.client.List(ctx, pods, client.InNamespace(app.Namespace), client.MatchingLabels(Selector(app.Name))); err != nil {
		return w, fmt.Errorf("listing the pods: %w", err)
	}
	claims := &corev1.PersistentVolumeClaimList{}
	if err := r.client.List(ctx, claims, client.InNamespace(app.Namespace), client.MatchingLabels(Selector(app.Name))); err != nil {
		return w, fmt.Errorf("listing the PVCs: %w", err)
	}
	w.Pods, w.Claims = pods.Items, claims.Items

	var nodes []string
	for i := range w.Pods {
		nodes = append(nodes, w.Pods[i].Spec.NodeName)
	}
	for i := range w.Claims {
		name := w.Claims[i].Spec.VolumeName
		if name == "" {
			continue
		}
		pv := &corev1.PersistentVolume{}
		switch err := r.client.Get(ctx, client.ObjectKey{Name: name}, pv); {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return w, fmt.Errorf("reading volume %s: %w", name, err)
		}
		w.Volumes[name] = pv
		nodes = append(nodes, volumeNode(pv))
	}
	for _, name := range nodes {
		if _, seen := w.Nodes[name]; name == "" || seen {
			continue
		}
		node, err := r.node(ctx, name)
		if err != nil {
			return w, err
		}
		if node != nil {
			w.Nodes[name] = node
		}
	}
	return w, nil
}

// node reads a Node by name, or by its hostname label (the name local
// volumes know it by); nil when there is none.
func (r *Reconciler) node(ctx context.Context, name string) (*corev1.Node, error) {
	node := &corev1.Node{}
	err := r.client.Get(ctx, client.ObjectKey{Name: name}, node)
	switch {
	case err == nil:
		return node, nil
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading node %s: %w", name, err)
	}
	nodes := &corev1.NodeList{}
	if err := r.client.List(ctx, nodes, client.MatchingLabels{hostnameLabel: name}); err != nil {
		return nil, fmt.Errorf("listing the node of hostname %s: %w", name, err)
	}
	if len(nodes.Items) == 0 {
		return nil, nil
	}
	return &nodes.Items[0], nil
}

// pass is what one Reconcile learns while it acts. Pods' steps run
// concurrently: what they learn is written under mu.
type pass struct {
	app *appsv1alpha1.StatefulApp
	now time.Time
	// target is how the shard manager is dialled.
	target Target

	mu    sync.Mutex
	reach Reachability
	// unreachable: a call got no answer; no other call starts this pass.
	unreachable bool
	// retryAt is the earliest time an operation may be asked about again.
	retryAt time.Time
	// conflict: a write lost to a newer version of the object.
	conflict bool
}

// noAnswer notes a call that got no answer: no other call starts this
// pass.
func (p *pass) noAnswer(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unreachable, p.reach.Err, p.reach.Reason = true, callError(err), appsv1alpha1.ShardManagerUnreachableReason
	var hs *HandshakeError
	if errors.As(err, &hs) {
		p.reach.Reason = appsv1alpha1.ShardManagerTLSHandshakeFailedReason
	}
}

// caOf is where the target's CA comes from; empty in plaintext.
func caOf(t Target) string {
	if t.TLS == nil {
		return ""
	}
	return t.TLS.Source
}

// answered notes a call that got an answer; a call of the same pass that
// got none (calls run concurrently) still decides the reachability.
func (p *pass) answered() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.unreachable {
		p.reach.Answered, p.reach.Err, p.reach.Reason = true, nil, ""
	}
}

// isUnreachable: a call of this pass got no answer.
func (p *pass) isUnreachable() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unreachable
}

// lostWrite notes a write that lost to a newer version of the object.
func (p *pass) lostWrite() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conflict = true
}

func (p *pass) retryAfter(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.retryAt.IsZero() || t.Before(p.retryAt) {
		p.retryAt = t
	}
}

// result looks again when an operation may be asked about again, when an
// approval's deadline comes, and now and then while the app is unsettled.
func (p *pass) result(plan Plan, status appsv1alpha1.StatefulAppStatus) reconcile.Result {
	after := time.Duration(0)
	soonest := func(d time.Duration) {
		if d > 0 && (after == 0 || d < after) {
			after = d
		}
	}
	if p.conflict {
		soonest(conflictRetry)
	}
	if !p.retryAt.IsZero() {
		soonest(max(p.retryAt.Sub(p.now), 100*time.Millisecond))
	}
	soonest(plan.Recheck)
	if !meta.IsStatusConditionTrue(status.Conditions, appsv1alpha1.StatefulAppReadyCondition) ||
		meta.IsStatusConditionTrue(status.Conditions, appsv1alpha1.StatefulAppProgressingCondition) {
		soonest(unsettledInterval)
	}
	return reconcile.Result{RequeueAfter: after}
}

// parallelPods is how many pods' steps a pass takes at once. Each pod's
// steps touch only its own pod and PVC, and the shard manager decides each
// request on its own against every approval it gave, so pods are
// independent; with many operations under way (maxConcurrentOperations
// above 1) a pass would otherwise wait on one API write after another.
const parallelPods = 8

// execute takes each pod's next steps, in order, until one fails; pods
// concurrently.
func (r *Reconciler) execute(ctx context.Context, plan Plan, p *pass) error {
	errs := make([]error, len(plan.Pods))
	sem := make(chan struct{}, parallelPods)
	var wg sync.WaitGroup
	for i, pp := range plan.Pods {
		if len(pp.Actions) == 0 {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, a := range pp.Actions {
				err := r.act(ctx, pp, a, p)
				if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
					// The cache lagged behind a write: the next pass sees it.
					p.lostWrite()
					return
				}
				if err != nil {
					errs[i] = fmt.Errorf("pod %s: %s: %w", pp.Name, a.Type, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *Reconciler) act(ctx context.Context, pp *PodPlan, a Action, p *pass) error {
	logger := log.FromContext(ctx).WithValues("pod", pp.Name)
	switch a.Type {
	case CreateClaim, CreatePod:
		if err := r.client.Create(ctx, a.Object, FieldOwner); err != nil {
			return err
		}
		if claim, ok := a.Object.(*corev1.PersistentVolumeClaim); ok {
			pp.Claim = claim
			logger.Info("Created the pod's PVC", "pvc", claim.Name)
			return nil
		}
		logger.Info("Created the pod", "version", a.Object.GetLabels()[appsv1alpha1.AppVersionLabel])
		return nil
	case Request:
		return r.request(ctx, pp, a, p)
	case StopPod:
		return r.stopPod(ctx, pp, a.Record, p)
	case ApproveEviction:
		return r.approveEviction(ctx, pp, a.Record, p)
	case ClearApproval:
		patch := map[string]any{"metadata": map[string]any{"annotations": map[string]any{appsv1alpha1.StopApprovedAnnotation: nil}}}
		return client.IgnoreNotFound(r.patch(ctx, pp.Pod.DeepCopy(), patch))
	case Mark:
		return r.writeRecord(ctx, pp, a.Record, 0)
	case Complete, Cancel:
		return r.finish(ctx, pp, a, p)
	}
	return fmt.Errorf("unknown action %q", a.Type)
}

// request records the operation (when new or changed), asks the shard
// manager for it, and records the answer.
func (r *Reconciler) request(ctx context.Context, pp *PodPlan, a Action, p *pass) error {
	rec := a.Record
	if next, due := r.due(rec.ID, p.now); !due {
		p.retryAfter(next)
		return nil
	}
	if err := r.writeRecord(ctx, pp, rec, a.Count); err != nil {
		return err
	}
	if a.Count > 0 {
		r.event(p.app, pp.Pod, corev1.EventTypeNormal, OperationRequestedEvent, "Request",
			"Asked the shard manager for %s of pod %s (%s), operation %s", rec.Kind, pp.Name, rec.Reason, rec.ID)
	}
	if p.isUnreachable() {
		return nil
	}
	sm, err := r.sms.Client(client.ObjectKeyFromObject(p.app), p.target)
	var resp *shardmanagerv1.RequestOperationResponse
	if err == nil {
		callCtx, cancel := context.WithTimeout(ctx, callTimeout(p.app))
		resp, err = sm.RequestOperation(callCtx, &shardmanagerv1.RequestOperationRequest{Operation: operation(p.app, pp, rec)})
		cancel()
	}
	next := r.answer(p, rec, resp, err)
	if next.State == appsv1alpha1.OperationDenied && (rec.State != appsv1alpha1.OperationDenied || rec.Message != next.Message) {
		r.event(p.app, pp.Pod, corev1.EventTypeWarning, OperationDeniedEvent, "Request",
			"The shard manager denied %s of pod %s (operation %s): %s", rec.Kind, pp.Name, rec.ID, next.Message)
	}
	if next.State == appsv1alpha1.OperationApproved {
		log.FromContext(ctx).Info("The shard manager approved an operation", "pod", pp.Name, "operation", rec.ID, "kind", rec.Kind,
			"deadline", rec.Deadline)
		r.event(p.app, pp.Pod, corev1.EventTypeNormal, OperationApprovedEvent, "Request",
			"The shard manager approved %s of pod %s until %s (operation %s)", rec.Kind, pp.Name, rec.Deadline.Format(time.RFC3339), rec.ID)
	}
	if err := r.writeRecord(ctx, pp, next, 0); err != nil {
		return err
	}
	if next.State != appsv1alpha1.OperationApproved || !stoppable(pp.Pod, next) {
		return nil
	}
	// Act on the approval in this pass, as the next one would (after the
	// same check against the API server), rather than a pass later.
	if next.Kind == KindEvict {
		return r.approveEviction(ctx, pp, next, p)
	}
	return r.stopPod(ctx, pp, next, p)
}

// stoppable: the pod is the one the operation stops and still runs.
func stoppable(pod *corev1.Pod, rec *Record) bool {
	if pod == nil || pod.DeletionTimestamp != nil {
		return false
	}
	return (rec.Kind != KindRestart && rec.Kind != KindEvict) || (rec.PodUID != "" && pod.UID == rec.PodUID)
}

// answer is the record after the shard manager's answer (or none), and
// when to ask again.
func (r *Reconciler) answer(p *pass, rec *Record, resp *shardmanagerv1.RequestOperationResponse, err error) *Record {
	now := stamp(p.now)
	if err != nil {
		p.noAnswer(err)
		r.backoff(rec.ID, p, "unreachable", func(failures int) time.Duration { return exp(unreachableBackoff, failures, unreachableBackoffMax) })
		return rec.withState(appsv1alpha1.OperationRequested, fmt.Sprintf("no answer from the shard manager: %v", callError(err)), now)
	}
	p.answered()
	// The app's owner runs the shard manager: its reason goes into the
	// PVC's annotation (bounded by the API server) and its hints are
	// bounded by Strata's backoffs, so an answer cannot stall the record.
	reason := truncate(resp.GetReason())
	hint := resp.GetRetryAfter().AsDuration()
	switch resp.GetDecision() {
	case shardmanagerv1.Decision_DECISION_APPROVED:
		r.forgetOperation(rec.ID)
		r.hear(rec.ID)
		msg := "approved until " + rec.Deadline.Format(time.RFC3339)
		if reason != "" {
			msg += ": " + reason
		}
		if rec.Kind == KindEvict {
			msg += "; the pod may be evicted: waiting for the drain of its Node (or kubectl drain) to evict it"
		}
		return rec.withState(appsv1alpha1.OperationApproved, msg, now)
	case shardmanagerv1.Decision_DECISION_RETRY_AFTER:
		wait := hint
		if wait <= 0 {
			wait = defaultRetryAfter
		}
		wait = min(max(wait, minRetryAfter), deniedBackoffMax)
		r.backoff(rec.ID, p, "retry", func(int) time.Duration { return wait })
		return rec.withState(appsv1alpha1.OperationRetryAfter, fmt.Sprintf("retry after %s: %s", wait, reason), now)
	case shardmanagerv1.Decision_DECISION_DENIED:
		r.backoff(rec.ID, p, "denied", func(failures int) time.Duration {
			return min(max(hint, exp(deniedBackoff, failures, deniedBackoffMax)), deniedBackoffMax)
		})
		return rec.withState(appsv1alpha1.OperationDenied, "denied: "+reason, now)
	}
	r.backoff(rec.ID, p, "denied", func(failures int) time.Duration { return exp(deniedBackoff, failures, deniedBackoffMax) })
	return rec.withState(appsv1alpha1.OperationDenied, fmt.Sprintf("the shard manager answered no decision (%v): %s", resp.GetDecision(), reason), now)
}

// stopPod deletes the pod of an approved RESTART, MOVE or REMOVE.
func (r *Reconciler) stopPod(ctx context.Context, pp *PodPlan, rec *Record, p *pass) error {
	if !r.wasHeard(rec.ID) {
		return r.request(ctx, pp, Action{Type: Request, Record: rec}, p)
	}
	if ok, err := r.stillApproved(ctx, pp, rec, p); !ok || err != nil {
		return err
	}
	uid := pp.Pod.UID
	err := r.client.Delete(ctx, pp.Pod, client.Preconditions{UID: &uid})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("deleting the pod: %w", err)
	default:
		log.FromContext(ctx).Info("Deleted a pod for its approved operation", "pod", pp.Name, "operation", rec.ID, "kind", rec.Kind)
	}
	return r.writeRecord(ctx, pp, rec.withState(appsv1alpha1.OperationStopping, "deleted the pod", stamp(p.now)), 0)
}

// approveEviction lets the drain evict the pod of an approved EVICT.
func (r *Reconciler) approveEviction(ctx context.Context, pp *PodPlan, rec *Record, p *pass) error {
	if !r.wasHeard(rec.ID) {
		return r.request(ctx, pp, Action{Type: Request, Record: rec}, p)
	}
	if ok, err := r.stillApproved(ctx, pp, rec, p); !ok || err != nil {
		return err
	}
	patch := map[string]any{"metadata": map[string]any{
		"uid":         string(pp.Pod.UID),
		"annotations": map[string]any{appsv1alpha1.StopApprovedAnnotation: rec.approval()},
	}}
	if err := r.patch(ctx, pp.Pod.DeepCopy(), patch); err != nil {
		return client.IgnoreNotFound(err)
	}
	log.FromContext(ctx).Info("Approved the eviction of a pod", "pod", pp.Name, "operation", rec.ID, "until", rec.Deadline)
	return nil
}

// stillApproved reads the PVC from the API server, not the cache, and says
// whether it still records the approval, unexpired now (not at the start
// of the pass: calls to a slow shard manager may have taken a while). Nothing is stopped
// on the word of a cache that may lag behind a cancellation.
func (r *Reconciler) stillApproved(ctx context.Context, pp *PodPlan, rec *Record, p *pass) (bool, error) {
	fresh := &corev1.PersistentVolumeClaim{}
	if err := r.reader.Get(ctx, client.ObjectKeyFromObject(pp.Claim), fresh); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	cur, err := readRecord(fresh)
	if err != nil || cur == nil || cur.ID != rec.ID || cur.State != appsv1alpha1.OperationApproved ||
		!cur.Deadline.Equal(rec.Deadline) || !r.clock.Now().Before(cur.Deadline.Add(-stopMargin)) || fresh.DeletionTimestamp != nil {
		p.lostWrite()
		return false, nil
	}
	pp.Claim = fresh
	return true, nil
}

// finish completes or cancels the operation with the shard manager, then
// clears the record (or deletes the PVC, for a completed MOVE or REMOVE).
func (r *Reconciler) finish(ctx context.Context, pp *PodPlan, a Action, p *pass) error {
	rec := a.Record
	if next, due := r.due(rec.ID, p.now); !due {
		p.retryAfter(next)
		return nil
	}
	if p.isUnreachable() {
		return nil
	}
	if a.Type == Cancel && pp.Pod != nil {
		// Cancel is for a pod that was not stopped: a cache behind the
		// drain's eviction (or Strata's own delete) must not withdraw an
		// operation whose pod is already going. The next pass sees it and
		// completes the operation instead.
		fresh := &corev1.Pod{}
		err := r.reader.Get(ctx, client.ObjectKeyFromObject(pp.Pod), fresh)
		if client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("reading pod %s before cancelling its operation: %w", pp.Name, err)
		}
		if err != nil || fresh.UID != pp.Pod.UID || fresh.DeletionTimestamp != nil {
			p.lostWrite()
			return nil
		}
	}
	sm, err := r.sms.Client(client.ObjectKeyFromObject(p.app), p.target)
	if err == nil {
		callCtx, cancel := context.WithTimeout(ctx, callTimeout(p.app))
		if a.Type == Complete {
			_, err = sm.CompleteOperation(callCtx, &shardmanagerv1.CompleteOperationRequest{OperationId: rec.ID})
		} else {
			_, err = sm.CancelOperation(callCtx, &shardmanagerv1.CancelOperationRequest{OperationId: rec.ID})
		}
		cancel()
	}
	if err != nil {
		p.noAnswer(err)
		r.backoff(rec.ID, p, "unreachable", func(failures int) time.Duration { return exp(unreachableBackoff, failures, unreachableBackoffMax) })
		state, what := appsv1alpha1.OperationCompleting, "complete"
		if a.Type == Cancel {
			state, what = rec.State, "cancel"
		}
		return r.writeRecord(ctx, pp, rec.withState(state, fmt.Sprintf("%s it (%s): no answer from the shard manager: %v", what, a.Why, callError(err)), stamp(p.now)), 0)
	}
	p.answered()
	r.forgetOperation(rec.ID)
	r.unhear(rec.ID)
	// The pod's shards are whole again (or will be, once it caught up):
	// the operations that wait for them are asked about again at once,
	// not after the wait a DENIED earned while this one was under way.
	r.forgetRetries(p.app.Namespace + "/" + p.app.Name + "/")
	p.retryAfter(p.now)
	reason, verb := OperationCompletedEvent, "Completed"
	if a.Type == Cancel {
		reason, verb = OperationCancelledEvent, "Cancelled"
	}
	log.FromContext(ctx).Info(verb+" an operation", "pod", pp.Name, "operation", rec.ID, "kind", rec.Kind, "why", a.Why)
	r.event(p.app, pp.Pod, corev1.EventTypeNormal, reason, string(a.Type), "%s %s of pod %s (operation %s): %s", verb, rec.Kind, pp.Name, rec.ID, a.Why)
	if a.DeleteClaim {
		uid := pp.Claim.UID
		if err := r.client.Delete(ctx, pp.Claim, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting PVC %s: %w", pp.Claim.Name, err)
		}
		log.FromContext(ctx).Info("Deleted the pod's data", "pvc", klog.KObj(pp.Claim), "operation", rec.ID)
		pp.Record = nil
		return nil
	}
	return r.writeRecord(ctx, pp, nil, 0)
}

// writeRecord records rec (nil: none) on the pod's PVC, unless it is
// recorded already; count, when not zero, is the PVC's new operation
// count. The write is conditional on the PVC's version: a cache that lags
// behind makes it fail rather than overwrite a newer record.
func (r *Reconciler) writeRecord(ctx context.Context, pp *PodPlan, rec *Record, count int) error {
	if count == 0 && ((rec == nil && pp.Record == nil) || (rec != nil && pp.Record != nil && rec.encode() == pp.Record.encode())) {
		return nil
	}
	annotations := map[string]any{appsv1alpha1.OperationAnnotation: nil}
	if rec != nil {
		annotations[appsv1alpha1.OperationAnnotation] = rec.encode()
	}
	if count > 0 {
		annotations[OperationCountAnnotation] = strconv.Itoa(count)
	}
	claim := pp.Claim.DeepCopy()
	patch := map[string]any{"metadata": map[string]any{"resourceVersion": claim.ResourceVersion, "annotations": annotations}}
	if err := r.patch(ctx, claim, patch); err != nil {
		return fmt.Errorf("recording the operation on PVC %s: %w", claim.Name, err)
	}
	pp.Claim, pp.Record = claim, rec
	return nil
}

// patch applies a JSON merge patch to obj, which gets the result.
func (r *Reconciler) patch(ctx context.Context, obj client.Object, patch map[string]any) error {
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	return r.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, body), FieldOwner)
}

// due says whether the shard manager may be asked about an operation now,
// and if not, when.
func (r *Reconciler) due(id string, now time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := r.retries[id].next
	return next, !now.Before(next)
}

// backoff sets when to ask about an operation again after an outcome
// (unreachable, denied, retry), from how many times in a row it came.
func (r *Reconciler) backoff(id string, p *pass, outcome string, wait func(failures int) time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rt := r.retries[id]
	if rt.outcome != outcome {
		rt.outcome, rt.failures = outcome, 0
	}
	rt.failures++
	rt.next = p.now.Add(wait(rt.failures))
	r.retries[id] = rt
	p.retryAfter(rt.next)
}

// forgetOperation drops the retries of an operation.
func (r *Reconciler) forgetOperation(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.retries, id)
}

// forget drops the retries of the operations whose id starts with prefix
// (<namespace>/<app>/: those of an app that is gone).
func (r *Reconciler) forget(prefix string) {
	r.forgetRetries(prefix)
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.heard {
		if strings.HasPrefix(id, prefix) {
			delete(r.heard, id)
		}
	}
}

// forgetApp drops what is kept of an app that is gone: its CA and its
// connection to the shard manager.
func (r *Reconciler) forgetApp(app types.NamespacedName) {
	r.mu.Lock()
	delete(r.cas, app)
	delete(r.targets, app)
	r.mu.Unlock()
	r.sms.Forget(app)
}

// retarget records the app's target and says whether it changed since the
// last pass (not on the first).
func (r *Reconciler) retarget(app types.NamespacedName, t Target) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, seen := r.targets[app]
	r.targets[app] = t.key()
	return seen && old != t.key()
}

// forgetRetries drops the waits before asking again of the operations
// whose id starts with prefix (<namespace>/<app>/).
func (r *Reconciler) forgetRetries(prefix string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.retries {
		if strings.HasPrefix(id, prefix) {
			delete(r.retries, id)
		}
	}
}

// hear remembers that this process received the approval of an operation.
func (r *Reconciler) hear(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heard[id] = true
}

// wasHeard says whether this process received the operation's approval.
func (r *Reconciler) wasHeard(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.heard[id]
}

// unhear forgets a finished operation's approval.
func (r *Reconciler) unhear(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.heard, id)
}

// exp is base doubled for each failure after the first, at most limit.
func exp(base time.Duration, failures int, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

func callTimeout(app *appsv1alpha1.StatefulApp) time.Duration {
	return time.Duration(orDefault(app.Spec.ShardManager.CallTimeoutSeconds, defaultCallTimeoutSeconds)) * time.Second
}

// callError says what went wrong with a call in a line.
func callError(err error) error {
	if s, ok := status.FromError(err); ok {
		return fmt.Errorf("%s: %s", s.Code(), s.Message())
	}
	return err
}

// operation is the protocol's view of a recorded operation.
func operation(app *appsv1alpha1.StatefulApp, pp *PodPlan, rec *Record) *shardmanagerv1.Operation {
	node := rec.Node
	if pp.Pod != nil && pp.Pod.Spec.NodeName != "" {
		node = pp.Pod.Spec.NodeName
	}
	return &shardmanagerv1.Operation{
		OperationId: rec.ID, Namespace: app.Namespace, App: app.Name, Pod: pp.Name, Node: node,
		Kind: kindProto(rec.Kind), Reason: rec.Reason, Deadline: timestamppb.New(rec.Deadline),
	}
}

// writeStatus writes the status when it changed, with server-side apply.
func (r *Reconciler) writeStatus(ctx context.Context, app *appsv1alpha1.StatefulApp, status appsv1alpha1.StatefulAppStatus) error {
	if equality.Semantic.DeepEqual(app.Status, status) {
		return nil
	}
	return appstatus.Apply(ctx, r.client, app, "StatefulApp", &status, FieldOwner)
}

// recordEvents tells when the shard manager becomes unreachable.
func (r *Reconciler) recordEvents(app *appsv1alpha1.StatefulApp, before, after appsv1alpha1.StatefulAppStatus) {
	was := meta.FindStatusCondition(before.Conditions, appsv1alpha1.ShardManagerReachableCondition)
	now := meta.FindStatusCondition(after.Conditions, appsv1alpha1.ShardManagerReachableCondition)
	if now != nil && now.Status == metav1.ConditionFalse && (was == nil || was.Status != now.Status) {
		r.event(app, nil, corev1.EventTypeWarning, ShardManagerUnreachEvent, "Request", "%s", now.Message)
	}
}

// event records an event about the app, related to the pod when there is one.
func (r *Reconciler) event(app *appsv1alpha1.StatefulApp, pod *corev1.Pod, typ, reason, action, note string, args ...any) {
	var related runtime.Object
	if pod != nil {
		related = pod
	}
	r.recorder.Eventf(app, related, typ, reason, action, note, args...)
}

// nodeChanged lets through the Node events that matter to StatefulApps:
// a Node that comes or goes, is cordoned or uncordoned.
func nodeChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*corev1.Node)
			n, ok2 := e.ObjectNew.(*corev1.Node)
			return !ok1 || !ok2 || o.Spec.Unschedulable != n.Spec.Unschedulable ||
				o.Annotations[fleetv1alpha1.CordonedForAnnotation] != n.Annotations[fleetv1alpha1.CordonedForAnnotation]
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// appOfVolume maps a volume to the StatefulApp whose PVC it is bound to.
func (r *Reconciler) appOfVolume(ctx context.Context, obj client.Object) []reconcile.Request {
	pv, ok := obj.(*corev1.PersistentVolume)
	if !ok || pv.Spec.ClaimRef == nil || !strings.HasPrefix(pv.Spec.ClaimRef.Name, claimPrefix) {
		return nil
	}
	claim := &corev1.PersistentVolumeClaim{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: pv.Spec.ClaimRef.Namespace, Name: pv.Spec.ClaimRef.Name}, claim); err != nil {
		return nil
	}
	name := claim.Labels[appsv1alpha1.StatefulAppLabel]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: claim.Namespace, Name: name}}}
}

// allApps maps an object to every StatefulApp.
func (r *Reconciler) allApps(ctx context.Context, _ client.Object) []reconcile.Request {
	return r.listApps(ctx)
}

// appsInNamespace maps a namespace to its StatefulApps.
func (r *Reconciler) appsInNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.listApps(ctx, client.InNamespace(obj.GetName()))
}

func (r *Reconciler) listApps(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	apps := &appsv1alpha1.StatefulAppList{}
	if err := r.client.List(ctx, apps, opts...); err != nil {
		log.FromContext(ctx).Error(err, "Listing StatefulApps")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(apps.Items))
	for i := range apps.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&apps.Items[i])})
	}
	return reqs
}
