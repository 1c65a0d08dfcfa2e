package statefulapp

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// stopMargin: Strata does not start to stop a pod (delete it, or let the
// drain evict it) this close to the deadline of its approval.
const stopMargin = 2 * time.Second

// Defaults of fields the CRD defaults, for objects that did not go through
// the API server (unit tests).
const (
	defaultApprovalSeconds    = 300
	defaultCallTimeoutSeconds = 5
	defaultMaxConcurrent      = 1
)

// World is what an app's plan is made from: the app and what it runs on,
// as observed at one time.
type World struct {
	App *appsv1alpha1.StatefulApp
	// Platform is the cluster's AppPlatform "default", nil when there is
	// none: no pod can be made then.
	Platform  *appsv1alpha1.AppPlatformSpec
	Namespace *corev1.Namespace
	// Pods and Claims are the app's pods and PVCs.
	Pods   []corev1.Pod
	Claims []corev1.PersistentVolumeClaim
	// Volumes are the PersistentVolumes the claims are bound to, by name:
	// a bound claim's volume that is not here does not exist.
	Volumes map[string]*corev1.PersistentVolume
	// Nodes are the Nodes the pods run on and the volumes' node affinity
	// names, by that name: one that is not here does not exist.
	Nodes map[string]*corev1.Node
	Now   time.Time
}

// ActionType is what the controller does for a pod.
type ActionType string

// Actions.
const (
	// CreateClaim creates Action.Object, the pod's PVC.
	CreateClaim ActionType = "CreateClaim"
	// CreatePod creates Action.Object, the pod.
	CreatePod ActionType = "CreatePod"
	// Request writes Action.Record (when it is new or its deadline is new)
	// then asks the shard manager for it, and records the answer.
	Request ActionType = "Request"
	// StopPod deletes the pod that the approved Action.Record stops
	// (RESTART, MOVE, REMOVE), after checking the record once more against
	// the API server, and records Stopping.
	StopPod ActionType = "StopPod"
	// ApproveEviction sets the pod's stop-approved annotation for the
	// approved EVICT Action.Record, after the same check: the drain evicts
	// the pod, Strata does not.
	ApproveEviction ActionType = "ApproveEviction"
	// ClearApproval removes the pod's stop-approved annotation.
	ClearApproval ActionType = "ClearApproval"
	// Mark writes Action.Record, when it changed.
	Mark ActionType = "Mark"
	// Complete tells the shard manager the operation is over, then clears
	// the record, or deletes the PVC with it (DeleteClaim).
	Complete ActionType = "Complete"
	// Cancel withdraws the operation, then clears the record.
	Cancel ActionType = "Cancel"
)

// Action is one step the controller takes for a pod.
type Action struct {
	Type ActionType
	// Record is the operation the action is about, as it should be
	// recorded when the action starts.
	Record *Record
	// Count, for the Request of a new operation, is the PVC's new
	// operation count, written with the record.
	Count int
	// DeleteClaim: Complete deletes the PVC, the pod's data (MOVE, REMOVE).
	DeleteClaim bool
	// Object is what CreateClaim and CreatePod create.
	Object client.Object
	// Why, for Cancel and Complete, in words.
	Why string
}

// Want is an operation a pod needs.
type Want struct {
	Kind   string
	Reason string
}

// PodPlan is one ordinal: its pod and PVC as they are, its operation, and
// what the controller does next.
type PodPlan struct {
	Ordinal int
	Name    string
	// Pod and Claim as observed, nil when absent.
	Pod   *corev1.Pod
	Claim *corev1.PersistentVolumeClaim
	// Record is the operation recorded on the claim; the controller keeps
	// it up to date as it acts. Nil when none.
	Record *Record
	// RecordError: the claim's record cannot be read. Nothing is done to
	// the pod until someone repairs or removes the annotation.
	RecordError error
	// Want is the operation the pod needs now, nil when none.
	Want *Want
	// Queued: Want (a RESTART or REMOVE) waits for one of the app's
	// maxConcurrentOperations.
	Queued bool
	// Note says what holds the pod besides its operation, for the status.
	Note string
	// Actions are the next steps, in order.
	Actions []Action
}

