package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/testutil"
)

// fakeCaches answers with one cluster's cached Nodes, or an error.
type fakeCaches struct {
	nodes client.Client
	err   error
}

func (f *fakeCaches) Get(context.Context, *fleetv1alpha1.Cluster) (*remote.Cluster, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &remote.Cluster{Client: f.nodes}, nil
}

// TestReconcileCountsCachedNodes: with Options.Nodes, the counts come from
// the Node cache (every Node, in a Pool or not), not from the prober; a
// cache that cannot be reached makes a ready API server's cluster
// Unreachable, saying why.
func TestReconcileCountsCachedNodes(t *testing.T) {
	now := time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC)
	secret := testutil.MakeSecret("strata-system", "wl-kubeconfig", "kubeconfig", []byte("kubeconfig-bytes"))
	withCPU := func(w *testutil.NodeWrapper, cpu string) *corev1.Node {
		w.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
		return &w.Node
	}
	nodes := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(
		withCPU(testutil.MakeNode("a", "p", "1").Label(fleetv1alpha1.NodeProfileLabel, "general"), "32"),
		withCPU(testutil.MakeNode("b", "p", "1").Label(fleetv1alpha1.NodeProfileLabel, "general"), "32"),
		withCPU(testutil.MakeNode("c", "p", "2").Label(fleetv1alpha1.NodeProfileLabel, "general").NotReady(), "32"),
		withCPU(testutil.MakeNode("control-plane", "", ""), "4"),
	).Build()

	for name, tc := range map[string]struct {
		caches     *fakeCaches
		wantReason string
		wantNodes  int32
		wantReady  int32
	}{
		"counted from the cache": {caches: &fakeCaches{nodes: nodes}, wantReason: fleetv1alpha1.ClusterReachableReason, wantNodes: 4, wantReady: 3},
		"cache unreachable": {caches: &fakeCaches{err: &remote.UnreachableError{Cluster: "wl", Err: errors.New("no answer")}},
			wantReason: fleetv1alpha1.APIServerUnreachableReason},
	} {
		t.Run(name, func(t *testing.T) {
			cl := testutil.MakeCluster("wl", "strata-system").Obj()
			c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(cl, secret).
				WithStatusSubresource(&fleetv1alpha1.Cluster{}).Build()
			// The prober counts nothing: a readiness-only prober.
			r, err := New(Options{Client: c, Prober: &fakeProber{health: Health{Version: "v1.37.1", Ready: true}}, Nodes: tc.caches,
				Clock: clocktesting.NewFakePassiveClock(now), ProbeInterval: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Reconcile(t.Context(), reconcile.Request{NamespacedName: client.ObjectKeyFromObject(cl)}); err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			got := &fleetv1alpha1.Cluster{}
			if err := c.Get(t.Context(), client.ObjectKeyFromObject(cl), got); err != nil {
				t.Fatal(err)
			}
			if reason := got.Status.Conditions[0].Reason; reason != tc.wantReason {
				t.Errorf("reason = %s (%s), want %s", reason, got.Status.Conditions[0].Message, tc.wantReason)
			}
			if got.Status.Nodes != tc.wantNodes || got.Status.ReadyNodes != tc.wantReady {
				t.Errorf("nodes = %d, ready %d; want %d, %d", got.Status.Nodes, got.Status.ReadyNodes, tc.wantNodes, tc.wantReady)
			}
			if tc.wantNodes == 0 {
				return
			}
			wantProfiles := []fleetv1alpha1.ProfileNodes{
				{Name: "", Nodes: 1, ReadyNodes: 1, Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}},
				{Name: "general", Nodes: 3, ReadyNodes: 2, Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64")}},
			}
			if diff := cmp.Diff(wantProfiles, got.Status.Profiles, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
				t.Errorf("profiles (-want +got):\n%s", diff)
			}
			if cpu := got.Status.Allocatable[corev1.ResourceCPU]; cpu.Cmp(resource.MustParse("68")) != 0 {
				t.Errorf("allocatable cpu = %s, want 68 (the Ready Nodes')", cpu.String())
			}
		})
	}
}
