package pool

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

func TestNodeUpdate(t *testing.T) {
	const pool = "web"
	tests := map[string]struct {
		pool        *fleetv1alpha1.Pool
		node        *corev1.Node
		wantChanged bool
		wantLabels  map[string]string
		wantTaints  []corev1.Taint
	}{
		"adds the pool's labels and taints": {
			pool:        testutil.MakePool(pool, "wl", 3).NodeLabel("team", "a").NodeTaint("dedicated", "web", corev1.TaintEffectNoSchedule).Obj(),
			node:        testutil.MakeNode("m1", pool, "1").Obj(),
			wantChanged: true,
			wantLabels: map[string]string{
				fleetv1alpha1.PoolLabel: pool, fleetv1alpha1.MaintenanceZoneLabel: "1", fleetv1alpha1.MachineLabel: "m1",
				fleetv1alpha1.NodeProfileLabel: "general", "team": "a",
			},
			wantTaints: []corev1.Taint{{Key: "dedicated", Value: "web", Effect: corev1.TaintEffectNoSchedule}},
		},
		"removes what the pool no longer has, keeps what others set": {
			pool: testutil.MakePool(pool, "wl", 3).Obj(),
			node: testutil.MakeNode("m1", pool, "1").Label("team", "a").Label("other", "x").
				Label(fleetv1alpha1.NodeProfileLabel, "general").
				Annotation(appliedLabelsAnnotation, "team").Annotation(appliedTaintsAnnotation, "dedicated:NoSchedule").
				Taint("dedicated", "web", corev1.TaintEffectNoSchedule).Taint("foreign", "", corev1.TaintEffectNoExecute).Obj(),
			wantChanged: true,
			wantLabels: map[string]string{
				fleetv1alpha1.PoolLabel: pool, fleetv1alpha1.MaintenanceZoneLabel: "1", fleetv1alpha1.MachineLabel: "m1",
				fleetv1alpha1.NodeProfileLabel: "general", "other": "x",
			},
			wantTaints: []corev1.Taint{{Key: "foreign", Effect: corev1.TaintEffectNoExecute}},
		},
		"corrects a taint's value": {
			pool: testutil.MakePool(pool, "wl", 3).NodeTaint("dedicated", "web", corev1.TaintEffectNoSchedule).Obj(),
			node: testutil.MakeNode("m1", pool, "1").Label(fleetv1alpha1.NodeProfileLabel, "general").
				Annotation(appliedTaintsAnnotation, "dedicated:NoSchedule").
				Taint("dedicated", "old", corev1.TaintEffectNoSchedule).Obj(),
			wantChanged: true,
			wantLabels: map[string]string{
				fleetv1alpha1.PoolLabel: pool, fleetv1alpha1.MaintenanceZoneLabel: "1", fleetv1alpha1.MachineLabel: "m1",
				fleetv1alpha1.NodeProfileLabel: "general",
			},
			wantTaints: []corev1.Taint{{Key: "dedicated", Value: "web", Effect: corev1.TaintEffectNoSchedule}},
		},
		"a node in step is left alone": {
			pool: testutil.MakePool(pool, "wl", 3).NodeLabel("team", "a").Obj(),
			node: testutil.MakeNode("m1", pool, "1").Label("team", "a").Label(fleetv1alpha1.NodeProfileLabel, "general").
				Annotation(appliedLabelsAnnotation, "team").Obj(),
			wantLabels: map[string]string{
				fleetv1alpha1.PoolLabel: pool, fleetv1alpha1.MaintenanceZoneLabel: "1", fleetv1alpha1.MachineLabel: "m1",
				fleetv1alpha1.NodeProfileLabel: "general", "team": "a",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			node := tc.node.DeepCopy()
			if got := nodeUpdate(node, tc.pool); got != tc.wantChanged {
				t.Errorf("nodeUpdate() changed = %v, want %v", got, tc.wantChanged)
			}
			if diff := cmp.Diff(tc.wantLabels, node.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTaints, node.Spec.Taints, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("taints (-want +got):\n%s", diff)
			}
			if nodeUpdate(node, tc.pool) {
				t.Error("a second nodeUpdate() changed the node again")
			}
		})
	}
}

