package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/nodeutil"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// multiKueue is the workload's MultiKueue admission check and the clusters
// of its MultiKueueConfig: the only ones Kueue sends it to.
type multiKueue struct {
	check    string
	clusters []string
}

// multiKueueCheck finds the workload's admission check whose controller is
// MultiKueue; nil when it has none.
func (d *Dispatcher) multiKueueCheck(ctx context.Context, wl *workload) (*multiKueue, error) {
	for _, s := range wl.Status.AdmissionChecks {
		ac := kueue.New(kueue.AdmissionCheckKind, "", s.Name)
		if err := d.cache.Get(ctx, client.ObjectKey{Name: s.Name}, ac); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("reading AdmissionCheck %s: %w", s.Name, err)
		}
		if name, _, _ := unstructured.NestedString(ac.Object, "spec", "controllerName"); name != kueue.MultiKueueControllerName {
			continue
		}
		mk := &multiKueue{check: s.Name}
		config, _, _ := unstructured.NestedString(ac.Object, "spec", "parameters", "name")
		if config == "" {
			return mk, nil
		}
		mkc := kueue.New(kueue.MultiKueueConfigKind, "", config)
		if err := d.cache.Get(ctx, client.ObjectKey{Name: config}, mkc); err != nil {
			if apierrors.IsNotFound(err) {
				return mk, nil
			}
			return nil, fmt.Errorf("reading MultiKueueConfig %s: %w", config, err)
		}
		mk.clusters, _, _ = unstructured.NestedStringSlice(mkc.Object, "spec", "clusters")
		return mk, nil
	}
	return nil, nil
}

// demand is the workload's pod sets, each with the node profile of its
// flavor (the ResourceFlavor's node label fleet.strata.dev/node-profile).
func (d *Dispatcher) demand(ctx context.Context, wl *workload) ([]podSet, error) {
	sets, flavors, err := wl.podSets()
	if err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		return nil, errors.New("the workload's admission has no pods")
	}
	for i, flavor := range flavors {
		if flavor == "" {
			return nil, fmt.Errorf("pod set %s was given no flavor: no node profile to place it on", sets[i].Name)
		}
		rf := kueue.New(kueue.ResourceFlavorKind, "", flavor)
		if err := d.cache.Get(ctx, client.ObjectKey{Name: flavor}, rf); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("pod set %s was given ResourceFlavor %s, which does not exist", sets[i].Name, flavor)
			}
			return nil, fmt.Errorf("reading ResourceFlavor %s: %w", flavor, err)
		}
		profile, _, _ := unstructured.NestedString(rf.Object, "spec", "nodeLabels", fleetv1alpha1.NodeProfileLabel)
		if profile == "" {
			return nil, fmt.Errorf("ResourceFlavor %s of pod set %s has no node label %s: it names no node profile",
				flavor, sets[i].Name, fleetv1alpha1.NodeProfileLabel)
		}
		sets[i].Profile = profile
	}
	return sets, nil
}

// world gathers what decide looks at, for the clusters of the workload's
// MultiKueueConfig that are registered on the hub.
func (d *Dispatcher) world(ctx context.Context, names []string, want []podSet, self *unstructured.Unstructured) ([]clusterInput, error) {
	clusters := &fleetv1alpha1.ClusterList{}
	if err := d.hub.List(ctx, clusters); err != nil {
		return nil, fmt.Errorf("listing Clusters: %w", err)
	}
	pools := &fleetv1alpha1.PoolList{}
	if err := d.hub.List(ctx, pools); err != nil {
		return nil, fmt.Errorf("listing Pools: %w", err)
	}
	rollouts := &fleetv1alpha1.MaintenanceRolloutList{}
	if err := d.hub.List(ctx, rollouts); err != nil {
		return nil, fmt.Errorf("listing MaintenanceRollouts: %w", err)
	}
	used, err := d.used(ctx, self.GetUID())
	if err != nil {
		return nil, err
	}
	maintained := maintenance(rollouts.Items)
	now := d.clock.Now()
	wanted := profiles(want)
	var inputs []clusterInput
	for i := range clusters.Items {
		c := &clusters.Items[i]
		if !slices.Contains(names, c.Name) {
			continue
		}
		in := clusterInput{
			Name: c.Name, Used: used[c.Name], Nodes: map[string][]nodeRoom{}, Pools: map[string]int{}, Growing: map[string]bool{},
			Recent: d.recentDispatches(c.Name, now),
		}
		for _, p := range pools.Items {
			if p.Spec.Cluster == c.Name && p.DeletionTimestamp.IsZero() && slices.Contains(wanted, p.Spec.NodeProfile) {
				in.Pools[p.Spec.NodeProfile]++
				if p.Spec.Capacity > p.Status.Nodes {
					in.Growing[p.Spec.NodeProfile] = true
				}
			}
		}
		in.Excluded = excluded(c)
		nodes, err := d.nodes(ctx, c, wanted, maintained)
		if err != nil {
			if in.Excluded == "" {
				in.Excluded = err.Error()
			}
		} else {
			in.Known, in.Nodes = true, nodes
		}
		inputs = append(inputs, in)
	}
	return inputs, nil
}

