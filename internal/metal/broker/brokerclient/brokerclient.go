// Package brokerclient dials the Compute Broker the one way every client
// does (the hub's controllers, the local datacenter, the CLI): every replica
// at once, calls sent only to the one that reports SERVING on the gRPC
// health service (the leader), and a deadline on every unary call.
package brokerclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // registers client-side health checking
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// DefaultTimeout is the deadline of a unary call whose context has none.
const DefaultTimeout = 30 * time.Second

// serviceConfig balances over every replica and sends calls only to those
// whose health service reports the broker SERVING: the leader.
var serviceConfig = fmt.Sprintf(`{
	"loadBalancingConfig": [{"round_robin": {}}],
	"healthCheckConfig": {"serviceName": %q}
}`, brokerv1.BrokerService_ServiceDesc.ServiceName)

// Options say how to reach the broker.
type Options struct {
	// Addresses are the replicas, host:port each; or a single gRPC target
	// such as dns:///strata-broker.strata-system.svc:9090 that resolves to
	// all of them.
	Addresses []string
	// TLS, when set, is the TLS configuration; nil dials without TLS.
	TLS *tls.Config
	// Certificate, when set, is the client certificate presented to the
	// broker: the caller's identity (needs TLS).
	Certificate *KeyPair
	// Token, when set, is sent as a bearer token with every call: the
	// legacy alternative to a certificate. Refused without TLS to an
	// address that is not loopback.
	Token string
	// Timeout is the deadline of a unary call whose context has none;
	// DefaultTimeout when zero. Streams (watches) have none.
	Timeout time.Duration
	// WaitForReady makes calls wait (within their deadline) for a replica
	// that serves instead of failing at once with Unavailable: a failover
	// then delays calls rather than failing them. For long-running clients
	// (the hub); a person at the CLI wants to hear at once that nothing
	// answers.
	WaitForReady bool
}

// ParseAddresses splits a comma-separated list of broker addresses (the
// CLI's --broker), refusing empty entries.
func ParseAddresses(list string) ([]string, error) {
	var addrs []string
	for a := range strings.SplitSeq(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil, fmt.Errorf("broker addresses %q: an empty address in the list", list)
		}
		addrs = append(addrs, a)
	}
	return addrs, nil
}

// Dial returns a connection to the broker's replicas. It does not wait for
// them: calls wait for, or fail fast without, a serving replica.
func Dial(o Options) (*grpc.ClientConn, error) {
	if len(o.Addresses) == 0 {
		return nil, errors.New("dialing the broker: no address")
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("dialing the broker: the call timeout must not be negative, not %s", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if err := o.validateCredentials(); err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if o.TLS != nil {
		cfg := o.TLS.Clone()
		if o.Certificate != nil {
			cfg.GetClientCertificate = o.Certificate.GetClientCertificate
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithChainUnaryInterceptor(deadline(o.Timeout)),
	}
	if o.WaitForReady {
		opts = append(opts, grpc.WithDefaultCallOptions(grpc.WaitForReady(true)))
	}
	if o.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(o.Token)))
	}
	target := o.Addresses[0]
	if len(o.Addresses) > 1 {
		for _, a := range o.Addresses {
			if strings.Contains(a, "://") {
				return nil, fmt.Errorf("dialing the broker: %q is a resolver target, give it alone, not in a list", a)
			}
		}
		// A resolver of its own per connection, holding the list.
		r := manual.NewBuilderWithScheme("strata-broker")
		state := resolver.State{}
		for _, a := range o.Addresses {
			// TLS verifies each replica by its own host, not by the
			// target's made-up authority.
			host, _, err := net.SplitHostPort(a)
			if err != nil {
				return nil, fmt.Errorf("dialing the broker: %q is not host:port: %w", a, err)
			}
			state.Endpoints = append(state.Endpoints, resolver.Endpoint{Addresses: []resolver.Address{{Addr: a, ServerName: host}}})
		}
		r.InitialState(state)
		opts = append(opts, grpc.WithResolvers(r))
		target = r.Scheme() + ":///replicas"
	}
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("dialing the broker at %s: %w", strings.Join(o.Addresses, ","), err)
	}
	return conn, nil
}

// validateCredentials refuses what would leak a credential: a bearer
// token in plaintext beyond loopback, or a certificate without TLS.
func (o Options) validateCredentials() error {
	if o.TLS != nil {
		return nil
	}
	if o.Certificate != nil {
		return errors.New("dialing the broker: a client certificate needs TLS (the broker's CA)")
	}
	if o.Token == "" {
		return nil
	}
	for _, a := range o.Addresses {
		if !configv1alpha1.IsLoopbackTarget(a) {
			return fmt.Errorf("dialing the broker: refusing to send a bearer token in plaintext to %s, which is not a loopback address: "+
				"anyone on the network could read it; give the broker's CA (TLS), better a client certificate", a)
		}
	}
	return nil
}

// deadline gives a unary call without a deadline one, so no call hangs on
// a broker that does not answer.
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

// bearer sends a bearer token with every call, streams included.
type bearer string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: a
// loopback broker may run without TLS.
func (bearer) RequireTransportSecurity() bool { return false }
