package statefulapp

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// Target is a shard manager and how to dial it.
type Target struct {
	// Endpoint is host:port.
	Endpoint string
	// TLS, when set, dials over TLS verified by its CA; nil dials in
	// plaintext (only when the app's spec says Plaintext).
	TLS *TargetTLS
}

// TargetTLS is how the shard manager's certificate is verified.
type TargetTLS struct {
	// CA is the PEM of the CA certificate(s) the shard manager's
	// certificate must chain to; it must parse (ParseCA).
	CA []byte
	// ServerName the certificate must be valid for; empty: the endpoint's
	// host.
	ServerName string
	// Source says where the CA came from, for messages ("key ca.crt of
	// Secret kv/kv-ca").
	Source string
}

// Transport is the target's transport.
func (t Target) Transport() appsv1alpha1.ShardManagerTransport {
	if t.TLS != nil {
		return appsv1alpha1.TransportTLS
	}
	return appsv1alpha1.TransportPlaintext
}

// key identifies a connection: a rotated CA or another server name is
// another connection, dialled afresh.
func (t Target) key() string {
	if t.TLS == nil {
		return "plaintext " + t.Endpoint
	}
	sum := sha256.Sum256(t.TLS.CA)
	return "tls " + t.Endpoint + " " + t.TLS.ServerName + " " + hex.EncodeToString(sum[:])
}

// ParseCA is the pool of the PEM certificates in pem; an error when it
// holds none.
func ParseCA(pem []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("it holds no PEM-encoded certificate")
	}
	return pool, nil
}

// HandshakeError is a call that failed because the TLS handshake with the
// shard manager failed: it was reached, but its certificate was not
// trusted (or it does not speak TLS).
type HandshakeError struct {
	Endpoint string
	// Source is where the CA came from.
	Source string
	Err    error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("TLS handshake with the shard manager at %s failed (CA: %s): %v", e.Endpoint, e.Source, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// ShardManagers gives the client of the shard manager of an app. The
// controller bounds every call with the app's callTimeoutSeconds.
type ShardManagers interface {
	// Client is the client of target for app; an app's earlier target, if
	// another, is no longer its.
	Client(app types.NamespacedName, target Target) (shardmanagerv1.ShardManagerServiceClient, error)
	// Forget drops the app's connection (the app is gone).
	Forget(app types.NamespacedName)
}

// reconnectMaxDelay bounds the wait between attempts to reach a shard
// manager that is down: once it is back, Strata's next call gets through
// within about this long (gRPC's default grows to two minutes).
const reconnectMaxDelay = 5 * time.Second

// Connections are ShardManagers over grpc-go: one connection per target
// (endpoint, transport, CA, server name), shared by the apps that name the
// same, made on first use and kept (gRPC reconnects it as needed), closed
// when no app uses it any more (its CA was rotated, the app is gone). Calls
// fail fast while a shard manager is unreachable: no answer, never an
// approval.
type Connections struct {
	opts []grpc.DialOption

	mu    sync.Mutex
	conns map[string]*connection
	// used: the key of each app's connection.
	used   map[types.NamespacedName]string
	closed bool
}

type connection struct {
	cc     *grpc.ClientConn
	client shardmanagerv1.ShardManagerServiceClient
	users  int
}

// NewConnections returns Connections that dial with opts besides their
// transport's (tests add theirs).
func NewConnections(opts ...grpc.DialOption) *Connections {
	cfg := backoff.DefaultConfig
	cfg.MaxDelay = reconnectMaxDelay
	opts = append([]grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{Backoff: cfg, MinConnectTimeout: reconnectMaxDelay})}, opts...)
	return &Connections{opts: opts, conns: map[string]*connection{}, used: map[types.NamespacedName]string{}}
}

// Client returns the client of the shard manager at target.
func (c *Connections) Client(app types.NamespacedName, target Target) (shardmanagerv1.ShardManagerServiceClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("the shard-manager connections are closed")
	}
	key := target.key()
	conn, ok := c.conns[key]
	if !ok {
		var err error
		if conn, err = c.dial(target); err != nil {
			return nil, err
		}
		c.conns[key] = conn
	}
	if old, ok := c.used[app]; !ok || old != key {
		conn.users++
		c.used[app] = key
		if ok {
			c.release(old)
		}
	}
	return conn.client, nil
}

// Forget drops the app's use of its connection, closing it when it was
// the last.
func (c *Connections) Forget(app types.NamespacedName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if key, ok := c.used[app]; ok {
		delete(c.used, app)
		c.release(key)
	}
}

// release drops one use of the connection of key; c.mu is held.
func (c *Connections) release(key string) {
	conn := c.conns[key]
	if conn == nil {
		return
	}
	if conn.users--; conn.users <= 0 {
		delete(c.conns, key)
		// Closing only stops the connection's calls in flight, which end
		// as no answer.
		_ = conn.cc.Close()
	}
}

// dial makes the connection of target: in plaintext only for a target
// without TLS, which only an app that says Plaintext yields.
func (c *Connections) dial(target Target) (*connection, error) {
	opts := append([]grpc.DialOption(nil), c.opts...)
	if target.TLS == nil {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		pool, err := ParseCA(target.TLS.CA)
		if err != nil {
			return nil, fmt.Errorf("the CA (%s) of the shard manager at %s: %w", target.TLS.Source, target.Endpoint, err)
		}
		hs := &handshakes{}
		creds := &recordingCreds{
			TransportCredentials: credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: target.TLS.ServerName, MinVersion: tls.VersionTLS12}),
			hs:                   hs,
		}
		opts = append(opts, grpc.WithTransportCredentials(creds),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
				// A new attempt: whether its handshake fails is yet to be seen.
				hs.set(nil)
				return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			}),
			grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				err := invoker(ctx, method, req, reply, cc, opts...)
				if status.Code(err) == codes.Unavailable {
					if hsErr := hs.get(); hsErr != nil {
						return &HandshakeError{Endpoint: target.Endpoint, Source: target.TLS.Source, Err: hsErr}
					}
				}
				return err
			}))
	}
	cc, err := grpc.NewClient(target.Endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the shard manager at %s: %w", target.Endpoint, err)
	}
	return &connection{cc: cc, client: shardmanagerv1.NewShardManagerServiceClient(cc)}, nil
}

// Close closes every connection.
func (c *Connections) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for key, conn := range c.conns {
		if err := conn.cc.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the connection %s: %w", key, err))
		}
		delete(c.conns, key)
	}
	clear(c.used)
	return errors.Join(errs...)
}

// handshakes holds the outcome of the last connection attempt's TLS
// handshake: gRPC reports a failed handshake only as an Unavailable
// connection error, in words.
type handshakes struct {
	mu   sync.Mutex
	last error
}

func (h *handshakes) set(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = err
}

func (h *handshakes) get() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// recordingCreds are TLS credentials that record each client handshake's
// outcome.
type recordingCreds struct {
	credentials.TransportCredentials
	hs *handshakes
}

func (c *recordingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, raw)
	c.hs.set(err)
	return conn, info, err
}

func (c *recordingCreds) Clone() credentials.TransportCredentials {
	return &recordingCreds{TransportCredentials: c.TransportCredentials.Clone(), hs: c.hs}
}
