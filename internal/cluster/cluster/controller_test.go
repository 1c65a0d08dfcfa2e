package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1 "k8s.io/api/core/v1"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/testutil"
)

// fakeProber answers every probe with the same health or error, and records
// the kubeconfig it was given.
type fakeProber struct {
	health Health
	err    error
	got    []byte
}

func (p *fakeProber) Probe(_ context.Context, kubeconfig []byte) (Health, error) {
	p.got = kubeconfig
	return p.health, p.err
}

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := fleetv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReconcile(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	earlier := metav1.NewTime(now.Add(-time.Hour))
	healthy := Health{Version: "v1.37.1", Ready: true, Nodes: 3, ReadyNodes: 2}
	secret := testutil.MakeSecret("strata-system", "wl-kubeconfig", "kubeconfig", []byte("kubeconfig-bytes"))

	cases := map[string]struct {
		cluster    *fleetv1alpha1.Cluster
		secret     *corev1.Secret
		prober     *fakeProber
		wantStatus fleetv1alpha1.ClusterStatus
	}{
		"ready cluster": {
			cluster: testutil.MakeCluster("wl", "strata-system").Generation(3).Obj(),
			secret:  secret,
			prober:  &fakeProber{health: healthy},
			wantStatus: fleetv1alpha1.ClusterStatus{
				ObservedGeneration: 3, KubernetesVersion: "v1.37.1", Nodes: 3, ReadyNodes: 2,
				Conditions: []metav1.Condition{{
					Type: "Ready", Status: metav1.ConditionTrue, ObservedGeneration: 3,
					LastTransitionTime: metav1.NewTime(now), Reason: "Reachable",
					Message: "API server v1.37.1 is ready; 2 of 3 nodes ready",
				}},
			},
		},
		"unchanged condition keeps its transition time": {
			cluster: testutil.MakeCluster("wl", "strata-system").Condition(metav1.Condition{
				Type: "Ready", Status: metav1.ConditionTrue, ObservedGeneration: 1,
				LastTransitionTime: earlier, Reason: "Reachable", Message: "old message",
			}).Obj(),
			secret: secret,
			prober: &fakeProber{health: healthy},
			wantStatus: fleetv1alpha1.ClusterStatus{
				ObservedGeneration: 1, KubernetesVersion: "v1.37.1", Nodes: 3, ReadyNodes: 2,
				Conditions: []metav1.Condition{{
					Type: "Ready", Status: metav1.ConditionTrue, ObservedGeneration: 1,
					LastTransitionTime: earlier, Reason: "Reachable",
					Message: "API server v1.37.1 is ready; 2 of 3 nodes ready",
				}},
			},
		},
		"secret missing": {
			cluster: testutil.MakeCluster("wl", "strata-system").Obj(),
			prober:  &fakeProber{health: healthy},
			wantStatus: fleetv1alpha1.ClusterStatus{
				ObservedGeneration: 1,
				Conditions: []metav1.Condition{{
					Type: "Ready", Status: metav1.ConditionFalse, ObservedGeneration: 1,
					LastTransitionTime: metav1.NewTime(now), Reason: "KubeconfigSecretNotFound",
					Message: "Secret strata-system/wl-kubeconfig does not exist",
				}},
			},
		},
		"key missing from secret": {
			cluster: testutil.MakeCluster("wl", "strata-system").SecretKey("config").Obj(),
			secret:  secret,
			prober:  &fakeProber{health: healthy},
			wantStatus: fleetv1alpha1.ClusterStatus{
				ObservedGeneration: 1,
				Conditions: []metav1.Condition{{
					Type: "Ready", Status: metav1.ConditionFalse, ObservedGeneration: 1,
					LastTransitionTime: metav1.NewTime(now), Reason: "KubeconfigSecretNotFound",
					Message: `Secret strata-system/wl-kubeconfig has no key "config"`,
				}},
			},
		},
		"invalid kubeconfig": {
			cluster: testutil.MakeCluster("wl", "strata-system").Obj(),
			secret:  secret,
			prober:  &fakeProber{err: fmt.Errorf("%w: no server", remote.ErrInvalidKubeconfig)},
			wantStatus: fleetv1alpha1.ClusterStatus{
				ObservedGeneration: 1,
				Conditions: []metav1.Condition{{
					Type: "Ready", Status: metav1.ConditionFalse, ObservedGeneration: 1,
					LastTransitionTime: metav1.NewTime(now), Reason: "KubeconfigInvalid",
					Message: `Secret strata-system/wl-kubeconfig key "kubeconfig": invalid kubeconfig: no server`,
				}},
			},
		},
		"unreachable API server forgets node counts": {
			cluster: func() *fleetv1alpha1.Cluster {
				c := testutil.MakeCluster("wl", "strata-system").Obj()
				c.Status.KubernetesVersion, c.Status.Nodes, c.Status.ReadyNodes = "v1.37.0", 5, 5
				return c
			}(),
			secret: secret,
			prober: &fakeProber{err: errors.New("connection refused")},
			wantStatus: fleetv1alpha1.ClusterStatus{
				ObservedGeneration: 1, KubernetesVersion: "v1.37.0",
				Conditions: []metav1.Condition{{
					Type: "Ready", Status: metav1.ConditionFalse, ObservedGeneration: 1,
					LastTransitionTime: metav1.NewTime(now), Reason: "APIServerUnreachable",
					Message: "connection refused",
				}},
			},
		},
		"API server not ready": {
			cluster: testutil.MakeCluster("wl", "strata-system").Obj(),
			secret:  secret,
			prober:  &fakeProber{health: Health{Version: "v1.37.1", ReadyzMessage: "[-]etcd failed"}},
			wantStatus: fleetv1alpha1.ClusterStatus{
				ObservedGeneration: 1, KubernetesVersion: "v1.37.1",
				Conditions: []metav1.Condition{{
					Type: "Ready", Status: metav1.ConditionFalse, ObservedGeneration: 1,
					LastTransitionTime: metav1.NewTime(now), Reason: "APIServerNotReady",
					Message: "the API server answered /readyz with: [-]etcd failed",
				}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs := []client.Object{tc.cluster}
			if tc.secret != nil {
				objs = append(objs, tc.secret)
			}
			c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).
				WithStatusSubresource(&fleetv1alpha1.Cluster{}).Build()
			r, err := New(Options{Client: c, Prober: tc.prober, Clock: clocktesting.NewFakePassiveClock(now), ProbeInterval: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: client.ObjectKeyFromObject(tc.cluster)})
			if err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			wantRequeue := notReadyProbeInterval
			if tc.wantStatus.Conditions[0].Status == metav1.ConditionTrue {
				wantRequeue = time.Minute
			}
			if res.RequeueAfter != wantRequeue {
				t.Errorf("RequeueAfter = %v, want %v", res.RequeueAfter, wantRequeue)
			}
			got := &fleetv1alpha1.Cluster{}
			if err := c.Get(t.Context(), client.ObjectKeyFromObject(tc.cluster), got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantStatus, got.Status, cmpopts.EquateApproxTime(time.Second)); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReconcileIgnoresDeletedCluster(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).Build()
	r, err := New(Options{Client: c, Prober: &fakeProber{}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: client.ObjectKey{Name: "gone"}})
	if err != nil || res.RequeueAfter != 0 {
		t.Errorf("Reconcile of a missing cluster = %+v, %v; want no requeue and no error", res, err)
	}
}

func TestNewValidates(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).Build()
	for name, o := range map[string]Options{
		"no client": {Prober: &fakeProber{}},
		"no prober": {Client: c},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
}
