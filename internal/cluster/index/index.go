// Package index holds the field indexes of the hub's controllers, so that every
// controller and every test registers the same keys.
package index

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// ClusterKubeconfigSecret indexes Clusters by "namespace/name" of their
// kubeconfig Secret, so a Secret change reaches the Clusters that use it.
const ClusterKubeconfigSecret = "spec.kubeconfigSecretRef"

// PoolCluster indexes Pools by spec.cluster, so a Cluster change reaches its Pools.
const PoolCluster = "spec.cluster"

// Indexer is the part of a manager's field indexer the indexes need.
type Indexer interface {
	IndexField(ctx context.Context, obj client.Object, field string, extract client.IndexerFunc) error
}

// Setup registers every index.
func Setup(ctx context.Context, indexer Indexer) error {
	if err := indexer.IndexField(ctx, &fleetv1alpha1.Cluster{}, ClusterKubeconfigSecret, clusterKubeconfigSecret); err != nil {
		return fmt.Errorf("indexing clusters by %s: %w", ClusterKubeconfigSecret, err)
	}
	if err := indexer.IndexField(ctx, &fleetv1alpha1.Pool{}, PoolCluster, poolCluster); err != nil {
		return fmt.Errorf("indexing pools by %s: %w", PoolCluster, err)
	}
	return nil
}

func poolCluster(obj client.Object) []string {
	p, ok := obj.(*fleetv1alpha1.Pool)
	if !ok {
		return nil
	}
	return []string{p.Spec.Cluster}
}

func clusterKubeconfigSecret(obj client.Object) []string {
	c, ok := obj.(*fleetv1alpha1.Cluster)
	if !ok {
		return nil
	}
	return []string{SecretKey(c.Spec.KubeconfigSecretRef.Namespace, c.Spec.KubeconfigSecretRef.Name)}
}

// SecretKey is the ClusterKubeconfigSecret index value of a Secret.
func SecretKey(namespace, name string) string {
	return namespace + "/" + name
}
