package rollout

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// maxFailures bounds the failures the status keeps; the oldest go first.
const maxFailures = 64

// desiredStatus is the rollout's status after a reconcile that saw the
// plan (nil when the broker could not be read) and the outcome. Only
// healthGateFailingSince, startTime and completionTime carry over from the
// status before: they are records of when something began.
func desiredStatus(ro *fleetv1alpha1.MaintenanceRollout, p *plan, out outcome, now metav1.Time) fleetv1alpha1.MaintenanceRolloutStatus {
	s := *ro.Status.DeepCopy()
	s.ObservedGeneration = ro.Generation
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{
			Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: ro.Generation, LastTransitionTime: now,
		})
	}
	paused := pausedCondition(ro, p)
	if p != nil || ro.Spec.Paused {
		// Without the broker's state, whether failures halt it is unknown.
		set(fleetv1alpha1.RolloutPausedCondition, paused.Status, paused.Reason, paused.Message)
	}
	if p == nil {
		reason, msg := fleetv1alpha1.RolloutBrokerUnavailableReason, "the broker's state could not be read"
		if out.block != nil {
			reason, msg = out.block.reason, out.block.message
		}
		set(fleetv1alpha1.RolloutProgressingCondition, metav1.ConditionFalse, reason, msg)
		if meta.FindStatusCondition(s.Conditions, fleetv1alpha1.RolloutCompleteCondition) == nil {
			set(fleetv1alpha1.RolloutCompleteCondition, metav1.ConditionFalse, fleetv1alpha1.RolloutNotCompleteReason, "the rollout has not started")
		}
		return s
	}

	s.Machines, s.Updated, s.InProgress = p.machines(), p.total(updated), p.total(inProgress)
	s.Failed, s.Skipped = p.total(failed), p.total(skipped)
	s.Zones = nil
	for _, z := range p.zones {
		phase := fleetv1alpha1.RolloutZonePending
		switch {
		case z.complete() && z.counts[inProgress] == 0:
			phase = fleetv1alpha1.RolloutZoneComplete
		case z.started || z.counts[inProgress] > 0:
			phase = fleetv1alpha1.RolloutZoneInProgress
		}
		s.Zones = append(s.Zones, fleetv1alpha1.RolloutZoneStatus{
			MaintenanceZone: z.zone, Phase: phase, Machines: z.machines, Updated: z.counts[updated],
			InProgress: z.counts[inProgress], Failed: z.counts[failed], Skipped: z.counts[skipped],
		})
	}
	s.Failures = slices.Clone(p.failures[max(0, len(p.failures)-maxFailures):])
	s.HealthGateFailingSince = nil
	if out.gate != "" {
		s.HealthGateFailingSince = &now
		if ro.Status.HealthGateFailingSince != nil {
			s.HealthGateFailingSince = ro.Status.HealthGateFailingSince
		}
	}
	if s.StartTime == nil && len(p.disruptions)+out.created > 0 {
		s.StartTime = &now
	}
	s.CurrentZone = 0
	if p.current != nil {
		s.CurrentZone = p.current.zone
	}

	if p.done() {
		if s.CompletionTime == nil {
			s.CompletionTime = &now
		}
		set(fleetv1alpha1.RolloutCompleteCondition, metav1.ConditionTrue, fleetv1alpha1.RolloutCompleteReason, completeMessage(ro, p))
	} else {
		set(fleetv1alpha1.RolloutCompleteCondition, metav1.ConditionFalse, fleetv1alpha1.RolloutNotCompleteReason,
			fmt.Sprintf("%d of %d machines run node config %s", s.Updated, s.Machines, ro.Spec.NodeConfig))
	}
	progressing, reason, msg := metav1.ConditionTrue, "", ""
	switch {
	case out.block != nil:
		progressing, reason, msg = metav1.ConditionFalse, out.block.reason, out.block.message
	case p.done():
		progressing, reason, msg = metav1.ConditionFalse, fleetv1alpha1.RolloutCompleteReason, completeMessage(ro, p)
	case paused.Status == metav1.ConditionTrue:
		progressing, reason, msg = metav1.ConditionFalse, fleetv1alpha1.RolloutPausedReason, "paused: "+paused.Message
	case p.current == nil:
		reason, msg = fleetv1alpha1.RolloutWaitingForMachinesReason, completeMessage(ro, p)+
			"; the rollout completes once they are healthy again and updated, or have left the pools"
	default:
		reason, msg = progress(p.current, out, s.HealthGateFailingSince, gateTimeout(ro), now.Time)
		if reason == fleetv1alpha1.RolloutHealthGateFailedReason {
			progressing = metav1.ConditionFalse
		}
	}
	set(fleetv1alpha1.RolloutProgressingCondition, progressing, reason, msg)
	return s
}

