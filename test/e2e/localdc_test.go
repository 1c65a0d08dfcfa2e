// Package e2e tests Strata end to end, the way a person uses it: the strata
// binary, kubectl and the local datacenter's real clusters. Each test brings
// up a datacenter of its own in its own home, so they can run side by side
// (go test -parallel N; `make test` lets E2E_PARALLEL run at once beside the
// unit and integration tests, E2E_PARALLEL_LATE after them: slots_test.go).
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
	"github.com/strata-dev/strata/internal/testutil"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

const workloadManifest = `
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {kubernetes.io/hostname: kwok-node-0, kubernetes.io/os: linux, type: kwok}
status:
  capacity: {cpu: "32", memory: 128Gi, pods: "110"}
  allocatable: {cpu: "32", memory: 128Gi, pods: "110"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 5
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.example/web:1}]
`

// The tests' controller-runtime clients log nothing of their own.
func init() { ctrllog.SetLogger(logr.Discard()) }

func binDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("STRATA_BIN_DIR")
	if dir == "" {
		t.Fatal("STRATA_BIN_DIR is not set: run the tests with `make test`, which builds bin/")
	}
	return dir
}

// TestLocalDatacenter creates the local datacenter, runs pods in a workload
// cluster, stops it with Ctrl-C, brings it back with its objects, and removes it.
// With PostgreSQL (STRATA_TEST_POSTGRES_DSN), its inventory is a schema of
// its own there, and two brokers serve it.
func TestLocalDatacenter(t *testing.T) {
	t.Parallel()
	waitForSlot(t)
	bin := binDir(t)
	home := filepath.Join(t.TempDir(), "home")
	var dbArgs []string
	if dsn := testutil.PostgresDSN(t); dsn != "" {
		dbArgs = []string{"--db", dsn}
	}

	// Two processes of the hub's controllers, of each apps and (over
	// PostgreSQL) of the broker, for the failovers below.
	up := startUp(t, bin, home, append([]string{"--replicas", "2"}, dbArgs...)...)
	if !strings.Contains(up.summary, "Created the local datacenter (Kubernetes v1.37.") {
		t.Fatalf("summary of the first start:\n%s", up.summary)
	}
	wl := localdc.KubeconfigPath(home, localdc.WorkloadClusterName(1))
	if out := run(t, bin, "kubectl", "--kubeconfig", wl, "version"); !strings.Contains(out, "Server Version: v1.37.") {
		t.Errorf("kubectl version shows no v1.37 server:\n%s", out)
	}
	waitClustersReady(t, bin, home)

	t.Run("a second strata up on the same home is refused", func(t *testing.T) {
		out, err := exec.Command(filepath.Join(bin, "strata"), "up", "--home", home).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "in use by another `strata up`") {
			t.Errorf("second strata up: err=%v, output:\n%s", err, out)
		}
	})

	t.Run("the broker through the CLI", func(t *testing.T) { testBrokerCLI(t, bin, home) })
	t.Run("pools through kubectl", func(t *testing.T) { testPools(t, bin, home) })
	t.Run("Strata never breaks itself", func(t *testing.T) { testNeverBreaksItself(t, bin, home) })
	t.Run("machines join as their own Nodes; the inventory holds no cluster credential", func(t *testing.T) {
		dsn := ""
		if dbArgs != nil {
			dsn = dbArgs[1]
		}
		testJoinIdentity(t, bin, home, dsn)
	})
	t.Run("the hub fails over in the middle of a MaintenanceRollout", func(t *testing.T) { testHubFailover(t, bin, home) })
	t.Run("the broker fails over during concurrent pool resizes", func(t *testing.T) {
		if dbArgs == nil {
			t.Skip(testutil.PostgresDSNEnv + " is not set: over SQLite the local datacenter runs one broker (single-replica), " +
				"so there is no failover to test; `make test` starts PostgreSQL")
		}
		testBrokerFailover(t, bin, home)
	})

	runKubectlApply(t, bin, wl, workloadManifest)
	waitRunningPods(t, wl, 5)

	pids := componentPIDs(t, home)
	up.interrupt(t)
	assertStopped(t, bin, home, pids)

	up = startUp(t, bin, home, dbArgs...)
	if !strings.Contains(up.summary, "Restarted the local datacenter") {
		t.Fatalf("summary of the second start:\n%s", up.summary)
	}
	// The Deployment and its pods came back with the data.
	waitRunningPods(t, wl, 5)
	waitClustersReady(t, bin, home)
	pids = componentPIDs(t, home)
	up.interrupt(t)
	assertStopped(t, bin, home, pids)

	out := run(t, bin, "strata", "down", "--home", home)
	if !strings.Contains(out, "Removed the local datacenter") {
		t.Errorf("strata down said:\n%s", out)
	}
	if _, err := os.Stat(home); !os.IsNotExist(err) {
		t.Errorf("home %s still exists after strata down (stat: %v)", home, err)
	}
}