func TestJoinTargetAndDrift(t *testing.T) {
	pool := testutil.MakePool("web", "wl", 10).NodeLabel("team", "a").
		NodeTaint("dedicated", "web", corev1.TaintEffectNoSchedule).RequireDaemonSet("kube-system", "agent").Obj()
	cred := joinCredential{apiServer: "https://10.0.0.1:6443", caBundle: []byte("ca"), token: "abcdef.0123456789abcdef"}
	jt := joinTarget(pool, cred)
	if jt.GetApiServer() != cred.apiServer || string(jt.GetCaBundle()) != "ca" || jt.GetBootstrapToken() != cred.token {
		t.Errorf("join target credential = %q, %q, %q; want the cluster's API server and CA and the token", jt.GetApiServer(), jt.GetCaBundle(), jt.GetBootstrapToken())
	}
	wantLabels := map[string]string{"team": "a", fleetv1alpha1.PoolLabel: "web", fleetv1alpha1.NodeProfileLabel: "general"}
	if diff := cmp.Diff(wantLabels, jt.GetNodeLabels()); diff != "" {
		t.Errorf("join target labels (-want +got):\n%s", diff)
	}
	if n := len(jt.GetNodeTaints()); n != 2 || jt.GetNodeTaints()[1].GetKey() != fleetv1alpha1.StartupTaintKey {
		t.Errorf("join target taints = %v, want the pool's taint then the startup taint", jt.GetNodeTaints())
	}

	inStep := &brokerv1.Pool{Name: "web", Capacity: 10, JoinTarget: joinTarget(pool, joinCredential{})}
	if d := brokerPoolDrift(pool, inStep); d != "" {
		t.Errorf("brokerPoolDrift() of a pool in step = %q", d)
	}
	grown := pool.DeepCopy()
	grown.Spec.Capacity = 12
	grown.Spec.NodeLabels["team"] = "b"
	if d := brokerPoolDrift(grown, inStep); d != "capacity 10 -> 12, node labels" {
		t.Errorf("brokerPoolDrift() = %q", d)
	}
}

