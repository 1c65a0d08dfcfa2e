package pool

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/brokerapi"
	"github.com/strata-dev/strata/internal/cluster/nodeutil"
	"github.com/strata-dev/strata/internal/cluster/remote"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// nodeWorkers bounds the Node writes and drains one Pool runs at once.
const nodeWorkers = 16

// reconcileNodes looks after every Node of a Pool: a Node whose machine the
// pool gave up through the disruption protocol is deleted, one whose machine
// the broker does not hold for the pool otherwise is kept and reported
// (heldNode), and every other Node gets the Pool's labels and taints and
// loses the startup taint once its required DaemonSets are ready on it.
// Cordons and drains are the cluster manager's (package manager), for every
// disruption; the Pool reads how they go from the Nodes' annotations.
func (r *Reconciler) reconcileNodes(ctx context.Context, pool *fleetv1alpha1.Pool, rc *remote.Cluster, bp *brokerv1.Pool) (observed, error) {
	// Nodes are read before machines: a Node exists only once its machine
	// was allocated, so every Node read has its machine in the list below
	// unless the machine was released since.
	nodes, err := poolNodes(ctx, rc, pool.Name)
	if err != nil {
		return observed{}, err
	}
	machines, err := r.poolMachines(ctx, pool.Name)
	if err != nil {
		return observed{}, err
	}
	gate, err := daemonSetGate(ctx, rc, pool)
	if err != nil {
		return observed{}, err
	}

	obs := observed{brokerPool: bp, daemonSets: gate.waiting, joinFailure: joinFailure(machines, nodes)}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(nodeWorkers)
	for i := range nodes {
		node := &nodes[i]
		if _, ok := machines[nodeutil.Machine(node)]; !ok {
			g.Go(func() error {
				why, err := r.keepReason(gctx, pool.Name, node)
				switch {
				case err != nil:
					return err
				case why == "":
					return deleteNode(gctx, rc, node)
				}
				mu.Lock()
				defer mu.Unlock()
				obs.held = append(obs.held, heldNode{name: node.Name, why: why})
				return nil
			})
			continue
		}
		obs.nodes = append(obs.nodes, *node)
		g.Go(func() error { return updateNode(gctx, rc, pool, node, gate) })
	}
	err = g.Wait()
	slices.SortFunc(obs.held, func(a, b heldNode) int { return strings.Compare(a.name, b.name) })
	return obs, err
}

// heldNode is a Node of the Pool kept though the broker does not hold its
// machine for the Pool, and why.
type heldNode struct {
	name, why string
}

// keepReason says why a Node whose machine is not in the broker pool must be
// kept, "" when the pool gave the machine up through the disruption protocol
// and the Node may go: the cluster manager drained it for a disruption that
// takes the machine out of the pool (a shrink, a decommission, a
// replacement) and the cluster approved it. Anything else, and above all a
// broker whose view went backwards (restored from an older backup), must
// never delete a live Node. An error (the broker did not answer) keeps the
// Node for the next pass.
func (r *Reconciler) keepReason(ctx context.Context, pool string, node *corev1.Node) (string, error) {
	unknown := fmt.Sprintf("node %s runs on machine %s, which broker pool %s does not hold", node.Name, nodeutil.Machine(node), pool)
	id := node.Annotations[fleetv1alpha1.CordonedForAnnotation]
	if id == "" {
		return unknown + " and no disruption of Strata's drained it", nil
	}
	resp, err := r.broker.GetDisruption(ctx, &brokerv1.GetDisruptionRequest{Id: id})
	switch {
	case brokerapi.IsCode(err, codes.NotFound):
		return fmt.Sprintf("%s, and disruption %s that drained it is unknown to the broker", unknown, id), nil
	case err != nil:
		return "", fmt.Errorf("reading disruption %s that drained node %s: %w", id, node.Name, err)
	}
	d := resp.GetDisruption()
	if d.GetMachine() != nodeutil.Machine(node) || !takesOut(d) || !approved(d) {
		return fmt.Sprintf("%s, and disruption %s that drained it (%s, %s) does not give the machine up", unknown, id,
			strings.ToLower(strings.TrimPrefix(d.GetReason().String(), "DISRUPTION_REASON_")),
			strings.ToLower(strings.TrimPrefix(d.GetState().String(), "DISRUPTION_STATE_"))), nil
	}
	return "", nil
}

// takesOut says whether a disruption ends with its machine out of its pool.
func takesOut(d *brokerv1.Disruption) bool {
	switch d.GetReason() {
	case brokerv1.DisruptionReason_DISRUPTION_REASON_POOL_SHRINK, brokerv1.DisruptionReason_DISRUPTION_REASON_DECOMMISSION:
		return true
	}
	return d.GetOperation().GetKind() == brokerv1.OperationKind_OPERATION_KIND_REPLACE
}

// approved says whether the cluster let a disruption's machine go.
func approved(d *brokerv1.Disruption) bool {
	switch d.GetState() {
	case brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED, brokerv1.DisruptionState_DISRUPTION_STATE_IN_PROGRESS,
		brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED:
		return true
	}
	return false
}

