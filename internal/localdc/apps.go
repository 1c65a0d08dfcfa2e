package localdc

import (
	"context"
	"fmt"
	"path/filepath"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/workload/apps"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/workload/guardrails"
	"github.com/strata-dev/strata/internal/workload/install"
)

// webhookDir holds the admission webhook's CA and serving certificate,
// under the home; they are reused while valid.
const webhookDir = "webhook"

// webhookTLS is the admission webhook's certificate, made or reused at
// start; the webhook server reads the files from the directory.
type webhookTLS struct {
	caBundle []byte
}

// webhookCertificates makes (or reuses) the webhook's certificates.
func (r *Running) webhookCertificates() error {
	ca, _, _, err := guardrails.Certificates(filepath.Join(r.opts.Home, webhookDir), []string{"127.0.0.1"})
	if err != nil {
		return fmt.Errorf("the admission webhook's certificates: %w", err)
	}
	r.webhook = webhookTLS{caBundle: ca}
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
		cl, err := client.New(cfg, client.Options{Scheme: apps.Scheme()})
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

// appManagers are the controller managers of the workload clusters, one
// each, as `strata serve apps` builds them.
func (r *Running) appManagers() ([]ctrl.Manager, error) {
	var mgrs []ctrl.Manager
	for _, c := range r.Datacenter.WorkloadClusters() {
		cfg, err := r.restConfig(c.Name)
		if err != nil {
			return nil, err
		}
		// As Strata's service account, as in a real cluster, with the
		// admin's rights: the guardrails let only Strata change the
		// replicas of what a StatelessApp expands into, and the admin
		// kubeconfig is everyone's here.
		cfg.Impersonate = rest.ImpersonationConfig{UserName: guardrails.StrataControllers + "strata-apps", Groups: []string{"system:masters"}}
		conf := &configv1alpha1.AppsConfiguration{ClusterName: c.Name}
		inProcess(&conf.ControllerManager)
		if err := config.Complete(conf); err != nil {
			return nil, fmt.Errorf("the configuration of cluster %s's app controllers: %w", c.Name, err)
		}
		mgr, err := apps.NewManager(apps.Options{Config: conf, RestConfig: cfg, Logger: r.opts.Logger.WithValues("cluster", c.Name)})
		if err != nil {
			return nil, err
		}
		mgrs = append(mgrs, mgr)
	}
	return mgrs, nil
}

// webhookServer serves the guardrail webhook of every cluster over TLS,
// each below /clusters/<name>, as `strata serve webhook` serves one.
func (r *Running) webhookServer() (ctrl.Manager, error) {
	conf := &configv1alpha1.WebhookConfiguration{
		// The hub's name: the one server guards every cluster, each named
		// in Guarded below.
		ClusterName: r.Datacenter.Clusters[0].Name,
		Host:        "127.0.0.1",
		Port:        ptr.To(int32(r.Datacenter.WebhookPort)), //nolint:gosec // a TCP port
		CertDir:     filepath.Join(r.opts.Home, webhookDir),
		Health:      configv1alpha1.HealthConfiguration{BindAddress: "0"},
		Metrics:     configv1alpha1.MetricsConfiguration{BindAddress: "0"},
	}
	if err := config.Complete(conf); err != nil {
		return nil, fmt.Errorf("the webhook's configuration: %w", err)
	}
	var guarded []guardrails.Guarded
	for _, c := range r.Datacenter.Clusters {
		cfg, err := r.restConfig(c.Name)
		if err != nil {
			return nil, err
		}
		guarded = append(guarded, guardrails.Guarded{Cluster: c.Name, RestConfig: cfg, Prefix: "/clusters/" + c.Name})
	}
	return guardrails.NewServer(guardrails.ServerOptions{
		Config: conf, RestConfig: r.hubConfig, Guarded: guarded, Logger: r.opts.Logger.WithName("webhook"),
	})
}
