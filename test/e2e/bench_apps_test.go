package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
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
		// The observer watches (a list every 100 ms of 200 objects would
		// cost the hub's API server more than some of the onboarding).
		hcw := appsWatchClient(b, localdc.KubeconfigPath(home, localdc.HubName))
		see := func(a *appsv1alpha1.AppNamespace, now time.Time) int {
			var i int
			if _, err := fmt.Sscanf(a.Name, "bench-%d", &i); err != nil || i < 0 || i >= n || !ready[i].IsZero() {
				return 0
			}
			if !meta.IsStatusConditionTrue(a.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition) {
				return 0
			}
			ready[i] = now
			return 1
		}
		go func() {
			defer close(done)
			seen := 0
			for seen < n && b.Context().Err() == nil {
				list := &appsv1alpha1.AppNamespaceList{}
				if err := hcw.List(b.Context(), list); err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				now := time.Now()
				mu.Lock()
				for i := range list.Items {
					seen += see(&list.Items[i], now)
				}
				mu.Unlock()
				w, err := hcw.Watch(b.Context(), &appsv1alpha1.AppNamespaceList{}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
				if err != nil {
					continue
				}
				for ev := range w.ResultChan() {
					a, ok := ev.Object.(*appsv1alpha1.AppNamespace)
					if !ok {
						continue
					}
					mu.Lock()
					seen += see(a, time.Now())
					mu.Unlock()
					if seen == n {
						break
					}
				}
				w.Stop()
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

		// Where the difference goes: the app's own pods (its init
		// container, app and sidecar, its spread constraints) as a
		// Deployment in a namespace of their own, without the app's
		// Service, PodDisruptionBudget and namespace quota, nor Strata.
		shaped := shapedLike(b, cs, "big", replicas)
		phases = watchPodPhases(b, cs, shaped.Namespace, replicas)
		began = time.Now()
		if _, err := cs.AppsV1().Deployments(shaped.Namespace).Create(b.Context(), shaped, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		waitFor(b, 20*time.Minute, func(ctx context.Context) bool {
			d, err := cs.AppsV1().Deployments(shaped.Namespace).Get(ctx, shaped.Name, metav1.GetOptions{})
			return err == nil && d.Status.ReadyReplicas == replicas
		})
		b.ReportMetric(time.Since(began).Seconds(), "app-shaped-deployment-s-to-ready")
		phases.close()
		phases.report(b, "shaped")
		reportCPU(b, "shaped", cpu2, cpuByComponent(home))
		up.interrupt(b)
		run(b, bin, "strata", "down", "--home", home)
	}
}

// shapedLike is a Deployment, in a new namespace "shaped", of the pod
// template of the Deployment of replicas in namespace (the app's stable
// track): the app's pods without the app.
func shapedLike(b testing.TB, cs kubernetes.Interface, namespace string, replicas int32) *appsv1.Deployment {
	b.Helper()
	list, err := cs.AppsV1().Deployments(namespace).List(b.Context(), metav1.ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	i := slices.IndexFunc(list.Items, func(d appsv1.Deployment) bool { return ptr.Deref(d.Spec.Replicas, 0) == replicas })
	if i < 0 {
		b.Fatalf("no Deployment of %d replicas in namespace %s", replicas, namespace)
	}
	if _, err := cs.CoreV1().Namespaces().Create(b.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shaped"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	app := list.Items[i]
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shaped", Name: "shaped"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas), Selector: app.Spec.Selector, Template: app.Spec.Template,
		},
	}
}

// appsWatchClient is appsClient that can also watch.
func appsWatchClient(b testing.TB, kubeconfig string) client.WithWatch {
	b.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: appsClient(b, kubeconfig).Scheme()})
	if err != nil {
		b.Fatal(err)
	}
	return c
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
