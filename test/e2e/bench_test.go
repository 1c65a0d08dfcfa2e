package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
)

// BenchmarkUp measures `strata up` as a person runs it, binaries built: the
// time to a ready datacenter on first creation and on restart, and the
// resident memory of the whole local datacenter (strata and every component).
//
//	make tools build && STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkUp -benchtime 1x
func BenchmarkUp(b *testing.B) {
	bin := binDir(b)
	for b.Loop() {
		home := filepath.Join(b.TempDir(), "home")
		began := time.Now()
		up := startUp(b, bin, home)
		created := time.Since(began)
		up.interrupt(b)

		began = time.Now()
		up = startUp(b, bin, home)
		restarted := time.Since(began)
		waitClustersReady(b, bin, home)
		rss := residentMiB(b, up.cmd.Process.Pid) + componentsResidentMiB(b, home)
		up.interrupt(b)
		run(b, bin, "strata", "down", "--home", home)

		b.ReportMetric(created.Seconds(), "create-s")
		b.ReportMetric(restarted.Seconds(), "restart-s")
		b.ReportMetric(rss, "rss-MiB")
	}
}

// BenchmarkPodThroughput measures how fast a workload cluster of the local
// datacenter turns a Deployment into Running pods on kwok Nodes, with the
// control planes tuned (as `strata up` makes them) and at Kubernetes' defaults.
//
//	STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkPodThroughput -benchtime 1x -timeout 30m
func BenchmarkPodThroughput(b *testing.B) {
	const nodes, replicas = 2000, 1000
	for _, tc := range []struct {
		name    string
		untuned bool
	}{{"tuned", false}, {"defaults", true}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				home := filepath.Join(b.TempDir(), "home")
				dc, err := localdc.Start(b.Context(), localdc.Options{
					Home: home, BinDir: binDir(b), WorkloadClusters: 1, Logger: logr.Discard(),
					UntunedControlPlanes: tc.untuned,
				})
				if err != nil {
					b.Fatal(err)
				}
				kubeconfig := localdc.KubeconfigPath(home, localdc.WorkloadClusterName(1))
				createNodes(b, kubeconfig, nodes)
				began := time.Now()
				createDeployment(b, kubeconfig, "load", replicas)
				waitRunning(b, kubeconfig, "app=load", replicas, 20*time.Minute)
				took := time.Since(began)
				b.ReportMetric(float64(replicas)/took.Seconds(), "pods/s")
				if err := dc.Stop(context.Background()); err != nil {
					b.Fatal(err)
				}
				if _, err := localdc.Down(context.Background(), localdc.Options{Home: home, BinDir: binDir(b), Logger: logr.Discard()}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPoolScale measures the cluster layer and the sim provisioner: a
// Pool scaled from 0 to 1,000 Nodes in a workload cluster of the local
// datacenter, timed until all are Ready, with the memory of the strata
// process (the hub's controllers, the broker and the provisioner).
//
//	STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkPoolScale -benchtime 1x -timeout 30m
func BenchmarkPoolScale(b *testing.B) {
	const nodes = 1000
	bin := binDir(b)
	// The sim provisioner's default join, and next to nothing: the second
	// shows what the control path (controller, broker, API servers) costs.
	for _, join := range []string{"2s", "1ms"} {
		b.Run("join-"+join, func(b *testing.B) {
			for b.Loop() {
				home := filepath.Join(b.TempDir(), "home")
				up := startUp(b, bin, home, "--workload-clusters", "1", "--pool-capacity", "0", "--join-duration", join)
				hub := localdc.KubeconfigPath(home, localdc.HubName)
				before := strataMiB(b, home, up.cmd.Process.Pid, residentMiB)
				began := time.Now()
				runKubectlApply(b, bin, hub, fmt.Sprintf(`
apiVersion: fleet.strata.dev/v1alpha1
kind: Pool
metadata: {name: scale}
spec: {cluster: workload-1, capacity: %d, nodeProfile: general}
`, nodes))
				err := wait.PollUntilContextTimeout(b.Context(), 250*time.Millisecond, 20*time.Minute, true, func(context.Context) (bool, error) {
					out, err := runErr(bin, "kubectl", "--kubeconfig", hub, "get", "pool", "scale", "-o", "jsonpath={.status.ready}")
					return err == nil && strings.TrimSpace(out) == strconv.Itoa(nodes), nil
				})
				took := time.Since(began)
				if err != nil {
					b.Fatalf("pool scale did not reach %d ready Nodes: %v", nodes, err)
				}
				b.ReportMetric(took.Seconds(), "s-to-ready")
				b.ReportMetric(before, "strata-rss-before-MiB")
				b.ReportMetric(strataMiB(b, home, up.cmd.Process.Pid, residentMiB), "strata-rss-MiB")
				b.ReportMetric(strataMiB(b, home, up.cmd.Process.Pid, peakMiB), "strata-peak-MiB")
				up.interrupt(b)
				run(b, bin, "strata", "down", "--home", home)
			}
		})
	}
}

func clientset(b testing.TB, kubeconfig string) kubernetes.Interface {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	return kubernetes.NewForConfigOrDie(cfg)
}

func createNodes(b testing.TB, kubeconfig string, n int) {
	cs := clientset(b, kubeconfig)
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("32"), corev1.ResourceMemory: resource.MustParse("128Gi"),
		corev1.ResourcePods: resource.MustParse("110"),
	}
	for i := range n {
		name := fmt.Sprintf("kwok-node-%d", i)
		_, err := cs.CoreV1().Nodes().Create(b.Context(), &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name, "type": "kwok"}},
			Status:     corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
		}, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func createDeployment(b testing.TB, kubeconfig, name string, replicas int32) {
	labels := map[string]string{"app": name}
	_, err := clientset(b, kubeconfig).AppsV1().Deployments("default").Create(b.Context(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "registry.example/" + name + ":1"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
}

// residentMiB is the resident memory of one process.
func residentMiB(b testing.TB, pid int) float64 {
	return procStatusMiB(b, pid, "VmRSS:")
}

// peakMiB is the most resident memory the process ever had.
func peakMiB(b testing.TB, pid int) float64 {
	return procStatusMiB(b, pid, "VmHWM:")
}

func procStatusMiB(b testing.TB, pid int, field string) float64 {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kib, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kib / 1024
		}
	}
	b.Fatalf("no %s for pid %d", field, pid)
	return 0
}

// strataMiB adds up a memory figure (residentMiB or peakMiB) of strata up
// and of every strata serve process it runs (the hub, the broker, the app
// controllers, the webhooks). A sum of peaks is an upper bound: the
// processes need not peak at once.
func strataMiB(b testing.TB, home string, upPID int, of func(testing.TB, int) float64) float64 {
	total := of(b, upPID)
	for _, pid := range pidFiles(b, filepath.Join(home, "run", "*.pid")) {
		total += of(b, pid)
	}
	return total
}

// pidFiles reads the process IDs in the files that match the patterns; at
// least one must.
func pidFiles(b testing.TB, patterns ...string) []int {
	var pids []int
	for _, pattern := range patterns {
		files, err := filepath.Glob(pattern)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
			if err != nil {
				b.Fatal(err)
			}
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		b.Fatalf("no pid files match %v", patterns)
	}
	return pids
}

// createReadyPool creates a Pool of n general Nodes in workload-1 and waits
// until all are Ready.
func createReadyPool(b testing.TB, bin, hub, name string, n int) {
	runKubectlApply(b, bin, hub, fmt.Sprintf(`
apiVersion: fleet.strata.dev/v1alpha1
kind: Pool
metadata: {name: %s}
spec: {cluster: workload-1, capacity: %d, nodeProfile: general}
`, name, n))
	err := wait.PollUntilContextTimeout(b.Context(), time.Second, 20*time.Minute, true, func(context.Context) (bool, error) {
		out, err := runErr(bin, "kubectl", "--kubeconfig", hub, "get", "pool", name, "-o", "jsonpath={.status.ready}")
		return err == nil && strings.TrimSpace(out) == strconv.Itoa(n), nil
	})
	if err != nil {
		b.Fatalf("pool %s did not reach %d ready Nodes: %v", name, n, err)
	}
}

// componentsResidentMiB adds up the resident memory of every component of
// the home's clusters and of every Strata component process.
func componentsResidentMiB(b testing.TB, home string) float64 {
	total := 0.0
	for _, pid := range pidFiles(b, filepath.Join(home, "kwok", "clusters", "*", "pids", "*.pid"), filepath.Join(home, "run", "*.pid")) {
		total += residentMiB(b, pid)
	}
	return total
}

// BenchmarkRollout measures the maintenance orchestrator's own overhead: a
// MaintenanceRollout over 2,000 Nodes in 20 MZs whose maintenance takes no
// time, so what is timed is the protocol (disruption, cordon, drain,
// approve, start, complete, uncordon, health gate) through the broker, the
// hub's controllers and the workload API server. It reports the total time
// and the time per machine.
//
//	STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkRollout -benchtime 1x -timeout 60m
func BenchmarkRollout(b *testing.B) {
	const nodes = 2000
	bin := binDir(b)
	for b.Loop() {
		home := filepath.Join(b.TempDir(), "home")
		up := startUp(b, bin, home, "--workload-clusters", "1", "--pool-capacity", "0", "--machines", "6000",
			"--join-duration", "1ms", "--maintenance-duration", "0s")
		hub := localdc.KubeconfigPath(home, localdc.HubName)
		createReadyPool(b, bin, hub, "fleet", nodes)
		before := strataMiB(b, home, up.cmd.Process.Pid, residentMiB)
		began := time.Now()
		runKubectlApply(b, bin, hub, `
apiVersion: fleet.strata.dev/v1alpha1
kind: MaintenanceRollout
metadata: {name: bench}
spec: {pools: [fleet], nodeConfig: general-v2}
`)
		// The Pool's owner states the node config; the rollout moves the machines.
		run(b, bin, "kubectl", "--kubeconfig", hub, "patch", "pool", "fleet", "--type", "merge", "-p", `{"spec":{"nodeConfig":"general-v2"}}`)
		ro := waitRollout(b, hubClient(b, hub), "bench", 50*time.Minute, func(ro *fleetv1alpha1.MaintenanceRollout) bool {
			return meta.IsStatusConditionTrue(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition)
		})
		took := time.Since(began)
		if ro.Status.Updated != nodes {
			b.Fatalf("rollout updated %d machines, want %d", ro.Status.Updated, nodes)
		}
		b.ReportMetric(took.Seconds(), "s-total")
		b.ReportMetric(float64(took.Milliseconds())/nodes, "ms-per-machine")
		b.ReportMetric(took.Seconds()/20, "s-per-zone")
		b.ReportMetric(before, "strata-rss-before-MiB")
		b.ReportMetric(strataMiB(b, home, up.cmd.Process.Pid, residentMiB), "strata-rss-MiB")
		b.ReportMetric(strataMiB(b, home, up.cmd.Process.Pid, peakMiB), "strata-peak-MiB")
		up.interrupt(b)
		run(b, bin, "strata", "down", "--home", home)
	}
}
