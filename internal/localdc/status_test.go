package localdc

import (
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestDatacenterStateNotReady(t *testing.T) {
	ready := ClusterState{Name: "hub", Ready: true}
	serving := BrokerState{Address: "127.0.0.1:1", Serving: true}
	cases := map[string]struct {
		state DatacenterState
		want  []string
	}{
		"everything ready": {state: DatacenterState{Clusters: []ClusterState{ready}, Broker: serving}},
		"a cluster and the broker": {
			state: DatacenterState{
				Clusters: []ClusterState{ready, {Name: "workload-1", Reason: "3 of 5 components running"}},
				Broker:   BrokerState{Reason: "not reachable: run `strata up`"},
			},
			want: []string{"cluster workload-1 (3 of 5 components running)", "the Compute Broker (not reachable: run `strata up`)"},
		},
		"a component process": {
			state: DatacenterState{
				Clusters: []ClusterState{ready}, Broker: serving,
				Components: []ComponentState{{Name: "hub-1", Alive: true, Ready: true}, {Name: "hub-2", Reason: "not running: run `strata up`"}},
			},
			want: []string{"process hub-2 (not running: run `strata up`)"},
		},
		"no component process runs": {
			state: DatacenterState{
				Clusters: []ClusterState{ready}, Broker: serving,
				Components: []ComponentState{{Name: "hub-1", Reason: "not running"}, {Name: "webhook-hub", Reason: "not running"}},
			},
			want: []string{"the component processes (none running: run `strata up`)"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.state.NotReady()); diff != "" {
				t.Errorf("NotReady (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBrokerState: `strata status` asks every broker replica's gRPC health
// and names the one that serves; with none serving, it says why for each.
func TestBrokerState(t *testing.T) {
	dc, err := newDatacenter("v1.37.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.planProcesses(1, 2, false); err != nil {
		t.Fatal(err)
	}
	standby, leader := healthServer(t, dc.BrokerPort), healthServer(t, dc.Processes["broker-2"].GRPC)
	standby.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	leader.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	want := BrokerState{Address: loopback(dc.BrokerPort) + "," + loopback(dc.Processes["broker-2"].GRPC), Serving: true, Replica: "broker-2"}
	if diff := cmp.Diff(want, brokerState(t.Context(), t.TempDir(), dc)); diff != "" {
		t.Errorf("brokerState with broker-2 leading (-want +got):\n%s", diff)
	}
	leader.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	want = BrokerState{Address: want.Address, Reason: "broker-1: health check says NOT_SERVING; broker-2: health check says NOT_SERVING"}
	if diff := cmp.Diff(want, brokerState(t.Context(), t.TempDir(), dc)); diff != "" {
		t.Errorf("brokerState with no leader (-want +got):\n%s", diff)
	}
}

// healthServer serves the gRPC health service on a loopback port until the
// test ends.
func healthServer(t *testing.T, port uint32) *health.Server {
	t.Helper()
	l, err := net.Listen("tcp", loopback(port))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	h := health.NewServer()
	healthpb.RegisterHealthServer(srv, h)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return h
}
