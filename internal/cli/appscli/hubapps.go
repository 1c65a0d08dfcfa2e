package appscli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// The states of a cluster of a StatelessApp declared on the hub
// (ClusterAppStatus.state), and the phases of its release
// (ReleaseStatus.phase).
const (
	clusterActive      = "Active"
	clusterCordoned    = "Cordoned"
	clusterUnreachable = "Unreachable"
	clusterConflict    = "Conflict"

	phaseReleasing = "Releasing"
	phasePaused    = "Paused"
	phaseWaiting   = "Waiting"
	phaseBlocked   = "Blocked"
	phaseReleased  = "Released"
)

// HubApp is a StatelessApp declared on the hub, with its status in each
// cluster, and its verdict in one line.
type HubApp struct {
	StatelessApp appsv1alpha1.StatelessApp `json:"statelessApp"`
	Verdict      string                    `json:"verdict"`
}

// listHubApps lists the StatelessApps declared on the hub in namespace
// (all namespaces when ""), sorted by namespace and name.
func listHubApps(ctx context.Context, c client.Client, namespace string) ([]appsv1alpha1.StatelessApp, error) {
	list := &appsv1alpha1.StatelessAppList{}
	if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, err
	}
	items := list.Items
	for i := range items {
		items[i].SetManagedFields(nil)
		items[i].SetGroupVersionKind(appsv1alpha1.GroupVersion.WithKind("StatelessApp"))
	}
	slices.SortFunc(items, func(a, b appsv1alpha1.StatelessApp) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return items, nil
}

// shownHubApps tells the errors of listing the hub's StatelessApps that
// leave them out of the app views, which then read the workload clusters
// as before: a hub that serves none (older than apps declared on the
// hub), or a caller who may not list them there.
func shownHubApps(err error) bool {
	return !meta.IsNoMatchError(err) && !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err)
}

// hubAppsIn are the StatelessApps declared on the hub in namespace (all
// when ""), by namespace; none when the hub serves none or the caller may
// not list them.
func hubAppsIn(ctx context.Context, h hub, namespace string) (map[string][]appsv1alpha1.StatelessApp, error) {
	c, err := h.Client()
	if err != nil {
		return nil, err
	}
	apps, err := listHubApps(ctx, c, namespace)
	if err != nil {
		if !shownHubApps(err) {
			return nil, nil
		}
		where := "in namespace " + namespace
		if namespace == "" {
			where = "in all namespaces"
		}
		return nil, fmt.Errorf("listing the StatelessApps declared on the hub %s: %w (%s)", where, err, h.Hint())
	}
	by := map[string][]appsv1alpha1.StatelessApp{}
	for _, sa := range apps {
		by[sa.Namespace] = append(by[sa.Namespace], sa)
	}
	return by, nil
}

// hubAppsOf are the StatelessApps declared on the hub in the namespaces of
// ans, by namespace.
func hubAppsOf(ctx context.Context, h hub, ans []appsv1alpha1.AppNamespace) (map[string][]appsv1alpha1.StatelessApp, error) {
	out := map[string][]appsv1alpha1.StatelessApp{}
	for i := range ans {
		ns := hubNamespaceOf(&ans[i])
		if _, done := out[ns]; done {
			continue
		}
		by, err := hubAppsIn(ctx, h, ns)
		if err != nil {
			return nil, err
		}
		out[ns] = by[ns]
	}
	return out, nil
}

// hubNamespaceOf is the namespace of an AppNamespace on the hub, where its
// apps are declared: the AppNamespace's name (the hub's controller finds
// a hub app's AppNamespace by its namespace).
func hubNamespaceOf(an *appsv1alpha1.AppNamespace) string { return an.Name }

