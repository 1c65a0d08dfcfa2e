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
	deadline
}

// deadline is what timeoutClient and timeoutReader add to a request.
type deadline struct {
	cluster string
	timeout time.Duration
	// noAnswer is told of each request that got no answer.
	noAnswer func(error)
}

func (c *timeoutClient) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.unreachable(ctx, c.Client.Get(ctx, key, obj, opts...))
}

func (c *timeoutClient) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.unreachable(ctx, c.Client.List(ctx, list, opts...))
}

func (c *timeoutClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.unreachable(ctx, c.Client.Create(ctx, obj, opts...))
}

func (c *timeoutClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.unreachable(ctx, c.Client.Update(ctx, obj, opts...))
}

func (c *timeoutClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.unreachable(ctx, c.Client.Patch(ctx, obj, patch, opts...))
}

func (c *timeoutClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return c.unreachable(ctx, c.Client.Delete(ctx, obj, opts...))
}

// timeoutReader is timeoutClient for a reader.
type timeoutReader struct {
	client.Reader
	deadline
}

func (r *timeoutReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.unreachable(ctx, r.Reader.Get(ctx, key, obj, opts...))
}

func (r *timeoutReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return r.unreachable(ctx, r.Reader.List(ctx, list, opts...))
}

// unreachable wraps an error of a request that got no answer in time (or no
// connection) as an UnreachableError; API errors stay as they are. ctx is the
// request's: a caller that gave up (canceled) says nothing of the cluster.
func (d deadline) unreachable(ctx context.Context, err error) error {
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) {
		if !errors.Is(ctx.Err(), context.Canceled) {
			d.noAnswer(err)
		}
		return &UnreachableError{Cluster: d.cluster, Err: err}
	}
	return err
}
