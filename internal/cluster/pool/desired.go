package pool

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/nodeutil"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// Annotations that remember which of a Node's labels and taints came from
// its Pool's spec, so that ones removed from the spec are removed from the Node.
const (
	appliedLabelsAnnotation = "fleet.strata.dev/pool-labels"
	appliedTaintsAnnotation = "fleet.strata.dev/pool-taints"
)

// startupTaint keeps a new Node free of workloads until its required
// DaemonSets run on it.
var startupTaint = corev1.Taint{Key: fleetv1alpha1.StartupTaintKey, Value: "true", Effect: corev1.TaintEffectNoSchedule}

// nodeLabels are the labels every Node of the Pool carries beside the
// machine's own: the Pool's labels, its name and its node profile.
func nodeLabels(pool *fleetv1alpha1.Pool) map[string]string {
	labels := maps.Clone(pool.Spec.NodeLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[fleetv1alpha1.PoolLabel] = pool.Name
	labels[fleetv1alpha1.NodeProfileLabel] = pool.Spec.NodeProfile
	return labels
}

// nodeTaints are the Pool's taints.
func nodeTaints(pool *fleetv1alpha1.Pool) []corev1.Taint {
	taints := make([]corev1.Taint, 0, len(pool.Spec.NodeTaints))
	for _, t := range pool.Spec.NodeTaints {
		taints = append(taints, corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
	}
	return taints
}

// joinTarget is what the broker's provisioner registers the Pool's machines
// with: the cluster's API server, its CA and the Pool's bootstrap token
// (token.go), the Pool's labels and taints, and the startup taint when
// DaemonSets must run first.
func joinTarget(pool *fleetv1alpha1.Pool, cred joinCredential) *brokerv1.JoinTarget {
	taints := nodeTaints(pool)
	if len(pool.Spec.RequiredDaemonSets) > 0 {
		taints = append(taints, startupTaint)
	}
	jt := &brokerv1.JoinTarget{
		Cluster: pool.Spec.Cluster, ApiServer: cred.apiServer, CaBundle: cred.caBundle, BootstrapToken: cred.token,
		NodeLabels: nodeLabels(pool),
	}
	for _, t := range taints {
		jt.NodeTaints = append(jt.NodeTaints, &brokerv1.Taint{Key: t.Key, Value: t.Value, Effect: string(t.Effect)})
	}
	return jt
}

// brokerPoolDrift says what of the broker pool differs from the Pool, ""
// when nothing. The bootstrap token is write-only, so not compared.
func brokerPoolDrift(pool *fleetv1alpha1.Pool, bp *brokerv1.Pool) string {
	want := joinTarget(pool, joinCredential{})
	have := bp.GetJoinTarget()
	var drift []string
	if bp.GetCapacity() != pool.Spec.Capacity {
		drift = append(drift, fmt.Sprintf("capacity %d -> %d", bp.GetCapacity(), pool.Spec.Capacity))
	}
	if bp.GetNodeConfig() != pool.Spec.NodeConfig {
		drift = append(drift, "node config")
	}
	if !maps.Equal(have.GetNodeLabels(), want.NodeLabels) {
		drift = append(drift, "node labels")
	}
	if !slices.EqualFunc(have.GetNodeTaints(), want.NodeTaints, func(a, b *brokerv1.Taint) bool {
		return a.GetKey() == b.GetKey() && a.GetValue() == b.GetValue() && a.GetEffect() == b.GetEffect()
	}) {
		drift = append(drift, "node taints")
	}
	return strings.Join(drift, ", ")
}

// conflict says why a broker pool of the Pool's name is not the Pool's, ""
// when it is.
func conflict(pool *fleetv1alpha1.Pool, cluster *fleetv1alpha1.Cluster, bp *brokerv1.Pool) string {
	switch jt := bp.GetJoinTarget(); {
	case jt == nil:
		return fmt.Sprintf("broker pool %q already exists and joins no cluster: it was created outside the hub; rename the Pool or delete that broker pool", bp.GetName())
	case jt.GetCluster() != pool.Spec.Cluster:
		return fmt.Sprintf("broker pool %q already exists and joins cluster %q, not %q", bp.GetName(), jt.GetCluster(), pool.Spec.Cluster)
	case bp.GetDatacenter() != cluster.Spec.Datacenter:
		return fmt.Sprintf("broker pool %q is in datacenter %q, but cluster %q is in %q", bp.GetName(), bp.GetDatacenter(), cluster.Name, cluster.Spec.Datacenter)
	case bp.GetNodeProfile() != pool.Spec.NodeProfile:
		return fmt.Sprintf("broker pool %q has node profile %q, not %q", bp.GetName(), bp.GetNodeProfile(), pool.Spec.NodeProfile)
	}
	return ""
}

// nodeUpdate applies the Pool's labels and taints to a Node and removes the
// ones the Pool no longer has. It reports whether the Node changed.
func nodeUpdate(node *corev1.Node, pool *fleetv1alpha1.Pool) bool {
	changed := false
	labels := nodeLabels(pool)
	if node.Labels == nil {
		node.Labels = map[string]string{}
	}
	for _, k := range splitList(node.Annotations[appliedLabelsAnnotation]) {
		if _, keep := labels[k]; !keep {
			if _, ok := node.Labels[k]; ok {
				delete(node.Labels, k)
				changed = true
			}
		}
	}
	for k, v := range labels {
		if node.Labels[k] != v {
			node.Labels[k] = v
			changed = true
		}
	}
	taints := nodeTaints(pool)
	wanted := sets.New[string]()
	for _, t := range taints {
		wanted.Insert(taintID(t))
	}
	for _, id := range splitList(node.Annotations[appliedTaintsAnnotation]) {
		if !wanted.Has(id) {
			changed = removeTaint(node, func(t corev1.Taint) bool { return taintID(t) == id }) || changed
		}
	}
	for _, t := range taints {
		changed = setTaint(node, t) || changed
	}
	changed = nodeutil.SetAnnotation(node, appliedLabelsAnnotation, joinList(slices.Collect(maps.Keys(pool.Spec.NodeLabels)))) || changed
	return nodeutil.SetAnnotation(node, appliedTaintsAnnotation, joinList(sets.List(wanted))) || changed
}

func taintID(t corev1.Taint) string {
	return t.Key + ":" + string(t.Effect)
}

// setTaint adds t, or corrects its value; reports whether the Node changed.
func setTaint(node *corev1.Node, t corev1.Taint) bool {
	for i, have := range node.Spec.Taints {
		if have.Key == t.Key && have.Effect == t.Effect {
			if have.Value == t.Value {
				return false
			}
			node.Spec.Taints[i].Value = t.Value
			return true
		}
	}
	node.Spec.Taints = append(node.Spec.Taints, t)
	return true
}

// removeTaint removes the taints that match; reports whether any did.
func removeTaint(node *corev1.Node, match func(corev1.Taint) bool) bool {
	n := len(node.Spec.Taints)
	node.Spec.Taints = slices.DeleteFunc(node.Spec.Taints, match)
	return len(node.Spec.Taints) != n
}

func hasStartupTaint(node *corev1.Node) bool {
	return slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.Key == fleetv1alpha1.StartupTaintKey })
}