// newHubNamespaceStatus is an AppNamespace with the StatelessApps declared
// on the hub in its namespace, as the hub sees them.
func newHubNamespaceStatus(an *appsv1alpha1.AppNamespace, apps []appsv1alpha1.StatelessApp) NamespaceStatus {
	ns := NamespaceStatus{AppNamespace: *an}
	for i := range apps {
		ns.HubApps = append(ns.HubApps, HubApp{StatelessApp: apps[i], Verdict: hubVerdict(an, &apps[i])})
	}
	if len(clustersOf(an)) == 0 {
		ns.Verdict = "Not routed: " + conditionText(readyCondition(an))
	}
	return ns
}

// describeHubApp writes a StatelessApp declared on the hub: versions,
// replicas over the clusters, its conditions in words, its release, and a
// table of its clusters.
func describeHubApp(w io.Writer, ha *HubApp) {
	sa := &ha.StatelessApp
	const in = "  "
	fmt.Fprintf(w, "StatelessApp %s, declared on the hub\n", sa.Name)
	field(w, in, "Versions", versions(sa))
	field(w, in, "Replicas", hubReplicas(sa))
	if f := sa.Spec.Fleet; f != nil && len(f.Weights) > 0 {
		field(w, in, "Weights", weights(f.Weights))
	}
	if g := sa.Status.ObservedGeneration; g < sa.Generation {
		field(w, in, "Status", fmt.Sprintf("of generation %d; the spec is at %d (the hub has not caught up yet)", g, sa.Generation))
	}
	for _, t := range []string{appsv1alpha1.StatelessAppReadyCondition, appsv1alpha1.StatelessAppDegradedCondition, appsv1alpha1.StatelessAppReleasedCondition} {
		field(w, in, t, hubConditionLine(meta.FindStatusCondition(sa.Status.Conditions, t)))
	}
	if r := sa.Status.Release; r != nil {
		field(w, in, "Release", releaseLine(r, sa))
		field(w, in, "Released to", releasedTo(r, len(sa.Status.Clusters)))
		if r.Message != "" {
			field(w, in, "Release message", r.Message)
		}
	}
	if len(sa.Status.Clusters) > 0 {
		fmt.Fprintf(w, "%sClusters:\n", in)
		clusterTable(w, in+in, sa.Status.Clusters)
	}
	field(w, in, "Verdict", ha.Verdict)
}

// clusterTable writes the clusters of a StatelessApp declared on the hub,
// one a row, then what the hub says of those with a message or a failure.
func clusterTable(w io.Writer, indent string, clusters []appsv1alpha1.ClusterAppStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, indent+"CLUSTER\tSTATE\tSHARE\tREPLICAS\tREADY\tVERSION\tFAILURE")
	for _, c := range clusters {
		failure := "-"
		if f := c.Failure; f != nil {
			failure = fmt.Sprintf("%s: %s", f.Category, f.Reason)
			if n := failing(f); n > 0 {
				failure += " (" + podCount(n) + ")"
			}
		}
		ready := fmt.Sprint(c.ReadyReplicas)
		if !c.Ready && c.State == clusterActive {
			ready += " (not Ready)"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%d\t%d\t%s\t%s\t%s\n", indent, c.Cluster, dash(c.State), c.Share, c.Replicas, ready,
			dash(version(c.AppVersion, c.ConfigVersion)), failure)
	}
	_ = tw.Flush() // the writer is the command's output: its errors are the command's
	for _, c := range clusters {
		var says []string
		if c.Message != "" {
			says = append(says, c.Message)
		}
		if f := c.Failure; f != nil && f.Message != "" {
			s := f.Message
			if len(f.Pods) > 0 {
				s += " (pods " + strings.Join(f.Pods, ", ")
				if more := int(failing(f)) - len(f.Pods); more > 0 {
					s += fmt.Sprintf(" and %d more", more)
				}
				s += ")"
			}
			says = append(says, s)
		}
		if len(says) > 0 {
			fmt.Fprintf(w, "%s%s: %s\n", indent, c.Cluster, oneLine(strings.Join(says, "; ")))
		}
	}
}

