package brokerclient_test

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/strata-dev/strata/internal/metal/broker/brokerclient"
	"github.com/strata-dev/strata/internal/testutil/testbroker"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// waitDeadline bounds the waits of these tests: a bound, not a speed target.
const waitDeadline = time.Minute

// replica is a fake broker replica: GetPool answers with its name,
// ListPools never answers, and its health is set by the test.
type replica struct {
	brokerv1.UnimplementedBrokerServiceServer
	name   string
	addr   string
	health *health.Server
}

func (r *replica) GetPool(context.Context, *brokerv1.GetPoolRequest) (*brokerv1.GetPoolResponse, error) {
	return &brokerv1.GetPoolResponse{Pool: &brokerv1.Pool{Name: r.name}}, nil
}

func (r *replica) ListPools(ctx context.Context, _ *brokerv1.ListPoolsRequest) (*brokerv1.ListPoolsResponse, error) {
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
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
	r := &replica{name: name, addr: lis.Addr().String(), health: health.NewServer()}
	r.serving(leads)
	srv := grpc.NewServer()
	brokerv1.RegisterBrokerServiceServer(srv, r)
	healthpb.RegisterHealthServer(srv, r.health)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return r
}

func dial(t *testing.T, o brokerclient.Options) brokerv1.BrokerServiceClient {
	t.Helper()
	conn, err := brokerclient.Dial(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return brokerv1.NewBrokerServiceClient(conn)
}

// TestDialFollowsHealth: of two replicas, calls go only to the one that
// reports SERVING, and follow it when the other takes over.
func TestDialFollowsHealth(t *testing.T) {
	a, b := startReplica(t, "a", true), startReplica(t, "b", false)
	c := dial(t, brokerclient.Options{Addresses: []string{a.addr, b.addr}, WaitForReady: true})
	answers := func() []string {
		var got []string
		for range 6 {
			resp, err := c.GetPool(t.Context(), &brokerv1.GetPoolRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, resp.GetPool().GetName())
		}
		return got
	}
	if diff := cmp.Diff([]string{"a", "a", "a", "a", "a", "a"}, answers()); diff != "" {
		t.Errorf("while a leads, answers (-want +got):\n%s", diff)
	}

	a.serving(false)
	b.serving(true)
	// The client watches each replica's health on its own stream: for a
	// moment it may see b SERVING before a NOT_SERVING, and send to both.
	// Once it saw both, every call goes to b.
	giveUp := time.Now().Add(waitDeadline)
	for {
		got := answers()
		if slices.Equal(got, []string{"b", "b", "b", "b", "b", "b"}) {
			break
		}
		if time.Now().After(giveUp) {
			t.Fatalf("once b leads, calls still reach a: %v", got)
		}
	}
}

// TestDialDeadline: a unary call without a deadline gets the client's, so a
// broker that never answers does not hold the caller forever; a call's own
// deadline stands.
func TestDialDeadline(t *testing.T) {
	a := startReplica(t, "a", true)
	c := dial(t, brokerclient.Options{Addresses: []string{a.addr}, Timeout: 100 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		_, err := c.ListPools(context.Background(), &brokerv1.ListPoolsRequest{})
		done <- err
	}()
	select {
	case err := <-done:
		if status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("a call to a broker that never answers = %v, want DeadlineExceeded", err)
		}
	case <-time.After(waitDeadline):
		t.Fatal("a call without a deadline to a broker that never answers never returned")
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.ListPools(ctx, &brokerv1.ListPoolsRequest{}); status.Code(err) != codes.Canceled {
		t.Errorf("a cancelled call = %v, want Canceled: the caller's context stands", err)
	}
}

func TestDialRefusesBadOptions(t *testing.T) {
	cases := []struct {
		name string
		o    brokerclient.Options
		want string
	}{
		{name: "no address", want: "dialing the broker: no address"},
		{name: "negative timeout", o: brokerclient.Options{Addresses: []string{"127.0.0.1:1"}, Timeout: -time.Second},
			want: "dialing the broker: the call timeout must not be negative, not -1s"},
		{name: "a target in a list", o: brokerclient.Options{Addresses: []string{"127.0.0.1:1", "dns:///broker:9090"}},
			want: `dialing the broker: "dns:///broker:9090" is a resolver target, give it alone, not in a list`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := brokerclient.Dial(tc.o)
			if err == nil {
				_ = conn.Close()
			}
			if got := errString(err); got != tc.want {
				t.Errorf("Dial = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseAddresses(t *testing.T) {
	cases := []struct {
		list    string
		want    []string
		wantErr string
	}{
		{list: "127.0.0.1:7443", want: []string{"127.0.0.1:7443"}},
		{list: "a:9090, b:9090", want: []string{"a:9090", "b:9090"}},
		{list: "dns:///strata-broker.strata-system.svc:9090", want: []string{"dns:///strata-broker.strata-system.svc:9090"}},
		{list: "a:9090,,b:9090", wantErr: `broker addresses "a:9090,,b:9090": an empty address in the list`},
	}
	for _, tc := range cases {
		got, err := brokerclient.ParseAddresses(tc.list)
		if errString(err) != tc.wantErr {
			t.Errorf("ParseAddresses(%q) error = %v, want %q", tc.list, err, tc.wantErr)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseAddresses(%q) (-want +got):\n%s", tc.list, diff)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestDialReplicasOverTLS: with a list of replicas, each is verified by
// its own host's certificate (not by the made-up authority of the list's
// target), and presents the client certificate.
func TestDialReplicasOverTLS(t *testing.T) {
	ca := testbroker.NewPKI(t)
	first, _, _ := testbroker.StartServerWith(t, 20, 0, ca.ServerOptions())
	second, _, _ := testbroker.StartServerWith(t, 20, 0, ca.ServerOptions())
	pool, err := brokerclient.LoadCAPool(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := brokerclient.NewKeyPair(ca.Client("root", "strata:admin"))
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, brokerclient.Options{Addresses: []string{first, second}, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		Certificate: cert, WaitForReady: true, Timeout: 10 * time.Second})
	for range 4 { // round robin: both replicas serve
		if _, err := c.ListSKUs(t.Context(), &brokerv1.ListSKUsRequest{}); err != nil {
			t.Fatalf("ListSKUs over TLS to %s,%s: %v", first, second, err)
		}
	}
}
