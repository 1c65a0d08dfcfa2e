package localdc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/metal/provision/sim"
	"github.com/strata-dev/strata/internal/workload/install"
)

// DefaultWorkloadClusters is how many workload clusters a new datacenter gets.
const DefaultWorkloadClusters = 2

// DefaultReadyTimeout is how long the clusters may take to serve after their
// start, unless Options.ReadyTimeout says otherwise.
const DefaultReadyTimeout = 2 * time.Minute

// requiredBinaries are the programs of bin/ that the local datacenter runs.
var requiredBinaries = []string{
	"kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kwok", "kwokctl", "kubectl",
}

// Options say where the local datacenter lives and what it runs.
type Options struct {
	// Home is the directory that holds the datacenter's state.
	Home string
	// BinDir holds the Kubernetes binaries built by `make tools`.
	BinDir string
	// WorkloadClusters is the number of workload clusters of a new datacenter;
	// zero means "whatever the home holds", or DefaultWorkloadClusters.
	WorkloadClusters int
	// Logger receives progress and component logs.
	Logger logr.Logger
	// Progress, when set, receives one line for a person as the start begins.
	Progress io.Writer
	// UntunedControlPlanes creates clusters with Kubernetes' default client
	// and in-flight limits, for benchmarks that show what the tuning buys.
	UntunedControlPlanes bool
	// DB is the broker's inventory database: a PostgreSQL URL, or empty for
	// SQLite in the home. Over PostgreSQL, Replicas broker processes run,
	// one leading; over SQLite, one (single-replica).
	DB string
	// Machines is the size of the simulated datacenter seeded on first use;
	// zero means the generator's default.
	Machines int
	// Seed makes the simulated datacenter; the same seed, the same machines.
	Seed int64
	// DefaultPoolCapacity is the capacity of the general Pool that a new
	// datacenter gets in each workload cluster; zero creates none.
	DefaultPoolCapacity int32
	// JoinDuration and WipeDuration are how long the sim provisioner takes
	// to join a machine as a Node and to wipe it after release; zero means
	// the provisioner's defaults.
	JoinDuration, WipeDuration time.Duration
	// MaintenanceDuration is how long the sim provisioner takes to reboot
	// or reimage a machine; zero is instant (the CLI's default is
	// sim.DefaultMaintenanceDuration).
	MaintenanceDuration time.Duration
	// NotReadyThreshold and FaultHoldOff are how long a Node must be
	// NotReady, and a machine reported faulty, before remediation acts;
	// zero means the remediation controller's defaults.
	NotReadyThreshold, FaultHoldOff time.Duration
	// ReadyTimeout is how long the clusters may take to become ready after
	// their start; zero means DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Replicas is how many processes of the hub's controllers, and of each
	// workload cluster's app controllers, and of the broker over
	// PostgreSQL, run; zero means one.
	Replicas int
	// Executable is the strata binary that runs the components (`strata
	// serve`); empty means this program.
	Executable string
	// Jobs runs the jobs platform's batch system: Kueue, installed into
	// every cluster and run as a kueue-<cluster> process for each (the
	// hub's the MultiKueue manager). Off, nothing of Kueue runs and its
	// webhooks are unregistered, which spares a test that needs none the
	// CPU of a controller manager per cluster.
	Jobs bool
	// JobsDispatcher picks the workload cluster of each job: Strata's
	// dispatcher (empty or Strata) or one of Kueue's, for the benchmark
	// that compares them; it sets the hub Kueue's dispatcherName and the
	// hub's jobs.dispatcher alike.
	JobsDispatcher configv1alpha1.JobsDispatcher
}