// hubReplicas counts the replicas ready in the clusters of those wanted.
func hubReplicas(sa *appsv1alpha1.StatelessApp) string {
	var ready int32
	for _, c := range sa.Status.Clusters {
		ready += c.ReadyReplicas
	}
	s := fmt.Sprintf("%d/%d ready", ready, sa.Spec.Replicas)
	switch n := len(sa.Status.Clusters); n {
	case 0:
		return s + ", in no cluster yet"
	case 1:
		return s + " in 1 cluster"
	default:
		return fmt.Sprintf("%s over %d clusters", s, n)
	}
}

// weights lists spec.fleet.weights by cluster.
func weights(ws map[string]int32) string {
	names := make([]string, 0, len(ws))
	for n := range ws {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, ws[n]))
	}
	return strings.Join(parts, ", ") + " (other clusters 1)"
}

// releaseLine says what is released from what, where the release is, and
// when it started and ended.
func releaseLine(r *appsv1alpha1.ReleaseStatus, sa *appsv1alpha1.StatelessApp) string {
	s := version(r.AppVersion, r.ConfigVersion)
	if r.PreviousAppVersion != "" {
		s = version(r.PreviousAppVersion, r.PreviousConfigVersion) + " to " + s
	}
	s += ": " + cmp.Or(r.Phase, "phase unknown")
	if r.Wave > 0 && r.Phase != phaseReleased {
		s += fmt.Sprintf(", wave %d", r.Wave)
	}
	if t := r.WaveReadySince; t != nil && r.Phase == phaseReleasing {
		s += ", the wave Ready since " + t.UTC().Format("2006-01-02 15:04:05Z")
		if f := sa.Spec.Fleet; f != nil && f.Release.SoakSeconds > 0 {
			s += fmt.Sprintf(" (soaks %ds)", f.Release.SoakSeconds)
		}
	}
	if t := r.StartTime; t != nil {
		s += ", started " + t.UTC().Format("2006-01-02 15:04:05Z")
	}
	if t := r.CompletionTime; t != nil {
		s += ", completed " + t.UTC().Format("2006-01-02 15:04:05Z")
	}
	return s
}

// releasedTo names the clusters released, of all the app's.
func releasedTo(r *appsv1alpha1.ReleaseStatus, clusters int) string {
	if len(r.Released) == 0 {
		return "no cluster yet"
	}
	s := strings.Join(r.Released, ", ")
	if clusters > 0 {
		s += fmt.Sprintf(" (%d of %d clusters)", len(r.Released), max(clusters, len(r.Released)))
	}
	return s
}

// hubReasons say in words what the reasons of a StatelessApp declared on
// the hub mean.
var hubReasons = map[string]string{
	appsv1alpha1.AvailableReason:      "every cluster runs its share, available",
	appsv1alpha1.NoClustersReason:     "no cluster can run it: none placed, or all unreachable or cordoned",
	appsv1alpha1.InvalidWeightsReason: "spec.fleet.weights give its clusters no replicas; nothing is changed",
	appsv1alpha1.MovingReason:         "replicas move between clusters; those leaving stay until their replacements are Ready",
	appsv1alpha1.ReleasedReason:       "every cluster runs the app's version",
	appsv1alpha1.ReleasingReason:      "a wave rolls out or soaks",
	appsv1alpha1.ReleasePausedReason:  "stopped before its next wave",
	appsv1alpha1.ReleaseWaitingReason: "a wave waits on the infrastructure or an unreachable cluster; it goes on by itself",
	appsv1alpha1.ReleaseBlockedReason: "a new version waits until the paused release is resumed or rolled back",
}

// hubConditionLine is "True (Reason: what it means): message".
func hubConditionLine(c *metav1.Condition) string {
	if c == nil {
		return "unknown (not reported yet)"
	}
	words, ok := hubReasons[c.Reason]
	if !ok {
		return conditionLine(c)
	}
	s := fmt.Sprintf("%s (%s: %s)", c.Status, c.Reason, words)
	if c.Message != "" {
		s += ": " + c.Message
	}
	return s
}

