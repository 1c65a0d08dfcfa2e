package remote

import (
	"context"
	"errors"
	"net"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// timeoutClient gives each request a deadline, also reads served by the
// cache: a read of a kind the cache does not hold yet starts an informer,
// which waits for its first list. Errors of a request that found no answer
// become UnreachableErrors.
type timeoutClient struct {
	client.Client
	cluster string
	timeout time.Duration
}

func (c *timeoutClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return unreachable(c.cluster, c.Client.Get(ctx, key, obj, opts...))
}

func (c *timeoutClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return unreachable(c.cluster, c.Client.List(ctx, list, opts...))
}

func (c *timeoutClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return unreachable(c.cluster, c.Client.Create(ctx, obj, opts...))
}

func (c *timeoutClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return unreachable(c.cluster, c.Client.Update(ctx, obj, opts...))
}

func (c *timeoutClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return unreachable(c.cluster, c.Client.Patch(ctx, obj, patch, opts...))
}

func (c *timeoutClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return unreachable(c.cluster, c.Client.Delete(ctx, obj, opts...))
}

// timeoutReader is timeoutClient for a reader.
type timeoutReader struct {
	client.Reader
	cluster string
	timeout time.Duration
}

func (r *timeoutReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return unreachable(r.cluster, r.Reader.Get(ctx, key, obj, opts...))
}

func (r *timeoutReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return unreachable(r.cluster, r.Reader.List(ctx, list, opts...))
}

// unreachable wraps an error of a request that got no answer in time (or no
// connection) as an UnreachableError; API errors stay as they are.
func unreachable(cluster string, err error) error {
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) {
		return &UnreachableError{Cluster: cluster, Err: err}
	}
	return err
}
