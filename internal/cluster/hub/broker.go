package hub

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
)

// Dial connects to the Compute Broker as cfg (defaulted) says: one target
// as gRPC resolves it (dns:///... finds every replica behind a headless
// Service), or several host:port addresses; TLS when a CA is given, a
// bearer token when a token file is; and a deadline on every unary call
// that has none (watch streams last as long as their context).
func Dial(cfg configv1alpha1.BrokerClient) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the broker's CA (broker.tlsCAFile): %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker.tlsCAFile %s holds no PEM certificate", cfg.TLSCAFile)
		}
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if cfg.TokenFile != "" {
		raw, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading the broker's token (broker.tokenFile): %w", err)
		}
		token := strings.TrimSpace(string(raw))
		if token == "" {
			return nil, fmt.Errorf("broker.tokenFile %s is empty", cfg.TokenFile)
		}
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: token, tls: cfg.TLSCAFile != ""}))
	}
	timeout := configv1alpha1.DefaultBrokerTimeout
	if cfg.Timeout != nil {
		timeout = cfg.Timeout.Duration
	}
	opts = append(opts, grpc.WithUnaryInterceptor(deadline(timeout)))
	target := ""
	switch len(cfg.Addresses) {
	case 0:
		return nil, fmt.Errorf("broker.addresses: no address of the broker")
	case 1:
		target = cfg.Addresses[0]
	default:
		// Several addresses: one resolver that knows them all.
		r := manual.NewBuilderWithScheme("strata-broker")
		addrs := make([]resolver.Address, len(cfg.Addresses))
		for i, a := range cfg.Addresses {
			addrs[i] = resolver.Address{Addr: a}
		}
		r.InitialState(resolver.State{Addresses: addrs})
		opts = append(opts, grpc.WithResolvers(r))
		target = r.Scheme() + ":///broker"
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the broker at %s: %w", strings.Join(cfg.Addresses, ","), err)
	}
	return conn, nil
}

// deadline gives each unary call without a deadline one of timeout.
func deadline(timeout time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// bearer presents the broker's token on every call.
type bearer struct {
	token string
	tls   bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity: a token over plaintext is allowed only where
// the operator chose no CA (a loopback broker, as in the local datacenter).
func (b bearer) RequireTransportSecurity() bool { return b.tls }
