package drain

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestPass(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	pod := func(name string, mutate func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "app"},
			Spec:       corev1.PodSpec{NodeName: "n1"},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning},
		}
		if mutate != nil {
			mutate(p)
		}
		return p
	}
	terminating := func(since time.Duration) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			ts := metav1.NewTime(now.Add(-since))
			p.DeletionTimestamp = &ts
			p.Finalizers = []string{"test/hold"} // the fake client keeps it
		}
	}
	objs := []client.Object{
		pod("web", nil),
		pod("elsewhere", func(p *corev1.Pod) { p.Spec.NodeName = "n2" }),
		pod("agent", func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: "u", Controller: new(true)}}
		}),
		pod("static", func(p *corev1.Pod) { p.Annotations = map[string]string{mirrorPodAnnotation: "x"} }),
		pod("done", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		pod("leaving", terminating(10*time.Second)),
		pod("stuck", terminating(10*time.Minute)),
	}
	c := fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).
		WithIndex(&corev1.Pod{}, "spec.nodeName", func(o client.Object) []string { return []string{o.(*corev1.Pod).Spec.NodeName} }).
		Build()

	res, err := Pass(t.Context(), c, "n1", now)
	if err != nil {
		t.Fatal(err)
	}
	// web is evicted now and leaving is on its way: both hold the Node.
	if res.Remaining != 2 || res.Drained() || len(res.Blocked) != 0 {
		t.Errorf("Pass() = %+v, want 2 remaining (web, leaving), none blocked", res)
	}
	for name, wantGone := range map[string]bool{"web": true, "elsewhere": false, "agent": false, "static": false, "done": false} {
		err := c.Get(t.Context(), client.ObjectKey{Namespace: "app", Name: name}, &corev1.Pod{})
		if gone := err != nil; gone != wantGone {
			t.Errorf("pod %s gone = %v, want %v (%v)", name, gone, wantGone, err)
		}
	}
	res, err = Pass(t.Context(), c, "n1", now)
	if err != nil || res.Remaining != 1 {
		t.Errorf("second Pass() = %+v, %v; want only the pod still leaving", res, err)
	}
}
