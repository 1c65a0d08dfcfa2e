package refstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/types/known/durationpb"

	refstorev1 "github.com/strata-dev/strata/proto/strata/refstore/v1"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// DefaultAddress is where `strata refstore serve` listens unless told
// otherwise: loopback.
const DefaultAddress = "127.0.0.1:7480"

// ServerOptions say how the store is reached.
type ServerOptions struct {
	// Address is host:port to listen on; port 0 picks a free one.
	Address string
	// Insecure allows a non-loopback address: the store authenticates no
	// client (and serves without TLS unless CertFile is set).
	Insecure bool
	// CertFile and KeyFile, both or neither, are the PEM serving
	// certificate (chain) and its key: with them the store serves TLS only,
	// and a StatefulApp dials it with spec.shardManager.transport TLS and
	// the CA that issued the certificate.
	CertFile, KeyFile string
}

// Validate keeps the store on loopback unless told otherwise, and wants
// a certificate and its key together.
func (o ServerOptions) Validate() error {
	var errs []error
	if (o.CertFile == "") != (o.KeyFile == "") {
		errs = append(errs, fmt.Errorf("--tls-cert-file %q and --tls-key-file %q: give both (TLS) or neither (plaintext)", o.CertFile, o.KeyFile))
	}
	host, _, err := net.SplitHostPort(o.Address)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("--listen %q is not host:port: %w", o.Address, err))...)
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if !loopback && !o.Insecure {
		errs = append(errs, fmt.Errorf("--listen %s is not a loopback address: the reference store authenticates no client; give --insecure to accept anyone", o.Address))
	}
	return errors.Join(errs...)
}

// TLS says whether the server serves TLS.
func (o ServerOptions) TLS() bool { return o.CertFile != "" }

// Server serves a store's ShardManagerService and RefStoreService, the
// gRPC health service and reflection on one port.
type Server struct {
	grpc     *grpc.Server
	health   *health.Server
	listener net.Listener
}

// Services are the gRPC services a Server serves beside health and
// reflection.
var Services = []string{shardmanagerv1.ShardManagerService_ServiceDesc.ServiceName, refstorev1.RefStoreService_ServiceDesc.ServiceName}

// NewServer listens and registers the services; Serve starts answering.
func NewServer(store *Store, o ServerOptions) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	var opts []grpc.ServerOption
	if o.TLS() {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the serving certificate %s and key %s: %w", o.CertFile, o.KeyFile, err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	}
	lis, err := net.Listen("tcp", o.Address)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", o.Address, err)
	}
	s := &Server{grpc: grpc.NewServer(opts...), health: health.NewServer(), listener: lis}
	shardmanagerv1.RegisterShardManagerServiceServer(s.grpc, &shardManagerServer{store: store})
	refstorev1.RegisterRefStoreServiceServer(s.grpc, &kvServer{store: store})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Serve answers until ctx is done, then stops gracefully.
func (s *Server) Serve(ctx context.Context) error {
	errs := make(chan error, 1)
	go func() { errs <- s.grpc.Serve(s.listener) }()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, name := range Services {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		s.grpc.Stop()
		if errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return fmt.Errorf("serving gRPC: %w", err)
	}
	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		s.grpc.Stop()
	}
	return nil
}

// shardManagerServer is the store's ShardManagerService.
type shardManagerServer struct {
	shardmanagerv1.UnimplementedShardManagerServiceServer
	store *Store
}

func (s *shardManagerServer) RequestOperation(_ context.Context, req *shardmanagerv1.RequestOperationRequest) (*shardmanagerv1.RequestOperationResponse, error) {
	d, err := s.store.RequestOperation(req.GetOperation())
	if err != nil {
		return nil, err
	}
	resp := &shardmanagerv1.RequestOperationResponse{Decision: d.Decision, Reason: d.Reason}
	if d.RetryAfter > 0 {
		resp.RetryAfter = durationpb.New(d.RetryAfter)
	}
	return resp, nil
}

func (s *shardManagerServer) CompleteOperation(_ context.Context, req *shardmanagerv1.CompleteOperationRequest) (*shardmanagerv1.CompleteOperationResponse, error) {
	if err := s.store.CompleteOperation(req.GetOperationId()); err != nil {
		return nil, err
	}
	return &shardmanagerv1.CompleteOperationResponse{}, nil
}

func (s *shardManagerServer) CancelOperation(_ context.Context, req *shardmanagerv1.CancelOperationRequest) (*shardmanagerv1.CancelOperationResponse, error) {
	if err := s.store.CancelOperation(req.GetOperationId()); err != nil {
		return nil, err
	}
	return &shardmanagerv1.CancelOperationResponse{}, nil
}

func (s *shardManagerServer) DescribeShards(_ context.Context, req *shardmanagerv1.DescribeShardsRequest) (*shardmanagerv1.DescribeShardsResponse, error) {
	return s.store.DescribeShards(req.GetNamespace(), req.GetApp())
}

// kvServer is the store's RefStoreService.
type kvServer struct {
	refstorev1.UnimplementedRefStoreServiceServer
	store *Store
}

func (s *kvServer) Put(_ context.Context, req *refstorev1.PutRequest) (*refstorev1.PutResponse, error) {
	r, err := s.store.Put(req.GetKey(), req.GetValue())
	if err != nil {
		return nil, err
	}
	return &refstorev1.PutResponse{Shard: int32(r.Shard), Offset: int64(r.Offset), Replicas: int32(r.Replicas)}, nil //nolint:gosec // small
}

func (s *kvServer) Get(_ context.Context, req *refstorev1.GetRequest) (*refstorev1.GetResponse, error) {
	r, err := s.store.Get(req.GetKey())
	if err != nil {
		return nil, err
	}
	return &refstorev1.GetResponse{Found: r.Found, Value: r.Value, Shard: int32(r.Shard), Offset: int64(r.Offset)}, nil //nolint:gosec // small
}

func (s *kvServer) Sample(context.Context, *refstorev1.SampleRequest) (*refstorev1.SampleResponse, error) {
	return s.store.Sample(), nil
}
