package statefulapp

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// ShardManagers gives the client of the shard manager serving at an
// endpoint (a StatefulApp's spec.shardManager.endpoint). The controller
// bounds every call with the app's callTimeoutSeconds.
type ShardManagers interface {
	Client(endpoint string) (shardmanagerv1.ShardManagerServiceClient, error)
}

// reconnectMaxDelay bounds the wait between attempts to reach a shard
// manager that is down: once it is back, Strata's next call gets through
// within about this long (gRPC's default grows to two minutes).
const reconnectMaxDelay = 5 * time.Second

// Connections are ShardManagers over grpc-go: one connection per endpoint,
// made on first use and kept (gRPC reconnects it as needed). Calls fail
// fast while a shard manager is unreachable: no answer, never an approval.
type Connections struct {
	opts []grpc.DialOption

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

// NewConnections returns Connections that dial with opts; without any,
// without TLS (the local datacenter's shard managers serve plain gRPC on
// loopback).
func NewConnections(opts ...grpc.DialOption) *Connections {
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	cfg := backoff.DefaultConfig
	cfg.MaxDelay = reconnectMaxDelay
	opts = append([]grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{Backoff: cfg, MinConnectTimeout: reconnectMaxDelay})}, opts...)
	return &Connections{opts: opts, conns: map[string]*grpc.ClientConn{}}
}

// Client returns the client of the shard manager at endpoint (host:port).
func (c *Connections) Client(endpoint string) (shardmanagerv1.ShardManagerServiceClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("the shard-manager connections are closed")
	}
	conn, ok := c.conns[endpoint]
	if !ok {
		var err error
		if conn, err = grpc.NewClient(endpoint, c.opts...); err != nil {
			return nil, fmt.Errorf("connecting to the shard manager at %s: %w", endpoint, err)
		}
		c.conns[endpoint] = conn
	}
	return shardmanagerv1.NewShardManagerServiceClient(conn), nil
}

// Close closes every connection.
func (c *Connections) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for endpoint, conn := range c.conns {
		if err := conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the connection to %s: %w", endpoint, err))
		}
		delete(c.conns, endpoint)
	}
	return errors.Join(errs...)
}
