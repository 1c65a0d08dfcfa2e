package localdc

import (
	"context"
	"fmt"

	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/config/rbac"
)

// installIdentities applies the release manifests' RBAC to every cluster
// (the hub's to the hub, the workload's to each workload cluster) and
// issues a token to every ServiceAccount the components run as, before any
// component starts.
func (r *Running) installIdentities(ctx context.Context) error {
	if err := r.eachCluster(ctx, func(ctx context.Context, c ClusterInfo) error {
		dirs := rbac.Workload
		if c.Name == HubName {
			dirs = rbac.Hub
		}
		return r.applyRBAC(ctx, c.Name, dirs)
	}); err != nil {
		return err
	}
	expiries, err := issueIdentities(ctx, r.opts.Home, r.Datacenter.identities())
	if err != nil {
		return fmt.Errorf("issuing the components' ServiceAccount tokens: %w", err)
	}
	r.identities = expiries
	return nil
}

// applyRBAC applies, with the admin's kubeconfig, the namespace
// strata-system and the RBAC of the folders of config/rbac.
func (r *Running) applyRBAC(ctx context.Context, cluster string, dirs []string) error {
	objs, err := rbac.Objects(dirs...)
	if err != nil {
		return err
	}
	cfg, err := r.restConfig(cluster)
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return fmt.Errorf("connecting to cluster %s: %w", cluster, err)
	}
	if err := c.Apply(ctx, corev1ac.Namespace(SystemNamespace), fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("creating namespace %s: %w", SystemNamespace, err)
	}
	for _, o := range objs {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), fieldOwner, client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s: %w", o.GetKind(), o.GetName(), err)
		}
	}
	return nil
}

// identityRenewed copies a renewed token where it is not read from the
// home: the hub's kubeconfig Secrets of a workload cluster (the hub's
// controllers', the fleet aggregator's, and the hub Kueue's).
func (r *Running) identityRenewed(ctx context.Context, id Identity) error {
	switch {
	case isMultiKueueIdentity(id):
		return writeMultiKueueSecret(ctx, r.hubClient, r.opts.Home, id.Cluster)
	case id.ServiceAccount == aggregatorServiceAccount && id.Namespace == "" && id.Cluster != HubName:
		return writeAggregatorKubeconfigSecret(ctx, r.hubClient, r.opts.Home, id.Cluster)
	case id.ServiceAccount != hubServiceAccount || id.Namespace != "" || id.Cluster == HubName:
		return nil
	}
	return writeKubeconfigSecret(ctx, r.hubClient, r.opts.Home, id.Cluster)
}
