// Package remote gives the hub's controllers access to workload clusters:
// one accessor per Cluster (the pattern of Cluster API's ClusterCache), built
// from its kubeconfig Secret, with a cache of the Nodes that belong to Pools
// and a stream of their changes.
//
// One cluster whose API server hangs must not slow the others: the accessors
// share no lock while connecting, every request has a deadline, each
// connected cluster is probed and, after a few failed probes, disconnected so
// that callers get ErrUnreachable at once instead of waiting on it; it is
// reconnected in the background with backoff, and forgotten when its Cluster
// leaves the hub.
package remote

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// ErrInvalidKubeconfig: a kubeconfig that no client can be built from.
var ErrInvalidKubeconfig = errors.New("invalid kubeconfig")

// ErrUnreachable is what every UnreachableError is (errors.Is): the workload
// cluster cannot be used now; try again later.
var ErrUnreachable = errors.New("cluster not reachable")

// UnreachableError says which cluster cannot be reached, and why.
type UnreachableError struct {
	Cluster string
	Err     error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cluster %s is not reachable: %v", e.Cluster, e.Err)
}

// Unwrap gives the cause.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnreachable) true.
func (e *UnreachableError) Is(target error) bool { return target == ErrUnreachable }

// KubeconfigNotFoundError says which Secret or key is missing.
type KubeconfigNotFoundError struct{ msg string }

func (e *KubeconfigNotFoundError) Error() string { return e.msg }

func notFound(format string, args ...any) error {
	return &KubeconfigNotFoundError{msg: fmt.Sprintf(format, args...)}
}

// Kubeconfig reads the kubeconfig of a Cluster from its Secret on the hub.
func Kubeconfig(ctx context.Context, hub client.Reader, c *fleetv1alpha1.Cluster) ([]byte, error) {
	ref := c.Spec.KubeconfigSecretRef
	key := KubeconfigKey(ref)
	secret := &corev1.Secret{}
	err := hub.Get(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, notFound("Secret %s/%s does not exist", ref.Namespace, ref.Name)
	case err != nil:
		return nil, notFound("reading Secret %s/%s: %v", ref.Namespace, ref.Name, err)
	}
	kubeconfig, ok := secret.Data[key]
	if !ok {
		return nil, notFound("Secret %s/%s has no key %q", ref.Namespace, ref.Name, key)
	}
	return kubeconfig, nil
}

// KubeconfigKey is the Secret key a reference points at.
func KubeconfigKey(ref fleetv1alpha1.SecretKeyReference) string {
	if ref.Key == "" {
		return fleetv1alpha1.DefaultKubeconfigKey
	}
	return ref.Key
}

// Cluster is a connection to one workload cluster.
type Cluster struct {
	// Client reads Nodes from the cache (trimmed: labels, Strata's
	// annotations, cordon and taints, Ready condition, allocatable) and
	// everything else (pods,
	// DaemonSets) from the API server; it writes to the API server. Each of
	// its requests has a deadline (Options.RequestTimeout).
	Client client.Client
	// APIReader reads from the API server, for what the cache may not hold
	// yet, or a whole Node.
	APIReader client.Reader
	// Kubeconfig is the one the connection was built from.
	Kubeconfig []byte
}

// Options tune the connections to workload clusters. Zero values take the
// defaults below.
type Options struct {
	// RequestTimeout bounds each request to a workload cluster's API server.
	RequestTimeout time.Duration
	// ConnectTimeout bounds a connection: reaching the API server and the
	// first list of the Nodes.
	ConnectTimeout time.Duration
	// ProbeInterval is how often a connected cluster's API server is asked
	// for its version; ProbeTimeout bounds one probe.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	// ProbeFailureThreshold is how many probes in a row must fail before the
	// cluster is disconnected and callers get ErrUnreachable.
	ProbeFailureThreshold int
	// ReconnectInterval is the first wait before connecting again after a
	// failure; it doubles up to MaxReconnectInterval. It is also the wait
	// between probes after one failed or a request got no answer.
	ReconnectInterval    time.Duration
	MaxReconnectInterval time.Duration
	// QPS and Burst limit the client of each workload cluster.
	QPS   float32
	Burst int
}

// Defaults of Options.
const (
	DefaultRequestTimeout        = 10 * time.Second
	DefaultConnectTimeout        = 30 * time.Second
	DefaultProbeInterval         = 10 * time.Second
	DefaultProbeTimeout          = 5 * time.Second
	DefaultProbeFailureThreshold = 3
	DefaultReconnectInterval     = time.Second
	DefaultMaxReconnectInterval  = time.Minute
	// The pool controller labels, taints and drains many Nodes at once.
	DefaultQPS   = 200
	DefaultBurst = 400
)

