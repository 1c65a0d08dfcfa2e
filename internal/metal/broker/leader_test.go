package broker_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/broker/brokerclient"
	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/testutil"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// waitDeadline bounds every wait of these tests: a bound, not a speed target.
const waitDeadline = time.Minute

// replica is one broker replica of a shared PostgreSQL inventory, serving
// and running its loops with leader election, as `strata serve broker` does.
type replica struct {
	broker   *broker.Broker
	store    inventory.Store
	addr     string
	registry *prometheus.Registry
}

// leaderGauge is the replica's strata_broker_leader.
func (r *replica) leaderGauge(t *testing.T) float64 {
	t.Helper()
	families, err := r.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "strata_broker_leader" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no strata_broker_leader metric")
	return 0
}

// postgresInventory is a fresh, seeded PostgreSQL inventory; leader
// election runs on PostgreSQL only (skipped under -short without it).
func postgresInventory(t *testing.T) string {
	t.Helper()
	for _, db := range testutil.Databases(t) {
		if db.Name != "PostgreSQL" {
			continue
		}
		dsn := db.NewDSN(t)
		store, err := inventory.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close() //nolint:errcheck // seeding only
		if _, err := inventory.Seed(t.Context(), store, inventory.GenerateOptions{Seed: 7, Machines: 400}); err != nil {
			t.Fatal(err)
		}
		return dsn
	}
	t.Skip("leader election runs on PostgreSQL only")
	return ""
}

func startReplica(t *testing.T, dsn string, retryPeriod time.Duration) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	store, err := inventory.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Options{Store: store, Logger: logr.Discard(),
		LeaderElection: broker.LeaderElection{Enabled: true, RetryPeriod: retryPeriod}})
	if err != nil {
		t.Fatal(err)
	}
	registry := prometheus.NewRegistry()
	srv, err := broker.NewServer(b, broker.ServerOptions{Address: "127.0.0.1:0"}, registry)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ctx) }()
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("replica: %v", err)
			}
		}
		_ = store.Close()
	})
	return &replica{broker: b, store: store, addr: srv.Addr(), registry: registry}
}

// waitLeading waits until the replica leads, or stands by.
func (r *replica) waitLeading(t *testing.T, want bool) {
	t.Helper()
	giveUp := time.After(waitDeadline)
	for {
		leading, changed := r.broker.Leading()
		if leading == want {
			return
		}
		select {
		case <-changed:
		case <-giveUp:
			t.Fatalf("replica %s: leading = %t, want %t", r.addr, leading, want)
		}
	}
}

// depose cuts the leader's lock connection, as a network cut PostgreSQL
// notices would, and returns once its backend is gone.
func depose(t *testing.T, dsn string, r *replica) {
	t.Helper()
	pid, err := inventory.LeaderPID(t.Context(), r.store)
	if err != nil || pid == 0 {
		t.Fatalf("finding the leader's lock backend: %d, %v", pid, err)
	}
	testutil.TerminateBackend(t, dsn, pid)
}

func dialInsecure(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// health is what a replica's gRPC health service says for the server ("")
// and for the broker service.
func health(t *testing.T, addr string) [2]healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	c := healthpb.NewHealthClient(dialInsecure(t, addr))
	var got [2]healthpb.HealthCheckResponse_ServingStatus
	for i, svc := range []string{"", brokerv1.BrokerService_ServiceDesc.ServiceName} {
		resp, err := c.Check(t.Context(), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("health of %s for %q: %v", addr, svc, err)
		}
		got[i] = resp.GetStatus()
	}
	return got
}