// upProcess is a `strata up` running in the foreground.
type upProcess struct {
	cmd     *exec.Cmd
	summary string
	done    chan error
}

// startUp runs `strata up` with args and returns once it printed its summary.
// It runs no Kueue unless args ask for it (--jobs): a Kueue per cluster
// costs CPU that every datacenter of a parallel run shares, for tests that
// queue no Job.
func startUp(t testing.TB, bin, home string, args ...string) *upProcess {
	t.Helper()
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--jobs") }) {
		args = append([]string{"--jobs=false"}, args...)
	}
	cmd := exec.Command(filepath.Join(bin, "strata"), append([]string{"up", "--home", home}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &upProcess{cmd: cmd, done: make(chan error, 1)}
	summary := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if !sent && strings.HasPrefix(sc.Text(), "Press Ctrl-C") {
				summary <- b.String()
				sent = true
			}
		}
		if !sent {
			summary <- b.String()
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGINT)
			if err := <-p.done; err != nil {
				t.Logf("strata up exited with %v", err)
			}
		}
	})
	select {
	case p.summary = <-summary:
	case <-time.After(3 * time.Minute):
		t.Fatal("strata up printed no summary within 3 minutes")
	}
	if !strings.Contains(p.summary, "Press Ctrl-C") {
		t.Fatalf("strata up ended before it was ready; it printed:\n%s", p.summary)
	}
	return p
}

// interrupt sends Ctrl-C and waits for a clean exit.
func (p *upProcess) interrupt(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("strata up exited with %v after Ctrl-C", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("strata up did not stop within 2 minutes of Ctrl-C")
	}
}

// kill ends strata as a crash would: SIGKILL, no cleanup.
func (p *upProcess) kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		t.Logf("strata up killed: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("strata up did not die within a minute of SIGKILL")
	}
}

func run(t testing.TB, bin, name string, args ...string) string {
	t.Helper()
	out, err := runErr(bin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// runErr runs a program of bin/ and returns its combined output.
func runErr(bin, name string, args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(bin, name), args...).CombinedOutput()
	return string(out), err
}

func runKubectlApply(t testing.TB, bin, kubeconfig, manifest string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "kubectl"), "--kubeconfig", kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// waitClustersReady waits until `strata status` says every cluster is ready,
// and then exits zero (it exits non-zero while anything is not ready).
func waitClustersReady(t testing.TB, bin, home string) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), time.Second, time.Minute, true, func(context.Context) (bool, error) {
		state, out, exitErr := strataStatus(t, bin, home)
		last = out
		for _, s := range state.Clusters {
			if !s.Ready {
				return false, nil
			}
		}
		if len(state.Clusters) != 3 || !state.Broker.Serving || len(state.Components) == 0 {
			return false, nil
		}
		for _, c := range state.Components {
			if !c.Ready {
				return false, nil
			}
		}
		if exitErr != nil {
			return false, fmt.Errorf("strata status exited with %w though everything is ready", exitErr)
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("clusters not ready: %v; strata status said:\n%s", err, last)
	}
}

