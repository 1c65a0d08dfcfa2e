package remediation

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/strata-dev/strata/internal/cluster/brokerapi"
	"github.com/strata-dev/strata/internal/cluster/nodeutil"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// ladder is the order in which remediation tries operations on a machine
// that stays unhealthy: each is a broker disruption the broker performs.
var ladder = []brokerv1.OperationKind{
	brokerv1.OperationKind_OPERATION_KIND_REBOOT,
	brokerv1.OperationKind_OPERATION_KIND_REIMAGE,
	brokerv1.OperationKind_OPERATION_KIND_REPLACE,
}

// rungOf is the place of an operation on the ladder, 1 to 3; 0 for none.
func rungOf(op brokerv1.OperationKind) int {
	return slices.Index(ladder, op) + 1
}

// opName is how messages name an operation.
func opName(op brokerv1.OperationKind) string {
	switch op {
	case brokerv1.OperationKind_OPERATION_KIND_REBOOT:
		return "reboot"
	case brokerv1.OperationKind_OPERATION_KIND_REIMAGE:
		return "reimage"
	case brokerv1.OperationKind_OPERATION_KIND_REPLACE:
		return "replace"
	}
	return "no operation"
}

func isRemediation(d *brokerv1.Disruption) bool {
	return d.GetReason() == brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION
}

// record is what the broker's record says about one machine's recent
// remediation: the source of truth for the ladder, so that a restart of the
// controller neither loses a rung nor repeats one.
type record struct {
	// tried are the remediation disruptions of the machine in this pool that
	// ended Completed or Failed within the window, oldest first.
	tried []*brokerv1.Disruption
	// lastEnd is when the latest disruption of the machine, of any reason,
	// ended within the window; zero when none did. A machine is given time
	// to come back from it before it is judged again.
	lastEnd time.Time
}

// readRecord reduces a machine's disruptions (ListDisruptions machine=X, in
// creation order) to its record in pool: what ended at or after since counts.
func readRecord(pool string, ds []*brokerv1.Disruption, since time.Time) record {
	var r record
	for _, d := range ds {
		if d.GetPool() != pool || brokerapi.Open(d) {
			continue
		}
		end := d.GetUpdateTime().AsTime()
		if end.Before(since) {
			continue
		}
		if end.After(r.lastEnd) {
			r.lastEnd = end
		}
		switch d.GetState() {
		case brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED, brokerv1.DisruptionState_DISRUPTION_STATE_FAILED:
			if isRemediation(d) && rungOf(d.GetOperation().GetKind()) > 0 {
				r.tried = append(r.tried, d)
			}
		}
	}
	return r
}

// nextRung is the rung the record calls for: one above the highest rung
// tried within the window, reboot when none was. A cancelled disruption is
// not a rung tried. UNSPECIFIED once replace was tried: the ladder is spent.
func nextRung(r record) brokerv1.OperationKind {
	top := 0
	for _, d := range r.tried {
		top = max(top, rungOf(d.GetOperation().GetKind()))
	}
	if top >= len(ladder) {
		return brokerv1.OperationKind_OPERATION_KIND_UNSPECIFIED
	}
	return ladder[top]
}

// lastTried describes the latest rung tried, "" when none was.
func lastTried(r record) string {
	if len(r.tried) == 0 {
		return ""
	}
	d := r.tried[len(r.tried)-1]
	state := "completed"
	if d.GetState() == brokerv1.DisruptionState_DISRUPTION_STATE_FAILED {
		state = "failed"
	}
	return opName(d.GetOperation().GetKind()) + " " + state
}

// policy is how the controller judges and remediates machines.
type policy struct {
	// notReady and faultHoldOff are how long each signal must last before
	// a machine is remediated.
	notReady, faultHoldOff time.Duration
	// window is how far back the broker's record of rungs counts.
	window time.Duration
	// maxUnhealthyPercent is the share of a pool the guard allows unhealthy.
	maxUnhealthyPercent int
}

// settle is how long a pool waits after its guard lifts before a new rung:
// a zone comes back moments apart, as it failed, and its last machines must
// not be taken for broken hosts.
func (pol policy) settle() time.Duration {
	return max(pol.notReady, pol.faultHoldOff)
}

