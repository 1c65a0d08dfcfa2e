package e2e

import (
	"bufio"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
	"github.com/strata-dev/strata/internal/workload/guardrails"
	refstorev1 "github.com/strata-dev/strata/proto/strata/refstore/v1"
)

// kvPool is the Pool the store's pods run on, of %d storage Nodes, and
// the app's namespace.
const kvPool = `
apiVersion: fleet.strata.dev/v1alpha1
kind: Pool
metadata: {name: kv-storage}
spec: {cluster: workload-1, capacity: %d, nodeProfile: storage}
---
apiVersion: apps.strata.dev/v1alpha1
kind: AppNamespace
metadata: {name: kv}
spec: {app: kv, tenant: stateful, nodeProfile: storage, quota: {cpu: "64", memory: 256Gi}}
`

// kvApp is StatefulApp kv of %d replicas, maxConcurrentOperations %d,
// asking the shard manager at %s.
const kvApp = `
apiVersion: apps.strata.dev/v1alpha1
kind: StatefulApp
metadata: {name: kv, namespace: kv}
spec:
  application: kv-store
  version: "1.0.0"
  replicas: %d
  maxConcurrentOperations: %d
  resources: {cpu: "2", memory: 8Gi}
  storage: {size: 100Gi}
  shardManager:
    endpoint: "%s"
    transport: TLS
    tls: {caSecretRef: {name: kv-shard-manager-ca}}
`

