// Package remote gives the hub's controllers access to workload clusters:
// one connection per Cluster, built from its kubeconfig Secret, with a cache
// of the Nodes that belong to Pools and a stream of their changes.
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
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	"sigs.k8s.io/controller-runtime/pkg/event"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// ErrInvalidKubeconfig: a kubeconfig that no client can be built from.
var ErrInvalidKubeconfig = errors.New("invalid kubeconfig")

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

// syncTimeout bounds the first list of a workload cluster's Nodes.
const syncTimeout = 30 * time.Second

// Cluster is a connection to one workload cluster.
type Cluster struct {
	// Client reads Pool Nodes from the cache and everything else (pods,
	// DaemonSets) from the API server; it writes to the API server.
	Client client.Client
	// APIReader reads from the API server, for what the cache may not hold
	// (a Node without the Pool label) or may not hold yet.
	APIReader client.Reader
	// Kubeconfig is the one the connection was built from.
	Kubeconfig []byte
}

// Clusters keeps one connection per workload cluster. It is a manager
// runnable: connections live until the manager stops or the Cluster's
// kubeconfig changes.
type Clusters struct {
	hub    client.Reader
	scheme *runtime.Scheme

	subsMu sync.RWMutex
	subs   []chan event.GenericEvent // one per NodeEvents caller

	started chan struct{} // closed by Start
	mu      sync.Mutex
	ctx     context.Context // set by Start
	entries map[string]*entry
}

type entry struct {
	hash    [sha256.Size]byte
	cluster *Cluster
	cancel  context.CancelFunc
}

// New returns Clusters that read kubeconfig Secrets through hub.
func New(hub client.Reader) *Clusters {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme) // static types: cannot fail
	return &Clusters{hub: hub, scheme: scheme, started: make(chan struct{}), entries: map[string]*entry{}}
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

// Start implements manager.Runnable: it holds the connections until ctx ends.
func (c *Clusters) Start(ctx context.Context) error {
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()
	close(c.started)
	<-ctx.Done()
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, e := range c.entries {
		e.cancel()
		delete(c.entries, name)
	}
	return nil
}

// Get returns the connection to a Cluster, (re)connecting when its
// kubeconfig is new.
func (c *Clusters) Get(ctx context.Context, fc *fleetv1alpha1.Cluster) (*Cluster, error) {
	kubeconfig, err := Kubeconfig(ctx, c.hub, fc)
	if err != nil {
		return nil, err
	}
	hash := sha256.Sum256(kubeconfig)
	select {
	case <-c.started: // the manager starts controllers and runnables together
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[fc.Name]; ok {
		if e.hash == hash {
			return e.cluster, nil
		}
		e.cancel()
		delete(c.entries, fc.Name)
	}
	e, err := c.connect(ctx, kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("connecting to cluster %s: %w", fc.Name, err)
	}
	e.hash = hash
	c.entries[fc.Name] = e
	return e.cluster, nil
}

func (c *Clusters) connect(ctx context.Context, kubeconfig []byte) (*entry, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKubeconfig, err)
	}
	// The pool controller labels, taints and drains many Nodes at once.
	cfg.QPS, cfg.Burst = 200, 400
	inPool, err := labels.NewRequirement(fleetv1alpha1.PoolLabel, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	cl, err := cluster.New(cfg, func(o *cluster.Options) {
		o.Scheme = c.scheme
		o.Cache = cache.Options{
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Node{}: {Label: labels.NewSelector().Add(*inPool)},
			},
			DefaultTransform: cache.TransformStripManagedFields(),
		}
		// Pods and DaemonSets are read when needed, not cached: a cluster
		// may run far more pods than the hub needs to hold in memory.
		o.Client.Cache = &client.CacheOptions{
			DisableFor: []client.Object{&corev1.Pod{}, &appsv1.DaemonSet{}, &policyv1.PodDisruptionBudget{}},
		}
	})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(c.ctx)
	informer, err := cl.GetCache().GetInformer(runCtx, &corev1.Node{})
	if err != nil {
		cancel()
		return nil, err
	}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    c.publish,
		UpdateFunc: func(_, obj any) { c.publish(obj) },
		DeleteFunc: c.publish,
	}); err != nil {
		cancel()
		return nil, err
	}
	go func() { _ = cl.Start(runCtx) }()
	syncCtx, stop := context.WithTimeout(ctx, syncTimeout)
	defer stop()
	if !cl.GetCache().WaitForCacheSync(syncCtx) {
		cancel()
		return nil, fmt.Errorf("the Nodes of the cluster were not listed within %s", syncTimeout)
	}
	return &entry{cluster: &Cluster{Client: cl.GetClient(), APIReader: cl.GetAPIReader(), Kubeconfig: kubeconfig}, cancel: cancel}, nil
}

func (c *Clusters) publish(obj any) {
	if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	c.subsMu.RLock()
	defer c.subsMu.RUnlock()
	for _, ch := range c.subs {
		ch <- event.GenericEvent{Object: node}
	}
}
