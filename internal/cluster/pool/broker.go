package pool

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/brokerapi"
	"github.com/strata-dev/strata/internal/cluster/brokerwatch"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// ensureBrokerPool creates the Pool's broker pool, or brings its capacity,
// node config and join target in step. A refusal the Pool's author must fix,
// and a broker that does not answer, come back as a blocker that status shows;
// a broker pool deleted outside the hub comes back with its blocker.
func (r *Reconciler) ensureBrokerPool(ctx context.Context, pool *fleetv1alpha1.Pool, cluster *fleetv1alpha1.Cluster,
	cred joinCredential) (*brokerv1.Pool, *blocker) {
	logger := log.FromContext(ctx)
	resp, err := r.broker.GetPool(ctx, &brokerv1.GetPoolRequest{Name: pool.Name})
	if brokerapi.IsCode(err, codes.NotFound) {
		if block := r.limitBlocker(ctx, pool, cluster); block != nil {
			return nil, block
		}
		created, err := r.broker.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{
			Name: pool.Name, Datacenter: cluster.Spec.Datacenter, NodeProfile: pool.Spec.NodeProfile,
			Capacity: pool.Spec.Capacity, NodeConfig: pool.Spec.NodeConfig, JoinTarget: joinTarget(pool, cred),
		}})
		if err != nil {
			return nil, brokerBlocker("creating the broker pool", err)
		}
		r.remember(pool.Name, cred)
		logger.Info("Created the broker pool", "capacity", pool.Spec.Capacity, "profile", pool.Spec.NodeProfile)
		r.recorder.Eventf(pool, nil, "Normal", "BrokerPoolCreated", "Reconcile",
			"created broker pool %s with capacity %d of profile %s", pool.Name, pool.Spec.Capacity, pool.Spec.NodeProfile)
		return created.GetPool(), nil
	}
	if err != nil {
		return nil, brokerBlocker("reading the broker pool", err)
	}
	bp := resp.GetPool()
	if why := conflict(pool, cluster, bp); why != "" {
		return nil, &blocker{fleetv1alpha1.BrokerPoolConflictReason, why}
	}
	if bp.GetDeleting() {
		return bp, &blocker{fleetv1alpha1.BrokerRejectedReason,
			fmt.Sprintf("broker pool %q is being deleted outside the hub; it is created again once its machines are released", bp.GetName())}
	}
	drift := brokerPoolDrift(pool, bp)
	if !r.pushed(pool.Name, cred) {
		// The broker never returns the bootstrap token: it is pushed once
		// per process, at each rotation and whenever the cluster's API
		// server or CA changes.
		drift = strings.TrimPrefix(drift+", bootstrap token", ", ")
	}
	if drift == "" {
		return bp, nil
	}
	if pool.Spec.Capacity > bp.GetCapacity() {
		// Only growth is checked: a Pool left over a lowered limit may
		// still shrink or change its node config.
		if block := r.limitBlocker(ctx, pool, cluster); block != nil {
			return bp, block
		}
	}
	updated, err := r.broker.UpdatePool(ctx, &brokerv1.UpdatePoolRequest{
		Name: pool.Name, Capacity: pool.Spec.Capacity, NodeConfig: proto.String(pool.Spec.NodeConfig),
		JoinTarget: joinTarget(pool, cred),
	})
	if err != nil {
		return nil, brokerBlocker("updating the broker pool", err)
	}
	r.remember(pool.Name, cred)
	logger.Info("Updated the broker pool", "change", drift)
	return updated.GetPool(), nil
}

// shrinkBrokerPool brings the broker pool's capacity down to the Pool's
// while its cluster cannot be reached: no machine is provisioned for
// capacity the Pool no longer wants (a cluster overloaded by joining Nodes
// would otherwise keep getting more). Nothing else changes: the join
// token and the Nodes wait for the cluster, and the machines to release
// wait for their Nodes to be drained.
func (r *Reconciler) shrinkBrokerPool(ctx context.Context, pool *fleetv1alpha1.Pool, cluster *fleetv1alpha1.Cluster) {
	logger := log.FromContext(ctx)
	resp, err := r.broker.GetPool(ctx, &brokerv1.GetPoolRequest{Name: pool.Name})
	if err != nil {
		if !brokerapi.IsCode(err, codes.NotFound) {
			logger.Error(err, "Reading the broker pool, to shrink it while the cluster is not Ready")
		}
		return
	}
	bp := resp.GetPool()
	if bp.GetDeleting() || pool.Spec.Capacity >= bp.GetCapacity() || conflict(pool, cluster, bp) != "" {
		return
	}
	if _, err := r.broker.UpdatePool(ctx, &brokerv1.UpdatePoolRequest{Name: pool.Name, Capacity: pool.Spec.Capacity}); err != nil {
		logger.Error(err, "Shrinking the broker pool while the cluster is not Ready", "capacity", pool.Spec.Capacity)
		return
	}
	logger.Info("Shrank the broker pool while the cluster is not Ready", "from", bp.GetCapacity(), "to", pool.Spec.Capacity)
	r.recorder.Eventf(pool, nil, "Normal", "BrokerPoolShrunk", "Reconcile",
		"broker pool %s shrunk from %d to %d machines while cluster %s is not Ready; its Nodes are drained once it is",
		pool.Name, bp.GetCapacity(), pool.Spec.Capacity, cluster.Name)
}