// TestStatefulApps runs the reference key-value store (30 shards, 3
// replicas) as a StatefulApp in the local datacenter, with a client writing
// and reading throughout, its shard manager dialled over TLS with the CA
// of a Secret in the app's namespace: a MaintenanceRollout over its Nodes (strata killed
// and started again in the middle), a rolling update and a canary lose no
// acknowledged write and never leave a shard with fewer than 2 in-sync
// replicas; a plain eviction is refused, while a bare pod labelled like the
// app's blocks neither kubectl drain nor the rollout; with the shard manager
// down nothing is stopped and the app says why.
func TestStatefulApps(t *testing.T) {
	t.Parallel()
	waitForSlot(t)
	bin := binDir(t)
	home := filepath.Join(t.TempDir(), "home")
	upArgs := []string{"--workload-clusters", "1", "--pool-capacity", "0"}
	up := startUp(t, bin, home, upArgs...)
	hub := localdc.KubeconfigPath(home, localdc.HubName)
	wl := localdc.KubeconfigPath(home, localdc.WorkloadClusterName(1))
	kubectl := func(kubeconfig string, args ...string) string {
		t.Helper()
		return run(t, bin, "kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	}
	runKubectlApply(t, bin, hub, fmt.Sprintf(kvPool, 6))
	waitPool(t, bin, hub, "kv-storage", fleetv1alpha1.PoolReadyReason, 6)
	hc := appsClient(t, hub)
	poll(t, time.Minute, "AppNamespace kv Ready", func(ctx context.Context) (bool, string) {
		an := &appsv1alpha1.AppNamespace{}
		if err := hc.Get(ctx, client.ObjectKey{Name: "kv"}, an); err != nil {
			return false, err.Error()
		}
		return meta.IsStatusConditionTrue(an.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition), conditionsOf(an.Status.Conditions)
	})

	store, kv := startTLSStore(t, bin, wl)
	runKubectlApply(t, bin, wl, fmt.Sprintf(kvApp, 3, 1, store.addr))
	wc := appsClient(t, wl)
	waitStateful(t, wc, 3*time.Minute, "3 pods Ready", func(a *appsv1alpha1.StatefulApp) bool {
		return a.Status.ReadyReplicas == 3 && meta.IsStatusConditionTrue(a.Status.Conditions, appsv1alpha1.StatefulAppReadyCondition)
	})
	waitAllInSync(t, kv, 30)

	t.Run("a plain eviction is refused and says how to ask", func(t *testing.T) {
		err := clientset(t, wl).PolicyV1().Evictions("kv").Evict(t.Context(), &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "kv-0", Namespace: "kv"}})
		if !apierrors.IsTooManyRequests(err) || !strings.Contains(err.Error(), appsv1alpha1.StopRequestedAnnotation) {
			t.Errorf("evicting kv-0: %v; want 429 saying how to ask (%s)", err, appsv1alpha1.StopRequestedAnnotation)
		}
	})

	// Any owner with edit can make a pod that looks like a StatefulApp's;
	// only the pods a StatefulApp controls wait for its shard manager, so
	// such a pod holds up neither a person's drain nor the rollout below.
	free := nodesWithoutApp(t, wc)
	if len(free) < 2 {
		t.Fatalf("want 2 Nodes of Pool kv-storage without a pod of kv, found %v", free)
	}
	t.Run("a bare pod labelled like a StatefulApp's does not block kubectl drain", func(t *testing.T) {
		bare := bareLookalike("kv-bare", free[0])
		if err := wc.Create(t.Context(), bare); err != nil {
			t.Fatal(err)
		}
		// --force: kubectl drain evicts pods that nothing controls only
		// when told to; the Eviction API, and so the guardrail, judges them.
		out := run(t, bin, "kubectl", "--kubeconfig", wl, "drain", free[0], "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=2m")
		if !strings.Contains(out, "pod/kv-bare evicted") {
			t.Errorf("kubectl drain %s did not evict the bare pod:\n%s", free[0], out)
		}
		run(t, bin, "kubectl", "--kubeconfig", wl, "uncordon", free[0])
	})
	// The rollout below drains this one's Node too.
	lookalike := bareLookalike("kv-lookalike", free[1])
	if err := wc.Create(t.Context(), lookalike); err != nil {
		t.Fatal(err)
	}

	load := startLoad(t, kv)
	pods := watchIncarnations(t, wc)

	// strata is restarted inside a subtest but must outlive it: its cleanup
	// (Ctrl-C at the end) belongs to the whole test.
	parent := t
	t.Run("a maintenance rollout over the store's Nodes, strata killed in the middle", func(t *testing.T) {
		hubc := hubClient(t, hub)
		runKubectlApply(t, bin, hub, `
apiVersion: fleet.strata.dev/v1alpha1
kind: MaintenanceRollout
metadata: {name: storage-v2}
spec: {pools: [kv-storage], nodeConfig: storage-v2}
`)
		// The Pool's owner states the node config; the rollout moves the machines.
		run(t, bin, "kubectl", "--kubeconfig", hub, "patch", "pool", "kv-storage", "--type", "merge", "-p", `{"spec":{"nodeConfig":"storage-v2"}}`)
		waitRollout(t, hubc, "storage-v2", 8*time.Minute, func(ro *fleetv1alpha1.MaintenanceRollout) bool {
			return completeZones(ro) >= 2
		})
		up.kill(t)
		up = startUp(parent, bin, home, upArgs...)
		waitRollout(t, hubc, "storage-v2", 12*time.Minute, func(ro *fleetv1alpha1.MaintenanceRollout) bool {
			return meta.IsStatusConditionTrue(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition)
		})
		waitStateful(t, wc, 3*time.Minute, "3 pods Ready after the rollout", func(a *appsv1alpha1.StatefulApp) bool {
			return a.Status.ReadyReplicas == 3 && meta.IsStatusConditionTrue(a.Status.Conditions, appsv1alpha1.StatefulAppReadyCondition)
		})
		// Each pod was stopped exactly once, for its Node's maintenance: a
		// duplicate operation would show as a third incarnation.
		seen := pods.incarnations()
		for _, name := range []string{"kv-0", "kv-1", "kv-2"} {
			if seen[name] != 2 {
				t.Errorf("pod %s ran %d times during the rollout, want 2 (stopped once, for its Node's maintenance): %v", name, seen[name], seen)
			}
		}
		t.Log(kubectl(hub, "get", "mro", "storage-v2"))
		err := wc.Get(t.Context(), client.ObjectKeyFromObject(lookalike), &corev1.Pod{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("the bare pod labelled like kv's on node %s outlived the rollout: %v", free[1], err)
		}
		// Every approval came over TLS, and the app says so.
		app := &appsv1alpha1.StatefulApp{}
		if err := wc.Get(t.Context(), client.ObjectKey{Namespace: "kv", Name: "kv"}, app); err != nil {
			t.Fatal(err)
		}
		c := meta.FindStatusCondition(app.Status.Conditions, appsv1alpha1.ShardManagerReachableCondition)
		if app.Status.ShardManagerTransport != appsv1alpha1.TransportTLS || c == nil || c.Reason != appsv1alpha1.ShardManagerAnsweredReason ||
			!strings.Contains(c.Message, "over TLS") {
			t.Errorf("transport %q, ShardManagerReachable %+v; want TLS, answered over TLS", app.Status.ShardManagerTransport, c)
		}
		t.Log(kubectl(wl, "get", "stapp", "-n", "kv"))
	})

	t.Run("a rolling update, then a canary of one pod", func(t *testing.T) {
		kubectl(wl, "patch", "statefulapp", "kv", "-n", "kv", "--type=merge", "-p", `{"spec":{"version":"1.1.0"}}`)
		waitStateful(t, wc, 5*time.Minute, "every pod on 1.1.0", func(a *appsv1alpha1.StatefulApp) bool {
			return a.Status.UpdatedReplicas == 3 && a.Status.ReadyReplicas == 3 && versions(a) == "1.1.0,1.1.0,1.1.0" &&
				meta.IsStatusConditionTrue(a.Status.Conditions, appsv1alpha1.StatefulAppReadyCondition)
		})
		kubectl(wl, "patch", "statefulapp", "kv", "-n", "kv", "--type=merge", "-p", `{"spec":{"canary":{"version":"1.2.0","replicas":1}}}`)
		waitStateful(t, wc, 5*time.Minute, "kv-2 on the canary", func(a *appsv1alpha1.StatefulApp) bool {
			return a.Status.ReadyReplicas == 3 && versions(a) == "1.1.0,1.1.0,1.2.0" &&
				meta.IsStatusConditionTrue(a.Status.Conditions, appsv1alpha1.StatefulAppReadyCondition)
		})
	})

	t.Run("no acknowledged write lost, no shard below 2 in sync", func(t *testing.T) {
		res := load.stop(t)
		t.Logf("%d writes acknowledged, %d failed, %d reads; fewest in-sync replicas of a shard: %d (%d samples)",
			res.acked, res.failed, res.reads, res.minInSync, res.samples)
		if res.failed != 0 || res.badReads != 0 {
			t.Errorf("%d writes failed and %d reads were wrong during maintenance and updates, want none", res.failed, res.badReads)
		}
		if res.lost != 0 {
			t.Errorf("%d acknowledged writes were lost", res.lost)
		}
		if res.minInSync < 2 {
			t.Errorf("a shard fell to %d in-sync replicas", res.minInSync)
		}
		if res.acked == 0 || res.samples == 0 {
			t.Errorf("the load did nothing: %d writes, %d samples", res.acked, res.samples)
		}
	})

	t.Run("with the shard manager down nothing is stopped", func(t *testing.T) {
		before := podUIDs(t, wc)
		store.stop(t)
		kubectl(wl, "patch", "statefulapp", "kv", "-n", "kv", "--type=merge", "-p", `{"spec":{"version":"1.3.0","canary":null}}`)
		// Each call to the shard manager that gets no answer rewrites
		// ShardManagerReachable with its time: every distinct False message
		// is a pass, after the shard manager went down and on the update,
		// that asked, got nothing and had to decide. After each, no pod may
		// be stopping or gone and no operation approved.
		unanswered := map[string]bool{}
		waitStateful(t, wc, 3*time.Minute, fmt.Sprintf("%d calls to the shard manager without an answer", unansweredCalls),
			func(a *appsv1alpha1.StatefulApp) bool {
				if c := meta.FindStatusCondition(a.Status.Conditions, appsv1alpha1.ShardManagerReachableCondition); c != nil &&
					c.Status == metav1.ConditionFalse && !unanswered[c.Message] {
					unanswered[c.Message] = true
					t.Logf("call %d seen without an answer: %s", len(unanswered), c.Message)
				}
				if changed := podsChanged(t, wc, before); changed != "" {
					t.Fatalf("after %d calls to the shard manager seen without an answer, %s", len(unanswered), changed)
				}
				for _, p := range a.Status.Pods {
					if op := p.Operation; op != nil && op.State != appsv1alpha1.OperationRequested {
						t.Fatalf("after %d calls to the shard manager seen without an answer, the operation on %s is %s (%s), want Requested",
							len(unanswered), p.Name, op.State, op.Message)
					}
				}
				return len(unanswered) >= unansweredCalls
			})
		out := pluginRun(t, bin, hub, "status", "kv")
		if !strings.Contains(out, "unreachable") {
			t.Errorf("kubectl strata status kv does not say the shard manager is unreachable:\n%s", out)
		}
	})
}

// unansweredCalls is how many calls to the downed shard manager the test
// sees go unanswered before it is satisfied that nothing was stopped. Strata
// asks again after 2 s, doubling: the fourth call comes about 14 s after the
// first (three backoffs, each a decision to wait), half a minute when the
// test's once-a-second look misses one.
const unansweredCalls = 4

// startTLSStore runs the reference store of StatefulApp kv/kv serving TLS
// with a certificate for 127.0.0.1, its CA in the Secret the StatefulApp
// names (as a tenant would put it), and returns it with a client.
func startTLSStore(t testing.TB, bin, wl string) (*refstoreProcess, refstorev1.RefStoreServiceClient) {
	t.Helper()
	certs := t.TempDir()
	ca, certFile, keyFile, err := guardrails.Certificates(certs, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(certs, "shard-manager-ca.pem")
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, bin, "kubectl", "--kubeconfig", wl, "-n", "kv", "create", "secret", "generic", "kv-shard-manager-ca", "--from-file=ca.crt="+caFile)
	store := startRefstore(t, bin, wl, "--tls-cert-file", certFile, "--tls-key-file", keyFile)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("the shard manager's CA does not parse")
	}
	conn, err := grpc.NewClient(store.addr, grpc.WithTransportCredentials(credentials.NewClientTLSFromCert(pool, "")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return store, refstorev1.NewRefStoreServiceClient(conn)
}

// waitAllInSync waits until the store has its shards, each with 3
// in-sync replicas.
func waitAllInSync(t testing.TB, kv refstorev1.RefStoreServiceClient, shards int) {
	t.Helper()
	poll(t, 3*time.Minute, "every shard with 3 in-sync replicas", func(ctx context.Context) (bool, string) {
		s, err := kv.Sample(ctx, &refstorev1.SampleRequest{})
		if err != nil {
			return false, err.Error()
		}
		for _, sh := range s.GetShards() {
			if sh.GetInSync() < 3 {
				return false, fmt.Sprintf("shard %d has %d in sync", sh.GetShard(), sh.GetInSync())
			}
		}
		return len(s.GetShards()) == shards, fmt.Sprintf("%d shards", len(s.GetShards()))
	})
}

// refstoreProcess is `strata refstore serve`, run apart from strata so that
// killing strata does not kill the data system.
type refstoreProcess struct {
	cmd  *exec.Cmd
	addr string
	done chan error
}

// nodesWithoutApp lists the Nodes of Pool kv-storage that run no pod of
// StatefulApp kv, sorted.
func nodesWithoutApp(t *testing.T, c client.Client) []string {
	t.Helper()
	nodes := &corev1.NodeList{}
	if err := c.List(t.Context(), nodes, client.MatchingLabels{fleetv1alpha1.PoolLabel: "kv-storage"}); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, p := range podsOf(t, c) {
		used[p.Spec.NodeName] = true
	}
	var free []string
	for _, n := range nodes.Items {
		if !used[n.Name] {
			free = append(free, n.Name)
		}
	}
	slices.Sort(free)
	return free
}

func podsOf(t *testing.T, c client.Client) []corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := c.List(t.Context(), pods, client.InNamespace("kv"), client.MatchingLabels{appsv1alpha1.StatefulAppLabel: "kv"}); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

// bareLookalike is a pod of namespace kv on node, labelled as StatefulApp
// kv labels its pods, that nothing controls. Its name is not kv-<ordinal>,
// so that neither the StatefulApp controller nor the reference store takes
// it for one of the app's.
func bareLookalike(name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kv", Name: name, Labels: map[string]string{
			appsv1alpha1.StatefulAppLabel: "kv", appsv1alpha1.AppLabel: "kv",
		}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "app", Image: "registry.example/lookalike:1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
			}},
		}}},
	}
}

