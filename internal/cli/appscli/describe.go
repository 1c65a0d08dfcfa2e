package appscli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// AppStatus is what `status` shows, and prints with -o json|yaml: the
// app's AppNamespaces and, for each one routed, its StatelessApps and
// StatefulApps.
type AppStatus struct {
	App        string            `json:"app"`
	Namespaces []NamespaceStatus `json:"namespaces"`
}

// NamespaceStatus is one AppNamespace of the app and what runs in it: in
// one of its clusters, or, for the StatelessApps declared on the hub, in
// all of them as the hub sees it.
type NamespaceStatus struct {
	AppNamespace appsv1alpha1.AppNamespace `json:"appNamespace"`
	// Cluster is the cluster read, when the AppNamespace is on several
	// (status.cluster otherwise).
	Cluster string `json:"cluster,omitempty"`
	// HubApps are the StatelessApps declared on the hub in the
	// AppNamespace's namespace there, with their status in each cluster.
	HubApps []HubApp `json:"hubApps,omitempty"`
	// Unreachable says why the cluster's workloads could not be read.
	Unreachable string `json:"unreachable,omitempty"`
	// Forbidden says that the caller may not read them, who and where.
	Forbidden string `json:"forbidden,omitempty"`
	// Verdict is the namespace's own, when it has no workloads to judge:
	// not routed, cluster unreachable, empty.
	Verdict string `json:"verdict,omitempty"`
	// Workloads are the StatelessApps.
	Workloads    []Workload         `json:"workloads,omitempty"`
	StatefulApps []StatefulWorkload `json:"statefulApps,omitempty"`
}

// Workload is a StatelessApp and its verdict in one line.
type Workload struct {
	StatelessApp appsv1alpha1.StatelessApp `json:"statelessApp"`
	Verdict      string                    `json:"verdict"`
}

// newNamespaceStatus judges an AppNamespace and the workloads read from
// one of its clusters, cluster ("" when not routed; readErr says why they
// could not be read), with what the shard managers of its StatefulApps
// said (shards, aligned with w.stateful).
func newNamespaceStatus(an *appsv1alpha1.AppNamespace, cluster string, w workloads, readErr error, shards []shardsRead) NamespaceStatus {
	ns := NamespaceStatus{AppNamespace: *an}
	if len(clustersOf(an)) > 1 {
		ns.Cluster = cluster
	}
	switch {
	case isForbidden(readErr):
		ns.Forbidden = readErr.Error()
	case readErr != nil:
		ns.Unreachable = readErr.Error()
	}
	for i := range w.stateless {
		ns.Workloads = append(ns.Workloads, Workload{StatelessApp: w.stateless[i], Verdict: verdict(an, cluster, &w.stateless[i])})
	}
	for i := range w.stateful {
		var read shardsRead
		if i < len(shards) {
			read = shards[i]
		}
		ns.StatefulApps = append(ns.StatefulApps, newStatefulWorkload(cluster, &w.stateful[i], read))
	}
	switch {
	case cluster == "":
		ns.Verdict = "Not routed: " + conditionText(readyCondition(an))
	case ns.Forbidden != "":
		ns.Verdict = "Forbidden: " + strings.TrimPrefix(ns.Forbidden, "forbidden: ")
	case ns.Unreachable != "":
		ns.Verdict = fmt.Sprintf("Unknown: cluster %s cannot be read", cluster)
	case len(w.stateless)+len(w.stateful) == 0:
		ns.Verdict = fmt.Sprintf("No workloads: namespace %s holds no StatelessApps or StatefulApps yet", namespaceOf(an))
	}
	return ns
}

// describe writes the status of an app for a person.
func describe(w io.Writer, s *AppStatus) {
	for i := range s.Namespaces {
		if i > 0 {
			fmt.Fprintln(w)
		}
		describeNamespace(w, &s.Namespaces[i])
	}
}

