package aggregator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/console/store"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// The defaults of Options.
const (
	DefaultFlushInterval  = 200 * time.Millisecond
	DefaultBatchSize      = 5000
	DefaultPageSize       = 500
	DefaultRequestTimeout = 30 * time.Second
	DefaultClusterResync  = 30 * time.Second
	DefaultBackoffMax     = 30 * time.Second
	DefaultQPS            = 50
	DefaultBurst          = 100
	DefaultProbeInterval  = 10 * time.Second
	DefaultProbeTimeout   = 5 * time.Second
)

// Options configure an Aggregator. Zero tunables take the defaults above.
type Options struct {
	// HubConfig reaches the hub's API server (required).
	HubConfig *rest.Config
	// Broker is the Compute Broker's client; nil watches no broker sources.
	Broker brokerv1.BrokerServiceClient
	// Datacenter, when set, keeps the broker's machines of that datacenter.
	Datacenter string
	// Store is the fleet store written (required).
	Store *store.Store
	// Logger logs; the zero Logger discards.
	Logger logr.Logger
	// Clock is the time; nil is the real clock.
	Clock clock.Clock

	// FlushInterval is the longest a change waits before it is written
	// (at most 250 ms keeps a change in the store well within a second).
	FlushInterval time.Duration
	// BatchSize is how many rows a batch holds before it is written at once.
	BatchSize int
	// PageSize is the Limit of each list page.
	PageSize int64
	// RequestTimeout bounds every request but the watches themselves.
	RequestTimeout time.Duration
	// ClusterResync is how often the hub's Clusters and their kubeconfigs
	// are read again (a Cluster's change triggers it at once).
	ClusterResync time.Duration
	// BackoffMax caps the pause between a stream's failed attempts.
	BackoffMax time.Duration
	// QPS and Burst limit each cluster's client.
	QPS   float32
	Burst int
	// ProbeInterval is how often each cluster and the broker are asked
	// whether they answer (probe.go); ProbeTimeout bounds each probe.
	ProbeInterval, ProbeTimeout time.Duration
	// KubeconfigSecretSuffix, when set, reaches each workload cluster as
	// the aggregator's own identity: the kubeconfig of the Secret <name of
	// the Cluster><suffix> (key "kubeconfig") in the namespace of the
	// Cluster's kubeconfig Secret, instead of that Secret (the hub's).
	KubeconfigSecretSuffix string
}

func (o *Options) defaults() {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.ClusterResync <= 0 {
		o.ClusterResync = DefaultClusterResync
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = DefaultBackoffMax
	}
	if o.QPS <= 0 {
		o.QPS = DefaultQPS
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = DefaultProbeTimeout
	}
}

// Validate names the first field that is wrong.
func (o *Options) Validate() error {
	switch {
	case o.HubConfig == nil:
		return errors.New("HubConfig: the hub's rest config is required")
	case o.Store == nil:
		return errors.New("the fleet store (Store) is required")
	}
	return nil
}

// Aggregator copies the fleet into the store while it leads (see the
// package doc).
type Aggregator struct {
	opts Options
	log  logr.Logger
	hub  client.Client // reads Clusters and their kubeconfig Secrets, with a deadline

	mu       sync.Mutex
	settled  map[srcKey]bool
	open     map[srcKey]bool // the sources whose stream is open
	listed   bool            // the hub's Clusters were read once
	writer   *writer
	clusters chan struct{} // a Cluster changed: read them again
}

var (
	_ manager.Runnable               = (*Aggregator)(nil)
	_ manager.LeaderElectionRunnable = (*Aggregator)(nil)
)

// New validates opts and returns an Aggregator to add to a manager.
func New(opts Options) (*Aggregator, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("configuring the fleet aggregator: %w", err)
	}
	opts.defaults()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("configuring the fleet aggregator: %w", err)
	}
	if err := fleetv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("configuring the fleet aggregator: %w", err)
	}
	cfg := rest.CopyConfig(opts.HubConfig)
	cfg.Timeout = opts.RequestTimeout
	hub, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting the fleet aggregator to the hub: %w", err)
	}
	registerMetrics()
	return &Aggregator{
		opts: opts, log: opts.Logger.WithName("aggregator"), hub: hub,
		settled: map[srcKey]bool{}, open: map[srcKey]bool{}, clusters: make(chan struct{}, 1),
	}, nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: one
