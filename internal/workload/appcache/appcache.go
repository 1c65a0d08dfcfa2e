// Package appcache is the cache of the controller manager that runs the app
// controllers of a workload cluster (StatelessApp and StatefulApp), where
// apps may run thousands of pods on thousands of Nodes: it holds only the
// objects of apps, and of those only what the controllers read.
package appcache

import (
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/component"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// Annotation prefixes the cache keeps: Strata's own, on pods (the
// StatefulApp's operation annotations) and Nodes (who cordoned it and why).
const (
	appsAnnotationPrefix  = "apps.strata.dev/"
	fleetAnnotationPrefix = "fleet.strata.dev/"
)

// Options are the cache settings of the manager that runs the app
// controllers:
//
//   - Pods are cached only when they carry the apps.strata.dev/app label,
//     that is, only the pods of apps (both controllers set it on every pod).
//     They keep only what the controllers judge them by: metadata with
//     Strata's apps.strata.dev/ annotations only, spec.nodeName, the phase,
//     the Ready and PodScheduled conditions and the containers' states (not
//     their images, IDs or resources), the strings they repeat interned. A client of this manager reads such partial pods; code that
//     needs whole pods (a webhook counting a namespace's pods) must use an
//     uncached reader (mgr.GetAPIReader()).
//   - Deployments, Services and PodDisruptionBudgets only with the
//     stateless-app label; PersistentVolumeClaims only with the
//     stateful-app label.
//   - PersistentVolumes keep their claim, node affinity and phase: where a
//     StatefulApp pod's data lives.
//   - Nodes keep their labels, Strata's fleet.strata.dev/ annotations,
//     spec.unschedulable and their Ready condition.
//   - Secrets are watched by the StatefulApp controller as metadata only
//     (a CA Secret that changes), and cached as their name, namespace, UID
//     and resourceVersion: never their data, labels or annotations (kubectl's
//     last-applied annotation holds the data). The controller reads a CA's
//     data from the API server, when its resourceVersion changed.
//   - Jobs only with Kueue's queue-name label: the queued Jobs, whose gang
//     the jobgang controller sizes.
//   - Every object is cached without its managed fields.
func Options() cache.Options {
	ofApps := labels.NewSelector().Add(exists(appsv1alpha1.AppLabel))
	ofStateless := labels.NewSelector().Add(exists(appsv1alpha1.StatelessAppLabel))
	ofStateful := labels.NewSelector().Add(exists(appsv1alpha1.StatefulAppLabel))
	queued := labels.NewSelector().Add(exists(kueue.QueueNameLabel))
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}:                   {Label: ofApps, Transform: stripPod},
			&appsv1.Deployment{}:            {Label: ofStateless},
			&corev1.Service{}:               {Label: ofStateless},
			&policyv1.PodDisruptionBudget{}: {Label: ofStateless},
			&corev1.PersistentVolumeClaim{}: {Label: ofStateful},
			&corev1.PersistentVolume{}:      {Transform: stripPV},
			&batchv1.Job{}:                  {Label: queued},
			&corev1.Node{}:                  {Transform: stripNode},
			secretMetadata():                {Transform: stripSecret},
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

// withPrefix keeps the annotations whose key starts with prefix.
func withPrefix(annotations map[string]string, prefix string) map[string]string {
	var out map[string]string
	for k, v := range annotations {
		if strings.HasPrefix(k, prefix) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

// stripPod keeps what the app controllers read of a pod.
func stripPod(in any) (any, error) {
	pod, ok := in.(*corev1.Pod)
	if !ok {
		return in, nil
	}
	return &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: component.Intern(pod.Namespace), UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			Labels: component.InternMap(pod.Labels), Annotations: withPrefix(pod.Annotations, appsAnnotationPrefix),
			OwnerReferences:   internOwners(pod.OwnerReferences),
			CreationTimestamp: pod.CreationTimestamp, DeletionTimestamp: pod.DeletionTimestamp,
		},
		Spec: corev1.PodSpec{NodeName: component.Intern(pod.Spec.NodeName)},
		Status: corev1.PodStatus{
			Phase: pod.Status.Phase, Reason: pod.Status.Reason, Message: pod.Status.Message,
			Conditions:            trimPodConditions(pod.Status.Conditions),
			InitContainerStatuses: trimContainerStatuses(pod.Status.InitContainerStatuses),
			ContainerStatuses:     trimContainerStatuses(pod.Status.ContainerStatuses),
		},
	}, nil
}

// readPodConditions are the pod conditions the controllers read: whether
// it is Ready (and since when), and why it is not scheduled.
var readPodConditions = []corev1.PodConditionType{corev1.PodReady, corev1.PodScheduled}

// trimPodConditions keeps the conditions read, their strings interned.
func trimPodConditions(in []corev1.PodCondition) []corev1.PodCondition {
	var out []corev1.PodCondition
	for _, c := range in {
		if !slices.Contains(readPodConditions, c.Type) {
			continue
		}
		if out == nil {
			out = make([]corev1.PodCondition, 0, len(readPodConditions))
		}
		c.Type, c.Status = corev1.PodConditionType(component.Intern(string(c.Type))), corev1.ConditionStatus(component.Intern(string(c.Status)))
		c.Reason = component.Intern(c.Reason)
		out = append(out, c)
	}
	return out
}

// internOwners interns what owners repeat: their API version, kind and
// name (a ReplicaSet owns thousands of pods).
func internOwners(in []metav1.OwnerReference) []metav1.OwnerReference {
	for i := range in {
		in[i].APIVersion, in[i].Kind, in[i].Name = component.Intern(in[i].APIVersion), component.Intern(in[i].Kind), component.Intern(in[i].Name)
		in[i].UID = types.UID(component.Intern(string(in[i].UID)))
	}
	return in
}

// trimContainerStatuses keeps what the controllers judge a container by:
// its name, state, last termination, readiness, start and restarts; not
// its image, IDs, resources or mounts.
func trimContainerStatuses(in []corev1.ContainerStatus) []corev1.ContainerStatus {
	if in == nil {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(in))
	for i, cs := range in {
		out[i] = corev1.ContainerStatus{
			Name: component.Intern(cs.Name), State: cs.State, LastTerminationState: cs.LastTerminationState,
			Ready: cs.Ready, RestartCount: cs.RestartCount, Started: cs.Started,
		}
	}
	return out
}

// stripPV keeps where a PersistentVolume lives and whom it is bound to.
func stripPV(in any) (any, error) {
	pv, ok := in.(*corev1.PersistentVolume)
	if !ok {
		return in, nil
	}
	return &corev1.PersistentVolume{
		TypeMeta: pv.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: pv.Name, UID: pv.UID, ResourceVersion: pv.ResourceVersion, Labels: pv.Labels,
			CreationTimestamp: pv.CreationTimestamp, DeletionTimestamp: pv.DeletionTimestamp,
		},
		Spec: corev1.PersistentVolumeSpec{
			ClaimRef: pv.Spec.ClaimRef, NodeAffinity: pv.Spec.NodeAffinity, StorageClassName: pv.Spec.StorageClassName,
		},
		Status: corev1.PersistentVolumeStatus{Phase: pv.Status.Phase},
	}, nil
}

