package dispatch

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

func res(cpu, mem string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
}

// nodes are n Nodes of 16 cpu and 64Gi in a zone, each with why it is out.
func nodes(prefix, zone string, n int, out string) []nodeRoom {
	var ns []nodeRoom
	for i := range n {
		ns = append(ns, nodeRoom{Name: prefix + string(rune('a'+i)), Zone: zone, Allocatable: res("16", "64Gi"), Out: out})
	}
	return ns
}

func cluster(name string, ns ...[]nodeRoom) clusterInput {
	c := clusterInput{Name: name, Known: true, Nodes: map[string][]nodeRoom{}, Pools: map[string]int{"general": 1}}
	for _, n := range ns {
		c.Nodes["general"] = append(c.Nodes["general"], n...)
	}
	return c
}

func (c clusterInput) used(cpu, mem string) clusterInput {
	c.Used = map[string]corev1.ResourceList{"general": res(cpu, mem)}
	return c
}

func (c clusterInput) recent(n int) clusterInput { c.Recent = n; return c }

func (c clusterInput) excluded(why string) clusterInput { c.Excluded = why; return c }

func (c clusterInput) unknown() clusterInput { c.Known, c.Nodes = false, nil; return c }

func (c clusterInput) growing() clusterInput { c.Growing = map[string]bool{"general": true}; return c }

func gang(count int32, cpu, mem string) []podSet {
	return []podSet{{Name: "main", Profile: "general", Count: count, PerPod: res(cpu, mem)}}
}