// joinFailure says why a machine without a Node failed to join, from the
// broker's health message (the first such machine by ID), "" when none did.
func joinFailure(machines map[string]*brokerv1.Machine, nodes []corev1.Node) string {
	hasNode := make(map[string]bool, len(nodes))
	for i := range nodes {
		hasNode[nodeutil.Machine(&nodes[i])] = true
	}
	var ids []string
	for id, m := range machines {
		if !hasNode[id] && strings.HasPrefix(m.GetHealthMessage(), joinFailurePrefix) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	id := slices.Min(ids)
	return fmt.Sprintf("machine %s: %s", id, machines[id].GetHealthMessage())
}

// joinFailurePrefix starts the broker's health message of a machine whose
// join failed (broker.provisionMessage).
const joinFailurePrefix = "provisioning: joining"

// poolNodes lists the Nodes that carry the Pool's label, from the cache.
func poolNodes(ctx context.Context, rc *remote.Cluster, pool string) ([]corev1.Node, error) {
	nodes := &corev1.NodeList{}
	if err := rc.Client.List(ctx, nodes, client.MatchingLabels{fleetv1alpha1.PoolLabel: pool}); err != nil {
		return nil, fmt.Errorf("listing the nodes of pool %s: %w", pool, err)
	}
	return nodes.Items, nil
}

// deleteNode removes the Node of a machine that went back to the broker.
func deleteNode(ctx context.Context, rc *remote.Cluster, node *corev1.Node) error {
	if err := rc.Client.Delete(ctx, node); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting node %s: %w", node.Name, err)
	}
	log.FromContext(ctx).Info("Deleted the node of a released machine", "node", klog.KObj(node))
	return nil
}

// updateNode brings a Node that stays in the Pool in step: the Pool's labels
// and taints, and no startup taint once its DaemonSets are ready.
func updateNode(ctx context.Context, rc *remote.Cluster, pool *fleetv1alpha1.Pool, node *corev1.Node, gate daemonSets) error {
	patched := node.DeepCopy()
	changed := nodeUpdate(patched, pool)
	if hasStartupTaint(patched) && gate.readyOn(node.Name) {
		removeTaint(patched, func(t corev1.Taint) bool { return t.Key == fleetv1alpha1.StartupTaintKey })
		changed = true
	}
	if !changed {
		return nil
	}
	if err := rc.Client.Patch(ctx, patched, client.MergeFromWithOptions(node, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return nil // the Node's next event brings it back
		}
		return fmt.Errorf("updating node %s: %w", node.Name, err)
	}
	return nil
}

// daemonSets is where a Pool's required DaemonSets are ready.
type daemonSets struct {
	required int
	// ready has, per Node, the required DaemonSets with a ready pod on it.
	ready map[string]sets.Set[types.UID]
	// waiting says why some Nodes cannot lose the startup taint yet, "" when
	// only time (pods starting) stands in the way.
	waiting string
}

func (g daemonSets) readyOn(node string) bool {
	return g.ready[node].Len() >= g.required
}

// daemonSetGate reads the Pool's required DaemonSets and their pods. A
// DaemonSet that does not exist or does not tolerate the startup taint is
// named in waiting: no Node can pass it.
func daemonSetGate(ctx context.Context, rc *remote.Cluster, pool *fleetv1alpha1.Pool) (daemonSets, error) {
	gate := daemonSets{required: len(pool.Spec.RequiredDaemonSets), ready: map[string]sets.Set[types.UID]{}}
	var problems []string
	for _, ref := range pool.Spec.RequiredDaemonSets {
		ds := &appsv1.DaemonSet{}
		err := rc.Client.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, ds)
		if apierrors.IsNotFound(err) {
			problems = append(problems, fmt.Sprintf("required DaemonSet %s/%s does not exist", ref.Namespace, ref.Name))
			continue
		}
		if err != nil {
			return gate, fmt.Errorf("reading DaemonSet %s/%s: %w", ref.Namespace, ref.Name, err)
		}
		if !tolerates(ds.Spec.Template.Spec.Tolerations, startupTaint) {
			problems = append(problems, fmt.Sprintf("required DaemonSet %s/%s does not tolerate the taint %s:%s, so it cannot start on new Nodes",
				ref.Namespace, ref.Name, startupTaint.Key, startupTaint.Effect))
			continue
		}
		selector, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
		if err != nil {
			return gate, fmt.Errorf("DaemonSet %s/%s: %w", ref.Namespace, ref.Name, err)
		}
		pods := &corev1.PodList{}
		if err := rc.Client.List(ctx, pods, client.InNamespace(ref.Namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
			return gate, fmt.Errorf("listing the pods of DaemonSet %s/%s: %w", ref.Namespace, ref.Name, err)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if owner := metav1.GetControllerOf(p); owner != nil && owner.UID == ds.UID && podReady(p) {
				if gate.ready[p.Spec.NodeName] == nil {
					gate.ready[p.Spec.NodeName] = sets.New[types.UID]()
				}
				gate.ready[p.Spec.NodeName].Insert(ds.UID)
			}
		}
	}
	if len(problems) > 0 {
		gate.waiting = strings.Join(problems, "; ")
	}
	return gate, nil
}

func tolerates(tolerations []corev1.Toleration, taint corev1.Taint) bool {
	for i := range tolerations {
		if tolerations[i].ToleratesTaint(klog.Background(), &taint, false) {
			return true
		}
	}
	return false
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