// stripNode keeps a Node's labels, Strata's annotations, whether it is
// cordoned, and its conditions.
func stripNode(in any) (any, error) {
	node, ok := in.(*corev1.Node)
	if !ok {
		return in, nil
	}
	return &corev1.Node{
		TypeMeta: node.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: node.Name, UID: node.UID, ResourceVersion: node.ResourceVersion, Labels: component.InternMap(node.Labels),
			Annotations:       withPrefix(node.Annotations, fleetAnnotationPrefix),
			CreationTimestamp: node.CreationTimestamp, DeletionTimestamp: node.DeletionTimestamp,
		},
		Spec:   corev1.NodeSpec{Unschedulable: node.Spec.Unschedulable},
		Status: corev1.NodeStatus{Conditions: readyCondition(node.Status.Conditions)},
	}, nil
}

// readyCondition keeps the Ready condition, the only one read.
func readyCondition(in []corev1.NodeCondition) []corev1.NodeCondition {
	for _, c := range in {
		if c.Type == corev1.NodeReady {
			return []corev1.NodeCondition{c}
		}
	}
	return nil
}

// secretMetadata is the key of the Secrets' metadata-only cache.
func secretMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// stripSecret keeps a Secret's identity and version, whatever the informer
// (a metadata-only one, or a typed one some client started by mistake).
func stripSecret(in any) (any, error) {
	keep := func(m metav1.ObjectMeta) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
			CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp}
	}
	switch s := in.(type) {
	case *metav1.PartialObjectMetadata:
		return &metav1.PartialObjectMetadata{TypeMeta: s.TypeMeta, ObjectMeta: keep(s.ObjectMeta)}, nil
	case *corev1.Secret:
		return &corev1.Secret{TypeMeta: s.TypeMeta, ObjectMeta: keep(s.ObjectMeta), Type: s.Type}, nil
	}
	return in, nil
}