func describeNamespace(w io.Writer, ns *NamespaceStatus) {
	an := &ns.AppNamespace
	cluster := ns.cluster()
	field(w, "", "App", an.Spec.App)
	field(w, "", "AppNamespace", an.Name)
	field(w, "", "Tenant", string(an.Spec.Tenant))
	field(w, "", "Node profile", an.Spec.NodeProfile)
	on := clustersOf(an)
	switch {
	case len(ns.HubApps) > 0 && len(on) > 0:
		field(w, "", "Clusters", strings.Join(on, ", "))
	case cluster == "":
		field(w, "", "Cluster", "none (not routed)")
	case ns.Unreachable != "":
		field(w, "", "Cluster", clusterOf(cluster, on)+" (unreachable: "+ns.Unreachable+")")
	default:
		field(w, "", "Cluster", clusterOf(cluster, on))
	}
	if reason := placementReason(an, cluster); len(on) > 1 && len(ns.HubApps) == 0 && reason != "" {
		field(w, "", "Placed", reason)
	}
	if cluster != "" || len(ns.HubApps) > 0 && len(on) > 0 {
		field(w, "", "Namespace", namespaceOf(an))
	}
	field(w, "", "Owners", owners(an.Spec.Owners))
	if c := readyCondition(an); (cluster != "" || len(ns.HubApps) > 0 && len(on) > 0) && (c == nil || c.Status != metav1.ConditionTrue) {
		field(w, "", "Namespace ready", conditionLine(c))
	}
	if an.DeletionTimestamp != nil {
		field(w, "", "Deleting", "since "+an.DeletionTimestamp.UTC().Format("2006-01-02 15:04:05Z"))
	}
	if ns.Verdict != "" {
		field(w, "", "Verdict", ns.Verdict)
	}
	for i := range ns.HubApps {
		fmt.Fprintln(w)
		describeHubApp(w, &ns.HubApps[i])
	}
	for i := range ns.Workloads {
		fmt.Fprintln(w)
		describeWorkload(w, &ns.Workloads[i])
	}
	for i := range ns.StatefulApps {
		fmt.Fprintln(w)
		describeStatefulApp(w, &ns.StatefulApps[i])
	}
}

func describeWorkload(w io.Writer, wl *Workload) {
	sa := &wl.StatelessApp
	const in = "  "
	fmt.Fprintf(w, "StatelessApp %s\n", sa.Name)
	if sa.Labels[appsv1alpha1.HubAppLabel] != "" {
		field(w, in, "Declared", "on the hub, which writes this cluster's share of it: change it there")
	}
	field(w, in, "Versions", versions(sa))
	field(w, in, "Replicas", replicas(sa))
	if g := sa.Status.ObservedGeneration; g < sa.Generation {
		field(w, in, "Status", fmt.Sprintf("of generation %d; the spec is at %d (the controller has not caught up yet)", g, sa.Generation))
	}
	for _, t := range []string{appsv1alpha1.StatelessAppReadyCondition, appsv1alpha1.StatelessAppProgressingCondition, appsv1alpha1.StatelessAppDegradedCondition} {
		field(w, in, t, conditionLine(meta.FindStatusCondition(sa.Status.Conditions, t)))
	}
	if f := sa.Status.Failure; f != nil {
		what := fmt.Sprintf("%s, %s", f.Category, f.Reason)
		if n := failing(f); n > 0 {
			what += ", " + podCount(n)
		}
		field(w, in, "Failure", what)
		field(w, in, "Message", f.Message)
		if len(f.Pods) > 0 {
			pods := strings.Join(f.Pods, ", ")
			if more := int(failing(f)) - len(f.Pods); more > 0 {
				pods += fmt.Sprintf(" and %d more", more)
			}
			field(w, in, "Pods", pods)
		}
	}
	field(w, in, "Verdict", wl.Verdict)
}

// labelWidth aligns the values of the fields.
const labelWidth = len("Namespace ready:  ")

// field writes "label: value", the value's further lines aligned under its
// first. A label too long for the column (a long pod name) is followed by
// one space.
func field(w io.Writer, indent, label, value string) {
	pad := strings.Repeat(" ", len(indent)+labelWidth)
	value = strings.ReplaceAll(strings.TrimRight(value, "\n"), "\n", "\n"+pad)
	width := max(labelWidth, len(label)+2)
	fmt.Fprintf(w, "%s%-*s%s\n", indent, width, label+":", value)
}

