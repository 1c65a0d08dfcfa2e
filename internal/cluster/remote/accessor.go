package remote

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// informerTimeout bounds the requests of the Node informer. It must be longer
// than a watch: the reflector asks the server to end each watch within 5 to
// 10 minutes, and the HTTP client's timeout covers reading the whole body.
const informerTimeout = 15 * time.Minute

// accessor is the connection to one workload cluster, built from one
// kubeconfig. Its run loop connects, probes and reconnects; callers only read
// its state, so none of them ever waits on another cluster.
type accessor struct {
	c          *Clusters
	name       string
	kubeconfig []byte
	hash       [sha256.Size]byte

	ctx    context.Context // ends when the accessor is closed
	cancel context.CancelFunc
	tried  chan struct{} // closed when the first connection attempt ended
	done   chan struct{} // closed when run has returned and the cache stopped

	mu      sync.RWMutex
	conn    *connection // nil while disconnected
	lastErr error       // why it is disconnected
	// suspect is why the connection is not trusted, set when one of its
	// requests got no answer in time and cleared by the next good probe:
	// meanwhile callers get an UnreachableError at once instead of each
	// waiting for a deadline of its own.
	suspect error
	kick    chan struct{} // asks the health loop to probe now
}

// connection is one connected client and cache of a cluster.
type connection struct {
	cluster *Cluster
	probe   rest.Interface
	stop    context.CancelFunc
	stopped chan struct{} // closed when the cache has stopped
}

func newAccessor(c *Clusters, name string, kubeconfig []byte, hash [sha256.Size]byte) *accessor {
	ctx, cancel := context.WithCancel(c.ctx)
	return &accessor{
		c: c, name: name, kubeconfig: kubeconfig, hash: hash,
		ctx: ctx, cancel: cancel, tried: make(chan struct{}), done: make(chan struct{}), kick: make(chan struct{}, 1),
	}
}

// current is the connection, or why there is none.
func (a *accessor) current() (*Cluster, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	switch {
	case a.conn == nil:
		return nil, &UnreachableError{Cluster: a.name, Err: a.lastErr}
	case a.suspect != nil:
		return nil, &UnreachableError{Cluster: a.name, Err: a.suspect}
	}
	return a.conn.cluster, nil
}

// noAnswer is called when a request got no answer in time: the cluster is
// not trusted until a probe succeeds, which the health loop makes now.
func (a *accessor) noAnswer(err error) {
	a.mu.Lock()
	if a.conn != nil && a.suspect == nil {
		a.suspect = fmt.Errorf("a request got no answer: %w", err)
	}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *accessor) trust() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.suspect = nil
}

func (a *accessor) close() { a.cancel() }

func (a *accessor) set(conn *connection, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.conn, a.lastErr, a.suspect = conn, err, nil
}

// run connects, watches the connection's health and reconnects with backoff
// until the accessor is closed.
func (a *accessor) run() {
	logger := log.FromContext(a.c.ctx).WithName("remote").WithValues("cluster", a.name)
	defer close(a.done)
	backoff := a.c.opts.ReconnectInterval
	first := true
	for a.ctx.Err() == nil {
		conn, err := a.connect()
		if err != nil {
			err = fmt.Errorf("connecting: %w", err)
		}
		a.set(conn, err)
		if first {
			close(a.tried)
			first = false
		}
		if err != nil {
			logger.Info("Could not connect to the workload cluster; trying again", "error", err.Error(), "after", backoff)
			if !a.wait(backoff) || !a.registered() {
				return
			}
			backoff = min(2*backoff, a.c.opts.MaxReconnectInterval)
			continue
		}
		logger.V(1).Info("Connected to the workload cluster")
		backoff = a.c.opts.ReconnectInterval
		err = a.watchHealth(conn)
		if err != nil {
			logger.Info("Disconnected from the workload cluster", "reason", err.Error())
		} else {
			err = errors.New("the connection was closed")
		}
		a.set(nil, err)
		conn.stop()
		<-conn.stopped
	}
}

// wait waits d, or less if the accessor is closed; it says whether it was not.
func (a *accessor) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-a.ctx.Done():
		return false
	}
}

// watchHealth probes the connection every ProbeInterval, at once when a
// request got no answer, and every ReconnectInterval after a failure. It
// returns why the connection must go: ProbeFailureThreshold probes in a row
// failed, or the accessor was closed (nil).
func (a *accessor) watchHealth(conn *connection) error {
	failures := 0
	for {
		next := a.c.opts.ProbeInterval
		if failures > 0 {
			next = min(next, a.c.opts.ReconnectInterval)
		}
		t := time.NewTimer(next)
		select {
		case <-t.C:
		case <-a.kick:
		case <-a.ctx.Done():
		}
		t.Stop()
		if a.ctx.Err() != nil || !a.registered() {
			return nil
		}
		ctx, cancel := context.WithTimeout(a.ctx, a.c.opts.ProbeTimeout)
		_, err := conn.probe.Get().AbsPath("/version").DoRaw(ctx)
		cancel()
		if err == nil || a.ctx.Err() != nil {
			failures = 0
			a.trust()
			continue
		}
		failures++
		if failures >= a.c.opts.ProbeFailureThreshold {
			return fmt.Errorf("%d health probes in a row failed, the last with: %w", failures, err)
		}
	}
}

