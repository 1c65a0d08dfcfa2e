package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/localdc"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// kueueNamespace holds the Job of the Kueue check on workload-1.
const kueueNamespace = "batch-e2e"

// kueueWorkerQueues are a worker's queues, as the BatchQueue controller
// will write them: a flavor, a ClusterQueue with quota and the LocalQueue
// a Job names.
const kueueWorkerQueues = `
apiVersion: v1
kind: Namespace
metadata: {name: batch-e2e}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: e2e-flavor}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: e2e}
spec:
  namespaceSelector: {}
  resourceGroups:
  - coveredResources: [cpu, memory]
    flavors:
    - name: e2e-flavor
      resources: [{name: cpu, nominalQuota: 10}, {name: memory, nominalQuota: 10Gi}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: e2e, namespace: batch-e2e}
spec: {clusterQueue: e2e}
`

// queuedJob is a Job of two pods in the LocalQueue e2e, not suspended by
// its author.
func queuedJob(name string) string {
	return `
apiVersion: batch/v1
kind: Job
metadata:
  name: ` + name + `
  namespace: batch-e2e
  labels: {kueue.x-k8s.io/queue-name: e2e}
spec:
  parallelism: 2
  completions: 2
  suspend: false
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: work
        image: registry.example/batch:1
        resources: {requests: {cpu: "1", memory: 1Gi}}
`
}

// testKueue checks Kueue in the local datacenter (started with --jobs): on
// a workload cluster a queued Job is suspended by Kueue's webhook, admitted
// and run on kwok Nodes, with the Kueue objects written by hand; a process
// per cluster, restarted after kill -9. MultiKueue, through Strata's
// queues and dispatcher, is testJobs'.
func testKueue(t *testing.T, bin, home string) {
	wl := localdc.KubeconfigPath(home, localdc.WorkloadClusterName(1))
	jsonpath := func(kubeconfig, path string, args ...string) string {
		t.Helper()
		out, err := runErr(bin, "kubectl", append([]string{"--kubeconfig", kubeconfig, "get", "-o", "jsonpath=" + path}, args...)...)
		if err != nil {
			return "error: " + out
		}
		return out
	}

	t.Run("a queued Job is suspended by Kueue, admitted and run on kwok Nodes", func(t *testing.T) {
		runKubectlApply(t, bin, wl, kueueWorkerQueues)
		poll(t, time.Minute, "ClusterQueue e2e active", func(context.Context) (bool, string) {
			s := jsonpath(wl, `{.status.conditions[?(@.type=="Active")].status}`, "clusterqueue", "e2e")
			return s == "True", s
		})
		// Kueue's mutating webhook, called by the API server at its
		// loopback URL, suspends a queued Job as it is created.
		cmd := exec.Command(filepath.Join(bin, "kubectl"), "--kubeconfig", wl, "create", "--dry-run=server", "-o", "jsonpath={.spec.suspend}", "-f", "-")
		cmd.Stdin = strings.NewReader(queuedJob("work"))
		if out, err := cmd.CombinedOutput(); err != nil || string(out) != "true" {
			t.Fatalf("a queued Job created with suspend: false has suspend %q (%v): Kueue's webhook did not suspend it", out, err)
		}
		runKubectlApply(t, bin, wl, queuedJob("work"))
		poll(t, 2*time.Minute, "the Job's Workload admitted and the Job complete", func(context.Context) (bool, string) {
			admitted := jsonpath(wl, `{.items[0].status.conditions[?(@.type=="Admitted")].status}`, "workloads.kueue.x-k8s.io", "-n", kueueNamespace,
				"-l", "kueue.x-k8s.io/job-uid="+jsonpath(wl, "{.metadata.uid}", "job", "work", "-n", kueueNamespace))
			succeeded := jsonpath(wl, "{.status.succeeded}", "job", "work", "-n", kueueNamespace)
			return admitted == "True" && succeeded == "2", "admitted " + admitted + ", succeeded " + succeeded
		})
		for _, node := range strings.Fields(jsonpath(wl, "{.items[*].spec.nodeName}", "pods", "-n", kueueNamespace, "-l", "job-name=work")) {
			if !strings.HasPrefix(node, "dc1-") {
				t.Errorf("a pod of the Job ran on %q, not a kwok Node of the simulated datacenter", node)
			}
		}
		// The conversion webhook (v1beta2 stored, v1beta1 served) answers.
		// (kubectl warns that v1beta1 is deprecated, before the answer.)
		if got := jsonpath(wl, "{.apiVersion} {.spec.resourceGroups[0].flavors[0].resources[0].nominalQuota}", "clusterqueues.v1beta1.kueue.x-k8s.io", "e2e"); !strings.HasSuffix(got, "\nkueue.x-k8s.io/v1beta1 10") {
			t.Errorf("the ClusterQueue read as v1beta1: %q", got)
		}
	})

	t.Run("a gang that lost a pod while the others finished shrinks to the pod left", func(t *testing.T) {
		testGangShrinks(t, bin, wl)
	})

	// Last: the killed worker's replacement waits out its Lease (12 s)
	// before it admits again.
	t.Run("a Kueue process per cluster, restarted after kill -9", func(t *testing.T) {
		state, out, _ := strataStatus(t, bin, home)
		pids := map[string]int{}
		for _, c := range state.Components {
			if c.Component == localdc.ComponentKueue {
				pids[c.Name] = c.PID
			}
		}
		if len(pids) != 3 || pids["kueue-hub"] == 0 || pids["kueue-workload-1"] == 0 || pids["kueue-workload-2"] == 0 {
			t.Fatalf("strata status lists Kueue processes %v, want kueue-hub, kueue-workload-1 and kueue-workload-2 running:\n%s", pids, out)
		}
		killed := pids["kueue-workload-1"]
		leaseHolder := func() string {
			return jsonpath(wl, "{.spec.holderIdentity}", "lease", "-n", kueue.Namespace, "c1f6bfd2.kueue.x-k8s.io")
		}
		holder := leaseHolder()
		if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		poll(t, time.Minute, "kueue-workload-1 restarted and ready", func(context.Context) (bool, string) {
			state, out, _ := strataStatus(t, bin, home)
			for _, c := range state.Components {
				if c.Name == "kueue-workload-1" {
					return c.Alive && c.Ready && c.PID != killed, out
				}
			}
			return false, out
		})
		// It leads once the killed one's Lease has expired, so that what
		// runs next finds workload-1's Kueue admitting.
		poll(t, time.Minute, "the restarted kueue-workload-1 leading", func(context.Context) (bool, string) {
			h := leaseHolder()
			return h != holder && !strings.HasPrefix(h, "error"), "holder " + h + ", was " + holder
		})
	})
}
