package rollout

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// machineWrapper builds broker machines for tests.
type machineWrapper struct{ m *brokerv1.Machine }

func makeMachine(id string, mz int32, nodeConfig string) *machineWrapper {
	return &machineWrapper{&brokerv1.Machine{
		Id: id, MaintenanceZone: mz, Healthy: true, Pool: "web",
		ProvisionState: brokerv1.ProvisionState_PROVISION_STATE_JOINED,
		Software:       &brokerv1.Software{NodeConfig: nodeConfig, OsImage: "os-1"},
	}}
}

func (w *machineWrapper) unhealthy() *machineWrapper { w.m.Healthy = false; return w }
func (w *machineWrapper) joining() *machineWrapper {
	w.m.ProvisionState = brokerv1.ProvisionState_PROVISION_STATE_JOINING
	return w
}
func (w *machineWrapper) obj() *brokerv1.Machine { return w.m }

func makeDisruption(id, machine, actor string, state brokerv1.DisruptionState, minute int) *brokerv1.Disruption {
	at := timestamppb.New(t0.Add(time.Duration(minute) * time.Minute))
	return &brokerv1.Disruption{Id: id, Machine: machine, Pool: "web", Actor: actor, State: state, CreateTime: at, UpdateTime: at}
}

func makeRollout(name string) *fleetv1alpha1.MaintenanceRollout {
	return &fleetv1alpha1.MaintenanceRollout{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec:       fleetv1alpha1.MaintenanceRolloutSpec{Pools: []string{"web"}, NodeConfig: "v2"},
	}
}

const (
	pending    = brokerv1.DisruptionState_DISRUPTION_STATE_PENDING
	approved   = brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED
	inprogress = brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS
	completed  = brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED
	failedS    = brokerv1.DisruptionState_DISRUPTION_STATE_FAILED
	me         = "maintenance/r1"
)

