package manager

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// plan is what the manager does to one Node in one pass, given the open
// disruption of its machine (if any) and what the Node records. The Node's
// own annotations are the manager's memory across restarts.
type plan struct {
	// cordon makes the Node unschedulable for the open disruption and
	// records that Strata did (cordoned-for).
	cordon bool
	// takeOverFrom is the earlier disruption Strata cordoned the Node for:
	// the cordon now belongs to the open one.
	takeOverFrom string
	// foreignCordon: someone else cordoned the Node before the drain began.
	// It is drained but never marked, so never uncordoned by Strata.
	foreignCordon bool
	// startDrain records when the drain began (drain-started).
	startDrain bool
	// drain runs a drain pass, and approves the disruption once the Node is empty.
	drain bool
	// clearDrain removes drain-started and drain-blocked: no drain is running.
	clearDrain bool
	// uncordonFor is the disruption Strata cordoned the Node for, which is
	// no longer open: the Node is uncordoned and Strata's marks removed.
	uncordonFor string
}

// planNode decides what to do with a Node. open is the open disruption of
// its machine, nil when none.
//
//   - Pending: cordon (unless someone else did), start and run the drain.
//   - Approved, InProgress: keep the Node cordoned; the drain is over.
//   - none open: undo Strata's own cordon, and only that.
func planNode(node *corev1.Node, open *brokerv1.Disruption) plan {
	ours := node.Annotations[fleetv1alpha1.CordonedForAnnotation]
	_, started := node.Annotations[fleetv1alpha1.DrainStartedAnnotation]
	_, blocked := node.Annotations[fleetv1alpha1.DrainBlockedAnnotation]
	if open == nil {
		if ours != "" {
			return plan{uncordonFor: ours}
		}
		return plan{clearDrain: started || blocked}
	}
	var p plan
	pending := open.GetState() == brokerv1.DisruptionState_DISRUPTION_STATE_PENDING
	switch id := open.GetId(); {
	case !node.Spec.Unschedulable:
		// Not cordoned, or someone undid Strata's cordon while the
		// disruption is open: the protocol wants it cordoned.
		p.cordon = true
	case ours == id:
	case ours != "":
		p.takeOverFrom = ours
	case pending && !started:
		p.foreignCordon = true
	}
	if pending {
		p.startDrain = !started
		p.drain = true
	} else {
		p.clearDrain = started || blocked
	}
	return p
}

// idle says whether the plan leaves the Node as it is.
func (p plan) idle() bool {
	return p == plan{}
}

// overdueDrain is a drain that has run past its deadline.
type overdueDrain struct {
	node       string
	disruption string
	reason     string
	started    time.Time
	// blocked are the refused evictions, "ns/pod (whose): why" (see
	// describeBlocked).
	blocked []string
}

// shownOverdue bounds how many overdue drains a condition message names.
const shownOverdue = 3

// drainCondition is the Cluster's DrainsOnSchedule condition given the
// drains past their deadline, sorted. Its message names them but not how
// long they have run, so that it changes only when they do.
func drainCondition(generation int64, overdue []overdueDrain, deadline time.Duration, now metav1.Time) metav1.Condition {
	c := metav1.Condition{
		Type: fleetv1alpha1.ClusterDrainsOnScheduleCondition, ObservedGeneration: generation, LastTransitionTime: now,
		Status: metav1.ConditionTrue, Reason: fleetv1alpha1.DrainsWithinDeadlineReason,
		Message: fmt.Sprintf("no drain has run past its deadline of %s", deadline),
	}
	if len(overdue) == 0 {
		return c
	}
	c.Status, c.Reason = metav1.ConditionFalse, fleetv1alpha1.DrainDeadlineExceededReason
	parts := make([]string, 0, min(len(overdue), shownOverdue))
	for _, o := range overdue[:min(len(overdue), shownOverdue)] {
		why := "pods are still terminating"
		if len(o.blocked) > 0 {
			why = "evictions refused: " + strings.Join(o.blocked, "; ")
		}
		parts = append(parts, fmt.Sprintf("node %s (disruption %s, %s, drain started %s): %s",
			o.node, o.disruption, o.reason, o.started.UTC().Format(time.RFC3339), why))
	}
	more := ""
	if n := len(overdue) - shownOverdue; n > 0 {
		more = fmt.Sprintf("; and %d more", n)
	}
	c.Message = fmt.Sprintf("%d drains have run past their deadline of %s; their disruptions stay Pending and nothing is forced: %s%s",
		len(overdue), deadline, strings.Join(parts, "; "), more)
	return c
}

// shownBlocked bounds how many refused evictions a Node's drain-blocked
// annotation lists.
const shownBlocked = 10

// blockedAnnotation is the drain-blocked annotation for refused evictions,
// one per line, "" when none.
func blockedAnnotation(blocked []string) string {
	if len(blocked) > shownBlocked {
		blocked = append(blocked[:shownBlocked:shownBlocked], fmt.Sprintf("and %d more", len(blocked)-shownBlocked))
	}
	return strings.Join(blocked, "\n")
}

// drainStarted reads a Node's drain-started annotation; ok is false when it
// is absent or unreadable.
func drainStarted(node *corev1.Node) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, node.Annotations[fleetv1alpha1.DrainStartedAnnotation])
	return t, err == nil
}

// reasonName is a disruption reason as the CLI and the record spell it,
// e.g. "planned-upgrade".
func reasonName(r brokerv1.DisruptionReason) string {
	return enumName(r.String(), "DISRUPTION_REASON_")
}

// stateName is a disruption state as the record spells it, e.g. "completed".
func stateName(s brokerv1.DisruptionState) string {
	return enumName(s.String(), "DISRUPTION_STATE_")
}

func enumName(s, prefix string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s, prefix)), "_", "-")
}
