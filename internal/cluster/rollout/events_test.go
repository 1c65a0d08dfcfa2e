package rollout

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

func TestRolloutOf(t *testing.T) {
	cases := map[string]struct {
		typ   brokerv1.EventType
		actor string
		state brokerv1.DisruptionState
		want  string
	}{
		"approved: to start":              {brokerv1.EventType_EVENT_TYPE_MODIFIED, me, approved, "r1"},
		"completed":                       {brokerv1.EventType_EVENT_TYPE_MODIFIED, me, completed, "r1"},
		"failed":                          {brokerv1.EventType_EVENT_TYPE_MODIFIED, me, failedS, "r1"},
		"its own creation":                {brokerv1.EventType_EVENT_TYPE_ADDED, me, pending, ""},
		"its own start":                   {brokerv1.EventType_EVENT_TYPE_MODIFIED, me, inprogress, ""},
		"a pending one deleted":           {brokerv1.EventType_EVENT_TYPE_DELETED, me, pending, "r1"},
		"another actor's, approved":       {brokerv1.EventType_EVENT_TYPE_MODIFIED, "remediation/web", approved, ""},
		"another rollout's is its own":    {brokerv1.EventType_EVENT_TYPE_MODIFIED, "maintenance/r2", completed, "r2"},
		"no actor at all, completed":      {brokerv1.EventType_EVENT_TYPE_MODIFIED, "", completed, ""},
		"the rollout prefix, no name yet": {brokerv1.EventType_EVENT_TYPE_MODIFIED, "maintenance/", completed, ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := makeDisruption("d1", "m1", tc.actor, tc.state, 0)
			got := ""
			if obj := rolloutOf(&brokerv1.WatchDisruptionsResponse{Type: tc.typ, Disruption: d}); obj != nil {
				got = obj.GetName()
			}
			if got != tc.want {
				t.Errorf("rolloutOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestActiveRolloutsOfNode(t *testing.T) {
	s := runtime.NewScheme()
	if err := fleetv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	done := makeRollout("done")
	meta.SetStatusCondition(&done.Status.Conditions, metav1.Condition{Type: fleetv1alpha1.RolloutCompleteCondition, Status: metav1.ConditionTrue, Reason: "Done"})
	other := makeRollout("other")
	other.Spec.Pools = []string{"db"}
	r := &Reconciler{hub: fake.NewClientBuilder().WithScheme(s).WithObjects(makeRollout("r1"), done, other).Build()}

	node := func(ready corev1.ConditionStatus, cordonedFor string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{fleetv1alpha1.PoolLabel: "web"}},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}}}
		if cordonedFor != "" {
			n.Annotations = map[string]string{fleetv1alpha1.CordonedForAnnotation: cordonedFor}
		}
		return n
	}
	r1 := []reconcile.Request{{NamespacedName: client.ObjectKey{Name: "r1"}}}
	cases := map[string]struct {
		node *corev1.Node
		want []reconcile.Request
	}{
		"uncordoned and Ready: the gate may pass": {node(corev1.ConditionTrue, ""), r1},
		"still cordoned for a disruption":         {node(corev1.ConditionTrue, "d1"), nil},
		"not Ready":                               {node(corev1.ConditionFalse, ""), nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, r.activeRolloutsOfNode(t.Context(), tc.node)); diff != "" {
				t.Errorf("activeRolloutsOfNode (-want +got):\n%s", diff)
			}
		})
	}
}