func (o *Options) complete() error {
	if err := o.resolvePaths(); err != nil {
		return err
	}
	if o.WorkloadClusters < 0 {
		return fmt.Errorf("--workload-clusters must be at least 1, not %d", o.WorkloadClusters)
	}
	if o.DefaultPoolCapacity < 0 {
		return fmt.Errorf("--pool-capacity must be 0 or more, not %d", o.DefaultPoolCapacity)
	}
	if o.JoinDuration < 0 || o.WipeDuration < 0 || o.MaintenanceDuration < 0 || o.NotReadyThreshold < 0 || o.FaultHoldOff < 0 {
		return fmt.Errorf("--join-duration, --wipe-duration, --maintenance-duration, --not-ready-threshold and --fault-hold-off must not be negative")
	}
	if o.ReadyTimeout < 0 {
		return fmt.Errorf("--timeout must not be negative, not %s", o.ReadyTimeout)
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = DefaultReadyTimeout
	}
	switch o.JobsDispatcher {
	case "", configv1alpha1.StrataDispatcher, configv1alpha1.KueueAllAtOnceDispatcher, configv1alpha1.KueueIncrementalDispatcher:
	default:
		return fmt.Errorf("--jobs-dispatcher %q is not one of %s, %s, %s", o.JobsDispatcher,
			configv1alpha1.StrataDispatcher, configv1alpha1.KueueAllAtOnceDispatcher, configv1alpha1.KueueIncrementalDispatcher)
	}
	if o.Replicas < 0 {
		return fmt.Errorf("--replicas must be at least 1, not %d", o.Replicas)
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the strata binary to run the components: %w", err)
		}
		o.Executable = exe
	}
	if o.Jobs {
		if err := o.checkBinaries(kueueBinary, kueueManifests); err != nil {
			return err
		}
	}
	return o.checkBinaries(requiredBinaries...)
}

// resolvePaths makes the home and the binaries' directory absolute.
func (o *Options) resolvePaths() error {
	if o.Home == "" {
		return errors.New("a home directory is required")
	}
	var err error
	if o.Home, err = filepath.Abs(o.Home); err != nil {
		return err
	}
	if o.BinDir, err = filepath.Abs(o.BinDir); err != nil {
		return err
	}
	return nil
}

// checkBinaries fails, naming them, when programs are missing from BinDir.
func (o *Options) checkBinaries(names ...string) error {
	var missing []string
	for _, b := range names {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s is missing %s: run `make tools` to build them (several minutes the first time)", o.BinDir, strings.Join(missing, ", "))
	}
	return nil
}

// Running is a started local datacenter.
type Running struct {
	Datacenter *Datacenter
	// Created is true when this start created the datacenter.
	Created bool
	opts    Options
	// hubClient is the admin's client of the hub.
	hubClient client.Client
	webhook   webhookTLS
	// identities are the ServiceAccounts the components run as, with
	// when their tokens expire.
	identities map[Identity]time.Time
	kwok       kwokctl
	unlock     func()
	// restarts counts the restarts of every supervised process.
	restarts *restartLog
	// stopWatch ends the supervision of the clusters' components.
	stopWatch func()
}

// Start brings the home's datacenter up, creating it on first use, and
// returns once every cluster serves and the hub holds Strata's CRDs and the
// workload Clusters. A failed first start removes what it created; a failed
// restart stops what it started and keeps the data.
func Start(ctx context.Context, opts Options) (*Running, error) {
	if err := opts.complete(); err != nil {
		return nil, err
	}
	kubeVersion, err := binaryVersion(filepath.Join(opts.BinDir, "kube-apiserver"))
	if err != nil {
		return nil, err
	}
	homeExisted := dirExists(opts.Home)
	if err := os.MkdirAll(opts.Home, 0o750); err != nil {
		return nil, fmt.Errorf("creating home %s: %w", opts.Home, err)
	}
	unlock, err := lockHome(opts.Home)
	if err != nil {
		return nil, err
	}
	r := &Running{opts: opts, kwok: kwokctl{binDir: opts.BinDir, home: opts.Home, untuned: opts.UntunedControlPlanes}, unlock: unlock}
	if r.restarts, err = newRestartLog(opts.Home); err != nil {
		unlock()
		return nil, fmt.Errorf("starting the count of restarts: %w", err)
	}

	dc, err := loadDatacenter(opts.Home)
	switch {
	case errors.Is(err, ErrNoDatacenter):
		r.Created = true
		err = r.create(ctx, kubeVersion)
	case err != nil:
		err = fmt.Errorf("%w; run `strata down --home %s` to remove it", err, opts.Home)
	default:
		r.Datacenter = dc
		err = r.restart(ctx, kubeVersion)
	}
	if err == nil {
		err = r.planProcesses()
	}
	if err == nil {
		err = addWorkloadContexts(r.opts.Home, r.Datacenter)
	}
	if err == nil {
		err = r.webhookCertificates()
	}
	if err == nil {
		err = ensurePKI(opts.Home, time.Now())
	}
	if err == nil {
		err = r.installKueue(ctx)
	}
	if err == nil {
		err = r.installIdentities(ctx)
	}
	if err == nil {
		err = r.installHub(ctx)
	}
	if err == nil {
		err = r.writeMultiKueueSecrets(ctx)
	}
	if err == nil {
		err = r.installWorkloadClusters(ctx)
	}
	if err == nil {
		err = r.seedInventory(ctx)
	}
	if err != nil {
		r.abort(homeExisted)
		return nil, err
	}
	return r, nil
}