// machine is what the controller knows of one machine of the pool.
type machine struct {
	m *brokerv1.Machine
	// node is the machine's Node; nil when it has none or the Nodes of the
	// cluster cannot be read.
	node *corev1.Node
	// open is the machine's open disruption, of any reason and actor.
	open *brokerv1.Disruption
	// record is read only for machines that are unhealthy or under
	// remediation.
	record record
	// faultSeen is when this controller first saw the broker report the
	// machine unhealthy.
	faultSeen time.Time
}

// health is a machine's state as its signals tell it.
type health struct {
	// signal says why the machine is unhealthy; "" when it is healthy.
	signal string
	// due is when remediation may start: a signal must last its threshold,
	// counted from when it began or from the end of the machine's last
	// disruption, whichever is later.
	due time.Time
}

// assess reads a machine's signals: the broker's health flag (the
// provisioner's fault reports, failed operations) and its Node's Ready
// condition.
func assess(m machine, th policy) health {
	var h health
	var signals []string
	consider := func(began time.Time, wait time.Duration) {
		due := maxTime(began, m.record.lastEnd).Add(wait)
		if h.due.IsZero() || due.Before(h.due) {
			h.due = due
		}
	}
	if !m.m.GetHealthy() {
		msg := m.m.GetHealthMessage()
		if msg == "" {
			msg = "unhealthy in the broker"
		}
		signals = append(signals, msg)
		consider(m.faultSeen, th.faultHoldOff)
	}
	if c := nodeutil.ReadyCondition(m.node); c != nil && c.Status != corev1.ConditionTrue {
		what := "Node NotReady"
		if c.Status == corev1.ConditionUnknown {
			what = "Node Ready Unknown (kubelet silent)"
		}
		since := c.LastTransitionTime.Time
		signals = append(signals, fmt.Sprintf("%s since %s", what, since.UTC().Format(time.RFC3339)))
		consider(since, th.notReady)
	}
	h.signal = strings.Join(signals, "; ")
	return h
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// verb is what the controller does about one machine.
type verb int

const (
	// verbWait: unhealthy, but its signal has not lasted long enough, or
	// remediation is halted.
	verbWait verb = iota
	// verbCreate: ask the broker for the next rung.
	verbCreate
	// verbStart: the cluster manager approved the rung; start it.
	verbStart
	// verbFollow: the rung is Pending (its Node drains) or InProgress (the
	// broker performs it).
	verbFollow
	// verbCancel: the machine is healthy again before its rung started.
	verbCancel
	// verbSpent: replace was tried within the window and the machine is
	// still unhealthy.
	verbSpent
)

// step is the decision about one machine that is unhealthy or under
// remediation.
type step struct {
	machine    string
	zone       int32
	verb       verb
	op         brokerv1.OperationKind
	disruption *brokerv1.Disruption
	health     health
	after      string // the last rung tried, "" when none
	software   *brokerv1.Software
	// outcome says what came of a start or a create.
	outcome string
}

// plan is what the controller does about a pool.
type plan struct {
	steps []step
	// halted is why the guard stops new remediation, "" when it does not.
	halted string
	// unhealthy counts the machines with a signal, those ignored aside.
	unhealthy int
	total     int
	// budget is the broker's refusal of a rung over the disruption budget,
	// "" when none was refused.
	budget string
}

// view is what one pass knows of a pool.
type view struct {
	pool string
	// actor signs the controller's disruptions for the pool.
	actor    string
	machines []machine
	// nodesKnown says whether Node conditions could be read: without them
	// no rung is called off for a machine that looks healthy.
	nodesKnown bool
	// lastHalted is when the guard last held for the pool, zero when it has
	// not since the controller started.
	lastHalted time.Time
	now        time.Time
}

// decide plans a pool's remediation.
func decide(v view, pol policy) plan {
	pool, actor, machines, now := v.pool, v.actor, v.machines, v.now
	p := plan{total: len(machines)}
	zoneMachines := map[int32]int{}
	zoneUnhealthy := map[int32]int{}
	for _, m := range machines {
		id, zone := m.m.GetId(), m.m.GetMaintenanceZone()
		ours := m.open != nil && isRemediation(m.open) && m.open.GetOnBehalfOf() == actor
		if m.open != nil && !ours {
			continue // maintained, drained, released or remediated by someone else
		}
		if !ours && m.m.GetProvisionState() == brokerv1.ProvisionState_PROVISION_STATE_JOINING {
			continue // not a Node yet
		}
		zoneMachines[zone]++
		h := assess(m, pol)
		if h.signal != "" {
			p.unhealthy++
			zoneUnhealthy[zone]++
		}
		s := step{machine: id, zone: zone, health: h, after: lastTried(m.record), disruption: m.open}
		switch {
		case ours && h.signal == "" && v.nodesKnown && m.open.GetState() != brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS:
			s.verb, s.op = verbCancel, m.open.GetOperation().GetKind()
		case ours && m.open.GetState() == brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED:
			s.verb, s.op = verbStart, m.open.GetOperation().GetKind()
		case ours:
			s.verb, s.op = verbFollow, m.open.GetOperation().GetKind()
		case h.signal == "":
			continue
		default:
			s.op = nextRung(m.record)
			switch {
			case s.op == brokerv1.OperationKind_OPERATION_KIND_UNSPECIFIED:
				s.verb = verbSpent
			case now.Before(h.due):
				s.verb = verbWait
			default:
				s.verb = verbCreate
				if s.op == brokerv1.OperationKind_OPERATION_KIND_REIMAGE {
					s.software = m.m.GetSoftware()
				}
			}
		}
		p.steps = append(p.steps, s)
	}
	p.halted = guard(pool, p.total, p.unhealthy, zoneMachines, zoneUnhealthy, pol.maxUnhealthyPercent)
	settled := v.lastHalted.Add(pol.settle())
	for i := range p.steps {
		s := &p.steps[i]
		switch {
		case s.verb != verbCreate:
		case p.halted != "":
			s.verb = verbWait
		case !v.lastHalted.IsZero() && now.Before(settled):
			s.verb, s.health.due = verbWait, settled
		}
	}
	slices.SortFunc(p.steps, func(a, b step) int { return strings.Compare(a.machine, b.machine) })
	return p
}

// guard says why no new remediation may start in a pool, "" when it may:
// when every judged machine of a maintenance zone (at least two) is
// unhealthy, or when more of the pool is unhealthy than maxPercent allows
// (at least one machine always is). Either is a fleet event (power, network,
// a bad rollout), not broken hosts: rebooting, reimaging or replacing
// machines would not help and would spend spares and the disruption budget.
func guard(pool string, total, unhealthy int, zoneMachines, zoneUnhealthy map[int32]int, maxPercent int) string {
	var zones []int32
	down := 0
	for _, z := range slices.Sorted(maps.Keys(zoneUnhealthy)) {
		if n := zoneUnhealthy[z]; n >= 2 && n == zoneMachines[z] {
			zones = append(zones, z)
			down += n
		}
	}
	switch len(zones) {
	case 0:
	case 1:
		return fmt.Sprintf("remediation halted: all %d machines of pool %s in MZ %d are unhealthy — a zone event, not broken hosts; "+
			"no machine is rebooted, reimaged or replaced until the zone recovers", down, pool, zones[0])
	default:
		names := make([]string, len(zones))
		for i, z := range zones {
			names[i] = fmt.Sprint(z)
		}
		return fmt.Sprintf("remediation halted: all %d machines of pool %s in MZs %s are unhealthy — zone events, not broken hosts; "+
			"no machine is rebooted, reimaged or replaced until the zones recover", down, pool, strings.Join(names, ", "))
	}
	if allowed := allowance(total, maxPercent); unhealthy > allowed {
		return fmt.Sprintf("remediation halted: %d of %d machines of pool %s are unhealthy, more than %d%% of the pool — a fleet event, "+
			"not broken hosts; no machine is rebooted, reimaged or replaced until %d or fewer are unhealthy", unhealthy, total, pool, maxPercent, allowed)
	}
	return ""
}

// allowance is how many machines of a pool of total may be unhealthy and
// still be remediated: maxPercent of it, and at least one.
func allowance(total, maxPercent int) int {
	return max(1, total*maxPercent/100)
}

// order is the order in which the steps are carried out: the machines
// whose signal is oldest first, so that the budget goes to them.
func (p plan) order() []int {
	idx := make([]int, len(p.steps))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return p.steps[a].health.due.Compare(p.steps[b].health.due) })
	return idx
}

// next is when the plan should be looked at again without an event: when
// the first waiting signal is due, or after resync.
func (p plan) next(now time.Time, resync time.Duration) time.Duration {
	after := resync
	for _, s := range p.steps {
		if s.verb == verbWait && p.halted == "" && s.health.due.After(now) {
			after = min(after, s.health.due.Sub(now))
		}
	}
	return after
}