// Plan is what the controller does next for an app.
type Plan struct {
	// Pods by ordinal: those the app wants, and any other that still has a
	// pod or data.
	Pods []*PodPlan
	// PlatformMissing: the cluster has no AppPlatform; no pod is made.
	PlatformMissing bool
	// Recheck, when not zero, is when to look again at the latest (an
	// approval's deadline).
	Recheck time.Duration
}

// MakePlan decides, for each pod of the app, the operation it needs and the
// next step of the operation it has. It is pure: everything it reads is in
// w.
func MakePlan(w World) Plan {
	app := w.App
	pods := map[int]*corev1.Pod{}
	claims := map[int]*corev1.PersistentVolumeClaim{}
	top := int(app.Spec.Replicas)
	for i := range w.Pods {
		if o := ordinalOf(app.Name, w.Pods[i].Name); o >= 0 {
			pods[o], top = &w.Pods[i], max(top, o+1)
		}
	}
	for i := range w.Claims {
		pod, ok := strings.CutPrefix(w.Claims[i].Name, claimPrefix)
		if o := ordinalOf(app.Name, pod); ok && o >= 0 {
			claims[o], top = &w.Claims[i], max(top, o+1)
		}
	}

	pl := &planner{w: w, desired: map[int]*corev1.Pod{}}
	plan := Plan{PlatformMissing: w.Platform == nil}
	active := 0
	for i := range top {
		pp := &PodPlan{Ordinal: i, Name: PodName(app.Name, i), Pod: pods[i], Claim: claims[i]}
		if i >= int(app.Spec.Replicas) && pp.Pod == nil && pp.Claim == nil {
			continue
		}
		// A PVC being deleted is data that goes: its operation is over.
		if pp.Claim != nil && pp.Claim.DeletionTimestamp == nil {
			pp.Record, pp.RecordError = readRecord(pp.Claim)
		}
		if pp.Record != nil || pp.RecordError != nil {
			active++
		}
		pp.Want = pl.want(pp)
		plan.Pods = append(plan.Pods, pp)
	}

	var queue []*PodPlan
	for _, pp := range plan.Pods {
		pl.decide(pp, &queue)
	}
	// Updates (RESTART, REMOVE) start as slots free up, the highest ordinals
	// first; disruptions (EVICT, MOVE) started above as they came.
	slices.SortFunc(queue, func(a, b *PodPlan) int { return cmp.Compare(b.Ordinal, a.Ordinal) })
	slots := int(orDefault(app.Spec.MaxConcurrentOperations, defaultMaxConcurrent)) - active
	for _, pp := range queue {
		if slots <= 0 {
			pp.Queued = true
			continue
		}
		pl.start(pp)
		slots--
	}
	if !pl.recheck.IsZero() {
		plan.Recheck = max(pl.recheck.Sub(w.Now), time.Second)
	}
	return plan
}

type planner struct {
	w       World
	desired map[int]*corev1.Pod
	recheck time.Time
}

func (pl *planner) now() time.Time { return pl.w.Now }

// stamp is a time as records keep it: UTC, whole seconds.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

func (pl *planner) approval() time.Duration {
	return time.Duration(orDefault(pl.w.App.Spec.ShardManager.ApprovalSeconds, defaultApprovalSeconds)) * time.Second
}

func (pl *planner) recheckAt(t time.Time) {
	if pl.recheck.IsZero() || t.Before(pl.recheck) {
		pl.recheck = t
	}
}

// desiredPod is the pod of an ordinal, nil without a platform.
func (pl *planner) desiredPod(ordinal int) *corev1.Pod {
	if pl.w.Platform == nil {
		return nil
	}
	if p, ok := pl.desired[ordinal]; ok {
		return p
	}
	p := DesiredPod(pl.w.App, pl.w.Platform, pl.w.Namespace, ordinal)
	pl.desired[ordinal] = p
	return p
}

