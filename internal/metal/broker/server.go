package broker

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// DefaultAddress is where the broker listens unless told otherwise: loopback.
const DefaultAddress = "127.0.0.1:7443"

// ServerOptions say how the broker is reached.
type ServerOptions struct {
	// Address is host:port to listen on.
	Address string
	// TLSCertFile and TLSKeyFile serve TLS.
	TLSCertFile, TLSKeyFile string
	// TokenFile holds the bearer token that clients must present.
	TokenFile string
	// Insecure allows a non-loopback address without TLS and token.
	Insecure bool
	// MetricsAddress serves Prometheus metrics at /metrics; empty disables.
	MetricsAddress string
}

// Validate enforces the security rule: loopback by default; anywhere else
// needs TLS and a bearer token, or an explicit Insecure.
func (o ServerOptions) Validate() error {
	host, _, err := net.SplitHostPort(o.Address)
	if err != nil {
		return fmt.Errorf("--listen %q is not host:port: %w", o.Address, err)
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if isLoopback(host) || o.Insecure {
		return nil
	}
	if o.TLSCertFile == "" || o.TokenFile == "" {
		return fmt.Errorf("--listen %s is not a loopback address: give --tls-cert, --tls-key and --token-file, or --insecure to accept anyone", o.Address)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server is a running broker endpoint.
type Server struct {
	broker          *Broker
	grpc            *grpc.Server
	health          *health.Server
	listener        net.Listener
	metrics         *http.Server
	metricsListener net.Listener
	// extra are the services registered beside the broker.
	extra []string
}

// NewServer listens and registers the broker, the gRPC health service,
// server reflection and metrics. Serve starts answering.
func NewServer(b *Broker, o ServerOptions, registry *prometheus.Registry) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	var opts []grpc.ServerOption
	if o.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the TLS certificate: %w", err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	}
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	unary := []grpc.UnaryServerInterceptor{metrics.UnaryServerInterceptor()}
	streams := []grpc.StreamServerInterceptor{metrics.StreamServerInterceptor()}
	if o.TokenFile != "" {
		raw, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading the token file: %w", err)
		}
		token := strings.TrimSpace(string(raw))
		if token == "" {
			return nil, fmt.Errorf("token file %s is empty", o.TokenFile)
		}
		unary = append(unary, func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := authorize(ctx, info.FullMethod, token); err != nil {
				return nil, err
			}
			return h(ctx, req)
		})
		streams = append(streams, func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := authorize(ss.Context(), info.FullMethod, token); err != nil {
				return err
			}
			return h(srv, ss)
		})
	}
	unary = append(unary, b.gateUnary)
	streams = append(streams, b.gateStream)
	opts = append(opts, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(streams...))

	lis, err := net.Listen("tcp", o.Address)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", o.Address, err)
	}
	s := &Server{grpc: grpc.NewServer(opts...), health: health.NewServer(), listener: lis, broker: b}
	brokerv1.RegisterBrokerServiceServer(s.grpc, b)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	metrics.InitializeMetrics(s.grpc)
	if registry != nil {
		registry.MustRegister(metrics, newInventoryCollector(b.store), b.operations, b.leader.gauge)
	}
	if o.MetricsAddress != "" && registry != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
		// For Kubernetes' probes: alive while it answers; ready once it
		// knows whether it leads. A standby is ready: it answers health
		// checks, which is how clients find the leader.
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
		mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !b.leader.known.Load() {
				http.Error(w, "the broker does not know yet whether it leads", http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "ok")
		})
		s.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		if s.metricsListener, err = net.Listen("tcp", o.MetricsAddress); err != nil {
			_ = lis.Close()
			return nil, fmt.Errorf("listening for metrics on %s: %w", o.MetricsAddress, err)
		}
	}
	return s, nil
}

// authorize checks the bearer token; health checks need none, so load
// balancers can probe.
func authorize(ctx context.Context, method, token string) error {
	if strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if got, ok := strings.CutPrefix(v, "Bearer "); ok && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1 {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "a valid bearer token is required (authorization: Bearer <token>)")
}

// RegisterService serves another gRPC service beside the broker, behind the
// same listener, TLS and token (the local datacenter's sim service). Call it
// before Serve.
func (s *Server) RegisterService(desc *grpc.ServiceDesc, impl any) {
	s.grpc.RegisterService(desc, impl)
	s.extra = append(s.extra, desc.ServiceName)
}

// Addr is the address the server listens on.
func (s *Server) Addr() string {
	return s.listener.Addr().String()
}

// MetricsAddr is the address of the metrics endpoint, "" when disabled.
func (s *Server) MetricsAddr() string {
	if s.metricsListener == nil {
		return ""
	}
	return s.metricsListener.Addr().String()
}

// setHealth reports SERVING on the leader, NOT_SERVING on a standby, for
// every service and the server as a whole ("").
func (s *Server) setHealth(leading bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if leading {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, name := range append([]string{"", brokerv1.BrokerService_ServiceDesc.ServiceName}, s.extra...) {
		s.health.SetServingStatus(name, st)
	}
}

// followLeadership keeps the health service on the broker's role until ctx
// is done (health.Server.Shutdown ignores later changes).
func (s *Server) followLeadership(ctx context.Context, changed <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		var leading bool
		leading, changed = s.broker.Leading()
		s.setHealth(leading)
	}
}

// Serve answers until ctx is done, then stops gracefully.
func (s *Server) Serve(ctx context.Context) error {
	errs := make(chan error, 2)
	go func() { errs <- s.grpc.Serve(s.listener) }()
	if s.metrics != nil {
		go func() {
			if err := s.metrics.Serve(s.metricsListener); !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("serving metrics: %w", err)
			}
		}()
	}
	leading, changed := s.broker.Leading()
	s.setHealth(leading)
	go s.followLeadership(ctx, changed)
	select {
	case <-ctx.Done():
	case err := <-errs:
		s.grpc.Stop()
		return err
	}
	s.health.Shutdown()
	if s.metrics != nil {
		_ = s.metrics.Close()
	}
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second): // open watch streams do not end by themselves
		s.grpc.Stop()
	}
	return nil
}
