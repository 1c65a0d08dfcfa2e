package refstore

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/strata-dev/strata/internal/workload/guardrails"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// TestServerTLS serves the store with a certificate: a client that trusts
// its CA is answered, a plaintext one is not.
func TestServerTLS(t *testing.T) {
	ca, certFile, keyFile, err := guardrails.Certificates(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Namespace: "shop", App: "kv", Shards: 3, Replication: 3, MinInSync: 2, CatchUpBatch: DefaultCatchUpBatch})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(s, ServerOptions{Address: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("the CA does not parse")
	}
	for _, tc := range []struct {
		name  string
		creds credentials.TransportCredentials
		want  codes.Code
	}{
		{"a client that trusts the CA", credentials.NewClientTLSFromCert(pool, ""), codes.OK},
		{"a plaintext client", insecure.NewCredentials(), codes.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(tc.creds))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			callCtx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err = shardmanagerv1.NewShardManagerServiceClient(conn).DescribeShards(callCtx, &shardmanagerv1.DescribeShardsRequest{Namespace: "shop", App: "kv"})
			if got := status.Code(err); got != tc.want {
				t.Errorf("DescribeShards: %v, want %s", err, tc.want)
			}
		})
	}
}

func TestServerOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    ServerOptions
		want string
	}{
		{name: "loopback, plaintext", o: ServerOptions{Address: "127.0.0.1:0"}},
		{name: "loopback, TLS", o: ServerOptions{Address: "127.0.0.1:0", CertFile: "sm.crt", KeyFile: "sm.key"}},
		{name: "a key without its certificate", o: ServerOptions{Address: "127.0.0.1:0", KeyFile: "sm.key"},
			want: `--tls-cert-file "" and --tls-key-file "sm.key": give both (TLS) or neither (plaintext)`},
		{name: "not loopback, TLS: still no client authenticated", o: ServerOptions{Address: "0.0.0.0:7480", CertFile: "sm.crt", KeyFile: "sm.key"},
			want: "--listen 0.0.0.0:7480 is not a loopback address: the reference store authenticates no client; give --insecure to accept anyone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if got := errString(err); got != tc.want {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