// TestDecide: the filter and the score, and what each says.
func TestDecide(t *testing.T) {
	cases := []struct {
		name     string
		want     []podSet
		clusters []clusterInput
		out      decision
	}{{
		name:     "the cluster with the most room left wins; the message says why for each",
		want:     gang(8, "4", "8Gi"),
		clusters: []clusterInput{cluster("w1", nodes("n", "dc1-mz1", 3, "")), cluster("w2", nodes("m", "dc1-mz1", 2, ""), nodes("m2", "dc1-mz2", 2, ""))},
		out: decision{Cluster: "w2", Message: "dispatched 8 pods of cpu 4, memory 8Gi (profile general) to w2: " +
			"cpu 32 of 64, memory 192Gi of 256Gi free of profile general after placing, on 4 Nodes in 2 zones; " +
			"w1: cpu 16 of 48, memory 128Gi of 192Gi free of profile general after placing, on 3 Nodes in 1 zone"},
	}, {
		name: "a zone under maintenance is counted out: the other cluster wins though it is smaller",
		want: gang(8, "4", "8Gi"),
		clusters: []clusterInput{
			cluster("w1", nodes("n", "dc1-mz1", 2, ""), nodes("n2", "dc1-mz2", 4, "zone dc1-mz2 under maintenance (rollout kernel-6-8)")),
			cluster("w2", nodes("m", "dc2-mz1", 3, "")),
		},
		out: decision{Cluster: "w2", Message: "dispatched 8 pods of cpu 4, memory 8Gi (profile general) to w2: " +
			"cpu 16 of 48, memory 128Gi of 192Gi free of profile general after placing, on 3 Nodes in 1 zone; " +
			"w1: cpu 0 of 32, memory 64Gi of 128Gi free of profile general after placing, on 2 Nodes in 1 zone " +
			"(counted out: 4 Nodes: zone dc1-mz2 under maintenance (rollout kernel-6-8))"},
	}, {
		name: "a NotReady cluster is skipped",
		want: gang(1, "1", "1Gi"),
		clusters: []clusterInput{
			cluster("w1", nodes("n", "dc1-mz1", 4, "")).excluded("not Ready (APIServerUnreachable)"),
			cluster("w2", nodes("m", "dc1-mz1", 1, "")),
		},
		out: decision{Cluster: "w2", Message: "dispatched 1 pod of cpu 1, memory 1Gi (profile general) to w2: " +
			"cpu 15 of 16, memory 63Gi of 64Gi free of profile general after placing, on 1 Node in 1 zone; " +
			"w1: not Ready (APIServerUnreachable)"},
	}, {
		name: "pods fit on Nodes, not in a sum: 3 Nodes of 16 cpu half used hold 3 pods of 6, not 4",
		want: gang(4, "6", "1Gi"),
		clusters: []clusterInput{
			cluster("w1", nodes("n", "dc1-mz1", 3, "")).used("24", "0"),
			cluster("w2", nodes("m", "dc1-mz1", 2, ""), nodes("c", "dc1-mz1", 2, "cordoned")),
		},
		out: decision{Cluster: "w2", Message: "dispatched 4 pods of cpu 6, memory 1Gi (profile general) to w2: " +
			"cpu 8 of 32, memory 124Gi of 128Gi free of profile general after placing, on 2 Nodes in 1 zone (counted out: 2 Nodes: cordoned); " +
			"w1: room for 3 of 4 pods on 3 Nodes of profile general, cpu 24 of 48, memory 192Gi of 192Gi free"},
	}, {
		name:     "ties: the cluster given fewest jobs lately",
		want:     gang(1, "1", "1Gi"),
		clusters: []clusterInput{cluster("w1", nodes("n", "dc1-mz1", 1, "")).recent(3), cluster("w2", nodes("m", "dc1-mz1", 1, "")).recent(1)},
		out: decision{Cluster: "w2", Message: "dispatched 1 pod of cpu 1, memory 1Gi (profile general) to w2: " +
			"cpu 15 of 16, memory 63Gi of 64Gi free of profile general after placing, on 1 Node in 1 zone; " +
			"w1: cpu 15 of 16, memory 63Gi of 64Gi free of profile general after placing, on 1 Node in 1 zone"},
	}, {
		name: "none fits now, but could once room frees up",
		want: gang(2, "16", "1Gi"),
		clusters: []clusterInput{
			cluster("w1", nodes("n", "dc1-mz1", 2, "")).used("16", "0"),
			{Name: "w2", Known: true, Nodes: map[string][]nodeRoom{}},
		},
		out: decision{Message: "no workload cluster has room for 2 pods of cpu 16, memory 1Gi (profile general) now: " +
			"w1: room for 0 of 2 pods on 2 Nodes of profile general, cpu 16 of 32, memory 128Gi of 128Gi free; " +
			"w2: no Pool of profile general"},
	}, {
		name:     "never: no Node of any cluster holds a pod that big",
		want:     gang(1, "32", "1Gi"),
		clusters: []clusterInput{cluster("w1", nodes("n", "dc1-mz1", 4, "")), cluster("w2", nodes("m", "dc1-mz1", 1, "cordoned"))},
		out: decision{NeverFits: true, Message: "no workload cluster could ever hold 1 pod of cpu 32, memory 1Gi (profile general), " +
			"even with all its Nodes of the profile free: " +
			"w1: room for 0 of 1 pods on 4 Nodes of profile general, cpu 64 of 64, memory 256Gi of 256Gi free; " +
			"w2: room for 0 of 1 pods on 0 Nodes of profile general, cpu 0 of 0, memory 0Gi of 0Gi free (counted out: 1 Node: cordoned)"},
	}, {
		name:     "not never while a cluster cannot be read",
		want:     gang(1, "32", "1Gi"),
		clusters: []clusterInput{cluster("w1", nodes("n", "dc1-mz1", 1, "")), cluster("w2").unknown().excluded("unreachable")},
		out: decision{Message: "no workload cluster has room for 1 pod of cpu 32, memory 1Gi (profile general) now: " +
			"w1: room for 0 of 1 pods on 1 Node of profile general, cpu 16 of 16, memory 64Gi of 64Gi free; w2: unreachable"},
	}, {
		name:     "not never while a Pool of the profile grows",
		want:     gang(4, "16", "1Gi"),
		clusters: []clusterInput{cluster("w1", nodes("n", "dc1-mz1", 1, "")).growing()},
		out: decision{Message: "no workload cluster has room for 4 pods of cpu 16, memory 1Gi (profile general) now: " +
			"w1: room for 1 of 4 pods on 1 Node of profile general, cpu 16 of 16, memory 64Gi of 64Gi free"},
	}, {
		name: "no cluster at all",
		want: gang(1, "1", "1Gi"),
		out:  decision{Message: "no workload cluster is registered in the MultiKueue configuration"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.out, decide(tc.want, tc.clusters), cmp.AllowUnexported(decision{})); diff != "" {
				t.Errorf("decide (-want +got):\n%s", diff)
			}
		})
	}
}

