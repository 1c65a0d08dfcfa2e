package refstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// podBuilder builds a pod of app kv.
type podBuilder struct{ pod *corev1.Pod }

func makePod(name string) *podBuilder {
	return &podBuilder{pod: &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID("uid-" + name),
			Labels: map[string]string{appsv1alpha1.StatefulAppLabel: "kv"}},
		Spec: corev1.PodSpec{NodeName: "node-" + name, Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-" + name}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}}
}

func (b *podBuilder) ready() *podBuilder {
	b.pod.Status.Phase = corev1.PodRunning
	b.pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	return b
}

func (b *podBuilder) running() *podBuilder {
	b.pod.Status.Phase = corev1.PodRunning
	b.pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
	return b
}

func (b *podBuilder) terminating() *podBuilder {
	b.pod.DeletionTimestamp = &metav1.Time{Time: t0}
	b.pod.Finalizers = []string{"test"}
	return b
}

func (b *podBuilder) noClaim() *podBuilder {
	b.pod.Spec.Volumes = nil
	return b
}

func (b *podBuilder) annotate(k, v string) *podBuilder {
	b.pod.Annotations = map[string]string{k: v}
	return b
}

func (b *podBuilder) obj() *corev1.Pod { return b.pod }

func makeClaim(name, uid string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", UID: types.UID(uid)}}
}

func TestBuildSnapshot(t *testing.T) {
	claims := []*corev1.PersistentVolumeClaim{makeClaim("data-kv-0", "c0"), makeClaim("data-kv-1", "c1"), makeClaim("data-kv-2", "c2")}
	pods := []*corev1.Pod{
		makePod("kv-2").terminating().ready().obj(),
		makePod("kv-0").ready().annotate(appsv1alpha1.StopApprovedAnnotation, "shop/kv/kv-0/EVICT/1@2030-01-02T10:05:00Z").obj(),
		makePod("kv-1").running().obj(),
		makePod("kv-3").obj(),
		makePod("kv-4").ready().obj(), // its claim is not there yet
		makePod("kv-5").ready().noClaim().obj(),
		makePod("kv-6").ready().noClaim().annotate(appsv1alpha1.StopApprovedAnnotation, "garbage").obj(),
		makePod("web-0").ready().obj(),
		makePod("kv-07").ready().obj(),
	}
	got := BuildSnapshot("kv", pods, claims, ptr.To[int32](3))
	want := Snapshot{Replicas: ptr.To[int32](3), Pods: []Pod{
		{Name: "kv-0", Ordinal: 0, Node: "node-kv-0", Up: true, Volume: "claim/data-kv-0/c0",
			StopApproved: &StopApproval{OperationID: "shop/kv/kv-0/EVICT/1", Deadline: time.Date(2030, 1, 2, 10, 5, 0, 0, time.UTC)}},
		{Name: "kv-1", Ordinal: 1, Node: "node-kv-1", Why: "not Ready"},
		{Name: "kv-2", Ordinal: 2, Node: "node-kv-2", Why: "terminating"},
		{Name: "kv-3", Ordinal: 3, Node: "node-kv-3", Why: "Pending"},
		{Name: "kv-4", Ordinal: 4, Node: "node-kv-4", Why: "waiting for claim data-kv-4"},
		{Name: "kv-5", Ordinal: 5, Node: "node-kv-5", Up: true, Volume: "pod/kv-5/uid-kv-5"},
		{Name: "kv-6", Ordinal: 6, Node: "node-kv-6", Up: true, Volume: "pod/kv-6/uid-kv-6"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("BuildSnapshot (-want +got):\n%s", diff)
	}
}

// recorder keeps the snapshots a watcher sends.
type recorder struct {
	mu    sync.Mutex
	snaps []Snapshot
}

func (r *recorder) Observe(s Snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.snaps = append(r.snaps, s)
}

func (r *recorder) last() (Snapshot, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.snaps) == 0 {
		return Snapshot{}, false
	}
	return r.snaps[len(r.snaps)-1], true
}

func TestWatcher(t *testing.T) {
	other := makePod("kv-9").ready().obj()
	other.Labels = map[string]string{appsv1alpha1.StatefulAppLabel: "web"}
	client := fake.NewClientset(makeClaim("data-kv-0", "c0"), makeClaim("data-kv-1", "c1"), makePod("kv-0").ready().obj(), other)
	rec := &recorder{}
	w := &Watcher{Client: client, Namespace: "shop", App: "kv", Store: rec, Logger: testr.New(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	wait := func(what string, want []Pod) {
		t.Helper()
		var got Snapshot
		eventually(t, what, func() bool {
			var ok bool
			got, ok = rec.last()
			return ok && cmp.Equal(want, got.Pods)
		})
	}
	wait("kv-0 up", []Pod{{Name: "kv-0", Ordinal: 0, Node: "node-kv-0", Up: true, Volume: "claim/data-kv-0/c0"}})

	if _, err := client.CoreV1().Pods("shop").Create(ctx, makePod("kv-1").ready().obj(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("kv-1 up", []Pod{
		{Name: "kv-0", Ordinal: 0, Node: "node-kv-0", Up: true, Volume: "claim/data-kv-0/c0"},
		{Name: "kv-1", Ordinal: 1, Node: "node-kv-1", Up: true, Volume: "claim/data-kv-1/c1"},
	})
	if _, err := client.CoreV1().Pods("shop").UpdateStatus(ctx, makePod("kv-1").running().obj(), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Pods("shop").Delete(ctx, "kv-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("kv-0 gone, kv-1 not Ready", []Pod{{Name: "kv-1", Ordinal: 1, Node: "node-kv-1", Why: "not Ready"}})

	// A claim made again is a new volume.
	if err := client.CoreV1().PersistentVolumeClaims("shop").Delete(ctx, "data-kv-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().PersistentVolumeClaims("shop").Create(ctx, makeClaim("data-kv-1", "c1-new"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods("shop").UpdateStatus(ctx, makePod("kv-1").ready().obj(), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("kv-1 up on a new claim", []Pod{{Name: "kv-1", Ordinal: 1, Node: "node-kv-1", Up: true, Volume: "claim/data-kv-1/c1-new"}})

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}
