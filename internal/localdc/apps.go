package localdc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/workload/appcache"
	"github.com/strata-dev/strata/internal/workload/guardrails"
	"github.com/strata-dev/strata/internal/workload/install"
	"github.com/strata-dev/strata/internal/workload/statefulapp"
	"github.com/strata-dev/strata/internal/workload/statelessapp"
)

// webhookDir holds the admission webhook's CA and serving certificate,
// under the home; they are reused while valid.
const webhookDir = "webhook"

// webhookTLS is the admission webhook's certificate, made or reused at start.
type webhookTLS struct {
	caBundle          []byte
	certFile, keyFile string
}

// webhookCertificates makes (or reuses) the webhook's certificates.
func (r *Running) webhookCertificates() error {
	ca, cert, key, err := guardrails.Certificates(filepath.Join(r.opts.Home, webhookDir), []string{"127.0.0.1"})
	if err != nil {
		return fmt.Errorf("the admission webhook's certificates: %w", err)
	}
	r.webhook = webhookTLS{caBundle: ca, certFile: cert, keyFile: key}
	return nil
}

// webhookFor is where a cluster's API server reaches its guardrail webhook.
func (r *Running) webhookFor(cluster string) install.Webhook {
	return install.Webhook{
		URL:      "https://" + loopback(r.Datacenter.WebhookPort) + "/clusters/" + cluster,
		CABundle: r.webhook.caBundle,
	}
}

// restConfig is the admin config of a cluster of the home.
func (r *Running) restConfig(cluster string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", KubeconfigPath(r.opts.Home, cluster))
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig of cluster %s: %w", cluster, err)
	}
	return cfg, nil
}

// installWorkloadClusters installs what each workload cluster needs from
// Strata: the apps' CRDs, the AppPlatform, roles and guardrails.
func (r *Running) installWorkloadClusters(ctx context.Context) error {
	return r.eachWorkloadCluster(ctx, func(ctx context.Context, c ClusterInfo) error {
		cfg, err := r.restConfig(c.Name)
		if err != nil {
			return err
		}
		cl, err := client.New(cfg, client.Options{Scheme: appsScheme()})
		if err != nil {
			return fmt.Errorf("connecting to cluster %s: %w", c.Name, err)
		}
		if err := install.Workload(ctx, cl, r.webhookFor(c.Name)); err != nil {
			return fmt.Errorf("installing Strata into cluster %s: %w", c.Name, err)
		}
		return nil
	})
}

func (r *Running) eachWorkloadCluster(ctx context.Context, fn func(context.Context, ClusterInfo) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, c := range r.Datacenter.WorkloadClusters() {
		g.Go(func() error { return fn(ctx, c) })
	}
	return g.Wait()
}

// appsScheme is the scheme of a workload cluster's controllers.
func appsScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, appsv1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // only on a programming error in the list above
		}
	}
	return s
}

// appManagers are the controller managers of the workload clusters: each
// runs the StatelessApp and StatefulApp controllers against its cluster, as
// `strata serve apps` would in production. The StatefulApp controller
// reaches each app's shard manager over gRPC (spec.shardManager.endpoint);
// its connections close with the manager.
func (r *Running) appManagers() ([]ctrl.Manager, error) {
	var mgrs []ctrl.Manager
	for _, c := range r.Datacenter.WorkloadClusters() {
		cfg, err := r.restConfig(c.Name)
		if err != nil {
			return nil, err
		}
		cfg.QPS, cfg.Burst = 200, 400 // a 1,000-replica app is many pods to judge and write
		// As Strata's service account, as in a real cluster, with the
		// admin's rights: the guardrails let only Strata change the
		// replicas of what a StatelessApp expands into, and the admin
		// kubeconfig is everyone's here.
		cfg.Impersonate = rest.ImpersonationConfig{UserName: guardrails.StrataControllers + "strata-apps", Groups: []string{"system:masters"}}
		mgr, err := ctrl.NewManager(cfg, ctrl.Options{
			Scheme:         appsScheme(),
			Logger:         r.opts.Logger.WithValues("cluster", c.Name),
			LeaderElection: false,
			Metrics:        metricsserver.Options{BindAddress: "0"},
			Cache:          appcache.Options(),
		})
		if err != nil {
			return nil, fmt.Errorf("creating the controller manager of cluster %s: %w", c.Name, err)
		}
		apps, err := statelessapp.New(statelessapp.Options{
			Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("statelessapp-controller"), Cluster: c.Name,
		})
		if err != nil {
			return nil, err
		}
		if err := apps.SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("setting up the StatelessApp controller of cluster %s: %w", c.Name, err)
		}
		stateful, err := statefulapp.New(statefulapp.Options{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("statefulapp-controller"), Cluster: c.Name,
		})
		if err != nil {
			return nil, err
		}
		if err := stateful.SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("setting up the StatefulApp controller of cluster %s: %w", c.Name, err)
		}
		mgrs = append(mgrs, mgr)
	}
	return mgrs, nil
}

// serveWebhook serves the guardrail webhook of every cluster over TLS, each
// below /clusters/<name>, until ctx is done.
func (r *Running) serveWebhook(ctx context.Context) error {
	mux := http.NewServeMux()
	for _, c := range r.Datacenter.Clusters {
		cfg, err := r.restConfig(c.Name)
		if err != nil {
			return err
		}
		md, err := metadata.NewForConfig(cfg)
		if err != nil {
			return err
		}
		h, err := guardrails.NewHandler(guardrails.Options{Metadata: md, Cluster: c.Name})
		if err != nil {
			return err
		}
		prefix := "/clusters/" + c.Name
		mux.Handle(prefix+"/", http.StripPrefix(prefix, h))
	}
	srv := &http.Server{Addr: loopback(r.Datacenter.WebhookPort), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	l, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("the admission webhook cannot listen on %s: %w", srv.Addr, err)
	}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ServeTLS(l, r.webhook.certFile, r.webhook.keyFile); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving the admission webhook: %w", err)
	}
	return nil
}
