package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
)

const webPool = `
apiVersion: fleet.strata.dev/v1alpha1
kind: Pool
metadata: {name: web}
spec:
  cluster: workload-2
  capacity: 100
  nodeProfile: general
  nodeLabels: {team: web}
`

// apiWorkload runs on pool web behind a PodDisruptionBudget.
const apiWorkload = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: default}
spec:
  replicas: 20
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      nodeSelector: {fleet.strata.dev/pool: web}
      terminationGracePeriodSeconds: 0
      containers: [{name: api, image: registry.example/api:1}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: api, namespace: default}
spec:
  maxUnavailable: 2
  selector: {matchLabels: {app: api}}
`

const agentsPool = `
apiVersion: fleet.strata.dev/v1alpha1
kind: Pool
metadata: {name: agents}
spec:
  cluster: workload-2
  capacity: 20
  nodeProfile: general
  requiredDaemonSets: [{namespace: kube-system, name: node-agent}]
`

const nodeAgent = `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: node-agent}}
  template:
    metadata: {labels: {app: node-agent}}
    spec:
      nodeSelector: {fleet.strata.dev/pool: agents}
      tolerations: [{key: fleet.strata.dev/startup, operator: Exists, effect: NoSchedule}]
      containers: [{name: agent, image: registry.example/agent:1}]
