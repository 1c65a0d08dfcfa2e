package appnamespace

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// placement is an app namespace already on a cluster: its quota counts
// against the room of the cluster's Nodes of its profile. A namespace on
// several clusters is one placement on each.
type placement struct {
	Cluster string
	Profile string
	Quota   corev1.ResourceList
}

// routeInput is everything routing looks at.
type routeInput struct {
	// Profile, Quota and Region are the app namespace's; Region "" is any.
	Profile string
	Quota   corev1.ResourceList
	Region  string
	// Chosen are the clusters the namespace is on already, in the order
	// they were chosen: they are not chosen again, and their datacenters
	// count as used.
	Chosen []string
	// Want is on how many clusters the namespace is to be in all (1 when
	// 0); with All, on every cluster that fits, at most Want.
	Want int
	All  bool
	// Clusters and Pools are the hub's.
	Clusters []fleetv1alpha1.Cluster
	Pools    []fleetv1alpha1.Pool
	// Placed are the other app namespaces' placements.
	Placed []placement
	// Excluded are clusters that cannot take the namespace, found by
	// looking into them (a foreign namespace of the same name, or
	// unreachable), with why.
	Excluded map[string]string
}

// decision is where an app namespace goes, or why nowhere (else).
type decision struct {
	// Chosen are the clusters newly chosen, in order, each with why.
	Chosen []appsv1alpha1.ClusterPlacement
	// Message says, when fewer clusters than wanted are chosen in all, why
	// each other cluster does not fit.
	Message string
}

// candidate is a cluster that fits, with the share of its cpu and memory
// left once the namespace's quota is counted.
type candidate struct {
	name, datacenter  string
	cpuLeft, memLeft  float64
	room, allocatable corev1.ResourceList
	// namespaces counts the app namespaces of the profile on the cluster
	// (those that take its room), apps those of any profile.
	namespaces, apps int
}

// route chooses workload clusters for an app namespace until it is on as
// many as it wants. A cluster fits when it is Ready, not cordoned, of the
// region (when one is asked), not excluded, has a Pool of the profile with
// Ready Nodes, and its room for the profile (the allocatable resources of
// its Ready Nodes, as the Cluster's status counts them, minus the quotas of
// the app namespaces already placed there with that profile) holds the
// quota for every resource it names. Of those, the one with the largest
// share of cpu left wins, then of memory; then one in a datacenter the
// namespace is not in yet (a datacenter can fail as a whole); then the one
// with the fewest app namespaces; then the first by name.
func route(in routeInput) decision {
	if len(in.Clusters) == 0 {
		return decision{Message: "no workload cluster is registered on the hub"}
	}
	clusters := slices.Clone(in.Clusters)
	slices.SortFunc(clusters, func(a, b fleetv1alpha1.Cluster) int { return strings.Compare(a.Name, b.Name) })

	// used maps the datacenters the namespace is in to its first cluster there.
	used := map[string]string{}
	for _, name := range in.Chosen {
		if i := slices.IndexFunc(clusters, func(c fleetv1alpha1.Cluster) bool { return c.Name == name }); i >= 0 {
			if _, ok := used[clusters[i].Spec.Datacenter]; !ok {
				used[clusters[i].Spec.Datacenter] = name
			}
		}
	}
	var (
		candidates []*candidate
		why        []string
	)
	for i := range clusters {
		if slices.Contains(in.Chosen, clusters[i].Name) {
			continue
		}
		c, reason := judge(&clusters[i], in)
		if c == nil {
			why = append(why, clusters[i].Name+": "+reason)
			continue
		}
		candidates = append(candidates, c)
	}

	want := max(in.Want, 1)
	var d decision
	for len(candidates) > 0 && len(in.Chosen)+len(d.Chosen) < want {
		best := 0
		for i := range candidates {
			if better(candidates[i], candidates[best], used) {
				best = i
			}
		}
		c := candidates[best]
		candidates = slices.Delete(candidates, best, best+1)
		reason := fmt.Sprintf("routed to %s (profile %s): room %s of %s after %s; quota %s",
			c.name, in.Profile, formatList(c.room), formatList(c.allocatable), countNamespaces(c.namespaces), formatList(in.Quota))
		if other, ok := used[c.datacenter]; ok {
			reason += fmt.Sprintf("; datacenter %s, where it is on %s already", c.datacenter, other)
		} else if len(in.Chosen)+len(d.Chosen) > 0 {
			reason += fmt.Sprintf("; datacenter %s, where it is on no other cluster", c.datacenter)
		}
		if _, ok := used[c.datacenter]; !ok {
			used[c.datacenter] = c.name
		}
		d.Chosen = append(d.Chosen, appsv1alpha1.ClusterPlacement{Cluster: c.name, Reason: reason})
	}

	switch on := len(in.Chosen) + len(d.Chosen); {
	case on >= want || (in.All && on > 0):
	case on == 0:
		d.Message = fmt.Sprintf("no workload cluster fits profile %s with quota %s: %s", in.Profile, formatList(in.Quota), strings.Join(why, "; "))
	case len(why) == 0:
		d.Message = "no other workload cluster is registered on the hub"
	default:
		d.Message = fmt.Sprintf("no other workload cluster fits profile %s with quota %s: %s", in.Profile, formatList(in.Quota), strings.Join(why, "; "))
	}
	return d
}

