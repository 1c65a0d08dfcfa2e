// Package testutil holds builders of test objects, shared by the unit,
// integration and end-to-end tests.
package testutil

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// ClusterWrapper builds a Cluster.
type ClusterWrapper struct{ fleetv1alpha1.Cluster }

// MakeCluster starts a Cluster whose kubeconfig is in Secret ns/<name>-kubeconfig.
func MakeCluster(name, secretNamespace string) *ClusterWrapper {
	return &ClusterWrapper{fleetv1alpha1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec: fleetv1alpha1.ClusterSpec{
			Datacenter: "dc1",
			KubeconfigSecretRef: fleetv1alpha1.SecretKeyReference{
				Namespace: secretNamespace, Name: name + "-kubeconfig",
			},
		},
	}}
}

// Datacenter sets spec.datacenter.
func (w *ClusterWrapper) Datacenter(dc string) *ClusterWrapper {
	w.Spec.Datacenter = dc
	return w
}

// SecretKey sets spec.kubeconfigSecretRef.key.
func (w *ClusterWrapper) SecretKey(key string) *ClusterWrapper {
	w.Spec.KubeconfigSecretRef.Key = key
	return w
}

// Generation sets metadata.generation.
func (w *ClusterWrapper) Generation(g int64) *ClusterWrapper {
	w.ObjectMeta.Generation = g
	return w
}

// Condition adds a status condition.
func (w *ClusterWrapper) Condition(c metav1.Condition) *ClusterWrapper {
	w.Status.Conditions = append(w.Status.Conditions, c)
	return w
}

// Obj returns the Cluster.
func (w *ClusterWrapper) Obj() *fleetv1alpha1.Cluster {
	return &w.Cluster
}

// MakeSecret returns a Secret holding data under key.
func MakeSecret(namespace, name, key string, data []byte) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Data:       map[string][]byte{key: data},
	}
}

// PoolWrapper builds a Pool.
type PoolWrapper struct{ fleetv1alpha1.Pool }

// MakePool starts a Pool of capacity general Nodes in cluster.
func MakePool(name, cluster string, capacity int32) *PoolWrapper {
	return &PoolWrapper{fleetv1alpha1.Pool{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec:       fleetv1alpha1.PoolSpec{Cluster: cluster, Capacity: capacity, NodeProfile: "general"},
	}}
}

// Profile sets spec.nodeProfile.
func (w *PoolWrapper) Profile(p string) *PoolWrapper {
	w.Spec.NodeProfile = p
	return w
}

// NodeLabel adds a label to spec.nodeLabels.
func (w *PoolWrapper) NodeLabel(k, v string) *PoolWrapper {
	if w.Spec.NodeLabels == nil {
		w.Spec.NodeLabels = map[string]string{}
	}
	w.Spec.NodeLabels[k] = v
	return w
}

// NodeTaint adds a taint to spec.nodeTaints.
func (w *PoolWrapper) NodeTaint(key, value string, effect corev1.TaintEffect) *PoolWrapper {
	w.Spec.NodeTaints = append(w.Spec.NodeTaints, fleetv1alpha1.NodeTaint{Key: key, Value: value, Effect: effect})
	return w
}

// RequireDaemonSet adds a required DaemonSet.
func (w *PoolWrapper) RequireDaemonSet(namespace, name string) *PoolWrapper {
	w.Spec.RequiredDaemonSets = append(w.Spec.RequiredDaemonSets, fleetv1alpha1.DaemonSetReference{Namespace: namespace, Name: name})
	return w
}

// Deleting sets metadata.deletionTimestamp.
func (w *PoolWrapper) Deleting() *PoolWrapper {
	now := metav1.Now()
	w.DeletionTimestamp = &now
	return w
}

// Obj returns the Pool.
func (w *PoolWrapper) Obj() *fleetv1alpha1.Pool {
	return &w.Pool
}

// NodeWrapper builds a Node.
type NodeWrapper struct{ corev1.Node }

// MakeNode starts a Ready Node of a pool in a maintenance zone.
func MakeNode(name, pool, mz string) *NodeWrapper {
	return &NodeWrapper{corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			fleetv1alpha1.PoolLabel: pool, fleetv1alpha1.MaintenanceZoneLabel: mz, fleetv1alpha1.MachineLabel: name,
		}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}},
	}}
}

// Label sets a label.
func (w *NodeWrapper) Label(k, v string) *NodeWrapper {
	w.Labels[k] = v
	return w
}

// Annotation sets an annotation.
func (w *NodeWrapper) Annotation(k, v string) *NodeWrapper {
	if w.Annotations == nil {
		w.Annotations = map[string]string{}
	}
	w.Annotations[k] = v
	return w
}

// Taint adds a taint.
func (w *NodeWrapper) Taint(key, value string, effect corev1.TaintEffect) *NodeWrapper {
	w.Spec.Taints = append(w.Spec.Taints, corev1.Taint{Key: key, Value: value, Effect: effect})
	return w
}

// Cordoned marks the Node unschedulable.
func (w *NodeWrapper) Cordoned() *NodeWrapper {
	w.Spec.Unschedulable = true
	return w
}

// NotReady sets the Ready condition False.
func (w *NodeWrapper) NotReady() *NodeWrapper {
	w.Status.Conditions[0].Status = corev1.ConditionFalse
	return w
}

// Obj returns the Node.
func (w *NodeWrapper) Obj() *corev1.Node {
	return &w.Node
}
