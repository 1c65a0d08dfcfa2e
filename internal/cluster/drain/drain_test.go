package drain

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/strata-dev/strata/internal/testutil"
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
	daemon := func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "DaemonSet", Name: "agent", UID: "u", Controller: new(true)}}
	}
	// guarded pods' evictions are refused, as a PodDisruptionBudget would.
	guarded := func(p *corev1.Pod) { p.Labels = map[string]string{"pdb": "full"} }
	ready := testutil.MakeNode("n1", "web", "1").Obj()
	dead := testutil.MakeNode("n1", "web", "1").NotReady().Obj()
	unknown := testutil.MakeNode("n1", "web", "1").Obj()
	unknown.Status.Conditions[0].Status = corev1.ConditionUnknown
	blip := testutil.MakeNode("n1", "web", "1").NotReady().Obj()
	blip.Status.Conditions[0].LastTransitionTime = metav1.NewTime(now.Add(-5 * time.Second))

	ownedByJob := func(p *corev1.Pod) {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "train", UID: "j", Controller: new(true)}}
	}
	nonInterruptible := func(value string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			ownedByJob(p)
			p.Annotations = map[string]string{NonInterruptibleAnnotation: value}
		}
	}
	tests := map[string]struct {
		node         *corev1.Node
		pod          *corev1.Pod
		pastDeadline bool
		want         Result
		wantGone     bool
	}{
		"a Job's pod is evicted through the Eviction API": {
			node: ready, pod: pod("train-0", ownedByJob), want: Result{Remaining: 1, Evicted: 1}, wantGone: true,
		},
		"a non-interruptible pod is waited for, not evicted": {
			node: ready, pod: pod("train-0", nonInterruptible("true")),
			want: Result{Remaining: 1, Waiting: []Blocked{{Namespace: "app", Name: "train-0", Owner: "Job train", Reason: WaitingReason}}},
		},
		"past the drain's deadline, a non-interruptible pod is evicted and said to be": {
			node: ready, pod: pod("train-0", nonInterruptible("true")), pastDeadline: true,
			want: Result{Remaining: 1, Evicted: 1, Forced: []Blocked{{Namespace: "app", Name: "train-0", Owner: "Job train",
				Reason: "evicted although non-interruptible: the drain's deadline passed"}}},
			wantGone: true,
		},
		"a pod marked interruptible in any other way is evicted": {
			node: ready, pod: pod("train-0", nonInterruptible("false")), want: Result{Remaining: 1, Evicted: 1}, wantGone: true,
		},
		"a finished non-interruptible pod does not hold the Node": {
			node: ready, pod: pod("train-0", func(p *corev1.Pod) { nonInterruptible("true")(p); p.Status.Phase = corev1.PodSucceeded }),
		},
		"past the deadline, the eviction of a non-interruptible pod is still refused by its budget": {
			node: ready, pod: pod("train-0", func(p *corev1.Pod) { nonInterruptible("true")(p); guarded(p) }), pastDeadline: true,
			want: Result{Remaining: 1, Blocked: []Blocked{{Namespace: "app", Name: "train-0", Owner: "Job train",
				Reason: "The disruption budget api needs 2 healthy pods and has 2 currently"}}},
		},
		"a running pod is evicted and waited for": {
			node: ready, pod: pod("web", nil), want: Result{Remaining: 1, Evicted: 1}, wantGone: true,
		},
		"a pod of another Node is left alone": {
			node: ready, pod: pod("elsewhere", func(p *corev1.Pod) { p.Spec.NodeName = "n2" }),
		},
		"a DaemonSet pod stays": {node: ready, pod: pod("agent", daemon)},
		"a mirror pod stays": {
			node: ready, pod: pod("static", func(p *corev1.Pod) { p.Annotations = map[string]string{mirrorPodAnnotation: "x"} }),
		},
		"a finished pod stays": {node: ready, pod: pod("done", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded })},
		"a pod already leaving is waited for": {
			node: ready, pod: pod("leaving", terminating(10*time.Second)), want: Result{Remaining: 1},
		},
		"a pod stuck terminating long past its grace does not hold the Node": {
			node: ready, pod: pod("stuck", terminating(10*time.Minute)),
		},
		"a terminating pod of a NotReady Node counts as gone at once": {
			node: dead, pod: pod("leaving", terminating(10*time.Second)),
		},
		"a Node NotReady for a few seconds still has its terminating pods waited for": {
			node: blip, pod: pod("leaving", terminating(10*time.Second)), want: Result{Remaining: 1},
		},
		"a terminating pod of a Node whose kubelet stopped reporting counts as gone": {
			node: unknown,
			pod:  pod("leaving", terminating(time.Second)),
		},
		"a running pod of a NotReady Node is still evicted": {
			node: dead, pod: pod("web", nil), want: Result{Remaining: 1, Evicted: 1}, wantGone: true,
		},
		"a refused eviction says which pod and why": {
			node: ready, pod: pod("api", guarded),
			want: Result{Remaining: 1, Blocked: []Blocked{{Namespace: "app", Name: "api",
				Reason: "The disruption budget api needs 2 healthy pods and has 2 currently"}}},
		},
		"a refused eviction says whose the pod is": {
			node: ready, pod: pod("kv-0", func(p *corev1.Pod) {
				guarded(p)
				p.OwnerReferences = []metav1.OwnerReference{
					{APIVersion: "v1", Kind: "ConfigMap", Name: "settings", UID: "c"},
					{APIVersion: "apps.strata.dev/v1alpha1", Kind: "StatefulApp", Name: "kv", UID: "u", Controller: new(true)},
				}
			}),
			want: Result{Remaining: 1, Blocked: []Blocked{{Namespace: "app", Name: "kv-0", Owner: "StatefulApp kv",
				Reason: "The disruption budget api needs 2 healthy pods and has 2 currently"}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := fakeClient(tc.node, tc.pod)
			got, err := Pass(t.Context(), c, tc.node, now, tc.pastDeadline)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(Result{}, "EvictedPods")); diff != "" {
				t.Errorf("Pass() (-want +got):\n%s", diff)
			}
			if len(got.EvictedPods) != got.Evicted {
				t.Errorf("%d pods evicted, %d UIDs of them", got.Evicted, len(got.EvictedPods))
			}
			if got.Drained() != (tc.want.Remaining == 0) {
				t.Errorf("Drained() = %v with %d remaining", got.Drained(), got.Remaining)
			}
			err = c.Get(t.Context(), client.ObjectKeyFromObject(tc.pod), &corev1.Pod{})
			if gone := apierrors.IsNotFound(err); gone != tc.wantGone {
				t.Errorf("pod %s gone = %v, want %v (%v)", tc.pod.Name, gone, tc.wantGone, err)
			}
		})
	}
}

