package dispatch

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// podSet is one pod set of a workload as the hub's Kueue admitted it: how
// many pods, what each requests, and the node profile of the flavor it was
// given.
type podSet struct {
	Name    string
	Profile string
	Count   int32
	PerPod  corev1.ResourceList
}

// nodeRoom is a Node of a workload cluster, of one node profile.
type nodeRoom struct {
	Name string
	// Zone names the Node's maintenance zone for a person: dc1-mz2.
	Zone        string
	Allocatable corev1.ResourceList
	// Out says why no new pod is counted on the Node (not Ready, cordoned,
	// its zone in maintenance); "" when it takes pods.
	Out string
}

// clusterInput is what the dispatcher knows of one workload cluster.
type clusterInput struct {
	Name string
	// Excluded says why the cluster takes no job now (not Ready,
	// unreachable, leaving the hub); "" when it may.
	Excluded string
	// Known: its Nodes could be read. An unreachable cluster's are not
	// known, so it might hold a job some day.
	Known bool
	// Nodes are its Nodes by node profile, for the profiles asked.
	Nodes map[string][]nodeRoom
	// Used is what the jobs already dispatched there and not finished
	// request, by node profile.
	Used map[string]corev1.ResourceList
	// Pools counts its Pools by node profile; Growing is true for a
	// profile whose Pools want more Nodes than they have: more room is
	// coming.
	Pools   map[string]int
	Growing map[string]bool
	// Recent counts the jobs dispatched there lately (the tie-break).
	Recent int
}

// verdict is one cluster's answer for a workload.
type verdict struct {
	Cluster string
	Fits    bool
	// Share is the smallest share of a requested resource left free on the
	// cluster's Nodes of the profile once the workload is placed.
	Share float64
	// Says is why it fits, or why not, for a person.
	Says string
	// Ever: the cluster could hold the workload with every Node of the
	// profile empty and taking pods (or its Pools are growing, or it is not
	// known).
	Ever   bool
	Recent int
}

// decision is where a workload goes, or why nowhere.
type decision struct {
	// Cluster is "" when none fits.
	Cluster string
	// NeverFits: no cluster could ever hold the workload.
	NeverFits bool
	// Message says why, with every cluster's answer.
	Message string
}

// decide chooses the workload cluster for a gang: the clusters that are not
// excluded and have room for every pod of it at once on their Nodes of the
// profile that take pods, counted per Node; of those, the one left with the
// largest share of room after placing it (which spreads jobs over the
// clusters), then the one given fewest jobs lately, then the first name.
func decide(want []podSet, clusters []clusterInput) decision {
	if len(clusters) == 0 {
		return decision{Message: "no workload cluster is registered in the MultiKueue configuration"}
	}
	clusters = slices.Clone(clusters)
	slices.SortFunc(clusters, func(a, b clusterInput) int { return strings.Compare(a.Name, b.Name) })
	verdicts := make([]verdict, 0, len(clusters))
	var best *verdict
	ever := false
	for i := range clusters {
		v := judge(want, &clusters[i])
		verdicts = append(verdicts, v)
		ever = ever || v.Ever
	}
	for i := range verdicts {
		if v := &verdicts[i]; v.Fits && (best == nil || better(v, best)) {
			best = v
		}
	}
	summary := describeWant(want)
	if best == nil {
		why := make([]string, 0, len(verdicts))
		for _, v := range verdicts {
			why = append(why, v.Cluster+": "+v.Says)
		}
		if !ever {
			return decision{NeverFits: true, Message: fmt.Sprintf("no workload cluster could ever hold %s, even with all its Nodes of the profile free: %s",
				summary, strings.Join(why, "; "))}
		}
		return decision{Message: fmt.Sprintf("no workload cluster has room for %s now: %s", summary, strings.Join(why, "; "))}
	}
	parts := []string{fmt.Sprintf("dispatched %s to %s: %s", summary, best.Cluster, best.Says)}
	for _, v := range verdicts {
		if v.Cluster != best.Cluster {
			parts = append(parts, v.Cluster+": "+v.Says)
		}
	}
	return decision{Cluster: best.Cluster, Message: strings.Join(parts, "; ")}
}

// better says whether a fits better than b.
func better(a, b *verdict) bool {
	const epsilon = 1e-9
	switch {
	case math.Abs(a.Share-b.Share) > epsilon:
		return a.Share > b.Share
	case a.Recent != b.Recent:
		return a.Recent < b.Recent
	}
	return a.Cluster < b.Cluster
}

