package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/localdc"
	"github.com/strata-dev/strata/internal/workload/appcache"
)

// BenchmarkComponents measures the production shape of the local
// datacenter with two replicas of each controller manager: the resident
// memory of each component process at rest and once a Pool of 1,000 Nodes
// is ready, and how long the hub's and the apps' leadership takes to move
// to another replica after kill -9 of the leader (the broker's failover is
// measured by internal/cli/serve's TestBrokerFailover, see
// docs/benchmarks.md).
//
//	STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkComponents -benchtime 1x -timeout 30m -v
func BenchmarkComponents(b *testing.B) {
	const nodes = 1000
	bin := binDir(b)
	for b.Loop() {
		home := filepath.Join(b.TempDir(), "home")
		up := startUp(b, bin, home, "--workload-clusters", "1", "--pool-capacity", "0", "--join-duration", "1ms", "--replicas", "2")
		hub := localdc.KubeconfigPath(home, localdc.HubName)
		waitLeaders(b, bin, home)
		rest := componentsMemory(b, bin, home, up.cmd.Process.Pid)

		createReadyPool(b, bin, hub, "scale", nodes)
		busy := componentsMemory(b, bin, home, up.cmd.Process.Pid)
		b.Logf("%-28s %12s %16s", "process", "at rest MiB", "1,000 Nodes MiB")
		for _, name := range sortedKeys(rest) {
			b.Logf("%-28s %12.0f %16.0f", name, rest[name], busy[name])
		}

		for _, component := range []string{localdc.ComponentHub, localdc.ComponentApps} {
			took := failover(b, bin, home, component)
			b.Logf("%s: another replica leads %s after kill -9 of the leader", component, took.Round(10*time.Millisecond))
			b.ReportMetric(took.Seconds(), component+"-failover-s")
		}
		up.interrupt(b)
		run(b, bin, "strata", "down", "--home", home)
	}
}

// componentsMemory is the resident memory of each component process (by
// its name in `strata status`) and of strata up itself.
func componentsMemory(b *testing.B, bin, home string, upPID int) map[string]float64 {
	b.Helper()
	state, out, err := strataStatus(b, bin, home)
	if err != nil {
		b.Fatalf("strata status: %v\n%s", err, out)
	}
	mem := map[string]float64{"strata up": residentMiB(b, upPID)}
	for _, c := range state.Components {
		if !c.Alive {
			b.Fatalf("component %s is not running:\n%s", c.Name, out)
		}
		mem[c.Name] = residentMiB(b, c.PID)
	}
	return mem
}

// waitLeaders waits until every component process is ready and each
// leader-elected group has a leader.
func waitLeaders(b *testing.B, bin, home string) {
	b.Helper()
	var last string
	err := wait.PollUntilContextTimeout(b.Context(), time.Second, 3*time.Minute, true, func(context.Context) (bool, error) {
		state, out, _ := strataStatus(b, bin, home)
		last = out
		leaders := map[string]int{}
		for _, c := range state.Components {
			if !c.Alive || !c.Ready {
				return false, nil
			}
			if c.Leader != nil && *c.Leader {
				leaders[c.Component+"/"+c.Cluster]++
			}
		}
		return len(state.Components) > 0 && leaders[localdc.ComponentHub+"/"+localdc.HubName] == 1, nil
	})
	if err != nil {
		b.Fatalf("the components did not all become ready with a leader: %v\n%s", err, last)
	}
}

// failover kills -9 the leading process of component and returns how long
// until another process of it leads.
func failover(b *testing.B, bin, home, component string) time.Duration {
	b.Helper()
	leader := func(notPID int) (localdc.ComponentState, bool) {
		state, _, _ := strataStatus(b, bin, home)
		for _, c := range state.Components {
			if c.Component == component && c.PID != notPID && c.Alive && c.Leader != nil && *c.Leader {
				return c, true
			}
		}
		return localdc.ComponentState{}, false
	}
	var old localdc.ComponentState
	if err := wait.PollUntilContextTimeout(b.Context(), 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		var ok bool
		old, ok = leader(0)
		return ok, nil
	}); err != nil {
		b.Fatalf("no %s process leads: %v", component, err)
	}
	killed := time.Now()
	if err := syscall.Kill(old.PID, syscall.SIGKILL); err != nil {
		b.Fatalf("kill -9 %s (pid %d): %v", old.Name, old.PID, err)
	}
	if err := wait.PollUntilContextTimeout(b.Context(), 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		_, ok := leader(old.PID)
		return ok, nil
	}); err != nil {
		b.Fatalf("no other %s process leads a minute after kill -9 of %s: %v", component, old.Name, err)
	}
	return time.Since(killed)
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// BenchmarkCacheMemory measures what each component holds per cached Node
// and per cached pod: one workload cluster, a Pool of
// STRATA_BENCH_CACHE_NODES kwok Nodes (500), then StatelessApps of
// STRATA_BENCH_CACHE_PODS pods in all (10,000); each process's resident
// memory and Go heap in use (its /metrics) at rest, with the Nodes, and
// with the pods, 30 s after each step (docs/benchmarks.md, "Controller
// memory per cached Pod and Node"). The pods get STRATA_BENCH_CACHE_MINUTES
// (30) to be Ready; the figures are taken where they got, per pod created.
// Run it with the binaries before and after a change (STRATA_BIN_DIR) for
// the comparison.
//
//	STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkCacheMemory -benchtime 1x -timeout 60m -v
func BenchmarkCacheMemory(b *testing.B) {
	l := fleetLoad{
		nodes:       benchEnvInt(b, "STRATA_BENCH_CACHE_NODES", 500),
		pods:        benchEnvInt(b, "STRATA_BENCH_CACHE_PODS", 10000),
		appsTimeout: time.Duration(benchEnvInt(b, "STRATA_BENCH_CACHE_MINUTES", 30)) * time.Minute,
	}
	bin := binDir(b)
	for b.Loop() {
		l.run(b, bin).report(b, l)
	}
}

