package appcache

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

func TestStripPod(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "kv-0", Namespace: "team-a", UID: "u",
			Labels: map[string]string{appsv1alpha1.AppLabel: "kv", appsv1alpha1.StatefulAppLabel: "kv"},
			Annotations: map[string]string{
				"big":                                strings.Repeat("x", 100),
				appsv1alpha1.StopRequestedAnnotation: "disk check",
				appsv1alpha1.StopApprovedAnnotation:  "op@2026-05-01T12:00:00Z",
			},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
		},
		Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app", Image: "x"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, RestartCount: 2, Image: "registry.example/app:1.0",
				ImageID: "registry.example/app@sha256:0123", ContainerID: "containerd://abc",
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}}}},
	}
	out, err := stripPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Pod)
	if got.ManagedFields != nil || got.Spec.Containers != nil || got.Spec.NodeName != "n1" || got.UID != "u" {
		t.Errorf("stripped pod keeps %+v, spec %+v", got.ObjectMeta, got.Spec)
	}
	wantAnnotations := map[string]string{
		appsv1alpha1.StopRequestedAnnotation: "disk check",
		appsv1alpha1.StopApprovedAnnotation:  "op@2026-05-01T12:00:00Z",
	}
	if diff := cmp.Diff(wantAnnotations, got.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	// The containers' images and IDs are not read.
	wantStatus := *pod.Status.DeepCopy()
	wantStatus.ContainerStatuses[0].Image, wantStatus.ContainerStatuses[0].ImageID, wantStatus.ContainerStatuses[0].ContainerID = "", "", ""
	if diff := cmp.Diff(wantStatus, got.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(pod.Labels, got.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if _, err := stripPod(&appsv1.Deployment{}); err != nil {
		t.Errorf("other kinds: %v", err)
	}
}

func TestStripNode(t *testing.T) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{fleetv1alpha1.MaintenanceZoneLabel: "1"},
			Annotations: map[string]string{fleetv1alpha1.CordonedForAnnotation: "d1", "node.alpha.kubernetes.io/ttl": "0"}},
		Spec: corev1.NodeSpec{Unschedulable: true, PodCIDR: "10.0.0.0/24"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Message: "kubelet has sufficient memory available"},
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue},
		}, Images: []corev1.ContainerImage{{SizeBytes: 1}}},
	}
	out, err := stripNode(node)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Node)
	want := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: node.Labels, Annotations: map[string]string{fleetv1alpha1.CordonedForAnnotation: "d1"}},
		Spec:       corev1.NodeSpec{Unschedulable: true},
		Status:     corev1.NodeStatus{Conditions: node.Status.Conditions[1:]}, // Ready only
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("node (-want +got):\n%s", diff)
	}
}

func TestStripPV(t *testing.T) {
	affinity := &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}},
	}}}}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv1", Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": "sim"}},
		Spec: corev1.PersistentVolumeSpec{NodeAffinity: affinity, ClaimRef: &corev1.ObjectReference{Namespace: "team-a", Name: "data-kv-0"},
			StorageClassName: "local-ssd", PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/mnt/ssd0"}}},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
	}
	out, err := stripPV(pv)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.PersistentVolume)
	want := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv1"},
		Spec:       corev1.PersistentVolumeSpec{NodeAffinity: affinity, ClaimRef: pv.Spec.ClaimRef, StorageClassName: "local-ssd"},
		Status:     corev1.PersistentVolumeStatus{Phase: corev1.VolumeBound},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pv (-want +got):\n%s", diff)
	}
}

func TestStripSecret(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "kv-ca", Namespace: "kv", UID: "u1", ResourceVersion: "7",
		Labels:      map[string]string{"app": "kv"},
		Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": `{"data":{"ca.crt":"LS0t"}}`}}
	kept := metav1.ObjectMeta{Name: "kv-ca", Namespace: "kv", UID: "u1", ResourceVersion: "7"}
	for _, tc := range []struct {
		name    string
		in, out any
	}{
		{"metadata only", &metav1.PartialObjectMetadata{ObjectMeta: meta}, &metav1.PartialObjectMetadata{ObjectMeta: kept}},
		{"a whole Secret loses its data", &corev1.Secret{ObjectMeta: meta, Data: map[string][]byte{"ca.crt": []byte("pem")}, Type: corev1.SecretTypeOpaque},
			&corev1.Secret{ObjectMeta: kept, Type: corev1.SecretTypeOpaque}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := stripSecret(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.out, got); diff != "" {
				t.Errorf("cached (-want +got):\n%s", diff)
			}
		})
	}
}