// strataStatus runs `strata status -o json` and returns what it reported, its
// output and how it exited.
func strataStatus(t testing.TB, bin, home string) (localdc.DatacenterState, string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "strata"), "status", "--home", home, "-o", "json")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, exitErr := cmd.Output()
	var state localdc.DatacenterState
	if err := json.Unmarshal(out, &state); err != nil {
		t.Fatalf("strata status printed no state (%v, %v):\n%s%s", err, exitErr, out, stderr.String())
	}
	return state, string(out) + stderr.String(), exitErr
}

// assertStopped checks, right after `strata up` returned from Ctrl-C, that
// every component that ran has exited and released its port, so that an
// immediate `strata up` meets no busy port, and that `strata status` fails.
func assertStopped(t testing.TB, bin, home string, pids map[int]string) {
	t.Helper()
	if left := runningComponents(home); left != "" {
		t.Errorf("components still running after Ctrl-C:\n%s", left)
	}
	// A dying process loses its command line, which pgrep matches, seconds
	// before it closes its sockets: /proc says whether it has exited.
	var left []string
	for pid, name := range pids {
		if !processExited(pid) {
			left = append(left, fmt.Sprintf("%s (pid %d)", name, pid))
		}
	}
	if len(left) > 0 {
		t.Errorf("still running after `strata up` said it stopped: %s", strings.Join(left, ", "))
	}
	if busy := busyPorts(t, home); len(busy) > 0 {
		t.Errorf("ports still in use after `strata up` said it stopped: %s", strings.Join(busy, ", "))
	}
	if _, out, err := strataStatus(t, bin, home); err == nil {
		t.Errorf("strata status of a stopped datacenter exited zero:\n%s", out)
	}
}

// componentPIDs reads the pid files of the home's clusters and of Strata's
// component processes: pid -> cluster/component or run/process.
func componentPIDs(t testing.TB, home string) map[int]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(home, "kwok", "clusters", "*", "pids", "*.pid"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no pid files in %s (%v)", home, err)
	}
	procs, err := filepath.Glob(filepath.Join(home, "run", "*.pid"))
	if err != nil || len(procs) == 0 {
		t.Fatalf("no pid files of component processes in %s/run (%v)", home, err)
	}
	files = append(files, procs...)
	pids := map[int]string{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		pids[pid] = filepath.Base(filepath.Dir(filepath.Dir(f))) + "/" + strings.TrimSuffix(filepath.Base(f), ".pid")
	}
	return pids
}

// processExited says whether every thread of a process has exited: the
// process is gone, or a zombie whose other threads are gone too (a killed Go
// program's main thread is a zombie while the others still hold its
// sockets).
func processExited(pid int) bool {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, task := range tasks {
		raw, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if err != nil {
			continue
		}
		// "tid (comm) state ...": comm may hold ") ".
		state := strings.TrimSpace(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		if state != "" && state[0] != 'Z' && state[0] != 'X' {
			return false
		}
	}
	return true
}

// busyPorts lists the ports of the home's datacenter that cannot be listened on.
func busyPorts(t testing.TB, home string) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(home, "datacenter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var dc localdc.Datacenter
	if err := yaml.Unmarshal(raw, &dc); err != nil {
		t.Fatal(err)
	}
	ports := map[string]uint32{"broker": dc.BrokerPort, "broker metrics": dc.BrokerMetricsPort}
	for name, p := range dc.Processes {
		ports[name+" health"], ports[name+" metrics"], ports[name+" gRPC"] = p.Health, p.Metrics, p.GRPC
		if p.Webhook != 0 {
			ports[name+" webhook"] = p.Webhook
		}
	}
	for _, c := range dc.Clusters {
		p := c.Ports
		for name, port := range map[string]uint32{
			"kube-apiserver": p.KubeAPIServer, "etcd": p.Etcd, "etcd peer": p.EtcdPeer,
			"kube-controller-manager": p.KubeControllerManager, "kube-scheduler": p.KubeScheduler, "kwok": p.KwokController,
		} {
			ports[c.Name+"/"+name] = port
		}
	}
	var busy []string
	for name, port := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
		if err != nil {
			busy = append(busy, fmt.Sprintf("%s (%d)", name, port))
			continue
		}
		_ = l.Close()
	}
	slices.Sort(busy)
	return busy
}