// splitLines splits an annotation that holds one item per line.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func joinList(items []string) string {
	slices.Sort(items)
	return strings.Join(items, ",")
}

// schedulable says whether a Node counts as ready capacity of its Pool:
// Ready, not cordoned, and past its startup taint.
func schedulable(node *corev1.Node) bool {
	return nodeutil.Ready(node) && !node.Spec.Unschedulable && !hasStartupTaint(node)
}

// observed is what the controller found for a Pool in one pass.
type observed struct {
	brokerPool *brokerv1.Pool
	nodes      []corev1.Node
	// daemonSets says why Nodes wait for their required DaemonSets, "" when
	// none does.
	daemonSets string
	// joinFailure is why a machine of the Pool failed its last attempt to
	// join (the broker's health message, e.g. a refused bootstrap token),
	// "" when none did.
	joinFailure string
	// held are the Nodes kept though the broker does not hold their
	// machines for the Pool, by name.
	held []heldNode
}

// blocker is why the controller cannot go on with a Pool: both conditions
// say so.
type blocker struct {
	reason, message string
}

// desiredStatus is the status of a Pool given what was observed, or given
// what blocks it. It keeps condition transition times that did not change.
func desiredStatus(pool *fleetv1alpha1.Pool, obs observed, block *blocker, now metav1.Time) fleetv1alpha1.PoolStatus {
	status := *pool.Status.DeepCopy()
	status.ObservedGeneration = pool.Generation
	status.Desired = pool.Spec.Capacity
	set := func(t string, ok bool, reason, message string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: t, Status: s, ObservedGeneration: pool.Generation, LastTransitionTime: now, Reason: reason, Message: message,
		})
	}
	if block != nil {
		set(fleetv1alpha1.PoolMachinesAllocatedCondition, false, block.reason, block.message)
		set(fleetv1alpha1.PoolReadyCondition, false, block.reason, block.message)
		return status
	}

	bs := obs.brokerPool.GetStatus()
	status.Allocated = bs.GetAllocated()
	status.Nodes = int32(len(obs.nodes))
	status.Draining = 0
	status.Ready = 0
	zones := map[int32]*fleetv1alpha1.ZoneStatus{}
	zone := func(mz int32) *fleetv1alpha1.ZoneStatus {
		if zones[mz] == nil {
			zones[mz] = &fleetv1alpha1.ZoneStatus{MaintenanceZone: mz}
		}
		return zones[mz]
	}
	for _, z := range bs.GetZones() {
		zone(z.GetMaintenanceZone()).Allocated = z.GetMachines()
	}
	// drained: Nodes the cluster manager drained and keeps cordoned until
	// their machine's disruption (a reimage, a repair) is over.
	var notReady, cordoned, tainted, drained int32
	var drainBlocked []string
	for i := range obs.nodes {
		n := &obs.nodes[i]
		if hasStartupTaint(n) {
			tainted++
		}
		// The cluster manager's record of its drains.
		if _, ok := n.Annotations[fleetv1alpha1.DrainStartedAnnotation]; ok {
			status.Draining++
		} else if n.Annotations[fleetv1alpha1.CordonedForAnnotation] != "" {
			drained++
		}
		drainBlocked = append(drainBlocked, splitLines(n.Annotations[fleetv1alpha1.DrainBlockedAnnotation])...)
		switch {
		case schedulable(n):
			status.Ready++
			if mz, err := strconv.ParseInt(n.Labels[fleetv1alpha1.MaintenanceZoneLabel], 10, 32); err == nil {
				zone(int32(mz)).Ready++
			}
		case !nodeutil.Ready(n):
			notReady++
		case n.Spec.Unschedulable:
			cordoned++
		}
	}
	status.Zones = make([]fleetv1alpha1.ZoneStatus, 0, len(zones))
	for _, mz := range slices.Sorted(maps.Keys(zones)) {
		status.Zones = append(status.Zones, *zones[mz])
	}

	satisfied := brokerCondition(obs.brokerPool, "Satisfied")
	allocReason := satisfied.GetReason()
	if satisfied.GetStatus() == "True" {
		allocReason = fleetv1alpha1.MachinesAllocatedReason
	}
	set(fleetv1alpha1.PoolMachinesAllocatedCondition, satisfied.GetStatus() == "True", allocReason, satisfied.GetMessage())

	if len(obs.held) == 0 {
		set(fleetv1alpha1.PoolNodesKnownCondition, true, fleetv1alpha1.MachinesKnownReason,
			"every Node of the Pool runs on a machine the broker holds for it")
	} else {
		set(fleetv1alpha1.PoolNodesKnownCondition, false, fleetv1alpha1.MachineUnknownReason, heldMessage(obs.held))
	}

	want := pool.Spec.Capacity
	slices.Sort(drainBlocked)
	switch releasing := bs.GetReleasing(); {
	case !pool.DeletionTimestamp.IsZero():
		set(fleetv1alpha1.PoolReadyCondition, false, fleetv1alpha1.DeletingReason,
			fmt.Sprintf("draining %d Nodes and releasing %d machines before the Pool is removed%s", status.Nodes, status.Allocated, blockedSuffix(drainBlocked)))
	case releasing > 0:
		set(fleetv1alpha1.PoolReadyCondition, false, fleetv1alpha1.DrainingReason,
			fmt.Sprintf("releasing %d machines once their Nodes are drained (%s)%s", releasing, drainCounts(status.Draining, drained), blockedSuffix(drainBlocked)))
	case status.Draining > 0 || drained > 0:
		// A Node drained for maintenance stays cordoned while its machine is
		// reimaged: still Draining, not NodesNotReady (docs/pools.md).
		set(fleetv1alpha1.PoolReadyCondition, false, fleetv1alpha1.DrainingReason,
			maintenanceMessage(status.Draining, drained)+blockedSuffix(drainBlocked))
	case status.Allocated < want:
		set(fleetv1alpha1.PoolReadyCondition, false, allocReason, satisfied.GetMessage())
	case status.Nodes < status.Allocated:
		set(fleetv1alpha1.PoolReadyCondition, false, fleetv1alpha1.JoiningReason,
			fmt.Sprintf("%d of %d machines have joined as Nodes%s", status.Nodes, status.Allocated, joinFailureSuffix(obs.joinFailure)))
	case tainted > 0:
		msg := obs.daemonSets
		if msg == "" {
			msg = fmt.Sprintf("%d of %d Nodes wait for a ready pod of each required DaemonSet (%s)", tainted, status.Nodes, daemonSetList(pool))
		}
		set(fleetv1alpha1.PoolReadyCondition, false, fleetv1alpha1.WaitingForDaemonSetsReason, msg)
	case status.Ready < want:
		set(fleetv1alpha1.PoolReadyCondition, false, fleetv1alpha1.NodesNotReadyReason,
			fmt.Sprintf("%d of %d Nodes are ready (%d not Ready, %d cordoned)", status.Ready, want, notReady, cordoned))
	default:
		set(fleetv1alpha1.PoolReadyCondition, true, fleetv1alpha1.PoolReadyReason, fmt.Sprintf("%d Nodes ready", status.Ready))
	}
	return status
}

