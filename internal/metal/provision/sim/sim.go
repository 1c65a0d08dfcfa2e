// Package sim is the provisioner of the local datacenter. No machine is
// imaged: Join waits as long as imaging would take, then plays the kubelet's
// part and registers the machine's Node in the target cluster (kwok keeps it
// Ready from then on); Wipe waits as long as erasing would take; Maintain
// waits as long as a reboot or reimage would take, and a reimage registers
// the Node again with the new node config and OS image. It plays a
// local-volume provisioner too: machines with large local disks offer them
// as local PersistentVolumes, made with the Node and deleted by the wipe
// (volumes.go). It also plays hardware faults (faults.go), and serves
// strata.sim.v1 to control them (service.go).
package sim

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/clock"

	"github.com/strata-dev/strata/internal/metal/provision"
)

// Default durations: short enough for a local datacenter, long enough that
// joining and wiping are states one can watch.
const (
	DefaultJoinDuration = 2 * time.Second
	DefaultWipeDuration = 5 * time.Second
	// DefaultMaintenanceDuration is what the CLI uses; Options take 0 as
	// instant maintenance.
	DefaultMaintenanceDuration = 3 * time.Second
)

// UserAgent is how the simulated kubelets show in the API server's logs
// and audit records.
const UserAgent = "strata-sim-kubelet"

// connectTimeout bounds reaching a cluster the first time.
const connectTimeout = 30 * time.Second

// Options configure the simulated provisioner.
type Options struct {
	// JoinDuration is how long imaging a machine and starting its kubelet
	// takes before the Node registers; 0 means DefaultJoinDuration.
	JoinDuration time.Duration
	// WipeDuration is how long erasing a machine takes; 0 means
	// DefaultWipeDuration.
	WipeDuration time.Duration
	// MaintenanceDuration is how long a reboot or a reimage takes before
	// the machine is back; 0 is instant (benchmarks measure the
	// orchestration alone), not a default.
	MaintenanceDuration time.Duration
	// FaultsFile, when set, keeps the simulated faults across restarts (a
	// JSON file; its directory must exist). Without it they last as long
	// as the provisioner.
	FaultsFile string
	// Clusters are the clusters the sim holds a credential of its own for
	// (from its config file, never from the broker's database). It is not
	// what machines join with: they bootstrap with their pool's token and
	// write their Node as system:node:<name>. The sim uses it only for what
	// is not a kubelet's job: offering and deleting local volumes (a
	// local-volume provisioner's) and playing hardware faults on Nodes
	// (the physical world's), here and after a restart, before any join.
	Clusters []Cluster
	// KubeletPorts are, by cluster, the loopback port where kwok serves the
	// kubelet API of every Node it plays there (pod logs): Nodes registered
	// in such a cluster point their InternalIP and kubelet endpoint at it.
	KubeletPorts map[string]int32
	// Clock defaults to the real clock; tests inject a fake one.
	Clock clock.WithTicker
}

// Cluster is a cluster the sim holds a credential of its own for.
type Cluster struct {
	Name       string
	Kubeconfig []byte
}

// Validate says what is wrong with the options.
func (o Options) Validate() error {
	var errs []error
	if o.JoinDuration < 0 {
		errs = append(errs, fmt.Errorf("the join duration must not be negative, not %s", o.JoinDuration))
	}
	if o.WipeDuration < 0 {
		errs = append(errs, fmt.Errorf("the wipe duration must not be negative, not %s", o.WipeDuration))
	}
	if o.MaintenanceDuration < 0 {
		errs = append(errs, fmt.Errorf("the maintenance duration must not be negative, not %s", o.MaintenanceDuration))
	}
	return errors.Join(errs...)
}

// Provisioner is the simulated provisioner. It is safe for concurrent use:
// the broker joins many machines at once.
type Provisioner struct {
	join, wipe, maintain time.Duration
	clock                clock.WithTicker
	faultsFile           string
	kubeletPorts         map[string]int32
	// changed receives when the faults change (provision.HealthChecker).
	changed chan struct{}

	mu sync.Mutex
	// bootstraps caches a bootstrap client per API server, CA bundle and
	// token (bootstrapKey): a pool's thousand machines share one
	// connection to ask for their certificates.
	bootstraps map[[sha256.Size]byte]*cluster
	// bootstrapOf is the key of each cluster's current bootstrap client: a
	// rotated token's client replaces the old one's.
	bootstrapOf map[string][sha256.Size]byte
	// own are the clients of Options.Clusters, by name, made when first
	// used; kubeconfigs their kubeconfigs.
	own         map[string]*cluster
	kubeconfigs map[string][]byte
	// faults are the faulted machines; healing those healed whose Node is
	// not yet put right.
	faults  map[string]Fault
	healing map[string]bool
	// registering holds a slot per machine registering its Node.
	registering chan struct{}
}