// hubVerdict judges a StatelessApp declared on the hub in one line: what
// holds its release, whose problem a failure in a cluster is, and what the
// owner can do.
func hubVerdict(an *appsv1alpha1.AppNamespace, sa *appsv1alpha1.StatelessApp) string {
	ready := meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatelessAppReadyCondition)
	released := meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatelessAppReleasedCondition)
	ref := an.Spec.App + "/" + sa.Name
	if ready == nil {
		return "Unknown: no status yet (is the hub's controller of the apps declared on the hub running?)"
	}
	if sa.Status.ObservedGeneration < sa.Generation {
		return fmt.Sprintf("Updating: the hub has not acted on generation %d yet", sa.Generation)
	}
	if released != nil && released.Status == metav1.ConditionFalse {
		switch released.Reason {
		case appsv1alpha1.ReleasePausedReason:
			if f := sa.Spec.Fleet; f != nil && f.Release.Paused {
				return fmt.Sprintf("Release paused by its owner (spec.fleet.release.paused): `kubectl strata release unpause %s` goes on.", ref)
			}
			return "Release paused: " + strings.TrimSuffix(cmp.Or(released.Message, released.Reason), ".") + ". " + resumeHint(ref, sa.Status.Release)
		case appsv1alpha1.ReleaseBlockedReason:
			return "Release blocked: " + strings.TrimSuffix(cmp.Or(released.Message, released.Reason), ".") + ". " + resumeHint(ref, sa.Status.Release)
		}
	}
	if c, f := firstFailure(sa.Status.Clusters); f != nil {
		prefix := "Not ready: "
		if ready.Status == metav1.ConditionTrue {
			prefix = "Ready, but pods fail: "
		}
		what := fmt.Sprintf("%s failure in cluster %s — %s", f.Category, c, f.Reason)
		if n := failing(f); n > 0 {
			what += " in " + podCount(n)
		}
		what += "."
		if f.Category == appsv1alpha1.InfraFailure {
			return prefix + what + " Not the app's doing: " + infraHint(an, c, f.Reason)
		}
		return prefix + what + " Fix the app: " + appHint(an, sa, f.Reason)
	}
	if released != nil && released.Status == metav1.ConditionFalse {
		switch released.Reason {
		case appsv1alpha1.ReleaseWaitingReason:
			return "Release waiting: " + cmp.Or(released.Message, released.Reason) + " (it goes on by itself)"
		case appsv1alpha1.ReleasingReason:
			s := "Releasing"
			if r := sa.Status.Release; r != nil {
				s += " " + version(r.AppVersion, r.ConfigVersion)
				if r.Wave > 0 {
					s += fmt.Sprintf(", wave %d", r.Wave)
				}
				if len(r.Released) > 0 {
					s += ", released to " + strings.Join(r.Released, ", ")
				}
			}
			if released.Message != "" {
				s += ": " + released.Message
			}
			return s
		}
	}
	switch {
	case ready.Status == metav1.ConditionTrue:
		return "Ready"
	case ready.Reason == appsv1alpha1.MovingReason:
		return "Moving: " + cmp.Or(ready.Message, "replicas move between clusters")
	}
	return "Not ready: " + conditionText(ready)
}

// resumeHint says how to go on with a paused release, or go back.
func resumeHint(ref string, r *appsv1alpha1.ReleaseStatus) string {
	s := fmt.Sprintf("`kubectl strata release resume %s` goes on regardless of the failure", ref)
	if r != nil && r.PreviousAppVersion != "" {
		s += fmt.Sprintf("; `kubectl strata release rollback %s` goes back to %s", ref, version(r.PreviousAppVersion, r.PreviousConfigVersion))
	}
	return s + "."
}

