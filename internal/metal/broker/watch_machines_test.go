package broker_test

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/strata-dev/strata/internal/metal/broker"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// mirror is what a client of WatchMachines keeps, the fleet aggregator's
// way: the machines by ID, each event applied as an upsert.
type mirror map[string]*brokerv1.Machine

// syncMirror receives a stream's listing up to its synced marker, checking
// that it is only ADDED machines, each once.
func syncMirror(t *testing.T, stream brokerv1.BrokerService_WatchMachinesClient) mirror {
	t.Helper()
	m := mirror{}
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("receiving the listing after %d machines: %v", len(m), err)
		}
		if resp.GetSynced() {
			if resp.GetType() != brokerv1.EventType_EVENT_TYPE_UNSPECIFIED || resp.GetMachine() != nil {
				t.Errorf("the synced marker carries %v", resp)
			}
			return m
		}
		id := resp.GetMachine().GetId()
		if resp.GetType() != brokerv1.EventType_EVENT_TYPE_ADDED || m[id] != nil {
			t.Fatalf("in the listing: %s %s (listed before: %t), want each machine ADDED once", resp.GetType(), id, m[id] != nil)
		}
		m[id] = resp.GetMachine()
	}
}

// sorted is the mirror's machines by ID, as ListMachines returns them.
func (m mirror) sorted() []*brokerv1.Machine {
	out := make([]*brokerv1.Machine, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[id])
	}
	return out
}

// equals says whether the mirror holds these machines and no other.
func (m mirror) equals(ms []*brokerv1.Machine) bool {
	if len(m) != len(ms) {
		return false
	}
	for _, mc := range ms {
		if !proto.Equal(m[mc.GetId()], mc) {
			return false
		}
	}
	return true
}

// follow applies the stream's MODIFIED events to m until it equals the
// inventory as ListMachines returns it. Every event must be a change: a
// machine whose update time differs from the one the mirror holds.
func (m mirror) follow(t *testing.T, e *env, stream brokerv1.BrokerService_WatchMachinesClient) int {
	t.Helper()
	want := e.allMachines(t)
	n := 0
	for !m.equals(want) {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("waiting for the mirror to equal the inventory after %d events (-inventory +mirror):\n%s\n%v",
				n, cmp.Diff(want, m.sorted(), protocmp.Transform()), err)
		}
		n++
		mc := resp.GetMachine()
		if resp.GetType() != brokerv1.EventType_EVENT_TYPE_MODIFIED || mc == nil {
			t.Fatalf("after the listing: %v, want MODIFIED machines", resp)
		}
		if old := m[mc.GetId()]; old != nil && proto.Equal(old.GetUpdateTime(), mc.GetUpdateTime()) {
			t.Errorf("machine %s sent again with the same update time %v", mc.GetId(), mc.GetUpdateTime().AsTime())
		}
		m[mc.GetId()] = mc
	}
	return n
}

// TestWatchMachines: a client mirrors the inventory from the stream: the
// listing, up to the synced marker, is ListMachines; the machines a pool
// takes and one a disruption takes down arrive as MODIFIED, until the
// mirror is the inventory again.
func TestWatchMachines(t *testing.T) {
	eachEngine(t, func(t *testing.T, dsn string) {
		e := startWith(t, dsn, broker.ServerOptions{}, broker.Options{MachineWatchInterval: 10 * time.Millisecond})
		e.profile(t, general)
		e.pool(t, "web", "general", 20)
		ctx, cancel := context.WithTimeout(t.Context(), waitDeadline)
		defer cancel()
		stream, err := e.client.WatchMachines(ctx, &brokerv1.WatchMachinesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		m := syncMirror(t, stream)
		if diff := cmp.Diff(e.allMachines(t), m.sorted(), protocmp.Transform()); diff != "" {
			t.Fatalf("the listing (-ListMachines +listed):\n%s", diff)
		}

		began := time.Now()
		if _, err := e.client.UpdatePool(ctx, &brokerv1.UpdatePoolRequest{Name: "web", Capacity: 30}); err != nil {
			t.Fatal(err)
		}
		victim := e.members(t, 0)[0].GetId()
		d, err := e.disrupt(t, victim, brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR)
		if err != nil {
			t.Fatal(err)
		}
		e.approve(t, d.GetId(), "cluster-manager/test")
		e.begin(t, d.GetId(), "repair/test")
		n := m.follow(t, e, stream)
		t.Logf("%d MODIFIED events brought the mirror up to date %s after the first write", n, time.Since(began))
		if n < 11 {
			t.Errorf("%d MODIFIED events; want at least 11: 10 machines allocated, 1 disrupted", n)
		}
		if got := m[victim].GetState(); got != brokerv1.MachineState_MACHINE_STATE_DISRUPTED {
			t.Errorf("machine %s in the mirror is %s, want disrupted", victim, got)
		}
	})
}

// TestWatchMachinesOfADatacenter: the stream of a datacenter lists its
// machines; one the inventory has not is NotFound.
func TestWatchMachinesOfADatacenter(t *testing.T) {
	e := start(t, filepath.Join(t.TempDir(), "broker.db"), broker.ServerOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), waitDeadline)
	defer cancel()
	stream, err := e.client.WatchMachines(ctx, &brokerv1.WatchMachinesRequest{Datacenter: "dc1"})
	if err != nil {
		t.Fatal(err)
	}
	if m := syncMirror(t, stream); len(m) != 400 {
		t.Errorf("dc1's listing holds %d machines, want 400", len(m))
	}
	stream, err = e.client.WatchMachines(ctx, &brokerv1.WatchMachinesRequest{Datacenter: "dc9"})
	if err == nil {
		_, err = stream.Recv()
	}
	wantCode(t, err, codes.NotFound, `datacenter "dc9" does not exist`)
}