func startRefstore(t testing.TB, bin, kubeconfig string, flags ...string) *refstoreProcess {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "strata"), append([]string{"refstore", "serve", "--kubeconfig", kubeconfig,
		"--namespace", "kv", "--app", "kv", "--listen", "127.0.0.1:0", "--restart-hold", "0s"}, flags...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(t.TempDir(), "refstore.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &refstoreProcess{cmd: cmd, done: make(chan error, 1)}
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- sc.Text()
		}
		close(first)
		for sc.Scan() {
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			if err := <-p.done; err != nil {
				t.Logf("strata refstore serve exited with %v", err)
			}
		}
	})
	select {
	case line := <-first:
		i := strings.LastIndex(line, " on ")
		if i < 0 {
			t.Fatalf("strata refstore serve said %q", line)
		}
		p.addr = strings.TrimSpace(line[i+len(" on "):])
	case <-time.After(time.Minute):
		t.Fatal("strata refstore serve did not start within a minute")
	}
	return p
}

func (p *refstoreProcess) stop(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("strata refstore serve exited with %v after SIGTERM", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("strata refstore serve did not stop within a minute")
	}
}

// load writes and reads throughout, and samples the shards' in-sync counts.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kv     refstorev1.RefStoreServiceClient

	mu       sync.Mutex
	acked    map[string]string
	failed   int
	reads    int
	badReads int
	minISR   int32
	samples  int
	firstErr error
}

