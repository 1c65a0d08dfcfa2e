package remediation

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

func TestNextRung(t *testing.T) {
	ago := func(d time.Duration) time.Time { return t0.Add(-d) }
	tests := map[string]struct {
		history     []*brokerv1.Disruption
		want        brokerv1.OperationKind
		wantLastEnd time.Time
	}{
		"a machine never remediated is rebooted": {want: reboot},
		"after a reboot, a reimage": {
			history:     []*brokerv1.Disruption{remediation("d1", "m1", reboot).ended(completed, ago(5*time.Minute)).obj()},
			want:        reimage,
			wantLastEnd: ago(5 * time.Minute),
		},
		"a failed reboot is a rung tried": {
			history:     []*brokerv1.Disruption{remediation("d1", "m1", reboot).ended(failed, ago(5*time.Minute)).obj()},
			want:        reimage,
			wantLastEnd: ago(5 * time.Minute),
		},
		"after a reboot and a reimage, a replace": {
			history: []*brokerv1.Disruption{
				remediation("d1", "m1", reboot).ended(completed, ago(10*time.Minute)).obj(),
				remediation("d2", "m1", reimage).ended(completed, ago(5*time.Minute)).obj(),
			},
			want:        replace,
			wantLastEnd: ago(5 * time.Minute),
		},
		"after a failed replace the ladder is spent": {
			history: []*brokerv1.Disruption{
				remediation("d1", "m1", reboot).ended(failed, ago(10*time.Minute)).obj(),
				remediation("d2", "m1", reimage).ended(failed, ago(8*time.Minute)).obj(),
				remediation("d3", "m1", replace).ended(failed, ago(5*time.Minute)).obj(),
			},
			want:        noOp,
			wantLastEnd: ago(5 * time.Minute),
		},
		"the highest rung tried counts, not the latest": {
			history: []*brokerv1.Disruption{
				remediation("d1", "m1", reimage).ended(completed, ago(10*time.Minute)).obj(),
				remediation("d2", "m1", reboot).ended(completed, ago(5*time.Minute)).obj(),
			},
			want:        replace,
			wantLastEnd: ago(5 * time.Minute),
		},
		"a cancelled rung was not tried, but the machine is given time after it": {
			history:     []*brokerv1.Disruption{remediation("d1", "m1", reboot).ended(cancelled, ago(time.Minute)).obj()},
			want:        reboot,
			wantLastEnd: ago(time.Minute),
		},
		"rungs older than the window are forgotten": {
			history: []*brokerv1.Disruption{
				remediation("d1", "m1", reboot).ended(completed, ago(45*time.Minute)).obj(),
				remediation("d2", "m1", reimage).ended(completed, ago(31*time.Minute)).obj(),
			},
			want: reboot,
		},
		"rungs in another pool do not count": {
			history:     []*brokerv1.Disruption{remediation("d1", "m1", reboot).pool("old").ended(completed, ago(5*time.Minute)).obj()},
			want:        reboot,
			wantLastEnd: time.Time{},
		},
		"planned maintenance is no rung, but the machine is given time after it": {
			history:     []*brokerv1.Disruption{planned("d1", "m1").ended(completed, ago(2*time.Minute)).obj()},
			want:        reboot,
			wantLastEnd: ago(2 * time.Minute),
		},
		"a person's remediation is a rung tried": {
			history:     []*brokerv1.Disruption{remediation("d1", "m1", reboot).actor("alice").ended(completed, ago(5*time.Minute)).obj()},
			want:        reimage,
			wantLastEnd: ago(5 * time.Minute),
		},
		"an open rung is not a rung tried": {
			history: []*brokerv1.Disruption{remediation("d1", "m1", reboot).state(inProgress).obj()},
			want:    reboot,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := readRecord(testPool, tc.history, t0.Add(-testPolicy.window))
			if got := nextRung(r); got != tc.want {
				t.Errorf("nextRung = %v, want %v", got, tc.want)
			}
			if !r.lastEnd.Equal(tc.wantLastEnd) {
				t.Errorf("lastEnd = %v, want %v", r.lastEnd, tc.wantLastEnd)
			}
		})
	}
}

