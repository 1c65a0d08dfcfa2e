package appscli

import (
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// StatefulWorkload is a StatefulApp, what its shard manager says of its
// shards, and its verdict in one line.
type StatefulWorkload struct {
	StatefulApp appsv1alpha1.StatefulApp `json:"statefulApp"`
	// Shards is the shard manager's answer to DescribeShards; nil when it
	// did not answer.
	Shards *Shards `json:"shards,omitempty"`
	// ShardManagerError says why the shard manager did not answer.
	ShardManagerError string `json:"shardManagerError,omitempty"`
	Verdict           string `json:"verdict"`
}

func newStatefulWorkload(cluster string, app *appsv1alpha1.StatefulApp, read shardsRead) StatefulWorkload {
	return StatefulWorkload{StatefulApp: *app, Shards: read.shards, ShardManagerError: read.err, Verdict: statefulVerdict(cluster, app)}
}

func describeStatefulApp(w io.Writer, wl *StatefulWorkload) {
	sa := &wl.StatefulApp
	const in = "  "
	fmt.Fprintf(w, "StatefulApp %s\n", sa.Name)
	field(w, in, "Version", statefulVersions(sa))
	field(w, in, "Replicas", statefulReplicas(sa))
	if g := sa.Status.ObservedGeneration; g < sa.Generation {
		field(w, in, "Status", fmt.Sprintf("of generation %d; the spec is at %d (the controller has not caught up yet)", g, sa.Generation))
	}
	field(w, in, appsv1alpha1.StatefulAppReadyCondition, conditionLine(meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatefulAppReadyCondition)))
	field(w, in, appsv1alpha1.StatefulAppProgressingCondition, conditionLine(meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatefulAppProgressingCondition)))
	field(w, in, "Shard manager", sa.Spec.ShardManager.Endpoint+", reachable: "+
		conditionLine(meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.ShardManagerReachableCondition)))
	if wl.Shards != nil {
		field(w, in, "Shards", appShardsLine(wl.Shards))
	} else {
		field(w, in, "Shards", wl.ShardManagerError)
	}
	for i := range sa.Status.Pods {
		p := &sa.Status.Pods[i]
		lines := []string{podLine(p)}
		if wl.Shards != nil {
			lines = append(lines, podShardsLine(wl.Shards.pod(p.Name)))
		}
		if p.Operation != nil {
			lines = append(lines, operationLine(p.Operation))
		}
		field(w, in, "Pod "+p.Name, strings.Join(lines, "\n"))
	}
	field(w, in, "Verdict", wl.Verdict)
}

// statefulVersions says which version the pods run, and the canary's.
func statefulVersions(sa *appsv1alpha1.StatefulApp) string {
	c := sa.Spec.Canary
	switch {
	case c == nil:
		return sa.Spec.Version
	case c.Version == sa.Spec.Version:
		return sa.Spec.Version + "; canary promoted (same version)"
	}
	n := min(c.Replicas, sa.Spec.Replicas)
	return fmt.Sprintf("%s; canary %s on %s (the highest ordinals)", sa.Spec.Version, c.Version, podCount(n))
}

// statefulReplicas counts ready pods of those wanted, and updated ones
// when some are not.
func statefulReplicas(sa *appsv1alpha1.StatefulApp) string {
	s := fmt.Sprintf("%d/%d ready", sa.Status.ReadyReplicas, sa.Spec.Replicas)
	if sa.Status.UpdatedReplicas != sa.Spec.Replicas {
		s += fmt.Sprintf(", %d/%d updated", sa.Status.UpdatedReplicas, sa.Spec.Replicas)
	}
	return s
}

// podLine is "Ready, 1.0, on node X".
func podLine(p *appsv1alpha1.StatefulPodStatus) string {
	ready := "Not ready"
	if p.Ready {
		ready = "Ready"
	}
	version := p.Version
	if version == "" {
		version = "version unknown"
	}
	node := "not scheduled"
	if p.Node != "" {
		node = "on node " + p.Node
	}
	return ready + ", " + version + ", " + node
}

// operationLine says what an operation is, where it is and on whom it
// waits: "operation Evict (reason): RetryAfter since T, waits for the
// shard manager: message".
func operationLine(op *appsv1alpha1.PodOperation) string {
	s := "operation " + op.Kind
	if op.Reason != "" {
		s += " (" + op.Reason + ")"
	}
	s += ": " + string(op.State)
	if !op.Since.IsZero() {
		s += " since " + op.Since.UTC().Format("2006-01-02 15:04:05Z")
	}
	s += ", " + waitsOn(op)
	if op.Message != "" {
		s += ": " + op.Message
	}
	return s
}

// waitsOn says what an operation in its state waits for.
func waitsOn(op *appsv1alpha1.PodOperation) string {
	switch op.State {
	case appsv1alpha1.OperationRequested:
		return "waits for the shard manager's answer"
	case appsv1alpha1.OperationDenied:
		return "denied by the shard manager; Strata asks again"
	case appsv1alpha1.OperationRetryAfter:
		return "waits for the shard manager, which prepares (retry after)"
	case appsv1alpha1.OperationApproved:
		if op.Kind == "Evict" {
			return "approved; waits for the eviction (the drain of its Node, or kubectl drain)"
		}
		return "approved; Strata stops the pod"
	case appsv1alpha1.OperationStopping:
		return "the pod is stopping"
	case appsv1alpha1.OperationWaitingForPod:
		if op.Kind == "Evict" {
			return "waits for the pod to be back on its Node, Running and Ready (its Node is being worked on)"
		}
		return "waits for the pod to be back, Running and Ready"
	case appsv1alpha1.OperationCompleting:
		return "Strata tells the shard manager it is done"
	}
	return "state unknown"
}

// statefulVerdict judges a StatefulApp of cluster in one line: ready, or
// what waits on whom.
func statefulVerdict(cluster string, sa *appsv1alpha1.StatefulApp) string {
	ready := meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.StatefulAppReadyCondition)
	reachable := meta.FindStatusCondition(sa.Status.Conditions, appsv1alpha1.ShardManagerReachableCondition)
	if ready == nil {
		return "Unknown: no status yet (is the StatefulApp controller running in cluster " + cluster + "?)"
	}
	if sa.Status.ObservedGeneration < sa.Generation {
		return fmt.Sprintf("Updating: the controller has not acted on generation %d yet", sa.Generation)
	}
	if reachable != nil && reachable.Status == metav1.ConditionFalse {
		return fmt.Sprintf("Waiting: the shard manager at %s does not answer (%s); no pod is stopped until it does",
			sa.Spec.ShardManager.Endpoint, conditionText(reachable))
	}
	var onShardManager, underWay []string
	for _, p := range sa.Status.Pods {
		op := p.Operation
		if op == nil {
			continue
		}
		what := fmt.Sprintf("%s: %s, %s", p.Name, op.Kind, op.State)
		switch op.State {
		case appsv1alpha1.OperationRequested, appsv1alpha1.OperationDenied, appsv1alpha1.OperationRetryAfter:
			onShardManager = append(onShardManager, what)
		default:
			underWay = append(underWay, what)
		}
	}
	switch {
	case len(onShardManager) > 0:
		return fmt.Sprintf("Waiting for the shard manager: %s (%s)",
			plural(len(onShardManager), "operation"), strings.Join(onShardManager, "; "))
	case len(underWay) > 0:
		return fmt.Sprintf("Progressing: %s under way (%s)", plural(len(underWay), "operation"), strings.Join(underWay, "; "))
	case ready.Status == metav1.ConditionTrue:
		return "Ready"
	}
	return "Not ready: " + conditionText(ready)
}
