package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
)

// fleetLoad is one workload cluster loaded with a Pool of nodes kwok Nodes
// and pods pods of StatelessApps: the memory each component gains per
// cached Node and per cached pod, and the time each step took.
type fleetLoad struct {
	nodes, pods int
	// upArgs are strata up's flags; nil: one workload cluster without a
	// Pool, machines that join at once.
	upArgs []string
	// appsTimeout bounds the wait for every pod to be Ready; past it the
	// figures are taken where the load got. nodesTimeout, when set, does
	// the same for the Nodes (otherwise they must all be Ready).
	appsTimeout, nodesTimeout time.Duration
}

// waitPoolReady creates a Pool of n general Nodes in workload-1 and waits until
// all are Ready or the timeout passes, saying how many are each minute; it
// returns how many were Ready.
func waitPoolReady(b *testing.B, bin, hub, name string, n int, timeout time.Duration) int {
	b.Helper()
	runKubectlApply(b, bin, hub, fmt.Sprintf(`
apiVersion: fleet.strata.dev/v1alpha1
kind: Pool
metadata: {name: %s}
spec: {cluster: workload-1, capacity: %d, nodeProfile: general}
`, name, n))
	end, lastLog := time.Now().Add(timeout), time.Now()
	for {
		out, err := runErr(bin, "kubectl", "--kubeconfig", hub, "get", "pool", name, "-o", "jsonpath={.status.ready}")
		ready, _ := strconv.Atoi(strings.TrimSpace(out))
		if err == nil && ready >= n {
			return ready
		}
		if time.Since(lastLog) > time.Minute {
			progress("fleet load: %d of %d Nodes Ready", ready, n)
			lastLog = time.Now()
		}
		if time.Now().After(end) {
			b.Logf("only %d of %d Nodes Ready after %s: going on from there", ready, n, timeout)
			return ready
		}
		select {
		case <-b.Context().Done():
			return ready
		case <-time.After(5 * time.Second):
		}
	}
}

// appReplicas is the size of each StatelessApp of the load.
const appReplicas = 5000

// memSnapshot is the memory of each process: strata serve components by
// their name in `strata status`, the control planes' by cluster/component.
type memSnapshot struct {
	at   time.Time
	rss  map[string]float64 // MiB
	heap map[string]float64 // MiB, Go heap in use, where /metrics answers
}

// fleetLoadResult is what a run of a fleetLoad measured.
type fleetLoadResult struct {
	rest, withNodes, withPods memSnapshot
	nodesTook, podsTook       time.Duration
	readyPods, readyNodes     int
	// cachedPods are the pods that exist at the last reading, Ready or
	// not: what the app controllers cache.
	cachedPods                      int
	upTook                          time.Duration
	controlPlane, controlPlaneNodes map[string]float64
}

func (l fleetLoad) run(b *testing.B, bin string) fleetLoadResult {
	b.Helper()
	var res fleetLoadResult
	home := filepath.Join(b.TempDir(), "home")
	args := l.upArgs
	if args == nil {
		args = []string{
			"--workload-clusters", "1", "--pool-capacity", "0", "--join-duration", "1ms",
			"--machines", strconv.Itoa(max(2000, 2*l.nodes)),
		}
	}
	began := time.Now()
	up := startUp(b, bin, home, args...)
	res.upTook = time.Since(began)
	hub := localdc.KubeconfigPath(home, localdc.HubName)
	wl := localdc.KubeconfigPath(home, localdc.WorkloadClusterName(1))
	waitLeaders(b, bin, home)
	res.rest = memory(b, bin, home, up.cmd.Process.Pid)
	progress("fleet load: strata up in %s; a Pool of %d Nodes", res.upTook.Round(time.Second), l.nodes)

	began = time.Now()
	res.readyNodes = l.nodes
	if l.nodesTimeout > 0 {
		res.readyNodes = waitPoolReady(b, bin, hub, "load", l.nodes, l.nodesTimeout)
	} else {
		createReadyPool(b, bin, hub, "load", l.nodes)
	}
	res.nodesTook = time.Since(began)
	progress("fleet load: %d of %d Nodes Ready in %s", res.readyNodes, l.nodes, res.nodesTook.Round(time.Second))
	settle(b)
	res.withNodes = memory(b, bin, home, up.cmd.Process.Pid)
	res.controlPlaneNodes = controlPlaneMiB(b, home)

	runKubectlApply(b, bin, hub, fmt.Sprintf(`
apiVersion: apps.strata.dev/v1alpha1
kind: AppNamespace
metadata: {name: load}
spec: {app: load, tenant: stateless, nodeProfile: general, quota: {cpu: "%d", memory: %dGi, pods: "%d"}}
`, l.pods/50+10, l.pods/32+10, l.pods+100))
	wc := appsClient(b, wl)
	waitFor(b, 3*time.Minute, func(ctx context.Context) bool {
		return wc.Get(ctx, client.ObjectKey{Name: "load"}, &corev1.Namespace{}) == nil
	})
	var manifest strings.Builder
	apps := (l.pods + appReplicas - 1) / appReplicas
	for i := range apps {
		fmt.Fprintf(&manifest, `---
apiVersion: apps.strata.dev/v1alpha1
kind: StatelessApp
metadata: {name: load-%d, namespace: load}
spec:
  application: load-%d
  appVersion: "1.0.0"
  replicas: %d
  resources: {cpu: 10m, memory: 16Mi}
`, i, i, min(appReplicas, l.pods-i*appReplicas))
	}
	began = time.Now()
	runKubectlApply(b, bin, wl, manifest.String())
	res.readyPods = waitReadyPods(b, wc, l.pods, l.appsTimeout)
	res.podsTook = time.Since(began)
	progress("fleet load: %d of %d pods Ready in %s", res.readyPods, l.pods, res.podsTook.Round(time.Second))
	settle(b)
	res.withPods = memory(b, bin, home, up.cmd.Process.Pid)
	res.cachedPods = countPods(b, wc)
	res.controlPlane = controlPlaneMiB(b, home)

	up.interrupt(b)
	run(b, bin, "strata", "down", "--home", home)
	return res
}

