package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
)

// BenchmarkStatefulApp measures a rolling update of a StatefulApp of 30
// pods of the reference store (30 shards, 3 replicas, 2 in sync needed),
// with a client writing and reading throughout, against a StatefulSet
// (podManagementPolicy OrderedReady) of 30 pods rolled the same way, in the
// same datacenter, one after the other. Each is timed from the patch of its
// version to the moment it reports every pod updated and Ready. Two cases:
// "instant", kwok makes pods Ready at once (version 2.0.0); "slow", each
// pod takes 10 s to become Ready (version 3.0.0-slowready: the kwok stage
// pod-slow-ready, on the image of both the StatefulApp's and the
// StatefulSet's pods). Every acknowledged write must read back.
//
// STRATA_BENCH_STATEFUL_CONCURRENCY sets the StatefulApp's
// maxConcurrentOperations (default 30: the shard manager decides how many
// pods move at once; 1 is one at a time); STRATA_BENCH_STATEFUL_CASES
// chooses the cases (default "instant,slow").
//
//	STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkStatefulApp -benchtime 1x -timeout 60m
func BenchmarkStatefulApp(b *testing.B) {
	const replicas = 30
	concurrency := benchEnvInt(b, "STRATA_BENCH_STATEFUL_CONCURRENCY", replicas)
	cases := strings.Split(os.Getenv("STRATA_BENCH_STATEFUL_CASES"), ",")
	if os.Getenv("STRATA_BENCH_STATEFUL_CASES") == "" {
		cases = []string{"instant", "slow"}
	}
	bin := binDir(b)
	for b.Loop() {
		home := filepath.Join(b.TempDir(), "home")
		// A busy machine may need longer to start (startUp waits 3 minutes).
		up := startUp(b, bin, home, "--workload-clusters", "1", "--pool-capacity", "0", "--timeout", "170s")
		hub := localdc.KubeconfigPath(home, localdc.HubName)
		wl := localdc.KubeconfigPath(home, localdc.WorkloadClusterName(1))
		runKubectlApply(b, bin, hub, fmt.Sprintf(kvPool, 20))
		waitFor(b, 10*time.Minute, func(context.Context) bool {
			out, err := runErr(bin, "kubectl", "--kubeconfig", hub, "get", "pool", "kv-storage", "-o", "jsonpath={.status.ready}")
			return err == nil && strings.TrimSpace(out) == "20"
		})
		wc := appsClient(b, wl)
		waitFor(b, 3*time.Minute, func(ctx context.Context) bool {
			return wc.Get(ctx, client.ObjectKey{Name: "kv"}, &corev1.Namespace{}) == nil
		})

		store, kv := startTLSStore(b, bin, wl)
		runKubectlApply(b, bin, wl, fmt.Sprintf(kvApp, replicas, concurrency, store.addr))
		statefulAppDone := func(version string) func(context.Context) bool {
			return func(ctx context.Context) bool {
				a := &appsv1alpha1.StatefulApp{}
				return wc.Get(ctx, client.ObjectKey{Namespace: "kv", Name: "kv"}, a) == nil && a.Spec.Version == version &&
					a.Status.ObservedGeneration == a.Generation && a.Status.UpdatedReplicas == replicas && a.Status.ReadyReplicas == replicas &&
					meta.IsStatusConditionTrue(a.Status.Conditions, appsv1alpha1.StatefulAppReadyCondition)
			}
		}
		waitFor(b, 10*time.Minute, statefulAppDone("1.0.0"))
		waitAllInSync(b, kv, replicas)

		cs := clientset(b, wl)
		if _, err := cs.CoreV1().Namespaces().Create(b.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, err := cs.AppsV1().StatefulSets("plain").Create(b.Context(), benchStatefulSet(replicas), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		statefulSetDone := func(version string) func(context.Context) bool {
			return func(ctx context.Context) bool {
				s, err := cs.AppsV1().StatefulSets("plain").Get(ctx, "kv", metav1.GetOptions{})
				return err == nil && strings.HasSuffix(s.Spec.Template.Spec.Containers[0].Image, ":"+version) &&
					s.Status.ObservedGeneration == s.Generation && s.Status.UpdatedReplicas == replicas &&
					s.Status.ReadyReplicas == replicas && s.Status.CurrentRevision == s.Status.UpdateRevision
			}
		}
		waitFor(b, 10*time.Minute, statefulSetDone("1.0.0"))
		progress("BenchmarkStatefulApp: 30 pods of each Ready; load %s", loadAverage())

		load := startLoad(b, kv)
		for _, c := range cases {
			version := map[string]string{"instant": "2.0.0", "slow": "3.0.0-slowready"}[c]
			if version == "" {
				b.Fatalf("STRATA_BENCH_STATEFUL_CASES: unknown case %q (instant, slow)", c)
			}
			began := time.Now()
			run(b, bin, "kubectl", "--kubeconfig", wl, "-n", "kv", "patch", "statefulapp", "kv", "--type=merge",
				"-p", fmt.Sprintf(`{"spec":{"version":%q}}`, version))
			waitFor(b, 30*time.Minute, statefulAppDone(version))
			app := time.Since(began)
			progress("BenchmarkStatefulApp %s: StatefulApp rolled in %.1f s; load %s", c, app.Seconds(), loadAverage())

			began = time.Now()
			run(b, bin, "kubectl", "--kubeconfig", wl, "-n", "plain", "set", "image", "statefulset/kv", "app=registry.local/kv-store:"+version)
			waitFor(b, 30*time.Minute, statefulSetDone(version))
			set := time.Since(began)
			progress("BenchmarkStatefulApp %s: StatefulSet rolled in %.1f s; load %s", c, set.Seconds(), loadAverage())
			b.ReportMetric(app.Seconds(), c+"-statefulapp-s")
			b.ReportMetric(set.Seconds(), c+"-statefulset-s")
			b.ReportMetric(app.Seconds()/set.Seconds(), c+"-app/set")
		}
		res := load.stop(b)
		b.ReportMetric(float64(res.acked), "writes")
		b.ReportMetric(float64(res.lost), "lost-writes")
		b.ReportMetric(float64(res.failed), "failed-writes")
		b.ReportMetric(float64(res.minInSync), "min-in-sync")
		if res.lost != 0 || res.badReads != 0 || res.minInSync < 2 {
			b.Errorf("%d acknowledged writes lost, %d reads wrong, a shard fell to %d in sync; want 0, 0, 2 or more",
				res.lost, res.badReads, res.minInSync)
		}
		store.stop(b)
		up.interrupt(b)
		run(b, bin, "strata", "down", "--home", home)
	}
}

// benchStatefulSet is the peer: a StatefulSet of as many pods, OrderedReady,
// each with a local volume like the StatefulApp's, on the same Nodes.
func benchStatefulSet(replicas int32) *appsv1.StatefulSet {
	labels := map[string]string{"app": "kv-plain"}
	resources := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi")}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: "plain"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptr.To(replicas),
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			UpdateStrategy:      appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeSelector: map[string]string{"fleet.strata.dev/node-profile": "storage"},
					Containers: []corev1.Container{{
						Name: "app", Image: "registry.local/kv-store:1.0.0",
						Resources:    corev1.ResourceRequirements{Requests: resources, Limits: resources},
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
					}},
				},
			},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					StorageClassName: ptr.To("local-ssd"),
					Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("100Gi")}},
				},
			}},
		},
	}
}

// loadAverage is the machine's 1-minute load average, for the record.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(raw))[0]
}