// verdict judges a StatelessApp of cluster in one line, saying whose
// problem a failure is.
func verdict(an *appsv1alpha1.AppNamespace, cluster string, sa *appsv1alpha1.StatelessApp) string {
	ready := meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatelessAppReadyCondition)
	progressing := meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatelessAppProgressingCondition)
	isReady := ready != nil && ready.Status == metav1.ConditionTrue
	if ready == nil {
		return "Unknown: no status yet (is the StatelessApp controller running in cluster " + cluster + "?)"
	}
	if f := sa.Status.Failure; f != nil {
		prefix := "Not ready: "
		if isReady {
			prefix = "Ready, but pods fail: "
		}
		what := fmt.Sprintf("%s failure — %s", f.Category, f.Reason)
		if n := failing(f); n > 0 {
			what += " in " + podCount(n)
		}
		what += "."
		if f.Category == appsv1alpha1.InfraFailure {
			return prefix + what + " Not the app's doing: " + infraHint(an, cluster, f.Reason)
		}
		return prefix + what + " Fix the app: " + appHint(an, sa, f.Reason)
	}
	if progressing != nil && progressing.Reason == appsv1alpha1.ProgressDeadlineExceededReason {
		return fmt.Sprintf("Not ready: the rollout failed (no progress within %ds): %s", sa.Spec.ProgressDeadlineSeconds, progressing.Message)
	}
	if sa.Status.ObservedGeneration < sa.Generation {
		return fmt.Sprintf("Updating: the controller has not acted on generation %d yet", sa.Generation)
	}
	if isReady {
		return "Ready"
	}
	if progressing != nil && progressing.Status == metav1.ConditionTrue {
		return fmt.Sprintf("Not ready: rolling out, %d/%d replicas ready", sa.Status.ReadyReplicas, sa.Spec.Replicas)
	}
	return "Not ready: " + conditionText(ready)
}

// appHint says what the app's owner can do about an App failure.
func appHint(an *appsv1alpha1.AppNamespace, sa *appsv1alpha1.StatelessApp, reason string) string {
	logs := fmt.Sprintf("`kubectl strata logs %s/%s`", an.Spec.App, sa.Name)
	switch reason {
	case "CrashLoopBackOff":
		return "its container keeps exiting; " + strings.TrimSuffix(logs, "`") + " --previous` shows why."
	case "OOMKilled":
		return fmt.Sprintf("it runs out of memory (%s per replica); raise spec.resources.memory or make it use less.", sa.Spec.Resources.Memory.String())
	case "ErrImagePull", "ImagePullBackOff":
		return "its image cannot be pulled; check that the versions asked for are published for " + sa.Spec.Application + "."
	case "InvalidImageName":
		return "its image reference is invalid; check spec.application and the versions."
	case "CreateContainerConfigError":
		return "its container cannot be configured; the message says what is missing."
	case "ReadinessProbeFailing":
		return fmt.Sprintf("its readiness probe fails; check that it answers the platform's health check on port %d; %s shows what it does.", sa.Spec.Port, logs)
	}
	return "see the message and " + logs + "."
}

// infraHint says who handles an Infra failure in cluster.
func infraHint(an *appsv1alpha1.AppNamespace, cluster, reason string) string {
	switch reason {
	case "QuotaExceeded":
		return fmt.Sprintf("the namespace's quota is used up; raise spec.quota of AppNamespace %s on the hub, or ask for fewer replicas or less per replica.", an.Name)
	case "Unschedulable":
		return fmt.Sprintf("the cluster has no room for its pods; capacity of node profile %s in cluster %s is the platform team's to add.", an.Spec.NodeProfile, cluster)
	case "NodeLost":
		return "Nodes that ran its pods were lost; the platform replaces them and the pods are rescheduled."
	}
	return fmt.Sprintf("the platform team is responsible; raise it with them, naming cluster %s and namespace %s.", cluster, namespaceOf(an))
}