// firstFailure is the first cluster whose app fails, an App failure before
// an Infra one.
func firstFailure(clusters []appsv1alpha1.ClusterAppStatus) (string, *appsv1alpha1.Failure) {
	var infraCluster string
	var infra *appsv1alpha1.Failure
	for i := range clusters {
		f := clusters[i].Failure
		switch {
		case f == nil:
		case f.Category != appsv1alpha1.InfraFailure:
			return clusters[i].Cluster, f
		case infra == nil:
			infraCluster, infra = clusters[i].Cluster, f
		}
	}
	return infraCluster, infra
}

// hubRows are the rows of `get apps` of an AppNamespace whose namespace
// on the hub holds StatelessApps declared there: one per cluster, from
// their status.clusters (the clusters are not read).
func hubRows(an *appsv1alpha1.AppNamespace, apps []appsv1alpha1.StatelessApp) []AppRow {
	clusters := clustersOf(an)
	for _, sa := range apps {
		for _, c := range sa.Status.Clusters {
			if !slices.Contains(clusters, c.Cluster) {
				clusters = append(clusters, c.Cluster)
			}
		}
	}
	if len(clusters) == 0 {
		r := appRow(an, "", workloads{stateless: apps}, nil)
		r.Hub = true
		return []AppRow{r}
	}
	rows := make([]AppRow, 0, len(clusters))
	for _, cluster := range clusters {
		rows = append(rows, hubRow(an, cluster, apps))
	}
	return rows
}

// hubRow sums up the StatelessApps declared on the hub in one of their
// clusters, as the hub reports them.
func hubRow(an *appsv1alpha1.AppNamespace, cluster string, apps []appsv1alpha1.StatelessApp) AppRow {
	r := AppRow{App: an.Spec.App, AppNamespace: an.Name, Cluster: cluster, Namespace: namespaceOf(an), Workloads: len(apps), Hub: true, read: true}
	var categories []string
	var unreachable, conflict, cordoned bool
	allReady, progressing := true, false
	note := func(s string) {
		if r.Message == "" {
			r.Message = s
		}
	}
	for i := range apps {
		sa := &apps[i]
		if ready := meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatelessAppReadyCondition); ready != nil && ready.Reason == appsv1alpha1.MovingReason {
			progressing = true
		}
		if rel := sa.Status.Release; rel != nil && rel.Phase == phaseReleasing {
			progressing = true
		}
		i := slices.IndexFunc(sa.Status.Clusters, func(c appsv1alpha1.ClusterAppStatus) bool { return c.Cluster == cluster })
		if i < 0 {
			allReady = false
			note(sa.Name + ": the hub reports nothing of this cluster yet")
			continue
		}
		c := &sa.Status.Clusters[i]
		r.Replicas += c.Replicas
		r.ReadyReplicas += c.ReadyReplicas
		switch c.State {
		case clusterUnreachable:
			unreachable = true
		case clusterConflict:
			conflict = true
		case clusterCordoned:
			cordoned = true
		}
		if f := c.Failure; f != nil {
			if !slices.Contains(categories, string(f.Category)) {
				categories = append(categories, string(f.Category))
			}
			note(fmt.Sprintf("%s: %s: %s", sa.Name, f.Reason, f.Message))
		}
		if !c.Ready {
			allReady = false
		}
		if c.Message != "" && (!c.Ready || c.State != clusterActive) {
			note(sa.Name + ": " + c.Message)
		}
	}
	slices.Sort(categories)
	switch {
	case an.DeletionTimestamp != nil:
		r.Status = statusDeleting
		if c := readyCondition(an); c != nil {
			r.Message = conditionText(c)
		}
	case unreachable:
		r.Status, r.read = statusUnreachable, false
	case conflict:
		r.Status = statusConflict
	case len(categories) > 0:
		r.Status = statusDegraded + strings.Join(categories, "+")
	case cordoned:
		r.Status = statusCordoned
	case allReady:
		r.Status, r.Message = statusReady, ""
	case progressing:
		r.Status = statusProgressing
	default:
		r.Status = statusNotReady
	}
	return r
}