// maxRegistering bounds the machines that register their Nodes at once.
// The API server paces them: in BenchmarkPoolJoin1000 a thousand machines
// registered as fast with 64 slots as with one each, in a third of the
// peak heap the registrations took (docs/benchmarks.md).
const maxRegistering = 64

var (
	_ provision.Provisioner   = (*Provisioner)(nil)
	_ provision.HealthChecker = (*Provisioner)(nil)
)

// New validates the options and returns a provisioner.
func New(o Options) (*Provisioner, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("sim provisioner: %w", err)
	}
	if o.JoinDuration == 0 {
		o.JoinDuration = DefaultJoinDuration
	}
	if o.WipeDuration == 0 {
		o.WipeDuration = DefaultWipeDuration
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	faults, err := loadFaults(o.FaultsFile)
	if err != nil {
		return nil, fmt.Errorf("sim provisioner: %w", err)
	}
	p := &Provisioner{
		join: o.JoinDuration, wipe: o.WipeDuration, maintain: o.MaintenanceDuration, clock: o.Clock,
		faultsFile: o.FaultsFile, kubeletPorts: o.KubeletPorts, changed: make(chan struct{}, 1),
		bootstraps: map[[sha256.Size]byte]*cluster{}, bootstrapOf: map[string][sha256.Size]byte{}, own: map[string]*cluster{}, kubeconfigs: map[string][]byte{},
		faults: faults, healing: map[string]bool{}, registering: make(chan struct{}, maxRegistering),
	}
	for _, c := range o.Clusters {
		p.kubeconfigs[c.Name] = c.Kubeconfig
	}
	return p, nil
}

// Join implements provision.Provisioner: after JoinDuration it registers
// the machine's Node, or brings an existing one up to date.
func (p *Provisioner) Join(ctx context.Context, m provision.Machine, target provision.Target) error {
	if err := p.wait(ctx, p.join); err != nil {
		return err
	}
	if f, faulted := p.fault(m.ID); faulted {
		return fmt.Errorf("machine %s does not boot: %s", m.ID, f.Message())
	}
	if err := p.registerNode(ctx, m, target); err != nil {
		return fmt.Errorf("registering Node %s in cluster %s: %w", m.ID, target.Cluster, err)
	}
	return p.offerLocalVolumes(ctx, m, target.Cluster)
}

// registerNode bootstraps the machine's kubelet credential and registers
// its Node with it (kubelet.go).
func (p *Provisioner) registerNode(ctx context.Context, m provision.Machine, target provision.Target) error {
	// A real kubelet's credential and connection live on its machine; the
	// sim holds every registering machine's in one process, so it takes
	// them a few at a time: thousands of machines joining at once would
	// otherwise each hold a TLS client while their certificate requests
	// wait on a busy API server.
	select {
	case p.registering <- struct{}{}:
		defer func() { <-p.registering }()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	c, err := p.bootstrap(ctx, target)
	if err != nil {
		return err
	}
	return p.asNode(ctx, c, m.ID, target, func(kube kubernetes.Interface) error {
		return register(ctx, kube, p.withKubelet(desiredNode(m, target, c.version, p.clock.Now()), target.Cluster))
	})
}

// offerLocalVolumes makes the machine's local volumes with the sim's own
// credential of the cluster: a Node may not create PersistentVolumes.
func (p *Provisioner) offerLocalVolumes(ctx context.Context, m provision.Machine, cluster string) error {
	if len(localVolumes(m)) == 0 {
		return nil
	}
	c, err := p.ownCluster(ctx, cluster)
	if err != nil {
		return fmt.Errorf("offering the local volumes of Node %s: %w", m.ID, err)
	}
	if err := ensureLocalVolumes(ctx, c.kube, m); err != nil {
		return fmt.Errorf("offering the local volumes of Node %s in cluster %s: %w", m.ID, cluster, err)
	}
	return nil
}

// withKubelet points a Node at the kubelet API that kwok serves for it in
// the cluster, as a kubelet registers its address and port.
func (p *Provisioner) withKubelet(n *corev1.Node, cluster string) *corev1.Node {
	port, ok := p.kubeletPorts[cluster]
	if !ok {
		return n
	}
	n.Status.Addresses = append([]corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}, n.Status.Addresses...)
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = port
	return n
}

