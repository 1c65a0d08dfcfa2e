package cluster

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/nodeutil"
	"github.com/strata-dev/strata/internal/cluster/remote"
)

// Health is what a probe of a workload cluster found.
type Health struct {
	// Version is the API server's git version.
	Version string
	// Ready is whether /readyz answered ok; ReadyzMessage is its body otherwise.
	Ready         bool
	ReadyzMessage string
	// Nodes and ReadyNodes count the cluster's Nodes.
	Nodes      int32
	ReadyNodes int32
	// Profiles counts Nodes per node profile, in name order.
	Profiles []fleetv1alpha1.ProfileNodes
	// Allocatable sums the allocatable resources of the Ready Nodes.
	Allocatable corev1.ResourceList
}

// Prober looks at a workload cluster through a kubeconfig.
type Prober interface {
	Probe(ctx context.Context, kubeconfig []byte) (Health, error)
}

// probeTimeout bounds one probe so a dead cluster does not hold a worker.
const probeTimeout = 10 * time.Second

// nodePageSize keeps node lists of large clusters in pages.
const nodePageSize = 500

// APIProber probes clusters through their API servers. It keeps one client per
// distinct kubeconfig so connections are reused across probes.
type APIProber struct {
	mu      sync.Mutex
	clients map[[sha256.Size]byte]kubernetes.Interface
	// noNodes: the Nodes are counted from a cache (Options.Nodes), not
	// listed by each probe.
	noNodes bool
}

// NewAPIProber returns a Prober that talks to real API servers.
func NewAPIProber() *APIProber {
	return &APIProber{clients: map[[sha256.Size]byte]kubernetes.Interface{}}
}

// ReadinessOnly makes p ask only /readyz and the version: the Reconciler
// counts the Nodes from the hub's cache of them (Options.Nodes) rather than
// listing every Node of the cluster at each probe.
func (p *APIProber) ReadinessOnly() *APIProber {
	p.noNodes = true
	return p
}

// Probe implements Prober.
func (p *APIProber) Probe(ctx context.Context, kubeconfig []byte) (Health, error) {
	cs, err := p.clientFor(kubeconfig)
	if err != nil {
		return Health{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()

	var h Health
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil && len(body) == 0 {
		return Health{}, fmt.Errorf("asking the API server whether it is ready: %w", err)
	}
	h.Ready = err == nil
	if !h.Ready {
		h.ReadyzMessage = failedChecks(string(body))
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return Health{}, fmt.Errorf("reading the API server's version: %w", err)
	}
	h.Version = v.GitVersion
	if p.noNodes {
		return h, nil
	}
	if err := listNodes(ctx, cs, &h); err != nil {
		return Health{}, err
	}
	return h, nil
}

func (p *APIProber) clientFor(kubeconfig []byte) (kubernetes.Interface, error) {
	key := sha256.Sum256(kubeconfig)
	p.mu.Lock()
	defer p.mu.Unlock()
	if cs, ok := p.clients[key]; ok {
		return cs, nil
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", remote.ErrInvalidKubeconfig, err)
	}
	cfg.Timeout = probeTimeout
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", remote.ErrInvalidKubeconfig, err)
	}
	p.clients[key] = cs
	return cs, nil
}

// listNodes fills h's node counts from a paged list of the Nodes.
func listNodes(ctx context.Context, cs kubernetes.Interface, h *Health) error {
	var c nodeCounter
	opts := metav1.ListOptions{Limit: nodePageSize}
	for {
		nodes, err := cs.CoreV1().Nodes().List(ctx, opts)
		if err != nil {
			return fmt.Errorf("listing nodes: %w", err)
		}
		for i := range nodes.Items {
			c.add(&nodes.Items[i])
		}
		if nodes.Continue == "" {
			break
		}
		opts.Continue = nodes.Continue
	}
	c.fill(h)
	return nil
}

// nodeCounter adds Nodes up: in all, per profile, Ready, and the
// allocatable resources of the Ready ones.
type nodeCounter struct {
	nodes, ready int32
	allocatable  corev1.ResourceList
	profiles     map[string]*fleetv1alpha1.ProfileNodes
}

func (c *nodeCounter) add(n *corev1.Node) {
	if c.profiles == nil {
		c.profiles, c.allocatable = map[string]*fleetv1alpha1.ProfileNodes{}, corev1.ResourceList{}
	}
	name := n.Labels[fleetv1alpha1.NodeProfileLabel]
	p, ok := c.profiles[name]
	if !ok {
		p = &fleetv1alpha1.ProfileNodes{Name: name}
		c.profiles[name] = p
	}
	c.nodes++
	p.Nodes++
	if !nodeutil.Ready(n) {
		return
	}
	c.ready++
	p.ReadyNodes++
	if p.Allocatable == nil {
		p.Allocatable = corev1.ResourceList{}
	}
	for res, q := range n.Status.Allocatable {
		addQuantity(c.allocatable, res, q)
		addQuantity(p.Allocatable, res, q)
	}
}

// fill sets h's counts, its profiles in name order.
func (c *nodeCounter) fill(h *Health) {
	h.Nodes, h.ReadyNodes = c.nodes, c.ready
	h.Allocatable = c.allocatable
	if h.Allocatable == nil {
		h.Allocatable = corev1.ResourceList{}
	}
	h.Profiles = make([]fleetv1alpha1.ProfileNodes, 0, len(c.profiles))
	for _, name := range slices.Sorted(maps.Keys(c.profiles)) {
		h.Profiles = append(h.Profiles, *c.profiles[name])
	}
}

func addQuantity(l corev1.ResourceList, res corev1.ResourceName, q resource.Quantity) {
	sum := l[res]
	sum.Add(q)
	l[res] = sum
}

// failedChecks keeps the failed checks ("[-]...") of a /readyz answer.
func failedChecks(readyz string) string {
	var failed []string
	for _, line := range strings.Split(readyz, "\n") {
		if strings.HasPrefix(line, "[-]") {
			failed = append(failed, strings.TrimPrefix(line, "[-]"))
		}
	}
	if len(failed) == 0 {
		return strings.TrimSpace(readyz)
	}
	return strings.Join(failed, "; ")
}
