package localdc

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/strata-dev/strata/internal/workload/apps"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
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

// webhookFor is where a cluster's API server reaches its guardrail
// webhook: the cluster's own webhook process.
func (r *Running) webhookFor(cluster string) install.Webhook {
	ports := r.Datacenter.Processes[ComponentWebhook+"-"+cluster]
	return install.Webhook{
		URL:      "https://" + loopback(ports.Webhook),
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
