package pools

import (
	"context"
	"fmt"
	"io"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cli/hubcli"
	"github.com/strata-dev/strata/internal/cli/suggest"
	poolctrl "github.com/strata-dev/strata/internal/cluster/pool"
)

// hubFlags say which hub holds the Pools.
type hubFlags struct{ hubcli.Flags }

// list returns the hub's Pools, none without a hub.
func (h *hubFlags) list(ctx context.Context) ([]fleetv1alpha1.Pool, error) {
	c, err := h.Client()
	if err != nil || c == nil {
		return nil, err
	}
	pools := &fleetv1alpha1.PoolList{}
	if err := c.List(ctx, pools); err != nil {
		return nil, fmt.Errorf("listing the hub's Pools: %w ("+hubcli.Hint+")", err)
	}
	return pools.Items, nil
}

// get returns the hub's Pool of that name, nil when there is none.
func (h *hubFlags) get(ctx context.Context, name string) (*fleetv1alpha1.Pool, error) {
	c, err := h.Client()
	if err != nil || c == nil {
		return nil, err
	}
	pool := &fleetv1alpha1.Pool{}
	switch err := c.Get(ctx, client.ObjectKey{Name: name}, pool); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading Pool %s on the hub: %w ("+hubcli.Hint+")", name, err)
	}
	return pool, nil
}

// checkCluster says, with the close names, when the hub has no Cluster of
// that name.
func (h *hubFlags) checkCluster(ctx context.Context, name string) error {
	c, err := h.MustClient()
	if err != nil {
		return fmt.Errorf("--cluster creates a Pool on the hub: %w", err)
	}
	err = c.Get(ctx, client.ObjectKey{Name: name}, &fleetv1alpha1.Cluster{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading Cluster %s on the hub: %w ("+hubcli.Hint+")", name, err)
	}
	clusters := &fleetv1alpha1.ClusterList{}
	if err := c.List(ctx, clusters); err != nil {
		return fmt.Errorf("listing the hub's Clusters: %w", err)
	}
	names := make([]string, 0, len(clusters.Items))
	for _, cl := range clusters.Items {
		names = append(names, cl.Name)
	}
	if len(names) == 0 {
		return fmt.Errorf("cluster %q does not exist: the hub has no Cluster registered", name)
	}
	return fmt.Errorf("cluster %q does not exist on the hub%s (kubectl get clusters lists them)", name, suggest.DidYouMean(name, names))
}

// checkLimit refuses a capacity the Pool's cluster cannot take, as the pool
// controller would, before anything is written.
func checkLimit(ctx context.Context, c client.Client, pool *fleetv1alpha1.Pool, capacity int32) error {
	cluster := &fleetv1alpha1.Cluster{}
	switch err := c.Get(ctx, client.ObjectKey{Name: pool.Spec.Cluster}, cluster); {
	case apierrors.IsNotFound(err):
		return nil // the pool controller says so in the Pool's status
	case err != nil:
		return fmt.Errorf("reading Cluster %s on the hub: %w", pool.Spec.Cluster, err)
	}
	pools := &fleetv1alpha1.PoolList{}
	if err := c.List(ctx, pools); err != nil {
		return fmt.Errorf("listing the hub's Pools: %w", err)
	}
	if why := poolctrl.OverClusterLimit(cluster, pools.Items, pool.Name, capacity); why != "" {
		return fmt.Errorf("refused: Pool %s: %s (kubectl patch cluster %s --type merge -p '{\"spec\":{\"maxNodes\":N}}' raises the limit)",
			pool.Name, why, cluster.Name)
	}
	return nil
}

func (h *hubFlags) create(ctx context.Context, out io.Writer, pool *fleetv1alpha1.Pool) error {
	c, err := h.MustClient()
	if err != nil {
		return err
	}
	if err := checkLimit(ctx, c, pool, pool.Spec.Capacity); err != nil {
		return err
	}
	if err := c.Create(ctx, pool); err != nil {
		return fmt.Errorf("creating Pool %s: %w", pool.Name, err)
	}
	fmt.Fprintf(out, "Created Pool %s: %d %s Nodes in cluster %s. `strata pools` shows them join.\n",
		pool.Name, pool.Spec.Capacity, pool.Spec.NodeProfile, pool.Spec.Cluster)
	return nil
}

func (h *hubFlags) scale(ctx context.Context, out io.Writer, pool *fleetv1alpha1.Pool, capacity int32) error {
	c, err := h.Client()
	if err != nil {
		return err
	}
	if capacity > pool.Spec.Capacity {
		if err := checkLimit(ctx, c, pool, capacity); err != nil {
			return err
		}
	}
	before := pool.DeepCopy()
	pool.Spec.Capacity = capacity
	if err := c.Patch(ctx, pool, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("scaling Pool %s: %w", pool.Name, err)
	}
	fmt.Fprintln(out, scaleMessage(before, capacity))
	return nil
}

// scaleMessage says what scaling the Pool to capacity does, from the
// machines and Nodes it holds (its status), not from the capacities: a Pool
// that never got its capacity releases only what it holds above the new one.
func scaleMessage(pool *fleetv1alpha1.Pool, capacity int32) string {
	from, held, nodes := pool.Spec.Capacity, pool.Status.Allocated, pool.Status.Nodes
	msg := fmt.Sprintf("Pool %s: capacity %d -> %d.", pool.Name, from, capacity)
	switch {
	case capacity >= from:
		return msg
	case held <= capacity:
		return msg + fmt.Sprintf(" It holds %d machines (%d Nodes), no more than that: none is released.", held, nodes)
	}
	return msg + fmt.Sprintf(" %d of its %d machines are released, evenly across MZs, each once its Node is drained (the Pool has %d Nodes); "+
		"`strata pools` shows the progress.", held-capacity, held, nodes)
}

func (h *hubFlags) delete(ctx context.Context, out io.Writer, pool *fleetv1alpha1.Pool) error {
	c, err := h.Client()
	if err != nil {
		return err
	}
	// The caller has --force, or a yes from a person: that is the explicit
	// second step the delete guardrail asks for (kubectl delete needs the
	// annotation set by hand).
	patch := client.MergeFrom(pool.DeepCopy())
	metav1.SetMetaDataAnnotation(&pool.ObjectMeta, appsv1alpha1.AllowDeleteAnnotation, "true")
	if err := c.Patch(ctx, pool, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("marking Pool %s for deletion: %w", pool.Name, err)
	}
	if err := c.Delete(ctx, pool); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting Pool %s: %w", pool.Name, err)
	}
	fmt.Fprintf(out, "Deleting Pool %s (annotated %s=true, the delete-protection override): "+
		"its %d Nodes are drained and their machines released; `strata pools` shows the progress.\n",
		pool.Name, appsv1alpha1.AllowDeleteAnnotation, pool.Status.Nodes)
	return nil
}