// waitRunningPods waits until want pods of the web Deployment run.
func waitRunningPods(t testing.TB, kubeconfig string, want int) {
	t.Helper()
	waitRunning(t, kubeconfig, "app=web", want, 2*time.Minute)
}

// waitRunning waits until want pods that match the selector run.
func waitRunning(t testing.TB, kubeconfig, selector string, want int, timeout time.Duration) {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	running := 0
	err = wait.PollUntilContextTimeout(t.Context(), 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		pods, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil //nolint:nilerr // the API server may be restarting
		}
		running = 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == want, nil
	})
	if err != nil {
		t.Fatalf("%d of %d pods Running: %v", running, want, err)
	}
}

// runningComponents lists the processes still running from the home's clusters.
func runningComponents(home string) string {
	out, _ := exec.Command("pgrep", "-af", filepath.Join(home, "kwok")).Output()
	return strings.TrimSpace(string(out))
}

// haPool is the pool that a rollout maintains while the leading hub is
// killed; its nodeConfig is the rollout's, set by the person before the
// rollout (which the orchestrator, old or new, accepts).
const haPool = `
apiVersion: fleet.strata.dev/v1alpha1
kind: Pool
metadata: {name: ha}
spec:
  cluster: workload-2
  capacity: %d
  nodeProfile: general
%s`

const haRollout = `
apiVersion: fleet.strata.dev/v1alpha1
kind: MaintenanceRollout
metadata: {name: ha-v2}
spec:
  pools: [ha]
  nodeConfig: ha-v2
`

// haMachines is the size of the pool: enough zones for the rollout to be
// under way when the leader is killed.
const haMachines = 20

// testHubFailover kills -9 the leading hub process while a
// MaintenanceRollout runs: the other replica leads within 15 s, and the
// rollout completes disrupting each machine once.
func testHubFailover(t *testing.T, bin, home string) {
	hub := localdc.KubeconfigPath(home, localdc.HubName)
	hubc := hubClient(t, hub)
	runKubectlApply(t, bin, hub, fmt.Sprintf(haPool, haMachines, ""))
	waitPool(t, bin, hub, "ha", "Ready", haMachines)
	runKubectlApply(t, bin, hub, fmt.Sprintf(haPool, haMachines, "  nodeConfig: ha-v2\n"))
	runKubectlApply(t, bin, hub, haRollout)
	waitRollout(t, hubc, "ha-v2", 3*time.Minute, func(ro *fleetv1alpha1.MaintenanceRollout) bool {
		return ro.Status.Updated >= 1
	})

	leader := leaderOf(t, bin, home, localdc.ComponentHub, 0)
	killed := time.Now()
	if err := syscall.Kill(leader.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s (pid %d): %v", leader.Name, leader.PID, err)
	}
	ro := &fleetv1alpha1.MaintenanceRollout{}
	if err := hubc.Get(t.Context(), client.ObjectKey{Name: "ha-v2"}, ro); err != nil {
		t.Fatal(err)
	}
	if meta.IsStatusConditionTrue(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition) {
		t.Fatalf("the rollout completed before %s was killed: the pool is too small to test a failover in its middle", leader.Name)
	}
	// The standby, or the killed process restarted by the supervisor:
	// both wait for the Lease to expire and race for it.
	next := leaderOf(t, bin, home, localdc.ComponentHub, leader.PID)
	t.Logf("killed %s (pid %d) with %d of %d machines updated; %s (pid %d) leads %s later",
		leader.Name, leader.PID, ro.Status.Updated, haMachines, next.Name, next.PID, time.Since(killed).Round(10*time.Millisecond))

	ro = waitRollout(t, hubc, "ha-v2", 6*time.Minute, func(ro *fleetv1alpha1.MaintenanceRollout) bool {
		return meta.IsStatusConditionTrue(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition)
	})
	if ro.Status.Updated != haMachines {
		t.Errorf("rollout status: %d of %d updated, want all", ro.Status.Updated, haMachines)
	}
	perMachine := map[string]int{}
	for _, d := range disruptionsBy(t, bin, home, "maintenance/ha-v2") {
		perMachine[d.GetMachine()]++
		// The record's actor is the identity of the orchestrator's
		// certificate; the rollout's name is detail beside it.
		if d.GetActor() != "strata-hub/maintenance-orchestrator" {
			t.Errorf("disruption %s of the rollout has actor %q, want strata-hub/maintenance-orchestrator", d.GetId(), d.GetActor())
		}
	}
	for _, m := range brokerMachines(t, bin, home, "ha") {
		if n := perMachine[m.GetId()]; n != 1 {
			t.Errorf("machine %s was disrupted %d times by the rollout, want once", m.GetId(), n)
		}
		if m.GetSoftware().GetNodeConfig() != "ha-v2" {
			t.Errorf("machine %s runs node config %q, want ha-v2", m.GetId(), m.GetSoftware().GetNodeConfig())
		}
	}
	if len(perMachine) != haMachines {
		t.Errorf("the rollout disrupted %d machines, want %d", len(perMachine), haMachines)
	}
}

