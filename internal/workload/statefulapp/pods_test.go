package statefulapp

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// TestDesiredPodWhole checks every field of a pod and its PVC.
func TestDesiredPodWhole(t *testing.T) {
	app := makeApp(3).canary("1.1", 1).obj()
	pod := DesiredPod(app, makePlatform(), makeNamespace(), 2)

	owner := []metav1.OwnerReference{{APIVersion: "apps.strata.dev/v1alpha1", Kind: "StatefulApp", Name: "kv", UID: "uid-app",
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	env := []corev1.EnvVar{{Name: "STRATA_APP", Value: "kv"}, {Name: "STRATA_APP_VERSION", Value: "1.1"}, {Name: "STRATA_CONFIG_VERSION"}}
	res := func(cpu, mem string) corev1.ResourceRequirements {
		l := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
		return corev1.ResourceRequirements{Requests: l, Limits: l}
	}
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(8080), Scheme: corev1.URISchemeHTTP}},
			PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 1, SuccessThreshold: 1,
		}
	}
	spread := func(key string, when corev1.UnsatisfiableConstraintAction) corev1.TopologySpreadConstraint {
		return corev1.TopologySpreadConstraint{MaxSkew: 1, TopologyKey: key, WhenUnsatisfiable: when,
			LabelSelector:    &metav1.LabelSelector{MatchLabels: map[string]string{appsv1alpha1.StatefulAppLabel: "kv"}},
			NodeTaintsPolicy: ptr.To(corev1.NodeInclusionPolicyHonor)}
	}
	want := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "kv-2", Namespace: "team-a", OwnerReferences: owner,
			Labels:      map[string]string{appsv1alpha1.AppLabel: "kv-app", appsv1alpha1.StatefulAppLabel: "kv", appsv1alpha1.AppVersionLabel: "1.1"},
			Annotations: map[string]string{TemplateHashAnnotation: pod.Annotations[TemplateHashAnnotation]}},
		Spec: corev1.PodSpec{
			EnableServiceLinks: ptr.To(false),
			// Its data is on the Node: never taint-evicted from it.
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
			},
			Containers: []corev1.Container{
				{
					Name: "app", Image: "registry.test/apps/kv:1.1",
					Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
					Env:            env,
					Resources:      res("1", "1Gi"),
					VolumeMounts:   []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
					ReadinessProbe: probe("/ready", 5, 3),
					LivenessProbe:  probe("/health", 10, 3),
					StartupProbe:   probe("/health", 5, 60),
				},
				{Name: "log-shipper", Image: "registry.test/platform/log-shipper:1.0", Env: env, Resources: res("50m", "64Mi")},
			},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-kv-2"}}}},
			NodeSelector: map[string]string{fleetv1alpha1.NodeProfileLabel: "storage"},
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{
				spread(fleetv1alpha1.MaintenanceZoneLabel, corev1.DoNotSchedule),
				spread("kubernetes.io/hostname", corev1.ScheduleAnyway),
			},
		},
	}
	if diff := cmp.Diff(want, pod); diff != "" {
		t.Errorf("pod (-want +got):\n%s", diff)
	}
	if len(pod.Annotations[TemplateHashAnnotation]) != 16 {
		t.Errorf("template hash %q", pod.Annotations[TemplateHashAnnotation])
	}

	wantClaim := &corev1.PersistentVolumeClaim{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: "data-kv-2", Namespace: "team-a", OwnerReferences: owner,
			Labels: map[string]string{appsv1alpha1.AppLabel: "kv-app", appsv1alpha1.StatefulAppLabel: "kv"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To("local-ssd"),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}},
		},
	}
	if diff := cmp.Diff(wantClaim, DesiredClaim(app, makeNamespace(), 2)); diff != "" {
		t.Errorf("claim (-want +got):\n%s", diff)
	}
}

func TestTemplateHash(t *testing.T) {
	app := makeApp(3).obj()
	hash := func(app *appsv1alpha1.StatefulApp, platform *appsv1alpha1.AppPlatformSpec) string {
		return DesiredPod(app, platform, makeNamespace(), 0).Annotations[TemplateHashAnnotation]
	}
	base := hash(app, makePlatform())
	if again := hash(makeApp(3).obj(), makePlatform()); again != base {
		t.Errorf("the same pod hashes to %s and %s", base, again)
	}
	newer := makePlatform()
	newer.Sidecars[0].Image = "registry.test/platform/log-shipper:1.1"
	for name, h := range map[string]string{
		"version":  hash(makeApp(3).version("2.0").obj(), makePlatform()),
		"platform": hash(app, newer),
	} {
		if h == base {
			t.Errorf("a new %s does not change the hash", name)
		}
	}
	// The replica count is not part of a pod.
	if h := hash(makeApp(5).obj(), makePlatform()); h != base {
		t.Errorf("scaling changed the pod's hash")
	}
}

func TestVersionOf(t *testing.T) {
	cases := []struct {
		app  *appsv1alpha1.StatefulApp
		want []string
	}{
		{makeApp(3).obj(), []string{"1.0", "1.0", "1.0"}},
		{makeApp(3).canary("2.0", 1).obj(), []string{"1.0", "1.0", "2.0"}},
		{makeApp(3).canary("2.0", 5).obj(), []string{"2.0", "2.0", "2.0"}},
	}
	for _, tc := range cases {
		var got []string
		for i := range 3 {
			got = append(got, VersionOf(&tc.app.Spec, i))
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("canary %+v (-want +got):\n%s", tc.app.Spec.Canary, diff)
		}
	}
}

func TestOrdinalOf(t *testing.T) {
	for name, want := range map[string]int{"kv-0": 0, "kv-12": 12, "kv-01": -1, "kv-": -1, "kv-x": -1, "kv-1-2": -1, "other-1": -1, "kv--1": -1} {
		if got := ordinalOf("kv", name); got != want {
			t.Errorf("ordinalOf(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := makeRecord(KindEvict, 1, appsv1alpha1.OperationApproved).obj()
	claim := makeClaim(1).record(r).obj()
	got, err := readRecord(&claim)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	if a := got.approval(); a != "team-a/kv/kv-1/Evict/c1uid-1@2026-05-01T12:04:00Z" {
		t.Errorf("approval %q", a)
	}
	for _, bad := range []string{`{"id":"x","kind":"Reboot"}`, `{"kind":"Evict"}`, `[`} {
		c := makeClaim(1).annotate(appsv1alpha1.OperationAnnotation, bad).obj()
		if _, err := readRecord(&c); err == nil {
			t.Errorf("record %s read without an error", bad)
		}
	}
	if id := operationID("ns", "kv", "kv-0", KindMove, "5f1c9e2a-aaaa-bbbb", 3); id != "ns/kv/kv-0/Move/5f1c9e2a-3" {
		t.Errorf("operation id %s", id)
	}
}