// Maintain implements provision.Provisioner: after MaintenanceDuration a
// rebooted machine is back as it was, and a reimaged machine that joined a
// cluster registers its Node again, with the new node config label, OS image
// and kernel. The Node keeps its taints and cordon: a kubelet applies
// --register-with-taints only when it creates the Node. A faulted machine
// does not come back (provision.ErrMachineFault), unless the operation
// fixes its fault: then the fault is cleared and its Node is Ready again.
func (p *Provisioner) Maintain(ctx context.Context, m provision.Machine, op provision.Operation, target provision.Target) error {
	if op.Kind != provision.Reboot && op.Kind != provision.Reimage {
		return fmt.Errorf("operation %q is not one the sim performs (reboot, reimage)", op.Kind)
	}
	if err := p.wait(ctx, p.maintain); err != nil {
		return err
	}
	if f, faulted := p.fault(m.ID); faulted {
		if !f.FixedBy.fixes(op.Kind) {
			return fmt.Errorf("machine %s did not come back from the %s: %s: %w", m.ID, op.Kind, f.Message(), provision.ErrMachineFault)
		}
		if err := p.fixed(ctx, m.ID); err != nil {
			return err
		}
	}
	if op.Kind != provision.Reimage || target.Cluster == "" {
		return nil
	}
	// The disk is new: the kubelet bootstraps its credential again.
	m.OSImage, m.Kernel, m.NodeConfig = op.Software.OSImage, op.Software.Kernel, op.Software.NodeConfig
	if err := p.registerNode(ctx, m, target); err != nil {
		return fmt.Errorf("registering reimaged Node %s in cluster %s: %w", m.ID, target.Cluster, err)
	}
	return p.offerLocalVolumes(ctx, m, target.Cluster)
}

// Wipe implements provision.Provisioner: it takes WipeDuration, then
// deletes the machine's local volumes, whose data is gone, in every cluster
// it knows. The Node is the cluster layer's to delete.
func (p *Provisioner) Wipe(ctx context.Context, m provision.Machine) error {
	if err := p.wait(ctx, p.wipe); err != nil {
		return err
	}
	if err := p.deleteLocalVolumes(ctx, m.ID); err != nil {
		return fmt.Errorf("wiping machine %s: %w", m.ID, err)
	}
	return nil
}

func (p *Provisioner) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := p.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C():
		return nil
	}
}

// cluster is a client of one cluster (a bootstrap token's or the sim's own)
// and the Kubernetes version its kubelets report (the control plane's, as a
// matching node image would).
type cluster struct {
	ready   chan struct{} // closed once kube, version and err are set
	kube    kubernetes.Interface
	version string
	err     error
}

// bootstrap returns the bootstrap client of target, connecting once for
// all the callers that ask at the same time. A failure is not cached: the
// next call tries again.
func (p *Provisioner) bootstrap(ctx context.Context, target provision.Target) (*cluster, error) {
	cfg, err := bootstrapConfig(target)
	if err != nil {
		return nil, fmt.Errorf("joining cluster %s: %w", target.Cluster, err)
	}
	key := bootstrapKey(target)
	p.mu.Lock()
	if old, ok := p.bootstrapOf[target.Cluster]; ok && old != key {
		// Joins still running with the old token keep their client.
		delete(p.bootstraps, old)
	}
	p.bootstrapOf[target.Cluster] = key
	p.mu.Unlock()
	c, err := connectOnce(ctx, p, p.bootstraps, key, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to cluster %s with bootstrap token %s: %w", target.Cluster, tokenID(target.BootstrapToken), refused(err, target))
	}
	return c, nil
}

// ownCluster returns the client of the sim's own credential of a cluster.
func (p *Provisioner) ownCluster(ctx context.Context, name string) (*cluster, error) {
	kubeconfig, ok := p.kubeconfigs[name]
	if !ok {
		return nil, fmt.Errorf("the sim has no credential of its own for cluster %s (provisioner.sim.clusters)", name)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig of cluster %s: %w", name, err)
	}
	c, err := connectOnce(ctx, p, p.own, name, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to cluster %s: %w", name, err)
	}
	return c, nil
}

// connectOnce returns the client cached under key in clients, or connects
// with cfg, once for all the callers that ask at the same time.
func connectOnce[K comparable](ctx context.Context, p *Provisioner, clients map[K]*cluster, key K, cfg *rest.Config) (*cluster, error) {
	p.mu.Lock()
	c, ok := clients[key]
	if !ok {
		c = &cluster{ready: make(chan struct{})}
		clients[key] = c
	}
	p.mu.Unlock()
	if !ok {
		// Not bound to ctx: other joins wait on this connection too.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), connectTimeout)
		c.kube, c.version, c.err = connect(cctx, cfg)
		cancel()
		if c.err != nil {
			p.mu.Lock()
			delete(clients, key)
			p.mu.Unlock()
		}
		close(c.ready)
	}
	select {
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case <-c.ready:
		return c, c.err
	}
}

func connect(ctx context.Context, cfg *rest.Config) (kubernetes.Interface, string, error) {
	cfg = rest.CopyConfig(cfg)
	// One client speaks for a whole pool's bootstrap, or for the sim's
	// volumes and faults, so it has no rate limit.
	cfg.QPS, cfg.Burst = -1, 0
	cfg.UserAgent = UserAgent
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", err
	}
	v, err := discovery.ToServerVersionInterfaceWithContext(kube.Discovery()).ServerVersionWithContext(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("reading the server version: %w", err)
	}
	return kube, v.GitVersion, nil
}
