package rollout

import (
	"strings"
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
	return &brokerv1.Disruption{Id: id, Machine: machine, Pool: "web", Actor: "strata-hub/maintenance-orchestrator", OnBehalfOf: actor, State: state, CreateTime: at, UpdateTime: at}
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
		paused         bool
		tolerated      int32
		pausedBefore   *metav1.Condition
		completeBefore bool
		gateSince      *metav1.Time
		disruptions    []*brokerv1.Disruption
		machines       []*brokerv1.Machine
		out            outcome
		want           map[string]string // condition type -> status/reason
		wantZones      []fleetv1alpha1.RolloutZonePhase
		wantCurrent    int32
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
		"halted: more machines failed than it tolerates": {
			disruptions: []*brokerv1.Disruption{makeDisruption("d1", "b", me, failedS, 1)},
			want:        map[string]string{"Progressing": "False/Paused", "Paused": "True/MachineFailedMaintenance", "Complete": "False/NotComplete"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"InProgress", "Pending"},
			wantCurrent: 1,
		},
		"a tolerated failure does not halt it": {
			tolerated:   1,
			disruptions: []*brokerv1.Disruption{makeDisruption("d1", "b", me, failedS, 1)},
			want:        map[string]string{"Progressing": "True/Maintaining", "Paused": "False/NotPaused"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"InProgress", "Pending"},
			wantCurrent: 1,
		},
		"a failure whose machine runs the target now does not halt it": {
			disruptions: []*brokerv1.Disruption{makeDisruption("d1", "a", me, failedS, 1)},
			want:        map[string]string{"Paused": "False/NotPaused"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"InProgress", "Pending"},
			wantCurrent: 1,
		},
		"a status that said halted says what the broker shows now": {
			pausedBefore: &metav1.Condition{Type: "Paused", Status: metav1.ConditionTrue, Reason: fleetv1alpha1.RolloutMachineFailedReason,
				Message: "machine b failed"},
			want:        map[string]string{"Progressing": "True/Maintaining", "Paused": "False/NotPaused"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"Pending", "Pending"},
			wantCurrent: 1,
		},
		"the health gate past its timeout says HealthGateFailed and keeps waiting": {
			gateSince:   ptrTime(metav1.NewTime(t0.Add(-11 * time.Minute))),
			out:         outcome{gate: "node x of pool web is not Ready"},
			want:        map[string]string{"Progressing": "False/HealthGateFailed", "Paused": "False/NotPaused"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"Pending", "Pending"},
			wantCurrent: 1,
		},
		"the health gate within its timeout waits": {
			gateSince:   ptrTime(metav1.NewTime(t0.Add(-9 * time.Minute))),
			out:         outcome{gate: "node x of pool web is not Ready"},
			want:        map[string]string{"Progressing": "True/WaitingForHealthGate"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"Pending", "Pending"},
			wantCurrent: 1,
		},
		"a pool stating another node config holds it": {
			out: outcome{block: &blocker{reason: fleetv1alpha1.RolloutPoolNodeConfigDiffersReason, message: "pool web states v1", offTarget: true}},
			want: map[string]string{"Progressing": "False/PoolNodeConfigDiffers", "Paused": "False/NotPaused",
				"Complete": "False/NotComplete"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"Pending", "Pending"},
			wantCurrent: 1,
		},
		"complete is what the machines run now, whatever the status said": {
			completeBefore: true,
			want:           map[string]string{"Complete": "False/NotComplete", "Progressing": "True/Maintaining"},
			wantZones:      []fleetv1alpha1.RolloutZonePhase{"Pending", "Pending"},
			wantCurrent:    1,
		},
		"superseded after it completed: complete, and progressing no more": {
			machines:  []*brokerv1.Machine{makeMachine("a", 1, "v2").obj()},
			out:       outcome{block: &blocker{reason: fleetv1alpha1.RolloutSupersededReason, message: "superseded", offTarget: true}},
			want:      map[string]string{"Complete": "True/Complete", "Progressing": "False/Superseded"},
			wantZones: []fleetv1alpha1.RolloutZonePhase{"Complete"},
		},
		"complete": {
			machines:  []*brokerv1.Machine{makeMachine("a", 1, "v2").obj()},
			want:      map[string]string{"Progressing": "False/Complete", "Complete": "True/Complete"},
			wantZones: []fleetv1alpha1.RolloutZonePhase{"Complete"},
		},
		"a missing pool blocks it": {
			out:         outcome{block: &blocker{reason: fleetv1alpha1.RolloutPoolNotFoundReason, message: "pool web does not exist"}},
			want:        map[string]string{"Progressing": "False/PoolNotFound", "Complete": "False/NotComplete"},
			wantZones:   []fleetv1alpha1.RolloutZonePhase{"Pending", "Pending"},
			wantCurrent: 1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ro := makeRollout("r1")
			ro.Spec.Paused = tc.paused
			ro.Spec.ToleratedFailures = tc.tolerated
			ro.Status.HealthGateFailingSince = tc.gateSince
			if tc.pausedBefore != nil {
				ro.Status.Conditions = []metav1.Condition{*tc.pausedBefore}
			}
			if tc.completeBefore {
				ro.Status.Conditions = append(ro.Status.Conditions, metav1.Condition{Type: "Complete", Status: metav1.ConditionTrue, Reason: "Complete"})
				ro.Status.CompletionTime = ptrTime(metav1.NewTime(t0.Add(-time.Hour)))
			}
			ms := machines
			if tc.machines != nil {
				ms = tc.machines
			}
			s := desiredStatus(ro, newPlan(ro, ms, tc.disruptions), tc.out, now)
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

func makePool(name, nodeConfig string) *fleetv1alpha1.Pool {
	return &fleetv1alpha1.Pool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fleetv1alpha1.PoolSpec{NodeConfig: nodeConfig}}
}

// rolloutAt is a rollout of pool web created minute minutes after t0.
func rolloutAt(name, nodeConfig string, minute int) fleetv1alpha1.MaintenanceRollout {
	ro := makeRollout(name)
	ro.Spec.NodeConfig = nodeConfig
	ro.CreationTimestamp = metav1.NewTime(t0.Add(time.Duration(minute) * time.Minute))
	return *ro
}

// TestHold checks what holds a rollout from disrupting machines: the pools'
// stated node config, which only their owner writes, and older rollouts.
func TestHold(t *testing.T) {
	cases := map[string]struct {
		pool     string // pool web's spec.nodeConfig
		rollout  fleetv1alpha1.MaintenanceRollout
		others   []fleetv1alpha1.MaintenanceRollout
		machines []*brokerv1.Machine
		want     string // reason, "" for none
		wantMsg  string // part of the message
	}{
		"the pool states the rollout's node config": {
			pool: "v2", rollout: rolloutAt("r2", "v2", 0),
		},
		"the pool states another: nothing is disrupted, and the message says how to fix it": {
			pool: "v1", rollout: rolloutAt("r2", "v2", 0),
			want:    fleetv1alpha1.RolloutPoolNodeConfigDiffersReason,
			wantMsg: `pool web states node config v1, not the rollout's v2, so no machine is disrupted: set the pool's node config in Git, or kubectl patch pool web --type merge -p '{"spec":{"nodeConfig":"v2"}}'`,
		},
		"the pool states none: the node profile's is not the rollout's": {
			pool: "", rollout: rolloutAt("r2", "v2", 0),
			want: fleetv1alpha1.RolloutPoolNodeConfigDiffersReason, wantMsg: `pool web states node config "" (the node profile's)`,
		},
		"the pool moved on to a newer rollout's: superseded, never pulling machines back": {
			pool: "v3", rollout: rolloutAt("r2", "v2", 0), others: []fleetv1alpha1.MaintenanceRollout{rolloutAt("r3", "v3", 5)},
			machines: []*brokerv1.Machine{makeMachine("a", 1, "v3").obj()},
			want:     fleetv1alpha1.RolloutSupersededReason, wantMsg: "superseded: pool web states node config v3, that of the newer rollout r3",
		},
		"an older incomplete rollout the pool no longer states does not block a newer one": {
			pool: "v3", rollout: rolloutAt("r3", "v3", 5), others: []fleetv1alpha1.MaintenanceRollout{rolloutAt("r2", "v2", 0)},
			machines: []*brokerv1.Machine{makeMachine("a", 1, "v1").obj(), makeMachine("b", 1, "v2").obj()},
		},
		"an older rollout of the same node config with machines left blocks": {
			pool: "v2", rollout: rolloutAt("r2b", "v2", 5), others: []fleetv1alpha1.MaintenanceRollout{rolloutAt("r2", "v2", 0)},
			machines: []*brokerv1.Machine{makeMachine("a", 1, "v1").obj()},
			want:     fleetv1alpha1.RolloutPoolBusyReason, wantMsg: "rollout r2 of the same pools started first",
		},
		"an older rollout whose machines all run its target does not block, whatever its status says": {
			pool: "v2", rollout: rolloutAt("r2b", "v2", 5), others: []fleetv1alpha1.MaintenanceRollout{rolloutAt("r2", "v2", 0)},
			machines: []*brokerv1.Machine{makeMachine("a", 1, "v2").obj()},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ro := tc.rollout
			all := append([]fleetv1alpha1.MaintenanceRollout{ro}, tc.others...)
			b := hold(&ro, []*fleetv1alpha1.Pool{makePool("web", tc.pool)}, all, tc.machines)
			var got, msg string
			if b != nil {
				got, msg = b.reason, b.message
			}
			if got != tc.want || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("hold = %q %q, want %q containing %q", got, msg, tc.want, tc.wantMsg)
			}
			if b != nil && b.offTarget != (tc.want != fleetv1alpha1.RolloutPoolBusyReason) {
				t.Errorf("offTarget = %t for %s", b.offTarget, tc.want)
			}
		})
	}
}

