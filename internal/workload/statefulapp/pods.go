package statefulapp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/workload/statelessapp"
)

// TemplateHashAnnotation, on a pod, is the hash of the pod Strata made it
// from: a pod whose hash is not the wanted one (resources, port or the
// platform's containers changed) is restarted like one on an old version.
const TemplateHashAnnotation = "apps.strata.dev/template-hash"

// The data volume of every pod.
const (
	dataVolume    = "data"
	dataMountPath = "/data"
	// claimPrefix names the PVCs: data-<pod>.
	claimPrefix = "data-"
	// hostnameLabel is the Node label of the hostname spread, and the key
	// local volumes' node affinity names their Node by.
	hostnameLabel = "kubernetes.io/hostname"
	// defaultStorageClass is the CRD's default storage class.
	defaultStorageClass = "local-ssd"
)

// PodName is the name of the pod of an ordinal: <app>-<ordinal>.
func PodName(app string, ordinal int) string {
	return app + "-" + strconv.Itoa(ordinal)
}

// ClaimName is the name of the PVC of a pod: data-<pod>.
func ClaimName(pod string) string {
	return claimPrefix + pod
}

// IsPodName says whether name is that of a pod of app, <app>-<ordinal>: the
// controller knows its pods by these names (the eviction guardrail asks).
func IsPodName(app, name string) bool {
	return ordinalOf(app, name) >= 0
}

// ordinalOf is the ordinal of a pod of app named name, -1 when the name is
// not <app>-<ordinal>.
func ordinalOf(app, name string) int {
	s, ok := strings.CutPrefix(name, app+"-")
	if !ok || s == "" || (len(s) > 1 && s[0] == '0') {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// Selector selects the pods (and PVCs) of an app.
func Selector(app string) map[string]string {
	return map[string]string{appsv1alpha1.StatefulAppLabel: app}
}

// VersionOf is the version the pod of an ordinal runs: the canary's for the
// highest canary.replicas ordinals, the app's for the others.
func VersionOf(spec *appsv1alpha1.StatefulAppSpec, ordinal int) string {
	if c := spec.Canary; c != nil && int32(ordinal) >= spec.Replicas-c.Replicas {
		return c.Version
	}
	return spec.Version
}

func objectLabels(app *appsv1alpha1.StatefulApp, ns *corev1.Namespace) map[string]string {
	return map[string]string{
		appsv1alpha1.AppLabel:         statelessapp.AppName(ns, app.Spec.Application),
		appsv1alpha1.StatefulAppLabel: app.Name,
	}
}

func ownerRefs(app *appsv1alpha1.StatefulApp) []metav1.OwnerReference {
	return []metav1.OwnerReference{*metav1.NewControllerRef(app, appsv1alpha1.GroupVersion.WithKind("StatefulApp"))}
}

// DesiredClaim is the PVC of the pod of an ordinal: local storage of the
// app's size, bound to a Node when its pod is first scheduled
// (WaitForFirstConsumer), so the pod comes back to its data.
func DesiredClaim(app *appsv1alpha1.StatefulApp, ns *corev1.Namespace, ordinal int) *corev1.PersistentVolumeClaim {
	class := app.Spec.Storage.StorageClassName
	if class == "" {
		class = defaultStorageClass
	}
	return &corev1.PersistentVolumeClaim{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: ClaimName(PodName(app.Name, ordinal)), Namespace: app.Namespace,
			Labels: objectLabels(app, ns), OwnerReferences: ownerRefs(app)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(class),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: app.Spec.Storage.Size}},
		},
	}
}

// DesiredPod is the pod of an ordinal, expanded with the platform like a
// StatelessApp's: the platform's init containers, the app container
// (<imageRepository>/<application>:<version>) with the data volume at
// /data, the platform's sidecars; on Nodes of the namespace's node profile,
// spread across maintenance zones. Its TemplateHashAnnotation says what it
// was made from.
func DesiredPod(app *appsv1alpha1.StatefulApp, platform *appsv1alpha1.AppPlatformSpec, ns *corev1.Namespace, ordinal int) *corev1.Pod {
	name := PodName(app.Name, ordinal)
	version := VersionOf(&app.Spec, ordinal)
	podLabels := objectLabels(app, ns)
	podLabels[appsv1alpha1.AppVersionLabel] = version
	spec := corev1.PodSpec{
		EnableServiceLinks: ptr.To(false),
		NodeSelector:       statelessapp.NodeSelector(ns),
		TopologySpreadConstraints: []corev1.TopologySpreadConstraint{
			spread(app.Name, fleetv1alpha1.MaintenanceZoneLabel, corev1.DoNotSchedule),
			spread(app.Name, hostnameLabel, corev1.ScheduleAnyway),
		},
		// A pod's data is on its Node: it has nowhere else to go, so the
		// taint-based eviction of a NotReady or unreachable Node (which
		// would stop it without its shard manager's approval) never
		// applies. It waits for its Node; a Node that is gone for good is a
		// MOVE, asked for like any other stop.
		Tolerations: []corev1.Toleration{
			{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
			{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
		},
		Volumes: []corev1.Volume{{Name: dataVolume, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: ClaimName(name)},
		}}},
	}
	spec.InitContainers, spec.Containers = statelessapp.Containers(platform, statelessapp.ContainerParams{
		Application: app.Spec.Application, AppVersion: version, Port: app.Spec.Port, Resources: app.Spec.Resources,
	})
	spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: dataVolume, MountPath: dataMountPath}}
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: app.Namespace, Labels: podLabels, OwnerReferences: ownerRefs(app)},
		Spec:       spec,
	}
	pod.Annotations = map[string]string{TemplateHashAnnotation: templateHash(pod)}
	return pod
}

// spread keeps the app's pods at most one apart across the values of the
// Node label key, among the Nodes the pods may run on (tainted Nodes, e.g.
// cordoned ones, do not count). A pod whose data is on a Node goes back
// there whatever the spread says of the other Nodes.
func spread(app, key string, when corev1.UnsatisfiableConstraintAction) corev1.TopologySpreadConstraint {
	return corev1.TopologySpreadConstraint{
		MaxSkew:           1,
		TopologyKey:       key,
		WhenUnsatisfiable: when,
		LabelSelector:     &metav1.LabelSelector{MatchLabels: Selector(app)},
		NodeTaintsPolicy:  ptr.To(corev1.NodeInclusionPolicyHonor),
	}
}

// templateHash is a short hash of a pod's labels and spec.
func templateHash(pod *corev1.Pod) string {
	b, err := json.Marshal(struct {
		Labels map[string]string `json:"labels"`
		Spec   corev1.PodSpec    `json:"spec"`
	}{pod.Labels, pod.Spec})
	if err != nil {
		panic(fmt.Sprintf("encoding a pod spec: %v", err)) // a PodSpec always encodes
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}