func TestAssess(t *testing.T) {
	ago := func(d time.Duration) time.Time { return t0.Add(-d) }
	tests := map[string]struct {
		machine    machine
		wantSignal string
		wantDue    time.Time
	}{
		"healthy": {
			machine: makeMachine("m1", 1).node().obj(),
		},
		"a broker fault is due a hold-off after it was first seen": {
			machine:    makeMachine("m1", 1).node().fault("hardware: fan failed", ago(10*time.Second)).obj(),
			wantSignal: "hardware: fan failed",
			wantDue:    t0.Add(50 * time.Second),
		},
		"a NotReady Node is due the threshold after it turned": {
			machine:    makeMachine("m1", 1).notReady(corev1.ConditionFalse, ago(30*time.Second)).obj(),
			wantSignal: "Node NotReady since 2030-01-02T09:59:30Z",
			wantDue:    t0.Add(90 * time.Second),
		},
		"a silent kubelet": {
			machine:    makeMachine("m1", 1).notReady(corev1.ConditionUnknown, ago(3*time.Minute)).obj(),
			wantSignal: "Node Ready Unknown (kubelet silent) since 2030-01-02T09:57:00Z",
			wantDue:    ago(time.Minute),
		},
		"the earlier of two signals": {
			machine: makeMachine("m1", 1).fault("hardware: disk", ago(10*time.Second)).
				notReady(corev1.ConditionFalse, ago(5*time.Minute)).obj(),
			wantSignal: "hardware: disk; Node NotReady since 2030-01-02T09:55:00Z",
			wantDue:    ago(3 * time.Minute),
		},
		"after a rung, the signals count from its end": {
			machine: makeMachine("m1", 1).fault("maintenance failed: reboot", ago(20*time.Minute)).
				notReady(corev1.ConditionFalse, ago(20*time.Minute)).
				history(remediation("d1", "m1", reboot).ended(failed, ago(30*time.Second)).obj()).obj(),
			wantSignal: "maintenance failed: reboot; Node NotReady since 2030-01-02T09:40:00Z",
			wantDue:    t0.Add(30 * time.Second),
		},
		"a broker fault without a message": {
			machine:    makeMachine("m1", 1).fault("", ago(time.Hour)).obj(),
			wantSignal: "unhealthy in the broker",
			wantDue:    ago(time.Hour - time.Minute),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := assess(tc.machine, testPolicy)
			if h.signal != tc.wantSignal {
				t.Errorf("signal = %q, want %q", h.signal, tc.wantSignal)
			}
			if !h.due.Equal(tc.wantDue) {
				t.Errorf("due = %v, want %v", h.due, tc.wantDue)
			}
		})
	}
}

