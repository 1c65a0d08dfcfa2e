package hub

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
)

// TestDeadline: a call without a deadline gets the configured one; a call
// with its own keeps it.
func TestDeadline(t *testing.T) {
	const timeout = time.Minute
	own, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	ownDeadline, _ := own.Deadline()
	cases := []struct {
		name string
		ctx  context.Context
		// want: the deadline the call sees, within a minute of it.
		want time.Time
	}{
		{name: "none: the timeout", ctx: context.Background(), want: time.Now().Add(timeout)},
		{name: "its own", ctx: own, want: ownDeadline},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got time.Time
			var ok bool
			err := deadline(timeout)(tc.ctx, "/m", nil, nil, nil, func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
				got, ok = ctx.Deadline()
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// Not a timing assertion: the deadlines of the two cases are an
			// hour apart.
			if !ok || got.Sub(tc.want).Abs() > 30*time.Second {
				t.Errorf("the call's deadline = %v (set: %v), want about %v", got, ok, tc.want)
			}
		})
	}
}

// TestDialAddresses: with several addresses, calls reach a broker that
// answers even when the first address does not.
func TestDialAddresses(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	_ = dead.Close() // nobody listens there now
	live, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(live) }()
	defer srv.Stop()

	conn, err := Dial(configv1alpha1.BrokerClient{
		Addresses: []string{deadAddr, live.Addr().String()}, Timeout: &metav1.Duration{Duration: time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close() //nolint:errcheck // test
	resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("a call through both addresses: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health = %v, want SERVING", resp.GetStatus())
	}
}

// TestDialRefused: a CA or token file that cannot be used is refused,
// naming the field.
func TestDialRefused(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	notPEM := filepath.Join(dir, "ca.crt")
	for path, content := range map[string]string{empty: "\n", notPEM: "not a certificate"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		cfg     configv1alpha1.BrokerClient
		wantErr string
	}{
		{name: "no address", cfg: configv1alpha1.BrokerClient{}, wantErr: "broker.addresses"},
		{name: "missing CA", cfg: configv1alpha1.BrokerClient{Addresses: []string{"b:1"}, TLSCAFile: filepath.Join(dir, "none")}, wantErr: "broker.tlsCAFile"},
		{name: "CA not PEM", cfg: configv1alpha1.BrokerClient{Addresses: []string{"b:1"}, TLSCAFile: notPEM}, wantErr: "broker.tlsCAFile " + notPEM + " holds no PEM certificate"},
		{name: "empty token", cfg: configv1alpha1.BrokerClient{Addresses: []string{"b:1"}, TokenFile: empty}, wantErr: "broker.tokenFile " + empty + " is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := Dial(tc.cfg)
			if err == nil {
				_ = conn.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Dial = %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}