// excluded says why a Cluster takes no job, "" when it may. A Cluster has
// no cordon of its own (api/fleet): its Ready condition and its Nodes'
// (cordoned Nodes are counted out one by one) are what say it.
func excluded(c *fleetv1alpha1.Cluster) string {
	if !c.DeletionTimestamp.IsZero() {
		return "leaving the hub"
	}
	ready := meta.FindStatusCondition(c.Status.Conditions, fleetv1alpha1.ClusterReadyCondition)
	switch {
	case ready == nil:
		return "not Ready (not probed yet)"
	case ready.Status != metav1.ConditionTrue:
		return fmt.Sprintf("not Ready (%s)", ready.Reason)
	}
	return ""
}

// nodes reads a cluster's Pool Nodes of the profiles asked from its cache,
// each with why it takes no pod, if it does not.
func (d *Dispatcher) nodes(ctx context.Context, c *fleetv1alpha1.Cluster, profiles []string, maintained map[poolZone]string) (map[string][]nodeRoom, error) {
	rc, err := d.clusters.Get(ctx, c)
	if err != nil {
		var unreachable *remote.UnreachableError
		if errors.As(err, &unreachable) {
			return nil, errors.New("unreachable")
		}
		return nil, fmt.Errorf("not connected: %v", err)
	}
	out := map[string][]nodeRoom{}
	for _, profile := range profiles {
		list := &corev1.NodeList{}
		if err := rc.Client.List(ctx, list, client.MatchingLabels{fleetv1alpha1.NodeProfileLabel: profile}, client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("listing its Nodes: %v", err)
		}
		for i := range list.Items {
			n := &list.Items[i]
			zone := n.Labels[fleetv1alpha1.MaintenanceZoneLabel]
			dc := n.Labels[fleetv1alpha1.DatacenterLabel]
			if dc == "" {
				dc = c.Spec.Datacenter
			}
			room := nodeRoom{Name: n.Name, Allocatable: n.Status.Allocatable}
			if zone != "" {
				room.Zone = dc + "-mz" + zone
			}
			room.Out = nodeOut(n, room.Zone, maintained)
			out[profile] = append(out[profile], room)
		}
		slices.SortFunc(out[profile], func(a, b nodeRoom) int { return strings.Compare(a.Name, b.Name) })
	}
	return out, nil
}

// nodeOut says why a Node takes no new pod, "" when it does.
func nodeOut(n *corev1.Node, zone string, maintained map[poolZone]string) string {
	if why, ok := maintained[poolZone{pool: n.Labels[fleetv1alpha1.PoolLabel], zone: n.Labels[fleetv1alpha1.MaintenanceZoneLabel]}]; ok {
		return "zone " + zone + " " + why
	}
	switch {
	case !nodeutil.Ready(n):
		return "not Ready"
	case n.Spec.Unschedulable:
		return "cordoned"
	case slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == fleetv1alpha1.StartupTaintKey }):
		return "starting (required DaemonSets not ready)"
	case !n.DeletionTimestamp.IsZero():
		return "being deleted"
	}
	return ""
}

// poolZone is a maintenance zone of one Pool.
type poolZone struct{ pool, zone string }

