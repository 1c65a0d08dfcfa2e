package pool_test

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/testutil/testbroker"
)

// reconcileCap is how long one change of the Pool of cluster a is waited
// for; after stalledAfter changes in a row that took that long, the phase
// stops: the controller is stuck.
const (
	reconcileCap   = 30 * time.Second
	stalledAfter   = 3
	bPools         = 8
	answeringPhase = 30 * time.Second
	hungPhase      = time.Minute
)

// BenchmarkReconcileWithHungCluster measures the latency of the Pool
// reconciles of cluster a (from a spec change to status.observedGeneration
// catching up) while cluster b answers, then while b's API server hangs
// (a proxy that accepts connections and never answers) and b's Pools keep
// changing. Both clusters are the same API server, b through the proxy; the
// pool controller, the cluster controller and the cluster manager run as in
// the hub. Not part of `make test`:
//
//	KUBEBUILDER_ASSETS=$PWD/bin go test -run '^$' -bench ReconcileWithHungCluster -benchtime 1x ./internal/cluster/pool/
func BenchmarkReconcileWithHungCluster(b *testing.B) {
	log.SetLogger(logr.Discard())
	env, cfg := testutil.StartJoinEnv(b)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, fleetv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			b.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	kubeconfig := testutil.AdminKubeconfig(b, env)
	server, err := url.Parse(cfg.Host)
	if err != nil {
		b.Fatal(err)
	}
	proxy := testutil.StartProxy(b, server.Host)
	testutil.MustCreate(b, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	testutil.MustCreate(b, c, testutil.MakeSecret(ns, "a-kubeconfig", "kubeconfig", kubeconfig))
	testutil.MustCreate(b, c, testutil.MakeSecret(ns, "b-kubeconfig", "kubeconfig", testutil.KubeconfigWithServer(b, kubeconfig, "https://"+proxy.Addr())))
	testutil.MustCreate(b, c, testutil.MakeCluster("a", ns).Obj())
	testutil.MustCreate(b, c, testutil.MakeCluster("b", ns).Obj())
	bc, _ := testbroker.Start(b, machines, 0)
	startControllers(b, cfg, scheme, bc)

	testutil.MustCreate(b, c, testutil.MakePool("a", "a", 2).Obj())
	for i := range bPools {
		// A required DaemonSet makes each reconcile read it from b's API server.
		testutil.MustCreate(b, c, testutil.MakePool("b-"+strconv.Itoa(i), "b", 1).RequireDaemonSet("kube-system", "agent").Obj())
	}
	if err := wait.PollUntilContextTimeout(b.Context(), 100*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		p := &fleetv1alpha1.Pool{}
		if err := c.Get(ctx, client.ObjectKey{Name: "a"}, p); err != nil {
			return false, err
		}
		cond := meta.FindStatusCondition(p.Status.Conditions, fleetv1alpha1.PoolReadyCondition)
		return cond != nil && cond.Reason == fleetv1alpha1.PoolReadyReason, nil
	}); err != nil {
		b.Fatalf("pool a is not Ready: %v", err)
	}

	n := 0 // makes every change a new one
	// phase changes pool a (and b's Pools) for d and returns the latencies of
	// a's reconciles, sorted.
	phase := func(d time.Duration) []time.Duration {
		var latencies []time.Duration
		stalled := 0
		for end := time.Now().Add(d); time.Now().Before(end); {
			n++
			for i := range bPools {
				_, _ = bump(b.Context(), c, "b-"+strconv.Itoa(i), n)
			}
			start := time.Now()
			gen, err := bump(b.Context(), c, "a", n)
			if err != nil {
				b.Fatal(err)
			}
			d, ok := waitObserved(b.Context(), c, "a", gen, start)
			latencies = append(latencies, d)
			if ok {
				stalled = 0
			} else if stalled++; stalled >= stalledAfter {
				b.Logf("pool a's reconciles stalled: %d changes in a row not reconciled within %s", stalled, reconcileCap)
				break
			}
		}
		slices.Sort(latencies)
		return latencies
	}
	report := func(name string, latencies []time.Duration) {
		b.ReportMetric(float64(len(latencies)), name+"-reconciles")
		b.ReportMetric(float64(percentile(latencies, 50).Milliseconds()), name+"-p50-ms")
		b.ReportMetric(float64(percentile(latencies, 99).Milliseconds()), name+"-p99-ms")
		b.ReportMetric(float64(latencies[len(latencies)-1].Milliseconds()), name+"-max-ms")
	}
	// Each phase lasts long enough for what follows a hang to happen in it:
	// requests reaching their deadline, probes failing, Cluster b turning
	// not Ready. b.N does not apply: run it with -benchtime 1x.
	for b.Loop() {
		report("answers", phase(answeringPhase))
		proxy.SetHung(true)
		report("hangs", phase(hungPhase))
	}
	b.ReportMetric(0, "ns/op")
}

// bump changes a Pool's spec and returns its new generation.
func bump(ctx context.Context, c client.Client, name string, n int) (int64, error) {
	p := &fleetv1alpha1.Pool{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
		return 0, err
	}
	before := p.DeepCopy()
	if p.Spec.NodeLabels == nil {
		p.Spec.NodeLabels = map[string]string{}
	}
	p.Spec.NodeLabels["bench"] = strconv.Itoa(n)
	if err := c.Patch(ctx, p, client.MergeFrom(before)); err != nil {
		return 0, err
	}
	return p.Generation, nil
}

// waitObserved waits until the Pool's status has observed generation gen,
// at most reconcileCap; it returns how long since start.
func waitObserved(ctx context.Context, c client.Client, name string, gen int64, start time.Time) (time.Duration, bool) {
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, reconcileCap, true, func(ctx context.Context) (bool, error) {
		p := &fleetv1alpha1.Pool{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, p); err != nil {
			return false, nil
		}
		return p.Status.ObservedGeneration >= gen, nil
	})
	return time.Since(start), err == nil
}

// percentile of sorted durations.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, (len(sorted)*p+99)/100-1)]
}
