// Package refstorecli holds `strata refstore`: the reference data system (a
// replicated key-value store and its shard manager) as a process of its
// own, beside the local datacenter.
package refstorecli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/strata-dev/strata/internal/refstore"
)

// NewCommand returns `strata refstore`.
func NewCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "refstore",
		Short: "Run the reference data system: a replicated key-value store and its shard manager",
	}
	cmd.AddCommand(newServe())
	return cmd
}

// serveFlags are the flags of `strata refstore serve`.
type serveFlags struct {
	kubeconfig, context, namespace, app string
	shards, replication, minInSync      int
	listen                              string
	insecure                            bool
	tlsCertFile, tlsKeyFile             string
	restartHold, approvalGrace, catchUp time.Duration
	leaderHandoff                       time.Duration
}

func (f *serveFlags) validate() error {
	var errs []error
	if f.namespace == "" {
		errs = append(errs, errors.New("--namespace is required: the StatefulApp's namespace"))
	}
	if f.app == "" {
		errs = append(errs, errors.New("--app is required: the StatefulApp's name (its pods are <app>-<ordinal>)"))
	}
	opts := f.storeOptions()
	if err := opts.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := f.serverOptions().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (f *serveFlags) serverOptions() refstore.ServerOptions {
	return refstore.ServerOptions{Address: f.listen, Insecure: f.insecure, CertFile: f.tlsCertFile, KeyFile: f.tlsKeyFile}
}

func (f *serveFlags) storeOptions() refstore.Options {
	return refstore.Options{
		Namespace: f.namespace, App: f.app,
		Shards: f.shards, Replication: f.replication, MinInSync: f.minInSync,
		CatchUpBatch: refstore.DefaultCatchUpBatch, CatchUpDelay: f.catchUp,
		RestartHold: f.restartHold, ApprovalGrace: f.approvalGrace, LeaderHandoff: f.leaderHandoff,
	}
}

func newServe() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve --namespace N --app A",
		Short: "Serve the reference store of a StatefulApp and its shard manager",
		Long: `Serve the reference data system of one StatefulApp: a key-value store of
--shards shards, each on --replication of the app's pods, that acknowledges a
write once --min-in-sync in-sync replicas hold it. Its replicas run in this
process and follow the app's pods in the workload cluster (--kubeconfig): a
replica is up while its pod is Running and Ready, and keeps its data on the
pod's PersistentVolumeClaim.

One port (--listen) serves strata.shardmanager.v1.ShardManagerService, which
Strata asks before it stops a pod (set the StatefulApp's
spec.shardManager.endpoint to the address), and strata.refstore.v1.RefStoreService
(Put, Get, Sample) for clients. With --tls-cert-file and --tls-key-file it
serves TLS only (the StatefulApp says transport: TLS and names the CA);
without, plaintext (the StatefulApp must say transport: Plaintext). The first line on standard output says
where; logs go to standard error. docs/refstore.md has the details.`,
		Example: `  strata refstore serve --kubeconfig .strata/kwok/clusters/workload-1/kubeconfig.yaml \
    --namespace shop --app kv --listen 127.0.0.1:0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			return serve(cmd, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the workload cluster that runs the app (default: KUBECONFIG, else ~/.kube/config)")
	fs.StringVar(&f.context, "context", "", "kubeconfig context (default: the current context)")
	fs.StringVarP(&f.namespace, "namespace", "n", "", "namespace of the StatefulApp")
	fs.StringVar(&f.app, "app", "", "name of the StatefulApp")
	fs.IntVar(&f.shards, "shards", refstore.DefaultShards, "shards of the store")
	fs.IntVar(&f.replication, "replication", refstore.DefaultReplication, "replicas of each shard, on distinct pods")
	fs.IntVar(&f.minInSync, "min-in-sync", refstore.DefaultMinInSync, "in-sync replicas a write needs before it is acknowledged")
	fs.StringVar(&f.listen, "listen", refstore.DefaultAddress, "host:port to serve on (port 0: any free port)")
	fs.BoolVar(&f.insecure, "insecure", false, "allow a non-loopback --listen (the store authenticates no client)")
	fs.StringVar(&f.tlsCertFile, "tls-cert-file", "", "PEM serving certificate (chain): serve TLS only (with --tls-key-file); StatefulApps then dial it with transport TLS")
	fs.StringVar(&f.tlsKeyFile, "tls-key-file", "", "PEM key of --tls-cert-file")
	fs.DurationVar(&f.restartHold, "restart-hold", refstore.DefaultRestartHold,
		"when the app's pods already run at start (a restart), approve no new stop of a running pod for this long")
	fs.DurationVar(&f.approvalGrace, "approval-grace", refstore.DefaultApprovalGrace, "an approved pod counts as out until its operation's deadline plus this")
	fs.DurationVar(&f.catchUp, "catch-up-delay", 0, "pause between the batches a catching-up replica copies, to watch catch-up")
	fs.DurationVar(&f.leaderHandoff, "leader-handoff", 0,
		"how long a leader moved off a pod takes to hand over before the stop is approved (0: the move is approved in the same answer), to play a slower data system")
	return cmd
}

func serve(cmd *cobra.Command, f *serveFlags) error {
	logger := zap.New(zap.WriteTo(cmd.ErrOrStderr()))
	klog.SetLogger(logger.WithName("client-go"))
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = f.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: f.context}).ClientConfig()
	if err != nil {
		return fmt.Errorf("loading the kubeconfig of the workload cluster: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("making a Kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("making a Kubernetes client: %w", err)
	}
	opts := f.storeOptions()
	opts.Logger = logger.WithName("refstore")
	store, err := refstore.New(opts)
	if err != nil {
		return err
	}
	srv, err := refstore.NewServer(store, f.serverOptions())
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Serving %s for StatefulApp %s/%s on %s\n", strings.Join(refstore.Services, " and "), f.namespace, f.app, srv.Addr())
	logger.Info("Serving the reference store", "address", srv.Addr(), "tls", f.serverOptions().TLS(), "namespace", f.namespace, "app", f.app,
		"shards", f.shards, "replication", f.replication, "minInSync", f.minInSync)
	w := &refstore.Watcher{Client: client, Dynamic: dyn, Namespace: f.namespace, App: f.app, Store: store, Logger: logger.WithName("watcher")}
	g, ctx := errgroup.WithContext(cmd.Context())
	g.Go(func() error { return srv.Serve(ctx) })
	g.Go(func() error { return store.Run(ctx) })
	g.Go(func() error { return w.Run(ctx) })
	err = g.Wait()
	logger.Info("Stopped the reference store")
	return err
}
