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
			describe(&got, &AppStatus{App: tc.an.Spec.App, Namespaces: []NamespaceStatus{newNamespaceStatus(tc.an, w, tc.readErr, tc.shards)}})
			golden(t, filepath.Join("testdata", "status", strings.ReplaceAll(tc.name, " ", "-")+".txt"), got.String())
		})
	}
}
