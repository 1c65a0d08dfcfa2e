package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/strata-dev/strata/internal/metal/broker/brokerclient"
	"github.com/strata-dev/strata/internal/metal/inventory"
	"github.com/strata-dev/strata/internal/testutil"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
	simv1 "github.com/strata-dev/strata/proto/strata/sim/v1"
)

// failoverWait bounds the waits of the failover test: a bound, not a speed
// target (the measured failover is logged, and recorded in
// docs/benchmarks.md).
const failoverWait = 2 * time.Minute

// TestBrokerFailover runs two `strata serve broker` processes, built from
// this tree, on one PostgreSQL inventory, resizes four pools at once
// through one client that holds both addresses, and kill -9s the leader
// meanwhile: the standby serves, the same client reaches it, the resizes go
// on, and no machine ends in two pools. Then the new leader's lock
// connection is cut, and a third replica takes over.
func TestBrokerFailover(t *testing.T) {
	dsn := ""
	for _, db := range testutil.Databases(t) {
		if db.Name == "PostgreSQL" {
			dsn = db.NewDSN(t)
		}
	}
	if dsn == "" {
		t.Skip("broker replicas need PostgreSQL")
	}
	bin := buildStrata(t)
	first := startProcess(t, bin, dsn)
	waitHealth(t, first.addr, healthpb.HealthCheckResponse_SERVING)
	second := startProcess(t, bin, dsn)
	waitHealth(t, second.addr, healthpb.HealthCheckResponse_NOT_SERVING)

	// As the hub dials: calls wait for a serving replica, within their
	// deadline, instead of failing while no replica leads.
	conn, err := brokerclient.Dial(brokerclient.Options{Addresses: []string{first.addr, second.addr}, WaitForReady: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close() //nolint:errcheck // test connection
	c := brokerv1.NewBrokerServiceClient(conn)
	ctx := t.Context()
	if _, err := c.CreateNodeProfile(ctx, &brokerv1.CreateNodeProfileRequest{Profile: &brokerv1.NodeProfile{Name: "any", MinCpuCores: 1, MinMemoryGib: 1, NodeConfig: "kubelet-1.37"}}); err != nil {
		t.Fatal(err)
	}
	pools := []string{"p0", "p1", "p2", "p3"}
	for _, p := range pools {
		if _, err := c.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{Name: p, Datacenter: "dc1", NodeProfile: "any", Capacity: 5}}); err != nil {
			t.Fatal(err)
		}
	}

	// Each resizer resizes its pool until stopped; a call the failover
	// breaks (Unavailable: in flight on the killed leader) is tried again,
	// through the same client.
	var killed atomic.Bool
	var okBeforeKill, okAfterKill, refused atomic.Int64
	stop := make(chan struct{})
	errs := make(chan error, len(pools))
	var wg sync.WaitGroup
	for i, p := range pools {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				after := killed.Load()
				_, err := c.UpdatePool(ctx, &brokerv1.UpdatePoolRequest{Name: p, Capacity: int32(5 + (n+i)%20)}) //nolint:gosec // small
				switch {
				case err == nil && after:
					okAfterKill.Add(1)
				case err == nil:
					okBeforeKill.Add(1)
				case status.Code(err) == codes.Unavailable:
					refused.Add(1)
				case err != nil:
					errs <- fmt.Errorf("resizing %s: %w", p, err)
					return
				}
			}
		})
	}

	waitResizes(t, "before the kill", &okBeforeKill, errs)
	killedAt := time.Now()
	killed.Store(true)
	if err := first.cmd.Process.Kill(); err != nil { // SIGKILL: kill -9
		t.Fatal(err)
	}
	waitHealth(t, second.addr, healthpb.HealthCheckResponse_SERVING)
	failover := time.Since(killedAt)
	t.Logf("failover: the standby reported SERVING %s after the leader's kill -9", failover.Round(time.Millisecond))
	fmt.Printf("broker failover: %s\n", failover.Round(time.Millisecond))

	waitResizes(t, "after the kill", &okAfterKill, errs)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("resizes after the kill: %d; refused during the failover: %d", okAfterKill.Load(), refused.Load())

	// No machine in two pools, and every pool holds what its status says.
	owner := map[string]string{}
	for _, p := range pools {
		resp, err := c.GetPool(ctx, &brokerv1.GetPoolRequest{Name: p})
		if err != nil {
			t.Fatal(err)
		}
		members, err := c.ListMachines(ctx, &brokerv1.ListMachinesRequest{Pool: p, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members.GetMachines() {
			if other, ok := owner[m.GetId()]; ok {
				t.Errorf("machine %s is in pools %s and %s", m.GetId(), other, p)
			}
			owner[m.GetId()] = p
		}
		if got, want := int32(len(members.GetMachines())), resp.GetPool().GetStatus().GetAllocated(); got != want { //nolint:gosec // small
			t.Errorf("pool %s lists %d machines, its status says %d allocated", p, got, want)
		}
	}

	// Then the new leader loses its database connection (its lock's
	// backend terminated, as a cut PostgreSQL notices would): a third
	// replica takes over, and the deposed one stands by.
	third := startProcess(t, bin, dsn)
	waitHealth(t, third.addr, healthpb.HealthCheckResponse_NOT_SERVING)
	cutAt := time.Now()
	terminateLeader(t, dsn)
	waitHealth(t, third.addr, healthpb.HealthCheckResponse_SERVING)
	t.Logf("failover: a standby reported SERVING %s after the leader's lock connection was cut", time.Since(cutAt).Round(time.Millisecond))
	fmt.Printf("broker failover on a cut connection: %s\n", time.Since(cutAt).Round(time.Millisecond))
	waitHealth(t, second.addr, healthpb.HealthCheckResponse_NOT_SERVING)
	conn2, err := brokerclient.Dial(brokerclient.Options{Addresses: []string{second.addr, third.addr}, WaitForReady: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close() //nolint:errcheck // test connection
	if _, err := brokerv1.NewBrokerServiceClient(conn2).UpdatePool(ctx, &brokerv1.UpdatePoolRequest{Name: "p0", Capacity: 7}); err != nil {
		t.Errorf("resizing after the cut through both replicas: %v", err)
	}
}

// terminateLeader terminates the PostgreSQL backend that holds the
// broker's leader lock.
func terminateLeader(t *testing.T, dsn string) {
	t.Helper()
	store, err := inventory.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close() //nolint:errcheck // test store
	pid, err := inventory.LeaderPID(t.Context(), store)
	if err != nil || pid == 0 {
		t.Fatalf("finding the leader lock's backend: %d, %v", pid, err)
	}
	testutil.TerminateBackend(t, dsn, pid)
}

// waitResizes waits for 20 resizes, or a resizer's failure.
func waitResizes(t *testing.T, when string, n *atomic.Int64, errs <-chan error) {
	t.Helper()
	giveUp := time.After(failoverWait)
	for n.Load() < 20 {
		select {
		case err := <-errs:
			t.Fatal(err)
		case <-giveUp:
			t.Fatalf("%d resizes %s, want 20", n.Load(), when)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// process is `strata serve broker` running as a process of its own.
type process struct {
	cmd  *exec.Cmd
	addr string
}

// buildStrata builds the strata binary of this tree.

// startProcess starts a broker replica on a free loopback port and returns
// once it says where it serves.
func startProcess(t *testing.T, bin, dsn string) *process {
	t.Helper()
	logs := newLogLines()
	cmd := exec.Command(bin, "serve", "broker", "--db", dsn, "--seed-simulated", "200", "--provisioner", "none", //nolint:gosec // the test's binary
		"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = os.Stdout, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	giveUp := time.After(failoverWait)
	for {
		select {
		case line := <-logs.lines:
			var entry struct {
				Msg     string `json:"msg"`
				Address string `json:"address"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "Serving the Compute Broker" {
				return &process{cmd: cmd, addr: entry.Address}
			}
		case <-exited:
			t.Fatalf("strata serve broker ended before serving: %v", cmd.ProcessState)
		case <-giveUp:
			t.Fatal("strata serve broker never said where it serves")
		}
	}
}

// waitHealth waits until the replica's health service reports want for
// the broker service.
func waitHealth(t *testing.T, addr string, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close() //nolint:errcheck // test connection
	ctx, cancel := context.WithTimeout(t.Context(), failoverWait)
	defer cancel()
	// Watch streams every change of the status: no polling.
	stream, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: brokerv1.BrokerService_ServiceDesc.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("waiting for %s to report %s: %v", addr, want, err)
		}
		if resp.GetStatus() == want {
			return
		}
	}
}

// TestSimFaultsFollowTheLeader runs two brokers with the sim provisioner,
// sharing a faults file, on one PostgreSQL inventory: a fault made through
// the leader's strata.sim.v1 is the new leader's when the first stops (it
// reads the file as it takes over), as in the local datacenter's replicas.
func TestSimFaultsFollowTheLeader(t *testing.T) {
	dsn := ""
	for _, db := range testutil.Databases(t) {
		if db.Name == "PostgreSQL" {
			dsn = db.NewDSN(t)
		}
	}
	if dsn == "" {
		t.Skip("broker replicas need PostgreSQL")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "broker.yaml")
	file := "apiVersion: config.strata.dev/v1alpha1\nkind: BrokerConfiguration\ndatabase:\n  dsn: " + strconv.Quote(dsn) +
		"\nlisten: 127.0.0.1:0\nmetricsListen: \"0\"\nprovisioner:\n  sim:\n    faultsFile: " + filepath.Join(dir, "faults.json") + "\n"
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	first := runBroker(t, "--config", path, "--seed-simulated", strconv.Itoa(seeded))
	firstAddr := first.address(t)
	waitHealth(t, firstAddr, healthpb.HealthCheckResponse_SERVING)
	second := runBroker(t, "--config", path)
	secondAddr := second.address(t)
	waitHealth(t, secondAddr, healthpb.HealthCheckResponse_NOT_SERVING)

	conn, err := grpc.NewClient(firstAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close() //nolint:errcheck // test connection
	machines, err := brokerv1.NewBrokerServiceClient(conn).ListMachines(t.Context(), &brokerv1.ListMachinesRequest{PageSize: 1})
	if err != nil || len(machines.GetMachines()) == 0 {
		t.Fatalf("listing a machine: %v", err)
	}
	id := machines.GetMachines()[0].GetId()
	if _, err := simv1.NewSimServiceClient(conn).FailMachines(t.Context(), &simv1.FailMachinesRequest{
		Machines: []string{id}, FixedBy: simv1.FaultFix_FAULT_FIX_NEVER,
	}); err != nil {
		t.Fatalf("faulting %s through the leader: %v", id, err)
	}

	first.cancel() // a graceful stop gives the lock up
	if err := first.wait(t); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, secondAddr, healthpb.HealthCheckResponse_SERVING)
	conn2, err := grpc.NewClient(secondAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close() //nolint:errcheck // test connection
	faults, err := simv1.NewSimServiceClient(conn2).ListFaults(t.Context(), &simv1.ListFaultsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range faults.GetFaults() {
		got = append(got, f.GetMachine())
	}
	if diff := cmp.Diff([]string{id}, got); diff != "" {
		t.Errorf("the new leader's faults (-want +got):\n%s", diff)
	}
}
