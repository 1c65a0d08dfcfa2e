package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
	"github.com/strata-dev/strata/internal/workload/fleetapp"
)

// storeNamespace is an app namespace on all three workload clusters.
const storeNamespace = `
apiVersion: apps.strata.dev/v1alpha1
kind: AppNamespace
metadata: {name: store}
spec:
  app: store
  tenant: stateless
  nodeProfile: general
  quota: {cpu: "40", memory: 80Gi}
  placement: {clusters: 3}
  owners:
  - {kind: Group, name: store-devs, role: edit}
`

// storeApp is the ten-line StatelessApp, declared once on the hub, with
// a short soak so that a release of three waves takes seconds.
const storeApp = `
apiVersion: apps.strata.dev/v1alpha1
kind: StatelessApp
metadata: {name: web, namespace: store}
spec:
  application: store-web
  appVersion: "1.0.0"
  replicas: 12
  resources: {cpu: 100m, memory: 128Mi}
  fleet:
    release: {soakSeconds: 10}
`

// multiClusters are the local datacenter's three workload clusters.
var multiClusters = []string{localdc.WorkloadClusterName(1), localdc.WorkloadClusterName(2), localdc.WorkloadClusterName(3)}

// TestMultiCluster runs an app over three workload clusters from the hub
// (issue 17): an AppNamespace placed on three clusters, a StatelessApp
// declared once on the hub and divided over them, a release to a crashing
// version that stops after its first wave naming the cluster, a rollback,
// a good release in three waves, a cordoned cluster emptied without the app
// falling below its minimum, and one cluster's API server stopped: its
// share started elsewhere, nothing deleted there, and the app back on it
// once it returns, with no dip.
func TestMultiCluster(t *testing.T) {
	t.Parallel()
	waitForSlot(t)
	bin := binDir(t)
	home := filepath.Join(t.TempDir(), "home")
	startUp(t, bin, home, "--workload-clusters", "3")
	hub := localdc.KubeconfigPath(home, localdc.HubName)
	hc := appsClient(t, hub)
	wcs := map[string]client.Client{}
	for _, c := range multiClusters {
		wcs[c] = appsClient(t, localdc.KubeconfigPath(home, c))
	}

	runKubectlApply(t, bin, hub, storeNamespace)
	an := &appsv1alpha1.AppNamespace{}
	poll(t, 2*time.Minute, "AppNamespace store Ready on three clusters", func(ctx context.Context) (bool, string) {
		if err := hc.Get(ctx, client.ObjectKey{Name: "store"}, an); err != nil {
			return false, err.Error()
		}
		return meta.IsStatusConditionTrue(an.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition) && len(an.Status.Clusters) == 3,
			fmt.Sprintf("clusters %v; %s", an.Status.Clusters, conditionsOf(an.Status.Conditions))
	})
	for _, p := range an.Status.Placements {
		t.Logf("placed on %s: %s", p.Cluster, p.Reason)
	}
	con := openConsole(t, home)

	// The owner applies the app once, to the hub, as a member of store-devs.
	applyAs(t, bin, hub, storeApp, "carol", "store-devs")
	waitHubApp(t, hc, "the app Ready, 4 replicas in each cluster", func(a *appsv1alpha1.StatelessApp) bool {
		return ready(a) && shares(a) == "4/4/4"
	})
	for _, c := range multiClusters {
		a := &appsv1alpha1.StatelessApp{}
		if err := wcs[c].Get(t.Context(), client.ObjectKey{Namespace: "store", Name: "web"}, a); err != nil {
			t.Fatalf("the app in %s: %v", c, err)
		}
		if a.Labels[appsv1alpha1.HubAppLabel] != "web" || a.Spec.Fleet != nil || a.Spec.Replicas != 4 {
			t.Errorf("the app in %s: labels %v, fleet %v, replicas %d; want the hub's label, no fleet, 4", c, a.Labels, a.Spec.Fleet, a.Spec.Replicas)
		}
	}

	t.Run("a crashing version stops after the first wave, naming the cluster", func(t *testing.T) {
		patchHubApp(t, bin, hub, `{"spec":{"appVersion":"2.0.0-crashloop"}}`)
		a := waitHubApp(t, hc, "the release paused on an App failure", func(a *appsv1alpha1.StatelessApp) bool {
			return a.Status.Release != nil && a.Status.Release.Phase == fleetapp.PhasePaused
		})
		rel := a.Status.Release
		canary := multiClusters[0]
		if rel.FailedCluster != canary || !strings.Contains(rel.Message, "App failure in cluster "+canary) || !strings.Contains(rel.Message, "CrashLoopBackOff") {
			t.Errorf("paused release %+v, want the App failure (CrashLoopBackOff) in %s named", rel, canary)
		}
		if c := meta.FindStatusCondition(a.Status.Conditions, appsv1alpha1.StatelessAppReleasedCondition); c == nil || c.Reason != appsv1alpha1.ReleasePausedReason {
			t.Errorf("Released condition %+v, want reason %s", c, appsv1alpha1.ReleasePausedReason)
		}
		for _, c := range multiClusters[1:] {
			if v := clusterVersion(t, wcs[c]); v != "1.0.0" {
				t.Errorf("%s runs %s after the first wave failed, want 1.0.0", c, v)
			}
		}
		testConsoleAppFailure(t, con, wcs[canary], canary)

		// A third version while paused is refused, and nothing of it rolls out.
		patchHubApp(t, bin, hub, `{"spec":{"appVersion":"3.0.0"}}`)
		waitHubApp(t, hc, "the new version blocked", func(a *appsv1alpha1.StatelessApp) bool {
			return a.Status.Release.Phase == fleetapp.PhaseBlocked
		})
		for _, c := range multiClusters {
			if v := clusterVersion(t, wcs[c]); v == "3.0.0" {
				t.Errorf("%s runs 3.0.0, asked for while the release was paused", c)
			}
		}

		// Rolled back with a field change: every cluster at once.
		patchHubApp(t, bin, hub, `{"spec":{"appVersion":"1.0.0"}}`)
		waitHubApp(t, hc, "rolled back", func(a *appsv1alpha1.StatelessApp) bool {
			return ready(a) && a.Status.Release.Phase == fleetapp.PhaseReleased && allAt(t, wcs, "1.0.0")
		})
	})

	t.Run("a good release goes in three waves, each soaked", func(t *testing.T) {
		start := time.Now()
		patchHubApp(t, bin, hub, `{"spec":{"appVersion":"1.1.0"}}`)
		waves := map[int32]time.Duration{}
		a := waitHubApp(t, hc, "released to the three clusters", func(a *appsv1alpha1.StatelessApp) bool {
			if rel := a.Status.Release; rel != nil && rel.AppVersion == "1.1.0" {
				if _, seen := waves[rel.Wave]; !seen {
					waves[rel.Wave] = time.Since(start)
				}
			}
			return ready(a) && a.Status.Release.AppVersion == "1.1.0" && a.Status.Release.Phase == fleetapp.PhaseReleased
		})
		took := time.Since(start)
		if rel := a.Status.Release; rel.Wave != 3 || len(rel.Released) != 3 || rel.Released[0] != multiClusters[0] {
			t.Errorf("release %+v, want 3 waves over the three clusters, %s first", rel, multiClusters[0])
		}
		if !allAt(t, wcs, "1.1.0") {
			t.Error("not every cluster runs 1.1.0 once released")
		}
		t.Logf("released in %s (soak 10 s per wave); waves started at %v", took.Round(time.Second), waves)
	})

	// Availability is sampled every 200 ms over the three clusters; a
	// cluster that cannot be read counts what it last showed, as its pods
	// keep serving while its API server does not answer.
	minimum := int32(12 - 2) // its PodDisruptionBudget: 10% of 12 unavailable, rounded up

	t.Run("cordon moves every replica off the cluster, never below the minimum", func(t *testing.T) {
		s := sampleAvailable(t, wcs)
		cordoned := multiClusters[2]
		start := time.Now()
		pluginRun(t, bin, hub, "cluster", "cordon", cordoned)
		waitHubApp(t, hc, "the replicas moved off "+cordoned, func(a *appsv1alpha1.StatelessApp) bool {
			return ready(a) && shares(a) == "6/6/0" && clusterReplicas(t, wcs[cordoned]) == 0
		})
		t.Logf("cordon of %s: every replica moved in %s", cordoned, time.Since(start).Round(time.Second))
		pluginRun(t, bin, hub, "cluster", "uncordon", cordoned)
		waitHubApp(t, hc, "the share back on "+cordoned, func(a *appsv1alpha1.StatelessApp) bool {
			return ready(a) && shares(a) == "4/4/4"
		})
		s.check(t, minimum)
	})

	t.Run("a cluster's API server stopped: its share elsewhere, nothing deleted there, back with no dip", func(t *testing.T) {
		s := sampleAvailable(t, wcs)
		down := multiClusters[1]
		con.open("/clusters")
		before, fresh := con.clusterRow(down)
		if !strings.HasPrefix(fresh, "fresh") {
			t.Errorf("the console's row of %s before its API server stopped: %q (%s), want fresh", down, before, fresh)
		}
		apiserver := clusterProcess(t, home, down, "kube-apiserver")
		stopped := time.Now()
		resume := freeze(t, apiserver)
		others := []client.Client{wcs[multiClusters[0]], wcs[multiClusters[2]]}
		poll(t, 3*time.Minute, "12 replicas available in the two other clusters", func(ctx context.Context) (bool, string) {
			n := availableIn(ctx, others...)
			return n >= 12, fmt.Sprintf("%d available", n)
		})
		t.Logf("the API server of %s stopped: its share ran elsewhere after %s", down, time.Since(stopped).Round(time.Second))
		a := waitHubApp(t, hc, down+" unreachable in the hub app's status", func(a *appsv1alpha1.StatelessApp) bool {
			return clusterState(a, down) == fleetapp.Unreachable
		})
		t.Logf("hub app while %s is down: %s", down, shares(a))
		// The console says the cluster's view is stale, and still shows
		// what it last knew of it.
		con.waitLive(down+" stale in the console", 2*time.Minute, func(string) bool {
			_, fresh := con.clusterRow(down)
			return strings.HasPrefix(fresh, "STALE")
		})
		// Its Ready column is the hub's own, fresh, judgement of the
		// cluster (it may say not Ready by now); the rest is what the
		// cluster itself last told.
		if cells, fresh := con.clusterRow(down); withoutReady(cells) != withoutReady(before) {
			t.Errorf("the console's row of %s while it is down is %q (%s), was %q: a stale view must keep what it knew", down, cells, fresh, before)
		} else {
			t.Logf("the console while %s is down: %s", down, fresh)
		}
		con.screenshot("clusters-stale")

		resume()
		back := time.Now()
		waitHubApp(t, hc, "the app back on "+down, func(a *appsv1alpha1.StatelessApp) bool {
			return ready(a) && shares(a) == "4/4/4" && clusterReplicas(t, wcs[multiClusters[0]]) == 4 && clusterReplicas(t, wcs[multiClusters[2]]) == 4
		})
		t.Logf("%s back: the app converged in %s", down, time.Since(back).Round(time.Second))
		s.check(t, minimum)
		if deletes := auditedDeletes(t, home, down, "store", stopped); len(deletes) > 0 {
			t.Errorf("%d deletions reached %s from the moment its API server stopped: %v", len(deletes), down, deletes)
		}
	})

	t.Run("kubectl strata shows the app per cluster", func(t *testing.T) {
		out := pluginRun(t, bin, hub, "status", "store")
		for _, want := range append([]string{"web", "Released"}, multiClusters...) {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl strata status store lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("bad input is a condition that says what is wrong", func(t *testing.T) {
		patchHubApp(t, bin, hub, fmt.Sprintf(`{"spec":{"fleet":{"weights":{%q:0,%q:0,%q:0}}}}`, multiClusters[0], multiClusters[1], multiClusters[2]))
		a := waitHubApp(t, hc, "weights summing to zero refused", func(a *appsv1alpha1.StatelessApp) bool {
			c := meta.FindStatusCondition(a.Status.Conditions, appsv1alpha1.StatelessAppReadyCondition)
			return c != nil && c.Reason == appsv1alpha1.InvalidWeightsReason
		})
		if shares(a) != "4/4/4" || !allAt(t, wcs, "1.1.0") {
			t.Errorf("weights summing to zero changed the clusters' apps: %s", shares(a))
		}
		runKubectlApply(t, bin, hub, strings.NewReplacer("name: store}", "name: wide}", "app: store", "app: wide", "clusters: 3", "clusters: 5").Replace(storeNamespace))
		wide := &appsv1alpha1.AppNamespace{}
		poll(t, time.Minute, "AppNamespace wide short of clusters", func(ctx context.Context) (bool, string) {
			if err := hc.Get(ctx, client.ObjectKey{Name: "wide"}, wide); err != nil {
				return false, err.Error()
			}
			c := meta.FindStatusCondition(wide.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition)
			return c != nil && c.Reason == appsv1alpha1.TooFewClustersReason && len(wide.Status.Clusters) == 3, conditionsOf(wide.Status.Conditions)
		})
	})

	t.Run("deleting the hub app deletes it from every cluster", func(t *testing.T) { testDeleteHubApp(t, bin, hub, hc, wcs) })
}

// testDeleteHubApp deletes the hub app as its owner would, past the
// hub's delete protection: the hub deletes it from every cluster (past
// theirs), then lets it go.
func testDeleteHubApp(t *testing.T, bin, hub string, hc client.Client, wcs map[string]client.Client) {
	out, err := runErr(bin, "kubectl", "--kubeconfig", hub, "delete", "statelessapp", "web", "-n", "store", "--as", "carol", "--as-group", "store-devs")
	if err == nil || !strings.Contains(out, "delete-protection") {
		t.Fatalf("deleting the hub app without the override: %v\n%s\nwant refused by the hub's delete protection", err, out)
	}
	run(t, bin, "kubectl", "--kubeconfig", hub, "annotate", "statelessapp", "web", "-n", "store", appsv1alpha1.AllowDeleteAnnotation+"=true",
		"--as", "carol", "--as-group", "store-devs")
	run(t, bin, "kubectl", "--kubeconfig", hub, "delete", "statelessapp", "web", "-n", "store", "--wait=false", "--as", "carol", "--as-group", "store-devs")
	poll(t, 2*time.Minute, "the app gone from the hub and every cluster", func(ctx context.Context) (bool, string) {
		var left []string
		if err := hc.Get(ctx, client.ObjectKey{Namespace: "store", Name: "web"}, &appsv1alpha1.StatelessApp{}); err == nil {
			left = append(left, "hub")
		}
		for _, c := range multiClusters {
			if err := wcs[c].Get(ctx, client.ObjectKey{Namespace: "store", Name: "web"}, &appsv1alpha1.StatelessApp{}); err == nil {
				left = append(left, c)
			}
		}
		return len(left) == 0, "still in " + strings.Join(left, ", ")
	})
}

// waitHubApp waits (3 minutes at most) until the hub's StatelessApp
// store/web satisfies done.
func waitHubApp(t *testing.T, hc client.Client, what string, done func(*appsv1alpha1.StatelessApp) bool) *appsv1alpha1.StatelessApp {
	t.Helper()
	a := &appsv1alpha1.StatelessApp{}
	poll(t, 3*time.Minute, what, func(ctx context.Context) (bool, string) {
		if err := hc.Get(ctx, client.ObjectKey{Namespace: "store", Name: "web"}, a); err != nil {
			return false, err.Error()
		}
		seen := fmt.Sprintf("shares %s; %s", shares(a), conditionsOf(a.Status.Conditions))
		if rel := a.Status.Release; rel != nil {
			seen += fmt.Sprintf("; release %s wave %d %s", rel.Phase, rel.Wave, rel.Message)
		}
		return a.Status.ObservedGeneration == a.Generation && done(a), seen
	})
	return a
}

// patchHubApp merge-patches the hub's StatelessApp as its owner would.
func patchHubApp(t *testing.T, bin, hub, patch string) {
	t.Helper()
	run(t, bin, "kubectl", "--kubeconfig", hub, "patch", "statelessapp", "web", "-n", "store", "--type=merge", "-p", patch,
		"--as", "carol", "--as-group", "store-devs")
}

// shares is the hub app's replicas per cluster, in the clusters' order:
// "4/4/4".
func shares(a *appsv1alpha1.StatelessApp) string {
	parts := make([]string, 0, len(multiClusters))
	for _, c := range multiClusters {
		n := "-"
		for _, s := range a.Status.Clusters {
			if s.Cluster == c {
				n = strconv.Itoa(int(s.Replicas))
			}
		}
		parts = append(parts, n)
	}
	return strings.Join(parts, "/")
}

func clusterState(a *appsv1alpha1.StatelessApp, cluster string) string {
	for _, s := range a.Status.Clusters {
		if s.Cluster == cluster {
			return s.State
		}
	}
	return ""
}

// clusterVersion is the version a cluster's app store/web runs.
func clusterVersion(t *testing.T, c client.Client) string {
	t.Helper()
	a := &appsv1alpha1.StatelessApp{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "store", Name: "web"}, a); err != nil {
		t.Fatal(err)
	}
	return a.Spec.AppVersion
}

// clusterReplicas counts the Ready replicas of a cluster's app store/web
// at its spec's replicas (-1 until its status caught up).
func clusterReplicas(t *testing.T, c client.Client) int32 {
	t.Helper()
	a := &appsv1alpha1.StatelessApp{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "store", Name: "web"}, a); err != nil {
		return -1
	}
	if a.Status.ObservedGeneration != a.Generation || a.Status.ReadyReplicas != a.Spec.Replicas || a.Status.Replicas != a.Spec.Replicas {
		return -1
	}
	return a.Spec.Replicas
}

// allAt says whether every cluster's app runs version, Ready.
func allAt(t *testing.T, wcs map[string]client.Client, version string) bool {
	t.Helper()
	for _, c := range multiClusters {
		a := &appsv1alpha1.StatelessApp{}
		if err := wcs[c].Get(t.Context(), client.ObjectKey{Namespace: "store", Name: "web"}, a); err != nil {
			return false
		}
		if a.Spec.AppVersion != version || a.Status.Stable.AppVersion != version || !ready(a) || a.Status.ObservedGeneration != a.Generation {
			return false
		}
	}
	return true
}

// availableIn sums the available replicas of the Deployments of store/web
// in the clusters (-1000 when one cannot be read).
func availableIn(ctx context.Context, cs ...client.Client) int32 {
	var n int32
	for _, c := range cs {
		m, err := availableOf(ctx, c)
		if err != nil {
			return -1000
		}
		n += m
	}
	return n
}

func availableOf(ctx context.Context, c client.Client) (int32, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	deps := &appsv1.DeploymentList{}
	if err := c.List(ctx, deps, client.InNamespace("store"), client.MatchingLabels{appsv1alpha1.StatelessAppLabel: "web"}); err != nil {
		return 0, err
	}
	var n int32
	for _, d := range deps.Items {
		n += d.Status.AvailableReplicas
	}
	return n, nil
}

// availability samples the app's available replicas over the clusters.
type availability struct {
	mu    sync.Mutex
	least int32
	at    time.Time
	// where is the least sample per cluster: "workload-1 4, ...".
	where   string
	samples int
	stop    func()
}

// sampleAvailable samples, every 200 ms until the test ends, the available
// replicas of store/web summed over the clusters; a cluster that does not
// answer counts what it last showed. It returns once every cluster has
// answered once.
func sampleAvailable(t *testing.T, wcs map[string]client.Client) *availability {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	s := &availability{least: 1 << 30}
	last := map[string]int32{}
	for _, c := range multiClusters {
		poll(t, 30*time.Second, "the app's Deployments in "+c, func(ctx context.Context) (bool, string) {
			n, err := availableOf(ctx, wcs[c])
			last[c] = n
			return err == nil, errString(err)
		})
	}
	done := make(chan struct{})
	s.stop = func() { cancel(); <-done }
	t.Cleanup(s.stop)
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			var (
				total int32
				parts []string
			)
			for _, c := range multiClusters {
				n, err := availableOf(ctx, wcs[c])
				if err == nil {
					last[c] = n
				}
				total += last[c]
				read := "read"
				if err != nil {
					read = "not read: " + err.Error()
				}
				parts = append(parts, fmt.Sprintf("%s %d (%s)", c, last[c], read))
			}
			s.mu.Lock()
			s.samples++
			if total < s.least {
				s.least, s.at, s.where = total, time.Now(), strings.Join(parts, ", ")
			}
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// check stops sampling and fails when the app fell below minimum.
func (s *availability) check(t *testing.T, minimum int32) {
	t.Helper()
	s.stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	t.Logf("%d samples every 200 ms: at least %d replicas available (minimum %d)", s.samples, s.least, minimum)
	if s.least < minimum {
		t.Errorf("only %d replicas were available at %s, below the app's minimum of %d: %s", s.least, s.at.Format(time.TimeOnly), minimum, s.where)
	}
}

// clusterProcess is the PID of a control-plane process of a cluster of the
// home (kwokctl's binary runtime keeps a pid file per component).
// withoutReady drops the Ready column of a cluster's row in the console.
func withoutReady(cells string) string {
	parts := strings.Split(cells, " | ")
	if len(parts) > 2 {
		parts = append(parts[:2], parts[3:]...)
	}
	return strings.Join(parts, " | ")
}

// freeze stops a process with SIGSTOP until the returned resume, or the
// end of the test, sends SIGCONT.
func freeze(t *testing.T, pid int) (resume func()) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume = func() {
		if !resumed {
			resumed = true
			if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(resume)
	return resume
}

func clusterProcess(t *testing.T, home, cluster, component string) int {
	t.Helper()
	pids := pidFiles(t, filepath.Join(localdc.ClusterDir(home, cluster), "pids", component+".pid"))
	return pids[0]
}

// auditedDeletes lists the deletions of pods, workloads or StatelessApps of
// a namespace that a cluster's API server received since a time.
func auditedDeletes(t *testing.T, home, cluster, namespace string, since time.Time) []string {
	t.Helper()
	path := localdc.AuditLogPath(home, cluster)
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the audit log of %s: %v", cluster, err)
	}
	defer f.Close() //nolint:errcheck // read only
	var deletes []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			auditEvent
			Received  metav1.MicroTime `json:"requestReceivedTimestamp"`
			ObjectRef struct {
				Resource  string `json:"resource"`
				Namespace string `json:"namespace"`
				Name      string `json:"name"`
			} `json:"objectRef"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit log %s: %v", path, err)
		}
		if strings.HasPrefix(e.Verb, "delete") && e.ObjectRef.Namespace == namespace && !e.Received.Time.Before(since) {
			deletes = append(deletes, fmt.Sprintf("%s %s/%s by %s", e.Verb, e.ObjectRef.Resource, e.ObjectRef.Name, e.User.Username))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return deletes
}
