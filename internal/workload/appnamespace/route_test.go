package appnamespace

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

func TestRoute(t *testing.T) {
	general := func(cpu, memory string) map[string][2]string { return map[string][2]string{"general": {cpu, memory}} }
	placed := func(cluster, profile string, n int, cpu, memory string) []placement {
		out := make([]placement, n)
		for i := range out {
			out[i] = placement{Cluster: cluster, Profile: profile, Quota: resources(cpu, memory)}
		}
		return out
	}
	notReady := readyCluster("down", general("100", "400Gi"))
	notReady.Status.Conditions[0].Status = metav1.ConditionFalse
	notReady.Status.Conditions[0].Reason = fleetv1alpha1.APIServerUnreachableReason
	unprobed := readyCluster("new", general("100", "400Gi"))
	unprobed.Status.Conditions = nil
	deleting := readyPool("going", "w1", "general", 4)
	now := metav1.Now()
	deleting.DeletionTimestamp = &now
	deleting.Finalizers = []string{fleetv1alpha1.PoolFinalizer}

	tests := []struct {
		name string
		in   routeInput
		want decision
	}{
		{
			name: "no cluster at all",
			in:   routeInput{Profile: "general", Quota: resources("4", "16Gi")},
			want: decision{Message: "no workload cluster is registered on the hub"},
		},
		{
			name: "the only cluster with room",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"),
				Clusters: []fleetv1alpha1.Cluster{readyCluster("w1", general("160", "640Gi"))},
				Pools:    []fleetv1alpha1.Pool{readyPool("p1", "w1", "general", 5)},
			},
			want: chose("w1", "routed to w1 (profile general): room cpu 160, memory 640Gi of cpu 160, memory 640Gi after 0 app namespaces; quota cpu 4, memory 16Gi"),
		},
		{
			name: "the largest share of cpu left wins, not the largest amount",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"),
				Clusters: []fleetv1alpha1.Cluster{readyCluster("big", general("1000", "4000Gi")), readyCluster("small", general("100", "400Gi"))},
				Pools:    []fleetv1alpha1.Pool{readyPool("pb", "big", "general", 5), readyPool("ps", "small", "general", 5)},
				// big: 1000-600-4 = 39.6% left; small: 100-10-4 = 86% left.
				Placed: append(placed("big", "general", 150, "4", "16Gi"), placed("small", "general", 1, "10", "16Gi")...),
			},
			want: chose("small", "routed to small (profile general): room cpu 90, memory 384Gi of cpu 100, memory 400Gi after 1 app namespace; quota cpu 4, memory 16Gi"),
		},
		{
			name: "same cpu share: more memory left wins",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"),
				Clusters: []fleetv1alpha1.Cluster{readyCluster("a", general("100", "400Gi")), readyCluster("b", general("100", "800Gi"))},
				Pools:    []fleetv1alpha1.Pool{readyPool("pa", "a", "general", 5), readyPool("pb", "b", "general", 5)},
			},
			want: chose("b", "routed to b (profile general): room cpu 100, memory 800Gi of cpu 100, memory 800Gi after 0 app namespaces; quota cpu 4, memory 16Gi"),
		},
		{
			name: "a full tie goes to the first name",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"),
				Clusters: []fleetv1alpha1.Cluster{readyCluster("b", general("100", "400Gi")), readyCluster("a", general("100", "400Gi"))},
				Pools:    []fleetv1alpha1.Pool{readyPool("pa", "a", "general", 5), readyPool("pb", "b", "general", 5)},
			},
			want: chose("a", "routed to a (profile general): room cpu 100, memory 400Gi of cpu 100, memory 400Gi after 0 app namespaces; quota cpu 4, memory 16Gi"),
		},
		{
			name: "only the namespaces of the same cluster and profile take room",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"),
				Clusters: []fleetv1alpha1.Cluster{readyCluster("w1", map[string][2]string{"general": {"10", "40Gi"}, "gpu": {"10", "40Gi"}})},
				Pools:    []fleetv1alpha1.Pool{readyPool("p1", "w1", "general", 1)},
				Placed: append(append(placed("w1", "general", 1, "6", "8Gi"), placed("w1", "gpu", 3, "10", "40Gi")...),
					placed("w2", "general", 3, "10", "40Gi")...),
			},
			// Exactly the room asked for fits.
			want: chose("w1", "routed to w1 (profile general): room cpu 4, memory 32Gi of cpu 10, memory 40Gi after 1 app namespace; quota cpu 4, memory 16Gi"),
		},
		{
			name: "none fits: each cluster says why",
			in: routeInput{
				Profile: "general", Quota: resources("16", "64Gi"),
				Clusters: []fleetv1alpha1.Cluster{
					notReady, unprobed,
					readyCluster("gpu-only", map[string][2]string{"gpu-h100": {"100", "1000Gi"}}),
					readyCluster("joining", general("0", "0")),
					readyCluster("taken", general("100", "400Gi")),
					readyCluster("full", general("160", "1000Gi")),
					readyCluster("w1", general("100", "400Gi")),
				},
				Pools: []fleetv1alpha1.Pool{
					readyPool("h100", "gpu-only", "gpu-h100", 4),
					readyPool("j2", "joining", "general", 0), readyPool("j1", "joining", "general", 0),
					readyPool("t", "taken", "general", 4),
					readyPool("f", "full", "general", 8),
					deleting,
				},
				Placed: append(placed("full", "general", 37, "4", "16Gi"), placement{Cluster: "full", Profile: "general", Quota: resources("", "")}),
				Excluded: map[string]string{
					"taken": "it already has a namespace team-a that Strata did not make for this AppNamespace",
				},
			},
			want: decision{Message: "no workload cluster fits profile general with quota cpu 16, memory 64Gi: " +
				"down: not Ready (APIServerUnreachable); " +
				"full: room cpu 12 of 160 after 38 app namespaces, quota asks cpu 16; " +
				"gpu-only: no Pool of profile general; " +
				"joining: no Ready Nodes in its Pools of profile general (j1, j2); " +
				"new: not Ready (not probed yet); " +
				"taken: it already has a namespace team-a that Strata did not make for this AppNamespace; " +
				"w1: no Pool of profile general"},
		},
		{
			name: "every short resource is named; an overcommitted cluster shows no room",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"),
				Clusters: []fleetv1alpha1.Cluster{readyCluster("w1", general("8", "16Gi"))},
				Pools:    []fleetv1alpha1.Pool{readyPool("p1", "w1", "general", 1)},
				Placed:   placed("w1", "general", 2, "6", "8Gi"),
			},
			want: decision{Message: "no workload cluster fits profile general with quota cpu 4, memory 16Gi: " +
				"w1: room cpu 0 of 8 and memory 0 of 16Gi after 2 app namespaces, quota asks cpu 4 and memory 16Gi"},
		},
		{
			name: "memory that fits no binary suffix reads in binary units, not bytes",
			in: routeInput{
				Profile: "general", Quota: resources("4", "100Ti"),
				// Allocatable memory is capacity less a reserve: bytes.
				Clusters: []fleetv1alpha1.Cluster{readyCluster("w1", general("160", "502563307315"))},
				Pools:    []fleetv1alpha1.Pool{readyPool("p1", "w1", "general", 1)},
			},
			want: decision{Message: "no workload cluster fits profile general with quota cpu 4, memory 100Ti: " +
				"w1: room memory ~468Gi of ~468Gi after 0 app namespaces, quota asks memory 100Ti"},
		},
		{
			name: "a resource the Nodes do not have does not fit",
			in: routeInput{
				Profile: "general", Quota: corev1.ResourceList{"example.com/gpu": resource.MustParse("1")},
				Clusters: []fleetv1alpha1.Cluster{readyCluster("w1", general("8", "16Gi"))},
				Pools:    []fleetv1alpha1.Pool{readyPool("p1", "w1", "general", 1)},
			},
			want: decision{Message: "no workload cluster fits profile general with quota example.com/gpu 1: " +
				"w1: room example.com/gpu 0 of 0 after 0 app namespaces, quota asks example.com/gpu 1"},
		},
		{
			name: "no quota fits any cluster with Ready Nodes of the profile",
			in: routeInput{
				Profile:  "general",
				Clusters: []fleetv1alpha1.Cluster{readyCluster("w1", general("8", "16Gi"))},
				Pools:    []fleetv1alpha1.Pool{readyPool("p1", "w1", "general", 1)},
				Placed:   placed("w1", "general", 2, "6", "8Gi"),
			},
			want: chose("w1", "routed to w1 (profile general): room none of none after 2 app namespaces; quota none"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, route(tt.in)); diff != "" {
				t.Errorf("route (-want +got):\n%s", diff)
			}
		})
	}
}

