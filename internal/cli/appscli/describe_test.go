package appscli

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

const (
	ready       = appsv1alpha1.StatelessAppReadyCondition
	progressing = appsv1alpha1.StatelessAppProgressingCondition
	degraded    = appsv1alpha1.StatelessAppDegradedCondition
	isTrue      = metav1.ConditionTrue
	isFalse     = metav1.ConditionFalse
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with the file's content, or writes it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the golden file (go test -update writes it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s\ngot:\n%s", path, diff, got)
	}
}

func TestDescribe(t *testing.T) {
	shop := makeAppNamespace("shop", "shop").routed("workload-1").
		owner(appsv1alpha1.UserSubject, "alice", appsv1alpha1.AdminRole).
		owner(appsv1alpha1.GroupSubject, "shop-devs", appsv1alpha1.EditRole).obj()
	store := makeAppNamespace("store", "store").stateful().routed("workload-1").profile("storage").
		owner(appsv1alpha1.GroupSubject, "store-devs", appsv1alpha1.AdminRole).obj()
	t1 := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
	// Six shards, replication 3, on three pods.
	allInSync := &Shards{Shards: 6, ReplicationFactor: 3, MinInSync: 2, Pods: []PodShards{
		podShards("kv-0", true, "0L", "1F", "2F", "3L", "4F", "5F"),
		podShards("kv-1", true, "0F", "1L", "2F", "3F", "4L", "5F"),
		podShards("kv-2", true, "0F", "1F", "2L", "3F", "4F", "5L"),
	}}
	tests := []struct {
		name     string
		an       *appsv1alpha1.AppNamespace
		apps     []*appsv1alpha1.StatelessApp
		stateful []*appsv1alpha1.StatefulApp
		shards   []shardsRead
		readErr  error
	}{
		{
			name: "ready",
			an:   shop,
			apps: []*appsv1alpha1.StatelessApp{makeStatelessApp("web", 3).tracks(3, 3, 0, 0).readyConditions().obj()},
		},
		{
			name: "canary rolling out",
			an:   shop,
			apps: []*appsv1alpha1.StatelessApp{makeStatelessApp("web", 30).canary("1.1", 10).tracks(27, 27, 1, 3).
				condition(ready, isFalse, appsv1alpha1.ReplicasUnavailableReason, "28 of 30 replicas available").
				condition(progressing, isTrue, appsv1alpha1.RollingOutReason, "canary 1.1: 1 of 3 pods ready").
				condition(degraded, isFalse, appsv1alpha1.NoFailureReason, "").obj()},
		},
		{
			name: "app failure",
			an:   shop,
			apps: []*appsv1alpha1.StatelessApp{makeStatelessApp("web", 12).canary("1.1", 25).tracks(9, 9, 0, 3).
				condition(ready, isFalse, appsv1alpha1.ReplicasUnavailableReason, "9 of 12 replicas available").
				condition(progressing, isFalse, appsv1alpha1.ProgressDeadlineExceededReason, "no progress for 600s").
				condition(degraded, isTrue, string(appsv1alpha1.AppFailure), "3 pods crash").
				failure(appsv1alpha1.AppFailure, "CrashLoopBackOff", "back-off 5m0s restarting failed container=app (exit code 1)", 3,
					"web-canary-1", "web-canary-2").obj()},
		},
		{
			name: "infra failure",
			an:   shop,
			apps: []*appsv1alpha1.StatelessApp{makeStatelessApp("web", 50).tracks(40, 50, 0, 0).
				condition(ready, isFalse, appsv1alpha1.ReplicasUnavailableReason, "40 of 50 replicas available").
				condition(progressing, isTrue, appsv1alpha1.RollingOutReason, "").
				condition(degraded, isTrue, string(appsv1alpha1.InfraFailure), "10 pods cannot be scheduled").
				failure(appsv1alpha1.InfraFailure, "Unschedulable", "0/40 nodes are available: 40 Insufficient cpu.", 10,
					"web-a", "web-b", "web-c").obj()},
		},
		{
			name: "spec not seen yet",
			an:   shop,
			apps: []*appsv1alpha1.StatelessApp{makeStatelessApp("web", 3).generation(2, 1).tracks(3, 3, 0, 0).readyConditions().obj()},
		},
		{
			name: "not routed",
			an: makeAppNamespace("shop-gpu", "shop").profile("gpu-h100").
				ready(isFalse, appsv1alpha1.NoClusterFitsReason, "workload-1: no Pool of profile gpu-h100").obj(),
		},
		{
			name:    "cluster unreachable",
			an:      shop,
			readErr: errors.New("listing StatelessApps in namespace shop of cluster workload-1: connection refused"),
		},
		{
			name: "forbidden",
			an:   shop,
			readErr: &accessError{forbidden: true, msg: `forbidden: user "bob" may not list StatelessApps in namespace shop of cluster workload-1 ` +
				`(an app's namespace is open to the owners its AppNamespace lists in spec.owners: ask one of them, or the platform team, for view access)`},
		},
		{
			name: "stateful ready",
			an:   store,
			stateful: []*appsv1alpha1.StatefulApp{makeStatefulApp("kv", 3).readyConditions().
				pod("kv-0", "dc1-r002-u01", "1.0", true).pod("kv-1", "dc1-r002-u02", "1.0", true).pod("kv-2", "dc1-r002-u03", "1.0", true).obj()},
			shards: []shardsRead{{shards: allInSync}},
		},
		{
			name: "stateful maintenance",
			an:   store,
			stateful: []*appsv1alpha1.StatefulApp{makeStatefulApp("kv", 3).
				condition(appsv1alpha1.StatefulAppReadyCondition, isFalse, appsv1alpha1.PodsNotReadyReason, "1 of 3 pods not ready").
				condition(appsv1alpha1.StatefulAppProgressingCondition, isTrue, appsv1alpha1.WaitingForShardManagerReason, "kv-1: Evict waits for the shard manager").
				condition(appsv1alpha1.ShardManagerReachableCondition, isTrue, appsv1alpha1.ShardManagerAnsweredReason, "").
				pod("kv-0", "dc1-r002-u01", "1.0", false).
				operation("Evict", "planned-upgrade of machine dc1-r002-u01 (disruption 4f2c)", appsv1alpha1.OperationWaitingForPod, "", t1).
				pod("kv-1", "dc1-r002-u02", "1.0", true).
				operation("Evict", "planned-upgrade of machine dc1-r002-u02 (disruption 77a1)", appsv1alpha1.OperationRetryAfter,
					"moving the leaders of shards 1, 4 off kv-1; shard 0 has 1 in-sync replica elsewhere", t1.Add(time.Minute)).
				pod("kv-2", "dc1-r002-u03", "1.0", true).obj()},
			shards: []shardsRead{{shards: &Shards{Shards: 6, ReplicationFactor: 3, MinInSync: 2,
				Pods: []PodShards{
					podShards("kv-0", false, "0F!", "1F!", "2F!", "3F!", "4F!", "5F!"),
					podShards("kv-1", true, "0L", "1L", "2F", "3F", "4L", "5F"),
					podShards("kv-2", true, "0F!", "1F", "2L", "3L", "4F", "5L"),
				},
				Operations: []ShardOperation{{ID: "store/kv/kv-0/EVICT/1", Pod: "kv-0", Kind: "Evict"}},
			}}},
		},
		{
			name: "stateful canary",
			an:   store,
			stateful: []*appsv1alpha1.StatefulApp{makeStatefulApp("kv", 3).canary("1.1", 1).
				condition(appsv1alpha1.StatefulAppReadyCondition, isFalse, appsv1alpha1.PodsNotReadyReason, "1 of 3 pods not ready").
				condition(appsv1alpha1.StatefulAppProgressingCondition, isTrue, appsv1alpha1.OperationsInProgressReason, "kv-2: Restart to 1.1").
				condition(appsv1alpha1.ShardManagerReachableCondition, isTrue, appsv1alpha1.ShardManagerAnsweredReason, "").
				pod("kv-0", "dc1-r002-u01", "1.0", true).pod("kv-1", "dc1-r002-u02", "1.0", true).
				pod("kv-2", "dc1-r002-u03", "1.1", false).
				operation("Restart", "canary of version 1.1", appsv1alpha1.OperationWaitingForPod, "", t1).obj()},
			shards: []shardsRead{{shards: &Shards{Shards: 6, ReplicationFactor: 3, MinInSync: 2, Pods: allInSync.Pods[:2]}}},
		},
		{
			name: "stateful shard manager unreachable",
			an:   store,
			stateful: []*appsv1alpha1.StatefulApp{makeStatefulApp("kv", 3).endpoint("kv-sm.store:7443").
				condition(appsv1alpha1.StatefulAppReadyCondition, isTrue, "AllPodsReady", "").
				condition(appsv1alpha1.StatefulAppProgressingCondition, isTrue, appsv1alpha1.WaitingForShardManagerReason, "kv-0: Evict waits").
				condition(appsv1alpha1.ShardManagerReachableCondition, isFalse, appsv1alpha1.ShardManagerUnreachableReason,
					"RequestOperation: context deadline exceeded after 5s").
				pod("kv-0", "dc1-r002-u01", "1.0", true).
				operation("Evict", "planned-upgrade of machine dc1-r002-u01", appsv1alpha1.OperationRequested, "no answer: context deadline exceeded", t1).
				pod("kv-1", "dc1-r002-u02", "1.0", true).pod("kv-2", "dc1-r002-u03", "1.0", true).obj()},
			shards: []shardsRead{{err: "shard manager unreachable: kv-sm.store:7443 did not answer within 3s"}},
		},
		{
			name:     "stateful without status",
			an:       store,
			stateful: []*appsv1alpha1.StatefulApp{makeStatefulApp("kv", 3).generation(1, 0).obj()},
			shards:   []shardsRead{{shards: &Shards{Shards: 6, ReplicationFactor: 3, MinInSync: 2}}},
		},
		{
			name: "namespace not ready and empty",
			an: makeAppNamespace("shop", "shop").routed("workload-1").
				ready(isFalse, appsv1alpha1.ClusterUnavailableReason, "cluster workload-1 is not Ready").obj(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w workloads
			for _, sa := range tc.apps {
				w.stateless = append(w.stateless, *sa)
			}
			for _, sa := range tc.stateful {
				w.stateful = append(w.stateful, *sa)
			}
			var got strings.Builder
			describe(&got, &AppStatus{App: tc.an.Spec.App, Namespaces: []NamespaceStatus{newNamespaceStatus(tc.an, tc.an.Status.Cluster, w, tc.readErr, tc.shards)}})
			golden(t, filepath.Join("testdata", "status", strings.ReplaceAll(tc.name, " ", "-")+".txt"), got.String())
		})
	}
}

