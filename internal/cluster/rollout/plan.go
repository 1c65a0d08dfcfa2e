package rollout

import (
	"cmp"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/brokerapi"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// machineState is where one machine is in the rollout.
type machineState int

const (
	// candidate: healthy, joined, free of disruptions, not on the target.
	candidate machineState = iota
	// updated: runs the target software.
	updated
	// inProgress: under an open disruption of the rollout.
	inProgress
	// failed: its last maintenance by the rollout failed and it is unhealthy.
	failed
	// skipped: unhealthy, so left to remediation.
	skipped
	// waiting: joining, or under another actor's disruption.
	waiting
)

// zonePlan is the rollout's view of one maintenance zone.
type zonePlan struct {
	zone int32
	// started: the rollout has disrupted a machine of the zone before, so
	// the health gate was passed.
	started bool
	counts  map[machineState]int32
	// candidates are the machines to disrupt next, by ID.
	candidates []*brokerv1.Machine
	machines   int32
}

func (z *zonePlan) complete() bool {
	return z.counts[updated]+z.counts[failed]+z.counts[skipped] == z.machines
}

// plan is what the rollout should do now, computed from the broker's
// machines and disruptions alone.
type plan struct {
	zones []*zonePlan
	// current is the zone to work on, nil when every zone is complete.
	current *zonePlan
	// toStart are the rollout's approved disruptions: drained, ready to be
	// performed.
	toStart []*brokerv1.Disruption
	// failures are the rollout's failed disruptions whose machine does not
	// run the target, oldest first.
	failures []fleetv1alpha1.RolloutFailure
	// disruptions are the IDs of the rollout's disruptions, open or not: the
	// Nodes Strata cordoned for them are the rollout's.
	disruptions map[string]bool
	// unhealthy are the machines left to remediation (failed or skipped):
	// the health gate does not wait for their Nodes.
	unhealthy map[string]bool
}

func (p *plan) total(s machineState) int32 {
	var n int32
	for _, z := range p.zones {
		n += z.counts[s]
	}
	return n
}

// done says whether every machine runs the target: the rollout is
// complete. Failed and skipped machines let it move on to the next zone, not
// finish; they are tried again once healthy, or leave the pools.
func (p *plan) done() bool {
	return p.current == nil && p.total(updated) == p.machines()
}

// halted says whether more machines failed their maintenance (and do not
// run the target) than the rollout tolerates: it disrupts no new machine.
func (p *plan) halted(tolerated int32) bool {
	return int32(len(p.failures)) > tolerated
}

func (p *plan) machines() int32 {
	var n int32
	for _, z := range p.zones {
		n += z.machines
	}
	return n
}

// onTarget says whether a machine runs the rollout's software.
func onTarget(spec *fleetv1alpha1.MaintenanceRolloutSpec, m *brokerv1.Machine) bool {
	sw := m.GetSoftware()
	return sw.GetNodeConfig() == spec.NodeConfig && (spec.OSImage == "" || sw.GetOsImage() == spec.OSImage)
}

// newPlan classifies every machine of the rollout's pools and picks the
// zone to work on: one with disruptions still open (finish it first), else
// the first incomplete zone in the rollout's order.
func newPlan(ro *fleetv1alpha1.MaintenanceRollout, machines []*brokerv1.Machine, disruptions []*brokerv1.Disruption) *plan {
	actor := Actor(ro.Name)
	p := &plan{disruptions: map[string]bool{}, unhealthy: map[string]bool{}}
	// The most recent disruption of each machine by the rollout, and any
	// open disruption by another actor.
	ours := map[string]*brokerv1.Disruption{}
	others := map[string]bool{}
	for _, d := range disruptions {
		if d.GetOnBehalfOf() == actor && d.GetCreateTime().AsTime().Before(ro.CreationTimestamp.Time) {
			continue // an earlier rollout of the same name
		}
		if d.GetOnBehalfOf() != actor {
			if brokerapi.Open(d) {
				others[d.GetMachine()] = true
			}
			continue
		}
		p.disruptions[d.GetId()] = true
		if last, ok := ours[d.GetMachine()]; !ok || d.GetCreateTime().AsTime().After(last.GetCreateTime().AsTime()) {
			ours[d.GetMachine()] = d
		}
		if d.GetState() == brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED {
			p.toStart = append(p.toStart, d)
		}
	}
	zones := map[int32]*zonePlan{}
	byID := map[string]*brokerv1.Machine{}
	for _, m := range machines {
		byID[m.GetId()] = m
		z := zones[m.GetMaintenanceZone()]
		if z == nil {
			z = &zonePlan{zone: m.GetMaintenanceZone(), counts: map[machineState]int32{}}
			zones[z.zone] = z
		}
		d := ours[m.GetId()]
		if d != nil {
			z.started = true
		}
		s := classify(&ro.Spec, m, d, others[m.GetId()])
		z.machines++
		z.counts[s]++
		switch s {
		case candidate:
			z.candidates = append(z.candidates, m)
		case failed, skipped:
			p.unhealthy[m.GetId()] = true
		}
	}
	for _, d := range ours {
		if d.GetState() == brokerv1.DisruptionState_DISRUPTION_STATE_FAILED && byID[d.GetMachine()] != nil && !onTarget(&ro.Spec, byID[d.GetMachine()]) {
			p.failures = append(p.failures, fleetv1alpha1.RolloutFailure{
				Disruption: d.GetId(), Machine: d.GetMachine(), Message: failureMessage(d),
				Time: ptrTime(metav1.NewTime(d.GetUpdateTime().AsTime())),
			})
		}
	}
	slices.SortFunc(p.failures, func(a, b fleetv1alpha1.RolloutFailure) int {
		return cmp.Or(a.Time.Compare(b.Time.Time), cmp.Compare(a.Disruption, b.Disruption))
	})
	for _, zone := range zoneOrder(ro.Spec.ZoneOrder, zones) {
		z := zones[zone]
		slices.SortFunc(z.candidates, func(a, b *brokerv1.Machine) int { return cmp.Compare(a.GetId(), b.GetId()) })
		p.zones = append(p.zones, z)
	}
	for _, z := range p.zones {
		if z.counts[inProgress] > 0 {
			p.current = z
			return p
		}
	}
	for _, z := range p.zones {
		if !z.complete() {
			p.current = z
			return p
		}
	}
	return p
}

// classify says where a machine is, given the rollout's last disruption of
// it (nil if none) and whether another actor has one open.
func classify(spec *fleetv1alpha1.MaintenanceRolloutSpec, m *brokerv1.Machine, last *brokerv1.Disruption, busy bool) machineState {
	switch {
	case last != nil && brokerapi.Open(last):
		return inProgress
	case onTarget(spec, m):
		return updated
	case !m.GetHealthy() && last.GetState() == brokerv1.DisruptionState_DISRUPTION_STATE_FAILED:
		return failed
	case !m.GetHealthy():
		return skipped
	case busy || m.GetProvisionState() != brokerv1.ProvisionState_PROVISION_STATE_JOINED:
		return waiting
	}
	// A machine whose maintenance failed and that is healthy again (its
	// remediation worked) is tried again.
	return candidate
}

// zoneOrder is the order the zones are maintained in: those of order that
// have machines, then the rest ascending.
func zoneOrder(order []int32, zones map[int32]*zonePlan) []int32 {
	var out []int32
	seen := map[int32]bool{}
	for _, z := range order {
		if zones[z] != nil && !seen[z] {
			out = append(out, z)
			seen[z] = true
		}
	}
	var rest []int32
	for z := range zones {
		if !seen[z] {
			rest = append(rest, z)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// failureMessage is why a disruption failed: the message of its last step.
func failureMessage(d *brokerv1.Disruption) string {
	msg := d.GetMessage()
	if h := d.GetHistory(); len(h) > 0 {
		msg = h[len(h)-1].GetMessage()
	}
	if len(msg) > 1000 {
		msg = msg[:1000] + "..."
	}
	return cmp.Or(msg, "maintenance failed")
}

// disruptionMessage is what the rollout tells the broker and the cluster
// manager about a disruption it asks for.
func disruptionMessage(ro *fleetv1alpha1.MaintenanceRollout, m *brokerv1.Machine) string {
	msg := fmt.Sprintf("rollout %s: node config %s -> %s in MZ %d", ro.Name, cmp.Or(m.GetSoftware().GetNodeConfig(), "(none)"),
		ro.Spec.NodeConfig, m.GetMaintenanceZone())
	if ro.Spec.OSImage != "" {
		msg += ", OS image " + ro.Spec.OSImage
	}
	return msg
}

func ptrTime(t metav1.Time) *metav1.Time { return &t }
