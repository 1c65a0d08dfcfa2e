package manager

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/drain"
	"github.com/strata-dev/strata/internal/cluster/nodeutil"
	"github.com/strata-dev/strata/internal/testutil"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

func TestPlanNode(t *testing.T) {
	const started = "2026-11-22T10:00:00Z"
	node := func() *testutil.NodeWrapper { return testutil.MakeNode("m1", "web", "1") }
	disruption := func(id string, state brokerv1.DisruptionState) *brokerv1.Disruption {
		return &brokerv1.Disruption{Id: id, Machine: "m1", State: state, Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE}
	}
	pending := disruption("d1", brokerv1.DisruptionState_DISRUPTION_STATE_PENDING)
	approved := disruption("d1", brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED)
	inProgress := disruption("d1", brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS)

	tests := map[string]struct {
		node *corev1.Node
		open *brokerv1.Disruption
		want plan
	}{
		"no disruption, nothing of Strata's: left alone": {
			node: node().Obj(),
		},
		"no disruption, cordoned by someone: left alone": {
			node: node().Cordoned().Obj(),
		},
		"pending, schedulable: cordon and start the drain": {
			node: node().Obj(), open: pending,
			want: plan{cordon: true, startDrain: true, drain: true},
		},
		"pending, cordoned by Strata for it: go on draining": {
			node: node().Cordoned().Annotation(fleetv1alpha1.CordonedForAnnotation, "d1").Annotation(fleetv1alpha1.DrainStartedAnnotation, started).Obj(),
			open: pending,
			want: plan{drain: true},
		},
		"pending, cordoned by someone else: drain without taking the cordon": {
			node: node().Cordoned().Obj(), open: pending,
			want: plan{foreignCordon: true, startDrain: true, drain: true},
		},
		"pending, cordoned by someone else, drain under way: noted once only": {
			node: node().Cordoned().Annotation(fleetv1alpha1.DrainStartedAnnotation, started).Obj(), open: pending,
			want: plan{drain: true},
		},
		"pending, someone uncordoned Strata's cordon: cordon again": {
			node: node().Annotation(fleetv1alpha1.CordonedForAnnotation, "d1").Annotation(fleetv1alpha1.DrainStartedAnnotation, started).Obj(),
			open: pending,
			want: plan{cordon: true, drain: true},
		},
		"pending, still cordoned by Strata for an earlier disruption: the cordon passes on": {
			node: node().Cordoned().Annotation(fleetv1alpha1.CordonedForAnnotation, "d0").Obj(), open: pending,
			want: plan{takeOverFrom: "d0", startDrain: true, drain: true},
		},
		"approved: stays cordoned, the drain marks go": {
			node: node().Cordoned().Annotation(fleetv1alpha1.CordonedForAnnotation, "d1").Annotation(fleetv1alpha1.DrainStartedAnnotation, started).
				Annotation(fleetv1alpha1.DrainBlockedAnnotation, "app/p: budget").Obj(),
			open: approved,
			want: plan{clearDrain: true},
		},
		"in progress, in step: left alone": {
			node: node().Cordoned().Annotation(fleetv1alpha1.CordonedForAnnotation, "d1").Obj(), open: inProgress,
		},
		"in progress, a Node that came back schedulable: cordon it": {
			node: node().Obj(), open: inProgress,
			want: plan{cordon: true},
		},
		"in progress, cordoned by someone else: left alone": {
			node: node().Cordoned().Obj(), open: inProgress,
		},
		"over: Strata's cordon is undone": {
			node: node().Cordoned().Annotation(fleetv1alpha1.CordonedForAnnotation, "d1").Obj(),
			want: plan{uncordonFor: "d1"},
		},
		"over, someone had uncordoned it: Strata's mark is removed": {
			node: node().Annotation(fleetv1alpha1.CordonedForAnnotation, "d1").Obj(),
			want: plan{uncordonFor: "d1"},
		},
		"over, cordoned by someone else: stays cordoned, the drain marks go": {
			node: node().Cordoned().Annotation(fleetv1alpha1.DrainStartedAnnotation, started).Obj(),
			want: plan{clearDrain: true},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := planNode(tc.node, tc.open)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(plan{})); diff != "" {
				t.Errorf("planNode() (-want +got):\n%s", diff)
			}
			if got.idle() != (tc.want == plan{}) {
				t.Errorf("idle() = %v", got.idle())
			}
		})
	}
}

// TestPlanNeverUncordonsForeignCordon walks a Node cordoned by a person
// through every state of a disruption: no step ever makes it schedulable
// or marks it as Strata's.
func TestPlanNeverUncordonsForeignCordon(t *testing.T) {
	node := testutil.MakeNode("m1", "web", "1").Cordoned().Obj()
	for _, state := range []brokerv1.DisruptionState{
		brokerv1.DisruptionState_DISRUPTION_STATE_PENDING, brokerv1.DisruptionState_DISRUPTION_STATE_PENDING,
		brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED, brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS,
		brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED,
	} {
		var open *brokerv1.Disruption
		if state != brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED {
			open = &brokerv1.Disruption{Id: "d1", State: state}
		}
		p := planNode(node, open)
		if p.cordon || p.takeOverFrom != "" || p.uncordonFor != "" {
			t.Fatalf("%v: plan %+v touches a cordon that is not Strata's", state, p)
		}
		// Apply the marks the plan sets, as the manager would.
		if p.startDrain {
			nodeutil.SetAnnotation(node, fleetv1alpha1.DrainStartedAnnotation, "2026-11-22T10:00:00Z")
		}
		if p.clearDrain {
			nodeutil.SetAnnotation(node, fleetv1alpha1.DrainStartedAnnotation, "")
		}
	}
	if !node.Spec.Unschedulable || node.Annotations[fleetv1alpha1.CordonedForAnnotation] != "" {
		t.Errorf("node after the disruption: unschedulable %v, annotations %v", node.Spec.Unschedulable, node.Annotations)
	}
}

