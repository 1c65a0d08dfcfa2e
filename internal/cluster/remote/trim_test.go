package remote

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// TestTrimNode: the cached Node keeps what the hub's controllers read
// (labels, Strata's annotations, cordon, taints, Ready, allocatable) and
// nothing else.
func TestTrimNode(t *testing.T) {
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}
	allocatable := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourcePods: resource.MustParse("110")}
	taints := []corev1.Taint{{Key: fleetv1alpha1.StartupTaintKey, Value: "true", Effect: corev1.TaintEffectNoSchedule}}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: "m-1", UID: "u", ResourceVersion: "7", Labels: map[string]string{fleetv1alpha1.PoolLabel: "p"},
			Annotations: map[string]string{
				fleetv1alpha1.CordonedForAnnotation: "d-1", "fleet.strata.dev/pool-labels": "a,b",
				"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake",
			},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kwok"}},
		},
		Spec: corev1.NodeSpec{Unschedulable: true, Taints: taints, PodCIDR: "10.0.0.0/24", ProviderID: "kwok://m-1"},
		Status: corev1.NodeStatus{
			Capacity: allocatable, Allocatable: allocatable,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse}, ready},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}},
			NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.37.1", MachineID: "abc"},
		},
	}
	out, err := TrimNode(node)
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: "m-1", UID: "u", ResourceVersion: "7", Labels: node.Labels,
			Annotations: map[string]string{fleetv1alpha1.CordonedForAnnotation: "d-1", "fleet.strata.dev/pool-labels": "a,b"},
		},
		Spec:   corev1.NodeSpec{Unschedulable: true, Taints: taints},
		Status: corev1.NodeStatus{Allocatable: allocatable, Conditions: []corev1.NodeCondition{ready}},
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("trimmed Node (-want +got):\n%s", diff)
	}
	if out, _ := TrimNode(&corev1.Pod{}); out == nil {
		t.Error("TrimNode of another kind lost it")
	}
}
