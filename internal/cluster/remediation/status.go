package remediation

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// shownMachines bounds how many machines a condition message names.
const shownMachines = 10

// hostsCondition is the Pool's HostsHealthy condition after a pass. nodesNote,
// when not empty, says why the Nodes' conditions could not be read.
func hostsCondition(p plan, generation int64, window time.Duration, nodesNote string) metav1.Condition {
	c := metav1.Condition{Type: fleetv1alpha1.PoolHostsHealthyCondition, ObservedGeneration: generation}
	var open, listed []string
	for _, s := range p.steps {
		entry := describe(s, p.halted != "", window)
		if entry == "" {
			continue
		}
		listed = append(listed, entry)
		if s.verb == verbStart || s.verb == verbFollow {
			open = append(open, entry)
		}
	}
	switch {
	case p.halted != "":
		c.Status, c.Reason = metav1.ConditionFalse, fleetv1alpha1.RemediationHaltedReason
		c.Message = p.halted
		if len(open) > 0 {
			c.Message += "; remediation already under way continues: " + shorten(open)
		}
	case len(listed) > 0:
		c.Status, c.Reason = metav1.ConditionFalse, fleetv1alpha1.RemediatingReason
		c.Message = fmt.Sprintf("%d of %d machines unhealthy: %s", p.unhealthy, p.total, shorten(listed))
		if p.budget != "" {
			c.Message += "; the broker refused more: " + p.budget
		}
	case nodesNote != "":
		c.Status, c.Reason = metav1.ConditionUnknown, fleetv1alpha1.ClusterNotReadyReason
		c.Message = fmt.Sprintf("the broker reports none of the %d machines unhealthy, but their Nodes cannot be read: %s", p.total, nodesNote)
		return c
	default:
		c.Status, c.Reason = metav1.ConditionTrue, fleetv1alpha1.HostsHealthyReason
		c.Message = fmt.Sprintf("all %d machines healthy", p.total)
	}
	if nodesNote != "" {
		c.Message += "; Node conditions not read: " + nodesNote
	}
	return c
}

// describe says where one machine is, "" when there is nothing to say (a
// rung called off because the machine is healthy again).
func describe(s step, halted bool, window time.Duration) string {
	op := opName(s.op)
	var what string
	switch s.verb {
	case verbCancel:
		return ""
	case verbWait:
		what = fmt.Sprintf("%s from %s", op, s.health.due.UTC().Format(time.RFC3339))
		if halted {
			what = "not remediated while halted"
		}
	case verbCreate:
		what = s.outcome
	case verbStart:
		what = s.outcome
	case verbFollow:
		what = op + " in progress"
		if s.disruption.GetState() == brokerv1.DisruptionState_DISRUPTION_STATE_PENDING {
			what = op + " waits for its Node to be drained"
		}
	case verbSpent:
		what = fmt.Sprintf("still unhealthy after a %s: it needs a person; the ladder starts over %s after that", s.after, window)
	}
	if s.after != "" && (s.verb == verbWait || s.verb == verbCreate) && !halted {
		what += ", after a " + s.after
	}
	if s.health.signal != "" {
		what += " (" + s.health.signal + ")"
	}
	return fmt.Sprintf("%s [MZ %d]: %s", s.machine, s.zone, what)
}

func shorten(entries []string) string {
	if len(entries) <= shownMachines {
		return strings.Join(entries, "; ")
	}
	return strings.Join(entries[:shownMachines], "; ") + fmt.Sprintf("; and %d more", len(entries)-shownMachines)
}