func TestConflict(t *testing.T) {
	pool := testutil.MakePool("web", "wl", 1).Obj()
	cluster := testutil.MakeCluster("wl", "ns").Obj()
	tests := map[string]struct {
		bp   *brokerv1.Pool
		want string
	}{
		"ours": {
			bp: &brokerv1.Pool{Name: "web", Datacenter: "dc1", NodeProfile: "general", JoinTarget: &brokerv1.JoinTarget{Cluster: "wl"}},
		},
		"made outside the hub": {
			bp:   &brokerv1.Pool{Name: "web", Datacenter: "dc1", NodeProfile: "general"},
			want: `broker pool "web" already exists and joins no cluster: it was created outside the hub; rename the Pool or delete that broker pool`,
		},
		"another cluster's": {
			bp:   &brokerv1.Pool{Name: "web", Datacenter: "dc1", NodeProfile: "general", JoinTarget: &brokerv1.JoinTarget{Cluster: "other"}},
			want: `broker pool "web" already exists and joins cluster "other", not "wl"`,
		},
		"another profile": {
			bp:   &brokerv1.Pool{Name: "web", Datacenter: "dc1", NodeProfile: "gpu", JoinTarget: &brokerv1.JoinTarget{Cluster: "wl"}},
			want: `broker pool "web" has node profile "gpu", not "general"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := conflict(pool, cluster, tc.bp); got != tc.want {
				t.Errorf("conflict() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDesiredStatus(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	satisfied := func(allocated, releasing int32, zones ...*brokerv1.ZoneCount) *brokerv1.Pool {
		return &brokerv1.Pool{Status: &brokerv1.PoolStatus{Allocated: allocated, Releasing: releasing, Zones: zones,
			Conditions: []*brokerv1.Condition{{Type: "Satisfied", Status: "True", Reason: "Satisfied", Message: "ok"}}}}
	}
	short := &brokerv1.Pool{Status: &brokerv1.PoolStatus{Allocated: 1, Conditions: []*brokerv1.Condition{{
		Type: "Satisfied", Status: "False", Reason: "InsufficientInventory", Message: "1 of 2 machines allocated"}}}}
	ready := func(name, mz string) corev1.Node { return *testutil.MakeNode(name, "web", mz).Obj() }
	tainted := *testutil.MakeNode("m2", "web", "2").Taint(fleetv1alpha1.StartupTaintKey, "true", corev1.TaintEffectNoSchedule).Obj()
	// draining is a Node the cluster manager drains, with the evictions refused.
	draining := func(name, mz string, blocked ...string) corev1.Node {
		n := testutil.MakeNode(name, "web", mz).Cordoned().Annotation(fleetv1alpha1.DrainStartedAnnotation, now.Format(time.RFC3339))
		if len(blocked) > 0 {
			n.Annotation(fleetv1alpha1.DrainBlockedAnnotation, strings.Join(blocked, "\n"))
		}
		return *n.Obj()
	}
	// drained is a Node the cluster manager drained and keeps cordoned while
	// its machine's disruption (here a reimage) runs; kwok keeps it Ready.
	drained := func(name, mz string) corev1.Node {
		return *testutil.MakeNode(name, "web", mz).Cordoned().Annotation(fleetv1alpha1.CordonedForAnnotation, "d-"+name).Obj()
	}

	tests := map[string]struct {
		pool       *fleetv1alpha1.Pool
		obs        observed
		block      *blocker
		wantReady  metav1.ConditionStatus
		wantReason string
		wantMsg    string
		wantZones  []fleetv1alpha1.ZoneStatus
		// wantDraining is status.draining.
		wantDraining int32
	}{
		"ready": {
			pool: testutil.MakePool("web", "wl", 2).Obj(),
			obs: observed{brokerPool: satisfied(2, 0, &brokerv1.ZoneCount{MaintenanceZone: 1, Machines: 1}, &brokerv1.ZoneCount{MaintenanceZone: 2, Machines: 1}),
				nodes: []corev1.Node{ready("m1", "1"), ready("m2", "2")}},
			wantReady: metav1.ConditionTrue, wantReason: "Ready", wantMsg: "2 Nodes ready",
			wantZones: []fleetv1alpha1.ZoneStatus{{MaintenanceZone: 1, Allocated: 1, Ready: 1}, {MaintenanceZone: 2, Allocated: 1, Ready: 1}},
		},
		"blocked": {
			pool:       testutil.MakePool("web", "nope", 2).Obj(),
			block:      &blocker{fleetv1alpha1.ClusterNotFoundReason, "cluster nope is not registered"},
			wantReady:  metav1.ConditionFalse,
			wantReason: "ClusterNotFound", wantMsg: "cluster nope is not registered",
		},
		"insufficient inventory": {
			pool: testutil.MakePool("web", "wl", 2).Obj(), obs: observed{brokerPool: short, nodes: []corev1.Node{ready("m1", "1")}},
			wantReady: metav1.ConditionFalse, wantReason: "InsufficientInventory", wantMsg: "1 of 2 machines allocated",
			wantZones: []fleetv1alpha1.ZoneStatus{{MaintenanceZone: 1, Ready: 1}},
		},
		"joining": {
			pool: testutil.MakePool("web", "wl", 2).Obj(), obs: observed{brokerPool: satisfied(2, 0), nodes: []corev1.Node{ready("m1", "1")}},
			wantReady: metav1.ConditionFalse, wantReason: "Joining", wantMsg: "1 of 2 machines have joined as Nodes",
			wantZones: []fleetv1alpha1.ZoneStatus{{MaintenanceZone: 1, Ready: 1}},
		},
		"joining, a machine's token refused": {
			pool: testutil.MakePool("web", "wl", 2).Obj(),
			obs: observed{brokerPool: satisfied(2, 0), nodes: []corev1.Node{ready("m1", "1")},
				joinFailure: "machine m2: provisioning: joining cluster wl failed, retrying: bootstrap token refused"},
			wantReady: metav1.ConditionFalse, wantReason: "Joining",
			wantMsg:   "1 of 2 machines have joined as Nodes; machine m2: provisioning: joining cluster wl failed, retrying: bootstrap token refused",
			wantZones: []fleetv1alpha1.ZoneStatus{{MaintenanceZone: 1, Ready: 1}},
		},
		"waiting for daemonsets": {
			pool:      testutil.MakePool("web", "wl", 2).RequireDaemonSet("kube-system", "agent").Obj(),
			obs:       observed{brokerPool: satisfied(2, 0), nodes: []corev1.Node{ready("m1", "1"), tainted}},
			wantReady: metav1.ConditionFalse, wantReason: "WaitingForDaemonSets",
			wantMsg:   "1 of 2 Nodes wait for a ready pod of each required DaemonSet (kube-system/agent)",
			wantZones: []fleetv1alpha1.ZoneStatus{{MaintenanceZone: 1, Ready: 1}},
		},
		"releasing, with a refused eviction": {
			pool: testutil.MakePool("web", "wl", 1).Obj(),
			obs: observed{brokerPool: satisfied(2, 1), nodes: []corev1.Node{ready("m1", "1"), draining("m2", "2",
				"app/p-1: The disruption budget web needs 2 healthy pods and has 2 currently")}},
			wantReady: metav1.ConditionFalse, wantReason: "Draining", wantDraining: 1,
			wantMsg:   "releasing 1 machines once their Nodes are drained (1 Nodes draining); evictions refused: app/p-1: The disruption budget web needs 2 healthy pods and has 2 currently",
			wantZones: []fleetv1alpha1.ZoneStatus{{MaintenanceZone: 1, Ready: 1}},
		},
		"draining for maintenance": {
			pool: testutil.MakePool("web", "wl", 2).Obj(),
			obs: observed{brokerPool: satisfied(2, 0), nodes: []corev1.Node{draining("m1", "1"), draining("m2", "2",
				"app/p-2: The disruption budget web needs 2 healthy pods and has 2 currently",
				"app/p-1: The disruption budget web needs 2 healthy pods and has 2 currently")}},
			wantReady: metav1.ConditionFalse, wantReason: "Draining", wantDraining: 2,
			wantMsg: "draining 2 Nodes for maintenance; evictions refused: " +
				"app/p-1: The disruption budget web needs 2 healthy pods and has 2 currently; " +
				"app/p-2: The disruption budget web needs 2 healthy pods and has 2 currently",
		},
		"drained for maintenance, its machine being reimaged: Draining, not NodesNotReady": {
			pool:      testutil.MakePool("web", "wl", 3).Obj(),
			obs:       observed{brokerPool: satisfied(3, 0), nodes: []corev1.Node{ready("m1", "1"), drained("m2", "2"), drained("m3", "2")}},
			wantReady: metav1.ConditionFalse, wantReason: "Draining",
			wantMsg:   "2 Nodes drained for maintenance, cordoned until it is over",
			wantZones: []fleetv1alpha1.ZoneStatus{{MaintenanceZone: 1, Ready: 1}},
		},
		"draining some for maintenance, others drained": {
			pool:      testutil.MakePool("web", "wl", 3).Obj(),
			obs:       observed{brokerPool: satisfied(3, 0), nodes: []corev1.Node{draining("m1", "1", "a/1: x"), drained("m2", "2"), drained("m3", "3")}},
			wantReady: metav1.ConditionFalse, wantReason: "Draining", wantDraining: 1,
			wantMsg: "draining 1 Nodes for maintenance; 2 more drained, cordoned until it is over; evictions refused: a/1: x",
		},
		"releasing, one Node draining and one drained": {
			pool:      testutil.MakePool("web", "wl", 1).Obj(),
			obs:       observed{brokerPool: satisfied(3, 2), nodes: []corev1.Node{ready("m1", "1"), draining("m2", "2"), drained("m3", "3")}},
			wantReady: metav1.ConditionFalse, wantReason: "Draining", wantDraining: 1,
			wantMsg:   "releasing 2 machines once their Nodes are drained (1 Nodes draining, 1 drained)",
			wantZones: []fleetv1alpha1.ZoneStatus{{MaintenanceZone: 1, Ready: 1}},
		},
		"deleting names the pods a budget holds": {
			pool:      testutil.MakePool("web", "wl", 2).Deleting().Obj(),
			obs:       observed{brokerPool: satisfied(2, 2), nodes: []corev1.Node{draining("m1", "1", "a/1: x", "a/2: x"), draining("m2", "2", "a/3: x", "a/4: x")}},
			wantReady: metav1.ConditionFalse, wantReason: "Deleting", wantDraining: 2,
			wantMsg: "draining 2 Nodes and releasing 2 machines before the Pool is removed; evictions refused: a/1: x; a/2: x; a/3: x and 1 more",
		},
		"not ready nodes": {
			pool:      testutil.MakePool("web", "wl", 2).Obj(),
			obs:       observed{brokerPool: satisfied(2, 0), nodes: []corev1.Node{ready("m1", "1"), *testutil.MakeNode("m2", "web", "2").NotReady().Obj()}},
			wantReady: metav1.ConditionFalse, wantReason: "NodesNotReady",
			wantMsg:   "1 of 2 Nodes are ready (1 not Ready, 0 cordoned)",
			wantZones: []fleetv1alpha1.ZoneStatus{{MaintenanceZone: 1, Ready: 1}},
		},
		"a Node cordoned by someone else and one not Ready: counted apart": {
			pool: testutil.MakePool("web", "wl", 3).Obj(),
			obs: observed{brokerPool: satisfied(3, 0), nodes: []corev1.Node{ready("m1", "1"),
				*testutil.MakeNode("m2", "web", "2").NotReady().Obj(), *testutil.MakeNode("m3", "web", "3").Cordoned().Obj()}},
			wantReady: metav1.ConditionFalse, wantReason: "NodesNotReady",
			wantMsg:   "1 of 3 Nodes are ready (1 not Ready, 1 cordoned)",
			wantZones: []fleetv1alpha1.ZoneStatus{{MaintenanceZone: 1, Ready: 1}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := desiredStatus(tc.pool, tc.obs, tc.block, now)
			var got *metav1.Condition
			for i := range st.Conditions {
				if st.Conditions[i].Type == fleetv1alpha1.PoolReadyCondition {
					got = &st.Conditions[i]
				}
			}
			if got == nil || got.Status != tc.wantReady || got.Reason != tc.wantReason || got.Message != tc.wantMsg {
				t.Fatalf("Ready condition = %+v, want %s %s %q", got, tc.wantReady, tc.wantReason, tc.wantMsg)
			}
			if got.ObservedGeneration != tc.pool.Generation || st.ObservedGeneration != tc.pool.Generation {
				t.Errorf("observedGeneration = %d/%d, want %d", got.ObservedGeneration, st.ObservedGeneration, tc.pool.Generation)
			}
			if st.Draining != tc.wantDraining {
				t.Errorf("draining = %d, want %d", st.Draining, tc.wantDraining)
			}
			if diff := cmp.Diff(tc.wantZones, st.Zones, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("zones (-want +got):\n%s", diff)
			}
		})
	}
}
