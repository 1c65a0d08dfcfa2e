package broker_test

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/metal/provision/sim"
	"github.com/strata-dev/strata/internal/testutil"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// BenchmarkPoolJoin1000 measures how long a pool of 1,000 machines takes
// from CreatePool to every Node registered (status.joined = 1000), through
// the sim provisioner (JoinDuration 2s) into a real API server, on SQLite:
// what `strata up` does. Each machine joins as a kubelet does: with the
// pool's bootstrap token it asks for a certificate of its own, which a
// real kube-controller-manager approves and signs, and registers its Node
// with it. The target is JoinDuration plus a few seconds.
//
//	KUBEBUILDER_ASSETS=$PWD/bin go test -run '^$' -bench PoolJoin1000 -benchtime 3x ./internal/metal/broker/
func BenchmarkPoolJoin1000(b *testing.B) {
	const machines = 1000
	cluster := testutil.StartJoinCluster(b)
	kube := cluster.Kube
	var total time.Duration
	// The test process's peak heap and goroutines while the pools join:
	// the broker's and the sim's, beside the harness's.
	var peak uint64
	var peakG int
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		ctx, cancel := context.WithCancel(b.Context())
		store, err := inventory.Open(ctx, filepath.Join(b.TempDir(), "broker.db"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := inventory.Seed(ctx, store, inventory.GenerateOptions{Seed: 1, Machines: 2000}); err != nil {
			b.Fatal(err)
		}
		// The sim's own credential offers the local volumes of the storage
		// machines among the thousand: a Node may not.
		provisioner, err := sim.New(sim.Options{
			JoinDuration: sim.DefaultJoinDuration, Clusters: []sim.Cluster{{Name: "workload-1", Kubeconfig: cluster.Kubeconfig}},
		})
		if err != nil {
			b.Fatal(err)
		}
		bk, err := broker.New(broker.Options{Store: store, Provisioner: provisioner, Logger: logr.Discard()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bk.CreateNodeProfile(ctx, &brokerv1.CreateNodeProfileRequest{Profile: general}); err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- bk.Run(ctx) }()
		b.StartTimer()

		token := cluster.BootstrapToken(b, time.Hour)
		began := time.Now()
		stopSample, sampled := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(sampled)
			var ms runtime.MemStats
			for {
				select {
				case <-stopSample:
					return
				case <-time.After(200 * time.Millisecond):
				}
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak {
					peak = ms.HeapInuse
				}
				if g := runtime.NumGoroutine(); g > peakG {
					peakG = g
				}
			}
		}()
		if _, err := bk.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
			Name: "web", Datacenter: "dc1", NodeProfile: "general", Capacity: machines,
			JoinTarget: &brokerv1.JoinTarget{
				Cluster: "workload-1", ApiServer: cluster.APIServer, CaBundle: cluster.CABundle, BootstrapToken: token,
			},
		}}); err != nil {
			b.Fatal(err)
		}
		for {
			p, err := bk.GetPool(ctx, &brokerv1.GetPoolRequest{Name: "web"})
			if err != nil {
				b.Fatal(err)
			}
			if p.GetPool().GetStatus().GetJoined() == machines {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		total += time.Since(began)
		close(stopSample)
		<-sampled

		b.StopTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		_ = store.Close()
		nodes, err := kube.CoreV1().Nodes().List(b.Context(), metav1.ListOptions{})
		if err != nil || len(nodes.Items) != machines {
			b.Fatalf("%d Nodes registered (%v), want %d", len(nodes.Items), err, machines)
		}
		if err := kube.CoreV1().Nodes().DeleteCollection(b.Context(), metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/pool")
	b.ReportMetric(float64(peak>>20), "heap-MiB-peak")
	b.ReportMetric(float64(peakG), "goroutines-peak")
}