// TestHaltedByFailures checks that the rollout halts while more machines
// failed their maintenance and do not run the target than spec.toleratedFailures
// allows, with a status that names them and lists only what the broker shows now.
func TestHaltedByFailures(t *testing.T) {
	machines := []*brokerv1.Machine{
		makeMachine("a", 1, "v1").unhealthy().obj(), makeMachine("b", 1, "v1").obj(), makeMachine("c", 1, "v2").obj(),
		makeMachine("d", 1, "v1").obj(),
	}
	cases := map[string]struct {
		tolerated    int32
		disruptions  []*brokerv1.Disruption
		wantHalted   bool
		wantMachines []string
	}{
		"no failure": {},
		"one failure, none tolerated": {
			disruptions: []*brokerv1.Disruption{makeDisruption("d1", "a", me, failedS, 1)},
			wantHalted:  true, wantMachines: []string{"a"},
		},
		"a healed machine whose last maintenance failed still counts": {
			disruptions: []*brokerv1.Disruption{makeDisruption("d1", "a", me, failedS, 1), makeDisruption("d2", "b", me, failedS, 2)},
			tolerated:   1, wantHalted: true, wantMachines: []string{"a", "b"},
		},
		"two failures, two tolerated": {
			disruptions: []*brokerv1.Disruption{makeDisruption("d1", "a", me, failedS, 1), makeDisruption("d2", "b", me, failedS, 2)},
			tolerated:   2, wantMachines: []string{"a", "b"},
		},
		"a failure followed by a success, or a machine on the target, does not count": {
			disruptions: []*brokerv1.Disruption{
				makeDisruption("d1", "c", me, failedS, 1),
				makeDisruption("d2", "d", me, failedS, 2), makeDisruption("d3", "d", me, completed, 3),
			},
		},
		"another actor's failure does not count": {
			disruptions: []*brokerv1.Disruption{makeDisruption("d1", "a", "remediation/web", failedS, 1)},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ro := makeRollout("r1")
			ro.Spec.ToleratedFailures = tc.tolerated
			// A status from an earlier pass lists a failure the broker no longer shows.
			ro.Status.Failures = []fleetv1alpha1.RolloutFailure{{Disruption: "old", Machine: "gone"}}
			p := newPlan(ro, machines, tc.disruptions)
			if got := p.halted(tc.tolerated); got != tc.wantHalted {
				t.Errorf("halted = %t, want %t", got, tc.wantHalted)
			}
			s := desiredStatus(ro, p, outcome{}, metav1.NewTime(t0))
			var got []string
			for _, f := range s.Failures {
				got = append(got, f.Machine)
			}
			if diff := cmp.Diff(tc.wantMachines, got); diff != "" {
				t.Errorf("status failures (-want +got):\n%s", diff)
			}
			c := meta.FindStatusCondition(s.Conditions, fleetv1alpha1.RolloutPausedCondition)
			if (c.Status == metav1.ConditionTrue) != tc.wantHalted {
				t.Errorf("Paused = %+v, want halted %t", c, tc.wantHalted)
			}
			if tc.wantHalted {
				for _, m := range tc.wantMachines {
					if !strings.Contains(c.Message, m) {
						t.Errorf("Paused message does not name machine %s: %s", m, c.Message)
					}
				}
				if !strings.Contains(c.Message, "strata rollouts resume r1") {
					t.Errorf("Paused message does not say how to go on: %s", c.Message)
				}
			}
		})
	}
}

// TestCompletionTimeIsARecord checks that completionTime stays when the
// machines move on, while Complete follows them.
func TestCompletionTimeIsARecord(t *testing.T) {
	ro := makeRollout("r1")
	first := metav1.NewTime(t0.Add(-time.Hour))
	ro.Status.CompletionTime = &first
	s := desiredStatus(ro, newPlan(ro, []*brokerv1.Machine{makeMachine("a", 1, "v3").obj()}, nil), outcome{}, metav1.NewTime(t0))
	if !s.CompletionTime.Equal(&first) {
		t.Errorf("completionTime = %v, want the first completion %v", s.CompletionTime, first)
	}
	if meta.IsStatusConditionTrue(s.Conditions, fleetv1alpha1.RolloutCompleteCondition) {
		t.Error("Complete is True while a machine runs another node config")
	}
}
