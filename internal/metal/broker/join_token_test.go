package broker_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/metal/provision/sim"
	"github.com/strata-dev/strata/internal/testutil"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// TestJoinWithRevokedToken: a pool whose bootstrap token was revoked (its
// Secret deleted) gets no Node, and its machine says why, as `strata
// machines` and the Pool's Joining condition show it.
func TestJoinWithRevokedToken(t *testing.T) {
	cluster := testutil.StartJoinCluster(t)
	token := cluster.BootstrapToken(t, time.Hour)
	id, _, _ := strings.Cut(token, ".")
	if err := cluster.Kube.CoreV1().Secrets(metav1.NamespaceSystem).Delete(t.Context(), "bootstrap-token-"+id, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	store, err := inventory.Open(ctx, filepath.Join(t.TempDir(), "broker.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inventory.Seed(ctx, store, inventory.GenerateOptions{Seed: 1, Machines: 20}); err != nil {
		t.Fatal(err)
	}
	provisioner, err := sim.New(sim.Options{JoinDuration: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	bk, err := broker.New(broker.Options{Store: store, Provisioner: provisioner, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- bk.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("broker: %v", err)
		}
		_ = store.Close()
	})
	if _, err := bk.CreateNodeProfile(ctx, &brokerv1.CreateNodeProfileRequest{Profile: general}); err != nil {
		t.Fatal(err)
	}
	if _, err := bk.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
		Name: "web", Datacenter: "dc1", NodeProfile: "general", Capacity: 1,
		JoinTarget: &brokerv1.JoinTarget{Cluster: "workload-1", ApiServer: cluster.APIServer, CaBundle: cluster.CABundle, BootstrapToken: token},
	}}); err != nil {
		t.Fatal(err)
	}
	var message string
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		resp, err := bk.ListMachines(ctx, &brokerv1.ListMachinesRequest{Pool: "web"})
		if err != nil || len(resp.GetMachines()) != 1 {
			return false, err
		}
		message = resp.GetMachines()[0].GetHealthMessage()
		return message != "", nil
	})
	want := "joining cluster workload-1 failed, retrying: "
	if err != nil || !strings.Contains(message, want) || !strings.Contains(message, "refused bootstrap token "+id) ||
		!strings.Contains(message, "expired, was revoked or is of another cluster") {
		t.Errorf("machine's message = %q (%v), want one saying the bootstrap token %s was refused", message, err, id)
	}
	nodes, err := cluster.Kube.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if err != nil || len(nodes.Items) != 0 {
		t.Errorf("Nodes after a join with a revoked token: %d (%v), want none", len(nodes.Items), err)
	}
}
