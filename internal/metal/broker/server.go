package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/metal/broker/brokerclient"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// DefaultAddress is where the broker listens unless told otherwise: loopback.
const DefaultAddress = "127.0.0.1:7443"

// ServerOptions say how the broker is reached.
type ServerOptions struct {
	// Address is host:port to listen on.
	Address string
	// TLSCertFile and TLSKeyFile serve TLS; reloaded when they change.
	TLSCertFile, TLSKeyFile string
	// ClientCAFile is the CA of the clients' certificates: mutual TLS, the
	// production mode. A caller is its certificate's subject.
	ClientCAFile string
	// PolicyFile is a BrokerPolicy; empty: the built-in one.
	PolicyFile string
	// TokenFile holds a static bearer token, the legacy mode: its holder
	// is configv1alpha1.StaticTokenUser.
	TokenFile string
	// Insecure allows a non-loopback address without TLS and any
	// authentication: every caller is Anonymous and may do everything.
	Insecure bool
	// MetricsAddress serves Prometheus metrics at /metrics; empty disables.
	MetricsAddress string
}

// Validate enforces the security rules: loopback by default; anywhere else
// needs TLS and client certificates (or the legacy bearer token), or an
// explicit Insecure; a bearer token never travels in plaintext beyond
// loopback.
func (o ServerOptions) Validate() error {
	host, _, err := net.SplitHostPort(o.Address)
	if err != nil {
		return fmt.Errorf("--listen %q is not host:port: %w", o.Address, err)
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if o.ClientCAFile != "" && o.TLSCertFile == "" {
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key: client certificates are sent over TLS")
	}
	loopback := configv1alpha1.IsLoopbackHost(host)
	if o.TokenFile != "" {
		if o.Insecure {
			return errors.New("--insecure accepts anyone: a --token-file would guard nothing; give one or the other")
		}
		if o.TLSCertFile == "" && !loopback {
			return fmt.Errorf("--listen %s is not a loopback address, and a bearer token sent there in plaintext can be read by anyone on the network: "+
				"give --tls-cert and --tls-key (better: --tls-client-ca and client certificates)", o.Address)
		}
	}
	if loopback || o.Insecure {
		return nil
	}
	if o.TLSCertFile == "" || (o.ClientCAFile == "" && o.TokenFile == "") {
		return fmt.Errorf("--listen %s is not a loopback address: give --tls-cert, --tls-key and --tls-client-ca (client certificates), or --insecure to accept anyone", o.Address)
	}
	return nil
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
	authn := &authenticator{}
	if o.TLSCertFile != "" {
		cert, err := brokerclient.NewKeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("the broker's serving certificate: %w", err)
		}
		cfg := &tls.Config{GetCertificate: cert.GetCertificate, MinVersion: tls.VersionTLS12}
		if o.ClientCAFile != "" {
			if authn.clientCAs, err = brokerclient.LoadCAPool(o.ClientCAFile); err != nil {
				return nil, fmt.Errorf("the client CA: %w", err)
			}
			// Asked for, verified by authenticate: a caller without one
			// (a health probe) still connects, and a missing or unknown
			// certificate is answered Unauthenticated, not with a broken
			// handshake.
			cfg.ClientAuth = tls.RequestClientCert
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	if o.TokenFile != "" {
		raw, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading the token file: %w", err)
		}
		if authn.token = []byte(strings.TrimSpace(string(raw))); len(authn.token) == 0 {
			return nil, fmt.Errorf("token file %s is empty", o.TokenFile)
		}
	}
	policy := &configv1alpha1.BrokerPolicy{}
	if err := config.Load(o.PolicyFile, policy); err != nil {
		return nil, fmt.Errorf("the broker's policy: %w", err)
	}
	authz, err := NewAuthorizer(policy)
	if err != nil {
		return nil, fmt.Errorf("the broker's policy %s: %w", o.PolicyFile, err)
	}
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	unary := []grpc.UnaryServerInterceptor{metrics.UnaryServerInterceptor()}
	streams := []grpc.StreamServerInterceptor{metrics.StreamServerInterceptor()}
	g := &guard{authn: authn, authz: authz, log: b.log.WithName("authz")}
	unary = append(unary, g.unary, b.gateUnary)
	streams = append(streams, g.stream, b.gateStream)
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

// guard authenticates every call and authorizes it by the policy, before
// anything is read or written; health checks need no identity, so load
// balancers and clients can probe.
type guard struct {
	authn *authenticator
	authz *Authorizer
	log   logr.Logger
}

func (g *guard) check(ctx context.Context, method string, req any) (context.Context, error) {
	if strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		return ctx, nil
	}
	id, err := g.authn.authenticate(ctx)
	if err != nil {
		g.log.Info("Refused a call without a known identity", "rpc", method, "reason", status.Convert(err).Message())
		return ctx, err
	}
	// Without authentication (loopback development) there is no one to
	// tell apart: everyone may do everything.
	if !g.authn.anonymous() {
		if err := g.authz.Authorize(id, method, req); err != nil {
			g.log.Info("Refused a call its roles do not allow", "rpc", method, "identity", id.Name, "groups", id.Groups)
			return ctx, err
		}
	}
	return WithIdentity(ctx, id), nil
}

func (g *guard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := g.check(ctx, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (g *guard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := g.check(ss.Context(), info.FullMethod, nil)
	if err != nil {
		return err
	}
	return h(srv, &identityStream{ServerStream: ss, ctx: ctx})
}

// identityStream is a stream whose context carries the caller's identity.
type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }

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
