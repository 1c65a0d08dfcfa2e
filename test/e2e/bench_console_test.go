package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
	"github.com/strata-dev/strata/internal/sqldb"
	"github.com/strata-dev/strata/internal/testutil"
)

// consoleGroup is how many pods one filter of the benchmark matches: each
// (namespace, app) of a workload cluster holds this many (the last fewer).
const consoleGroup = 10000

// BenchmarkConsole measures the fleet console (issue 18) in a datacenter of
// two workload clusters holding STRATA_BENCH_CONSOLE_NODES kwok Nodes
// (default 5,000) and STRATA_BENCH_CONSOLE_PODS pods (default 100,000),
// each figure beside a peer measured in the same run:
//
//   - the aggregator's lag behind the burst of creates (from the last
//     create to every pod and Node in the fleet store);
//
//   - its memory per pod (resident memory after the load less before, per
//     pod) beside a client-go informer cache of the same pods in this
//     process (Go heap in use per pod), the cache-everything design; and
//     the store file's bytes per pod;
//
//   - a filtered list of 10,000 pods from the console's /pods page (100
//     requests, timed to the last byte) beside the API server listing the
//     same pods with a label selector;
//
//   - change-to-browser latency: a headless Chromium on the /pods page of a
//     namespace while 100 pods/s churn there (50 creates and 50 deletes a
//     second for 60 s), from each create's return to the pod's name in the
//     page, beside a client-go watch's ADDED event of the same pod.
//
//     STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkConsole -benchtime 1x -timeout 90m
func BenchmarkConsole(b *testing.B) {
	nodes := benchEnvInt(b, "STRATA_BENCH_CONSOLE_NODES", 5000)
	pods := benchEnvInt(b, "STRATA_BENCH_CONSOLE_PODS", 100000)
	bin := binDir(b)
	for b.Loop() {
		home := filepath.Join(b.TempDir(), "home")
		up := startUp(b, bin, home, "--workload-clusters", "2", "--pool-capacity", "0")
		state, err := localdc.Status(b.Context(), home)
		if err != nil || state.Console == "" {
			b.Fatalf("no console address in strata status (%v): %+v", err, state)
		}
		console := strings.TrimSuffix(state.Console, "/")
		aggPID := pidFiles(b, filepath.Join(home, "run", localdc.ComponentAggregator+"-1.pid"))[0]
		am := componentMetrics(b, home, localdc.ComponentAggregator+"-1")
		fleet := openFleetStore(b, home)
		clusters := []string{localdc.WorkloadClusterName(1), localdc.WorkloadClusterName(2)}
		kubeconfigs := make([]string, len(clusters))
		for i, c := range clusters {
			kubeconfigs[i] = localdc.KubeconfigPath(home, c)
		}
		rssBefore := residentMiB(b, aggPID)
		progress("console benchmark: aggregator %.0f MiB before the load; console at %s", rssBefore, console)

		// The load.
		layout := consoleLayout{clusters: clusters, nodes: nodes / len(clusters), pods: pods / len(clusters)}
		progress("%d Nodes in each workload cluster", layout.nodes)
		var nodesWG sync.WaitGroup
		for _, kc := range kubeconfigs {
			nodesWG.Go(func() { createNodes(b, kc, layout.nodes) })
		}
		nodesWG.Wait()
		for _, kc := range kubeconfigs {
			for _, ns := range append(layout.namespaces(), "churn") {
				if _, err := clientset(b, kc).CoreV1().Namespaces().Create(b.Context(),
					&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		}
		metricsBefore := am.scrape(b)
		loadBegan := time.Now()
		layout.create(b, kubeconfigs)
		lastCreate := time.Now()
		progress("created %d pods in %.0f s (%.0f pods/s); waiting for the store", layout.total(), lastCreate.Sub(loadBegan).Seconds(),
			float64(layout.total())/lastCreate.Sub(loadBegan).Seconds())
		inStore, _ := fleet.waitCount(b, layout, "", 30*time.Minute, true)
		lag := inStore.Sub(lastCreate)
		progress("every pod and Node in the store %.1f s after the last create; waiting for them Running there", lag.Seconds())
		// kwok's status writes are churn of their own; waited for a while.
		running, allRunning := fleet.waitCount(b, layout, "Running", 3*time.Minute, false)
		metricsLoaded := am.scrape(b)
		// The store holds what the API servers hold now: settle, then weigh.
		time.Sleep(10 * time.Second)
		runtime.GC()
		rssLoaded, peakLoaded := residentMiB(b, aggPID), peakMiB(b, aggPID)
		aggHeap := am.scrape(b).sum("go_memstats_heap_inuse_bytes", "") / (1 << 20)
		storeBytes := fileSizes(b, localdc.FleetStorePath(home), localdc.FleetStorePath(home)+"-wal")
		informerBytes, informerPods := informerHeap(b, kubeconfigs)

		// Filtered list: the console beside the API server.
		path := fmt.Sprintf("/pods?cluster=%s&namespace=%s&app=%s", clusters[0], layout.namespaceOf(0), layout.appOf(0))
		want := layout.groupSize(0)
		progress("listing %d pods 100 times: %s", want, path)
		consoleList, consoleBytes := timeConsoleList(b, console+path, want, 100)
		apiList, apiBytes := timeAPIList(b, kubeconfigs[0], layout.namespaceOf(0), layout.appOf(0), want, 100)

		// Change to browser while 100 pods/s churn.
		progress("churn: 100 pods/s for 60 s in %s/churn", clusters[0])
		metricsChurn := am.scrape(b)
		churn := runChurn(b, kubeconfigs[0], console+"/pods?cluster="+clusters[0]+"&namespace=churn", layout.nodes)
		metricsChurned := am.scrape(b)
		rssChurned, peakEnd := residentMiB(b, aggPID), peakMiB(b, aggPID)

		perPod := func(mib float64) float64 { return mib * (1 << 20) / float64(layout.total()) }
		loadDelta := promDelta{metricsLoaded, metricsBefore}
		churnDelta := promDelta{metricsChurned, metricsChurn}
		var table strings.Builder
		fmt.Fprintf(&table, "sizes: %d Nodes, %d pods over %d workload clusters (kwok); the list filter matches %d pods\n", layout.nodes*len(clusters), layout.total(), len(clusters), want)
		fmt.Fprintf(&table, "%-44s %14s   %s\n", "figure", "console", "peer")
		runningSaid := "all Running in the store"
		if !allRunning {
			runningSaid = "NOT all Running in the store (kwok) at"
		}
		fmt.Fprintf(&table, "%-44s %12.1f s   creates took %.1f s (%.0f pods/s); %s %.1f s after the last create\n",
			"store lag after the last create", lag.Seconds(), lastCreate.Sub(loadBegan).Seconds(), float64(layout.total())/lastCreate.Sub(loadBegan).Seconds(), runningSaid, running.Sub(lastCreate).Seconds())
		fmt.Fprintf(&table, "%-44s %10.0f B/pod  informer cache (full pods, Go heap in use) %.0f B/pod over %d pods\n",
			"aggregator RSS growth per pod", perPod(rssLoaded-rssBefore), informerBytes/float64(informerPods), informerPods)
		fmt.Fprintf(&table, "%-44s %10.0f MiB    before the load %.0f MiB, peak %.0f MiB (%.0f B/pod), Go heap in use %.0f MiB (%.0f B/pod)\n",
			"aggregator RSS loaded", rssLoaded, rssBefore, peakLoaded, perPod(peakLoaded-rssBefore), aggHeap, perPod(aggHeap))
		fmt.Fprintf(&table, "%-44s %10.0f B/pod  SQLite file and WAL %.0f MiB\n", "store size per pod", float64(storeBytes)/float64(layout.total()), float64(storeBytes)/(1<<20))
		fmt.Fprintf(&table, "%-44s %9.0f ms p50  API server list (JSON, full objects) p50 %.0f ms\n", fmt.Sprintf("console list of %d pods", want), ms(percentile(consoleList, 0.5)), ms(percentile(apiList, 0.5)))
		fmt.Fprintf(&table, "%-44s %9.0f ms p99  API server p99 %.0f ms\n", "", ms(percentile(consoleList, 0.99)), ms(percentile(apiList, 0.99)))
		fmt.Fprintf(&table, "%-44s %9.0f ms max  API server max %.0f ms\n", "", ms(consoleList[len(consoleList)-1]), ms(apiList[len(apiList)-1]))
		fmt.Fprintf(&table, "%-44s %10.1f MiB    API server %.1f MiB\n", "response size", float64(consoleBytes)/(1<<20), float64(apiBytes)/(1<<20))
		fmt.Fprintf(&table, "%-44s %9.0f ms p50  client-go watch p50 %.0f ms\n", "change to browser (100 pods/s churn)", ms(percentile(churn.browser, 0.5)), ms(percentile(churn.watch, 0.5)))
		fmt.Fprintf(&table, "%-44s %9.0f ms p99  watch p99 %.0f ms\n", "", ms(percentile(churn.browser, 0.99)), ms(percentile(churn.watch, 0.99)))
		fmt.Fprintf(&table, "%-44s %9.0f ms max  watch max %.0f ms\n", "", ms(churn.browser[len(churn.browser)-1]), ms(churn.watch[len(churn.watch)-1]))
		fmt.Fprintf(&table, "%-44s %14d   of %d created (%.0f creates/s, %.0f deletes/s achieved); watch missed %d; %d page updates\n",
			"pods never seen in the page", churn.created-len(churn.browser), churn.created, churn.createRate, churn.deleteRate, churn.created-len(churn.watch), churn.updates)
		fmt.Fprintf(&table, "aggregator during the load: %.0f events, %.0f rows written, %.0f flushes of mean %.0f ms; during the churn: %.0f events, %.0f rows, %.0f flushes of mean %.0f ms; RSS after the churn %.0f MiB, peak %.0f MiB\n",
			loadDelta.sum("strata_aggregator_events_received_total"), loadDelta.sum("strata_aggregator_rows_written_total"),
			loadDelta.sum("strata_aggregator_flush_duration_seconds_count"), loadDelta.mean("strata_aggregator_flush_duration_seconds")*1000,
			churnDelta.sum("strata_aggregator_events_received_total"), churnDelta.sum("strata_aggregator_rows_written_total"),
			churnDelta.sum("strata_aggregator_flush_duration_seconds_count"), churnDelta.mean("strata_aggregator_flush_duration_seconds")*1000,
			rssChurned, peakEnd)
		progress("console benchmark:\n%s", table.String())
		b.Logf("\n%s", table.String())

		b.ReportMetric(lag.Seconds(), "store-lag-s")
		b.ReportMetric(running.Sub(lastCreate).Seconds(), "store-running-lag-s")
		b.ReportMetric(float64(layout.total())/lastCreate.Sub(loadBegan).Seconds(), "create-pods/s")
		b.ReportMetric(perPod(rssLoaded-rssBefore), "agg-rss-B/pod")
		b.ReportMetric(perPod(peakLoaded-rssBefore), "agg-peak-B/pod")
		b.ReportMetric(rssLoaded, "agg-rss-MiB")
		b.ReportMetric(peakEnd, "agg-peak-MiB")
		b.ReportMetric(informerBytes/float64(informerPods), "peer-informer-B/pod")
		b.ReportMetric(float64(storeBytes)/float64(layout.total()), "store-B/pod")
		b.ReportMetric(ms(percentile(consoleList, 0.5)), "list-p50-ms")
		b.ReportMetric(ms(percentile(consoleList, 0.99)), "list-p99-ms")
		b.ReportMetric(ms(percentile(apiList, 0.5)), "peer-apilist-p50-ms")
		b.ReportMetric(ms(percentile(apiList, 0.99)), "peer-apilist-p99-ms")
		b.ReportMetric(ms(percentile(churn.browser, 0.5)), "browser-p50-ms")
		b.ReportMetric(ms(percentile(churn.browser, 0.99)), "browser-p99-ms")
		b.ReportMetric(ms(percentile(churn.watch, 0.5)), "peer-watch-p50-ms")
		b.ReportMetric(ms(percentile(churn.watch, 0.99)), "peer-watch-p99-ms")
		b.ReportMetric(float64(churn.created-len(churn.browser)), "browser-missed")

		if err := fleet.db.Close(); err != nil {
			b.Error(err)
		}
		up.interrupt(b)
		run(b, bin, "strata", "down", "--home", home)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// consoleLayout places the benchmark's pods: in each workload cluster,
// pods pods in groups of consoleGroup, group g in namespace bench-<g/2+1>
// with app bench-a or bench-b (so a namespace holds two apps and a filter
// on both selects one group), spread over Nodes kwok-node-0... round robin.
type consoleLayout struct {
	clusters    []string
	nodes, pods int
}

func (l consoleLayout) total() int               { return l.pods * len(l.clusters) }
func (l consoleLayout) groups() int              { return (l.pods + consoleGroup - 1) / consoleGroup }
func (l consoleLayout) namespaceOf(g int) string { return fmt.Sprintf("bench-%d", g/2+1) }
func (l consoleLayout) appOf(g int) string       { return "bench-" + string(rune('a'+g%2)) }
func (l consoleLayout) groupSize(g int) int      { return min(consoleGroup, l.pods-g*consoleGroup) }
func (l consoleLayout) namespaces() []string {
	var out []string
	for g := range l.groups() {
		if ns := l.namespaceOf(g); !slices.Contains(out, ns) {
			out = append(out, ns)
		}
	}
	return out
}

// create makes every pod, bound to its Node (no scheduler), with 16
// clients per cluster at once, each with its own rate limit.
func (l consoleLayout) create(b *testing.B, kubeconfigs []string) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		done    int
		failure error
	)
	for _, kc := range kubeconfigs {
		work := make(chan int, 1024)
		for range 16 {
			cs := clientset(b, kc)
			wg.Go(func() {
				for i := range work {
					g := i / consoleGroup
					_, err := cs.CoreV1().Pods(l.namespaceOf(g)).Create(context.Background(), benchPod(
						fmt.Sprintf("%s-%d", l.appOf(g), i), l.appOf(g), fmt.Sprintf("kwok-node-%d", i%l.nodes)), metav1.CreateOptions{})
					mu.Lock()
					done++
					if err != nil && failure == nil {
						failure = fmt.Errorf("creating pod %d in %s: %w", i, kc, err)
					}
					if done%10000 == 0 {
						progress("%d pods created", done)
					}
					mu.Unlock()
				}
			})
		}
		wg.Go(func() {
			defer close(work)
			for i := range l.pods {
				work <- i
			}
		})
	}
	wg.Wait()
	if failure != nil {
		b.Fatal(failure)
	}
}

func benchPod(name, app, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{appsv1alpha1.AppLabel: app}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
			Containers:                    []corev1.Container{{Name: "app", Image: "registry.example/" + app + ":1"}},
		},
	}
}

