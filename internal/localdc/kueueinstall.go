package localdc

import (
	"context"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/config/rbac"
	"github.com/strata-dev/strata/internal/workload/install"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// kueueWebhookConfigurations are the names Kueue's manifests give its
// webhook configurations; they are removed when a start runs no Kueue, so
// that no API server calls a Kueue that is not there.
var kueueWebhookConfigurations = []struct{ kind, name string }{
	{"MutatingWebhookConfiguration", "kueue-mutating-webhook-configuration"},
	{"ValidatingWebhookConfiguration", "kueue-validating-webhook-configuration"},
}

// installKueue installs into every cluster what its Kueue needs, from
// Kueue's own release manifests: the CRDs (waited for), namespace
// kueue-system, Kueue's ServiceAccount and RBAC, and its webhook
// configurations, pointed at the cluster's kueue process with the home's
// CA; and on each workload cluster the identity the hub's Kueue acts as
// (config/rbac/multikueue). Without jobs it only removes the webhook
// configurations an earlier start registered; the CRDs and objects stay.
func (r *Running) installKueue(ctx context.Context) error {
	if !r.opts.Jobs {
		return r.eachCluster(ctx, func(ctx context.Context, c ClusterInfo) error {
			return r.unregisterKueueWebhooks(ctx, c.Name)
		})
	}
	manifests, err := readKueueManifests(r.opts.BinDir)
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(PKIPath(r.opts.Home, "ca.crt"))
	if err != nil {
		return fmt.Errorf("reading the local datacenter's CA: %w", err)
	}
	worker, err := rbac.Objects(rbac.MultiKueueWorker...)
	if err != nil {
		return err
	}
	return r.eachCluster(ctx, func(ctx context.Context, c ClusterInfo) error {
		objs, err := kueueObjects(manifests, r.Datacenter.kueueWebhookURL(c.Name), ca)
		if err != nil {
			return fmt.Errorf("reading the objects of Kueue's manifests: %w", err)
		}
		if c.Name != HubName {
			// Each cluster's copy: an apply writes the server's answer
			// into the object it sends.
			for _, o := range worker {
				objs = append(objs, o.DeepCopy())
			}
		}
		return r.applyKueue(ctx, c.Name, objs)
	})
}

// applyKueue applies Kueue's objects to a cluster, in the manifests'
// order (namespace and CRDs first), then waits until its CRDs are served.
func (r *Running) applyKueue(ctx context.Context, cluster string, objs []*unstructured.Unstructured) error {
	c, err := r.adminClient(cluster)
	if err != nil {
		return err
	}
	var crds []string
	for _, o := range objs {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), fieldOwner, client.ForceOwnership); err != nil {
			return fmt.Errorf("installing Kueue's %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o.GetName())
		}
	}
	for _, name := range crds {
		if err := install.WaitEstablished(ctx, c, name); err != nil {
			return err
		}
	}
	return nil
}

// unregisterKueueWebhooks removes Kueue's webhook configurations from a
// cluster, if an earlier start registered them.
func (r *Running) unregisterKueueWebhooks(ctx context.Context, cluster string) error {
	c, err := r.adminClient(cluster)
	if err != nil {
		return err
	}
	for _, w := range kueueWebhookConfigurations {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("admissionregistration.k8s.io/v1")
		u.SetKind(w.kind)
		u.SetName(w.name)
		if err := c.Delete(ctx, u); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("removing Kueue's %s (this start runs no Kueue): %w", w.kind, err)
		}
	}
	return nil
}

// adminClient is the admin's client of a cluster of the home, for
// unstructured objects.
func (r *Running) adminClient(cluster string) (client.Client, error) {
	cfg, err := r.restConfig(cluster)
	if err != nil {
		return nil, err
	}
	// client-go's default, 5 requests a second, would make Kueue's eighty
	// objects take 15 s at every start.
	cfg.QPS, cfg.Burst = 50, 100
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, fmt.Errorf("connecting to cluster %s: %w", cluster, err)
	}
	return c, nil
}

// writeMultiKueueSecrets writes, on the hub, for each workload cluster,
// the Secret through which the hub's Kueue reaches it (see
// writeMultiKueueSecret).
func (r *Running) writeMultiKueueSecrets(ctx context.Context) error {
	if !r.opts.Jobs {
		return nil
	}
	for _, wc := range r.Datacenter.WorkloadClusters() {
		if err := writeMultiKueueSecret(ctx, r.hubClient, r.opts.Home, wc.Name); err != nil {
			return err
		}
	}
	return nil
}

// writeMultiKueueSecret writes the Secret kueue-system/multikueue-<cluster>
// of the hub: a kubeconfig of the workload cluster's ServiceAccount
// kueue-system/multikueue with its current token inline (MultiKueue
// refuses kubeconfigs that name files), written again at each renewal. A
// MultiKueueCluster names it (kubeConfig.location).
func writeMultiKueueSecret(ctx context.Context, c client.Client, home, cluster string) error {
	return writeIdentitySecret(ctx, c, home, multiKueueIdentity(cluster), kueue.Namespace,
		kueue.MultiKueueKubeconfigSecret(cluster), kueue.MultiKueueKubeconfigKey)
}