// maxNamedFailures bounds the machines the Paused condition names.
const maxNamedFailures = 5

// pausedCondition says whether and why the rollout disrupts no new machine:
// a person set spec.paused, or more machines failed their maintenance than
// spec.toleratedFailures allows (computed from the plan, nil when unknown).
func pausedCondition(ro *fleetv1alpha1.MaintenanceRollout, p *plan) metav1.Condition {
	if ro.Spec.Paused {
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: fleetv1alpha1.RolloutPausedByUserReason,
			Message: "spec.paused is true: open disruptions finish, no new machine is disrupted; strata rollouts resume " + ro.Name + " goes on"}
	}
	if p != nil && p.halted(ro.Spec.ToleratedFailures) {
		var names []string
		for _, f := range p.failures {
			names = append(names, f.Machine)
		}
		slices.Sort(names)
		listed := strings.Join(names, ", ")
		if len(names) > maxNamedFailures {
			listed = strings.Join(names[:maxNamedFailures], ", ") + fmt.Sprintf(" and %d more", len(names)-maxNamedFailures)
		}
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: fleetv1alpha1.RolloutMachineFailedReason,
			Message: fmt.Sprintf("%s and not on node config %s (%s), more than spec.toleratedFailures (%d) allows: "+
				"no new machine is disrupted until they are repaired and updated or leave the pools, or a person tolerates them "+
				"(strata rollouts resume %s sets toleratedFailures to %d)",
				failedMachines(len(names)), ro.Spec.NodeConfig, listed, ro.Spec.ToleratedFailures, ro.Name, len(names))}
	}
	return metav1.Condition{Status: metav1.ConditionFalse, Reason: fleetv1alpha1.RolloutNotPausedReason,
		Message: fmt.Sprintf("spec.paused is false and no more machines failed than spec.toleratedFailures (%d) allows", ro.Spec.ToleratedFailures)}
}

// progress is the Progressing reason and message of an active rollout;
// gateSince and gateTimeout say when a failing health gate is reported as
// HealthGateFailed.
func progress(z *zonePlan, out outcome, gateSince *metav1.Time, gateTimeout time.Duration, now time.Time) (string, string) {
	where := fmt.Sprintf("MZ %d: %d of %d machines updated, %d in progress", z.zone, z.counts[updated], z.machines, z.counts[inProgress])
	switch {
	case out.gate != "":
		since := now
		if gateSince != nil {
			since = gateSince.Time
		}
		if deadline := since.Add(gateTimeout); !now.Before(deadline) {
			return fleetv1alpha1.RolloutHealthGateFailedReason, gateFailedMessage(z.zone, out.gate, since, gateTimeout)
		}
		return fleetv1alpha1.RolloutWaitingForHealthGateReason, gateMessage(z.zone, out.gate, since.Add(gateTimeout), gateTimeout)
	case out.overBudget != "" && z.counts[inProgress] == 0:
		return fleetv1alpha1.RolloutWaitingForBudgetReason, fmt.Sprintf("MZ %d waits for the disruption budget: %s", z.zone, out.overBudget)
	case out.refused != "" && out.created == 0 && z.counts[inProgress] == 0:
		return fleetv1alpha1.RolloutWaitingForMachinesReason, fmt.Sprintf("MZ %d: %s", z.zone, out.refused)
	case z.counts[inProgress] == 0 && z.counts[waiting] > 0:
		return fleetv1alpha1.RolloutWaitingForMachinesReason,
			fmt.Sprintf("%s; %d machines are joining or under another actor's disruption", where, z.counts[waiting])
	}
	return fleetv1alpha1.RolloutMaintainingReason, where
}

// failedMachines says how many machines failed their maintenance.
func failedMachines(n int) string {
	if n == 1 {
		return "1 machine failed its maintenance"
	}
	return fmt.Sprintf("%d machines failed their maintenance", n)
}

// completeMessage says what the rollout achieved, and what it left.
func completeMessage(ro *fleetv1alpha1.MaintenanceRollout, p *plan) string {
	msg := fmt.Sprintf("%d of %d machines run node config %s", p.total(updated), p.machines(), ro.Spec.NodeConfig)
	var left []string
	if n := p.total(failed); n > 0 {
		left = append(left, fmt.Sprintf("%d failed their maintenance", n))
	}
	if n := p.total(skipped); n > 0 {
		left = append(left, fmt.Sprintf("%d were unhealthy and left to remediation", n))
	}
	if len(left) > 0 {
		msg += "; " + strings.Join(left, ", ")
	}
	return msg
}