func TestDescribeMultiCluster(t *testing.T) {
	shop := makeAppNamespace("shop", "shop").placed("workload-1", "workload-2", "workload-3").
		owner(appsv1alpha1.UserSubject, "alice", appsv1alpha1.AdminRole).obj()
	web := makeStatelessApp("web", 3).tracks(3, 3, 0, 0).readyConditions().obj()
	// The hub wrote this one: it says so.
	web.Labels = map[string]string{appsv1alpha1.HubAppLabel: "web"}
	starved := makeStatelessApp("web", 3).tracks(1, 3, 0, 0).
		condition(ready, isFalse, appsv1alpha1.ReplicasUnavailableReason, "1 of 3 replicas available").
		condition(progressing, isTrue, appsv1alpha1.RollingOutReason, "").
		condition(degraded, isTrue, string(appsv1alpha1.InfraFailure), "2 pods cannot be scheduled").
		failure(appsv1alpha1.InfraFailure, "Unschedulable", "0/4 nodes are available: 4 Insufficient cpu.", 2, "web-x", "web-y").obj()
	var got strings.Builder
	describe(&got, &AppStatus{App: "shop", Namespaces: []NamespaceStatus{
		newNamespaceStatus(shop, "workload-1", workloads{stateless: []appsv1alpha1.StatelessApp{*web}}, nil, nil),
		newNamespaceStatus(shop, "workload-2", workloads{stateless: []appsv1alpha1.StatelessApp{*starved}}, nil, nil),
		newNamespaceStatus(shop, "workload-3", workloads{}, errors.New("listing StatelessApps in namespace shop of cluster workload-3: connection refused"), nil),
	}})
	golden(t, filepath.Join("testdata", "status", "multi-cluster.txt"), got.String())
}