// countPods counts the pods of namespace load.
func countPods(b *testing.B, wc client.Client) int {
	pods := &metav1.PartialObjectMetadataList{}
	pods.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	if err := wc.List(b.Context(), pods, client.InNamespace("load")); err != nil {
		b.Fatalf("counting the pods: %v", err)
	}
	return len(pods.Items)
}

// settle lets the components' caches and garbage collectors catch up
// before a reading.
func settle(b *testing.B) {
	select {
	case <-b.Context().Done():
	case <-time.After(30 * time.Second):
	}
}

// waitReadyPods waits until the StatelessApps of namespace load have want
// Ready replicas, or the timeout passes; it returns how many were Ready.
func waitReadyPods(b *testing.B, wc client.Client, want int, timeout time.Duration) int {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), timeout)
	defer cancel()
	readyPods, lastLog := 0, time.Now()
	for {
		apps := &appsv1alpha1.StatelessAppList{}
		if err := wc.List(ctx, apps, client.InNamespace("load")); err == nil {
			readyPods = 0
			for _, a := range apps.Items {
				readyPods += int(a.Status.ReadyReplicas)
			}
		}
		if readyPods >= want {
			return readyPods
		}
		if time.Since(lastLog) > time.Minute {
			progress("fleet load: %d of %d pods Ready", readyPods, want)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			b.Logf("only %d of %d pods Ready after %s: measuring there", readyPods, want, timeout)
			return readyPods
		case <-time.After(5 * time.Second):
		}
	}
}

// memory reads each strata process's resident memory and, where its
// /metrics answers, its Go heap in use, and says them on stderr at once.
func memory(b *testing.B, bin, home string, upPID int) memSnapshot {
	s := readMemory(b, bin, home, upPID)
	var line strings.Builder
	for _, n := range slices.Sorted(maps.Keys(s.rss)) {
		fmt.Fprintf(&line, " %s=%.0f", n, s.rss[n])
		if h, ok := s.heap[n]; ok {
			fmt.Fprintf(&line, "/%.0f", h)
		}
	}
	progress("fleet load: MiB resident/heap:%s", line.String())
	return s
}

func readMemory(b *testing.B, bin, home string, upPID int) memSnapshot {
	b.Helper()
	s := memSnapshot{at: time.Now(), rss: map[string]float64{"strata up": residentMiB(b, upPID)}, heap: map[string]float64{}}
	// strata status fails while a component or cluster is not ready, as
	// happens under load; its report still names every process.
	state, out, err := strataStatus(b, bin, home)
	if err != nil && len(state.Components) == 0 {
		b.Fatalf("strata status: %v\n%s", err, out)
	}
	for _, c := range state.Components {
		if !c.Alive {
			b.Logf("component %s is not running", c.Name)
			continue
		}
		if !c.Ready {
			progress("fleet load: %s is not ready (%s)", c.Name, c.Reason)
		}
		s.rss[c.Name] = residentMiB(b, c.PID)
		if h, ok := heapInUseMiB(b, home, c.Name); ok {
			s.heap[c.Name] = h
		}
	}
	return s
}