func TestDrainCondition(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC))
	started := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	overdue := func(node string, blocked ...string) overdueDrain {
		return overdueDrain{node: node, disruption: "d-" + node, reason: "planned-upgrade", started: started, blocked: blocked}
	}
	tests := map[string]struct {
		overdue     []overdueDrain
		wantStatus  metav1.ConditionStatus
		wantReason  string
		wantMessage string
	}{
		"none overdue": {
			wantStatus: metav1.ConditionTrue, wantReason: "DrainsWithinDeadline",
			wantMessage: "no drain has run past its deadline of 10m0s",
		},
		"one, held by a budget": {
			overdue:    []overdueDrain{overdue("m1", "app/api-1: The disruption budget api needs 1 healthy pods and has 1 currently")},
			wantStatus: metav1.ConditionFalse, wantReason: "DrainDeadlineExceeded",
			wantMessage: "1 drains have run past their deadline of 10m0s; their disruptions stay Pending and nothing is forced: " +
				"node m1 (disruption d-m1, planned-upgrade, drain started 2026-11-22T10:00:00Z): " +
				"evictions refused: app/api-1: The disruption budget api needs 1 healthy pods and has 1 currently",
		},
		"many: the first are named": {
			overdue:    []overdueDrain{overdue("m1", "a/1: x", "a/2: x"), overdue("m2"), overdue("m3", "a/3: x"), overdue("m4"), overdue("m5")},
			wantStatus: metav1.ConditionFalse, wantReason: "DrainDeadlineExceeded",
			wantMessage: "5 drains have run past their deadline of 10m0s; their disruptions stay Pending and nothing is forced: " +
				"node m1 (disruption d-m1, planned-upgrade, drain started 2026-11-22T10:00:00Z): evictions refused: a/1: x; a/2: x; " +
				"node m2 (disruption d-m2, planned-upgrade, drain started 2026-11-22T10:00:00Z): pods are still terminating; " +
				"node m3 (disruption d-m3, planned-upgrade, drain started 2026-11-22T10:00:00Z): evictions refused: a/3: x; and 2 more",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := drainCondition(4, tc.overdue, 10*time.Minute, now)
			want := metav1.Condition{Type: "DrainsOnSchedule", Status: tc.wantStatus, ObservedGeneration: 4, LastTransitionTime: now,
				Reason: tc.wantReason, Message: tc.wantMessage}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("drainCondition() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBlockedAnnotation(t *testing.T) {
	if got := blockedAnnotation(nil); got != "" {
		t.Errorf("blockedAnnotation(nil) = %q", got)
	}
	var many []string
	for i := range 12 {
		many = append(many, "app/p-"+string(rune('a'+i))+": budget")
	}
	got := strings.Split(blockedAnnotation(many), "\n")
	if len(got) != 11 || got[10] != "and 2 more" || got[0] != "app/p-a: budget" {
		t.Errorf("blockedAnnotation(12 pods) = %q, want 10 pods and a count of the rest", got)
	}
	if len(many) != 12 || many[10] != "app/p-k: budget" {
		t.Errorf("blockedAnnotation changed its argument: %q", many)
	}
}

func TestNames(t *testing.T) {
	if got := reasonName(brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE); got != "planned-upgrade" {
		t.Errorf("reasonName() = %q", got)
	}
	if got := reasonName(brokerv1.DisruptionReason_DISRUPTION_REASON_POOL_SHRINK); got != "pool-shrink" {
		t.Errorf("reasonName() = %q", got)
	}
	if got := stateName(brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS); got != "in-progress" {
		t.Errorf("stateName() = %q", got)
	}
}

func TestPace(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	refused := drain.Result{Remaining: 3, Blocked: []drain.Blocked{{Namespace: "app", Name: "p", Reason: "budget"}}}
	leaving := drain.Result{Remaining: 3}
	partly := drain.Result{Remaining: 3, Evicted: 1, Blocked: []drain.Blocked{{Namespace: "app", Name: "p", Reason: "budget"}}}
	steps := []struct {
		res  drain.Result
		want time.Duration
	}{
		{leaving, 2 * time.Second},
		{refused, time.Second},
		{refused, 2 * time.Second},
		{refused, 4 * time.Second},
		{refused, 8 * time.Second},
		{refused, 16 * time.Second},
		{refused, 30 * time.Second},
		{refused, 30 * time.Second},
		{partly, time.Second}, // an eviction went through: the backoff starts over
		{refused, time.Second},
		{leaving, 2 * time.Second},
	}
	ds := &drainState{}
	for i, s := range steps {
		ds.pace(s.res, now)
		if got := ds.next.Sub(now); got != s.want {
			t.Errorf("pass %d (%+v): next pass after %s, want %s", i, s.res, got, s.want)
		}
	}
}