// TestMaintenance: the zones a running rollout maintains now or next are
// counted out; a complete rollout's are not, nor a paused one's next zone.
func TestMaintenance(t *testing.T) {
	rollout := func(name string, current int32, zones []fleetv1alpha1.RolloutZoneStatus, conds ...metav1.Condition) fleetv1alpha1.MaintenanceRollout {
		ro := fleetv1alpha1.MaintenanceRollout{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: fleetv1alpha1.MaintenanceRolloutSpec{Pools: []string{"p1", "p2"}}}
		ro.Status.CurrentZone, ro.Status.Zones, ro.Status.Conditions = current, zones, conds
		return ro
	}
	zone := func(z int32, phase fleetv1alpha1.RolloutZonePhase) fleetv1alpha1.RolloutZoneStatus {
		return fleetv1alpha1.RolloutZoneStatus{MaintenanceZone: z, Phase: phase}
	}
	ordered := []fleetv1alpha1.RolloutZoneStatus{
		zone(3, fleetv1alpha1.RolloutZoneComplete), zone(1, fleetv1alpha1.RolloutZoneInProgress), zone(2, fleetv1alpha1.RolloutZonePending), zone(4, fleetv1alpha1.RolloutZonePending),
	}
	cases := []struct {
		name     string
		rollouts []fleetv1alpha1.MaintenanceRollout
		want     map[poolZone]string
	}{{
		name:     "current and next in the rollout's order",
		rollouts: []fleetv1alpha1.MaintenanceRollout{rollout("kernel", 1, ordered)},
		want: map[poolZone]string{
			{"p1", "1"}: "under maintenance (rollout kernel)", {"p2", "1"}: "under maintenance (rollout kernel)",
			{"p1", "2"}: "next in maintenance (rollout kernel)", {"p2", "2"}: "next in maintenance (rollout kernel)",
		},
	}, {
		name: "paused: only the zone whose disruptions are open",
		rollouts: []fleetv1alpha1.MaintenanceRollout{rollout("kernel", 1, ordered,
			metav1.Condition{Type: fleetv1alpha1.RolloutPausedCondition, Status: metav1.ConditionTrue})},
		want: map[poolZone]string{{"p1", "1"}: "under maintenance (rollout kernel)", {"p2", "1"}: "under maintenance (rollout kernel)"},
	}, {
		name: "complete: nothing",
		rollouts: []fleetv1alpha1.MaintenanceRollout{rollout("kernel", 0, []fleetv1alpha1.RolloutZoneStatus{zone(1, fleetv1alpha1.RolloutZoneComplete)},
			metav1.Condition{Type: fleetv1alpha1.RolloutCompleteCondition, Status: metav1.ConditionTrue})},
		want: map[poolZone]string{},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, maintenance(tc.rollouts), cmp.AllowUnexported(poolZone{})); diff != "" {
				t.Errorf("maintenance (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAdmissionApply: the apply holds what Kueue's admission field manager
// owns, as the workload holds it, and the nominated cluster; nothing else.
func TestAdmissionApply(t *testing.T) {
	u := mustUnstructured(t, map[string]any{
		"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload",
		"metadata": map[string]any{"name": "job-a", "namespace": "team", "uid": "u1", "resourceVersion": "7", "generation": int64(1)},
		"spec":     map[string]any{"queueName": "q"},
		"status": map[string]any{
			"admission":        map[string]any{"clusterQueue": "cq"},
			"resourceRequests": []any{map[string]any{"name": "main"}},
			"conditions": []any{
				map[string]any{"type": "QuotaReserved", "status": "True"},
				map[string]any{"type": "PodsReady", "status": "False"},
			},
			"admissionChecks": []any{map[string]any{"name": "strata-multikueue", "state": "Pending"}},
			"requeueState":    map[string]any{},
		},
	})
	got := admissionApply(u, "w2").Object
	want := map[string]any{
		"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload",
		"metadata": map[string]any{"name": "job-a", "namespace": "team", "uid": "u1", "resourceVersion": "7"},
		"status": map[string]any{
			"admission":             map[string]any{"clusterQueue": "cq"},
			"resourceRequests":      []any{},
			"conditions":            []any{map[string]any{"type": "QuotaReserved", "status": "True"}},
			"admissionChecks":       []any{map[string]any{"name": "strata-multikueue", "state": "Pending"}},
			"nominatedClusterNames": []any{"w2"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("admissionApply (-want +got):\n%s", diff)
	}
}

// TestPodSets: per-pod requests are Kueue's usage over the count.
func TestPodSets(t *testing.T) {
	u := mustUnstructured(t, map[string]any{
		"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload",
		"metadata": map[string]any{"name": "job-a", "namespace": "team"},
		"status": map[string]any{"admission": map[string]any{"clusterQueue": "cq", "podSetAssignments": []any{
			map[string]any{"name": "main", "count": int64(8), "flavors": map[string]any{"cpu": "general", "memory": "general"},
				"resourceUsage": map[string]any{"cpu": "32", "memory": "64Gi"}},
		}}},
	})
	wl, err := parseWorkload(u)
	if err != nil {
		t.Fatal(err)
	}
	sets, flavors, err := wl.podSets()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]podSet{{Name: "main", Count: 8, PerPod: res("4", "8Gi")}}, sets, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("pod sets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"general"}, flavors); diff != "" {
		t.Errorf("flavors (-want +got):\n%s", diff)
	}
}

func mustUnstructured(t *testing.T, obj map[string]any) *unstructured.Unstructured {
	t.Helper()
	return &unstructured.Unstructured{Object: obj}
}