func (r *Running) create(ctx context.Context, kubeVersion string) error {
	// Clusters without a datacenter file are left from a creation that was
	// killed; they are removed before anything new is made.
	if err := r.deleteLeftoverClusters(ctx); err != nil {
		return err
	}
	workloads := r.opts.WorkloadClusters
	if workloads == 0 {
		workloads = DefaultWorkloadClusters
	}
	dc, err := newDatacenter(kubeVersion, workloads)
	if err != nil {
		return err
	}
	r.Datacenter = dc
	r.opts.Logger.Info("Creating the local datacenter", "home", r.opts.Home, "clusters", len(dc.Clusters), "kubernetesVersion", kubeVersion)
	r.progress("Creating the local datacenter in %s: a hub and %d workload clusters ...", r.opts.Home, workloads)
	if err := r.eachCluster(ctx, func(ctx context.Context, c ClusterInfo) error {
		if err := r.kwok.create(ctx, kubeVersion, c); err != nil || c.Name == HubName {
			return err
		}
		// kwokctl writes the cluster's kwok configuration as it creates
		// it; kwok reads the app stages added to it at its next start.
		if err := r.kwok.addAppStages(c.Name); err != nil {
			return err
		}
		return r.kwok.restartKwok(ctx, c.Name)
	}); err != nil {
		return err
	}
	r.superviseClusterComponents()
	if err := r.waitReady(ctx); err != nil {
		return err
	}
	return dc.save(r.opts.Home)
}

func (r *Running) restart(ctx context.Context, kubeVersion string) error {
	dc := r.Datacenter
	if r.opts.WorkloadClusters != 0 && r.opts.WorkloadClusters != len(dc.WorkloadClusters()) {
		return fmt.Errorf("%s holds a datacenter with %d workload clusters, not %d: drop --workload-clusters, or run `strata down --home %s` first",
			r.opts.Home, len(dc.WorkloadClusters()), r.opts.WorkloadClusters, r.opts.Home)
	}
	if dc.KubernetesVersion != kubeVersion {
		return fmt.Errorf("%s holds a datacenter of Kubernetes %s but %s has %s: run `strata down --home %s` to start afresh",
			r.opts.Home, dc.KubernetesVersion, r.opts.BinDir, kubeVersion, r.opts.Home)
	}
	for _, c := range dc.Clusters {
		raw, err := os.ReadFile(filepath.Join(ClusterDir(r.opts.Home, c.Name), "kwok.yaml"))
		if err != nil {
			return fmt.Errorf("%s is broken: cluster %s is missing (%w); run `strata down --home %s` to remove it", r.opts.Home, c.Name, err, r.opts.Home)
		}
		if c.Name != HubName && !strings.Contains(string(raw), "!"+sim.FaultLabel) {
			// kwokctl keeps the arguments of a cluster's creation.
			r.progress("Cluster %s was created before simulated faults: its kwok keeps the Nodes of faulted machines Ready. `strata down --home %s` and up again to get them.",
				c.Name, r.opts.Home)
		}
	}
	// Components left running by a strata that was killed are stopped first,
	// so every start is the same start.
	if err := r.eachCluster(ctx, func(ctx context.Context, c ClusterInfo) error {
		return r.kwok.stop(ctx, c.Name)
	}); err != nil {
		return err
	}
	stopLeftoverProcesses(r.opts.Home)
	if err := waitPortsFree(ctx, dc); err != nil {
		return err
	}
	r.opts.Logger.Info("Starting the local datacenter", "home", r.opts.Home, "clusters", len(dc.Clusters))
	r.progress("Starting the local datacenter in %s ...", r.opts.Home)
	started := time.Now()
	if err := r.eachCluster(ctx, func(ctx context.Context, c ClusterInfo) error {
		if c.Name != HubName {
			if err := r.kwok.addAppStages(c.Name); err != nil {
				return err
			}
		}
		return r.kwok.start(ctx, c.Name)
	}); err != nil {
		return err
	}
	r.superviseClusterComponents()
	if err := r.waitReady(ctx); err != nil {
		return err
	}
	return r.eachCluster(ctx, func(ctx context.Context, c ClusterInfo) error {
		return r.releaseNodeLeases(ctx, c.Name, started)
	})
}