func TestNewPlan(t *testing.T) {
	type zone struct {
		Zone                                 int32
		Started                              bool
		Candidates                           []string
		Updated, InProgress, Failed, Skipped int32
		Waiting                              int32
	}
	cases := map[string]struct {
		order       []int32
		machines    []*brokerv1.Machine
		disruptions []*brokerv1.Disruption
		wantZones   []zone
		wantCurrent int32 // 0: none
		wantStart   []string
		wantFailed  []string
	}{
		"a fresh rollout starts at the lowest zone": {
			machines: []*brokerv1.Machine{
				makeMachine("m-3a", 3, "v1").obj(), makeMachine("m-1b", 1, "v1").obj(), makeMachine("m-1a", 1, "v1").obj(),
			},
			wantZones: []zone{
				{Zone: 1, Candidates: []string{"m-1a", "m-1b"}},
				{Zone: 3, Candidates: []string{"m-3a"}},
			},
			wantCurrent: 1,
		},
		"the stated order comes first, the rest ascending": {
			order: []int32{7, 3, 9},
			machines: []*brokerv1.Machine{
				makeMachine("a", 1, "v1").obj(), makeMachine("b", 3, "v1").obj(), makeMachine("c", 7, "v1").obj(), makeMachine("d", 2, "v1").obj(),
			},
			wantZones: []zone{
				{Zone: 7, Candidates: []string{"c"}}, {Zone: 3, Candidates: []string{"b"}},
				{Zone: 1, Candidates: []string{"a"}}, {Zone: 2, Candidates: []string{"d"}},
			},
			wantCurrent: 7,
		},
		"a zone with disruptions open is finished before an earlier incomplete one": {
			machines: []*brokerv1.Machine{makeMachine("a", 1, "v1").obj(), makeMachine("b", 2, "v1").obj()},
			disruptions: []*brokerv1.Disruption{
				makeDisruption("d1", "b", me, approved, 1),
			},
			wantZones: []zone{
				{Zone: 1, Candidates: []string{"a"}},
				{Zone: 2, Started: true, InProgress: 1},
			},
			wantCurrent: 2,
			wantStart:   []string{"d1"},
		},
		"updated, in progress, unhealthy, joining and busy machines are no candidates": {
			machines: []*brokerv1.Machine{
				makeMachine("done", 1, "v2").obj(),
				makeMachine("going", 1, "v1").obj(),
				makeMachine("sick", 1, "v1").unhealthy().obj(),
				makeMachine("new", 1, "v1").joining().obj(),
				makeMachine("busy", 1, "v1").obj(),
				makeMachine("next", 1, "v1").obj(),
			},
			disruptions: []*brokerv1.Disruption{
				makeDisruption("d1", "done", me, completed, 1),
				makeDisruption("d2", "going", me, pending, 2),
				makeDisruption("d3", "busy", "remediation/web", inprogress, 3),
				makeDisruption("d4", "next", "remediation/web", completed, 3),
			},
			wantZones:   []zone{{Zone: 1, Started: true, Candidates: []string{"next"}, Updated: 1, InProgress: 1, Skipped: 1, Waiting: 2}},
			wantCurrent: 1,
		},
		"a failed machine that is still unhealthy counts as done; a healed one is tried again": {
			machines: []*brokerv1.Machine{
				makeMachine("broken", 1, "v1").unhealthy().obj(),
				makeMachine("healed", 1, "v1").obj(),
				makeMachine("ok", 1, "v2").obj(),
			},
			disruptions: []*brokerv1.Disruption{
				makeDisruption("d1", "broken", me, failedS, 1),
				makeDisruption("d2", "healed", me, failedS, 2),
				makeDisruption("d3", "ok", me, completed, 3),
			},
			wantZones:   []zone{{Zone: 1, Started: true, Candidates: []string{"healed"}, Updated: 1, Failed: 1}},
			wantCurrent: 1,
			wantFailed:  []string{"d1", "d2"},
		},
		"the last disruption of a machine decides, not an older one": {
			machines: []*brokerv1.Machine{makeMachine("m", 1, "v2").obj()},
			disruptions: []*brokerv1.Disruption{
				makeDisruption("old", "m", me, failedS, 1),
				makeDisruption("new", "m", me, completed, 5),
			},
			wantZones: []zone{{Zone: 1, Started: true, Updated: 1}},
		},
		"every machine updated: complete": {
			machines:  []*brokerv1.Machine{makeMachine("a", 1, "v2").obj(), makeMachine("b", 2, "v2").obj()},
			wantZones: []zone{{Zone: 1, Updated: 1}, {Zone: 2, Updated: 1}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ro := makeRollout("r1")
			ro.Spec.ZoneOrder = tc.order
			p := newPlan(ro, tc.machines, tc.disruptions)
			var got []zone
			for _, z := range p.zones {
				gz := zone{Zone: z.zone, Started: z.started, Updated: z.counts[updated], InProgress: z.counts[inProgress],
					Failed: z.counts[failed], Skipped: z.counts[skipped], Waiting: z.counts[waiting]}
				for _, m := range z.candidates {
					gz.Candidates = append(gz.Candidates, m.GetId())
				}
				got = append(got, gz)
			}
			if diff := cmp.Diff(tc.wantZones, got); diff != "" {
				t.Errorf("zones (-want +got):\n%s", diff)
			}
			var current int32
			if p.current != nil {
				current = p.current.zone
			}
			if current != tc.wantCurrent {
				t.Errorf("current zone = %d, want %d", current, tc.wantCurrent)
			}
			var start, fails []string
			for _, d := range p.toStart {
				start = append(start, d.GetId())
			}
			for _, f := range p.failures {
				fails = append(fails, f.Disruption)
			}
			if diff := cmp.Diff(tc.wantStart, start); diff != "" {
				t.Errorf("to start (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantFailed, fails); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOnTargetOSImage(t *testing.T) {
	ro := makeRollout("r1")
	ro.Spec.OSImage = "os-2"
	if onTarget(&ro.Spec, makeMachine("m", 1, "v2").obj()) {
		t.Error("a machine on the node config but the old OS image is on target")
	}
	m := makeMachine("m", 1, "v2").obj()
	m.Software.OsImage = "os-2"
	if !onTarget(&ro.Spec, m) {
		t.Error("a machine on both is not on target")
	}
}

func TestDesiredStatus(t *testing.T) {
	now := metav1.NewTime(t0)
	machines := []*brokerv1.Machine{
		makeMachine("a", 1, "v2").obj(), makeMachine("b", 1, "v1").obj(), makeMachine("c", 2, "v1").obj(),
	}
	cases := map[string]struct {
		paused       bool
		pausedBefore *metav1.Condition
		disruptions  []*brokerv1.Disruption
		machines     []*brokerv1.Machine
		out          outcome
		want         map[string]string // condition type -> status/reason
		wantZones    []fleetv1alpha1.RolloutZonePhase
		wantCurrent  int32
	}{
		"maintaining the first zone": {
			disruptions: []*brokerv1.Disruption{makeDisruption("d1", "a", me, completed, 1), makeDisruption("d2", "b", me, inprogress, 2)},
			want:        map[string]string{"Progressing": "True/Maintaining", "Paused": "False/NotPaused", "Complete": "False/NotComplete"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"InProgress", "Pending"},
			wantCurrent: 1,
		},
		"waiting for the health gate": {
			disruptions: []*brokerv1.Disruption{makeDisruption("d1", "a", me, completed, 1), makeDisruption("d2", "b", me, completed, 2)},
			machines:    []*brokerv1.Machine{makeMachine("a", 1, "v2").obj(), makeMachine("b", 1, "v2").obj(), makeMachine("c", 2, "v1").obj()},
			out:         outcome{gate: "node x of pool web is not Ready"},
			want:        map[string]string{"Progressing": "True/WaitingForHealthGate"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"Complete", "Pending"},
			wantCurrent: 2,
		},
		"over budget with nothing of its own open": {
			out:         outcome{overBudget: "over budget: pool web already has 2 open disruptions"},
			want:        map[string]string{"Progressing": "True/WaitingForBudget"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"Pending", "Pending"},
			wantCurrent: 1,
		},
		"paused by a person": {
			paused:      true,
			want:        map[string]string{"Progressing": "False/Paused", "Paused": "True/PausedByUser"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"Pending", "Pending"},
			wantCurrent: 1,
		},
		"paused itself for a failure, and keeps saying so": {
			paused: true,
			pausedBefore: &metav1.Condition{Type: "Paused", Status: metav1.ConditionTrue, Reason: fleetv1alpha1.RolloutMachineFailedReason,
				Message: "machine b failed"},
			want:        map[string]string{"Progressing": "False/Paused", "Paused": "True/MachineFailedMaintenance"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"Pending", "Pending"},
			wantCurrent: 1,
		},
		"pausing itself now": {
			out:         outcome{pause: fleetv1alpha1.RolloutHealthGateFailedReason, pauseMessage: "gate"},
			want:        map[string]string{"Progressing": "False/Paused", "Paused": "True/HealthGateFailed"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"Pending", "Pending"},
			wantCurrent: 1,
		},
		"complete": {
			machines:  []*brokerv1.Machine{makeMachine("a", 1, "v2").obj()},
			want:      map[string]string{"Progressing": "False/Complete", "Complete": "True/Complete"},
			wantZones: []fleetv1alpha1.RolloutZonePhase{"Complete"},
		},
		"a missing pool blocks it": {
			out:  outcome{block: &blocker{fleetv1alpha1.RolloutPoolNotFoundReason, "pool web does not exist"}},
			want: map[string]string{"Progressing": "False/PoolNotFound", "Complete": "False/NotComplete"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ro := makeRollout("r1")
			ro.Spec.Paused = tc.paused
			if tc.pausedBefore != nil {
				ro.Status.Conditions = []metav1.Condition{*tc.pausedBefore}
			}
			ms := machines
			if tc.machines != nil {
				ms = tc.machines
			}
			var p *plan
			if tc.out.block == nil {
				p = newPlan(ro, ms, tc.disruptions)
			}
			s := desiredStatus(ro, p, tc.out, now)
			for typ, want := range tc.want {
				c := meta.FindStatusCondition(s.Conditions, typ)
				if c == nil || string(c.Status)+"/"+c.Reason != want || c.ObservedGeneration != 1 {
					t.Errorf("condition %s = %+v, want %s", typ, c, want)
				}
			}
			var zones []fleetv1alpha1.RolloutZonePhase
			for _, z := range s.Zones {
				zones = append(zones, z.Phase)
			}
			if diff := cmp.Diff(tc.wantZones, zones); diff != "" {
				t.Errorf("zone phases (-want +got):\n%s", diff)
			}
			if s.CurrentZone != tc.wantCurrent {
				t.Errorf("current zone = %d, want %d", s.CurrentZone, tc.wantCurrent)
			}
		})
	}
}

func TestHealthGateFailingSinceIsKept(t *testing.T) {
	ro := makeRollout("r1")
	earlier := metav1.NewTime(t0.Add(-time.Minute))
	ro.Status.HealthGateFailingSince = &earlier
	p := newPlan(ro, []*brokerv1.Machine{makeMachine("a", 1, "v1").obj()}, nil)
	s := desiredStatus(ro, p, outcome{gate: "x"}, metav1.NewTime(t0))
	if !s.HealthGateFailingSince.Equal(&earlier) {
		t.Errorf("failing since = %v, want %v", s.HealthGateFailingSince, earlier)
	}
	if s := desiredStatus(ro, p, outcome{}, metav1.NewTime(t0)); s.HealthGateFailingSince != nil {
		t.Errorf("failing since = %v once the gate passes, want unset", s.HealthGateFailingSince)
	}
}

func TestOlderAndOverlapping(t *testing.T) {
	older := makeRollout("a")
	older.CreationTimestamp = metav1.NewTime(t0)
	newer := makeRollout("b")
	newer.CreationTimestamp = metav1.NewTime(t0.Add(time.Second))
	other := makeRollout("c")
	other.Spec.Pools = []string{"db"}
	other.CreationTimestamp = metav1.NewTime(t0.Add(-time.Hour))
	if !olderAndOverlapping(older, newer) || olderAndOverlapping(newer, older) || olderAndOverlapping(other, newer) {
		t.Error("only an older rollout of a shared pool goes first")
	}
	twin := makeRollout("z")
	twin.CreationTimestamp = older.CreationTimestamp
	if !olderAndOverlapping(older, twin) || olderAndOverlapping(twin, older) {
		t.Error("rollouts created in the same second go in name order")
	}
}

func TestUnhealthyMachinesKeepTheRolloutOpen(t *testing.T) {
	ro := makeRollout("r1")
	p := newPlan(ro, []*brokerv1.Machine{makeMachine("a", 1, "v2").obj(), makeMachine("sick", 1, "v1").unhealthy().obj()}, nil)
	if p.current != nil || p.done() {
		t.Fatalf("current = %v, done = %t; want no zone left to work on, and not done", p.current, p.done())
	}
	s := desiredStatus(ro, p, outcome{}, metav1.NewTime(t0))
	if c := meta.FindStatusCondition(s.Conditions, fleetv1alpha1.RolloutCompleteCondition); c.Status != metav1.ConditionFalse {
		t.Errorf("Complete = %+v with an unhealthy machine on the old software", c)
	}
	if c := meta.FindStatusCondition(s.Conditions, fleetv1alpha1.RolloutProgressingCondition); c.Reason != fleetv1alpha1.RolloutWaitingForMachinesReason {
		t.Errorf("Progressing = %+v, want WaitingForMachines", c)
	}
}

func TestAnEarlierRolloutOfTheSameNameIsIgnored(t *testing.T) {
	ro := makeRollout("r1")
	ro.CreationTimestamp = metav1.NewTime(t0.Add(time.Hour))
	old := makeDisruption("d-old", "a", me, failedS, 1) // before the rollout was created
	p := newPlan(ro, []*brokerv1.Machine{makeMachine("a", 1, "v1").obj()}, []*brokerv1.Disruption{old})
	if len(p.failures) != 0 || p.zones[0].started || len(p.zones[0].candidates) != 1 {
		t.Errorf("the plan took an earlier rollout's disruption as its own: failures %v, started %t", p.failures, p.zones[0].started)
	}
}

func TestFailuresDroppedFromAFullStatusAreNotNew(t *testing.T) {
	var seen, all []fleetv1alpha1.RolloutFailure
	for i := range maxFailures + 6 {
		f := fleetv1alpha1.RolloutFailure{Disruption: fmt.Sprint("d", i), Time: ptrTime(metav1.NewTime(t0.Add(time.Duration(i) * time.Second)))}
		all = append(all, f)
		if i >= 6 {
			seen = append(seen, f)
		}
	}
	if got := unseenFailures(seen, all); len(got) != 0 {
		t.Errorf("unseen = %v, want none: the first 6 were dropped from a full status", got)
	}
	next := fleetv1alpha1.RolloutFailure{Disruption: "d-new", Time: ptrTime(metav1.NewTime(t0.Add(time.Hour)))}
	if got := unseenFailures(seen, append(all, next)); len(got) != 1 || got[0].Disruption != "d-new" {
		t.Errorf("unseen = %v, want d-new", got)
	}
}