`

// testPools drives Pools with kubectl: Nodes join 5 per MZ, a shrink drains
// Nodes under a PodDisruptionBudget and gives their machines back, a required
// DaemonSet gates the startup taint, and a delete waits for the PDB.
func testPools(t *testing.T, bin, home string) {
	hub := localdc.KubeconfigPath(home, localdc.HubName)
	wl := localdc.KubeconfigPath(home, localdc.WorkloadClusterName(2))
	kubectl := func(kubeconfig string, args ...string) string {
		return run(t, bin, "kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	}
	strata := func(args ...string) string {
		return run(t, bin, "strata", append([]string{"--home", home}, args...)...)
	}
	nodes := clientset(t, wl)

	t.Run("the default pool of a new datacenter", func(t *testing.T) {
		waitPool(t, bin, hub, "workload-1-general", "Ready", 40)
		if out := strata("pools"); !strings.Contains(out, "workload-1-general") || !strings.Contains(out, "Ready") {
			t.Errorf("strata pools shows no ready default pool:\n%s", out)
		}
	})

	t.Run("capacity 100 gives 100 Ready Nodes, 5 per MZ", func(t *testing.T) {
		runKubectlApply(t, bin, hub, webPool)
		waitPool(t, bin, hub, "web", "Ready", 100)
		assertZones(t, nodes, "web", 100, 5)
		node := poolNodes(t, nodes, "web")[0]
		for k, v := range map[string]string{"team": "web", fleetv1alpha1.NodeProfileLabel: "general", fleetv1alpha1.DatacenterLabel: "dc1"} {
			if node.Labels[k] != v {
				t.Errorf("node %s label %s = %q, want %q", node.Name, k, node.Labels[k], v)
			}
		}
		if node.Status.Capacity.Cpu().Value() < 32 {
			t.Errorf("node %s has %s CPUs, want the SKU's (at least 32)", node.Name, node.Status.Capacity.Cpu())
		}
	})

	t.Run("capacity 60 drains 40 Nodes evenly, respecting a PDB", func(t *testing.T) {
		runKubectlApply(t, bin, wl, apiWorkload)
		waitRunning(t, wl, "app=api", 20, 2*time.Minute)
		kubectl(hub, "scale", "pool", "web", "--replicas", "60")
		waitPool(t, bin, hub, "web", "Ready", 60)
		assertZones(t, nodes, "web", 60, 3)
		waitRunning(t, wl, "app=api", 20, 2*time.Minute)
		if out := strata("machines", "list", "--pool", "web", "--all"); strings.Count(out, "\n") != 61 {
			t.Errorf("the broker holds %d machines for pool web, want 60:\n%s", strings.Count(out, "\n")-1, out)
		}
		if out := strata("disruptions", "list", "--pool", "web"); !strings.Contains(out, "pool-shrink") {
			t.Errorf("the broker recorded no pool-shrink disruptions:\n%s", out)
		}
	})

	t.Run("a required DaemonSet gates the startup taint", func(t *testing.T) {
		runKubectlApply(t, bin, hub, agentsPool)
		msg := waitPool(t, bin, hub, "agents", "WaitingForDaemonSets", 0)
		if !strings.Contains(msg, "kube-system/node-agent does not exist") {
			t.Errorf("Ready message = %q, want it to name the missing DaemonSet", msg)
		}
		for _, n := range poolNodes(t, nodes, "agents") {
			if !hasTaint(n, fleetv1alpha1.StartupTaintKey) {
				t.Errorf("node %s of pool agents has no startup taint before its DaemonSet runs", n.Name)
			}
		}
		runKubectlApply(t, bin, wl, nodeAgent)
		waitPool(t, bin, hub, "agents", "Ready", 20)
		for _, n := range poolNodes(t, nodes, "agents") {
			if hasTaint(n, fleetv1alpha1.StartupTaintKey) {
				t.Errorf("node %s of pool agents keeps the startup taint with its DaemonSet ready", n.Name)
			}
		}
	})

	t.Run("deleting a pool waits for the PDB, then releases every machine", func(t *testing.T) {
		kubectl(hub, "annotate", "pool", "web", appsv1alpha1.AllowDeleteAnnotation+"=true")
		kubectl(hub, "delete", "pool", "web", "--wait=false")
		// With nowhere to go, the api pods drain 2 at a time and then the
		// PDB refuses more: the Pool says so and stays.
		msg := waitPool(t, bin, hub, "web", "Deleting", -1)
		err := wait.PollUntilContextTimeout(t.Context(), time.Second, 2*time.Minute, true, func(context.Context) (bool, error) {
			msg = poolCondition(t, bin, hub, "web").Message
			return strings.Contains(msg, "evictions refused"), nil
		})
		if err != nil {
			t.Fatalf("the Pool never reported refused evictions; Ready message %q", msg)
		}
		kubectl(wl, "delete", "pdb", "api")
		err = wait.PollUntilContextTimeout(t.Context(), time.Second, 3*time.Minute, true, func(context.Context) (bool, error) {
			out, _ := runErr(bin, "kubectl", "--kubeconfig", hub, "get", "pool", "web")
			return strings.Contains(out, "NotFound"), nil
		})
		if err != nil {
			t.Fatalf("pool web still exists 3 minutes after its PDB was removed: %v", err)
		}
		if left := poolNodes(t, nodes, "web"); len(left) != 0 {
			t.Errorf("%d Nodes of pool web are left", len(left))
		}
		if out, err := runErr(bin, "strata", "--home", home, "pools", "get", "web"); err == nil || !strings.Contains(out, "does not exist") {
			t.Errorf("broker pool web still exists: %v\n%s", err, out)
		}
	})

	t.Run("bad input is a condition that says what is wrong", func(t *testing.T) {
		runKubectlApply(t, bin, hub, strings.NewReplacer("name: agents", "name: nowhere", "workload-2", "workload-9").Replace(agentsPool))
		if msg := waitPool(t, bin, hub, "nowhere", fleetv1alpha1.ClusterNotFoundReason, -1); !strings.Contains(msg, `cluster "workload-9" is not registered`) {
			t.Errorf("Ready message = %q", msg)
		}
		runKubectlApply(t, bin, hub, strings.NewReplacer("name: agents", "name: oddball", "general", "no-such-profile").Replace(agentsPool))
		if msg := waitPool(t, bin, hub, "oddball", fleetv1alpha1.BrokerRejectedReason, -1); !strings.Contains(msg, "no-such-profile") {
			t.Errorf("Ready message = %q", msg)
		}
		out, err := runErr(bin, "kubectl", "--kubeconfig", hub, "patch", "pool", "agents", "--type=merge", "-p", `{"spec":{"cluster":"workload-1"}}`)
		if err == nil || !strings.Contains(out, "cluster is immutable") {
			t.Errorf("moving a Pool to another cluster: %v\n%s", err, out)
		}
		kubectl(hub, "annotate", "pool", "nowhere", "oddball", "agents", appsv1alpha1.AllowDeleteAnnotation+"=true")
		kubectl(hub, "delete", "pool", "nowhere", "oddball", "agents")
	})
}

// waitPool waits until the Pool's Ready condition has the reason and, when
// ready >= 0, status.ready is that; it returns the condition's message.
func waitPool(t *testing.T, bin, hub, name, reason string, ready int32) string {
	t.Helper()
	var lastReady int32
	err := wait.PollUntilContextTimeout(t.Context(), time.Second, 4*time.Minute, true, func(context.Context) (bool, error) {
		out, err := runErr(bin, "kubectl", "--kubeconfig", hub, "get", "pool", name,
			"-o", `jsonpath={.status.ready} {.status.conditions[?(@.type=="Ready")].reason}`)
		if err != nil {
			return false, nil //nolint:nilerr // not created yet
		}
		var r string
		_, _ = fmt.Sscan(out, &lastReady, &r)
		return r == reason && (ready < 0 || lastReady == ready), nil
	})
	cond := poolCondition(t, bin, hub, name)
	if err != nil {
		t.Fatalf("pool %s: want %s with %d ready; have %d ready, Ready %s: %s", name, reason, ready, lastReady, cond.Reason, cond.Message)
	}
	return cond.Message
}

func poolCondition(t *testing.T, bin, hub, name string) metav1.Condition {
	t.Helper()
	out, _ := runErr(bin, "kubectl", "--kubeconfig", hub, "get", "pool", name,
		"-o", `jsonpath={.status.conditions[?(@.type=="Ready")].reason}|{.status.conditions[?(@.type=="Ready")].message}`)
	reason, message, _ := strings.Cut(out, "|")
	return metav1.Condition{Reason: reason, Message: message}
}

func poolNodes(t *testing.T, cs kubernetes.Interface, pool string) []corev1.Node {
	t.Helper()
	nodes, err := cs.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{LabelSelector: fleetv1alpha1.PoolLabel + "=" + pool})
	if err != nil {
		t.Fatal(err)
	}
	return nodes.Items
}

// assertZones checks that the pool has total Nodes, perZone in each of the 20 MZs.
func assertZones(t *testing.T, cs kubernetes.Interface, pool string, total, perZone int) {
	t.Helper()
	zones := map[string]int{}
	all := poolNodes(t, cs, pool)
	for _, n := range all {
		zones[n.Labels[fleetv1alpha1.MaintenanceZoneLabel]]++
	}
	if len(all) != total || len(zones) != 20 {
		t.Fatalf("pool %s has %d Nodes in %d MZs, want %d in 20", pool, len(all), len(zones), total)
	}
	for mz, n := range zones {
		if n != perZone {
			t.Errorf("pool %s has %d Nodes in MZ %s, want %d", pool, n, mz, perZone)
		}
	}
}

func hasTaint(n corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}
