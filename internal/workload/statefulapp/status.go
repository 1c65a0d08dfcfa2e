package statefulapp

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// maxMessage bounds the messages of the conditions.
const maxMessage = 4096

// Reachability is what the shard manager's answers in one pass said of it.
type Reachability struct {
	// Endpoint is the shard manager's.
	Endpoint string
	// Transport is how it is dialled, as the spec states it; empty when it
	// states none.
	Transport appsv1alpha1.ShardManagerTransport
	// CA says where the CA that verifies it comes from (TLS).
	CA string
	// Answered: a call got an answer.
	Answered bool
	// Err is why the last call got none, or why none could be made (the
	// CA cannot be read, the transport is not stated); nil when a call got
	// an answer or none was made.
	Err error
	// Reason is the condition's reason for Err: ShardManagerUnreachable
	// (the default), TLSHandshakeFailed, CAUnavailable, TransportInvalid.
	Reason string
}

// over says how the shard manager is dialled, for messages: ", over ..."
// (empty when the spec states no transport).
func (r Reachability) over() string {
	switch r.Transport {
	case appsv1alpha1.TransportTLS:
		return ", over TLS verified with the CA in " + r.CA + ","
	case appsv1alpha1.TransportPlaintext:
		return ", in plaintext as spec.shardManager.transport says,"
	}
	return ""
}

// Status is the app's status after a pass: its pods and their operations
// (the plan's records as the pass left them) and the conditions.
func Status(app *appsv1alpha1.StatefulApp, plan Plan, reach Reachability, now time.Time) appsv1alpha1.StatefulAppStatus {
	st := appsv1alpha1.StatefulAppStatus{
		ObservedGeneration: app.Generation,
		Selector:           labels.SelectorFromSet(Selector(app.Name)).String(),
		Conditions:         append([]metav1.Condition(nil), app.Status.Conditions...),
		// What the spec states, also while the CA cannot be read: nothing
		// is ever dialled in plaintext in place of TLS.
		ShardManagerTransport: reach.Transport,
	}
	var s summary
	for _, pp := range plan.Pods {
		ps := appsv1alpha1.StatefulPodStatus{Name: pp.Name}
		if pod := pp.Pod; pod != nil && pod.DeletionTimestamp == nil {
			st.Replicas++
			ps.Node, ps.Version, ps.Ready = pod.Spec.NodeName, pod.Labels[appsv1alpha1.AppVersionLabel], podReady(pod)
			if ps.Ready {
				st.ReadyReplicas++
			}
			if ps.Version == VersionOf(&app.Spec, pp.Ordinal) && (pp.Want == nil || pp.Want.Kind != KindRestart) {
				st.UpdatedReplicas++
			}
		}
		if rec := pp.Record; rec != nil {
			if ps.Node == "" {
				ps.Node = rec.Node
			}
			ps.Operation = &appsv1alpha1.PodOperation{ID: rec.ID, Kind: rec.Kind, Reason: rec.Reason, State: rec.State,
				Message: rec.Message, Since: metav1.NewTime(rec.Since)}
		}
		s.add(pp, ps, app)
		st.Pods = append(st.Pods, ps)
	}

	gen := app.Generation
	set := func(c metav1.Condition) {
		c.ObservedGeneration, c.LastTransitionTime, c.Message = gen, metav1.NewTime(now), truncate(c.Message)
		meta.SetStatusCondition(&st.Conditions, c)
	}
	ready, progressing := s.conditions(app, plan)
	set(ready)
	set(progressing)
	var records []*Record
	for _, pp := range plan.Pods {
		if pp.Record != nil {
			records = append(records, pp.Record)
		}
	}
	if c, ok := reachable(reach, app.Status.Conditions, records, now); ok {
		set(c)
	} else if old := meta.FindStatusCondition(app.Status.Conditions, appsv1alpha1.ShardManagerReachableCondition); old != nil {
		// No call this pass: the last answer stands.
		c := *old
		c.ObservedGeneration = gen
		meta.SetStatusCondition(&st.Conditions, c)
	}
	return st
}