// maintenance lists the zones of each Pool that a MaintenanceRollout is
// maintaining (its current zone, and any zone it has started and not
// finished) or maintains next (the first Pending zone after the current one
// in its order, unless it is paused), with why: "under maintenance
// (rollout kernel-6-8)". The orchestrator works zone by zone in
// status.zones' order, so new jobs there would be evicted within minutes.
func maintenance(rollouts []fleetv1alpha1.MaintenanceRollout) map[poolZone]string {
	out := map[poolZone]string{}
	mark := func(ro *fleetv1alpha1.MaintenanceRollout, zone int32, why string) {
		for _, pool := range ro.Spec.Pools {
			key := poolZone{pool: pool, zone: fmt.Sprint(zone)}
			if _, ok := out[key]; !ok {
				out[key] = fmt.Sprintf("%s (rollout %s)", why, ro.Name)
			}
		}
	}
	for i := range rollouts {
		ro := &rollouts[i]
		if meta.IsStatusConditionTrue(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition) {
			continue
		}
		current := slices.IndexFunc(ro.Status.Zones, func(z fleetv1alpha1.RolloutZoneStatus) bool {
			return z.MaintenanceZone == ro.Status.CurrentZone
		})
		if ro.Status.CurrentZone > 0 {
			mark(ro, ro.Status.CurrentZone, "under maintenance")
		}
		for _, z := range ro.Status.Zones {
			if z.Phase == fleetv1alpha1.RolloutZoneInProgress {
				mark(ro, z.MaintenanceZone, "under maintenance")
			}
		}
		paused := ro.Spec.Paused || meta.IsStatusConditionTrue(ro.Status.Conditions, fleetv1alpha1.RolloutPausedCondition)
		if paused || current < 0 {
			continue
		}
		for _, z := range ro.Status.Zones[current+1:] {
			if z.Phase == fleetv1alpha1.RolloutZonePending {
				mark(ro, z.MaintenanceZone, "next in maintenance")
				break
			}
		}
	}
	return out
}

// used sums, by cluster and node profile, what the workloads sent to a
// cluster and not finished request (the hub's Workloads, from the cache,
// not copied), plus the dispatcher's own nominations the cache does not
// show yet. self is left out.
func (d *Dispatcher) used(ctx context.Context, self types.UID) (map[string]map[string]corev1.ResourceList, error) {
	list := kueue.NewList(kueue.WorkloadKind)
	if err := d.cache.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing Workloads: %w", err)
	}
	flavors, err := d.flavorProfiles(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]corev1.ResourceList{}
	seen := map[types.UID]string{}
	for i := range list.Items {
		u := &list.Items[i]
		seen[u.GetUID()] = u.GetResourceVersion()
		if u.GetUID() == self {
			continue
		}
		wl, err := parseWorkload(u)
		if err != nil || !wl.occupies() {
			continue
		}
		sets, names, err := wl.podSets()
		if err != nil {
			continue
		}
		for j, ps := range sets {
			if out[wl.cluster()] == nil {
				out[wl.cluster()] = map[string]corev1.ResourceList{}
			}
			addUsage(out[wl.cluster()], flavors[names[j]], ps.PerPod, ps.Count)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for uid, n := range d.sent {
		rv, ok := seen[uid]
		if !ok || rv != n.resourceVersion || uid == self {
			delete(d.sent, uid) // gone, or the cache shows the dispatch
			continue
		}
		if out[n.cluster] == nil {
			out[n.cluster] = map[string]corev1.ResourceList{}
		}
		for profile, l := range n.usage {
			addUsage(out[n.cluster], profile, l, 1)
		}
	}
	return out, nil
}

// flavorProfiles maps each ResourceFlavor to its node profile.
func (d *Dispatcher) flavorProfiles(ctx context.Context) (map[string]string, error) {
	list := kueue.NewList(kueue.ResourceFlavorKind)
	if err := d.cache.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing ResourceFlavors: %w", err)
	}
	out := map[string]string{}
	for _, rf := range list.Items {
		out[rf.GetName()], _, _ = unstructured.NestedString(rf.Object, "spec", "nodeLabels", fleetv1alpha1.NodeProfileLabel)
	}
	return out, nil
}

// addUsage adds count times perPod to a profile's usage.
func addUsage(into map[string]corev1.ResourceList, profile string, perPod corev1.ResourceList, count int32) {
	if into[profile] == nil {
		into[profile] = corev1.ResourceList{}
	}
	for r, q := range perPod {
		sum := into[profile][r]
		sum.Add(*resource.NewMilliQuantity(q.MilliValue()*int64(count), q.Format))
		into[profile][r] = sum
	}
}
