package statefulapp

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// now is the time the unit tests plan at.
var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// appWrapper builds a StatefulApp.
type appWrapper struct{ appsv1alpha1.StatefulApp }

// makeApp starts an app "kv" of application kv, version 1.0, in namespace
// team-a, asking its shard manager with approvals of 5 minutes, one
// operation at a time.
func makeApp(replicas int32) *appWrapper {
	return &appWrapper{appsv1alpha1.StatefulApp{
		ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: "team-a", UID: "uid-app", Generation: 2},
		Spec: appsv1alpha1.StatefulAppSpec{
			Application: "kv", Version: "1.0", Replicas: replicas,
			Resources:               appsv1alpha1.Resources{CPU: resource.MustParse("1"), Memory: resource.MustParse("1Gi")},
			Storage:                 appsv1alpha1.Storage{Size: resource.MustParse("10Gi"), StorageClassName: "local-ssd"},
			Port:                    8080,
			ShardManager:            appsv1alpha1.ShardManager{Endpoint: "127.0.0.1:9000", Transport: appsv1alpha1.TransportPlaintext, CallTimeoutSeconds: 5, ApprovalSeconds: 300},
			MaxConcurrentOperations: 1,
		},
	}}
}

func (w *appWrapper) version(v string) *appWrapper {
	w.Spec.Version = v
	return w
}

func (w *appWrapper) canary(v string, replicas int32) *appWrapper {
	w.Spec.Canary = &appsv1alpha1.StatefulCanary{Version: v, Replicas: replicas}
	return w
}

func (w *appWrapper) maxOps(n int32) *appWrapper {
	w.Spec.MaxConcurrentOperations = n
	return w
}

func (w *appWrapper) obj() *appsv1alpha1.StatefulApp { return w.DeepCopy() }

// makePlatform is a platform with a log shipper.
func makePlatform() *appsv1alpha1.AppPlatformSpec {
	small := appsv1alpha1.Resources{CPU: resource.MustParse("50m"), Memory: resource.MustParse("64Mi")}
	return &appsv1alpha1.AppPlatformSpec{
		ImageRepository: "registry.test/apps",
		Sidecars:        []appsv1alpha1.InfraContainer{{Name: "log-shipper", Image: "registry.test/platform/log-shipper:1.0", Resources: small}},
		Probes:          appsv1alpha1.Probes{ReadinessPath: "/ready", LivenessPath: "/health"},
	}
}

// makeNamespace is team-a of app kv-app on storage Nodes.
func makeNamespace() *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a", Labels: map[string]string{
		appsv1alpha1.AppLabel: "kv-app", fleetv1alpha1.NodeProfileLabel: "storage",
	}}}
}

// podWrapper builds a pod of an app as its kubelet reports it.
type podWrapper struct{ corev1.Pod }

// makePod is the pod of an ordinal as the app wants it now, on a Node,
// Running and Ready.
func makePod(app *appsv1alpha1.StatefulApp, ordinal int, node string) *podWrapper {
	pod := DesiredPod(app, makePlatform(), makeNamespace(), ordinal)
	pod.UID = podUID(ordinal)
	pod.Spec.NodeName = node
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue},
	}}
	return &podWrapper{*pod}
}

func podUID(ordinal int) types.UID { return types.UID(fmt.Sprintf("uid-kv-%d", ordinal)) }

// incarnation: the pod was made again (another UID).
func (w *podWrapper) incarnation(n int) *podWrapper {
	w.UID = types.UID(fmt.Sprintf("%s-%d", w.UID, n))
	return w
}

func (w *podWrapper) notReady() *podWrapper {
	w.Status.Conditions[1].Status = corev1.ConditionFalse
	return w
}

// pending: not scheduled yet.
func (w *podWrapper) pending() *podWrapper {
	w.Spec.NodeName = ""
	w.Status = corev1.PodStatus{Phase: corev1.PodPending}
	return w
}

func (w *podWrapper) terminating() *podWrapper {
	t := metav1.NewTime(now.Add(-time.Second))
	w.DeletionTimestamp = &t
	return w
}

func (w *podWrapper) annotate(k, v string) *podWrapper {
	w.Annotations[k] = v
	return w
}

func (w *podWrapper) obj() corev1.Pod { return w.Pod }

// claimWrapper builds a pod's PVC.
type claimWrapper struct{ corev1.PersistentVolumeClaim }

// makeClaim is the PVC of an ordinal, bound to volume pv-<ordinal>.
func makeClaim(ordinal int) *claimWrapper {
	c := DesiredClaim(makeApp(3).obj(), makeNamespace(), ordinal)
	c.UID = claimUID(ordinal)
	c.ResourceVersion = "7"
	c.Spec.VolumeName = fmt.Sprintf("pv-%d", ordinal)
	c.Status.Phase = corev1.ClaimBound
	return &claimWrapper{*c}
}