func TestGuard(t *testing.T) {
	tests := map[string]struct {
		total, unhealthy int
		zoneMachines     map[int32]int
		zoneUnhealthy    map[int32]int
		maxPercent       int
		want             string
	}{
		"one broken host": {
			total: 200, unhealthy: 1, zoneMachines: map[int32]int{7: 10}, zoneUnhealthy: map[int32]int{7: 1}, maxPercent: 20,
		},
		"a whole zone": {
			total: 200, unhealthy: 10, zoneMachines: map[int32]int{7: 10, 8: 10}, zoneUnhealthy: map[int32]int{7: 10}, maxPercent: 20,
			want: "remediation halted: all 10 machines of pool web in MZ 7 are unhealthy — a zone event, not broken hosts; " +
				"no machine is rebooted, reimaged or replaced until the zone recovers",
		},
		"two whole zones": {
			total: 200, unhealthy: 20, zoneMachines: map[int32]int{3: 10, 7: 10}, zoneUnhealthy: map[int32]int{3: 10, 7: 10}, maxPercent: 20,
			want: "remediation halted: all 20 machines of pool web in MZs 3, 7 are unhealthy — zone events, not broken hosts; " +
				"no machine is rebooted, reimaged or replaced until the zones recover",
		},
		"the only machine of a zone is a broken host, not a zone": {
			total: 20, unhealthy: 1, zoneMachines: map[int32]int{4: 1}, zoneUnhealthy: map[int32]int{4: 1}, maxPercent: 20,
		},
		"most of a zone is not all of it": {
			total: 200, unhealthy: 9, zoneMachines: map[int32]int{7: 10}, zoneUnhealthy: map[int32]int{7: 9}, maxPercent: 20,
		},
		"more than the share of the pool": {
			total: 40, unhealthy: 9, zoneMachines: map[int32]int{1: 20, 2: 20}, zoneUnhealthy: map[int32]int{1: 5, 2: 4}, maxPercent: 20,
			want: "remediation halted: 9 of 40 machines of pool web are unhealthy, more than 20% of the pool — a fleet event, " +
				"not broken hosts; no machine is rebooted, reimaged or replaced until 8 or fewer are unhealthy",
		},
		"exactly the share of the pool": {
			total: 40, unhealthy: 8, zoneMachines: map[int32]int{1: 20, 2: 20}, zoneUnhealthy: map[int32]int{1: 4, 2: 4}, maxPercent: 20,
		},
		"one machine of a small pool is always allowed": {
			total: 3, unhealthy: 1, zoneMachines: map[int32]int{1: 1, 2: 1, 3: 1}, zoneUnhealthy: map[int32]int{1: 1}, maxPercent: 20,
		},
		"two of a small pool are too many": {
			total: 3, unhealthy: 2, zoneMachines: map[int32]int{1: 1, 2: 1, 3: 1}, zoneUnhealthy: map[int32]int{1: 1, 2: 1}, maxPercent: 20,
			want: "remediation halted: 2 of 3 machines of pool web are unhealthy, more than 20% of the pool — a fleet event, " +
				"not broken hosts; no machine is rebooted, reimaged or replaced until 1 or fewer are unhealthy",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := guard(testPool, tc.total, tc.unhealthy, tc.zoneMachines, tc.zoneUnhealthy, tc.maxPercent); got != tc.want {
				t.Errorf("guard = %q, want %q", got, tc.want)
			}
		})
	}
}

// got is the part of a step a test compares.
type got struct {
	Machine string
	Verb    verb
	Op      brokerv1.OperationKind
}