// Default fills the zero fields with the defaults.
func (o *Options) Default() {
	setDefault(&o.RequestTimeout, DefaultRequestTimeout)
	setDefault(&o.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&o.ProbeInterval, DefaultProbeInterval)
	setDefault(&o.ProbeTimeout, DefaultProbeTimeout)
	setDefault(&o.ProbeFailureThreshold, DefaultProbeFailureThreshold)
	setDefault(&o.ReconnectInterval, DefaultReconnectInterval)
	setDefault(&o.MaxReconnectInterval, DefaultMaxReconnectInterval)
	setDefault(&o.QPS, DefaultQPS)
	setDefault(&o.Burst, DefaultBurst)
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// Validate names the first field that cannot be used.
func (o *Options) Validate() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"requestTimeout", o.RequestTimeout}, {"connectTimeout", o.ConnectTimeout},
		{"probeInterval", o.ProbeInterval}, {"probeTimeout", o.ProbeTimeout},
		{"reconnectInterval", o.ReconnectInterval}, {"maxReconnectInterval", o.MaxReconnectInterval},
	} {
		if f.d < 0 {
			return fmt.Errorf("remote clusters: %s must not be negative, got %s", f.name, f.d)
		}
	}
	switch {
	case o.ProbeFailureThreshold < 0:
		return fmt.Errorf("remote clusters: probeFailureThreshold must not be negative, got %d", o.ProbeFailureThreshold)
	case o.QPS < 0:
		return fmt.Errorf("remote clusters: qps must not be negative, got %v", o.QPS)
	case o.Burst < 0:
		return fmt.Errorf("remote clusters: burst must not be negative, got %d", o.Burst)
	case o.MaxReconnectInterval != 0 && o.MaxReconnectInterval < o.ReconnectInterval:
		return fmt.Errorf("remote clusters: maxReconnectInterval (%s) must not be less than reconnectInterval (%s)",
			o.MaxReconnectInterval, o.ReconnectInterval)
	}
	return nil
}

// Clusters keeps one accessor per workload cluster. It is a manager
// runnable: accessors live until the manager stops, the Cluster's kubeconfig
// changes or the Cluster leaves the hub.
type Clusters struct {
	hub    client.Reader
	scheme *runtime.Scheme
	opts   Options

	subsMu sync.RWMutex
	subs   []chan event.GenericEvent // one per NodeEvents caller

	started chan struct{}   // closed by Start
	ctx     context.Context // set by Start, before started is closed

	// mu guards the map only: it is never held while talking to a cluster.
	mu        sync.Mutex
	accessors map[string]*accessor
}

// New returns Clusters that read kubeconfig Secrets through hub, with the
// default Options.
func New(hub client.Reader) *Clusters {
	c, err := NewWithOptions(hub, Options{})
	if err != nil {
		panic(err) // the defaults are valid
	}
	return c
}

// NewWithOptions returns Clusters that read kubeconfig Secrets through hub.
func NewWithOptions(hub client.Reader, o Options) (*Clusters, error) {
	if hub == nil {
		return nil, errors.New("remote clusters: a hub client is required")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.Default()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme) // static types: cannot fail
	return &Clusters{hub: hub, scheme: scheme, opts: o, started: make(chan struct{}), accessors: map[string]*accessor{}}, nil
}

// NodeEvents returns a stream of every change of a Pool Node in any
// connected cluster. Each caller (each controller) gets a stream of its own,
// and must read it: call it when setting the controller up, before the
// manager starts.
func (c *Clusters) NodeEvents() <-chan event.GenericEvent {
	ch := make(chan event.GenericEvent, 1024)
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	c.subs = append(c.subs, ch)
	return ch
}

// Start implements manager.Runnable: it holds the accessors until ctx ends.
func (c *Clusters) Start(ctx context.Context) error {
	c.ctx = ctx
	close(c.started)
	<-ctx.Done()
	c.mu.Lock()
	closing := make([]*accessor, 0, len(c.accessors))
	for name, a := range c.accessors {
		a.close()
		closing = append(closing, a)
		delete(c.accessors, name)
	}
	c.mu.Unlock()
	// The caches stop before the manager does.
	for _, a := range closing {
		<-a.done
	}
	return nil
}

// Get returns the connection to a Cluster. The first call for a cluster (or
// for a new kubeconfig) waits for the connection, at most ConnectTimeout;
// later calls answer at once: the connection, or an UnreachableError while
// the cluster is disconnected (it is reconnected in the background).
func (c *Clusters) Get(ctx context.Context, fc *fleetv1alpha1.Cluster) (*Cluster, error) {
	kubeconfig, err := Kubeconfig(ctx, c.hub, fc)
	if err != nil {
		return nil, err
	}
	select {
	case <-c.started: // the manager starts controllers and runnables together
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	a := c.accessor(fc.Name, kubeconfig)
	select {
	case <-a.tried:
	case <-a.ctx.Done():
		return nil, &UnreachableError{Cluster: fc.Name, Err: errors.New("its connection was closed")}
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the connection to cluster %s: %w", fc.Name, ctx.Err())
	}
	return a.current()
}

// accessor returns the cluster's accessor for kubeconfig, replacing one
// built from another kubeconfig.
func (c *Clusters) accessor(name string, kubeconfig []byte) *accessor {
	hash := sha256.Sum256(kubeconfig)
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.accessors[name]; ok {
		if a.hash == hash && a.ctx.Err() == nil {
			return a
		}
		a.close()
	}
	a := newAccessor(c, name, kubeconfig, hash)
	c.accessors[name] = a
	go a.run()
	return a
}

// forget drops a's entry, if it still is the cluster's accessor, and closes it.
func (c *Clusters) forget(a *accessor) {
	c.mu.Lock()
	if c.accessors[a.name] == a {
		delete(c.accessors, a.name)
	}
	c.mu.Unlock()
	a.close()
}

func (c *Clusters) publish(obj any) {
	if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	node, ok := obj.(*corev1.Node)
	if !ok || node.Labels[fleetv1alpha1.PoolLabel] == "" {
		return
	}
	c.subsMu.RLock()
	defer c.subsMu.RUnlock()
	for _, ch := range c.subs {
		ch <- event.GenericEvent{Object: node}
	}
}
