package aggregator

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/strata-dev/strata/internal/console/store"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

func TestPodRow(t *testing.T) {
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-1", CreationTimestamp: metav1.NewTime(created),
				Labels: map[string]string{"apps.strata.dev/app": "web", "apps.strata.dev/app-version": "v2"}},
			Spec:   corev1.PodSpec{NodeName: "n1"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning},
		}
	}
	want := func(f func(*store.Pod)) store.Pod {
		p := store.Pod{Cluster: "c1", Namespace: "ns", Name: "web-1", App: "web", Version: "v2", Node: "n1", Phase: "Running", Created: created}
		f(&p)
		return p
	}
	for _, tc := range []struct {
		name string
		pod  func(*corev1.Pod)
		want store.Pod
	}{
		{"ready", func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: 2}, {RestartCount: 1}}
		}, want(func(p *store.Pod) { p.Ready, p.Restarts = true, 3 })},
		{"crash loop", func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{
				{Name: "a", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 1}}},
				{Name: "b", RestartCount: 5, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 5m"}}},
			}
		}, want(func(p *store.Pod) { p.Reason, p.Message, p.Restarts = "CrashLoopBackOff", "back-off 5m", 5 })},
		{"terminated", func(p *corev1.Pod) {
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "init", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}}}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "a", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}}}
		}, want(func(p *store.Pod) { p.Reason = "OOMKilled" })},
		{"unschedulable", func(p *corev1.Pod) {
			p.Spec.NodeName, p.Status.Phase = "", corev1.PodPending
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/3 nodes are available"}}
		}, want(func(p *store.Pod) {
			p.Node, p.Phase, p.Reason, p.Message = "", "Pending", "Unschedulable", "0/3 nodes are available"
		})},
		{"a StatelessApp's pod is its app's, not its application's", func(p *corev1.Pod) {
			p.Labels["apps.strata.dev/app"], p.Labels["apps.strata.dev/stateless-app"] = "shop", "web"
		}, want(func(*store.Pod) {})},
		{"a StatefulApp's pod likewise", func(p *corev1.Pod) {
			p.Labels["apps.strata.dev/app"], p.Labels["apps.strata.dev/stateful-app"] = "shop", "web"
		}, want(func(*store.Pod) {})},
		{"evicted", func(p *corev1.Pod) {
			p.Status.Phase, p.Status.Reason, p.Status.Message = corev1.PodFailed, "Evicted", "low on memory"
		}, want(func(p *store.Pod) { p.Phase, p.Reason, p.Message = "Failed", "Evicted", "low on memory" })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base()
			tc.pod(p)
			if diff := cmp.Diff(tc.want, podRow("c1", p)); diff != "" {
				t.Errorf("podRow (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeRow(t *testing.T) {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "m-1", Labels: map[string]string{
			"fleet.strata.dev/machine": "m-1", "fleet.strata.dev/datacenter": "dc1", "fleet.strata.dev/maintenance-zone": "7",
			"fleet.strata.dev/rack": "r3", "fleet.strata.dev/pool": "p1", "fleet.strata.dev/node-profile": "general",
		}},
		Spec: corev1.NodeSpec{Unschedulable: true},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionTrue},
				{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse},
				{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady", Message: "PLEG is not healthy"},
			},
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("31500m"), corev1.ResourceMemory: resource.MustParse("128Gi")},
			NodeInfo:    corev1.NodeSystemInfo{KubeletVersion: "v1.37.0"},
		},
	}
	want := store.Node{Cluster: "c1", Name: "m-1", Machine: "m-1", Datacenter: "dc1", MaintenanceZone: 7, Rack: "r3", Pool: "p1",
		Profile: "general", Ready: "False", Unschedulable: true,
		Problems:       "MemoryPressure=True; Ready=False: KubeletNotReady: PLEG is not healthy",
		KubeletVersion: "v1.37.0", CPUMilli: 31500, MemoryBytes: 128 << 30}
	if diff := cmp.Diff(want, nodeRow("c1", n)); diff != "" {
		t.Errorf("nodeRow (-want +got):\n%s", diff)
	}
}

func TestEventRow(t *testing.T) {
	last := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		event  corev1.Event
		nodes  bool
		want   store.Event
		wanted bool
	}{
		{"a StatelessApp's", corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "e"}, Count: 3, LastTimestamp: metav1.NewTime(last),
			InvolvedObject: corev1.ObjectReference{APIVersion: "apps.strata.dev/v1alpha1", Kind: "StatelessApp", Name: "web"}, Reason: "Rolled"},
			false, store.Event{Cluster: "c1", Namespace: "ns", Name: "e", ObjectKind: "StatelessApp", ObjectName: "web", Reason: "Rolled", Count: 3, LastSeen: last}, true},
		{"a series", corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e"}, Series: &corev1.EventSeries{Count: 9, LastObservedTime: metav1.NewMicroTime(last)},
			InvolvedObject: corev1.ObjectReference{APIVersion: "fleet.strata.dev/v1alpha1", Kind: "Pool", Name: "p"}},
			false, store.Event{Cluster: "c1", Name: "e", ObjectKind: "Pool", ObjectName: "p", Count: 9, LastSeen: last}, true},
		{"a Node's, kept", corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e"}, EventTime: metav1.NewMicroTime(last),
			InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: "n"}},
			true, store.Event{Cluster: "c1", Name: "e", ObjectKind: "Node", ObjectName: "n", Count: 1, LastSeen: last}, true},
		{"a Node's, on the hub", corev1.Event{InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: "n"}},
			false, store.Event{}, false},
		{"a Pod's", corev1.Event{InvolvedObject: corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Name: "p"}},
			true, store.Event{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := eventRow("c1", &tc.event, tc.nodes)
			if ok != tc.wanted {
				t.Fatalf("kept = %t, want %t", ok, tc.wanted)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("eventRow (-want +got):\n%s", diff)
			}
		})
	}
}

func TestObjectRowDropsManagedFieldsAndLastApplied(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "fleet.strata.dev/v1alpha1", "kind": "Pool",
		"metadata": map[string]any{"name": "p", "managedFields": []any{map[string]any{"manager": "x"}},
			"annotations": map[string]any{corev1.LastAppliedConfigAnnotation: "{}"}},
		"spec": map[string]any{"capacity": int64(3)},
	}}
	row, err := objectRow("hub", store.KindPool, u)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"fleet.strata.dev/v1alpha1","kind":"Pool","metadata":{"name":"p"},"spec":{"capacity":3}}`
	if diff := cmp.Diff(want, string(row.Data)); diff != "" {
		t.Errorf("stored JSON (-want +got):\n%s", diff)
	}
}

func TestEnums(t *testing.T) {
	got := []string{
		enum(brokerv1.MachineState_MACHINE_STATE_AVAILABLE.String(), "MACHINE_STATE_"),
		enum(brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS.String(), "DISRUPTION_STATE_"),
		enum(brokerv1.ProvisionState_PROVISION_STATE_JOINED.String(), "PROVISION_STATE_"),
		enum(brokerv1.DisruptionReason_DISRUPTION_REASON_POOL_SHRINK.String(), "DISRUPTION_REASON_"),
		enum(brokerv1.DisruptionState_DISRUPTION_STATE_UNSPECIFIED.String(), "DISRUPTION_STATE_"),
	}
	want := []string{store.MachineAvailable, store.DisruptionInProgress, "joined", store.ReasonPoolShrink, ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("enums (-want +got):\n%s", diff)
	}
}