func TestDecide(t *testing.T) {
	ago := func(d time.Duration) time.Time { return t0.Add(-d) }
	healthyZone := func(mz int32, n int) []machine {
		var ms []machine
		for i := range n {
			ms = append(ms, makeMachine(fmt.Sprintf("h%d-%d", mz, i), mz).node().obj())
		}
		return ms
	}
	with := func(ms ...[]machine) []machine {
		var all []machine
		for _, m := range ms {
			all = append(all, m...)
		}
		return all
	}
	tests := map[string]struct {
		machines   []machine
		nodesKnown bool
		lastHalted time.Time
		want       []got
		wantHalted bool
	}{
		"a healthy pool has nothing to do": {
			machines: healthyZone(1, 5), nodesKnown: true,
		},
		"a fault past its hold-off gets a reboot": {
			machines: with(healthyZone(1, 5), []machine{makeMachine("m1", 1).node().fault("hardware: fan", ago(2*time.Minute)).obj()}),
			want:     []got{{"m1", verbCreate, reboot}}, nodesKnown: true,
		},
		"a fault within its hold-off waits": {
			machines: with(healthyZone(1, 5), []machine{makeMachine("m1", 1).node().fault("hardware: fan", ago(10*time.Second)).obj()}),
			want:     []got{{"m1", verbWait, reboot}}, nodesKnown: true,
		},
		"a failed reboot is followed by a reimage with the machine's software": {
			machines: with(healthyZone(1, 5), []machine{makeMachine("m1", 1).node().fault("maintenance failed: reboot", ago(time.Hour)).
				history(remediation("d1", "m1", reboot).ended(failed, ago(2*time.Minute)).obj()).obj()}),
			want: []got{{"m1", verbCreate, reimage}}, nodesKnown: true,
		},
		"an approved rung is started, a pending or running one followed": {
			machines: with(healthyZone(1, 20), []machine{
				makeMachine("m1", 1).notReady(corev1.ConditionFalse, ago(time.Hour)).open(remediation("d1", "m1", reboot).state(approved).obj()).obj(),
				makeMachine("m2", 2).fault("hardware: disk", ago(time.Hour)).open(remediation("d2", "m2", reimage).obj()).obj(),
				makeMachine("m3", 3).fault("hardware: disk", ago(time.Hour)).open(remediation("d3", "m3", replace).state(inProgress).obj()).obj(),
			}),
			want:       []got{{"m1", verbStart, reboot}, {"m2", verbFollow, reimage}, {"m3", verbFollow, replace}},
			nodesKnown: true,
		},
		"a machine healthy again before its rung started is let off": {
			machines: with(healthyZone(1, 5), []machine{
				makeMachine("m1", 1).node().open(remediation("d1", "m1", reboot).obj()).obj(),
				makeMachine("m2", 2).node().open(remediation("d2", "m2", reboot).state(approved).obj()).obj(),
				makeMachine("m3", 3).node().open(remediation("d3", "m3", reboot).state(inProgress).obj()).obj(),
			}),
			want:       []got{{"m1", verbCancel, reboot}, {"m2", verbCancel, reboot}, {"m3", verbFollow, reboot}},
			nodesKnown: true,
		},
		"without the Nodes, no rung is called off": {
			machines:   []machine{makeMachine("m1", 1).open(remediation("d1", "m1", reboot).obj()).obj()},
			want:       []got{{"m1", verbFollow, reboot}},
			nodesKnown: false,
		},
		"a failed replace spends the ladder": {
			machines: with(healthyZone(1, 5), []machine{makeMachine("m1", 1).fault("maintenance failed: replace", ago(time.Hour)).
				history(
					remediation("d1", "m1", reboot).ended(completed, ago(20*time.Minute)).obj(),
					remediation("d2", "m1", reimage).ended(completed, ago(15*time.Minute)).obj(),
					remediation("d3", "m1", replace).ended(failed, ago(10*time.Minute)).obj(),
				).obj()}),
			want: []got{{"m1", verbSpent, noOp}}, nodesKnown: true,
		},
		"machines under maintenance, someone else's remediation or joining are left alone": {
			machines: with(healthyZone(1, 5), []machine{
				makeMachine("m1", 1).notReady(corev1.ConditionFalse, ago(time.Hour)).open(planned("d1", "m1").state(inProgress).obj()).obj(),
				makeMachine("m2", 2).fault("hardware: disk", ago(time.Hour)).open(remediation("d2", "m2", reboot).actor("alice").obj()).obj(),
				makeMachine("m3", 3).fault("hardware: disk", ago(time.Hour)).joining().obj(),
			}),
			nodesKnown: true,
		},
		"a whole zone down halts new rungs, not open ones": {
			machines: with(healthyZone(1, 10), []machine{
				makeMachine("z1", 7).fault("hardware: power", ago(time.Hour)).obj(),
				makeMachine("z2", 7).fault("hardware: power", ago(time.Hour)).open(remediation("d2", "z2", reboot).state(approved).obj()).obj(),
				makeMachine("z3", 7).notReady(corev1.ConditionUnknown, ago(time.Hour)).obj(),
			}),
			want:       []got{{"z1", verbWait, reboot}, {"z2", verbStart, reboot}, {"z3", verbWait, reboot}},
			wantHalted: true, nodesKnown: true,
		},
		"a Node NotReady for a moment counts toward the guard": {
			machines: with(healthyZone(1, 10), []machine{
				makeMachine("z1", 7).fault("hardware: power", ago(time.Hour)).obj(),
				makeMachine("z2", 7).notReady(corev1.ConditionUnknown, ago(time.Second)).obj(),
			}),
			want:       []got{{"z1", verbWait, reboot}, {"z2", verbWait, reboot}},
			wantHalted: true, nodesKnown: true,
		},
		"after the guard lifts, the pool settles before a new rung": {
			machines: with(healthyZone(1, 10), []machine{
				makeMachine("z1", 7).fault("hardware: power", ago(time.Hour)).node().obj(),
				makeMachine("z2", 7).node().obj(),
			}),
			lastHalted: ago(time.Minute),
			want:       []got{{"z1", verbWait, reboot}},
			nodesKnown: true,
		},
		"once the pool settled, the stragglers are remediated": {
			machines: with(healthyZone(1, 10), []machine{
				makeMachine("z1", 7).fault("hardware: power", ago(time.Hour)).node().obj(),
				makeMachine("z2", 7).node().obj(),
			}),
			lastHalted: ago(2 * time.Minute),
			want:       []got{{"z1", verbCreate, reboot}},
			nodesKnown: true,
		},
		"a machine under maintenance is not part of its zone": {
			machines: with(healthyZone(1, 10), []machine{
				makeMachine("z1", 7).fault("hardware: power", ago(time.Hour)).obj(),
				makeMachine("z2", 7).notReady(corev1.ConditionFalse, ago(time.Minute)).open(planned("d2", "z2").state(inProgress).obj()).obj(),
				makeMachine("z3", 7).node().obj(),
			}),
			want:       []got{{"z1", verbCreate, reboot}},
			nodesKnown: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := decide(view{pool: testPool, actor: testActor, machines: tc.machines, nodesKnown: tc.nodesKnown, lastHalted: tc.lastHalted, now: t0}, testPolicy)
			var gotSteps []got
			for _, s := range p.steps {
				gotSteps = append(gotSteps, got{s.machine, s.verb, s.op})
				if s.verb == verbCreate && s.op == reimage && s.software.GetNodeConfig() != "kubelet-1.37-general" {
					t.Errorf("reimage of %s with software %v, want the machine's", s.machine, s.software)
				}
			}
			if diff := cmp.Diff(tc.want, gotSteps); diff != "" {
				t.Errorf("steps (-want +got):\n%s", diff)
			}
			if (p.halted != "") != tc.wantHalted {
				t.Errorf("halted = %q, want halted %v", p.halted, tc.wantHalted)
			}
		})
	}
}