// reachable is the ShardManagerReachable condition from the last answer
// received: this pass's calls, else the answers the operations' records
// hold (on the PVCs, newer than a status read from a cache that may lag
// behind the pass that got them); false when neither says more than the
// condition already reported. Unreachable says when this pass's call got no
// answer (now): each failed call rewrites the message, so someone watching
// the app sees Strata keep asking, not a condition left from long ago.
func reachable(reach Reachability, before []metav1.Condition, records []*Record, now time.Time) (metav1.Condition, bool) {
	c := metav1.Condition{Type: appsv1alpha1.ShardManagerReachableCondition}
	old := meta.FindStatusCondition(before, appsv1alpha1.ShardManagerReachableCondition)
	switch {
	case reach.Err != nil && (reach.Reason == appsv1alpha1.ShardManagerCAUnavailableReason || reach.Reason == appsv1alpha1.ShardManagerTransportInvalidReason):
		// No call was made: the message is the same each pass until the
		// spec or the Secret changes.
		c.Status, c.Reason = metav1.ConditionFalse, reach.Reason
		c.Message = fmt.Sprintf("the shard manager at %s is not dialled: %v; nothing is dialled in plaintext instead, every operation on the app waits, no pod is stopped",
			reach.Endpoint, reach.Err)
	case reach.Err != nil:
		c.Status, c.Reason = metav1.ConditionFalse, orDefault(reach.Reason, appsv1alpha1.ShardManagerUnreachableReason)
		c.Message = fmt.Sprintf("no answer from the shard manager at %s%s when last asked, at %s: %v; every operation on the app waits, no pod is stopped",
			reach.Endpoint, reach.over(), now.UTC().Format(time.RFC3339), reach.Err)
	case reach.Answered || answeredSince(records, old):
		c.Status, c.Reason = metav1.ConditionTrue, appsv1alpha1.ShardManagerAnsweredReason
		c.Message = strings.TrimSuffix(fmt.Sprintf("the shard manager at %s answered%s", reach.Endpoint, reach.over()), ",")
	case old != nil && (old.Reason == appsv1alpha1.ShardManagerCAUnavailableReason || old.Reason == appsv1alpha1.ShardManagerTransportInvalidReason):
		// The CA or the transport was fixed and no call made since.
		c.Status, c.Reason = metav1.ConditionUnknown, appsv1alpha1.ShardManagerNotAskedReason
		c.Message = fmt.Sprintf("the shard manager at %s is dialled%s and no operation has needed it since", reach.Endpoint, reach.over())
	case old != nil:
		return c, false
	default:
		c.Status, c.Reason = metav1.ConditionUnknown, appsv1alpha1.ShardManagerNotAskedReason
		c.Message = "no operation has needed the shard manager yet"
	}
	return c, true
}

// answeredSince says whether an operation's record shows an answer of the
// shard manager that the condition old (nil: none) does not reflect: with
// no condition, or Unknown, any answer; when it says unreachable, an answer
// recorded after it turned so (or in the same second). A record in
// Approved, Denied or RetryAfter entered that state on an answer, at its
// since; one stopping its pod, waiting for it or completing had an
// approval, at some earlier time.
func answeredSince(records []*Record, old *metav1.Condition) bool {
	if old != nil && old.Status == metav1.ConditionTrue {
		return false
	}
	for _, rec := range records {
		switch rec.State {
		case appsv1alpha1.OperationApproved, appsv1alpha1.OperationDenied, appsv1alpha1.OperationRetryAfter:
			// Both are whole seconds: an answer in the second the
			// condition turned is taken as after it (a failed call then
			// would have rewritten it since).
			if old == nil || old.Status == metav1.ConditionUnknown || !rec.Since.Before(old.LastTransitionTime.Time) {
				return true
			}
		case appsv1alpha1.OperationStopping, appsv1alpha1.OperationWaitingForPod, appsv1alpha1.OperationCompleting:
			if old == nil || old.Status == metav1.ConditionUnknown {
				return true
			}
		}
	}
	return false
}

// summary gathers what the conditions say of the pods.
type summary struct {
	wanted, ready, updated int
	// waiting: operations that wait for the shard manager's approval.
	waiting []string
	// inProgress: approved operations under way.
	inProgress []string
	// queued: pods whose update waits for a free operation.
	queued []string
	// notes: pods held by something else.
	notes []string
}