// want is the operation a pod needs now, the most pressing first: REMOVE
// (scale-down), MOVE (its data's Node is gone), EVICT (its Node is
// cordoned, or someone asked), RESTART (an update).
func (pl *planner) want(pp *PodPlan) *Want {
	spec := &pl.w.App.Spec
	pod, claim := pp.Pod, pp.Claim
	live := pod != nil && pod.DeletionTimestamp == nil
	claimLive := claim != nil && claim.DeletionTimestamp == nil
	if pp.Ordinal >= int(spec.Replicas) {
		if live || claimLive {
			return &Want{Kind: KindRemove, Reason: fmt.Sprintf("scale-down to %d replicas", spec.Replicas)}
		}
		return nil
	}
	if claimLive {
		if why := pl.dataGone(claim); why != "" {
			return &Want{Kind: KindMove, Reason: why}
		}
	}
	if !live {
		return nil
	}
	if name := pod.Spec.NodeName; name != "" {
		if node := pl.w.Nodes[name]; node != nil && node.Spec.Unschedulable {
			reason := fmt.Sprintf("Node %s is cordoned (not by Strata: kubectl cordon or drain)", name)
			if d := node.Annotations[fleetv1alpha1.CordonedForAnnotation]; d != "" {
				reason = fmt.Sprintf("Node %s is cordoned by Strata for disruption %s", name, d)
			}
			return &Want{Kind: KindEvict, Reason: reason}
		}
	}
	if why, ok := pod.Annotations[appsv1alpha1.StopRequestedAnnotation]; ok {
		reason := "stop requested on the pod"
		if why != "" {
			reason += ": " + why
		}
		return &Want{Kind: KindEvict, Reason: reason}
	}
	version := VersionOf(spec, pp.Ordinal)
	if have := pod.Labels[appsv1alpha1.AppVersionLabel]; have != version {
		what := "rolling update"
		if spec.Canary != nil && version == spec.Canary.Version && version != spec.Version {
			what = "canary"
		}
		return &Want{Kind: KindRestart, Reason: fmt.Sprintf("%s to version %s (from %s)", what, version, have)}
	}
	if desired := pl.desiredPod(pp.Ordinal); desired != nil {
		have := pod.Annotations[TemplateHashAnnotation]
		if have != "" && have != desired.Annotations[TemplateHashAnnotation] {
			return &Want{Kind: KindRestart, Reason: "pod template changed (resources, port, node profile or the platform's containers)"}
		}
	}
	return nil
}

// dataGone says why the data of a bound claim can no longer be reached:
// its volume or the volume's Node is gone. Empty when it can.
func (pl *planner) dataGone(claim *corev1.PersistentVolumeClaim) string {
	name := claim.Spec.VolumeName
	if claim.Status.Phase == corev1.ClaimLost {
		return fmt.Sprintf("the pod's volume %s is lost", name)
	}
	if name == "" {
		return ""
	}
	pv := pl.w.Volumes[name]
	switch {
	case pv == nil:
		return fmt.Sprintf("the pod's volume %s is gone", name)
	case pv.DeletionTimestamp != nil:
		// Held only by the claim's protection: its Node was wiped.
		return fmt.Sprintf("the pod's volume %s is being deleted", name)
	}
	node := volumeNode(pv)
	if node != "" && pl.w.Nodes[node] == nil {
		return fmt.Sprintf("Node %s, which holds the pod's data (volume %s), is gone", node, name)
	}
	return ""
}

// volumeNode is the Node a local volume's node affinity names, "" when it
// names none.
func volumeNode(pv *corev1.PersistentVolume) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, e := range term.MatchExpressions {
			if e.Key == hostnameLabel && e.Operator == corev1.NodeSelectorOpIn && len(e.Values) > 0 {
				return e.Values[0]
			}
		}
	}
	return ""
}

// decide plans the next steps of a pod; a RESTART or REMOVE to start goes
// to the queue.
func (pl *planner) decide(pp *PodPlan, queue *[]*PodPlan) {
	switch {
	case pp.RecordError != nil:
		pp.Note = pp.RecordError.Error() + "; nothing is done to the pod until the annotation is repaired or removed"
	case pp.Claim != nil && pp.Claim.DeletionTimestamp != nil:
		pp.Note = "waiting for the PVC " + pp.Claim.Name + " to be deleted"
	case pp.Record == nil:
		pl.noOperation(pp, queue)
	default:
		pl.operation(pp)
	}
}

