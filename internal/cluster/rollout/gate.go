package rollout

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

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
		for i := range nodes.Items {
			n := &nodes.Items[i]
			switch {
			case p.unhealthy[n.Name]:
			case !nodeutil.Ready(n):
				problems = append(problems, fmt.Sprintf("node %s of pool %s is not Ready", n.Name, pool))
			case p.disruptions[n.Annotations[fleetv1alpha1.CordonedForAnnotation]]:
				problems = append(problems, fmt.Sprintf("node %s of pool %s is still cordoned for its maintenance", n.Name, pool))
			}
		}
	}
	pdbs := &policyv1.PodDisruptionBudgetList{}
	if err := rc.APIReader.List(ctx, pdbs); err != nil {
		return nil, fmt.Errorf("listing the PodDisruptionBudgets of cluster %s: %w", name, err)
	}
	for i := range pdbs.Items {
		pdb := &pdbs.Items[i]
		if pdb.Status.ObservedGeneration == pdb.Generation && pdb.Status.CurrentHealthy < pdb.Status.DesiredHealthy {
			problems = append(problems, fmt.Sprintf("PodDisruptionBudget %s/%s in cluster %s has %d healthy pods of the %d it requires",
				pdb.Namespace, pdb.Name, name, pdb.Status.CurrentHealthy, pdb.Status.DesiredHealthy))
		}
	}
	return problems, nil
}