// heldMessage names the Nodes kept though the broker does not hold their
// machines, and what a person may do.
func heldMessage(held []heldNode) string {
	const shown = 3
	whys := make([]string, 0, shown)
	for _, h := range held[:min(len(held), shown)] {
		whys = append(whys, h.why)
	}
	more := ""
	if len(held) > shown {
		more = fmt.Sprintf(" and %d more", len(held)-shown)
	}
	return fmt.Sprintf("%d Nodes kept, never deleted nor drained by the Pool: %s%s. "+
		"They stay until the broker holds their machines for the Pool again (as after a restore from an older backup) "+
		"or a person who knows a machine is gone deletes its Node (kubectl delete node)", len(held), strings.Join(whys, "; "), more)
}

// drainCounts says how many of the Pool's Nodes are draining, and drained.
func drainCounts(draining, drained int32) string {
	s := fmt.Sprintf("%d Nodes draining", draining)
	if drained > 0 {
		s += fmt.Sprintf(", %d drained", drained)
	}
	return s
}

// maintenanceMessage says how many Nodes are being drained for the
// disruptions of their machines, and how many are drained and wait,
// cordoned, for the disruption to end.
func maintenanceMessage(draining, drained int32) string {
	switch {
	case drained == 0:
		return fmt.Sprintf("draining %d Nodes for maintenance", draining)
	case draining == 0:
		return fmt.Sprintf("%d Nodes drained for maintenance, cordoned until it is over", drained)
	}
	return fmt.Sprintf("draining %d Nodes for maintenance; %d more drained, cordoned until it is over", draining, drained)
}

func daemonSetList(pool *fleetv1alpha1.Pool) string {
	names := make([]string, len(pool.Spec.RequiredDaemonSets))
	for i, ds := range pool.Spec.RequiredDaemonSets {
		names[i] = ds.Namespace + "/" + ds.Name
	}
	return strings.Join(names, ", ")
}

func blockedSuffix(blocked []string) string {
	if len(blocked) == 0 {
		return ""
	}
	const shown = 3
	more := ""
	if len(blocked) > shown {
		more = fmt.Sprintf(" and %d more", len(blocked)-shown)
		blocked = blocked[:shown]
	}
	return "; evictions refused: " + strings.Join(blocked, "; ") + more
}

func brokerCondition(bp *brokerv1.Pool, t string) *brokerv1.Condition {
	for _, c := range bp.GetStatus().GetConditions() {
		if c.GetType() == t {
			return c
		}
	}
	return nil
}

func joinFailureSuffix(failure string) string {
	if failure == "" {
		return ""
	}
	return "; " + failure
}
