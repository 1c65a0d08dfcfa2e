package pool

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/index"
)

// OverClusterLimit says why the cluster cannot take the Pool named pool at
// capacity, or "" when it can: the capacities of the cluster's Pools
// together (that one at capacity, the others at theirs, those being deleted
// at none) stay within the Cluster's maxNodes. A cluster past its limit
// overloads its own control plane, which then cannot take the shrink that
// would relieve it.
func OverClusterLimit(cluster *fleetv1alpha1.Cluster, pools []fleetv1alpha1.Pool, pool string, capacity int32) string {
	var others int64
	for i := range pools {
		p := &pools[i]
		if p.Name == pool || p.Spec.Cluster != cluster.Name || !p.DeletionTimestamp.IsZero() {
			continue
		}
		others += int64(p.Spec.Capacity)
	}
	limit := int64(cluster.NodeLimit())
	if others+int64(capacity) <= limit {
		return ""
	}
	return fmt.Sprintf("capacity %d would give cluster %s %d Nodes, over its limit of %d (spec.maxNodes of Cluster %s): "+
		"its other Pools take %d, so this Pool may have at most %d",
		capacity, cluster.Name, others+int64(capacity), limit, cluster.Name, others, max(0, limit-others))
}

// overClusterLimit checks a Pool's capacity against its cluster's limit,
// from the hub's cache.
func (r *Reconciler) overClusterLimit(ctx context.Context, pool *fleetv1alpha1.Pool, cluster *fleetv1alpha1.Cluster) (string, error) {
	pools := &fleetv1alpha1.PoolList{}
	if err := r.hub.List(ctx, pools, client.MatchingFields{index.PoolCluster: cluster.Name}); err != nil {
		return "", fmt.Errorf("listing the Pools of cluster %s: %w", cluster.Name, err)
	}
	return OverClusterLimit(cluster, pools.Items, pool.Name, pool.Spec.Capacity), nil
}
