package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
	"github.com/strata-dev/strata/internal/workload/fleetapp"
)

// benchSoak is the soak of the benchmark's release, per wave.
const benchSoak = 10 * time.Second

// BenchmarkMultiCluster measures multi-cluster apps (issue 17) in one
// datacenter of three workload clusters (40 general Nodes each).
//
// Placement: AppNamespaces created by ten clients at once, each timed from
// its create to the first moment it is seen Ready on all its clusters; 200
// on one cluster each, then 200 on three (the peers, at equal load), then
// STRATA_BENCH_APPNAMESPACES (default 2,000) on three.
//
// A release: a hub StatelessApp of 30 replicas (10 per cluster) to a new
// version in three waves of one cluster, soak 10 s: each wave's start, its
// cluster Ready at the new version, the whole release, and what it takes
// beyond the soak. Beside it, the same version change applied at once to
// a StatelessApp declared in each workload cluster: the rollout work that
// the waves wrap.
//
// Memory: the resident memory of the hub's controllers (the strata serve
// hub process) before, after the placement and after the release, and
// what its /metrics says of the AppNamespace controller's work.
//
//	STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkMultiCluster -benchtime 1x -timeout 60m
func BenchmarkMultiCluster(b *testing.B) {
	const peers = 200
	n := benchEnvInt(b, "STRATA_BENCH_APPNAMESPACES", 2000)
	bin := binDir(b)
	for b.Loop() {
		home := filepath.Join(b.TempDir(), "home")
		up := startUp(b, bin, home, "--workload-clusters", "3")
		hub := localdc.KubeconfigPath(home, localdc.HubName)
		hc := appsClient(b, hub)
		// The default Pools must be Ready first: placement needs their room.
		waitFor(b, 5*time.Minute, func(ctx context.Context) bool {
			out, err := runErr(bin, "kubectl", "--kubeconfig", hub, "get", "pools", "-o", "jsonpath={.items[*].status.ready}")
			return err == nil && out == "40 40 40"
		})
		hm := newHubMetrics(b, home)
		obs := watchAppNamespaces(b, hub)
		rssBefore, heapBefore := residentMiB(b, hubPID(b, home)), hm.heapMiB(b)

		var table []string
		row := func(what string, r placementResult) {
			table = append(table, fmt.Sprintf("%-34s %6d %8.1f %8.1f %8.1f %9.1f %7.2f %9.2f %8.1f %10.0f %9.1f %9.2f", what, r.n,
				r.p50.Seconds(), r.p99.Seconds(), r.max.Seconds(), r.all.Seconds(), float64(r.n)/r.all.Seconds(),
				r.reconciles, r.requests, r.reconcileMs, r.queueS, r.hubCPU))
		}
		progress("placing %d AppNamespaces on 1 cluster", peers)
		one := placeAppNamespaces(b, hc, obs, hm, "one", peers, 1)
		row("200 on 1 cluster (peer)", one)
		progress("placing %d AppNamespaces on 3 clusters", peers)
		three := placeAppNamespaces(b, hc, obs, hm, "three", peers, 3)
		row("200 on 3 clusters (peer)", three)
		progress("placing %d AppNamespaces on 3 clusters", n)
		many := placeAppNamespaces(b, hc, obs, hm, "mc", n, 3)
		row(fmt.Sprintf("%d on 3 clusters", n), many)
		rssPlaced, heapPlaced := residentMiB(b, hubPID(b, home)), hm.heapMiB(b)
		b.Logf("placement (seconds from each create to Ready on all its clusters; reconcile = mean time of one reconcile of the hub's AppNamespace controller, queue = mean wait in its queue; recon/ns and req/ns = its reconciles and the hub's API requests per AppNamespace):\n%-34s %6s %8s %8s %8s %9s %7s %9s %8s %10s %9s %9s\n%s",
			"", "count", "p50", "p99", "max", "all-ready", "ns/s", "recon/ns", "req/ns", "recon-ms", "queue-s", "hub-cpu-s", strings.Join(table, "\n"))
		b.ReportMetric(many.p50.Seconds(), "place-p50-s")
		b.ReportMetric(many.p99.Seconds(), "place-p99-s")
		b.ReportMetric(many.max.Seconds(), "place-max-s")
		b.ReportMetric(many.all.Seconds(), "place-all-ready-s")
		b.ReportMetric(float64(many.n)/many.all.Seconds(), "place-ns/s")
		b.ReportMetric(float64(one.n)/one.all.Seconds(), "peer-1-cluster-ns/s")
		b.ReportMetric(float64(three.n)/three.all.Seconds(), "peer-3-clusters-ns/s")
		b.ReportMetric(one.p50.Seconds(), "peer-1-cluster-p50-s")
		b.ReportMetric(three.p50.Seconds(), "peer-3-clusters-p50-s")

		progress("the release")
		rel := benchRelease(b, bin, home, hc, hm)
		progress("done")
		rssReleased, heapReleased := residentMiB(b, hubPID(b, home)), hm.heapMiB(b)
		b.ReportMetric(rel.total.Seconds(), "release-s")
		b.ReportMetric((rel.total - time.Duration(len(rel.waves))*benchSoak).Seconds(), "release-overhead-s")
		for i, w := range rel.waves {
			b.ReportMetric(w.took.Seconds(), fmt.Sprintf("wave-%d-s", i+1))
		}
		b.ReportMetric(rel.direct.Seconds(), "direct-rollout-s")

		b.ReportMetric(rssBefore, "hub-rss-before-MiB")
		b.ReportMetric(rssPlaced, "hub-rss-placed-MiB")
		b.ReportMetric(rssReleased, "hub-rss-released-MiB")
		b.ReportMetric(peakMiB(b, hubPID(b, home)), "hub-peak-MiB")
		b.Logf("hub (strata serve hub) resident memory: %.0f MiB before, %.0f MiB with %d AppNamespaces, %.0f MiB after the release (peak %.0f MiB); Go heap in use %.0f, %.0f, %.0f MiB",
			rssBefore, rssPlaced, 2*peers+n, rssReleased, peakMiB(b, hubPID(b, home)), heapBefore, heapPlaced, heapReleased)
		up.interrupt(b)
		run(b, bin, "strata", "down", "--home", home)
	}
}

