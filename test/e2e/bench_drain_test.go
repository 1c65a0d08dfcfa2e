package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
)

// drainApp is the workload both drains move: 400 pods over the default
// Pool's 40 Nodes, at most 10% of them unavailable.
const drainApp = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: drained, namespace: default}
spec:
  replicas: 400
  selector: {matchLabels: {app: drained}}
  template:
    metadata: {labels: {app: drained}}
    spec:
      terminationGracePeriodSeconds: 0
      containers: [{name: app, image: registry.example/drained:1, resources: {requests: {cpu: 100m}}}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: drained, namespace: default}
spec:
  maxUnavailable: 10%
  selector: {matchLabels: {app: drained}}
`

// BenchmarkDrain drains 10 of 40 Nodes (about 100 of 400 pods, under a 10%
// PodDisruptionBudget) twice in one datacenter: by Strata, a Pool shrink
// from 40 to 30 (the broker picks the machines evenly across MZs, the
// cluster manager cordons and drains their Nodes, all at once, within the
// PDB), and by `kubectl drain` of as many Nodes in as many MZs, one after
// another as kubectl does. Between the two the Pool grows back and the pods
// spread over all 40 Nodes again (a rollout restart). It reports each
// drain's time, from the command until no pod of the app is left on the
// Nodes, and the PDB violations (samples with fewer available pods than
// the budget allows).
//
//	STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkDrain -benchtime 1x -timeout 30m
func BenchmarkDrain(b *testing.B) {
	const (
		pool     = "workload-1-general"
		nodes    = 40
		drained  = 10
		replicas = 400
		minAvail = replicas - replicas/10
	)
	bin := binDir(b)
	for b.Loop() {
		home := filepath.Join(b.TempDir(), "home")
		startUp(b, bin, home, "--workload-clusters", "1")
		hub := localdc.KubeconfigPath(home, localdc.HubName)
		wl := localdc.KubeconfigPath(home, localdc.WorkloadClusterName(1))
		cs := clientset(b, wl)
		poolReady := func(n int) {
			waitFor(b, 5*time.Minute, func(context.Context) bool {
				out, err := runErr(bin, "kubectl", "--kubeconfig", hub, "get", "pool", pool, "-o", "jsonpath={.status.ready} {.status.nodes}")
				return err == nil && out == fmt.Sprintf("%d %d", n, n)
			})
		}
		poolReady(nodes)
		runKubectlApply(b, bin, wl, drainApp)
		waitRunning(b, wl, "app=drained", replicas, 5*time.Minute)

		var violations, samples atomic.Int64
		sampling, stop := context.WithCancel(b.Context())
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for sampling.Err() == nil {
				if n, err := availablePods(sampling, cs); err == nil {
					samples.Add(1)
					if n < minAvail {
						violations.Add(1)
					}
				}
				time.Sleep(200 * time.Millisecond)
			}
		}()

		// Strata: the Pool shrinks; the Nodes it drains are those it cordons.
		began := time.Now()
		run(b, bin, "kubectl", "--kubeconfig", hub, "scale", "pool", pool, "--replicas", fmt.Sprint(nodes-drained))
		// The Nodes it drains are those it marks: all at once, or in waves
		// (a drained one may be gone before the last is marked).
		var strataNodes []string
		onStrataNodes := 0
		waitFor(b, 10*time.Minute, func(ctx context.Context) bool {
			for _, n := range drainingNodes(ctx, b, cs) {
				if !slices.Contains(strataNodes, n) {
					strataNodes = append(strataNodes, n)
					onStrataNodes += appPodsOn(ctx, b, cs, []string{n})
				}
			}
			return len(strataNodes) == drained && appPodsOn(ctx, b, cs, strataNodes) == 0
		})
		strataTime := time.Since(began)
		strataViolations := violations.Swap(0)

		run(b, bin, "kubectl", "--kubeconfig", hub, "scale", "pool", pool, "--replicas", fmt.Sprint(nodes))
		poolReady(nodes)
		run(b, bin, "kubectl", "--kubeconfig", wl, "rollout", "restart", "deployment/drained")
		run(b, bin, "kubectl", "--kubeconfig", wl, "rollout", "status", "deployment/drained", "--timeout=5m")
		kubectlNodes := busiestNodes(b, cs, drained)
		onKubectlNodes := appPodsOn(b.Context(), b, cs, kubectlNodes)
		violations.Store(0)

		began = time.Now()
		run(b, bin, "kubectl", append([]string{"--kubeconfig", wl, "drain", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=10m"}, kubectlNodes...)...)
		kubectlTime := time.Since(began)
		kubectlViolations := violations.Load()
		stop()
		<-sampled

		b.ReportMetric(strataTime.Seconds(), "strata_s")
		b.ReportMetric(kubectlTime.Seconds(), "kubectl_s")
		b.ReportMetric(strataTime.Seconds()/kubectlTime.Seconds(), "strata/kubectl")
		b.ReportMetric(float64(strataViolations), "strata_pdb_violations")
		b.ReportMetric(float64(kubectlViolations), "kubectl_pdb_violations")
		b.Logf("%d Nodes: Strata drained them (%d pods) in %s with %d PDB violations; kubectl drain (%d pods) in %s with %d; %d samples",
			drained, onStrataNodes, strataTime.Round(100*time.Millisecond), strataViolations,
			onKubectlNodes, kubectlTime.Round(100*time.Millisecond), kubectlViolations, samples.Load())
	}
}

// drainingNodes names the Nodes Strata is draining (or drained).
func drainingNodes(ctx context.Context, b testing.TB, cs kubernetes.Interface) []string {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		b.Logf("listing nodes: %v", err)
		return nil
	}
	var out []string
	for _, n := range nodes.Items {
		if _, ok := n.Annotations[fleetv1alpha1.DrainStartedAnnotation]; ok {
			out = append(out, n.Name)
		}
	}
	return out
}

// busiestNodes names the n Nodes with the most pods of the app, one per
// maintenance zone where it can.
func busiestNodes(b testing.TB, cs kubernetes.Interface, n int) []string {
	pods, err := cs.CoreV1().Pods("default").List(b.Context(), metav1.ListOptions{LabelSelector: "app=drained"})
	if err != nil {
		b.Fatal(err)
	}
	count := map[string]int{}
	for _, p := range pods.Items {
		count[p.Spec.NodeName]++
	}
	nodes, err := cs.CoreV1().Nodes().List(b.Context(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	all := nodes.Items
	slices.SortFunc(all, func(x, y corev1.Node) int { return count[y.Name] - count[x.Name] })
	var out []string
	zones := map[string]bool{}
	for _, node := range all {
		if z := node.Labels[fleetv1alpha1.MaintenanceZoneLabel]; !zones[z] && len(out) < n {
			zones[z] = true
			out = append(out, node.Name)
		}
	}
	if len(out) < n {
		b.Fatalf("only %d Nodes in distinct zones", len(out))
	}
	return out
}

// availablePods counts the app's Ready pods that are not being deleted.
func availablePods(ctx context.Context, cs kubernetes.Interface) (int, error) {
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=drained"})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			n++
		}
	}
	return n, nil
}

// appPodsOn counts the app's pods, terminating ones too, on the Nodes.
func appPodsOn(ctx context.Context, b testing.TB, cs kubernetes.Interface, nodes []string) int {
	pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=drained"})
	if err != nil {
		b.Logf("listing pods: %v", err)
		return -1
	}
	n := 0
	for _, p := range pods.Items {
		if slices.Contains(nodes, p.Spec.NodeName) {
			n++
		}
	}
	return n
}