// judge answers for one cluster.
func judge(want []podSet, c *clusterInput) verdict {
	v := verdict{Cluster: c.Name, Recent: c.Recent, Ever: !c.Known}
	if c.Known {
		v.Ever = true
		for _, profile := range profiles(want) {
			if c.Growing[profile] {
				continue
			}
			all := c.Nodes[profile]
			empty := make([]nodeRoom, len(all))
			for i, n := range all {
				empty[i] = nodeRoom{Name: n.Name, Allocatable: n.Allocatable}
			}
			if fit, _ := place(empty, nil, of(want, profile)); !fit.ok {
				v.Ever = false
			}
		}
	}
	if c.Excluded != "" {
		v.Says = c.Excluded
		return v
	}
	var says []string
	v.Share = math.Inf(1)
	v.Fits = true
	for _, profile := range profiles(want) {
		if c.Pools[profile] == 0 && len(c.Nodes[profile]) == 0 {
			v.Fits = false
			says = append(says, "no Pool of profile "+profile)
			continue
		}
		nodes := c.Nodes[profile]
		fit, out := place(nodes, c.Used[profile], of(want, profile))
		note := ""
		if len(out) > 0 {
			note = " (counted out: " + strings.Join(out, ", ") + ")"
		}
		if !fit.ok {
			v.Fits = false
			says = append(says, fmt.Sprintf("room for %d of %d pods on %s of profile %s, %s free%s",
				fit.placed, fit.wanted, plural(fit.nodes, "Node"), profile, fit.free, note))
			continue
		}
		v.Share = min(v.Share, fit.share)
		says = append(says, fmt.Sprintf("%s free of profile %s after placing, on %s in %s%s",
			fit.free, profile, plural(fit.nodes, "Node"), plural(fit.zones, "zone"), note))
	}
	if !v.Fits {
		v.Share = 0
	}
	v.Says = strings.Join(says, "; ")
	return v
}

// fitResult is how a workload's pods of one profile fit on a cluster.
type fitResult struct {
	ok             bool
	placed, wanted int32
	// nodes and zones count the Nodes that take pods, and their zones.
	nodes, zones int
	// share is the smallest share of a requested resource left free.
	share float64
	// free lists the requested resources left free after placing, "cpu 40
	// of 48"; before placing when they do not fit.
	free string
}

// place counts a workload's pods onto Nodes, all at once (a gang): each pod
// on one Node, with the Node's room for each requested resource. The Nodes'
// room is their allocatable resources less what the jobs already dispatched
// to the cluster request (used); where those jobs' pods run is not known to
// the hub, so their requests are counted spread over the Nodes that take
// pods in proportion to each Node's allocatable: approximate, but a pod
// larger than any Node's share never fits, and a gang needs whole pods'
// room. It returns how they fit, and the reasons Nodes were counted out
// ("2 Nodes: zone dc1-mz2 under maintenance (rollout r)").
func place(nodes []nodeRoom, used corev1.ResourceList, want []podSet) (fitResult, []string) {
	names := requested(want)
	outs := map[string]int{}
	zones := map[string]bool{}
	var takes []nodeRoom
	total := map[corev1.ResourceName]float64{}
	for _, n := range nodes {
		if n.Out != "" {
			outs[n.Out]++
			continue
		}
		takes = append(takes, n)
		if n.Zone != "" {
			zones[n.Zone] = true
		}
		for _, r := range names {
			total[r] += value(n.Allocatable[r])
		}
	}
	// The share of each resource the dispatched jobs hold.
	held := map[corev1.ResourceName]float64{}
	for _, r := range names {
		if total[r] > 0 {
			held[r] = min(1, value(used[r])/total[r])
		} else if value(used[r]) > 0 {
			held[r] = 1
		}
	}
	free := make([]map[corev1.ResourceName]float64, len(takes))
	for i, n := range takes {
		free[i] = map[corev1.ResourceName]float64{}
		for _, r := range names {
			free[i][r] = value(n.Allocatable[r]) * (1 - held[r])
		}
	}
	res := fitResult{nodes: len(takes), zones: len(zones)}
	sets := slices.Clone(want)
	// The largest pods first, as they are the hardest to fit.
	slices.SortStableFunc(sets, func(a, b podSet) int { return cmp.Compare(size(b.PerPod, total), size(a.PerPod, total)) })
	before := sumFree(free, names)
	for _, ps := range sets {
		res.wanted += ps.Count
		left := ps.Count
		for i := range free {
			if left == 0 {
				break
			}
			k := min(int64(left), fits(free[i], ps.PerPod, names))
			for _, r := range names {
				free[i][r] -= float64(k) * value(ps.PerPod[r])
			}
			left -= int32(k)
		}
		res.placed += ps.Count - left
	}
	res.ok = res.placed == res.wanted
	after := sumFree(free, names)
	if !res.ok {
		after = before
	}
	res.share = math.Inf(1)
	var parts []string
	for _, r := range names {
		if total[r] > 0 {
			res.share = min(res.share, after[r]/total[r])
		} else {
			res.share = 0
		}
		parts = append(parts, fmt.Sprintf("%s %s of %s", r, formatValue(r, after[r]), formatValue(r, total[r])))
	}
	if len(takes) == 0 {
		res.share = 0
	}
	res.free = strings.Join(parts, ", ")
	reasons := make([]string, 0, len(outs))
	for why, n := range outs {
		reasons = append(reasons, fmt.Sprintf("%s: %s", plural(n, "Node"), why))
	}
	slices.Sort(reasons)
	return res, reasons
}