// leaderOf waits, 15 s at most, until `strata status` shows a process of
// the component other than the one of pid notPID leading, and returns it.
func leaderOf(t *testing.T, bin, home, component string, notPID int) localdc.ComponentState {
	t.Helper()
	var found localdc.ComponentState
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 15*time.Second, true, func(context.Context) (bool, error) {
		state, out, _ := strataStatus(t, bin, home)
		last = out
		for _, c := range state.Components {
			if c.Component == component && c.PID != notPID && c.Alive && c.Leader != nil && *c.Leader {
				found = c
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no %s process other than pid %d leads within 15 s: %v; strata status said:\n%s", component, notPID, err, last)
	}
	return found
}

// resizePool is a Pool that testBrokerFailover scales up and down.
const resizePool = `
apiVersion: fleet.strata.dev/v1alpha1
kind: Pool
metadata: {name: %s}
spec:
  cluster: %s
  capacity: %d
  nodeProfile: general
`

// resizer is a Pool of testBrokerFailover: its cluster, how it is scaled
// (the CLI, or kubectl patch) and the capacity it ends at.
type resizer struct {
	pool, cluster string
	kubectl       bool
	final         int32
}

// testBrokerFailover kills -9 the leading broker process while three Pools
// are scaled up and down at once: another broker leads within 15 s, every
// Pool reaches Ready at its final capacity (the pool controller recovered
// without a restart), no machine belongs to two pools, and the CLI finds
// the broker without a flag changed.
func testBrokerFailover(t *testing.T, bin, home string) {
	hub := localdc.KubeconfigPath(home, localdc.HubName)
	resizers := []resizer{
		{pool: "resize-a", cluster: localdc.WorkloadClusterName(1), final: 5},
		{pool: "resize-b", cluster: localdc.WorkloadClusterName(2), final: 3},
		{pool: "resize-c", cluster: localdc.WorkloadClusterName(1), kubectl: true, final: 7},
	}
	for _, r := range resizers {
		runKubectlApply(t, bin, hub, fmt.Sprintf(resizePool, r.pool, r.cluster, 4))
	}
	for _, r := range resizers {
		waitPool(t, bin, hub, r.pool, "Ready", 4)
	}

	// Each resizer scales its Pool through sizes, once a second, until
	// stopped; the pool controller resizes the broker's pools meanwhile.
	var (
		rounds atomic.Int64
		wg     sync.WaitGroup
		errs   = make(chan error, len(resizers))
	)
	stop := make(chan struct{})
	for i, r := range resizers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sizes := []int32{8, 2, 6, 3}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for n := i; ; n++ {
				capacity := strconv.Itoa(int(sizes[n%len(sizes)]))
				var out string
				var err error
				if r.kubectl {
					out, err = runErr(bin, "kubectl", "--kubeconfig", hub, "patch", "pool", r.pool, "--type=merge", "-p", `{"spec":{"capacity":`+capacity+`}}`)
				} else {
					out, err = runErr(bin, "strata", "pools", "scale", r.pool, capacity, "--home", home)
				}
				if err != nil {
					errs <- fmt.Errorf("scaling %s to %s: %w\n%s", r.pool, capacity, err, out)
					return
				}
				rounds.Add(1)
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	var once sync.Once
	stopResizers := func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
		})
	}
	defer stopResizers()
	waitRounds(t, &rounds, 2*int64(len(resizers)), errs)

	leader := leaderOf(t, bin, home, localdc.ComponentBroker, 0)
	killed := time.Now()
	if err := syscall.Kill(leader.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s (pid %d): %v", leader.Name, leader.PID, err)
	}
	// The standby, or the killed process restarted by the supervisor: the
	// advisory lock is free once PostgreSQL sees the connection close.
	next := leaderOf(t, bin, home, localdc.ComponentBroker, leader.PID)
	t.Logf("killed %s (pid %d) during pool resizes; %s (pid %d) leads %s later",
		leader.Name, leader.PID, next.Name, next.PID, time.Since(killed).Round(10*time.Millisecond))
	// The resizes go on under the new leader.
	waitRounds(t, &rounds, rounds.Load()+2*int64(len(resizers)), errs)
	stopResizers()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}

	for _, r := range resizers {
		run(t, bin, "strata", "pools", "scale", r.pool, strconv.Itoa(int(r.final)), "--home", home)
	}
	for _, r := range resizers {
		waitPool(t, bin, hub, r.pool, "Ready", r.final)
	}

	// No double allocation: each pool holds its capacity of machines, each
	// with the pool's Node in its cluster, and no machine is in two pools.
	owner := map[string]string{}
	for _, r := range resizers {
		machines := brokerMachines(t, bin, home, r.pool)
		if len(machines) != int(r.final) {
			t.Errorf("the broker holds %d machines for pool %s, want %d", len(machines), r.pool, r.final)
		}
		nodes := map[string]bool{}
		for _, n := range poolNodes(t, kubernetes.NewForConfigOrDie(restConfig(t, localdc.KubeconfigPath(home, r.cluster))), r.pool) {
			nodes[n.Name] = true
		}
		for _, m := range machines {
			if other, dup := owner[m.GetId()]; dup {
				t.Errorf("machine %s belongs to pools %s and %s", m.GetId(), other, r.pool)
			}
			owner[m.GetId()] = r.pool
			if !nodes[m.GetId()] {
				t.Errorf("machine %s of pool %s has no Node of the pool in cluster %s", m.GetId(), r.pool, r.cluster)
			}
		}
	}

	// The CLI finds the new leader from the home, as before.
	if out := run(t, bin, "strata", "pools", "list", "--home", home); !strings.Contains(out, "resize-c") {
		t.Errorf("strata pools list after the failover shows no resize-c:\n%s", out)
	}
	resp := &brokerv1.ListMachinesResponse{}
	brokerJSON(t, bin, home, resp, "machines", "list", "--pool", "resize-a", "--all")
	if len(resp.GetMachines()) != 5 {
		t.Errorf("strata machines list --pool resize-a after the failover: %d machines, want 5", len(resp.GetMachines()))
	}
	state, out, _ := strataStatus(t, bin, home)
	if !state.Broker.Serving || state.Broker.Replica == "" || strings.Count(state.Broker.Address, ",") != 1 {
		t.Errorf("strata status after the failover: broker %+v, want it serving from one of two replicas:\n%s", state.Broker, out)
	}
}

// waitRounds waits until the resizers have scaled want times in all,
// failing at the first resizer's error.
func waitRounds(t *testing.T, rounds *atomic.Int64, want int64, errs <-chan error) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		select {
		case err := <-errs:
			return false, err
		default:
		}
		return rounds.Load() >= want, nil
	})
	if err != nil {
		t.Fatalf("pool resizes: %d of %d done: %v", rounds.Load(), want, err)
	}
}

// restConfig reads a kubeconfig.
func restConfig(t *testing.T, kubeconfig string) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
