package dispatch

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// admittedWorkload is a hub Workload as Kueue writes it: a gang of 8 pods
// admitted in flavor general and sent to a cluster.
func admittedWorkload(i int) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload",
		"metadata": map[string]any{"name": fmt.Sprintf("job-%d", i), "namespace": "team-a", "uid": fmt.Sprint(i), "resourceVersion": "1"},
		"spec": map[string]any{"queueName": "team-a", "podSets": []any{map[string]any{"name": "main", "count": int64(8), "template": map[string]any{
			"spec": map[string]any{"containers": []any{map[string]any{"name": "main", "image": "busybox",
				"resources": map[string]any{"requests": map[string]any{"cpu": "4", "memory": "8Gi"}}}}},
		}}}},
		"status": map[string]any{
			"admission": map[string]any{"clusterQueue": "team-a", "podSetAssignments": []any{map[string]any{
				"name": "main", "count": int64(8), "flavors": map[string]any{"cpu": "general", "memory": "general"},
				"resourceUsage": map[string]any{"cpu": "32", "memory": "64Gi"},
			}}},
			"conditions": []any{map[string]any{"type": "QuotaReserved", "status": "True", "reason": "QuotaReserved", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"},
				map[string]any{"type": "Admitted", "status": "True", "reason": "Admitted", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}},
			"admissionChecks": []any{map[string]any{"name": "strata-multikueue", "state": "Ready", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}},
			"clusterName":     "w1",
		},
	}}
}

// BenchmarkUsage is what each decision pays per Workload on the hub to
// account what was dispatched: reading it from the cache's object.
func BenchmarkUsage(b *testing.B) {
	u := admittedWorkload(1)
	for b.Loop() {
		wl, err := parseWorkload(u)
		if err != nil || !wl.occupies() {
			b.Fatal(err)
		}
		if _, _, err := wl.podSets(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecide: a gang of 8 over 2 clusters of 250 Nodes each.
func BenchmarkDecide(b *testing.B) {
	clusters := []clusterInput{cluster("w1", nodes("n", "dc1-mz1", 250, "")).used("2000", "4000Gi"), cluster("w2", nodes("m", "dc1-mz1", 250, ""))}
	want := gang(8, "4", "8Gi")
	for b.Loop() {
		decide(want, clusters)
	}
}
