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