// fits is how many pods of a size fit in a Node's free room.
func fits(free map[corev1.ResourceName]float64, perPod corev1.ResourceList, names []corev1.ResourceName) int64 {
	const epsilon = 1e-9
	n := int64(math.MaxInt32)
	for _, r := range names {
		ask := value(perPod[r])
		if ask <= 0 {
			continue
		}
		n = min(n, int64(math.Floor(free[r]/ask+epsilon)))
	}
	return max(n, 0)
}

func sumFree(free []map[corev1.ResourceName]float64, names []corev1.ResourceName) map[corev1.ResourceName]float64 {
	out := map[corev1.ResourceName]float64{}
	for _, f := range free {
		for _, r := range names {
			out[r] += max(f[r], 0)
		}
	}
	return out
}

// size is a pod's largest share of the room of one resource: its dominant
// share, to place the largest pods first.
func size(perPod corev1.ResourceList, total map[corev1.ResourceName]float64) float64 {
	s := 0.0
	for r, q := range perPod {
		if t := total[r]; t > 0 {
			s = max(s, value(q)/t)
		}
	}
	return s
}

// value is a quantity as a number: cores for cpu, bytes for memory.
func value(q resource.Quantity) float64 { return q.AsApproximateFloat64() }

// profiles are the node profiles a workload asks, sorted.
func profiles(want []podSet) []string {
	var out []string
	for _, ps := range want {
		if !slices.Contains(out, ps.Profile) {
			out = append(out, ps.Profile)
		}
	}
	slices.Sort(out)
	return out
}

// of are the pod sets of one profile.
func of(want []podSet, profile string) []podSet {
	var out []podSet
	for _, ps := range want {
		if ps.Profile == profile {
			out = append(out, ps)
		}
	}
	return out
}

// requested lists the resources the pods request, cpu and memory first.
func requested(want []podSet) []corev1.ResourceName {
	var names []corev1.ResourceName
	for _, ps := range want {
		for r, q := range ps.PerPod {
			if q.Sign() > 0 && !slices.Contains(names, r) {
				names = append(names, r)
			}
		}
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
		return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(string(a), string(b)))
	})
	return names
}

// describeWant says what a workload asks: "8 pods of cpu 4, memory 16Gi
// (profile general)".
func describeWant(want []podSet) string {
	parts := make([]string, 0, len(want))
	for _, ps := range want {
		var res []string
		for _, r := range requested([]podSet{ps}) {
			res = append(res, fmt.Sprintf("%s %s", r, formatValue(r, value(ps.PerPod[r]))))
		}
		parts = append(parts, fmt.Sprintf("%s of %s (profile %s)", plural(int(ps.Count), "pod"), strings.Join(res, ", "), ps.Profile))
	}
	return strings.Join(parts, " and ")
}

// formatValue writes an amount for a person: cores with up to three
// decimals, bytes in Gi (or Mi below a Gi).
func formatValue(r corev1.ResourceName, v float64) string {
	trim := func(f float64) string {
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", f), "0"), ".")
	}
	if r == corev1.ResourceMemory || r == corev1.ResourceEphemeralStorage {
		const gi, mi = 1 << 30, 1 << 20
		if math.Abs(v) >= gi || v == 0 {
			return trim(math.Round(v/gi*10)/10) + "Gi"
		}
		return trim(math.Round(v/mi)) + "Mi"
	}
	return trim(v)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
