package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

const reliefPool = `
apiVersion: fleet.strata.dev/v1alpha1
kind: Pool
metadata: {name: relief}
spec:
  cluster: workload-2
  capacity: 4
  nodeProfile: general
`

// testNeverBreaksItself checks what keeps an overloaded datacenter from
// feeding its own overload: a Kubernetes component that exits is restarted,
// a capacity past the cluster's Node limit is refused, and a shrink reaches
// the broker while the cluster it relieves does not answer.
func testNeverBreaksItself(t *testing.T, bin, home string) {
	hub := localdc.KubeconfigPath(home, localdc.HubName)
	cluster := localdc.WorkloadClusterName(2)
	wl := localdc.KubeconfigPath(home, cluster)
	kubectl := func(kubeconfig string, args ...string) string {
		return run(t, bin, "kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	}
	brokerCapacity := func(pool string) int32 {
		p := &brokerv1.Pool{}
		brokerJSON(t, bin, home, p, "pools", "get", pool)
		return p.GetCapacity()
	}

	t.Run("a controller-manager killed by hand is restarted, and strata status says so", func(t *testing.T) {
		pidFile := filepath.Join(localdc.ClusterDir(home, cluster), "pids", "kube-controller-manager.pid")
		killed := clusterProcess(t, home, cluster, "kube-controller-manager")
		if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		poll(t, time.Minute, "a new kube-controller-manager of "+cluster, func(context.Context) (bool, string) {
			raw, _ := os.ReadFile(pidFile)
			pid := strings.TrimSpace(string(raw))
			return pid != "" && pid != fmt.Sprint(killed) && syscall.Kill(atoi(t, pid), 0) == nil, "pid file says " + pid
		})
		var state localdc.DatacenterState
		if err := json.Unmarshal([]byte(run(t, bin, "strata", "status", "--home", home, "-o", "json")), &state); err != nil {
			t.Fatal(err)
		}
		for _, c := range state.Clusters {
			if c.Name != cluster {
				continue
			}
			if r := c.Restarts["kube-controller-manager"]; r.Count != 1 || !strings.HasPrefix(r.Reason, "exited") {
				t.Errorf("strata status: %s's restarts %+v, want the controller-manager's, once, and why", cluster, c.Restarts)
			}
		}
		table, _ := runErr(bin, "strata", "status", "--home", home)
		for _, want := range []string{"kube-controller-manager 1 (", "Restarted by strata up", cluster + "/kube-controller-manager"} {
			if !strings.Contains(table, want) {
				t.Errorf("strata status lacks %q:\n%s", want, table)
			}
		}
		// The new one works: a Deployment gets its pods.
		kubectl(wl, "create", "deployment", "after-restart", "--image=registry.example/web:1", "--replicas=2")
		kubectl(wl, "rollout", "status", "deployment/after-restart", "--timeout=2m")
		kubectl(wl, "delete", "deployment", "after-restart")
	})

	t.Run("a capacity over the cluster's limit is refused", func(t *testing.T) {
		kubectl(hub, "patch", "cluster", cluster, "--type=merge", "-p", `{"spec":{"maxNodes":50}}`)
		defer kubectl(hub, "patch", "cluster", cluster, "--type=json", "-p", `[{"op":"remove","path":"/spec/maxNodes"}]`)
		pool := cluster + "-general"
		before := brokerCapacity(pool)
		out, err := runErr(bin, "strata", "--home", home, "pools", "scale", pool, "51")
		if err == nil || !strings.Contains(out, "refused: Pool "+pool+": capacity 51 would give cluster "+cluster) ||
			!strings.Contains(out, "over its limit of 50 (spec.maxNodes of Cluster "+cluster+")") {
			t.Errorf("strata pools scale past the limit: err=%v\n%s", err, out)
		}
		// kubectl is not stopped up front: the Pool says why, and the
		// broker pool is left as it was.
		kubectl(hub, "scale", "pool", pool, "--replicas", "51")
		msg := waitPool(t, bin, hub, pool, fleetv1alpha1.OverClusterLimitReason, -1)
		if !strings.Contains(msg, "over its limit of 50") || !strings.Contains(msg, "the broker pool is left as it was") {
			t.Errorf("Ready message = %q", msg)
		}
		if got := brokerCapacity(pool); got != before {
			t.Errorf("the broker pool's capacity is %d after a refused growth, want %d", got, before)
		}
		kubectl(hub, "scale", "pool", pool, "--replicas", fmt.Sprint(before))
		waitPool(t, bin, hub, pool, fleetv1alpha1.PoolReadyReason, before)
	})

	t.Run("a shrink reaches the broker while the cluster is not Ready", func(t *testing.T) {
		runKubectlApply(t, bin, hub, reliefPool)
		waitPool(t, bin, hub, "relief", fleetv1alpha1.PoolReadyReason, 4)
		resume := freeze(t, clusterProcess(t, home, cluster, "kube-apiserver"))
		waitPool(t, bin, hub, "relief", fleetv1alpha1.ClusterNotReadyReason, -1)
		kubectl(hub, "scale", "pool", "relief", "--replicas", "2")
		poll(t, time.Minute, "the broker pool shrunk to 2 while "+cluster+" does not answer", func(context.Context) (bool, string) {
			got := brokerCapacity("relief")
			return got == 2, fmt.Sprintf("capacity %d", got)
		})
		resume()
		waitPool(t, bin, hub, "relief", fleetv1alpha1.PoolReadyReason, 2)
		kubectl(hub, "annotate", "pool", "relief", appsv1alpha1.AllowDeleteAnnotation+"=true")
		kubectl(hub, "delete", "pool", "relief")
	})
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q is not a number: %v", s, err)
	}
	return n
}
