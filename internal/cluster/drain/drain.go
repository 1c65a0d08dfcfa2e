// Package drain empties a Node through the Eviction API, one pass at a time,
// so that a level-triggered controller can drain many Nodes without blocking
// a worker: each pass evicts what it can and says what is left and why.
package drain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/cluster/nodeutil"
)

// mirrorPodAnnotation marks static pods' API mirrors, which cannot be evicted.
const mirrorPodAnnotation = "kubernetes.io/config.mirror"

// NonInterruptibleAnnotation, "true" on a pod (set it on a Job's pod
// template), asks a drain to wait for the pod to finish rather than evict
// it, until the drain's deadline: past it, the pod is evicted like any
// other. A batch job that cannot checkpoint uses it to finish its run.
const NonInterruptibleAnnotation = "strata.dev/non-interruptible"

// WaitingReason is why a drain leaves a non-interruptible pod in place.
const WaitingReason = NonInterruptibleAnnotation + ": waited for until it finishes or the drain's deadline passes"

// Result is what is left on a Node after a pass.
type Result struct {
	// Remaining counts the pods still to leave, terminating ones included.
	Remaining int
	// Evicted counts the pods this pass evicted.
	Evicted int
	// EvictedPods are their UIDs: a pass that reads a cache which has not
	// yet seen an earlier eviction evicts the same pod again (the API
	// server answers success), and a count of them would count it twice.
	EvictedPods []types.UID
	// Blocked are the pods whose eviction was refused (a PodDisruptionBudget
	// allows no more disruptions, a guardrail waits for an approval), sorted
	// by namespace and name.
	Blocked []Blocked
	// Waiting are the non-interruptible pods left to finish (the deadline
	// has not passed), sorted, with WaitingReason.
	Waiting []Blocked
	// Forced are the non-interruptible pods this pass evicted because the
	// drain's deadline passed, sorted.
	Forced []Blocked
}

// Blocked is a pod a drain could not move, or did not move at once (its
// eviction was refused, or it is waited for): which pod, whose it is and
// why.
type Blocked struct {
	// Namespace and Name are the pod's.
	Namespace, Name string
	// Owner is the pod's controller as "<kind> <name>", e.g. "StatefulApp
	// kv"; "" when nothing controls the pod.
	Owner string
	// Reason is the refusal's cause, e.g. the disruption budget it would
	// violate.
	Reason string
}

// Whose is the pod's controller, or says that there is none.
func (b Blocked) Whose() string {
	if b.Owner == "" {
		return "no controller"
	}
	return b.Owner
}

// String reads "app/api-1 (ReplicaSet api-5d8f): <reason>".
func (b Blocked) String() string {
	return fmt.Sprintf("%s/%s (%s): %s", b.Namespace, b.Name, b.Whose(), b.Reason)
}

// Drained says whether the Node has nothing left to evict.
func (r Result) Drained() bool {
	return r.Remaining == 0
}

// stuckAfter is how long past its grace period a terminating pod is waited
// for: longer, and its kubelet is gone (a dead Node), so it never will.
const stuckAfter = time.Minute

// Pass evicts every pod of the Node that a drain must move, through the
// Eviction API (so disruption budgets and the guardrails have their say),
// batch pods included: their Job, or Kueue, replaces them elsewhere.
// DaemonSet pods, mirror pods and finished pods stay: they do not hold the
// Node; nor does a pod stuck terminating well past its grace period, nor a
// terminating pod of a Node that is not Ready (its kubelet is gone, e.g. a
// failed machine, so nothing will confirm that the pod stopped). A
// non-interruptible pod (NonInterruptibleAnnotation) is waited for, unless
// pastDeadline says the drain's deadline has passed.
func Pass(ctx context.Context, c client.Client, node *corev1.Node, now time.Time, pastDeadline bool) (Result, error) {
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.MatchingFieldsSelector{
		Selector: fields.OneTermEqualSelector("spec.nodeName", node.Name),
	}); err != nil {
		return Result{}, fmt.Errorf("listing pods of node %s: %w", node.Name, err)
	}
	kubeletGone := gone(node, now)
	var res Result
	for i := range pods.Items {
		pod := &pods.Items[i]
		if !mustLeave(pod) {
			continue
		}
		if pod.DeletionTimestamp != nil {
			if !kubeletGone && !stuck(pod, now) {
				res.Remaining++ // already leaving
			}
			continue
		}
		res.Remaining++
		nonInterruptible := pod.Annotations[NonInterruptibleAnnotation] == "true"
		if nonInterruptible && !pastDeadline {
			res.Waiting = append(res.Waiting, Blocked{Namespace: pod.Namespace, Name: pod.Name, Owner: owner(pod), Reason: WaitingReason})
			continue
		}
		err := c.SubResource("eviction").Create(ctx, pod, &policyv1.Eviction{
			ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		})
		switch {
		case err == nil:
			res.Evicted++
			res.EvictedPods = append(res.EvictedPods, pod.UID)
			if nonInterruptible {
				res.Forced = append(res.Forced, Blocked{Namespace: pod.Namespace, Name: pod.Name, Owner: owner(pod),
					Reason: "evicted although non-interruptible: the drain's deadline passed"})
			}
		case apierrors.IsNotFound(err):
		case apierrors.IsTooManyRequests(err):
			res.Blocked = append(res.Blocked, Blocked{Namespace: pod.Namespace, Name: pod.Name, Owner: owner(pod), Reason: reason(err)})
		default:
			return res, fmt.Errorf("evicting pod %s/%s from node %s: %w", pod.Namespace, pod.Name, node.Name, err)
		}
	}
	for _, list := range [][]Blocked{res.Blocked, res.Waiting, res.Forced} {
		slices.SortFunc(list, func(a, b Blocked) int {
			return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
		})
	}
	return res, nil
}

// mustLeave says whether a drain waits for a pod to go.
func mustLeave(pod *corev1.Pod) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if _, ok := pod.Annotations[mirrorPodAnnotation]; ok {
		return false
	}
	owner := metav1.GetControllerOf(pod)
	return owner == nil || owner.Kind != "DaemonSet"
}

// owner is the pod's controller as "<kind> <name>", "" when none.
func owner(pod *corev1.Pod) string {
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		return ref.Kind + " " + ref.Name
	}
	return ""
}

// stuck says whether a terminating pod is well past its deletion deadline
// (the deletion timestamp is the deadline: the request time plus the grace).
func stuck(pod *corev1.Pod, now time.Time) bool {
	return pod.DeletionTimestamp != nil && now.After(pod.DeletionTimestamp.Add(stuckAfter))
}

// goneAfter is how long a Node must have been not Ready for its kubelet to
// count as gone: a blip does not end a drain while pods still terminate.
const goneAfter = 40 * time.Second

// gone says whether the Node's kubelet is gone: not Ready for goneAfter, or
// never reporting at all (no Ready condition).
func gone(node *corev1.Node, now time.Time) bool {
	c := nodeutil.ReadyCondition(node)
	return c == nil || c.Status != corev1.ConditionTrue && now.Sub(c.LastTransitionTime.Time) >= goneAfter
}

// reason is the refusal's cause, e.g. the disruption budget it would violate.
func reason(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if d := status.Status().Details; d != nil && len(d.Causes) > 0 {
			return d.Causes[0].Message
		}
		return status.Status().Message
	}
	return err.Error()
}
