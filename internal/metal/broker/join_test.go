package broker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	certutil "k8s.io/client-go/util/cert"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// The rules of pools with a join target: shrinking and deleting go through
// pool-shrink disruptions the cluster approves, growing takes back pending
// shrinks first, and a machine is never allocated while it is wiped.

const (
	poolShrink = brokerv1.DisruptionReason_DISRUPTION_REASON_POOL_SHRINK
	pending    = brokerv1.DisruptionState_DISRUPTION_STATE_PENDING

	testAPIServer  = "https://workload-1.example:6443"
	testToken      = "abcdef.0123456789abcdef"
	testKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: w, cluster: {server: "https://workload-1.example:6443"}}]
users: [{name: u, user: {token: bootstrap}}]
contexts: [{name: w, context: {cluster: w, user: u}}]
current-context: w
`
)

// testCA is a CA bundle of the workload cluster's API server.
var testCA = func() []byte {
	ca, _, err := certutil.GenerateSelfSignedCertKey("workload-1.example", nil, nil)
	if err != nil {
		panic(err)
	}
	return ca
}()

func joinTarget() *brokerv1.JoinTarget {
	return &brokerv1.JoinTarget{
		Cluster: "workload-1", ApiServer: testAPIServer, CaBundle: testCA, BootstrapToken: testToken,
		NodeLabels: map[string]string{fleetv1alpha1.PoolLabel: "web"},
		NodeTaints: []*brokerv1.Taint{{Key: fleetv1alpha1.StartupTaintKey, Effect: "NoSchedule"}},
	}
}

// joinedPool creates pool web, joining workload-1.
func (e *env) joinedPool(t *testing.T, profile string, capacity int32) *brokerv1.Pool {
	t.Helper()
	resp, err := e.client.CreatePool(t.Context(), &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
		Name: "web", Datacenter: "dc1", NodeProfile: profile, Capacity: capacity, JoinTarget: joinTarget(),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetPool()
}

func (e *env) getPool(t *testing.T, name string) *brokerv1.Pool {
	t.Helper()
	resp, err := e.client.GetPool(t.Context(), &brokerv1.GetPoolRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetPool()
}

// resize sets the capacity of pool web.
func (e *env) resize(t *testing.T, capacity int32) *brokerv1.Pool {
	t.Helper()
	resp, err := e.client.UpdatePool(t.Context(), &brokerv1.UpdatePoolRequest{Name: "web", Capacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetPool()
}

// disruptions lists the disruptions of pool web in a state.
func (e *env) disruptions(t *testing.T, state brokerv1.DisruptionState) []*brokerv1.Disruption {
	t.Helper()
	resp, err := e.client.ListDisruptions(t.Context(), &brokerv1.ListDisruptionsRequest{Pool: "web", States: []brokerv1.DisruptionState{state}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetDisruptions()
}

// approveShrinks approves n pending shrinks of pool web, as the cluster
// layer does once their Nodes are drained, and checks each comes back
// Completed.
func (e *env) approveShrinks(t *testing.T, n int) []*brokerv1.Disruption {
	t.Helper()
	var out []*brokerv1.Disruption
	for _, d := range e.disruptions(t, pending)[:n] {
		resp, err := e.client.ApproveDisruption(t.Context(), &brokerv1.ApproveDisruptionRequest{Id: d.GetId(), OnBehalfOf: "pool-controller", Message: "Node drained"})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetDisruption().GetState(); got != brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED {
			t.Errorf("approved shrink %s is %s, want completed", d.GetId(), got)
		}
		out = append(out, resp.GetDisruption())
	}
	return out
}

func (e *env) machine(t *testing.T, id string) *brokerv1.Machine {
	t.Helper()
	resp, err := e.client.GetMachine(t.Context(), &brokerv1.GetMachineRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetMachine()
}

// allMachines lists the whole inventory.
func (e *env) allMachines(t *testing.T) []*brokerv1.Machine {
	t.Helper()
	var out []*brokerv1.Machine
	req := &brokerv1.ListMachinesRequest{PageSize: 1000}
	for {
		resp, err := e.client.ListMachines(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetMachines()...)
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// checkInvariants: no machine in a pool is being wiped, and every pool with
// a join target has exactly its surplus under pool-shrink disruptions.
func checkInvariants(t *testing.T, e *env) {
	t.Helper()
	for _, m := range e.allMachines(t) {
		if m.GetPool() != "" && m.GetProvisionState() == brokerv1.ProvisionState_PROVISION_STATE_WIPING {
			t.Errorf("machine %s is in pool %s while it is being wiped", m.GetId(), m.GetPool())
		}
	}
	pools, err := e.client.ListPools(t.Context(), &brokerv1.ListPoolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pools.GetPools() {
		if p.GetJoinTarget() == nil {
			continue
		}
		want := p.GetCapacity()
		if p.GetDeleting() {
			want = 0
		}
		if st := p.GetStatus(); st.GetAllocated()-want != st.GetReleasing() {
			t.Errorf("pool %s: %d machines for %d wanted, but %d pool-shrink disruptions", p.GetName(), st.GetAllocated(), want, st.GetReleasing())
		}
	}
}

// perZone counts disruptions per MZ.
func perZone(ds []*brokerv1.Disruption) map[int32]int32 {
	out := map[int32]int32{}
	for _, d := range ds {
		out[d.GetMaintenanceZone()]++
	}
	return out
}

func TestJoinedPoolShrinksThroughDisruptions(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		e.joinedPool(t, "general", 100)

		p := e.resize(t, 60)
		if st := p.GetStatus(); st.GetAllocated() != 100 || st.GetReleasing() != 40 || condition(p).GetReason() != broker.ReasonReleasing {
			t.Errorf("pool after shrink = %v; want 100 allocated, 40 releasing, Releasing", st)
		}
		shrinks := e.disruptions(t, pending)
		if diff := cmp.Diff(uniform(2), perZone(shrinks)); diff != "" {
			t.Errorf("shrinks per MZ (-want +got):\n%s", diff)
		}
		for _, d := range shrinks {
			if d.GetReason() != poolShrink || d.GetActor() != "broker" || d.GetMessage() != "pool web shrinks from 100 to 60 machines" {
				t.Fatalf("shrink = %v", d)
			}
		}
		if n := len(e.members(t, 0)); n != 100 {
			t.Errorf("%d machines in the pool before any approval, want all 100 still", n)
		}

		// Shrinking further asks for the difference only, from the machines
		// that stay, evenly.
		e.resize(t, 50)
		if n := len(e.disruptions(t, pending)); n != 50 {
			t.Errorf("%d pending shrinks for 100 machines at capacity 50", n)
		}
		// The periodic reconcile agrees: nothing more to ask.
		if err := e.broker.ReconcileAll(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := len(e.disruptions(t, pending)); n != 50 {
			t.Errorf("%d pending shrinks after a resync, want 50", n)
		}
		checkInvariants(t, e)

		// The cluster approves one: it is completed and the machine leaves.
		done := e.approveShrinks(t, 1)[0]
		m := e.machine(t, done.GetMachine())
		if m.GetPool() != "" || m.GetState() != brokerv1.MachineState_MACHINE_STATE_AVAILABLE ||
			m.GetProvisionState() != brokerv1.ProvisionState_PROVISION_STATE_CLEAN {
			t.Errorf("released machine = pool %q, %s, %s; want no pool, available, clean (it never joined)", m.GetPool(), m.GetState(), m.GetProvisionState())
		}
		full, err := e.client.GetDisruption(t.Context(), &brokerv1.GetDisruptionRequest{Id: done.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		var trail []string
		for _, h := range full.GetDisruption().GetHistory() {
			trail = append(trail, fmt.Sprintf("%s by %s: %s", h.GetTo(), who(h), h.GetMessage()))
		}
		want := []string{
			"DISRUPTION_STATE_PENDING by broker: pool web shrinks from 100 to 60 machines",
			"DISRUPTION_STATE_APPROVED by system:anonymous (for pool-controller): Node drained",
			"DISRUPTION_STATE_COMPLETED by broker: machine left pool web",
		}
		if diff := cmp.Diff(want, trail); diff != "" {
			t.Errorf("history (-want +got):\n%s", diff)
		}
		e.approveShrinks(t, 49)
		p = e.getPool(t, "web")
		if st := p.GetStatus(); st.GetAllocated() != 50 || st.GetReleasing() != 0 || condition(p).GetStatus() != "True" || spreadOf(p) > 1 {
			t.Errorf("pool after every approval = %v; want 50 allocated, even, Satisfied", st)
		}
		checkInvariants(t, e)
	})
}

func TestJoinedPoolGrowsBackFirst(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		e.joinedPool(t, "general", 100)
		e.resize(t, 60)
		before := map[string]bool{}
		for _, m := range e.members(t, 0) {
			before[m.GetId()] = true
		}

		// Growing to 80 takes back 20 of the 40 machines on their way out.
		p := e.resize(t, 80)
		if st := p.GetStatus(); st.GetAllocated() != 100 || st.GetReleasing() != 20 {
			t.Errorf("pool at 80 = %v; want the same 100 machines, 20 releasing", st)
		}
		cancelled := e.disruptions(t, brokerv1.DisruptionState_DISRUPTION_STATE_CANCELLED)
		if len(cancelled) != 20 {
			t.Fatalf("%d shrinks cancelled, want 20", len(cancelled))
		}
		if diff := cmp.Diff(uniform(1), perZone(cancelled)); diff != "" {
			t.Errorf("cancelled shrinks per MZ (-want +got):\n%s", diff)
		}
		for _, d := range cancelled {
			if d.GetActor() != "broker" {
				t.Errorf("shrink %s was cancelled by %s, want broker", d.GetId(), d.GetActor())
			}
		}
		checkInvariants(t, e)

		// Growing past 100 takes back the rest, then allocates.
		p = e.resize(t, 110)
		if st := p.GetStatus(); st.GetAllocated() != 110 || st.GetReleasing() != 0 || spreadOf(p) > 1 {
			t.Errorf("pool at 110 = %v; want 110 machines, none releasing, even", st)
		}
		kept := 0
		for _, m := range e.members(t, 0) {
			if before[m.GetId()] {
				kept++
			}
		}
		if kept != 100 {
			t.Errorf("%d of the first 100 machines kept, want all", kept)
		}
		full, err := e.client.GetDisruption(t.Context(), &brokerv1.GetDisruptionRequest{Id: cancelled[0].GetId()})
		if err != nil {
			t.Fatal(err)
		}
		last := full.GetDisruption().GetHistory()[1]
		if last.GetActor() != "broker" || last.GetMessage() != "pool web grows back to 80 machines: the machine stays" {
			t.Errorf("cancellation = %v", last)
		}
		checkInvariants(t, e)
	})
}

func TestDeleteJoinedPool(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		e.joinedPool(t, "general", 20)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		watch, err := e.client.WatchPools(ctx, &brokerv1.WatchPoolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := watch.Recv(); err != nil { // web ADDED: the watch is listening
			t.Fatal(err)
		}

		if _, err := e.client.DeletePool(t.Context(), &brokerv1.DeletePoolRequest{Name: "web"}); err != nil {
			t.Fatal(err)
		}
		p := e.getPool(t, "web")
		if !p.GetDeleting() || p.GetStatus().GetReleasing() != 20 || condition(p).GetReason() != broker.ReasonDeleting {
			t.Errorf("pool being deleted = %v", p)
		}
		for _, d := range e.disruptions(t, pending) {
			if d.GetMessage() != "pool web is being deleted" {
				t.Errorf("shrink message = %q", d.GetMessage())
			}
		}
		checkInvariants(t, e)
		e.approveShrinks(t, 19)
		if p := e.getPool(t, "web"); p.GetStatus().GetAllocated() != 1 {
			t.Errorf("pool with one machine left = %v", p.GetStatus())
		}
		e.approveShrinks(t, 1)
		_, err = e.client.GetPool(t.Context(), &brokerv1.GetPoolRequest{Name: "web"})
		wantCode(t, err, codes.NotFound, `pool "web" does not exist`)
		for {
			ev, err := watch.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if ev.GetType() == brokerv1.EventType_EVENT_TYPE_DELETED {
				if ev.GetPool().GetName() != "web" {
					t.Errorf("deleted pool = %v", ev.GetPool())
				}
				break
			}
		}
	})
}

// TestPoolShrinkAndTheBudget: pool-shrink disruptions are not refused by the
// budget and skip machines under other disruptions, but they count against
// the pool's share for everything else.
func TestPoolShrinkAndTheBudget(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		e.joinedPool(t, "general", 40)
		members := e.members(t, 0)
		repair, err := e.disrupt(t, members[0].GetId(), brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR)
		if err != nil {
			t.Fatal(err)
		}
		upgrade, err := e.disrupt(t, members[1].GetId(), planned)
		if err != nil {
			t.Fatal(err)
		}
		e.approve(t, upgrade.GetId(), "cm")
		e.begin(t, upgrade.GetId(), "maintenance/test") // members[1] is disrupted now

		// Far over 10% of the pool: all asked for anyway.
		e.resize(t, 2)
		shrinks := e.disruptions(t, pending)
		asked := map[string]bool{}
		for _, d := range shrinks {
			if d.GetReason() == poolShrink {
				asked[d.GetMachine()] = true
			}
		}
		if len(asked) != 38 || asked[repair.GetMachine()] || asked[upgrade.GetMachine()] {
			t.Errorf("%d shrinks, of the machine under repair: %t, of the machine being upgraded: %t; want 38 of the others",
				len(asked), asked[repair.GetMachine()], asked[upgrade.GetMachine()])
		}
		var spare string
		for _, m := range e.members(t, 0) {
			if !asked[m.GetId()] && m.GetId() != repair.GetMachine() && m.GetId() != upgrade.GetMachine() {
				spare = m.GetId()
			}
		}
		if spare != "" {
			t.Fatalf("machine %s is neither kept nor asked for", spare)
		}
		// 40 open disruptions for capacity 2: another is over budget.
		if _, err := e.client.CancelDisruption(t.Context(), &brokerv1.CancelDisruptionRequest{Id: repair.GetId(), OnBehalfOf: "dcops"}); err != nil {
			t.Fatal(err)
		}
		_, err = e.disrupt(t, repair.GetMachine(), brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR)
		wantCode(t, err, codes.FailedPrecondition, "over budget: pool web already has")
		// Nor may anyone but the broker ask for a pool shrink.
		_, err = e.disrupt(t, repair.GetMachine(), poolShrink)
		wantCode(t, err, codes.InvalidArgument, "reason pool-shrink is the broker's own")
	})
}

// TestWipingMachinesAreNotAllocated: a machine released from a joined pool
// is wiped before anyone gets it (here no provisioner runs, so it stays
// wiping).
func TestWipingMachinesAreNotAllocated(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		gpu := &brokerv1.NodeProfile{Name: "gpu", MinGpus: 8, GpuModel: "nvidia-h100", NodeConfig: "kubelet-1.37-gpu"}
		e.profile(t, gpu)
		all := e.joinedPool(t, "gpu", 1000).GetStatus().GetAllocated() // every GPU machine
		// Mark them joined, as the provisioner would have.
		err := e.store.InTx(t.Context(), func(ctx context.Context, tx inventory.Tx) error {
			ms, err := tx.ListMachines(ctx, inventory.MachineFilter{Pool: "web"})
			if err != nil {
				return err
			}
			var ids []string
			for _, m := range ms {
				ids = append(ids, m.ID)
			}
			_, err = tx.UpdateProvision(ctx, inventory.ProvisionUpdate{IDs: ids, From: inventory.ProvisionClean, To: inventory.ProvisionJoined})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.DeletePool(t.Context(), &brokerv1.DeletePoolRequest{Name: "web"}); err != nil {
			t.Fatal(err)
		}
		for _, d := range e.approveShrinks(t, int(all)) {
			if m := e.machine(t, d.GetMachine()); m.GetProvisionState() != brokerv1.ProvisionState_PROVISION_STATE_WIPING || m.GetPool() != "" {
				t.Errorf("released joined machine = pool %q, %s; want no pool, wiping", m.GetPool(), m.GetProvisionState())
			}
		}
		p := e.pool(t, "train", "gpu", 4)
		if got := p.GetStatus().GetAllocated(); got != 0 || condition(p).GetReason() != broker.ReasonInsufficientInventory {
			t.Errorf("a new pool got %d machines while every fitting one is wiping: %v", got, condition(p))
		}
		checkInvariants(t, e)
	})
}

func TestJoinTargetInAndOut(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := start(t, dsn, broker.ServerOptions{})
		e.profile(t, general)
		created := e.pool(t, "web", "general", 10)
		if created.GetJoinTarget() != nil || created.GetNodeConfig() != "" {
			t.Errorf("pool created without a join target = %v", created)
		}
		resp, err := e.client.UpdatePool(t.Context(), &brokerv1.UpdatePoolRequest{
			Name: "web", Capacity: 10, JoinTarget: joinTarget(), NodeConfig: proto.String("kubelet-1.37-tuned"),
		})
		if err != nil {
			t.Fatal(err)
		}
		want := joinTarget()
		want.BootstrapToken = "" // write-only
		got := []*brokerv1.Pool{resp.GetPool(), e.getPool(t, "web")}
		list, err := e.client.ListPools(t.Context(), &brokerv1.ListPoolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, list.GetPools()...)
		for _, p := range got {
			if diff := cmp.Diff(want, p.GetJoinTarget(), protocmp.Transform()); diff != "" {
				t.Errorf("join target as returned (-want +got):\n%s", diff)
			}
			if p.GetNodeConfig() != "kubelet-1.37-tuned" || p.GetGeneration() != 2 {
				t.Errorf("pool = node config %q, generation %d; want kubelet-1.37-tuned, 2", p.GetNodeConfig(), p.GetGeneration())
			}
		}
		// The same again changes nothing; without a join target or node
		// config the pool keeps its own.
		for _, req := range []*brokerv1.UpdatePoolRequest{
			{Name: "web", Capacity: 10, JoinTarget: joinTarget(), NodeConfig: proto.String("kubelet-1.37-tuned")},
			{Name: "web", Capacity: 10},
		} {
			resp, err := e.client.UpdatePool(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if p := resp.GetPool(); p.GetGeneration() != 2 || p.GetJoinTarget().GetCluster() != "workload-1" || p.GetNodeConfig() != "kubelet-1.37-tuned" {
				t.Errorf("pool after a no-op update = %v", p)
			}
		}
		// Clearing the node config goes back to the profile's.
		resp, err = e.client.UpdatePool(t.Context(), &brokerv1.UpdatePoolRequest{Name: "web", Capacity: 10, NodeConfig: proto.String("")})
		if err != nil || resp.GetPool().GetNodeConfig() != "" || resp.GetPool().GetGeneration() != 3 {
			t.Errorf("pool after clearing its node config = %v, %v", resp.GetPool(), err)
		}
		for _, m := range e.members(t, 0) {
			if m.GetProvisionState() != brokerv1.ProvisionState_PROVISION_STATE_CLEAN {
				t.Errorf("machine %s is %s with no provisioner", m.GetId(), m.GetProvisionState())
			}
		}
	})
}

func TestJoinTargetValidation(t *testing.T) {
	e := start(t, t.TempDir()+"/broker.db", broker.ServerOptions{})
	e.profile(t, general)
	e.pool(t, "web", "general", 1)
	with := func(change func(jt *brokerv1.JoinTarget)) *brokerv1.JoinTarget {
		jt := joinTarget()
		change(jt)
		return jt
	}
	cases := []struct {
		name       string
		target     *brokerv1.JoinTarget
		nodeConfig string
		msg        string // after the field prefix
	}{
		{"no cluster", with(func(jt *brokerv1.JoinTarget) { jt.Cluster = "" }), "", "join_target.cluster is required"},
		{"bad cluster", with(func(jt *brokerv1.JoinTarget) { jt.Cluster = "Workload_1" }), "", `join_target.cluster "Workload_1" is not a cluster name`},
		{"no API server", with(func(jt *brokerv1.JoinTarget) { jt.ApiServer = "" }), "", "join_target.api_server is required"},
		{"API server over http", with(func(jt *brokerv1.JoinTarget) { jt.ApiServer = "http://workload-1.example:8080" }), "",
			`join_target.api_server "http://workload-1.example:8080" is not an https://host[:port] URL`},
		{"no CA", with(func(jt *brokerv1.JoinTarget) { jt.CaBundle = nil }), "", "join_target.ca_bundle is required"},
		{"CA not PEM", with(func(jt *brokerv1.JoinTarget) { jt.CaBundle = []byte("ca") }), "", "join_target.ca_bundle is not a PEM bundle of certificates"},
		{"CA with a private key", with(func(jt *brokerv1.JoinTarget) {
			jt.CaBundle = append(slices.Clone(testCA), "-----BEGIN EC PRIVATE KEY-----\nMHc=\n-----END EC PRIVATE KEY-----\n"...)
		}), "", "join_target.ca_bundle holds a private key"},
		{"no token", with(func(jt *brokerv1.JoinTarget) { jt.BootstrapToken = "" }), "", "join_target.bootstrap_token is required"},
		{"a kubeconfig for a token", with(func(jt *brokerv1.JoinTarget) { jt.BootstrapToken = testKubeconfig }), "",
			"join_target.bootstrap_token is a kubeconfig: the broker takes only a bootstrap token (<token-id>.<token-secret>), never a kubeconfig"},
		{"not a bootstrap token", with(func(jt *brokerv1.JoinTarget) { jt.BootstrapToken = "eyJhbGciOiJSUzI1NiJ9.service-account" }), "",
			"join_target.bootstrap_token is not a bootstrap token"},
		{"label key", with(func(jt *brokerv1.JoinTarget) { jt.NodeLabels = map[string]string{"bad key": "x"} }), "", `join_target.node_labels: "bad key" is not a label key`},
		{"label value", with(func(jt *brokerv1.JoinTarget) { jt.NodeLabels = map[string]string{"team": "a b"} }), "", `join_target.node_labels["team"]: "a b" is not a label value`},
		{"taint key", with(func(jt *brokerv1.JoinTarget) { jt.NodeTaints[0].Key = "" }), "", `join_target.node_taints[0].key "" is not a taint key`},
		{"taint effect", with(func(jt *brokerv1.JoinTarget) { jt.NodeTaints[0].Effect = "NoWay" }), "",
			`join_target.node_taints[0].effect "NoWay" is not one of NoSchedule, PreferNoSchedule, NoExecute`},
		{"taint twice", with(func(jt *brokerv1.JoinTarget) { jt.NodeTaints = append(jt.NodeTaints, jt.NodeTaints[0]) }), "",
			"join_target.node_taints[1]: taint fleet.strata.dev/startup:NoSchedule is given twice"},
		{"node config", joinTarget(), "kubelet 1.37", `node_config "kubelet 1.37" must be usable as the value of Node label fleet.strata.dev/node-config`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.CreatePool(t.Context(), &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
				Name: "new", Datacenter: "dc1", NodeProfile: "general", JoinTarget: tc.target, NodeConfig: tc.nodeConfig,
			}})
			wantCode(t, err, codes.InvalidArgument, "pool."+tc.msg)
			req := &brokerv1.UpdatePoolRequest{Name: "web", Capacity: 1, JoinTarget: tc.target}
			if tc.nodeConfig != "" {
				req.NodeConfig = proto.String(tc.nodeConfig)
			}
			_, err = e.client.UpdatePool(t.Context(), req)
			wantCode(t, err, codes.InvalidArgument, tc.msg)
			if err != nil && strings.HasPrefix(err.Error(), "pool.") {
				t.Errorf("UpdatePool names the field %q, want it without the pool. prefix", err)
			}
		})
	}
	_, err := e.client.CreateNodeProfile(t.Context(), &brokerv1.CreateNodeProfileRequest{Profile: &brokerv1.NodeProfile{Name: "x", NodeConfig: "a/b"}})
	wantCode(t, err, codes.InvalidArgument, `profile.node_config "a/b" must be usable as the value of Node label`)
}