// noOperation: the pod has no operation. It may need one, or its pod and
// PVC made.
func (pl *planner) noOperation(pp *PodPlan, queue *[]*PodPlan) {
	if pp.Pod != nil && hasApproval(pp.Pod) {
		pp.Actions = append(pp.Actions, Action{Type: ClearApproval})
	}
	if pp.Want != nil {
		if pp.Want.Kind == KindRestart || pp.Want.Kind == KindRemove {
			*queue = append(*queue, pp)
		} else {
			pl.start(pp)
		}
		return
	}
	if pp.Ordinal >= int(pl.w.App.Spec.Replicas) {
		return
	}
	if pp.Claim == nil {
		pp.Actions = append(pp.Actions, Action{Type: CreateClaim, Object: DesiredClaim(pl.w.App, pl.w.Namespace, pp.Ordinal)})
	}
	if pp.Pod == nil {
		if desired := pl.desiredPod(pp.Ordinal); desired != nil {
			pp.Actions = append(pp.Actions, Action{Type: CreatePod, Object: desired})
		}
	}
}

// start records a new operation for the pod's Want and asks for it.
func (pl *planner) start(pp *PodPlan) {
	claim := pp.Claim
	if claim == nil {
		pp.Note = fmt.Sprintf("needs %s (%s) but has no PVC to record the operation on", pp.Want.Kind, pp.Want.Reason)
		return
	}
	app := pl.w.App
	count := operationCount(claim) + 1
	now := stamp(pl.now())
	rec := &Record{
		ID:   operationID(app.Namespace, app.Name, pp.Name, pp.Want.Kind, claim.UID, count),
		Kind: pp.Want.Kind, Reason: pp.Want.Reason,
		Deadline: now.Add(pl.approval()), State: appsv1alpha1.OperationRequested, Since: now,
	}
	if pod := pp.Pod; pod != nil && pod.DeletionTimestamp == nil {
		rec.PodUID, rec.Node = pod.UID, pod.Spec.NodeName
	}
	pp.Actions = append(pp.Actions, Action{Type: Request, Record: rec, Count: count})
}

// operation plans the next step of the pod's operation.
func (pl *planner) operation(pp *PodPlan) {
	rec := pp.Record
	switch gone := stopped(rec, pp.Pod); {
	case !rec.approved() && gone && (rec.Kind == KindRestart || rec.Kind == KindEvict):
		// The pod went by itself before the shard manager approved: there
		// is nothing left to stop.
		pl.cancel(pp, "the pod is gone")
	case !rec.approved() || !gone:
		pl.beforeStop(pp)
	default:
		pl.afterStop(pp)
	}
}

// stopped says whether the pod the operation stops has stopped (or is
// stopping): for a RESTART or EVICT, the incarnation it was asked for; for
// a MOVE or REMOVE, any pod of the ordinal. A recorded Stopping or later
// state is trusted over a cache that may lag behind Strata's own delete.
func stopped(rec *Record, pod *corev1.Pod) bool {
	switch rec.State {
	case appsv1alpha1.OperationStopping, appsv1alpha1.OperationWaitingForPod, appsv1alpha1.OperationCompleting:
		return true
	}
	if pod == nil || pod.DeletionTimestamp != nil {
		return true
	}
	if rec.Kind == KindRestart || rec.Kind == KindEvict {
		return rec.PodUID != "" && pod.UID != rec.PodUID
	}
	return false
}

// beforeStop: the pod still runs. Ask until approved, then stop it (or
// let the drain evict it); withdraw the operation when its reason is gone.
func (pl *planner) beforeStop(pp *PodPlan) {
	rec, now := pp.Record, pl.now()
	if pp.Want == nil || pp.Want.Kind != rec.Kind {
		why := "its reason is gone"
		if pp.Want != nil {
			why = fmt.Sprintf("the pod now needs %s instead (%s)", pp.Want.Kind, pp.Want.Reason)
		}
		pl.cancel(pp, why)
		return
	}
	if rec.approved() && now.Before(rec.Deadline.Add(-stopMargin)) {
		if rec.Kind != KindEvict {
			pp.Actions = append(pp.Actions, Action{Type: StopPod, Record: rec})
			return
		}
		if pp.Pod.Annotations[appsv1alpha1.StopApprovedAnnotation] != rec.approval() {
			pp.Actions = append(pp.Actions, Action{Type: ApproveEviction, Record: rec})
		}
		pl.recheckAt(rec.Deadline)
		return
	}
	next := *rec
	if rec.approved() {
		if now.Before(rec.Deadline) {
			pl.recheckAt(rec.Deadline)
			return
		}
		next = *next.withState(appsv1alpha1.OperationRequested, "the approval expired before the pod stopped; asking again", stamp(now))
	}
	if !now.Before(next.Deadline) {
		// Only once the deadline passed does Strata ask with a new one.
		next.Deadline = stamp(now).Add(pl.approval())
	}
	if pp.Pod != nil && hasApproval(pp.Pod) {
		pp.Actions = append(pp.Actions, Action{Type: ClearApproval})
	}
	pp.Actions = append(pp.Actions, Action{Type: Request, Record: &next})
}

