package statelessapp

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// CacheOptions are the cache settings of the manager that runs the
// controller in a workload cluster, where apps may run thousands of pods:
//
//   - Pods, Deployments, Services and PodDisruptionBudgets are cached only
//     when they carry the stateless-app label, that is, only those of
//     StatelessApps.
//   - Pods keep only what the status is judged from: metadata without
//     annotations, spec.nodeName and the status. A client of this
//     manager reads such partial pods; code that needs whole pods (a
//     webhook counting a namespace's pods) must use an uncached reader
//     (mgr.GetAPIReader()).
//   - Nodes keep their labels, spec.unschedulable and their conditions.
//   - Every object is cached without its managed fields.
func CacheOptions() cache.Options {
	ofApps := labels.NewSelector().Add(exists(appsv1alpha1.StatelessAppLabel))
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:                   {Label: ofApps, Transform: stripPod},
			&appsv1.Deployment{}:            {Label: ofApps},
			&corev1.Service{}:               {Label: ofApps},
			&policyv1.PodDisruptionBudget{}: {Label: ofApps},
			&corev1.Node{}:                  {Transform: stripNode},
		},
		DefaultTransform: cache.TransformStripManagedFields(),
	}
}

func exists(key string) labels.Requirement {
	r, err := labels.NewRequirement(key, selection.Exists, nil)
	if err != nil {
		// The keys are constants known to be valid.
		panic(err)
	}
	return *r
}

// stripPod keeps what Status reads of a pod.
func stripPod(in any) (any, error) {
	pod, ok := in.(*corev1.Pod)
	if !ok {
		return in, nil
	}
	return &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			Labels: pod.Labels, OwnerReferences: pod.OwnerReferences,
			CreationTimestamp: pod.CreationTimestamp, DeletionTimestamp: pod.DeletionTimestamp,
		},
		Spec: corev1.PodSpec{NodeName: pod.Spec.NodeName},
		Status: corev1.PodStatus{
			Phase: pod.Status.Phase, Reason: pod.Status.Reason, Message: pod.Status.Message,
			Conditions:            pod.Status.Conditions,
			InitContainerStatuses: pod.Status.InitContainerStatuses,
			ContainerStatuses:     pod.Status.ContainerStatuses,
		},
	}, nil
}

// stripNode keeps a Node's labels, whether it is cordoned, and its conditions.
func stripNode(in any) (any, error) {
	node, ok := in.(*corev1.Node)
	if !ok {
		return in, nil
	}
	return &corev1.Node{
		TypeMeta: node.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: node.Name, UID: node.UID, ResourceVersion: node.ResourceVersion, Labels: node.Labels,
			CreationTimestamp: node.CreationTimestamp, DeletionTimestamp: node.DeletionTimestamp,
		},
		Spec:   corev1.NodeSpec{Unschedulable: node.Spec.Unschedulable},
		Status: corev1.NodeStatus{Conditions: node.Status.Conditions},
	}, nil
}