// judge says whether a cluster can take the namespace, and if not, why.
func judge(c *fleetv1alpha1.Cluster, in routeInput) (*candidate, string) {
	if ok, why := clusterReady(c); !ok {
		return nil, why
	}
	if c.Spec.Cordoned {
		return nil, "cordoned"
	}
	if in.Region != "" && c.Spec.Region != in.Region {
		if c.Spec.Region == "" {
			return nil, fmt.Sprintf("not in region %s (it has no region)", in.Region)
		}
		return nil, fmt.Sprintf("not in region %s (it is in %s)", in.Region, c.Spec.Region)
	}
	if reason, ok := in.Excluded[c.Name]; ok {
		return nil, reason
	}
	var pools, readyPools []string
	for i := range in.Pools {
		p := &in.Pools[i]
		if p.Spec.Cluster != c.Name || p.Spec.NodeProfile != in.Profile || !p.DeletionTimestamp.IsZero() {
			continue
		}
		pools = append(pools, p.Name)
		if p.Status.Ready > 0 {
			readyPools = append(readyPools, p.Name)
		}
	}
	switch {
	case len(pools) == 0:
		return nil, "no Pool of profile " + in.Profile
	case len(readyPools) == 0:
		slices.Sort(pools)
		return nil, fmt.Sprintf("no Ready Nodes in its Pools of profile %s (%s)", in.Profile, strings.Join(pools, ", "))
	}

	var allocatable corev1.ResourceList
	if i := slices.IndexFunc(c.Status.Profiles, func(p fleetv1alpha1.ProfileNodes) bool { return p.Name == in.Profile }); i >= 0 {
		allocatable = c.Status.Profiles[i].Allocatable
	}
	used, namespaces, apps := corev1.ResourceList{}, 0, 0
	for _, p := range in.Placed {
		if p.Cluster != c.Name {
			continue
		}
		apps++
		if p.Profile != in.Profile {
			continue
		}
		namespaces++
		for name, q := range p.Quota {
			sum := used[name]
			sum.Add(q)
			used[name] = sum
		}
	}
	room := corev1.ResourceList{}
	var short, asks []string
	for _, name := range resourceNames(in.Quota) {
		left := allocatable[name].DeepCopy()
		left.Sub(used[name])
		room[name] = left
		if q := in.Quota[name]; left.Cmp(q) < 0 {
			if left.Sign() < 0 {
				left = resource.Quantity{}
			}
			all := allocatable[name]
			short = append(short, fmt.Sprintf("%s %s of %s", name, formatQuantity(name, left), formatQuantity(name, all)))
			asks = append(asks, fmt.Sprintf("%s %s", name, formatQuantity(name, q)))
		}
	}
	if len(short) > 0 {
		return nil, fmt.Sprintf("room %s after %s, quota asks %s",
			strings.Join(short, " and "), countNamespaces(namespaces), strings.Join(asks, " and "))
	}
	return &candidate{
		name: c.Name, datacenter: c.Spec.Datacenter, apps: apps,
		cpuLeft: shareLeft(allocatable, used, in.Quota, corev1.ResourceCPU),
		memLeft: shareLeft(allocatable, used, in.Quota, corev1.ResourceMemory),
		room:    room, allocatable: pick(allocatable, resourceNames(in.Quota)), namespaces: namespaces,
	}, ""
}

// clusterReady says whether a Cluster is Ready, and if not, how it is.
func clusterReady(c *fleetv1alpha1.Cluster) (bool, string) {
	ready := meta.FindStatusCondition(c.Status.Conditions, fleetv1alpha1.ClusterReadyCondition)
	switch {
	case ready == nil:
		return false, "not Ready (not probed yet)"
	case ready.Status != metav1.ConditionTrue:
		return false, fmt.Sprintf("not Ready (%s)", ready.Reason)
	}
	return true, ""
}