// planProcesses gives the component processes of this start their ports,
// pinned in the datacenter file.
func (r *Running) planProcesses() error {
	brokers := 1
	if r.opts.replicatedInventory() {
		brokers = r.opts.Replicas
	}
	changed, err := r.Datacenter.planProcesses(r.opts.Replicas, brokers, r.opts.Jobs)
	if err != nil || !changed {
		return err
	}
	return r.Datacenter.save(r.opts.Home)
}

// Lease clean-up at a restart: deletes in parallel, at a client rate the
// local API server takes, with progress every leaseProgressEvery.
const (
	leaseWorkers       = 16
	leaseQPS           = 500
	leaseProgressEvery = 2 * time.Second
)

// releaseNodeLeases deletes the Node leases last renewed before the
// datacenter started: the previous kwok held them, and the new one, under a
// new identity, would wait out their whole duration (kwokctl's 200 s)
// before it plays those Nodes' pods again. It takes a deleted lease at its
// next renewal instead. Thousands of Nodes are thousands of deletes: they
// go leaseWorkers at a time (at client-go's default 5 requests/s, 5,000
// took more than 6 minutes), and progress is printed.
func (r *Running) releaseNodeLeases(ctx context.Context, cluster string, started time.Time) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", KubeconfigPath(r.opts.Home, cluster))
	if err != nil {
		return fmt.Errorf("reading kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = leaseQPS, 2*leaseQPS
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	leases, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing node leases: %w", err)
	}
	var stale []coordinationv1.Lease
	for _, l := range leases.Items {
		if l.Spec.RenewTime != nil && l.Spec.RenewTime.Time.Before(started) {
			stale = append(stale, l)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	var done atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	if len(stale) > leaseQPS {
		go func() {
			ticker := time.NewTicker(leaseProgressEvery)
			defer ticker.Stop()
			for {
				select {
				case <-stop:
					return
				case <-ticker.C:
					r.progress("  %s: released %d of %d Node leases the previous run held ...", cluster, done.Load(), len(stale))
				}
			}
		}()
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(leaseWorkers)
	for _, l := range stale {
		g.Go(func() error {
			err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Delete(ctx, l.Name, metav1.DeleteOptions{
				Preconditions: &metav1.Preconditions{ResourceVersion: &l.ResourceVersion},
			})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return fmt.Errorf("releasing the lease of node %s: %w", l.Name, err)
			}
			done.Add(1)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(stale) > leaseQPS {
		r.progress("  %s: released the %d Node leases the previous run held.", cluster, len(stale))
	}
	r.opts.Logger.Info("Released the Node leases the previous run held", "cluster", cluster, "leases", len(stale))
	return nil
}

// installHub installs Strata into the hub (CRDs, guardrails) and registers
// the workload clusters.
func (r *Running) installHub(ctx context.Context) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", KubeconfigPath(r.opts.Home, HubName))
	if err != nil {
		return fmt.Errorf("reading the hub's kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	hub, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		return fmt.Errorf("connecting to the hub: %w", err)
	}
	r.hubClient = hub
	if err := install.Hub(ctx, hub, r.webhookFor(HubName)); err != nil {
		return err
	}
	if err := registerWorkloadClusters(ctx, hub, r.opts.Home, r.Datacenter); err != nil {
		return err
	}
	if r.Created && r.opts.DefaultPoolCapacity > 0 {
		return createDefaultPools(ctx, hub, r.Datacenter, r.opts.DefaultPoolCapacity)
	}
	return nil
}

// Stop stops every cluster, keeping its data, and releases the home.
func (r *Running) Stop(ctx context.Context) error {
	defer r.unlock()
	r.stopClusterSupervision()
	if err := r.eachCluster(ctx, func(ctx context.Context, c ClusterInfo) error {
		return r.kwok.stop(ctx, c.Name)
	}); err != nil {
		return err
	}
	// The components have exited, and so let go of their ports; that the
	// ports are free is what the next start needs, so it is checked too.
	return waitPortsFree(ctx, &Datacenter{
		Clusters: r.Datacenter.Clusters, Processes: r.Datacenter.Processes,
		BrokerPort: r.Datacenter.BrokerPort, BrokerMetricsPort: r.Datacenter.BrokerMetricsPort,
	})
}

// abort undoes a failed start: a new datacenter is deleted (and the home too
// if this start made it), an existing one only stopped.
func (r *Running) abort(homeExisted bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer r.unlock()
	r.stopClusterSupervision()
	if r.Datacenter == nil {
		return
	}
	for _, c := range r.Datacenter.Clusters {
		var err error
		if r.Created {
			err = r.kwok.delete(ctx, c.Name)
		} else {
			err = r.kwok.stop(ctx, c.Name)
		}
		if err != nil {
			r.opts.Logger.Error(err, "Cleaning up after a failed start", "cluster", c.Name)
		}
	}
	if r.Created {
		_ = os.RemoveAll(filepath.Join(r.opts.Home, kwokWorkdir))
		_ = os.Remove(filepath.Join(r.opts.Home, stateFile))
		for _, f := range inventoryFiles {
			_ = os.Remove(filepath.Join(r.opts.Home, f))
		}
		if !homeExisted {
			_ = os.RemoveAll(r.opts.Home)
		}
	}
}

func (r *Running) deleteLeftoverClusters(ctx context.Context) error {
	dirs, _ := filepath.Glob(filepath.Join(r.opts.Home, kwokWorkdir, "clusters", "*"))
	for _, d := range dirs {
		name := filepath.Base(d)
		r.opts.Logger.Info("Removing a cluster left by an interrupted creation", "cluster", name)
		if err := r.kwok.delete(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// eachCluster runs fn for every cluster at once and joins their errors.
func (r *Running) eachCluster(ctx context.Context, fn func(context.Context, ClusterInfo) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, c := range r.Datacenter.Clusters {
		g.Go(func() error {
			if err := fn(ctx, c); err != nil {
				return fmt.Errorf("cluster %s: %w", c.Name, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// portsFreeTimeout bounds the wait for the components just stopped to let
// go of their ports: a kube-apiserver shuts down gracefully.
const portsFreeTimeout = 30 * time.Second

// waitPortsFree waits until every port of the datacenter is free, and fails
// as portsFree does when one is still taken after portsFreeTimeout.
func waitPortsFree(ctx context.Context, dc *Datacenter) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, portsFreeTimeout, true, func(context.Context) (bool, error) {
		last = portsFree(dc)
		return last == nil, nil
	})
	if err != nil && last != nil {
		return last
	}
	return err
}

// portsFree fails, naming the port and its component, when a port that the
// datacenter's components need is taken by another process.
func portsFree(dc *Datacenter) error {
	ports := []componentPort{{"broker", dc.BrokerPort}, {"broker metrics", dc.BrokerMetricsPort}}
	for name, p := range dc.Processes {
		ports = append(ports, p.byComponent(name)...)
	}
	for _, p := range ports {
		if p.port != 0 && !portFree(p.port) {
			return fmt.Errorf("port %d, which the %s listens on, is in use by another process: stop that process, or run `strata down` and start afresh", p.port, p.component)
		}
	}
	for _, c := range dc.Clusters {
		for _, cp := range c.Ports.byComponent() {
			if !portFree(cp.port) {
				return fmt.Errorf("port %d, which cluster %s's %s listens on, is in use by another process: stop that process, or run `strata down` and start afresh",
					cp.port, c.Name, cp.component)
			}
		}
	}
	return nil
}

func portFree(port uint32) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

var versionPattern = regexp.MustCompile(`v\d+\.\d+\.\d+\S*`)

// binaryVersion asks a Kubernetes binary for its version.
func binaryVersion(path string) (string, error) {
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("running %s --version: %w: %s; run `make tools` to rebuild it", path, err, lastLines(string(out), 3))
	}
	v := versionPattern.FindString(string(out))
	if v == "" || v == "v0.0.0" {
		return "", fmt.Errorf("%s reports no version (%q): it was built without version stamps; run `make tools`", path, lastLines(string(out), 1))
	}
	return v, nil
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

func (r *Running) progress(format string, args ...any) {
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, format+"\n", args...)
	}
}

// Home is the datacenter's home directory, absolute.
func (r *Running) Home() string {
	return r.opts.Home
}
