package appscli

import (
	"fmt"
	"io"
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

// NamespaceStatus is one AppNamespace of the app and what runs in it.
type NamespaceStatus struct {
	AppNamespace appsv1alpha1.AppNamespace `json:"appNamespace"`
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

// newNamespaceStatus judges an AppNamespace and the workloads read from its
// cluster (readErr says why they could not be), with what the shard
// managers of its StatefulApps said (shards, aligned with w.stateful).
func newNamespaceStatus(an *appsv1alpha1.AppNamespace, w workloads, readErr error, shards []shardsRead) NamespaceStatus {
	ns := NamespaceStatus{AppNamespace: *an}
	switch {
	case isForbidden(readErr):
		ns.Forbidden = readErr.Error()
	case readErr != nil:
		ns.Unreachable = readErr.Error()
	}
	for i := range w.stateless {
		ns.Workloads = append(ns.Workloads, Workload{StatelessApp: w.stateless[i], Verdict: verdict(an, &w.stateless[i])})
	}
	for i := range w.stateful {
		var read shardsRead
		if i < len(shards) {
			read = shards[i]
		}
		ns.StatefulApps = append(ns.StatefulApps, newStatefulWorkload(an, &w.stateful[i], read))
	}
	switch {
	case an.Status.Cluster == "":
		ns.Verdict = "Not routed: " + conditionText(readyCondition(an))
	case ns.Forbidden != "":
		ns.Verdict = "Forbidden: " + strings.TrimPrefix(ns.Forbidden, "forbidden: ")
	case ns.Unreachable != "":
		ns.Verdict = fmt.Sprintf("Unknown: cluster %s cannot be read", an.Status.Cluster)
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
	field(w, "", "App", an.Spec.App)
	field(w, "", "AppNamespace", an.Name)
	field(w, "", "Tenant", string(an.Spec.Tenant))
	field(w, "", "Node profile", an.Spec.NodeProfile)
	switch {
	case an.Status.Cluster == "":
		field(w, "", "Cluster", "none (not routed)")
	case ns.Unreachable != "":
		field(w, "", "Cluster", an.Status.Cluster+" (unreachable: "+ns.Unreachable+")")
	default:
		field(w, "", "Cluster", an.Status.Cluster)
	}
	if an.Status.Cluster != "" {
		field(w, "", "Namespace", namespaceOf(an))
	}
	field(w, "", "Owners", owners(an.Spec.Owners))
	if c := readyCondition(an); an.Status.Cluster != "" && (c == nil || c.Status != metav1.ConditionTrue) {
		field(w, "", "Namespace ready", conditionLine(c))
	}
	if an.DeletionTimestamp != nil {
		field(w, "", "Deleting", "since "+an.DeletionTimestamp.UTC().Format("2006-01-02 15:04:05Z"))
	}
	if ns.Verdict != "" {
		field(w, "", "Verdict", ns.Verdict)
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

// verdict judges a StatelessApp in one line, saying whose problem a failure is.
func verdict(an *appsv1alpha1.AppNamespace, sa *appsv1alpha1.StatelessApp) string {
	ready := meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatelessAppReadyCondition)
	progressing := meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatelessAppProgressingCondition)
	isReady := ready != nil && ready.Status == metav1.ConditionTrue
	if ready == nil {
		return "Unknown: no status yet (is the StatelessApp controller running in cluster " + an.Status.Cluster + "?)"
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
			return prefix + what + " Not the app's doing: " + infraHint(an, sa, f.Reason)
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

// infraHint says who handles an Infra failure.
func infraHint(an *appsv1alpha1.AppNamespace, _ *appsv1alpha1.StatelessApp, reason string) string {
	switch reason {
	case "QuotaExceeded":
		return fmt.Sprintf("the namespace's quota is used up; raise spec.quota of AppNamespace %s on the hub, or ask for fewer replicas or less per replica.", an.Name)
	case "Unschedulable":
		return fmt.Sprintf("the cluster has no room for its pods; capacity of node profile %s in cluster %s is the platform team's to add.", an.Spec.NodeProfile, an.Status.Cluster)
	case "NodeLost":
		return "Nodes that ran its pods were lost; the platform replaces them and the pods are rescheduled."
	}
	return fmt.Sprintf("the platform team is responsible; raise it with them, naming cluster %s and namespace %s.", an.Status.Cluster, namespaceOf(an))
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

// namespaceOf is the namespace of an AppNamespace in its cluster.
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