// registered says whether the accessor still serves its Cluster, and closes
// it otherwise: when the Cluster left the hub, or its kubeconfig changed (the
// next Get builds a new accessor).
func (a *accessor) registered() bool {
	ctx, cancel := context.WithTimeout(a.ctx, a.c.opts.RequestTimeout)
	defer cancel()
	fc := &fleetv1alpha1.Cluster{}
	err := a.c.hub.Get(ctx, client.ObjectKey{Name: a.name}, fc)
	switch {
	case apierrors.IsNotFound(err):
		log.FromContext(a.c.ctx).WithName("remote").Info("Closing the connection of a Cluster that left the hub", "cluster", a.name)
		a.c.forget(a)
		return false
	case err != nil:
		return a.ctx.Err() == nil // the hub is not the workload cluster's problem
	}
	if kubeconfig, err := Kubeconfig(ctx, a.c.hub, fc); err == nil && sha256.Sum256(kubeconfig) != a.hash {
		a.c.forget(a)
		return false
	}
	return a.ctx.Err() == nil
}

// connect builds the clients and the Node cache of the cluster, within
// ConnectTimeout.
func (a *accessor) connect() (*connection, error) {
	o := a.c.opts
	ctx, cancel := context.WithTimeout(a.ctx, o.ConnectTimeout)
	defer cancel()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(a.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKubeconfig, err)
	}
	cfg.QPS, cfg.Burst = o.QPS, o.Burst
	// Every request but the informer's gets the deadline from its HTTP
	// client; Get and List also from their context (see timeoutClient).
	cfg.Timeout = o.RequestTimeout
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKubeconfig, err)
	}
	dc, err := discovery.NewDiscoveryClientForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKubeconfig, err)
	}
	probe := dc.RESTClient()
	// Asked first so that an API server that does not answer fails here,
	// with a clear error, rather than in the cache's first list.
	probeCtx, cancelProbe := context.WithTimeout(ctx, o.ProbeTimeout)
	_, err = probe.Get().AbsPath("/version").DoRaw(probeCtx)
	cancelProbe()
	if err != nil {
		return nil, fmt.Errorf("asking the API server for its version: %w", err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("building a REST mapper: %w", err)
	}
	nodeCache, err := a.newCache(cfg, mapper)
	if err != nil {
		return nil, err
	}
	// Pods and DaemonSets are read when needed, not cached: a cluster
	// may run far more pods than the hub needs to hold in memory.
	cl, err := client.New(cfg, client.Options{
		HTTPClient: httpClient, Scheme: a.c.scheme, Mapper: mapper,
		Cache: &client.CacheOptions{
			Reader:     nodeCache,
			DisableFor: []client.Object{&corev1.Pod{}, &appsv1.DaemonSet{}, &policyv1.PodDisruptionBudget{}},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("building a client: %w", err)
	}
	apiReader, err := client.New(cfg, client.Options{HTTPClient: httpClient, Scheme: a.c.scheme, Mapper: mapper})
	if err != nil {
		return nil, fmt.Errorf("building a client: %w", err)
	}

	runCtx, stop := context.WithCancel(a.ctx)
	informer, err := nodeCache.GetInformer(runCtx, &corev1.Node{})
	if err != nil {
		stop()
		return nil, fmt.Errorf("watching Nodes: %w", err)
	}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    a.c.publish,
		UpdateFunc: func(_, obj any) { a.c.publish(obj) },
		DeleteFunc: a.c.publish,
	}); err != nil {
		stop()
		return nil, fmt.Errorf("watching Nodes: %w", err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = nodeCache.Start(runCtx)
	}()
	if !nodeCache.WaitForCacheSync(ctx) {
		stop()
		<-stopped
		return nil, fmt.Errorf("the Nodes of the cluster were not listed within %s", o.ConnectTimeout)
	}
	d := deadline{cluster: a.name, timeout: o.RequestTimeout, noAnswer: a.noAnswer}
	return &connection{
		cluster: &Cluster{
			Client:     &timeoutClient{Client: cl, deadline: d},
			APIReader:  &timeoutReader{Reader: apiReader, deadline: d},
			Kubeconfig: a.kubeconfig,
		},
		probe: probe, stop: stop, stopped: stopped,
	}, nil
}

// newCache returns the cache of the cluster's Nodes, with an HTTP client of its
// own whose timeout lets watches run.
func (a *accessor) newCache(cfg *rest.Config, mapper meta.RESTMapper) (cache.Cache, error) {
	informerCfg := rest.CopyConfig(cfg)
	informerCfg.Timeout = informerTimeout
	informerClient, err := rest.HTTPClientFor(informerCfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKubeconfig, err)
	}
	c, err := cache.New(informerCfg, cache.Options{
		HTTPClient: informerClient, Scheme: a.c.scheme, Mapper: mapper,
		ByObject: map[client.Object]cache.ByObject{
			// Every Node, trimmed to what the controllers read: the
			// Cluster controller counts them all; the others ask for
			// their Pool's by label.
			&corev1.Node{}: {Transform: TrimNode},
		},
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("building the Node cache: %w", err)
	}
	return c, nil
}