// chose is the decision to route to one cluster, for the reason.
func chose(cluster, reason string) decision {
	return decision{Chosen: []appsv1alpha1.ClusterPlacement{{Cluster: cluster, Reason: reason}}}
}

// placedIn sets a Cluster's datacenter and region.
func placedIn(c fleetv1alpha1.Cluster, datacenter, region string) fleetv1alpha1.Cluster {
	c.Spec.Datacenter, c.Spec.Region = datacenter, region
	return c
}

func TestRouteSeveral(t *testing.T) {
	general := map[string][2]string{"general": {"100", "400Gi"}}
	cluster := func(name, datacenter string) fleetv1alpha1.Cluster {
		return placedIn(readyCluster(name, general), datacenter, "")
	}
	pools := func(clusters ...string) []fleetv1alpha1.Pool {
		var out []fleetv1alpha1.Pool
		for _, c := range clusters {
			out = append(out, readyPool("p-"+c, c, "general", 4))
		}
		return out
	}
	cordoned := cluster("a", "dc1")
	cordoned.Spec.Cordoned = true
	room := "room cpu 100, memory 400Gi of cpu 100, memory 400Gi after 0 app namespaces; quota cpu 4, memory 16Gi"
	tests := []struct {
		name string
		in   routeInput
		want decision
	}{
		{
			name: "two of three with the same room: the second in a datacenter not used yet",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"), Want: 2,
				Clusters: []fleetv1alpha1.Cluster{cluster("a", "dc1"), cluster("b", "dc1"), cluster("c", "dc2")},
				Pools:    pools("a", "b", "c"),
			},
			want: decision{Chosen: []appsv1alpha1.ClusterPlacement{
				{Cluster: "a", Reason: "routed to a (profile general): " + room},
				{Cluster: "c", Reason: "routed to c (profile general): " + room + "; datacenter dc2, where it is on no other cluster"},
			}},
		},
		{
			name: "a cluster chosen before is kept, and its datacenter counts as used",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"), Want: 2, Chosen: []string{"c"},
				Clusters: []fleetv1alpha1.Cluster{cluster("a", "dc2"), cluster("b", "dc1"), cluster("c", "dc2")},
				Pools:    pools("a", "b", "c"),
			},
			want: chose("b", "routed to b (profile general): "+room+"; datacenter dc1, where it is on no other cluster"),
		},
		{
			name: "much more room weighs more than a new datacenter",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"), Want: 2, Chosen: []string{"a"},
				Clusters: []fleetv1alpha1.Cluster{cluster("a", "dc1"), placedIn(readyCluster("b", map[string][2]string{"general": {"200", "400Gi"}}), "dc1", ""),
					placedIn(readyCluster("c", map[string][2]string{"general": {"5", "400Gi"}}), "dc2", "")},
				Pools: pools("a", "b", "c"),
			},
			want: chose("b", "routed to b (profile general): room cpu 200, memory 400Gi of cpu 200, memory 400Gi after 0 app namespaces; quota cpu 4, memory 16Gi; datacenter dc1, where it is on a already"),
		},
		{
			name: "about the same room (the same tenth): a new datacenter first",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"), Want: 2, Chosen: []string{"a"},
				Clusters: []fleetv1alpha1.Cluster{cluster("a", "dc1"), placedIn(readyCluster("b", map[string][2]string{"general": {"200", "400Gi"}}), "dc1", ""), cluster("c", "dc2")},
				Pools:    pools("a", "b", "c"),
			},
			want: chose("c", "routed to c (profile general): room cpu 100, memory 400Gi of cpu 100, memory 400Gi after 0 app namespaces; quota cpu 4, memory 16Gi; datacenter dc2, where it is on no other cluster"),
		},
		{
			name: "same room: the cluster with fewer app namespaces, of any profile",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"),
				Clusters: []fleetv1alpha1.Cluster{cluster("a", "dc1"), cluster("b", "dc1")},
				Pools:    pools("a", "b"),
				Placed:   []placement{{Cluster: "a", Profile: "gpu-h100", Quota: resources("4", "16Gi")}},
			},
			want: chose("b", "routed to b (profile general): "+room),
		},
		{
			name: "a cordoned cluster gets no new placement, however much room it has",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"), Want: 2,
				Clusters: []fleetv1alpha1.Cluster{cordoned, placedIn(readyCluster("b", map[string][2]string{"general": {"10", "400Gi"}}), "dc1", "")},
				Pools:    pools("a", "b"),
			},
			want: decision{
				Chosen:  []appsv1alpha1.ClusterPlacement{{Cluster: "b", Reason: "routed to b (profile general): room cpu 10, memory 400Gi of cpu 10, memory 400Gi after 0 app namespaces; quota cpu 4, memory 16Gi"}},
				Message: "no other workload cluster fits profile general with quota cpu 4, memory 16Gi: a: cordoned",
			},
		},
		{
			name: "a region keeps it to the clusters of that region",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"), Region: "eu", Want: 2,
				Clusters: []fleetv1alpha1.Cluster{
					placedIn(readyCluster("a", general), "dc1", "us"), cluster("b", "dc1"), placedIn(readyCluster("c", general), "dc2", "eu"),
				},
				Pools: pools("a", "b", "c"),
			},
			want: decision{
				Chosen:  []appsv1alpha1.ClusterPlacement{{Cluster: "c", Reason: "routed to c (profile general): " + room}},
				Message: "no other workload cluster fits profile general with quota cpu 4, memory 16Gi: a: not in region eu (it is in us); b: not in region eu (it has no region)",
			},
		},
		{
			name: "all: every cluster that fits",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"), Want: maxPlacements, All: true, Chosen: []string{"b"},
				Clusters: []fleetv1alpha1.Cluster{cordoned, cluster("b", "dc1"), cluster("c", "dc2"), cluster("d", "dc1")},
				Pools:    pools("a", "b", "c", "d"),
			},
			want: decision{Chosen: []appsv1alpha1.ClusterPlacement{
				{Cluster: "c", Reason: "routed to c (profile general): " + room + "; datacenter dc2, where it is on no other cluster"},
				{Cluster: "d", Reason: "routed to d (profile general): " + room + "; datacenter dc1, where it is on b already"},
			}},
		},
		{
			name: "all, and none fits: why per cluster",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"), Want: maxPlacements, All: true,
				Clusters: []fleetv1alpha1.Cluster{cordoned},
				Pools:    pools("a"),
			},
			want: decision{Message: "no workload cluster fits profile general with quota cpu 4, memory 16Gi: a: cordoned"},
		},
		{
			name: "more clusters asked than there are",
			in: routeInput{
				Profile: "general", Quota: resources("4", "16Gi"), Want: 3, Chosen: []string{"a"},
				Clusters: []fleetv1alpha1.Cluster{cluster("a", "dc1"), cluster("b", "dc1")},
				Pools:    pools("a", "b"),
			},
			want: decision{
				Chosen:  []appsv1alpha1.ClusterPlacement{{Cluster: "b", Reason: "routed to b (profile general): " + room + "; datacenter dc1, where it is on a already"}},
				Message: "no other workload cluster is registered on the hub",
			},
		},
		{
			name: "every cluster of a namespace on several takes its room there",
			in: routeInput{
				Profile: "general", Quota: resources("50", "16Gi"),
				Clusters: []fleetv1alpha1.Cluster{cluster("a", "dc1"), cluster("b", "dc1"), placedIn(readyCluster("c", map[string][2]string{"general": {"60", "400Gi"}}), "dc2", "")},
				Pools:    pools("a", "b", "c"),
				Placed: []placement{
					{Cluster: "a", Profile: "general", Quota: resources("60", "16Gi")},
					{Cluster: "b", Profile: "general", Quota: resources("60", "16Gi")},
				},
			},
			want: chose("c", "routed to c (profile general): room cpu 60, memory 400Gi of cpu 60, memory 400Gi after 0 app namespaces; quota cpu 50, memory 16Gi"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, route(tt.in)); diff != "" {
				t.Errorf("route (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlacements(t *testing.T) {
	self := makeAppNamespace("self", "self").Obj()
	self.Status.Placements = []appsv1alpha1.ClusterPlacement{{Cluster: "a"}}
	several := makeAppNamespace("several", "several").Quota("8", "32Gi").Obj()
	several.Status.Cluster = "a"
	several.Status.Placements = []appsv1alpha1.ClusterPlacement{{Cluster: "a"}, {Cluster: "b"}}
	before := makeAppNamespace("before", "before").Profile("gpu-h100").Obj()
	before.Status.Cluster = "c" // a status written before placements
	lagging := makeAppNamespace("lagging", "lagging").Obj()
	lagging.UID = "lagging-uid"
	lagging.Status.Placements = []appsv1alpha1.ClusterPlacement{{Cluster: "a"}}
	recreated := makeAppNamespace("recreated", "recreated").Obj()
	recreated.UID = "new-uid"
	batch := makeAppNamespace("jobs", "jobs").Batch("q").Obj()
	batch.Status.Clusters = []string{"a", "b"}

	r := &Reconciler{routed: map[string]routedTo{
		// Chosen by this process, not in the cache yet: b is.
		"lagging":   {uid: "lagging-uid", placements: []appsv1alpha1.ClusterPlacement{{Cluster: "a"}, {Cluster: "b"}}},
		"recreated": {uid: "old-uid", placements: []appsv1alpha1.ClusterPlacement{{Cluster: "a"}}},
	}}
	got := r.placements([]appsv1alpha1.AppNamespace{*self, *several, *before, *lagging, *recreated, *batch}, self)
	want := []placement{
		{Cluster: "a", Profile: "general", Quota: resources("8", "32Gi")},
		{Cluster: "b", Profile: "general", Quota: resources("8", "32Gi")},
		{Cluster: "c", Profile: "gpu-h100", Quota: resources("4", "16Gi")},
		{Cluster: "a", Profile: "general", Quota: resources("4", "16Gi")},
		{Cluster: "b", Profile: "general", Quota: resources("4", "16Gi")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("placements (-want +got):\n%s", diff)
	}
}

func TestFormatQuantity(t *testing.T) {
	tests := []struct {
		name corev1.ResourceName
		q    resource.Quantity
		want string
	}{
		{corev1.ResourceCPU, resource.MustParse("160"), "160"},
		{corev1.ResourceCPU, resource.MustParse("1500m"), "1500m"},
		{corev1.ResourceMemory, resource.MustParse("100Ti"), "100Ti"},
		{corev1.ResourceMemory, resource.MustParse("100G"), "100G"},
		{corev1.ResourceMemory, resource.MustParse("512"), "512"},
		// Exact in binary units, however it was written.
		{corev1.ResourceMemory, *resource.NewQuantity(16<<30, resource.DecimalSI), "16Gi"},
		{corev1.ResourceMemory, resource.MustParse("20480Mi"), "20Gi"},
		// Not exact: three figures, rounded down.
		{corev1.ResourceMemory, *resource.NewQuantity(502563307315, resource.BinarySI), "~468Gi"},
		{corev1.ResourceMemory, *resource.NewQuantity(20975520<<20, resource.BinarySI), "~20Ti"},
		{corev1.ResourceMemory, *resource.NewQuantity(2684354555904, resource.DecimalSI), "~2.44Ti"},
		{corev1.ResourceMemory, *resource.NewQuantity(10*(1<<30)+(1<<30)*99/100, resource.BinarySI), "~10.9Gi"},
		{"requests.ephemeral-storage", *resource.NewQuantity(1<<40+1, resource.BinarySI), "~1Ti"},
		{"example.com/gpu", resource.MustParse("12345678"), "12345678"},
	}
	for _, tc := range tests {
		if got := formatQuantity(tc.name, tc.q); got != tc.want {
			t.Errorf("formatQuantity(%s, %s) = %q, want %q", tc.name, tc.q.String(), got, tc.want)
		}
	}
}