// waitHealth waits until a replica's health says want: the health service
// follows the broker's role a moment after it changes.
func waitHealth(t *testing.T, addr, who string, want [2]healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	giveUp := time.Now().Add(waitDeadline)
	for {
		got := health(t, addr)
		if got == want {
			return
		}
		if time.Now().After(giveUp) {
			t.Errorf("%s's health = %v, want %v", who, got, want)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	serving    = [2]healthpb.HealthCheckResponse_ServingStatus{healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_SERVING}
	notServing = [2]healthpb.HealthCheckResponse_ServingStatus{healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_NOT_SERVING}
)

// TestStandbyRefusesAndTakesOver runs two replicas on one inventory: the
// standby reports NOT_SERVING and refuses every broker call; when the
// leader's lock connection is cut, its watch streams end, it stands by, and
// the other replica leads; a client holding both addresses reaches it
// without being rebuilt, and a new watch (of pools, of machines) re-lists
// from it.
func TestStandbyRefusesAndTakesOver(t *testing.T) {
	dsn := postgresInventory(t)
	a := startReplica(t, dsn, 100*time.Millisecond)
	a.waitLeading(t, true)
	b := startReplica(t, dsn, 100*time.Millisecond)

	waitHealth(t, a.addr, "the leader", serving)
	waitHealth(t, b.addr, "the standby", notServing)
	if ga, gb := a.leaderGauge(t), b.leaderGauge(t); ga != 1 || gb != 0 {
		t.Errorf("strata_broker_leader: leader %v, standby %v; want 1, 0", ga, gb)
	}
	standby := brokerv1.NewBrokerServiceClient(dialInsecure(t, b.addr))
	_, err := standby.ListPools(t.Context(), &brokerv1.ListPoolsRequest{})
	wantCode(t, err, codes.Unavailable, "this broker replica is a standby")
	_, err = standby.CreateNodeProfile(t.Context(), &brokerv1.CreateNodeProfileRequest{Profile: general})
	wantCode(t, err, codes.Unavailable, "this broker replica is a standby")
	watch, err := standby.WatchPools(t.Context(), &brokerv1.WatchPoolsRequest{})
	if err == nil {
		_, err = watch.Recv()
	}
	wantCode(t, err, codes.Unavailable, "this broker replica is a standby")
	machineWatch, err := standby.WatchMachines(t.Context(), &brokerv1.WatchMachinesRequest{})
	if err == nil {
		_, err = machineWatch.Recv()
	}
	wantCode(t, err, codes.Unavailable, "this broker replica is a standby")

	conn, err := brokerclient.Dial(brokerclient.Options{Addresses: []string{a.addr, b.addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close() //nolint:errcheck // test connection
	client := brokerv1.NewBrokerServiceClient(conn)
	if _, err := client.CreateNodeProfile(t.Context(), &brokerv1.CreateNodeProfileRequest{Profile: general}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("creating a profile through both addresses: %v", err)
	}
	if _, err := client.CreatePool(t.Context(), &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
		Name: "web", Datacenter: "dc1", NodeProfile: "general", Capacity: 10,
	}}); err != nil {
		t.Fatalf("creating a pool through both addresses: %v", err)
	}
	watch, err = client.WatchPools(t.Context(), &brokerv1.WatchPoolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := watch.Recv(); err != nil || first.GetPool().GetName() != "web" {
		t.Fatalf("the leader's watch: %v, %v; want web ADDED", first, err)
	}
	machineWatch, err = client.WatchMachines(t.Context(), &brokerv1.WatchMachinesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if listed := len(syncMirror(t, machineWatch)); listed != 400 {
		t.Fatalf("the leader's machine watch listed %d machines, want 400", listed)
	}

	depose(t, dsn, a)
	for _, recv := range []func() error{
		func() error { _, err := watch.Recv(); return err },
		func() error { _, err := machineWatch.Recv(); return err },
	} {
		for {
			if err := recv(); err != nil {
				wantCode(t, err, codes.Unavailable, "stopped leading")
				break
			}
		}
	}
	b.waitLeading(t, true)
	a.waitLeading(t, false)
	waitHealth(t, a.addr, "the deposed leader", notServing)
	waitHealth(t, b.addr, "the new leader", serving)
	if ga, gb := a.leaderGauge(t), b.leaderGauge(t); ga != 0 || gb != 1 {
		t.Errorf("strata_broker_leader: deposed %v, new leader %v; want 0, 1", ga, gb)
	}
	// The client follows health: once it saw the change, calls reach the
	// new leader (until then, the old one refuses with Unavailable).
	giveUp := time.Now().Add(waitDeadline)
	for {
		_, err := client.UpdatePool(t.Context(), &brokerv1.UpdatePoolRequest{Name: "web", Capacity: 20}, grpc.WaitForReady(true))
		if err == nil {
			break
		}
		if status.Code(err) != codes.Unavailable || time.Now().After(giveUp) {
			t.Fatalf("resizing through both addresses after the failover: %v", err)
		}
	}
	watch, err = client.WatchPools(t.Context(), &brokerv1.WatchPoolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := watch.Recv(); err != nil || first.GetPool().GetCapacity() != 20 {
		t.Fatalf("the new leader's watch: %v, %v; want web ADDED with capacity 20", first, err)
	}
	machineWatch, err = client.WatchMachines(t.Context(), &brokerv1.WatchMachinesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if allocated := countState(syncMirror(t, machineWatch), brokerv1.MachineState_MACHINE_STATE_ALLOCATED); allocated != 20 {
		t.Fatalf("the new leader's machine watch lists %d allocated machines, want 20", allocated)
	}
}

// countState counts the machines of a mirror in a state.
func countState(m mirror, state brokerv1.MachineState) int {
	n := 0
	for _, mc := range m {
		if mc.GetState() == state {
			n++
		}
	}
	return n
}

// TestDeposedLeaderCannotWrite cuts the leader's lock connection while both
// replicas write as fast as they can (called in process, past the gRPC
// gate, so only the fencing stands in the way): no write of the old leader
// that began after the cut commits, and no write of the standby that began
// before the cut does. The two never both write. Each replica has several
// writers, so writes share transactions (group commit): a group is fenced
// like a single write.
func TestDeposedLeaderCannotWrite(t *testing.T) {
	dsn := postgresInventory(t)
	// A long retry period: the old leader's check does not notice the cut
	// before its next writes, only the fencing can refuse them.
	a := startReplica(t, dsn, 3*time.Second)
	a.waitLeading(t, true)
	b := startReplica(t, dsn, 3*time.Second)
	ctx := t.Context()
	if _, err := a.broker.CreateNodeProfile(ctx, &brokerv1.CreateNodeProfileRequest{Profile: general}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.broker.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
		Name: "web", Datacenter: "dc1", NodeProfile: "general", Capacity: 10,
	}}); err != nil {
		t.Fatal(err)
	}

	// cutting is set before the cut begins, cut once it is done.
	var cutting, cut atomic.Bool
	type tally struct {
		ok, okAfterCut, okBeforeCutting atomic.Int64
		lastErr                         atomic.Value
	}
	var tallyA, tallyB tally
	stop := make(chan struct{})
	var wg sync.WaitGroup
	write := func(r *replica, tl *tally) {
		defer wg.Done()
		for i := int32(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			beforeCutting, afterCut := !cutting.Load(), cut.Load()
			_, err := r.broker.UpdatePool(ctx, &brokerv1.UpdatePoolRequest{Name: "web", Capacity: 10 + i%5})
			if err != nil {
				tl.lastErr.Store(err.Error())
				continue
			}
			tl.ok.Add(1)
			if afterCut {
				tl.okAfterCut.Add(1)
			}
			if beforeCutting {
				tl.okBeforeCutting.Add(1)
			}
		}
	}
	for range 3 {
		wg.Add(2)
		go write(a, &tallyA)
		go write(b, &tallyB)
	}
	waitCount(t, "the leader's writes before the cut", &tallyA.ok, 20)

	cutting.Store(true)
	depose(t, dsn, a)
	cut.Store(true)
	b.waitLeading(t, true)
	waitCount(t, "the new leader's writes", &tallyB.ok, 20)
	close(stop)
	wg.Wait()

	if n := tallyA.okAfterCut.Load(); n != 0 {
		t.Errorf("the deposed leader committed %d writes begun after its lock connection was cut", n)
	}
	if n := tallyB.okBeforeCutting.Load(); n != 0 {
		t.Errorf("the standby committed %d writes begun while the leader held its lock", n)
	}
	if last, _ := tallyA.lastErr.Load().(string); last == "" {
		t.Error("the deposed leader's writes never failed")
	}
	if a.broker.GroupedWrites() == 0 || b.broker.GroupedWrites() == 0 {
		t.Errorf("writes shared a transaction %d times on the old leader, %d on the new one; want both above 0",
			a.broker.GroupedWrites(), b.broker.GroupedWrites())
	}
	t.Logf("leader: %d writes; new leader: %d writes; the deposed leader's last refusal: %v",
		tallyA.ok.Load(), tallyB.ok.Load(), tallyA.lastErr.Load())
}

// waitCount waits until n reaches want.
func waitCount(t *testing.T, what string, n *atomic.Int64, want int64) {
	t.Helper()
	giveUp := time.Now().Add(waitDeadline)
	for n.Load() < want {
		if time.Now().After(giveUp) {
			t.Fatalf("%s: %d, want at least %d", what, n.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