// limitBlocker refuses a capacity the Pool's cluster cannot take.
func (r *Reconciler) limitBlocker(ctx context.Context, pool *fleetv1alpha1.Pool, cluster *fleetv1alpha1.Cluster) *blocker {
	why, err := r.overClusterLimit(ctx, pool, cluster)
	switch {
	case err != nil:
		return &blocker{fleetv1alpha1.ClusterNotReadyReason, err.Error()}
	case why != "":
		return &blocker{fleetv1alpha1.OverClusterLimitReason, why + "; the broker pool is left as it was"}
	}
	return nil
}

// pushed says whether the broker pool got this credential from this process.
func (r *Reconciler) pushed(pool string, cred joinCredential) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.credentials[pool] == cred.hash()
}

func (r *Reconciler) remember(pool string, cred joinCredential) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.credentials[pool] = cred.hash()
}

// forget drops what was pushed for a pool that is gone.
func (r *Reconciler) forget(pool string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.credentials, pool)
}

// brokerBlocker says why the broker refused or did not answer.
func brokerBlocker(doing string, err error) *blocker {
	s, _ := status.FromError(err)
	switch s.Code() {
	case codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition, codes.AlreadyExists:
		return &blocker{fleetv1alpha1.BrokerRejectedReason, "the broker refused: " + s.Message()}
	}
	return &blocker{fleetv1alpha1.BrokerUnavailableReason, doing + ": " + err.Error()}
}

// poolMachines lists the broker's machines of a pool, by id.
func (r *Reconciler) poolMachines(ctx context.Context, pool string) (map[string]*brokerv1.Machine, error) {
	list, err := brokerapi.PoolMachines(ctx, r.broker, pool)
	if err != nil {
		return nil, err
	}
	machines := make(map[string]*brokerv1.Machine, len(list))
	for _, m := range list {
		machines[m.GetId()] = m
	}
	return machines, nil
}

// approve tells the broker a machine may go: its Node is drained or gone.
func (r *Reconciler) approve(ctx context.Context, d *brokerv1.Disruption, message string) error {
	_, err := r.broker.ApproveDisruption(ctx, &brokerv1.ApproveDisruptionRequest{Id: d.GetId(), OnBehalfOf: actor, Message: message})
	if err != nil && !brokerapi.IsCode(err, codes.FailedPrecondition) { // approved meanwhile
		return fmt.Errorf("approving disruption %s of machine %s: %w", d.GetId(), d.GetMachine(), err)
	}
	return nil
}

// approveAll approves every pending shrink of a pool whose cluster is gone.
func (r *Reconciler) approveAll(ctx context.Context, pool *fleetv1alpha1.Pool, message string) (reconcile.Result, error) {
	open, err := brokerapi.OpenDisruptions(ctx, r.broker, pool.Name)
	if err != nil {
		return reconcile.Result{}, err
	}
	for _, d := range open {
		if isPendingShrink(d) {
			if err := r.approve(ctx, d, message); err != nil {
				return reconcile.Result{}, err
			}
		}
	}
	return reconcile.Result{RequeueAfter: convergingInterval}, nil
}

func isPendingShrink(d *brokerv1.Disruption) bool {
	return d.GetReason() == brokerv1.DisruptionReason_DISRUPTION_REASON_POOL_SHRINK &&
		d.GetState() == brokerv1.DisruptionState_DISRUPTION_STATE_PENDING
}

// poolOfDisruption and poolOfBrokerPool map the broker's streams to Pools,
// so the controller reacts to allocations, joins and shrinks at once.
func poolOfDisruption(e *brokerv1.WatchDisruptionsResponse) client.Object {
	return brokerwatch.Pool(e.GetDisruption().GetPool())
}

func poolOfBrokerPool(e *brokerv1.WatchPoolsResponse) client.Object {
	return brokerwatch.Pool(e.GetPool().GetName())
}