// progress says on stderr, at once, where a long benchmark is (b.Logf
// prints at its end), so that a slow phase can be set beside whatever
// else the machine ran then.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format(time.TimeOnly), fmt.Sprintf(format, args...))
}

// benchEnvInt is a positive integer from the environment, or def.
func benchEnvInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// hubPID is the pid of the (one) strata serve hub process of the home.
func hubPID(b *testing.B, home string) int {
	b.Helper()
	pids := pidFiles(b, filepath.Join(home, "run", localdc.ComponentHub+"-*.pid"))
	if len(pids) != 1 {
		b.Fatalf("%d hub processes, want 1", len(pids))
	}
	return pids[0]
}

// placementResult is what one burst of AppNamespaces measured.
type placementResult struct {
	n                  int
	p50, p99, max, all time.Duration
	// reconcileMs is the mean time of one reconcile of the hub's
	// AppNamespace controller during the burst, queueS the mean wait of an
	// item in its queue, hubCPU the CPU seconds of the hub process.
	reconcileMs, queueS, hubCPU float64
	// reconciles and requests are per AppNamespace: the controller's
	// reconciles, and the hub process's API requests (to the hub and to
	// the workload clusters).
	reconciles, requests float64
}

// placeAppNamespaces creates n AppNamespaces <prefix>-<i>, each on
// clusters clusters, with ten clients at once, and times each from its
// create until the observer sees it Ready on that many clusters.
func placeAppNamespaces(b *testing.B, hc client.Client, obs *appNamespaceWatch, hm *hubMetrics, prefix string, n, clusters int) placementResult {
	b.Helper()
	names := make([]string, n)
	created := make([]time.Time, n)
	for i := range n {
		names[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	before := hm.scrape(b)
	began := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	for range 10 { // ten clients applying at once
		wg.Go(func() {
			for i := range work {
				a := &appsv1alpha1.AppNamespace{
					ObjectMeta: metav1.ObjectMeta{Name: names[i]},
					Spec: appsv1alpha1.AppNamespaceSpec{
						App: names[i], Tenant: appsv1alpha1.StatelessTenant, NodeProfile: "general",
						Quota:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
						Owners: []appsv1alpha1.Owner{{Kind: appsv1alpha1.GroupSubject, Name: "team-" + names[i], Role: appsv1alpha1.EditRole}},
					},
				}
				if clusters > 1 {
					a.Spec.Placement = &appsv1alpha1.Placement{Clusters: ptr.To(int32(clusters))}
				}
				created[i] = time.Now() // each index is written by one client only
				if err := hc.Create(b.Context(), a); err != nil {
					b.Errorf("creating %s: %v", a.Name, err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	ready := obs.wait(b, names, clusters, 40*time.Minute)
	total := time.Since(began)
	after := hm.scrape(b)

	latencies := make([]time.Duration, n)
	for i := range n {
		latencies[i] = ready[i].Sub(created[i])
	}
	slices.Sort(latencies)
	r := placementResult{
		n: n, p50: latencies[n/2], p99: latencies[n*99/100], max: latencies[n-1], all: total,
		hubCPU: after.sum("process_cpu_seconds_total", "") - before.sum("process_cpu_seconds_total", ""),
	}
	const controller = `controller="appnamespace"`
	r.requests = (after.sum("rest_client_requests_total", "") - before.sum("rest_client_requests_total", "")) / float64(n)
	r.reconciles = (after.sum("controller_runtime_reconcile_time_seconds_count", controller) - before.sum("controller_runtime_reconcile_time_seconds_count", controller)) / float64(n)
	if count := after.sum("controller_runtime_reconcile_time_seconds_count", controller) - before.sum("controller_runtime_reconcile_time_seconds_count", controller); count > 0 {
		r.reconcileMs = 1000 * (after.sum("controller_runtime_reconcile_time_seconds_sum", controller) - before.sum("controller_runtime_reconcile_time_seconds_sum", controller)) / count
	}
	const queue = `name="appnamespace"`
	if count := after.sum("workqueue_queue_duration_seconds_count", queue) - before.sum("workqueue_queue_duration_seconds_count", queue); count > 0 {
		r.queueS = (after.sum("workqueue_queue_duration_seconds_sum", queue) - before.sum("workqueue_queue_duration_seconds_sum", queue)) / count
	}
	return r
}

// appNamespaceWatch records when each AppNamespace is first seen Ready,
// and on how many clusters, from a watch of the hub's AppNamespaces (a
// list every 100 ms of thousands of them would load the hub it measures).
type appNamespaceWatch struct {
	mu    sync.Mutex
	ready map[string]time.Time
	on    map[string]int
}

func watchAppNamespaces(b *testing.B, kubeconfig string) *appNamespaceWatch {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, appsv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			b.Fatal(err)
		}
	}
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	w := &appNamespaceWatch{ready: map[string]time.Time{}, on: map[string]int{}}
	ctx := b.Context()
	seen := make(chan struct{})
	go func() {
		first := true
		for ctx.Err() == nil {
			list := &appsv1alpha1.AppNamespaceList{}
			if err := wc.List(ctx, list); err != nil {
				time.Sleep(time.Second)
				continue
			}
			now := time.Now()
			for i := range list.Items {
				w.see(&list.Items[i], now)
			}
			if first {
				close(seen)
				first = false
			}
			events, err := wc.Watch(ctx, &appsv1alpha1.AppNamespaceList{}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
			if err != nil {
				continue
			}
			for ev := range events.ResultChan() {
				if ev.Type == watch.Error {
					break // expired: list again
				}
				if a, ok := ev.Object.(*appsv1alpha1.AppNamespace); ok {
					w.see(a, time.Now())
				}
			}
			events.Stop()
		}
	}()
	select {
	case <-seen:
	case <-time.After(time.Minute):
		b.Fatal("could not list the hub's AppNamespaces within a minute")
	}
	return w
}

func (w *appNamespaceWatch) see(a *appsv1alpha1.AppNamespace, now time.Time) {
	if !meta.IsStatusConditionTrue(a.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(a.Status.Clusters); n > w.on[a.Name] {
		w.on[a.Name], w.ready[a.Name] = n, now
	}
}

// wait returns when each of names was first seen Ready on clusters
// clusters, once all were.
func (w *appNamespaceWatch) wait(b *testing.B, names []string, clusters int, timeout time.Duration) []time.Time {
	b.Helper()
	out := make([]time.Time, len(names))
	left := 0
	waitFor(b, timeout, func(context.Context) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		left = 0
		for i, name := range names {
			if w.on[name] >= clusters {
				out[i] = w.ready[name]
			} else {
				left++
			}
		}
		return left == 0
	})
	return out
}

// hubMetrics scrapes the /metrics of the strata serve hub process.
type hubMetrics struct {
	url string
}

func newHubMetrics(b *testing.B, home string) *hubMetrics {
	b.Helper()
	raw, err := os.ReadFile(localdc.ComponentProcess{Name: localdc.ComponentHub + "-1"}.ConfigPath(home))
	if err != nil {
		b.Fatal(err)
	}
	var cfg struct {
		Metrics struct {
			BindAddress string `json:"bindAddress"`
		} `json:"metrics"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil || cfg.Metrics.BindAddress == "" {
		b.Fatalf("no metrics address in the hub's configuration (%v):\n%s", err, raw)
	}
	return &hubMetrics{url: "http://" + cfg.Metrics.BindAddress + "/metrics"}
}

// heapMiB is the hub's Go heap in use (live objects and fragmentation,
// without the garbage collector's headroom that the resident memory has).
func (h *hubMetrics) heapMiB(b *testing.B) float64 {
	return h.scrape(b).sum("go_memstats_heap_inuse_bytes", "") / (1 << 20)
}

// promText is a scrape of /metrics, in the text format.
type promText string

func (h *hubMetrics) scrape(b *testing.B) promText {
	b.Helper()
	req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, h.url, nil)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatalf("scraping the hub's metrics: %v", err)
	}
	defer resp.Body.Close() //nolint:errcheck // read only
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("scraping the hub's metrics: %v (status %d)", err, resp.StatusCode)
	}
	return promText(raw)
}

// sum adds up the samples of a metric whose labels contain label ("" for
// any).
func (p promText) sum(name, label string) float64 {
	total := 0.0
	sc := bufio.NewScanner(strings.NewReader(string(p)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		if label != "" && !strings.Contains(rest, label) {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(fields) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
			total += v
		}
	}
	return total
}

// benchWave is one wave of the release: when it started (from the patch),
// when its cluster was seen Ready at the new version in the hub app's
// status, and how long until the next wave (or the end).
type benchWave struct {
	started, clusterReady, took time.Duration
}

type releaseResult struct {
	total  time.Duration
	waves  []benchWave
	direct time.Duration
}

// benchRelease releases a hub StatelessApp of 30 replicas to a new
// version in three waves, then changes the version of a StatelessApp
// declared in each workload cluster at once, for the peer.
func benchRelease(b *testing.B, bin, home string, hc client.Client, hm *hubMetrics) releaseResult {
	b.Helper()
	hub := localdc.KubeconfigPath(home, localdc.HubName)
	wcs := map[string]client.Client{}
	for _, c := range multiClusters {
		wcs[c] = appsClient(b, localdc.KubeconfigPath(home, c))
	}
	for _, name := range []string{"bench-app", "bench-peer"} {
		runKubectlApply(b, bin, hub, fmt.Sprintf(`
apiVersion: apps.strata.dev/v1alpha1
kind: AppNamespace
metadata: {name: %[1]s}
spec:
  app: %[1]s
  tenant: stateless
  nodeProfile: general
  quota: {cpu: "40", memory: 80Gi}
  placement: {clusters: 3}
  owners:
  - {kind: Group, name: %[1]s-devs, role: edit}
`, name))
	}
	waitFor(b, 5*time.Minute, func(ctx context.Context) bool {
		for _, name := range []string{"bench-app", "bench-peer"} {
			an := &appsv1alpha1.AppNamespace{}
			if hc.Get(ctx, client.ObjectKey{Name: name}, an) != nil ||
				!meta.IsStatusConditionTrue(an.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition) || len(an.Status.Clusters) != 3 {
				return false
			}
		}
		return true
	})
	runKubectlApply(b, bin, hub, `
apiVersion: apps.strata.dev/v1alpha1
kind: StatelessApp
metadata: {name: web, namespace: bench-app}
spec:
  application: bench-web
  appVersion: "1.0.0"
  replicas: 30
  resources: {cpu: 100m, memory: 128Mi}
  fleet:
    release: {soakSeconds: 10, clustersPerWave: 1}
`)
	for _, c := range multiClusters {
		runKubectlApply(b, bin, localdc.KubeconfigPath(home, c), `
apiVersion: apps.strata.dev/v1alpha1
kind: StatelessApp
metadata: {name: web, namespace: bench-peer}
spec:
  application: peer-web
  appVersion: "1.0.0"
  replicas: 10
  resources: {cpu: 100m, memory: 128Mi}
`)
	}
	key := client.ObjectKey{Namespace: "bench-app", Name: "web"}
	app := &appsv1alpha1.StatelessApp{}
	waitFor(b, 10*time.Minute, func(ctx context.Context) bool {
		return hc.Get(ctx, key, app) == nil && app.Status.ObservedGeneration == app.Generation && ready(app) &&
			shares(app) == "10/10/10" && app.Status.ReadyReplicas == 30
	})
	waitFor(b, 10*time.Minute, func(ctx context.Context) bool { return peerAt(ctx, wcs, "1.0.0") })

	// The release, watched every 200 ms on the hub.
	const version = "1.1.0"
	before := hm.scrape(b)
	start := time.Now()
	run(b, bin, "kubectl", "--kubeconfig", hub, "patch", "statelessapp", "web", "-n", "bench-app", "--type=merge", "-p", `{"spec":{"appVersion":"`+version+`"}}`)
	var (
		waves   []benchWave
		last    string
		release *appsv1alpha1.ReleaseStatus
	)
	readyAt := map[string]time.Duration{}
	deadline := time.Now().Add(10 * time.Minute)
	for {
		if time.Now().After(deadline) {
			b.Fatalf("the release of %s was not Released within 10 minutes: %s", version, last)
		}
		if err := hc.Get(b.Context(), key, app); err == nil {
			now := time.Since(start)
			release = app.Status.Release
			if release != nil && release.AppVersion == version {
				last = release.Phase + ": " + release.Message
				for int(release.Wave) > len(waves) {
					waves = append(waves, benchWave{started: now})
				}
				for _, c := range app.Status.Clusters {
					if _, seen := readyAt[c.Cluster]; !seen && c.AppVersion == version && c.Ready && c.ReadyReplicas == c.Replicas {
						readyAt[c.Cluster] = now
					}
				}
				if release.Phase == fleetapp.PhaseReleased && ready(app) {
					break
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	total := time.Since(start)
	after := hm.scrape(b)
	if len(waves) != 3 || len(release.Released) != 3 {
		b.Fatalf("released in %d waves to %v, want 3 waves of one cluster", len(waves), release.Released)
	}
	lines := []string{fmt.Sprintf("%-6s %-12s %9s %16s %8s", "wave", "cluster", "start-s", "cluster-ready-s", "took-s")}
	for i := range waves {
		end := total
		if i+1 < len(waves) {
			end = waves[i+1].started
		}
		waves[i].took = end - waves[i].started
		waves[i].clusterReady = readyAt[release.Released[i]]
		lines = append(lines, fmt.Sprintf("%-6d %-12s %9.1f %16.1f %8.1f", i+1, release.Released[i],
			waves[i].started.Seconds(), waves[i].clusterReady.Seconds(), waves[i].took.Seconds()))
	}

	progress("the peer: the version applied to each cluster's app")
	// The peer: the same change, written to each cluster's own app at once.
	began := time.Now()
	var wg sync.WaitGroup
	for _, c := range multiClusters {
		wg.Go(func() {
			a := &appsv1alpha1.StatelessApp{}
			if err := wcs[c].Get(b.Context(), client.ObjectKey{Namespace: "bench-peer", Name: "web"}, a); err != nil {
				b.Errorf("the peer app in %s: %v", c, err)
				return
			}
			patch := client.MergeFrom(a.DeepCopy())
			a.Spec.AppVersion = version
			if err := wcs[c].Patch(b.Context(), a, patch); err != nil {
				b.Errorf("patching the peer app in %s: %v", c, err)
			}
		})
	}
	wg.Wait()
	pollEvery(b, 200*time.Millisecond, 10*time.Minute, func(ctx context.Context) bool { return peerAt(ctx, wcs, version) })
	direct := time.Since(began)

	b.Logf("release of %s to 3 clusters in waves of 1, soak %s (seconds from the patch; a wave took from its start to the next's):\n%s\n"+
		"total %.1f s = %d soaks of %.0f s + %.1f s; the hub's CPU meanwhile %.2f s\n"+
		"the same version applied to each cluster's own app at once: all three Ready at it in %.1f s",
		version, benchSoak, strings.Join(lines, "\n"), total.Seconds(), len(waves), benchSoak.Seconds(),
		(total - time.Duration(len(waves))*benchSoak).Seconds(),
		after.sum("process_cpu_seconds_total", "")-before.sum("process_cpu_seconds_total", ""), direct.Seconds())
	return releaseResult{total: total, waves: waves, direct: direct}
}

// peerAt says whether the peer app of every workload cluster runs version,
// Ready with all its replicas.
func peerAt(ctx context.Context, wcs map[string]client.Client, version string) bool {
	for _, c := range multiClusters {
		a := &appsv1alpha1.StatelessApp{}
		if err := wcs[c].Get(ctx, client.ObjectKey{Namespace: "bench-peer", Name: "web"}, a); err != nil {
			return false
		}
		if a.Status.ObservedGeneration != a.Generation || a.Spec.AppVersion != version || a.Status.Stable.AppVersion != version ||
			!ready(a) || a.Status.ReadyReplicas != a.Spec.Replicas {
			return false
		}
	}
	return true
}

// pollEvery polls cond every interval until it holds or the timeout passes.
func pollEvery(b *testing.B, interval, timeout time.Duration, cond func(context.Context) bool) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for !cond(b.Context()) {
		if time.Now().After(deadline) {
			b.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(interval)
	}
}