func TestDescribeHubApp(t *testing.T) {
	shop := makeAppNamespace("shop", "shop").placed("workload-1", "workload-2", "workload-3").
		owner(appsv1alpha1.UserSubject, "alice", appsv1alpha1.AdminRole).obj()
	released := metav1.Condition{Type: appsv1alpha1.StatelessAppReleasedCondition, Status: isTrue, Reason: appsv1alpha1.ReleasedReason}
	tests := []struct {
		name string
		an   *appsv1alpha1.AppNamespace
		app  *appsv1alpha1.StatelessApp
	}{
		{
			name: "released",
			an:   shop,
			app: makeStatelessApp("web", 12).hubApp().version("1.1", "2").
				inCluster("workload-1", 6).inCluster("workload-2", 3).inCluster("workload-3", 3).
				release("1.0", "1", "Released", 3, "", "workload-1", "workload-2", "workload-3").
				condition(ready, isTrue, appsv1alpha1.AvailableReason, "").
				condition(degraded, isFalse, appsv1alpha1.NoFailureReason, "").
				condition(released.Type, released.Status, released.Reason, "").obj(),
		},
		{
			name: "release paused on an App failure",
			an:   shop,
			app: makeStatelessApp("web", 12).hubApp().version("1.1", "2").
				inCluster("workload-1", 4).
				inCluster("workload-2", 4).clusterStatus(func(c *appsv1alpha1.ClusterAppStatus) {
				c.ReadyReplicas, c.Ready = 1, false
				c.Failure = &appsv1alpha1.Failure{Category: appsv1alpha1.AppFailure, Reason: "CrashLoopBackOff",
					Message: "back-off restarting failed container app", Pods: []string{"web-7d9-a", "web-7d9-b"}, FailingPods: 3}
			}).
				inCluster("workload-3", 4).clusterStatus(func(c *appsv1alpha1.ClusterAppStatus) { c.AppVersion, c.ConfigVersion = "1.0", "1" }).
				release("1.0", "1", "Paused", 2, "App failure in workload-2: CrashLoopBackOff in 3 pods", "workload-1", "workload-2").
				condition(ready, isFalse, appsv1alpha1.ReplicasUnavailableReason, "9 of 12 replicas ready").
				condition(degraded, isTrue, string(appsv1alpha1.AppFailure), "workload-2: 3 pods crash").
				condition(released.Type, isFalse, appsv1alpha1.ReleasePausedReason, "wave 2 (workload-2): App failure, CrashLoopBackOff").obj(),
		},
		{
			name: "moving off a cordoned cluster",
			an:   shop,
			app: makeStatelessApp("web", 12).hubApp().
				inCluster("workload-1", 6).clusterStatus(func(c *appsv1alpha1.ClusterAppStatus) { c.ReadyReplicas, c.Ready = 4, false }).
				inCluster("workload-2", 6).
				inCluster("workload-3", 4).clusterStatus(func(c *appsv1alpha1.ClusterAppStatus) {
				c.State, c.Share = "Cordoned", 0
				c.Message = "cordoned: its replicas stay until workload-1 has 6 Ready"
			}).
				condition(ready, isFalse, appsv1alpha1.MovingReason, "4 replicas move from workload-3 (cordoned) to workload-1").
				condition(degraded, isFalse, appsv1alpha1.NoFailureReason, "").
				condition(released.Type, released.Status, released.Reason, "").obj(),
		},
		{
			name: "release waiting on an unreachable cluster",
			an:   shop,
			app: func() *appsv1alpha1.StatelessApp {
				sa := makeStatelessApp("web", 12).hubApp().version("1.1", "2").
					inCluster("workload-1", 4).
					inCluster("workload-2", 4).clusterStatus(func(c *appsv1alpha1.ClusterAppStatus) {
					c.State, c.Ready, c.ReadyReplicas = "Unreachable", false, 0
					c.AppVersion, c.ConfigVersion = "1.0", "1"
					c.Message = "the hub cannot reach cluster workload-2: connection refused"
				}).
					inCluster("workload-3", 4).clusterStatus(func(c *appsv1alpha1.ClusterAppStatus) { c.AppVersion, c.ConfigVersion = "1.0", "1" }).
					release("1.0", "1", "Waiting", 2, "wave 2 waits for workload-2, which the hub cannot reach", "workload-1").
					condition(ready, isFalse, appsv1alpha1.ReplicasUnavailableReason, "8 of 12 replicas ready").
					condition(degraded, isFalse, appsv1alpha1.NoFailureReason, "").
					condition(released.Type, isFalse, appsv1alpha1.ReleaseWaitingReason, "wave 2 waits for workload-2, which the hub cannot reach").obj()
				sa.Spec.Fleet.Weights = map[string]int32{"workload-1": 2, "workload-3": 0}
				sa.Status.Release.WaveReadySince = nil
				return sa
			}(),
		},
		{
			name: "paused by its owner",
			an:   shop,
			app: func() *appsv1alpha1.StatelessApp {
				sa := makeStatelessApp("web", 4).hubApp().version("1.1", "2").
					inCluster("workload-1", 2).inCluster("workload-2", 2).clusterStatus(func(c *appsv1alpha1.ClusterAppStatus) { c.AppVersion = "1.0" }).
					release("1.0", "2", "Paused", 1, "paused by spec.fleet.release.paused", "workload-1").
					condition(ready, isTrue, appsv1alpha1.AvailableReason, "").
					condition(released.Type, isFalse, appsv1alpha1.ReleasePausedReason, "paused by spec.fleet.release.paused").obj()
				sa.Spec.Fleet.Release.Paused = true
				return sa
			}(),
		},
		{
			name: "no status yet",
			an:   makeAppNamespace("shop", "shop").ready(isFalse, appsv1alpha1.NoClusterFitsReason, "no cluster has room for profile general").obj(),
			app:  makeStatelessApp("web", 3).hubApp().generation(1, 0).obj(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got strings.Builder
			describe(&got, &AppStatus{App: tc.an.Spec.App, Namespaces: []NamespaceStatus{newHubNamespaceStatus(tc.an, []appsv1alpha1.StatelessApp{*tc.app})}})
			golden(t, filepath.Join("testdata", "status", "hub-"+strings.ReplaceAll(tc.name, " ", "-")+".txt"), got.String())
		})
	}
}