// replica writes the store.
func (a *Aggregator) NeedLeaderElection() bool { return true }

// Start implements manager.Runnable: it watches every source and writes
// the store until ctx ends.
func (a *Aggregator) Start(ctx context.Context) error {
	loaded, err := a.opts.Store.Sources(ctx)
	if err != nil {
		return fmt.Errorf("reading where the fleet aggregator left off: %w", err)
	}
	resume := map[srcKey]string{}
	for _, src := range loaded {
		resume[srcKey{src.Cluster, src.Kind}] = src.ResourceVersion
	}
	w := newWriter(a.opts.Store, a.opts.Clock, a.log.WithName("writer"), a.opts.FlushInterval, a.opts.BatchSize, loaded)
	a.mu.Lock()
	a.writer = w
	a.mu.Unlock()
	a.log.Info("Starting the fleet aggregator", "sources", len(loaded))

	writerCtx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); w.run(writerCtx) }()

	var wg sync.WaitGroup
	hubSources, err := a.hubSources()
	if err != nil {
		stopWriter()
		<-writerDone
		return err
	}
	for _, s := range hubSources {
		rv := resume[s.key()]
		wg.Go(func() { a.runKube(ctx, s, rv) })
	}
	hubProbe, err := a.newClients(a.opts.HubConfig)
	if err != nil {
		stopWriter()
		<-writerDone
		return fmt.Errorf("connecting the fleet aggregator to the hub: %w", err)
	}
	wg.Go(func() { a.probe(ctx, store.HubCluster, hubProbe.readyz) })
	if a.opts.Broker != nil {
		updated, err := a.opts.Store.DisruptionUpdates(ctx)
		if err != nil {
			stopWriter()
			<-writerDone
			return fmt.Errorf("reading where the fleet aggregator left off: %w", err)
		}
		for _, s := range a.brokerSources(updated) {
			a.register(s.key)
			wg.Go(func() { a.runBroker(ctx, s) })
		}
		wg.Go(func() { a.probe(ctx, store.BrokerSource, a.brokerAnswers) })
	}
	wg.Go(func() { a.manageClusters(ctx, resume) })
	wg.Wait()
	// The sources are stopped: what they sent is written, then the writer stops.
	stopWriter()
	<-writerDone
	a.log.Info("Stopped the fleet aggregator")
	return nil
}

// Synced says whether every source known has settled once since Start:
// listed in full, or resumed its watch from the stored resourceVersion, or
// failed its first attempt (an unreachable cluster keeps its rows, stale,
// and must not hold readiness back), and the hub's Clusters were read. It
// is false on a replica that does not lead.
func (a *Aggregator) Synced() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.listed {
		return false
	}
	for _, ok := range a.settled {
		if !ok {
			return false
		}
	}
	return true
}

// ReadyCheck is a healthz.Checker that passes once Synced.
func (a *Aggregator) ReadyCheck() healthz.Checker {
	return func(*http.Request) error {
		if !a.Synced() {
			return errors.New("the fleet aggregator's sources are not synced yet")
		}
		return nil
	}
}

func (a *Aggregator) register(k srcKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.settled[k]; !ok {
		a.settled[k] = false
	}
}

func (a *Aggregator) settle(k srcKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.settled[k]; ok {
		a.settled[k] = true
	}
}

func (a *Aggregator) unregister(cluster string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.settled {
		if k.cluster == cluster {
			delete(a.settled, k)
		}
	}
}

func (a *Aggregator) send(ctx context.Context, u update) {
	if u.at.IsZero() {
		u.at = a.opts.Clock.Now()
	}
	a.writer.send(ctx, u)
}

// healthyStream is how long a stream must have run for its next failure
// to start the backoff over.
const healthyStream = time.Minute

func (a *Aggregator) newBackoff() wait.Backoff {
	return wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 32, Cap: a.opts.BackoffMax}
}

// pause waits d, or until ctx ends.
func (a *Aggregator) pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-a.opts.Clock.After(d):
	}
}