func TestBlockedString(t *testing.T) {
	for _, tc := range []struct {
		b    Blocked
		want string
	}{
		{Blocked{Namespace: "app", Name: "api-1", Owner: "ReplicaSet api-5d8f", Reason: "budget"}, "app/api-1 (ReplicaSet api-5d8f): budget"},
		{Blocked{Namespace: "app", Name: "bare", Reason: "budget"}, "app/bare (no controller): budget"},
	} {
		if got := tc.b.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.b, got, tc.want)
		}
	}
}

func TestPassStopsOnAnError(t *testing.T) {
	node := testutil.MakeNode("n1", "web", "1").Obj()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "app", Labels: map[string]string{"pdb": "broken"}},
		Spec: corev1.PodSpec{NodeName: "n1"}}
	if _, err := Pass(t.Context(), fakeClient(node, pod), node, time.Now(), false); err == nil {
		t.Error("Pass() = nil error, want the failed eviction's")
	}
}

// fakeClient holds the objects, indexes pods by Node, and refuses the
// eviction of pods labelled pdb=full as a PodDisruptionBudget would (429),
// and of pods labelled pdb=broken with a server error.
func fakeClient(objs ...client.Object) client.Client {
	return fake.NewClientBuilder().WithScheme(clientgoscheme.Scheme).WithObjects(objs...).
		WithIndex(&corev1.Pod{}, "spec.nodeName", func(o client.Object) []string { return []string{o.(*corev1.Pod).Spec.NodeName} }).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourceCreate: func(ctx context.Context, c client.Client, sub string, obj client.Object, req client.Object, opts ...client.SubResourceCreateOption) error {
				switch obj.GetLabels()["pdb"] {
				case "full":
					err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
					err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: policyv1.DisruptionBudgetCause,
						Message: "The disruption budget api needs 2 healthy pods and has 2 currently"}}
					return err
				case "broken":
					return apierrors.NewInternalError(errors.New("etcd unavailable"))
				}
				return c.SubResource(sub).Create(ctx, obj, req, opts...)
			},
		}).Build()
}