// promDelta is what counters of /metrics grew by between two scrapes.
type promDelta struct{ after, before promText }

func (d promDelta) sum(name string) float64 { return d.after.sum(name, "") - d.before.sum(name, "") }

// mean is a histogram's mean observation between the scrapes.
func (d promDelta) mean(histogram string) float64 {
	if n := d.sum(histogram + "_count"); n > 0 {
		return d.sum(histogram+"_sum") / n
	}
	return 0
}

// componentMetrics scrapes the /metrics of a strata serve process of the
// home (its metrics.bindAddress), as the hub's are.
func componentMetrics(b *testing.B, home, process string) *hubMetrics {
	b.Helper()
	raw, err := os.ReadFile(localdc.ComponentProcess{Name: process}.ConfigPath(home))
	if err != nil {
		b.Fatal(err)
	}
	var cfg struct {
		Metrics struct {
			BindAddress string `json:"bindAddress"`
		} `json:"metrics"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil || cfg.Metrics.BindAddress == "" {
		b.Fatalf("no metrics address in %s's configuration (%v):\n%s", process, err, raw)
	}
	return &hubMetrics{url: "http://" + cfg.Metrics.BindAddress + "/metrics"}
}

// fleetStore reads the aggregator's SQLite store beside it (WAL: readers
// in other processes run beside the writer).
type fleetStore struct{ db *sql.DB }

func openFleetStore(b *testing.B, home string) *fleetStore {
	b.Helper()
	db, _, err := sqldb.Open(b.Context(), localdc.FleetStorePath(home), "the fleet store")
	if err != nil {
		b.Fatal(err)
	}
	return &fleetStore{db: db}
}

// waitCount waits until the store holds every pod of the layout (in phase,
// when set) and every Node, and returns when it first saw them.
// Past the timeout it fails the benchmark when must, else returns false.
func (f *fleetStore) waitCount(b *testing.B, l consoleLayout, phase string, timeout time.Duration, must bool) (time.Time, bool) {
	b.Helper()
	in := "cluster IN ('" + strings.Join(l.clusters, "', '") + "')"
	podsQ := "SELECT count(*) FROM pods WHERE " + in + " AND namespace LIKE 'bench-%'"
	args := []any{}
	if phase != "" {
		podsQ += " AND phase = ?"
		args = append(args, phase)
	}
	nodesQ := "SELECT count(*) FROM nodes WHERE " + in + " AND name LIKE 'kwok-node-%'"
	began, said := time.Now(), time.Now()
	for {
		var pods, nodes int
		if err := f.db.QueryRowContext(b.Context(), podsQ, args...).Scan(&pods); err != nil {
			b.Fatalf("counting pods in the fleet store: %v", err)
		}
		if err := f.db.QueryRowContext(b.Context(), nodesQ).Scan(&nodes); err != nil {
			b.Fatalf("counting Nodes in the fleet store: %v", err)
		}
		now := time.Now()
		if pods == l.total() && nodes == l.nodes*len(l.clusters) {
			return now, true
		}
		if now.Sub(began) > timeout && !must {
			progress("after %s the fleet store holds %d pods %s of %d", timeout, pods, phase, l.total())
			return now, false
		}
		if now.Sub(began) > timeout {
			b.Fatalf("after %s the fleet store holds %d pods%s of %d and %d Nodes of %d", timeout, pods, phase, l.total(), nodes, l.nodes*len(l.clusters))
		}
		if now.Sub(said) > 30*time.Second {
			progress("the fleet store holds %d pods %s of %d, %d Nodes of %d", pods, phase, l.total(), nodes, l.nodes*len(l.clusters))
			said = now
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// fileSizes adds up the sizes of the files that exist.
func fileSizes(b *testing.B, paths ...string) int64 {
	var total int64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		total += fi.Size()
	}
	return total
}

// informerHeap is the peer of the aggregator's memory: a client-go
// informer cache of every pod of the clusters in this process, as a
// design that caches everything holds them (full objects, no transform).
// It returns the Go heap in use it added, after a collection, and how many
// pods it holds; the informers stop before it returns.
func informerHeap(b *testing.B, kubeconfigs []string) (float64, int) {
	b.Helper()
	progress("peer: informer caches of every pod")
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	ctx, cancel := context.WithCancel(b.Context())
	var (
		factories []informers.SharedInformerFactory
		stores    []cache.Store
	)
	for _, kc := range kubeconfigs {
		f := informers.NewSharedInformerFactory(clientset(b, kc), 0)
		stores = append(stores, f.Core().V1().Pods().Informer().GetStore())
		f.Start(ctx.Done())
		factories = append(factories, f)
	}
	for _, f := range factories {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				b.Fatalf("the informer of %v did not sync", typ)
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	after := ms.HeapInuse
	n := 0
	for _, s := range stores {
		n += len(s.ListKeys())
	}
	cancel()
	for _, f := range factories {
		f.Shutdown()
	}
	return float64(after) - float64(before), n
}

// timeConsoleList gets the console's page n times (after one unmeasured
// request), each timed to its last byte, checks it lists want pods, and
// returns the sorted times and the page's size.
func timeConsoleList(b *testing.B, url string, want, n int) ([]time.Duration, int) {
	b.Helper()
	get := func() (time.Duration, int) {
		began := time.Now()
		resp, err := http.Get(url) //nolint:gosec,noctx // the benchmark's own console
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		took := time.Since(began)
		_ = resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %v (status %d)", url, err, resp.StatusCode)
		}
		if rows := strings.Count(string(body), `<tr><th scope="row">`); rows != want {
			b.Fatalf("GET %s lists %d pods, want %d", url, rows, want)
		}
		return took, len(body)
	}
	_, size := get()
	times := make([]time.Duration, n)
	for i := range n {
		times[i], _ = get()
	}
	slices.Sort(times)
	return times, size
}

// timeAPIList is the peer of timeConsoleList: the API server lists the
// same pods by label, n times (after one unmeasured list), each timed to
// the last byte of the response (JSON, full objects, as kubectl gets
// them, not decoded); one decoded list checks the count.
func timeAPIList(b *testing.B, kubeconfig, namespace, app string, want, n int) ([]time.Duration, int) {
	b.Helper()
	cs := clientset(b, kubeconfig)
	selector := appsv1alpha1.AppLabel + "=" + app
	list, err := cs.CoreV1().Pods(namespace).List(b.Context(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		b.Fatal(err)
	}
	if len(list.Items) != want {
		b.Fatalf("the API server lists %d pods of %s in %s, want %d", len(list.Items), selector, namespace, want)
	}
	// A list that fails (the API server's 60 s timeout under load) counts
	// with the time it took, and is said.
	get := func() (time.Duration, int) {
		began := time.Now()
		raw, err := cs.CoreV1().RESTClient().Get().Namespace(namespace).Resource("pods").Param("labelSelector", selector).DoRaw(b.Context())
		if err != nil {
			progress("the API server's list failed after %s: %v", time.Since(began).Round(time.Millisecond), err)
		}
		return time.Since(began), len(raw)
	}
	_, size := get()
	times := make([]time.Duration, n)
	for i := range n {
		times[i], _ = get()
	}
	slices.Sort(times)
	return times, size
}

// churnResult is what the churn measured: the sorted latencies from each
// create's return to the pod in the page, and to a watch's ADDED event.
type churnResult struct {
	browser, watch         []time.Duration
	created, updates       int
	createRate, deleteRate float64
}

// The page's recorder: when each pod's name first appears in <main>, at
// load and after each live update.
const churnRecorder = `(() => {
  window.benchSeen = {};
  window.benchUpdates = 0;
  const scan = () => {
    const now = Date.now();
    document.querySelectorAll('main tbody th a').forEach(a => {
      const name = a.textContent.slice(a.textContent.indexOf('/') + 1);
      if (!(name in window.benchSeen)) { window.benchSeen[name] = now; }
    });
  };
  document.addEventListener('strata:updated', () => { window.benchUpdates++; scan(); });
  scan();
  return Object.keys(window.benchSeen).length;
})()`

// runChurn opens the console's page of a namespace churn in headless
// Chromium and, for 60 s, creates 50 pods a second there and deletes 50
// (the oldest first), 300 pods standing, from 32 clients at once.
func runChurn(b *testing.B, kubeconfig, page string, nodes int) churnResult {
	b.Helper()
	const (
		standing = 300
		period   = 10 * time.Millisecond // one operation: create and delete alternate
		length   = 60 * time.Second
	)
	cs := clientset(b, kubeconfig)
	var (
		mu      sync.Mutex
		queue   []string // the pods standing, oldest first
		created = map[string]time.Time{}
		added   = map[string]time.Time{}
	)
	for i := range standing {
		name := fmt.Sprintf("churn-pre-%d", i)
		if _, err := cs.CoreV1().Pods("churn").Create(b.Context(), benchPod(name, "churn", fmt.Sprintf("kwok-node-%d", i%nodes)), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		queue = append(queue, name)
	}
	// The peer: a plain watch of the namespace.
	w, err := cs.CoreV1().Pods("churn").Watch(b.Context(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	go func() {
		for ev := range w.ResultChan() {
			now := time.Now()
			if pod, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Added {
				mu.Lock()
				if _, seen := added[pod.Name]; !seen {
					added[pod.Name] = now
				}
				mu.Unlock()
			}
		}
	}()

	ctx := testutil.Chromium(b, 10*time.Minute)
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
		b.Fatalf("loading %s: %v", page, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[float64](`window.strataLoadedAt`)); err != nil {
		b.Fatal(err)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[int](churnRecorder))
	if err != nil {
		b.Fatal(err)
	}
	progress("the page lists %d pods at load; churning", shown)

	ops := make(chan int)
	var wg sync.WaitGroup
	var creates, deletes int
	for range 32 {
		wg.Go(func() {
			for op := range ops {
				if op%2 == 0 {
					name := fmt.Sprintf("churn-%d", op/2)
					if _, err := cs.CoreV1().Pods("churn").Create(context.Background(), benchPod(name, "churn", fmt.Sprintf("kwok-node-%d", op/2%nodes)), metav1.CreateOptions{}); err != nil {
						b.Errorf("creating %s: %v", name, err)
						continue
					}
					now := time.Now()
					mu.Lock()
					created[name] = now
					queue = append(queue, name)
					creates++
					mu.Unlock()
					continue
				}
				mu.Lock()
				name := queue[0]
				queue = queue[1:]
				mu.Unlock()
				if err := cs.CoreV1().Pods("churn").Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
					b.Errorf("deleting %s: %v", name, err)
					continue
				}
				mu.Lock()
				deletes++
				mu.Unlock()
			}
		})
	}
	began := time.Now()
	tick := time.NewTicker(period)
	for op := 0; time.Since(began) < length; op++ {
		<-tick.C
		ops <- op
	}
	tick.Stop()
	close(ops)
	wg.Wait()
	took := time.Since(began)
	progress("churned %d creates, %d deletes in %.1f s; waiting 10 s for the page", creates, deletes, took.Seconds())
	time.Sleep(10 * time.Second)

	seen, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]float64](`window.benchSeen`))
	if err != nil {
		b.Fatal(err)
	}
	updates, err := chromedp.Run(ctx, chromedp.Evaluate[int](`window.benchUpdates`))
	if err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	r := churnResult{created: len(created), updates: updates,
		createRate: float64(creates) / took.Seconds(), deleteRate: float64(deletes) / took.Seconds()}
	for name, at := range created {
		if ms, ok := seen[name]; ok {
			r.browser = append(r.browser, time.Duration(int64(ms)-at.UnixMilli())*time.Millisecond)
		}
		if t, ok := added[name]; ok {
			r.watch = append(r.watch, t.Sub(at))
		}
	}
	slices.Sort(r.browser)
	slices.Sort(r.watch)
	if len(r.browser) == 0 || len(r.watch) == 0 {
		b.Fatalf("of %d pods created, the page showed %d and the watch saw %d", len(created), len(r.browser), len(r.watch))
	}
	return r
}
