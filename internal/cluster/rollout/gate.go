package rollout

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/nodeutil"
)

// maxGateProblems bounds the problems the gate's message names.
const maxGateProblems = 5

// healthGate says why the next zone may not start yet, "" when it may:
// every Node of the pools is Ready (but those of machines left to
// remediation), none is still cordoned for one of the rollout's
// disruptions, and no PodDisruptionBudget in the pools' clusters has fewer
// healthy pods than it requires.
func (r *Reconciler) healthGate(ctx context.Context, pools []*fleetv1alpha1.Pool, p *plan) (string, error) {
	byCluster := map[string][]string{}
	for _, pool := range pools {
		byCluster[pool.Spec.Cluster] = append(byCluster[pool.Spec.Cluster], pool.Name)
	}
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(byCluster)) {
		found, err := r.clusterProblems(ctx, name, byCluster[name], p)
		if err != nil {
			return "", err
		}
		problems = append(problems, found...)
	}
	if len(problems) > maxGateProblems {
		problems = append(problems[:maxGateProblems], fmt.Sprintf("and %d more", len(problems)-maxGateProblems))
	}
	return strings.Join(problems, "; "), nil
}

// clusterProblems are the health gate's findings in one cluster.
func (r *Reconciler) clusterProblems(ctx context.Context, name string, pools []string, p *plan) ([]string, error) {
	fc := &fleetv1alpha1.Cluster{}
	if err := r.hub.Get(ctx, client.ObjectKey{Name: name}, fc); err != nil {
		return []string{fmt.Sprintf("cluster %s: %v", name, err)}, nil
	}
	rc, err := r.clusters.Get(ctx, fc)
	if err != nil {
		return []string{fmt.Sprintf("cluster %s is unreachable: %v", name, err)}, nil
	}
	var problems []string
	for _, pool := range pools {
		nodes := &corev1.NodeList{}
		if err := rc.Client.List(ctx, nodes, client.MatchingLabels{fleetv1alpha1.PoolLabel: pool}); err != nil {
			return nil, fmt.Errorf("listing the nodes of pool %s: %w", pool, err)
		}
		var notReady, cordoned []string
		for i := range nodes.Items {
			n := &nodes.Items[i]
			switch {
			case p.unhealthy[n.Name]:
			case !nodeutil.Ready(n):
				notReady = append(notReady, n.Name)
			case p.disruptions[n.Annotations[fleetv1alpha1.CordonedForAnnotation]]:
				cordoned = append(cordoned, n.Name)
			}
		}
		problems = append(problems, nodeProblems(name, pool, len(nodes.Items), notReady, cordoned)...)
	}
	pdbs := &policyv1.PodDisruptionBudgetList{}
	if err := rc.APIReader.List(ctx, pdbs); err != nil {
		return nil, fmt.Errorf("listing the PodDisruptionBudgets of cluster %s: %w", name, err)
	}
	for i := range pdbs.Items {
		if msg := pdbProblem(name, &pdbs.Items[i]); msg != "" {
			problems = append(problems, msg)
		}
	}
	return problems, nil
}

// maxGateNodes bounds the Node names one finding lists.
const maxGateNodes = 3

// nodeProblems are the gate's findings about one pool's Nodes, counted
// against the pool's Nodes in the cluster.
func nodeProblems(cluster, pool string, nodes int, notReady, cordoned []string) []string {
	var problems []string
	if len(notReady) > 0 {
		problems = append(problems, fmt.Sprintf("pool %s in cluster %s: %d of %d Nodes not Ready (%s), which must become Ready or their machines be left to remediation",
			pool, cluster, len(notReady), nodes, nodeNames(notReady)))
	}
	if len(cordoned) > 0 {
		problems = append(problems, fmt.Sprintf("pool %s in cluster %s: %d of %d Nodes still cordoned for the rollout's maintenance (%s), which the cluster manager must uncordon",
			pool, cluster, len(cordoned), nodes, nodeNames(cordoned)))
	}
	return problems
}

// pdbProblem is the gate's finding about one PodDisruptionBudget, "" when
// it has the healthy pods it requires (or its status is not current).
func pdbProblem(cluster string, pdb *policyv1.PodDisruptionBudget) string {
	st := pdb.Status
	if st.ObservedGeneration != pdb.Generation || st.CurrentHealthy >= st.DesiredHealthy {
		return ""
	}
	return fmt.Sprintf("PodDisruptionBudget %s/%s in cluster %s: %d of %d pods healthy, %d required, so %d more must become healthy",
		pdb.Namespace, pdb.Name, cluster, st.CurrentHealthy, st.ExpectedPods, st.DesiredHealthy, st.DesiredHealthy-st.CurrentHealthy)
}

// gateMessage says what the health gate before a zone waits on, when the
// zone starts, and when a gate that keeps failing is reported as failed.
func gateMessage(zone int32, findings string, deadline time.Time, timeout time.Duration) string {
	return fmt.Sprintf("MZ %d waits for its health gate: %s. MZ %d starts once all of that clears; if the gate still fails at %s (healthGateTimeout %s after it began to fail), the status says HealthGateFailed and the rollout keeps waiting",
		zone, findings, zone, deadline.UTC().Format(time.RFC3339), timeout)
}

// gateFailedMessage says that the health gate before a zone has failed for
// longer than its timeout, and that the rollout still waits on it.
func gateFailedMessage(zone int32, findings string, since time.Time, timeout time.Duration) string {
	return fmt.Sprintf("the health gate before MZ %d has failed since %s, longer than healthGateTimeout %s: %s. The rollout keeps waiting and starts MZ %d by itself once all of that clears",
		zone, since.UTC().Format(time.RFC3339), timeout, findings, zone)
}

func nodeNames(names []string) string {
	slices.Sort(names)
	if len(names) > maxGateNodes {
		return strings.Join(names[:maxGateNodes], ", ") + fmt.Sprintf(" and %d more", len(names)-maxGateNodes)
	}
	return strings.Join(names, ", ")
}