// afterStop: the pod stopped under the approval. Bring it back (RESTART,
// EVICT) and complete once it is Ready; complete and delete the data
// (MOVE, REMOVE) once it is gone.
func (pl *planner) afterStop(pp *PodPlan) {
	rec, pod, now := pp.Record, pp.Pod, stamp(pl.now())
	mark := func(state appsv1alpha1.OperationState, msg string) {
		pp.Actions = append(pp.Actions, Action{Type: Mark, Record: rec.withState(state, msg, now)})
	}
	if rec.Kind == KindMove || rec.Kind == KindRemove {
		if pod != nil {
			mark(appsv1alpha1.OperationStopping, "waiting for the pod to stop")
			return
		}
		pp.Actions = append(pp.Actions, Action{Type: Complete, Record: rec, DeleteClaim: true, Why: "the pod is gone; its data goes"})
		return
	}
	if w := pp.Want; w != nil && (w.Kind == KindMove || w.Kind == KindRemove) && !podReady(pod) {
		pp.Actions = append(pp.Actions, Action{Type: Complete, Record: rec,
			Why: fmt.Sprintf("the pod will not come back on its data: it needs %s (%s)", w.Kind, w.Reason)})
		return
	}
	switch {
	case pod == nil:
		desired := pl.desiredPod(pp.Ordinal)
		if desired == nil || pp.Ordinal >= int(pl.w.App.Spec.Replicas) {
			mark(appsv1alpha1.OperationWaitingForPod, "waiting for the pod to be made again (the cluster has no AppPlatform)")
			return
		}
		pp.Actions = append(pp.Actions, Action{Type: CreatePod, Object: desired})
		mark(appsv1alpha1.OperationWaitingForPod, "making the pod again on its data")
	case pod.UID == rec.PodUID || pod.DeletionTimestamp != nil:
		mark(appsv1alpha1.OperationStopping, "waiting for the pod to stop")
	case podReady(pod):
		pp.Actions = append(pp.Actions, Action{Type: Complete, Record: rec, Why: "the pod is Running and Ready again"})
	default:
		mark(appsv1alpha1.OperationWaitingForPod, pl.waitingForPod(pp))
	}
}

// waitingForPod says what a pod that came back waits for.
func (pl *planner) waitingForPod(pp *PodPlan) string {
	pod := pp.Pod
	if pod.Spec.NodeName != "" {
		return fmt.Sprintf("waiting for the pod to be Running and Ready on Node %s", pod.Spec.NodeName)
	}
	node := ""
	if pp.Claim != nil {
		if pv := pl.w.Volumes[pp.Claim.Spec.VolumeName]; pv != nil {
			node = volumeNode(pv)
		}
	}
	if n := pl.w.Nodes[node]; n != nil && n.Spec.Unschedulable {
		return fmt.Sprintf("waiting for the pod to be scheduled: its data is on Node %s, which is cordoned", node)
	}
	return "waiting for the pod to be scheduled"
}

// cancel withdraws the pod's operation.
func (pl *planner) cancel(pp *PodPlan, why string) {
	if pp.Pod != nil && hasApproval(pp.Pod) {
		pp.Actions = append(pp.Actions, Action{Type: ClearApproval})
	}
	pp.Actions = append(pp.Actions, Action{Type: Cancel, Record: pp.Record, Why: why})
}

func hasApproval(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[appsv1alpha1.StopApprovedAnnotation]
	return ok
}

// podReady: the pod runs and is Ready.
func podReady(pod *corev1.Pod) bool {
	if pod == nil || pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