// versions says which versions each track runs.
func versions(sa *appsv1alpha1.StatelessApp) string {
	s := "stable " + version(sa.Spec.AppVersion, sa.Spec.ConfigVersion)
	if c := sa.Spec.Canary; c != nil {
		config := c.ConfigVersion
		if config == "" {
			config = sa.Spec.ConfigVersion
		}
		if c.AppVersion == sa.Spec.AppVersion && config == sa.Spec.ConfigVersion {
			return s + "; canary promoted (same versions)"
		}
		s += fmt.Sprintf("; canary %s at %d%%", version(c.AppVersion, config), c.Percent)
	}
	return s
}

func version(app, config string) string {
	if config == "" {
		return app
	}
	return app + " (config " + config + ")"
}

// replicas counts ready replicas of those wanted, per track when there is
// a canary.
func replicas(sa *appsv1alpha1.StatelessApp) string {
	s := fmt.Sprintf("%d/%d ready", sa.Status.ReadyReplicas, sa.Spec.Replicas)
	if sa.Status.Canary == nil {
		if t := sa.Status.Stable; t.UpdatedReplicas != t.Replicas {
			s += fmt.Sprintf(", %d/%d updated", t.UpdatedReplicas, t.Replicas)
		}
		return s
	}
	return s + ": stable " + track(sa.Status.Stable) + ", canary " + track(*sa.Status.Canary)
}

func track(t appsv1alpha1.TrackStatus) string {
	s := fmt.Sprintf("%d/%d", t.ReadyReplicas, t.Replicas)
	if t.UpdatedReplicas != t.Replicas {
		s += fmt.Sprintf(" (%d updated)", t.UpdatedReplicas)
	}
	return s
}

func owners(os []appsv1alpha1.Owner) string {
	if len(os) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(os))
	for _, o := range os {
		parts = append(parts, fmt.Sprintf("%s (%s, %s)", o.Name, o.Kind, o.Role))
	}
	return strings.Join(parts, ", ")
}

// conditionLine is "True (Reason): message", or "unknown" without a condition.
func conditionLine(c *metav1.Condition) string {
	if c == nil {
		return "unknown (not reported yet)"
	}
	s := fmt.Sprintf("%s (%s)", c.Status, c.Reason)
	if c.Message != "" {
		s += ": " + c.Message
	}
	return s
}

// conditionText is "Reason — message", for verdicts.
func conditionText(c *metav1.Condition) string {
	switch {
	case c == nil:
		return "no status yet (is the hub's AppNamespace controller running?)"
	case c.Message == "":
		return c.Reason
	}
	return c.Reason + " — " + c.Message
}

func readyCondition(an *appsv1alpha1.AppNamespace) *metav1.Condition {
	return meta.FindStatusCondition(an.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition)
}

// cluster is the cluster the namespace was read in: Cluster, else the
// AppNamespace's only one.
func (ns *NamespaceStatus) cluster() string {
	if ns.Cluster != "" || len(ns.HubApps) > 0 {
		return ns.Cluster
	}
	return ns.AppNamespace.Status.Cluster
}

// clusterOf names cluster, and which of the AppNamespace's clusters (on)
// it is when there are several: "workload-2 (2 of 3: workload-1,
// workload-2, workload-3)".
func clusterOf(cluster string, on []string) string {
	if len(on) < 2 {
		return cluster
	}
	return fmt.Sprintf("%s (%d of %d: %s)", cluster, slices.Index(on, cluster)+1, len(on), strings.Join(on, ", "))
}

// placementReason is why the hub placed the AppNamespace on cluster.
func placementReason(an *appsv1alpha1.AppNamespace, cluster string) string {
	for _, p := range an.Status.Placements {
		if p.Cluster == cluster {
			return p.Reason
		}
	}
	return ""
}

// namespaceOf is the namespace of an AppNamespace in its clusters (and on
// the hub).
func namespaceOf(an *appsv1alpha1.AppNamespace) string {
	if an.Status.Namespace != "" {
		return an.Status.Namespace
	}
	return an.Name
}

// failing is the number of failing pods, at least those named.
func failing(f *appsv1alpha1.Failure) int32 {
	return max(f.FailingPods, int32(len(f.Pods)))
}

func podCount(n int32) string {
	if n == 1 {
		return "1 pod"
	}
	return fmt.Sprintf("%d pods", n)
}