func (s *summary) add(pp *PodPlan, ps appsv1alpha1.StatefulPodStatus, app *appsv1alpha1.StatefulApp) {
	if pp.Ordinal < int(app.Spec.Replicas) {
		s.wanted++
		if ps.Ready {
			s.ready++
		}
		if ps.Version == VersionOf(&app.Spec, pp.Ordinal) && (pp.Want == nil || pp.Want.Kind != KindRestart) && pp.Pod != nil {
			s.updated++
		}
	}
	if rec := pp.Record; rec != nil {
		what := fmt.Sprintf("%s %s (%s)", pp.Name, rec.Kind, rec.Reason)
		if rec.Message != "" {
			what += ": " + rec.Message
		}
		if rec.approved() {
			s.inProgress = append(s.inProgress, fmt.Sprintf("%s [%s]", what, rec.State))
		} else {
			s.waiting = append(s.waiting, fmt.Sprintf("%s [%s]", what, rec.State))
		}
	}
	if pp.Queued {
		s.queued = append(s.queued, fmt.Sprintf("%s (%s)", pp.Name, pp.Want.Reason))
	}
	if pp.Note != "" {
		s.notes = append(s.notes, pp.Name+": "+pp.Note)
	}
}

// conditions are Ready and Progressing.
func (s *summary) conditions(app *appsv1alpha1.StatefulApp, plan Plan) (metav1.Condition, metav1.Condition) {
	ready := metav1.Condition{Type: appsv1alpha1.StatefulAppReadyCondition, Status: metav1.ConditionFalse}
	progressing := metav1.Condition{Type: appsv1alpha1.StatefulAppProgressingCondition, Status: metav1.ConditionTrue}
	pods := fmt.Sprintf("%d of %d pods Ready, %d on their version", s.ready, s.wanted, s.updated)
	var parts []string
	if len(s.waiting) > 0 {
		parts = append(parts, "waiting for the shard manager: "+strings.Join(s.waiting, "; "))
	}
	if len(s.inProgress) > 0 {
		parts = append(parts, "under way: "+strings.Join(s.inProgress, "; "))
	}
	if len(s.queued) > 0 {
		// In the order their turns come: the highest ordinal first.
		slices.Reverse(s.queued)
		parts = append(parts, fmt.Sprintf("waiting for their turn (maxConcurrentOperations %d): %s",
			orDefault(app.Spec.MaxConcurrentOperations, defaultMaxConcurrent), strings.Join(s.queued, "; ")))
	}
	if len(s.notes) > 0 {
		parts = append(parts, strings.Join(s.notes, "; "))
	}
	ops := strings.Join(parts, ". ")
	platform := fmt.Sprintf("the cluster has no AppPlatform %q to make the app's pods with; the platform team creates it, `strata up` installs one",
		appsv1alpha1.PlatformName)

	switch {
	case len(s.waiting) > 0:
		progressing.Reason, progressing.Message = appsv1alpha1.WaitingForShardManagerReason, ops
	case len(s.inProgress) > 0 || len(s.queued) > 0:
		progressing.Reason, progressing.Message = appsv1alpha1.OperationsInProgressReason, ops
	case plan.PlatformMissing:
		progressing.Status, progressing.Reason, progressing.Message = metav1.ConditionFalse, appsv1alpha1.PlatformNotFoundReason, platform
	default:
		progressing.Status, progressing.Reason = metav1.ConditionFalse, appsv1alpha1.RolledOutReason
		progressing.Message = "no operation is pending; " + pods
		if ops != "" {
			progressing.Message += ". " + ops
		}
	}

	switch {
	case plan.PlatformMissing && s.ready < s.wanted:
		ready.Reason, ready.Message = appsv1alpha1.PlatformNotFoundReason, platform+"; "+pods
	case len(s.waiting) > 0:
		ready.Reason, ready.Message = appsv1alpha1.WaitingForShardManagerReason, pods+"; "+ops
	case len(s.inProgress) > 0 || len(s.queued) > 0:
		ready.Reason, ready.Message = appsv1alpha1.OperationsInProgressReason, pods+"; "+ops
	case s.ready < s.wanted || s.updated < s.wanted:
		ready.Reason, ready.Message = appsv1alpha1.PodsNotReadyReason, pods
		if ops != "" {
			ready.Message += "; " + ops
		}
	default:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, appsv1alpha1.AvailableReason, pods
	}
	return ready, progressing
}

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage-3] + "..."
}