// heapInUseMiB is go_memstats_heap_inuse_bytes of a strata serve process,
// from the metrics address of its configuration.
func heapInUseMiB(b *testing.B, home, process string) (float64, bool) {
	raw, err := os.ReadFile(localdc.ComponentProcess{Name: process}.ConfigPath(home))
	if err != nil {
		return 0, false
	}
	var cfg struct {
		Metrics struct {
			BindAddress string `json:"bindAddress"`
		} `json:"metrics"`
		MetricsListen string `json:"metricsListen"`
	}
	if yaml.Unmarshal(raw, &cfg) != nil {
		return 0, false
	}
	addr := cfg.Metrics.BindAddress
	if addr == "" {
		addr = cfg.MetricsListen
	}
	if addr == "" || addr == "0" {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close() //nolint:errcheck // read only
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "go_memstats_heap_inuse_bytes") {
		return 0, false
	}
	return promText(body).sum("go_memstats_heap_inuse_bytes", "") / (1 << 20), true
}

// controlPlaneMiB is the resident memory of each control plane process
// of the home's clusters, by cluster/component.
func controlPlaneMiB(b *testing.B, home string) map[string]float64 {
	files, _ := filepath.Glob(filepath.Join(home, "kwok", "clusters", "*", "pids", "*.pid"))
	mem := map[string]float64{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err != nil {
			continue
		}
		cluster := filepath.Base(filepath.Dir(filepath.Dir(f)))
		mem[cluster+"/"+strings.TrimSuffix(filepath.Base(f), ".pid")] = residentMiB(b, pid)
	}
	return mem
}

// report logs every process's memory at each step and its growth per
// Node and per pod, and reports those of the hub and the apps
// controllers.
func (r fleetLoadResult) report(b *testing.B, l fleetLoad) {
	b.Logf("strata up %s; %d of %d Nodes Ready in %s; %d of %d pods Ready in %s, %d created (the per-pod figures' divisor)",
		r.upTook.Round(time.Second), r.readyNodes, l.nodes, r.nodesTook.Round(time.Second), r.readyPods, l.pods, r.podsTook.Round(time.Second), r.cachedPods)
	b.Logf("%-22s %9s %9s %9s %10s %10s | %8s %8s %8s %10s %10s", "process", "rest MiB", "+nodes", "+pods",
		"B/Node", "B/pod", "heap MiB", "+nodes", "+pods", "heap B/Node", "heap B/pod")
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range r.withPods.rss {
			if !yield(k) {
				return
			}
		}
	})
	perNode := func(m0, m1 float64) float64 { return (m1 - m0) * (1 << 20) / float64(max(r.readyNodes, 1)) }
	perPod := func(m0, m1 float64) float64 { return (m1 - m0) * (1 << 20) / float64(max(r.cachedPods, 1)) }
	for _, n := range names {
		line := fmt.Sprintf("%-22s %9.0f %9.0f %9.0f %10.0f %10.0f", n, r.rest.rss[n], r.withNodes.rss[n], r.withPods.rss[n],
			perNode(r.rest.rss[n], r.withNodes.rss[n]), perPod(r.withNodes.rss[n], r.withPods.rss[n]))
		if _, ok := r.withPods.heap[n]; ok {
			line += fmt.Sprintf(" | %8.0f %8.0f %8.0f %10.0f %10.0f", r.rest.heap[n], r.withNodes.heap[n], r.withPods.heap[n],
				perNode(r.rest.heap[n], r.withNodes.heap[n]), perPod(r.withNodes.heap[n], r.withPods.heap[n]))
		}
		b.Log(line)
		metric := strings.TrimSuffix(strings.TrimSuffix(n, "-1"), "-"+localdc.WorkloadClusterName(1))
		switch {
		case strings.HasPrefix(n, localdc.ComponentHub+"-"):
			b.ReportMetric(perNode(r.rest.rss[n], r.withNodes.rss[n]), metric+"-rss-B/node")
			b.ReportMetric(perNode(r.rest.heap[n], r.withNodes.heap[n]), metric+"-heap-B/node")
		case strings.HasPrefix(n, localdc.ComponentApps+"-"):
			b.ReportMetric(perNode(r.rest.rss[n], r.withNodes.rss[n]), metric+"-rss-B/node")
			b.ReportMetric(perPod(r.withNodes.rss[n], r.withPods.rss[n]), metric+"-rss-B/pod")
			b.ReportMetric(perNode(r.rest.heap[n], r.withNodes.heap[n]), metric+"-heap-B/node")
			b.ReportMetric(perPod(r.withNodes.heap[n], r.withPods.heap[n]), metric+"-heap-B/pod")
		}
	}
	b.Logf("%-40s %10s %10s", "control plane process", "Nodes MiB", "pods MiB")
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.controlPlane {
			if !yield(k) {
				return
			}
		}
	}) {
		b.Logf("%-40s %10.0f %10.0f", n, r.controlPlaneNodes[n], r.controlPlane[n])
	}
	b.ReportMetric(r.nodesTook.Seconds(), "nodes-ready-s")
	b.ReportMetric(r.podsTook.Seconds(), "pods-ready-s")
	b.ReportMetric(float64(r.readyPods), "pods-ready")
	b.ReportMetric(float64(r.cachedPods), "pods-created")
}
