// Package nodeutil reads and writes what Strata keeps on the Nodes of workload
// clusters, the same way for every hub controller: readiness, the machine
// behind a Node, its Pool, Strata's annotations.
package nodeutil

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// ReadyCondition is the Node's Ready condition, nil when its kubelet never
// reported one.
func ReadyCondition(node *corev1.Node) *corev1.NodeCondition {
	if node == nil {
		return nil
	}
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// Ready says whether the kubelet reports the Node Ready.
func Ready(node *corev1.Node) bool {
	c := ReadyCondition(node)
	return c != nil && c.Status == corev1.ConditionTrue
}

// Machine is the broker machine behind a Node.
func Machine(node *corev1.Node) string {
	if id := node.Labels[fleetv1alpha1.MachineLabel]; id != "" {
		return id
	}
	return node.Name
}

// SetAnnotation sets or, for "", removes an annotation; it reports whether
// the Node changed.
func SetAnnotation(node *corev1.Node, key, value string) bool {
	if node.Annotations[key] == value {
		return false
	}
	if value == "" {
		_, had := node.Annotations[key]
		delete(node.Annotations, key)
		return had
	}
	if node.Annotations == nil {
		node.Annotations = map[string]string{}
	}
	node.Annotations[key] = value
	return true
}

// PoolOf maps a Node to a reconcile of its Pool, for controllers that watch
// Nodes on behalf of Pools.
func PoolOf(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[fleetv1alpha1.PoolLabel]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: name}}}
}
