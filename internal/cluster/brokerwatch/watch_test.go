package brokerwatch_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/cluster/brokerwatch"
	"github.com/strata-dev/strata/internal/metal/broker/brokerclient"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// replica is a fake broker replica whose WatchPools lists one pool named
// after it, then holds the stream until the replica stops leading.
type replica struct {
	brokerv1.UnimplementedBrokerServiceServer
	name   string
	addr   string
	health *health.Server
	// stepDown ends the open streams, as a replica that stops leading does.
	stepDown chan struct{}
}

func (r *replica) WatchPools(_ *brokerv1.WatchPoolsRequest, stream brokerv1.BrokerService_WatchPoolsServer) error {
	if err := stream.Send(&brokerv1.WatchPoolsResponse{Type: brokerv1.EventType_EVENT_TYPE_ADDED, Pool: &brokerv1.Pool{Name: r.name}}); err != nil {
		return err
	}
	select {
	case <-r.stepDown:
		return status.Error(codes.Unavailable, "stopped leading")
	case <-stream.Context().Done():
		return nil
	}
}

func (r *replica) serving(leads bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if leads {
		st = healthpb.HealthCheckResponse_SERVING
	}
	r.health.SetServingStatus(brokerv1.BrokerService_ServiceDesc.ServiceName, st)
}

func startReplica(t *testing.T, name string, leads bool) *replica {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, addr: lis.Addr().String(), health: health.NewServer(), stepDown: make(chan struct{})}
	r.serving(leads)
	srv := grpc.NewServer()
	brokerv1.RegisterBrokerServiceServer(srv, r)
	healthpb.RegisterHealthServer(srv, r.health)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return r
}

// countingClient counts the watch streams opened and those that failed to
// open, and says when one begins.
type countingClient struct {
	brokerv1.BrokerServiceClient
	opened, failed atomic.Int64
	began          chan struct{}
}

func (c *countingClient) WatchPools(ctx context.Context, req *brokerv1.WatchPoolsRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[brokerv1.WatchPoolsResponse], error) {
	c.opened.Add(1)
	select {
	case c.began <- struct{}{}:
	default:
	}
	s, err := c.BrokerServiceClient.WatchPools(ctx, req, opts...)
	if err != nil {
		c.failed.Add(1)
	}
	return s, err
}

// TestPoolsResumeOnTheNewLeader: the leader ends its stream as it stops
// leading, and for a while no replica leads; the watch waits for the next
// leader instead of failing (and backing off ever longer), then resumes on
// it with its full list.
func TestPoolsResumeOnTheNewLeader(t *testing.T) {
	a, b := startReplica(t, "from-a", true), startReplica(t, "from-b", false)
	conn, err := brokerclient.Dial(brokerclient.Options{Addresses: []string{a.addr, b.addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close() //nolint:errcheck // test connection
	c := &countingClient{BrokerServiceClient: brokerv1.NewBrokerServiceClient(conn), began: make(chan struct{}, 1)}
	w := brokerwatch.Pools(c, func(resp *brokerv1.WatchPoolsResponse) client.Object {
		return brokerwatch.Pool(resp.GetPool().GetName())
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the watch ended with %v", err)
		}
	}()
	next := func(want string) {
		t.Helper()
		select {
		case e := <-w.Events():
			if e.Object.GetName() != want {
				t.Fatalf("event for %s, want %s", e.Object.GetName(), want)
			}
		case <-time.After(time.Minute): // a bound on the wait, not a speed target
			t.Fatalf("no event for %s", want)
		}
	}
	next("from-a")
	<-c.began // the first stream

	a.serving(false)
	close(a.stepDown)
	<-c.began // the watch tries again while no replica leads
	b.serving(true)
	next("from-b")
	if n := c.failed.Load(); n != 0 {
		t.Errorf("%d of %d watch streams failed to open during the failover, want none: the watch waits for a leader", n, c.opened.Load())
	}
}
