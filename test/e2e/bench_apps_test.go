package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
)

// BenchmarkOnboarding measures app onboarding: 200 AppNamespaces applied to
// the hub at once, each timed from its create to the first moment it is
// seen Ready (its namespace, RoleBindings and quota in a workload cluster).
//
//	STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkOnboarding -benchtime 1x -timeout 30m
func BenchmarkOnboarding(b *testing.B) {
	const n = 200
	bin := binDir(b)
	for b.Loop() {
		home := filepath.Join(b.TempDir(), "home")
		up := startUp(b, bin, home)
		hc := appsClient(b, localdc.KubeconfigPath(home, localdc.HubName))
		// The default Pools must be Ready first: routing needs their room.
		waitFor(b, 3*time.Minute, func(ctx context.Context) bool {
			out, err := runErr(bin, "kubectl", "--kubeconfig", localdc.KubeconfigPath(home, localdc.HubName), "get", "pools", "-o", "jsonpath={.items[*].status.ready}")
			return err == nil && out == "40 40"
		})
		created := make([]time.Time, n)
		ready := make([]time.Time, n)
		var mu sync.Mutex
		done := make(chan struct{})
		go func() { // the observer: every 100 ms, which are Ready now
			defer close(done)
			seen := 0
			for seen < n {
				list := &appsv1alpha1.AppNamespaceList{}
				if err := hc.List(b.Context(), list); err == nil {
					now := time.Now()
					mu.Lock()
					for _, a := range list.Items {
						var i int
						if _, err := fmt.Sscanf(a.Name, "bench-%d", &i); err != nil || !ready[i].IsZero() {
							continue
						}
						if meta.IsStatusConditionTrue(a.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition) {
							ready[i] = now
							seen++
						}
					}
					mu.Unlock()
				}
				select {
				case <-b.Context().Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		before := residentMiB(b, up.cmd.Process.Pid)
		cpu0 := cpuByComponent(home)
		began := time.Now()
		work := make(chan int)
		var wg sync.WaitGroup
		for range 10 { // ten clients applying at once
			wg.Go(func() {
				for i := range work {
					a := &appsv1alpha1.AppNamespace{
						ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i)},
						Spec: appsv1alpha1.AppNamespaceSpec{
							App: fmt.Sprintf("app-%d", i), Tenant: appsv1alpha1.StatelessTenant, NodeProfile: "general",
							Quota:  corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi")},
							Owners: []appsv1alpha1.Owner{{Kind: appsv1alpha1.GroupSubject, Name: fmt.Sprintf("team-%d", i), Role: appsv1alpha1.EditRole}},
						},
					}
					mu.Lock()
					created[i] = time.Now()
					mu.Unlock()
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
		select {
		case <-done:
		case <-time.After(10 * time.Minute):
			b.Fatal("not every AppNamespace was Ready within 10 minutes")
		}
		total := time.Since(began)
		reportCPU(b, "onboarding", cpu0, cpuByComponent(home))
		latencies := make([]time.Duration, n)
		for i := range n {
			latencies[i] = ready[i].Sub(created[i])
		}
		slices.Sort(latencies)
		b.ReportMetric(latencies[n/2].Seconds(), "p50-s")
		b.ReportMetric(latencies[n*99/100].Seconds(), "p99-s")
		b.ReportMetric(latencies[n-1].Seconds(), "max-s")
		b.ReportMetric(total.Seconds(), "all-ready-s")
		b.ReportMetric(before, "strata-rss-before-MiB")
		b.ReportMetric(residentMiB(b, up.cmd.Process.Pid), "strata-rss-MiB")
		up.interrupt(b)
		run(b, bin, "strata", "down", "--home", home)
	}
}

// BenchmarkStatelessApp1000 measures the time for a StatelessApp of 1,000
// replicas to be Ready: expansion, the Deployment, scheduling over the 40
// Nodes of the default Pool (spread over zones), kwok starting the pods
// (an init container, the app and a sidecar each), and the status judged;
// then, in the same datacenter, a plain Deployment of 1,000 one-container
// pods, for the ratio.
//
//	STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkStatelessApp1000 -benchtime 1x -timeout 30m
func BenchmarkStatelessApp1000(b *testing.B) {
	const replicas = 1000
	bin := binDir(b)
	for b.Loop() {
		home := filepath.Join(b.TempDir(), "home")
		up := startUp(b, bin, home, "--workload-clusters", "1")
		hub := localdc.KubeconfigPath(home, localdc.HubName)
		runKubectlApply(b, bin, hub, `
apiVersion: apps.strata.dev/v1alpha1
kind: AppNamespace
metadata: {name: big}
spec: {app: big, tenant: stateless, nodeProfile: general, quota: {cpu: "400", memory: 1Ti}}
`)
		wl := localdc.KubeconfigPath(home, localdc.WorkloadClusterName(1))
		wc := appsClient(b, wl)
		waitFor(b, 3*time.Minute, func(ctx context.Context) bool {
			return wc.Get(ctx, client.ObjectKey{Name: "big"}, &corev1.Namespace{}) == nil
		})
		before := residentMiB(b, up.cmd.Process.Pid)
		cs := clientset(b, wl)
		phases := watchPodPhases(b, cs, "big", replicas)
		cpu0 := cpuByComponent(home)
		began := time.Now()
		runKubectlApply(b, bin, wl, fmt.Sprintf(`
apiVersion: apps.strata.dev/v1alpha1
kind: StatelessApp
metadata: {name: web, namespace: big}
spec:
  application: big-web
  appVersion: "1.0.0"
  replicas: %d
  resources: {cpu: 100m, memory: 128Mi}
`, replicas))
		a := &appsv1alpha1.StatelessApp{}
		waitFor(b, 20*time.Minute, func(ctx context.Context) bool {
			return wc.Get(ctx, client.ObjectKey{Namespace: "big", Name: "web"}, a) == nil &&
				a.Status.ReadyReplicas == replicas && ready(a)
		})
		b.ReportMetric(time.Since(began).Seconds(), "s-to-ready")
		cpu1 := cpuByComponent(home)
		phases.close()
		phases.report(b, "app")
		reportCPU(b, "app", cpu0, cpu1)
		b.ReportMetric(before, "strata-rss-before-MiB")
		b.ReportMetric(residentMiB(b, up.cmd.Process.Pid), "strata-rss-MiB")
		b.ReportMetric(peakMiB(b, up.cmd.Process.Pid), "strata-peak-MiB")

		// The same cluster's pod pipeline alone, for the ratio: a plain
		// Deployment of as many one-container pods, no spread constraints.
		phases = watchPodPhases(b, cs, "default", replicas)
		began = time.Now()
		createDeployment(b, wl, "plain", replicas)
		waitFor(b, 20*time.Minute, func(ctx context.Context) bool {
			d, err := cs.AppsV1().Deployments("default").Get(ctx, "plain", metav1.GetOptions{})
			return err == nil && d.Status.ReadyReplicas == replicas
		})
		b.ReportMetric(time.Since(began).Seconds(), "plain-deployment-s-to-ready")
		cpu2 := cpuByComponent(home)
		phases.close()
		phases.report(b, "plain")
		reportCPU(b, "plain", cpu1, cpu2)
		up.interrupt(b)
		run(b, bin, "strata", "down", "--home", home)
	}
}

// waitFor polls cond every 250 ms until it holds or the timeout passes.
func waitFor(b testing.TB, timeout time.Duration, cond func(context.Context) bool) {
	b.Helper()
	err := wait.PollUntilContextTimeout(b.Context(), 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		return cond(ctx), nil
	})
	if err != nil {
		b.Fatalf("condition not met within %s: %v", timeout, err)
	}
}