// better says whether a fits better than b: more room left, in bands of a
// tenth of the cluster (the lesser of its cpu and memory shares left), so
// that clusters of about the same room are told apart by what else
// matters: then a datacenter not in used (spread over failure domains),
// then fewer app namespaces, then more cpu left, more memory, and the first
// name.
func better(a, b *candidate, used map[string]string) bool {
	_, aUsed := used[a.datacenter]
	_, bUsed := used[b.datacenter]
	switch {
	case roomBand(a) != roomBand(b):
		return roomBand(a) > roomBand(b)
	case aUsed != bUsed:
		return bUsed
	case a.apps != b.apps:
		return a.apps < b.apps
	case a.cpuLeft != b.cpuLeft:
		return a.cpuLeft > b.cpuLeft
	case a.memLeft != b.memLeft:
		return a.memLeft > b.memLeft
	}
	return a.name < b.name
}

// roomBand is a candidate's room left in tenths: 0 (under 10% left) to 10.
func roomBand(c *candidate) int { return int(math.Floor(min(c.cpuLeft, c.memLeft) * 10)) }

// shareLeft is the share of a resource's allocatable left after used and
// quota; 0 when none is allocatable.
func shareLeft(allocatable, used, quota corev1.ResourceList, name corev1.ResourceName) float64 {
	all := allocatable[name]
	if all.Sign() <= 0 {
		return 0
	}
	left := all.DeepCopy()
	left.Sub(used[name])
	left.Sub(quota[name])
	return left.AsApproximateFloat64() / all.AsApproximateFloat64()
}

// resourceNames lists a resource list's names: cpu, memory, then the rest
// by name.
func resourceNames(l corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(l))
	for name := range l {
		names = append(names, name)
	}
	rank := func(n corev1.ResourceName) int {
		switch n {
		case corev1.ResourceCPU:
			return 0
		case corev1.ResourceMemory:
			return 1
		}
		return 2
	}
	slices.SortFunc(names, func(a, b corev1.ResourceName) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(string(a), string(b))
	})
	return names
}

// pick keeps the named resources of l, zero for those it lacks.
func pick(l corev1.ResourceList, names []corev1.ResourceName) corev1.ResourceList {
	out := corev1.ResourceList{}
	for _, n := range names {
		out[n] = l[n].DeepCopy()
	}
	return out
}

// formatList writes a resource list as "cpu 4, memory 16Gi".
func formatList(l corev1.ResourceList) string {
	if len(l) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(l))
	for _, name := range resourceNames(l) {
		parts = append(parts, fmt.Sprintf("%s %s", name, formatQuantity(name, l[name])))
	}
	return strings.Join(parts, ", ")
}

// formatQuantity writes a quantity for a person: its canonical form ("4",
// "16Gi", "100G"), except for a count of bytes that fits no suffix exactly
// (allocatable memory is the capacity less a reserve, 502563307315): that
// one in binary units to three figures, rounded down so that room never
// reads as more than there is ("~468Gi").
func formatQuantity(name corev1.ResourceName, q resource.Quantity) string {
	s := q.String()
	digits := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if digits < 0 {
		digits = len(s)
	}
	if !isBytes(name) || digits <= 4 || q.Sign() < 0 {
		return s
	}
	v := q.Value()
	unit, suffix := int64(1), ""
	for _, sfx := range []string{"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"} {
		if v/1024 < unit {
			break
		}
		unit, suffix = unit*1024, sfx
	}
	if v%unit == 0 {
		return fmt.Sprintf("%d%s", v/unit, suffix)
	}
	x := float64(v) / float64(unit)
	decimals := 2
	switch {
	case x >= 100:
		decimals = 0
	case x >= 10:
		decimals = 1
	}
	scale := math.Pow10(decimals)
	return "~" + strconv.FormatFloat(math.Floor(x*scale)/scale, 'f', -1, 64) + suffix
}

// isBytes says whether a resource counts bytes: memory, storage,
// ephemeral-storage and hugepages, also as quota names (requests.memory).
func isBytes(name corev1.ResourceName) bool {
	base := string(name)
	if i := strings.LastIndex(base, "."); i >= 0 {
		base = base[i+1:]
	}
	switch {
	case base == string(corev1.ResourceMemory), base == string(corev1.ResourceStorage),
		base == string(corev1.ResourceEphemeralStorage), strings.HasPrefix(base, corev1.ResourceHugePagesPrefix):
		return true
	}
	return false
}

func countNamespaces(n int) string {
	if n == 1 {
		return "1 app namespace"
	}
	return fmt.Sprintf("%d app namespaces", n)
}