// BenchmarkCachedObjects measures the bytes a cache holds for each kwok Pod
// and Node (testdata/kwok-pod.json, testdata/kwok-node.json: a pod of a
// StatelessApp and a Node of a Pool, read from a local datacenter), as each
// component caches them before and after the trimming of issue 19: whole,
// without managed fields (controller-runtime's TransformStripManagedFields)
// and trimmed to what its controllers read. Each object is decoded from
// JSON afresh (its own strings, as an informer's), transformed, and kept;
// the heap in use after a collection, per object. No cluster: it runs in
// seconds, beside BenchmarkCacheMemory's processes' figures.
//
//	go test ./test/e2e -run '^$' -bench BenchmarkCachedObjects -benchtime 1x -v
func BenchmarkCachedObjects(b *testing.B) {
	podJSON, err := os.ReadFile(filepath.Join("testdata", "kwok-pod.json"))
	if err != nil {
		b.Fatal(err)
	}
	nodeJSON, err := os.ReadFile(filepath.Join("testdata", "kwok-node.json"))
	if err != nil {
		b.Fatal(err)
	}
	appsPod, appsNode := appsTransform(b, &corev1.Pod{}), appsTransform(b, &corev1.Node{})
	strip := cache.TransformStripManagedFields()
	decodePod := func() any {
		p := &corev1.Pod{}
		if err := json.Unmarshal(podJSON, p); err != nil {
			b.Fatal(err)
		}
		return p
	}
	decodeNode := func() any {
		n := &corev1.Node{}
		if err := json.Unmarshal(nodeJSON, n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	// Before issue 19 the apps cache kept every container status and Node
	// condition whole; the hub kept whole Nodes without managed fields.
	// (its labels, owners and strings as decoded, every condition).
	appsPodBefore := func(in any) (any, error) {
		p := in.(*corev1.Pod)
		labels, owners, conditions, statuses := p.Labels, slices.Clone(p.OwnerReferences), p.Status.Conditions, p.Status.ContainerStatuses
		out, err := appsPod(in)
		o := out.(*corev1.Pod)
		o.Labels, o.OwnerReferences, o.Status.Conditions, o.Status.ContainerStatuses = labels, owners, conditions, statuses
		return out, err
	}
	appsNodeBefore := func(in any) (any, error) {
		labels, conditions := in.(*corev1.Node).Labels, in.(*corev1.Node).Status.Conditions
		out, err := appsNode(in)
		out.(*corev1.Node).Labels, out.(*corev1.Node).Status.Conditions = labels, conditions
		return out, err
	}
	cases := []struct {
		name      string
		decode    func() any
		transform toolscache.TransformFunc
	}{
		{"pod/whole", decodePod, nil},
		{"pod/no-managed-fields", decodePod, strip},
		{"pod/apps-before", decodePod, appsPodBefore},
		{"pod/apps-after", decodePod, appsPod},
		{"node/whole", decodeNode, nil},
		{"node/no-managed-fields (hub before)", decodeNode, strip},
		{"node/hub-after", decodeNode, remote.TrimNode},
		{"node/apps-before", decodeNode, appsNodeBefore},
		{"node/apps-after", decodeNode, appsNode},
	}
	const n = 5000
	for b.Loop() {
		for _, c := range cases {
			per := heapPerObject(n, func() any {
				obj := c.decode()
				if c.transform == nil {
					return obj
				}
				out, err := c.transform(obj)
				if err != nil {
					b.Fatal(err)
				}
				return out
			})
			b.Logf("%-40s %6.0f B", c.name, per)
			b.ReportMetric(per, strings.NewReplacer(" ", "", "(", "-", ")", "").Replace(c.name)+"-B")
		}
	}
}

// appsTransform is the apps cache's transform of obj's kind.
func appsTransform(b *testing.B, obj client.Object) toolscache.TransformFunc {
	for k, o := range appcache.Options().ByObject {
		if reflect.TypeOf(k) == reflect.TypeOf(obj) && o.Transform != nil {
			return o.Transform
		}
	}
	b.Fatalf("the apps cache has no transform of %T", obj)
	return nil
}

// heapPerObject is the heap in use, after a collection, per object of n
// that newObject makes and that are kept.
func heapPerObject(n int, newObject func() any) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	kept := make([]any, 0, n)
	for range n {
		kept = append(kept, newObject())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(kept)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}