func TestNext(t *testing.T) {
	ms := []machine{
		makeMachine("m1", 1).fault("hardware: fan", t0.Add(-10*time.Second)).obj(),
		makeMachine("m2", 2).notReady(corev1.ConditionFalse, t0.Add(-time.Minute)).obj(),
		makeMachine("m3", 3).node().obj(), makeMachine("m4", 4).node().obj(), makeMachine("m5", 5).node().obj(),
		makeMachine("m6", 6).node().obj(), makeMachine("m7", 7).node().obj(), makeMachine("m8", 8).node().obj(),
		makeMachine("m9", 9).node().obj(), makeMachine("m10", 10).node().obj(),
	}
	p := decide(view{pool: testPool, actor: testActor, machines: ms, nodesKnown: true, now: t0}, testPolicy)
	if got := p.next(t0, time.Minute); got != 50*time.Second {
		t.Errorf("next = %v, want 50s: when the first signal is due", got)
	}
	if got := p.next(t0, 20*time.Second); got != 20*time.Second {
		t.Errorf("next = %v, want the resync of 20s", got)
	}
}

func TestCondition(t *testing.T) {
	due := t0.Add(time.Minute)
	tests := map[string]struct {
		plan      plan
		nodesNote string
		want      metav1.Condition
	}{
		"healthy": {
			plan: plan{total: 40},
			want: metav1.Condition{Status: metav1.ConditionTrue, Reason: fleetv1alpha1.HostsHealthyReason, Message: "all 40 machines healthy"},
		},
		"healthy in the broker's view, Nodes unknown": {
			plan: plan{total: 40}, nodesNote: `cluster "wl" is not Ready`,
			want: metav1.Condition{Status: metav1.ConditionUnknown, Reason: fleetv1alpha1.ClusterNotReadyReason,
				Message: `the broker reports none of the 40 machines unhealthy, but their Nodes cannot be read: cluster "wl" is not Ready`},
		},
		"remediating": {
			plan: plan{total: 40, unhealthy: 4, budget: "over budget: pool web already has 4 open disruptions", steps: []step{
				{machine: "m1", zone: 1, verb: verbFollow, op: reboot, disruption: remediation("d1", "m1", reboot).obj(), health: health{signal: "hardware: fan"}},
				{machine: "m2", zone: 2, verb: verbFollow, op: reimage, disruption: remediation("d2", "m2", reimage).state(inProgress).obj(), health: health{signal: "hardware: disk"}},
				{machine: "m3", zone: 3, verb: verbWait, op: reimage, after: "reboot completed", health: health{signal: "hardware: nic", due: due}},
				{machine: "m4", zone: 4, verb: verbCreate, op: reboot, outcome: "reboot waits for the disruption budget", health: health{signal: "hardware: psu"}},
				{machine: "m5", zone: 5, verb: verbCancel, op: reboot},
				{machine: "m6", zone: 6, verb: verbSpent, after: "replace failed", health: health{signal: "maintenance failed: replace"}},
			}},
			want: metav1.Condition{Status: metav1.ConditionFalse, Reason: fleetv1alpha1.RemediatingReason, Message: "4 of 40 machines unhealthy: " +
				"m1 [MZ 1]: reboot waits for its Node to be drained (hardware: fan); " +
				"m2 [MZ 2]: reimage in progress (hardware: disk); " +
				"m3 [MZ 3]: reimage from 2030-01-02T10:01:00Z, after a reboot completed (hardware: nic); " +
				"m4 [MZ 4]: reboot waits for the disruption budget (hardware: psu); " +
				"m6 [MZ 6]: still unhealthy after a replace failed: it needs a person; the ladder starts over 30m0s after that (maintenance failed: replace); " +
				"the broker refused more: over budget: pool web already has 4 open disruptions"},
		},
		"halted": {
			plan: plan{total: 200, unhealthy: 10, halted: "remediation halted: all 10 machines of pool web in MZ 7 are unhealthy", steps: []step{
				{machine: "z1", zone: 7, verb: verbStart, op: reboot, outcome: "reboot started", health: health{signal: "hardware: power"}},
				{machine: "z2", zone: 7, verb: verbWait, op: reboot, health: health{signal: "hardware: power", due: due}},
			}},
			want: metav1.Condition{Status: metav1.ConditionFalse, Reason: fleetv1alpha1.RemediationHaltedReason,
				Message: "remediation halted: all 10 machines of pool web in MZ 7 are unhealthy; " +
					"remediation already under way continues: z1 [MZ 7]: reboot started (hardware: power)"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.want.Type, tc.want.ObservedGeneration = fleetv1alpha1.PoolHostsHealthyCondition, 3
			if diff := cmp.Diff(tc.want, hostsCondition(tc.plan, 3, testPolicy.window, tc.nodesNote)); diff != "" {
				t.Errorf("condition (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConditionNamesAtMostTenMachines(t *testing.T) {
	p := plan{total: 100, unhealthy: 12}
	for i := range 12 {
		p.steps = append(p.steps, step{machine: fmt.Sprintf("m%02d", i), verb: verbWait, op: reboot, health: health{signal: "x", due: t0}})
	}
	msg := hostsCondition(p, 1, time.Hour, "").Message
	if !strings.Contains(msg, "m09 [MZ 0]") || strings.Contains(msg, "m10 [MZ 0]") || !strings.HasSuffix(msg, "; and 2 more") {
		t.Errorf("message = %q, want the first 10 machines and a count of the rest", msg)
	}
}

func TestQuiet(t *testing.T) {
	notReady := makeMachine("m1", 1).notReady(corev1.ConditionFalse, t0).obj().node
	ready := makeMachine("m2", 1).node().obj().node
	tests := map[string]struct {
		unhealthy int32
		nodes     []corev1.Node
		open      map[string]*brokerv1.Disruption
		want      bool
	}{
		"every Node Ready, none unhealthy": {nodes: []corev1.Node{*ready}, want: true},
		"the broker counts one unhealthy":  {unhealthy: 1, nodes: []corev1.Node{*ready}},
		"a Node NotReady":                  {nodes: []corev1.Node{*ready, *notReady}},
		"a Node NotReady under maintenance": {
			nodes: []corev1.Node{*ready, *notReady}, open: map[string]*brokerv1.Disruption{"m1": planned("d1", "m1").obj()}, want: true,
		},
		"a remediation of ours is open": {
			nodes: []corev1.Node{*ready}, open: map[string]*brokerv1.Disruption{"m2": remediation("d1", "m2", reboot).obj()},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			bp := &brokerv1.Pool{Name: testPool, Status: &brokerv1.PoolStatus{Unhealthy: tc.unhealthy}}
			if got := quiet(bp, tc.nodes, tc.open, testActor); got != tc.want {
				t.Errorf("quiet = %v, want %v", got, tc.want)
			}
		})
	}
}
