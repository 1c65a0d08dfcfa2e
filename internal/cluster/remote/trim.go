package remote

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-dev/strata/internal/component"
)

// strataAnnotationPrefix is the prefix of the Node annotations the hub's
// controllers read and write (who cordoned it, the drain's progress, the
// Pool's applied labels and taints).
const strataAnnotationPrefix = "fleet.strata.dev/"

// TrimNode keeps of a Node what the hub's controllers read: its labels,
// Strata's annotations, whether it is cordoned and its taints, its Ready
// condition and its allocatable resources (the Cluster's counts, the
// dispatcher's room). What they write are merge patches computed from the
// cached Node (client.MergeFrom), which name only the fields that changed,
// so nothing dropped here is ever written back. A Node of kwok's is about
// 5 KB in full, 1 KB without its managed fields, a few hundred bytes so.
func TrimNode(in any) (any, error) {
	node, ok := in.(*corev1.Node)
	if !ok {
		return in, nil
	}
	out := &corev1.Node{
		TypeMeta: node.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: node.Name, UID: node.UID, ResourceVersion: node.ResourceVersion, Labels: component.InternMap(node.Labels),
			Annotations:       strataAnnotations(node.Annotations),
			CreationTimestamp: node.CreationTimestamp, DeletionTimestamp: node.DeletionTimestamp,
		},
		Spec:   corev1.NodeSpec{Unschedulable: node.Spec.Unschedulable, Taints: node.Spec.Taints},
		Status: corev1.NodeStatus{Allocatable: node.Status.Allocatable},
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.Status.Conditions = []corev1.NodeCondition{c}
		}
	}
	return out, nil
}

// strataAnnotations keeps the annotations of Strata's prefix.
func strataAnnotations(annotations map[string]string) map[string]string {
	var out map[string]string
	for k, v := range annotations {
		if strings.HasPrefix(k, strataAnnotationPrefix) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}