func claimUID(ordinal int) types.UID { return types.UID(fmt.Sprintf("c%d-uid", ordinal)) }

// unbound: its pod was never scheduled.
func (w *claimWrapper) unbound() *claimWrapper {
	w.Spec.VolumeName, w.Status.Phase = "", corev1.ClaimPending
	return w
}

func (w *claimWrapper) record(r *Record) *claimWrapper {
	if w.Annotations == nil {
		w.Annotations = map[string]string{}
	}
	w.Annotations[appsv1alpha1.OperationAnnotation] = r.encode()
	w.Annotations[OperationCountAnnotation] = "1"
	return w
}

func (w *claimWrapper) annotate(k, v string) *claimWrapper {
	if w.Annotations == nil {
		w.Annotations = map[string]string{}
	}
	w.Annotations[k] = v
	return w
}

func (w *claimWrapper) terminating() *claimWrapper {
	t := metav1.NewTime(now.Add(-time.Second))
	w.DeletionTimestamp = &t
	return w
}

func (w *claimWrapper) obj() corev1.PersistentVolumeClaim { return w.PersistentVolumeClaim }

// recWrapper builds the record of an operation on an ordinal, the first on
// its PVC, asked a minute ago with a deadline four minutes away.
type recWrapper struct{ Record }

func makeRecord(kind string, ordinal int, state appsv1alpha1.OperationState) *recWrapper {
	pod := PodName("kv", ordinal)
	return &recWrapper{Record{
		ID: operationID("team-a", "kv", pod, kind, claimUID(ordinal), 1), Kind: kind, Reason: "because",
		Deadline: now.Add(4 * time.Minute), State: state, Since: now.Add(-time.Minute), PodUID: podUID(ordinal), Node: "n1",
	}}
}

func (w *recWrapper) deadline(d time.Duration) *recWrapper {
	w.Deadline = now.Add(d)
	return w
}

func (w *recWrapper) noPod() *recWrapper {
	w.PodUID, w.Node = "", ""
	return w
}

func (w *recWrapper) obj() *Record { r := w.Record; return &r }

// makeNode is a Ready Node in a maintenance zone.
func makeNode(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		hostnameLabel: name, fleetv1alpha1.MaintenanceZoneLabel: "1",
	}}}
}

func cordoned(node *corev1.Node, disruption string) *corev1.Node {
	node.Spec.Unschedulable = true
	if disruption != "" {
		node.Annotations = map[string]string{fleetv1alpha1.CordonedForAnnotation: disruption}
	}
	return node
}

// makeVolume is a local volume on a Node.
func makeVolume(name, node string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
			NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
				{Key: hostnameLabel, Operator: corev1.NodeSelectorOpIn, Values: []string{node}},
			}}},
		}}},
	}
}

// worldWrapper builds a World at now.
type worldWrapper struct{ World }

// makeWorld is an app in team-a with the platform, Nodes n1..n3 and
// volumes pv-0..pv-2 on them.
func makeWorld(app *appsv1alpha1.StatefulApp) *worldWrapper {
	w := &worldWrapper{World{App: app, Platform: makePlatform(), Namespace: makeNamespace(),
		Volumes: map[string]*corev1.PersistentVolume{}, Nodes: map[string]*corev1.Node{}, Now: now}}
	for i := range 3 {
		node := fmt.Sprintf("n%d", i+1)
		w.Nodes[node] = makeNode(node)
		w.Volumes[fmt.Sprintf("pv-%d", i)] = makeVolume(fmt.Sprintf("pv-%d", i), node)
	}
	return w
}

func (w *worldWrapper) pods(pods ...corev1.Pod) *worldWrapper {
	w.Pods = append(w.Pods, pods...)
	return w
}

func (w *worldWrapper) claims(claims ...corev1.PersistentVolumeClaim) *worldWrapper {
	w.Claims = append(w.Claims, claims...)
	return w
}

func (w *worldWrapper) node(n *corev1.Node) *worldWrapper {
	w.Nodes[n.Name] = n
	return w
}

func (w *worldWrapper) noNode(name string) *worldWrapper {
	delete(w.Nodes, name)
	return w
}

func (w *worldWrapper) noPlatform() *worldWrapper {
	w.Platform = nil
	return w
}

// running is three Ready pods of app on n1..n3, each with its bound PVC.
func running(app *appsv1alpha1.StatefulApp) ([]corev1.Pod, []corev1.PersistentVolumeClaim) {
	var pods []corev1.Pod
	var claims []corev1.PersistentVolumeClaim
	for i := range 3 {
		pods = append(pods, makePod(app, i, fmt.Sprintf("n%d", i+1)).obj())
		claims = append(claims, makeClaim(i).obj())
	}
	return pods, claims
}