type loadResult struct {
	acked, failed, reads, badReads, lost, samples int
	minInSync                                     int32
}

func startLoad(t testing.TB, kv refstorev1.RefStoreServiceClient) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, kv: kv, acked: map[string]string{}, minISR: 1 << 20}
	l.wg.Go(func() { // the writer, with a read of an earlier write after each
		for i := 0; ctx.Err() == nil; i++ {
			key, value := fmt.Sprintf("key-%06d", i), fmt.Sprintf("value-%d-%d", i, time.Now().UnixNano())
			wctx, done := context.WithTimeout(ctx, 10*time.Second)
			_, err := kv.Put(wctx, &refstorev1.PutRequest{Key: key, Value: []byte(value)})
			done()
			l.mu.Lock()
			switch {
			case err == nil:
				l.acked[key] = value
			case ctx.Err() == nil:
				l.failed++
				if l.firstErr == nil {
					l.firstErr = err
					t.Logf("write %s failed: %v", key, err)
				}
			}
			l.mu.Unlock()
			if i > 0 && err == nil {
				earlier := fmt.Sprintf("key-%06d", i/2)
				l.mu.Lock()
				want, ok := l.acked[earlier]
				l.mu.Unlock()
				if got, err := kv.Get(ctx, &refstorev1.GetRequest{Key: earlier}); ok && ctx.Err() == nil {
					l.mu.Lock()
					l.reads++
					if err != nil || !got.GetFound() || string(got.GetValue()) != want {
						l.badReads++
					}
					l.mu.Unlock()
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	l.wg.Go(func() { // the sampler
		for ctx.Err() == nil {
			if s, err := kv.Sample(ctx, &refstorev1.SampleRequest{}); err == nil {
				l.mu.Lock()
				for _, sh := range s.GetShards() {
					l.minISR = min(l.minISR, sh.GetInSync())
				}
				l.samples++
				l.mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return l
}

// stop ends the load and reads every acknowledged write back.
func (l *load) stop(t testing.TB) loadResult {
	l.cancel()
	l.wg.Wait()
	res := loadResult{acked: len(l.acked), failed: l.failed, reads: l.reads, badReads: l.badReads, samples: l.samples, minInSync: l.minISR}
	for key, want := range l.acked {
		got, err := l.kv.Get(t.Context(), &refstorev1.GetRequest{Key: key})
		if err != nil || !got.GetFound() || string(got.GetValue()) != want {
			res.lost++
			if res.lost <= 5 {
				t.Logf("acknowledged %s=%s, read back %v (found %t): %v", key, want, string(got.GetValue()), got.GetFound(), err)
			}
		}
	}
	return res
}

// incarnations counts, per pod name of the app, the pod UIDs seen.
type incarnations struct {
	mu   sync.Mutex
	uids map[string]map[string]bool
}

func watchIncarnations(t *testing.T, c client.Client) *incarnations {
	in := &incarnations{uids: map[string]map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			pods := &corev1.PodList{}
			if err := c.List(ctx, pods, client.InNamespace("kv"), client.MatchingLabels{appsv1alpha1.StatefulAppLabel: "kv"}); err == nil {
				in.mu.Lock()
				for _, p := range pods.Items {
					if in.uids[p.Name] == nil {
						in.uids[p.Name] = map[string]bool{}
					}
					in.uids[p.Name][string(p.UID)] = true
				}
				in.mu.Unlock()
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return in
}

func (in *incarnations) incarnations() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := map[string]int{}
	for name, uids := range in.uids {
		out[name] = len(uids)
	}
	return out
}

func podUIDs(t *testing.T, c client.Client) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range podsOf(t, c) {
		out[p.Name] = string(p.UID)
	}
	return out
}

// podsChanged says how the app's pods differ from before (name -> UID):
// a pod gone, made again or being deleted; empty when none.
func podsChanged(t *testing.T, c client.Client, before map[string]string) string {
	t.Helper()
	var changes []string
	now := map[string]bool{}
	for _, p := range podsOf(t, c) {
		now[p.Name] = true
		switch uid, ok := before[p.Name]; {
		case !ok:
			changes = append(changes, p.Name+" appeared")
		case uid != string(p.UID):
			changes = append(changes, p.Name+" was made again")
		case p.DeletionTimestamp != nil:
			changes = append(changes, p.Name+" is being deleted")
		}
	}
	for name := range before {
		if !now[name] {
			changes = append(changes, name+" is gone")
		}
	}
	slices.Sort(changes)
	return strings.Join(changes, ", ")
}

// versions lists the pods' versions by ordinal, as the status has them.
func versions(a *appsv1alpha1.StatefulApp) string {
	var vs []string
	for _, p := range a.Status.Pods {
		vs = append(vs, p.Version)
	}
	return strings.Join(vs, ",")
}

func waitStateful(t *testing.T, c client.Client, timeout time.Duration, what string, done func(*appsv1alpha1.StatefulApp) bool) {
	t.Helper()
	a := &appsv1alpha1.StatefulApp{}
	poll(t, timeout, "StatefulApp kv: "+what, func(ctx context.Context) (bool, string) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "kv", Name: "kv"}, a); err != nil {
			return false, err.Error()
		}
		var ops []string
		for _, p := range a.Status.Pods {
			if p.Operation != nil {
				ops = append(ops, fmt.Sprintf("%s: %s %s (%s)", p.Name, p.Operation.Kind, p.Operation.State, p.Operation.Message))
			}
		}
		return a.Status.ObservedGeneration == a.Generation && done(a),
			fmt.Sprintf("ready %d, versions %s; %s; operations: %s", a.Status.ReadyReplicas, versions(a), conditionsOf(a.Status.Conditions), strings.Join(ops, "; "))
	})
}
